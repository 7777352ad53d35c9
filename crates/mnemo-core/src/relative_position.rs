//! Learned relative position terms: one vector per distance, shared across heads.
//!
//! The attention score of query `t` for key `i` gains `q_t · p_{t-i}` (Shaw et al.; the
//! Feedback Transformer's official code uses the same term, `key_pe`). The table holds `span`
//! vectors for the distances `min_distance .. min_distance + span`: the Transformer attends to
//! itself (`min_distance = 0`), a Feedback step only to earlier memories (`min_distance = 1`).
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Int, Tensor, TensorData};

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
        let span = self.span();
        // Scores against every distance, then pick distance t - i for each key i.
        let by_distance = q.matmul(self.table.val().transpose().unsqueeze::<4>()); // [B,H,T,S]
        let (index, mask) = self.distance_index(t, &device);
        let index = index.unsqueeze::<4>().expand([b, h, t, t]);
        let scores = if span >= t {
            by_distance.slice([0..b, 0..h, 0..t, 0..t]).gather(3, index)
        } else {
            // Gather needs the index range within the source: pad S up to T with zeros.
            let pad = Tensor::zeros([b, h, t, t - span], &device);
            Tensor::cat(vec![by_distance, pad], 3).gather(3, index)
        };
        (scores, mask)
    }

    /// For a segment of `t` positions: index `[T, T]` of the table row for each (query, key)
    /// pair (0 where masked), and the mask of pairs outside `[min_distance, min_distance + S)`.
    fn distance_index(
        &self,
        t: usize,
        device: &Device,
    ) -> (Tensor<2, Int>, Tensor<4, burn::tensor::Bool>) {
        let span = self.span() as i64;
        let min = self.min_distance as i64;
        let mut index = Vec::with_capacity(t * t);
        let mut mask = Vec::with_capacity(t * t);
        for q in 0..t as i64 {
            for k in 0..t as i64 {
                let row = q - k - min;
                let ok = (0..span).contains(&row);
                index.push(if ok { row } else { 0 });
                mask.push(!ok);
            }
        }
        let index = Tensor::from_data(TensorData::new(index, [t, t]), device);
        let mask =
            Tensor::<2, burn::tensor::Bool>::from_data(TensorData::new(mask, [t, t]), device)
                .unsqueeze::<4>();
        (index, mask)
    }
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

    #[test]
    fn causal_scores_pick_the_distance_vector() {
        let device = mnemo_backend::test_device();
        let pos = table(3, 2, 0, &device);
        let q = Tensor::<4>::random(
            [1, 1, 5, 2],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let (scores, mask) = pos.causal_scores(q.clone());
        let scores: Vec<f32> = scores.into_data().try_to_vec::<f32>().unwrap();
        let mask: Vec<bool> = mask.into_data().try_to_vec::<bool>().unwrap();
        let q: Vec<f32> = q.into_data().try_to_vec::<f32>().unwrap();
        let table: Vec<f32> = pos.table.val().into_data().try_to_vec::<f32>().unwrap();
        for t in 0..5 {
            for i in 0..5 {
                let d = t as i64 - i as i64;
                let masked = !(0..3).contains(&d);
                assert_eq!(mask[t * 5 + i], masked, "mask at ({t},{i})");
                if !masked {
                    let d = d as usize;
                    let want = q[t * 2] * table[d * 2] + q[t * 2 + 1] * table[d * 2 + 1];
                    assert!((scores[t * 5 + i] - want).abs() < 1e-5, "({t},{i})");
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
