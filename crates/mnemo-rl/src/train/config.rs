//! An RL experiment config: `[task] kind = "rl"`, `[run]`, `[optim]`, `[env]`, `[ppo]` and the
//! policies of `[models.<name>]`.
//!
//! ```toml
//! [task]
//! kind = "rl"
//!
//! [env]
//! kind = "tmaze"
//! length = 8
//! n_envs = 16
//!
//! [ppo]
//! rollout_len = 32
//!
//! [models.feedback]
//! kind = "feedback"
//! d_model = 32
//! n_layers = 2
//! n_heads = 2
//! d_ff = 64
//! span = 4
//! ```
use std::collections::BTreeMap;

use mnemo_train::experiment::{ConfigError, RunConfig, check_name};
use mnemo_train::model_table::{ModelEntry, single_model};
use mnemo_train::{OptimConfig, experiment_file};
use serde::{Deserialize, Serialize};

use crate::env::{EnvConfig, EnvConfigError};
use crate::policy::{Policy, PolicyConfig};
use crate::ppo::PpoConfig;

/// `[task]`: which kind of experiment a config is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTable {
    /// Always `"rl"`.
    pub kind: TaskKind,
}

/// The kinds of experiment `[task] kind` names here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Reinforcement learning.
    Rl,
}

/// A reinforcement-learning experiment; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlConfig {
    /// `[task] kind = "rl"`.
    pub task: TaskTable,
    /// Naming, seed, steps (optimizer updates) and cadence.
    pub run: RunConfig,
    /// Optimizer and schedule.
    pub optim: OptimConfig,
    /// `[env]`: the environment and its copies.
    #[serde(rename = "env")]
    pub data: EnvConfig,
    /// `[ppo]`: rollouts and the PPO update.
    #[serde(rename = "ppo")]
    pub train: PpoConfig,
    /// The policies, by name.
    pub models: BTreeMap<String, PolicyConfig>,
}

experiment_file!(
    RlConfig,
    "RL experiment",
    PolicyConfig,
    EnvConfig,
    PpoConfig
);

/// Whether config text is an RL experiment (`[task] kind = "rl"`).
pub fn is_rl_config(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| {
        t.get("task")
            .and_then(|task| task.get("kind"))
            .and_then(|kind| kind.as_str())
            == Some("rl")
    })
}

impl RlConfig {
    /// Check every table; errors name the field (`env.length`, `ppo.minibatches`,
    /// `models.feedback.span`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.run.validate()?;
        self.optim.validate()?;
        let env_err = |e: EnvConfigError| ConfigError::field(format!("env.{}", e.field), e.message);
        self.data.validate().map_err(env_err)?;
        self.train
            .validate(self.data.n_envs)
            .map_err(|e| ConfigError::field(e.field, e.message))?;
        if self.models.is_empty() {
            return Err(ConfigError::field(
                "models",
                "at least one policy is required (e.g. [models.feedback])",
            ));
        }
        let (obs_dim, n_actions) = self.env_sizes();
        for (name, model) in &self.models {
            check_name(&format!("models.{name}"), name)?;
            model
                .with_env(obs_dim, n_actions)
                .validate()
                .map_err(|e| ConfigError::field(format!("models.{name}.{}", e.field), e.message))?;
        }
        Ok(())
    }

    /// Observation length and action count of the environment.
    pub fn env_sizes(&self) -> (usize, usize) {
        let env = self.data.kind.build_one(self.data.seed, 0);
        use crate::env::Env;
        (env.obs_dim(), env.n_actions())
    }

    /// The config of a single run: only policy `name`, sized for the environment.
    pub fn for_policy(&self, name: &str) -> Result<Self, ConfigError> {
        let (obs_dim, n_actions) = self.env_sizes();
        let mut models = single_model(&self.models, name, obs_dim)?;
        for model in models.values_mut() {
            model.n_actions = n_actions;
        }
        Ok(Self {
            models,
            ..self.clone()
        })
    }
}

impl PolicyConfig {
    /// This policy sized for an environment.
    pub fn with_env(&self, obs_dim: usize, n_actions: usize) -> Self {
        Self {
            obs_dim,
            n_actions,
            ..self.clone()
        }
    }
}

/// A policy stands in `[models]` as a language model does; its input size (`obs_dim`) plays
/// the vocabulary's part, filled in from the environment.
impl ModelEntry for PolicyConfig {
    type Module = Policy;
    fn init(&self, device: &burn::tensor::Device) -> Policy {
        PolicyConfig::init(self, device)
    }
    fn vocab_size(&self) -> usize {
        self.obs_dim
    }
    fn set_vocab_size(&mut self, obs_dim: usize) {
        self.obs_dim = obs_dim;
    }
    fn check(&self) -> Result<(), mnemo_models::ConfigError> {
        // `n_actions` is filled in with `obs_dim` by `for_policy`; a table check sees neither.
        let sized = match self.n_actions {
            0 => self.with_env(self.obs_dim.max(1), 2),
            _ => self.clone(),
        };
        sized.validate()
    }
}
