//! The forward: attention probabilities and outputs of one query per row.
use super::dots::{Dots, axpy};
use super::{Kernel, Window, WindowShape, on_isa, split_rows_at};

/// Forward: writes the attention probabilities and outputs (the window's [`ZeroSlots`](super::ZeroSlots) folded,
/// if it has them).
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
    let WindowShape { span, dh, .. } = w.shape;
    match split_rows_at(w.shape) {
        Some(h) => {
            let (w0, w1) = w.split_rows(h);
            let (q0, q1) = q.split_at(h * dh);
            let (p0, p1) = probs.split_at_mut(h * span);
            let (o0, o1) = out.split_at_mut(h * dh);
            let run = |w: &Window, q, probs, out| on_isa(w.isa, Attend { w, q, probs, out });
            crate::helper::both(|| run(&w0, q0, p0, o0), || run(&w1, q1, p1, o1));
        }
        None => on_isa(w.isa, Attend { w, q, probs, out }),
    }
}

/// The forward loops' arguments, as [`window_attend`] takes them.
struct Attend<'a, 'w> {
    w: &'a Window<'w>,
    q: &'a [f32],
    probs: &'a mut [f32],
    out: &'a mut [f32],
}

impl Kernel for Attend<'_, '_> {
    #[inline(always)]
    fn run<D: Dots>(self) {
        let Attend { w, q, probs, out } = self;
        let WindowShape { rows, span, dh, .. } = w.shape;
        for i in 0..rows {
            let (keys, values) = w.row(i);
            let qi = &q[i * dh..(i + 1) * dh];
            let a = &mut probs[i * span..(i + 1) * span];
            let zero = w.zeros.map(|z| (z.count, z.row(i, dh)));
            let n = zero.map_or(0, |(n, _)| n);
            let (folded, stored) = a.split_at_mut(n);
            let mut max = f32::NEG_INFINITY;
            if let Some((_, (k0, _))) = zero {
                let s0 = D::dot(qi, k0);
                for (j, aj) in folded.iter_mut().enumerate() {
                    *aj = (s0 + D::dot(qi, &w.pos[j * dh..(j + 1) * dh])) * w.scale;
                    max = max.max(*aj);
                }
            }
            for (j, aj) in (n..).zip(stored.iter_mut()) {
                let k = &keys[j * dh..(j + 1) * dh];
                let p = &w.pos[j * dh..(j + 1) * dh];
                *aj = D::dot_sum(qi, k, p) * w.scale;
                max = max.max(*aj);
            }
            let mut sum = 0.0;
            for aj in a.iter_mut() {
                *aj = (*aj - max).exp();
                sum += *aj;
            }
            let o = &mut out[i * dh..(i + 1) * dh];
            o.fill(0.0);
            let (folded, stored) = a.split_at_mut(n);
            let mut zero_weight = 0.0;
            for aj in folded.iter_mut() {
                *aj /= sum;
                zero_weight += *aj;
            }
            if let Some((_, (_, v0))) = zero {
                axpy(o, zero_weight, v0);
            }
            for (j, aj) in (n..).zip(stored.iter_mut()) {
                *aj /= sum;
                axpy(o, *aj, &values[j * dh..(j + 1) * dh]);
            }
        }
    }
}
