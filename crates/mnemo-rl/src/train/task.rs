//! [`RlTask`]: PPO on a memory policy as a [`Task`] of the one training loop.
//!
//! One trainer step is one PPO update on one minibatch of environment rows. When the updates
//! of a rollout (`epochs × minibatches`) are used up, the next step first collects a new
//! rollout of `rollout_len` steps of every environment with the current weights (sampling with
//! a generator seeded by `(run.seed, rollout index)`), computes GAE, and draws the minibatch
//! partitions of every epoch. Each update re-runs its rows' rollout segment from the memory
//! carried into it and takes the PPO loss and its gradient ([`Policy::segment_grads`]:
//! truncated backprop through the segment, by the Feedback core's manual backward where it
//! applies). The environments (their RNGs included), the carried memories and a rollout in
//! progress are the data position, so a resumed run continues exactly.
use std::path::Path;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_data::{LmUnit, Split};
use mnemo_train::checkpoint::CheckpointError;
use mnemo_train::{
    Ending, LossStats, Metrics, RunDir, RunSummary, StepOutput, Task, TrainError, step_seed,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::config::RlConfig;
use super::summary::RlSummary;
use crate::agent::{Agent, collect, evaluate};
use crate::env::{AnyEnv, EpisodeInfo, EpisodeSummary, VecEnv, VecStep};
use crate::gae::Gae;
use crate::policy::{Backward, Carried, Policy};
use crate::ppo::{PpoStats, PpoTargets, ppo_loss};
use crate::rollout::{Rollout, env_minibatches};

/// Finished training episodes kept for the rolling means of the log.
const RECENT_EPISODES: usize = 100;

/// A collected rollout whose updates are not all taken yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The rollout.
    pub rollout: Rollout,
    /// Its advantages and returns.
    pub gae: Gae,
    /// The memory every row carried into it.
    pub start: Carried,
    /// The env rows of every update, epoch after epoch.
    pub schedule: Vec<Vec<usize>>,
    /// The next update.
    pub next: usize,
}

/// Where an RL run stands: the data position of its checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlPosition {
    /// The environments, RNGs included.
    pub env: VecEnv<AnyEnv>,
    /// What every row remembers at the environments' current step.
    pub carried: Carried,
    /// The rollout being trained on, if its updates are not all taken.
    pub pending: Option<Pending>,
    /// Rollouts collected so far.
    pub rollouts: u64,
    /// Training episodes finished so far.
    pub episodes: u64,
    /// The last finished training episodes (at most 100), for the log's rolling means.
    pub recent: Vec<EpisodeInfo>,
}

/// PPO on a memory policy; see the [module docs](self).
pub struct RlTask {
    config: RlConfig,
    device: Device,
    state: RlPosition,
    current: VecStep,
    last: PpoStats,
}

impl RlTask {
    /// The task of a single-policy `config` (see [`RlConfig::for_policy`]) training on the
    /// autodiff `device`.
    pub fn new(config: RlConfig, device: &Device) -> Result<Self, TrainError> {
        let env = config.data.build().map_err(|e| {
            TrainError::Config(mnemo_train::ConfigError::field(
                format!("env.{}", e.field),
                e.message,
            ))
        })?;
        let current = observed(&env);
        let model = config.models.values().next().expect("one policy");
        let policy_shape = model.init(&device.clone().inner());
        let carried = Carried::fresh(&policy_shape, config.data.n_envs);
        Ok(Self {
            state: RlPosition {
                env,
                carried,
                pending: None,
                rollouts: 0,
                episodes: 0,
                recent: Vec::new(),
            },
            current,
            config,
            device: device.clone(),
            last: PpoStats::default(),
        })
    }

    /// Collect the next rollout with `policy` (an inference copy) and plan its updates.
    /// Returns the environment steps taken.
    fn collect(&mut self, policy: &Policy) -> u64 {
        let ppo = &self.config.train;
        let (n, t_len) = (self.config.data.n_envs, ppo.rollout_len);
        let seed = step_seed(self.config.run.seed, self.state.rollouts);
        let device = self.device.clone().inner();
        let mut agent = Agent::new(policy, self.state.carried.clone(), &device);
        let mut rollout = Rollout::new(t_len, n, self.state.env.obs_dim());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (finished, last_values) = collect(
            &mut agent,
            &mut self.state.env,
            &mut self.current,
            &mut rollout,
            &mut rng,
        );
        let start = std::mem::replace(&mut self.state.carried, agent.carried());
        let gae = rollout.gae(&last_values, ppo.gamma, ppo.gae_lambda);
        let schedule = (0..ppo.epochs)
            .flat_map(|_| env_minibatches(n, ppo.minibatches, &mut rng))
            .collect();
        self.state.pending = Some(Pending {
            rollout,
            gae,
            start,
            schedule,
            next: 0,
        });
        self.state.rollouts += 1;
        self.state.episodes += finished.len() as u64;
        self.state.recent.extend(finished);
        let excess = self.state.recent.len().saturating_sub(RECENT_EPISODES);
        self.state.recent.drain(..excess);
        (n * t_len) as u64
    }

    /// Evaluation episodes of `policy` on `split`'s environments (seeds apart from training's).
    fn episodes(&self, policy: &Policy, device: &Device, split: Split) -> (Vec<EpisodeInfo>, u64) {
        let (env_offset, sampling) = split_seed(&self.config, split);
        let mut env_config = self.config.data.clone();
        env_config.seed = env_config.seed.wrapping_add(env_offset);
        let mut env = env_config.build().expect("validated");
        let episodes = self.config.train.eval_episodes;
        evaluate(policy, &mut env, episodes, sampling, device)
    }
}

/// The seeds of `split`'s evaluation: the offset of its environments' seed from training's,
/// and the seed of its action sampling.
pub fn split_seed(config: &RlConfig, split: Split) -> (u64, u64) {
    let offset = match split {
        Split::Train => 0,
        Split::Valid => 1_000_003,
        Split::Test => 2_000_029,
    };
    (offset, offset ^ config.run.seed)
}

/// A fresh step buffer holding `env`'s current observations.
fn observed(env: &VecEnv<AnyEnv>) -> VecStep {
    let mut current = env.step_buffer();
    env.observe(&mut current.obs);
    current
}

/// Episodes as trainer metrics: `accuracy` is the success rate (0 where the task has none) and
/// `loss` the negative mean return, so "better" means more successes, then more return.
pub fn episode_metrics(summary: &EpisodeSummary, steps: u64) -> Metrics {
    Metrics {
        loss: -summary.mean_return,
        accuracy: summary.success_rate.unwrap_or(0.0),
        scored: summary.episodes as u64,
        tokens: steps,
        bpc: None,
        ppl: None,
    }
}

/// ` success 97.0%`, or nothing for tasks without a success criterion.
fn success_text(rate: Option<f64>) -> String {
    rate.map_or(String::new(), |r| format!(" success {:.1}%", 100.0 * r))
}

/// The log fields of episodes: mean return, success rate (where judged), goals, length.
pub fn episode_fields(summary: &EpisodeSummary) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("episodes".into(), summary.episodes.into());
    map.insert("return".into(), summary.mean_return.into());
    map.insert("episode_len".into(), summary.mean_length.into());
    map.insert("goals".into(), summary.mean_goals.into());
    if let Some(rate) = summary.success_rate {
        map.insert("success".into(), rate.into());
    }
    map
}

impl Task for RlTask {
    type Config = RlConfig;
    type Position = RlPosition;
    type Carry = ();
    type Summary = RlSummary;

    fn start(&self, _model: &Policy) {}

    fn step(&mut self, model: &Policy, _carry: ()) -> StepOutput<()> {
        let env_steps = match self.state.pending {
            None => self.collect(&model.valid()),
            Some(_) => 0,
        };
        let pending = self.state.pending.as_mut().expect("a rollout to train on");
        let rows = &pending.schedule[pending.next];
        let mb = pending.rollout.minibatch(rows, &pending.gae);
        let (b, t_len) = (rows.len(), mb.steps);
        let obs_dim = mb.acted.obs.len() / (b * t_len);
        let obs = Tensor::<3>::from_data(
            TensorData::new(mb.acted.obs.clone(), [b, t_len, obs_dim]),
            &self.device,
        );
        let targets = PpoTargets {
            actions: &mb.acted.actions,
            old_log_probs: &mb.acted.log_probs,
            advantages: &mb.gae.advantages,
            returns: &mb.gae.returns,
        };
        let train = &self.config.train;
        let mut stats = PpoStats::default();
        // The Feedback core's manual backward where it applies, autodiff elsewhere.
        let (logits, grads) = model.segment_grads(
            obs,
            &mb.acted.starts,
            pending.start.select(rows),
            Backward::Fastest,
            |logits, values| {
                let a = logits.dims()[2];
                let (loss, parts) = ppo_loss(
                    logits.reshape([b * t_len, a]),
                    values.reshape([b * t_len]),
                    targets,
                    train,
                );
                stats = parts;
                loss
            },
        );
        pending.next += 1;
        if pending.next == pending.schedule.len() {
            self.state.pending = None;
        }
        self.last = stats;
        let grads = match stats.loss.is_finite() {
            true => grads,
            false => GradientsParams::new(),
        };
        StepOutput {
            stats: LossStats {
                loss: stats.loss,
                correct: 0,
                scored: b * t_len,
                tokens: env_steps as usize,
            },
            grads,
            next: (),
            logits,
        }
    }

    fn counted(&self, stats: &LossStats) -> u64 {
        stats.tokens as u64
    }

    fn position(&self, _carry: &()) -> RlPosition {
        self.state.clone()
    }

    fn restore(
        &mut self,
        _model: &Policy,
        saved: &RlPosition,
        _path: &Path,
    ) -> Result<(), CheckpointError> {
        self.state = saved.clone();
        self.current = observed(&self.state.env);
        Ok(())
    }

    fn lm_unit(&self) -> Option<LmUnit> {
        None
    }

    fn train_log_fields(&self) -> Map<String, Value> {
        let mut map = episode_fields(&EpisodeSummary::of(&self.state.recent));
        let s = &self.last;
        for (key, value) in [
            ("policy_loss", s.policy_loss),
            ("value_loss", s.value_loss),
            ("entropy", s.entropy),
            ("approx_kl", s.approx_kl),
            ("clip_fraction", s.clip_fraction),
        ] {
            map.insert(key.into(), value.into());
        }
        map.insert("rollouts".into(), self.state.rollouts.into());
        map.insert("episodes_total".into(), self.state.episodes.into());
        map
    }

    fn window_text(&self, _window: &Metrics, per_s: f64) -> String {
        let recent = EpisodeSummary::of(&self.state.recent);
        let episodes_per_s = per_s / recent.mean_length.max(1.0);
        format!(
            "return {:.3}{} {per_s:.0} steps/s {episodes_per_s:.1} episodes/s",
            recent.mean_return,
            success_text(recent.success_rate)
        )
    }

    fn eval_text(&self, metrics: &Metrics) -> String {
        let judged = matches!(self.config.data.kind, crate::env::EnvKind::TMaze(_));
        format!(
            "return {:.3}{} ({} episodes)",
            -metrics.loss,
            success_text(judged.then_some(metrics.accuracy)),
            metrics.scored
        )
    }

    fn evaluate(&self, model: &Policy, device: &Device, split: Split) -> Metrics {
        let (episodes, steps) = self.episodes(model, device, split);
        episode_metrics(&EpisodeSummary::of(&episodes), steps)
    }

    fn write_files(&self, _dir: &RunDir) -> Result<(), TrainError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        self.config
            .models
            .values()
            .next()
            .map_or("feedback", |m| m.kind.name())
    }

    fn describe(&self, model: &Policy) -> (String, Option<String>) {
        let env = &self.config.data;
        (
            format!("{} policy, {} parameters", self.kind(), model.num_params()),
            Some(format!("{} × {}", env.n_envs, env.kind.name())),
        )
    }

    fn summarize(
        &self,
        run: RunSummary,
        ending: &mut Ending<'_, Policy>,
    ) -> Result<RlSummary, TrainError> {
        let (episodes, _) = self.episodes(ending.model, ending.device, Split::Test);
        let test = EpisodeSummary::of(&episodes);
        let mut record = json!({"step": run.steps, "split": "test_episodes"});
        if let Value::Object(map) = &mut record {
            map.extend(episode_fields(&test));
        }
        ending.append(&record)?;
        Ok(RlSummary {
            env_steps: self.state.rollouts
                * (self.config.data.n_envs * self.config.train.rollout_len) as u64,
            train_episodes: self.state.episodes,
            test_episodes: test,
            run,
        })
    }
}
