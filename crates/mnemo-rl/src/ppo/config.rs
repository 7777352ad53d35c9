//! `[ppo]` of an RL experiment: rollout length, epochs, minibatches and the loss coefficients.
use serde::{Deserialize, Serialize};

use mnemo_train::OnNonFinite;

use crate::env::EnvConfigError;

/// The policy-gradient objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// PPO's clipped surrogate `max(−Â·r, −Â·clip(r, 1−ε, 1+ε))`.
    #[default]
    Ppo,
    /// Advantage actor-critic (Mnih et al., 2016, synchronous): `−Â·log π(a|s)`, one update
    /// per rollout (`epochs = 1`, `minibatches = 1`).
    A2c,
}

/// Proximal Policy Optimisation (Schulman et al., 2017) with GAE, as CleanRL's
/// `ppo_atari_lstm.py` runs it: a rollout of T steps of every environment, then `epochs`
/// passes over it in `minibatches` sets of whole environment rows; or A2C on the same
/// rollouts (`algorithm = "a2c"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    /// `"ppo"` (default) or `"a2c"`.
    #[serde(default)]
    pub algorithm: Algorithm,
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
            algorithm: Algorithm::Ppo,
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
        if self.algorithm == Algorithm::A2c && (self.epochs, self.minibatches) != (1, 1) {
            let field = if self.epochs != 1 {
                "epochs"
            } else {
                "minibatches"
            };
            return err(
                field,
                "A2C makes one update per rollout over all environments: set ppo.epochs = 1 \
                 and ppo.minibatches = 1"
                    .into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A2C with PPO's default 4 epochs × 4 minibatches is refused, naming `ppo.epochs`; with
    /// one of each it validates.
    #[test]
    fn a2c_needs_one_update_per_rollout() {
        let a2c = PpoConfig {
            algorithm: Algorithm::A2c,
            ..PpoConfig::new(8)
        };
        assert_eq!(a2c.validate(4).unwrap_err().field, "ppo.epochs");
        let one = PpoConfig {
            epochs: 1,
            ..a2c.clone()
        };
        assert_eq!(one.validate(4).unwrap_err().field, "ppo.minibatches");
        let ok = PpoConfig {
            minibatches: 1,
            ..one
        };
        assert_eq!(ok.validate(4), Ok(()));
    }
}
