//! Admin: adaptive model initialization of post-norm residual blocks.
//!
//! Liu et al., "Understanding the Difficulty of Training Transformers" (EMNLP 2020), Sec. 5.
//! Each post-norm sublayer i scales its residual branch by a learned vector `ω_i` [D]:
//!
//! ```text
//! b_i = x_{i-1} ⊙ ω_i + f_i(x_{i-1}),    x_i = LN(b_i)
//! ```
//!
//! `ω_i` is set once, before training, by profiling a forward pass on one batch so that the
//! residual branch carries as much variance as everything summed into it before: the paper
//! writes `ω_i = √(Σ_{j<i} Var[f_j(x_{j-1})])`. mnemo implements the form of the official code
//! (`Transformer-Clinic`, `fairseq/modules/transformer_layer.py`, `init_type =
//! "adaptive-profiling"`), which makes that sum concrete, sublayer by sublayer, in one pass:
//!
//! ```text
//! r_0 = 1
//! ω_i = r_{i-1}                                   (the whole vector, set before b_i is formed)
//! r_i = √(Var[x_{i-1} ⊙ ω_i] + Var[f_i(x_{i-1})])
//! ```
//!
//! Var is the population variance over every element of the batch (numpy's `np.var` of the
//! flattened tensor). Since each `x_{i-1}` for i > 1 is a LayerNorm output (variance ≈ 1 at
//! init), `Var[x_{i-1} ⊙ ω_i] ≈ ω_i²` and so `ω_{i+1}² ≈ ω_i² + Var[f_i] ≈ Var[x_0] +
//! Σ_{j≤i} Var[f_j]`: the paper's sum, with the embedding's variance as its first term (so
//! that `ω_1 = 1`, not 0). The pass goes on with each `ω_i` just set, so later sublayers are
//! profiled as the initialised model will run.
//!
//! Before profiling `ω = 1` and the block is exactly post-norm `LN(x + f(x))`. `ω` is an
//! ordinary trained parameter afterwards (saved in checkpoints, so a resume does not profile).
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor, TensorData};

use crate::host::{self, to_vec};
use crate::norm::NormPlacement;
use crate::residual::Residual;

/// The running ratio `r` of one Admin profiling pass through a stack (see the
/// [module docs](self)); `r_0 = 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdminProfile {
    /// `r_{i-1}`: the ω the next profiled sublayer gets.
    pub ratio: f64,
}

impl Default for AdminProfile {
    fn default() -> Self {
        Self { ratio: 1.0 }
    }
}

/// Admin's `ω` of one post-norm residual sublayer.
#[derive(Module, Debug)]
pub struct AdminScale {
    /// `ω` [D]: the residual branch's per-feature scale; 1 until profiled.
    pub omega: Param<Tensor<1>>,
}

impl AdminScale {
    /// `ω = 1` over `d_model` features (the block equals plain post-norm).
    pub fn new(d_model: usize, device: &Device) -> Self {
        Self {
            omega: Initializer::Ones.init([d_model], device),
        }
    }

    /// `LN(x ⊙ ω + f(x))`, LN being `residual`'s norm.
    ///
    /// # Panics
    /// If `residual` is not post-norm (`init: admin needs placement = "post"`; configs check
    /// this before building).
    ///
    /// # Shapes
    /// - x: `[..., D]`; `f` maps `[..., D]` to `[..., D]`
    /// - output: `[..., D]`
    pub fn forward<const N: usize>(
        &self,
        residual: &Residual,
        x: Tensor<N>,
        f: impl FnOnce(Tensor<N>) -> Tensor<N>,
    ) -> Tensor<N> {
        let y = f(x.clone());
        self.combine(residual, x, y)
    }

    /// One profiled sublayer: `ω ← r` (every feature), then the output of
    /// [`forward`](Self::forward), and `r ← √(Var[x ⊙ ω] + Var[f(x)])` (see the
    /// [module docs](self)).
    ///
    /// # Shapes
    /// - x: `[..., D]`; `f` maps `[..., D]` to `[..., D]`
    /// - output: `[..., D]`
    pub fn profile<const N: usize>(
        &mut self,
        profile: &mut AdminProfile,
        residual: &Residual,
        x: Tensor<N>,
        f: impl FnOnce(Tensor<N>) -> Tensor<N>,
    ) -> Tensor<N> {
        let ratio = profile.ratio;
        // Same parameter id, device, dtype and gradient requirement; new values.
        self.omega = self.omega.clone().map(|old| {
            let [d] = old.dims();
            Tensor::<1>::from_data(
                TensorData::new(vec![ratio as f32; d], [d]),
                (&old.device(), old.dtype()),
            )
            .set_require_grad(old.is_require_grad())
        });
        let y = f(x.clone());
        let scaled = x.clone() * self.omega.val().unsqueeze::<N>();
        profile.ratio = (variance(scaled) + variance(y.clone())).sqrt();
        self.combine(residual, x, y)
    }

    /// `LN(x ⊙ ω + y)`.
    fn combine<const N: usize>(
        &self,
        residual: &Residual,
        x: Tensor<N>,
        y: Tensor<N>,
    ) -> Tensor<N> {
        assert!(
            residual.placement == NormPlacement::Post,
            "init: admin needs placement = \"post\", got {:?}",
            residual.placement
        );
        residual
            .norm
            .forward(x * self.omega.val().unsqueeze::<N>() + y)
    }
}

/// Population variance of every element of `t` (host, f64).
fn variance<const N: usize>(t: Tensor<N>) -> f64 {
    host::variance(&to_vec(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::norm::NormKind;
    use crate::residual::ResidualConfig;
    use crate::seeded::normal;

    fn post(device: &Device) -> Residual {
        ResidualConfig {
            d_model: 6,
            norm: NormKind::Layer,
            placement: NormPlacement::Post,
        }
        .init(device)
    }

    fn f(h: Tensor<3>) -> Tensor<3> {
        h.clone() * h.mul_scalar(0.7) - 0.3
    }

    #[test]
    fn unprofiled_admin_is_post_norm_exactly() {
        let device = mnemo_backend::test_device();
        let x = normal([2, 3, 6], 1, &device).mul_scalar(3.0);
        let residual = post(&device);
        let admin = AdminScale::new(6, &device);
        let gap = (admin.forward(&residual, x.clone(), f) - residual.forward(x, f))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert_eq!(gap, 0.0);
    }

    #[test]
    fn profiling_sets_omega_to_the_running_ratio() {
        let device = mnemo_backend::test_device();
        let x = normal([2, 3, 6], 2, &device).mul_scalar(2.0);
        let residual = post(&device);
        let mut admin = AdminScale::new(6, &device);
        let mut profile = AdminProfile { ratio: 1.7 };
        let out = admin.profile(&mut profile, &residual, x.clone(), f);
        assert_eq!(to_vec(admin.omega.val()), vec![1.7f32; 6]);
        // Independent host reference: np.var of the flattened branches.
        let var = |v: Vec<f32>| {
            let m = v.iter().map(|&a| a as f64).sum::<f64>() / v.len() as f64;
            v.iter()
                .map(|&a| (a as f64 - m) * (a as f64 - m))
                .sum::<f64>()
                / v.len() as f64
        };
        let xs: Vec<f32> = to_vec(x.clone()).iter().map(|v| v * 1.7f32).collect();
        let want = (var(xs) + var(to_vec(f(x.clone())))).sqrt();
        assert!(
            (profile.ratio - want).abs() < 1e-9 * want,
            "{} vs {want}",
            profile.ratio
        );
        // The output is the profiled block's forward.
        let gap = (out - residual.norm.forward(x.clone().mul_scalar(1.7) + f(x)))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(gap < 1e-5, "{gap}");
    }

    #[test]
    #[should_panic(expected = "init: admin needs placement")]
    fn pre_norm_is_refused_naming_init() {
        let device = mnemo_backend::test_device();
        let residual = ResidualConfig {
            d_model: 6,
            norm: NormKind::Layer,
            placement: NormPlacement::Pre,
        }
        .init(&device);
        AdminScale::new(6, &device).forward(&residual, normal([1, 2, 6], 3, &device), f);
    }
}
