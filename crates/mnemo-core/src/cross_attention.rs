//! Multi-head cross-attention: queries from one sequence, keys and values from another (the
//! encoder output of an encoder-decoder), with a key padding mask and no positions.
use burn::module::Module;
use burn::nn::{Dropout, Linear};
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::attention::attend;
use crate::heads::{merge_heads, split_heads};
use crate::projections::projections;
use crate::residual::Residual;

/// Configuration of a [`CrossAttention`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossAttentionConfig {
    /// Model width D.
    pub d_model: usize,
    /// Number of heads H (D must be divisible by H).
    pub n_heads: usize,
    /// Dropout on the attention output.
    pub dropout: f64,
    /// Multiplier on the output projection's initial weights.
    pub out_init_scale: f64,
}

impl CrossAttentionConfig {
    /// Width D and H heads, without dropout and with the default output-projection init.
    pub fn new(d_model: usize, n_heads: usize) -> Self {
        Self {
            d_model,
            n_heads,
            dropout: 0.0,
            out_init_scale: 1.0,
        }
    }

    /// Build the module.
    ///
    /// # Panics
    /// If `d_model` is not divisible by `n_heads`.
    pub fn init(&self, device: &Device) -> CrossAttention {
        projections(self.shared(), device)
    }
}

/// Attention from queries to an external memory (e.g. the encoder output).
///
/// The memory's keys and values are projected once with [`project`](Self::project) and reused
/// for every query position and decoding step.
#[derive(Module, Debug)]
pub struct CrossAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection (of the memory).
    pub key: Linear,
    /// Value projection (of the memory).
    pub value: Linear,
    /// Output projection.
    pub output: Linear,
    /// Dropout on the output.
    pub dropout: Dropout,
    /// Number of heads H.
    pub n_heads: usize,
}

impl CrossAttention {
    /// Keys and values of the memory, split into heads.
    ///
    /// # Shapes
    /// - memory: `[B, S, D]`
    /// - output: `[B, H, S, Dh]` each
    pub fn project(&self, memory: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        (
            split_heads(self.key.forward(memory.clone()), self.n_heads),
            split_heads(self.value.forward(memory), self.n_heads),
        )
    }

    /// The memory's keys and values with its padding mask, as [`CrossSublayer::forward`] reads
    /// them.
    ///
    /// # Shapes
    /// - memory: `[B, S, D]`; key_mask: `[B, 1, 1, S]`, true where a position is padding
    pub fn cross_memory(&self, memory: Tensor<3>, key_mask: &Tensor<4, Bool>) -> CrossMemory {
        let (keys, values) = self.project(memory);
        CrossMemory {
            keys,
            values,
            key_mask: key_mask.clone(),
        }
    }

    /// Attend from `x` over projected keys and values; masked keys are never attended.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - keys, values: `[B, H, S, Dh]` from [`project`](Self::project)
    /// - key_mask: `[B, 1, 1, S]`, true where a key is padding
    /// - output: `[B, T, D]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        keys: Tensor<4>,
        values: Tensor<4>,
        key_mask: Option<Tensor<4, Bool>>,
    ) -> Tensor<3> {
        self.forward_with(x, |q| attend(q, keys, values, None, key_mask))
    }

    /// [`forward`](Self::forward) with the attention of the queries over the memory computed
    /// by `attend` (e.g. on a host copy of the keys and values, by the CPU kernels).
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - attend: queries `[B, H, T, Dh]` to outputs `[B, H, T, Dv]`
    /// - output: `[B, T, D]`
    pub fn forward_with(
        &self,
        x: Tensor<3>,
        attend: impl FnOnce(Tensor<4>) -> Tensor<4>,
    ) -> Tensor<3> {
        let q = split_heads(self.query.forward(x), self.n_heads); // [B,H,T,Dh]
        let a = merge_heads(attend(q)); // [B,T,D]
        self.dropout.forward(self.output.forward(a))
    }
}

/// What one decoder layer reads of the encoder: its keys and values of the encoder states and
/// which source positions are padding (computed once per sentence, reused at every step).
///
/// # Shapes
/// - keys: `[B, H, S_src, Dh]`; values: `[B, H, S_src, Dv]` (`Dv = Dh` but in CAN's layers)
/// - key_mask: `[B, 1, 1, S_src]`, true where a source position is padding
#[derive(Debug, Clone)]
pub struct CrossMemory {
    /// Keys of the source positions.
    pub keys: Tensor<4>,
    /// Values of the source positions.
    pub values: Tensor<4>,
    /// True at source padding (never attended).
    pub key_mask: Tensor<4, Bool>,
}

impl CrossMemory {
    /// Rows `rows` of the batch, in that order; a row may repeat or be dropped.
    ///
    /// # Shapes
    /// - rows: `[B']`, indices into the current `0..B`
    pub fn select(&self, rows: Tensor<1, Int>) -> Self {
        Self {
            keys: self.keys.clone().select(0, rows.clone()),
            values: self.values.clone().select(0, rows.clone()),
            key_mask: self.key_mask.clone().select(0, rows),
        }
    }
}

/// A cross-attention sublayer with its residual block: the middle sublayer of every decoder
/// layer (the Transformer decoder's, and the Feedback decoder's hook).
#[derive(Module, Debug)]
pub struct CrossSublayer {
    /// Norm and placement.
    pub residual: Residual,
    /// Attention to the encoder output.
    pub attention: CrossAttention,
}

impl CrossSublayer {
    /// # Shapes
    /// - h: `[B, T, D]`
    /// - cross: from [`CrossAttention::cross_memory`]
    /// - output: `[B, T, D]`
    pub fn forward(&self, h: Tensor<3>, cross: &CrossMemory) -> Tensor<3> {
        self.residual.forward(h, |x| {
            let CrossMemory {
                keys,
                values,
                key_mask,
            } = cross.clone();
            self.attention.forward(x, keys, values, Some(key_mask))
        })
    }

    /// [`forward`](Self::forward) with the attention over the memory computed by `attend`
    /// ([`CrossAttention::forward_with`]).
    ///
    /// # Shapes
    /// - h: `[B, T, D]`
    /// - attend: queries `[B, H, T, Dh]` to outputs `[B, H, T, Dh]`
    /// - output: `[B, T, D]`
    pub fn forward_with(
        &self,
        h: Tensor<3>,
        attend: impl FnOnce(Tensor<4>) -> Tensor<4>,
    ) -> Tensor<3> {
        self.residual
            .forward(h, |x| self.attention.forward_with(x, attend))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::max_abs_gap;
    use burn::tensor::{Distribution, TensorData};

    /// Padded keys get no weight: appending padded memory positions changes nothing.
    #[test]
    fn padded_keys_are_ignored() {
        let device = mnemo_backend::test_device();
        let attn = CrossAttentionConfig::new(8, 2).init(&device);
        let x = Tensor::<3>::random([1, 3, 8], Distribution::Normal(0.0, 1.0), &device);
        let memory = Tensor::<3>::random([1, 4, 8], Distribution::Normal(0.0, 1.0), &device);
        let junk = Tensor::<3>::random([1, 2, 8], Distribution::Normal(0.0, 5.0), &device);
        let (k, v) = attn.project(memory.clone());
        let plain = attn.forward(x.clone(), k, v, None);
        let (k, v) = attn.project(Tensor::cat(vec![memory, junk], 1));
        let mask = Tensor::<4, Bool>::from_data(
            TensorData::new(vec![false, false, false, false, true, true], [1, 1, 1, 6]),
            &device,
        );
        let masked = attn.forward(x, k, v, Some(mask));
        let diff = max_abs_gap(plain, masked);
        assert!(diff < 1e-5, "max |Δ| = {diff}");
    }
}
