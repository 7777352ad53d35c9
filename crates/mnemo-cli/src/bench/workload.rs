//! The benchmark's models and phase names: the peer config as a Feedback or Transformer config,
//! the Transformer options of the `var_*` phases, `--only`.
use anyhow::bail;
use mnemo_models::attention_config::LinearUpdate;
use mnemo_models::{AttentionConfig, FeedbackConfig, TransformerConfig};

use super::VARIANTS;
use super::size::BenchSize;
use super::translation::MT_PHASES;

/// The model sizes of `$size` ([`BenchSize`]) as a config of type `$config` (fields named
/// alike in every mnemo language-model config), with `$extra` fields of that type after them.
macro_rules! sized_config {
    ($size:expr, $config:ident { $($extra:tt)* }) => {
        $config {
            vocab_size: $size.vocab,
            d_model: $size.d_model,
            n_layers: $size.n_layers,
            n_heads: $size.n_heads,
            d_ff: $size.d_ff,
            span: $size.memory,
            dropout: 0.0,
            norm: Default::default(),
            placement: Default::default(),
            $($extra)*
        }
    };
}

pub(crate) fn feedback_config(size: &BenchSize) -> FeedbackConfig {
    sized_config!(
        size,
        FeedbackConfig {
            share_kv: true,
            memory: Default::default(),
            ..FeedbackConfig::tiny(size.vocab)
        }
    )
}

pub(crate) fn transformer_config(size: &BenchSize) -> TransformerConfig {
    sized_config!(
        size,
        TransformerConfig {
            attention: Default::default(),
            persistent_memory: 0,
            feed_forward: true,
            init: Default::default(),
            adaptive_span: None,
        }
    )
}

/// The attention of mechanism `name` (`softmax`, `linear` (sum), `delta`, `performer` (64
/// features), `sparse` (blocks of 16, window 1, global 1, random 1)) with chunks of 64 and seed
/// 0; None for another name.
pub(crate) fn attention_of(name: &str) -> Option<AttentionConfig> {
    let linear = |update| AttentionConfig::Linear {
        update,
        chunk: 64,
        carry: false,
    };
    Some(match name {
        "softmax" => AttentionConfig::Softmax,
        "linear" => linear(LinearUpdate::Sum),
        "delta" => linear(LinearUpdate::Delta),
        "performer" => AttentionConfig::Performer {
            features: 64,
            chunk: 64,
            seed: 0,
            redraw_every: 0,
            carry: false,
        },
        "sparse" => AttentionConfig::Sparse {
            block: 16,
            window: 1,
            global: 1,
            random: 1,
            seed: 0,
        },
        _ => return None,
    })
}

/// The Transformer config of `size` with Transformer option `name` (one of [`VARIANTS`]); None
/// for another name.
pub(crate) fn variant_config(name: &str, size: &BenchSize) -> Option<TransformerConfig> {
    let mut config = transformer_config(size);
    match name {
        "persistent" => config.persistent_memory = 16,
        "all_attention" => {
            config.persistent_memory = 64;
            config.feed_forward = false;
        }
        "softmax" => return None,
        other => config.attention = attention_of(other)?,
    }
    Some(config)
}

/// What a variant phase `var_<option>_train` / `var_<option>_gen_b1` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VariantPhase {
    Train,
    GenB1,
}

/// The option and kind of a variant phase name; None for another name.
pub(crate) fn variant_phase(name: &str) -> Option<(&str, VariantPhase)> {
    let rest = name.strip_prefix("var_")?;
    let (option, kind) = match rest.strip_suffix("_train") {
        Some(option) => (option, VariantPhase::Train),
        None => (rest.strip_suffix("_gen_b1")?, VariantPhase::GenB1),
    };
    VARIANTS.contains(&option).then_some((option, kind))
}

/// Every variant phase name, in run order.
pub fn variant_phases() -> Vec<String> {
    VARIANTS
        .iter()
        .flat_map(|v| [format!("var_{v}_train"), format!("var_{v}_gen_b1")])
        .collect()
}

/// The phases `--only` names (empty: the peer's phases; `variants`: every variant phase), or
/// an error naming `--only` and listing the phases `allowed`.
pub(crate) fn select_phases(
    only: &str,
    default: &[String],
    allowed: &[String],
) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = match only.trim() {
        "" => default.to_vec(),
        list => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .flat_map(|n| match n {
                "variants" => variant_phases(),
                "translation" => MT_PHASES.iter().map(|p| p.to_string()).collect(),
                n => vec![n.to_string()],
            })
            .collect(),
    };
    if let Some(bad) = names.iter().find(|n| !allowed.contains(n)) {
        bail!(
            "--only: unknown phase `{bad}`; phases: {}",
            allowed.join(",")
        );
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use mnemo_models::ModelConfig;

    use crate::bench::PHASES;

    const PEER: BenchSize = BenchSize::PEER;

    #[test]
    fn each_variant_is_the_peer_config_with_only_its_option() {
        let linear = |update| AttentionConfig::Linear {
            update,
            chunk: 64,
            carry: false,
        };
        let expected = [
            ("linear", linear(LinearUpdate::Sum), 0, true),
            ("delta", linear(LinearUpdate::Delta), 0, true),
            (
                "performer",
                AttentionConfig::Performer {
                    features: 64,
                    chunk: 64,
                    seed: 0,
                    redraw_every: 0,
                    carry: false,
                },
                0,
                true,
            ),
            (
                "sparse",
                AttentionConfig::Sparse {
                    block: 16,
                    window: 1,
                    global: 1,
                    random: 1,
                    seed: 0,
                },
                0,
                true,
            ),
            ("persistent", AttentionConfig::Softmax, 16, true),
            ("all_attention", AttentionConfig::Softmax, 64, false),
        ];
        assert_eq!(VARIANTS.len(), expected.len());
        for (name, attention, persistent_memory, feed_forward) in expected {
            let config = variant_config(name, &PEER).unwrap();
            let want = TransformerConfig {
                attention,
                persistent_memory,
                feed_forward,
                ..transformer_config(&PEER)
            };
            assert_eq!(config, want, "{name}");
            config.validate().unwrap();
        }
        for other in ["softmax", "fourier", "tf_train", ""] {
            assert_eq!(variant_config(other, &PEER), None, "{other}");
        }
    }

    #[test]
    fn variants_keep_the_parameter_count_except_all_attention_without_ffn() {
        let device = mnemo_backend::device(mnemo_backend::DEFAULT_BACKEND).unwrap();
        let count = |c: TransformerConfig| ModelConfig::Transformer(c).init(&device).num_params();
        let softmax = count(transformer_config(&PEER));
        for name in VARIANTS.iter().filter(|n| **n != "all_attention") {
            let n = count(variant_config(name, &PEER).unwrap());
            let rel = (n as f64 - softmax as f64).abs() / softmax as f64;
            assert!(rel < 0.02, "{name}: {n} params vs softmax {softmax}");
        }
        // All-attention: minus each layer's feed-forward sublayer (two weights, two biases, its
        // LayerNorm), plus 64 key and 64 value slots of width D per layer.
        let (l, d, ff) = (PEER.n_layers, PEER.d_model, PEER.d_ff);
        let all = count(variant_config("all_attention", &PEER).unwrap());
        assert_eq!(
            all,
            softmax - l * (2 * d * ff + ff + d + 2 * d) + l * 2 * 64 * d
        );
    }

    #[test]
    fn only_selects_peer_variant_and_scaling_phases_and_names_itself_when_refusing() {
        let peer: Vec<String> = PHASES.iter().map(|p| p.to_string()).collect();
        let allowed: Vec<String> = peer.iter().cloned().chain(variant_phases()).collect();
        assert_eq!(select_phases("", &peer, &allowed).unwrap(), peer);
        let all = select_phases("tf_train, variants", &peer, &allowed).unwrap();
        assert_eq!(all.len(), 1 + 2 * VARIANTS.len());
        assert_eq!(
            &all[..3],
            ["tf_train", "var_linear_train", "var_linear_gen_b1"]
        );
        // Every listed variant phase is one the child runs, with its option's config.
        for name in &all[1..] {
            let (option, _) = variant_phase(name).expect(name);
            assert!(variant_config(option, &PEER).is_some(), "{name}");
        }
        for bad in [
            "var_softmax_train",
            "var_linear_gen_b8",
            "scale_softmax_256",
            "nope",
        ] {
            let err = select_phases(bad, &peer, &allowed).unwrap_err().to_string();
            assert!(err.starts_with("--only: unknown phase"), "{err}");
            assert!(
                err.contains(&format!("`{bad}`")) && err.contains("var_delta_gen_b1"),
                "{err}"
            );
            assert_eq!(variant_phase(bad), None);
        }
    }
}
