//! AVX2 + FMA: a block of up to 4 rows × 24 columns lives in 12 `ymm` accumulators while `k`
//! runs (16 registers: 12 accumulators, 3 weight vectors, 1 broadcast). Columns beyond the
//! last full 8-lane vector are finished with scalar fused multiply-adds in the same order.
use std::arch::x86_64::*;

/// Vectors per block.
const VECS: usize = 3;
/// Rows per block.
const ROWS: usize = 4;

/// `out = x · w` (see [`crate::matmul_rows`]).
///
/// # Safety
/// The CPU supports AVX2 and FMA; `x`, `w` and `out` hold `rows·k`, `k·n` and `rows·n` values.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn matmul_rows(x: &[f32], w: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    let mut r0 = 0;
    while r0 < rows {
        let r = (rows - r0).min(ROWS);
        let xs = &x[r0 * k..(r0 + r) * k];
        let os = &mut out[r0 * n..(r0 + r) * n];
        // SAFETY: the caller's guarantees, restricted to rows r0..r0+r.
        unsafe {
            match r {
                4 => block::<4>(xs, w, os, k, n),
                3 => block::<3>(xs, w, os, k, n),
                2 => block::<2>(xs, w, os, k, n),
                _ => block::<1>(xs, w, os, k, n),
            }
        }
        r0 += r;
    }
}

/// `R` rows of `out = x · w`.
///
/// # Safety
/// As [`matmul_rows`], with `rows = R`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const R: usize>(x: &[f32], w: &[f32], out: &mut [f32], k: usize, n: usize) {
    debug_assert!(x.len() == R * k && w.len() == k * n && out.len() == R * n);
    let xp = x.as_ptr();
    let op = out.as_mut_ptr();
    let vec_cols = n - n % 8;
    let mut n0 = 0;
    while n0 < vec_cols {
        let vecs = ((vec_cols - n0) / 8).min(VECS);
        let mut acc = [[_mm256_setzero_ps(); VECS]; R];
        for kk in 0..k {
            // SAFETY: lanes n0..n0+8·vecs of row kk are inside w (n0 + 8·vecs ≤ n);
            // x[r·k + kk] is inside x for r < R.
            unsafe {
                let row = w.as_ptr().add(kk * n + n0);
                let mut wv = [_mm256_setzero_ps(); VECS];
                for (v, slot) in wv.iter_mut().enumerate().take(vecs) {
                    *slot = _mm256_loadu_ps(row.add(8 * v));
                }
                for (r, a) in acc.iter_mut().enumerate() {
                    let xb = _mm256_set1_ps(*xp.add(r * k + kk));
                    for v in 0..vecs {
                        a[v] = _mm256_fmadd_ps(xb, wv[v], a[v]);
                    }
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            for (v, acc_v) in a.iter().enumerate().take(vecs) {
                // SAFETY: out lanes n0+8v..n0+8v+8 of row r are inside out (n0 + 8·vecs ≤ n).
                unsafe { _mm256_storeu_ps(op.add(r * n + n0 + 8 * v), *acc_v) };
            }
        }
        n0 += 8 * vecs;
    }
    for r in 0..R {
        for c in vec_cols..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc = x[r * k + kk].mul_add(w[kk * n + c], acc);
            }
            out[r * n + c] = acc;
        }
    }
}
