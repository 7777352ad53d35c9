//! Linear attention and Performer layers that carry their fast weights across segments
//! (`attention = { ..., carry = true }`): segments with the state carried equal one long pass,
//! no gradient crosses a segment boundary, and a checkpoint's snapshot restores the state
//! exactly (or is refused, naming what does not fit).
mod common;

use burn::tensor::Device;
use common::{assert_no_gradient_into_the_state, max_abs_diff, segmented, tokens};
use mnemo_core::{AttentionVariant, seeded};
use mnemo_models::attention_config::LinearUpdate;
use mnemo_models::{AttentionConfig, Model, ModelConfig, StateSnapshot, TransformerConfig};

const VOCAB: usize = 11;

/// The three carrying mechanisms, and the same models without `carry`.
fn configs(carry: bool) -> Vec<(&'static str, TransformerConfig)> {
    let with = |attention| TransformerConfig {
        attention,
        ..TransformerConfig::tiny(VOCAB)
    };
    vec![
        (
            "linear, sum",
            with(AttentionConfig::Linear {
                update: LinearUpdate::Sum,
                chunk: 3,
                carry,
            }),
        ),
        (
            "linear, delta rule",
            with(AttentionConfig::Linear {
                update: LinearUpdate::Delta,
                chunk: 3,
                carry,
            }),
        ),
        (
            "performer",
            with(AttentionConfig::Performer {
                features: 8,
                chunk: 3,
                seed: 1,
                redraw_every: 0,
                carry,
            }),
        ),
    ]
}

fn build(config: &TransformerConfig, device: &Device) -> Model {
    config.validate().expect("valid config");
    seeded::reinit(ModelConfig::Transformer(config.clone()).init(device), 4)
}

#[test]
fn carried_segments_equal_one_long_pass() {
    let device = mnemo_backend::test_device().inner();
    let x = tokens(2, 14, VOCAB, 1, &device);
    for ((name, carried), (_, fresh)) in configs(true).iter().zip(configs(false)) {
        let model = build(carried, &device);
        // The parallel pass over the whole stream: one segment of all 14 positions.
        let long = segmented(&model, x.clone(), 14, &device);
        for seg in [1, 4, 5] {
            let diff = max_abs_diff(segmented(&model, x.clone(), seg, &device), long.clone());
            assert!(diff < 1e-4, "{name}, segments of {seg}: max |Δ| = {diff}");
        }
        // Without `carry` each segment starts from zero: its later segments differ.
        let model = build(&fresh, &device);
        let long = segmented(&model, x.clone(), 14, &device);
        let diff = max_abs_diff(segmented(&model, x.clone(), 5, &device), long);
        assert!(
            diff > 1e-3,
            "{name} without carry: segments equal the long pass"
        );
    }
}

#[test]
fn no_gradient_crosses_a_segment_boundary() {
    let device = mnemo_backend::test_device();
    let segments = (
        tokens(2, 5, VOCAB, 7, &device),
        tokens(2, 5, VOCAB, 8, &device),
    );
    let probe = seeded::normal([2, 5, VOCAB], 12, &device);
    for (name, config) in configs(true) {
        let model = build(&config, &device);
        assert_no_gradient_into_the_state(name, &model, segments.clone(), probe.clone(), |m| {
            let Model::Transformer(m) = m else {
                unreachable!("a Transformer config")
            };
            let mut params = vec![("embedding".to_string(), m.embedding.weight.val())];
            for (l, layer) in m.layers.iter().enumerate() {
                let key = match layer.attn_variant.as_ref().expect("a variant layer") {
                    AttentionVariant::Linear(a) => a.key.weight.val(),
                    AttentionVariant::Performer(a) => a.key.weight.val(),
                    AttentionVariant::Sparse(_) => unreachable!("sparse does not carry"),
                };
                params.push((format!("layer {l} key"), key));
            }
            params
        });
    }
}

#[test]
fn snapshots_restore_the_state_or_name_what_does_not_fit() {
    let device = mnemo_backend::test_device().inner();
    let (x1, x2) = (
        tokens(2, 6, VOCAB, 3, &device),
        tokens(2, 4, VOCAB, 4, &device),
    );
    for ((name, config), (_, fresh)) in configs(true).into_iter().zip(configs(false)) {
        let model = build(&config, &device);
        let state = model
            .forward_segment(x1.clone(), model.init_state(2, &device))
            .state;
        let snapshot = state.snapshot();
        let StateSnapshot::TransformerCarried { layers } = &snapshot else {
            panic!("{name}: the carried state was not saved: {snapshot:?}")
        };
        assert_eq!(layers.len(), config.n_layers);
        let restored = model.restore_state(&snapshot, 2, &device).unwrap();
        let (a, b) = (
            model.forward_segment(x2.clone(), state).logits,
            model.forward_segment(x2.clone(), restored).logits,
        );
        assert_eq!(max_abs_diff(a, b), 0.0, "{name}: restored state differs");
        // A fresh stream's state is saved as nothing carried yet.
        assert_eq!(
            model.init_state(2, &device).snapshot(),
            StateSnapshot::Transformer
        );

        let err = |model: &Model, snapshot: &StateSnapshot, batch| {
            model
                .restore_state(snapshot, batch, &device)
                .expect_err(name)
        };
        let other_batch = err(&model, &snapshot, 3);
        assert!(
            other_batch.contains("layer 0") && other_batch.contains("[3, "),
            "{other_batch}"
        );
        let no_carry = err(&build(&fresh, &device), &snapshot, 2);
        assert!(no_carry.contains("attention.carry"), "{no_carry}");
        let StateSnapshot::TransformerCarried { mut layers } = snapshot else {
            unreachable!()
        };
        let extra = layers[1][0].clone();
        layers[1].push(extra);
        let more = err(&model, &StateSnapshot::TransformerCarried { layers }, 2);
        assert!(
            more.starts_with("layer 1:") && more.contains("tensors"),
            "{more}"
        );
    }
}
