//! The manual Transformer backward against burn's autodiff: logits and every parameter's
//! gradient, with and without dropout.
//!
//! One test in its own binary: the backend RNG that draws dropout masks is process-wide, and
//! the tests of one binary run on parallel threads, so another test's draws would interleave
//! with the masks both paths must draw alike.
mod common;

use burn::module::Module;
use burn::optim::GradientsParams;
use common::grad_check::{Checker, Reference};
use common::tokens;
use mnemo_core::{NormKind, NormPlacement};
use mnemo_models::TransformerConfig;

const VOCAB: usize = 11;

/// Configurations the manual backward covers, with their segment lengths.
fn covered() -> Vec<(&'static str, TransformerConfig, usize)> {
    let base = TransformerConfig {
        span: 5,
        n_heads: 4,
        n_layers: 3,
        ..TransformerConfig::tiny(VOCAB)
    };
    vec![
        ("span > T", base.clone(), 4),
        ("span < T", base.clone(), 9),
        (
            "span 1",
            TransformerConfig {
                span: 1,
                ..base.clone()
            },
            3,
        ),
        (
            "rms norm, span < T",
            TransformerConfig {
                norm: NormKind::Rms,
                ..base.clone()
            },
            7,
        ),
        (
            "dropout, span < T",
            TransformerConfig {
                dropout: 0.3,
                ..base.clone()
            },
            8,
        ),
        // The attention goes in tiles of 64 queries: windows crossing a tile's start.
        ("tiles, span < T", base.clone(), 140),
        (
            "tiles, span > one tile",
            TransformerConfig {
                span: 90,
                ..base.clone()
            },
            150,
        ),
        (
            "dropout, rms norm, span > T",
            TransformerConfig {
                dropout: 0.2,
                norm: NormKind::Rms,
                span: 12,
                ..base
            },
            6,
        ),
    ]
}

/// Manual logits and every parameter's gradient equal autodiff's (the same dropout masks from
/// the same seed; with dropout another seed gives other logits, so the masks act), and the
/// models it does not cover say so.
#[test]
fn manual_backward_equals_autodiff_for_every_parameter() {
    let device = mnemo_backend::test_device();
    for (name, config, t_len) in covered() {
        device.seed(11);
        let model = config.init(&device).materialize();
        assert!(model.supports_manual_backward(), "{name}");
        // Three sequences: the manual backward runs them as halves of 1 and 2 on two threads.
        let b = 3;
        // The first forward of a freshly built model draws from the backend RNG beyond its
        // dropout masks (tests/feedback_backward_dropout.rs), so one unseeded forward first.
        let _ = model.forward(tokens(b, t_len, VOCAB, 99, &device));
        for seg in 0..2 {
            let name = format!("{name}, batch {seg}");
            let dropout = config.dropout > 0.0;
            let r = Reference::of(&name, (b, t_len, VOCAB), seg, dropout, &device, |x| {
                (model.forward(x), ())
            });
            device.seed(r.masks_seed);
            let manual = model.forward_backward(r.x.clone(), r.loss_grad());
            r.assert_logits(&name, manual.logits.clone());
            let mut c = Checker::new(&name, &r.auto, &manual.grads);
            let final_norm = model.final_norm.as_ref().expect("pre-norm");
            c.lm_ends(&model.embedding.weight, &model.head, final_norm);
            for (l, layer) in model.layers.iter().enumerate() {
                let attn = layer.attn.as_ref().expect("softmax");
                let ff = layer.ff.as_ref().expect("feed-forward");
                c.norm(&format!("layer {l} attn_norm"), &layer.attn_residual.norm);
                for (what, linear) in [
                    ("query", &attn.query),
                    ("key", &attn.key),
                    ("value", &attn.value),
                    ("output", &attn.output),
                ] {
                    c.linear(&format!("layer {l} {what}"), linear);
                }
                c.check(&format!("layer {l} positions"), &attn.positions().table);
                let ff_norm = &layer.ff_residual.as_ref().expect("feed-forward").norm;
                c.norm(&format!("layer {l} ff_norm"), ff_norm);
                c.linear(&format!("layer {l} ff.up"), &ff.up);
                c.linear(&format!("layer {l} ff.down"), &ff.down);
            }
            // Every parameter autodiff has a gradient for was compared, and no other one exists.
            let checked = c.checked;
            let with_grads = GradientsParams::from_grads(r.auto, &model).len();
            assert_eq!(checked, with_grads, "{name}: parameters compared");
            assert_eq!(
                manual.grads.len(),
                with_grads,
                "{name}: manual grads registered"
            );
        }
    }
    let base = TransformerConfig::tiny(VOCAB);
    for (name, config) in [
        (
            "post-norm",
            TransformerConfig {
                placement: NormPlacement::Post,
                ..base.clone()
            },
        ),
        (
            "persistent memory",
            TransformerConfig {
                persistent_memory: 2,
                ..base.clone()
            },
        ),
        (
            "ResiDual",
            TransformerConfig {
                placement: NormPlacement::ResiDual,
                ..base
            },
        ),
    ] {
        assert!(!config.init(&device).supports_manual_backward(), "{name}");
    }
}
