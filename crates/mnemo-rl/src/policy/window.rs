//! The window-limited baseline: the causal Transformer of `mnemo-models` over the last W
//! observations, recomputed at every step, so that it can know nothing older than W − 1 steps.
//! Observations before an episode's start are zeros (the empty observation), as the Feedback
//! core starts from zero memories.
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use mnemo_models::transformer::TransformerLayer;

use super::keep_mask;

/// Causal Transformer layers over a window of W ≥ 2 observations.
#[derive(Module, Debug)]
pub struct WindowTransformer {
    /// The layers (causal self-attention with span W, feed-forward).
    pub layers: Vec<TransformerLayer>,
    /// Window W: observations seen, the current one included.
    pub window: usize,
}

impl WindowTransformer {
    /// One step: rows with `starts` set forget their history, the window is the history and
    /// `obs`, and the history moves on by one.
    ///
    /// # Shapes
    /// - obs: `[B, 1, O]`; starts: `B` flags; history: `[B, W-1, O]`
    /// - output: the top state of the current step `[B, 1, D]`
    pub fn step(
        &self,
        encoder: &Linear,
        obs: Tensor<3>,
        starts: &[bool],
        history: &mut Tensor<3>,
    ) -> Tensor<3> {
        let w = self.window;
        let kept = history.clone() * keep_mask(starts, &obs.device());
        let context = Tensor::cat(vec![kept, obs], 1);
        *history = context.clone().narrow(1, 1, w - 1);
        self.top(encoder, context).narrow(1, w - 1, 1)
    }

    /// T steps at once: the T windows are gathered (each masked where an episode started inside
    /// it) and run as one batch.
    ///
    /// # Shapes
    /// - obs: `[B, T, O]`; starts: `B·T` flags, row-major; history: `[B, W-1, O]`
    /// - output: top states `[B, T, D]` and the history after the segment
    pub fn segment(
        &self,
        encoder: &Linear,
        obs: Tensor<3>,
        starts: &[bool],
        history: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let [b, t_len, o] = obs.dims();
        let w = self.window;
        let device = obs.device();
        let seq = Tensor::cat(vec![history, obs], 1); // [B, W-1+T, O]
        let windows: Vec<_> = (0..t_len).map(|t| seq.clone().narrow(1, t, w)).collect();
        let keep = Tensor::<1>::from_data(
            TensorData::new(window_keep(starts, b, t_len, w), [b * t_len * w]),
            &device,
        )
        .reshape([b, t_len, w, 1]);
        let contexts = Tensor::stack::<4>(windows, 1) * keep; // [B, T, W, O]
        let history = contexts
            .clone()
            .narrow(1, t_len - 1, 1)
            .narrow(2, 1, w - 1)
            .reshape([b, w - 1, o]);
        let top = self
            .top(encoder, contexts.reshape([b * t_len, w, o]))
            .narrow(1, w - 1, 1);
        let d = top.dims()[2];
        (top.reshape([b, t_len, d]), history)
    }

    /// The layers' output at every position of windows of observations.
    ///
    /// # Shapes
    /// - context: `[N, W, O]`
    /// - output: `[N, W, D]`
    fn top(&self, encoder: &Linear, context: Tensor<3>) -> Tensor<3> {
        self.layers
            .iter()
            .fold(encoder.forward(context), |h, layer| layer.forward(h))
    }
}

/// For each row b, step t and window slot j (slot W − 1 is step t itself), 1 if the
/// observation in that slot belongs to step t's episode (no episode starts after it, up to
/// t), else 0.
///
/// # Shapes
/// - starts: `[B, T]` row-major
/// - output: `[B, T, W]` row-major
fn window_keep(starts: &[bool], b: usize, t_len: usize, w: usize) -> Vec<f32> {
    let mut keep = Vec::with_capacity(b * t_len * w);
    for row in 0..b {
        let mut last_start: Option<usize> = None; // latest start at or before t
        for t in 0..t_len {
            if starts[row * t_len + t] {
                last_start = Some(t);
            }
            for j in 0..w {
                // Slot j holds step t + j − (W − 1) (negative: carried from before the segment).
                let step = (t + j) as isize - (w as isize - 1);
                let kept = last_start.is_none_or(|s| step >= s as isize);
                keep.push(if kept { 1.0 } else { 0.0 });
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::window_keep;

    /// A start at step 2 of a window of 3: steps 2 and 3 see only their own episode.
    #[test]
    fn keeps_only_the_current_episode() {
        let starts = [false, false, true, false];
        let keep = window_keep(&starts, 1, 4, 3);
        #[rustfmt::skip]
        let want = [
            1.0, 1.0, 1.0, // t0: carried -2, -1, step 0
            1.0, 1.0, 1.0, // t1
            0.0, 0.0, 1.0, // t2: starts here
            0.0, 1.0, 1.0, // t3
        ];
        assert_eq!(keep, want);
    }
}
