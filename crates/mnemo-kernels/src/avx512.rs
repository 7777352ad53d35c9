//! AVX-512F: a block of up to 8 rows × 32 columns lives in 16 `zmm` accumulators while `k`
//! runs; each weight row segment is loaded once per block and each `x` value is broadcast.
//! The last block of columns uses masked loads and stores.
use std::arch::x86_64::*;

/// Columns per block (two 16-lane vectors).
const BLOCK: usize = 32;
/// Rows per block.
const ROWS: usize = 8;

/// `out = x · w` (see [`crate::matmul_rows`]).
///
/// # Safety
/// The CPU supports AVX-512F; `x`, `w` and `out` hold `rows·k`, `k·n` and `rows·n` values.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn matmul_rows(x: &[f32], w: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    let mut r0 = 0;
    while r0 < rows {
        let r = (rows - r0).min(ROWS);
        let xs = &x[r0 * k..(r0 + r) * k];
        let os = &mut out[r0 * n..(r0 + r) * n];
        // SAFETY: the caller's guarantees, restricted to rows r0..r0+r.
        unsafe {
            match r {
                8 => block::<8>(xs, w, os, k, n),
                7 => block::<7>(xs, w, os, k, n),
                6 => block::<6>(xs, w, os, k, n),
                5 => block::<5>(xs, w, os, k, n),
                4 => block::<4>(xs, w, os, k, n),
                3 => block::<3>(xs, w, os, k, n),
                2 => block::<2>(xs, w, os, k, n),
                _ => block::<1>(xs, w, os, k, n),
            }
        }
        r0 += r;
    }
}

/// The lane mask for `width` (0..=16) valid columns.
fn mask(width: usize) -> __mmask16 {
    if width >= 16 { 0xffff } else { ((1u32 << width) - 1) as __mmask16 }
}

/// `R` rows of `out = x · w`.
///
/// # Safety
/// As [`matmul_rows`], with `rows = R`.
#[target_feature(enable = "avx512f")]
unsafe fn block<const R: usize>(x: &[f32], w: &[f32], out: &mut [f32], k: usize, n: usize) {
    debug_assert!(x.len() == R * k && w.len() == k * n && out.len() == R * n);
    let xp = x.as_ptr();
    let op = out.as_mut_ptr();
    let mut n0 = 0;
    while n0 < n {
        let width = (n - n0).min(BLOCK);
        let (m0, m1) = (mask(width), mask(width.saturating_sub(16)));
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for kk in 0..k {
            // SAFETY: row kk of w starts at kk·n; lanes n0..n0+width are inside it and the
            // masks keep every load within those lanes. x[r·k + kk] is inside x for r < R.
            unsafe {
                let row = w.as_ptr().add(kk * n + n0);
                let w0 = _mm512_maskz_loadu_ps(m0, row);
                let w1 = _mm512_maskz_loadu_ps(m1, row.add(16));
                for (r, a) in acc.iter_mut().enumerate() {
                    let xb = _mm512_set1_ps(*xp.add(r * k + kk));
                    a[0] = _mm512_fmadd_ps(xb, w0, a[0]);
                    a[1] = _mm512_fmadd_ps(xb, w1, a[1]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            // SAFETY: out row r spans r·n..(r+1)·n; the masks keep stores within n0..n0+width.
            unsafe {
                let o = op.add(r * n + n0);
                _mm512_mask_storeu_ps(o, m0, a[0]);
                _mm512_mask_storeu_ps(o.add(16), m1, a[1]);
            }
        }
        n0 += BLOCK;
    }
}
