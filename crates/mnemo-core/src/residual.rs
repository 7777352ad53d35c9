//! A residual sublayer with its norm: the one place pre- and post-norm are written.
//!
//! Pre-norm (`x + f(norm(x))`, Xiong et al., 2020; the official Feedback code's default) or
//! post-norm (`norm(x + f(x))`, Vaswani et al., 2017), chosen by [`NormPlacement`]. Every
//! mnemo layer (Transformer, Transformer-XL, Feedback, encoder, decoders) wraps each of its
//! sublayers in one [`Residual`].
//!
//! ResiDual (Xie et al. 2023, "ResiDual: Transformer with Dual Residual Connections", Sec. 3,
//! the Pre-Post-LN equations) carries two streams through the K sublayers of a stack, both
//! starting at the embedding, `x_1 = d_1 = x`:
//!
//! ```text
//! x_{k+1} = LN(x_k + f_k(x_k))        (the post-norm stream; f_k reads it)
//! d_{k+1} = d_k + f_k(x_k)            (the dual stream: every sublayer output, summed)
//! y       = x_{K+1} + LN_final(d_{K+1})
//! ```
//!
//! [`Residual::forward_dual`] is one sublayer of it; the final sum belongs to the stack. With
//! `placement = ResiDual`, [`Residual::forward`] is the post-norm stream alone.
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
    /// `x + f(norm(x))` (pre-norm) or `norm(x + f(x))` (post-norm; also ResiDual's `x`
    /// stream, without its dual stream: see [`forward_dual`](Self::forward_dual)).
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
            NormPlacement::Post | NormPlacement::ResiDual => self.norm.forward(x.clone() + f(x)),
        }
    }

    /// One ResiDual sublayer (see the [module docs](self)): `(norm(x + f(x)), d + f(x))`, `f`
    /// run once. The norm is this block's whatever its placement (the caller chooses ResiDual).
    ///
    /// # Shapes
    /// - x, d: `[..., D]`; `f` maps `[..., D]` to `[..., D]`
    /// - output: both `[..., D]`
    pub fn forward_dual<const N: usize>(
        &self,
        x: Tensor<N>,
        d: Tensor<N>,
        f: impl FnOnce(Tensor<N>) -> Tensor<N>,
    ) -> (Tensor<N>, Tensor<N>) {
        let y = f(x.clone());
        (self.norm.forward(x + y.clone()), d + y)
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
            NormPlacement::Post | NormPlacement::ResiDual => x,
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
    use crate::host::max_abs_gap;
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
        for placement in [
            NormPlacement::Pre,
            NormPlacement::Post,
            NormPlacement::ResiDual,
        ] {
            let block = residual(NormKind::Layer, placement, &device);
            let got = block.forward(x.clone(), f);
            let want = match placement {
                NormPlacement::Pre => x.clone() + f(block.norm.forward(x.clone())),
                _ => block.norm.forward(x.clone() + f(x.clone())),
            };
            let diff = max_abs_gap(got, want);
            assert_eq!(diff, 0.0, "{placement:?}");
        }
        // The sublayer's view of x is what `forward` passes to f.
        for placement in [
            NormPlacement::Pre,
            NormPlacement::Post,
            NormPlacement::ResiDual,
        ] {
            let block = residual(NormKind::Rms, placement, &device);
            let mut seen = None;
            block.forward(x.clone(), |h| {
                seen = Some(h.clone());
                h
            });
            let diff = max_abs_gap(seen.unwrap(), block.sublayer_input(x.clone()));
            assert_eq!(diff, 0.0, "{placement:?}");
        }
        // The two placements differ (the test above could not pass with one formula for both).
        let pre = residual(NormKind::Layer, NormPlacement::Pre, &device);
        let post = Residual {
            norm: pre.norm.clone(),
            placement: NormPlacement::Post,
        };
        let gap = max_abs_gap(pre.forward(x.clone(), f), post.forward(x, f));
        assert!(gap > 1e-3, "pre and post gave the same output");
    }

    #[test]
    fn dual_sublayer_updates_both_streams_from_the_post_norm_stream() {
        let device = mnemo_backend::test_device();
        let x = Tensor::<3>::random([2, 3, 8], Distribution::Normal(1.0, 2.0), &device);
        let d = Tensor::<3>::random([2, 3, 8], Distribution::Normal(-1.0, 3.0), &device);
        let f = |h: Tensor<3>| h.clone() * h.mul_scalar(0.5) + 1.0;
        let block = residual(NormKind::Layer, NormPlacement::ResiDual, &device);
        let mut calls = 0;
        let (x2, d2) = block.forward_dual(x.clone(), d.clone(), |h| {
            calls += 1;
            f(h)
        });
        assert_eq!(calls, 1, "the sublayer runs once for both streams");
        // x: the post-norm update, d: the raw sublayer output added (no norm).
        let post_norm = block.norm.forward(x.clone() + f(x.clone()));
        assert_eq!(max_abs_gap(x2.clone(), post_norm), 0.0);
        assert_eq!(max_abs_gap(d2, d + f(x.clone())), 0.0);
        assert_eq!(
            max_abs_gap(x2, block.forward(x, f)),
            0.0,
            "x stream is forward's"
        );
    }
}
