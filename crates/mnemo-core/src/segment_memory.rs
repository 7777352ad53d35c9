//! Transformer-XL segment memory: the detached hidden states of earlier positions that one layer
//! attends to, and attention of a segment over `memory ++ segment` with a sliding window.
//!
//! Dai et al., "Transformer-XL" (2019): layer l at segment i attends to its own segment and to
//! the layer-l inputs of the previous positions, cached without gradient. Here every query sees
//! itself and at most `window` positions before it (a band), so a segment run with carried
//! memory equals one long run with the banded mask, and one-step decoding equals the segment
//! pass (the memory is the decoding cache).
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::attention::{CausalSelfAttention, score_scale};
use crate::heads::{merge_heads, split_heads};
use crate::relative_position::{RelativePositions, relative_shift};

/// The detached layer inputs of the last `capacity` positions (oldest first), for one layer.
#[derive(Debug, Clone)]
pub struct SegmentMemory {
    states: Option<Tensor<3>>,
    capacity: usize,
}

impl SegmentMemory {
    /// An empty memory keeping at most `capacity` positions.
    pub fn new(capacity: usize) -> Self {
        Self {
            states: None,
            capacity,
        }
    }

    /// A memory holding `states` (trimmed to the last `capacity` positions, detached).
    ///
    /// # Shapes
    /// - states: `[B, M, D]`
    pub fn from_states(states: Tensor<3>, capacity: usize) -> Self {
        Self::new(capacity).advance(states)
    }

    /// The most positions this memory keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of positions held (at most `capacity`).
    pub fn len(&self) -> usize {
        self.states.as_ref().map_or(0, |s| s.dims()[1])
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The held states, oldest first (None when empty).
    ///
    /// # Shapes
    /// - output: `[B, M, D]`, M = [`len`](Self::len)
    pub fn states(&self) -> Option<&Tensor<3>> {
        self.states.as_ref()
    }

    /// The attention context of a segment: `memory ++ x`.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, M + T, D]`
    pub fn context(&self, x: Tensor<3>) -> Tensor<3> {
        match &self.states {
            Some(m) => Tensor::cat(vec![m.clone(), x], 1),
            None => x,
        }
    }

    /// The memory after a segment whose layer inputs were `x`: the last `capacity` positions of
    /// `memory ++ x`, detached (no gradient flows into a later segment).
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    pub fn advance(&self, x: Tensor<3>) -> SegmentMemory {
        if self.capacity == 0 {
            return SegmentMemory::new(0);
        }
        let all = self.context(x.detach());
        let n = all.dims()[1];
        let keep = n.min(self.capacity);
        SegmentMemory {
            states: Some(all.narrow(1, n - keep, keep)),
            capacity: self.capacity,
        }
    }

    /// The same memory with another capacity (the newest positions kept when it shrinks).
    pub fn with_capacity(self, capacity: usize) -> SegmentMemory {
        match self.states {
            Some(s) => SegmentMemory::from_states(s, capacity),
            None => SegmentMemory::new(capacity),
        }
    }

    /// Move the states to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            states: self.states.map(|s| s.to_device(device)),
            capacity: self.capacity,
        }
    }
}

impl RelativePositions {
    /// Position scores `q_t · p_{min(d, S-1)}` of `t` queries (the last `t` positions of a context
    /// of `n`) against every context position at distance `d`, with the mask of pairs in the
    /// future or more than `window` positions back. Distances past the table reuse its last
    /// vector (the clamp that lets evaluation use a longer memory than training).
    ///
    /// # Shapes
    /// - q: `[B, H, T, Dh]`
    /// - output: scores `[B, H, T, n]`, mask `[1, 1, T, n]` (true = not attendable)
    pub fn banded_scores(
        &self,
        q: Tensor<4>,
        n: usize,
        window: usize,
    ) -> (Tensor<4>, Tensor<4, Bool>) {
        let t = q.dims()[2];
        assert!(n >= t, "context of {n} is shorter than the {t} queries");
        let device = q.device();
        let mask: Vec<bool> = self.band(t, n, window).map(|d| d.is_none()).collect();
        let mask =
            Tensor::<2, Bool>::from_data(TensorData::new(mask, [t, n]), &device).unsqueeze::<4>();
        // Every attended distance has its own vector unless the window reaches past the table.
        let scores = match window < self.min_distance + self.span() {
            true => self.shifted_scores(q, n),
            false => self.gathered_scores(q, n, window),
        };
        (scores, mask)
    }

    /// For every (query, key) pair of `t` queries (the last `t` of a context of `n`), row by
    /// row, the pair's distance if it is attended (`min_distance ..= window`), else None.
    fn band(&self, t: usize, n: usize, window: usize) -> impl Iterator<Item = Option<i64>> {
        let (min, offset) = (self.min_distance as i64, (n - t) as i64);
        (0..t as i64).flat_map(move |qi| {
            (0..n as i64).map(move |k| {
                let d = offset + qi - k;
                (d >= min && d <= window as i64).then_some(d)
            })
        })
    }

    /// [`banded_scores`](Self::banded_scores)' scores when no attended distance is clamped, by
    /// the relative shift: with the table reversed, column `j` of a query's scores is distance
    /// `min + S − 1 − j`, and key `k` of query `i` wants column `k + c − i`,
    /// `c = S − 1 + min − (n − T)`. Shifted by `a` columns (zeros in front, or the first `−a`
    /// columns dropped, none of which an attended pair reads) into rows of `W ≥ n + 1`, that is
    /// element `(c + a) + i·(W − 1) + k` of the flat rows: read from `c + a` (kept in
    /// `0 ..= T`) as rows of `W − 1`, the first `n` columns ([`relative_shift`]; an indexed
    /// gather's scattered gradient was slow on burn's CPU backend, docs/performance.md); pairs
    /// outside the band read other columns or zeros, and the mask removes them.
    ///
    /// # Shapes
    /// - q: `[B, H, T, Dh]`
    /// - output: `[B, H, T, n]`
    fn shifted_scores(&self, q: Tensor<4>, n: usize) -> Tensor<4> {
        let [b, h, t, _] = q.dims();
        let device = q.device();
        let s = self.span() as i64;
        let c = s - 1 + self.min_distance as i64 - (n - t) as i64;
        let start = c.clamp(0, t as i64);
        let a = start - c; // columns of zeros in front (negative: columns dropped)
        let reversed = self.table.val().flip([0]);
        let r = q.matmul(reversed.transpose().unsqueeze::<4>()); // [B,H,T,S]
        let r = match a {
            0 => r,
            a if a > 0 => Tensor::cat(vec![Tensor::zeros([b, h, t, a as usize], &device), r], 3),
            a => r.narrow(3, (-a) as usize, (s + a).max(0) as usize),
        };
        let width = r.dims()[3];
        let w = (n + 1).max(width);
        let r = match w - width {
            0 => r,
            pad => Tensor::cat(vec![r, Tensor::zeros([b, h, t, pad], &device)], 3),
        };
        relative_shift(r, start as usize, n)
    }

    /// [`banded_scores`](Self::banded_scores)' scores by a gather of each pair's distance,
    /// the distances past the table clamped to its last vector.
    ///
    /// # Shapes
    /// - q: `[B, H, T, Dh]`
    /// - output: `[B, H, T, n]`
    fn gathered_scores(&self, q: Tensor<4>, n: usize, window: usize) -> Tensor<4> {
        let [b, h, t, _] = q.dims();
        let top = self.span() as i64 - 1;
        let min = self.min_distance as i64;
        let index: Vec<i64> = self
            .band(t, n, window)
            .map(|d| d.map_or(0, |d| (d - min).min(top)))
            .collect();
        let index = Tensor::<2, Int>::from_data(TensorData::new(index, [t, n]), &q.device())
            .unsqueeze::<4>()
            .expand([b, h, t, n]);
        let by_distance = q.matmul(self.table.val().transpose().unsqueeze::<4>()); // [B,H,T,S]
        by_distance.gather(3, index)
    }
}

impl CausalSelfAttention {
    /// Attend from a segment over `memory ++ segment`: query t sees the positions at distances
    /// `min_distance ..= window` before it (itself too when the table starts at distance 0),
    /// with relative position terms clamped at the table's last distance. The block's own
    /// table is used when it has one; a block built with `tied_positions` reads `tied`, its
    /// stack's shared table.
    ///
    /// With an empty memory and `window = S - 1` this equals [`forward`](Self::forward).
    ///
    /// # Shapes
    /// - x: `[B, T, D]` (the segment, already normed as the layer wants)
    /// - context: `[B, M + T, D]` (memory then the segment, normed the same way)
    /// - output: `[B, T, D]`
    pub fn forward_with_memory(
        &self,
        x: Tensor<3>,
        context: Tensor<3>,
        window: usize,
        tied: Option<&RelativePositions>,
    ) -> Tensor<3> {
        let positions = self
            .positions
            .as_ref()
            .or(tied)
            .expect("a block with tied positions is given its stack's table");
        let context = self.trimmed_context(context, x.dims()[1], positions.min_distance);
        let n = context.dims()[1];
        let h = self.n_heads;
        let q = split_heads(self.query.forward(x), h); // [B,H,T,Dh]
        let k = split_heads(self.key.forward(context.clone()), h); // [B,H,N,Dh]
        let v = split_heads(self.value.forward(context), h);
        let (pos, mask) = positions.banded_scores(q.clone(), n, window);
        let pos = pos.mul_scalar(score_scale(&q));
        let rows = self.span_rows(q.dims()[2], n, positions.min_distance, &q.device());
        let a = merge_heads(self.attend_with_persistent(q, k, v, pos, Some(mask), rows));
        self.dropout.forward(self.output.forward(a))
    }

    /// The context without the oldest positions no query can reach under the adaptive span
    /// (all of it without one): the T queries at the end read rows below
    /// [`window_len`](crate::AdaptiveSpan::window_len), so the newest `T − 1 + w +
    /// min_distance` positions.
    ///
    /// # Shapes
    /// - context: `[B, N, D]`; output `[B, N', D]` with `N' ≤ N`
    fn trimmed_context(&self, context: Tensor<3>, t: usize, min_distance: usize) -> Tensor<3> {
        let n = context.dims()[1];
        match self.adaptive_span.as_ref().map(|s| s.window_len()) {
            Some(w) if t - 1 + w + min_distance < n => {
                let keep = t - 1 + w + min_distance;
                context.narrow(1, n - keep, keep)
            }
            _ => context,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::CausalSelfAttentionConfig;
    use crate::host::max_abs_gap as diff;
    use burn::tensor::Distribution;

    /// The held states, flattened.
    fn held(memory: &SegmentMemory) -> Vec<f32> {
        let states = memory.states().expect("a non-empty memory").clone();
        states.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn advance_keeps_the_newest_capacity_positions() {
        let device = mnemo_backend::test_device();
        let step = |v: f32| Tensor::<3>::full([1, 1, 1], v, &device);
        let mut memory = SegmentMemory::new(3);
        assert!(memory.is_empty());
        memory = memory.advance(Tensor::cat(vec![step(0.0), step(1.0)], 1));
        assert_eq!(memory.len(), 2);
        memory = memory.advance(Tensor::cat(vec![step(2.0), step(3.0)], 1));
        assert_eq!(held(&memory), vec![1.0, 2.0, 3.0]);
        assert_eq!(held(&memory.with_capacity(1)), vec![3.0]);
        assert!(SegmentMemory::new(0).advance(step(1.0)).is_empty());
    }

    #[test]
    fn banded_scores_clamp_far_distances_to_the_last_vector() {
        let device = mnemo_backend::test_device();
        let pos = crate::relative_position::tests::table(2, 1, 0, &device);
        let q = Tensor::<4>::ones([1, 1, 1, 1], &device);
        // One query at context index 3; window 3 reaches index 0 (distance 3 > table's 1).
        let (scores, mask) = pos.banded_scores(q, 4, 3);
        let table: Vec<f32> = pos.table.val().into_data().try_to_vec::<f32>().unwrap();
        let scores: Vec<f32> = scores.into_data().try_to_vec::<f32>().unwrap();
        let mask: Vec<bool> = mask.into_data().try_to_vec::<bool>().unwrap();
        assert_eq!(mask, vec![false; 4]);
        assert_eq!(scores, vec![table[1], table[1], table[1], table[0]]);
        let (_, mask) = pos.banded_scores(Tensor::<4>::ones([1, 1, 1, 1], &device), 4, 1);
        let mask: Vec<bool> = mask.into_data().try_to_vec::<bool>().unwrap();
        assert_eq!(mask, vec![true, true, false, false]);
    }

    /// The shifted scores equal the gathered ones on every attended pair, values and the
    /// table's gradient, over contexts with and without memory, windows up to the table's
    /// reach, tables from distance 0 and 1, segments longer and shorter than the table.
    #[test]
    fn shifted_scores_equal_the_gather() {
        let device = mnemo_backend::test_device();
        for (span, min) in [(4, 0), (4, 1), (9, 0), (3, 1)] {
            let pos = crate::relative_position::tests::table(span, 3, min, &device);
            for (t, mem) in [(1, 0), (5, 0), (5, 3), (2, 7), (6, 12)] {
                let n = t + mem;
                for window in [min, min + span / 2, min + span - 1] {
                    let q =
                        Tensor::<4>::random([2, 2, t, 3], Distribution::Normal(0.0, 1.0), &device);
                    let (_, mask) = pos.banded_scores(q.clone(), n, window);
                    let keep = mask.bool_not().float().expand([2, 2, t, n]);
                    let shifted = pos.shifted_scores(q.clone(), n) * keep.clone();
                    let gathered = pos.gathered_scores(q, n, window) * keep;
                    let case = format!("span {span}, min {min}, t {t}, n {n}, window {window}");
                    assert!(diff(shifted.clone(), gathered.clone()) < 1e-5, "{case}");
                    let w =
                        Tensor::<4>::random([2, 2, t, n], Distribution::Normal(0.0, 1.0), &device);
                    let grad = |x: Tensor<4>| {
                        let grads = (x * w.clone()).sum().backward();
                        pos.table.grad(&grads).expect("the table is read")
                    };
                    let gap: f32 = (grad(shifted) - grad(gathered)).abs().max().into_scalar();
                    assert!(gap < 1e-4, "{case}: the table's gradient differs by {gap}");
                }
            }
        }
    }

    #[test]
    fn empty_memory_equals_causal_forward() {
        let device = mnemo_backend::test_device();
        let attn = CausalSelfAttentionConfig::new(8, 2, 3).init(&device);
        let x = Tensor::<3>::random([2, 6, 8], Distribution::Normal(0.0, 1.0), &device);
        let d = diff(
            attn.forward(x.clone()),
            attn.forward_with_memory(x.clone(), x, 2, None),
        );
        assert!(d < 1e-5, "max |Δ| = {d}");
    }
}
