//! Transformer-XL against a naive reference: every position recomputed from the full sequence
//! with an explicit band (layer l sees itself and the Mₗ positions before it), op by op.
//! Segment runs with carried memory, step-by-step decoding, lengthened evaluation memory,
//! causality, detached memories, snapshots and the schedule's validation.
mod common;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{
    assert_causal, assert_differs, assert_no_gradient_into_the_state, for_each_model, max_abs_diff,
    segmented, stepped, tokens, with_future_changed,
};
use mnemo_core::{Activation, NormKind, NormPlacement, RelativePositions, seeded};
use mnemo_models::transformer_xl::XlLayer;
use mnemo_models::{
    MemorySchedule, Model, ModelConfig, StateSnapshot, TransformerConfig, TransformerXlConfig,
    TransformerXlLm,
};

const VOCAB: usize = 13;

fn configs() -> Vec<(&'static str, TransformerXlConfig)> {
    let uniform = TransformerXlConfig::tiny(VOCAB, 3);
    let mixed = TransformerXlConfig {
        n_layers: 3,
        ..uniform.clone()
    }
    .with_schedule(MemorySchedule::per_layer(vec![2, 7, 3]));
    let post = TransformerXlConfig {
        placement: NormPlacement::Post,
        norm: NormKind::Rms,
        relative_span: Some(9),
        ..uniform.clone()
    }
    .with_schedule(MemorySchedule::long_range(vec![1], 6, 1));
    // The official TransformerSeq's choices: earlier positions only, a zero initial memory, one
    // position table, no attention biases, ReLU, heads of 5 (not D/H).
    let official = TransformerXlConfig {
        n_layers: 3,
        activation: Activation::Relu,
        bias: false,
        tie_positions: true,
        d_head: 5,
        attend_self: false,
        zero_memory: true,
        ..TransformerXlConfig::tiny(VOCAB, 5)
    };
    let official_post = TransformerXlConfig {
        placement: NormPlacement::Post,
        tie_positions: false,
        ..official.clone()
    }
    .with_schedule(MemorySchedule::per_layer(vec![2, 6, 3]));
    vec![
        ("uniform 3", uniform),
        ("mixed [2, 7, 3]", mixed),
        ("post-norm rms, long layer 1", post),
        ("official TransformerSeq pre-norm", official),
        ("official TransformerSeq post-norm [2, 6, 3]", official_post),
    ]
}

/// One layer over the whole sequence, written out per position with position table
/// `positions` (the layer's own or the tied one): the context of position p is positions
/// p - M ..= p - min_distance, those before the stream zero states when the layer starts with a
/// zero memory (else cut at 0); distance δ uses table row min(δ - min_distance, P - 1).
fn naive_layer(layer: &XlLayer, positions: &RelativePositions, h: Tensor<3>) -> Tensor<3> {
    let [b, n, d] = h.dims();
    let heads = layer.attn.n_heads;
    let dh = layer.attn.query.weight.dims()[1] / heads;
    let table = positions.table.val();
    let (top, min) = (table.dims()[0] - 1, positions.min_distance);
    let m = layer.memory_len;
    let (padded, offset) = match layer.zero_memory {
        true => (
            Tensor::cat(vec![Tensor::zeros([b, m, d], &h.device()), h], 1),
            m,
        ),
        false => (h, 0),
    };
    let outs: Vec<Tensor<3>> = (offset..offset + n)
        .map(|p| {
            let lo = p.saturating_sub(m);
            let w = p - min - lo + 1;
            let ctx = padded.clone().narrow(1, lo, w);
            let x = padded.clone().narrow(1, p, 1);
            let (xq, ctx_in) = if layer.attn_residual.is_pre() {
                let norm = &layer.attn_residual.norm;
                (norm.forward(x.clone()), norm.forward(ctx))
            } else {
                (x.clone(), ctx)
            };
            let q = layer
                .attn
                .query
                .forward(xq)
                .reshape([b, 1, heads, dh])
                .swap_dims(1, 2);
            let k = layer
                .attn
                .key
                .forward(ctx_in.clone())
                .reshape([b, w, heads, dh])
                .swap_dims(1, 2);
            let v = layer
                .attn
                .value
                .forward(ctx_in)
                .reshape([b, w, heads, dh])
                .swap_dims(1, 2);
            let rows: Vec<Tensor<2>> = (0..w)
                .map(|j| table.clone().narrow(0, (p - lo - j - min).min(top), 1))
                .collect();
            let pos = Tensor::cat(rows, 0).transpose().unsqueeze::<4>(); // [1,1,Dh,w]
            let scores = (q.clone().matmul(k.swap_dims(2, 3)) + q.matmul(pos))
                .div_scalar((dh as f64).sqrt());
            let a = softmax(scores, 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([b, 1, heads * dh]);
            let a = layer.attn.output.forward(a);
            let (attn_norm, ff_norm) = (&layer.attn_residual.norm, &layer.ff_residual.norm);
            if layer.attn_residual.is_pre() {
                let x = x + a;
                x.clone() + layer.ff.forward(ff_norm.forward(x))
            } else {
                let x = attn_norm.forward(x + a);
                ff_norm.forward(x.clone() + layer.ff.forward(x))
            }
        })
        .collect();
    Tensor::cat(outs, 1)
}

/// The whole model on the whole sequence, without memories.
fn naive_logits(model: &TransformerXlLm, x: Tensor<2, Int>) -> Tensor<3> {
    let mut h = model.embedding.forward(x);
    let first = model.layers[0].attn.positions();
    for layer in &model.layers {
        h = naive_layer(layer, layer.attn.positions.as_ref().unwrap_or(first), h);
    }
    if let Some(norm) = &model.final_norm {
        h = norm.forward(h);
    }
    model.head.forward(h)
}

fn xl(model: &Model) -> &TransformerXlLm {
    match model {
        Model::TransformerXl(m) => m,
        _ => panic!("not a Transformer-XL"),
    }
}

/// The model of `config` with weights drawn from a fixed seed (no process-wide generator).
fn build(config: &TransformerXlConfig, device: &Device) -> Model {
    config.validate().expect("valid config");
    seeded::reinit(ModelConfig::TransformerXl(config.clone()).init(device), 3)
}

#[test]
fn segments_with_memory_equal_one_banded_long_run() {
    for_each_model(configs(), build, |name, model, device| {
        let x = tokens(2, 12, VOCAB, 1, device);
        let reference = naive_logits(xl(&model), x.clone());
        // Two segments of 6, three of 4 (memory 7 spans two earlier segments), one of 12.
        for seg in [6, 4, 12] {
            let got = segmented(&model, x.clone(), seg, device);
            let diff = max_abs_diff(got, reference.clone());
            assert!(diff < 1e-4, "{name}, segments of {seg}: max |Δ| = {diff}");
        }
    });
}

#[test]
fn memory_reach_is_exactly_the_schedule() {
    let device = mnemo_backend::test_device().inner();
    let config = TransformerXlConfig {
        n_layers: 1,
        ..TransformerXlConfig::tiny(VOCAB, 3)
    };
    let model = build(&config, &device);
    let x = tokens(1, 8, VOCAB, 2, &device);
    let first = (x.clone().narrow(1, 0, 1).into_scalar::<i64>() + 1) % VOCAB as i64;
    let y = x.clone().slice_assign(
        [0..1, 0..1],
        Tensor::<2, Int>::from_data(TensorData::new(vec![first], [1, 1]), &device),
    );
    // Segments of 2: position 3 sees position 0 only through the carried memory.
    let (a, b) = (
        segmented(&model, x, 2, &device),
        segmented(&model, y, 2, &device),
    );
    let near = max_abs_diff(a.clone().narrow(1, 3, 1), b.clone().narrow(1, 3, 1));
    let far = max_abs_diff(a.narrow(1, 4, 4), b.narrow(1, 4, 4));
    assert!(
        near > 1e-5,
        "position 0 is 3 back from position 3 and must be seen"
    );
    assert!(
        far < 1e-6,
        "one layer with memory 3 leaked position 0 into positions 4..8: {far}"
    );
}

#[test]
fn causal_across_segments() {
    for_each_model(configs(), build, |name, model, device| {
        let x = tokens(2, 10, VOCAB, 4, device);
        let y = with_future_changed(&x, 7, VOCAB, 9, device);
        let (a, b) = (
            segmented(&model, x, 5, device),
            segmented(&model, y, 5, device),
        );
        assert_causal(name, a, b, 7);
    });
}

#[test]
fn steps_equal_segments() {
    for_each_model(configs(), build, |name, model, device| {
        let x = tokens(2, 9, VOCAB, 5, device);
        let parallel = segmented(&model, x.clone(), 5, device);
        let diff = max_abs_diff(parallel, stepped(&model, &x, device));
        assert!(diff < 1e-4, "{name}: max |Δ| = {diff}");
    });
}

#[test]
fn longer_eval_memory_equals_the_reference_with_clamped_distances() {
    let device = mnemo_backend::test_device().inner();
    let config = TransformerXlConfig::tiny(VOCAB, 2).with_schedule(MemorySchedule::long_range(
        vec![1],
        3,
        2,
    ));
    let mut model = build(&config, &device);
    let x = tokens(2, 12, VOCAB, 6, &device);
    let trained = segmented(&model, x.clone(), 4, &device);
    model.with_eval_memory(7).unwrap();
    assert_eq!(
        xl(&model).memory_lens(),
        vec![2, 7],
        "only the long-range layer changes"
    );
    let longer = segmented(&model, x.clone(), 4, &device);
    // Distances 4..=7 reuse the table's last row (P = 4).
    let diff = max_abs_diff(longer.clone(), naive_logits(xl(&model), x));
    assert!(diff < 1e-4, "max |Δ| = {diff}");
    assert_differs("the longer memory", longer, trained, 1e-5);
    assert!(model.with_eval_memory(0).is_err());
}

#[test]
fn eval_memory_is_refused_by_models_without_a_variable_memory() {
    let device = mnemo_backend::test_device().inner();
    let mut transformer = ModelConfig::Transformer(TransformerConfig::tiny(VOCAB)).init(&device);
    assert_eq!(
        transformer.with_eval_memory(8).unwrap_err(),
        "the Transformer carries no memory across segments"
    );
    // The Feedback Transformer takes spans up to its trained one (tests/feedback_eval_span.rs).
    let mut feedback =
        ModelConfig::Feedback(mnemo_models::FeedbackConfig::tiny(VOCAB)).init(&device);
    assert!(
        feedback
            .with_eval_memory(9)
            .unwrap_err()
            .contains("Feedback")
    );
}

#[test]
fn no_gradient_flows_into_the_carried_memory() {
    let device = mnemo_backend::test_device();
    let (_, config) = configs().remove(1);
    let segments = (
        tokens(2, 5, VOCAB, 7, &device),
        tokens(2, 5, VOCAB, 8, &device),
    );
    let probe = seeded::normal([2, 5, VOCAB], 12, &device);
    assert_no_gradient_into_the_state("xl", &build(&config, &device), segments, probe, |model| {
        let m = xl(model);
        vec![
            ("embedding".into(), m.embedding.weight.val()),
            ("layer 0 key".into(), m.layers[0].attn.key.weight.val()),
            ("layer 1 query".into(), m.layers[1].attn.query.weight.val()),
            (
                "layer 2 positions".into(),
                m.layers[2].attn.positions().table.val(),
            ),
        ]
    });
}

#[test]
fn snapshot_restores_the_stream() {
    let device = mnemo_backend::test_device().inner();
    let (_, config) = configs().remove(1);
    let model = build(&config, &device);
    let (x1, x2) = (
        tokens(2, 4, VOCAB, 10, &device),
        tokens(2, 4, VOCAB, 11, &device),
    );
    let empty = model.init_state(2, &device).snapshot();
    assert_eq!(
        model.restore_state(&empty, 2, &device).unwrap().snapshot(),
        empty
    );
    let state = model
        .forward_segment(x1, model.init_state(2, &device))
        .state;
    let snapshot = state.snapshot();
    let StateSnapshot::TransformerXl { shapes, .. } = &snapshot else {
        panic!("wrong snapshot kind")
    };
    assert_eq!(
        shapes,
        &vec![[2, 2, 32], [2, 4, 32], [2, 3, 32]],
        "memories hold min(Mₗ, seen)"
    );
    let restored = model.restore_state(&snapshot, 2, &device).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    let diff = max_abs_diff(
        model.forward_segment(x2.clone(), state).logits,
        model.forward_segment(x2, restored).logits,
    );
    assert_eq!(diff, 0.0);
    let err = model.restore_state(&snapshot, 3, &device).unwrap_err();
    assert!(err.contains("layer 0") && err.contains("batch 3"), "{err}");
    let feedback = StateSnapshot::Feedback {
        shape: [2, 1, 32],
        values: vec![0.0; 64],
    };
    assert!(model.restore_state(&feedback, 2, &device).is_err());
    let truncated = match snapshot {
        StateSnapshot::TransformerXl { mut shapes, values } => {
            shapes.pop();
            StateSnapshot::TransformerXl { shapes, values }
        }
        _ => unreachable!(),
    };
    assert!(
        model
            .restore_state(&truncated, 2, &device)
            .unwrap_err()
            .contains("3 layers")
    );
}

#[test]
fn parameter_count_matches_a_transformer_of_the_same_shape() {
    let device = mnemo_backend::test_device().inner();
    // The XL layer holds P = longest memory + 1 position vectors, like a Transformer of span P.
    let config = TransformerXlConfig::tiny(VOCAB, 5);
    let transformer = TransformerConfig {
        span: 6,
        ..TransformerConfig::tiny(VOCAB)
    };
    let (a, b) = (
        build(&config, &device),
        ModelConfig::Transformer(transformer).init(&device),
    );
    assert_eq!(a.num_params(), b.num_params());
}

#[test]
fn schedule_forms_expand_to_per_layer_lengths() {
    let base = TransformerXlConfig {
        n_layers: 4,
        ..TransformerXlConfig::tiny(VOCAB, 1)
    };
    let helper = base
        .clone()
        .with_schedule(MemorySchedule::long_range(vec![3, 1], 512, 64));
    assert_eq!(helper.memory_lens().unwrap(), vec![64, 512, 64, 512]);
    assert_eq!(helper.positions().unwrap(), 513);
    assert_eq!(base.memory_lens().unwrap(), vec![1; 4]);
}

#[test]
fn impossible_schedules_are_rejected_naming_the_field() {
    let base = TransformerXlConfig {
        n_layers: 4,
        ..TransformerXlConfig::tiny(VOCAB, 8)
    };
    let none = MemorySchedule::default();
    let cases: Vec<(&str, TransformerXlConfig, &str)> = vec![
        (
            "no schedule",
            base.clone().with_schedule(none),
            "memory_len",
        ),
        (
            "earlier positions only, from an empty memory",
            TransformerXlConfig {
                attend_self: false,
                ..base.clone()
            },
            "attend_self",
        ),
        (
            "span short of the memory without self",
            TransformerXlConfig {
                attend_self: false,
                zero_memory: true,
                relative_span: Some(7),
                ..base.clone()
            },
            "relative_span",
        ),
        (
            "zero memory_len",
            base.clone().with_schedule(MemorySchedule::uniform(0)),
            "memory_len",
        ),
        (
            "list shorter than n_layers",
            base.clone()
                .with_schedule(MemorySchedule::per_layer(vec![8, 8, 8])),
            "memory_schedule",
        ),
        (
            "zero entry",
            base.clone()
                .with_schedule(MemorySchedule::per_layer(vec![8, 0, 8, 8])),
            "memory_schedule",
        ),
        (
            "memory_len and list",
            TransformerXlConfig {
                memory_schedule: Some(vec![8; 4]),
                ..base.clone()
            },
            "memory_schedule",
        ),
        (
            "list and helper",
            base.clone().with_schedule(MemorySchedule {
                memory_schedule: Some(vec![8; 4]),
                ..MemorySchedule::long_range(vec![3], 8, 2)
            }),
            "long_range_layers",
        ),
        (
            "layer out of range",
            base.clone()
                .with_schedule(MemorySchedule::long_range(vec![4], 8, 2)),
            "long_range_layers",
        ),
        (
            "layer twice",
            base.clone()
                .with_schedule(MemorySchedule::long_range(vec![2, 2], 8, 2)),
            "long_range_layers",
        ),
        (
            "no long layer",
            base.clone()
                .with_schedule(MemorySchedule::long_range(vec![], 8, 2)),
            "long_range_layers",
        ),
        (
            "short above long",
            base.clone()
                .with_schedule(MemorySchedule::long_range(vec![3], 8, 9)),
            "short_memory_len",
        ),
        (
            "zero short",
            base.clone()
                .with_schedule(MemorySchedule::long_range(vec![3], 8, 0)),
            "short_memory_len",
        ),
        (
            "missing long",
            base.clone().with_schedule(MemorySchedule {
                long_memory_len: None,
                ..MemorySchedule::long_range(vec![3], 8, 2)
            }),
            "long_memory_len",
        ),
        (
            "missing short",
            base.clone().with_schedule(MemorySchedule {
                short_memory_len: None,
                ..MemorySchedule::long_range(vec![3], 8, 2)
            }),
            "short_memory_len",
        ),
        (
            "memory beyond the relative span",
            TransformerXlConfig {
                relative_span: Some(8),
                ..base.clone()
            },
            "relative_span",
        ),
        (
            "heads",
            TransformerXlConfig {
                n_heads: 3,
                ..base.clone()
            },
            "n_heads",
        ),
    ];
    for (label, config, field) in cases {
        let err = config.validate().expect_err(label);
        assert_eq!(err.field, field, "{label}: {err}");
        assert!(
            err.to_string().starts_with(&format!("model.{field}: ")),
            "{label}: {err}"
        );
    }
    assert!(
        TransformerXlConfig {
            relative_span: Some(9),
            ..base
        }
        .validate()
        .is_ok()
    );
}

#[test]
fn toml_config_selects_transformer_xl() {
    let text = r#"
kind = "transformer_xl"
vocab_size = 13
d_model = 16
n_layers = 4
n_heads = 2
d_ff = 32
long_range_layers = [3]
long_memory_len = 512
short_memory_len = 64
"#;
    let config: ModelConfig = toml::from_str(text).unwrap();
    assert_eq!(config.kind(), "transformer_xl");
    config.validate().unwrap();
    let ModelConfig::TransformerXl(xl) = &config else {
        panic!("wrong kind")
    };
    assert_eq!(xl.memory_lens().unwrap(), vec![64, 64, 64, 512]);
    let back: ModelConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
    assert_eq!(back, config);
    let bad = text.replace(
        "short_memory_len = 64",
        "short_memory_len = 64\nmemory_len = 8",
    );
    let err = toml::from_str::<ModelConfig>(&bad)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(err.field, "long_range_layers");
    assert!(toml::from_str::<ModelConfig>(&text.replace("d_ff", "memory_span = 3\nd_ff")).is_err());
}
