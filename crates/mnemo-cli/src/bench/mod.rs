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
//! | `mt_fb2_train`, `mt_tf2_train`, `mt_tf6_train` | a translation training step of en-es-longer's models ([`translation`]) |
//!
//! The default run is the peer's phases; the Transformer options run with `--only
//! var_linear_train,...` or `--only variants` (all twelve). Each is the peer config with one
//! change ([`variant_config`]): `linear` (linear attention, sum update; Katharopoulos et al.
//! 2020), `delta` (linear attention, delta rule; Schlag et al. 2021), `performer` (FAVOR+, 64
//! features; Choromanski et al. 2021), `sparse` (BigBird blocks of 16, window 1, global 1,
//! random 1; Zaheer et al. 2020), `persistent` (16 persistent key/value slots per head and
//! layer; Sukhbaatar et al. 2019), `all_attention` (64 persistent slots, no feed-forward
//! sublayer). `mnemo bench --scaling` times one training step against the sequence length
//! instead (see [`scaling`]). `--only translation` runs the three translation phases
//! (tokens/s there: the median of the steps' scored target tokens per second).
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
//!
//! The code: [`workload`] (the models and phase names), [`phases`] (what each phase times),
//! [`timing`] (medians, tokens/s, FLOPs), [`proc_stats`] (RSS, CPU time, an idle machine),
//! [`scaling`] (`--scaling`), [`size`] (`--size`), [`translation`] (the `mt_` phases).
mod phases;
mod proc_stats;
pub(crate) mod scaling;
pub(crate) mod size;
mod timing;
mod translation;
mod workload;

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use mnemo_models::StepProducts;
use mnemo_train::{FeedbackBackward, step_products};
use serde_json::{Value, json};

use crate::backend_arg::BackendArg;
use phases::{FULL, QUICK, run_phase};
use proc_stats::{clock_ticks, cpu_jiffies, own_cpu_s, peak_rss_mb, wait_for_idle};
pub(crate) use proc_stats::{cpu_model, round};
use size::BenchSize;
use translation::MT_PHASES;
pub(crate) use workload::{attention_of, transformer_config};
use workload::{select_phases, variant_phases};

/// Arguments of `mnemo bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    backend: BackendArg,
    /// Comma list of phases to run (default: the peer's phases); also `var_<option>_train`,
    /// `var_<option>_gen_b1` (option: linear, delta, performer, sparse, persistent,
    /// all_attention) or `variants` for all of those; `mt_fb2_train`, `mt_tf2_train`,
    /// `mt_tf6_train` or `translation` for those three; with `--scaling`, `scale_<mech>_<T>`.
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
pub(crate) const LR: f64 = 3e-4;
/// The batch of the `_b8` generation phases.
pub(crate) const GEN_BATCH: usize = 8;
pub(crate) const SEED: u64 = 0;
/// Share of all CPUs other processes may use before a phase counts as disturbed (as the peer).
const FOREIGN_OK: f64 = 0.05;

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
        let names = scaling::select_points(&args.only)?;
        return scaling::run(
            &names,
            scaling::Settings {
                backend: &args.backend.backend,
                quick: args.quick,
                max_mb: args.max_mb,
                out: args.out.as_deref(),
            },
            |name| run_best(&exe, name, args),
        );
    }
    let peer: Vec<String> = PHASES.iter().map(|p| p.to_string()).collect();
    let allowed: Vec<String> = (peer.iter().cloned())
        .chain(variant_phases())
        .chain(MT_PHASES.iter().map(|p| p.to_string()))
        .collect();
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
