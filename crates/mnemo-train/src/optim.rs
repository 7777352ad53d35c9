//! The optimizer section of an experiment: Adam(W), learning-rate schedule, clipping.
use burn::optim::{AdamWConfig, ModuleOptimizer};
use serde::{Deserialize, Serialize};

use crate::experiment::ConfigError;

/// What the learning rate does after warmup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrDecay {
    /// Stay at `lr`.
    #[default]
    Constant,
    /// Cosine decay from `lr` to `min_lr` over the remaining steps.
    Cosine,
}

/// `[optim]`: Adam with decoupled weight decay, linear warmup, optional cosine decay, and
/// clipping of the global gradient norm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate (> 0).
    pub lr: f64,
    /// Steps of linear warmup from `lr / warmup_steps` to `lr` (0 = none).
    #[serde(default)]
    pub warmup_steps: u64,
    /// Schedule after warmup.
    #[serde(default)]
    pub decay: LrDecay,
    /// Final learning rate of the cosine decay (`0 <= min_lr <= lr`).
    #[serde(default)]
    pub min_lr: f64,
    /// Maximum global L2 norm of the gradients (0 = no clipping).
    #[serde(default)]
    pub grad_clip: f64,
    /// Adam's first-moment decay, in `[0, 1)`.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Adam's second-moment decay, in `[0, 1)`.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Adam's epsilon (> 0).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled (AdamW) weight decay (>= 0; 0 = plain Adam).
    #[serde(default)]
    pub weight_decay: f64,
}

fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}

impl OptimConfig {
    /// A config with learning rate `lr` and every other field at its default.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            warmup_steps: 0,
            decay: LrDecay::Constant,
            min_lr: 0.0,
            grad_clip: 0.0,
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            weight_decay: 0.0,
        }
    }

    /// Check ranges; errors name the field as `optim.<field>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| {
            Err(ConfigError::field(format!("optim.{field}"), message))
        };
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(
                "lr",
                format!("must be a finite number > 0, got {}", self.lr),
            );
        }
        if !(self.min_lr.is_finite() && (0.0..=self.lr).contains(&self.min_lr)) {
            return bad(
                "min_lr",
                format!("must be in [0, lr = {}], got {}", self.lr, self.min_lr),
            );
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return bad(
                "grad_clip",
                format!("must be >= 0 (0 = off), got {}", self.grad_clip),
            );
        }
        for (field, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return bad(field, format!("must be in [0, 1), got {beta}"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", format!("must be > 0, got {}", self.eps));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                format!("must be >= 0, got {}", self.weight_decay),
            );
        }
        Ok(())
    }

    /// The optimizer (clipping is applied by the trainer, over the global norm).
    pub fn init(&self) -> ModuleOptimizer {
        AdamWConfig::new()
            .with_beta_1(self.beta1 as f32)
            .with_beta_2(self.beta2 as f32)
            .with_epsilon(self.eps as f32)
            .with_weight_decay(self.weight_decay as f32)
            .init()
    }

    /// The learning rate of optimizer step `step` (1-based) out of `total_steps`.
    pub fn lr_at(&self, step: u64, total_steps: u64) -> f64 {
        let step = step.max(1);
        if step <= self.warmup_steps {
            return self.lr * step as f64 / self.warmup_steps as f64;
        }
        match self.decay {
            LrDecay::Constant => self.lr,
            LrDecay::Cosine => {
                let span = total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.min_lr + (self.lr - self.min_lr) * cosine
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_linear_then_constant() {
        let c = OptimConfig {
            warmup_steps: 4,
            ..OptimConfig::new(1.0)
        };
        let lrs: Vec<f64> = (1..=6).map(|s| c.lr_at(s, 6)).collect();
        assert_eq!(lrs, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn cosine_reaches_min_lr_at_the_end() {
        let c = OptimConfig {
            warmup_steps: 2,
            decay: LrDecay::Cosine,
            min_lr: 0.1,
            ..OptimConfig::new(1.0)
        };
        assert_eq!(c.lr_at(2, 12), 1.0);
        assert!((c.lr_at(7, 12) - 0.55).abs() < 1e-12);
        assert!((c.lr_at(12, 12) - 0.1).abs() < 1e-12);
        assert!(c.lr_at(5, 12) > c.lr_at(6, 12));
    }

    #[test]
    fn validate_names_the_field() {
        let err = OptimConfig::new(0.0).validate().unwrap_err();
        assert_eq!(err.field.as_deref(), Some("optim.lr"));
        let err = OptimConfig {
            beta2: 1.0,
            ..OptimConfig::new(1e-3)
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("optim.beta2"));
        assert!(OptimConfig::new(1e-3).validate().is_ok());
    }
}
