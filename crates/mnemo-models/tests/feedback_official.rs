//! The Feedback options that make a mnemo model compute what the official code
//! (facebookresearch/transformer-sequential) computes (issue 18): `carry`, `activation`,
//! `bias`, `tie_positions`, `tie_norms`, `d_head`. Config parsing and validation here; the
//! manual backward with the options on is checked in tests/feedback_backward.rs.
mod common;

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use mnemo_core::{Activation, Norm, NormPlacement};
use mnemo_models::ModelConfig;
use mnemo_models::feedback::{Carry, FeedbackConfig, FeedbackLm, FeedbackState};

const VOCAB: usize = 11;

/// A `[models.x]` table of an old config (before issue 18): no new field.
const OLD: &str = r#"
kind = "feedback"
vocab_size = 11
d_model = 32
n_layers = 2
n_heads = 2
d_ff = 64
span = 8
"#;

fn parse(text: &str) -> Result<FeedbackConfig, String> {
    match toml::from_str::<ModelConfig>(text).map_err(|e| e.to_string())? {
        ModelConfig::Feedback(c) => Ok(c),
        other => Err(format!("not a feedback config: {other:?}")),
    }
}

#[test]
fn old_configs_parse_to_the_old_behaviour() {
    let config = parse(OLD).unwrap();
    assert_eq!(config, FeedbackConfig::tiny(VOCAB));
    assert_eq!(config.carry, Carry::Raw);
    assert_eq!(config.activation, Activation::Gelu);
    assert!(config.bias);
    assert!(!config.tie_positions && !config.tie_norms);
    assert_eq!(config.d_head, 0);
    config.validate().unwrap();
    // Defaults written out round-trip and parse to the same config.
    let text = toml::to_string(&ModelConfig::Feedback(config.clone())).unwrap();
    assert_eq!(parse(&text).unwrap(), config);
}

#[test]
fn the_official_fields_parse() {
    let text = format!(
        "{OLD}carry = \"official\"\nactivation = \"relu\"\nbias = false\n\
         tie_positions = true\ntie_norms = true\nd_head = 24\n"
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.carry, Carry::Official);
    assert_eq!(config.activation, Activation::Relu);
    assert!(!config.bias && config.tie_positions && config.tie_norms);
    assert_eq!(config.d_head, 24);
    let bad = parse(&format!("{OLD}activation = \"tanh\"\n")).unwrap_err();
    assert!(bad.contains("tanh"), "{bad}");
    let bad = parse(&format!("{OLD}carry = \"normed\"\n")).unwrap_err();
    assert!(bad.contains("normed"), "{bad}");
}

#[test]
fn tied_norms_drop_the_memory_norms() {
    let config = FeedbackConfig {
        tie_norms: true,
        ..FeedbackConfig::tiny(VOCAB)
    };
    // Pre-norm with shared K/V: one attention norm for every layer (mnemo-train's
    // tests/tied_norms.rs trains it); the other cases read each layer's own.
    let device = mnemo_backend::test_device().inner();
    assert!(config.init(&device).core.ties_attention_norms());
    for ok in [
        config.clone(),
        FeedbackConfig {
            share_kv: false,
            ..config.clone()
        },
        FeedbackConfig {
            placement: NormPlacement::Post,
            ..config
        },
    ] {
        ok.validate().unwrap();
        // No memory norm of their own: one LayerNorm (γ, β of width 32) fewer per projection.
        let untied = FeedbackConfig {
            tie_norms: false,
            ..ok.clone()
        };
        let device = mnemo_backend::test_device().inner();
        let (tied, untied) = (ok.init(&device), untied.init(&device));
        let n_proj = tied.core.memory_projections.len();
        assert!(
            tied.core
                .memory_projections
                .iter()
                .all(|p| p.norm.is_none())
        );
        assert_eq!(tied.num_params(), untied.num_params() - n_proj * 2 * 32);
    }
}

#[test]
fn official_carry_needs_pre_norm() {
    let config = FeedbackConfig {
        carry: Carry::Official,
        placement: NormPlacement::Post,
        ..FeedbackConfig::tiny(VOCAB)
    };
    assert_eq!(config.validate().unwrap_err().field, "carry");
}

/// `d_head` sets the width of queries, keys, values and position vectors; `bias = false` drops
/// the four attention projections' biases and only those.
#[test]
fn head_size_and_biases_shape_the_parameters() {
    let device = mnemo_backend::test_device().inner();
    let base = FeedbackConfig::tiny(VOCAB); // D = 32, H = 2, L = 2, share_kv
    let official = FeedbackConfig {
        d_head: 24,
        bias: false,
        ..base.clone()
    };
    official.validate().unwrap();
    let model = official.init(&device);
    let layer = &model.core.layers[0];
    assert_eq!(layer.query.weight.dims(), [32, 48]);
    assert_eq!(layer.output.weight.dims(), [48, 32]);
    assert_eq!(model.core.positions_of(0).table.dims()[1], 24);
    let kv = &model.core.memory_projections[0];
    assert_eq!(kv.key.weight.dims(), [32, 48]);
    assert!(layer.query.bias.is_none() && layer.output.bias.is_none());
    assert!(kv.key.bias.is_none() && kv.value.bias.is_none());
    assert!(layer.ff.up.bias.is_some() && layer.ff.down.bias.is_some());
    // Parameter count: the base model without the q, o biases of its 2 layers and the shared
    // K/V's biases (all 32 wide in the base), its q, o, k, v weights 48 wide instead of 32,
    // and position tables (span 8) 24 wide instead of 16.
    let base_model = base.init(&device);
    let d = 32;
    let weights = |inner: usize| 2 * (2 * d * inner) + 2 * (d * inner); // q,o per layer; k,v
    let expected = base_model.num_params() - weights(32) - (2 * (32 + 32) + 2 * 32)
        + weights(48)
        + 2 * 8 * (24 - 16);
    assert_eq!(model.num_params(), expected);
    // `tie_positions`: one table in the core, none in the layers (one [8, 24] table fewer).
    let tied = FeedbackConfig {
        tie_positions: true,
        ..official
    };
    tied.validate().unwrap();
    let tied = tied.init(&device);
    assert!(tied.core.layers.iter().all(|l| l.positions.is_none()));
    assert_eq!(tied.core.positions_of(1).table.dims(), [8, 24]);
    assert_eq!(tied.num_params(), model.num_params() - 8 * 24);
}

/// `carry = "official"` over two carried segments equals a reference that runs the raw model
/// and normalises, by hand, exactly the memories written in segment 1 with layer 0's attention
/// LayerNorm before segment 2; and it differs from `carry = "raw"`.
#[test]
fn official_carry_normalises_the_memories_written_in_the_segment() {
    let device = mnemo_backend::test_device().inner();
    for (t_len, span) in [(3, 5), (7, 4)] {
        let config = FeedbackConfig {
            carry: Carry::Official,
            span,
            ..FeedbackConfig::tiny(VOCAB)
        };
        config.validate().unwrap();
        let mut official = mnemo_core::seeded::reinit(config.init(&device), 3);
        // A trained-looking norm: with γ = 1, β = 0 (its init) a second LayerNorm is nearly
        // the identity and the two carries would hardly differ.
        let Norm::Layer(ln) = &mut official.core.layers[0].attn_residual.norm else {
            panic!("LayerNorm");
        };
        ln.gamma = Param::from_tensor(mnemo_core::seeded::normal([32], 5, &device).add_scalar(1.0));
        ln.beta = Some(Param::from_tensor(
            mnemo_core::seeded::normal([32], 6, &device).mul_scalar(0.5),
        ));
        let raw = FeedbackLm {
            carry: Carry::Raw,
            ..official.clone()
        };
        let b = 2;
        // Segment 0 from random carried memories (not zeros: the kept part must stay raw).
        let start = mnemo_core::seeded::normal([b, span, 32], 9, &device);
        let state = FeedbackState {
            memories: start,
            projected: None,
        };
        let x0 = common::tokens(b, t_len, VOCAB, 1, &device);
        let x1 = common::tokens(b, t_len, VOCAB, 2, &device);
        let (_, raw_next) = raw.forward_segment(x0.clone(), state.clone());
        let (_, official_next) = official.forward_segment(x0, state);
        // Reference: LayerNorm of layer 0's attention, written out, on the last min(T, S)
        // memories only.
        let written = t_len.min(span);
        let m = raw_next.memories.clone();
        let Norm::Layer(ln) = &official.core.layers[0].attn_residual.norm else {
            panic!("LayerNorm");
        };
        let new = m.clone().narrow(1, span - written, written);
        let centred = new.clone() - new.mean_dim(2);
        let var = centred.clone().square().mean_dim(2);
        let normed = centred / (var + 1e-5).sqrt() * ln.gamma.val().unsqueeze::<3>()
            + ln.beta.as_ref().unwrap().val().unsqueeze::<3>();
        let expected = match span - written {
            0 => normed,
            kept => Tensor::cat(vec![m.narrow(1, 0, kept), normed], 1),
        };
        let gap = common::max_abs_diff(official_next.memories.clone(), expected.clone());
        assert!(
            gap < 1e-5,
            "T={t_len}, S={span}: carried state differs by {gap}"
        );
        // Segment 1 from the hand-made state, through the raw model.
        let (want, _) = raw.forward_segment(
            x1.clone(),
            FeedbackState {
                memories: expected,
                projected: None,
            },
        );
        let (got, _) = official.forward_segment(x1.clone(), official_next);
        let gap = common::max_abs_diff(got.clone(), want);
        assert!(gap < 1e-5, "T={t_len}, S={span}: logits differ by {gap}");
        let (raw_logits, _) = raw.forward_segment(x1, raw_next);
        let gap = common::max_abs_diff(got, raw_logits);
        assert!(
            gap > 1e-3,
            "T={t_len}, S={span}: official = raw carry ({gap})"
        );
    }
}
