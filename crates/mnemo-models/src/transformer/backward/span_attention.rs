//! A Transformer layer's attention over its span with relative positions, forward and backward
//! on host memory, causal, bidirectional or cross ([`Keys`]):
//! - causal (the language model's layers): query `t` reads keys `t − n + 1 ..= t`,
//!   `n = min(t + 1, S)`, a window of the segment's own keys, the newest at distance 0; equal
//!   to [`CausalSelfAttention::forward`](mnemo_core::CausalSelfAttention::forward)'s masked
//!   softmax;
//! - bidirectional (the translation encoder's layers): every query of sentence `b` reads the
//!   sentence's `L_b` tokens (the positions after them are padding), the score of key `κ`
//!   getting the table's row of the signed distance `κ − t` clamped to `±(S − 1)`; equal to
//!   [`BidirectionalSelfAttention::forward`](mnemo_core::BidirectionalSelfAttention::forward)
//!   with its key padding mask;
//! - cross (the Transformer decoder's cross-attention sublayer): every query of sentence `b`
//!   reads the first `L_b` keys of another sequence (the source's), without positions; equal
//!   to [`CrossAttention::forward`](mnemo_core::CrossAttention::forward)'s attention with its
//!   key padding mask.
//!
//! All up to float rounding (a masked score is `-1e9`, whose exponential is 0 in `f32`),
//! without materialising `[B, H, T, T]` scores.
//!
//! Per head row the queries go in tiles of [`TILE`] positions; a tile's keys are the union of
//! its queries' windows, so every score, probability and gradient of a tile is one product of
//! `mnemo_kernels` (`[Tq, Dh] · [Dh, Wk]`, `[Tq, Wk] · [Wk, Dh]`, …) with the entries outside a
//! query's window set to zero, instead of one dot product per query and key. The position term
//! is one product per head row with the table laid out by key offset (`[T, Dh] · [Dh, E]`, row
//! `e` of the layout the vector of offset `κ − t = e − c`), so that along a query's window the
//! terms are consecutive: causal, the reachable distances reversed (E = R = min(S, T),
//! c = R − 1); bidirectional, every offset a segment has with the clamped distance's row
//! (E = 2T − 1, c = T − 1); cross, none (E = 0).
//!
//! Size legend: B batch, T segment length, S span, H heads, Dh head size, W = H·Dh,
//! N = B·T rows (row `b·T + t`), I = B·H head rows (row `b·H + h`); head buffers are
//! `[I, T, Dh]`; Tq the queries and Wk the keys of a tile; E the rows of the table by offset.
use std::ops::Range;

use mnemo_kernels::{matmul_rows, on_both_cores};

/// Queries per tile: a tile's products are `[Tq, Wk]` with `Wk ≤ Tq + S − 1` keys (causal) or
/// `Wk = L_b` (bidirectional, cross).
const TILE: usize = 64;

/// Which keys a query reads, and how the table is indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Keys {
    /// Cross-attention: every query of sequence `b` reads keys `0 .. lens[b]` of another
    /// sequence of `len` positions (`1 ≤ lens[b] ≤ len`), its keys and values `[B·len, W]`
    /// rows; no position table.
    Cross { lens: Vec<usize>, len: usize },
    /// Query `t` reads keys `t − n + 1 ..= t`, `n = min(t + 1, S)`; the table is `[S, Dh]`,
    /// row `d` for distance `t − κ`.
    Causal,
    /// Every query of sequence `b` reads keys `0 .. lens[b]` (`1 ≤ lens[b] ≤ T`); the table is
    /// `[2S − 1, Dh]`, row `S − 1 + clamp(κ − t, ±(S − 1))`.
    Bidirectional(Vec<usize>),
}

impl Keys {
    /// The keys of sequences `range` of the batch.
    pub(crate) fn sequences(&self, range: Range<usize>) -> Self {
        match self {
            Keys::Causal => Keys::Causal,
            Keys::Bidirectional(lens) => Keys::Bidirectional(lens[range].to_vec()),
            Keys::Cross { lens, len } => Keys::Cross {
                lens: lens[range].to_vec(),
                len: *len,
            },
        }
    }
}

/// Sizes of one layer's attention over a segment.
#[derive(Debug, Clone)]
pub(crate) struct SpanShape {
    /// Batch B.
    pub(crate) batch: usize,
    /// Segment length T.
    pub(crate) len: usize,
    /// Heads H.
    pub(crate) heads: usize,
    /// Head size Dh.
    pub(crate) dh: usize,
    /// Span S (unused by cross-attention, which has no table).
    pub(crate) span: usize,
    /// Which keys each query reads.
    pub(crate) keys: Keys,
}

impl SpanShape {
    /// Head rows I = B·H.
    fn rows(&self) -> usize {
        self.batch * self.heads
    }

    /// Rows of the table: S (causal), 2S − 1 (bidirectional), none (cross).
    fn table_rows(&self) -> usize {
        match self.keys {
            Keys::Causal => self.span,
            Keys::Bidirectional(_) => 2 * self.span - 1,
            Keys::Cross { .. } => 0,
        }
    }

    /// Positions of the key sequence: T, or the other sequence's (cross).
    fn key_len(&self) -> usize {
        match self.keys {
            Keys::Cross { len, .. } => len,
            _ => self.len,
        }
    }

    /// E, the rows of the table by offset, and c, the row of offset 0: causal `R = min(S, T)`
    /// distances a query of the segment can reach (the position products use only those rows
    /// of the table) and `c = R − 1`; bidirectional `2T − 1` and `T − 1`.
    fn offsets(&self) -> (usize, usize) {
        match self.keys {
            Keys::Causal => {
                let reach = self.span.min(self.len);
                (reach, reach - 1)
            }
            Keys::Bidirectional(_) => (2 * self.len - 1, self.len - 1),
            Keys::Cross { .. } => (0, 0),
        }
    }

    /// The table's row at row `e` of the layout by offset.
    fn table_row(&self, e: usize) -> usize {
        let (_, c) = self.offsets();
        match self.keys {
            Keys::Causal => c - e,
            Keys::Bidirectional(_) => {
                let top = self.span as i64 - 1;
                ((e as i64 - c as i64).clamp(-top, top) + top) as usize
            }
            Keys::Cross { .. } => unreachable!("no position table"),
        }
    }

    /// Query `t` of head row `i`: its window's first key and its length n.
    fn window(&self, i: usize, t: usize) -> (usize, usize) {
        match &self.keys {
            Keys::Causal => {
                let n = (t + 1).min(self.span);
                (t + 1 - n, n)
            }
            Keys::Bidirectional(lens) | Keys::Cross { lens, .. } => (0, lens[i / self.heads]),
        }
    }

    /// Where each head row's probabilities begin (`Σ Tq·Wk` over the tiles of the rows before
    /// it), and at the end their total.
    fn probs_starts(&self) -> Vec<usize> {
        let mut starts = vec![0];
        let mut at = 0;
        for i in 0..self.rows() {
            at += self
                .tiles(i)
                .map(|tile| tile.size().0 * tile.size().1)
                .sum::<usize>();
            starts.push(at);
        }
        starts
    }

    /// The query tiles of head row `i`, in order.
    fn tiles(&self, i: usize) -> impl Iterator<Item = Tile> + '_ {
        (0..self.len).step_by(TILE).map(move |t0| {
            let t1 = (t0 + TILE).min(self.len);
            let (k0, k1) = match &self.keys {
                Keys::Causal => (self.window(i, t0).0, t1),
                Keys::Bidirectional(lens) | Keys::Cross { lens, .. } => (0, lens[i / self.heads]),
            };
            Tile { t0, t1, k0, k1 }
        })
    }

    /// `[B·len, W]` rows (row `b·len + t`, column `h·Dh + d`) as head buffers `[I, len, Dh]`
    /// (`len`: T for queries, [`key_len`](Self::key_len) for keys and values).
    fn split_heads(&self, x: &[f32], len: usize) -> Vec<f32> {
        self.permute(x, len, true)
    }

    /// Head buffers `[I, len, Dh]` as `[B·len, W]` rows.
    fn merge_heads(&self, x: &[f32], len: usize) -> Vec<f32> {
        self.permute(x, len, false)
    }

    /// Copy between the two layouts: `(b, t, h)` rows of `Dh` values either way.
    fn permute(&self, x: &[f32], len: usize, to_heads: bool) -> Vec<f32> {
        let SpanShape {
            batch, heads, dh, ..
        } = *self;
        assert_eq!(
            x.len(),
            batch * len * heads * dh,
            "rows must hold N·W values"
        );
        let mut out = vec![0.0f32; x.len()];
        for b in 0..batch {
            for t in 0..len {
                for h in 0..heads {
                    let rows = ((b * len + t) * heads + h) * dh;
                    let head = ((b * heads + h) * len + t) * dh;
                    let (from, to) = if to_heads { (rows, head) } else { (head, rows) };
                    out[to..to + dh].copy_from_slice(&x[from..from + dh]);
                }
            }
        }
        out
    }
}

/// Queries `t0..t1` of a head row and the keys `k0..k1` their windows cover.
#[derive(Debug, Clone, Copy)]
struct Tile {
    t0: usize,
    t1: usize,
    k0: usize,
    k1: usize,
}

impl Tile {
    /// Queries Tq and keys Wk.
    fn size(&self) -> (usize, usize) {
        (self.t1 - self.t0, self.k1 - self.k0)
    }

    /// The columns of row `r` (query `t0 + r` of head row `i`) that lie in its window, and
    /// the query.
    fn columns(&self, shape: &SpanShape, i: usize, r: usize) -> (Range<usize>, usize) {
        let t = self.t0 + r;
        let (start, n) = shape.window(i, t);
        (start - self.k0..start + n - self.k0, t)
    }

    /// Where, in a `[T, E]` buffer of position terms by offset, query `t`'s first window column
    /// `cols.start` lies: column c is key κ = k0 + c at offset κ − t, the layout's row
    /// `κ − t + c₀` (c₀ the row of offset 0); along the window the rows ascend.
    fn position_row(&self, shape: &SpanShape, t: usize, cols: &Range<usize>) -> usize {
        let (e, c0) = shape.offsets();
        t * e + c0 + self.k0 + cols.start - t
    }

    /// Rows `t0..t1` (or `k0..k1` with `keys`) of a `[T, Dh]` head row.
    fn rows<'a>(&self, x: &'a [f32], dh: usize, keys: bool) -> &'a [f32] {
        let (from, to) = if keys {
            (self.k0, self.k1)
        } else {
            (self.t0, self.t1)
        };
        &x[from * dh..to * dh]
    }
}

/// `a · b` for `a` `[rows, k]` and `b` `[k, n]`, row-major.
fn product(a: &[f32], rows: usize, b: &[f32], k: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * n];
    matmul_rows(a, b, &mut out, rows, k, n);
    out
}

/// `xᵀ` of a row-major `[rows, cols]` matrix.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for (r, row) in x.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
    out
}

/// `acc += x`.
fn add_into(acc: &mut [f32], x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

/// One layer's attention over a segment: its inputs in head layout and the probabilities of
/// every tile, kept for the backward.
pub(crate) struct SpanAttention {
    shape: SpanShape,
    scale: f32,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// The table by offset, `[E, Dh]` (see the [module docs](self)).
    by_offset: Vec<f32>,
    /// Per head row, per tile, `[Tq, Wk]` (zero outside each query's window), in that order;
    /// head row `i`'s begin at `starts[i]`.
    probs: Vec<f32>,
    starts: Vec<usize>,
}

/// The gradients [`SpanAttention::backward`] returns, as `[N, W]` rows and the table's.
pub(crate) struct SpanGrads {
    pub(crate) dq: Vec<f32>,
    pub(crate) dk: Vec<f32>,
    pub(crate) dv: Vec<f32>,
    /// `[S, Dh]` (causal) or `[2S − 1, Dh]` (bidirectional); zero in the rows no query reached.
    pub(crate) dtable: Vec<f32>,
}

impl SpanAttention {
    /// Attend every position over its window.
    ///
    /// # Panics
    /// If the table's size does not fit the shape, or a bidirectional sequence's length is
    /// 0 or beyond T.
    ///
    /// # Shapes
    /// - q, k, v: `[N, W]` rows
    /// - table: `[S, Dh]` (causal) or `[2S − 1, Dh]` (bidirectional)
    /// - output: `[N, W]` rows (heads merged, before the output projection)
    pub(crate) fn forward(
        shape: SpanShape,
        scale: f32,
        (q, k, v): (&[f32], &[f32], &[f32]),
        table: &[f32],
    ) -> (Vec<f32>, Self) {
        let (len, dh) = (shape.len, shape.dh);
        assert_eq!(
            table.len(),
            shape.table_rows() * dh,
            "the position table must hold {} rows of {dh}",
            shape.table_rows()
        );
        if let Keys::Bidirectional(lens) | Keys::Cross { lens, .. } = &shape.keys {
            let key_len = shape.key_len();
            assert_eq!(lens.len(), shape.batch, "one length per sequence");
            assert!(
                lens.iter().all(|&l| (1..=key_len).contains(&l)),
                "sequence lengths {lens:?} must lie in 1..={key_len}"
            );
        }
        let (e, _) = shape.offsets();
        let by_offset: Vec<f32> = (0..e)
            .flat_map(|r| {
                let row = shape.table_row(r);
                table[row * dh..(row + 1) * dh].iter().copied()
            })
            .collect();
        let starts = shape.probs_starts();
        let mut me = Self {
            scale,
            q: shape.split_heads(q, len),
            k: shape.split_heads(k, shape.key_len()),
            v: shape.split_heads(v, shape.key_len()),
            by_offset,
            probs: Vec::new(),
            starts,
            shape,
        };
        let table_t = transpose(&me.by_offset, e, dh); // [Dh, E]
        let (rows, head) = (me.shape.rows(), len * dh);
        let mut out = vec![0.0f32; rows * head];
        let mut probs = vec![0.0f32; me.starts[rows]];
        // Half the head rows on each core (`mnemo_kernels::on_both_cores`).
        let half = rows / 2;
        let (out0, out1) = out.split_at_mut(half * head);
        let (probs0, probs1) = probs.split_at_mut(me.starts[half]);
        let this = &me;
        let run = |rows: Range<usize>, out: &mut [f32], probs: &mut [f32]| {
            let base = this.starts[rows.start];
            for (i, out_i) in rows.zip(out.chunks_exact_mut(head)) {
                let probs_i = &mut probs[this.starts[i] - base..this.starts[i + 1] - base];
                this.forward_row(i, &table_t, out_i, probs_i);
            }
        };
        on_both_cores(
            || run(0..half, out0, probs0),
            || run(half..rows, out1, probs1),
        );
        me.probs = probs;
        (me.shape.merge_heads(&out, len), me)
    }

    /// Head row `i`'s attention: its output `[T, Dh]` and its tiles' probabilities.
    fn forward_row(&self, i: usize, table_t: &[f32], out: &mut [f32], probs: &mut [f32]) {
        let shape = &self.shape;
        let (len, dh) = (shape.len, shape.dh);
        let (e, _) = shape.offsets();
        let (head, keys) = (len * dh, shape.key_len() * dh);
        let (q_i, k_i, v_i) = (
            &self.q[i * head..(i + 1) * head],
            &self.k[i * keys..(i + 1) * keys],
            &self.v[i * keys..(i + 1) * keys],
        );
        let pq = product(q_i, len, table_t, dh, e); // [T, E]: q_t · by_offset[r]; none cross
        let mut at = 0; // where the tile's probabilities begin in `probs`
        for tile in shape.tiles(i) {
            let (tq, wk) = tile.size();
            let a = &mut probs[at..at + tq * wk];
            at += tq * wk;
            let keys_t = transpose(tile.rows(k_i, dh, true), wk, dh); // [Dh, Wk]
            matmul_rows(tile.rows(q_i, dh, false), &keys_t, a, tq, dh, wk);
            for (r, row) in a.chunks_exact_mut(wk).enumerate() {
                let (cols, t) = tile.columns(shape, i, r);
                let pos = (e > 0).then(|| &pq[tile.position_row(shape, t, &cols)..][..cols.len()]);
                softmax_window(row, pos, cols, self.scale);
            }
            let o = &mut out[tile.t0 * dh..tile.t1 * dh];
            matmul_rows(a, tile.rows(v_i, dh, true), o, tq, wk, dh);
        }
    }

    /// Backward of [`forward`](Self::forward) given `dL/d(output)`.
    ///
    /// # Shapes
    /// - d_out: `[N, W]` rows
    /// - output: dq, dk, dv `[N, W]` rows; dtable as the table
    pub(crate) fn backward(&self, d_out: &[f32]) -> SpanGrads {
        let shape = &self.shape;
        let dh = shape.dh;
        let (e, _) = shape.offsets();
        let (head, keys) = (shape.len * dh, shape.key_len() * dh);
        let d_out = shape.split_heads(d_out, shape.len);
        let rows = shape.rows();
        let mut grads = [head, keys, keys].map(|n| vec![0.0f32; rows * n]); // dq, dk, dv
        let mut d_offsets = [(); 2].map(|_| vec![0.0f32; e * dh]); // per half, by offset
        // Half the head rows on each core, each half its own table gradient.
        let half = shape.rows() / 2;
        let [dq, dk, dv] = &mut grads;
        let (dq0, dq1) = dq.split_at_mut(half * head);
        let (dk0, dk1) = dk.split_at_mut(half * keys);
        let (dv0, dv1) = dv.split_at_mut(half * keys);
        let [d_offsets0, d_offsets1] = &mut d_offsets;
        let d_out = &d_out;
        let run = |first: usize, [dq, dk, dv]: [&mut [f32]; 3], d_offsets: &mut [f32]| {
            let rows = dq.chunks_exact_mut(head).zip(dk.chunks_exact_mut(keys));
            for (n, ((dq_i, dk_i), dv_i)) in rows.zip(dv.chunks_exact_mut(keys)).enumerate() {
                let i = first + n;
                let do_i = &d_out[i * head..(i + 1) * head];
                self.backward_row(i, do_i, [dq_i, dk_i, dv_i], d_offsets);
            }
        };
        on_both_cores(
            || run(0, [dq0, dk0, dv0], d_offsets0),
            || run(half, [dq1, dk1, dv1], d_offsets1),
        );
        add_into(d_offsets0, d_offsets1);
        // Each row of the layout by offset into its row of the table (rows no query reached,
        // such as causal distances ≥ T, stay zero).
        let mut dtable = vec![0.0f32; shape.table_rows() * dh];
        for (r, d) in d_offsets[0].chunks_exact(dh).enumerate() {
            let row = shape.table_row(r);
            add_into(&mut dtable[row * dh..(row + 1) * dh], d);
        }
        let [dq, dk, dv] = grads;
        let (dq, dk, dv) = (
            shape.merge_heads(&dq, shape.len),
            shape.merge_heads(&dk, shape.key_len()),
            shape.merge_heads(&dv, shape.key_len()),
        );
        SpanGrads { dq, dk, dv, dtable }
    }

    /// Head row `i`'s backward given its `dL/d(output)` `[T, Dh]`: writes its dq, dk, dv
    /// `[T, Dh]` each and adds the gradient of the table by offset into `d_offsets`.
    fn backward_row(
        &self,
        i: usize,
        do_i: &[f32],
        [dq_i, dk_i, dv_i]: [&mut [f32]; 3],
        d_offsets: &mut [f32],
    ) {
        let shape = &self.shape;
        let (len, dh) = (shape.len, shape.dh);
        let (e, _) = shape.offsets();
        let (head, keys) = (len * dh, shape.key_len() * dh);
        let rows = i * keys..(i + 1) * keys;
        let (q_i, k_i, v_i) = (
            &self.q[i * head..(i + 1) * head],
            &self.k[rows.clone()],
            &self.v[rows],
        );
        let probs = &self.probs[self.starts[i]..self.starts[i + 1]];
        let mut at = 0; // where the tile's probabilities begin in `probs`
        // dL/d(q_t · by_offset[r]) of every query, [T, E].
        let mut gpos = vec![0.0f32; len * e];
        for tile in shape.tiles(i) {
            let (tq, wk) = tile.size();
            let a = &probs[at..at + tq * wk];
            at += tq * wk;
            let do_tile = tile.rows(do_i, dh, false);
            let q_tile = tile.rows(q_i, dh, false);
            let values_t = transpose(tile.rows(v_i, dh, true), wk, dh); // [Dh, Wk]
            let da = product(do_tile, tq, &values_t, dh, wk); // dO · v_κ
            // g = scale · a ⊙ (da − Σ a·da): the gradient of q·k_κ and of the position term.
            let mut g = vec![0.0f32; tq * wk];
            for (r, ((g_row, a_row), da_row)) in g
                .chunks_exact_mut(wk)
                .zip(a.chunks_exact(wk))
                .zip(da.chunks_exact(wk))
                .enumerate()
            {
                let (cols, t) = tile.columns(shape, i, r);
                let dot: f32 = cols.clone().map(|c| a_row[c] * da_row[c]).sum();
                for c in cols.clone() {
                    g_row[c] = self.scale * a_row[c] * (da_row[c] - dot);
                }
                if e > 0 {
                    let pos = &mut gpos[tile.position_row(shape, t, &cols)..][..cols.len()];
                    pos.copy_from_slice(&g_row[cols]);
                }
            }
            let dq_tile = &mut dq_i[tile.t0 * dh..tile.t1 * dh];
            matmul_rows(&g, tile.rows(k_i, dh, true), dq_tile, tq, wk, dh);
            let dk_range = product(&transpose(&g, tq, wk), wk, q_tile, tq, dh);
            add_into(&mut dk_i[tile.k0 * dh..tile.k1 * dh], &dk_range);
            let dv_range = product(&transpose(a, tq, wk), wk, do_tile, tq, dh);
            add_into(&mut dv_i[tile.k0 * dh..tile.k1 * dh], &dv_range);
        }
        if e > 0 {
            add_into(dq_i, &product(&gpos, len, &self.by_offset, e, dh));
            let d_offsets_i = product(&transpose(&gpos, len, e), e, q_i, len, dh);
            add_into(d_offsets, &d_offsets_i);
        }
    }
}

/// Turn one row of raw `q·k` products into probabilities: within `cols`, add the position
/// term `pos` (if any) and scale, softmax; zero outside.
fn softmax_window(row: &mut [f32], pos: Option<&[f32]>, cols: Range<usize>, scale: f32) {
    let window = &mut row[cols.clone()];
    let mut max = f32::NEG_INFINITY;
    for (c, s) in window.iter_mut().enumerate() {
        *s = (*s + pos.map_or(0.0, |p| p[c])) * scale;
        max = max.max(*s);
    }
    let mut sum = 0.0f32;
    for s in window.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    let inv = 1.0 / sum;
    for s in window.iter_mut() {
        *s *= inv;
    }
    row[..cols.start].fill(0.0);
    row[cols.end..].fill(0.0);
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Bool, Distribution, Int, Tensor, TensorData};
    use mnemo_core::attend;
    use mnemo_core::heads::{merge_heads, split_heads};
    use mnemo_core::host::{max_abs_diff, to_vec};

    use super::*;

    /// Asserts `got` equals `want` to 1e-4.
    fn close(name: &str, what: &str, got: &[f32], want: Vec<f32>) {
        assert_eq!(got.len(), want.len(), "{name}: {what}'s size");
        let diff = max_abs_diff(got, &want);
        assert!(diff < 1e-4, "{name}: {what} differs by {diff}");
    }

    /// Runs the kernel of `shape` on `q`, `k`, `v` (rows `[B, ·, W]`) and `table` (none: cross)
    /// and asserts that its output equals `want` (burn's, from the same tensors) and its
    /// gradients for `d_out` equal autodiff's of `Σ want ⊙ d_out`.
    fn assert_kernel_matches(
        name: &str,
        shape: SpanShape,
        [q, k, v]: [&Tensor<3>; 3],
        table: Option<&Tensor<2>>,
        want: Tensor<3>,
        d_out: &Tensor<3>,
    ) {
        let grads = (want.clone() * d_out.clone()).sum().backward();
        let host = |x: &Tensor<3>| to_vec(x.clone().inner());
        let table_values = table.map_or(Vec::new(), |t| to_vec(t.clone().inner()));
        let scale = 1.0 / (shape.dh as f32).sqrt();
        let (got, attention) =
            SpanAttention::forward(shape, scale, (&host(q), &host(k), &host(v)), &table_values);
        let g = attention.backward(&host(d_out));
        close(name, "output", &got, host(&want));
        let grad3 = |x: &Tensor<3>| to_vec(x.grad(&grads).expect("read"));
        close(name, "dq", &g.dq, grad3(q));
        close(name, "dk", &g.dk, grad3(k));
        close(name, "dv", &g.dv, grad3(v));
        match table {
            Some(t) => close(
                name,
                "dtable",
                &g.dtable,
                to_vec(t.grad(&grads).expect("read")),
            ),
            None => assert!(g.dtable.is_empty(), "{name}: no table"),
        }
    }

    /// A key padding mask `[B, 1, 1, len]`: true at positions ≥ `lens[b]`.
    fn padding(lens: &[usize], len: usize, device: &burn::tensor::Device) -> Tensor<4, Bool> {
        let pad: Vec<bool> = lens
            .iter()
            .flat_map(|&l| (0..len).map(move |t| t >= l))
            .collect();
        Tensor::<1, Bool>::from_data(TensorData::new(pad, [lens.len() * len]), device).reshape([
            lens.len(),
            1,
            1,
            len,
        ])
    }

    /// The cross kernel against burn's attention of the queries over another sequence's keys
    /// with its padding mask (no positions): outputs and the gradients of q, k and v; keys
    /// fewer and more than the queries, two query tiles.
    #[test]
    fn cross_equals_the_masked_tensor_attention() {
        let device = mnemo_backend::test_device();
        let (heads, dh) = (2, 4);
        let w = heads * dh;
        for (len, key_len, lens) in [
            (5, 3, vec![3, 1, 2]),
            (4, 9, vec![9, 6]),
            (70, 6, vec![2, 6]),
        ] {
            let b = lens.len();
            let normal = |shape: [usize; 3]| {
                Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad()
            };
            let (q, k, v) = (
                normal([b, len, w]),
                normal([b, key_len, w]),
                normal([b, key_len, w]),
            );
            let d_out = normal([b, len, w]);
            let split = |x: &Tensor<3>| split_heads(x.clone(), heads);
            let mask = padding(&lens, key_len, &device);
            let want = merge_heads(attend(split(&q), split(&k), split(&v), None, Some(mask)));
            let shape = SpanShape {
                batch: b,
                len,
                heads,
                dh,
                span: 0,
                keys: Keys::Cross {
                    lens: lens.clone(),
                    len: key_len,
                },
            };
            let name = format!("T {len}, source {key_len}, lengths {lens:?}");
            assert_kernel_matches(&name, shape, [&q, &k, &v], None, want, &d_out);
        }
    }

    /// The bidirectional kernel against burn's tensor attention with the clamped distances
    /// gathered from the whole table and the key padding mask (an independent reference:
    /// `[B, H, T, T]` scores, autodiff): outputs, and the gradients of q, k, v and the table
    /// for a random output gradient; sequences shorter than the span, as long and longer
    /// (clamping), some padded, two tiles.
    #[test]
    fn bidirectional_equals_the_masked_tensor_attention() {
        let device = mnemo_backend::test_device();
        let (heads, dh) = (2, 4);
        let w = heads * dh;
        for (len, span, lens) in [
            (5, 8, vec![5, 3, 1]),
            (6, 6, vec![6, 4]),
            (7, 3, vec![7, 2, 5]),
            (70, 4, vec![70, 66]),
        ] {
            let b = lens.len();
            let normal = |shape: [usize; 3]| {
                Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device)
            };
            let [q, k, v] = [(); 3].map(|_| normal([b, len, w]).require_grad());
            let table =
                Tensor::<2>::random([2 * span - 1, dh], Distribution::Normal(0.0, 1.0), &device)
                    .require_grad();
            let d_out = normal([b, len, w]);
            // The reference: every pair's row S − 1 + clamp(κ − t, ±(S − 1)), keys ≥ L masked.
            let top = span as i64 - 1;
            let index: Vec<i64> = (0..len as i64)
                .flat_map(|t| (0..len as i64).map(move |k| (k - t).clamp(-top, top) + top))
                .collect();
            let index = Tensor::<2, Int>::from_data(TensorData::new(index, [len, len]), &device)
                .unsqueeze::<4>()
                .expand([b, heads, len, len]);
            let qh = split_heads(q.clone(), heads);
            let scale = 1.0 / (dh as f32).sqrt();
            let pos = qh
                .clone()
                .matmul(table.clone().transpose().unsqueeze::<4>())
                .gather(3, index)
                .mul_scalar(scale);
            let mask = padding(&lens, len, &device);
            let (kh, vh) = (split_heads(k.clone(), heads), split_heads(v.clone(), heads));
            let want = merge_heads(attend(qh, kh, vh, Some(pos), Some(mask)));
            let shape = SpanShape {
                batch: b,
                len,
                heads,
                dh,
                span,
                keys: Keys::Bidirectional(lens.clone()),
            };
            let name = format!("T {len}, S {span}, lengths {lens:?}");
            assert_kernel_matches(&name, shape, [&q, &k, &v], Some(&table), want, &d_out);
        }
    }
}
