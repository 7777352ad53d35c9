//! The Feedback decoder of [`Seq2Seq`](crate::Seq2Seq): the [`FeedbackCore`] over the target side,
//! with cross-attention to the encoder as the core's per-layer hook (between each layer's memory
//! attention and its feed-forward).
//!
//! Fan et al. (2020), DESIGN.md §4 over the target: per step t every layer attends to the
//! keys/values of the S previous *memories* (never to step t itself); each sentence starts from
//! S zero memories, as the language model starts a fresh stream. Teacher forcing runs
//! [`FeedbackCore::forward`] from the zero memories written out; decoding runs
//! [`FeedbackCore::step`] over a [`FeedbackMemory`] with the zero memories folded (the same
//! numbers, tested step by step).
//!
//! Size legend: B rows, T target length, S span, L layers, H heads, D d_model, Dh = D/H,
//! S_src source length.
use burn::module::Module;
use burn::tensor::{Bool, Device, Tensor};
use mnemo_core::Norm;
use mnemo_core::cross_attention::{CrossMemory, CrossSublayer};

use super::core::FeedbackCore;
use super::memory::FeedbackMemory;
use crate::host_cross::HostCross;

/// The Feedback decoder; see the [module docs](self).
#[derive(Module, Debug)]
pub struct FeedbackDecoder {
    /// Layers, memory projections and mixing weights.
    pub core: FeedbackCore,
    /// Per layer, the cross-attention sublayer the core's hook runs.
    pub cross: Vec<CrossSublayer>,
    /// Final norm (pre-norm only).
    pub final_norm: Option<Norm>,
}

impl FeedbackDecoder {
    /// Cross-attention keys/values of the encoder states with the source padding, one per
    /// layer.
    ///
    /// # Shapes
    /// - states: `[B, S_src, D]`; key_mask: `[B, 1, 1, S_src]` (true = padding)
    pub fn cross_memory(&self, states: &Tensor<3>, key_mask: &Tensor<4, Bool>) -> Vec<CrossMemory> {
        self.cross
            .iter()
            .map(|c| c.attention.cross_memory(states.clone(), key_mask))
            .collect()
    }

    /// Teacher forcing: the T steps in sequence from zero memories.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]` (before the final norm)
    pub fn forward(&self, x: Tensor<3>, cross: &[CrossMemory]) -> Tensor<3> {
        let [b, t_len, d] = x.dims();
        let zeros = Tensor::zeros([b, self.core.span, d], &x.device());
        let hook = |l: usize, h: Tensor<3>| self.cross[l].forward(h, &cross[l]);
        self.core
            .forward(x, self.core.memory(zeros, t_len), &hook)
            .0
    }

    /// The decoding memory of `rows` fresh sentences (zero memories folded).
    pub fn start(&self, rows: usize, device: &Device) -> FeedbackMemory {
        self.core.fresh_memory(rows, device)
    }

    /// One decoding step; equals a step of [`forward`](Self::forward).
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]` (before the final norm)
    pub fn step(
        &self,
        x: Tensor<3>,
        memory: &mut FeedbackMemory,
        cross: &[CrossMemory],
        host: Option<&[HostCross]>,
    ) -> Tensor<3> {
        let hook = |l: usize, h: Tensor<3>| match host {
            Some(host) => self.cross[l].forward_with(h, |q| host[l].attend_step(q)),
            None => self.cross[l].forward(h, &cross[l]),
        };
        self.core.step(x, memory, &hook)
    }
}
