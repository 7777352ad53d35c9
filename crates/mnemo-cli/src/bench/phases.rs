//! What each phase of `mnemo bench` times: [`run_phase`] in the child process, and the
//! training, forward, generation and reference phases it dispatches to, with their iteration
//! counts.
use std::time::Instant;

use anyhow::{anyhow, bail};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use mnemo_models::StepProducts;
use mnemo_models::feedback::StepMatrix;
use mnemo_models::{Model, ModelConfig};
use mnemo_train::{FeedbackBackward, LmBatch, LmStep, OptimConfig, apply_update, forward_segment};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::proc_stats::{round, rss_now_mb};
use super::size::BenchSize;
use super::timing::{fb_flops_per_token, median, summarize, tf_flops_per_token, timed};
use super::translation::{MT_PHASES, run_mt_phase};
use super::workload::{
    VariantPhase, feedback_config, transformer_config, variant_config, variant_phase,
    variant_phases,
};
use super::{GEN_BATCH, LR, PHASES, SEED, scaling};

/// Iteration counts (the peer's FULL and QUICK).
#[derive(Debug, Clone, Copy)]
pub(super) struct Iters {
    pub(super) train_warmup: usize,
    pub(super) train_iters: usize,
    fwd_iters: usize,
    pub(super) gen_warmup: usize,
    pub(super) gen_iters: usize,
    gen_tokens: usize,
    tf_gen_iters: usize,
    scale_warmup: usize,
    scale_iters: usize,
}

pub(super) const FULL: Iters = Iters {
    train_warmup: 2,
    train_iters: 12,
    fwd_iters: 10,
    gen_warmup: 1,
    gen_iters: 7,
    gen_tokens: 256,
    tf_gen_iters: 5,
    scale_warmup: 1,
    scale_iters: 3,
};
pub(super) const QUICK: Iters = Iters {
    train_warmup: 1,
    train_iters: 2,
    fwd_iters: 2,
    gen_warmup: 1,
    gen_iters: 2,
    gen_tokens: 32,
    tf_gen_iters: 1,
    scale_warmup: 0,
    scale_iters: 1,
};

/// A training workload: a model config, its batch and segment, iteration counts.
struct Workload {
    config: ModelConfig,
    batch: usize,
    segment: usize,
    warmup: usize,
    iters: usize,
}

impl Workload {
    /// `config` at the batch and segment of `size` with the train iteration counts of `p`.
    fn sized(config: ModelConfig, size: &BenchSize, p: Iters) -> Self {
        Workload {
            config,
            batch: size.batch,
            segment: size.segment,
            warmup: p.train_warmup,
            iters: p.train_iters,
        }
    }
}

/// The trainer's update at the peer's learning rate: Adam with the default clipping of the
/// global gradient norm ([`apply_update`]), its moments kept from step to step.
pub(super) struct Update {
    optimizer: ModuleOptimizer,
    grad_clip: f64,
}

impl Update {
    pub(super) fn new() -> Self {
        let optim = OptimConfig::new(LR);
        Self {
            optimizer: optim.init(),
            grad_clip: optim.grad_clip,
        }
    }

    /// `model` after one step on `grads`.
    pub(super) fn apply<M: Module>(&mut self, model: M, grads: GradientsParams) -> M {
        apply_update(&mut self.optimizer, model, grads, LR, self.grad_clip).0
    }
}

/// Run phase `name` (a peer phase, `var_<option>_*`, `mt_<model>_train` or
/// `scale_<mechanism>_<T>`) in this
/// process and return its JSON result.
pub(crate) fn run_phase(
    name: &str,
    device: &Device,
    backward: (FeedbackBackward, StepProducts),
    p: Iters,
    size: &BenchSize,
) -> anyhow::Result<Value> {
    device.seed(SEED);
    let feedback = || ModelConfig::Feedback(feedback_config(size));
    let transformer = || ModelConfig::Transformer(transformer_config(size));
    let train = |config| {
        phase_train(
            &Workload::sized(config, size, p),
            backward,
            &device.clone().autodiff(),
        )
    };
    match name {
        "ref" => Ok(phase_ref(device)),
        "fb_train_chunk1" => train(feedback()),
        "tf_train" => train(transformer()),
        "fb_forward_chunk1" => Ok(phase_fb_forward(device, backward.1, p, size)),
        "fb_gen_b1" => phase_gen(&feedback(), 1, device, backward.1, p),
        "fb_gen_b8" => phase_gen(&feedback(), GEN_BATCH, device, backward.1, p),
        "tf_gen_b1" => phase_gen(&transformer(), 1, device, backward.1, p),
        "tf_gen_b8" => phase_gen(&transformer(), GEN_BATCH, device, backward.1, p),
        other => {
            if let Some(res) = run_mt_phase(other, device, backward.1, p) {
                return res;
            }
            if let Some((option, kind)) = variant_phase(other) {
                let config = variant_config(option, size).expect("a listed variant");
                let mut res = match kind {
                    VariantPhase::Train => train(ModelConfig::Transformer(config.clone())),
                    VariantPhase::GenB1 => phase_gen(
                        &ModelConfig::Transformer(config.clone()),
                        1,
                        device,
                        backward.1,
                        p,
                    ),
                }?;
                res["variant"] = json!(option);
                res["attention"] = json!(config.attention);
                res["persistent_memory"] = json!(config.persistent_memory);
                res["feed_forward"] = json!(config.feed_forward);
                return Ok(res);
            }
            if let Some((mechanism, len)) = scaling::parse_point(other) {
                let config = scaling::scaling_config(mechanism, len).expect("a listed mechanism");
                let workload = Workload {
                    config: ModelConfig::Transformer(config.clone()),
                    batch: 1,
                    segment: len,
                    warmup: p.scale_warmup,
                    iters: p.scale_iters,
                };
                let mut res = phase_train(&workload, backward, &device.clone().autodiff())?;
                res["mechanism"] = json!(mechanism);
                res["seq_len"] = json!(len);
                res["n_layers"] = json!(config.n_layers);
                res["attention"] = json!(config.attention);
                return Ok(res);
            }
            let all: Vec<String> = PHASES
                .iter()
                .map(|p| p.to_string())
                .chain(variant_phases())
                .chain(MT_PHASES.iter().map(|p| p.to_string()))
                .collect();
            bail!(
                "unknown phase `{other}`; phases: {} (and scale_<mechanism>_<T>)",
                all.join(",")
            )
        }
    }
}

/// `batch × len` ids drawn uniformly from `0..vocab`.
fn random_tokens(batch: usize, len: usize, vocab: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
    use rand::Rng;
    (0..batch * len)
        .map(|_| rng.random_range(0..vocab as u32))
        .collect()
}

fn tokens_tensor(ids: &[u32], shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    Tensor::from_data(TensorData::new(ids, shape), device)
}

/// Split `[B, T+1]` ids into inputs `[B, T]` and targets (row-major `B*T`).
fn split_inputs(ids: &[u32], b: usize, t: usize) -> (Vec<u32>, Vec<u32>) {
    let mut x = Vec::with_capacity(b * t);
    let mut y = Vec::with_capacity(b * t);
    for row in ids.chunks(t + 1) {
        x.extend_from_slice(&row[..t]);
        y.extend_from_slice(&row[1..]);
    }
    (x, y)
}
fn phase_ref(device: &Device) -> Value {
    let n = 1024;
    let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let b = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let sync = |t: Tensor<2>| {
        let _ = t.into_data();
    };
    let big = timed(2, 10, || sync(a.clone().matmul(b.clone())));
    let x = Tensor::<2>::random([8, 256], Distribution::Normal(0.0, 1.0), device);
    let y = Tensor::<2>::random([256, 2048], Distribution::Normal(0.0, 1.0), device);
    let small = timed(10, 200, || sync(x.clone().matmul(y.clone())));
    let one = Tensor::<1>::ones([1], device);
    let k = 2000;
    let tiny = timed(1, 5, || {
        let mut acc = one.clone();
        for _ in 0..k {
            acc = one.clone().add(one.clone());
        }
        let _ = acc.into_data();
    });
    // The same product as the Feedback step's host path computes it (`StepProducts::Host`:
    // mnemo-kernels on host rows, the result written to the device), with this machine's
    // instruction set.
    let packed = StepMatrix::from_transposed(y.transpose(), StepProducts::Host);
    let xs = x
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let host = timed(10, 200, || {
        sync(packed.apply_host(xs.clone(), 8, device));
    });
    json!({
        "sgemm_1024_gflop_per_s": round(2.0 * (n as f64).powi(3) / median(&big) / 1e9, 1),
        "mm_8x256x2048_gflop_per_s": round(2.0 * 8.0 * 256.0 * 2048.0 / median(&small) / 1e9, 1),
        "mm_8x256x2048_us": round(1e6 * median(&small), 2),
        "kernel_8x256x2048_gflop_per_s": round(2.0 * 8.0 * 256.0 * 2048.0 / median(&host) / 1e9, 1),
        "kernel_8x256x2048_us": round(1e6 * median(&host), 2),
        "kernel_isa": StepProducts::host_isa(),
        "tiny_op_us": round(1e6 * median(&tiny) / k as f64, 2),
    })
}

/// Time training steps of `w`: forward, cross-entropy, backward and Adam, as the trainer runs
/// them (`mnemo_train::LmStep`, `apply_update`), the state of one step carried (detached) to
/// the next.
fn phase_train(
    w: &Workload,
    (backward, products): (FeedbackBackward, StepProducts),
    device: &Device,
) -> anyhow::Result<Value> {
    w.config
        .validate()
        .map_err(|e| anyhow!("bench model config: {e}"))?;
    let (batch, segment) = (w.batch, w.segment);
    let mut model = w.config.init(device).with_step_products(products);
    let mut update = Update::new();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let data: Vec<(Vec<u32>, Vec<u32>)> = (0..4)
        .map(|_| {
            split_inputs(
                &random_tokens(batch, segment + 1, w.config.vocab_size(), &mut rng),
                batch,
                segment,
            )
        })
        .collect();
    let rss0 = rss_now_mb()?;
    let mut state = model.init_state(batch, device);
    let mut i = 0;
    let mut last_loss = f64::NAN;
    let step = LmStep::new(backward);
    let mut train_step = || {
        let (x, y) = &data[i % data.len()];
        i += 1;
        let lm_batch = LmBatch {
            tokens: tokens_tensor(x, [batch, segment], device),
            targets: y,
            no_label: u32::MAX,
        };
        let out = step.run(&model, lm_batch, state.clone());
        last_loss = out.stats.loss;
        state = out.next;
        model = update.apply(model.clone(), out.grads);
    };
    let times = timed(w.warmup, w.iters, &mut train_step);
    let sequential = matches!(w.config, ModelConfig::Feedback(_)).then_some(segment);
    let launched = launches(device, sequential, &mut train_step);
    let flops = match &w.config {
        ModelConfig::Feedback(c) => Some(fb_flops_per_token(c)),
        ModelConfig::Transformer(c) => tf_flops_per_token(c, segment.min(c.span) as f64 / 2.0),
        ModelConfig::TransformerXl(_) => None,
    };
    let mut res = summarize(&times, batch * segment, flops.map(|f| 3.0 * f));
    res["launches"] = launched;
    res["params"] = json!(model.num_params());
    res["last_loss"] = json!(round(last_loss, 4));
    res["rss_after_setup_mb"] = json!(round(rss0, 1));
    if let ModelConfig::Feedback(_) = w.config {
        res["lib_seq_len_chunk"] = json!(1);
        res["feedback_backward"] = json!(format!("{backward:?}").to_lowercase());
        res["step_products"] = json!(format!("{products:?}").to_lowercase());
    }
    Ok(res)
}

fn phase_fb_forward(device: &Device, products: StepProducts, p: Iters, size: &BenchSize) -> Value {
    let config = feedback_config(size);
    let model = ModelConfig::Feedback(config.clone())
        .init(device)
        .with_step_products(products);
    let (batch, segment) = (size.batch, size.segment);
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let data: Vec<Vec<u32>> = (0..4)
        .map(|_| random_tokens(batch, segment, size.vocab, &mut rng))
        .collect();
    let rss0 = rss_now_mb().unwrap_or(0.0);
    let mut state = model.init_state(batch, device);
    let mut i = 0;
    let mut forward = || {
        let tokens = tokens_tensor(&data[i % data.len()], [batch, segment], device);
        i += 1;
        // The evaluator's forward (`mnemo_train::forward_segment`).
        let out = forward_segment(&model, tokens, state.clone());
        let _ = out.logits.into_data();
        state = out.state;
    };
    let times = timed(1, p.fwd_iters, &mut forward);
    let launched = launches(device, Some(segment), &mut forward);
    let mut res = summarize(&times, batch * segment, Some(fb_flops_per_token(&config)));
    res["launches"] = launched;
    res["lib_seq_len_chunk"] = json!(1);
    res["step_products"] = json!(format!("{products:?}").to_lowercase());
    res["rss_after_setup_mb"] = json!(round(rss0, 1));
    res
}

/// On a GPU backend, the kernels one more call of `f` launches: `per_iter`, `per_step` (per
/// sequential step, `steps` of them per call; null when the call is not sequential) and the
/// ten most launched kernels; null on a CPU backend.
fn launches(device: &Device, steps: Option<usize>, f: &mut impl FnMut()) -> Value {
    let Some(count) = mnemo_backend::count_launches(device) else {
        return Value::Null;
    };
    f();
    let total = count.total();
    let top: Vec<(String, usize)> = count.by_kernel().into_iter().take(10).collect();
    json!({
        "per_iter": total,
        "per_step": steps.map(|n| round(total as f64 / n as f64, 2)),
        "top": top,
    })
}

/// Sample one token per row from `softmax(logits)`.
fn sample_rows(logits: Tensor<2>, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let [_b, v] = logits.dims();
    let values = logits
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 logits");
    values
        .chunks(v)
        .map(|row| mnemo_train::generate::sample(row, 1.0, rng))
        .collect()
}

/// Generate `n` sampled tokens for each of `batch` rows from one random token (of `vocab`) per
/// row (`(batch, n, vocab)`), one token a step, writing each step's wall time to `per_token`.
fn generate(
    model: &Model,
    (batch, n, vocab): (usize, usize, usize),
    rng: &mut ChaCha8Rng,
    device: &Device,
    per_token: &mut Vec<f64>,
) {
    per_token.clear();
    let mut tokens = random_tokens(batch, 1, vocab, rng);
    let mut state = model.init_state(batch, device);
    for _ in 0..n {
        let t0 = Instant::now();
        let ids: Vec<i64> = tokens.iter().map(|&i| i64::from(i)).collect();
        let token = Tensor::<1, Int>::from_data(TensorData::new(ids, [batch]), device);
        let out = model.forward_step(token, state);
        state = out.state;
        tokens = sample_rows(out.logits, rng);
        per_token.push(t0.elapsed().as_secs_f64());
    }
}

/// Time generation of `p.gen_tokens` sampled tokens per row at batch `batch`, one token a
/// step (Feedback: memory carried, the step's products by `products` as a trained model's on
/// this device; Transformer: its step state, e.g. a KV cache).
fn phase_gen(
    config: &ModelConfig,
    batch: usize,
    device: &Device,
    products: StepProducts,
    p: Iters,
) -> anyhow::Result<Value> {
    config
        .validate()
        .map_err(|e| anyhow!("bench model config: {e}"))?;
    let model = config.init(device).with_step_products(products).valid();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let n = p.gen_tokens;
    let rss0 = rss_now_mb().unwrap_or(0.0);
    let mut per_token = Vec::with_capacity(n);
    let vocab = config.vocab_size();
    let iters = match config {
        ModelConfig::Feedback(_) => p.gen_iters,
        _ => p.tf_gen_iters,
    };
    let times = timed(p.gen_warmup, iters, || {
        generate(&model, (batch, n, vocab), &mut rng, device, &mut per_token)
    });
    // The per-token times stay those of the last timed iteration.
    let mut generate = || generate(&model, (batch, n, vocab), &mut rng, device, &mut Vec::new());
    let launched = launches(device, Some(n), &mut generate);
    let flops = match config {
        ModelConfig::Feedback(c) => Some(fb_flops_per_token(c)),
        ModelConfig::Transformer(c) => (0..n)
            .map(|i| tf_flops_per_token(c, (i + 1).min(c.span) as f64))
            .sum::<Option<f64>>()
            .map(|f| f / n as f64),
        ModelConfig::TransformerXl(_) => None,
    };
    let mut res = summarize(&times, batch * n, flops);
    res["launches"] = launched;
    res["batch"] = json!(batch);
    if let ModelConfig::Feedback(_) = config {
        res["step_products"] = json!(format!("{products:?}").to_lowercase());
    }
    res["new_tokens_per_row"] = json!(n);
    res["params"] = json!(model.num_params());
    res["rss_after_setup_mb"] = json!(round(rss0, 1));
    let span = match config {
        ModelConfig::Feedback(c) => c.span,
        ModelConfig::Transformer(c) => c.span,
        // Not generated by any phase.
        ModelConfig::TransformerXl(_) => n,
    };
    if n > span {
        let tail = &per_token[span..];
        let total: f64 = tail.iter().sum();
        res["steady_tokens_per_s"] = json!(round((batch * tail.len()) as f64 / total, 1));
        res["steady_ms_per_step"] = json!(round(1e3 * total / tail.len() as f64, 3));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_and_targets_are_shifted_rows() {
        let ids = [1, 2, 3, 4, 5, 6];
        let (x, y) = split_inputs(&ids, 2, 2);
        assert_eq!(x, vec![1, 2, 4, 5]);
        assert_eq!(y, vec![2, 3, 5, 6]);
    }
}
