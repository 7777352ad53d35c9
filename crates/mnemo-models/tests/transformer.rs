//! The causal Transformer baseline: cached step-by-step decoding equals the parallel pass, the
//! outputs are causal, and the span limits the context (pre-norm LayerNorm, post-norm RMSNorm,
//! ResiDual, profiled Admin, and a short span).
mod common;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{assert_causal, decode_steps, max_abs_diff, tokens, with_future_changed};
use mnemo_core::{NormKind, NormPlacement};
use mnemo_models::attention_config::LinearUpdate;
use mnemo_models::{AttentionConfig, ResidualInit, TransformerConfig, TransformerLm};

const VOCAB: usize = 11;

fn configs() -> Vec<(&'static str, TransformerConfig)> {
    let base = TransformerConfig::tiny(VOCAB);
    let post = TransformerConfig {
        placement: NormPlacement::Post,
        norm: NormKind::Rms,
        ..base.clone()
    };
    let resi_dual = TransformerConfig {
        placement: NormPlacement::ResiDual,
        ..base.clone()
    };
    let resi_dual_all_attention = TransformerConfig {
        placement: NormPlacement::ResiDual,
        norm: NormKind::Rms,
        persistent_memory: 6,
        feed_forward: false,
        ..base.clone()
    };
    let admin = TransformerConfig {
        placement: NormPlacement::Post,
        init: ResidualInit::Admin,
        ..base.clone()
    };
    let short = TransformerConfig {
        span: 3,
        ..base.clone()
    };
    let persistent = TransformerConfig {
        persistent_memory: 4,
        span: 3,
        ..base.clone()
    };
    let all_attention = TransformerConfig {
        persistent_memory: 6,
        feed_forward: false,
        ..base.clone()
    };
    let with = |attention| TransformerConfig {
        attention,
        ..base.clone()
    };
    let linear = with(AttentionConfig::Linear {
        update: LinearUpdate::Sum,
        chunk: 4,
        carry: false,
    });
    let delta = with(AttentionConfig::Linear {
        update: LinearUpdate::Delta,
        chunk: 4,
        carry: false,
    });
    let performer = with(AttentionConfig::Performer {
        features: 16,
        chunk: 3,
        seed: 2,
        redraw_every: 0,
        carry: false,
    });
    let sparse = TransformerConfig {
        span: 4,
        ..with(AttentionConfig::Sparse {
            block: 2,
            window: 1,
            global: 1,
            random: 1,
            seed: 3,
        })
    };
    vec![
        ("linear", linear),
        ("linear, delta rule", delta),
        ("performer", performer),
        ("sparse", sparse),
        ("pre-norm layer", base),
        ("post-norm rms", post),
        ("resi-dual", resi_dual),
        ("resi-dual rms, all-attention", resi_dual_all_attention),
        ("admin, profiled", admin),
        ("span 3", short),
        ("persistent memory", persistent),
        ("all-attention", all_attention),
    ]
}

/// Impossible combinations of the attention options are refused, naming the field.
#[test]
fn attention_options_are_checked() {
    let base = TransformerConfig::tiny(VOCAB);
    let cases = [
        (
            TransformerConfig {
                feed_forward: false,
                ..base.clone()
            },
            "model.feed_forward",
        ),
        (
            TransformerConfig {
                attention: AttentionConfig::Fourier,
                ..base.clone()
            },
            "model.attention.kind",
        ),
        (
            TransformerConfig {
                attention: AttentionConfig::Sparse {
                    block: 0,
                    window: 1,
                    global: 0,
                    random: 0,
                    seed: 0,
                },
                ..base.clone()
            },
            "model.attention.block",
        ),
        (
            TransformerConfig {
                attention: AttentionConfig::Performer {
                    features: 0,
                    chunk: 8,
                    seed: 0,
                    redraw_every: 0,
                    carry: false,
                },
                ..base.clone()
            },
            "model.attention.features",
        ),
        (
            TransformerConfig {
                attention: AttentionConfig::Linear {
                    update: LinearUpdate::Delta,
                    chunk: 8,
                    carry: false,
                },
                persistent_memory: 2,
                ..base.clone()
            },
            "model.persistent_memory",
        ),
        (
            TransformerConfig {
                attention: AttentionConfig::Performer {
                    features: 8,
                    chunk: 8,
                    seed: 0,
                    redraw_every: 10,
                    carry: true,
                },
                ..base.clone()
            },
            "model.attention.carry",
        ),
    ];
    for (config, field) in cases {
        let message = config.validate().expect_err(field).to_string();
        assert!(message.starts_with(field), "{message}");
    }
    // The all-attention layer has no feed-forward parameters; persistent slots add 2·H·N·Dh
    // per layer.
    let device = mnemo_backend::test_device().inner();
    let count = |c: TransformerConfig| c.init(&device).num_params();
    let with = TransformerConfig {
        persistent_memory: 5,
        ..base.clone()
    };
    let all = TransformerConfig {
        feed_forward: false,
        ..with.clone()
    };
    let (d, layers) = (base.d_model, base.n_layers);
    assert_eq!(
        count(with.clone()) - count(base.clone()),
        layers * 2 * 5 * d
    );
    let ff = 2 * d * base.d_ff + base.d_ff + d + 2 * d; // two linears with biases, the norm
    assert_eq!(count(with) - count(all), layers * ff);
}

/// Runs `check(name, model, x, device)` for a model of each config, `x` being `[2, t]` tokens
/// drawn from `seed`; Admin models are profiled on other tokens first (ω ≠ 1).
fn check_each(t: usize, seed: u64, check: impl Fn(&str, TransformerLm, Tensor<2, Int>, &Device)) {
    let device = mnemo_backend::test_device().inner();
    for (name, config) in configs() {
        config.validate().expect(name);
        let mut model = config.init(&device);
        model.admin_profile(tokens(2, 8, VOCAB, seed + 100, &device));
        check(name, model, tokens(2, t, VOCAB, seed, &device), &device);
    }
}

/// Cached step-by-step decoding equals the parallel pass (pre/post norm, short span).
#[test]
fn cached_steps_equal_parallel_pass() {
    check_each(9, 3, |name, model, x, _| {
        let (steps, _) = decode_steps(&x, model.init_state(), |token, state| {
            model.forward_step(token, state)
        });
        let diff = max_abs_diff(model.forward(x), steps);
        assert!(diff < 1e-4, "{name}: max |Δ| = {diff}");
    });
}

/// Changing future tokens never changes past outputs.
#[test]
fn causal() {
    check_each(8, 5, |name, model, x, device| {
        let y = with_future_changed(&x, 5, VOCAB, 9, device);
        assert_causal(name, model.forward(x), model.forward(y), 5);
    });
}

/// The span limit is real: outputs depend on a token S positions back only if S allows it.
#[test]
fn span_limits_the_context() {
    let device = mnemo_backend::test_device().inner();
    let mut config = TransformerConfig::tiny(VOCAB);
    config.span = 3;
    config.n_layers = 1;
    let model = config.init(&device);
    let x = tokens(1, 8, VOCAB, 1, &device);
    let first = (x.clone().slice([0..1, 0..1]).into_scalar::<i64>() + 1) % VOCAB as i64;
    let y = x.clone().slice_assign(
        [0..1, 0..1],
        Tensor::<2, Int>::from_data(TensorData::new(vec![first], [1, 1]), &device),
    );
    let (a, b) = (model.forward(x), model.forward(y));
    // One layer with span 3: position 3 and later cannot see position 0.
    let far = max_abs_diff(a.clone().slice([0..1, 3..8]), b.clone().slice([0..1, 3..8]));
    let near = max_abs_diff(a.slice([0..1, 2..3]), b.slice([0..1, 2..3]));
    assert!(far < 1e-6, "position beyond the span leaked: {far}");
    assert!(near > 1e-5, "position within the span had no effect");
}
