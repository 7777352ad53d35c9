//! The forward: attention probabilities and outputs of one query per row.
use super::dots::{Dots, add_weighted_rows, axpy};
use super::{Kernel, Window, WindowShape, on_isa, split_rows_at};
use crate::softmax_rows::{exp_shifted, row_max, row_sum};

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
        // One row's scaled scores, exponentiated into its probabilities.
        let mut scores = vec![0.0f32; span];
        for i in 0..rows {
            let (keys, values) = w.row(i);
            let qi = &q[i * dh..(i + 1) * dh];
            let (n, zero) = w.zero_row(i);
            let (folded, stored) = scores.split_at_mut(n);
            let (pos_folded, pos_stored) = w.pos_split(n);
            if let Some((k0, _)) = zero {
                let s0 = D::dot(qi, k0);
                match pos_folded {
                    Some(pos) => D::dots(qi, pos, None, folded),
                    None => folded.fill(0.0),
                }
                for aj in folded.iter_mut() {
                    *aj = (s0 + *aj) * w.scale;
                }
            }
            D::dots(qi, &keys[n * dh..], pos_stored, stored);
            for aj in stored.iter_mut() {
                *aj *= w.scale;
            }
            let a = &mut probs[i * span..(i + 1) * span];
            let sum = exp_shifted(&scores, row_max(&scores), a);
            for aj in a.iter_mut() {
                *aj /= sum;
            }
            let o = &mut out[i * dh..(i + 1) * dh];
            o.fill(0.0);
            if let Some((_, v0)) = zero {
                axpy(o, row_sum(&a[..n]), v0);
            }
            add_weighted_rows(o, &a[n..], &values[n * dh..], None);
        }
    }
}
