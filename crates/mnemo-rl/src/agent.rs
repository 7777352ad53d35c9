//! A policy acting in a [`VecEnv`]: sampling actions, collecting a rollout for PPO, and
//! evaluating whole episodes.
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_core::host::to_vec as host;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::{Env, EpisodeInfo, VecEnv, VecStep};
use crate::policy::{Carried, Policy, PolicyMemory};
use crate::rollout::{PolicyOutput, Rollout};

/// An inference copy of a policy with the memory of every environment row.
pub struct Agent<'a> {
    policy: &'a Policy,
    memory: PolicyMemory,
    device: Device,
}

impl<'a> Agent<'a> {
    /// `policy` (an inference copy on the plain `device`) continuing from `carried`.
    pub fn new(policy: &'a Policy, carried: Carried, device: &Device) -> Self {
        Self {
            memory: policy.memory(carried, device, 64),
            policy,
            device: device.clone(),
        }
    }

    /// What the rows remember, for the next rollout or a checkpoint.
    pub fn carried(&self) -> Carried {
        self.memory.carried()
    }

    /// Act on one observation per row: sample actions from the policy with `rng`, writing
    /// them, their log-probabilities and the values into `out`. Rows whose `starts` is set
    /// forget their memory first.
    ///
    /// # Shapes
    /// - obs: `[N, O]`; starts: `[N]`
    pub fn act(
        &mut self,
        obs: &[f32],
        starts: &[bool],
        rng: &mut ChaCha8Rng,
        out: PolicyOutput<'_>,
    ) {
        let (log_probs, values) = self.forward(obs, starts, true);
        let a = self.policy.n_actions();
        for (i, row) in log_probs.chunks(a).enumerate() {
            let action = sample(row, rng.random::<f32>());
            out.actions[i] = action;
            out.log_probs[i] = row[action];
            out.values[i] = values[i];
        }
    }

    /// The values of one observation per row, leaving the memory as it is (the bootstrap
    /// after a rollout).
    pub fn values(&mut self, obs: &[f32], starts: &[bool]) -> Vec<f32> {
        self.forward(obs, starts, false).1
    }

    /// Log-probabilities `[N, A]` and values `[N]` on the host; the memory advances when
    /// `advance`.
    fn forward(&mut self, obs: &[f32], starts: &[bool], advance: bool) -> (Vec<f32>, Vec<f32>) {
        let n = starts.len();
        let obs = Tensor::<2>::from_data(
            TensorData::new(obs.to_vec(), [n, obs.len() / n]),
            &self.device,
        );
        let (logits, values) = match advance {
            true => self.policy.act(obs, starts, &mut self.memory),
            false => self.policy.act(obs, starts, &mut self.memory.clone()),
        };
        (host(log_softmax(logits, 1)), host(values))
    }
}

/// Fill `rollout` by acting in `env` from `current` (whose observation it continues from),
/// sampling with `rng`. Returns the finished episodes and the values of the observations after
/// the last step (GAE's bootstrap).
pub fn collect<E: Env>(
    agent: &mut Agent<'_>,
    env: &mut VecEnv<E>,
    current: &mut VecStep,
    rollout: &mut Rollout,
    rng: &mut ChaCha8Rng,
) -> (Vec<EpisodeInfo>, Vec<f32>) {
    let episodes = rollout.collect(env, current, |obs, starts, out| {
        agent.act(obs, starts, rng, out)
    });
    let mut starts = vec![false; env.len()];
    env.episode_starts(&mut starts);
    let last_values = agent.values(&current.obs, &starts);
    (episodes, last_values)
}

/// Run `policy` (an inference copy on the plain `device`) in `env` from fresh episodes until
/// `episodes` episodes have finished, sampling actions with a generator seeded by `seed`.
/// Returns the first `episodes` finished episodes (in order of finishing) and the steps taken.
pub fn evaluate<E: Env>(
    policy: &Policy,
    env: &mut VecEnv<E>,
    episodes: usize,
    seed: u64,
    device: &Device,
) -> (Vec<EpisodeInfo>, u64) {
    env.reset_all();
    let n = env.len();
    let mut agent = Agent::new(policy, Carried::fresh(policy, n), device);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut current = env.step_buffer();
    env.observe(&mut current.obs);
    // One-step rollouts: the policy acts, every copy steps, finished episodes are kept.
    let mut step = Rollout::new(1, n, env.obs_dim());
    let mut finished = Vec::with_capacity(episodes);
    let mut steps = 0u64;
    while finished.len() < episodes {
        finished.extend(step.collect(env, &mut current, |obs, starts, out| {
            agent.act(obs, starts, &mut rng, out)
        }));
        steps += n as u64;
    }
    finished.truncate(episodes);
    (finished, steps)
}

/// The action whose cumulative probability first exceeds `u` (uniform in `[0, 1)`), from
/// log-probabilities.
fn sample(log_probs: &[f32], u: f32) -> usize {
    let mut acc = 0.0f32;
    for (a, lp) in log_probs.iter().enumerate() {
        acc += lp.exp();
        if u < acc {
            return a;
        }
    }
    log_probs.len() - 1
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn samples_by_cumulative_probability() {
        let lp = [0.25f32.ln(), 0.5f32.ln(), 0.25f32.ln()];
        assert_eq!(sample(&lp, 0.0), 0);
        assert_eq!(sample(&lp, 0.24), 0);
        assert_eq!(sample(&lp, 0.26), 1);
        assert_eq!(sample(&lp, 0.74), 1);
        assert_eq!(sample(&lp, 0.76), 2);
        assert_eq!(sample(&lp, 0.999_999), 2);
    }
}
