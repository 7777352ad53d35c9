//! The optimizer section of an experiment: Adam(W), learning-rate schedule, clipping, and the
//! fine-tuning controls of ULMFiT and of constrained fine-tuning.
//!
//! - Slanted triangular learning rates (Howard & Ruder 2018, "Universal Language Model
//!   Fine-tuning for Text Classification", eq. 3): with `T` steps, `cut = ⌊T·cut_frac⌋`,
//!   `p = t/cut` for `t < cut` and `p = 1 − (t − cut)/(cut·(1/cut_frac − 1))` after, the rate
//!   is `η_t = η_max·(1 + p·(ratio − 1))/ratio`.
//! - Discriminative fine-tuning (same paper, §3.2): layer group `g` of `G` (0 = embedding,
//!   `G − 1` = output head; see [`LayerGroups`](crate::layer_groups::LayerGroups)) trains with
//!   `η / layer_lr_decay^(G − 1 − g)` (ULMFiT uses 2.6).
//! - Gradual unfreezing (§3.3): only the top group trains for the first `unfreeze_every`
//!   steps, then one more group from the top every `unfreeze_every` steps.
//! - Constrained fine-tuning (Zhu et al. 2020, "Modifying Memories in Transformer Models"):
//!   after every update each weight is projected back into `[θ₀ − δ, θ₀ + δ]` around the
//!   weights the run started from (`max_change = δ`, an ℓ∞ ball).
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use crate::experiment::ConfigError;
use crate::host_adamw::HostAdamW;

/// What the learning rate does after warmup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrDecay {
    /// Stay at `lr`.
    #[default]
    Constant,
    /// Cosine decay from `lr` to `min_lr` over the remaining steps.
    Cosine,
    /// ULMFiT's slanted triangular rate over the whole run (`cut_frac`, `ratio`); no warmup.
    SlantedTriangular,
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
    /// Slanted triangular schedule: the share of the steps spent increasing, in (0, 1).
    #[serde(default = "default_cut_frac")]
    pub cut_frac: f64,
    /// Slanted triangular schedule: how much smaller the lowest rate is than `lr` (>= 1).
    #[serde(default = "default_ratio")]
    pub ratio: f64,
    /// Discriminative fine-tuning: each layer group below the top trains with the rate of the
    /// group above divided by this (>= 1; 1 = one rate for all; ULMFiT: 2.6).
    #[serde(default = "default_layer_lr_decay")]
    pub layer_lr_decay: f64,
    /// Gradual unfreezing: steps between unfreezing one more layer group from the top
    /// (0 = everything trains from the start).
    #[serde(default)]
    pub unfreeze_every: u64,
    /// Constrained fine-tuning: the largest change of any weight from the run's starting
    /// weights, an ℓ∞ radius (0 = unconstrained).
    #[serde(default)]
    pub max_change: f64,
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
fn default_cut_frac() -> f64 {
    0.1
}
fn default_ratio() -> f64 {
    32.0
}
fn default_layer_lr_decay() -> f64 {
    1.0
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
            cut_frac: default_cut_frac(),
            ratio: default_ratio(),
            layer_lr_decay: default_layer_lr_decay(),
            unfreeze_every: 0,
            max_change: 0.0,
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
        if !(self.cut_frac > 0.0 && self.cut_frac < 1.0) {
            return bad(
                "cut_frac",
                format!("must be in (0, 1), got {}", self.cut_frac),
            );
        }
        if !(self.ratio.is_finite() && self.ratio >= 1.0) {
            return bad("ratio", format!("must be >= 1, got {}", self.ratio));
        }
        if self.decay == LrDecay::SlantedTriangular && self.warmup_steps > 0 {
            return bad(
                "warmup_steps",
                "must be 0 with decay = \"slanted_triangular\" (its rise is the warmup)".into(),
            );
        }
        if !(self.layer_lr_decay.is_finite() && self.layer_lr_decay >= 1.0) {
            return bad(
                "layer_lr_decay",
                format!("must be >= 1 (1 = off), got {}", self.layer_lr_decay),
            );
        }
        if !(self.max_change.is_finite() && self.max_change >= 0.0) {
            return bad(
                "max_change",
                format!("must be >= 0 (0 = off), got {}", self.max_change),
            );
        }
        Ok(())
    }

    /// The optimizer (clipping is applied by the trainer, over the global norm).
    ///
    /// burn's AdamW arithmetic and state, updating each parameter in one pass on CPU backends
    /// ([`HostAdamW`]).
    pub fn init(&self) -> ModuleOptimizer {
        ModuleOptimizer::from(HostAdamW::new(
            self.beta1 as f32,
            self.beta2 as f32,
            self.eps as f32,
            self.weight_decay as f32,
        ))
    }

    /// Whether the update treats layer groups differently (discriminative rates or gradual
    /// unfreezing).
    pub fn per_group(&self) -> bool {
        self.layer_lr_decay != 1.0 || self.unfreeze_every > 0
    }

    /// The learning rate of each of `groups` layer groups (bottom first) at optimizer step
    /// `step` (1-based) out of `total_steps`; `None` for a group still frozen.
    pub fn group_lrs(&self, step: u64, total_steps: u64, groups: usize) -> Vec<Option<f64>> {
        let lr = self.lr_at(step, total_steps);
        let open = match self.unfreeze_every {
            0 => groups,
            every => 1 + ((step.max(1) - 1) / every) as usize,
        };
        (0..groups)
            .map(|g| {
                let above = groups - 1 - g;
                (above < open).then(|| lr / self.layer_lr_decay.powi(above as i32))
            })
            .collect()
    }

    /// The learning rate of optimizer step `step` (1-based) out of `total_steps`.
    pub fn lr_at(&self, step: u64, total_steps: u64) -> f64 {
        let step = step.max(1);
        if self.decay == LrDecay::SlantedTriangular {
            return self.slanted_triangular(step, total_steps);
        }
        if step <= self.warmup_steps {
            return self.lr * step as f64 / self.warmup_steps as f64;
        }
        match self.decay {
            LrDecay::Constant | LrDecay::SlantedTriangular => self.lr,
            LrDecay::Cosine => {
                let span = total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.min_lr + (self.lr - self.min_lr) * cosine
            }
        }
    }
}

impl OptimConfig {
    /// ULMFiT's eq. 3 at step `t` (1-based, counted from 0 inside) of `total` steps.
    fn slanted_triangular(&self, step: u64, total: u64) -> f64 {
        let t = step.max(1) as f64 - 1.0;
        let cut = (total as f64 * self.cut_frac).floor().max(1.0);
        let p = match t < cut {
            true => t / cut,
            false => (1.0 - (t - cut) / (cut * (1.0 / self.cut_frac - 1.0))).max(0.0),
        };
        self.lr * (1.0 + p * (self.ratio - 1.0)) / self.ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slanted_triangular_follows_ulmfit_eq_3() {
        // T = 1000, cut_frac 0.1, ratio 32, η_max 0.01 (the paper's values).
        let c = OptimConfig {
            decay: LrDecay::SlantedTriangular,
            ..OptimConfig::new(0.01)
        };
        // t = 0: p = 0, η = η_max/32; t = cut = 100 (step 101): the peak; t = 999: p = 0.001.
        assert!((c.lr_at(1, 1000) - 0.01 / 32.0).abs() < 1e-15);
        assert!((c.lr_at(51, 1000) - 0.01 * (1.0 + 0.5 * 31.0) / 32.0).abs() < 1e-15);
        assert!((c.lr_at(101, 1000) - 0.01).abs() < 1e-15);
        let p = 1.0 - 899.0 / (100.0 * 9.0);
        assert!((c.lr_at(1000, 1000) - 0.01 * (1.0 + p * 31.0) / 32.0).abs() < 1e-15);
        assert!(c.lr_at(100, 1000) < c.lr_at(101, 1000));
        assert!(c.lr_at(102, 1000) < c.lr_at(101, 1000));
    }

    #[test]
    fn groups_get_discriminative_rates_and_unfreeze_from_the_top() {
        let c = OptimConfig {
            layer_lr_decay: 2.0,
            unfreeze_every: 10,
            ..OptimConfig::new(0.8)
        };
        assert!(c.per_group());
        assert_eq!(c.group_lrs(1, 100, 4), [None, None, None, Some(0.8)]);
        assert_eq!(c.group_lrs(10, 100, 4), [None, None, None, Some(0.8)]);
        assert_eq!(c.group_lrs(11, 100, 4), [None, None, Some(0.4), Some(0.8)]);
        assert_eq!(
            c.group_lrs(31, 100, 4),
            [Some(0.1), Some(0.2), Some(0.4), Some(0.8)]
        );
        assert_eq!(c.group_lrs(99, 100, 4), c.group_lrs(31, 100, 4));
        assert!(!OptimConfig::new(0.1).per_group());
        assert_eq!(OptimConfig::new(0.1).group_lrs(1, 5, 2), [Some(0.1); 2]);
    }

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
        for (config, field) in [
            (
                OptimConfig {
                    layer_lr_decay: 0.5,
                    ..OptimConfig::new(1e-3)
                },
                "optim.layer_lr_decay",
            ),
            (
                OptimConfig {
                    max_change: -1.0,
                    ..OptimConfig::new(1e-3)
                },
                "optim.max_change",
            ),
            (
                OptimConfig {
                    decay: LrDecay::SlantedTriangular,
                    warmup_steps: 5,
                    ..OptimConfig::new(1e-3)
                },
                "optim.warmup_steps",
            ),
        ] {
            assert_eq!(config.validate().unwrap_err().field.as_deref(), Some(field));
        }
    }
}
