//! Looking inside a Feedback segment, for analysis (`mnemo analyze`): the same steps as
//! [`FeedbackCore::forward`], also returning what each layer computed on the way.
//!
//! Fan et al. 2020 ("Addressing Some Limitations of Transformers with Feedback Memory"), the
//! step of [`super::core`]; per layer `l` and step `t` this records
//!
//! ```text
//! a^l_t[h, j] = softmax_j((q·k_j + q·p_{S-j}) / √Dh)      q = W_q norm(h^{l-1}_t), head h,
//!                                                        slot j = 0..S-1 of the window, oldest
//!                                                        first, at distance S - j
//! u^l_t       = act(W1 ffin(hmid^l_t) + b1)             the feed-forward's hidden units (the
//!                                                        "keys" of Geva et al. 2021, "Transformer
//!                                                        Feed-Forward Layers Are Key-Value
//!                                                        Memories"); ffin = norm (pre-norm) or
//!                                                        the identity (post-norm)
//! ```
//!
//! The states themselves come from the layer's own [`FeedbackLayer::attend_memory`] and
//! feed-forward block, so the traced segment equals [`FeedbackCore::forward`] (tested in
//! mnemo-analysis); the probabilities are recomputed beside the attention from its query and
//! the window's keys. A traced segment always starts from S stored memories
//! ([`FeedbackCore::memory`], as a training or evaluation segment does), never a folded window.
//!
//! Size legend: B rows, T steps, S span, L layers, H heads, D d_model, F d_ff, V vocabulary.
use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor};
use mnemo_core::heads::split_heads;

use super::core::{FeedbackCore, LayerVisit, no_hook};
use super::layer::FeedbackLayer;
use super::lm::{FeedbackLm, FeedbackState};
use super::memory::WindowView;
use crate::output_head;

/// What every layer computed over a traced segment.
#[derive(Debug, Clone)]
pub struct FeedbackTrace {
    /// Per layer, the attention probabilities of each step over its window.
    ///
    /// # Shapes
    /// - each `[B, H, T, S]`: slot `j` (oldest first) is at distance `S - j`; sums to 1 over `S`
    pub attention: Vec<Tensor<4>>,
    /// Per layer, the feed-forward hidden activations `act(W1 x + b1)` (GELU or ReLU).
    ///
    /// # Shapes
    /// - each `[B, T, F]`
    pub ffn_hidden: Vec<Tensor<3>>,
}

/// The attention probabilities of one step's state `h` over a fully stored window: the
/// scores of [`attend_window`](super::layer::attend_window), softmaxed (and masked by the
/// layer's adaptive span, `span_mask`, if it has one).
///
/// # Shapes
/// - h: `[B, 1, D]` (the layer's input state, before its norm)
/// - positions: `[1, 1, Dh, S]` from [`FeedbackLayer::window_positions`]
/// - span_mask: `[1, H, 1, S]` or `[1, 1, 1, S]`
/// - output: `[B, H, 1, S]`
///
/// # Panics
/// If the window holds folded zero memories (a traced segment never does).
pub fn window_probabilities(
    layer: &FeedbackLayer,
    h: Tensor<3>,
    window: &WindowView,
    positions: Tensor<4>,
    span_mask: Option<&Tensor<4>>,
) -> Tensor<4> {
    let keys = match (&window.keys, window.folded) {
        (Some(keys), 0) => keys.clone(),
        _ => panic!("window: a traced step reads S stored memories, not folded zeros"),
    };
    let q = split_heads(
        layer.query.forward(layer.attn_residual.sublayer_input(h)),
        layer.n_heads,
    ); // [B,H,1,Dh]
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let pos = q.clone().matmul(positions); // [B,H,1,S]
    let a = softmax((q.matmul(keys.swap_dims(2, 3)) + pos).mul_scalar(scale), 3);
    match span_mask {
        Some(mask) => mnemo_core::adaptive_span::apply_mask(a, mask.clone()),
        None => a,
    }
}

impl FeedbackCore {
    /// [`forward`](Self::forward) of a segment from carried `memories`, recording every layer's
    /// attention probabilities and feed-forward hidden units (see the [module docs](self)).
    /// No hook (a language model's core); run it on an inference copy.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - memories: `[B, S, D]`
    /// - output: the top states `[B, T, D]`, the S memories after the segment `[B, S, D]`, and
    ///   the trace
    pub fn forward_traced(
        &self,
        x: Tensor<3>,
        memories: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>, FeedbackTrace) {
        let [_b, t_len, _d] = x.dims();
        let n_layers = self.layers.len();
        let mut memory = self.memory(memories, t_len);
        // Untrimmed: the trace holds every layer's probabilities over all S slots.
        let constants = self.constants_with(false);
        let mut attention: Vec<Vec<Tensor<4>>> = vec![Vec::with_capacity(t_len); n_layers];
        let mut hidden: Vec<Vec<Tensor<3>>> = vec![Vec::with_capacity(t_len); n_layers];
        let mut tops = Vec::with_capacity(t_len);
        for t in 0..t_len {
            let mut observe = |v: LayerVisit| {
                let layer = &self.layers[v.layer];
                attention[v.layer].push(window_probabilities(
                    layer,
                    v.attention_input.clone(),
                    v.window,
                    v.positions.clone(),
                    v.span_mask,
                ));
                let u = layer.ff_residual.sublayer_input(v.ff_input.clone());
                hidden[v.layer].push(layer.ff.activation.forward(layer.ff.up.forward(u)));
            };
            let x_t = x.clone().narrow(1, t, 1);
            tops.push(self.step_with(x_t, &mut memory, no_hook(), &constants, &mut observe));
        }
        let trace = FeedbackTrace {
            attention: attention.into_iter().map(|a| Tensor::cat(a, 2)).collect(),
            ffn_hidden: hidden.into_iter().map(|u| Tensor::cat(u, 1)).collect(),
        };
        (Tensor::cat(tops, 1), memory.memories(), trace)
    }
}

impl FeedbackLm {
    /// [`forward_segment`](Self::forward_segment) with the core's trace
    /// ([`FeedbackCore::forward_traced`]). Run it on an inference copy.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - state.memories: `[B, S, D]`
    /// - output: logits `[B, T, V]`
    pub fn forward_segment_traced(
        &self,
        tokens: Tensor<2, Int>,
        state: FeedbackState,
    ) -> (Tensor<3>, FeedbackState, FeedbackTrace) {
        let t_len = tokens.dims()[1];
        let x = self.dropout.forward(self.embedding.forward(tokens));
        let (top, memories, trace) = self.core.forward_traced(x, state.memories);
        let memories = self.carried(memories, t_len);
        (
            output_head::logits(&self.final_norm, &self.head, top),
            FeedbackState {
                memories,
                projected: None,
            },
            trace,
        )
    }
}
