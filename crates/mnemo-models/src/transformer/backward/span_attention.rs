//! A Transformer layer's causal attention over its span with relative positions, forward and
//! backward on host memory: query `t` reads keys `t − n + 1 ..= t`, `n = min(t + 1, S)`, a
//! window of the segment's own keys, the newest at distance 0. Equal to
//! [`CausalSelfAttention::forward`](mnemo_core::CausalSelfAttention::forward)'s masked softmax
//! (a masked score is `-1e9`, whose exponential is 0 in `f32`) up to float rounding, without
//! materialising `[B, H, T, T]` scores.
//!
//! Per head row the queries go in tiles of [`TILE`] positions; a tile's keys are the union of
//! its queries' windows, so every score, probability and gradient of a tile is one product of
//! `mnemo_kernels` (`[Tq, Dh] · [Dh, Wk]`, `[Tq, Wk] · [Wk, Dh]`, …) with the entries outside a
//! query's window set to zero, instead of one dot product per query and key. The position term
//! `q·p_d` is one product per head row over the table's reachable rows (`[T, Dh] · [Dh, R]`,
//! R = min(S, T)), read at distance `d = t − κ`.
//!
//! Size legend: B batch, T segment length, S span, H heads, Dh head size, W = H·Dh,
//! N = B·T rows (row `b·T + t`), I = B·H head rows; head buffers are `[I, T, Dh]`; Tq the
//! queries and Wk the keys of a tile; R = min(S, T) the distances a query can reach.
use mnemo_kernels::{matmul_rows, on_both_cores};

/// Queries per tile: a tile's products are `[Tq, Wk]` with `Wk ≤ Tq + S − 1` keys.
const TILE: usize = 64;

/// Sizes of one layer's attention over a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanShape {
    /// Batch B.
    pub(crate) batch: usize,
    /// Segment length T.
    pub(crate) len: usize,
    /// Heads H.
    pub(crate) heads: usize,
    /// Head size Dh.
    pub(crate) dh: usize,
    /// Span S (rows of the position table).
    pub(crate) span: usize,
}

impl SpanShape {
    /// Head rows I = B·H.
    fn rows(&self) -> usize {
        self.batch * self.heads
    }

    /// R = min(S, T): the distances 0..R a query of the segment can reach (the position
    /// products use only those rows of the table).
    fn reach(&self) -> usize {
        self.span.min(self.len)
    }

    /// Query `t`'s window: its first key and its length n.
    fn window(&self, t: usize) -> (usize, usize) {
        let n = (t + 1).min(self.span);
        (t + 1 - n, n)
    }

    /// Probabilities kept per head row: `Σ Tq·Wk` over its tiles.
    fn probs_per_row(&self) -> usize {
        self.tiles()
            .map(|tile| {
                let (tq, wk) = tile.size();
                tq * wk
            })
            .sum()
    }

    /// The query tiles of a head row, in order.
    fn tiles(&self) -> impl Iterator<Item = Tile> + '_ {
        (0..self.len).step_by(TILE).map(|t0| {
            let t1 = (t0 + TILE).min(self.len);
            Tile {
                t0,
                t1,
                k0: self.window(t0).0,
            }
        })
    }

    /// `[N, W]` rows (row `b·T + t`, column `h·Dh + d`) as head buffers `[I, T, Dh]`.
    fn split_heads(&self, x: &[f32]) -> Vec<f32> {
        self.permute(x, true)
    }

    /// Head buffers `[I, T, Dh]` as `[N, W]` rows.
    fn merge_heads(&self, x: &[f32]) -> Vec<f32> {
        self.permute(x, false)
    }

    /// Copy between the two layouts: `(b, t, h)` rows of `Dh` values either way.
    fn permute(&self, x: &[f32], to_heads: bool) -> Vec<f32> {
        let SpanShape {
            batch,
            len,
            heads,
            dh,
            ..
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

/// Queries `t0..t1` of a head row and the keys `k0..t1` their windows cover.
#[derive(Debug, Clone, Copy)]
struct Tile {
    t0: usize,
    t1: usize,
    k0: usize,
}

impl Tile {
    /// Queries Tq and keys Wk.
    fn size(&self) -> (usize, usize) {
        (self.t1 - self.t0, self.t1 - self.k0)
    }

    /// The columns of row `r` (query `t0 + r`) that lie in its window, and the query.
    fn columns(&self, shape: &SpanShape, r: usize) -> (std::ops::Range<usize>, usize) {
        let t = self.t0 + r;
        let (start, _) = shape.window(t);
        (start - self.k0..t + 1 - self.k0, t)
    }

    /// Where, in a `[T, R]` buffer of position terms, query `t`'s first window column
    /// `cols.start` lies: column c is key κ = k0 + c at distance t − κ, the reversed table's row
    /// R − 1 − (t − κ); along the window the rows ascend to R − 1 (distance 0).
    fn position_row(&self, reach: usize, t: usize, cols: &std::ops::Range<usize>) -> usize {
        t * reach + reach - 1 + self.k0 + cols.start - t
    }

    /// Rows `t0..t1` (or `k0..t1` with `keys`) of a `[T, Dh]` head row.
    fn rows<'a>(&self, x: &'a [f32], dh: usize, keys: bool) -> &'a [f32] {
        let from = if keys { self.k0 } else { self.t0 };
        &x[from * dh..self.t1 * dh]
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
    /// The table's first R rows reversed, `[R, Dh]` (row `R − 1 − d` is distance d).
    table_rev: Vec<f32>,
    /// Per head row, per tile, `[Tq, Wk]` (zero outside each query's window), in that order.
    probs: Vec<f32>,
}

/// The gradients [`SpanAttention::backward`] returns, as `[N, W]` rows and the table's `[S, Dh]`.
pub(crate) struct SpanGrads {
    pub(crate) dq: Vec<f32>,
    pub(crate) dk: Vec<f32>,
    pub(crate) dv: Vec<f32>,
    pub(crate) dtable: Vec<f32>,
}

impl SpanAttention {
    /// Attend every position over its span.
    ///
    /// # Shapes
    /// - q, k, v: `[N, W]` rows
    /// - table: `[S, Dh]` (row `d` = distance d)
    /// - output: `[N, W]` rows (heads merged, before the output projection)
    pub(crate) fn forward(
        shape: SpanShape,
        scale: f32,
        (q, k, v): (&[f32], &[f32], &[f32]),
        table: &[f32],
    ) -> (Vec<f32>, Self) {
        let (len, span, dh) = (shape.len, shape.span, shape.dh);
        assert_eq!(table.len(), span * dh, "the table must hold S·Dh values");
        let reach = shape.reach();
        let table_rev: Vec<f32> = table
            .chunks_exact(dh)
            .take(reach)
            .rev()
            .flatten()
            .copied()
            .collect();
        let mut me = Self {
            shape,
            scale,
            q: shape.split_heads(q),
            k: shape.split_heads(k),
            v: shape.split_heads(v),
            table_rev,
            probs: Vec::new(),
        };
        let table_t = transpose(&me.table_rev, reach, dh); // [Dh, R]
        let (rows, head, per_row) = (shape.rows(), len * dh, shape.probs_per_row());
        let mut out = vec![0.0f32; rows * head];
        let mut probs = vec![0.0f32; rows * per_row];
        // Half the head rows on each core (`mnemo_kernels::on_both_cores`).
        let half = rows / 2;
        let (out0, out1) = out.split_at_mut(half * head);
        let (probs0, probs1) = probs.split_at_mut(half * per_row);
        let this = &me;
        let run = |first: usize, out: &mut [f32], probs: &mut [f32]| {
            let rows = out
                .chunks_exact_mut(head)
                .zip(probs.chunks_exact_mut(per_row));
            for (n, (out_i, probs_i)) in rows.enumerate() {
                this.forward_row(first + n, &table_t, out_i, probs_i);
            }
        };
        on_both_cores(|| run(0, out0, probs0), || run(half, out1, probs1));
        me.probs = probs;
        (shape.merge_heads(&out), me)
    }

    /// Head row `i`'s attention: its output `[T, Dh]` and its tiles' probabilities.
    fn forward_row(&self, i: usize, table_t: &[f32], out: &mut [f32], probs: &mut [f32]) {
        let shape = self.shape;
        let (len, reach, dh) = (shape.len, shape.reach(), shape.dh);
        let head = len * dh;
        let (q_i, k_i, v_i) = (
            &self.q[i * head..(i + 1) * head],
            &self.k[i * head..(i + 1) * head],
            &self.v[i * head..(i + 1) * head],
        );
        let pq = product(q_i, len, table_t, dh, reach); // [T, R]: q_t · p_rev[r]
        let mut at = 0; // where the tile's probabilities begin in `probs`
        for tile in shape.tiles() {
            let (tq, wk) = tile.size();
            let a = &mut probs[at..at + tq * wk];
            at += tq * wk;
            let keys_t = transpose(tile.rows(k_i, dh, true), wk, dh); // [Dh, Wk]
            matmul_rows(tile.rows(q_i, dh, false), &keys_t, a, tq, dh, wk);
            for (r, row) in a.chunks_exact_mut(wk).enumerate() {
                let (cols, t) = tile.columns(&shape, r);
                let pos = &pq[tile.position_row(reach, t, &cols)..][..cols.len()];
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
    /// - output: dq, dk, dv `[N, W]` rows; dtable `[S, Dh]` (zero beyond distance T − 1)
    pub(crate) fn backward(&self, d_out: &[f32]) -> SpanGrads {
        let shape = self.shape;
        let (span, reach, dh) = (shape.span, shape.reach(), shape.dh);
        let head = shape.len * dh;
        let d_out = shape.split_heads(d_out);
        let mut grads = [(); 3].map(|_| vec![0.0f32; d_out.len()]); // dq, dk, dv
        let mut dtables = [(); 2].map(|_| vec![0.0f32; reach * dh]); // per half, reversed
        // Half the head rows on each core, each half its own table gradient.
        let half = shape.rows() / 2;
        let [dq, dk, dv] = &mut grads;
        let (dq0, dq1) = dq.split_at_mut(half * head);
        let (dk0, dk1) = dk.split_at_mut(half * head);
        let (dv0, dv1) = dv.split_at_mut(half * head);
        let [dtable0, dtable1] = &mut dtables;
        let d_out = &d_out;
        let run = |first: usize, [dq, dk, dv]: [&mut [f32]; 3], dtable: &mut [f32]| {
            let rows = dq.chunks_exact_mut(head).zip(dk.chunks_exact_mut(head));
            for (n, ((dq_i, dk_i), dv_i)) in rows.zip(dv.chunks_exact_mut(head)).enumerate() {
                let i = first + n;
                let do_i = &d_out[i * head..(i + 1) * head];
                self.backward_row(i, do_i, [dq_i, dk_i, dv_i], dtable);
            }
        };
        on_both_cores(
            || run(0, [dq0, dk0, dv0], dtable0),
            || run(half, [dq1, dk1, dv1], dtable1),
        );
        add_into(dtable0, dtable1);
        let [dq, dk, dv] = grads.map(|g| shape.merge_heads(&g));
        SpanGrads {
            dq,
            dk,
            dv,
            // Distances R.. (only when S > T) are out of reach: zero.
            dtable: dtables[0]
                .chunks_exact(dh)
                .rev()
                .flatten()
                .copied()
                .chain(std::iter::repeat_n(0.0, (span - reach) * dh))
                .collect(),
        }
    }

    /// Head row `i`'s backward given its `dL/d(output)` `[T, Dh]`: writes its dq, dk, dv
    /// `[T, Dh]` each and adds its reversed table's gradient into `dtable_rev`.
    fn backward_row(
        &self,
        i: usize,
        do_i: &[f32],
        [dq_i, dk_i, dv_i]: [&mut [f32]; 3],
        dtable_rev: &mut [f32],
    ) {
        let shape = self.shape;
        let (len, reach, dh) = (shape.len, shape.reach(), shape.dh);
        let head = len * dh;
        let rows = i * head..(i + 1) * head;
        let (q_i, k_i, v_i) = (&self.q[rows.clone()], &self.k[rows.clone()], &self.v[rows]);
        let per_row = shape.probs_per_row();
        let probs = &self.probs[i * per_row..(i + 1) * per_row];
        let mut at = 0; // where the tile's probabilities begin in `probs`
        // dL/d(q_t · p_rev[r]) of every query, [T, R].
        let mut gpos = vec![0.0f32; len * reach];
        for tile in shape.tiles() {
            let (tq, wk) = tile.size();
            let a = &probs[at..at + tq * wk];
            at += tq * wk;
            let do_tile = tile.rows(do_i, dh, false);
            let q_tile = tile.rows(q_i, dh, false);
            let values_t = transpose(tile.rows(v_i, dh, true), wk, dh); // [Dh, Wk]
            let da = product(do_tile, tq, &values_t, dh, wk); // dO · v_κ
            // g = scale · a ⊙ (da − Σ a·da): the gradient of q·k_κ and of q·p at t − κ.
            let mut g = vec![0.0f32; tq * wk];
            for (r, ((g_row, a_row), da_row)) in g
                .chunks_exact_mut(wk)
                .zip(a.chunks_exact(wk))
                .zip(da.chunks_exact(wk))
                .enumerate()
            {
                let (cols, t) = tile.columns(&shape, r);
                let dot: f32 = cols.clone().map(|c| a_row[c] * da_row[c]).sum();
                let pos = &mut gpos[tile.position_row(reach, t, &cols)..][..cols.len()];
                for (c, p) in cols.zip(pos) {
                    g_row[c] = self.scale * a_row[c] * (da_row[c] - dot);
                    *p = g_row[c];
                }
            }
            let dq_tile = &mut dq_i[tile.t0 * dh..tile.t1 * dh];
            matmul_rows(&g, tile.rows(k_i, dh, true), dq_tile, tq, wk, dh);
            let dk_range = product(&transpose(&g, tq, wk), wk, q_tile, tq, dh);
            add_into(&mut dk_i[tile.k0 * dh..tile.t1 * dh], &dk_range);
            let dv_range = product(&transpose(a, tq, wk), wk, do_tile, tq, dh);
            add_into(&mut dv_i[tile.k0 * dh..tile.t1 * dh], &dv_range);
        }
        add_into(dq_i, &product(&gpos, len, &self.table_rev, reach, dh));
        let dtable_i = product(&transpose(&gpos, len, reach), reach, q_i, len, dh);
        add_into(dtable_rev, &dtable_i);
    }
}

/// Turn one row of raw `q·k` products into probabilities: within `cols`, add the position
/// term `pos` and scale, softmax; zero outside.
fn softmax_window(row: &mut [f32], pos: &[f32], cols: std::ops::Range<usize>, scale: f32) {
    let window = &mut row[cols.clone()];
    let mut max = f32::NEG_INFINITY;
    for (s, p) in window.iter_mut().zip(pos) {
        *s = (*s + p) * scale;
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
