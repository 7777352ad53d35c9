//! Host window attention against a naive f64 reference, and its backward against central
//! finite differences of the forward.
mod common;

use common::{supported_isas, values};
use mnemo_kernels::{
    Isa, Window, WindowGrads, WindowShape, WindowTerm, ZeroSlots, window_accumulate, window_attend,
    window_attend_backward, window_slot,
};

// dh = 20: one 16-lane chunk of the vectorised dot product plus a remainder.
const SHAPE: WindowShape = WindowShape {
    rows: 3,
    slots: 9,
    span: 5,
    dh: 20,
};
const START: usize = 3;

/// Shapes whose scores and weighted sums run in register blocks: Dh 32, 48 and 64 (blocks
/// of 32, 16 and 64 columns) and spans of 37, 18 and 19 slots (blocks of 16 and 8 slots for
/// AVX-512 and AVX2 with a remainder).
const BLOCK_SHAPES: [WindowShape; 3] = [
    WindowShape {
        rows: 3,
        slots: 40,
        span: 37,
        dh: 32,
    },
    WindowShape {
        rows: 3,
        slots: 21,
        span: 18,
        dh: 48,
    },
    WindowShape {
        rows: 3,
        slots: 22,
        span: 19,
        dh: 64,
    },
];

/// [`SHAPE`] and the [`BLOCK_SHAPES`].
fn all_shapes() -> impl Iterator<Item = WindowShape> {
    std::iter::once(SHAPE).chain(BLOCK_SHAPES)
}

/// The sizes of `shape`: `(I, slots, S, Dh)`.
fn sizes(shape: WindowShape) -> (usize, usize, usize, usize) {
    (shape.rows, shape.slots, shape.span, shape.dh)
}
const SCALE: f32 = 0.5;

struct Inputs {
    shape: WindowShape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    p: Vec<f32>,
}

impl Inputs {
    fn window(&self, isa: Isa, start: usize) -> Window<'_> {
        Window {
            isa,
            shape: self.shape,
            start,
            scale: SCALE,
            keys: &self.k,
            values: &self.v,
            pos: Some(&self.p),
            zeros: None,
        }
    }
}

fn inputs(shape: WindowShape) -> Inputs {
    let (rows, slots, span, dh) = sizes(shape);
    Inputs {
        shape,
        q: values(rows * dh, 1),
        k: values(rows * slots * dh, 2),
        v: values(rows * slots * dh, 3),
        p: values(span * dh, 4),
    }
}

/// Loss `Σ out ⊙ probe` in f64 by the definition.
fn reference(x: &Inputs, probe: &[f32]) -> (Vec<f64>, f64) {
    let (rows, slots, span, dh) = sizes(x.shape);
    let mut out = vec![0.0f64; rows * dh];
    for i in 0..rows {
        let s: Vec<f64> = (0..span)
            .map(|j| {
                let slot = (i * slots + START + j) * dh;
                (0..dh)
                    .map(|d| {
                        x.q[i * dh + d] as f64 * (x.k[slot + d] as f64 + x.p[j * dh + d] as f64)
                    })
                    .sum::<f64>()
                    * SCALE as f64
            })
            .collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
        for (j, sj) in s.iter().enumerate() {
            let a = (sj - m).exp() / z;
            for d in 0..dh {
                out[i * dh + d] += a * x.v[(i * slots + START + j) * dh + d] as f64;
            }
        }
    }
    let loss = out.iter().zip(probe).map(|(o, p)| o * *p as f64).sum();
    (out, loss)
}

/// `check` on every supported instruction set and every shape of [`all_shapes`].
fn on_every_isa_and_shape(check: impl Fn(Isa, WindowShape)) {
    for shape in all_shapes() {
        supported_isas()
            .into_iter()
            .for_each(|isa| check(isa, shape));
    }
}

#[test]
fn forward_matches_the_definition() {
    on_every_isa_and_shape(forward_on);
}

fn forward_on(isa: Isa, shape: WindowShape) {
    let x = inputs(shape);
    let WindowShape { rows, span, dh, .. } = shape;
    let mut probs = vec![f32::NAN; rows * span];
    let mut out = vec![f32::NAN; rows * dh];
    window_attend(&x.window(isa, START), &x.q, &mut probs, &mut out);
    let (want, _) = reference(&x, &vec![0.0; rows * dh]);
    for (g, w) in out.iter().zip(&want) {
        assert!(
            (*g as f64 - w).abs() < 1e-6,
            "{isa:?}, {shape:?}: {g} vs {w}"
        );
    }
    for row in probs.chunks(span) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}

#[test]
fn backward_matches_finite_differences() {
    on_every_isa_and_shape(backward_on);
}

fn backward_on(isa: Isa, shape: WindowShape) {
    let x = inputs(shape);
    let (rows, slots, span, dh) = sizes(shape);
    let probe = values(rows * dh, 5);
    let mut probs = vec![0.0; rows * span];
    let mut out = vec![0.0; rows * dh];
    window_attend(&x.window(isa, START), &x.q, &mut probs, &mut out);
    let mut dq = vec![f32::NAN; rows * dh];
    let mut ds = vec![f32::NAN; rows * span];
    // Pre-filled gradient buffers: the backward must add, not overwrite.
    let mut dk = vec![0.25; rows * slots * dh];
    let mut dv = vec![-0.5; rows * slots * dh];
    let grads = WindowGrads {
        dq: &mut dq,
        dscores: &mut ds,
    };
    window_attend_backward(&x.window(isa, START), &probs, &probe, grads);
    // Key/value gradients, split into two terms (as for two layers) to check the sum.
    let half = |v: &[f32]| v.iter().map(|x| x * 0.5).collect::<Vec<f32>>();
    let (q_half, probe_half) = (half(&x.q), half(&probe));
    let term = |coeff, vec| WindowTerm {
        start: START,
        folded: 0,
        coeff,
        vec,
    };
    window_accumulate(
        isa,
        shape,
        &[term(&ds, &q_half), term(&ds, &q_half)],
        &mut dk,
    );
    window_accumulate(
        isa,
        shape,
        &[term(&probs, &probe_half), term(&probs, &probe_half)],
        &mut dv,
    );
    let eps = 1e-3f32;
    let fd = |field: &dyn Fn(&mut Inputs) -> &mut Vec<f32>, idx: usize| {
        let mut plus = inputs(shape);
        field(&mut plus)[idx] += eps;
        let mut minus = inputs(shape);
        field(&mut minus)[idx] -= eps;
        (reference(&plus, &probe).1 - reference(&minus, &probe).1) / (2.0 * eps as f64)
    };
    let close = |got: f32, want: f64, what: &str| {
        assert!(
            (got as f64 - want).abs() < 2e-3 * (1.0 + want.abs()),
            "{isa:?}, {shape:?} {what}: {got} vs {want}"
        );
    };
    for (idx, &g) in dq.iter().enumerate().take(rows * dh) {
        close(g, fd(&|x| &mut x.q, idx), &format!("dq[{idx}]"));
    }
    for i in 0..rows {
        for slot in 0..slots {
            for d in 0..dh {
                let idx = (i * slots + slot) * dh + d;
                close(
                    dk[idx] - 0.25,
                    fd(&|x| &mut x.k, idx),
                    &format!("dk[{idx}]"),
                );
                close(dv[idx] + 0.5, fd(&|x| &mut x.v, idx), &format!("dv[{idx}]"));
                if !(START..START + span).contains(&slot) {
                    assert_eq!(
                        (dk[idx], dv[idx]),
                        (0.25, -0.5),
                        "slot {slot} is outside the window"
                    );
                }
            }
        }
    }
}

/// A window whose oldest slots are folded zero memories ([`ZeroSlots`]) attends as the window
/// with the zero memory written into those slots (the f64 reference), without reading the
/// buffers there (NaN); its rows taken alone attend as those rows, bit for bit; its backward
/// gives the written-out window's score gradients and dq.
#[test]
fn folded_zero_slots_attend_as_the_written_out_window() {
    for shape in all_shapes() {
        folded_zero_slots_on(shape);
    }
}

/// [`folded_zero_slots_attend_as_the_written_out_window`] on `shape`, with folded counts from
/// none to the whole span (some across the register blocks of slots).
fn folded_zero_slots_on(shape: WindowShape) {
    let (rows, slots, span, dh) = sizes(shape);
    let (k0, v0) = (values(rows * dh, 7), values(rows * dh, 8));
    for isa in supported_isas() {
        for count in [0, 1, 3, span / 2 + 1, span] {
            let mut written = inputs(shape);
            let mut holes = inputs(shape);
            for i in 0..rows {
                for j in 0..count {
                    let at = (i * slots + START + j) * dh;
                    written.k[at..at + dh].copy_from_slice(&k0[i * dh..(i + 1) * dh]);
                    written.v[at..at + dh].copy_from_slice(&v0[i * dh..(i + 1) * dh]);
                    holes.k[at..at + dh].fill(f32::NAN);
                    holes.v[at..at + dh].fill(f32::NAN);
                }
            }
            let zeros = ZeroSlots {
                count,
                keys: &k0,
                values: &v0,
            };
            let folded = Window {
                zeros: Some(zeros),
                ..holes.window(isa, START)
            };
            let (mut probs, mut out) = (vec![f32::NAN; rows * span], vec![f32::NAN; rows * dh]);
            window_attend(&folded, &holes.q, &mut probs, &mut out);
            let (want, _) = reference(&written, &vec![0.0; rows * dh]);
            for (g, w) in out.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-6,
                    "{isa:?}, {shape:?}, {count} folded: {g} vs {w}"
                );
            }
            let (mut want_probs, mut plain) = (vec![0.0; rows * span], vec![0.0; rows * dh]);
            window_attend(
                &written.window(isa, START),
                &written.q,
                &mut want_probs,
                &mut plain,
            );
            for (g, w) in probs.iter().zip(&want_probs) {
                assert!(
                    (g - w).abs() < 1e-6,
                    "{isa:?}, {shape:?}, {count} folded: p {g} vs {w}"
                );
            }
            let (mut p1, mut o1) = (vec![0.0; 2 * span], vec![0.0; 2 * dh]);
            window_attend(&folded.rows(1..3), &holes.q[dh..3 * dh], &mut p1, &mut o1);
            assert_eq!(
                o1,
                out[dh..3 * dh],
                "{isa:?}, {shape:?}, {count} folded: rows 1..3"
            );
            assert_eq!(
                p1,
                probs[span..3 * span],
                "{isa:?}, {shape:?}, {count} folded: rows 1..3"
            );
            // The backward: the same score gradients and dq as over the written-out window.
            let d_out = values(rows * dh, 9);
            let backward = |w: &Window, probs: &[f32]| {
                let (mut dq, mut ds) = (vec![f32::NAN; rows * dh], vec![f32::NAN; rows * span]);
                let g = WindowGrads {
                    dq: &mut dq,
                    dscores: &mut ds,
                };
                window_attend_backward(w, probs, &d_out, g);
                (dq, ds)
            };
            let (dq, ds) = backward(&folded, &probs);
            let (want_dq, want_ds) = backward(&written.window(isa, START), &want_probs);
            for (g, w) in dq.iter().zip(&want_dq).chain(ds.iter().zip(&want_ds)) {
                assert!(
                    (g - w).abs() < 1e-5,
                    "{isa:?}, {shape:?}, {count} folded: grad {g} vs {w}"
                );
            }
        }
    }
}

/// A window without positions (a decoder's attention over its source) attends, and back-
/// propagates, as the window with all-zero positions, bit for bit, with and without folded
/// zero slots, on every instruction set and shape.
#[test]
fn a_window_without_positions_is_one_with_zero_positions() {
    for shape in all_shapes() {
        let (rows, _, span, dh) = sizes(shape);
        let mut x = inputs(shape);
        x.p.fill(0.0);
        let (k0, v0) = (values(rows * dh, 7), values(rows * dh, 8));
        let d_out = values(rows * dh, 9);
        for isa in supported_isas() {
            for count in [0, 2] {
                let zeros = (count > 0).then_some(ZeroSlots {
                    count,
                    keys: &k0,
                    values: &v0,
                });
                let run = |w: &Window| {
                    let (mut probs, mut out) = (vec![0.0; rows * span], vec![0.0; rows * dh]);
                    window_attend(w, &x.q, &mut probs, &mut out);
                    let (mut dq, mut ds) = (vec![0.0; rows * dh], vec![0.0; rows * span]);
                    let g = WindowGrads {
                        dq: &mut dq,
                        dscores: &mut ds,
                    };
                    window_attend_backward(w, &probs, &d_out, g);
                    (probs, out, dq, ds)
                };
                let zero_pos = Window {
                    zeros,
                    ..x.window(isa, START)
                };
                let no_pos = Window {
                    pos: None,
                    ..zero_pos
                };
                assert!(
                    run(&no_pos) == run(&zero_pos),
                    "{isa:?}, {shape:?}, {count} folded"
                );
            }
        }
    }
}

#[test]
#[should_panic(expected = "outside 9 slots")]
fn a_window_past_the_buffer_is_refused() {
    let x = inputs(SHAPE);
    let WindowShape { rows, span, dh, .. } = SHAPE;
    let (mut probs, mut out) = (vec![0.0; rows * span], vec![0.0; rows * dh]);
    window_attend(&x.window(Isa::Portable, 5), &x.q, &mut probs, &mut out);
}

/// Dh 20 (columns slot by slot only) and 84 (one 64-column register block and a remainder).
#[test]
fn terms_of_several_windows_accumulate_like_the_definition() {
    for dh in [SHAPE.dh, 84] {
        accumulate_like_the_definition(WindowShape { dh, ..SHAPE });
    }
}

fn accumulate_like_the_definition(shape: WindowShape) {
    let WindowShape {
        rows,
        slots,
        span,
        dh,
    } = shape;
    let starts = [0, 2, 3, 4];
    // Folded zero slots at the start of two windows: not added.
    let folded = [0, 1, 0, 3];
    let coeffs: Vec<Vec<f32>> = (0..starts.len())
        .map(|n| values(rows * span, 10 + n as u64))
        .collect();
    let vecs: Vec<Vec<f32>> = (0..starts.len())
        .map(|n| values(rows * dh, 20 + n as u64))
        .collect();
    let terms: Vec<WindowTerm> = (0..starts.len())
        .map(|n| WindowTerm {
            start: starts[n],
            folded: folded[n],
            coeff: &coeffs[n],
            vec: &vecs[n],
        })
        .collect();
    let base = values(rows * slots * dh, 30);
    let mut want = base.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    for t in &terms {
        for i in 0..rows {
            for j in t.folded..span {
                for d in 0..dh {
                    want[(i * slots + t.start + j) * dh + d] +=
                        t.coeff[i * span + j] as f64 * t.vec[i * dh + d] as f64;
                }
            }
        }
    }
    for isa in supported_isas() {
        let mut buf = base.clone();
        window_accumulate(isa, shape, &terms, &mut buf);
        for (g, w) in buf.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5, "{isa:?}, Dh {dh}: {g} vs {w}");
        }
    }
    // One slot with every term still pending equals that slot after accumulating.
    for slot in 0..slots {
        let got = window_slot(shape, slot, &terms, &base);
        for i in 0..rows {
            for d in 0..dh {
                let w = want[(i * slots + slot) * dh + d];
                assert!(
                    (got[i * dh + d] as f64 - w).abs() < 1e-5,
                    "slot {slot}: {} vs {w}",
                    got[i * dh + d]
                );
            }
        }
    }
}
