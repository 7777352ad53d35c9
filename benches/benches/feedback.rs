//! Criterion benches of the Feedback Transformer's hot pieces, per compiled backend:
//! - `feedback_step/<backend>/f32/{forward,forward_backward,forward_backward_host}`: a 16-step segment of the peer
//!   config through the plain forward and through the hand-written forward + backward (time per
//!   segment; divide by 16 for one step);
//! - `window_attention/<backend>/f32/...`: one step's attention of B·H queries over the S-slot
//!   window (scores with the relative term, softmax, weighted values);
//! - `memory_write/<backend>/f32`: pushing one step's memory and K/V into a `FeedbackMemory`;
//! - `skinny_matmul/<backend>/f32/{x_w,wt_xt}`: a `[8,256]·[256,1024]` product as written and
//!   as `(Wᵀxᵀ)ᵀ` (the form of `StepProducts::Backend`), and `host_kernel`: mnemo-kernels'
//!   `PackedMatrix::matmul` with the round trip to host memory (`StepProducts::Host`).
#![allow(missing_docs)] // criterion_group! generates undocumented functions
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use mnemo_benches::{BATCH, D_MODEL, HEADS, SPAN, backends, peer_feedback_model, randn, tokens};
use mnemo_models::{FeedbackMemory, StepProducts};

const SEGMENT: usize = 16;

fn feedback_step(c: &mut Criterion) {
    for (name, device) in backends() {
        let model = peer_feedback_model(&device);
        let x = tokens(BATCH, SEGMENT, &device);
        let mut group = c.benchmark_group(format!("feedback_step/{name}/f32"));
        group.sample_size(10);
        group.bench_function("forward", |bench| {
            bench.iter(|| {
                let (logits, _) =
                    model.forward_segment(x.clone(), model.init_state(BATCH, &device));
                logits.into_data()
            })
        });
        let probe = randn([BATCH, SEGMENT, 256], &device);
        for (label, products) in [
            ("forward_backward", StepProducts::Backend),
            ("forward_backward_host", StepProducts::Host),
        ] {
            let model = model.clone().with_step_products(products);
            group.bench_function(label, |bench| {
                bench.iter(|| {
                    let state = model.init_state(BATCH, &device);
                    let out = model.forward_backward_segment(x.clone(), state, |_| probe.clone());
                    out.logits.into_data()
                })
            });
        }
        group.finish();
    }
}

/// Scores `(q·kᵀ + pos) / √Dh` over the window, softmax, weighted values: one step's attention
/// output `[B, D]`, read back to the host.
///
/// # Shapes
/// - q4: `[B, H, 1, Dh]`; keys, values: `[B, H, S, Dh]`; pos: `[B, H, 1, S]`
fn attend_keys(q4: Tensor<4>, keys: &Tensor<4>, values: &Tensor<4>, pos: Tensor<4>) -> TensorData {
    let scores = (q4.matmul(keys.clone().swap_dims(2, 3)) + pos).mul_scalar(0.125);
    let a = softmax(scores, 3);
    a.matmul(values.clone())
        .reshape([BATCH, D_MODEL])
        .into_data()
}

/// The position term `q · Pᵀ` of every row and head as one `[B·H, Dh] · [Dh, S]` product.
///
/// # Shapes
/// - q: `[B, D]`; pos_t: `[Dh, S]`; output: `[B·H, S]`
fn positions_gemm(q: &Tensor<2>, pos_t: &Tensor<2>) -> Tensor<2> {
    let dh = D_MODEL / HEADS;
    q.clone().reshape([BATCH * HEADS, dh]).matmul(pos_t.clone())
}

fn window_attention(c: &mut Criterion) {
    let dh = D_MODEL / HEADS;
    for (name, device) in backends() {
        let q = randn([BATCH, D_MODEL], &device);
        let keys = randn([BATCH, HEADS, SPAN, dh], &device);
        let values = randn([BATCH, HEADS, SPAN, dh], &device);
        let pos_t = randn([dh, SPAN], &device);
        let mut group = c.benchmark_group(format!("window_attention/{name}/f32"));
        group.bench_function("batched_matmul", |bench| {
            bench.iter(|| {
                let q4 = q.clone().reshape([BATCH, HEADS, 1, dh]);
                let pos = q4.clone().matmul(pos_t.clone().unsqueeze::<4>());
                attend_keys(q4, &keys, &values, pos)
            })
        });
        group.bench_function("pos_as_one_gemm", |bench| {
            bench.iter(|| {
                let q4 = q.clone().reshape([BATCH, HEADS, 1, dh]);
                let pos = positions_gemm(&q, &pos_t).reshape([BATCH, HEADS, 1, SPAN]);
                attend_keys(q4, &keys, &values, pos)
            })
        });
        group.bench_function("broadcast_mul_sum", |bench| {
            bench.iter(|| {
                let q4 = q.clone().reshape([BATCH, HEADS, 1, dh]);
                let pos = positions_gemm(&q, &pos_t).reshape([BATCH, HEADS, SPAN, 1]);
                let scores = ((q4 * keys.clone()).sum_dim(3) + pos).mul_scalar(0.125); // [B,H,S,1]
                let a = softmax(scores, 2);
                (a * values.clone())
                    .sum_dim(2)
                    .reshape([BATCH, D_MODEL])
                    .into_data()
            })
        });
        group.finish();
    }
}

fn memory_write(c: &mut Criterion) {
    let dh = D_MODEL / HEADS;
    for (name, device) in backends() {
        let init = randn([BATCH, HEADS, SPAN, dh], &device);
        let k = randn([BATCH, HEADS, 1, dh], &device);
        let m = randn([BATCH, 1, D_MODEL], &device);
        let mut memory = FeedbackMemory::new(
            randn([BATCH, SPAN, D_MODEL], &device),
            vec![(init.clone(), init)],
            SPAN,
        );
        c.bench_function(&format!("memory_write/{name}/f32"), |bench| {
            bench.iter(|| {
                memory.push(m.clone(), vec![(k.clone(), k.clone())]);
                let keys = memory.view(0).keys.expect("stored slots");
                keys.slice([0..1, 0..1, 0..1, 0..1]).into_data()
            })
        });
    }
}

fn skinny_matmul(c: &mut Criterion) {
    for (name, device) in backends() {
        let x = randn([BATCH, D_MODEL], &device);
        let w = randn([D_MODEL, 1024], &device);
        let w_t = w.clone().transpose().into_data();
        let w_t = burn::tensor::Tensor::<2>::from_data(w_t, &device);
        let mut group = c.benchmark_group(format!("skinny_matmul/{name}/f32"));
        group.bench_function("x_w", |bench| {
            bench.iter(|| x.clone().matmul(w.clone()).into_data())
        });
        group.bench_function("wt_xt", |bench| {
            bench.iter(|| w_t.clone().matmul(x.clone().transpose()).into_data())
        });
        // The host kernel of `StepProducts::Host`, with the step's round trip through the device.
        let w_host = mnemo_kernels::PackedMatrix::new(
            &w.clone().into_data().try_to_vec::<f32>().expect("f32"),
            D_MODEL,
            1024,
        );
        group.bench_function("host_kernel", |bench| {
            bench.iter(|| {
                let xs = x.clone().into_data().try_to_vec::<f32>().expect("f32");
                let mut out = vec![0.0f32; BATCH * 1024];
                w_host.matmul(&xs, &mut out, BATCH);
                burn::tensor::Tensor::<2>::from_data(
                    burn::tensor::TensorData::new(out, [BATCH, 1024]),
                    &device,
                )
            })
        });
        group.finish();
    }
}

criterion_group!(
    benches,
    skinny_matmul,
    window_attention,
    memory_write,
    feedback_step
);
criterion_main!(benches);
