//! Every config shipped under `experiments/` loads, validates, and each of its models passes its
//! own checks (with a stand-in vocabulary size: LM corpora are not needed to check a config).
use std::path::{Path, PathBuf};

use mnemo_train::ExperimentConfig;
use mnemo_train::translation::{TranslationConfig, is_translation_config};

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// The config in `file` names at least one model, and each of them passes `for_model`.
fn check_models<T, E: std::fmt::Display>(
    file: &Path,
    names: Vec<String>,
    for_model: impl Fn(&str) -> Result<T, E>,
) {
    assert!(!names.is_empty(), "{}: no models", file.display());
    for name in names {
        for_model(&name).unwrap_or_else(|e| panic!("{}: model {name}: {e}", file.display()));
    }
}

#[test]
fn every_shipped_experiment_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut files = Vec::new();
    toml_files(&root, &mut files);
    files.sort();
    // The families the docs promise: fail loudly if one disappears.
    for family in [
        "quickstart.toml",
        "enwik8/mini.toml",
        "enwik8/paper.toml",
        "wikitext/mini.toml",
        "wikitext/paper.toml",
        "translation/mini.toml",
        "translation/paper.toml",
        "algorithmic/paper-length-3var.toml",
        "algorithmic/paper-length-5var.toml",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(family)),
            "experiments/{family} is missing"
        );
    }
    for file in &files {
        // RL configs (`[task] kind = "rl"`) belong to mnemo-rl, whose tests/training.rs checks
        // every file of experiments/rl/.
        if file.starts_with(root.join("rl")) {
            continue;
        }
        if is_translation_config(&std::fs::read_to_string(file).unwrap()) {
            let config =
                TranslationConfig::load(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            check_models(file, config.model_names(), |name| {
                config.for_model(name, 8000)
            });
            continue;
        }
        let config =
            ExperimentConfig::load(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        check_models(file, config.model_names(), |name| {
            config.for_model(name, 300)
        });
    }
}

/// Every model of the LM config `file` with `vocab` tokens: the labels `label` gives it, and its
/// parameter count; asserts the counts are within 2% of each other.
fn labelled_sizes_within_2_percent(
    file: &Path,
    vocab: usize,
    label: impl Fn(&mnemo_models::ModelConfig) -> Vec<&'static str>,
) -> Vec<&'static str> {
    use burn::module::Module;
    let device = mnemo_backend::device("cpu").unwrap();
    let config = ExperimentConfig::load(file).unwrap();
    let mut labels = Vec::new();
    let mut sizes = Vec::new();
    for (name, model) in &config.models {
        let mut model = model.clone();
        model.set_vocab_size(vocab);
        labels.extend(label(&model));
        sizes.push((name.clone(), model.init(&device).num_params()));
    }
    let min = sizes.iter().map(|s| s.1).min().unwrap() as f64;
    let max = sizes.iter().map(|s| s.1).max().unwrap() as f64;
    assert!(
        max / min < 1.02,
        "{}: parameter counts differ by more than 2%: {sizes:?}",
        file.display()
    );
    labels
}

#[test]
fn lm_mini_configs_compare_all_families_at_about_equal_size() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    // 257 byte ids; 13,219 words is wikitext-mini's vocabulary (docs/datasets.md).
    for (file, vocab) in [("enwik8/mini.toml", 257), ("wikitext/mini.toml", 13_219)] {
        let kinds = labelled_sizes_within_2_percent(&root.join(file), vocab, |m| vec![m.kind()]);
        for kind in ["transformer", "transformer_xl", "feedback"] {
            assert!(kinds.contains(&kind), "{file}: no {kind} model");
        }
    }
}

#[test]
fn variant_configs_compare_every_mechanism_at_about_equal_size() {
    use mnemo_core::NormPlacement;
    use mnemo_models::{ModelConfig, ResidualInit};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/variants");
    let option = |model: &ModelConfig| {
        let ModelConfig::Transformer(t) = model else {
            return vec![];
        };
        let mut options = vec![match (t.persistent_memory, t.feed_forward) {
            (0, _) => t.attention.name(),
            (_, true) => "persistent",
            (_, false) => "all_attention",
        }];
        if t.placement == NormPlacement::ResiDual {
            options.push("resi_dual");
        }
        if t.init == ResidualInit::Admin {
            options.push("admin");
        }
        options
    };
    for (file, vocab) in [("enwik8-mini.toml", 257), ("code-exec.toml", 40)] {
        let options = labelled_sizes_within_2_percent(&root.join(file), vocab, option);
        for want in [
            "softmax",
            "linear",
            "performer",
            "sparse",
            "persistent",
            "all_attention",
            "resi_dual",
            "admin",
        ] {
            assert!(options.contains(&want), "{file}: no {want} model");
        }
    }
}

#[test]
fn translation_configs_compare_decoder_depths_on_one_encoder() {
    use mnemo_models::DecoderKind;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/translation");
    for file in ["mini.toml", "paper.toml"] {
        let config = TranslationConfig::load(root.join(file)).unwrap();
        let shape = |kind: DecoderKind, layers: usize| {
            config
                .models
                .values()
                .any(|m| m.decoder.kind() == kind && m.decoder_layers == layers)
        };
        // The comparison: a 6-layer Transformer decoder vs 1 and 2 layers of each kind.
        assert!(
            shape(DecoderKind::Transformer, 6),
            "{file}: no 6-layer Transformer decoder"
        );
        for layers in [1, 2] {
            assert!(
                shape(DecoderKind::Transformer, layers),
                "{file}: no {layers}-layer Transformer"
            );
            assert!(
                shape(DecoderKind::Feedback, layers),
                "{file}: no {layers}-layer Feedback"
            );
        }
        // Everything but the decoder is the same, so only decoder depth and kind differ.
        let first = config.models.values().next().unwrap();
        for m in config.models.values() {
            assert_eq!(
                (m.d_model, m.n_heads, m.d_ff, m.encoder_layers, m.span),
                (
                    first.d_model,
                    first.n_heads,
                    first.d_ff,
                    first.encoder_layers,
                    first.span
                ),
                "{file}"
            );
        }
    }
}

/// `translation/en-es-longer.toml` is `mini-en-es.toml` trained 4× as long (what
/// docs/reproducing.md says of it): the same data, batches, decoding and models (three of the
/// five), only the schedule differs.
#[test]
fn the_longer_en_es_run_is_the_mini_one_trained_longer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/translation");
    let mini = TranslationConfig::load(root.join("mini-en-es.toml")).unwrap();
    let longer = TranslationConfig::load(root.join("en-es-longer.toml")).unwrap();
    assert_eq!(longer.run.steps, 4 * mini.run.steps);
    assert_eq!(longer.run.seed, mini.run.seed);
    assert_eq!(longer.data, mini.data);
    assert_eq!(longer.train, mini.train);
    assert_eq!(longer.decode, mini.decode);
    assert_eq!(
        (longer.optim.lr, longer.optim.min_lr, longer.optim.grad_clip),
        (mini.optim.lr, mini.optim.min_lr, mini.optim.grad_clip)
    );
    let names: Vec<&String> = longer.models.keys().collect();
    assert_eq!(names, ["feedback-2", "transformer-2", "transformer-6"]);
    for (name, model) in &longer.models {
        assert_eq!(Some(model), mini.models.get(name), "{name}");
    }
}

#[test]
fn enwik8_feedback_configs_use_the_official_adaptive_span() {
    use mnemo_models::ModelConfig;
    use mnemo_models::span_config::AdaptiveSpanSettings;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/enwik8");
    // The official enwik8 script: --attn-lim 8192 --adapt-span --adapt-span-loss 0.0000005
    // --head-dim 128, the other span flags at their defaults.
    let paper = ExperimentConfig::load(root.join("paper.toml")).unwrap();
    let Some(ModelConfig::Feedback(feedback)) = paper.models.get("feedback") else {
        panic!("paper.toml: no Feedback model")
    };
    let official = AdaptiveSpanSettings {
        loss: 5e-7,
        ..Default::default()
    };
    assert_eq!(feedback.adaptive_span, Some(official));
    assert_eq!((feedback.span, feedback.d_head), (8192, 128));
    // The trimming measurement: two models that differ only in `trim`.
    let measured = ExperimentConfig::load(root.join("adaptive_span.toml")).unwrap();
    let span_of = |name: &str| match measured.models.get(name) {
        Some(ModelConfig::Feedback(m)) => (m.clone(), m.adaptive_span.expect("a span")),
        _ => panic!("adaptive_span.toml: no Feedback model {name}"),
    };
    let ((trimmed, a), (untrimmed, b)) = (span_of("trimmed"), span_of("untrimmed"));
    assert!(a.trim && !b.trim);
    assert_eq!(
        mnemo_models::FeedbackConfig {
            adaptive_span: None,
            ..trimmed
        },
        mnemo_models::FeedbackConfig {
            adaptive_span: None,
            ..untrimmed
        }
    );
    assert_eq!(AdaptiveSpanSettings { trim: true, ..b }, a);
}
