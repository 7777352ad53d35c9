//! The Transformer-XL core (Dai et al. 2019) of a policy: every layer attends over the last M
//! inputs of that layer (its memory, detached) and the current step, so the reach grows by M
//! per layer (L·M steps in all) but stops there. The layers are `mnemo-models`' [`XlLayer`],
//! the language model's; the memory of a row is cleared to zero states where its episode
//! starts, as the Feedback core starts from zero memories.
//!
//! As in Transformer-XL (and GTrXL, Parisotto et al. 2020, its RL form) the memory is a
//! stop-gradient: the PPO update re-runs the segment step by step from the stored memories and
//! back-propagates through the current step only.
use burn::module::Module;
use burn::tensor::Tensor;
use mnemo_core::SegmentMemory;
use mnemo_models::transformer_xl::XlLayer;

use super::keep_mask;

/// Transformer-XL layers with a memory of M steps each.
#[derive(Module, Debug)]
pub struct XlCore {
    /// The layers, bottom first (banded attention over memory and step, feed-forward).
    pub layers: Vec<XlLayer>,
    /// Memory length M of every layer.
    pub memory_len: usize,
}

impl XlCore {
    /// One step: rows with `starts` set forget their memories, every layer attends over its M
    /// remembered inputs and the current one, and each memory moves on by one.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]` (the encoded observation); starts: `B` flags
    /// - memories: `[B, L·M, D]`, layer-major (layer l's inputs at `l·M .. (l+1)·M`, oldest
    ///   first), detached
    /// - output: the top state `[B, 1, D]`
    pub fn step(&self, x: Tensor<3>, starts: &[bool], memories: &mut Tensor<3>) -> Tensor<3> {
        let m = self.memory_len;
        let kept = memories.clone() * keep_mask(starts, &x.device());
        let mut next = Vec::with_capacity(self.layers.len());
        let mut h = x;
        for (l, layer) in self.layers.iter().enumerate() {
            let memory = SegmentMemory::from_states(kept.clone().narrow(1, l * m, m), m);
            let out = layer.forward(h.clone(), &memory, None);
            let advanced = memory.advance(h);
            next.push(advanced.states().expect("M >= 1 positions").clone());
            h = out;
        }
        *memories = Tensor::cat(next, 1);
        h
    }
}
