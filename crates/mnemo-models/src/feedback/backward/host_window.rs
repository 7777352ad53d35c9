//! The key/value windows of the manual Feedback backward held in host memory
//! ([`StepProducts::Host`](crate::StepProducts::Host)): per-step attention forward and backward
//! with `mnemo_kernels::window`, and the window gradients accumulated in place (the backend
//! path instead adds a `[B, H, S, Dh]` matmul result into a copy of the window every step).
//!
//! Size legend as in [`feedback_backward`](crate::feedback_backward): B batch, H heads, S span,
//! T segment length, Dh head size, D = H·Dh; buffers are `[B·H, S+T, Dh]`.
use burn::tensor::{Tensor, TensorData};
use mnemo_backend::with_slice;

use crate::feedback::FeedbackMemory;
use crate::feedback::host_memory::HostKv;
use mnemo_kernels::{
    Isa, Window, WindowGrads, WindowShape, WindowTerm, ZeroSlots, window_accumulate,
    window_attend_backward, window_slot,
};

/// Steps whose window gradients are added in one pass over the buffers (a pass reads and
/// writes the whole window, so deferring cuts that traffic by this factor).
const DEFER_STEPS: usize = 8;

pub(crate) use mnemo_core::host::to_vec as host;

/// Host windows of every memory projection, their gradients, and each layer's positions.
pub(crate) struct HostWindows {
    /// The keys and values, `[B·H, S+T, Dh]` per projection.
    kv: HostKv,
    batch: usize,
    dkeys: Vec<Vec<f32>>,
    dvalues: Vec<Vec<f32>>,
    /// Per layer, `[S, Dh]`.
    pos: Vec<Vec<f32>>,
    /// Per projection, `(start, folded, [dscores, q, probs, d_out])` of every layer that read
    /// the window in the last steps, not yet added to `dkeys`/`dvalues`.
    pending: Vec<Vec<Pending>>,
    /// With zero carried memories, per projection the zero memory's key and value per row
    /// (`[B·H, Dh]` each): the windows' carried slots are folded ([`ZeroSlots`]), and their key
    /// and value gradients are summed into slot 0 (the projections' weight gradients read
    /// only the carried slots' sum; see `super::carried`).
    zero: Option<Vec<(Vec<f32>, Vec<f32>)>>,
    /// Steps with pending terms.
    pending_steps: usize,
}

/// What the forward of one layer's attention keeps for its backward.
pub(crate) struct HostAttention {
    /// The query, `[B·H, Dh]`.
    q: Vec<f32>,
    /// Attention probabilities, `[B·H, S]`.
    probs: Vec<f32>,
}

impl HostWindows {
    /// Copy a segment's memory (carried slots filled, step slots zero; its host layout,
    /// [`FeedbackMemory::host_buffers`]) and the positions to the host; with `grads`, zeroed
    /// window gradients for a backward (an inference forward allocates none). With
    /// `zero_carried` (the carried memories are all zero) the carried slots are folded.
    ///
    /// # Shapes
    /// - memory: buffers `[B, H, S+T, Dh]`, window at slot 0
    /// - pos: per layer `[S, Dh]`
    pub(crate) fn new(
        memory: &FeedbackMemory,
        pos: Vec<Tensor<2>>,
        scale: f32,
        grads: bool,
        zero_carried: bool,
    ) -> Self {
        let [batch, heads, slots, dh] = memory.buffers().0[0].dims();
        let (keys, values, start) = memory.host_buffers();
        assert_eq!(start, 0, "a segment's memory starts its window at slot 0");
        let span = pos[0].dims()[0];
        let shape = WindowShape {
            rows: batch * heads,
            slots,
            span,
            dh,
        };
        let zeros = || match grads {
            true => keys
                .iter()
                .map(|_| vec![0.0f32; batch * heads * slots * dh])
                .collect(),
            false => Vec::new(),
        };
        let pending = keys.iter().map(|_| Vec::new()).collect();
        let (dkeys, dvalues) = (zeros(), zeros());
        let slot0 = |buf: &Vec<f32>| -> Vec<f32> {
            buf.chunks_exact(slots * dh)
                .flat_map(|row| row[..dh].to_vec())
                .collect()
        };
        let zero = zero_carried.then(|| {
            keys.iter()
                .zip(&values)
                .map(|(k, v)| (slot0(k), slot0(v)))
                .collect()
        });
        Self {
            kv: HostKv {
                isa: Isa::detect(),
                shape,
                scale,
                keys,
                values,
            },
            batch,
            dkeys,
            dvalues,
            pos: pos.into_iter().map(host).collect(),
            pending,
            pending_steps: 0,
            zero,
        }
    }

    /// The folded zero slots of window `proj` at step `t` (the carried slots it still holds),
    /// if the carried memories are zero.
    fn zeros(&self, proj: usize, t: usize) -> Option<ZeroSlots<'_>> {
        let (keys, values) = self.zero.as_ref()?.get(proj)?;
        let count = self.kv.shape.span.saturating_sub(t);
        (count > 0).then_some(ZeroSlots {
            count,
            keys,
            values,
        })
    }

    /// The window of projection `proj` that layer `layer` reads at step `t` (slots `t .. t+S`).
    fn window(&self, proj: usize, layer: usize, t: usize) -> Window<'_> {
        Window {
            zeros: self.zeros(proj, t),
            ..self.kv.window(proj, t, &self.pos[layer])
        }
    }

    /// Layer `layer` at step `t` attends over window `proj` (slots `t .. t+S`).
    ///
    /// # Shapes
    /// - q: `[B, D]`
    /// - output: `[B, D]` (before the output projection)
    pub(crate) fn attend(
        &self,
        proj: usize,
        layer: usize,
        t: usize,
        q: Tensor<2>,
    ) -> (Tensor<2>, HostAttention) {
        let device = q.device();
        let q = host(q);
        let rows = 0..self.kv.shape.rows;
        let zeros = self.zeros(proj, t);
        let (probs, out) = self
            .kv
            .attend_rows(proj, t, &self.pos[layer], &q, rows, zeros);
        let width = out.len() / self.batch;
        let out = Tensor::from_data(TensorData::new(out, [self.batch, width]), &device);
        (out, HostAttention { q, probs })
    }

    /// Write step `t`'s key and value into slot `S + t` of window `proj`.
    ///
    /// # Shapes
    /// - k, v: `[B, D]`
    pub(crate) fn write(&mut self, proj: usize, t: usize, k: Tensor<2>, v: Tensor<2>) {
        let slot = self.kv.shape.span + t;
        with_slice(k, |k| with_slice(v, |v| self.kv.write(proj, slot, k, v)));
    }

    /// Backward of [`attend`](Self::attend): `dL/dq` and the scores' gradient; the window
    /// gradients are added by [`end_step`](Self::end_step).
    ///
    /// # Shapes
    /// - d_out: `[B, D]`
    /// - output: dq `[B, D]`, dscores `[B, H, 1, S]`
    pub(crate) fn backward(
        &mut self,
        proj: usize,
        layer: usize,
        t: usize,
        saved: &HostAttention,
        d_out: Tensor<2>,
    ) -> (Tensor<2>, Tensor<4>) {
        let device = d_out.device();
        let d_out = host(d_out);
        let WindowShape { rows, span, dh, .. } = self.kv.shape;
        let mut dq = vec![0.0f32; rows * dh];
        let mut ds = vec![0.0f32; rows * span];
        let grads = WindowGrads {
            dq: &mut dq,
            dscores: &mut ds,
        };
        window_attend_backward(&self.window(proj, layer, t), &saved.probs, &d_out, grads);
        let heads = rows / self.batch;
        let out = (
            Tensor::from_data(TensorData::new(dq, [self.batch, heads * dh]), &device),
            Tensor::from_data(
                TensorData::new(ds.clone(), [self.batch, heads, 1, span]),
                &device,
            ),
        );
        let folded = self.zeros(proj, t).map_or(0, |z| z.count);
        if folded > 0 {
            self.add_folded(proj, folded, (&ds, &saved.q), (&saved.probs, &d_out));
        }
        let terms = [ds, saved.q.clone(), saved.probs.clone(), d_out];
        self.pending[proj].push((t, folded, terms));
        out
    }

    /// The key and value gradients of a window's `folded` zero slots, summed into slot 0 of
    /// every row: `Σ_j dscores_j · q` and `Σ_j probs_j · d_out` over those slots.
    ///
    /// # Shapes
    /// - ds, probs: `[B·H, S]`; q, d_out: `[B·H, Dh]`
    fn add_folded(
        &mut self,
        proj: usize,
        folded: usize,
        (ds, q): (&[f32], &[f32]),
        (probs, d_out): (&[f32], &[f32]),
    ) {
        let WindowShape {
            span, slots, dh, ..
        } = self.kv.shape;
        let add = |buf: &mut Vec<f32>, coeff: &[f32], vec: &[f32]| {
            let rows = buf.chunks_exact_mut(slots * dh);
            for ((row, c), x) in rows.zip(coeff.chunks_exact(span)).zip(vec.chunks_exact(dh)) {
                let sum: f32 = c[..folded].iter().sum();
                row[..dh].iter_mut().zip(x).for_each(|(g, x)| *g += sum * x);
            }
        };
        add(&mut self.dkeys[proj], ds, q);
        add(&mut self.dvalues[proj], probs, d_out);
    }

    /// After the last layer of step `t` (going backward): every [`DEFER_STEPS`] steps, and at
    /// `t = 0`, add the pending window gradients in one pass per buffer.
    pub(crate) fn end_step(&mut self, t: usize) {
        self.pending_steps += 1;
        if self.pending_steps < DEFER_STEPS && t > 0 {
            return;
        }
        for (p, pending) in self.pending.iter_mut().enumerate() {
            let terms = std::mem::take(pending);
            let (keys, values) = (terms_of(&terms, 0), terms_of(&terms, 2));
            window_accumulate(self.kv.isa, self.kv.shape, &keys, &mut self.dkeys[p]);
            window_accumulate(self.kv.isa, self.kv.shape, &values, &mut self.dvalues[p]);
        }
        self.pending_steps = 0;
    }

    /// The complete key and value gradients of step `t`'s slot (`S + t`) of window `proj`
    /// (added and pending terms), as host rows `[B, D]`. All steps that read the slot (`t+1 ..
    /// t+S`) must be done.
    pub(crate) fn slot_grads(&self, proj: usize, t: usize) -> (Vec<f32>, Vec<f32>) {
        let slot = self.kv.shape.span + t;
        let terms = &self.pending[proj];
        (
            window_slot(self.kv.shape, slot, &terms_of(terms, 0), &self.dkeys[proj]),
            window_slot(
                self.kv.shape,
                slot,
                &terms_of(terms, 2),
                &self.dvalues[proj],
            ),
        )
    }

    /// The window gradients, `[B, H, S+T, Dh]` per projection (keys, values).
    ///
    /// # Panics
    /// If gradients are still pending (the backward must end with [`end_step`](Self::end_step)
    /// at `t = 0`).
    pub(crate) fn into_grads(
        self,
        device: &burn::tensor::Device,
    ) -> (Vec<Tensor<4>>, Vec<Tensor<4>>) {
        assert!(
            self.pending.iter().all(Vec::is_empty),
            "window gradients still pending"
        );
        let WindowShape {
            rows, slots, dh, ..
        } = self.kv.shape;
        let dims = [self.batch, rows / self.batch, slots, dh];
        let to_tensor = |bufs: Vec<Vec<f32>>| {
            bufs.into_iter()
                .map(|g| Tensor::from_data(TensorData::new(g, dims), device))
                .collect()
        };
        (to_tensor(self.dkeys), to_tensor(self.dvalues))
    }
}

/// A layer's window terms not yet added: `(start, folded, [dscores, q, probs, d_out])`.
type Pending = (usize, usize, [Vec<f32>; 4]);

/// The key (`first = 0`: score gradients × queries) or value (`first = 2`: probabilities ×
/// output gradients) terms of pending entries.
fn terms_of(pending: &[Pending], first: usize) -> Vec<WindowTerm<'_>> {
    pending
        .iter()
        .map(|(start, folded, v)| WindowTerm {
            start: *start,
            folded: *folded,
            coeff: &v[first],
            vec: &v[first + 1],
        })
        .collect()
}
