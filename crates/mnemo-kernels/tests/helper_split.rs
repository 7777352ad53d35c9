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
