//! `mnemo bench --scaling`: time and peak memory of one training step against the sequence
//! length T, for five self-attention mechanisms.
//!
//! Per layer and head (width d_h, T positions of one segment), what the parallel pass costs:
//!
//! | mechanism | output at position t | time | memory |
//! |---|---|---|---|
//! | softmax (Vaswani et al. 2017), span S = T | `Σ_{i≤t} softmax_i(q_t·k_i + q_t·p_{t-i}) v_i` | O(T² d_h) | O(T²) scores |
//! | linear, sum (Katharopoulos et al. 2020) | `φ(q_t)ᵀ W_t / φ(q_t)ᵀ z_t`, `W_t = Σ_{i≤t} φ(k_i) v_iᵀ`, `φ = elu + 1` | O(T c d_h + T d_h²) | O(T c + (T/c) d_h²) |
//! | linear, delta rule (Schlag et al. 2021) | `W_tᵀφ̂(q_t)`, `W_t = W_{t-1} + β_t φ̂(k_t)(v_t − W_{t-1}ᵀφ̂(k_t))ᵀ`, in chunks of c by a triangular solve | O(T c (c + d_h) + T d_h²) | O(T c + (T/c) d_h²) |
//! | Performer FAVOR+ (Choromanski et al. 2021), m features | as linear with `φ(x) = exp(ωᵀx − ‖x‖²/2)/√m` | O(T c m + T m d_h) | O(T c + (T/c) m d_h) |
//! | sparse, BigBird blocks (Zaheer et al. 2020) | softmax over its own block, `window` earlier, `global` first and `random` blocks | O(T (1+w+g+r) b d_h) | O(T (1+w+g+r) b) |
//!
//! (c: chunk of the prefix-sum form, 64; b: block, 16.) Each point (mechanism, T) runs in its
//! own child process (`mnemo bench --phase scale_<mechanism>_<T>`): the peer width (D 256, 4
//! heads, FFN 1024, bytes) with **2 layers**, batch 1, one segment of T tokens, span T (softmax
//! attends every earlier position; sparse's relative-position table has T rows; linear, delta
//! and Performer read no positions). A step is the trainer's: forward, cross-entropy,
//! backward, Adam. The child reports the median step time and its peak RSS (VmHWM, setup
//! included).
//!
//! Before a point runs, its peak memory is predicted from the same mechanism's two longest
//! measured points by a fit `a + b·T²` (exact for quadratic growth, an over-estimate for
//! linear growth); a point predicted above the limit (`--max-mb`, default 80 % of the memory
//! available then) is reported as skipped, as is a point whose child fails (e.g. killed for
//! memory) and every longer T of that mechanism after it.
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use mnemo_models::TransformerConfig;
use serde_json::{Value, json};

use crate::bench::size::BenchSize;
use crate::bench::{attention_of, cpu_model, round};

/// The mechanisms compared, in table order.
pub const MECHANISMS: &[&str] = &["softmax", "linear", "delta", "performer", "sparse"];

/// The sequence lengths T of the default grid.
pub const LENGTHS: &[usize] = &[256, 512, 1024, 2048, 4096];

/// Layers of the scaling model (the peer's width, fewer layers).
pub const LAYERS: usize = 2;

/// Longest T a `scale_<mechanism>_<T>` name may ask for.
const MAX_LEN: usize = 1 << 16;

/// Share of the available memory a point may be predicted to use (without `--max-mb`).
const MEMORY_SHARE: f64 = 0.8;

/// The config of point (`mechanism`, `len`): the peer Transformer with [`LAYERS`] layers, span
/// `len` and the mechanism's attention; None for a mechanism not in [`MECHANISMS`].
pub fn scaling_config(mechanism: &str, len: usize) -> Option<TransformerConfig> {
    if !MECHANISMS.contains(&mechanism) {
        return None;
    }
    let mut config = crate::bench::transformer_config(&BenchSize::PEER);
    config.n_layers = LAYERS;
    config.span = len;
    config.attention = attention_of(mechanism)?;
    Some(config)
}

/// The phase name of a point: `scale_<mechanism>_<len>`.
pub fn point_name(mechanism: &str, len: usize) -> String {
    format!("scale_{mechanism}_{len}")
}

/// The mechanism and T of a phase name `scale_<mechanism>_<T>` (mechanism in [`MECHANISMS`],
/// 1 ≤ T ≤ 65536); None for another name.
pub fn parse_point(name: &str) -> Option<(&'static str, usize)> {
    let (mechanism, len) = name.strip_prefix("scale_")?.rsplit_once('_')?;
    let mechanism = *MECHANISMS.iter().find(|m| **m == mechanism)?;
    let len: usize = len.parse().ok()?;
    (1..=MAX_LEN).contains(&len).then_some((mechanism, len))
}

/// The default grid's phase names, shortest T first (every mechanism at one T, then the next
/// T), so a point's shorter lengths have run before it.
pub fn grid_names() -> Vec<String> {
    LENGTHS
        .iter()
        .flat_map(|&len| MECHANISMS.iter().map(move |m| point_name(m, len)))
        .collect()
}

/// The points `--only` names (empty: the default grid), or an error naming `--only`.
pub fn select_points(only: &str) -> anyhow::Result<Vec<String>> {
    if only.trim().is_empty() {
        return Ok(grid_names());
    }
    let names: Vec<String> = only
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = names.iter().find(|n| parse_point(n).is_none()) {
        anyhow::bail!(
            "--only: unknown scaling point `{bad}`; points are scale_<mechanism>_<T> with \
             mechanism {} and 1 <= T <= {MAX_LEN} (default: {})",
            MECHANISMS.join("|"),
            grid_names().join(",")
        );
    }
    Ok(names)
}

/// Peak memory (MB) predicted at `len` from `earlier` (T, peak MB) points of one mechanism: the
/// line `a + b·T²` through the two longest (b ≥ 0), or `m·(len/T)²` from one point; None with
/// no points.
pub fn predict_peak_mb(earlier: &[(usize, f64)], len: usize) -> Option<f64> {
    let mut points = earlier.to_vec();
    points.sort_by_key(|p| p.0);
    let sq = |t: usize| (t as f64).powi(2);
    match points.as_slice() {
        [] => None,
        [(t, m)] => Some(m * sq(len) / sq(*t)),
        [.., (t0, m0), (t1, m1)] => {
            let b = ((m1 - m0) / (sq(*t1) - sq(*t0)).max(1.0)).max(0.0);
            Some(m1 + b * (sq(len) - sq(*t1)))
        }
    }
}

/// `MemAvailable` of `/proc/meminfo`, in MB.
pub fn available_mb() -> anyhow::Result<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").context("/proc/meminfo")?;
    let kb: f64 = info
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("/proc/meminfo has no MemAvailable line")?;
    Ok(kb / 1024.0)
}

/// How `run` reports and where it writes.
pub struct Settings<'a> {
    /// The backend's name (for the document).
    pub backend: &'a str,
    /// Quick mode (fewer timed steps).
    pub quick: bool,
    /// Memory limit of a point in MB (None: 80 % of the available memory when it starts).
    pub max_mb: Option<f64>,
    /// Where to write the JSON document too.
    pub out: Option<&'a Path>,
}

/// Run the points `names` (validated `scale_<mechanism>_<T>` names) through `run_point` (a
/// child process per point), print the JSON document and a markdown table to stdout, and
/// write the JSON to `settings.out`.
pub fn run(
    names: &[String],
    settings: Settings,
    run_point: impl FnMut(&str) -> anyhow::Result<Value>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let cpu = cpu_model();
    let points = run_points(names, settings.max_mb, available_mb, run_point)?;
    let attention: serde_json::Map<String, Value> = MECHANISMS
        .iter()
        .map(|m| (m.to_string(), json!(attention_of(m))))
        .collect();
    let doc = json!({
        "benchmark": "mnemo_attention_scaling",
        "mode": if settings.quick { "quick" } else { "full" },
        "backend": settings.backend,
        "cpu": cpu,
        "dtype": "f32",
        "config": {
            "vocab": BenchSize::PEER.vocab, "d_model": BenchSize::PEER.d_model,
            "n_layers": LAYERS, "n_heads": BenchSize::PEER.n_heads,
            "d_ff": BenchSize::PEER.d_ff, "batch": 1, "span": "T", "dropout": 0.0, "attention": attention,
        },
        "protocol": {
            "step": "forward + cross-entropy + backward + Adam on one segment of T random \
                     bytes (batch 1), as tf_train",
            "ms_per_step": "median over the timed steps after warm-up",
            "tokens_per_s": "T / median step time",
            "peak_rss_mb": "the child process's VmHWM (binary, model, data and step)",
            "span": "T for every mechanism: softmax attends every earlier position; sparse's \
                     position table has T rows; linear, delta and performer read no positions",
            "skipped": "predicted peak (a + b*T^2 through the two longest measured points) \
                        over the limit, a failed child, or a shorter T skipped",
        },
        "points": points,
        "total_wall_s": round(started.elapsed().as_secs_f64(), 1),
    });
    let text = serde_json::to_string_pretty(&doc)?;
    println!("{text}\n");
    println!("{}", markdown(&points));
    if let Some(out) = settings.out {
        std::fs::write(out, text + "\n").with_context(|| format!("--out {}", out.display()))?;
    }
    Ok(())
}

/// Run each point of `names` with `run_point`, unless its predicted peak memory exceeds the
/// limit (`max_mb`, else [`MEMORY_SHARE`] of `available()`), a shorter T of its mechanism was
/// skipped, or the child fails (an `error` field): those are points with a `skipped` reason.
pub(crate) fn run_points(
    names: &[String],
    max_mb: Option<f64>,
    mut available: impl FnMut() -> anyhow::Result<f64>,
    mut run_point: impl FnMut(&str) -> anyhow::Result<Value>,
) -> anyhow::Result<Vec<Value>> {
    let started = Instant::now();
    let mut points: Vec<Value> = Vec::with_capacity(names.len());
    for name in names {
        let (mechanism, len) = parse_point(name)
            .with_context(|| format!("--only: `{name}` is not a scaling point"))?;
        let same =
            |p: &&Value| p["mechanism"] == mechanism && p["seq_len"].as_u64() < Some(len as u64);
        let earlier: Vec<(usize, f64)> = points
            .iter()
            .filter(same)
            .filter_map(|p| Some((p["seq_len"].as_u64()? as usize, p["peak_rss_mb"].as_f64()?)))
            .collect();
        let shorter_skipped = points
            .iter()
            .filter(same)
            .any(|p| p.get("skipped").is_some());
        let limit = match max_mb {
            Some(mb) => mb,
            None => MEMORY_SHARE * available()?,
        };
        let mut point = json!({"mechanism": mechanism, "seq_len": len});
        let predicted = predict_peak_mb(&earlier, len);
        if shorter_skipped {
            point["skipped"] = json!("a shorter T of this mechanism was skipped");
        } else if let Some(mb) = predicted.filter(|mb| *mb > limit) {
            point["skipped"] = json!(format!("predicted peak {mb:.0} MB > limit {limit:.0} MB"));
            point["predicted_peak_mb"] = json!(round(mb, 0));
        } else {
            let res = run_point(name)?;
            if let Some(err) = res.get("error") {
                let err = err.as_str().map_or_else(|| err.to_string(), str::to_string);
                point["skipped"] = json!(format!("the child failed: {err}"));
            } else {
                let median = res["median_iter_s"].as_f64().unwrap_or(f64::NAN);
                point["ms_per_step"] = json!(round(1e3 * median, 1));
                if let (Value::Object(p), Value::Object(r)) = (&mut point, res) {
                    p.extend(r);
                }
            }
            if let Some(mb) = predicted {
                point["predicted_peak_mb"] = json!(round(mb, 0));
            }
        }
        eprintln!(
            "[{:7.1}s] {name}: {}",
            started.elapsed().as_secs_f64(),
            match point.get("skipped") {
                Some(why) => format!("skipped ({why})"),
                None => format!(
                    "{} ms/step, {} MB (foreign cpu {})",
                    point["ms_per_step"], point["peak_rss_mb"], point["foreign_cpu_frac"]
                ),
            }
        );
        points.push(point);
    }
    Ok(points)
}

/// The points as a markdown table: T, mechanism, ms per step, tokens/s, peak MB, foreign CPU.
pub fn markdown(points: &[Value]) -> String {
    let mut out = String::from(
        "| T | mechanism | ms / step | tokens/s | peak MB | foreign CPU |\n|---|---|---|---|---|---|\n",
    );
    for p in points {
        let cell = |key: &str| match &p[key] {
            Value::Null => "—".to_string(),
            v => v.to_string(),
        };
        let row = match p.get("skipped") {
            Some(why) => format!(
                "| {} | {} | skipped: {} | | | |\n",
                p["seq_len"],
                p["mechanism"].as_str().unwrap_or("?"),
                why.as_str().unwrap_or("?")
            ),
            None => format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                p["seq_len"],
                p["mechanism"].as_str().unwrap_or("?"),
                cell("ms_per_step"),
                cell("tokens_per_s"),
                cell("peak_rss_mb"),
                cell("foreign_cpu_frac")
            ),
        };
        out.push_str(&row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grid_name_parses_to_its_config() {
        let names = grid_names();
        assert_eq!(names.len(), MECHANISMS.len() * LENGTHS.len());
        assert_eq!(names[0], "scale_softmax_256");
        assert_eq!(names[names.len() - 1], "scale_sparse_4096");
        for name in &names {
            let (mechanism, len) = parse_point(name).expect(name);
            assert_eq!(point_name(mechanism, len), *name);
            let config = scaling_config(mechanism, len).unwrap();
            assert_eq!(config.n_layers, LAYERS);
            assert_eq!(
                (config.d_model, config.n_heads),
                (BenchSize::PEER.d_model, BenchSize::PEER.n_heads)
            );
            // Softmax over the whole segment: span = T.
            assert_eq!(config.span, len);
            // The mechanism's attention is the variant phases' (pinned field by field in
            // bench::workload's tests).
            assert_eq!(Some(config.attention), attention_of(mechanism));
            assert_eq!((config.persistent_memory, config.feed_forward), (0, true));
            config.validate().unwrap();
        }
        assert_eq!(select_points(" ").unwrap(), names);
        assert_eq!(
            select_points("scale_linear_64, scale_sparse_8192").unwrap(),
            ["scale_linear_64", "scale_sparse_8192"]
        );
        let err = select_points("scale_linear_64,tf_train")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--only: unknown scaling point `tf_train`"),
            "{err}"
        );
        assert!(
            err.contains("softmax|linear|delta|performer|sparse"),
            "{err}"
        );
        for bad in [
            "scale_fourier_256",
            "scale_softmax_0",
            "scale_softmax_100000",
            "scale_softmax",
            "scale_flash_256",
            "tf_train",
        ] {
            assert_eq!(parse_point(bad), None, "{bad}");
        }
    }

    #[test]
    fn peak_prediction_is_exact_for_quadratic_growth_and_high_for_linear() {
        let quad = |t: usize| 100.0 + 3e-4 * (t as f64).powi(2);
        let points = [(256, quad(256)), (512, quad(512)), (1024, quad(1024))];
        let p = predict_peak_mb(&points, 4096).unwrap();
        assert!((p - quad(4096)).abs() < 1e-6, "{p} vs {}", quad(4096));
        let lin = |t: usize| 100.0 + 0.05 * t as f64;
        let p = predict_peak_mb(&[(512, lin(512)), (256, lin(256))], 2048).unwrap();
        assert!(p >= lin(2048), "{p} < {}", lin(2048));
        assert_eq!(predict_peak_mb(&[(256, 50.0)], 512), Some(200.0));
        assert_eq!(predict_peak_mb(&[], 512), None);
        // Shrinking memory never predicts less than the longest point.
        assert_eq!(
            predict_peak_mb(&[(256, 90.0), (512, 80.0)], 1024),
            Some(80.0)
        );
    }

    /// A fake child: softmax's peak grows as T², the others' as T; `scale_sparse_1024` fails.
    fn fake(name: &str) -> anyhow::Result<Value> {
        let (mechanism, len) = parse_point(name).unwrap();
        if name == "scale_sparse_1024" {
            return Ok(json!({"error": "signal: 9 (SIGKILL)", "foreign_cpu_frac": 1.0}));
        }
        let t = len as f64;
        let mb = if mechanism == "softmax" {
            50.0 + 1e-4 * t * t
        } else {
            50.0 + 0.01 * t
        };
        let mb = round(mb, 2);
        Ok(
            json!({"median_iter_s": t * 1e-4, "tokens_per_s": 1e4, "peak_rss_mb": mb,
                  "foreign_cpu_frac": 0.0}),
        )
    }

    #[test]
    fn points_over_the_memory_limit_or_after_a_failure_are_skipped_not_run() {
        let mut ran = Vec::new();
        let points = run_points(
            &grid_names(),
            None,
            || Ok(1000.0),
            |name| {
                ran.push(name.to_string());
                fake(name)
            },
        )
        .unwrap();
        let find = |m: &str, t: usize| {
            points
                .iter()
                .find(|p| p["mechanism"] == m && p["seq_len"] == t)
                .unwrap()
                .clone()
        };
        // Softmax: 2048 → 469 MB measured; 4096 predicted 1727 MB > 0.8 × 1000: skipped.
        assert_eq!(find("softmax", 2048)["peak_rss_mb"], json!(469.43));
        let skipped = find("softmax", 4096);
        assert!(
            skipped["skipped"]
                .as_str()
                .unwrap()
                .contains("> limit 800 MB"),
            "{skipped}"
        );
        assert!(!ran.contains(&"scale_softmax_4096".to_string()));
        // Sparse fails at 1024: reported, and the longer T are not run.
        assert!(
            find("sparse", 1024)["skipped"]
                .as_str()
                .unwrap()
                .contains("SIGKILL")
        );
        assert!(
            find("sparse", 4096)["skipped"]
                .as_str()
                .unwrap()
                .contains("shorter T")
        );
        assert!(
            !ran.iter()
                .any(|n| n == "scale_sparse_2048" || n == "scale_sparse_4096")
        );
        // Linear grows slowly: every T runs.
        assert_eq!(find("linear", 4096)["ms_per_step"], json!(409.6));
        assert_eq!(ran.len(), MECHANISMS.len() * LENGTHS.len() - 3);
        let table = markdown(&points);
        assert!(
            table.contains("| 4096 | linear | 409.6 | 10000.0 | 90.96 | 0.0 |"),
            "{table}"
        );
        assert!(
            table.contains("| 4096 | softmax | skipped: predicted peak"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 2 + MECHANISMS.len() * LENGTHS.len());
    }
}
