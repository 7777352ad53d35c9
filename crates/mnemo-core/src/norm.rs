//! Normalisation layers (LayerNorm or RMSNorm) and where they sit (pre or post the sublayer, or
//! both: ResiDual's two residual streams, Xie et al. 2023, see [`crate::residual`]).
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, RmsNorm, RmsNormConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Which normalisation a block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// LayerNorm: centre, scale to unit variance, then affine (`gamma`, `beta`).
    #[default]
    Layer,
    /// RMSNorm: scale by the root mean square, then `gamma` (no centring, no bias).
    Rms,
}

/// Where the norm sits relative to each residual sublayer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormPlacement {
    /// `x + f(norm(x))`, plus a final norm before the output layer.
    #[default]
    Pre,
    /// `norm(x + f(x))`, no final norm.
    Post,
    /// ResiDual (Xie et al. 2023, "ResiDual: Transformer with Dual Residual Connections"):
    /// the post-norm stream `x ← norm(x + f(x))` beside an unnormalised dual stream
    /// `d ← d + f(x)`, the stack's output `x + norm_final(d)`
    /// ([`Residual::forward_dual`](crate::residual::Residual::forward_dual)). Only a stack that
    /// carries both streams implements it (the causal Transformer LM); the others refuse it.
    ResiDual,
}

impl NormPlacement {
    /// The multiplier on each attention output projection's initial weights in a stack of
    /// `layers` layers: `1/√(2L)` for pre-norm (the official Feedback code's init, which keeps
    /// the residual stream's variance bounded), 1 for post-norm and ResiDual (whose sublayers
    /// read the post-norm stream; the official ResiDual code keeps fairseq's default init).
    pub fn out_init_scale(self, layers: usize) -> f64 {
        match self {
            NormPlacement::Pre => 1.0 / (2.0 * layers as f64).sqrt(),
            NormPlacement::Post | NormPlacement::ResiDual => 1.0,
        }
    }

    /// Whether the stack ends with a final norm: pre-norm (on the residual stream) and
    /// ResiDual (on the dual stream).
    pub fn has_final_norm(self) -> bool {
        self != NormPlacement::Post
    }
}

/// Configuration of a [`Norm`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormConfig {
    /// Width of the normalised (last) dimension.
    pub d_model: usize,
    /// LayerNorm or RMSNorm.
    pub kind: NormKind,
}

impl NormConfig {
    /// A norm of `kind` over `d_model` features.
    pub fn new(d_model: usize, kind: NormKind) -> Self {
        Self { d_model, kind }
    }

    /// Build the module.
    pub fn init(&self, device: &Device) -> Norm {
        match self.kind {
            NormKind::Layer => Norm::Layer(LayerNormConfig::new(self.d_model).init(device)),
            NormKind::Rms => Norm::Rms(RmsNormConfig::new(self.d_model).init(device)),
        }
    }
}

/// A LayerNorm or an RMSNorm over the last dimension.
#[derive(Module, Debug)]
pub enum Norm {
    /// LayerNorm.
    Layer(LayerNorm),
    /// RMSNorm.
    Rms(RmsNorm),
}

impl Norm {
    /// Normalise over the last dimension.
    ///
    /// # Shapes
    /// - x: `[..., D]`
    /// - output: `[..., D]`
    pub fn forward<const N: usize>(&self, x: Tensor<N>) -> Tensor<N> {
        match self {
            Norm::Layer(n) => n.forward(x),
            Norm::Rms(n) => n.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_norm_scales_output_projections_by_one_over_sqrt_2l() {
        assert_eq!(NormPlacement::Pre.out_init_scale(2), 0.5);
        assert_eq!(NormPlacement::Pre.out_init_scale(8), 0.25);
        assert_eq!(NormPlacement::Post.out_init_scale(8), 1.0);
        assert_eq!(NormPlacement::ResiDual.out_init_scale(8), 1.0);
    }

    #[test]
    fn rms_and_layer_norms_differ_on_shifted_input() {
        let device = mnemo_backend::test_device();
        let x = Tensor::<2>::from_floats([[1.0, 2.0, 3.0, 6.0]], &device);
        let layer = NormConfig::new(4, NormKind::Layer)
            .init(&device)
            .forward(x.clone());
        let rms = NormConfig::new(4, NormKind::Rms).init(&device).forward(x);
        let layer: Vec<f32> = layer.into_data().try_to_vec::<f32>().unwrap();
        let rms: Vec<f32> = rms.into_data().try_to_vec::<f32>().unwrap();
        // LayerNorm output is centred; RMSNorm output keeps the input's sign pattern (all > 0).
        assert!(layer.iter().sum::<f32>().abs() < 1e-4);
        assert!(rms.iter().all(|v| *v > 0.0));
        let ms = (1.0 + 4.0 + 9.0 + 36.0) / 4.0f32;
        assert!((rms[3] - 6.0 / ms.sqrt()).abs() < 1e-3);
    }
}
