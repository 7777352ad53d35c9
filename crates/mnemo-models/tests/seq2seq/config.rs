//! Config errors name their field; the attention encoder keeps its parameter names (old
//! checkpoints load), the Fourier encoder refuses them by name.
use super::*;

#[test]
fn config_errors_name_the_field() {
    let good = Seq2SeqConfig::tiny(VOCAB, DecoderKind::Feedback);
    assert!(good.validate().is_ok());
    let cases = [
        (
            Seq2SeqConfig {
                n_heads: 3,
                ..good.clone()
            },
            "model.n_heads",
        ),
        (
            Seq2SeqConfig {
                vocab_size: 0,
                ..good.clone()
            },
            "model.vocab_size",
        ),
        (
            Seq2SeqConfig {
                vocab_size: 3,
                ..good.clone()
            },
            "model.vocab_size",
        ),
        (
            Seq2SeqConfig {
                encoder_layers: 0,
                ..good.clone()
            },
            "model.encoder_layers",
        ),
        (
            Seq2SeqConfig {
                decoder_layers: 0,
                ..good.clone()
            },
            "model.decoder_layers",
        ),
        (
            Seq2SeqConfig {
                span: 0,
                ..good.clone()
            },
            "model.span",
        ),
        (
            Seq2SeqConfig {
                dropout: 1.5,
                ..good.clone()
            },
            "model.dropout",
        ),
        (
            Seq2SeqConfig {
                max_len: 0,
                ..good.clone()
            },
            "model.max_len",
        ),
    ];
    for (config, field) in cases {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with(field), "{field}: got {err}");
    }
    // CAN splits its d_ff-wide values into the heads: an odd d_ff is refused for it only.
    let odd = Seq2SeqConfig {
        d_ff: 65,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
    };
    assert!(odd.validate().is_ok());
    let err = Seq2SeqConfig {
        decoder: DecoderConfig::Can,
        ..odd
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("model.d_ff") && err.contains("CAN"),
        "{err}"
    );
    // TOML: defaults fill in, unknown fields and unknown decoder kinds are rejected by name.
    let toml_ok = "d_model = 32\nn_heads = 2\nd_ff = 64\nencoder_layers = 1\ndecoder_layers = 1\ndecoder = \"feedback\"\nspan = 8\n";
    let parsed: Seq2SeqConfig = toml::from_str(toml_ok).unwrap();
    assert!(parsed.is_pre_norm() && parsed.vocab_size == 0 && parsed.max_len == 200);
    assert_eq!(parsed.decoder, DecoderConfig::Feedback { share_kv: true });
    // Norm placement as in the language-model configs; the old boolean is refused by name.
    let post: Seq2SeqConfig = toml::from_str(&format!("{toml_ok}placement = \"post\"\n")).unwrap();
    assert_eq!(post.placement, mnemo_core::NormPlacement::Post);
    let err = toml::from_str::<Seq2SeqConfig>(&format!("{toml_ok}pre_norm = false\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pre_norm"), "{err}");
    let err = toml::from_str::<Seq2SeqConfig>(&format!("{toml_ok}n_layer = 2\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("n_layer"), "{err}");
    let err = toml::from_str::<Seq2SeqConfig>(&toml_ok.replace("\"feedback\"", "\"lstm\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lstm") && err.contains("transformer"), "{err}");
    // decoder = "can": parses, round-trips, refuses the Feedback decoder's share_kv.
    let can: Seq2SeqConfig = toml::from_str(&toml_ok.replace("\"feedback\"", "\"can\"")).unwrap();
    assert_eq!(can.decoder, DecoderConfig::Can);
    let text = toml::to_string(&can).unwrap();
    assert!(text.contains("decoder = \"can\""), "{text}");
    assert_eq!(toml::from_str::<Seq2SeqConfig>(&text).unwrap(), can);
    let err = toml::from_str::<Seq2SeqConfig>(
        &toml_ok.replace("\"feedback\"", "{ kind = \"can\", share_kv = false }"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("share_kv belongs to the Feedback decoder") && err.contains("CAN"),
        "{err}"
    );
    let can = Seq2SeqConfig {
        vocab_size: VOCAB,
        ..can
    };
    assert!(can.validate().is_ok());
    assert_eq!(
        can.num_params(),
        can.init(&mnemo_backend::test_device().inner()).num_params()
    );
    // Encoder token mixing: attention by default, "fourier" parses and round-trips, anything
    // else is refused naming `mixing`.
    assert_eq!(parsed.mixing, TokenMixing::Attention);
    let fourier: Seq2SeqConfig =
        toml::from_str(&format!("{toml_ok}mixing = \"fourier\"\n")).unwrap();
    assert_eq!(fourier.mixing, TokenMixing::Fourier);
    let sized = Seq2SeqConfig {
        vocab_size: VOCAB,
        ..fourier.clone()
    };
    assert!(sized.validate().is_ok());
    let text = toml::to_string(&fourier).unwrap();
    assert!(text.contains("mixing = \"fourier\""), "{text}");
    assert_eq!(toml::from_str::<Seq2SeqConfig>(&text).unwrap(), fourier);
    let err = toml::from_str::<Seq2SeqConfig>(&format!("{toml_ok}mixing = \"fft\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mixing: unknown token mixing \"fft\""),
        "{err}"
    );
    // The parameter count needs no allocation and matches the built model.
    let config = Seq2SeqConfig {
        vocab_size: VOCAB,
        ..parsed
    };
    let device = mnemo_backend::test_device().inner();
    assert_eq!(config.num_params(), config.init(&device).num_params());
}

/// The encoder layer as it was before `mixing` existed (attention a plain field), to check
/// that the attention encoder's parameter names did not change.
#[derive(Module, Debug)]
struct LegacyEncoderLayer {
    attn_residual: Residual,
    attn: BidirectionalSelfAttention,
    ff_residual: Residual,
    ff: FeedForward,
}

/// [`Seq2Seq`] with [`LegacyEncoderLayer`]s.
#[derive(Module, Debug)]
struct LegacySeq2Seq {
    embedding: Embedding,
    encoder: Vec<LegacyEncoderLayer>,
    encoder_norm: Option<Norm>,
    decoder: Decoder,
    dropout: Dropout,
    max_len: usize,
}

/// `model` (attention encoder) in the legacy layout, parameters moved over unchanged.
fn legacy(model: Seq2Seq) -> LegacySeq2Seq {
    LegacySeq2Seq {
        embedding: model.embedding,
        encoder: model
            .encoder
            .into_iter()
            .map(|l| LegacyEncoderLayer {
                attn_residual: l.attn_residual,
                attn: l.attn.expect("attention encoder"),
                ff_residual: l.ff_residual,
                ff: l.ff,
            })
            .collect(),
        encoder_norm: model.encoder_norm,
        decoder: model.decoder,
        dropout: model.dropout,
        max_len: model.max_len,
    }
}

/// A checkpoint of the attention encoder from before `mixing` existed loads strictly (nothing
/// missing, nothing unused) into today's model, and today's into the old layout: the parameter
/// names are unchanged. The Fourier encoder has exactly the attention parameters fewer, refuses
/// an attention checkpoint by naming them, and round-trips its own.
#[test]
fn attention_encoder_keeps_its_parameter_names() {
    let device = mnemo_backend::test_device().inner();
    for kind in [DecoderKind::Transformer, DecoderKind::Feedback] {
        let config = Seq2SeqConfig::tiny(VOCAB, kind);
        let model = seeded(&config, 31, &device);
        let want = host::parameters(&model);
        let fresh = seeded(&config, 32, &device);
        assert_ne!(
            host::parameters(&fresh),
            want,
            "{kind:?}: seeds gave equal weights"
        );
        let loaded = fresh
            .try_load_record(legacy(model.clone()).into_record())
            .unwrap_or_else(|e| panic!("{kind:?}: legacy record: {e:?}"));
        assert_eq!(host::parameters(&loaded), want, "{kind:?}: legacy -> new");
        let old = legacy(seeded(&config, 33, &device))
            .try_load_record(model.clone().into_record())
            .unwrap_or_else(|e| panic!("{kind:?}: new record into legacy: {e:?}"));
        assert_eq!(host::parameters(&old), want, "{kind:?}: new -> legacy");

        let fourier_config = Seq2SeqConfig {
            mixing: TokenMixing::Fourier,
            ..config.clone()
        };
        let fourier = seeded(&fourier_config, 34, &device);
        assert!(
            fourier
                .encoder
                .iter()
                .all(|l| l.mixing() == TokenMixing::Fourier)
        );
        let per_layer = model.encoder[0].attn.as_ref().unwrap().num_params();
        assert_eq!(
            fourier_config.num_params() + config.encoder_layers * per_layer,
            config.num_params(),
            "{kind:?}: parameter counts"
        );
        let err = format!(
            "{:?}",
            fourier
                .clone()
                .try_load_record(model.into_record())
                .unwrap_err()
        );
        assert!(
            err.contains("encoder.0.attn.query.weight"),
            "{kind:?}: {err}"
        );
        let own = seeded(&fourier_config, 35, &device)
            .try_load_record(fourier.clone().into_record())
            .unwrap_or_else(|e| panic!("{kind:?}: fourier record: {e:?}"));
        assert_eq!(host::parameters(&own), host::parameters(&fourier));
    }
}
