//! The key and value gradients: terms of several windows added to one buffer.
use super::dots::{Dots, axpy};
use super::{Kernel, WindowShape, on_isa, split_rows_at};

/// One term of a window's key or value gradient: `buf[i, start + j] += coeff[i, j] · vec[i]`
/// for every row `i` and window slot `j ≥ folded` (keys: coefficients = score gradients,
/// vectors = queries; values: probabilities and output gradients). The first `folded` slots
/// are a window's [`ZeroSlots`](super::ZeroSlots), whose gradient the caller sums itself.
#[derive(Debug, Clone, Copy)]
pub struct WindowTerm<'a> {
    /// First slot of the window the term belongs to.
    pub start: usize,
    /// The window's first slots not added (folded zero slots).
    pub folded: usize,
    /// `[I, S]`.
    pub coeff: &'a [f32],
    /// `[I, Dh]`.
    pub vec: &'a [f32],
}

/// Checks the terms and the `[I, slots, Dh]` buffer they are added to.
fn check_terms(shape: WindowShape, terms: &[WindowTerm], buf: &[f32]) {
    let WindowShape { rows, span, dh, .. } = shape;
    for t in terms {
        shape.check_window(t.start);
        assert!(
            t.folded <= span,
            "{} folded slots in a window of {span}",
            t.folded
        );
        assert_eq!(
            t.coeff.len(),
            rows * span,
            "coefficients must hold rows·span values"
        );
        assert_eq!(t.vec.len(), rows * dh, "vectors must hold rows·dh values");
    }
    shape.check_buffer(buf, "the buffer");
}

/// Add every term to `buf`, visiting each slot of each row once for all terms (the terms of
/// several layers and steps share one pass over the buffer).
///
/// # Shapes
/// - buf: `[I, slots, Dh]`
///
/// # Panics
/// If a length does not match `shape` or a window leaves the buffer.
pub fn window_accumulate(
    isa: crate::Isa,
    shape: WindowShape,
    terms: &[WindowTerm],
    buf: &mut [f32],
) {
    check_terms(shape, terms, buf);
    let WindowShape {
        span, slots, dh, ..
    } = shape;
    match split_rows_at(shape) {
        Some(h) => {
            // Rows 0..h and h.. of every term and of the buffer.
            let (t0, t1): (Vec<_>, Vec<_>) = terms
                .iter()
                .map(|t| {
                    let (c0, c1) = t.coeff.split_at(h * span);
                    let (v0, v1) = t.vec.split_at(h * dh);
                    let part = |coeff, vec| WindowTerm { coeff, vec, ..*t };
                    (part(c0, v0), part(c1, v1))
                })
                .unzip();
            let (b0, b1) = buf.split_at_mut(h * slots * dh);
            let run = |rows, terms: &[WindowTerm], buf| {
                let shape = WindowShape { rows, ..shape };
                on_isa(isa, Accumulate { shape, terms, buf })
            };
            crate::helper::both(|| run(h, &t0, b0), || run(shape.rows - h, &t1, b1));
        }
        None => on_isa(isa, Accumulate { shape, terms, buf }),
    }
}

/// The accumulation loops' arguments, as [`window_accumulate`] takes them.
struct Accumulate<'a, 't> {
    shape: WindowShape,
    terms: &'a [WindowTerm<'t>],
    buf: &'a mut [f32],
}

impl Kernel for Accumulate<'_, '_> {
    /// No dot products: only the `axpy` loops, vectorised for the instruction set.
    #[inline(always)]
    fn run<D: Dots>(self) {
        let Accumulate { shape, terms, buf } = self;
        let WindowShape { rows, span, dh, .. } = shape;
        let Some(lo) = terms.iter().map(|t| t.start + t.folded).min() else {
            return;
        };
        let hi = terms.iter().map(|t| t.start + span).max().unwrap_or(lo);
        for i in 0..rows {
            for slot in lo..hi {
                let at = shape.offset(i, slot);
                add_terms(&mut buf[at..at + dh], terms, span, i, slot);
            }
        }
    }
}

/// Columns of an [`add_terms`] block: four 16-lane registers.
const BLOCK: usize = 64;

/// `dst += Σ_t coeff_t[i, slot - start_t] · vec_t[i]` over the terms whose window holds
/// `slot`: one slot of one row of a key or value gradient. Each block of [`BLOCK`] columns is
/// summed in a local array the compiler keeps in registers over all terms and stored once (the
/// same additions in the same order as adding the terms into `dst` one by one, which loaded
/// and stored `dst` once per term).
#[inline(always)]
fn add_terms(dst: &mut [f32], terms: &[WindowTerm], span: usize, i: usize, slot: usize) {
    let dh = dst.len();
    let holding = || {
        terms
            .iter()
            .filter(move |t| (t.start + t.folded..t.start + span).contains(&slot))
            .map(move |t| {
                (
                    t.coeff[i * span + slot - t.start],
                    &t.vec[i * dh..(i + 1) * dh],
                )
            })
    };
    let blocks = dh - dh % BLOCK;
    for c0 in (0..blocks).step_by(BLOCK) {
        let out: &mut [f32; BLOCK] = (&mut dst[c0..c0 + BLOCK]).try_into().expect("a block");
        let mut acc = *out;
        for (coeff, vec) in holding() {
            let x: &[f32; BLOCK] = vec[c0..c0 + BLOCK].try_into().expect("a block");
            for l in 0..BLOCK {
                acc[l] += coeff * x[l];
            }
        }
        *out = acc;
    }
    if blocks < dh {
        for (coeff, vec) in holding() {
            axpy(&mut dst[blocks..], coeff, &vec[blocks..]);
        }
    }
}

/// Slot `slot` of `buf` plus every term's contribution to it, as rows `[I, Dh]` (`buf` is
/// not changed): the complete gradient of one slot while other terms are still pending.
///
/// # Shapes
/// - buf: `[I, slots, Dh]`; output: `[I, Dh]`
///
/// # Panics
/// If a length does not match `shape`, a window leaves the buffer, or `slot >= slots`.
pub fn window_slot(shape: WindowShape, slot: usize, terms: &[WindowTerm], buf: &[f32]) -> Vec<f32> {
    check_terms(shape, terms, buf);
    let WindowShape { rows, span, dh, .. } = shape;
    assert!(
        slot < shape.slots,
        "slot {slot} outside {} slots",
        shape.slots
    );
    let mut out = Vec::with_capacity(rows * dh);
    for i in 0..rows {
        let at = shape.offset(i, slot);
        out.extend_from_slice(&buf[at..at + dh]);
        add_terms(&mut out[i * dh..(i + 1) * dh], terms, span, i, slot);
    }
    out
}
