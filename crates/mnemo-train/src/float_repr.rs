//! Floats saved to JSON so that they read back bit for bit.
//!
//! A finite `f64` is written as a JSON number in its shortest round-trip form and parsed back
//! with serde_json's `float_roundtrip` (switched on in this crate's `Cargo.toml`), so every bit
//! survives; without it serde_json's fast parser may land one unit in the last place away,
//! and a resumed run's `best_valid` would drift. JSON has no NaN or infinity (serde_json writes
//! `null`, which does not read back as a number), so those are written as the strings `"NaN"`,
//! `"inf"` and `"-inf"`. `null`, as files written before this module hold it, reads as NaN.
//!
//! Use as `#[serde(with = "crate::float_repr::exact")]` on an `f64` field and
//! `#[serde(with = "crate::float_repr::exact_opt", default)]` on an `Option<f64>` field;
//! [`json`] gives the same form as a [`serde_json::Value`] for log records.
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// The JSON form of `x`: a number when finite, else `"NaN"`, `"inf"` or `"-inf"`.
pub fn json(x: f64) -> Value {
    match non_finite_name(x) {
        Some(name) => Value::String(name.to_string()),
        None => Value::from(x),
    }
}

fn non_finite_name(x: f64) -> Option<&'static str> {
    match x {
        _ if x.is_nan() => Some("NaN"),
        f64::INFINITY => Some("inf"),
        f64::NEG_INFINITY => Some("-inf"),
        _ => None,
    }
}

fn parse_name(text: &str) -> Option<f64> {
    match text {
        "NaN" | "nan" => Some(f64::NAN),
        "inf" | "+inf" | "Infinity" => Some(f64::INFINITY),
        "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// An `f64` that serialises as [`json`] does and reads back any of its forms (and `null`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Exact(f64);

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match non_finite_name(self.0) {
            Some(name) => serializer.serialize_str(name),
            None => serializer.serialize_f64(self.0),
        }
    }
}

struct ExactVisitor;

impl<'de> Visitor<'de> for ExactVisitor {
    type Value = Exact;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, or \"NaN\", \"inf\" or \"-inf\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Exact, E> {
        Ok(Exact(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Exact, E> {
        Ok(Exact(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Exact, E> {
        Ok(Exact(v as f64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Exact, E> {
        parse_name(v)
            .map(Exact)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Exact, E> {
        Ok(Exact(f64::NAN))
    }
}

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExactVisitor)
    }
}

/// `#[serde(with = "exact")]` for an `f64` field; see the [module docs](self).
pub mod exact {
    use super::*;

    /// Write `x` as [`json`](super::json) does.
    pub fn serialize<S: Serializer>(x: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        Exact(*x).serialize(serializer)
    }

    /// Read a number, `"NaN"`, `"inf"`, `"-inf"` or `null` (NaN).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Exact::deserialize(deserializer).map(|e| e.0)
    }
}

/// `#[serde(with = "exact_opt", default)]` for an `Option<f64>` field; see the
/// [module docs](self). A missing field is `None`; a present `null` is `None` too.
pub mod exact_opt {
    use super::*;

    /// Write `Some(x)` as [`json`](super::json) does, `None` as `null`.
    pub fn serialize<S: Serializer>(x: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        x.map(Exact).serialize(serializer)
    }

    /// Read an optional number, `"NaN"`, `"inf"` or `"-inf"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Option::<Exact>::deserialize(deserializer).map(|o| o.map(|e| e.0))
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super::exact")]
        x: f64,
        #[serde(with = "super::exact_opt", default)]
        y: Option<f64>,
    }

    fn round_trip(x: f64, y: Option<f64>) -> (f64, Option<f64>) {
        let text = serde_json::to_string(&Holder { x, y }).unwrap();
        let back: Holder = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (back.x, back.y)
    }

    #[test]
    fn every_finite_bit_pattern_round_trips() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let mut checked = 0;
        while checked < 200_000 {
            let x = f64::from_bits(rng.random::<u64>());
            if !x.is_finite() {
                continue;
            }
            let (back, _) = round_trip(x, None);
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e} read back as {back:e}");
            checked += 1;
        }
        // Values of the size metrics have, from the mean of many losses.
        for i in 1..20_000u32 {
            let x = f64::from(i).ln() / 7.0 + 1e-9 * f64::from(i);
            assert_eq!(round_trip(x, Some(x)).1.unwrap().to_bits(), x.to_bits());
        }
    }

    #[test]
    fn non_finite_values_are_strings_that_read_back() {
        let text = serde_json::to_string(&Holder {
            x: f64::NAN,
            y: Some(f64::NEG_INFINITY),
        })
        .unwrap();
        assert_eq!(text, r#"{"x":"NaN","y":"-inf"}"#);
        let (x, y) = round_trip(f64::INFINITY, Some(f64::NAN));
        assert_eq!(x, f64::INFINITY);
        assert!(y.unwrap().is_nan());
        assert_eq!(round_trip(1.5, None), (1.5, None));
        assert_eq!(super::json(f64::NAN), serde_json::json!("NaN"));
        assert_eq!(super::json(0.25), serde_json::json!(0.25));
    }

    #[test]
    fn null_from_older_files_reads_as_nan_and_junk_is_an_error() {
        let old: Holder = serde_json::from_str(r#"{"x":null}"#).unwrap();
        assert!(old.x.is_nan() && old.y.is_none());
        let err = serde_json::from_str::<Holder>(r#"{"x":"big"}"#).unwrap_err();
        assert!(err.to_string().contains("\"NaN\""), "{err}");
    }
}
