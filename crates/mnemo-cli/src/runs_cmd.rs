//! `mnemo runs [DIR]`: one summary line per run directory under DIR (default `runs/`).
//!
//! A run directory is one holding `config.toml` and `summary.json` or `metrics.jsonl`
//! (`mnemo_train::run_dir`). Its line names the path, model, kind, steps and the validation
//! figure: from `summary.json` when the run ended (the final valid metric and the best one with
//! its step, `best_valid`), else from `metrics.jsonl` (the last valid record and the best so
//! far: lowest bpc / perplexity / loss for language models, highest accuracy otherwise), marked
//! `running or stopped`. Reinforcement-learning runs show their test episodes' mean return,
//! success rate and goals instead. Figures: accuracy `acc = correct / scored`, bits per character
//! `bpc = loss / ln 2`, perplexity `ppl = exp(loss)`, as the trainer wrote them.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::Value;

/// How deep below DIR run directories are looked for (`runs/<run>/<model>` is 2).
const MAX_DEPTH: usize = 4;

/// Arguments of `mnemo runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Directory holding run directories (or one run directory).
    #[arg(default_value = "runs")]
    dir: PathBuf,
}

fn is_run_dir(dir: &Path) -> bool {
    dir.join("config.toml").is_file()
        && (dir.join("summary.json").is_file() || dir.join("metrics.jsonl").is_file())
}

/// Run directories at or below `dir`, sorted by path.
fn run_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if is_run_dir(dir) {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    if depth == MAX_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("DIR {}", dir.display()))?;
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for child in children {
        run_dirs(&child, depth + 1, out)?;
    }
    Ok(())
}

/// A metrics object's headline figure: `bpc 1.234`, `ppl 45.6` or `acc 33.83%`.
fn figure(metrics: &Value) -> Option<String> {
    if let Some(bpc) = metrics["bpc"].as_f64() {
        return Some(format!("bpc {bpc:.4}"));
    }
    if let Some(ppl) = metrics["ppl"].as_f64() {
        return Some(format!("ppl {ppl:.2}"));
    }
    let accuracy = metrics["accuracy"].as_f64()?;
    Some(format!("acc {:.2}%", 100.0 * accuracy))
}

/// The value that ranks validation records: lower is better.
fn rank(metrics: &Value) -> f64 {
    for lower_better in ["bpc", "ppl"] {
        if let Some(v) = metrics[lower_better].as_f64() {
            return v;
        }
    }
    match metrics["accuracy"].as_f64() {
        Some(accuracy) if metrics["scored"].as_u64() != Some(0) => -accuracy,
        _ => metrics["loss"].as_f64().unwrap_or(f64::INFINITY),
    }
}

/// The `kind` of the model section of a resolved `config.toml` (`-` if not found).
fn config_kind(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
    let mut in_models = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_models = line.starts_with("[models.");
        } else if in_models && let Some(value) = line.strip_prefix("kind = ") {
            return value.trim_matches('"').to_owned();
        }
    }
    "-".to_owned()
}

/// The summary line of the run in `dir`.
fn summary_line(dir: &Path) -> anyhow::Result<String> {
    let summary_path = dir.join("summary.json");
    if summary_path.is_file() {
        let text =
            std::fs::read(&summary_path).with_context(|| format!("{}", summary_path.display()))?;
        let s: Value = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a summary", summary_path.display()))?;
        let kind = match (&s["kind"], &s["decoder"]) {
            (_, Value::String(decoder)) => format!("seq2seq/{decoder}"),
            (Value::String(kind), _) => kind.clone(),
            _ => config_kind(dir),
        };
        let finished = if s["finished"].as_bool() == Some(false) {
            " (stopped)"
        } else {
            ""
        };
        let mut line = format!(
            "{}  {kind}  step {}{finished}",
            s["model"].as_str().unwrap_or("-"),
            s["steps"]
        );
        let episodes = &s["test_episodes"];
        if let Some(mean_return) = episodes["mean_return"].as_f64() {
            // A reinforcement-learning run: its test episodes say more than a loss.
            line.push_str(&format!("  test return {mean_return:.3}"));
            if let Some(success) = episodes["success_rate"].as_f64() {
                line.push_str(&format!("  success {:.1}%", 100.0 * success));
            }
            if let Some(goals) = episodes["mean_goals"].as_f64() {
                line.push_str(&format!("  goals {goals:.2}"));
            }
            return Ok(line);
        }
        if let Some(valid) = figure(&s["valid"]) {
            line.push_str(&format!("  valid {valid}"));
        }
        if let Some(score) = s["valid_bleu"]["bleu"]["score"].as_f64() {
            line.push_str(&format!("  valid BLEU {score:.2}"));
        }
        if let Some([step, best]) = s["best_valid"].as_array().map(Vec::as_slice)
            && let Some(best) = figure(best)
        {
            line.push_str(&format!("  (best {best} at step {step})"));
        }
        if let Some(test) = figure(&s["test"]) {
            line.push_str(&format!("  test {test}"));
        }
        return Ok(line);
    }
    let metrics_path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&metrics_path)
        .with_context(|| format!("{}", metrics_path.display()))?;
    let records: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let model = dir.file_name().unwrap_or_default().to_string_lossy();
    let step = records.iter().filter_map(|r| r["step"].as_u64()).max();
    let mut line = format!(
        "{model}  {}  step {}  (running or stopped)",
        config_kind(dir),
        step.map_or("0".to_owned(), |s| s.to_string())
    );
    let valid: Vec<&Value> = records.iter().filter(|r| r["split"] == "valid").collect();
    if let Some(last) = valid.last().and_then(|r| figure(r)) {
        line.push_str(&format!("  valid {last}"));
    }
    let best = valid
        .iter()
        .min_by(|a, b| rank(a).total_cmp(&rank(b)))
        .and_then(|r| Some((figure(r)?, &r["step"])));
    if let Some((best, step)) = best {
        line.push_str(&format!("  (best {best} at step {step})"));
    }
    Ok(line)
}

/// Run `mnemo runs`.
pub fn run(args: &RunsArgs) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        anyhow::bail!("DIR {}: not a directory", args.dir.display());
    }
    let mut dirs = Vec::new();
    run_dirs(&args.dir, 0, &mut dirs)?;
    if dirs.is_empty() {
        println!("no run directories under {}", args.dir.display());
        return Ok(());
    }
    let width = dirs
        .iter()
        .map(|d| d.display().to_string().len())
        .max()
        .unwrap_or(0);
    let mut stdout = std::io::stdout().lock();
    for dir in &dirs {
        let line = summary_line(dir).unwrap_or_else(|e| format!("unreadable: {e:#}"));
        let written = writeln!(stdout, "{:width$}  {line}", dir.display().to_string());
        match written {
            // `mnemo runs | head`: the reader has what it wanted.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.context("stdout")?,
        }
    }
    Ok(())
}
