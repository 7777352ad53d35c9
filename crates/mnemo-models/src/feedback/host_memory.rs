//! Keys and values of the memory's windows in host memory, in the CPU kernels'
//! `[B·H, slots, Dh]` layout per projection ([`HostKv`]): what `mnemo_kernels::window_attend`
//! reads. Three users hold one: the manual forward and backward of a segment
//! ([`HostWindows`](super::backward::host_window::HostWindows), slots `S + T`), the Feedback
//! decoder's step-by-step decoding ([`HostMemory`], a copy kept beside a [`FeedbackMemory`]'s
//! buffers and attended instead of a handful of burn ops per layer and step), and a Transformer
//! decoder layer's self-attention in decoding ([`HostMemory::causal`],
//! [`crate::host_self_attention`]).
//!
//! In [`HostMemory`] the window's folded zero memories (see
//! [`FeedbackMemory::folded`](super::FeedbackMemory::folded)) stay folded: the kernels read
//! `(k₀, v₀)` once per row and score the folded slots by their positions alone
//! ([`ZeroSlots`]), the same attention as [`attend_window`](super::layer::attend_window)'s in
//! another rounding order, so a step early in a sentence reads what was decoded and not S
//! slots of keys and values. Its buffers hold `2·S` slots; a step writes slot `start + S` and the
//! window moves one slot on; when the buffer is full the live S slots move to the front (one
//! copy every S steps). A causal cache leaves the window's slots before the first step out of
//! the attention instead, stores only the written slots (its window start is negative until S
//! steps are written) and grows its buffers from 32 slots to `2·S` on the way.
//!
//! Size legend: B rows, H heads, S span, Dh head size, D = H·Dh.
//!
//! [`FeedbackMemory`]: super::FeedbackMemory
use burn::tensor::{Tensor, TensorData};
use mnemo_kernels::{Isa, Window, WindowShape, ZeroSlots, window_attend};

use super::host;

/// Per projection, keys and values `[B·H, slots, Dh]` on the host; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct HostKv {
    pub(crate) isa: Isa,
    pub(crate) shape: WindowShape,
    /// The scores' scale, `1/√Dh`.
    pub(crate) scale: f32,
    pub(crate) keys: Vec<Vec<f32>>,
    pub(crate) values: Vec<Vec<f32>>,
}

impl HostKv {
    /// The S slots of projection `p` from slot `start`, read with positions `pos` (`[S, Dh]`).
    pub(crate) fn window<'a>(&'a self, p: usize, start: usize, pos: &'a [f32]) -> Window<'a> {
        Window {
            isa: self.isa,
            shape: self.shape,
            start,
            scale: self.scale,
            keys: &self.keys[p],
            values: &self.values[p],
            pos: Some(pos),
            zeros: None,
        }
    }

    /// Attention of queries `q` over the window of projection `p` from slot `start` for the
    /// window rows `rows` (`q` holds those rows' queries), the window's oldest slots folded as
    /// `zeros` (whose rows are the whole window's): those rows' probabilities and outputs, bit
    /// for bit those of all rows.
    ///
    /// # Shapes
    /// - q: `[rows.len(), Dh]`
    /// - output: probabilities `[rows.len(), S]`, outputs `[rows.len(), Dh]`
    pub(crate) fn attend_rows(
        &self,
        p: usize,
        start: usize,
        pos: &[f32],
        q: &[f32],
        rows: std::ops::Range<usize>,
        zeros: Option<ZeroSlots>,
    ) -> (Vec<f32>, Vec<f32>) {
        let window = Window {
            zeros,
            ..self.window(p, start, pos)
        };
        attend_window(window, q, rows)
    }

    /// [`attend_rows`](Self::attend_rows) over the `n ≤ S` slots from `start` alone (a causal
    /// window shorter than the span; nothing folded), with their positions `pos` (`[n, Dh]`).
    fn attend_short_rows(
        &self,
        (p, start, n): (usize, usize, usize),
        pos: &[f32],
        q: &[f32],
        rows: std::ops::Range<usize>,
    ) -> Vec<f32> {
        let window = Window {
            shape: WindowShape {
                span: n,
                ..self.shape
            },
            ..self.window(p, start, pos)
        };
        attend_window(window, q, rows).1
    }

    /// Write one step's key and value rows (`[B·H, Dh]` = `[B, D]` each) into slot `slot` of
    /// projection `p`.
    pub(crate) fn write(&mut self, p: usize, slot: usize, k: &[f32], v: &[f32]) {
        let WindowShape { slots, dh, .. } = self.shape;
        for (buf, x) in [(&mut self.keys[p], k), (&mut self.values[p], v)] {
            for (row, new) in buf.chunks_exact_mut(slots * dh).zip(x.chunks_exact(dh)) {
                row[slot * dh..(slot + 1) * dh].copy_from_slice(new);
            }
        }
    }
}

/// `window_attend` of queries `q` for the window rows `rows`: their probabilities and outputs.
///
/// # Shapes
/// - q: `[rows.len(), Dh]`
/// - output: probabilities `[rows.len(), span]`, outputs `[rows.len(), Dh]`
fn attend_window(window: Window, q: &[f32], rows: std::ops::Range<usize>) -> (Vec<f32>, Vec<f32>) {
    let WindowShape { span, dh, .. } = window.shape;
    let mut probs = vec![0.0f32; rows.len() * span];
    let mut out = vec![0.0f32; rows.len() * dh];
    window_attend(&window.rows(rows), q, &mut probs, &mut out);
    (probs, out)
}

/// Slots per row a causal cache ([`HostMemory::causal`]) starts with.
const CAUSAL_SLOTS: usize = 32;

/// The host windows of a decoding memory; see the [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct HostMemory {
    kv: HostKv,
    /// The buffer slot of the window's first slot: negative while a causal cache's window
    /// reaches before the first step (its absent slots are not stored).
    start: isize,
    /// The window's oldest slots that are folded zero memories (0 once S steps are stored),
    /// or with `absent`, slots not written yet.
    folded: usize,
    /// The folded slots are not attended (a causal self-attention cache's positions before
    /// the first: [`HostMemory::causal`]) instead of holding the zero memory.
    absent: bool,
    /// Per projection, the zero memory's key and value per head (`[H, Dh]` each; empty
    /// without folded slots).
    zero: Vec<(Vec<f32>, Vec<f32>)>,
    /// Per projection, `zero` repeated for every batch row (`[B·H, Dh]` each), as the kernels
    /// read it.
    zero_rows: Vec<(Vec<f32>, Vec<f32>)>,
    /// A buffer [`select`](Self::select) gathers into (the one it replaced last).
    spare: Vec<f32>,
}

/// The folded start of a window: how many of its oldest slots are zero memories, and per
/// projection the zero memory's key and value per head (`[H, Dh]` each).
pub(crate) struct FoldedStart {
    pub(crate) count: usize,
    pub(crate) zero: Vec<(Vec<f32>, Vec<f32>)>,
}

impl HostMemory {
    /// From each projection's stored window slots (the newest `S − folded`, oldest first), the
    /// older slots being the folded zero memories of `folded` (None: all S stored), in buffers
    /// of `shape.slots` slots per row (more than S; decoding memories take `2·S`).
    ///
    /// # Shapes
    /// - stored: per projection, keys and values `[B·H, S − folded, Dh]` each (row-major
    ///   `[B, H, S − folded, Dh]`)
    pub(crate) fn new(
        stored: Vec<(Vec<f32>, Vec<f32>)>,
        shape: WindowShape,
        folded: Option<FoldedStart>,
    ) -> Self {
        let WindowShape { rows, span, dh, .. } = shape;
        let slots = shape.slots;
        assert!(
            slots > span,
            "{slots} slots leave no room past a window of {span}"
        );
        let count = folded.as_ref().map_or(0, |f| f.count);
        let n = span - count;
        let spread = |window: &[f32]| {
            let mut buf = vec![0.0f32; rows * slots * dh];
            for (i, row) in window.chunks_exact((n * dh).max(1)).enumerate() {
                buf[(i * slots + count) * dh..][..n * dh].copy_from_slice(row);
            }
            buf
        };
        let (keys, values) = stored.iter().map(|(k, v)| (spread(k), spread(v))).unzip();
        let kv = HostKv {
            isa: Isa::detect(),
            shape,
            scale: 1.0 / (dh as f32).sqrt(),
            keys,
            values,
        };
        let mut memory = Self {
            kv,
            start: 0,
            folded: count,
            absent: false,
            zero: folded.map(|f| f.zero).unwrap_or_default(),
            zero_rows: Vec::new(),
            spare: Vec::new(),
        };
        memory.repeat_zero();
        memory
    }

    /// An empty causal self-attention cache of one projection (a Transformer decoder layer's
    /// keys and values, [`crate::host_self_attention`]): a step [`push`](Self::push)es its key
    /// and value, then [`attend`](Self::attend) reads the newest `min(steps, S)` slots, the
    /// positions of the slots not written yet left out.
    ///
    /// Only the written slots are stored: the buffers start at [`CAUSAL_SLOTS`] slots per row
    /// and double as steps are written, up to `2·S` (as mnemo-core's `KvCache`), so a beam
    /// search's short sentences do not allocate `2·S` slots per row and layer.
    ///
    /// # Shapes
    /// - rows: B·H window rows; span: S; dh: Dh
    pub(crate) fn causal(rows: usize, span: usize, dh: usize) -> Self {
        let shape = WindowShape {
            rows,
            slots: CAUSAL_SLOTS.min(2 * span),
            span,
            dh,
        };
        let empty = vec![0.0f32; shape.rows * shape.slots * shape.dh];
        Self {
            kv: HostKv {
                isa: Isa::detect(),
                shape,
                scale: 1.0 / (shape.dh as f32).sqrt(),
                keys: vec![empty.clone()],
                values: vec![empty],
            },
            start: -(shape.span as isize),
            folded: shape.span,
            absent: true,
            zero: Vec::new(),
            zero_rows: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// The buffer slots of the window's stored slots (the S live ones but the folded).
    fn stored(&self) -> std::ops::Range<usize> {
        let first = self.start + self.folded as isize;
        let end = self.start + self.kv.shape.span as isize;
        usize::try_from(first).expect("stored slots lie in the buffer")
            ..usize::try_from(end).expect("stored slots lie in the buffer")
    }

    /// The buffer slot of the window's first slot, where the kernels read all S slots.
    fn window_start(&self) -> usize {
        usize::try_from(self.start).expect("a window of folded zero memories lies in the buffer")
    }

    /// `zero_rows` for the current rows (nothing once no slot is folded).
    fn repeat_zero(&mut self) {
        let rows = self.kv.shape.rows;
        self.zero_rows = match self.folded {
            0 => Vec::new(),
            _ => {
                let repeat = |x: &Vec<f32>| {
                    let heads = x.len() / self.kv.shape.dh;
                    x.repeat(rows / heads)
                };
                self.zero
                    .iter()
                    .map(|(k, v)| (repeat(k), repeat(v)))
                    .collect()
            }
        };
    }

    /// The folded zero slots of projection `p`'s window, if any.
    fn zeros(&self, p: usize) -> Option<ZeroSlots<'_>> {
        let (keys, values) = self.zero_rows.get(p).filter(|_| self.folded > 0)?;
        Some(ZeroSlots {
            count: self.folded,
            keys,
            values,
        })
    }

    /// Append one step's keys and values (per projection `[B·H, Dh]` each); the oldest slot
    /// leaves the window.
    pub(crate) fn push(&mut self, projected: &[(Vec<f32>, Vec<f32>)]) {
        let WindowShape { slots, span, .. } = self.kv.shape;
        if self.start + span as isize == slots as isize {
            self.move_to_front();
        }
        let slot = (self.start + span as isize) as usize; // ≥ 0: the stored slots lie in the buffer
        for (p, (k, v)) in projected.iter().enumerate() {
            self.kv.write(p, slot, k, v);
        }
        self.start += 1;
        if self.folded > 0 {
            self.folded -= 1;
            if self.folded == 0 {
                self.zero_rows = Vec::new();
            }
        }
    }

    /// The buffers are full: move the window's kept slots (all S; a causal cache's stored ones)
    /// to the front of each row, in buffers twice as long while they are shorter than `2·S`.
    fn move_to_front(&mut self) {
        let WindowShape {
            rows,
            slots,
            span,
            dh,
        } = self.kv.shape;
        let skip = if self.absent { self.folded } else { 0 };
        let from = (self.start + skip as isize) as usize;
        let kept = (from * dh)..((self.start + span as isize) as usize * dh);
        let new_slots = (2 * slots).min(2 * span).max(slots);
        for buf in self.kv.keys.iter_mut().chain(self.kv.values.iter_mut()) {
            if new_slots == slots {
                for row in buf.chunks_exact_mut(slots * dh) {
                    row.copy_within(kept.clone(), 0);
                }
            } else {
                let mut grown = vec![0.0f32; rows * new_slots * dh];
                for (to, row) in grown
                    .chunks_exact_mut(new_slots * dh)
                    .zip(buf.chunks_exact(slots * dh))
                {
                    to[..kept.len()].copy_from_slice(&row[kept.clone()]);
                }
                *buf = grown;
            }
        }
        self.kv.shape.slots = new_slots;
        self.start = -(skip as isize);
    }

    /// Keep the batch rows `rows`, in that order (beam search), each with its `heads` window
    /// rows: the same windows a fresh copy of the selected buffers would hold, without going
    /// through the tensors. Only the stored slots of the window are copied (the folded ones and
    /// those outside the window are never read before a step writes them), into buffers kept
    /// from the last reorder.
    ///
    /// # Shapes
    /// - rows: `[B']`, indices into the `B = window rows / heads` batch rows
    pub(crate) fn select(&mut self, rows: &[usize], heads: usize) {
        let WindowShape { slots, dh, .. } = self.kv.shape;
        let row = slots * dh;
        let stored = self.stored();
        let live = stored.start * dh..stored.end * dh;
        let spare = &mut self.spare;
        let mut gather = |buf: &mut Vec<f32>| {
            spare.resize(rows.len() * heads * row, 0.0);
            let picked = rows.iter().flat_map(|&r| r * heads..(r + 1) * heads);
            for (to, from) in spare.chunks_exact_mut(row).zip(picked) {
                to[live.clone()].copy_from_slice(&buf[from * row..][live.clone()]);
            }
            std::mem::swap(buf, spare);
        };
        self.kv.keys.iter_mut().for_each(&mut gather);
        self.kv.values.iter_mut().for_each(&mut gather);
        self.kv.shape.rows = rows.len() * heads;
        self.repeat_zero();
    }

    /// The stored slots (the S live ones but the folded) of every window row of projection
    /// `p`, keys then values (`[B·H, S − folded, Dh]` each).
    pub(crate) fn live(&self, p: usize) -> (Vec<f32>, Vec<f32>) {
        let WindowShape { slots, dh, .. } = self.kv.shape;
        let live = self.stored();
        let window = |buf: &[f32]| {
            buf.chunks_exact(slots * dh)
                .flat_map(|row| row[live.start * dh..live.end * dh].to_vec())
                .collect()
        };
        (window(&self.kv.keys[p]), window(&self.kv.values[p]))
    }

    /// One layer's attention over window `p`: scores `(q·k_j + q·p_j) / √Dh`, softmax, the
    /// weighted values (a causal cache's window: its newest `min(steps, S)` slots, with the
    /// last rows of `pos`).
    ///
    /// # Shapes
    /// - pos: `[S, Dh]`, row j for window slot j (oldest first; the Feedback memories' at
    ///   distance S − j, a causal cache's at S − 1 − j)
    /// - q: `[B·H, Dh]` (row-major `[B, D]`)
    /// - output: `[B·H, Dh]`
    pub(crate) fn attend(&self, p: usize, pos: &[f32], q: &[f32]) -> Vec<f32> {
        self.attend_rows(p, pos, q, 0..self.kv.shape.rows)
    }

    /// The window rows `B·H` of every projection.
    pub(crate) fn rows(&self) -> usize {
        self.kv.shape.rows
    }

    /// [`attend`](Self::attend) for window rows `rows` alone, on this thread's share of a
    /// step (`q` holds those rows' queries): those rows of `attend`'s output, bit for bit.
    ///
    /// # Shapes
    /// - q: `[rows.len(), Dh]`
    /// - output: `[rows.len(), Dh]`
    pub(crate) fn attend_rows(
        &self,
        p: usize,
        pos: &[f32],
        q: &[f32],
        rows: std::ops::Range<usize>,
    ) -> Vec<f32> {
        if self.absent && self.folded > 0 {
            let stored = self.stored();
            let (from, n) = (stored.start, stored.len());
            let dh = self.kv.shape.dh;
            return (self.kv).attend_short_rows((p, from, n), &pos[self.folded * dh..], q, rows);
        }
        self.kv
            .attend_rows(p, self.window_start(), pos, q, rows, self.zeros(p))
            .1
    }
}

/// What one layer reads on the host at a step: its projection's window and its positions.
pub(crate) struct HostRead<'a> {
    pub(crate) memory: &'a HostMemory,
    /// The memory projection (window) the layer reads.
    pub(crate) projection: usize,
    /// The layer's positions `[S, Dh]` (slot j at distance S − j).
    pub(crate) positions: &'a [f32],
}

impl HostRead<'_> {
    /// The layer's attention output for queries `q`, heads merged.
    ///
    /// # Shapes
    /// - q: `[B, 1, H·Dh]`
    /// - output: `[B, 1, H·Dh]`
    pub(crate) fn attend(&self, q: Tensor<3>) -> Tensor<3> {
        let (dims, device) = (q.dims(), q.device());
        let out = self
            .memory
            .attend(self.projection, self.positions, &host(q));
        Tensor::from_data(TensorData::new(out, dims), &device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through several moves to the front, the window holds the S newest slots in order.
    #[test]
    fn the_window_holds_the_newest_span() {
        let (rows, span) = (2, 3);
        let first: Vec<f32> = (0..rows * span).map(|i| -(i as f32) - 1.0).collect();
        let shape = WindowShape {
            rows,
            slots: 2 * span,
            span,
            dh: 1,
        };
        let mut memory = HostMemory::new(vec![(first.clone(), first)], shape, None);
        for t in 0..10 {
            let x: Vec<f32> = (0..rows).map(|r| (100 * r + t) as f32).collect();
            memory.push(&[(x.clone(), x)]);
            let WindowShape { slots, .. } = memory.kv.shape;
            for r in 0..rows {
                let got = &memory.kv.keys[0][r * slots + memory.window_start()..][..span];
                let want: Vec<f32> = (0..span as i64)
                    .map(|j| t as i64 + 1 - span as i64 + j)
                    .map(|s| match s >= 0 {
                        true => (100 * r as i64 + s) as f32,
                        false => -((r * span) as f32) - (span as i64 + s) as f32 - 1.0,
                    })
                    .collect();
                assert_eq!(got, want.as_slice(), "step {t}, row {r}");
            }
        }
    }
}
