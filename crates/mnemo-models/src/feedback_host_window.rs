//! The key/value windows of the manual Feedback backward held in host memory
//! ([`StepProducts::Host`](crate::StepProducts::Host)): per-step attention forward and backward
//! with `mnemo_kernels::window`, and the window gradients accumulated in place (the backend
//! path instead adds a `[B, H, S, Dh]` matmul result into a copy of the window every step).
//!
//! Size legend as in [`feedback_backward`](crate::feedback_backward): B batch, H heads, S span,
//! T segment length, Dh head size, D = H·Dh; buffers are `[B·H, S+T, Dh]`.
use burn::tensor::{Tensor, TensorData};
use mnemo_kernels::{Isa, Window, WindowGrads, WindowShape, window_accumulate, window_attend, window_attend_backward};

/// Read a tensor's values as host `f32`.
pub(crate) fn host<const N: usize>(x: Tensor<N>) -> Vec<f32> {
    x.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 values")
}

/// Host windows of every memory projection, their gradients, and each layer's positions.
pub(crate) struct HostWindows {
    isa: Isa,
    shape: WindowShape,
    batch: usize,
    scale: f32,
    span: usize,
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    dkeys: Vec<Vec<f32>>,
    dvalues: Vec<Vec<f32>>,
    /// Per layer, `[S, Dh]`.
    pos: Vec<Vec<f32>>,
    /// Per projection, the current step's `(dscores, q, probs, d_out)` of every layer that read
    /// the window, added to the window gradients by [`flush`](Self::flush).
    pending: Vec<Vec<[Vec<f32>; 4]>>,
}

/// What the forward of one layer's attention keeps for its backward.
pub(crate) struct HostAttention {
    /// The query, `[B·H, Dh]`.
    q: Vec<f32>,
    /// Attention probabilities, `[B·H, S]`.
    probs: Vec<f32>,
}

impl HostWindows {
    /// Copy the windows (carried slots filled, step slots zero) and positions to the host.
    ///
    /// # Shapes
    /// - keys, values: `[B, H, S+T, Dh]` each
    /// - pos: per layer `[S, Dh]`
    pub(crate) fn new(keys: &[Tensor<4>], values: &[Tensor<4>], pos: Vec<Tensor<2>>, scale: f32) -> Self {
        let [batch, heads, slots, dh] = keys[0].dims();
        let span = pos[0].dims()[0];
        let shape = WindowShape { rows: batch * heads, slots, span, dh };
        let zeros = || keys.iter().map(|_| vec![0.0f32; batch * heads * slots * dh]).collect();
        Self {
            isa: Isa::detect(),
            shape,
            batch,
            scale,
            span,
            keys: keys.iter().map(|k| host(k.clone())).collect(),
            values: values.iter().map(|v| host(v.clone())).collect(),
            dkeys: zeros(),
            dvalues: zeros(),
            pos: pos.into_iter().map(host).collect(),
            pending: keys.iter().map(|_| Vec::new()).collect(),
        }
    }

    /// The window of projection `proj` that layer `layer` reads at step `t` (slots `t .. t+S`).
    fn window(&self, proj: usize, layer: usize, t: usize) -> Window<'_> {
        Window {
            isa: self.isa,
            shape: self.shape,
            start: t,
            scale: self.scale,
            keys: &self.keys[proj],
            values: &self.values[proj],
            pos: &self.pos[layer],
        }
    }

    /// Layer `layer` at step `t` attends over window `proj` (slots `t .. t+S`).
    ///
    /// # Shapes
    /// - q: `[B, D]`
    /// - output: `[B, D]` (before the output projection)
    pub(crate) fn attend(&self, proj: usize, layer: usize, t: usize, q: Tensor<2>) -> (Tensor<2>, HostAttention) {
        let device = q.device();
        let q = host(q);
        let WindowShape { rows, span, dh, .. } = self.shape;
        let mut probs = vec![0.0f32; rows * span];
        let mut out = vec![0.0f32; rows * dh];
        window_attend(&self.window(proj, layer, t), &q, &mut probs, &mut out);
        let out = Tensor::from_data(TensorData::new(out, [self.batch, rows * dh / self.batch]), &device);
        (out, HostAttention { q, probs })
    }

    /// Write step `t`'s key and value into slot `S + t` of window `proj`.
    ///
    /// # Shapes
    /// - k, v: `[B, D]`
    pub(crate) fn write(&mut self, proj: usize, t: usize, k: Tensor<2>, v: Tensor<2>) {
        let slot = self.span + t;
        for (buf, x) in [(&mut self.keys[proj], k), (&mut self.values[proj], v)] {
            scatter_slot(self.shape, buf, slot, &host(x));
        }
    }

    /// Backward of [`attend`](Self::attend): `dL/dq` and the scores' gradient; the window
    /// gradients are added by [`flush`](Self::flush) after the step's last layer.
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
        let WindowShape { rows, span, dh, .. } = self.shape;
        let mut dq = vec![0.0f32; rows * dh];
        let mut ds = vec![0.0f32; rows * span];
        let window = Window {
            isa: self.isa,
            shape: self.shape,
            start: t,
            scale: self.scale,
            keys: &self.keys[proj],
            values: &self.values[proj],
            pos: &self.pos[layer],
        };
        let grads = WindowGrads { dq: &mut dq, dscores: &mut ds };
        window_attend_backward(&window, &saved.probs, &d_out, grads);
        let heads = rows / self.batch;
        let out = (
            Tensor::from_data(TensorData::new(dq, [self.batch, heads * dh]), &device),
            Tensor::from_data(TensorData::new(ds.clone(), [self.batch, heads, 1, span]), &device),
        );
        self.pending[proj].push([ds, saved.q.clone(), saved.probs.clone(), d_out]);
        out
    }

    /// Add the window gradients of step `t`'s layers (slots `t .. t+S` of each window), one
    /// pass over each window for all its layers.
    pub(crate) fn flush(&mut self, t: usize) {
        for (p, pending) in self.pending.iter_mut().enumerate() {
            let terms = std::mem::take(pending);
            let pick = |n: usize| terms.iter().map(|t| t[n].as_slice()).collect::<Vec<_>>();
            window_accumulate(self.isa, self.shape, t, &pick(0), &pick(1), &mut self.dkeys[p]);
            window_accumulate(self.isa, self.shape, t, &pick(2), &pick(3), &mut self.dvalues[p]);
        }
    }

    /// The accumulated key and value gradients of step `t`'s slot (`S + t`) of window `proj`,
    /// as host rows `[B, D]`.
    pub(crate) fn slot_grads(&self, proj: usize, t: usize) -> (Vec<f32>, Vec<f32>) {
        let slot = self.span + t;
        (gather_slot(self.shape, &self.dkeys[proj], slot), gather_slot(self.shape, &self.dvalues[proj], slot))
    }

    /// The window gradients, `[B, H, S+T, Dh]` per projection (keys, values).
    pub(crate) fn into_grads(self, device: &burn::tensor::Device) -> (Vec<Tensor<4>>, Vec<Tensor<4>>) {
        let WindowShape { rows, slots, dh, .. } = self.shape;
        let dims = [self.batch, rows / self.batch, slots, dh];
        let to_tensor = |bufs: Vec<Vec<f32>>| {
            bufs.into_iter().map(|g| Tensor::from_data(TensorData::new(g, dims), device)).collect()
        };
        (to_tensor(self.dkeys), to_tensor(self.dvalues))
    }
}

/// Write rows `[B·H, Dh]` (= `[B, D]`) into slot `slot` of a `[B·H, slots, Dh]` buffer.
fn scatter_slot(shape: WindowShape, buf: &mut [f32], slot: usize, x: &[f32]) {
    let WindowShape { slots, dh, .. } = shape;
    for (i, row) in x.chunks_exact(dh).enumerate() {
        let at = (i * slots + slot) * dh;
        buf[at..at + dh].copy_from_slice(row);
    }
}

/// Read slot `slot` of a `[B·H, slots, Dh]` buffer as rows `[B·H, Dh]` (= `[B, D]`).
fn gather_slot(shape: WindowShape, buf: &[f32], slot: usize) -> Vec<f32> {
    let WindowShape { rows, slots, dh, .. } = shape;
    let mut out = Vec::with_capacity(rows * dh);
    for i in 0..rows {
        let at = (i * slots + slot) * dh;
        out.extend_from_slice(&buf[at..at + dh]);
    }
    out
}
