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
            let model = model.with_env(obs_dim, n_actions);
            model
                .validate()
                .map_err(|e| ConfigError::field(format!("models.{name}.{}", e.field), e.message))?;
            if let Some(memory) = mnemo_train::memory::machine_memory() {
                self.check_memory(name, &model, memory)?;
            }
        }
        Ok(())
    }

    /// Refuse, before anything is allocated, a policy whose training would not fit in
    /// `memory` bytes: parameters with their gradient and Adam moments (16 bytes each), and the
    /// activations an update keeps for backprop (~16 floats per layer, width and step of
    /// every row of a minibatch over its rollout and span). The error names the field whose
    /// term is larger.
    fn check_memory(
        &self,
        name: &str,
        model: &PolicyConfig,
        memory: f64,
    ) -> Result<(), ConfigError> {
        let rows = (self.data.n_envs / self.train.minibatches.max(1)) as f64;
        let (l, span) = (model.n_layers as f64, model.span as f64);
        let io = (model.obs_dim + model.n_actions + 1) as f64;
        // (parameter and optimizer bytes, activation bytes) for width d, d_ff f, rollout t.
        let bytes = |d: f64, f: f64, t: f64| {
            let params = l * (4.0 * d * d + 2.0 * d * f) + d * io;
            (16.0 * params, 64.0 * rows * t * (span + 1.0) * l * d.max(f))
        };
        let (d, f, t) = (
            model.d_model as f64,
            model.d_ff as f64,
            self.train.rollout_len as f64,
        );
        let (param_bytes, activation_bytes) = bytes(d, f, t);
        if param_bytes + activation_bytes <= memory {
            return Ok(());
        }
        // Name the field whose reduction to 1 shrinks the estimate most.
        let total = |(p, a): (f64, f64)| p + a;
        let field = [
            (total(bytes(1.0, f, t)), format!("models.{name}.d_model")),
            (total(bytes(d, 1.0, t)), format!("models.{name}.d_ff")),
            (total(bytes(d, f, 1.0)), "ppo.rollout_len".to_string()),
        ]
        .into_iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, field)| field)
        .expect("three candidates");
        Err(ConfigError::field(
            field,
            format!(
                "training would need about {:.1e} bytes (parameters and optimizer {:.1e}, \
                 activations {:.1e}); this machine has {:.1e}",
                param_bytes + activation_bytes,
                param_bytes,
                activation_bytes,
                memory
            ),
        ))
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
