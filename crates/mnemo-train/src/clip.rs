//! Gradient clipping by the global norm over all parameters.
//!
//! burn's `GradientClipping::Norm` clips each parameter tensor by its own norm; the usual
//! Transformer recipe (and the Feedback Transformer's official code, via
//! `torch.nn.utils.clip_grad_norm_`) rescales *all* gradients together so that their joint
//! L2 norm is at most `max_norm`. This is that.
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Sums the squared norms of every parameter's gradient.
struct SquaredNorms<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.parts.push(grad.square().sum());
        }
    }
}

/// Multiplies every parameter's gradient by one factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, grad * self.factor);
        }
    }
}

/// The global L2 norm of the gradients of `module`'s parameters (one device sync).
pub fn global_grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut visitor = SquaredNorms {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut visitor);
    if visitor.parts.is_empty() {
        return 0.0;
    }
    Tensor::cat(visitor.parts, 0)
        .sum()
        .into_scalar::<f64>()
        .sqrt()
}

/// Rescale `grads` so that their global norm is at most `max_norm`; returns the norm before
/// clipping. A `max_norm` of 0 (or less) turns clipping off (the norm is still returned).
pub fn clip_global_norm<M: Module>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, f64) {
    let norm = global_grad_norm(module, &grads);
    if max_norm > 0.0 && norm.is_finite() && norm > max_norm {
        let mut visitor = Scale {
            grads: &mut grads,
            factor: max_norm / (norm + 1e-6),
        };
        module.visit(&mut visitor);
    }
    (grads, norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    use crate::test_layers::{Two, two};

    /// The gradient of `model.first`'s weight in `grads`, on the host.
    fn a_weight(model: &Two, grads: &GradientsParams) -> Vec<f32> {
        grads
            .get::<2>(model.first.weight.id)
            .unwrap()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
    }

    fn grads_of(model: &Two, scale: f32) -> GradientsParams {
        let device = model.first.weight.device();
        let x = Tensor::<2>::random([3, 4], Distribution::Default, &device);
        let y = (model.first.forward(x.clone()) + model.second.forward(x)) * scale;
        GradientsParams::from_grads(y.sum().backward(), model)
    }

    fn host_norm(model: &Two, grads: &GradientsParams) -> f64 {
        let mut total = 0.0f64;
        let tensors: Vec<TensorData> = vec![
            grads.get::<2>(model.first.weight.id).unwrap().into_data(),
            grads
                .get::<1>(model.first.bias.as_ref().unwrap().id)
                .unwrap()
                .into_data(),
            grads.get::<2>(model.second.weight.id).unwrap().into_data(),
            grads
                .get::<1>(model.second.bias.as_ref().unwrap().id)
                .unwrap()
                .into_data(),
        ];
        for t in tensors {
            total += t
                .iter::<f32>()
                .map(|v| f64::from(v) * f64::from(v))
                .sum::<f64>();
        }
        total.sqrt()
    }

    #[test]
    fn clips_jointly_and_keeps_directions() {
        let model = two([[4, 2], [4, 2]]);
        let grads = grads_of(&model, 10.0);
        let before = host_norm(&model, &grads);
        let a_before = a_weight(&model, &grads);

        let (clipped, norm) = clip_global_norm(&model, grads, 1.0);
        assert!((norm - before).abs() < 1e-3 * before, "{norm} vs {before}");
        assert!(before > 1.0, "test needs a norm above the threshold");
        assert!((host_norm(&model, &clipped) - 1.0).abs() < 1e-4);
        let a_after = a_weight(&model, &clipped);
        let ratio = (1.0 / (before + 1e-6)) as f32;
        for (x, y) in a_before.iter().zip(&a_after) {
            assert!((x * ratio - y).abs() < 1e-5);
        }
    }

    #[test]
    fn leaves_small_gradients_and_zero_threshold_alone() {
        let model = two([[4, 2], [4, 2]]);
        let grads = grads_of(&model, 1e-3);
        let before = host_norm(&model, &grads);
        let (clipped, _) = clip_global_norm(&model, grads, 1.0);
        assert!((host_norm(&model, &clipped) - before).abs() < 1e-9);

        let grads = grads_of(&model, 100.0);
        let before = host_norm(&model, &grads);
        let (clipped, _) = clip_global_norm(&model, grads, 0.0);
        assert!((host_norm(&model, &clipped) - before).abs() < 1e-6 * before);
    }
}
