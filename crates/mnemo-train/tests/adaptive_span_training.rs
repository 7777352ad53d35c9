//! Training with adaptive spans: a step's gradient of the ratios z is that of the language-model
//! loss plus the span loss `c·S·mean(z)` per layer, every update leaves z in `[0, 1]`, and the
//! learnt spans come back from a saved run.
mod common;

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use common::{config, options, tiny_toml, trained};
use mnemo_core::host::to_vec;
use mnemo_models::span_config::AdaptiveSpanSettings;
use mnemo_models::{FeedbackConfig, Model, ModelConfig, TransformerConfig, TransformerXlConfig};
use mnemo_train::loss::masked_cross_entropy;
use mnemo_train::{FeedbackBackward, LmBatch, LmStep};

const VOCAB: usize = 11;

fn settings() -> AdaptiveSpanSettings {
    AdaptiveSpanSettings {
        ramp: 2,
        loss: 0.01,
        init: 0.4,
        trim_step: 1,
        ..Default::default()
    }
}

fn configs() -> Vec<(&'static str, ModelConfig)> {
    vec![
        (
            "feedback",
            ModelConfig::Feedback(FeedbackConfig {
                adaptive_span: Some(settings()),
                ..FeedbackConfig::tiny(VOCAB)
            }),
        ),
        (
            "transformer",
            ModelConfig::Transformer(TransformerConfig {
                span: 8,
                adaptive_span: Some(settings()),
                ..TransformerConfig::tiny(VOCAB)
            }),
        ),
        (
            "transformer_xl",
            ModelConfig::TransformerXl(TransformerXlConfig {
                adaptive_span: Some(settings()),
                ..TransformerXlConfig::tiny(VOCAB, 7)
            }),
        ),
    ]
}

/// A fixed batch `[2, 6]` and its targets.
fn batch() -> (Tensor<2, Int>, Vec<u32>) {
    let device = mnemo_backend::test_device();
    let (b, t) = (2, 6);
    let ids: Vec<i64> = (0..b * t).map(|i| ((i * 7 + 3) % VOCAB) as i64).collect();
    let targets: Vec<u32> = (0..b * t).map(|i| ((i * 5 + 1) % VOCAB) as u32).collect();
    (
        Tensor::from_data(TensorData::new(ids, [b, t]), &device),
        targets,
    )
}

/// The ratios' gradients, per layer.
fn ratio_grads(model: &Model, grads: &GradientsParams) -> Vec<Vec<f32>> {
    model
        .adaptive_spans()
        .iter()
        .map(|s| to_vec(grads.get::<1>(s.ratio.id).expect("a ratio gradient")))
        .collect()
}

#[test]
fn a_step_adds_the_span_loss_gradient() {
    let device = mnemo_backend::test_device();
    for (name, config) in configs() {
        let model = mnemo_train::seeded(&device, 3, || config.init(&device));
        let (tokens, targets) = batch();
        let step = LmStep::new(FeedbackBackward::Autodiff).run(
            &model,
            LmBatch {
                tokens: tokens.clone(),
                targets: &targets,
                no_label: u32::MAX,
            },
            model.init_state(2, &device),
        );
        // One backward of the sum, and of the language-model loss alone.
        let lm = || {
            let logits = model
                .forward_segment(tokens.clone(), model.init_state(2, &device))
                .logits;
            masked_cross_entropy(logits, &targets, u32::MAX).loss
        };
        let total = lm() + model.span_loss().expect("spans");
        let want = GradientsParams::from_grads(total.backward(), &model);
        let without = GradientsParams::from_grads(lm().backward(), &model);
        let (got, want, without) = (
            ratio_grads(&model, &step.grads),
            ratio_grads(&model, &want),
            ratio_grads(&model, &without),
        );
        // c·S/H = 0.01·8/2 per ratio: what the span loss adds.
        for l in 0..got.len() {
            for h in 0..got[l].len() {
                let gap = (got[l][h] - want[l][h]).abs();
                assert!(gap < 1e-6, "{name}: layer {l} head {h}: {gap}");
                let added = got[l][h] - without[l][h];
                assert!(
                    (added - 0.04).abs() < 1e-5,
                    "{name}: span loss added {added}"
                );
            }
        }
    }
}

#[test]
fn training_keeps_ratios_in_the_unit_interval() {
    // A span loss coefficient so large that the ratios are pushed below 0 at once: the clamp
    // after each update holds them at 0; the other spans stay where training put them.
    for model in ["feedback", "transformer"] {
        let text = tiny_toml("steps = 3", 3e-2, 0.0)
            .replace("train_programs = 50", "train_programs = 8")
            .replace(
                "span = 8\n",
                "span = 8\nadaptive_span = { loss = 1.0, init = 0.01, ramp = 2 }\n",
            )
            .replace(
                "span = 16\n",
                "span = 16\nadaptive_span = { loss = 1.0, init = 0.01, ramp = 2 }\n",
            );
        let out = tempfile::tempdir().unwrap();
        let run = trained(&config(&text), model, &options(out.path()));
        let spans = run.model.learnt_spans();
        assert_eq!(spans.len(), 2, "{model}: one span per layer");
        // summary.json reports them.
        let summary =
            std::fs::read_to_string(out.path().join("t").join(model).join("summary.json")).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        let reported: Vec<Vec<f32>> =
            serde_json::from_value(summary["learnt_spans"].clone()).expect("learnt_spans");
        assert_eq!(reported, spans, "{model}: summary.json");
        for layer in &spans {
            assert_eq!(layer.len(), 2, "{model}: one span per head");
            for &span in layer {
                assert_eq!(span, 0.0, "{model}: clamped at 0, got {span}");
            }
        }
    }
}
