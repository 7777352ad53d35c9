//! Causal attention whose segment pass carries a fixed-size state: linear attention's fast
//! weights (Katharopoulos et al. 2020, "Transformers are RNNs"; Schlag et al. 2021, "Linear
//! Transformers Are Secretly Fast Weight Programmers") and Performer's prefix sums
//! (Choromanski et al. 2021, "Rethinking Attention with Performers").
//!
//! One segment pass `f` gives the parallel pass and the decoding step:
//!
//! ```text
//! (y, s') = f(x, s)                         x: [B, T, D], s: the state after the positions before x
//! forward(x)         = f(x, s₀).y          s₀: the empty state (no positions seen)
//! forward_step(x, s) = f(x, s).y,  s ← f(x, s).s'
//! f(x₁ ++ x₂, s)     = f(x₂, f(x₁, s).s')  (segments compose; so steps equal the parallel pass)
//! ```
use burn::tensor::Tensor;

/// A causal attention over segments that continues from a carried state; see the
/// [module docs](self).
pub trait CarriedState {
    /// What is carried from one segment to the next.
    type State;

    /// Attend over a segment continuing from `state` (fresh if None); return the outputs and
    /// the state after the segment. Two segments with the state carried equal one long one.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    fn forward_with_state(
        &self,
        x: Tensor<3>,
        state: Option<Self::State>,
    ) -> (Tensor<3>, Self::State);

    /// Attend over a segment from a fresh (zero) state.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_with_state(x, None).0
    }

    /// Attend for new positions (one, when decoding) given the state of the positions before
    /// them (None at the start), which is advanced in place. Equals the matching rows of
    /// [`forward`](Self::forward).
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    fn forward_step(&self, x: Tensor<3>, state: &mut Option<Self::State>) -> Tensor<3> {
        let (y, next) = self.forward_with_state(x, state.take());
        *state = Some(next);
        y
    }

    /// The same state cut from the autodiff graph.
    fn detach(state: Self::State) -> Self::State;

    /// [`forward_step`](Self::forward_step) over a training segment: the state after it is cut
    /// from the autodiff graph (truncated backpropagation: no gradient reaches the segments
    /// before).
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    fn forward_carried(&self, x: Tensor<3>, state: &mut Option<Self::State>) -> Tensor<3> {
        let (y, next) = self.forward_with_state(x, state.take());
        *state = Some(Self::detach(next));
        y
    }
}

/// The checks every [`CarriedState`] attention's tests run.
#[cfg(test)]
pub(crate) mod checks {
    use super::CarriedState;
    use crate::host::{max_abs_diff, to_vec};
    use crate::seeded::normal;
    use burn::tensor::Tensor;

    /// Token by token with the state carried, and two segments split at `split`, equal the
    /// parallel pass over `x` (`[B, T, D]`) within 1e-5.
    pub(crate) fn steps_and_segments_equal_forward<A: CarriedState>(
        m: &A,
        x: Tensor<3>,
        split: usize,
        what: &str,
    ) {
        let t = x.dims()[1];
        let whole = to_vec(m.forward(x.clone()));
        let mut state = None;
        let steps: Vec<_> = (0..t)
            .map(|i| m.forward_step(x.clone().slice_dim(1, i..i + 1), &mut state))
            .collect();
        let steps = to_vec(Tensor::cat(steps, 1));
        assert!(max_abs_diff(&steps, &whole) < 1e-5, "{what}: step");
        let (a, s) = m.forward_with_state(x.clone().slice_dim(1, 0..split), None);
        let (b, _) = m.forward_with_state(x.slice_dim(1, split..t), Some(s));
        let joined = to_vec(Tensor::cat(vec![a, b], 1));
        assert!(max_abs_diff(&joined, &whole) < 1e-5, "{what}: segments");
    }

    /// Adding a seeded perturbation (seed `bump_seed`) to `x` (`[1, T, D]`) at position `at`
    /// leaves the outputs before `at` unchanged (within 1e-6) and changes every output from it
    /// on (by more than 1e-4).
    pub(crate) fn causal_at<A: CarriedState>(
        m: &A,
        x: Tensor<3>,
        at: usize,
        bump_seed: u64,
        what: &str,
    ) {
        let [_, t, d] = x.dims();
        let bump = Tensor::<3>::zeros([1, t, d], &x.device()).slice_assign(
            [0..1, at..at + 1, 0..d],
            normal([1, 1, d], bump_seed, &x.device()),
        );
        let a = to_vec(m.forward(x.clone()));
        let b = to_vec(m.forward(x + bump));
        for pos in 0..t {
            let r = pos * d..(pos + 1) * d;
            let diff = max_abs_diff(&a[r.clone()], &b[r]);
            if pos < at {
                assert!(diff < 1e-6, "{what}: position {pos} changed by {diff}");
            } else {
                assert!(diff > 1e-4, "{what}: position {pos} did not change");
            }
        }
    }
}
