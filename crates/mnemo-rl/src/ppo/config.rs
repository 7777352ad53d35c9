//! `[ppo]` of an RL experiment: rollout length, epochs, minibatches and the loss coefficients.
use serde::{Deserialize, Serialize};

use mnemo_train::OnNonFinite;

use crate::env::EnvConfigError;

/// Proximal Policy Optimisation (Schulman et al., 2017) with GAE, as CleanRL's
/// `ppo_atari_lstm.py` runs it: a rollout of T steps of every environment, then `epochs`
/// passes over it in `minibatches` sets of whole environment rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    /// Steps T per rollout (also the truncated-backprop length).
    pub rollout_len: usize,
    /// Passes over each rollout.
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    /// Minibatches per pass (each a set of whole environment rows; must divide `n_envs`).
    #[serde(default = "defaults::minibatches")]
    pub minibatches: usize,
    /// Discount γ.
    #[serde(default = "defaults::gamma")]
    pub gamma: f32,
    /// GAE λ.
    #[serde(default = "defaults::gae_lambda")]
    pub gae_lambda: f32,
    /// Clip range ε of the probability ratio.
    #[serde(default = "defaults::clip")]
    pub clip: f32,
    /// Weight of the value loss.
    #[serde(default = "defaults::value_coef")]
    pub value_coef: f32,
    /// Weight of the entropy bonus.
    #[serde(default = "defaults::entropy_coef")]
    pub entropy_coef: f32,
    /// Normalise advantages within each minibatch.
    #[serde(default = "defaults::yes")]
    pub normalize_advantages: bool,
    /// Episodes run to evaluate a policy on the valid and test environments.
    #[serde(default = "defaults::eval_episodes")]
    pub eval_episodes: usize,
    /// What an update with a non-finite loss, gradient norm or weights does.
    #[serde(default)]
    pub on_nonfinite: OnNonFinite,
}

mod defaults {
    pub fn epochs() -> usize {
        4
    }
    pub fn minibatches() -> usize {
        4
    }
    pub fn gamma() -> f32 {
        0.99
    }
    pub fn gae_lambda() -> f32 {
        0.95
    }
    pub fn clip() -> f32 {
        0.2
    }
    pub fn value_coef() -> f32 {
        0.5
    }
    pub fn entropy_coef() -> f32 {
        0.01
    }
    pub fn yes() -> bool {
        true
    }
    pub fn eval_episodes() -> usize {
        100
    }
}

impl PpoConfig {
    /// Rollouts of `rollout_len` steps, everything else at its default.
    pub fn new(rollout_len: usize) -> Self {
        Self {
            rollout_len,
            epochs: defaults::epochs(),
            minibatches: defaults::minibatches(),
            gamma: defaults::gamma(),
            gae_lambda: defaults::gae_lambda(),
            clip: defaults::clip(),
            value_coef: defaults::value_coef(),
            entropy_coef: defaults::entropy_coef(),
            normalize_advantages: true,
            eval_episodes: defaults::eval_episodes(),
            on_nonfinite: OnNonFinite::Stop,
        }
    }

    /// Optimizer steps per rollout.
    pub fn updates_per_rollout(&self) -> usize {
        self.epochs * self.minibatches
    }

    /// Check every field against `n_envs`; errors are named `ppo.<field>`.
    pub fn validate(&self, n_envs: usize) -> Result<(), EnvConfigError> {
        let err = |field: &str, msg: String| Err(EnvConfigError::new(&format!("ppo.{field}"), msg));
        if self.rollout_len == 0 {
            return err("rollout_len", "must be >= 1".into());
        }
        if self.eval_episodes == 0 {
            return err("eval_episodes", "must be >= 1".into());
        }
        if self.epochs == 0 {
            return err("epochs", "must be >= 1".into());
        }
        if self.minibatches == 0 || !n_envs.is_multiple_of(self.minibatches) {
            return err(
                "minibatches",
                format!("must be >= 1 and divide env.n_envs = {n_envs}"),
            );
        }
        for (field, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return err(field, format!("{v} is outside 0..=1"));
            }
        }
        for (field, v) in [
            ("clip", self.clip),
            ("value_coef", self.value_coef),
            ("entropy_coef", self.entropy_coef),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return err(field, format!("{v} must be finite and >= 0"));
            }
        }
        Ok(())
    }
}
