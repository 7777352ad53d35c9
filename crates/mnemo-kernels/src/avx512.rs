//! AVX-512F: a block of up to 8 rows × one 32-column panel lives in 16 `zmm` accumulators
//! while `k` runs; each panel row is loaded once per block and each `x` value is broadcast.
//! The last panel is stored with masks.
use std::arch::x86_64::*;

/// Columns per panel (two 16-lane vectors).
const P: usize = 32;

crate::row_blocks::row_blocked_matmul!(
    "avx512f",
    "`out = x · M` for `M` packed in `[k, 32]` panels, in blocks of up to 8 rows.",
    "The CPU supports AVX-512F;",
    [8, 7, 6, 5, 4, 3, 2]
);

/// The lane mask for `width` (0..=16) valid columns.
fn mask(width: usize) -> __mmask16 {
    if width >= 16 {
        0xffff
    } else {
        ((1u32 << width) - 1) as __mmask16
    }
}

/// `R` rows of `out = x · M`.
///
/// # Safety
/// As [`matmul`], with `rows = R`.
#[target_feature(enable = "avx512f")]
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
        let (m0, m1) = (mask(width), mask(width.saturating_sub(16)));
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let pp = panel.as_ptr();
        for kk in 0..k {
            // SAFETY: panel row kk spans kk·32..kk·32+32 inside the panel (k·32 values);
            // x[r·k + kk] is inside x for r < R.
            unsafe {
                let w0 = _mm512_loadu_ps(pp.add(kk * P));
                let w1 = _mm512_loadu_ps(pp.add(kk * P + 16));
                for (r, a) in acc.iter_mut().enumerate() {
                    let xb = _mm512_set1_ps(*xp.add(r * k + kk));
                    a[0] = _mm512_fmadd_ps(xb, w0, a[0]);
                    a[1] = _mm512_fmadd_ps(xb, w1, a[1]);
                }
            }
        }
        for (a, row) in acc.iter().zip(out.iter_mut()) {
            // SAFETY: every out row holds n values; the masks keep stores within
            // c0..c0+width ≤ n.
            unsafe {
                let o = row.as_mut_ptr().add(c0);
                _mm512_mask_storeu_ps(o, m0, a[0]);
                _mm512_mask_storeu_ps(o.add(16), m1, a[1]);
            }
        }
    }
}
