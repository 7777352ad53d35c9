//! `mnemo bench`: the phases of the peer benchmark (`bench/peer_feedback.py`) on mnemo's models.
//!
//! The config is the peer's (bytes, D 256, 4 layers, 4 heads, FFN 1024, segment 128, memory
//! 128, batch 8, Adam 3e-4, no dropout); `--size gpu` runs a GPU-sized one instead (D 512,
//! 6 layers, 8 heads, FFN 2048, batch 64; [`BenchSize`]) and `--layers N` changes the layer
//! count. Each phase runs in its own child process (this binary with the hidden `--phase NAME`),
//! so each has its own peak RSS, and prints one JSON line; the parent gathers them into one
//! JSON document with the same phase names as the peer:
//!
//! | phase               | what is timed                                                      |
//! |---------------------|--------------------------------------------------------------------|
//! | `ref`               | a 1024³ matmul, an 8×256×2048 matmul, a trivial op (per-op floor)  |
//! | `fb_train_chunk1`   | Feedback train step: exact forward, cross-entropy, backward, Adam  |
//! | `fb_forward_chunk1` | Feedback forward over a segment (no gradients), memory carried     |
//! | `fb_gen_b1`, `_b8`  | Feedback generation, 256 sampled tokens per row, one token a step  |
//! | `tf_train`          | Transformer (parallel over T) train step                            |
//! | `tf_gen_b1`, `_b8`  | Transformer generation with a KV cache (the peer has no cache)     |
//! | `var_<option>_train`, `var_<option>_gen_b1` | `tf_train` / `tf_gen_b1` with one Transformer option (below) |
//!
//! The default run is the peer's phases; the Transformer options run with `--only
//! var_linear_train,...` or `--only variants` (all twelve). Each is the peer config with one
//! change ([`variant_config`]): `linear` (linear attention, sum update; Katharopoulos et al.
//! 2020), `delta` (linear attention, delta rule; Schlag et al. 2021), `performer` (FAVOR+, 64
//! features; Choromanski et al. 2021), `sparse` (BigBird blocks of 16, window 1, global 1,
//! random 1; Zaheer et al. 2020), `persistent` (16 persistent key/value slots per head and
//! layer; Sukhbaatar et al. 2019), `all_attention` (64 persistent slots, no feed-forward
//! sublayer). `mnemo bench --scaling` times one training step against the sequence length
//! instead (see [`crate::bench_scaling`]).
//!
//! tokens/s is `tokens per iteration / median iteration time` after warm-up (as the peer);
//! `approx_gflop_per_s` counts matmul FLOPs only (training = 3 × forward; `null` for linear,
//! Performer and sparse attention, whose attention FLOPs the formula does not model);
//! `foreign_cpu_frac` is the share of all CPUs other processes used while the phase ran.
//!
//! On a GPU backend (`wgpu`, `cuda`) each phase also counts the compute kernels (dispatches) of
//! one more iteration after the timed ones, as `launches`: `per_iter`, `per_step` (per
//! sequential step: per token of a Feedback segment, per generated token; null for the
//! Transformer's parallel training step) and `top`, the ten most launched kernels
//! ([`mnemo_backend::count_launches`]); `launches` is null on a CPU backend.
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use burn::module::Module;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use clap::Args;
use mnemo_models::StepProducts;
use mnemo_models::attention_config::LinearUpdate;
use mnemo_models::feedback::StepMatrix;
use mnemo_models::{AttentionConfig, FeedbackConfig, Model, ModelConfig, TransformerConfig};
use mnemo_train::{
    FeedbackBackward, LmBatch, LmStep, OptimConfig, apply_update, forward_segment, step_products,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::backend_arg::BackendArg;
use crate::bench_size::BenchSize;

/// Arguments of `mnemo bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    backend: BackendArg,
    /// Comma list of phases to run (default: the peer's phases); also `var_<option>_train`,
    /// `var_<option>_gen_b1` (option: linear, delta, performer, sparse, persistent,
    /// all_attention) or `variants` for all of those; with `--scaling`, `scale_<mech>_<T>`.
    #[arg(long, default_value = "")]
    only: String,
    /// Model and batch sizes: `peer` (the peer benchmark's config) or `gpu` (D 512, 6 layers,
    /// 8 heads, FFN 2048, batch 64).
    #[arg(long, default_value = "peer")]
    size: String,
    /// Number of layers instead of the size's (e.g. to count one layer's GPU dispatches as
    /// the difference of two runs).
    #[arg(long)]
    layers: Option<usize>,
    /// Time one training step against the sequence length (T = 256 … 4096; softmax, linear,
    /// delta, performer, sparse attention) instead of the peer's phases; prints a JSON document
    /// and a markdown table.
    #[arg(long)]
    scaling: bool,
    /// With `--scaling`: skip a point whose predicted peak memory exceeds MB (default: 80 % of
    /// the memory available when the point starts).
    #[arg(long, value_name = "MB")]
    max_mb: Option<f64>,
    /// Short smoke run (few iterations, 32 generated tokens).
    #[arg(long)]
    quick: bool,
    /// Training backward of the Feedback model and the Transformer: `manual` (hand-written,
    /// default; the Transformer's on CPU backends) or `autodiff`.
    #[arg(long, default_value = "manual")]
    feedback_backward: String,
    /// Per-step products of the manual backward: `auto` (host kernels on a CPU backend),
    /// `host` (mnemo-kernels) or `backend` (burn's matmul).
    #[arg(long, default_value = "auto")]
    step_products: String,
    /// Before each phase wait up to S seconds for an idle machine, and re-run a phase that
    /// other load disturbed (up to twice).
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    wait_idle: f64,
    /// Also write the JSON document to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Run one phase in this process (used by the parent; prints one JSON line).
    #[arg(long, hide = true)]
    phase: Option<String>,
}

/// Every phase, in run order.
pub const PHASES: &[&str] = &[
    "ref",
    "fb_train_chunk1",
    "fb_forward_chunk1",
    "fb_gen_b1",
    "fb_gen_b8",
    "tf_train",
    "tf_gen_b1",
    "tf_gen_b8",
];

/// The Transformer options timed at the peer config (`var_<option>_train`,
/// `var_<option>_gen_b1`); see [`variant_config`].
pub const VARIANTS: &[&str] = &[
    "linear",
    "delta",
    "performer",
    "sparse",
    "persistent",
    "all_attention",
];

/// The peer's Adam learning rate.
const LR: f64 = 3e-4;
/// The batch of the `_b8` generation phases.
const GEN_BATCH: usize = 8;
const SEED: u64 = 0;
/// Share of all CPUs other processes may use before a phase counts as disturbed (as the peer).
const FOREIGN_OK: f64 = 0.05;

/// Iteration counts (the peer's FULL and QUICK).
#[derive(Debug, Clone, Copy)]
struct Iters {
    train_warmup: usize,
    train_iters: usize,
    fwd_iters: usize,
    gen_warmup: usize,
    gen_iters: usize,
    gen_tokens: usize,
    tf_gen_iters: usize,
    scale_warmup: usize,
    scale_iters: usize,
}

const FULL: Iters = Iters {
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
const QUICK: Iters = Iters {
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

/// The model sizes of `$size` ([`BenchSize`]) as a config of type `$config` (fields named
/// alike in every mnemo language-model config), with `$extra` fields of that type after them.
macro_rules! sized_config {
    ($size:expr, $config:ident { $($extra:tt)* }) => {
        $config {
            vocab_size: $size.vocab,
            d_model: $size.d_model,
            n_layers: $size.n_layers,
            n_heads: $size.n_heads,
            d_ff: $size.d_ff,
            span: $size.memory,
            dropout: 0.0,
            norm: Default::default(),
            placement: Default::default(),
            $($extra)*
        }
    };
}

fn feedback_config(size: &BenchSize) -> FeedbackConfig {
    sized_config!(
        size,
        FeedbackConfig {
            share_kv: true,
            memory: Default::default(),
            ..FeedbackConfig::tiny(size.vocab)
        }
    )
}

pub(crate) fn transformer_config(size: &BenchSize) -> TransformerConfig {
    sized_config!(
        size,
        TransformerConfig {
            attention: Default::default(),
            persistent_memory: 0,
            feed_forward: true,
            init: Default::default(),
            adaptive_span: None,
        }
    )
}

/// The attention of mechanism `name` (`softmax`, `linear` (sum), `delta`, `performer` (64
/// features), `sparse` (blocks of 16, window 1, global 1, random 1)) with chunks of 64 and seed
/// 0; None for another name.
pub(crate) fn attention_of(name: &str) -> Option<AttentionConfig> {
    let linear = |update| AttentionConfig::Linear {
        update,
        chunk: 64,
        carry: false,
    };
    Some(match name {
        "softmax" => AttentionConfig::Softmax,
        "linear" => linear(LinearUpdate::Sum),
        "delta" => linear(LinearUpdate::Delta),
        "performer" => AttentionConfig::Performer {
            features: 64,
            chunk: 64,
            seed: 0,
            redraw_every: 0,
            carry: false,
        },
        "sparse" => AttentionConfig::Sparse {
            block: 16,
            window: 1,
            global: 1,
            random: 1,
            seed: 0,
        },
        _ => return None,
    })
}

/// The Transformer config of `size` with Transformer option `name` (one of [`VARIANTS`]); None
/// for another name.
pub(crate) fn variant_config(name: &str, size: &BenchSize) -> Option<TransformerConfig> {
    let mut config = transformer_config(size);
    match name {
        "persistent" => config.persistent_memory = 16,
        "all_attention" => {
            config.persistent_memory = 64;
            config.feed_forward = false;
        }
        "softmax" => return None,
        other => config.attention = attention_of(other)?,
    }
    Some(config)
}

/// What a variant phase `var_<option>_train` / `var_<option>_gen_b1` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VariantPhase {
    Train,
    GenB1,
}

/// The option and kind of a variant phase name; None for another name.
fn variant_phase(name: &str) -> Option<(&str, VariantPhase)> {
    let rest = name.strip_prefix("var_")?;
    let (option, kind) = match rest.strip_suffix("_train") {
        Some(option) => (option, VariantPhase::Train),
        None => (rest.strip_suffix("_gen_b1")?, VariantPhase::GenB1),
    };
    VARIANTS.contains(&option).then_some((option, kind))
}

/// Every variant phase name, in run order.
pub fn variant_phases() -> Vec<String> {
    VARIANTS
        .iter()
        .flat_map(|v| [format!("var_{v}_train"), format!("var_{v}_gen_b1")])
        .collect()
}

/// The phases `--only` names (empty: the peer's phases; `variants`: every variant phase), or
/// an error naming `--only` and listing the phases `allowed`.
pub(crate) fn select_phases(
    only: &str,
    default: &[String],
    allowed: &[String],
) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = match only.trim() {
        "" => default.to_vec(),
        list => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .flat_map(|n| match n {
                "variants" => variant_phases(),
                n => vec![n.to_string()],
            })
            .collect(),
    };
    if let Some(bad) = names.iter().find(|n| !allowed.contains(n)) {
        bail!(
            "--only: unknown phase `{bad}`; phases: {}",
            allowed.join(",")
        );
    }
    Ok(names)
}

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

/// Run the benchmark (all phases in child processes) or, with `--phase`, one phase here.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let iters = if args.quick { QUICK } else { FULL };
    let backward = match args.feedback_backward.as_str() {
        "manual" => FeedbackBackward::Manual,
        "autodiff" => FeedbackBackward::Autodiff,
        other => bail!("--feedback-backward: expected `manual` or `autodiff`, got `{other}`"),
    };
    let size = BenchSize::parse(&args.size, args.layers)?;
    let device = args.backend.device()?;
    let products = match args.step_products.as_str() {
        "auto" => step_products(&device),
        "host" => StepProducts::Host,
        "backend" => StepProducts::Backend,
        other => bail!("--step-products: expected `auto`, `host` or `backend`, got `{other}`"),
    };
    if let Some(phase) = &args.phase {
        let started = Instant::now();
        let mut result = run_phase(phase, &device, (backward, products), iters, &size)?;
        result["peak_rss_mb"] = json!(round(peak_rss_mb()?, 1));
        result["cpu_s"] = json!(round(own_cpu_s()?, 3));
        result["phase_wall_s"] = json!(round(started.elapsed().as_secs_f64(), 2));
        println!("{result}");
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the mnemo binary to run phases")?;
    if args.scaling {
        let names = crate::bench_scaling::select_points(&args.only)?;
        return crate::bench_scaling::run(
            &names,
            crate::bench_scaling::Settings {
                backend: &args.backend.backend,
                quick: args.quick,
                max_mb: args.max_mb,
                out: args.out.as_deref(),
            },
            |name| run_best(&exe, name, args),
        );
    }
    let peer: Vec<String> = PHASES.iter().map(|p| p.to_string()).collect();
    let allowed: Vec<String> = peer.iter().cloned().chain(variant_phases()).collect();
    let names = select_phases(&args.only, &peer, &allowed)?;
    let started = Instant::now();
    let mut results = serde_json::Map::new();
    for name in &names {
        let name = name.as_str();
        let best = run_best(&exe, name, args)?;
        // On a GPU backend, the dispatches per sequential step (or per iteration).
        let launches =
            best.get("launches")
                .filter(|l| !l.is_null())
                .map(|l| match l["per_step"].as_f64() {
                    Some(per_step) => format!(", {per_step} dispatches/step"),
                    None => format!(", {} dispatches/iteration", l["per_iter"]),
                });
        eprintln!(
            "[{:7.1}s] {name}: {} (foreign cpu {}{})",
            started.elapsed().as_secs_f64(),
            best.get("tokens_per_s").unwrap_or(&best),
            best["foreign_cpu_frac"],
            launches.unwrap_or_default()
        );
        results.insert(name.to_string(), best);
    }
    let doc = json!({
        "benchmark": "mnemo_feedback",
        "mode": if args.quick { "quick" } else { "full" },
        "backend": args.backend.backend,
        "cpu": cpu_model(),
        "dtype": "f32",
        "feedback_backward": args.feedback_backward,
        "step_products": format!("{products:?}").to_lowercase(),
        "size": args.size,
        "config": size.to_json(LR, SEED),
        "protocol": {
            "train": "tokens/s = batch*segment_len / median step time; step = forward + \
                      cross-entropy + backward + Adam; memory of the previous step carried \
                      (detached)",
            "generation": "tokens/s = batch*new_tokens / median wall time; sampling from \
                           softmax(logits) from one random start token; feedback: memory \
                           carried step to step; transformer: KV cache",
            "approx_gflop_per_s": "matmul FLOPs only, training = 3x forward",
        },
        "results": results,
        "total_wall_s": round(started.elapsed().as_secs_f64(), 1),
    });
    let text = serde_json::to_string_pretty(&doc)?;
    println!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, text + "\n").with_context(|| format!("--out {}", out.display()))?;
    }
    Ok(())
}

/// Run phase `name` in a child process; with `--wait-idle`, wait for an idle machine first and
/// re-run (up to twice) while other load disturbed it, keeping the least disturbed attempt.
fn run_best(exe: &std::path::Path, name: &str, args: &BenchArgs) -> anyhow::Result<Value> {
    let mut best: Option<Value> = None;
    let attempts = if args.wait_idle > 0.0 { 3 } else { 1 };
    for attempt in 1..=attempts {
        if args.wait_idle > 0.0 {
            wait_for_idle(args.wait_idle)?;
        }
        let mut res = run_child(exe, name, args)?;
        res["attempt"] = json!(attempt);
        // A failed phase (e.g. out of memory) is not retried.
        let failed = res.get("error").is_some();
        let foreign = res["foreign_cpu_frac"].as_f64().unwrap_or(1.0);
        let better = best
            .as_ref()
            .is_none_or(|b| foreign < b["foreign_cpu_frac"].as_f64().unwrap_or(1.0));
        if better {
            best = Some(res);
        }
        if foreign <= FOREIGN_OK || failed {
            break;
        }
    }
    Ok(best.expect("at least one attempt"))
}

fn run_child(exe: &std::path::Path, name: &str, args: &BenchArgs) -> anyhow::Result<Value> {
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "--phase", name, "--backend", &args.backend.backend]);
    cmd.args(["--feedback-backward", &args.feedback_backward]);
    cmd.args(["--step-products", &args.step_products]);
    cmd.args(["--size", &args.size]);
    if let Some(layers) = args.layers {
        cmd.args(["--layers", &layers.to_string()]);
    }
    if args.quick {
        cmd.arg("--quick");
    }
    let (busy0, total0) = cpu_jiffies()?;
    let out = cmd
        .output()
        .with_context(|| format!("cannot run phase {name}"))?;
    let (busy1, total1) = cpu_jiffies()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // A child killed by a signal (e.g. the kernel's out-of-memory killer) prints nothing.
        let status = out.status.to_string();
        let err = err.lines().last().unwrap_or(&status);
        return Ok(json!({"error": err, "foreign_cpu_frac": 1.0}));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| anyhow!("phase {name} printed nothing"))?;
    let mut res: Value =
        serde_json::from_str(line).with_context(|| format!("phase {name} output"))?;
    let hz = clock_ticks();
    let child_cpu = res["cpu_s"].as_f64().unwrap_or(0.0);
    let busy_s = (busy1 - busy0) as f64 / hz;
    let total_s = ((total1 - total0) as f64 / hz).max(1e-9);
    res["foreign_cpu_frac"] = json!(round(((busy_s - child_cpu).max(0.0)) / total_s, 3));
    Ok(res)
}

// ---------------------------------------------------------------- phases ---

fn run_phase(
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
            if let Some((mechanism, len)) = crate::bench_scaling::parse_point(other) {
                let config = crate::bench_scaling::scaling_config(mechanism, len)
                    .expect("a listed mechanism");
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

fn timed(warmup: usize, iters: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        f();
    }
    (0..iters)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect()
}

fn median(times: &[f64]) -> f64 {
    let mut v = times.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Tokens/s of the timed iterations; `flops_per_token` None writes `approx_gflop_per_s: null`.
fn summarize(times: &[f64], tokens_per_iter: usize, flops_per_token: Option<f64>) -> Value {
    let med = median(times);
    let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
    json!({
        "tokens_per_iter": tokens_per_iter,
        "iter_s": times.iter().map(|t| round(*t, 4)).collect::<Vec<_>>(),
        "median_iter_s": round(med, 4),
        "tokens_per_s": round(tokens_per_iter as f64 / med, 1),
        "best_tokens_per_s": round(tokens_per_iter as f64 / best, 1),
        "approx_gflop_per_s": flops_per_token
            .map(|f| round(f * tokens_per_iter as f64 / med / 1e9, 3)),
    })
}

/// Matmul FLOPs of one Feedback token (forward): per layer q, q·kᵀ, q·pᵀ, a·v, output, FFN;
/// once per token the shared K/V projection; the output layer.
fn fb_flops_per_token(c: &FeedbackConfig) -> f64 {
    let (d, s, ff) = (c.d_model as f64, c.span as f64, c.d_ff as f64);
    let per_layer = 2.0 * d * d + 2.0 * s * d * 3.0 + 2.0 * d * d + 2.0 * 2.0 * d * ff;
    c.n_layers as f64 * per_layer + 2.0 * d * 2.0 * d + 2.0 * d * c.vocab_size as f64
}

/// Matmul FLOPs of one token of Transformer `c` attending to `ctx` positions (forward): per
/// layer the q/k/v projections, q·kᵀ, q·pᵀ and a·v over `ctx` keys, q·kᵀ and a·v over the
/// persistent slots, the output projection and the feed-forward sublayer (if any); the
/// output layer. None for linear, Performer and sparse attention (not modelled).
fn tf_flops_per_token(c: &TransformerConfig, ctx: f64) -> Option<f64> {
    if c.attention != AttentionConfig::Softmax {
        return None;
    }
    let (d, ff, slots) = (c.d_model as f64, c.d_ff as f64, c.persistent_memory as f64);
    let ffn = if c.feed_forward {
        2.0 * 2.0 * d * ff
    } else {
        0.0
    };
    let per_layer =
        2.0 * d * 3.0 * d + 2.0 * ctx * d * 3.0 + 2.0 * slots * d * 2.0 + 2.0 * d * d + ffn;
    Some(c.n_layers as f64 * per_layer + 2.0 * d * c.vocab_size as f64)
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
    let optim = OptimConfig::new(LR);
    let mut optimizer = optim.init();
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
        (model, _) = apply_update(
            &mut optimizer,
            model.clone(),
            out.grads,
            LR,
            optim.grad_clip,
        );
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

// ------------------------------------------------------- process stats ---

pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A `kB` field of `/proc/self/status`, in MB.
fn status_mb(field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| anyhow!("/proc/self/status has no {field}"))?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("/proc/self/status: bad {field} line `{line}`"))?;
    Ok(kb / 1024.0)
}

fn peak_rss_mb() -> anyhow::Result<f64> {
    status_mb("VmHWM:")
}

fn rss_now_mb() -> anyhow::Result<f64> {
    status_mb("VmRSS:")
}

/// Clock ticks per second of `/proc` times (100 on Linux).
fn clock_ticks() -> f64 {
    100.0
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
fn own_cpu_s() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or(&stat);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((ticks(11) + ticks(12)) / clock_ticks())
}

/// (busy, total) jiffies over all CPUs, from `/proc/stat`.
fn cpu_jiffies() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("/proc/stat")?;
    let first = stat.lines().next().unwrap_or_default();
    let v: Vec<u64> = first
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        bail!("/proc/stat: unexpected first line `{first}`");
    }
    let total: u64 = v.iter().sum();
    Ok((total - v[3] - v[4], total))
}

/// The CPU model (`model name` of `/proc/cpuinfo`), or `unknown`.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Wait (at most `max_wait_s`) until the machine's CPUs are at most 10 % busy.
fn wait_for_idle(max_wait_s: f64) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        let (b0, t_0) = cpu_jiffies()?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        let (b1, t_1) = cpu_jiffies()?;
        let busy = (b1 - b0) as f64 / (t_1 - t_0).max(1) as f64;
        if busy <= 0.10 || t0.elapsed().as_secs_f64() > max_wait_s {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: BenchSize = BenchSize::PEER;

    #[test]
    fn inputs_and_targets_are_shifted_rows() {
        let ids = [1, 2, 3, 4, 5, 6];
        let (x, y) = split_inputs(&ids, 2, 2);
        assert_eq!(x, vec![1, 2, 4, 5]);
        assert_eq!(y, vec![2, 3, 5, 6]);
    }

    #[test]
    fn each_variant_is_the_peer_config_with_only_its_option() {
        let linear = |update| AttentionConfig::Linear {
            update,
            chunk: 64,
            carry: false,
        };
        let expected = [
            ("linear", linear(LinearUpdate::Sum), 0, true),
            ("delta", linear(LinearUpdate::Delta), 0, true),
            (
                "performer",
                AttentionConfig::Performer {
                    features: 64,
                    chunk: 64,
                    seed: 0,
                    redraw_every: 0,
                    carry: false,
                },
                0,
                true,
            ),
            (
                "sparse",
                AttentionConfig::Sparse {
                    block: 16,
                    window: 1,
                    global: 1,
                    random: 1,
                    seed: 0,
                },
                0,
                true,
            ),
            ("persistent", AttentionConfig::Softmax, 16, true),
            ("all_attention", AttentionConfig::Softmax, 64, false),
        ];
        assert_eq!(VARIANTS.len(), expected.len());
        for (name, attention, persistent_memory, feed_forward) in expected {
            let config = variant_config(name, &PEER).unwrap();
            let want = TransformerConfig {
                attention,
                persistent_memory,
                feed_forward,
                ..transformer_config(&PEER)
            };
            assert_eq!(config, want, "{name}");
            config.validate().unwrap();
        }
        for other in ["softmax", "fourier", "tf_train", ""] {
            assert_eq!(variant_config(other, &PEER), None, "{other}");
        }
    }

    #[test]
    fn variants_keep_the_parameter_count_except_all_attention_without_ffn() {
        let device = mnemo_backend::device(mnemo_backend::DEFAULT_BACKEND).unwrap();
        let count = |c: TransformerConfig| ModelConfig::Transformer(c).init(&device).num_params();
        let softmax = count(transformer_config(&PEER));
        for name in VARIANTS.iter().filter(|n| **n != "all_attention") {
            let n = count(variant_config(name, &PEER).unwrap());
            let rel = (n as f64 - softmax as f64).abs() / softmax as f64;
            assert!(rel < 0.02, "{name}: {n} params vs softmax {softmax}");
        }
        // All-attention: minus each layer's feed-forward sublayer (two weights, two biases, its
        // LayerNorm), plus 64 key and 64 value slots of width D per layer.
        let (l, d, ff) = (PEER.n_layers, PEER.d_model, PEER.d_ff);
        let all = count(variant_config("all_attention", &PEER).unwrap());
        assert_eq!(
            all,
            softmax - l * (2 * d * ff + ff + d + 2 * d) + l * 2 * 64 * d
        );
    }

    #[test]
    fn only_selects_peer_variant_and_scaling_phases_and_names_itself_when_refusing() {
        let peer: Vec<String> = PHASES.iter().map(|p| p.to_string()).collect();
        let allowed: Vec<String> = peer.iter().cloned().chain(variant_phases()).collect();
        assert_eq!(select_phases("", &peer, &allowed).unwrap(), peer);
        let all = select_phases("tf_train, variants", &peer, &allowed).unwrap();
        assert_eq!(all.len(), 1 + 2 * VARIANTS.len());
        assert_eq!(
            &all[..3],
            ["tf_train", "var_linear_train", "var_linear_gen_b1"]
        );
        // Every listed variant phase is one the child runs, with its option's config.
        for name in &all[1..] {
            let (option, _) = variant_phase(name).expect(name);
            assert!(variant_config(option, &PEER).is_some(), "{name}");
        }
        for bad in [
            "var_softmax_train",
            "var_linear_gen_b8",
            "scale_softmax_256",
            "nope",
        ] {
            let err = select_phases(bad, &peer, &allowed).unwrap_err().to_string();
            assert!(err.starts_with("--only: unknown phase"), "{err}");
            assert!(
                err.contains(&format!("`{bad}`")) && err.contains("var_delta_gen_b1"),
                "{err}"
            );
            assert_eq!(variant_phase(bad), None);
        }
    }

    #[test]
    fn flops_are_modelled_for_softmax_only() {
        let peer = transformer_config(&PEER);
        // The formula tf_train has always used: 4 layers, 64 keys per query on average.
        let (d, ff) = (PEER.d_model as f64, PEER.d_ff as f64);
        let layer = 2.0 * d * 3.0 * d + 2.0 * 64.0 * d * 3.0 + 2.0 * d * d + 4.0 * d * ff;
        let want = 4.0 * layer + 2.0 * d * PEER.vocab as f64;
        assert_eq!(tf_flops_per_token(&peer, 64.0), Some(want));
        let all = variant_config("all_attention", &PEER).unwrap();
        let slots = 4.0 * (2.0 * 64.0 * d * 2.0 - 4.0 * d * ff);
        assert_eq!(tf_flops_per_token(&all, 64.0), Some(want + slots));
        for name in ["linear", "delta", "performer", "sparse"] {
            assert_eq!(
                tf_flops_per_token(&variant_config(name, &PEER).unwrap(), 64.0),
                None
            );
        }
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
