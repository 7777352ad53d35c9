//! One attention norm for every layer and the shared memory projection: the official
//! `--share-proj-kv` under pre-norm (`tie_norms = true`, `share_kv = true`, `placement = "pre"`),
//! where `norm1` is one tensor read by every layer's query and by the shared keys and values.
//!
//! mnemo keeps the L layers' attention norms as L copies, equal from the start (the shared memory
//! projection reads layer 0's, [`FeedbackCore::memory_norm`]), and keeps them equal: every copy's
//! gradient is replaced by the sum of all copies' gradients ([`FeedbackCore::tie_gradients`]),
//! which is the gradient of the one shared tensor. Equal values and equal gradients give equal
//! optimizer moments and updates, so the copies stay one tensor through training; the official
//! export checks that they are. (The global gradient norm counts the shared gradient once per
//! copy, so clipping can start earlier than in the official code; parameter counts include the
//! copies.)
use burn::optim::GradientsParams;

use super::backward::params::NormParams;
use super::core::FeedbackCore;

impl FeedbackCore {
    /// Whether every layer's attention norm is one tensor (`tie_norms` with one shared memory
    /// projection, under pre-norm): see the [module docs](self).
    pub fn ties_attention_norms(&self) -> bool {
        self.options.tie_norms
            && self.memory_projections.len() == 1
            && self.layers.len() > 1
            && self.layers[0].attn_residual.is_pre()
    }

    /// Replace each attention norm copy's gradient by the sum over the copies (nothing to do
    /// unless [`ties_attention_norms`](Self::ties_attention_norms)). Call on the gradients of a
    /// step before the optimizer sees them (the language-model step does, for both backwards).
    pub fn tie_gradients(&self, grads: &mut GradientsParams) {
        if !self.ties_attention_norms() {
            return;
        }
        let ids: Vec<Vec<_>> = self
            .layers
            .iter()
            .map(|layer| NormParams::of(&layer.attn_residual.norm).ids())
            .collect();
        for k in 0..ids[0].len() {
            let parts: Vec<_> = ids.iter().filter_map(|l| grads.remove::<1>(l[k])).collect();
            let Some(sum) = parts.into_iter().reduce(|a, b| a + b) else {
                continue;
            };
            for l in &ids {
                grads.register(l[k], sum.clone());
            }
        }
    }
}
