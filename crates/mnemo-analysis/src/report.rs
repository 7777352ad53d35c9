//! `mnemo report PATH...`: the figures of runs and benchmarks, as SVG and PNG.
//!
//! Each PATH is one of
//!
//! | PATH                                   | figures                                        |
//! |----------------------------------------|------------------------------------------------|
//! | a model's run directory (`metrics.jsonl`) | its learning curves                         |
//! | a run (`runs/quickstart/`: model directories) | every model's learning curves on one figure, the final scores and speeds of the models with a `summary.json` ([`crate::results_figure`]), and for its Feedback models the memory mixing weights (one figure) and attention over memory distance (one per model) |
//! | a directory of runs (`runs/`)           | the above for each run                        |
//! | a `mnemo bench --scaling` JSON file     | the attention scaling curves                  |
//! | a `scripts/bench-vs-peer.sh` `summary.json` | speed against the peer and peak memory, per phase ([`crate::peer_figure`]) |
//!
//! The memory figures run each trained Feedback model over the first `memory_positions`
//! positions of a split ([`crate::memory`]); a run whose data or checkpoint cannot be loaded
//! gets its learning curves and a note instead. Files go to `<out>/<run>-curves.{svg,png}`,
//! `<out>/<run>-results.*`, `<out>/<run>-memory-mix.*`, `<out>/<run>-<model>-attention-distance.*` and
//! `<out>/<file stem>.*` for a scaling file, `<out>/<folder>-vs-peer.*` for a bench-vs-peer
//! `summary.json` (`<file stem>-vs-peer` when the file has another name).
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mnemo_data::Split;
use mnemo_models::ModelConfig;
use mnemo_train::{ExperimentConfig, load_run};

use crate::error::AnalysisError;
use crate::figures::{
    MetricsRecord, attention_distance, is_scaling, learning_curves, memory_mix, read_metrics,
    scaling,
};
use crate::memory::MemoryAnalysis;
use crate::peer_figure::{is_vs_peer, vs_peer};
use crate::results_figure::results;
use crate::runs::memory_of_run;

/// Settings of `mnemo report`.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Directory the figures go to (created).
    pub out: PathBuf,
    /// Split the memory figures sample.
    pub split: Split,
    /// Positions the memory figures read (0: no memory figures).
    pub memory_positions: usize,
    /// Plain device to run Feedback models on.
    pub device: Device,
}

/// What `mnemo report` wrote, and what it could not draw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// One line per figure left out and why.
    pub notes: Vec<String>,
}

/// Draw the figures of every path; see the [module docs](self).
pub fn report(paths: &[PathBuf], options: &ReportOptions) -> Result<Report, AnalysisError> {
    std::fs::create_dir_all(&options.out)
        .map_err(|e| AnalysisError::io(&options.out, "cannot create", e))?;
    let mut out = Report::default();
    for path in paths {
        if path.is_file() {
            benchmark_file(path, options, &mut out)?;
            continue;
        }
        let runs = find_runs(path)?;
        for (title, models) in runs {
            run_figures(&title, &models, options, &mut out)?;
        }
    }
    Ok(out)
}

/// The runs under `path`: `(title, model directories)`, sorted by name.
pub fn find_runs(path: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, AnalysisError> {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    if path.join("metrics.jsonl").is_file() {
        let title = path
            .parent()
            .map(|p| format!("{}/{}", name(p), name(path)))
            .unwrap_or_else(|| name(path));
        return Ok(vec![(title.replace('/', "-"), vec![path.to_path_buf()])]);
    }
    let models = model_dirs(path)?;
    if !models.is_empty() {
        return Ok(vec![(name(path), models)]);
    }
    let mut runs = Vec::new();
    for dir in subdirs(path)? {
        let models = model_dirs(&dir)?;
        if !models.is_empty() {
            runs.push((name(&dir), models));
        }
    }
    if runs.is_empty() {
        return Err(AnalysisError::Unsupported {
            what: path.display().to_string(),
            reason: "no metrics.jsonl in it, its subdirectories or theirs (not a run, a run \
                     directory or a directory of runs)"
                .into(),
        });
    }
    Ok(runs)
}

fn subdirs(path: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
    let entries = std::fs::read_dir(path).map_err(|e| AnalysisError::io(path, "cannot list", e))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn model_dirs(path: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
    Ok(subdirs(path)?
        .into_iter()
        .filter(|d| d.join("metrics.jsonl").is_file())
        .collect())
}

fn benchmark_file(
    path: &Path,
    options: &ReportOptions,
    out: &mut Report,
) -> Result<(), AnalysisError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| AnalysisError::io(path, "cannot read", e))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| AnalysisError::BadFile {
            path: path.into(),
            message: format!("not JSON: {e}"),
        })?;
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let (figure, name) = if is_scaling(&doc) {
        (scaling(&doc), stem.into_owned())
    } else if is_vs_peer(&doc) {
        let folder = path
            .canonicalize()
            .ok()
            .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()));
        let name = match (stem.as_ref(), folder) {
            ("summary", Some(folder)) => folder,
            _ => stem.into_owned(),
        };
        let figure = vs_peer(&doc).ok_or_else(|| AnalysisError::BadFile {
            path: path.into(),
            message: "a bench-vs-peer summary without a phase both the peer and mnemo timed \
                      (`tokens_per_s` under `peer.<phase>` and `mnemo.<phase>`)"
                .into(),
        })?;
        (figure, format!("{name}-vs-peer"))
    } else {
        return Err(AnalysisError::BadFile {
            path: path.into(),
            message: "neither `mnemo bench --scaling` output (\"benchmark\": \
                      \"mnemo_attention_scaling\") nor a `scripts/bench-vs-peer.sh` summary \
                      (\"benchmark\": \"mnemo_vs_peer\")"
                .into(),
        });
    };
    out.files.extend(figure.write(&options.out.join(name))?);
    Ok(())
}

fn run_figures(
    title: &str,
    models: &[PathBuf],
    options: &ReportOptions,
    out: &mut Report,
) -> Result<(), AnalysisError> {
    let mut curves: Vec<(String, Vec<MetricsRecord>)> = Vec::new();
    for dir in models {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        curves.push((name, read_metrics(&dir.join("metrics.jsonl"))?));
    }
    let stem = |what: &str| options.out.join(format!("{title}-{what}"));
    out.files
        .extend(learning_curves(title, &curves).write(&stem("curves"))?);
    if models.len() > 1 {
        let summaries = summaries(models, out);
        if let Some(figure) = results(title, &summaries) {
            out.files.extend(figure.write(&stem("results"))?);
        }
    }
    if options.memory_positions == 0 {
        return Ok(());
    }
    let mut analyses: Vec<MemoryAnalysis> = Vec::new();
    for dir in models.iter().filter(|d| is_feedback(d)) {
        let analysis = load_run(dir, &options.device)
            .map_err(AnalysisError::from)
            .and_then(|run| memory_of_run(&run, options.split, options.memory_positions));
        match analysis {
            Ok(a) => analyses.push(a),
            Err(e) => out
                .notes
                .push(format!("{}: no memory figures: {e}", dir.display())),
        }
    }
    if analyses.is_empty() {
        return Ok(());
    }
    out.files
        .extend(memory_mix(title, &analyses).write(&stem("memory-mix"))?);
    for a in &analyses {
        let what = format!("{}-attention-distance", a.model);
        out.files
            .extend(attention_distance(&format!("{title}/{}", a.model), a).write(&stem(&what))?);
    }
    Ok(())
}

/// `(model, summary.json)` of the models in `models` that finished (an unreadable summary is
/// left out with a note).
fn summaries(models: &[PathBuf], out: &mut Report) -> Vec<(String, serde_json::Value)> {
    let mut found = Vec::new();
    for dir in models {
        let path = dir.join("summary.json");
        if !path.is_file() {
            continue;
        }
        let read = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()));
        match read {
            Ok(summary) => {
                let name = dir.file_name().unwrap_or_default().to_string_lossy();
                found.push((name.into_owned(), summary));
            }
            Err(e) => out.notes.push(format!(
                "{}: left out of the results figure: {e}",
                path.display()
            )),
        }
    }
    found
}

/// Whether the run in `dir` trained a Feedback model (from its `config.toml`).
fn is_feedback(dir: &Path) -> bool {
    ExperimentConfig::load(dir.join("config.toml")).is_ok_and(|c| {
        c.models
            .values()
            .any(|m| matches!(m, ModelConfig::Feedback(_)))
    })
}
