//! The Transformer LM's two residual options, against references written here:
//!
//! - ResiDual (Xie et al. 2023, `placement = "resi_dual"`): `x ← LN(x + f(x))`,
//!   `d ← d + f(x)` per sublayer from `x = d = Emb`, logits `W_out (x + LN_final(d))`;
//! - Admin (Liu et al. 2020, `init = "admin"`): `LN(x ⊙ ω + f(x))`, ω = 1 until profiled, then
//!   the official code's running ratio `ω_i = r_{i-1}`, `r_i = √(Var[x ⊙ ω_i] + Var[f_i(x)])`,
//!   `r_0 = 1`; ω's gradient against finite differences;
//!
//! and every other model refusing both, naming the field. (Step == parallel and causality for
//! ResiDual and profiled Admin models are in `tests/transformer.rs`.)
mod common;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use common::{assert_differs, max_abs_diff, tokens};
use mnemo_core::host::{check_finite_differences, to_vec, variance};
use mnemo_core::seeded::{normal, reinit};
use mnemo_core::{NormKind, NormPlacement};
use mnemo_models::{
    DecoderKind, FeedbackConfig, ModelConfig, ResidualInit, Seq2SeqConfig, StackConfig,
    TransformerConfig, TransformerLm, TransformerXlConfig,
};

const VOCAB: usize = 11;

fn resi_dual(norm: NormKind) -> TransformerConfig {
    TransformerConfig {
        placement: NormPlacement::ResiDual,
        norm,
        ..TransformerConfig::tiny(VOCAB)
    }
}

fn admin() -> TransformerConfig {
    TransformerConfig {
        placement: NormPlacement::Post,
        init: ResidualInit::Admin,
        n_layers: 3,
        ..TransformerConfig::tiny(VOCAB)
    }
}

fn seeded(config: &TransformerConfig, seed: u64, device: &Device) -> TransformerLm {
    config.validate().unwrap();
    reinit(config.init(device), seed)
}

#[test]
fn resi_dual_equals_the_two_stream_equations() {
    let device = mnemo_backend::test_device().inner();
    for norm in [NormKind::Layer, NormKind::Rms] {
        let model = seeded(&resi_dual(norm), 7, &device);
        assert!(model.is_resi_dual());
        let x = tokens(2, 7, VOCAB, 4, &device);
        // The reference: both streams start at the embedding; every sublayer reads x.
        let emb = model.embedding.forward(x.clone());
        let (mut xs, mut ds) = (emb.clone(), emb);
        for layer in &model.layers {
            let f = layer.attn.as_ref().unwrap().forward(xs.clone());
            ds = ds + f.clone();
            xs = layer.attn_residual.norm.forward(xs + f);
            let f = layer.ff.as_ref().unwrap().forward(xs.clone());
            ds = ds + f.clone();
            xs = layer.ff_residual.as_ref().unwrap().norm.forward(xs + f);
        }
        let final_norm = model
            .final_norm
            .as_ref()
            .expect("ResiDual has a final norm");
        let want = model.head.forward(xs.clone() + final_norm.forward(ds));
        let got = model.forward(x);
        let gap = max_abs_diff(got.clone(), want);
        assert!(gap < 1e-5, "{norm:?}: max |Δ| = {gap}");
        // The dual stream matters: without it the logits are another function.
        let post_only = model.head.forward(xs);
        assert_differs(&format!("{norm:?}: the dual stream"), got, post_only, 1e-2);
    }
}

#[test]
fn unprofiled_admin_is_post_norm_exactly() {
    let device = mnemo_backend::test_device().inner();
    let mut model = seeded(&admin(), 3, &device);
    assert!(model.is_admin() && !model.is_resi_dual());
    // The same weights without ω: a plain post-norm Transformer.
    let mut post = model.clone();
    for layer in &mut post.layers {
        layer.attn_admin = None;
        layer.ff_admin = None;
    }
    let x = tokens(2, 6, VOCAB, 1, &device);
    assert_eq!(
        max_abs_diff(model.forward(x.clone()), post.forward(x.clone())),
        0.0
    );
    // ... and profiling changes it (so the equality above is not vacuous).
    model.admin_profile(tokens(3, 8, VOCAB, 2, &device));
    let moved = max_abs_diff(model.forward(x.clone()), post.forward(x));
    assert!(moved > 1e-3, "profiling left the model unchanged");
}

#[test]
fn profiling_sets_omega_to_the_running_ratio() {
    let device = mnemo_backend::test_device().inner();
    let mut model = seeded(&admin(), 5, &device);
    let batch = tokens(3, 8, VOCAB, 9, &device);
    // Reference, on an untouched copy: ω_i = r_{i-1}, r_i = √(Var[x ⊙ ω_i] + Var[f_i(x)]).
    let reference = model.clone();
    let mut ratio = 1.0f64;
    let mut want = Vec::new();
    let mut h = reference.embedding.forward(batch.clone());
    for layer in &reference.layers {
        type Block<'a> = (
            &'a mnemo_core::Residual,
            Box<dyn Fn(Tensor<3>) -> Tensor<3> + 'a>,
        );
        let blocks: [Block; 2] = [
            (
                &layer.attn_residual,
                Box::new(|x| layer.attn.as_ref().unwrap().forward(x)),
            ),
            (
                layer.ff_residual.as_ref().unwrap(),
                Box::new(|x| layer.ff.as_ref().unwrap().forward(x)),
            ),
        ];
        for (residual, f) in blocks {
            let omega = ratio as f32;
            want.push(omega);
            let fx = f(h.clone());
            let scaled: Vec<f32> = to_vec(h.clone()).iter().map(|v| v * omega).collect();
            ratio = (variance(&scaled) + variance(&to_vec(fx.clone()))).sqrt();
            h = residual.norm.forward(h.mul_scalar(omega) + fx);
        }
    }
    model.admin_profile(batch);
    let got: Vec<Vec<f32>> = model
        .layers
        .iter()
        .flat_map(|l| [&l.attn_admin, &l.ff_admin])
        .map(|a| to_vec(a.as_ref().unwrap().omega.val()))
        .collect();
    assert_eq!(got.len(), 6);
    for (i, (omega, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(omega.len(), 32);
        for v in omega {
            assert!((v - want).abs() <= 1e-5 * want, "ω_{i}: {v} vs {want}");
        }
    }
    assert_eq!(want[0], 1.0, "the first block keeps ω = r_0 = 1");
    assert!((want[1] - 1.0).abs() > 0.1, "profiling moved ω: {want:?}");
    // Past the first block x is a LayerNorm output (variance ≈ 1), so r_i² ≈ ω_i² + Var[f_i]:
    // the ratio only grows.
    assert!(
        want[1..].windows(2).all(|w| w[1] > w[0]),
        "the running ratio grows: {want:?}"
    );
}

#[test]
fn omega_gradient_matches_finite_differences() {
    let device = mnemo_backend::test_device();
    let mut model = seeded(&admin(), 11, &device);
    model.admin_profile(tokens(2, 8, VOCAB, 3, &device));
    let x = tokens(2, 5, VOCAB, 6, &device);
    let probe = normal([2, 5, VOCAB], 8, &device);
    let loss = |m: &TransformerLm| (m.forward(x.clone()) * probe.clone()).sum();
    let grads = loss(&model).backward();
    type Pick = fn(&mut TransformerLm) -> &mut Param<Tensor<1>>;
    let picks: [(&str, Pick); 3] = [
        ("layers.0.attn_admin", |m| {
            &mut m.layers[0].attn_admin.as_mut().unwrap().omega
        }),
        ("layers.1.ff_admin", |m| {
            &mut m.layers[1].ff_admin.as_mut().unwrap().omega
        }),
        ("layers.2.attn_admin", |m| {
            &mut m.layers[2].attn_admin.as_mut().unwrap().omega
        }),
    ];
    for (name, pick) in picks {
        let mut probe_model = model.clone();
        let param = pick(&mut probe_model).clone();
        let analytic = to_vec(param.grad(&grads).expect("ω has a gradient"));
        let loss_at = |values: Vec<f32>| {
            let mut moved = model.clone();
            *pick(&mut moved) =
                Param::from_tensor(Tensor::from_data(TensorData::new(values, [32]), &device));
            loss(&moved).into_scalar::<f32>()
        };
        let what = format!("{name}.omega");
        let base = to_vec(param.val());
        check_finite_differences(&what, &analytic, &base, &[0, 9, 31], loss_at).unwrap();
    }
}

/// A model table of `config` with `key = value` added, parsed back.
fn with_key(config: &ModelConfig, key: &str, value: &str) -> Result<ModelConfig, String> {
    let mut table = toml::Table::try_from(config).unwrap();
    table.insert(key.into(), value.into());
    table.try_into().map_err(|e: toml::de::Error| e.to_string())
}

#[test]
fn the_transformer_parses_both_options_and_checks_admin_needs_post_norm() {
    let base = ModelConfig::Transformer(TransformerConfig::tiny(VOCAB));
    let dual = with_key(&base, "placement", "resi_dual").unwrap();
    dual.validate().unwrap();
    let ModelConfig::Transformer(c) = &dual else {
        panic!("kind")
    };
    assert_eq!(c.placement, NormPlacement::ResiDual);
    assert_eq!(
        c.init,
        ResidualInit::Default,
        "init defaults to \"default\""
    );
    let post = with_key(&base, "placement", "post").unwrap();
    let admin = with_key(&post, "init", "admin").unwrap();
    admin.validate().unwrap();
    let back: ModelConfig = toml::from_str(&toml::to_string(&admin).unwrap()).unwrap();
    assert_eq!(back, admin);
    for refused in [
        with_key(&base, "init", "admin"),
        with_key(&dual, "init", "admin"),
    ] {
        let err = refused.unwrap().validate().unwrap_err();
        assert_eq!(err.field, "init", "{err}");
        assert!(err.to_string().contains("placement = \"post\""), "{err}");
    }
    assert!(with_key(&post, "init", "adamin").is_err());
    // ω adds 2·D per layer (attention and feed-forward blocks); ResiDual one final norm (2·D).
    let device = mnemo_backend::test_device().inner();
    let count = |c: &ModelConfig| match c {
        ModelConfig::Transformer(c) => c.init(&device).num_params(),
        _ => unreachable!(),
    };
    let (d, l) = (32, 2);
    assert_eq!(count(&admin) - count(&post), l * 2 * d);
    assert_eq!(count(&dual) - count(&post), 2 * d);
    assert_eq!(
        count(&dual),
        count(&base),
        "pre-norm has its final norm too"
    );
}

#[test]
fn every_other_model_refuses_both_options_naming_the_field() {
    let lms = [
        ModelConfig::Feedback(FeedbackConfig::tiny(VOCAB)),
        ModelConfig::TransformerXl(TransformerXlConfig::tiny(VOCAB, 4)),
    ];
    for config in &lms {
        let kind = config.kind();
        let dual = with_key(config, "placement", "resi_dual").expect(kind);
        let err = dual.validate().unwrap_err();
        assert_eq!(err.field, "placement", "{kind}: {err}");
        assert!(err.to_string().contains("resi_dual"), "{kind}: {err}");
        let err = with_key(config, "init", "admin").unwrap_err();
        assert!(err.contains("`init`"), "{kind}: {err}");
        config.validate().expect(kind);
    }
    for decoder in [DecoderKind::Transformer, DecoderKind::Feedback] {
        let base = Seq2SeqConfig::tiny(VOCAB, decoder);
        base.validate().unwrap();
        let dual = Seq2SeqConfig {
            placement: NormPlacement::ResiDual,
            ..base.clone()
        };
        let err = dual.validate().unwrap_err();
        assert_eq!(err.field, "placement", "{decoder:?}: {err}");
        let mut table = toml::Table::try_from(&base).unwrap();
        table.insert("init".into(), "admin".into());
        let err = table.try_into::<Seq2SeqConfig>().unwrap_err().to_string();
        assert!(err.contains("`init`"), "{decoder:?}: {err}");
    }
    // The stack checks every other model's validate runs (the RL policies' included); the
    // Transformer checks its sizes alone.
    let stack = StackConfig {
        d_model: 8,
        n_layers: 1,
        n_heads: 2,
        d_ff: 8,
        dropout: 0.0,
        norm: NormKind::Layer,
        placement: NormPlacement::ResiDual,
    };
    assert_eq!(stack.validate(5, 3).unwrap_err().field, "placement");
    stack.validate_sizes(5, 3).unwrap();
}
