//! Which decoder a [`Seq2Seq`](crate::Seq2Seq) has, with the settings only that decoder has.
//!
//! In TOML, `decoder = "transformer"`, `decoder = "can"` (the Compressed Attention Network,
//! [`crate::seq2seq_can`]) or `decoder = "feedback"` (K/V shared by all layers), or a table:
//! `decoder = { kind = "feedback", share_kv = false }` (one memory key/value projection per
//! layer, the official code's default). `share_kv` is the Feedback decoder's only and is refused
//! for the others; `{ kind = "can" }` is the same as `"can"`.
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The decoder kinds, without their settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderKind {
    /// Causal Transformer decoder, parallel over the target in training.
    Transformer,
    /// Feedback decoder: one memory per target step; sequential.
    Feedback,
    /// Compressed Attention Network: one sublayer per layer, parallel over the target.
    Can,
}

/// The decoder and its own settings; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderConfig {
    /// Causal Transformer decoder.
    Transformer,
    /// Feedback decoder.
    Feedback {
        /// One memory key/value projection shared by all layers (true, default) or one per
        /// layer.
        share_kv: bool,
    },
    /// Compressed Attention Network decoder (no settings of its own).
    Can,
}

impl DecoderConfig {
    /// The decoder of `kind` with its default settings.
    pub fn of(kind: DecoderKind) -> Self {
        match kind {
            DecoderKind::Transformer => DecoderConfig::Transformer,
            DecoderKind::Feedback => DecoderConfig::Feedback { share_kv: true },
            DecoderKind::Can => DecoderConfig::Can,
        }
    }

    /// The kind, without settings.
    pub fn kind(&self) -> DecoderKind {
        match self {
            DecoderConfig::Transformer => DecoderKind::Transformer,
            DecoderConfig::Feedback { .. } => DecoderKind::Feedback,
            DecoderConfig::Can => DecoderKind::Can,
        }
    }
}

impl Serialize for DecoderConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            DecoderConfig::Feedback { share_kv: false } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("kind", &DecoderKind::Feedback)?;
                map.serialize_entry("share_kv", &false)?;
                map.end()
            }
            other => other.kind().serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for DecoderConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DecoderVisitor)
    }
}

const KINDS: &[&str] = &["transformer", "feedback", "can"];

struct DecoderVisitor;

impl<'de> Visitor<'de> for DecoderVisitor {
    type Value = DecoderConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "\"transformer\", \"feedback\", \"can\" or a table { kind = \"feedback\", share_kv = ... }",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DecoderConfig, E> {
        match v {
            "transformer" => Ok(DecoderConfig::Transformer),
            "feedback" => Ok(DecoderConfig::of(DecoderKind::Feedback)),
            "can" => Ok(DecoderConfig::Can),
            other => Err(E::unknown_variant(other, KINDS)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DecoderConfig, A::Error> {
        let (mut kind, mut share_kv) = (None::<String>, None::<bool>);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "kind" => kind = Some(map.next_value()?),
                "share_kv" => share_kv = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &["kind", "share_kv"])),
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        match (self.visit_str::<A::Error>(&kind)?, share_kv) {
            (DecoderConfig::Transformer, Some(_)) => Err(de::Error::custom(
                "share_kv belongs to the Feedback decoder (kind = \"feedback\"), not the Transformer decoder",
            )),
            (DecoderConfig::Can, Some(_)) => Err(de::Error::custom(
                "share_kv belongs to the Feedback decoder (kind = \"feedback\"), not the CAN decoder \
                 (whose one attention reads the target's own keys/values and the source's)",
            )),
            (DecoderConfig::Feedback { .. }, Some(share_kv)) => {
                Ok(DecoderConfig::Feedback { share_kv })
            }
            (decoder, None) => Ok(decoder),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toml_field;

    /// The `decoder` key of `s` (required).
    fn parse(s: &str) -> Result<DecoderConfig, String> {
        toml_field::parse(s, "decoder")?.ok_or_else(|| "missing field `decoder`".into())
    }

    #[test]
    fn names_and_tables_parse_and_round_trip() {
        assert_eq!(
            parse("decoder = \"transformer\"").unwrap(),
            DecoderConfig::Transformer
        );
        assert_eq!(
            parse("decoder = \"feedback\"").unwrap(),
            DecoderConfig::Feedback { share_kv: true }
        );
        let per_layer = parse("decoder = { kind = \"feedback\", share_kv = false }").unwrap();
        assert_eq!(per_layer, DecoderConfig::Feedback { share_kv: false });
        assert_eq!(parse("decoder = \"can\"").unwrap(), DecoderConfig::Can);
        assert_eq!(
            parse("decoder = { kind = \"can\" }").unwrap(),
            DecoderConfig::Can
        );
        assert_eq!(DecoderConfig::of(DecoderKind::Can).kind(), DecoderKind::Can);
        for d in [
            DecoderConfig::Transformer,
            DecoderConfig::Feedback { share_kv: true },
            per_layer,
            DecoderConfig::Can,
        ] {
            let text = toml_field::write("decoder", &d);
            assert_eq!(parse(&text).unwrap(), d, "{text}");
        }
        let text = toml_field::write("decoder", &DecoderConfig::Can);
        assert_eq!(text.trim(), "decoder = \"can\"");
    }

    #[test]
    fn bad_decoders_are_named() {
        let err = parse("decoder = \"lstm\"").unwrap_err();
        assert!(
            err.contains("unknown variant `lstm`")
                && err.contains("transformer")
                && err.contains("can"),
            "{err}"
        );
        let err = parse("decoder = { kind = \"can\", share_kv = true }").unwrap_err();
        assert!(
            err.contains("share_kv belongs to the Feedback decoder") && err.contains("CAN"),
            "{err}"
        );
        let err = parse("decoder = { kind = \"can\", span = 4 }").unwrap_err();
        assert!(err.contains("unknown field `span`"), "{err}");
        let err = parse("decoder = { kind = \"transformer\", share_kv = false }").unwrap_err();
        assert!(
            err.contains("share_kv belongs to the Feedback decoder"),
            "{err}"
        );
        let err = parse("decoder = { kind = \"feedback\", shared = false }").unwrap_err();
        assert!(err.contains("unknown field `shared`"), "{err}");
        let err = parse("decoder = { share_kv = false }").unwrap_err();
        assert!(err.contains("missing field `kind`"), "{err}");
    }
}
