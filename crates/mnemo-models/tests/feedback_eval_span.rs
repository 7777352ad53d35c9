//! Evaluating the Feedback Transformer (Fan et al., 2020) with a shorter attention span than
//! trained (`Model::with_eval_memory`, `mnemo eval --mem-len N`): every layer attends to the
//! last N memories only, with the learned vectors of distances 1..N,
//!
//! ```text
//! a_t = Σ_{d=1..N} softmax_d((q_t·k_{t-d} + q_t·p_d) / √Dh) v_{t-d}
//! ```
//!
//! checked against a naive reference that keeps the whole list of memories and, at every step,
//! re-projects the last N with the *untruncated* model's weights and table rows 0..N (so the
//! truncation itself is not what is tested against), on the autodiff-free forward and on the
//! host-kernel inference path.
mod common;

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use common::{
    assert_close, assert_differs, final_norm, max_abs_diff, naive_feedback_layer, tokens,
};
use mnemo_core::{NormKind, NormPlacement, seeded};
use mnemo_models::feedback::{FeedbackLayer, StepProducts};
use mnemo_models::{FeedbackConfig, FeedbackCore, FeedbackLm, FeedbackState, Model};

const VOCAB: usize = 11;
/// The trained span S.
const SPAN: usize = 6;

fn configs() -> Vec<(&'static str, FeedbackConfig)> {
    let shared = FeedbackConfig {
        d_model: 16,
        d_ff: 32,
        span: SPAN,
        ..FeedbackConfig::tiny(VOCAB)
    };
    vec![
        ("shared kv", shared.clone()),
        (
            "per-layer kv",
            FeedbackConfig {
                share_kv: false,
                n_layers: 3,
                ..shared.clone()
            },
        ),
        (
            "post-norm rms",
            FeedbackConfig {
                placement: NormPlacement::Post,
                norm: NormKind::Rms,
                ..shared
            },
        ),
    ]
}

/// A seeded model on the plain device with non-uniform mixing weights.
fn model(config: &FeedbackConfig, seed: u64, device: &Device) -> FeedbackLm {
    let m = seeded::reinit(config.init(device), seed);
    let mix = m
        .core
        .mix
        .clone()
        .map(|w| w + seeded::normal([config.n_layers + 1], seed + 1, device).mul_scalar(0.5));
    FeedbackLm {
        core: FeedbackCore { mix, ..m.core },
        ..m
    }
}

/// `model` evaluated with span `n`, through the `Model` interface.
fn reduced(model: &FeedbackLm, n: usize) -> FeedbackLm {
    let mut m = Model::Feedback(model.clone());
    m.with_eval_memory(n)
        .expect("a span within the trained one");
    match m {
        Model::Feedback(m) => m,
        _ => unreachable!(),
    }
}

fn state(memories: Tensor<3>) -> FeedbackState {
    FeedbackState {
        memories,
        projected: None,
    }
}

/// The reference for span `n`: `history` holds every memory so far (`[B, 1, D]` each, at
/// least `n`); each step attends to the last `n`, slot j at distance `n - j`, i.e. row
/// `n - j - 1` of the full (trained) table. Appends the segment's memories to `history`.
fn naive_segment(
    model: &FeedbackLm,
    n: usize,
    x: Tensor<2, Int>,
    history: &mut Vec<Tensor<3>>,
) -> Tensor<3> {
    let [_b, t_len] = x.dims();
    let core = &model.core;
    let w = softmax(core.mix.val(), 0);
    let emb = model.embedding.forward(x);
    let mut tops = Vec::new();
    for t in 0..t_len {
        let window = Tensor::cat(history[history.len() - n..].to_vec(), 1); // [B,n,D]
        let mut h = emb.clone().narrow(1, t, 1);
        let mut m = h.clone() * w.clone().narrow(0, 0, 1).reshape([1, 1, 1]);
        for (l, layer) in core.layers.iter().enumerate() {
            let table = layer.positions.as_ref().unwrap().table.val();
            assert_eq!(
                table.dims()[0],
                SPAN,
                "the reference reads the trained table"
            );
            let pos = Tensor::cat(
                (0..n)
                    .map(|j| table.clone().narrow(0, n - j - 1, 1))
                    .collect(),
                0,
            ); // [n,Dh]
            let proj = &core.memory_projections[core.projection_of(l)];
            h = naive_feedback_layer(layer, proj, h, window.clone(), pos);
            m = m + h.clone() * w.clone().narrow(0, l + 1, 1).reshape([1, 1, 1]);
        }
        tops.push(h);
        history.push(m);
    }
    model
        .head
        .forward(final_norm(&model.final_norm, Tensor::cat(tops, 1)))
}

fn zeros_history(b: usize, d: usize, n: usize, device: &Device) -> Vec<Tensor<3>> {
    (0..n).map(|_| Tensor::zeros([b, 1, d], device)).collect()
}

fn close(what: &str, got: Tensor<3>, want: Tensor<3>) {
    assert_close(what, got, want, 1e-5);
}

/// The reduced model equals the reference with span N, from a fresh stream over two carried
/// segments longer than N, and from the non-zero history a trained-span stream left behind
/// (its last N memories): memories older than N are not attended. Its tables are the first N
/// rows of the trained ones.
#[test]
fn reduced_span_equals_the_naive_reference() {
    let device = mnemo_backend::test_device().inner();
    let (b, t_len) = (2, 5);
    for (name, config) in configs() {
        let full = model(&config, 3, &device);
        for n in [1, 3, 5] {
            let short = reduced(&full, n);
            let label = format!("{name}, N = {n}");
            assert_eq!(short.span(), n, "{label}: span");
            for (l, (a, f)) in short.core.layers.iter().zip(&full.core.layers).enumerate() {
                let table = |l: &FeedbackLayer| l.positions.as_ref().unwrap().table.val();
                let (a, f) = (table(a), table(f));
                assert_eq!(a.dims(), [n, config.d_model / config.n_heads], "{label}");
                assert_eq!(
                    max_abs_diff(a, f.narrow(0, 0, n)),
                    0.0,
                    "{label}: layer {l}"
                );
            }
            // A fresh stream: N zero memories.
            let mut history = zeros_history(b, config.d_model, n, &device);
            let mut carried = short.init_state(b, &device);
            assert_eq!(carried.memories.dims(), [b, n, config.d_model], "{label}");
            for seg in 0..2 {
                let x = tokens(b, t_len, VOCAB, 10 + seg, &device);
                let want = naive_segment(&full, n, x.clone(), &mut history);
                let (got, next) = short.forward_segment(x, carried);
                close(&format!("{label}, segment {seg}: logits"), got, want);
                let last = Tensor::cat(history[history.len() - n..].to_vec(), 1);
                close(&format!("{label}: carried"), next.memories.clone(), last);
                carried = next;
            }
            // The history of a trained-span stream (non-zero, S memories); the reduced model
            // continues from its last N.
            let warm = tokens(b, 2 * SPAN, VOCAB, 20, &device);
            let (_, trained) = full.forward_segment(warm, full.init_state(b, &device));
            let mut history: Vec<_> = (0..SPAN)
                .map(|j| trained.memories.clone().narrow(1, j, 1))
                .collect();
            let x = tokens(b, t_len, VOCAB, 21, &device);
            let want = naive_segment(&full, n, x.clone(), &mut history);
            let tail = trained.memories.clone().narrow(1, SPAN - n, n);
            let (got, _) = short.forward_segment(x.clone(), state(tail));
            close(
                &format!("{label}, from a trained history"),
                got.clone(),
                want,
            );
            let (original, _) = full.forward_segment(x, trained);
            let what =
                format!("{label}: the memories older than N must matter to the trained span");
            assert_differs(&what, got, original, 1e-4);
        }
    }
}

/// N = S changes nothing: bit-identical logits and carried memories, both inference paths.
#[test]
fn full_span_is_exactly_the_original_model() {
    let device = mnemo_backend::test_device().inner();
    let b = 2;
    for (name, config) in configs() {
        let full = model(&config, 5, &device).with_step_products(StepProducts::Host);
        let same = reduced(&full, SPAN);
        let (mut s_full, mut s_same) = (full.init_state(b, &device), same.init_state(b, &device));
        for seg in 0..2 {
            let x = tokens(b, 7, VOCAB, 30 + seg, &device);
            let (want, next_full) = full.infer_segment(x.clone(), s_full);
            let (got, next_same) = same.infer_segment(x.clone(), s_same);
            assert_eq!(max_abs_diff(got, want), 0.0, "{name}, segment {seg}");
            let (want, _) = full.forward_segment(x.clone(), next_full.clone());
            let (got, _) = same.forward_segment(x, next_same.clone());
            assert_eq!(max_abs_diff(got, want), 0.0, "{name}, segment {seg}");
            assert_eq!(
                max_abs_diff(next_same.memories.clone(), next_full.memories.clone()),
                0.0
            );
            (s_full, s_same) = (next_full, next_same);
        }
    }
}

/// N < S changes the output once a step has a real memory in its window, and not before. A
/// fresh stream starts from S (trained) or N (reduced) zero memories, which share one value
/// `v₀`, so step 0's attention returns `v₀` whatever the span: equal. From step 1 on, the zero
/// memories are still attended (as in the official code; there is no masked start), and the
/// mass they get depends on how many there are, S − t or N − t: the two differ although the
/// history is still shorter than N. The reference test above pins the exact values.
#[test]
fn shorter_span_differs_from_the_first_real_memory_on() {
    let device = mnemo_backend::test_device().inner();
    let b = 2;
    for (name, config) in configs() {
        let full = model(&config, 7, &device);
        for n in [1, 2, SPAN - 1] {
            let short = reduced(&full, n);
            let x = tokens(b, 2 * SPAN, VOCAB, 40, &device);
            let (want, _) = full.forward_segment(x.clone(), full.init_state(b, &device));
            let (got, _) = short.forward_segment(x, short.init_state(b, &device));
            let step = |t: usize| (got.clone().narrow(1, t, 1), want.clone().narrow(1, t, 1));
            let (got0, want0) = step(0);
            let first = max_abs_diff(got0, want0);
            assert!(first < 1e-5, "{name}, N = {n}: step 0 differs by {first}");
            for t in [1, n, 2 * SPAN - 1] {
                let (got_t, want_t) = step(t);
                assert_differs(&format!("{name}, N = {n}: step {t}"), got_t, want_t, 1e-4);
            }
        }
    }
}

/// The host-kernel inference path (`infer_segment` with host step products: host windows of
/// N + T slots, tables of N rows) equals `forward_segment` and the reference with span N, over
/// three carried segments; through `Model` with the products set before or after the span.
#[test]
fn host_kernel_inference_honours_the_reduced_span() {
    let device = mnemo_backend::test_device().inner();
    let (b, t_len, n) = (3, 5, 2);
    for (name, config) in configs() {
        if config.placement == NormPlacement::Post {
            continue; // no manual forward: `infer_segment` is `forward_segment` (tested above)
        }
        let full = model(&config, 9, &device);
        let short = reduced(&full, n).with_step_products(StepProducts::Host);
        assert!(
            short.supports_manual_backward(),
            "{name}: takes the host path"
        );
        let mut via_model = Model::Feedback(full.clone()).with_step_products(StepProducts::Host);
        via_model.with_eval_memory(n).unwrap();
        let (mut s_fwd, mut s_host) = (short.init_state(b, &device), short.init_state(b, &device));
        let mut s_model = via_model.init_state(b, &device);
        let mut history = zeros_history(b, config.d_model, n, &device);
        for seg in 0..3 {
            let x = tokens(b, t_len, VOCAB, 50 + seg, &device);
            let label = format!("{name}, segment {seg}");
            let want = naive_segment(&full, n, x.clone(), &mut history);
            let (fwd, next_fwd) = short.forward_segment(x.clone(), s_fwd);
            let (host, next_host) = short.infer_segment(x.clone(), s_host);
            let out = via_model.infer_segment(x, s_model);
            close(
                &format!("{label}: forward_segment"),
                fwd.clone(),
                want.clone(),
            );
            close(&format!("{label}: infer_segment"), host.clone(), want);
            close(&format!("{label}: paths"), host.clone(), fwd);
            assert_eq!(max_abs_diff(out.logits, host), 0.0, "{label}: via Model");
            assert_eq!(next_host.memories.dims(), [b, n, config.d_model]);
            close(
                &format!("{label}: carried"),
                next_host.memories.clone(),
                next_fwd.memories.clone(),
            );
            (s_fwd, s_host, s_model) = (next_fwd, next_host, out.state);
        }
    }
}

/// N = 0 and N > S are refused with the reason, and leave the model as it was; states of the
/// trained span no longer fit a reduced model (a clear panic, not a silent misread).
#[test]
fn zero_and_longer_spans_are_refused() {
    let device = mnemo_backend::test_device().inner();
    let config = &configs()[0].1;
    let mut m = Model::Feedback(model(config, 11, &device));
    let err = m.with_eval_memory(0).unwrap_err();
    assert!(err.contains("at least 1"), "{err}");
    let err = m.with_eval_memory(SPAN + 1).unwrap_err();
    assert!(
        err.contains(&format!("1..={SPAN}")) && err.contains(&format!("{}", SPAN + 1)),
        "{err}"
    );
    let Model::Feedback(lm) = &m else {
        unreachable!()
    };
    assert_eq!(lm.span(), SPAN, "a refused span changes nothing");
    assert_eq!(lm.core.positions_of(0).table.dims()[0], SPAN);
    let short = reduced(lm, 2);
    let stale = lm.init_state(1, &device);
    let x = tokens(1, 3, VOCAB, 60, &device);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        short.forward_segment(x, stale)
    }))
    .expect_err("a state of S memories for a span-2 model");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("memories: 6 carried memories"),
        "{message}"
    );
}
