//! Adaptive attention span (`adaptive_span` in a model table) in every model with a span: the
//! Transformer, Transformer-XL (mnemo's and the official `TransformerSeq` form) and the Feedback
//! Transformer. Step by step equals segments, trimming the keys no span reaches changes no
//! output, the span limits what a position can see, and the ratios' autodiff gradient matches
//! finite differences of the model's loss.
mod common;

use burn::module::Param;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{max_abs_diff, segmented, stepped, tokens};
use mnemo_core::host::to_vec;
use mnemo_core::{AdaptiveSpan, seeded};
use mnemo_models::span_config::AdaptiveSpanSettings;
use mnemo_models::{FeedbackConfig, Model, ModelConfig, TransformerConfig, TransformerXlConfig};

const VOCAB: usize = 11;

/// Ramp 2, trim step 1: small enough that tiny models trim.
fn settings(per_head: bool) -> AdaptiveSpanSettings {
    AdaptiveSpanSettings {
        ramp: 2,
        trim_step: 1,
        per_head,
        ..Default::default()
    }
}

/// Every model with a span, each with an adaptive span (S = 8 for all).
fn configs() -> Vec<(&'static str, ModelConfig)> {
    let transformer = TransformerConfig {
        span: 8,
        adaptive_span: Some(settings(true)),
        ..TransformerConfig::tiny(VOCAB)
    };
    let xl = TransformerXlConfig {
        adaptive_span: Some(settings(true)),
        ..TransformerXlConfig::tiny(VOCAB, 7)
    };
    let official_seq = TransformerXlConfig {
        attend_self: false,
        zero_memory: true,
        tie_positions: true,
        bias: false,
        memory_len: Some(8),
        adaptive_span: Some(settings(false)),
        ..TransformerXlConfig::tiny(VOCAB, 8)
    };
    let feedback = FeedbackConfig {
        adaptive_span: Some(settings(true)),
        ..FeedbackConfig::tiny(VOCAB)
    };
    let feedback_per_layer = FeedbackConfig {
        share_kv: false,
        adaptive_span: Some(settings(false)),
        ..FeedbackConfig::tiny(VOCAB)
    };
    vec![
        ("transformer", ModelConfig::Transformer(transformer)),
        ("transformer_xl", ModelConfig::TransformerXl(xl)),
        (
            "official TransformerSeq",
            ModelConfig::TransformerXl(official_seq),
        ),
        ("feedback", ModelConfig::Feedback(feedback)),
        (
            "feedback per-layer K/V and span",
            ModelConfig::Feedback(feedback_per_layer),
        ),
    ]
}

/// `span` with ratios `z` (one per head, or one).
fn with_ratios(mut span: AdaptiveSpan, z: &[f32]) -> AdaptiveSpan {
    let device = span.ratio.val().device();
    let n = span.ratio.dims()[0];
    let z: Vec<f32> = (0..n).map(|h| z[h % z.len()]).collect();
    span.ratio = Param::from_tensor(Tensor::from_data(TensorData::new(z, [n]), &device));
    span
}

/// The model of `config` with seeded weights and spans of 1.6 and 3.6 positions (layer 0) and
/// 2.4 and 0.8 (layer 1): S = 8, ramp 2, so every layer reaches at most 6 rows and trims.
fn build(config: &ModelConfig, device: &Device) -> Model {
    config.validate().expect("valid config");
    let ratios = [[0.2f32, 0.45], [0.3, 0.1]];
    seeded::reinit(config.init(device), 5).map_spans(|l, span| with_ratios(span, &ratios[l]))
}

fn untrimmed(model: Model) -> Model {
    model.map_spans(|_, mut span| {
        span.trim = false;
        span
    })
}

#[test]
fn trimming_happens_in_these_models() {
    let device = mnemo_backend::test_device().inner();
    for (name, config) in configs() {
        let model = build(&config, &device);
        let spans = model.adaptive_spans();
        assert_eq!(spans.len(), 2, "{name}");
        for span in spans {
            assert!(span.window_len() < span.max_span, "{name}: no trim");
        }
    }
}

#[test]
fn steps_equal_segments_with_adaptive_span() {
    let device = mnemo_backend::test_device().inner();
    for (name, config) in configs() {
        let model = build(&config, &device);
        // The official form attends from a zero memory; mnemo's XL and the Transformer from
        // nothing. Segments of 5 over 12 positions: the Transformer attends within segments
        // only, so it is compared over one segment.
        let (len, seg) = match name {
            "transformer" => (8, 8),
            _ => (12, 5),
        };
        let x = tokens(2, len, VOCAB, 1, &device);
        let parallel = segmented(&model, x.clone(), seg, &device);
        let diff = max_abs_diff(parallel, stepped(&model, &x, &device));
        assert!(diff < 1e-4, "{name}: steps vs segments, max |Δ| = {diff}");
    }
}

#[test]
fn trimmed_windows_attend_as_untrimmed_ones() {
    let device = mnemo_backend::test_device().inner();
    for (name, config) in configs() {
        let trimmed = build(&config, &device);
        let full = untrimmed(build(&config, &device));
        let x = tokens(2, 12, VOCAB, 2, &device);
        let seg = if name == "transformer" { 12 } else { 4 };
        let diff = max_abs_diff(
            segmented(&trimmed, x.clone(), seg, &device),
            segmented(&full, x.clone(), seg, &device),
        );
        assert!(
            diff < 1e-5,
            "{name}: trimmed vs untrimmed, max |Δ| = {diff}"
        );
        // Step by step too (a Transformer's key/value cache, an XL's per-token context).
        let diff = max_abs_diff(stepped(&trimmed, &x, &device), stepped(&full, &x, &device));
        assert!(
            diff < 1e-5,
            "{name}: trimmed vs untrimmed steps, max |Δ| = {diff}"
        );
    }
}

#[test]
fn a_span_limits_what_a_transformer_position_sees() {
    // Two layers each reaching at most 6 positions back (rows ≤ 5): position 15 cannot see
    // positions 0..=3 (15 − 2·5 − 1 = 4 is the oldest in reach of two hops). With every span
    // at its maximum (z = 1) the change reaches it.
    let device = mnemo_backend::test_device().inner();
    let config = ModelConfig::Transformer(TransformerConfig {
        span: 16,
        adaptive_span: Some(settings(true)),
        ..TransformerConfig::tiny(VOCAB)
    });
    config.validate().unwrap();
    let short = seeded::reinit(config.init(&device), 6)
        .map_spans(|_, span| with_ratios(span, &[0.125, 0.1875])); // spans 2 and 3, ramp 2
    let long =
        seeded::reinit(config.init(&device), 6).map_spans(|_, span| with_ratios(span, &[1.0]));
    let x = tokens(1, 16, VOCAB, 3, &device);
    let changed = x.clone().slice_assign(
        [0..1, 0..4],
        tokens(1, 4, VOCAB, 99, &device)
            .add_scalar(1)
            .remainder_scalar(VOCAB as i64),
    );
    let last = |model: &Model, x: &Tensor<2, Int>| {
        let o = model.forward_segment(x.clone(), model.init_state(1, &device));
        o.logits.narrow(1, 15, 1)
    };
    let unseen = max_abs_diff(last(&short, &x), last(&short, &changed));
    assert!(
        unseen < 1e-6,
        "short spans: position 15 saw positions 0..4 ({unseen})"
    );
    let seen = max_abs_diff(last(&long, &x), last(&long, &changed));
    assert!(
        seen > 1e-4,
        "full spans: the change must reach position 15 ({seen})"
    );
}

#[test]
fn ratio_gradients_match_finite_differences() {
    // d(loss)/dz_h of every model by autodiff against central differences of the loss. The
    // mask is piecewise linear in z; the ratios sit away from its kinks (z·S integer).
    let device = mnemo_backend::test_device();
    for (name, config) in configs() {
        let model = build(&config, &device);
        let x = tokens(2, 8, VOCAB, 4, &device);
        let weights = seeded::normal([2, 8, VOCAB], 7, &device);
        let loss = |model: &Model| {
            let o = model.forward_segment(x.clone(), model.init_state(2, &device));
            (o.logits * weights.clone()).sum()
        };
        let grads = loss(&model).backward();
        let spans = model.adaptive_spans();
        let analytic: Vec<Vec<f32>> = spans
            .iter()
            .map(|s| to_vec(s.ratio.grad(&grads).expect("the ratios get a gradient")))
            .collect();
        let base: Vec<Vec<f32>> = spans.iter().map(|s| to_vec(s.ratio.val())).collect();
        let eps = 5e-3f32;
        let mut largest = 0.0f32;
        for (l, layer) in base.iter().enumerate() {
            for h in 0..layer.len() {
                let at = |delta: f32| {
                    let mut z = layer.clone();
                    z[h] += delta;
                    let moved = build(&config, &device).map_spans(|i, span| {
                        let mut zs = base[i].clone();
                        if i == l {
                            zs = z.clone();
                        }
                        with_ratios(span, &zs)
                    });
                    loss(&moved).into_scalar::<f32>()
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                let got = analytic[l][h];
                largest = largest.max(got.abs());
                let tol = 2e-2 * (1.0 + numeric.abs());
                assert!(
                    (got - numeric).abs() < tol,
                    "{name}: layer {l} head {h}: autodiff {got} vs finite difference {numeric}"
                );
            }
        }
        assert!(
            largest > 1e-3,
            "{name}: every ratio gradient is ~0 ({largest})"
        );
    }
}

#[test]
fn configs_refuse_spans_they_cannot_mask_naming_the_field() {
    let with = |attention, persistent_memory| {
        ModelConfig::Transformer(TransformerConfig {
            attention,
            persistent_memory,
            adaptive_span: Some(settings(true)),
            ..TransformerConfig::tiny(VOCAB)
        })
    };
    let linear = mnemo_models::AttentionConfig::Linear {
        update: Default::default(),
        chunk: 64,
        carry: false,
    };
    for (name, config) in [
        ("linear attention", with(linear, 0)),
        ("persistent slots", with(Default::default(), 4)),
    ] {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("adaptive_span"), "{name}: {err}");
    }
    assert!(with(Default::default(), 0).validate().is_ok());
    let bad_ramp = ModelConfig::Feedback(FeedbackConfig {
        adaptive_span: Some(AdaptiveSpanSettings {
            ramp: 0,
            ..settings(true)
        }),
        ..FeedbackConfig::tiny(VOCAB)
    });
    let err = bad_ramp.validate().unwrap_err().to_string();
    assert!(err.contains("adaptive_span.ramp"), "{err}");
}
