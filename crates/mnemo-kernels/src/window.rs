//! Attention of one query per row over a window of keys/values with a learned relative
//! position term, forward and backward, on host memory (the Feedback Transformer's per-step
//! attention; see `mnemo_core::attend` for the tensor form).
//!
//! Layouts: `I = B·H` independent rows; a buffer of keys or values is `[I, slots, Dh]` and
//! the window of one step is slots `start .. start + S`; positions are `[S, Dh]` (slot `j` of
//! the window uses `pos[j]`). Scores `s_j = (q·k_j + q·p_j) · scale`, `a = softmax(s)`,
//! `o = Σ_j a_j v_j`.
//!
//! The loops are plain safe Rust, compiled once per instruction set (`#[target_feature]`
//! wrappers chosen by [`Isa::detect`](crate::Isa::detect)) so that they vectorise with
//! AVX-512 or AVX2 where the CPU has it.

/// Sizes of a window of keys/values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowShape {
    /// Independent rows `I = B·H`.
    pub rows: usize,
    /// Slots per row in the key/value buffers.
    pub slots: usize,
    /// Window length `S`.
    pub span: usize,
    /// Head size `Dh`.
    pub dh: usize,
}

/// One step's window: the buffers it reads and where.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// Buffer sizes.
    pub shape: WindowShape,
    /// First slot of the window.
    pub start: usize,
    /// Score scale (`1/√Dh`).
    pub scale: f32,
    /// Keys `[I, slots, Dh]`.
    pub keys: &'a [f32],
    /// Values `[I, slots, Dh]`.
    pub values: &'a [f32],
    /// Relative positions `[S, Dh]`.
    pub pos: &'a [f32],
}

impl Window<'_> {
    fn check(&self, q: &[f32], probs: &[f32]) {
        let WindowShape { rows, slots, span, dh } = self.shape;
        let start = self.start;
        assert!(start + span <= slots, "window {start}..{} outside {slots} slots", start + span);
        assert_eq!(q.len(), rows * dh, "queries must hold rows·dh = {rows}·{dh} values");
        assert_eq!(self.keys.len(), rows * slots * dh, "keys must hold rows·slots·dh values");
        assert_eq!(self.values.len(), rows * slots * dh, "values must hold rows·slots·dh values");
        assert_eq!(self.pos.len(), span * dh, "positions must hold span·dh values");
        assert_eq!(probs.len(), rows * span, "probs must hold rows·span values");
    }
}

/// Lanes of the dot-product accumulator: independent partial sums let the compiler use vector
/// registers (an iterator `sum` is a sequential chain of adds).
const LANES: usize = 16;

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += alpha · x`.
#[inline(always)]
fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// Forward: writes the attention probabilities and outputs.
///
/// # Shapes
/// - q: `[I, Dh]`
/// - probs: `[I, S]`; out: `[I, Dh]` (overwritten)
///
/// # Panics
/// If a length does not match the window's shape or the window leaves the buffer.
pub fn window_attend(w: &Window, q: &[f32], probs: &mut [f32], out: &mut [f32]) {
    w.check(q, probs);
    assert_eq!(out.len(), q.len(), "out must hold rows·dh values");
    match crate::Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found AVX-512F on this CPU.
        crate::Isa::Avx512 => unsafe { attend_avx512(w, q, probs, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found AVX2 and FMA on this CPU.
        crate::Isa::Avx2 => unsafe { attend_avx2(w, q, probs, out) },
        _ => attend(w, q, probs, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn attend_avx512(w: &Window, q: &[f32], probs: &mut [f32], out: &mut [f32]) {
    attend(w, q, probs, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attend_avx2(w: &Window, q: &[f32], probs: &mut [f32], out: &mut [f32]) {
    attend(w, q, probs, out)
}

#[inline(always)]
fn attend(w: &Window, q: &[f32], probs: &mut [f32], out: &mut [f32]) {
    let WindowShape { rows, slots, span, dh } = w.shape;
    for i in 0..rows {
        let qi = &q[i * dh..(i + 1) * dh];
        let base = (i * slots + w.start) * dh;
        let a = &mut probs[i * span..(i + 1) * span];
        let mut max = f32::NEG_INFINITY;
        for (j, aj) in a.iter_mut().enumerate() {
            let k = &w.keys[base + j * dh..base + (j + 1) * dh];
            let p = &w.pos[j * dh..(j + 1) * dh];
            *aj = (dot(qi, k) + dot(qi, p)) * w.scale;
            max = max.max(*aj);
        }
        let mut sum = 0.0;
        for aj in a.iter_mut() {
            *aj = (*aj - max).exp();
            sum += *aj;
        }
        let o = &mut out[i * dh..(i + 1) * dh];
        o.fill(0.0);
        for (j, aj) in a.iter_mut().enumerate() {
            *aj /= sum;
            axpy(o, *aj, &w.values[base + j * dh..base + (j + 1) * dh]);
        }
    }
}

/// Gradients written or added by [`window_attend_backward`].
#[derive(Debug)]
pub struct WindowGrads<'a> {
    /// `dL/dq`, `[I, Dh]` (overwritten).
    pub dq: &'a mut [f32],
    /// Gradient of the scaled scores, `[I, S]` (overwritten).
    pub dscores: &'a mut [f32],
    /// Key gradients `[I, slots, Dh]`: the window's are **added**.
    pub dkeys: &'a mut [f32],
    /// Value gradients `[I, slots, Dh]`: the window's are **added**.
    pub dvalues: &'a mut [f32],
}

/// Backward of [`window_attend`] given `dL/dout`.
///
/// # Shapes
/// - q, d_out: `[I, Dh]`; probs: `[I, S]`
///
/// # Panics
/// If a length does not match the window's shape or the window leaves the buffer.
pub fn window_attend_backward(w: &Window, q: &[f32], probs: &[f32], d_out: &[f32], g: WindowGrads) {
    w.check(q, probs);
    let WindowShape { rows, span, dh, .. } = w.shape;
    assert_eq!(d_out.len(), rows * dh, "d_out must hold rows·dh values");
    assert_eq!(g.dq.len(), rows * dh, "dq must hold rows·dh values");
    assert_eq!(g.dscores.len(), rows * span, "dscores must hold rows·span values");
    assert_eq!(g.dkeys.len(), w.keys.len(), "dkeys must match keys");
    assert_eq!(g.dvalues.len(), w.values.len(), "dvalues must match values");
    match crate::Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found AVX-512F on this CPU.
        crate::Isa::Avx512 => unsafe { backward_avx512(w, q, probs, d_out, g) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found AVX2 and FMA on this CPU.
        crate::Isa::Avx2 => unsafe { backward_avx2(w, q, probs, d_out, g) },
        _ => backward(w, q, probs, d_out, g),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn backward_avx512(w: &Window, q: &[f32], probs: &[f32], d_out: &[f32], g: WindowGrads) {
    backward(w, q, probs, d_out, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_avx2(w: &Window, q: &[f32], probs: &[f32], d_out: &[f32], g: WindowGrads) {
    backward(w, q, probs, d_out, g)
}

#[inline(always)]
fn backward(w: &Window, q: &[f32], probs: &[f32], d_out: &[f32], g: WindowGrads) {
    let WindowShape { rows, slots, span, dh } = w.shape;
    for i in 0..rows {
        let qi = &q[i * dh..(i + 1) * dh];
        let doi = &d_out[i * dh..(i + 1) * dh];
        let base = (i * slots + w.start) * dh;
        let a = &probs[i * span..(i + 1) * span];
        let ds = &mut g.dscores[i * span..(i + 1) * span];
        // da_j = d_out · v_j; ds_j = a_j (da_j - Σ a da) · scale
        let mut weighted = 0.0;
        for (j, dsj) in ds.iter_mut().enumerate() {
            *dsj = dot(doi, &w.values[base + j * dh..base + (j + 1) * dh]);
            weighted += a[j] * *dsj;
        }
        for (dsj, aj) in ds.iter_mut().zip(a) {
            *dsj = aj * (*dsj - weighted) * w.scale;
        }
        let dqi = &mut g.dq[i * dh..(i + 1) * dh];
        dqi.fill(0.0);
        for j in 0..span {
            let slot = base + j * dh..base + (j + 1) * dh;
            axpy(dqi, ds[j], &w.keys[slot.clone()]);
            axpy(dqi, ds[j], &w.pos[j * dh..(j + 1) * dh]);
            axpy(&mut g.dkeys[slot.clone()], ds[j], qi);
            axpy(&mut g.dvalues[slot], a[j], doi);
        }
    }
}
