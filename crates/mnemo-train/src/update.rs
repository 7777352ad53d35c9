//! The optimizer step, written once: clip the global gradient norm, then one Adam(W) update.
//!
//! The trainer, `mnemo compare-backends` and `mnemo bench` all update weights through
//! [`apply_update`], so a benchmark times what training runs.
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};

use crate::clip::clip_global_norm;

/// Rescale `grads` so that their global norm over `model`'s parameters is at most `max_norm`
/// (0 = no clipping), then take one step of `optimizer` with learning rate `lr`.
///
/// Returns the updated model and the gradient norm before clipping.
pub fn apply_update<M: Module>(
    optimizer: &mut ModuleOptimizer,
    model: M,
    grads: GradientsParams,
    lr: f64,
    max_norm: f64,
) -> (M, f64) {
    let (grads, norm) = clip_global_norm(&model, grads, max_norm);
    (optimizer.step(lr, model, grads), norm)
}
