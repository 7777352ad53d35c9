//! Large products split their column panels between the calling thread and the helper thread:
//! the result must equal the one-thread product bit for bit, for every instruction set, row
//! count and column tail, and stay right when several threads multiply at once (one of them
//! gets the helper, the others run alone).
mod common;

use common::{supported_isas, values};
use mnemo_kernels::{PackedMatrix, helper_thread};

/// `x · M` through `matmul` (split where large enough), into NaN-poisoned output.
fn split(m: &PackedMatrix, x: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; rows * m.n()];
    m.matmul(x, &mut out, rows);
    out
}

/// `x · M` on the calling thread alone.
fn alone(m: &PackedMatrix, x: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; rows * m.n()];
    m.matmul_one_thread(x, &mut out, rows);
    out
}

#[test]
fn a_split_product_equals_the_one_thread_product() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 2 && std::env::var("MNEMO_KERNEL_THREADS").is_err() {
        assert!(helper_thread(), "two cores: large products must split");
    }
    let mut checked = 0;
    for isa in supported_isas() {
        // 256·512 weights is the smallest split; 1000 and 2049 leave partial last panels.
        for (k, n) in [(256, 512), (300, 1000), (256, 2049)] {
            let w = values(k * n, (k * 7 + n) as u64);
            let m = PackedMatrix::with_isa(isa, &w, k, n);
            for rows in [1, 3, 8, 13] {
                let x = values(rows * k, (rows * 31 + k) as u64);
                let want = alone(&m, &x, rows);
                assert!(
                    want.iter().all(|v| v.is_finite()),
                    "{isa:?}: one-thread NaN"
                );
                for round in 0..3 {
                    assert_eq!(
                        split(&m, &x, rows),
                        want,
                        "{isa:?} rows={rows} k={k} n={n} round {round}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 12);
}

#[test]
fn threads_multiplying_at_once_get_their_own_products() {
    let (k, n) = (256, 1024);
    let w = values(k * n, 5);
    let m = PackedMatrix::new(&w, k, n);
    std::thread::scope(|scope| {
        for t in 0..4usize {
            let m = &m;
            scope.spawn(move || {
                for i in 0..40usize {
                    let rows = 1 + (t + i) % 8;
                    let x = values(rows * k, (t * 1000 + i) as u64);
                    assert_eq!(
                        split(m, &x, rows),
                        alone(m, &x, rows),
                        "thread {t} product {i}"
                    );
                }
            });
        }
    });
}

/// Windows large enough to split their rows with the helper: every row equals that row
/// computed as a window of its own (one row never splits), forward, backward and the
/// key/value gradient accumulation, bit for bit.
#[test]
fn split_windows_equal_their_rows_one_by_one() {
    use mnemo_kernels::{
        Window, WindowGrads, WindowShape, WindowTerm, window_accumulate, window_attend,
        window_attend_backward,
    };
    let (rows, slots, span, dh) = (33, 70, 64, 40); // 33·64·40 values: splits, unevenly
    let shape = WindowShape {
        rows,
        slots,
        span,
        dh,
    };
    let one = WindowShape { rows: 1, ..shape };
    let (keys, values_) = (values(rows * slots * dh, 1), values(rows * slots * dh, 2));
    let (pos, q, d_out) = (
        values(span * dh, 3),
        values(rows * dh, 4),
        values(rows * dh, 5),
    );
    for isa in supported_isas() {
        let window = |shape, keys, values| Window {
            isa,
            shape,
            start: 5,
            scale: 0.3,
            keys,
            values,
            pos: Some(&pos),
            zeros: None,
        };
        let w = window(shape, &keys[..], &values_[..]);
        let (mut probs, mut out) = (vec![f32::NAN; rows * span], vec![f32::NAN; rows * dh]);
        window_attend(&w, &q, &mut probs, &mut out);
        let (mut dq, mut ds) = (vec![f32::NAN; rows * dh], vec![f32::NAN; rows * span]);
        let g = WindowGrads {
            dq: &mut dq,
            dscores: &mut ds,
        };
        window_attend_backward(&w, &probs, &d_out, g);
        let term = |start, folded, coeff, vec| WindowTerm {
            start,
            folded,
            coeff,
            vec,
        };
        let mut dk = values(rows * slots * dh, 6);
        let terms = [
            term(5, 0, &ds[..], &q[..]),
            term(6, 2, &probs[..], &d_out[..]),
        ];
        window_accumulate(isa, shape, &terms, &mut dk);
        let mut dk_rows = values(rows * slots * dh, 6);
        for i in 0..rows {
            let at = |n: usize| i * n..(i + 1) * n;
            let b = i * slots * dh..(i + 1) * slots * dh;
            let wi = window(one, &keys[b.clone()], &values_[b.clone()]);
            let (mut pi, mut oi) = (vec![0.0; span], vec![0.0; dh]);
            window_attend(&wi, &q[at(dh)], &mut pi, &mut oi);
            assert_eq!(pi, probs[at(span)], "{isa:?} row {i}: probabilities");
            assert_eq!(oi, out[at(dh)], "{isa:?} row {i}: output");
            let (mut dqi, mut dsi) = (vec![0.0; dh], vec![0.0; span]);
            let g = WindowGrads {
                dq: &mut dqi,
                dscores: &mut dsi,
            };
            window_attend_backward(&wi, &pi, &d_out[at(dh)], g);
            assert_eq!(dqi, dq[at(dh)], "{isa:?} row {i}: dq");
            assert_eq!(dsi, ds[at(span)], "{isa:?} row {i}: dscores");
            let terms = [
                term(5, 0, &ds[at(span)], &q[at(dh)]),
                term(6, 2, &probs[at(span)], &d_out[at(dh)]),
            ];
            window_accumulate(isa, one, &terms, &mut dk_rows[b]);
        }
        assert_eq!(dk_rows, dk, "{isa:?}: accumulated gradients");
    }
}

/// `on_both_cores` runs both halves before it returns, whether the helper takes one (a lone
/// thread) or not (several threads at once, each then runs both itself), and each half sees
/// its own captures: every element written once, by the half it belongs to.
#[test]
fn on_both_cores_runs_both_halves_before_returning() {
    let run = |seed: usize| {
        let mut data = vec![f32::NAN; 1000];
        let (left, right) = data.split_at_mut(400);
        let fill = |part: &mut [f32], first: usize| {
            for (i, x) in part.iter_mut().enumerate() {
                *x = ((first + i) * seed) as f32;
            }
        };
        mnemo_kernels::on_both_cores(|| fill(left, 0), || fill(right, 400));
        let expected: Vec<f32> = (0..1000).map(|i| (i * seed) as f32).collect();
        assert_eq!(data, expected, "seed {seed}");
    };
    run(3);
    std::thread::scope(|s| {
        for seed in 1..5 {
            s.spawn(move || {
                for _ in 0..50 {
                    run(seed);
                }
            });
        }
    });
}
