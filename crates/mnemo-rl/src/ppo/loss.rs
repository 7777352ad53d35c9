//! The PPO objective of one minibatch:
//!
//! ```text
//! r     = exp(log π(a|s) − log π_old(a|s))
//! L_pg  = mean( max(−Â·r, −Â·clip(r, 1−ε, 1+ε)) )        Â normalised per minibatch
//!         (A2C: mean( −Â·log π(a|s) ), the same gradient at r = 1 without the clip)
//! L_v   = mean( ½ (V(s) − R)² )
//! H     = mean( −Σ_a π(a|s) log π(a|s) )
//! loss  = L_pg + c_v·L_v − c_H·H
//! ```
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

use super::{Algorithm, PpoConfig};

/// What a minibatch's loss consists of, read back once per update.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PpoStats {
    /// The total loss.
    pub loss: f64,
    /// Clipped policy-gradient loss `L_pg`.
    pub policy_loss: f64,
    /// Value loss `L_v`.
    pub value_loss: f64,
    /// Mean entropy `H` of the policy.
    pub entropy: f64,
    /// Estimate of KL(π_old ‖ π): `mean((r − 1) − log r)`.
    pub approx_kl: f64,
    /// Fraction of samples whose ratio was clipped.
    pub clip_fraction: f64,
}

/// The targets of a minibatch of M samples, host-side.
#[derive(Debug, Clone, Copy)]
pub struct PpoTargets<'a> {
    /// Actions taken.
    pub actions: &'a [usize],
    /// Their log-probabilities when taken.
    pub old_log_probs: &'a [f32],
    /// GAE advantages.
    pub advantages: &'a [f32],
    /// Value targets (advantage + value at collection).
    pub returns: &'a [f32],
}

/// The loss (a scalar on the device of `logits`, ready for `backward`) and its parts.
///
/// # Shapes
/// - logits: `[M, A]`; values: `[M]`; every target slice: `M`
pub fn ppo_loss(
    logits: Tensor<2>,
    values: Tensor<1>,
    targets: PpoTargets<'_>,
    config: &PpoConfig,
) -> (Tensor<1>, PpoStats) {
    let [m, _a] = logits.dims();
    let device = logits.device();
    let host = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [m]), &device);
    let adv = normalized(targets.advantages, config.normalize_advantages);
    let adv = host(adv);
    let old = host(targets.old_log_probs.to_vec());
    let returns = host(targets.returns.to_vec());
    let actions: Vec<i64> = targets.actions.iter().map(|&a| a as i64).collect();
    let actions = Tensor::<2, Int>::from_data(TensorData::new(actions, [m, 1]), &device);

    let log_p = log_softmax(logits, 1);
    let entropy = (log_p.clone().exp() * log_p.clone())
        .sum_dim(1)
        .neg()
        .mean();
    let new = log_p.gather(1, actions).reshape([m]);
    let log_ratio = new.clone() - old;
    let ratio = log_ratio.clone().exp();
    let eps = config.clip as f64;
    let policy_loss = match config.algorithm {
        Algorithm::Ppo => {
            let unclipped = adv.clone().neg() * ratio.clone();
            let clipped = adv.neg() * ratio.clone().clamp(1.0 - eps, 1.0 + eps);
            unclipped.max_pair(clipped).mean()
        }
        Algorithm::A2c => (adv.neg() * new).mean(),
    };
    let value_loss = (values - returns).powf_scalar(2.0).mean().mul_scalar(0.5);
    let loss = policy_loss.clone() + value_loss.clone().mul_scalar(config.value_coef as f64)
        - entropy.clone().mul_scalar(config.entropy_coef as f64);

    let ratio = ratio.detach();
    let approx_kl = ((ratio.clone() - 1.0) - log_ratio.detach()).mean();
    let clip_fraction = (ratio - 1.0).abs().greater_elem(eps).float().mean();
    let parts = Tensor::cat(
        vec![
            loss.clone().detach(),
            policy_loss.detach(),
            value_loss.detach(),
            entropy.detach(),
            approx_kl,
            clip_fraction,
        ],
        0,
    )
    .into_data()
    .convert::<f64>()
    .try_into_vec::<f64>()
    .expect("f64 values");
    let stats = PpoStats {
        loss: parts[0],
        policy_loss: parts[1],
        value_loss: parts[2],
        entropy: parts[3],
        approx_kl: parts[4],
        clip_fraction: parts[5],
    };
    (loss, stats)
}

/// `advantages` shifted to mean 0 and scaled to standard deviation 1 (when `normalize` and
/// there are at least two), as CleanRL does per minibatch.
pub fn normalized(advantages: &[f32], normalize: bool) -> Vec<f32> {
    let n = advantages.len();
    if !normalize || n < 2 {
        return advantages.to_vec();
    }
    let mean = advantages.iter().map(|&a| a as f64).sum::<f64>() / n as f64;
    let var = advantages
        .iter()
        .map(|&a| (a as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    let scale = 1.0 / (var.sqrt() + 1e-8);
    advantages
        .iter()
        .map(|&a| ((a as f64 - mean) * scale) as f32)
        .collect()
}
