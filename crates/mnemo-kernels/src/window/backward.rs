//! The backward of the forward, except the key/value gradients (see [`super::accumulate`]).
use super::dots::{Dots, add_weighted_rows, axpy};
use super::{Kernel, Window, WindowShape, on_isa, split_rows_at};
use crate::softmax_rows::row_sum;

/// Gradients written by [`window_attend_backward`].
#[derive(Debug)]
pub struct WindowGrads<'a> {
    /// `dL/dq`, `[I, Dh]` (overwritten).
    pub dq: &'a mut [f32],
    /// Gradient of the scaled scores, `[I, S]` (overwritten).
    pub dscores: &'a mut [f32],
}

/// Backward of [`window_attend`](super::window_attend) given `dL/dout`, except the key/value
/// gradients: those are `dK[start+j] += dscores_j · q` and `dV[start+j] += probs_j · d_out`,
/// added with [`window_accumulate`](super::window_accumulate) once for all layers that read
/// the window. With [`ZeroSlots`](super::ZeroSlots) the folded slots' value `v₀` is read once
/// per row and their key term of `dq` is `(Σ_folded dscores_j) · k₀`; their key and value
/// gradients are the caller's (e.g. `Σ_folded dscores_j · q` for `k₀`).
///
/// # Shapes
/// - d_out: `[I, Dh]`; probs: `[I, S]`
///
/// # Panics
/// If a length does not match the window's shape or the window leaves the buffer.
pub fn window_attend_backward(w: &Window, probs: &[f32], d_out: &[f32], g: WindowGrads) {
    w.check(d_out, probs);
    let WindowShape { rows, span, dh, .. } = w.shape;
    assert_eq!(d_out.len(), rows * dh, "d_out must hold rows·dh values");
    assert_eq!(g.dq.len(), rows * dh, "dq must hold rows·dh values");
    assert_eq!(
        g.dscores.len(),
        rows * span,
        "dscores must hold rows·span values"
    );
    match split_rows_at(w.shape) {
        Some(h) => {
            let (w0, w1) = w.split_rows(h);
            let (a0, a1) = probs.split_at(h * span);
            let (d0, d1) = d_out.split_at(h * dh);
            let (dq0, dq1) = g.dq.split_at_mut(h * dh);
            let (ds0, ds1) = g.dscores.split_at_mut(h * span);
            let run = |w: &Window, probs, d_out, dq, dscores| {
                let g = WindowGrads { dq, dscores };
                on_isa(w.isa, Backward { w, probs, d_out, g })
            };
            crate::helper::both(|| run(&w0, a0, d0, dq0, ds0), || run(&w1, a1, d1, dq1, ds1));
        }
        None => on_isa(w.isa, Backward { w, probs, d_out, g }),
    }
}

/// The backward loops' arguments, as [`window_attend_backward`] takes them.
struct Backward<'a, 'w> {
    w: &'a Window<'w>,
    probs: &'a [f32],
    d_out: &'a [f32],
    g: WindowGrads<'a>,
}

impl Kernel for Backward<'_, '_> {
    #[inline(always)]
    fn run<D: Dots>(self) {
        let Backward { w, probs, d_out, g } = self;
        let WindowShape { rows, span, dh, .. } = w.shape;
        for i in 0..rows {
            let (keys, values) = w.row(i);
            let doi = &d_out[i * dh..(i + 1) * dh];
            let a = &probs[i * span..(i + 1) * span];
            let ds = &mut g.dscores[i * span..(i + 1) * span];
            let (n, zero) = w.zero_row(i);
            // da_j = d_out · v_j; ds_j = a_j (da_j - Σ a da) · scale
            let (folded, stored) = ds.split_at_mut(n);
            folded.fill(zero.map_or(0.0, |(_, v0)| D::dot(doi, v0)));
            D::dots(doi, &values[n * dh..], None, stored);
            let weighted = D::dot(a, ds);
            for (dsj, aj) in ds.iter_mut().zip(a) {
                *dsj = aj * (*dsj - weighted) * w.scale;
            }
            let dqi = &mut g.dq[i * dh..(i + 1) * dh];
            dqi.fill(0.0);
            let (pos_folded, pos_stored) = w.pos_split(n);
            if let Some((k0, _)) = zero {
                axpy(dqi, row_sum(&ds[..n]), k0);
                if let Some(pos) = pos_folded {
                    add_weighted_rows(dqi, &ds[..n], pos, None);
                }
            }
            add_weighted_rows(dqi, &ds[n..], &keys[n * dh..], pos_stored);
        }
    }
}
