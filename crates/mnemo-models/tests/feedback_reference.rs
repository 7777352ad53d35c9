//! The Feedback Transformer's buffered, in-place implementation against a naive reference that
//! recomputes everything with concatenation (forward and gradients, over several segments with
//! carried state), plus causality, cached decoding, and a finite-difference check of the mixing
//! weights' gradient.
mod common;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use common::{
    assert_causal, decode_steps, final_norm, for_each_model, max_abs, max_abs_diff,
    naive_feedback_layer, perturbed, tokens, with_future_changed,
};
use mnemo_core::{NormPlacement, seeded};
use mnemo_models::feedback::FeedbackLayer;
use mnemo_models::{FeedbackConfig, FeedbackCore, FeedbackLm, FeedbackState, StepProducts};

const VOCAB: usize = 13;

/// The model of a config with weights drawn from `seed`, for [`for_each_model`].
fn seeded_with(seed: u64) -> impl Fn(&FeedbackConfig, &Device) -> FeedbackLm {
    move |config, device| seeded::reinit(config.init(device), seed)
}

fn configs() -> Vec<(&'static str, FeedbackConfig)> {
    let shared = FeedbackConfig {
        span: 5,
        ..FeedbackConfig::tiny(VOCAB)
    };
    let per_layer = FeedbackConfig {
        share_kv: false,
        n_layers: 3,
        ..shared.clone()
    };
    let post = FeedbackConfig {
        placement: NormPlacement::Post,
        norm: mnemo_core::NormKind::Rms,
        ..shared.clone()
    };
    // The official code's choices (issue 18): ReLU, no attention biases, Dh = 12 ≠ D/H = 16,
    // one position table.
    let official = |config: FeedbackConfig| FeedbackConfig {
        activation: mnemo_core::Activation::Relu,
        bias: false,
        d_head: 12,
        tie_positions: true,
        ..config
    };
    vec![
        ("shared kv", shared.clone()),
        ("per-layer kv", per_layer.clone()),
        ("post-norm rms", post.clone()),
        ("official options, shared kv", official(shared)),
        (
            "official options, per-layer kv",
            official(per_layer.clone()),
        ),
        ("official options, post-norm", official(post.clone())),
        (
            "official options, tied norms, per-layer kv",
            FeedbackConfig {
                tie_norms: true,
                ..official(per_layer)
            },
        ),
        (
            "official options, tied norms, post-norm",
            FeedbackConfig {
                tie_norms: true,
                ..official(post)
            },
        ),
    ]
}

/// One layer over the last S memories: window slot j is at distance S - j, i.e. table row
/// S - j - 1.
fn naive_layer(
    layer: &FeedbackLayer,
    table: Tensor<2>,
    h: Tensor<3>,
    memories: Tensor<3>,
    proj: &mnemo_models::feedback::MemoryProjection,
) -> Tensor<3> {
    let s = memories.dims()[1];
    let rows: Vec<Tensor<2>> = (0..s)
        .map(|j| table.clone().narrow(0, s - j - 1, 1))
        .collect();
    naive_feedback_layer(layer, proj, h, memories, Tensor::cat(rows, 0))
}

/// The reference: keeps a list of memories and, at every step, concatenates the last S and
/// re-projects them for every layer.
fn naive_segment(
    model: &FeedbackLm,
    x: Tensor<2, Int>,
    memories: Tensor<3>,
) -> (Tensor<3>, Tensor<3>) {
    let [_b, t_len] = x.dims();
    let s = model.span();
    let n_layers = model.core.layers.len();
    let mut mems: Vec<Tensor<3>> = (0..s).map(|j| memories.clone().narrow(1, j, 1)).collect();
    let w = softmax(model.core.mix.val(), 0);
    let emb = model.embedding.forward(x);
    let mut tops = Vec::new();
    for t in 0..t_len {
        let window = Tensor::cat(mems[mems.len() - s..].to_vec(), 1);
        let mut h = emb.clone().narrow(1, t, 1);
        let mut m = h.clone() * w.clone().narrow(0, 0, 1).reshape([1, 1, 1]);
        for (l, layer) in model.core.layers.iter().enumerate() {
            let proj = &model.core.memory_projections[if model.core.memory_projections.len() == 1 {
                0
            } else {
                l
            }];
            let table = model.core.positions_of(l).table.val();
            h = naive_layer(layer, table, h, window.clone(), proj);
            m = m + h.clone() * w.clone().narrow(0, l + 1, 1).reshape([1, 1, 1]);
        }
        assert_eq!(n_layers + 1, w.dims()[0]);
        tops.push(h);
        mems.push(m);
    }
    let h = final_norm(&model.final_norm, Tensor::cat(tops, 1));
    let next = Tensor::cat(mems[mems.len() - s..].to_vec(), 1).detach();
    (model.head.forward(h), next)
}

/// A scalar loss with fixed random weights over all logits (touches every output).
fn probe_loss(logits: Tensor<3>, probe: &Tensor<3>) -> Tensor<1> {
    (logits * probe.clone()).sum()
}

fn run_segments(
    model: &FeedbackLm,
    xs: &[Tensor<2, Int>],
    probe: &Tensor<3>,
    device: &Device,
    naive: bool,
) -> (Vec<Tensor<3>>, Tensor<1>) {
    let b = xs[0].dims()[0];
    let mut memories = model.init_state(b, device).memories;
    let mut logits_all = Vec::new();
    let mut loss = Tensor::<1>::zeros([1], device);
    for x in xs {
        let (logits, next) = if naive {
            naive_segment(model, x.clone(), memories)
        } else {
            let (l, s) = model.forward_segment(
                x.clone(),
                FeedbackState {
                    memories,
                    projected: None,
                },
            );
            (l, s.memories)
        };
        memories = next;
        loss = loss + probe_loss(logits.clone(), probe);
        logits_all.push(logits);
    }
    (logits_all, loss)
}

#[test]
fn buffered_equals_naive_reference_forward_and_gradients() {
    let device = mnemo_backend::test_device();
    for (name, config) in configs() {
        let model = seeded::reinit(config.init(&device), 7);
        // Three segments of 4 with span 5: windows straddle segment boundaries.
        let xs: Vec<_> = (0..3).map(|i| tokens(2, 4, VOCAB, i, &device)).collect();
        let probe = seeded::normal([2, 4, VOCAB], 8, &device);
        // Non-zero mixing logits, so the mix is not uniform.
        let mix = model.core.mix.clone().map(|w| {
            w.add(seeded::normal([config.n_layers + 1], 9, &device))
                .detach()
                .require_grad()
        });
        let model = FeedbackLm {
            core: FeedbackCore { mix, ..model.core },
            ..model
        };
        let (fast, fast_loss) = run_segments(&model, &xs, &probe, &device, false);
        let (slow, slow_loss) = run_segments(&model, &xs, &probe, &device, true);
        for (i, (a, b)) in fast.into_iter().zip(slow).enumerate() {
            let diff = max_abs_diff(a.clone(), b);
            assert!(
                diff < 1e-5 * (1.0 + max_abs(a)),
                "{name}: segment {i} logits differ by {diff}"
            );
        }
        let g_fast = fast_loss.backward();
        let g_slow = slow_loss.backward();
        let mut checked = 0;
        let mut compare = |label: &str, p: Tensor<2>| {
            let a = p.grad(&g_fast).expect("fast grad");
            let b = p.grad(&g_slow).expect("slow grad");
            let scale = 1.0 + max_abs(b.clone());
            let diff = max_abs_diff(a, b);
            assert!(
                diff < 1e-4 * scale,
                "{name}: grad of {label} differs by {diff} (scale {scale})"
            );
            checked += 1;
        };
        compare("embedding", model.embedding.weight.val());
        compare("head", model.head.weight.val());
        for (l, layer) in model.core.layers.iter().enumerate() {
            compare(&format!("layer {l} query"), layer.query.weight.val());
            compare(&format!("layer {l} output"), layer.output.weight.val());
            let table = model.core.positions_of(l).table.val();
            compare(&format!("layer {l} positions"), table);
            compare(&format!("layer {l} ff.up"), layer.ff.up.weight.val());
        }
        for (i, p) in model.core.memory_projections.iter().enumerate() {
            compare(&format!("memory projection {i} key"), p.key.weight.val());
            compare(
                &format!("memory projection {i} value"),
                p.value.weight.val(),
            );
        }
        let mix = model.core.mix.val();
        let (a, b) = (mix.grad(&g_fast).unwrap(), mix.grad(&g_slow).unwrap());
        let diff = max_abs_diff(a.clone(), b);
        assert!(
            diff < 1e-4 * (1.0 + max_abs(a.clone())),
            "{name}: mix grad differs by {diff}"
        );
        assert!(max_abs(a) > 0.0, "{name}: mix gradient is zero");
        assert!(checked >= 6);
    }
}

/// Gradients do not cross segments (the carried memories are detached), so the finite
/// difference is taken over one segment that starts from a fixed, non-zero carried state.
#[test]
fn mixing_gradient_matches_finite_differences() {
    let device = mnemo_backend::test_device();
    let config = FeedbackConfig {
        span: 4,
        ..FeedbackConfig::tiny(VOCAB)
    };
    let model = seeded::reinit(config.init(&device), 3);
    let plain = device.clone().inner();
    let base = model.valid();
    let warmup = tokens(2, 5, VOCAB, 10, &plain);
    let (_, carried) = base.forward_segment(warmup, base.init_state(2, &plain));
    let x = tokens(2, 5, VOCAB, 11, &device);
    let probe = seeded::normal([2, 5, VOCAB], 4, &device);
    let state = FeedbackState {
        memories: carried.memories.clone().to_device(&device),
        projected: None,
    };
    let (logits, _) = model.forward_segment(x.clone(), state);
    let grads = probe_loss(logits, &probe).backward();
    let analytic: Vec<f32> = model
        .core
        .mix
        .val()
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let eps = 1e-2f32;
    for i in 0..config.n_layers + 1 {
        let shifted = |delta: f32| {
            let mut e = vec![0.0f32; config.n_layers + 1];
            e[i] = delta;
            let bump = Tensor::<1>::from_floats(e.as_slice(), &plain);
            let mix = base.core.mix.clone().map(|w| w + bump);
            let m = FeedbackLm {
                core: FeedbackCore {
                    mix,
                    ..base.core.clone()
                },
                ..base.clone()
            };
            let (logits, _) = m.forward_segment(x.clone().to_device(&plain), carried.clone());
            probe_loss(logits, &probe.clone().to_device(&plain)).into_scalar::<f64>()
        };
        let numeric = ((shifted(eps) - shifted(-eps)) / (2.0 * eps as f64)) as f32;
        let tol = 1e-2 * (1.0 + analytic[i].abs());
        assert!(
            (numeric - analytic[i]).abs() < tol,
            "mix[{i}]: finite difference {numeric} vs autodiff {}",
            analytic[i]
        );
        assert!(analytic[i].abs() > 1e-4, "mix[{i}] gradient is zero");
    }
}

#[test]
fn causal_within_and_across_segments() {
    for_each_model(configs(), seeded_with(1), |name, model, device| {
        let x = tokens(2, 8, VOCAB, 1, device);
        let y = with_future_changed(&x, 5, VOCAB, 2, device);
        let (a, _) = model.forward_segment(x, model.init_state(2, device));
        let (b, _) = model.forward_segment(y, model.init_state(2, device));
        assert_causal(name, a, b, 5);
    });
}

#[test]
fn step_by_step_decoding_equals_segments() {
    for_each_model(configs(), seeded_with(2), |name, model, device| {
        let xs: Vec<_> = (0..2)
            .map(|i| tokens(2, 6, VOCAB, 20 + i, device))
            .collect();
        let mut seg_state = model.init_state(2, device);
        let mut step_state = model.init_state(2, device);
        for (i, x) in xs.iter().enumerate() {
            let (logits, next) = model.forward_segment(x.clone(), seg_state);
            seg_state = next;
            let (steps, next) = decode_steps(x, step_state, |token, state| {
                model.forward_step(token, state)
            });
            step_state = next;
            let diff = max_abs_diff(steps, logits);
            assert!(
                diff < 1e-4,
                "{name}: the steps of segment {i} differ by {diff}"
            );
        }
        let diff = max_abs_diff(seg_state.memories, step_state.memories);
        assert!(diff < 1e-4, "{name}: carried memories differ by {diff}");
    });
}

/// Decoding with host products gives the segments' logits: pre-norm models decode on host
/// rows with the final norm and the head computed inside the step (the language model's
/// readout), post-norm ones by the tensor step; norm gains and biases perturbed off their init
/// so that a misapplied final norm or head bias shows.
#[test]
fn host_decoding_with_the_head_in_the_step_equals_segments() {
    for_each_model(configs(), seeded_with(3), |name, model, device| {
        let model = perturbed(model, 0.3, 4).with_step_products(StepProducts::Host);
        let mut seg_state = model.init_state(2, device);
        let mut step_state = model.init_state(2, device);
        for i in 0..2 {
            let x = tokens(2, 6, VOCAB, 30 + i, device);
            let (logits, next) = model.forward_segment(x.clone(), seg_state);
            seg_state = next;
            let (steps, next) = decode_steps(&x, step_state, |token, state| {
                model.forward_step(token, state)
            });
            let on_rows = next.projected.as_ref().unwrap().steps_on_host_rows();
            let pre = model.final_norm.is_some();
            assert_eq!(on_rows, pre, "{name}: host rows for pre-norm models only");
            step_state = next;
            let diff = max_abs_diff(steps, logits);
            assert!(diff < 1e-4, "{name}: segment {i}'s steps differ by {diff}");
        }
    });
}

/// With one layer and zero carried memory, the first step attends to S zero memories, whose
/// keys/values are the projections of norm(0): a hand-computable case.
#[test]
fn first_step_attends_to_zero_memories() {
    let device = mnemo_backend::test_device().inner();
    let config = FeedbackConfig {
        n_layers: 1,
        span: 3,
        ..FeedbackConfig::tiny(VOCAB)
    };
    let model = seeded::reinit(config.init(&device), 5);
    let x = tokens(1, 1, VOCAB, 4, &device);
    let (logits, state) = model.forward_segment(x.clone(), model.init_state(1, &device));
    // All S memories are equal (zero), so attention is uniform and returns the single value
    // vector v0 = W_v norm(0) + b, whatever the query and positions are.
    let proj = &model.core.memory_projections[0];
    let zero = Tensor::<3>::zeros([1, 1, config.d_model], &device);
    let v0 = proj
        .value
        .forward(proj.norm.as_ref().unwrap().forward(zero)); // [1,1,D]
    let layer = &model.core.layers[0];
    let h0 = model.embedding.forward(x);
    let h1 = h0.clone() + layer.output.forward(v0);
    let h1 = h1.clone() + layer.ff.forward(layer.ff_residual.norm.forward(h1));
    let want = model
        .head
        .forward(model.final_norm.as_ref().unwrap().forward(h1.clone()));
    assert!(max_abs_diff(logits, want) < 1e-5);
    // The new memory is the uniform mix of embedding and layer output (w = 0 at init).
    let m = (h0 + h1) / 2.0;
    let last = state.memories.narrow(1, 2, 1);
    assert!(max_abs_diff(last, m) < 1e-5);
}
