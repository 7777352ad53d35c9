//! AVX2 + FMA: a block of up to 4 rows × one 24-column panel lives in 12 `ymm` accumulators
//! while `k` runs (16 registers: 12 accumulators, 3 panel vectors, 1 broadcast). The last
//! panel's valid columns are copied out through a buffer.
use std::arch::x86_64::*;

/// Vectors per panel.
const VECS: usize = 3;
/// Columns per panel.
const P: usize = 8 * VECS;

crate::row_blocks::row_blocked_matmul!(
    "avx2,fma",
    "`out = x · M` for `M` packed in `[k, 24]` panels, in blocks of up to 4 rows.",
    "The CPU supports AVX2 and FMA;",
    [4, 3, 2]
);

/// `R` rows of `out = x · M`.
///
/// # Safety
/// As [`matmul`], with `rows = R`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const R: usize>(
    x: &[f32],
    panels: &[f32],
    out: &mut [&mut [f32]],
    k: usize,
    n: usize,
) {
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
        for (a, row) in acc.iter().zip(out.iter_mut()) {
            let mut buf = [0.0f32; P];
            for (v, acc_v) in a.iter().enumerate() {
                // SAFETY: buf holds 24 values; lanes 8v..8v+8 are inside it.
                unsafe { _mm256_storeu_ps(buf.as_mut_ptr().add(8 * v), *acc_v) };
            }
            row[c0..c0 + width].copy_from_slice(&buf[..width]);
        }
    }
}
