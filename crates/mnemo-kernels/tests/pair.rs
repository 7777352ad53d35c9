//! Two halves in lockstep (`in_pair`): every exchange hands both halves both parts, in order,
//! however many exchanges follow one another; the parts of a product computed column range by
//! column range equal the whole product bit for bit; a panic in either half reaches the caller
//! instead of leaving the other half waiting.
mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{supported_isas, values};
use mnemo_kernels::{
    PackedMatrix, Window, WindowShape, in_pair_waiting, on_this_core, window_attend,
};

/// Many exchanges in a row, of changing sizes: each half posts its share of a vector that
/// depends on the round and on what the previous round read, and both must read the whole
/// vector; returns how many parts ran. The caller waits up to a second for the helper to start
/// its part (not 200 µs), so that a loaded machine still runs it in two parts.
fn rounds(n_rounds: usize) -> usize {
    let parts = Mutex::new(Vec::new());
    let total = in_pair_waiting(Duration::from_secs(1), |half| {
        parts.lock().unwrap().push(half.parts());
        let mut carried = 0.0f32;
        for round in 0..n_rounds {
            let n = 1 + (round * 37) % 300;
            let want: Vec<f32> = (0..n)
                .map(|i| (round * 1000 + i) as f32 + carried)
                .collect();
            let share = half.share(n, 16);
            let got = half.exchange(
                |mine| mine.extend_from_slice(&want[share.clone()]),
                |all| all.concat(),
            );
            assert_eq!(got, want, "round {round}, part {}", half.index());
            carried = got[n / 2];
        }
        carried
    });
    assert!(total > 0.0);
    let parts = parts.into_inner().unwrap();
    assert!(parts.iter().all(|&p| p == parts[0]) && parts.len() == parts[0]);
    parts[0]
}

#[test]
fn every_exchange_hands_both_parts_in_order() {
    // Other tests of this binary may hold the helper for a while (longer on a loaded
    // machine): then a call runs alone, and the next one tries again, for up to 30 s.
    let until = Instant::now() + Duration::from_secs(30);
    let mut two = false;
    while !two && Instant::now() < until {
        two = rounds(200) == 2;
    }
    if mnemo_kernels::helper_thread() {
        assert!(two, "with a helper, no call ran in two parts in 30 s");
    }
    on_this_core(|| assert_eq!(rounds(50), 1, "inside on_this_core one part runs"));
}

#[test]
fn column_parts_of_a_product_equal_the_whole() {
    for isa in supported_isas() {
        for (k, n) in [(256, 512), (300, 1000), (64, 33), (256, 2049), (16, 8)] {
            let m = PackedMatrix::with_isa(isa, &values(k * n, (k + n) as u64), k, n);
            for rows in [1, 3, 8] {
                let x = values(rows * k, (rows * 7 + k) as u64);
                let mut want = vec![f32::NAN; rows * n];
                m.matmul_one_thread(&x, &mut want, rows);
                for parts in [1, 2] {
                    let mut got = vec![f32::NAN; rows * n];
                    for part in 0..parts {
                        let cols = m.part_columns(part, parts);
                        let mut out = vec![f32::NAN; rows * cols.len()];
                        m.matmul_columns(&x, &mut out, rows, cols.clone());
                        for (r, o) in out.chunks_exact(cols.len().max(1)).enumerate() {
                            got[r * n + cols.start..r * n + cols.end].copy_from_slice(o);
                        }
                    }
                    assert_eq!(got, want, "{isa:?} k={k} n={n} rows={rows} parts={parts}");
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "columns 1..32 of 64")]
fn columns_inside_a_panel_are_refused() {
    let m = PackedMatrix::new(&values(4 * 64, 1), 4, 64);
    let mut out = vec![0.0; 31];
    m.matmul_columns(&values(4, 2), &mut out, 1, 1..32);
}

/// A window's rows taken as a window of their own attend as those rows of the whole.
#[test]
fn a_window_of_some_rows_attends_as_those_rows() {
    let (rows, slots, span, dh) = (6, 20, 16, 8);
    let shape = WindowShape {
        rows,
        slots,
        span,
        dh,
    };
    let (keys, vals) = (values(rows * slots * dh, 1), values(rows * slots * dh, 2));
    let (pos, q) = (values(span * dh, 3), values(rows * dh, 4));
    let w = Window {
        isa: mnemo_kernels::Isa::detect(),
        shape,
        start: 3,
        scale: 0.4,
        keys: &keys,
        values: &vals,
        pos: Some(&pos),
        zeros: None,
    };
    let (mut probs, mut out) = (vec![0.0; rows * span], vec![0.0; rows * dh]);
    window_attend(&w, &q, &mut probs, &mut out);
    for range in [0..3, 2..6, 4..5] {
        let sub = w.rows(range.clone());
        let (mut p, mut o) = (vec![0.0; range.len() * span], vec![0.0; range.len() * dh]);
        window_attend(&sub, &q[range.start * dh..range.end * dh], &mut p, &mut o);
        assert_eq!(o, out[range.start * dh..range.end * dh], "rows {range:?}");
        assert_eq!(
            p,
            probs[range.start * span..range.end * span],
            "rows {range:?}"
        );
    }
}

/// A panic in either half ends the call with a panic (the other half stops waiting), and the
/// next call runs normally.
#[test]
fn a_panic_in_either_half_reaches_the_caller() {
    for bad in [0, 1] {
        let mut panicked = false;
        // As above: retried while other tests hold the helper, for up to 30 s.
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            let r = catch_unwind(AssertUnwindSafe(|| {
                in_pair_waiting(Duration::from_secs(1), |half| {
                    for i in 0..100 {
                        half.exchange(|m| m.push(i as f32), |all| all.len());
                        if i == 50 && half.index() == bad && half.parts() == 2 {
                            panic!("half {bad} fails");
                        }
                    }
                    half.parts()
                })
            }));
            if r.is_err() {
                panicked = true;
                break;
            }
        }
        if mnemo_kernels::helper_thread() {
            assert!(panicked, "half {bad} never ran in a pair in 30 s");
        }
        assert!(rounds(20) >= 1, "a call after the panic runs");
    }
}
