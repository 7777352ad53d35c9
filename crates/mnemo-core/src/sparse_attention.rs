//! Block-sparse causal self-attention in the style of BigBird (Zaheer et al., "Big Bird:
//! Transformers for Longer Sequences", 2020): local, global and random blocks, so a sequence of
//! T positions has O(T) attention connections, which are still expressive enough to be universal
//! approximators (Yun et al., "O(n) Connections are Expressive Enough: Universal
//! Approximability of Sparse Transformers", 2020).
//!
//! Positions are counted from the start of the sequence (the segment, or the generation) and cut
//! into blocks of `b`: position t lies in block ⌊t/b⌋. Query block i attends to the key blocks
//!
//! ```text
//! P(i) = {i}                          its own block, causally (key ≤ query)
//!      ∪ {i-w, …, i-1}                the w previous blocks (window)
//!      ∪ {0, …, g-1} ∩ [0, i)         the first g blocks (global)
//!      ∪ R(i)                         min(r, |C(i)|) distinct blocks of C(i), drawn from
//!                                     ChaCha8(seed, stream i) (random)
//! C(i) = [0, i) \ (window ∪ global)   the earlier blocks not already attended
//! ```
//!
//! and query t attends to key s iff `⌊s/b⌋ ∈ P(⌊t/b⌋)` and `s ≤ t`, with the scores of
//! [`CausalSelfAttention`](crate::attention::CausalSelfAttention):
//!
//! ```text
//! score(t, s) = (q_t · k_s + q_t · p_{min(t-s, S-1)}) / √Dh
//! y_t = W_o Σ_s softmax_s(score(t, s)) v_s        (per head, heads concatenated)
//! ```
//!
//! `p_d` is the learned vector of distance d ([`RelativePositions`], `min_distance` 0, S rows);
//! distances past the table (d ≥ S) reuse its last vector `p_{S-1}`, so the span S bounds the
//! table, not the attention reach. BigBird's global tokens also attend to everything; causally a
//! global block attends only as its own rules say (it sees the blocks before it like any block).
//!
//! # Cost
//! A query block gathers at most `K = w + 1 + g + r` key blocks (`K·b` key slots; blocks it
//! lacks are masked slots), so the scores take `T·K·b` entries: linear in T, never a dense
//! `[T, T]` matrix. The position term needs, per (query block, key block) pair, only the `2b - 1`
//! distances `(i - j)·b + (-(b-1) ..= b-1)`: the queries are multiplied with those gathered
//! table rows (`T·K·(2b-1)` entries, independent of S) and each score picks its distance.
//! One decoding step ([`SparseAttention::forward_step`]) attends to the same ≤ `K·b` keys.
use burn::module::Module;
use burn::nn::{Dropout, Linear};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::attention::attend;
use crate::heads::{merge_heads, split_heads};
use crate::projections::{at_least_one, check_shared, checked_projections};
use crate::relative_position::{RelativePositions, RelativePositionsConfig};

/// Configuration of a [`SparseAttention`]; the pattern is described in the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseAttentionConfig {
    /// Model width D.
    pub d_model: usize,
    /// Number of heads H (D must be divisible by H).
    pub n_heads: usize,
    /// Size S of the relative position table: distances `0..S`, farther ones reuse row `S-1`.
    pub span: usize,
    /// Dropout on the attention output.
    pub dropout: f64,
    /// Multiplier on the output projection's initial weights (1/sqrt(2L) for pre-norm stacks).
    pub out_init_scale: f64,
    /// Block size b (positions per block).
    pub block: usize,
    /// Previous blocks w a query block attends besides its own.
    pub window: usize,
    /// First blocks g of the sequence, attended by every later block.
    pub global: usize,
    /// Earlier blocks r drawn at random per query block (fewer when not enough are left).
    pub random: usize,
    /// Seed of the random blocks: block i's draw depends only on `(seed, i)`.
    pub seed: u64,
}

impl SparseAttentionConfig {
    /// Width D, H heads, position table of S rows and blocks of `block` positions, attending
    /// its own and the previous block only (`window` 1, no global or random blocks, seed 0),
    /// without dropout and with the default output-projection init.
    pub fn new(d_model: usize, n_heads: usize, span: usize, block: usize) -> Self {
        Self {
            d_model,
            n_heads,
            span,
            dropout: 0.0,
            out_init_scale: 1.0,
            block,
            window: 1,
            global: 0,
            random: 0,
            seed: 0,
        }
    }

    /// Check the configuration; the error message starts with the offending field's name.
    pub fn validate(&self) -> Result<(), String> {
        check_shared(self.shared())?;
        if self.span == 0 {
            return Err("span: the relative position table needs at least 1 row".into());
        }
        at_least_one("block", self.block)
    }

    /// Build the module (position table initialised `N(0, 1/Dh)`).
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails (the message names the field).
    pub fn init(&self, device: &Device) -> SparseAttention {
        let p = checked_projections(self.validate(), self.shared(), device);
        let positions = RelativePositionsConfig {
            span: self.span,
            d_head: self.d_model / p.n_heads,
            min_distance: 0,
        };
        SparseAttention {
            query: p.query,
            key: p.key,
            value: p.value,
            output: p.output,
            positions: positions.init(device),
            dropout: p.dropout,
            n_heads: p.n_heads,
            block: self.block,
            window: self.window,
            global: self.global,
            random: self.random,
            seed: self.seed,
        }
    }
}

/// Block-sparse causal multi-head self-attention with relative positions; see the
/// [module docs](self).
#[derive(Module, Debug)]
pub struct SparseAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Output projection.
    pub output: Linear,
    /// Learned vector per distance 0..S (farther distances use row S-1).
    pub positions: RelativePositions,
    /// Dropout on the output.
    pub dropout: Dropout,
    /// Number of heads H.
    pub n_heads: usize,
    /// Block size b.
    pub block: usize,
    /// Previous blocks attended besides the own block.
    pub window: usize,
    /// First blocks attended by every later block.
    pub global: usize,
    /// Random earlier blocks per query block.
    pub random: usize,
    /// Seed of the random blocks.
    pub seed: u64,
}

impl SparseAttention {
    /// The size S of the relative position table.
    pub fn span(&self) -> usize {
        self.positions.span()
    }

    /// The key blocks query block `query_block` attends to, ascending: the global blocks before
    /// it, its random blocks, its window and itself (attended causally). Depends only on the
    /// configuration, the seed and `query_block`, not on the sequence length.
    pub fn pattern(&self, query_block: usize) -> Vec<usize> {
        let i = query_block;
        let global = self.global.min(i);
        let local = i.saturating_sub(self.window).max(global);
        // The blocks not yet attended are the contiguous range global..local.
        let random = draw_distinct(global..local, self.random, self.seed, i as u64);
        (0..global).chain(random).chain(local..=i).collect()
    }

    /// Attend over a whole sequence in parallel, positions counted from its start.
    ///
    /// # Shapes
    /// - x: `[B, T, D]` (any T ≥ 1, not necessarily a multiple of the block)
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (h, bs) = (self.n_heads, self.block);
        let dh = d / h;
        let device = x.device();
        let q = split_heads(self.query.forward(x.clone()), h); // [B,H,T,Dh]
        let k = split_heads(self.key.forward(x.clone()), h);
        let v = split_heads(self.value.forward(x), h);
        let layout = self.layout(t);
        let (nb, slots, groups) = (layout.blocks, layout.slots, layout.distance_groups);
        let padded = nb * bs;
        let q = if padded > t {
            Tensor::cat(vec![q, Tensor::zeros([b, h, padded - t, dh], &device)], 2)
        } else {
            q
        };
        let q = q.reshape([b * h, nb, bs, dh]);
        // Each query block's key slots, gathered: [B·H, nb, K·b, Dh].
        let keys = Tensor::<1, Int>::from_data(TensorData::new(layout.keys, [nb * slots]), &device);
        let k = k.select(2, keys.clone()).reshape([b * h, nb, slots, dh]);
        let v = v.select(2, keys).reshape([b * h, nb, slots, dh]);
        // Position term: queries against the 2b-1 distances of each key block, then each slot
        // picks its own distance.
        let rows =
            Tensor::<1, Int>::from_data(TensorData::new(layout.rows, [nb * groups]), &device);
        let table = self.positions.table.val().select(0, rows); // [nb·K·(2b-1), Dh]
        let table = table.reshape([1, nb, groups, dh]).swap_dims(2, 3);
        let by_distance = q.clone().matmul(table); // [B·H, nb, b, K·(2b-1)]
        let pick =
            Tensor::<3, Int>::from_data(TensorData::new(layout.pick, [nb, bs, slots]), &device)
                .unsqueeze::<4>()
                .expand([b * h, nb, bs, slots]);
        let pos = by_distance
            .gather(3, pick)
            .mul_scalar(1.0 / (dh as f64).sqrt());
        let mask =
            Tensor::<3, Bool>::from_data(TensorData::new(layout.mask, [nb, bs, slots]), &device)
                .unsqueeze::<4>();
        let a = attend(q, k, v, Some(pos), Some(mask)); // [B·H, nb, b, Dh]
        let a = a.reshape([b, h, padded, dh]).slice_dim(2, 0..t);
        self.dropout.forward(self.output.forward(merge_heads(a)))
    }

    /// Attend for the next position of the sequence whose keys and values `cache` holds (its
    /// key and value are appended): it attends to exactly the keys [`forward`](Self::forward)
    /// gives that position.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    pub fn forward_step(&self, x: Tensor<3>, cache: &mut SparseCache) -> Tensor<3> {
        let [_b, _one, d] = x.dims();
        let h = self.n_heads;
        let device = x.device();
        let q = split_heads(self.query.forward(x.clone()), h); // [B,H,1,Dh]
        let k = split_heads(self.key.forward(x.clone()), h);
        let v = split_heads(self.value.forward(x), h);
        let t = cache.push(k, v);
        let keys = self.step_keys(t);
        let n = keys.len();
        let top = self.span() - 1;
        let rows: Vec<i64> = keys.iter().map(|&s| (t - s).min(top) as i64).collect();
        let keys: Vec<i64> = keys.into_iter().map(|s| s as i64).collect();
        let keys = Tensor::<1, Int>::from_data(TensorData::new(keys, [n]), &device);
        let (k, v) = cache.gather(keys);
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device);
        let table = self.positions.table.val().select(0, rows); // [n, Dh]
        let pos = q.clone().matmul(table.transpose().unsqueeze::<4>()); // [B,H,1,n]
        let pos = pos.mul_scalar(1.0 / ((d / h) as f64).sqrt());
        let a = merge_heads(attend(q, k, v, Some(pos), None));
        self.dropout.forward(self.output.forward(a))
    }

    /// The key positions position `t` attends to, ascending.
    fn step_keys(&self, t: usize) -> Vec<usize> {
        let bs = self.block;
        self.pattern(t / bs)
            .into_iter()
            .flat_map(|j| j * bs..((j + 1) * bs).min(t + 1))
            .collect()
    }

    /// The gather indices and mask of the parallel pass over `t` positions.
    fn layout(&self, t: usize) -> Layout {
        let bs = self.block;
        let nb = t.div_ceil(bs);
        let patterns: Vec<Vec<usize>> = (0..nb).map(|i| self.pattern(i)).collect();
        let max_blocks = patterns.iter().map(Vec::len).max().unwrap_or(1);
        let (slots, width) = (max_blocks * bs, 2 * bs - 1);
        let top = self.span() as i64 - 1;
        let mut layout = Layout {
            blocks: nb,
            slots,
            distance_groups: max_blocks * width,
            keys: Vec::with_capacity(nb * slots),
            rows: Vec::with_capacity(nb * max_blocks * width),
            pick: Vec::with_capacity(nb * bs * slots),
            mask: Vec::with_capacity(nb * bs * slots),
        };
        for (i, pattern) in patterns.iter().enumerate() {
            for g in 0..max_blocks {
                let block = pattern.get(g).copied();
                for kk in 0..bs {
                    let s = block.map(|j| j * bs + kk).filter(|&s| s < t);
                    layout.keys.push(s.unwrap_or(0) as i64);
                }
                for u in 0..width {
                    // Distance (i - j)·b + u - (b - 1); negative ones are masked pairs.
                    let d = block.map_or(0, |j| ((i - j) * bs + u) as i64 - (bs as i64 - 1));
                    layout.rows.push(d.clamp(0, top));
                }
            }
            for qq in 0..bs {
                let query = i * bs + qq;
                for (g, kk) in (0..max_blocks).flat_map(|g| (0..bs).map(move |kk| (g, kk))) {
                    layout.pick.push((g * width + qq + bs - 1 - kk) as i64);
                    let key = pattern.get(g).map(|j| j * bs + kk);
                    layout.mask.push(!key.is_some_and(|s| s <= query && s < t));
                }
            }
        }
        layout
    }
}

/// Host-built indices of the parallel pass (K = most key blocks of any query block).
struct Layout {
    /// Query blocks nb = ⌈T / b⌉.
    blocks: usize,
    /// Key slots per query block, K·b.
    slots: usize,
    /// Distances per query block, K·(2b-1).
    distance_groups: usize,
    /// Key position of each slot, `[nb, K·b]` (0 for masked slots).
    keys: Vec<i64>,
    /// Table row of each (query block, key block, offset) distance, `[nb, K·(2b-1)]`.
    rows: Vec<i64>,
    /// Which of its block's distances each (query, slot) score takes, `[nb, b, K·b]`.
    pick: Vec<i64>,
    /// True where a (query, slot) pair is not attended, `[nb, b, K·b]`.
    mask: Vec<bool>,
}

/// `count` distinct values of `range` (all of it when shorter), ascending, drawn from
/// ChaCha8(seed, stream) by Floyd's algorithm.
fn draw_distinct(
    range: std::ops::Range<usize>,
    count: usize,
    seed: u64,
    stream: u64,
) -> Vec<usize> {
    let n = range.len();
    if count >= n {
        return range.collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut chosen: Vec<usize> = Vec::with_capacity(count);
    for j in n - count..n {
        // Uniform in 0..=j (modulo bias below 2^-40 for any realistic block count).
        let r = (rng.next_u64() % (j as u64 + 1)) as usize;
        chosen.push(if chosen.contains(&r) { j } else { r });
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|c| range.start + c).collect()
}

/// Keys and values of one [`SparseAttention`] layer for step-by-step decoding: every position
/// since the start of the sequence, in a buffer that doubles when full, and the position
/// counter.
#[derive(Debug, Clone, Default)]
pub struct SparseCache {
    /// Keys `[B, H, capacity, Dh]` (None before the first step).
    keys: Option<Tensor<4>>,
    /// Values `[B, H, capacity, Dh]`.
    values: Option<Tensor<4>>,
    /// Positions written so far: the position of the next step.
    len: usize,
}

/// Initial number of slots of a [`SparseCache`].
const INITIAL_SLOTS: usize = 32;

impl SparseCache {
    /// An empty cache: the next step is position 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Positions written so far (the position of the next step).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keep the rows `rows`, in that order (beam search reorders and duplicates rows).
    ///
    /// # Shapes
    /// - rows: `[B']`, indices into `0..B`
    pub fn select(&mut self, rows: &Tensor<1, Int>) {
        self.keys = self.keys.take().map(|x| x.select(0, rows.clone()));
        self.values = self.values.take().map(|x| x.select(0, rows.clone()));
    }

    /// Append one position's key and value; return its position.
    ///
    /// # Shapes
    /// - k, v: `[B, H, 1, Dh]`
    fn push(&mut self, k: Tensor<4>, v: Tensor<4>) -> usize {
        let [b, h, _, dh] = k.dims();
        let capacity = self.keys.as_ref().map_or(0, |x| x.dims()[2]);
        if self.len == capacity {
            let new_cap = (2 * capacity).max(INITIAL_SLOTS);
            let device = k.device();
            let grow = |old: Option<Tensor<4>>| {
                let pad = Tensor::<4>::zeros([b, h, new_cap - capacity, dh], &device);
                match old {
                    Some(old) => Tensor::cat(vec![old, pad], 2),
                    None => pad,
                }
            };
            self.keys = Some(grow(self.keys.take()));
            self.values = Some(grow(self.values.take()));
        }
        let slot = self.len;
        let ranges = [0..b, 0..h, slot..slot + 1, 0..dh];
        let keys = self.keys.as_mut().expect("allocated");
        keys.inplace(|buf| buf.slice_assign(ranges.clone(), k));
        let values = self.values.as_mut().expect("allocated");
        values.inplace(|buf| buf.slice_assign(ranges, v));
        self.len += 1;
        slot
    }

    /// The keys and values at `positions`.
    ///
    /// # Shapes
    /// - positions: `[n]`
    /// - output: `[B, H, n, Dh]` each
    fn gather(&self, positions: Tensor<1, Int>) -> (Tensor<4>, Tensor<4>) {
        let keys = self.keys.as_ref().expect("a step was pushed").clone();
        let values = self.values.as_ref().expect("a step was pushed").clone();
        (
            keys.select(2, positions.clone()),
            values.select(2, positions),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{max_abs_gap as max_diff, to_vec};
    use crate::seeded::{normal, reinit};

    /// A config of width 8, 2 heads, position table `span`, and the given pattern.
    fn config(
        span: usize,
        block: usize,
        window: usize,
        global: usize,
        random: usize,
        seed: u64,
    ) -> SparseAttentionConfig {
        SparseAttentionConfig {
            window,
            global,
            random,
            seed,
            ..SparseAttentionConfig::new(8, 2, span, block)
        }
    }

    fn model(cfg: SparseAttentionConfig, device: &Device) -> SparseAttention {
        reinit(cfg.init(device), 11)
    }

    /// The model and input `[2, T, 8]` (seed `seed + n`) of every case `n` of [`cases`], named.
    fn built_cases(seed: u64, device: &Device) -> Vec<(String, SparseAttention, Tensor<3>)> {
        let build = |(n, (cfg, t)): (usize, (SparseAttentionConfig, usize))| {
            let x = normal([2, t, 8], seed + n as u64, device);
            (format!("case {n} ({cfg:?}, T={t})"), model(cfg, device), x)
        };
        cases().into_iter().enumerate().map(build).collect()
    }

    /// Whether query t may attend key s, from the rules alone (the random blocks are taken
    /// from `pattern`, whose random part is checked on its own in `pattern_rules`).
    fn allowed(m: &SparseAttention, t: usize, s: usize) -> bool {
        let (bq, bk) = (t / m.block, s / m.block);
        s <= t
            && (bq - bk <= m.window
                || bk < m.global
                || m.pattern(bq).contains(&bk) && bk < bq.saturating_sub(m.window))
    }

    /// Dense reference: full `[T, T]` scores with the rule mask, softmax in f64 on the host.
    fn naive(m: &SparseAttention, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let h = m.n_heads;
        let dh = d / h;
        let q = to_vec(split_heads(m.query.forward(x.clone()), h));
        let k = to_vec(split_heads(m.key.forward(x.clone()), h));
        let v = to_vec(split_heads(m.value.forward(x.clone()), h));
        let table = to_vec(m.positions.table.val());
        let span = m.span();
        let dot = |a: &[f32], b: &[f32]| -> f64 {
            a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
        };
        let mut out = vec![0.0f32; b * h * t * dh];
        for bh in 0..b * h {
            let row = |buf: &'_ [f32], i: usize| -> Vec<f32> {
                buf[(bh * t + i) * dh..(bh * t + i + 1) * dh].to_vec()
            };
            for tq in 0..t {
                let qt = row(&q, tq);
                let scores: Vec<Option<f64>> = (0..t)
                    .map(|s| {
                        allowed(m, tq, s).then(|| {
                            let r = (tq - s).min(span - 1);
                            let p = &table[r * dh..(r + 1) * dh];
                            (dot(&qt, &row(&k, s)) + dot(&qt, p)) / (dh as f64).sqrt()
                        })
                    })
                    .collect();
                let top = scores.iter().flatten().fold(f64::MIN, |a, &b| a.max(b));
                let w: Vec<f64> = scores
                    .iter()
                    .map(|s| s.map_or(0.0, |s| (s - top).exp()))
                    .collect();
                let z: f64 = w.iter().sum();
                for (s, ws) in w.iter().enumerate() {
                    let vs = row(&v, s);
                    for c in 0..dh {
                        out[(bh * t + tq) * dh + c] += (ws / z * vs[c] as f64) as f32;
                    }
                }
            }
        }
        let a = Tensor::<4>::from_data(TensorData::new(out, [b, h, t, dh]), &x.device());
        m.output.forward(merge_heads(a))
    }

    /// Configs with and without global/random blocks, table clamped or not, T with a partial
    /// last block (and one with T a multiple of the block).
    fn cases() -> Vec<(SparseAttentionConfig, usize)> {
        vec![
            (config(4, 3, 1, 0, 0, 0), 11),
            (config(3, 2, 1, 1, 2, 5), 13),
            (config(20, 4, 0, 2, 1, 9), 18),
            (config(5, 1, 2, 1, 1, 3), 9),
            (config(6, 2, 0, 0, 1, 1), 12),
        ]
    }

    #[test]
    fn equals_a_dense_masked_reference() {
        let device = mnemo_backend::test_device();
        for (what, m, x) in built_cases(20, &device) {
            let dd = max_diff(m.forward(x.clone()), naive(&m, x));
            assert!(dd < 1e-5, "{what}: max |Δ| = {dd}");
        }
    }

    #[test]
    fn steps_equal_the_parallel_pass() {
        let device = mnemo_backend::test_device();
        for (what, m, x) in built_cases(40, &device) {
            let full = m.forward(x.clone());
            let mut cache = SparseCache::new();
            for i in 0..x.dims()[1] {
                assert_eq!(cache.len(), i);
                let y = m.forward_step(x.clone().slice_dim(1, i..i + 1), &mut cache);
                let dd = max_diff(y, full.clone().slice_dim(1, i..i + 1));
                assert!(dd < 1e-5, "{what}, position {i}: max |Δ| = {dd}");
            }
        }
    }

    #[test]
    fn cache_grows_and_selects_rows() {
        let device = mnemo_backend::test_device();
        let m = model(config(8, 4, 1, 1, 1, 2), &device);
        let t = 70; // past two doublings of the buffer (32 → 64 → 128)
        let x = normal([2, t, 8], 3, &device);
        let full = m.forward(x.clone());
        let mut cache = SparseCache::new();
        let mut last = None;
        for i in 0..t {
            last = Some(m.forward_step(x.clone().slice_dim(1, i..i + 1), &mut cache));
        }
        let dd = max_diff(last.unwrap(), full.clone().slice_dim(1, t - 1..t));
        assert!(dd < 1e-5, "last step: max |Δ| = {dd}");
        // Swap the rows: the next step of row 0 is the old row 1's.
        let mut swapped = cache.clone();
        let rows = Tensor::from_data(TensorData::new(vec![1i64, 0], [2]), &device);
        swapped.select(&rows);
        let next = normal([2, 1, 8], 4, &device);
        let a = m.forward_step(next.clone(), &mut cache);
        let b = m.forward_step(next.select(0, rows.clone()), &mut swapped);
        let dd = max_diff(a.select(0, rows), b);
        assert!(dd < 1e-5, "selected rows: max |Δ| = {dd}");
    }

    #[test]
    fn earlier_outputs_ignore_later_positions() {
        let device = mnemo_backend::test_device();
        let m = model(config(3, 2, 1, 1, 2, 5), &device);
        let x = normal([1, 12, 8], 5, &device);
        let y = m.forward(x.clone());
        let p = 5;
        let bumped = x.clone().slice_assign(
            [0..1, p..p + 1, 0..8],
            normal([1, 1, 8], 6, &device).mul_scalar(3.0),
        );
        let y2 = m.forward(bumped);
        let before = max_diff(y.clone().slice_dim(1, 0..p), y2.clone().slice_dim(1, 0..p));
        assert!(before < 1e-6, "outputs before {p} moved by {before}");
        let at = max_diff(y.slice_dim(1, p..p + 1), y2.slice_dim(1, p..p + 1));
        assert!(at > 1e-3, "output at {p} did not change ({at})");
    }

    #[test]
    fn keys_outside_the_pattern_have_no_effect() {
        let device = mnemo_backend::test_device();
        // Blocks of 2, window 1, no global/random: block 3 (positions 6, 7) sees blocks 2, 3.
        let m = model(config(4, 2, 1, 0, 0, 0), &device);
        let x = normal([1, 8, 8], 7, &device);
        let bumped = x
            .clone()
            .slice_assign([0..1, 1..2, 0..8], normal([1, 1, 8], 8, &device));
        let (y, y2) = (m.forward(x), m.forward(bumped));
        let far = max_diff(y.clone().slice_dim(1, 4..8), y2.clone().slice_dim(1, 4..8));
        assert!(far < 1e-6, "blocks 2-3 saw block 0: {far}");
        let near = max_diff(y.slice_dim(1, 2..4), y2.slice_dim(1, 2..4));
        assert!(near > 1e-3, "block 1 did not see block 0 ({near})");
    }

    #[test]
    fn pattern_rules() {
        let device = mnemo_backend::test_device();
        let (window, global, random, bs) = (2, 2, 3, 2);
        let m = model(config(4, bs, window, global, random, 7), &device);
        let twin = model(config(4, bs, window, global, random, 7), &device);
        let other = model(config(4, bs, window, global, random, 8), &device);
        let layout = m.layout(48 * bs);
        let mut differs = false;
        for i in 0..48 {
            let p = m.pattern(i);
            assert!(
                p.windows(2).all(|w| w[0] < w[1]),
                "block {i}: {p:?} not sorted"
            );
            assert!(
                p.iter().all(|&j| j <= i),
                "block {i}: future block in {p:?}"
            );
            assert!(p.len() <= window + 1 + global + random, "block {i}: {p:?}");
            let required: Vec<usize> = (0..=i)
                .filter(|&j| j == i || i - j <= window || j < global)
                .collect();
            for j in &required {
                assert!(p.contains(j), "block {i}: {p:?} lacks {j}");
            }
            let available = i + 1 - required.len();
            assert_eq!(p.len(), required.len() + random.min(available), "block {i}");
            assert_eq!(p, m.pattern(i), "block {i}: not deterministic");
            assert_eq!(p, twin.pattern(i), "block {i}: same seed, other pattern");
            differs |= p != other.pattern(i);
            // Keys per query, both passes.
            for qq in 0..bs {
                let query = i * bs + qq;
                let start = (i * bs + qq) * layout.slots;
                let seen = layout.mask[start..start + layout.slots]
                    .iter()
                    .filter(|masked| !**masked)
                    .count();
                let keys = m.step_keys(query);
                assert_eq!(seen, keys.len(), "query {query}");
                assert!(seen <= (window + 1 + global + random) * bs, "query {query}");
                assert!(keys.iter().all(|&s| s <= query && p.contains(&(s / bs))));
            }
        }
        assert!(differs, "seed 8 drew the same random blocks as seed 7");
    }

    #[test]
    fn validate_names_the_field() {
        let ok = config(4, 2, 1, 1, 1, 0);
        assert_eq!(ok.validate(), Ok(()));
        let bad = [
            ("d_model", SparseAttentionConfig { d_model: 0, ..ok }),
            ("n_heads", SparseAttentionConfig { n_heads: 3, ..ok }),
            ("span", SparseAttentionConfig { span: 0, ..ok }),
            ("dropout", SparseAttentionConfig { dropout: 1.0, ..ok }),
            (
                "out_init_scale",
                SparseAttentionConfig {
                    out_init_scale: f64::NAN,
                    ..ok
                },
            ),
            ("block", SparseAttentionConfig { block: 0, ..ok }),
        ];
        for (field, cfg) in bad {
            let err = cfg.validate().unwrap_err();
            assert!(err.starts_with(&format!("{field}:")), "{field}: {err}");
        }
    }
}
