//! Evaluating a trained policy from its run directory (`mnemo rollout RUN`): success rate and
//! return over N test episodes, and one episode rendered as ASCII frames and as a PNG strip.
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mnemo_data::Split;
use mnemo_train::checkpoint::Checkpoint;
use mnemo_train::model_table::ModelEntry;
use mnemo_train::trainer::StateOf;
use mnemo_train::{RunDir, TrainError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::RlConfig;
use super::task::{RlTask, split_seed};
use crate::agent::{Agent, evaluate};
use crate::env::{Env, EpisodeSummary};
use crate::policy::{Carried, Policy};
use crate::render::{Frame, StripOptions, ascii_episode, png_strip};
use crate::rollout::Rollout;

/// File name of the rendered episode in the run directory.
pub const EPISODE_PNG: &str = "episode.png";

/// A trained policy with the config of its run.
pub struct LoadedPolicy {
    /// The run's config (one policy, sized for its environment).
    pub config: RlConfig,
    /// The policy, on the plain device it was loaded to.
    pub policy: Policy,
    /// Optimizer updates it was trained for.
    pub step: u64,
}

/// Load the policy of the RL run in `dir` onto `device`.
pub fn load_policy(dir: &Path, device: &Device) -> Result<LoadedPolicy, TrainError> {
    let dir = RunDir::at(dir);
    for file in [dir.config(), dir.checkpoint()] {
        if !file.is_file() {
            return Err(TrainError::NotARun {
                dir: dir.path().into(),
                reason: format!("{} is missing", file.display()),
            });
        }
    }
    let config = RlConfig::load(dir.config())?;
    let checkpoint = Checkpoint::<StateOf<RlTask>>::read(&dir.checkpoint())?;
    let device = device.clone().inner();
    let model_config = checkpoint.trainer.model_config.clone();
    let policy =
        checkpoint.load_model(ModelEntry::init(&model_config, &device), &dir.checkpoint())?;
    Ok(LoadedPolicy {
        config,
        policy,
        step: checkpoint.trainer.step,
    })
}

/// What `mnemo rollout` found.
#[derive(Debug, Clone)]
pub struct RolloutReport {
    /// The test episodes.
    pub summary: EpisodeSummary,
    /// One episode as text frames (when rendering).
    pub ascii: Option<String>,
    /// Where its PNG strip was written (when rendering).
    pub png: Option<PathBuf>,
}

/// Run `episodes` test episodes of the policy in `dir` (the environments `mnemo train`
/// evaluates on at the end); with `render`, also play one episode and draw it.
pub fn rollout_run(
    dir: &Path,
    episodes: usize,
    render: bool,
    device: &Device,
) -> Result<RolloutReport, TrainError> {
    let loaded = load_policy(dir, device)?;
    let device = device.clone().inner();
    let seed = split_seed(&loaded.config, Split::Test);
    let mut env_config = loaded.config.data.clone();
    env_config.seed = env_config.seed.wrapping_add(seed.0);
    let mut env = env_config.build().map_err(|e| TrainError::BadFile {
        path: dir.join("config.toml"),
        message: format!("env.{}: {}", e.field, e.message),
    })?;
    let (finished, _) = evaluate(&loaded.policy, &mut env, episodes, seed.1, &device);
    let summary = EpisodeSummary::of(&finished);
    if !render {
        return Ok(RolloutReport {
            summary,
            ascii: None,
            png: None,
        });
    }
    let mut one = loaded.config.data.clone();
    one.n_envs = 1;
    one.seed = env_config.seed;
    let (frames, captions) = play_one(
        &loaded.policy,
        one.build().expect("validated"),
        seed.1,
        &device,
    );
    let png = dir.join(EPISODE_PNG);
    let options = StripOptions {
        cell_px: 12,
        columns: 16,
        gap_px: 4,
    };
    let bytes = png_strip(&frames, options).map_err(|e| TrainError::BadFile {
        path: png.clone(),
        message: format!("cannot encode PNG: {e}"),
    })?;
    std::fs::write(&png, bytes).map_err(|e| TrainError::io(&png, "cannot write", e))?;
    Ok(RolloutReport {
        summary,
        ascii: Some(ascii_episode(&frames, &captions)),
        png: Some(png),
    })
}

/// The frames of one episode of `policy` in the single environment of `env`, with a caption
/// per frame (step, action taken from it, reward).
fn play_one<E: Env>(
    policy: &Policy,
    mut env: crate::env::VecEnv<E>,
    seed: u64,
    device: &Device,
) -> (Vec<Frame>, Vec<String>) {
    let mut agent = Agent::new(policy, Carried::fresh(policy, 1), device);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut current = env.step_buffer();
    env.observe(&mut current.obs);
    let names = env.env(0).action_names();
    let (mut frames, mut captions) = (vec![env.env(0).frame()], Vec::new());
    let mut step = Rollout::new(1, 1, env.obs_dim());
    loop {
        let t = frames.len() - 1;
        step.collect(&mut env, &mut current, |obs, starts, out| {
            agent.act(obs, starts, &mut rng, out)
        });
        let mut caption = format!(
            "t={t} action={} reward={} value={:.2}",
            names[step.acted.actions[0]],
            current.rewards[0] + 0.0, // no "-0"
            step.acted.values[0]
        );
        if current.dones[0] {
            caption.push_str(&format!(" (end: return {:.2})", current.episodes[0].ret));
            captions.push(caption);
            break;
        }
        captions.push(caption);
        frames.push(env.env(0).frame());
    }
    (frames, captions)
}
