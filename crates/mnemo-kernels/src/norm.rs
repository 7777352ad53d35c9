//! LayerNorm and RMSNorm over the few rows of one step, forward and backward, each row's sums
//! in lanes ([`softmax_rows`](crate::softmax_rows)) and compiled per instruction set. The
//! Feedback step's manual forward and backward call these on host rows where burn spends about
//! eight element-wise operations, each with a fresh output, on one norm of eight rows
//! (docs/performance.md).
//!
//! The forward is `y = x̂ γ + β` with `x̂ = (x − μ) / σ` (LayerNorm; RMSNorm: `μ = 0`, no β),
//! `σ = √(mean((x − μ)²) + ε)`; the backward takes `dx̂ = dy ⊙ γ` and gives
//! `dx = (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂)) / σ` (RMSNorm: without the `mean(dx̂)` term).
//! Every instruction set runs the same operations in the same order: the paths agree bit for
//! bit.
use crate::Isa;
use crate::dispatch::on_isa;
use crate::softmax_rows::{row_dot, row_sum};

/// The norm's parameters: whether rows are centred (LayerNorm) or not (RMSNorm), the scale γ,
/// the shift β (LayerNorm; None for none) and ε.
#[derive(Debug, Clone, Copy)]
pub struct NormRows<'a> {
    /// Subtract each row's mean first (LayerNorm); false: RMSNorm.
    pub centred: bool,
    /// γ, one per feature.
    pub gamma: &'a [f32],
    /// β, one per feature (None: no shift).
    pub beta: Option<&'a [f32]>,
    /// ε inside the square root.
    pub eps: f32,
}

impl NormRows<'_> {
    /// `y = norm(x)` for every row of `x`.
    ///
    /// # Shapes
    /// - x, y: `[rows, D]` row-major, D = `gamma.len()`
    ///
    /// # Panics
    /// If the lengths disagree with D, or the CPU does not support `isa`.
    pub fn forward(&self, isa: Isa, x: &[f32], y: &mut [f32]) {
        let d = self.gamma.len();
        assert!(
            d > 0 && x.len().is_multiple_of(d),
            "x must hold whole rows of D"
        );
        assert_eq!(x.len(), y.len(), "y must hold one value per input");
        assert!(
            self.beta.is_none_or(|b| b.len() == d),
            "β must hold D values"
        );
        let norm = *self;
        on_isa!(isa, forward_loop(norm: NormRows<'_>, x: &[f32], y: &mut [f32]));
    }

    /// The normalised rows `x̂ = (x − μ)/σ` and each row's `1/σ` (γ and β not applied): what
    /// the backward and the weight gradients read.
    ///
    /// # Shapes
    /// - x, xhat: `[rows, D]` row-major; rstd: `[rows]`
    ///
    /// # Panics
    /// If the lengths disagree, or the CPU does not support `isa`.
    pub fn stats(&self, isa: Isa, x: &[f32], xhat: &mut [f32], rstd: &mut [f32]) {
        let d = self.gamma.len();
        assert_eq!(x.len(), rstd.len() * d, "x must hold one row of D per σ");
        assert_eq!(xhat.len(), x.len(), "xhat must match x");
        let norm = *self;
        on_isa!(
            isa,
            stats_loop(norm: NormRows<'_>, x: &[f32], xhat: &mut [f32], rstd: &mut [f32])
        );
    }

    /// `dx` from `dx̂` (the output gradient times γ), the normalised rows `x̂` and each row's
    /// `1/σ`.
    ///
    /// # Shapes
    /// - dxhat, xhat, dx: `[rows, D]` row-major; rstd: `[rows]`
    ///
    /// # Panics
    /// If the lengths disagree, or the CPU does not support `isa`.
    pub fn backward(&self, isa: Isa, dxhat: &[f32], xhat: &[f32], rstd: &[f32], dx: &mut [f32]) {
        let d = self.gamma.len();
        assert_eq!(
            dxhat.len(),
            rstd.len() * d,
            "dxhat must hold one row of D per σ"
        );
        assert_eq!(xhat.len(), dxhat.len(), "xhat must match dxhat");
        assert_eq!(dx.len(), dxhat.len(), "dx must match dxhat");
        let norm = *self;
        on_isa!(
            isa,
            backward_loop(
                norm: NormRows<'_>,
                dxhat: &[f32],
                xhat: &[f32],
                rstd: &[f32],
                dx: &mut [f32],
            )
        );
    }
}

#[inline(always)]
fn forward_loop(norm: NormRows<'_>, x: &[f32], y: &mut [f32]) {
    let d = norm.gamma.len();
    for (row, out) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        let inv_d = centre_row(norm.centred, row, out);
        let rstd = rstd_of(out, norm.eps, inv_d);
        match norm.beta {
            Some(beta) => {
                for ((o, &g), &b) in out.iter_mut().zip(norm.gamma).zip(beta) {
                    *o = *o * rstd * g + b;
                }
            }
            None => {
                for (o, &g) in out.iter_mut().zip(norm.gamma) {
                    *o = *o * rstd * g;
                }
            }
        }
    }
}

#[inline(always)]
fn stats_loop(norm: NormRows<'_>, x: &[f32], xhat: &mut [f32], rstd: &mut [f32]) {
    let d = norm.gamma.len();
    for ((row, out), r) in x.chunks_exact(d).zip(xhat.chunks_exact_mut(d)).zip(rstd) {
        let inv_d = centre_row(norm.centred, row, out);
        *r = rstd_of(out, norm.eps, inv_d);
        for o in out.iter_mut() {
            *o *= *r;
        }
    }
}

/// `out = row − mean(row)` (LayerNorm) or `row` (RMSNorm); returns `1/D`.
#[inline(always)]
fn centre_row(centred: bool, row: &[f32], out: &mut [f32]) -> f32 {
    let inv_d = 1.0 / row.len() as f32;
    let mean = match centred {
        true => row_sum(row) * inv_d,
        false => 0.0,
    };
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v - mean;
    }
    inv_d
}

/// `1/σ` of a centred row.
#[inline(always)]
fn rstd_of(centred: &[f32], eps: f32, inv_d: f32) -> f32 {
    1.0 / (row_dot(centred, centred) * inv_d + eps).sqrt()
}

#[inline(always)]
fn backward_loop(norm: NormRows<'_>, dxhat: &[f32], xhat: &[f32], rstd: &[f32], dx: &mut [f32]) {
    let d = norm.gamma.len();
    let inv_d = 1.0 / d as f32;
    let rows = dxhat.chunks_exact(d).zip(xhat.chunks_exact(d));
    for (((g, xh), &r), out) in rows.zip(rstd).zip(dx.chunks_exact_mut(d)) {
        let proj = row_dot(g, xh) * inv_d;
        let mean = match norm.centred {
            true => row_sum(g) * inv_d,
            false => 0.0,
        };
        for ((o, &g), &xh) in out.iter_mut().zip(g).zip(xh) {
            *o = (g - mean - xh * proj) * r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of a smooth, non-trivial pattern, `rows × d`.
    fn rows(rows: usize, d: usize, seed: f32) -> Vec<f32> {
        (0..rows * d)
            .map(|i| (i as f32 * 0.37 + seed).sin() * 2.0 + (i % 7) as f32 * 0.1)
            .collect()
    }

    /// One row's norm in f64.
    fn reference(centred: bool, row: &[f32], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f64> {
        let d = row.len() as f64;
        let mean = match centred {
            true => row.iter().map(|&v| v as f64).sum::<f64>() / d,
            false => 0.0,
        };
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d;
        let rstd = 1.0 / (var + eps).sqrt();
        row.iter()
            .zip(gamma.iter().zip(beta))
            .map(|(&v, (&g, &b))| (v as f64 - mean) * rstd * g as f64 + b as f64)
            .collect()
    }

    /// The forward matches an f64 reference, LayerNorm and RMSNorm, D with and without a
    /// remainder past the lanes.
    #[test]
    fn forward_matches_an_f64_reference() {
        for (centred, d) in [(true, 64), (false, 64), (true, 37), (false, 5)] {
            let x = rows(3, d, 0.3);
            let gamma = rows(1, d, 1.1);
            let beta = match centred {
                true => rows(1, d, 2.9),
                false => vec![0.0; d],
            };
            let norm = NormRows {
                centred,
                gamma: &gamma,
                beta: centred.then_some(beta.as_slice()),
                eps: 1e-5,
            };
            let mut y = vec![0.0; x.len()];
            norm.forward(Isa::detect(), &x, &mut y);
            for (row, got) in x.chunks_exact(d).zip(y.chunks_exact(d)) {
                let want = reference(centred, row, &gamma, &beta, 1e-5);
                for (g, w) in got.iter().zip(want) {
                    assert!((*g as f64 - w).abs() < 1e-5, "centred {centred}, d {d}");
                }
            }
        }
    }

    /// The backward equals central finite differences of `Σ c ⊙ x̂` in f64, where the input
    /// gradient of the normalised rows is `c` (γ = 1, β = 0).
    #[test]
    fn backward_matches_finite_differences() {
        for (centred, d) in [(true, 48), (false, 48), (true, 19)] {
            let x = rows(2, d, 0.7);
            let c = rows(2, d, 4.2);
            let ones = vec![1.0f32; d];
            let zeros = vec![0.0f32; d];
            let eps = 1e-5;
            let objective = |x: &[f32]| -> f64 {
                x.chunks_exact(d)
                    .zip(c.chunks_exact(d))
                    .map(|(row, c)| {
                        let y = reference(centred, row, &ones, &zeros, eps);
                        y.iter().zip(c).map(|(y, &c)| y * c as f64).sum::<f64>()
                    })
                    .sum()
            };
            let norm = NormRows {
                centred,
                gamma: &ones,
                beta: None,
                eps: eps as f32,
            };
            let (mut xhat, mut rstd) = (vec![0.0; x.len()], vec![0.0; 2]);
            norm.stats(Isa::detect(), &x, &mut xhat, &mut rstd);
            let mut y = vec![0.0; x.len()];
            norm.forward(Isa::detect(), &x, &mut y);
            assert_eq!(y, xhat, "γ = 1 without β: the forward is x̂");
            let mut dx = vec![0.0; x.len()];
            norm.backward(Isa::detect(), &c, &xhat, &rstd, &mut dx);
            let h = 1e-3f32;
            for i in 0..x.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let fd = (objective(&up) - objective(&down)) / (2.0 * h as f64);
                assert!(
                    (dx[i] as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                    "centred {centred}, d {d}, x[{i}]: {} vs {fd}",
                    dx[i]
                );
            }
        }
    }

    /// Every instruction set this CPU supports gives the portable path's bits.
    #[test]
    fn every_isa_agrees_bit_for_bit() {
        let d = 80;
        let x = rows(5, d, 0.1);
        let (gamma, beta) = (rows(1, d, 0.5), rows(1, d, 0.9));
        let rstd: Vec<f32> = (0..5).map(|i| 0.5 + i as f32 * 0.1).collect();
        let norm = NormRows {
            centred: true,
            gamma: &gamma,
            beta: Some(&beta),
            eps: 1e-5,
        };
        let run = |isa| {
            let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let (mut xhat, mut rstd_x) = (vec![0.0; x.len()], vec![0.0; 5]);
            norm.forward(isa, &x, &mut y);
            norm.stats(isa, &x, &mut xhat, &mut rstd_x);
            norm.backward(isa, &x, &y, &rstd, &mut dx);
            (y, dx, xhat, rstd_x)
        };
        let portable = run(Isa::Portable);
        for isa in [Isa::Avx512, Isa::Avx2] {
            if isa.supported() {
                assert_eq!(run(isa), portable, "{isa:?}");
            }
        }
    }
}
