//! A Transformer layer's causal attention over its span with relative positions, forward and
//! backward on host memory with the window kernels of `mnemo_kernels` (the same kernels the
//! Feedback step attends with): query `t` reads keys `t − n + 1 ..= t`, `n = min(t + 1, S)`,
//! a window of the segment's own keys, the newest at distance 0. Equal to
//! [`CausalSelfAttention::forward`](mnemo_core::CausalSelfAttention::forward)'s masked softmax
//! (a masked score is `-1e9`, whose exponential is 0 in `f32`) up to float rounding, without
//! materialising `[B, H, T, T]` scores.
//!
//! Size legend: B batch, T segment length, S span, H heads, Dh head size, W = H·Dh,
//! N = B·T rows (row `b·T + t`), I = B·H head rows; head buffers are `[I, T, Dh]`.
use mnemo_kernels::{
    Isa, Window, WindowGrads, WindowShape, WindowTerm, window_accumulate, window_attend,
    window_attend_backward, window_position_grad,
};

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

    /// Query `t`'s window: its first key and its length n.
    fn window(&self, t: usize) -> (usize, usize) {
        let n = (t + 1).min(self.span);
        (t + 1 - n, n)
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

    /// Position `t` of every head row, `[I, Dh]`, from a head buffer.
    fn gather(&self, buf: &[f32], t: usize) -> Vec<f32> {
        let (len, dh) = (self.len, self.dh);
        (0..self.rows())
            .flat_map(|i| {
                buf[(i * len + t) * dh..(i * len + t + 1) * dh]
                    .iter()
                    .copied()
            })
            .collect()
    }

    /// Write `[I, Dh]` into position `t` of a head buffer.
    fn scatter(&self, buf: &mut [f32], t: usize, x: &[f32]) {
        let (len, dh) = (self.len, self.dh);
        for (i, row) in x.chunks_exact(dh).enumerate() {
            buf[(i * len + t) * dh..(i * len + t + 1) * dh].copy_from_slice(row);
        }
    }
}

/// One layer's attention over a segment: its inputs in head layout and the probabilities of
/// every query, kept for the backward.
pub(crate) struct SpanAttention {
    isa: Isa,
    shape: SpanShape,
    scale: f32,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// The position table reversed, `[S, Dh]` (row `j` is distance `S − 1 − j`): the last n
    /// rows are a window of n keys' positions, oldest first.
    table_rev: Vec<f32>,
    /// Per query position `t`, `[I, n]`.
    probs: Vec<Vec<f32>>,
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
        let dh = shape.dh;
        assert_eq!(
            table.len(),
            shape.span * dh,
            "the table must hold S·Dh values"
        );
        let table_rev: Vec<f32> = table.chunks_exact(dh).rev().flatten().copied().collect();
        let mut me = Self {
            isa: Isa::detect(),
            shape,
            scale,
            q: shape.split_heads(q),
            k: shape.split_heads(k),
            v: shape.split_heads(v),
            table_rev,
            probs: Vec::with_capacity(shape.len),
        };
        let rows = shape.rows();
        let mut out = vec![0.0f32; me.q.len()];
        for t in 0..shape.len {
            let (_, n) = shape.window(t);
            let q_t = shape.gather(&me.q, t);
            let mut probs = vec![0.0f32; rows * n];
            let mut out_t = vec![0.0f32; rows * dh];
            window_attend(&me.window(t), &q_t, &mut probs, &mut out_t);
            shape.scatter(&mut out, t, &out_t);
            me.probs.push(probs);
        }
        (shape.merge_heads(&out), me)
    }

    /// Query `t`'s window over the keys and values.
    fn window(&self, t: usize) -> Window<'_> {
        let (start, n) = self.shape.window(t);
        let dh = self.shape.dh;
        Window {
            isa: self.isa,
            shape: self.window_shape(n),
            start,
            scale: self.scale,
            keys: &self.k,
            values: &self.v,
            pos: &self.table_rev[(self.shape.span - n) * dh..],
        }
    }

    fn window_shape(&self, n: usize) -> WindowShape {
        WindowShape {
            rows: self.shape.rows(),
            slots: self.shape.len,
            span: n,
            dh: self.shape.dh,
        }
    }

    /// Backward of [`forward`](Self::forward) given `dL/d(output)`.
    ///
    /// # Shapes
    /// - d_out: `[N, W]` rows
    /// - output: dq, dk, dv `[N, W]` rows; dtable `[S, Dh]` (zero beyond distance T − 1)
    pub(crate) fn backward(&self, d_out: &[f32]) -> SpanGrads {
        let shape = self.shape;
        let (rows, dh) = (shape.rows(), shape.dh);
        let d_out = shape.split_heads(d_out);
        let mut dq = vec![0.0f32; d_out.len()];
        let mut dk = vec![0.0f32; d_out.len()];
        let mut dv = vec![0.0f32; d_out.len()];
        let mut dtable_rev = vec![0.0f32; shape.span * dh];
        for t in 0..shape.len {
            let (start, n) = shape.window(t);
            let (q_t, d_out_t) = (shape.gather(&self.q, t), shape.gather(&d_out, t));
            let probs = &self.probs[t];
            let mut dq_t = vec![0.0f32; rows * dh];
            let mut ds = vec![0.0f32; rows * n];
            let grads = WindowGrads {
                dq: &mut dq_t,
                dscores: &mut ds,
            };
            window_attend_backward(&self.window(t), probs, &d_out_t, grads);
            shape.scatter(&mut dq, t, &dq_t);
            let window = self.window_shape(n);
            let term = |coeff, vec| [WindowTerm { start, coeff, vec }];
            window_accumulate(self.isa, window, &term(&ds, &q_t), &mut dk);
            window_accumulate(self.isa, window, &term(probs, &d_out_t), &mut dv);
            // Slot j reads the reversed table's row S − n + j (distance n − 1 − j).
            let dpos = &mut dtable_rev[(shape.span - n) * dh..];
            window_position_grad(self.isa, window, &ds, &q_t, dpos);
        }
        SpanGrads {
            dq: shape.merge_heads(&dq),
            dk: shape.merge_heads(&dk),
            dv: shape.merge_heads(&dv),
            dtable: dtable_rev
                .chunks_exact(dh)
                .rev()
                .flatten()
                .copied()
                .collect(),
        }
    }
}
