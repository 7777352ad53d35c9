//! Attention of one query per row over a window of keys/values with a learned relative
//! position term, forward and backward, on host memory (the Feedback Transformer's per-step
//! attention; see `mnemo_core::attend` for the tensor form).
//!
//! Layouts: `I = B·H` independent rows; a buffer of keys or values is `[I, slots, Dh]` and
//! the window of one step is slots `start .. start + S`; positions are `[S, Dh]` (slot `j` of
//! the window uses `pos[j]`). Scores `s_j = (q·k_j + q·p_j) · scale`, `a = softmax(s)`,
//! `o = Σ_j a_j v_j`.

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

impl WindowShape {
    fn check(&self, start: usize, q: &[f32], keys: &[f32], values: &[f32], pos: &[f32]) {
        let WindowShape { rows, slots, span, dh } = *self;
        assert!(start + span <= slots, "window {start}..{} outside {slots} slots", start + span);
        assert_eq!(q.len(), rows * dh, "queries must hold rows·dh = {rows}·{dh} values");
        assert_eq!(keys.len(), rows * slots * dh, "keys must hold rows·slots·dh values");
        assert_eq!(values.len(), rows * slots * dh, "values must hold rows·slots·dh values");
        assert_eq!(pos.len(), span * dh, "positions must hold span·dh values");
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `y += alpha · x`.
fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// Forward: writes the attention probabilities and outputs.
///
/// # Shapes
/// - q: `[I, Dh]`; keys, values: `[I, slots, Dh]`; pos: `[S, Dh]`
/// - probs: `[I, S]`; out: `[I, Dh]` (overwritten)
///
/// # Panics
/// If a length does not match `shape` or the window leaves the buffer.
#[allow(clippy::too_many_arguments)]
pub fn window_attend(
    shape: WindowShape,
    start: usize,
    scale: f32,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    pos: &[f32],
    probs: &mut [f32],
    out: &mut [f32],
) {
    shape.check(start, q, keys, values, pos);
    let WindowShape { rows, slots, span, dh } = shape;
    assert_eq!(probs.len(), rows * span, "probs must hold rows·span values");
    assert_eq!(out.len(), rows * dh, "out must hold rows·dh values");
    for i in 0..rows {
        let qi = &q[i * dh..(i + 1) * dh];
        let base = (i * slots + start) * dh;
        let a = &mut probs[i * span..(i + 1) * span];
        let mut max = f32::NEG_INFINITY;
        for (j, aj) in a.iter_mut().enumerate() {
            let k = &keys[base + j * dh..base + (j + 1) * dh];
            let p = &pos[j * dh..(j + 1) * dh];
            *aj = (dot(qi, k) + dot(qi, p)) * scale;
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
            axpy(o, *aj, &values[base + j * dh..base + (j + 1) * dh]);
        }
    }
}

/// Backward of [`window_attend`] given `dL/dout`: writes `dL/dq` and the gradient of the
/// (scaled) scores, and **adds** the window's key/value gradients into `dkeys`/`dvalues`.
///
/// # Shapes
/// - q, d_out: `[I, Dh]`; keys, values, dkeys, dvalues: `[I, slots, Dh]`; pos: `[S, Dh]`;
///   probs: `[I, S]`
/// - dq: `[I, Dh]`, dscores: `[I, S]` (overwritten)
///
/// # Panics
/// If a length does not match `shape` or the window leaves the buffer.
#[allow(clippy::too_many_arguments)]
pub fn window_attend_backward(
    shape: WindowShape,
    start: usize,
    scale: f32,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    pos: &[f32],
    probs: &[f32],
    d_out: &[f32],
    dq: &mut [f32],
    dscores: &mut [f32],
    dkeys: &mut [f32],
    dvalues: &mut [f32],
) {
    shape.check(start, q, keys, values, pos);
    let WindowShape { rows, slots, span, dh } = shape;
    assert_eq!(probs.len(), rows * span, "probs must hold rows·span values");
    assert_eq!(d_out.len(), rows * dh, "d_out must hold rows·dh values");
    assert_eq!(dq.len(), rows * dh, "dq must hold rows·dh values");
    assert_eq!(dscores.len(), rows * span, "dscores must hold rows·span values");
    assert_eq!(dkeys.len(), keys.len(), "dkeys must match keys");
    assert_eq!(dvalues.len(), values.len(), "dvalues must match values");
    for i in 0..rows {
        let qi = &q[i * dh..(i + 1) * dh];
        let doi = &d_out[i * dh..(i + 1) * dh];
        let base = (i * slots + start) * dh;
        let a = &probs[i * span..(i + 1) * span];
        let ds = &mut dscores[i * span..(i + 1) * span];
        // da_j = d_out · v_j; ds_j = a_j (da_j - Σ a da) · scale
        let mut weighted = 0.0;
        for (j, dsj) in ds.iter_mut().enumerate() {
            *dsj = dot(doi, &values[base + j * dh..base + (j + 1) * dh]);
            weighted += a[j] * *dsj;
        }
        for (dsj, aj) in ds.iter_mut().zip(a) {
            *dsj = aj * (*dsj - weighted) * scale;
        }
        let dqi = &mut dq[i * dh..(i + 1) * dh];
        dqi.fill(0.0);
        for j in 0..span {
            let slot = base + j * dh..base + (j + 1) * dh;
            axpy(dqi, ds[j], &keys[slot.clone()]);
            axpy(dqi, ds[j], &pos[j * dh..(j + 1) * dh]);
            axpy(&mut dkeys[slot.clone()], ds[j], qi);
            axpy(&mut dvalues[slot], a[j], doi);
        }
    }
}
