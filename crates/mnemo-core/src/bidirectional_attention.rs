//! Bidirectional multi-head self-attention with clamped relative positions and a key padding
//! mask: the self-attention of a Transformer encoder.
//!
//! Every position attends to every non-padding position of its sequence. The score of query i
//! and key j gets a learned position term `q_i · p_{clamp(j - i, -(S-1), S-1)}` (one vector per
//! signed distance, shared across heads, as the causal blocks do), so distances beyond the span
//! S share the outermost vector (Shaw et al., 2018, clip the same way).
use burn::module::{Module, Param};
use burn::nn::{Dropout, Initializer, Linear};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::attention::attend;
use crate::heads::{merge_heads, split_heads};
use crate::projections::projections;
use crate::relative_position::relative_shift;

/// Configuration of a [`BidirectionalSelfAttention`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BidirectionalSelfAttentionConfig {
    /// Model width D.
    pub d_model: usize,
    /// Number of heads H (D must be divisible by H).
    pub n_heads: usize,
    /// Span S: signed distances are clamped to `-(S-1) ..= S-1`.
    pub span: usize,
    /// Dropout on the attention output.
    pub dropout: f64,
    /// Multiplier on the output projection's initial weights.
    pub out_init_scale: f64,
}

impl BidirectionalSelfAttentionConfig {
    /// Build the module (position table initialised `N(0, 1/Dh)`).
    ///
    /// # Panics
    /// If `d_model` is not divisible by `n_heads` or `span` is 0.
    pub fn init(&self, device: &Device) -> BidirectionalSelfAttention {
        assert!(self.span >= 1, "span {} must be >= 1", self.span);
        let p = projections(self.shared(), device);
        let d_head = self.d_model / p.n_heads;
        let std = 1.0 / (d_head as f64).sqrt();
        BidirectionalSelfAttention {
            query: p.query,
            key: p.key,
            value: p.value,
            output: p.output,
            positions: Initializer::Normal { mean: 0.0, std }
                .init([2 * self.span - 1, d_head], device),
            dropout: p.dropout,
            n_heads: p.n_heads,
        }
    }
}

/// Bidirectional self-attention with clamped relative positions; see the [module docs](self).
#[derive(Module, Debug)]
pub struct BidirectionalSelfAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Output projection.
    pub output: Linear,
    /// Row `r` is the vector of signed distance `r - (S-1)`. Shape `[2S-1, Dh]`.
    pub positions: Param<Tensor<2>>,
    /// Dropout on the output.
    pub dropout: Dropout,
    /// Number of heads H.
    pub n_heads: usize,
}

impl BidirectionalSelfAttention {
    /// The span S.
    pub fn span(&self) -> usize {
        self.positions.dims()[0].div_ceil(2)
    }

    /// The widest clamped distance a sequence of `t` positions reaches: `min(t - 1, S - 1)`.
    fn reach(&self, t: usize) -> usize {
        t.saturating_sub(1).min(self.span() - 1)
    }

    /// For every (query, key) pair of a sequence of `t` positions, the row of its clamped
    /// signed distance in the table's rows `S-1-m ..= S-1+m` (m = [`reach`](Self::reach)), the
    /// only rows such a sequence reads.
    fn distance_index(&self, t: usize, device: &Device) -> Tensor<2, Int> {
        let m = self.reach(t) as i64;
        let index: Vec<i64> = (0..t as i64)
            .flat_map(|i| (0..t as i64).map(move |j| (j - i).clamp(-m, m) + m))
            .collect();
        Tensor::from_data(TensorData::new(index, [t, t]), device)
    }

    /// Attend over the whole sequence; keys where `key_mask` is true are never attended.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - key_mask: `[B, 1, 1, T]`, true where a position is padding
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, key_mask: Option<Tensor<4, Bool>>) -> Tensor<3> {
        let [_, t, d] = x.dims();
        let h = self.n_heads;
        let q = split_heads(self.query.forward(x.clone()), h); // [B,H,T,Dh]
        let k = split_heads(self.key.forward(x.clone()), h);
        let v = split_heads(self.value.forward(x), h);
        // Only the 2m+1 distances this sequence reaches: a short sentence under a long span
        // scores (and, training, scatters gradients into) a few dozen rows, not 2S-1.
        let m = self.reach(t);
        let table = self
            .positions
            .val()
            .narrow(0, self.span() - 1 - m, 2 * m + 1);
        let by_distance = q.clone().matmul(table.transpose().unsqueeze::<4>()); // [B,H,T,2m+1]
        let pos = self
            .per_pair(by_distance, t)
            .mul_scalar(1.0 / ((d / h) as f64).sqrt()); // [B,H,T,T]
        let a = merge_heads(attend(q, k, v, Some(pos), key_mask));
        self.dropout.forward(self.output.forward(a))
    }

    /// Scores by distance (column `c`: signed distance `c - m`) as scores per (query, key)
    /// pair (row `i`, column `j`: distance `j - i` clamped to `±m`).
    ///
    /// Without clamping (`T ≤ S`, so `m = T - 1`) row `i` is columns `T-1-i .. 2T-1-i`: in the
    /// row-major `[T, 2T-1]` values, row `i` of the result starts at `T-1 + i·(2T-2)`, so
    /// skipping `T-1` values and reading rows of `2T-2` gives it in its first `T` columns
    /// ([`relative_shift`]; an indexed gather's scattered gradient was slow on burn's CPU
    /// backend, docs/performance.md). With clamping, a gather by
    /// [`distance_index`](Self::distance_index).
    ///
    /// # Shapes
    /// - by_distance: `[B, H, T, 2m+1]`
    /// - output: `[B, H, T, T]`
    fn per_pair(&self, by_distance: Tensor<4>, t: usize) -> Tensor<4> {
        let [b, h, _, width] = by_distance.dims();
        if t >= 2 && width == 2 * t - 1 {
            return relative_shift(by_distance, t - 1, t);
        }
        let index = self
            .distance_index(t, &by_distance.device())
            .unsqueeze::<4>()
            .expand([b, h, t, t]);
        by_distance.gather(3, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Width `d_model`, `n_heads` heads, span `span`, no dropout.
    fn attention(
        d_model: usize,
        n_heads: usize,
        span: usize,
        device: &Device,
    ) -> BidirectionalSelfAttention {
        BidirectionalSelfAttentionConfig {
            d_model,
            n_heads,
            span,
            dropout: 0.0,
            out_init_scale: 1.0,
        }
        .init(device)
    }

    /// Each (query, key) pair reads the table row of its clamped signed distance.
    #[test]
    fn distance_index_clamps_signed_distances() {
        let device = mnemo_backend::test_device();
        let attn = attention(4, 1, 2, &device);
        let index: Vec<i64> = attn
            .distance_index(4, &device)
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        // span 2: distances clamp to -1..=1, rows 0..=2 (row 1 is distance 0).
        assert_eq!(index, vec![1, 2, 2, 2, 0, 1, 2, 2, 0, 0, 1, 2, 0, 0, 0, 1]);
        let x = Tensor::<3>::random([2, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(attn.forward(x, None).dims(), [2, 4, 4]);
    }

    /// The attention reading only the table rows a sequence reaches equals the attention over
    /// the whole table (every pair's clamped distance gathered from all 2S-1 rows), values and
    /// the table's gradient, for sequences shorter than the span (the relative shift), as long
    /// and longer (clamping: the gather), with padding.
    #[test]
    fn reached_rows_equal_the_whole_table() {
        let device = mnemo_backend::test_device();
        let attn = attention(8, 2, 6, &device);
        for t in [1, 2, 5, 6, 7, 13] {
            let x = Tensor::<3>::random([2, t, 8], Distribution::Normal(0.0, 1.0), &device);
            let mut pad = vec![false; 2 * t];
            pad[2 * t - 1] = t > 1; // the second row's last position is padding
            let mask = Tensor::<1, Bool>::from_data(TensorData::new(pad, [2 * t]), &device)
                .reshape([2, 1, 1, t]);
            // The whole table: row (j - i) clamped to ±(S-1), shifted by S-1.
            let (h, top) = (attn.n_heads, attn.span() as i64 - 1);
            let q = split_heads(attn.query.forward(x.clone()), h);
            let k = split_heads(attn.key.forward(x.clone()), h);
            let v = split_heads(attn.value.forward(x.clone()), h);
            let all = q
                .clone()
                .matmul(attn.positions.val().transpose().unsqueeze::<4>());
            let index: Vec<i64> = (0..t as i64)
                .flat_map(|i| (0..t as i64).map(move |j| (j - i).clamp(-top, top) + top))
                .collect();
            let index = Tensor::<2, Int>::from_data(TensorData::new(index, [t, t]), &device)
                .unsqueeze::<4>()
                .expand([2, h, t, t]);
            let pos = all.gather(3, index).mul_scalar(0.5); // 1/√Dh, Dh = 4
            let a = merge_heads(attend(q, k, v, Some(pos), Some(mask.clone())));
            let want = attn.output.forward(a);
            let got = attn.forward(x, Some(mask));
            let diff: f32 = (got.clone() - want.clone()).abs().max().into_scalar();
            assert!(diff < 1e-5, "t = {t}: differs by {diff}");
            // The position table's gradient too (the relative shift's slices vs the gather).
            let weights = Tensor::<3>::random(got.dims(), Distribution::Normal(0.0, 1.0), &device);
            let grad = |y: Tensor<3>| {
                let grads = (y * weights.clone()).sum().backward();
                attn.positions.grad(&grads).expect("the table is read")
            };
            let diff: f32 = (grad(got) - grad(want)).abs().max().into_scalar();
            assert!(
                diff < 1e-4,
                "t = {t}: the table's gradient differs by {diff}"
            );
        }
    }
}
