//! AVX2 + FMA: a block of up to 4 rows × one 24-column panel lives in 12 `ymm` accumulators
//! while `k` runs (16 registers: 12 accumulators, 3 panel vectors, 1 broadcast). The last
//! panel's valid columns are copied out through a buffer.
use std::arch::x86_64::*;

/// Vectors per panel.
const VECS: usize = 3;
/// Columns per panel.
const P: usize = 8 * VECS;
/// Rows per block.
const ROWS: usize = 4;

/// `out = x · M` for `M` packed in `[k, 24]` panels.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `x` holds `rows·k` values, `out` `rows·n`, `panels`
/// `⌈n/24⌉·k·24`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn matmul(
    x: &[f32],
    panels: &[f32],
    out: &mut [f32],
    rows: usize,
    k: usize,
    n: usize,
) {
    debug_assert_eq!(panels.len(), n.div_ceil(P) * k * P);
    let mut r0 = 0;
    while r0 < rows {
        let r = (rows - r0).min(ROWS);
        let xs = &x[r0 * k..(r0 + r) * k];
        let os = &mut out[r0 * n..(r0 + r) * n];
        // SAFETY: the caller's guarantees, restricted to rows r0..r0+r.
        unsafe {
            match r {
                4 => block::<4>(xs, panels, os, k, n),
                3 => block::<3>(xs, panels, os, k, n),
                2 => block::<2>(xs, panels, os, k, n),
                _ => block::<1>(xs, panels, os, k, n),
            }
        }
        r0 += r;
    }
}

/// `R` rows of `out = x · M`.
///
/// # Safety
/// As [`matmul`], with `rows = R`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const R: usize>(x: &[f32], panels: &[f32], out: &mut [f32], k: usize, n: usize) {
    let xp = x.as_ptr();
    for (pi, panel) in panels.chunks_exact(k * P).enumerate() {
        let c0 = pi * P;
        let width = (n - c0).min(P);
        let mut acc = [[_mm256_setzero_ps(); VECS]; R];
        let pp = panel.as_ptr();
        for kk in 0..k {
            // SAFETY: panel row kk spans kk·24..kk·24+24 inside the panel (k·24 values);
            // x[r·k + kk] is inside x for r < R.
            unsafe {
                let w = [
                    _mm256_loadu_ps(pp.add(kk * P)),
                    _mm256_loadu_ps(pp.add(kk * P + 8)),
                    _mm256_loadu_ps(pp.add(kk * P + 16)),
                ];
                for (r, a) in acc.iter_mut().enumerate() {
                    let xb = _mm256_set1_ps(*xp.add(r * k + kk));
                    for v in 0..VECS {
                        a[v] = _mm256_fmadd_ps(xb, w[v], a[v]);
                    }
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let mut buf = [0.0f32; P];
            for (v, acc_v) in a.iter().enumerate() {
                // SAFETY: buf holds 24 values; lanes 8v..8v+8 are inside it.
                unsafe { _mm256_storeu_ps(buf.as_mut_ptr().add(8 * v), *acc_v) };
            }
            out[r * n + c0..r * n + c0 + width].copy_from_slice(&buf[..width]);
        }
    }
}
