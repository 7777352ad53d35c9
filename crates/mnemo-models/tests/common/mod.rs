//! Helpers shared by the model integration tests.
#![allow(dead_code)]
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_core::Norm;
use mnemo_models::feedback::{FeedbackLayer, MemoryProjection};

pub mod feedback_grads;
pub mod grad_check;
pub mod seq2seq_grads;
pub mod translation;

/// Deterministic pseudo-random token ids `[b, t]` in `0..vocab`.
pub fn tokens(b: usize, t: usize, vocab: usize, seed: u64, device: &Device) -> Tensor<2, Int> {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let data: Vec<i64> = (0..b * t)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % vocab as u64) as i64
        })
        .collect();
    Tensor::from_data(TensorData::new(data, [b, t]), device)
}

/// Largest absolute difference between two tensors.
pub use mnemo_core::host::max_abs_gap as max_abs_diff;

/// Largest absolute value.
pub fn max_abs<const D: usize>(a: Tensor<D>) -> f32 {
    a.abs().max().into_scalar::<f32>()
}

/// `x` with its positions `from..` replaced by other deterministic tokens (drawn from `seed`).
pub fn with_future_changed(
    x: &Tensor<2, Int>,
    from: usize,
    vocab: usize,
    seed: u64,
    device: &Device,
) -> Tensor<2, Int> {
    let [b, t] = x.dims();
    x.clone()
        .slice_assign([0..b, from..t], tokens(b, t - from, vocab, seed, device))
}

/// Asserts that the outputs `a` and `b` `[B, T, ..]` of two inputs that first differ at
/// position `from` agree before it (max |Δ| < 1e-6) and differ somewhere (> 1e-4): the change
/// reached the future, and only the future.
pub fn assert_causal(name: &str, a: Tensor<3>, b: Tensor<3>, from: usize) {
    let past = max_abs_diff(a.clone().narrow(1, 0, from), b.clone().narrow(1, 0, from));
    assert!(
        past < 1e-6,
        "{name}: outputs before the change moved by {past}"
    );
    let all = max_abs_diff(a, b);
    assert!(all > 1e-4, "{name}: the change had no effect at all");
}

/// Feeds the T tokens of `x` `[B, T]` one at a time to `step`, threading its state; returns
/// the step logits stacked to `[B, T, V]` and the last state.
pub fn decode_steps<S>(
    x: &Tensor<2, Int>,
    state: S,
    mut step: impl FnMut(Tensor<1, Int>, S) -> (Tensor<2>, S),
) -> (Tensor<3>, S) {
    let [_b, t_len] = x.dims();
    let mut state = state;
    let mut steps = Vec::with_capacity(t_len);
    for t in 0..t_len {
        let (logits, next) = step(x.clone().narrow(1, t, 1).squeeze_dim(1), state);
        state = next;
        steps.push(logits.unsqueeze_dim(1));
    }
    (Tensor::cat(steps, 1), state)
}

/// Asserts that no gradient crosses a segment boundary: the gradients of `Σ logits · probe`
/// over segment `x2` from the state segment `x1` left equal those from the same state restored
/// from its snapshot (plain numbers with no autodiff history), for every tensor `params` picks
/// from the model (each must get a non-zero gradient, so the comparison is not vacuous).
///
/// # Shapes
/// - x1, x2: `[B, T]`; probe: `[B, T, V]`
pub fn assert_no_gradient_into_the_state(
    name: &str,
    model: &mnemo_models::Model,
    (x1, x2): (Tensor<2, Int>, Tensor<2, Int>),
    probe: Tensor<3>,
    params: impl Fn(&mnemo_models::Model) -> Vec<(String, Tensor<2>)>,
) {
    let device = x1.device();
    let [b, _] = x1.dims();
    let carried = model
        .forward_segment(x1, model.init_state(b, &device))
        .state;
    let copied = model
        .restore_state(&carried.snapshot(), b, &device)
        .unwrap();
    let grads = |state| {
        (model.forward_segment(x2.clone(), state).logits * probe.clone())
            .sum()
            .backward()
    };
    let (g_carried, g_copied) = (grads(carried), grads(copied));
    for (label, p) in params(model) {
        let (a, b) = (
            p.grad(&g_carried).expect("grad"),
            p.grad(&g_copied).expect("grad"),
        );
        assert!(max_abs(a.clone()) > 0.0, "{name}, {label}: zero gradient");
        let diff = max_abs_diff(a, b);
        assert!(
            diff < 1e-6,
            "{name}, {label}: gradient reached segment 1 through the carried state ({diff})"
        );
    }
}

/// Logits of `x` `[B, N]` run through a language model in segments of `seg`, carrying the state
/// from a fresh one: `[B, N, V]`.
pub fn segmented(
    model: &mnemo_models::Model,
    x: Tensor<2, Int>,
    seg: usize,
    device: &Device,
) -> Tensor<3> {
    let [b, n] = x.dims();
    let mut state = model.init_state(b, device);
    let mut out = Vec::new();
    for start in (0..n).step_by(seg) {
        let o = model.forward_segment(x.clone().narrow(1, start, seg.min(n - start)), state);
        state = o.state;
        out.push(o.logits);
    }
    Tensor::cat(out, 1)
}

/// Logits of `x` `[B, N]` fed to a language model one token at a time from a fresh state:
/// `[B, N, V]`.
pub fn stepped(model: &mnemo_models::Model, x: &Tensor<2, Int>, device: &Device) -> Tensor<3> {
    let b = x.dims()[0];
    decode_steps(x, model.init_state(b, device), |token, state| {
        let o = model.forward_step(token, state);
        (o.logits, o.state)
    })
    .0
}

/// Asserts that a manual gradient equals the autodiff one: the same shape, and
/// max |Δ| < 2e-4 · (1 + max |want|).
pub fn assert_grad_matches<const D: usize>(what: &str, got: Tensor<D>, want: Tensor<D>) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    assert_close(
        &format!("{what}: manual vs autodiff gradient"),
        got,
        want,
        2e-4,
    );
}

/// Asserts max |a − b| > `min`: the two outputs really differ (the check that keeps a test from
/// passing vacuously, e.g. with an input that changes nothing).
pub fn assert_differs<const D: usize>(what: &str, a: Tensor<D>, b: Tensor<D>, min: f32) {
    let diff = max_abs_diff(a, b);
    assert!(diff > min, "{what}: differs by {diff} only");
}

/// Asserts max |got − want| < `tol` · (1 + max |want|): equal up to a tolerance relative to
/// the size of `want`.
pub fn assert_close<const D: usize>(what: &str, got: Tensor<D>, want: Tensor<D>, tol: f32) {
    let scale = 1.0 + max_abs(want.clone());
    let diff = max_abs_diff(got, want);
    assert!(
        diff < tol * scale,
        "{what}: differs by {diff} (scale {scale})"
    );
}

/// `h` through a model's final norm, or `h` itself when it has none (post-norm).
pub fn final_norm(norm: &Option<Norm>, h: Tensor<3>) -> Tensor<3> {
    match norm {
        Some(n) => n.forward(h),
        None => h,
    }
}

/// Runs `check(name, model, device)` on the (non-autodiff) test device for the model `build`
/// makes of each named config.
pub fn for_each_model<C, M>(
    configs: Vec<(&'static str, C)>,
    build: impl Fn(&C, &Device) -> M,
    mut check: impl FnMut(&str, M, &Device),
) {
    let device = mnemo_backend::test_device().inner();
    for (name, config) in configs {
        check(name, build(&config, &device), &device);
    }
}

/// One layer over an explicit window `[B, n, D]` with explicit position vectors (`pos` row j is
/// the vector of window slot j), written out op by op from DESIGN.md §4
/// (no memory buffer, no `attend` helper).
pub fn naive_feedback_layer(
    layer: &FeedbackLayer,
    proj: &MemoryProjection,
    h: Tensor<3>,
    window: Tensor<3>,
    pos: Tensor<2>,
) -> Tensor<3> {
    let [b, n, _d] = window.dims();
    let heads = layer.n_heads;
    let dh = pos.dims()[1]; // the head size (D/H unless `d_head` says otherwise)
    let m = match (&proj.norm, layer.attn_residual.is_pre()) {
        (Some(norm), _) => norm.forward(window),
        // `tie_norms`: the layer's own attention norm, none under post-norm.
        (None, true) => layer.attn_residual.norm.forward(window),
        (None, false) => window,
    };
    let split = |x: Tensor<3>| x.reshape([b, n, heads, dh]).swap_dims(1, 2); // [B,H,n,Dh]
    let (k, v) = (
        split(proj.key.forward(m.clone())),
        split(proj.value.forward(m)),
    );
    let attn = |x: Tensor<3>| {
        let q = layer
            .query
            .forward(x)
            .reshape([b, 1, heads, dh])
            .swap_dims(1, 2); // [B,H,1,Dh]
        let keys = k.clone() + pos.clone().unsqueeze::<4>();
        let scores = q
            .matmul(keys.swap_dims(2, 3))
            .div_scalar((dh as f32).sqrt());
        let a = softmax(scores, 3).matmul(v.clone());
        layer
            .output
            .forward(a.swap_dims(1, 2).reshape([b, 1, heads * dh]))
    };
    if layer.attn_residual.is_pre() {
        let h = h.clone() + attn(layer.attn_residual.norm.forward(h));
        h.clone() + layer.ff.forward(layer.ff_residual.norm.forward(h))
    } else {
        let h = layer.attn_residual.norm.forward(h.clone() + attn(h));
        layer
            .ff_residual
            .norm
            .forward(h.clone() + layer.ff.forward(h))
    }
}

/// `module` with `scale · N(0, 1)` added to every float parameter (seeded per parameter), so
/// that norm gains and biases, constant at init, differ from 1 and 0: a test of code that
/// applies them then sees them.
pub fn perturbed<M: burn::module::Module>(module: M, scale: f32, seed: u64) -> M {
    struct Perturb {
        scale: f32,
        seed: u64,
        index: u64,
    }
    impl burn::module::ModuleMapper for Perturb {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            let seed = self.seed.wrapping_mul(1000).wrapping_add(self.index);
            self.index += 1;
            let scale = self.scale;
            param.map(|old| {
                let noise = mnemo_core::seeded::normal(old.dims(), seed, &old.device());
                old + noise.mul_scalar(scale)
            })
        }
    }
    module.map(&mut Perturb {
        scale,
        seed,
        index: 0,
    })
}
