//! Evaluating a Feedback Transformer with a shorter attention span than it was trained with
//! (Fan et al., 2020, "Addressing Some Limitations of Transformers with Feedback Memory": the
//! ablation that reduces the memory size at evaluation; `mnemo eval RUN --mem-len N`).
//!
//! A model trained with span S attends, at every layer, to the S memories before a step, with a
//! learned vector per distance 1..S. Evaluated with span N (1 ≤ N ≤ S) every layer attends only
//! to the last N memories, with the same vectors for distances 1..N:
//!
//! ```text
//! a_t = Σ_{d=1..N} softmax_d((q_t·k_{t-d} + q_t·p_d) / √Dh) v_{t-d}     p_d: row d-1 of the table
//! ```
//!
//! The reduced model is a Feedback model whose span is N: each layer's position table keeps its
//! first N rows, the core's span (hence the carried state `[B, N, D]` and the `N + T` slots of
//! a segment's memory window, backend and host alike) becomes N; the projections, mixing
//! weights and everything else are unchanged. A fresh stream starts from N zero memories, as a
//! model trained with span N would. Distances past S have no learned vector, so N > S is
//! refused, and so is N = 0.
//!
//! Size legend: S trained span, N evaluation span, Dh head size.
use super::core::FeedbackCore;
use super::lm::FeedbackLm;

impl FeedbackCore {
    /// Attend to the last `span` memories from now on (evaluation): every layer's position
    /// table keeps its first `span` rows (distances `1..=span`) and the memory window has `span`
    /// slots. States made before the call (`[B, S, D]`) no longer fit: start from a fresh one.
    ///
    /// Errors (the message names the span) if `span` is 0 or longer than the current span S,
    /// whose table has no vectors past distance S.
    ///
    /// # Shapes
    /// - every layer's `positions.table`: `[S, Dh]` becomes `[span, Dh]`
    pub fn set_eval_span(&mut self, span: usize) -> Result<(), String> {
        let trained = self.span;
        if span == 0 {
            return Err(format!(
                "the evaluation span must be at least 1 memory, got 0 (trained span {trained})"
            ));
        }
        if span > trained {
            return Err(format!(
                "the Feedback Transformer learned relative position vectors for distances \
                 1..={trained} only (its trained span); an evaluation span of {span} would need \
                 vectors past distance {trained}: use at most {trained}"
            ));
        }
        let tables = self.layers.iter_mut().map(|l| &mut l.positions);
        for positions in tables.chain([&mut self.positions]).flatten() {
            let table = positions.table.clone();
            // A leaf again (autodiff devices), trainable as the full table was.
            positions.table = table.map(|t| {
                let grad = t.is_require_grad();
                t.narrow(0, 0, span).detach().set_require_grad(grad)
            });
        }
        self.span = span;
        Ok(())
    }
}

impl FeedbackLm {
    /// Attend to the last `span` memories from now on; see [`FeedbackCore::set_eval_span`].
    /// Take the state of a fresh stream ([`init_state`](Self::init_state)) afterwards: it holds
    /// `span` memories.
    pub fn set_eval_span(&mut self, span: usize) -> Result<(), String> {
        self.core.set_eval_span(span)
    }
}
