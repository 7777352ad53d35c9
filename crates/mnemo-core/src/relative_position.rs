//! Learned relative position terms: one vector per distance, shared across heads.
//!
//! The attention score of query `t` for key `i` gains `q_t · p_{t-i}` (Shaw et al.; the
//! Feedback Transformer's official code uses the same term, `key_pe`). The table holds `span`
//! vectors for the distances `min_distance .. min_distance + span`: the Transformer attends to
//! itself (`min_distance = 0`), a Feedback step only to earlier memories (`min_distance = 1`).
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor, TensorData};

/// Configuration of [`RelativePositions`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativePositionsConfig {
    /// Number of distances, i.e. the attention span S.
    pub span: usize,
    /// Head size Dh.
    pub d_head: usize,
    /// Smallest distance the table covers (0 when a position attends to itself).
    pub min_distance: usize,
}

impl RelativePositionsConfig {
    /// Build the table, initialised `N(0, 1/Dh)` as in the official Feedback Transformer code.
    pub fn init(&self, device: &Device) -> RelativePositions {
        let std = 1.0 / (self.d_head as f64).sqrt();
        RelativePositions {
            table: Initializer::Normal { mean: 0.0, std }.init([self.span, self.d_head], device),
            min_distance: self.min_distance,
        }
    }
}

/// A learned vector per relative distance.
#[derive(Module, Debug)]
pub struct RelativePositions {
    /// Row `d` is the vector for distance `min_distance + d`. Shape `[S, Dh]`.
    pub table: Param<Tensor<2>>,
    /// Distance of row 0.
    pub min_distance: usize,
}

impl RelativePositions {
    /// The span S: how many distances the table covers.
    pub fn span(&self) -> usize {
        self.table.dims()[0]
    }

    /// Position vectors for a chronological window of `n` keys (oldest first) whose newest key
    /// is at the smallest distance: slot `j` gets distance `min_distance + n - 1 - j`.
    ///
    /// # Shapes
    /// - output: `[n, Dh]`
    pub fn window(&self, n: usize) -> Tensor<2> {
        assert!(
            n <= self.span(),
            "window of {n} exceeds the span {}",
            self.span()
        );
        self.table.val().slice(0..n).flip([0])
    }

    /// Position scores `q_t · p_{t-i}` for causal self-attention over a segment, with the
    /// boolean mask of pairs that are outside the span or in the future.
    ///
    /// # Shapes
    /// - q: `[B, H, T, Dh]`
    /// - output: scores `[B, H, T, T]`, mask `[1, 1, T, T]` (true = not attendable)
    pub fn causal_scores(&self, q: Tensor<4>) -> (Tensor<4>, Tensor<4, burn::tensor::Bool>) {
        let [b, h, t, _] = q.dims();
        let device = q.device();
        let min = self.min_distance;
        // Only distances below T are ever attended: table rows 0..n, n = min(S, T - min).
        let n = self.span().min(t.saturating_sub(min));
        if n == 0 {
            // Every pair is masked (a segment shorter than the smallest distance).
            return (
                Tensor::zeros([b, h, t, t], &device),
                self.causal_mask(t, &device),
            );
        }
        // Scores against those rows, the farthest first: r[t, j] = q_t · (row n - 1 - j).
        let reversed = self.table.val().narrow(0, 0, n).flip([0]);
        let r = q.matmul(reversed.transpose().unsqueeze::<4>()); // [B,H,T,n]
        // Key i of query t wants row t - i - min, r[t, i + c] with c = n - 1 + min - t: row t
        // shifted left by c. Padded to rows of W = n + T and read from element c₀ = n - 1 + min
        // as rows of W - 1, element (t, i) is t·(W-1) + i + c₀ = t·W + (i + c) of the padded
        // rows (c₀ + T(W-1) ≤ TW as n + min ≤ T). Masked pairs read other slots or the zero
        // padding; the mask removes them.
        let padded = Tensor::cat(vec![r, Tensor::zeros([b, h, t, t], &device)], 3);
        let scores = relative_shift(padded, n - 1 + min, t);
        (scores, self.causal_mask(t, &device))
    }

    /// The boolean mask of pairs of a segment of `t` positions outside
    /// `[min_distance, min_distance + S)` (in the future, too far back).
    ///
    /// # Shapes
    /// - output: `[1, 1, T, T]` (true = not attendable)
    fn causal_mask(&self, t: usize, device: &Device) -> Tensor<4, burn::tensor::Bool> {
        let (span, min) = (self.span() as i64, self.min_distance as i64);
        let mask: Vec<bool> = (0..t as i64)
            .flat_map(|q| (0..t as i64).map(move |k| !(0..span).contains(&(q - k - min))))
            .collect();
        Tensor::<2, burn::tensor::Bool>::from_data(TensorData::new(mask, [t, t]), device)
            .unsqueeze::<4>()
    }
}

/// The relative shift (Transformer-XL's): the rows `[T, W]` of `r` read as one flat row from
/// element `start` on, in rows of `W − 1`, the first `n` columns: element `(i, k)` is
/// `r[i, k + start − i]` (read on into the next row where that passes `W`). A query's scores by
/// distance become its scores per key by slices and reshapes only, so training scatters no
/// gradient through an index. The caller pads `r` so that `start ≤ T` and `n ≤ W − 1`.
///
/// # Shapes
/// - r: `[B, H, T, W]`
/// - output: `[B, H, T, n]`
pub(crate) fn relative_shift(r: Tensor<4>, start: usize, n: usize) -> Tensor<4> {
    let [b, h, t, w] = r.dims();
    r.reshape([b, h, t * w])
        .narrow(2, start, t * (w - 1))
        .reshape([b, h, t, w - 1])
        .narrow(3, 0, n)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A table of `span` distances from `min_distance`, heads of size `d_head`.
    pub(crate) fn table(
        span: usize,
        d_head: usize,
        min_distance: usize,
        device: &Device,
    ) -> RelativePositions {
        RelativePositionsConfig {
            span,
            d_head,
            min_distance,
        }
        .init(device)
    }

    /// Every (query, key) pair in reach gets `q_t · p_{t-i}` and the mask removes exactly the
    /// others, for spans shorter than, equal to and longer than the segment, with and without
    /// a smallest distance.
    #[test]
    fn causal_scores_pick_the_distance_vector() {
        let device = mnemo_backend::test_device();
        let t_len = 5;
        for (span, min) in [
            (3, 0),
            (3, 1),
            (5, 0),
            (5, 1),
            (8, 0),
            (8, 2),
            (1, 1),
            (1, 0),
            (2, 6),
        ] {
            let pos = table(span, 2, min, &device);
            let q = Tensor::<4>::random(
                [1, 1, t_len, 2],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let (scores, mask) = pos.causal_scores(q.clone());
            assert_eq!(scores.dims(), [1, 1, t_len, t_len]);
            let scores: Vec<f32> = scores.into_data().try_to_vec::<f32>().unwrap();
            let mask: Vec<bool> = mask.into_data().try_to_vec::<bool>().unwrap();
            let q: Vec<f32> = q.into_data().try_to_vec::<f32>().unwrap();
            let table: Vec<f32> = pos.table.val().into_data().try_to_vec::<f32>().unwrap();
            for t in 0..t_len {
                for i in 0..t_len {
                    let d = t as i64 - i as i64 - min as i64;
                    let masked = !(0..span as i64).contains(&d);
                    let at = format!("span {span}, min {min}: ({t},{i})");
                    assert_eq!(mask[t * t_len + i], masked, "mask at {at}");
                    assert!(scores[t * t_len + i].is_finite(), "{at}");
                    if !masked {
                        let d = d as usize;
                        let want = q[t * 2] * table[d * 2] + q[t * 2 + 1] * table[d * 2 + 1];
                        assert!((scores[t * t_len + i] - want).abs() < 1e-5, "{at}");
                    }
                }
            }
        }
    }

    #[test]
    fn window_is_newest_last() {
        let device = mnemo_backend::test_device();
        let pos = table(4, 1, 1, &device);
        let table: Vec<f32> = pos.table.val().into_data().try_to_vec::<f32>().unwrap();
        let w: Vec<f32> = pos.window(3).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(w, vec![table[2], table[1], table[0]]);
    }
}
