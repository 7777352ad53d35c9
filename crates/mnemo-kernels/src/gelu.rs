//! GELU and its derivative in one vectorised pass: `y = x Φ(x)` and `y' = Φ(x) + x φ(x)`,
//! with `Φ(x) = (1 + erf(x/√2))/2` and `φ(x) = exp(−x²/2)/√(2π)`.
//!
//! `erf` is Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5·10⁻⁷; torch's vectorised CPU `erf` uses
//! the same formula), whose `exp(−z²)` with `z = x/√2` is also `φ`'s exponential, so one `exp`
//! serves both. `exp` is a Cephes-style range reduction and polynomial (relative error ~10⁻⁷),
//! branch-free so that the loop vectorises. A scalar `erff` per element was 9 % of a small
//! Transformer's training step (docs/performance.md).
//!
//! Every instruction set runs the same IEEE operations in the same order (Rust does not fuse
//! multiplies and adds on its own), so all paths agree bit for bit.
use crate::Isa;
use crate::dispatch::on_isa;
use crate::exp::exp_nonpositive;

/// `y[i] = gelu(x[i])` and `dydx[i] = gelu'(x[i])`.
///
/// # Panics
/// If the three slices differ in length, or the CPU does not support `isa`.
pub fn gelu_and_grad(isa: Isa, x: &[f32], y: &mut [f32], dydx: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "y must hold one value per input");
    assert_eq!(x.len(), dydx.len(), "dydx must hold one value per input");
    on_isa!(isa, gelu_loop(x: &[f32], y: &mut [f32], dydx: &mut [f32]));
}

/// `y[i] = gelu(x[i])`: the values of [`gelu_and_grad`], bit for bit, without the derivative
/// (inference).
///
/// # Panics
/// If the slices differ in length, or the CPU does not support `isa`.
pub fn gelu(isa: Isa, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "y must hold one value per input");
    on_isa!(isa, gelu_values_loop(x: &[f32], y: &mut [f32]));
}

/// `x[i] = gelu(x[i])` in place: the values of [`gelu`], bit for bit.
///
/// # Panics
/// If the CPU does not support `isa`.
pub fn gelu_in_place(isa: Isa, x: &mut [f32]) {
    on_isa!(isa, gelu_in_place_loop(x: &mut [f32]));
}

#[inline(always)]
fn gelu_in_place_loop(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = gelu_one(*v).0;
    }
}

/// The values-only loop (the derivative of [`gelu_one`] is dead code here and compiled out).
#[inline(always)]
fn gelu_values_loop(x: &[f32], y: &mut [f32]) {
    for (&x, y) in x.iter().zip(y.iter_mut()) {
        *y = gelu_one(x).0;
    }
}

/// The loop every instruction set compiles (inlined into [`on_isa!`]'s wrappers).
#[inline(always)]
fn gelu_loop(x: &[f32], y: &mut [f32], dydx: &mut [f32]) {
    for ((&x, y), g) in x.iter().zip(y.iter_mut()).zip(dydx.iter_mut()) {
        let (v, d) = gelu_one(x);
        *y = v;
        *g = d;
    }
}

/// `(gelu(x), gelu'(x))`, branch-free.
#[inline(always)]
fn gelu_one(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let e = exp_nonpositive(-(z * z)); // exp(−x²/2)
    let erf = (1.0 - poly * e).copysign(z);
    let cdf = 0.5 * (1.0 + erf);
    let pdf = e * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
    (x * cdf, cdf + x * pdf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (accurate to ~10⁻⁹ for |z| ≤ 4.3).
    fn erf_series(z: f64) -> f64 {
        let mut term = z;
        let mut sum = z;
        for n in 1..200 {
            term *= -z * z / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    fn inputs() -> Vec<f32> {
        (-6000..=6000).map(|i| i as f32 * 1e-3).collect()
    }

    /// Values and derivatives against an f64 reference over [−6, 6].
    #[test]
    fn matches_an_f64_reference() {
        let x = inputs();
        let (mut y, mut g) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        gelu_and_grad(Isa::detect(), &x, &mut y, &mut g);
        for ((&x, &y), &g) in x.iter().zip(&y).zip(&g) {
            let xd = x as f64;
            let cdf = 0.5 * (1.0 + erf_series(xd / 2f64.sqrt()));
            let pdf = (-xd * xd / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let (want_y, want_g) = (xd * cdf, cdf + xd * pdf);
            assert!(
                (y as f64 - want_y).abs() < 1e-6 * (1.0 + xd.abs()),
                "gelu({x}) = {y}, want {want_y}"
            );
            assert!(
                (g as f64 - want_g).abs() < 1e-6 * (1.0 + xd.abs()),
                "gelu'({x}) = {g}, want {want_g}"
            );
        }
    }

    /// Every instruction set this CPU supports gives the portable path's bits, and the
    /// values-only [`gelu`] and [`gelu_in_place`] give [`gelu_and_grad`]'s values.
    #[test]
    fn every_isa_agrees_bit_for_bit() {
        let x = inputs();
        let run = |isa| {
            let (mut y, mut g) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            gelu_and_grad(isa, &x, &mut y, &mut g);
            (y, g)
        };
        let portable = run(Isa::Portable);
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            if isa.supported() {
                assert!(
                    run(isa) == portable,
                    "{isa:?} differs from the portable path"
                );
                let mut y = vec![f32::NAN; x.len()];
                gelu(isa, &x, &mut y);
                assert!(y == portable.0, "{isa:?}: gelu differs from gelu_and_grad");
                let mut z = x.clone();
                gelu_in_place(isa, &mut z);
                assert!(z == portable.0, "{isa:?}: gelu_in_place differs");
            }
        }
    }
}
