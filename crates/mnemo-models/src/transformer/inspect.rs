//! Looking inside a Transformer segment, for analysis (`mnemo analyze ffn`): the same layers
//! as [`TransformerLm::forward`], also returning each layer's feed-forward hidden units.
//!
//! Geva et al. 2021, "Transformer Feed-Forward Layers Are Key-Value Memories": a feed-forward
//! sublayer `FF(x) = W2 gelu(W1 x + b1) + b2` is a memory whose keys are the rows of `W1` (the
//! columns of burn's `[D, F]` weight) and whose values are the rows of `W2`; what it reads at
//! position t is the hidden vector
//!
//! ```text
//! u^l_t = gelu(W1 x^l_t + b1)     x^l_t: what the sublayer sees (norm(h) pre-norm, h post-norm)
//! ```
//!
//! The trace records `u^l_t` from inside the layer's own residual block (pre-, post-norm,
//! ResiDual and Admin alike), so the traced logits equal [`TransformerLm::forward`] (tested in
//! mnemo-analysis).
//!
//! Size legend: B batch, T segment length, L layers, F d_ff, V vocabulary.
use burn::tensor::{Int, Tensor};

use super::{TransformerLm, TransformerState, sublayer};
use crate::feed_forward::activate;

impl TransformerLm {
    /// [`forward_segment`](Self::forward_segment) of a segment of a stream, also returning every
    /// layer's feed-forward hidden units (None for an all-attention layer): the state carries
    /// in and out as there (fresh out unless the layers carry). Run it on an inference copy.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output: logits `[B, T, V]`; per layer `[B, T, F]`
    pub fn forward_traced(
        &self,
        tokens: Tensor<2, Int>,
        state: TransformerState,
    ) -> (Tensor<3>, Vec<Option<Tensor<3>>>, TransformerState) {
        let mut streams = self.streams(self.embed(tokens));
        let mut hidden = Vec::with_capacity(self.layers.len());
        let mut state = match self.carries() {
            true => state,
            false => self.init_state(),
        };
        for (layer, cache) in self.layers.iter().zip(state.caches.iter_mut()) {
            streams = sublayer(&layer.attn_residual, &layer.attn_admin, streams, |h| {
                layer.attend_segment(h, cache)
            });
            let mut units = None;
            if let (Some(residual), Some(ff)) = (&layer.ff_residual, &layer.ff) {
                // The sublayer of `feed_forward`, its hidden units kept on the way.
                streams = sublayer(residual, &layer.ff_admin, streams, |x| {
                    let up_act = |x| {
                        let u = activate(ff.activation, ff.up.forward(x));
                        units = Some(u.clone());
                        u
                    };
                    ff.forward_with(x, up_act, |u| ff.down.forward(u))
                });
            }
            hidden.push(units);
        }
        (self.output(streams), hidden, state)
    }
}
