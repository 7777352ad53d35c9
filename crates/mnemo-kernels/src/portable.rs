//! The portable path: 16-column panels, one fused multiply-add per term, `k` ascending.

/// Columns per panel.
const P: usize = 16;

/// `out = x · M` for `M` packed in `[k, 16]` panels, `out` one slice of `n` per row (lengths
/// already checked).
pub(crate) fn matmul(x: &[f32], panels: &[f32], out: &mut [&mut [f32]], k: usize, n: usize) {
    for (pi, panel) in panels.chunks_exact(k * P).enumerate() {
        let c0 = pi * P;
        let width = (n - c0).min(P);
        for (r, row) in out.iter_mut().enumerate() {
            let mut acc = [0.0f32; P];
            for (kk, wrow) in panel.chunks_exact(P).enumerate() {
                let xv = x[r * k + kk];
                for (a, &w) in acc.iter_mut().zip(wrow) {
                    *a = xv.mul_add(w, *a);
                }
            }
            row[c0..c0 + width].copy_from_slice(&acc[..width]);
        }
    }
}
