//! The optimizer step, written once: clip the global gradient norm, then one Adam(W) update.
//!
//! The trainer, `mnemo compare-backends` and `mnemo bench` all update weights through
//! [`apply_update`], so a benchmark times what training runs. The trainer goes through
//! [`checked_update`], the same step with the checks that keep a diverging run from ever saving
//! non-finite weights: a non-finite gradient norm stops before the optimizer is touched, and
//! non-finite weights after the step are reported before anything is written.
//!
//! A step's learning rate is one for all parameters ([`StepLr::All`]) or one per layer group
//! ([`StepLr::Groups`]: ULMFiT's discriminative rates and gradual unfreezing, see
//! [`OptimConfig`](crate::optim::OptimConfig)); a frozen group's gradients are dropped before
//! the norm is taken, so clipping sees only what is trained.
use std::fmt;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::clip::clip_global_norm;
use crate::layer_groups::{LayerGroups, visit_params};

/// The learning rate of one optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepLr<'a> {
    /// The same rate for every parameter.
    All(f64),
    /// One rate per layer group (bottom first); `None` leaves a group frozen.
    Groups(&'a LayerGroups, Vec<Option<f64>>),
}

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

/// What made a training step unusable.
#[derive(Debug, Clone, PartialEq)]
pub enum Divergence {
    /// The batch's loss is NaN or infinite.
    Loss(f64),
    /// The global gradient norm is NaN or infinite (found before the optimizer step).
    GradNorm(f64),
    /// A parameter holds NaN or infinity after the optimizer step; its module path.
    Parameter(String),
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Divergence::Loss(loss) => write!(f, "training loss is {loss} (not finite)"),
            Divergence::GradNorm(norm) => write!(f, "gradient norm is {norm} (not finite)"),
            Divergence::Parameter(name) => write!(
                f,
                "parameter `{name}` is not finite after the optimizer step"
            ),
        }
    }
}

/// [`apply_update`], refusing non-finite gradients and weights.
///
/// A non-finite gradient norm is an error before `optimizer` is touched. Weights that are not
/// finite after the step are an error too; then `optimizer` has taken the step already, so a
/// caller that goes on keeps its own copy from before. Returns the updated model and the
/// gradient norm before clipping.
pub fn checked_update<M: Module>(
    optimizer: &mut ModuleOptimizer,
    model: M,
    grads: GradientsParams,
    lr: &StepLr,
    max_norm: f64,
) -> Result<(M, f64), Divergence> {
    let grads = match lr {
        StepLr::All(_) => grads,
        StepLr::Groups(groups, lrs) => {
            let trained: Vec<bool> = lrs.iter().map(Option::is_some).collect();
            groups.retain(&model, grads, &trained)
        }
    };
    let (grads, norm) = clip_global_norm(&model, grads, max_norm);
    if !norm.is_finite() {
        return Err(Divergence::GradNorm(norm));
    }
    let model = match lr {
        StepLr::All(lr) => optimizer.step(*lr, model, grads),
        StepLr::Groups(groups, lrs) => {
            let parts = groups.split(&model, grads, &vec![true; lrs.len()]);
            let mut model = model;
            for (part, lr) in parts.into_iter().zip(lrs) {
                if let (Some(part), Some(lr)) = (part, lr)
                    && !part.is_empty()
                {
                    model = optimizer.step(*lr, model, part);
                }
            }
            model
        }
    };
    match first_non_finite(&model) {
        Some(name) => Err(Divergence::Parameter(name)),
        None => Ok((model, norm)),
    }
}

/// The module path of the first parameter of `model` holding NaN or infinity, if any.
///
/// One device sync when every weight is finite: `0 * w` summed over all parameters is 0
/// exactly when no weight is NaN or infinite.
pub fn first_non_finite<M: Module>(model: &M) -> Option<String> {
    let zero_times = |value: Tensor<1>| value.detach().mul_scalar(0.0).sum();
    let mut zeros = Vec::new();
    visit_params(model, |_, _, value| zeros.push(zero_times(value)));
    if zeros.is_empty() || Tensor::cat(zeros, 0).sum().into_scalar::<f64>() == 0.0 {
        return None;
    }
    // Something is not finite: find it, by name (only on this rare path, one sync each).
    let mut found = None;
    visit_params(model, |path, _, value| {
        if found.is_none() && zero_times(value).into_scalar::<f64>() != 0.0 {
            found = Some(match path.is_empty() {
                true => "(root)".to_string(),
                false => path.join("."),
            });
        }
    });
    Some(found.unwrap_or_else(|| "(unknown)".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::tensor::TensorData;

    use crate::optim::OptimConfig;
    use crate::test_layers::two;

    #[test]
    fn groups_step_with_their_own_rate_and_frozen_ones_stay() {
        // Adam's first step moves every weight with a non-zero gradient by lr·g/(|g| + eps),
        // i.e. by (almost exactly) its group's rate; a frozen group does not move at all.
        let device = mnemo_backend::test_device().autodiff();
        let model = crate::layer_groups::tests::three_layers(&device);
        let groups = LayerGroups::of(&model);
        assert_eq!(groups.count(), 4);
        let before = model.host_params();
        let x = mnemo_core::seeded::normal([5, 4], 3, &device);
        let grads = GradientsParams::from_grads(model.forward(x).sum().backward(), &model);
        let mut optimizer = OptimConfig::new(1.0).init();
        let lrs = vec![None, Some(1e-3), Some(1e-2), Some(1e-1)];
        let (model, _) = checked_update(
            &mut optimizer,
            model,
            grads,
            &StepLr::Groups(&groups, lrs.clone()),
            0.0,
        )
        .unwrap();
        let after = model.host_params();
        for ((name, group, old), (_, _, new)) in before.iter().zip(&after) {
            let moved = old
                .iter()
                .zip(new)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            match lrs[*group] {
                None => assert_eq!(moved, 0.0, "{name} is frozen"),
                Some(lr) => assert!(
                    (f64::from(moved) - lr).abs() < 1e-3 * lr,
                    "{name}: moved {moved}, rate {lr}"
                ),
            }
        }
    }

    #[test]
    fn finite_weights_pass_and_a_nan_is_named() {
        let mut model = two([[3, 2], [2, 2]]);
        assert_eq!(first_non_finite(&model), None);
        let device = mnemo_backend::test_device();
        let bad = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, f32::NAN, 0.0, 2.0], [2, 2]),
            &device,
        );
        model.second.weight = Param::from_tensor(bad);
        let name = first_non_finite(&model).expect("NaN found");
        assert!(name.contains("second"), "{name}");
        let inf = Tensor::<2>::from_data(TensorData::new(vec![f32::INFINITY; 4], [2, 2]), &device);
        model.second.weight = Param::from_tensor(inf);
        assert!(first_non_finite(&model).is_some());
    }
}
