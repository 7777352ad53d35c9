//! What a model does after each optimizer step: Performer layers configured with
//! `redraw_every = N` take fresh random features every N steps (Choromanski et al. 2021,
//! "feature redrawing"), and adaptive spans are clamped to `[0, 1]`
//! ([`Model::clamp_spans`]); every other model is unchanged.
use mnemo_core::AttentionVariant;

use crate::lm::Model;
use crate::transformer::TransformerLm;

impl Model {
    /// The model after training step `step` (counted from 1); see the [module docs](self).
    pub fn after_update(self, step: u64) -> Self {
        match self {
            Model::Transformer(m) => Model::Transformer(m.after_update(step)),
            other => other,
        }
        .clamp_spans()
    }
}

impl TransformerLm {
    /// Every Performer layer's [`after_update`](mnemo_core::PerformerAttention::after_update).
    pub fn after_update(mut self, step: u64) -> Self {
        for layer in &mut self.layers {
            layer.attn_variant = layer.attn_variant.take().map(|v| match v {
                AttentionVariant::Performer(p) => AttentionVariant::Performer(p.after_update(step)),
                other => other,
            });
        }
        self
    }
}
