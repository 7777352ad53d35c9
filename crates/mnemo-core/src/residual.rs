//! A residual sublayer with its norm: the one place pre- and post-norm are written.
//!
//! Pre-norm (`x + f(norm(x))`, Xiong et al., 2020; the official Feedback code's default) or
//! post-norm (`norm(x + f(x))`, Vaswani et al., 2017), chosen by [`NormPlacement`]. Every
//! mnemo layer (Transformer, Transformer-XL, Feedback, encoder, decoders) wraps each of its
//! sublayers in one [`Residual`].
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::norm::{Norm, NormConfig, NormKind, NormPlacement};

/// Configuration of a [`Residual`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResidualConfig {
    /// Width D.
    pub d_model: usize,
    /// LayerNorm or RMSNorm.
    pub norm: NormKind,
    /// Before or after the sublayer.
    pub placement: NormPlacement,
}

impl ResidualConfig {
    /// Build the block.
    pub fn init(&self, device: &Device) -> Residual {
        Residual {
            norm: NormConfig::new(self.d_model, self.norm).init(device),
            placement: self.placement,
        }
    }
}

/// A norm and where it sits around a residual sublayer.
#[derive(Module, Debug)]
pub struct Residual {
    /// The sublayer's norm.
    pub norm: Norm,
    /// Pre- or post-norm.
    #[module(skip)]
    pub placement: NormPlacement,
}

impl Residual {
    /// `x + f(norm(x))` (pre-norm) or `norm(x + f(x))` (post-norm).
    ///
    /// # Shapes
    /// - x: `[..., D]`; `f` maps `[..., D]` to `[..., D]`
    /// - output: `[..., D]`
    pub fn forward<const N: usize>(
        &self,
        x: Tensor<N>,
        f: impl FnOnce(Tensor<N>) -> Tensor<N>,
    ) -> Tensor<N> {
        match self.placement {
            NormPlacement::Pre => x.clone() + f(self.norm.forward(x)),
            NormPlacement::Post => self.norm.forward(x.clone() + f(x)),
        }
    }

    /// What the sublayer sees of `x`: `norm(x)` (pre-norm) or `x` itself (post-norm). For a
    /// sublayer that reads other states alongside its input (Transformer-XL's memory), which
    /// must be normed as the input is.
    ///
    /// # Shapes
    /// - x: `[..., D]`; output: `[..., D]`
    pub fn sublayer_input<const N: usize>(&self, x: Tensor<N>) -> Tensor<N> {
        match self.placement {
            NormPlacement::Pre => self.norm.forward(x),
            NormPlacement::Post => x,
        }
    }

    /// Whether the norm comes before the sublayer.
    pub fn is_pre(&self) -> bool {
        self.placement == NormPlacement::Pre
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn residual(norm: NormKind, placement: NormPlacement, device: &Device) -> Residual {
        ResidualConfig {
            d_model: 8,
            norm,
            placement,
        }
        .init(device)
    }

    #[test]
    fn pre_and_post_placements_follow_their_equations() {
        let device = mnemo_backend::test_device();
        let x = Tensor::<3>::random([2, 3, 8], Distribution::Normal(1.0, 2.0), &device);
        let f = |h: Tensor<3>| h.clone() * h.mul_scalar(0.5);
        for placement in [NormPlacement::Pre, NormPlacement::Post] {
            let block = residual(NormKind::Layer, placement, &device);
            let got = block.forward(x.clone(), f);
            let want = match placement {
                NormPlacement::Pre => x.clone() + f(block.norm.forward(x.clone())),
                NormPlacement::Post => block.norm.forward(x.clone() + f(x.clone())),
            };
            let diff = (got - want).abs().max().into_scalar::<f32>();
            assert_eq!(diff, 0.0, "{placement:?}");
        }
        // The sublayer's view of x is what `forward` passes to f.
        for placement in [NormPlacement::Pre, NormPlacement::Post] {
            let block = residual(NormKind::Rms, placement, &device);
            let mut seen = None;
            block.forward(x.clone(), |h| {
                seen = Some(h.clone());
                h
            });
            let diff = (seen.unwrap() - block.sublayer_input(x.clone()))
                .abs()
                .max()
                .into_scalar::<f32>();
            assert_eq!(diff, 0.0, "{placement:?}");
        }
        // The two placements differ (the test above could not pass with one formula for both).
        let pre = residual(NormKind::Layer, NormPlacement::Pre, &device);
        let post = Residual {
            norm: pre.norm.clone(),
            placement: NormPlacement::Post,
        };
        let gap = (pre.forward(x.clone(), f) - post.forward(x, f))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(gap > 1e-3, "pre and post gave the same output");
    }
}
