//! What the manual Feedback backward is checked with: the model configurations it must cover
//! and the comparison of its logits, next state and every parameter's gradient against burn's
//! autodiff (used by tests/feedback_backward.rs and tests/feedback_backward_dropout.rs).
use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor};
use mnemo_core::{Activation, NormKind};
use mnemo_models::feedback::{Carry, MemorySource};
use mnemo_models::span_config::AdaptiveSpanSettings;
use mnemo_models::{FeedbackConfig, FeedbackCore, FeedbackLm, FeedbackState, StepProducts};

use super::grad_check::{Checker, Reference};
use super::{max_abs_diff, tokens};

pub const VOCAB: usize = 11;

pub fn configs() -> Vec<(&'static str, FeedbackConfig, usize)> {
    let shared = FeedbackConfig {
        span: 5,
        n_heads: 4,
        ..FeedbackConfig::tiny(VOCAB)
    };
    vec![
        ("shared kv, T < S", shared.clone(), 4),
        (
            "shared kv, T > S",
            FeedbackConfig {
                span: 3,
                ..shared.clone()
            },
            7,
        ),
        // T = 19: host windows add their gradients every 8 steps, with 3 left at the end.
        (
            "shared kv, T = 19",
            FeedbackConfig {
                span: 5,
                ..shared.clone()
            },
            19,
        ),
        (
            "per-layer kv",
            FeedbackConfig {
                share_kv: false,
                n_layers: 3,
                ..shared.clone()
            },
            4,
        ),
        (
            "rms norm",
            FeedbackConfig {
                norm: NormKind::Rms,
                ..shared.clone()
            },
            6,
        ),
        (
            "top-layer memory",
            FeedbackConfig {
                memory: MemorySource::Top,
                span: 3,
                ..shared.clone()
            },
            7,
        ),
        // The official code's choices (issue 18): ReLU, no attention biases, Dh ≠ D/H.
        ("official options, shared kv", official(shared.clone()), 6),
        (
            "official options, per-layer kv",
            FeedbackConfig {
                share_kv: false,
                n_layers: 3,
                ..official(shared.clone())
            },
            4,
        ),
        // Each layer's memory read through its own attention norm (gradients summed).
        (
            "official options, tied norms, per-layer kv",
            FeedbackConfig {
                share_kv: false,
                n_layers: 3,
                tie_norms: true,
                ..official(shared.clone())
            },
            5,
        ),
        // The carried state normalised as the official code stores it, T < S and T > S.
        (
            "official carry, T < S",
            FeedbackConfig {
                carry: Carry::Official,
                ..official(shared.clone())
            },
            3,
        ),
        (
            "official carry, T > S",
            FeedbackConfig {
                carry: Carry::Official,
                span: 3,
                ..official(shared.clone())
            },
            7,
        ),
        // Adaptive spans (issue 19; ratios set by `with_spans`): trimmed windows of different
        // widths over one shared window, one span per layer over per-layer windows, untrimmed.
        (
            "adaptive span, shared kv",
            FeedbackConfig {
                span: 6,
                n_layers: 3,
                adaptive_span: Some(span_settings(true, true)),
                ..shared.clone()
            },
            7,
        ),
        (
            "adaptive span per layer, per-layer kv",
            FeedbackConfig {
                span: 6,
                n_layers: 3,
                share_kv: false,
                adaptive_span: Some(span_settings(false, true)),
                ..official(shared.clone())
            },
            5,
        ),
        (
            "adaptive span, untrimmed",
            FeedbackConfig {
                span: 6,
                adaptive_span: Some(span_settings(true, false)),
                ..shared
            },
            4,
        ),
    ]
}

/// Ramp 2, trim step 1 (tiny models trim), one span per head or per layer, trimming or not.
fn span_settings(per_head: bool, trim: bool) -> AdaptiveSpanSettings {
    AdaptiveSpanSettings {
        ramp: 2,
        trim_step: 1,
        per_head,
        trim,
        ..Default::default()
    }
}

/// The model with layer l's span ratios `0.05, 0.1, … + 0.15·l` (S = 6, R = 2: layers 0 and 1
/// read 4 and 5 slots when trimming); no ratio puts a slot on a kink of the mask.
pub fn with_spans(mut model: FeedbackLm) -> FeedbackLm {
    for (l, layer) in model.core.layers.iter_mut().enumerate() {
        if let Some(span) = &mut layer.adaptive_span {
            let device = span.ratio.val().device();
            let n = span.ratio.dims()[0];
            let z: Vec<f32> = (0..n)
                .map(|h| 0.05 * (h + 1) as f32 + 0.15 * l as f32)
                .collect();
            let z = Tensor::<1>::from_data(burn::tensor::TensorData::new(z, [n]), &device);
            span.ratio = Param::from_tensor(z);
        }
    }
    model
}

/// `config` with the official code's activation, biases, one position table and a head size
/// other than D/H (D = 32, H = 4: Dh = 12 instead of 8).
fn official(config: FeedbackConfig) -> FeedbackConfig {
    FeedbackConfig {
        activation: Activation::Relu,
        bias: false,
        d_head: 12,
        tie_positions: true,
        ..config
    }
}

impl Checker<'_> {
    /// Every parameter of a Feedback core.
    fn core(&mut self, core: &FeedbackCore) {
        match core.memory {
            MemorySource::Mix => self.check("mix", &core.mix),
            // Memories are the top layer's: the mixing logits are unused, so neither backward
            // gives them a gradient.
            MemorySource::Top => assert!(
                core.mix.val().grad(self.auto).is_none()
                    && self.manual.get::<1>(core.mix.id).is_none(),
                "{}: no gradient for unused mixing logits",
                self.name
            ),
        }
        for (l, layer) in core.layers.iter().enumerate() {
            self.norm(&format!("layer {l} attn_norm"), &layer.attn_residual.norm);
            self.linear(&format!("layer {l} query"), &layer.query);
            self.linear(&format!("layer {l} output"), &layer.output);
            if let Some(positions) = &layer.positions {
                self.check(&format!("layer {l} positions"), &positions.table);
            }
            if let Some(span) = &layer.adaptive_span {
                self.check(&format!("layer {l} span ratios"), &span.ratio);
            }
            self.norm(&format!("layer {l} ff_norm"), &layer.ff_residual.norm);
            self.linear(&format!("layer {l} ff.up"), &layer.ff.up);
            self.linear(&format!("layer {l} ff.down"), &layer.ff.down);
        }
        if let Some(positions) = &core.positions {
            // Shared by every layer: the manual backward sums their contributions.
            self.check("shared positions", &positions.table);
        }
        for (p, proj) in core.memory_projections.iter().enumerate() {
            if let Some(norm) = &proj.norm {
                self.norm(&format!("projection {p} norm"), norm);
            }
            self.linear(&format!("projection {p} key"), &proj.key);
            self.linear(&format!("projection {p} value"), &proj.value);
        }
    }
}

/// Logits, next memories and every parameter's gradient of `forward_backward_segment` (both
/// step-product paths) against autodiff of `forward_segment`, over three carried segments. The
/// backend RNG is seeded again before each forward, so dropout masks are drawn alike; with
/// dropout, another seed must give other logits (the masks act).
pub fn check_against_autodiff(cases: Vec<(&'static str, FeedbackConfig, usize)>) {
    let device = mnemo_backend::test_device();
    for (name, config, t_len) in cases {
        device.seed(11);
        let model = config.init(&device).materialize();
        // Non-zero mixing logits, so the mix is not uniform.
        let mix = model.core.mix.clone().map(|w| {
            w.add(Tensor::random(
                [config.n_layers + 1],
                Distribution::Normal(0.0, 1.0),
                &device,
            ))
            .detach()
            .require_grad()
        });
        let model = with_spans(FeedbackLm {
            core: FeedbackCore { mix, ..model.core },
            ..model
        });
        assert!(model.supports_manual_backward(), "{name}");
        let b = 2;
        let mut state = model.init_state(b, &device);
        // The first forward of a freshly built model draws from the backend RNG beyond its
        // dropout masks (measured: the RNG's state after it differs from after a second one),
        // so one unseeded forward comes first.
        let _ = model.forward_segment(tokens(b, t_len, VOCAB, 99, &device), state.clone());
        for seg in 0..3 {
            let name = format!("{name}, segment {seg}");
            let dropout = config.dropout > 0.0;
            let r = Reference::of(&name, (b, t_len, VOCAB), seg, dropout, &device, |x| {
                model.forward_segment(x, state.clone())
            });
            let mut counts = Vec::new();
            // Both per-step product paths (burn's matmul, host kernels).
            for products in [StepProducts::Backend, StepProducts::Host] {
                let name = format!("{name}, {products:?}");
                let model = model.clone().with_step_products(products);
                device.seed(r.masks_seed);
                let manual =
                    model.forward_backward_segment(r.x.clone(), state.clone(), r.loss_grad());
                r.assert_logits(&name, manual.logits.clone());
                let diff = max_abs_diff(
                    manual.state.memories.clone().inner(),
                    r.rest.memories.clone().inner(),
                );
                assert!(diff < 1e-5, "{name}: next memories differ by {diff}");
                let mut c = Checker::new(&name, &r.auto, &manual.grads);
                let final_norm = model.final_norm.as_ref().expect("pre-norm");
                c.lm_ends(&model.embedding.weight, &model.head, final_norm);
                c.core(&model.core);
                // Every parameter autodiff has a gradient for was compared, and no other one exists.
                counts.push((name, c.checked, manual.grads.len()));
            }
            let with_grads = GradientsParams::from_grads(r.auto, &model).len();
            for (name, checked, registered) in counts {
                assert_eq!(
                    checked, with_grads,
                    "{name}: parameters compared vs parameters with grads"
                );
                assert_eq!(registered, with_grads, "{name}: manual grads registered");
            }
            // Carry the state (the same values either way) into the next segment.
            state = FeedbackState {
                memories: r.rest.memories,
                projected: None,
            };
        }
    }
}
