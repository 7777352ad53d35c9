//! The traced forwards the analyses read (`TransformerLm::forward_traced`,
//! `FeedbackLm::forward_segment_traced`) against the models' own forwards and against
//! independent recomputations from the weights:
//! - the traced logits and carried memories equal the untraced ones;
//! - every feed-forward hidden unit equals `gelu(W1 x + b1)` computed on the host (erf-based
//!   gelu, plain loops) from the sublayer input of the model's own layers;
//! - every Feedback attention row is a distribution, and weighting the window's values by it
//!   gives back the layer's attention output (so it is the distribution the model used);
//! - the mixing weights reported are `softmax(w)` of the parameter.
use burn::tensor::{Int, Tensor, TensorData};
use mnemo_core::heads::merge_heads;
use mnemo_core::host::to_vec;
use mnemo_core::{NormKind, NormPlacement};
use mnemo_models::feedback::{FeedbackMemory, no_hook};
use mnemo_models::{FeedbackConfig, FeedbackLm, FeedbackState, TransformerConfig};

const VOCAB: usize = 11;

fn tokens(b: usize, t: usize, device: &burn::tensor::Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = (0..b * t).map(|i| ((i * 7 + 3) % VOCAB) as i64).collect();
    Tensor::from_data(TensorData::new(ids, [b, t]), device)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -y } else { y }
}

/// `gelu(x W + b)` on the host: x `[n, d]`, W `[d, f]` (burn's layout), b `[f]`.
fn host_units(x: &[f32], w: &[f32], b: &[f32], d: usize, f: usize) -> Vec<f32> {
    let n = x.len() / d;
    let mut out = vec![0.0f32; n * f];
    for p in 0..n {
        for i in 0..f {
            let mut z = f64::from(b[i]);
            for k in 0..d {
                z += f64::from(x[p * d + k]) * f64::from(w[k * f + i]);
            }
            out[p * f + i] = (0.5 * z * (1.0 + erf(z / std::f64::consts::SQRT_2))) as f32;
        }
    }
    out
}

fn up_units(ff: &mnemo_core::FeedForward, x: Tensor<3>) -> Vec<f32> {
    let [_, _, d] = x.dims();
    let f = ff.up.weight.dims()[1];
    let b = ff.up.bias.as_ref().map(|b| to_vec(b.val())).unwrap();
    host_units(&to_vec(x), &to_vec(ff.up.weight.val()), &b, d, f)
}

/// A Transformer whose linear-attention layers carry their fast weights: the traced segments,
/// the state threaded through, give the logits of one pass over the whole stream.
#[test]
fn carried_trace_continues_the_stream() {
    let device = mnemo_backend::test_device().inner();
    let config = TransformerConfig {
        attention: mnemo_models::AttentionConfig::Linear {
            update: Default::default(),
            chunk: 4,
            carry: true,
        },
        ..TransformerConfig::tiny(VOCAB)
    };
    let model = mnemo_core::seeded::reinit(config.init(&device), 7);
    let x = tokens(2, 8, &device);
    let (first, _, state) = model.forward_traced(x.clone().narrow(1, 0, 5), model.init_state());
    let (second, hidden, _) = model.forward_traced(x.clone().narrow(1, 5, 3), state);
    assert_eq!(hidden.len(), config.n_layers);
    let traced = Tensor::cat(vec![first, second], 1);
    let diff = max_diff(&to_vec(traced), &to_vec(model.forward(x)));
    assert!(diff < 1e-4, "traced segments vs one pass: {diff}");
}

#[test]
fn transformer_trace_equals_forward_and_host_units() {
    let device = mnemo_backend::test_device();
    for placement in [NormPlacement::Pre, NormPlacement::Post] {
        let config = TransformerConfig {
            placement,
            ..TransformerConfig::tiny(VOCAB)
        };
        let model = mnemo_core::seeded::reinit(config.init(&device), 7);
        let x = tokens(2, 6, &device);
        let (logits, hidden, _) = model.forward_traced(x.clone(), model.init_state());
        assert_eq!(
            max_diff(&to_vec(logits), &to_vec(model.forward(x.clone()))),
            0.0,
            "{placement:?}: traced logits"
        );
        // Independent: walk the layers with their public blocks, take each feed-forward
        // sublayer's input and compute its units on the host.
        let mut h = model.embed(x);
        for (l, layer) in model.layers.iter().enumerate() {
            let attn = layer.attn.as_ref().unwrap();
            let mid = layer.attn_residual.forward(h.clone(), |u| attn.forward(u));
            let ff_residual = layer.ff_residual.as_ref().unwrap();
            let ff = layer.ff.as_ref().unwrap();
            let want = up_units(ff, ff_residual.sublayer_input(mid.clone()));
            let got = to_vec(hidden[l].clone().unwrap());
            assert!(
                max_diff(&got, &want) < 1e-4,
                "{placement:?} layer {l}: {}",
                max_diff(&got, &want)
            );
            assert!(got.iter().any(|&v| v > 0.1), "units not all ~0");
            h = layer.forward(h);
        }
    }
}

/// A Feedback model with random weights (mixing logits included) and random carried memories.
fn feedback(
    placement: NormPlacement,
    share_kv: bool,
    device: &burn::tensor::Device,
) -> (FeedbackLm, FeedbackState) {
    let config = FeedbackConfig {
        placement,
        share_kv,
        norm: NormKind::Rms,
        ..FeedbackConfig::tiny(VOCAB)
    };
    let model = mnemo_core::seeded::reinit(config.init(device), 11);
    let memories = mnemo_core::seeded::normal([2, config.span, config.d_model], 5, device);
    (
        model,
        FeedbackState {
            memories,
            projected: None,
        },
    )
}

#[test]
fn feedback_trace_equals_forward_and_its_attention_is_the_models() {
    let device = mnemo_backend::test_device();
    let t_len = 6;
    for (placement, share_kv) in [(NormPlacement::Pre, true), (NormPlacement::Post, false)] {
        let (model, state) = feedback(placement, share_kv, &device);
        let x = tokens(2, t_len, &device);
        let (logits, next, trace) = model.forward_segment_traced(x.clone(), state.clone());
        let (want_logits, want_next) = model.forward_segment(x.clone(), state.clone());
        let what = format!("{placement:?}, share_kv {share_kv}");
        assert_eq!(
            max_diff(&to_vec(logits), &to_vec(want_logits)),
            0.0,
            "{what}: logits"
        );
        assert_eq!(
            max_diff(&to_vec(next.memories), &to_vec(want_next.memories)),
            0.0,
            "{what}: carried memories"
        );
        let core = &model.core;
        let span = core.span;
        let heads = core.layers[0].n_heads;
        // Replay the steps with the core's own step, checking every layer at every step.
        let embedded = model.embedding.forward(x);
        let mut memory: FeedbackMemory = core.memory(state.memories, t_len);
        for t in 0..t_len {
            let mut h = embedded.clone().narrow(1, t, 1);
            for (l, layer) in core.layers.iter().enumerate() {
                let window = memory.view(core.projection_of(l));
                let probs = trace.attention[l].clone().narrow(2, t, 1); // [B,H,1,S]
                let p = to_vec(probs.clone());
                for row in p.chunks(span) {
                    let sum: f32 = row.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "{what}: row sums to {sum}");
                    assert!(row.iter().all(|&v| v >= 0.0));
                }
                assert_eq!(p.len(), 2 * heads * span);
                // The probabilities weight the window's values into the attention output.
                let values = window.values.clone().unwrap(); // [B,H,S,Dh]
                let from_probs = layer.attn_residual.forward(h.clone(), |_| {
                    layer
                        .output
                        .forward(merge_heads(probs.clone().matmul(values.clone())))
                });
                let mid = layer.attend_memory(h.clone(), &window, layer.window_positions(), None);
                let gap = max_diff(&to_vec(from_probs), &to_vec(mid.clone()));
                assert!(
                    gap < 1e-5,
                    "{what}: step {t} layer {l}: attention output {gap}"
                );
                // Units: the host's gelu(W1 x + b1) of the feed-forward's input.
                let want = up_units(&layer.ff, layer.ff_residual.sublayer_input(mid.clone()));
                let got = to_vec(trace.ffn_hidden[l].clone().narrow(1, t, 1));
                assert!(
                    max_diff(&got, &want) < 1e-4,
                    "{what}: step {t} layer {l} units"
                );
                h = layer.feed_forward(mid);
            }
            core.step(embedded.clone().narrow(1, t, 1), &mut memory, no_hook());
        }
    }
}

#[test]
fn mixing_weights_are_the_softmax_of_the_parameter() {
    let device = mnemo_backend::test_device();
    let (mut model, state) = feedback(NormPlacement::Pre, true, &device);
    let logits = vec![0.3f32, -1.2, 0.8];
    model.core.mix = burn::module::Param::from_tensor(Tensor::from_data(
        TensorData::new(logits.clone(), [3]),
        &device,
    ));
    let z: f64 = logits.iter().map(|&w| f64::from(w).exp()).sum();
    let want: Vec<f32> = logits
        .iter()
        .map(|&w| (f64::from(w).exp() / z) as f32)
        .collect();
    let x = tokens(2, 3, &device);
    let (_, _, trace) = model.forward_segment_traced(x, state);
    let capture = mnemo_analysis::Capture {
        rows: vec![Vec::new(); 2],
        row_targets: vec![Vec::new(); 2],
        positions: vec![(0, 0); 6],
        visible_from: vec![0; 6],
        d_ff: 64,
        ffn: Vec::new(),
        heads: 2,
        span: 8,
        attention: Some(
            trace
                .attention
                .into_iter()
                .map(|a| to_vec(a.swap_dims(1, 2)))
                .collect(),
        ),
    };
    let analysis = mnemo_analysis::analyze_memory("m", "valid", &model, &capture);
    assert!(max_diff(&analysis.mix_weights, &want) < 1e-6);
    assert_eq!(analysis.mix_logits, logits);
    assert_eq!(analysis.sources, ["embedding", "layer 1", "layer 2"]);
    for layer in &analysis.attention {
        for head in &layer.heads {
            let sum: f32 = head.by_distance.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "by distance sums to {sum}");
            assert!((1.0..=8.0).contains(&head.mean_distance));
        }
    }
}
