//! Log-softmax of rows in place, vectorised: `x − max − ln Σ exp(x − max)` per row. Decoding
//! takes it over the vocabulary for every hypothesis at every step (80 rows × 8,000 subwords per
//! step of a beam-4 batch of 20 sentences), where a scalar `expf` per logit was a tenth of the
//! decode (docs/reproducing.md). Three passes per row (max, sum of exponentials, shift), each
//! in 16 independent lanes so that they vectorise; every instruction set runs the same IEEE
//! operations in the same order, so all paths agree bit for bit.
use crate::Isa;
use crate::dispatch::on_isa;
use crate::softmax_rows::{exp_shifted, row_max};

/// `x ← log_softmax(x)` over each row of `v` values.
///
/// # Shapes
/// - x: `[rows, v]`
///
/// # Panics
/// If `v` is 0 or does not divide `x.len()`, or the CPU does not support `isa`.
pub fn log_softmax_rows(isa: Isa, x: &mut [f32], v: usize) {
    assert!(
        v > 0 && x.len().is_multiple_of(v),
        "log_softmax_rows: {} values are not rows of {v}",
        x.len()
    );
    on_isa!(isa, rows_loop(x: &mut [f32], v: usize));
}

/// The loop every instruction set compiles (inlined into [`on_isa!`]'s wrappers).
#[inline(always)]
fn rows_loop(x: &mut [f32], v: usize) {
    let mut exps = vec![0.0f32; v];
    for row in x.chunks_exact_mut(v) {
        let max = row_max(row);
        let shift = max + exp_shifted(row, max, &mut exps).ln();
        row.iter_mut().for_each(|x| *x -= shift);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of 1, 15 and 8,003 values (lanes and a remainder), spread over ±30, against an f64
    /// reference; every instruction set gives the portable path's bits.
    #[test]
    fn matches_an_f64_reference_on_every_isa() {
        for v in [1, 15, 8003] {
            let mut s = 0x2545_F491_4F6C_DD1Du64;
            let x: Vec<f32> = (0..3 * v)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 * 60.0 - 30.0
                })
                .collect();
            let mut portable = x.clone();
            log_softmax_rows(Isa::Portable, &mut portable, v);
            for (row, got) in x.chunks(v).zip(portable.chunks(v)) {
                let m = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
                let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
                for (&x, &g) in row.iter().zip(got) {
                    let want = x as f64 - lse;
                    assert!(
                        (g as f64 - want).abs() < 1e-6 * (1.0 + want.abs()),
                        "v {v}: {g} vs {want}"
                    );
                }
            }
            for isa in [Isa::Avx2, Isa::Avx512]
                .into_iter()
                .filter(|i| i.supported())
            {
                let mut y = x.clone();
                log_softmax_rows(isa, &mut y, v);
                assert!(
                    y == portable,
                    "v {v}: {isa:?} differs from the portable path"
                );
            }
        }
    }

    /// A NaN logit makes its row NaN (it does not vanish in the maximum).
    #[test]
    fn a_nan_logit_shows() {
        let mut x = vec![0.5, f32::NAN, -1.0, 2.0];
        log_softmax_rows(Isa::detect(), &mut x, 4);
        assert!(x.iter().all(|v| v.is_nan()), "{x:?}");
    }
}
