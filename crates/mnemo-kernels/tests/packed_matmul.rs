//! Every instruction-set path of `PackedMatrix::matmul` against a naive f64 product, over shapes that
//! hit full blocks, partial row blocks, masked/scalar column tails and k = 1.
mod common;

use common::{supported_isas, values};
use mnemo_kernels::{Isa, PackedMatrix, matmul_rows};

/// Deterministic `x` `[rows, k]` and `w` `[k, n]`.
fn operands(rows: usize, k: usize, n: usize, seeds: (u64, u64)) -> (Vec<f32>, Vec<f32>) {
    (values(rows * k, seeds.0), values(k * n, seeds.1))
}

/// `x · w` on `isa`, into an output poisoned with NaN (the kernel must overwrite every element).
fn product(isa: Isa, x: &[f32], w: &[f32], rows: usize, k: usize, n: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; rows * n];
    PackedMatrix::with_isa(isa, w, k, n).matmul(x, &mut out, rows);
    out
}

fn reference(x: &[f32], w: &[f32], rows: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; rows * n];
    for r in 0..rows {
        for kk in 0..k {
            for c in 0..n {
                out[r * n + c] += x[r * k + kk] as f64 * w[kk * n + c] as f64;
            }
        }
    }
    out
}

#[test]
fn every_supported_path_matches_the_reference() {
    let isas = supported_isas();
    assert!(isas.contains(&Isa::Portable));
    let mut checked = 0;
    for rows in [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17] {
        for k in [1, 7, 64, 257] {
            for n in [1, 5, 8, 15, 16, 17, 24, 31, 32, 33, 48, 56, 100, 256] {
                let seeds = ((rows * 1000 + k) as u64, (k * 1000 + n) as u64);
                let (x, w) = operands(rows, k, n, seeds);
                let want = reference(&x, &w, rows, k, n);
                for &isa in &isas {
                    let out = product(isa, &x, &w, rows, k, n);
                    for (i, (&got, &want)) in out.iter().zip(&want).enumerate() {
                        let tol = 1e-5 * (k as f64).sqrt() * (1.0 + want.abs());
                        assert!(
                            (got as f64 - want).abs() <= tol,
                            "{isa:?} rows={rows} k={k} n={n}: out[{i}] = {got}, want {want}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 11 * 4 * 14);
}

#[test]
fn paths_agree_bit_for_bit_where_both_use_fma() {
    // All paths sum k ascending with one fused multiply-add per term, so they agree exactly.
    let (rows, k, n) = (8, 300, 100);
    let (x, w) = operands(rows, k, n, (1, 2));
    let portable = product(Isa::Portable, &x, &w, rows, k, n);
    for isa in supported_isas() {
        let out = product(isa, &x, &w, rows, k, n);
        assert_eq!(out, portable, "{isa:?} differs from the portable path");
    }
}

#[test]
fn packing_the_transpose_gives_the_same_products() {
    // Full and partial panels, k = 1, one column: every packed value must land where `new`
    // puts it, or the products differ.
    for (rows, k, n) in [(8, 64, 96), (5, 33, 70), (3, 1, 17), (2, 9, 1)] {
        let (x, w) = operands(rows, k, n, (5, 6));
        let mut w_t = vec![0.0; k * n];
        for kk in 0..k {
            for c in 0..n {
                w_t[c * k + kk] = w[kk * n + c];
            }
        }
        for isa in supported_isas() {
            let mut out = vec![f32::NAN; rows * n];
            PackedMatrix::from_transposed_with_isa(isa, &w_t, k, n).matmul(&x, &mut out, rows);
            let want = product(isa, &x, &w, rows, k, n);
            assert_eq!(out, want, "{isa:?}, rows {rows}, k {k}, n {n}");
        }
    }
}

#[test]
fn the_default_path_is_the_detected_one() {
    let (rows, k, n) = (3, 20, 40);
    let (x, w) = operands(rows, k, n, (3, 4));
    let mut a = vec![0.0; rows * n];
    matmul_rows(&x, &w, &mut a, rows, k, n);
    assert_eq!(a, product(Isa::detect(), &x, &w, rows, k, n));
}

#[test]
#[should_panic(expected = "the matrix must hold k·n")]
fn a_wrong_length_is_refused() {
    let mut out = vec![0.0; 2 * 3];
    matmul_rows(&[0.0; 2 * 4], &[0.0; 4 * 3 - 1], &mut out, 2, 4, 3);
}

#[test]
#[should_panic(expected = "x must hold rows·k")]
fn a_wrong_row_length_is_refused() {
    let mut out = vec![0.0; 2 * 3];
    PackedMatrix::new(&[0.0; 4 * 3], 4, 3).matmul(&[0.0; 2 * 4 + 1], &mut out, 2);
}
