//! The portable path: plain loops, `Σ_k` ascending per output element.

/// `out = x · w` (see [`crate::matmul_rows`]); lengths already checked.
pub(crate) fn matmul_rows(x: &[f32], w: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    for r in 0..rows {
        let o = &mut out[r * n..(r + 1) * n];
        o.fill(0.0);
        for (kk, wrow) in w.chunks_exact(n).enumerate().take(k) {
            let xv = x[r * k + kk];
            for (acc, &wv) in o.iter_mut().zip(wrow) {
                *acc = xv.mul_add(wv, *acc);
            }
        }
    }
}
