//! How far one backend's numbers are from the reference's.
use serde::Serialize;

/// The distance between two equally long lists of numbers (`values` vs `reference`).
///
/// ```text
/// max_abs = max_i |values_i - reference_i|
/// rel     = ||values - reference||_2 / ||reference||_2      (the numerator alone if the
///                                                           reference is all zeros)
/// ```
///
/// A NaN or infinity anywhere makes both fields NaN, so no tolerance accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Diff {
    /// Largest absolute difference of one element.
    pub max_abs: f64,
    /// Relative error in the L2 norm.
    pub rel: f64,
}

impl Diff {
    /// The distance of `values` from `reference`.
    ///
    /// # Panics
    /// If the lengths differ (the two runs did not compute the same thing).
    pub fn between(values: &[f32], reference: &[f32]) -> Self {
        assert_eq!(
            values.len(),
            reference.len(),
            "compared lists must have the same length"
        );
        let (mut max_abs, mut num, mut den) = (0.0f64, 0.0f64, 0.0f64);
        for (&v, &r) in values.iter().zip(reference) {
            let (v, r) = (f64::from(v), f64::from(r));
            if !(v.is_finite() && r.is_finite()) {
                return Self {
                    max_abs: f64::NAN,
                    rel: f64::NAN,
                };
            }
            let d = (v - r).abs();
            max_abs = max_abs.max(d);
            num += d * d;
            den += r * r;
        }
        let rel = match den > 0.0 {
            true => (num / den).sqrt(),
            false => num.sqrt(),
        };
        Self { max_abs, rel }
    }

    /// The distance of one number from another.
    pub fn scalar(value: f64, reference: f64) -> Self {
        Self::between(&[value as f32], &[reference as f32])
    }

    /// Whether the relative error is at most `tolerance` (false for NaN).
    pub fn within(&self, tolerance: f64) -> bool {
        self.rel <= tolerance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_distance() {
        // values - reference = (0, 0.5, -1.5)
        let d = Diff::between(&[1.0, 2.5, 1.5], &[1.0, 2.0, 3.0]);
        assert_eq!(d.max_abs, 1.5);
        let expected = ((0.25f64 + 2.25) / (1.0 + 4.0 + 9.0)).sqrt();
        assert!((d.rel - expected).abs() < 1e-12, "{} vs {expected}", d.rel);
        assert!(d.within(0.5) && !d.within(0.4));
    }

    #[test]
    fn identical_lists_are_zero_apart() {
        let d = Diff::between(&[0.1, -3.0], &[0.1, -3.0]);
        assert_eq!(
            d,
            Diff {
                max_abs: 0.0,
                rel: 0.0
            }
        );
        assert_eq!(Diff::between(&[0.5], &[0.0]).rel, 0.5);
    }

    #[test]
    fn non_finite_values_fail_every_tolerance() {
        let d = Diff::between(&[f32::NAN, 1.0], &[1.0, 1.0]);
        assert!(d.rel.is_nan() && !d.within(f64::INFINITY));
        assert!(!Diff::between(&[f32::INFINITY], &[1.0]).within(1e9));
    }
}
