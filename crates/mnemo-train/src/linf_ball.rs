//! Constrained fine-tuning: every weight kept within an ℓ∞ ball around the weights a run
//! started from.
//!
//! Zhu, Rawat, Zaheer, Bhojanapalli, Li, Yu, Kumar 2020, "Modifying Memories in Transformer
//! Models": fine-tune under `‖θ − θ₀‖∞ ≤ δ`, enforced by projected gradient descent: after
//! each optimizer step, `θ ← min(max(θ, θ₀ − δ), θ₀ + δ)` elementwise. `optim.max_change = δ`
//! turns it on ([`OptimConfig`](crate::optim::OptimConfig)); θ₀ are the weights of the run's
//! first step (the pretrained weights for `mnemo finetune`), saved beside the checkpoint so a
//! resumed run keeps the same centre.
use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::Tensor;

use crate::layer_groups::{param_paths, visit_params};

/// The ball `‖θ − θ₀‖∞ ≤ radius` around a model's starting weights.
#[derive(Debug, Clone)]
pub struct LinfBall {
    radius: f64,
    /// θ₀ − δ and θ₀ + δ of each parameter of the trained model, flattened (plain tensors,
    /// outside any autodiff graph), by its id.
    bounds: HashMap<ParamId, (Tensor<1>, Tensor<1>)>,
}

impl LinfBall {
    /// The ball of `radius` around `centre`'s weights, for the parameters of `model` (the same
    /// architecture; parameters are paired by module path, so the two may have different
    /// parameter ids, as a model and its reloaded copy do).
    ///
    /// # Panics
    /// If `centre` lacks a parameter path of `model`.
    pub fn around<M: Module>(centre: &M, model: &M, radius: f64) -> Self {
        let values = flat_params(centre);
        let centre_paths: HashMap<String, ParamId> = param_paths(centre)
            .into_iter()
            .map(|(id, path)| (path, id))
            .collect();
        let bounds = param_paths(model)
            .into_iter()
            .map(|(id, path)| {
                let centre_id = centre_paths
                    .get(&path)
                    .unwrap_or_else(|| panic!("max_change: the start weights lack `{path}`"));
                let c = values[centre_id].clone();
                (id, (c.clone().sub_scalar(radius), c.add_scalar(radius)))
            })
            .collect();
        Self { radius, bounds }
    }

    /// The radius δ.
    pub fn radius(&self) -> f64 {
        self.radius
    }

    /// `model` with every weight projected into the ball (trainability kept).
    pub fn project<M: Module>(&self, model: M) -> M {
        model.map(&mut Project { ball: self })
    }
}

/// The mapper behind [`LinfBall::project`].
struct Project<'a> {
    ball: &'a LinfBall,
}

impl ModuleMapper for Project<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((low, high)) = self.ball.bounds.get(&param.id) else {
            return param;
        };
        param.map(|theta| {
            // On the plain tensors: the projected weights are fresh leaves, not graph nodes.
            let dims = theta.dims();
            let (trained, autodiff) = (theta.is_require_grad(), theta.is_autodiff());
            let theta = theta.inner();
            let device = theta.device();
            let low = low.clone().to_device(&device).reshape(dims);
            let high = high.clone().to_device(&device).reshape(dims);
            let projected = theta.max_pair(low).min_pair(high);
            match autodiff {
                true => projected.autodiff().set_require_grad(trained),
                false => projected,
            }
        })
    }
}

/// Every float parameter of `model`, as plain flattened tensors, by id.
fn flat_params<M: Module>(model: &M) -> HashMap<ParamId, Tensor<1>> {
    let mut flat = HashMap::new();
    visit_params(model, |_, id, value| {
        flat.insert(id, value.inner());
    });
    flat
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::GradientsParams;

    use crate::layer_groups::tests::three_layers;
    use crate::optim::OptimConfig;
    use crate::update::{StepLr, checked_update};

    /// The largest |θ − θ₀| over all weights of two models' host parameters.
    fn max_change(a: &[(String, usize, Vec<f32>)], b: &[(String, usize, Vec<f32>)]) -> f32 {
        a.iter()
            .zip(b)
            .flat_map(|(x, y)| x.2.iter().zip(&y.2).map(|(p, q)| (p - q).abs()))
            .fold(0.0, f32::max)
    }

    #[test]
    fn training_stays_inside_the_ball_and_reaches_its_edge() {
        let device = mnemo_backend::test_device().autodiff();
        let start = three_layers(&device);
        let start_values = start.host_params();
        let radius = 0.05;
        // The reloaded copy has other parameter ids: pairing is by path.
        let mut model = start.clone().map(&mut Renew);
        let ball = LinfBall::around(&start, &model, radius);
        let mut free = start.clone();
        let mut opt_ball = OptimConfig::new(0.02).init();
        let mut opt_free = OptimConfig::new(0.02).init();
        let x = mnemo_core::seeded::normal([6, 4], 7, &device);
        for _ in 0..10 {
            let g = GradientsParams::from_grads(model.forward(x.clone()).sum().backward(), &model);
            model = checked_update(&mut opt_ball, model, g, &StepLr::All(0.02), 0.0)
                .unwrap()
                .0;
            model = ball.project(model);
            let g = GradientsParams::from_grads(free.forward(x.clone()).sum().backward(), &free);
            free = checked_update(&mut opt_free, free, g, &StepLr::All(0.02), 0.0)
                .unwrap()
                .0;
        }
        // Unconstrained, ten Adam steps of 0.02 leave the ball; projected, nothing does, and
        // the constraint is active (some weight sits on the edge).
        assert!(max_change(&free.host_params(), &start_values) > 0.1);
        let change = max_change(&model.host_params(), &start_values);
        assert!(change <= radius as f32 * (1.0 + 1e-6), "{change}");
        assert!(change >= radius as f32 * (1.0 - 1e-6), "{change}");
        // Still trainable: the projection keeps the gradient flag.
        assert!(model.head.weight.val().is_require_grad());
    }

    /// Gives every parameter a fresh id (as a model reloaded from a checkpoint has).
    struct Renew;
    impl ModuleMapper for Renew {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let value = param.val();
            Param::initialized(ParamId::new(), value)
        }
    }
}
