//! The adaptive spans of a language model's layers (`adaptive_span` in a model table;
//! [`crate::span_config`]): the span loss added to the training loss, the clamp after every
//! update, and the learnt spans for reports.
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use mnemo_core::AdaptiveSpan;

use crate::lm::Model;

impl Model {
    /// Each softmax attention's adaptive span slot, bottom first (`None` where the layer has
    /// no adaptive span).
    fn span_slots(&mut self) -> Vec<&mut Option<AdaptiveSpan>> {
        match self {
            Model::Transformer(m) => m
                .layers
                .iter_mut()
                .filter_map(|l| l.attn.as_mut().map(|a| &mut a.adaptive_span))
                .collect(),
            Model::TransformerXl(m) => m
                .layers
                .iter_mut()
                .map(|l| &mut l.attn.adaptive_span)
                .collect(),
            Model::Feedback(m) => m
                .core
                .layers
                .iter_mut()
                .map(|l| &mut l.adaptive_span)
                .collect(),
        }
    }

    /// Each layer's adaptive span, bottom first (empty without `adaptive_span`).
    pub fn adaptive_spans(&self) -> Vec<&AdaptiveSpan> {
        match self {
            Model::Transformer(m) => m
                .layers
                .iter()
                .filter_map(|l| l.attn.as_ref()?.adaptive_span.as_ref())
                .collect(),
            Model::TransformerXl(m) => m
                .layers
                .iter()
                .filter_map(|l| l.attn.adaptive_span.as_ref())
                .collect(),
            Model::Feedback(m) => m
                .core
                .layers
                .iter()
                .filter_map(|l| l.adaptive_span.as_ref())
                .collect(),
        }
    }

    /// The span loss `Σ_layers c·S·mean(z)` (None without adaptive spans).
    ///
    /// # Shapes
    /// - output: `[1]`
    pub fn span_loss(&self) -> Option<Tensor<1>> {
        self.adaptive_spans()
            .into_iter()
            .map(AdaptiveSpan::loss)
            .reduce(|a, b| a + b)
    }

    /// Add the span loss's gradient (it reaches the ratios z only) to `grads`, the gradients
    /// of the language-model loss: together, the gradient of their sum. The model must be on
    /// an autodiff device. Nothing without adaptive spans or with a zero coefficient.
    pub fn add_span_loss_gradients(&self, grads: &mut GradientsParams) {
        let spans = self.adaptive_spans();
        if spans.iter().all(|s| s.loss_coeff == 0.0) {
            return;
        }
        let loss = self.span_loss().expect("adaptive spans");
        let mut span_grads = GradientsParams::from_grads(loss.backward(), self);
        for span in spans {
            let id = span.ratio.id;
            let Some(g) = span_grads.remove::<1>(id) else {
                continue;
            };
            let total = match grads.remove::<1>(id) {
                Some(from_lm) => from_lm + g,
                None => g,
            };
            grads.register(id, total);
        }
    }

    /// The model with every adaptive span's ratios clamped to `[0, 1]` (after each update, as
    /// the official code does).
    pub fn clamp_spans(self) -> Self {
        self.map_spans(|_, span| span.clamped())
    }

    /// The model with layer l's adaptive span replaced by `f(l, span)`, for every layer that
    /// has one (l counts those layers, bottom first).
    pub fn map_spans(mut self, mut f: impl FnMut(usize, AdaptiveSpan) -> AdaptiveSpan) -> Self {
        let slots = self.span_slots().into_iter().filter(|s| s.is_some());
        for (l, slot) in slots.enumerate() {
            *slot = slot.take().map(|span| f(l, span));
        }
        self
    }

    /// The learnt span `z_h·S` of every head, per layer bottom first (one value per layer
    /// with `per_head = false`; empty without adaptive spans).
    pub fn learnt_spans(&self) -> Vec<Vec<f32>> {
        self.adaptive_spans()
            .into_iter()
            .map(AdaptiveSpan::current_spans)
            .collect()
    }
}
