//! `exp` of non-positive arguments, branch-free so that loops over it vectorise: what GELU's
//! `erf` and the softmax rows of the log-softmax and the cross-entropy need (all of them only
//! ever exponentiate values ≤ 0). A Cephes-style range
//! reduction and polynomial, relative error ~10⁻⁷; every instruction set runs the same IEEE
//! operations in the same order, so all paths agree bit for bit.

/// `exp(v)` for `v ≤ 0` (below −87 it returns ~10⁻³⁸ instead of a subnormal or 0), branch-free.
#[inline(always)]
pub(crate) fn exp_nonpositive(v: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting rounds to an integer
    let v = v.max(-87.0);
    let n = (v * LOG2E + ROUND) - ROUND;
    let r = (v - n * LN2_HI) - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5; // Cephes: 5.0000001e-1, which rounds to 0.5 in f32
    let e = p * (r * r) + r + 1.0;
    // 2ⁿ from its exponent bits (n ≥ −126 after the clamp).
    e * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against `f64::exp` over [−87, 0].
    #[test]
    fn matches_f64_exp() {
        for i in 0..=8700 {
            let v = -(i as f32) * 1e-2;
            let want = (v as f64).exp();
            let got = exp_nonpositive(v) as f64;
            assert!(
                (got - want).abs() <= 3e-7 * want + 1e-37,
                "exp({v}) = {got}, want {want}"
            );
        }
    }
}
