//! The analyses of a trained run (`mnemo analyze ffn|memory RUN`): capture a capped part of a
//! split with the run's evaluation layout ([`crate::capture`]), analyse it ([`crate::ffn`],
//! [`crate::memory`]) and write `<name>.json` plus a Markdown report `<name>.md`.
use std::path::{Path, PathBuf};

use mnemo_data::Split;
use mnemo_models::Model;
use mnemo_train::LoadedRun;
use serde::Serialize;

use crate::capture::{Capture, capture};
use crate::error::AnalysisError;
use crate::ffn::{FfnAnalysis, FfnOptions, analyze_ffn};
use crate::memory::{MemoryAnalysis, analyze_memory};

/// Capture up to `max_positions` positions of `split` of `run`, laid out as evaluation lays
/// it out (`train.eval_batch_size` rows, `train.segment_len` tokens per segment).
pub fn capture_run(
    run: &LoadedRun,
    split: Split,
    max_positions: usize,
) -> Result<Capture, AnalysisError> {
    let train = &run.config.train;
    capture(
        &run.model,
        run.data.split(split),
        train.eval_batch_size(),
        train.segment_len,
        max_positions,
        &run.device,
    )
}

/// Geva et al.'s feed-forward analysis of `run` ([`crate::ffn`]).
pub fn ffn_of_run(
    run: &LoadedRun,
    split: Split,
    max_positions: usize,
    options: &FfnOptions,
) -> Result<FfnAnalysis, AnalysisError> {
    let captured = capture_run(run, split, max_positions)?;
    Ok(FfnAnalysis {
        model: run.model_name.clone(),
        kind: run.model.kind().to_string(),
        split: split.name().to_string(),
        positions: captured.len(),
        top_k: options.top_k,
        projection: "softmax(E v), E the output layer's weight (no final norm, no bias)".into(),
        layers: analyze_ffn(&run.model, &captured, &run.vocab, run.data.lm, options),
    })
}

/// The Feedback memory analysis of `run` ([`crate::memory`]); other models are refused.
pub fn memory_of_run(
    run: &LoadedRun,
    split: Split,
    max_positions: usize,
) -> Result<MemoryAnalysis, AnalysisError> {
    let Model::Feedback(model) = &run.model else {
        return Err(AnalysisError::Unsupported {
            what: format!("{} ({})", run.dir.path().display(), run.model.kind()),
            reason: "memory analysis needs a Feedback Transformer (kind = \"feedback\")".into(),
        });
    };
    let captured = capture_run(run, split, max_positions)?;
    Ok(analyze_memory(
        &run.model_name,
        split.name(),
        model,
        &captured,
    ))
}

/// Write `value` as `<dir>/<name>.json` and `markdown` as `<dir>/<name>.md` (creating `dir`);
/// returns both paths.
pub fn write_outputs(
    dir: &Path,
    name: &str,
    value: &impl Serialize,
    markdown: &str,
) -> Result<Vec<PathBuf>, AnalysisError> {
    std::fs::create_dir_all(dir).map_err(|e| AnalysisError::io(dir, "cannot create", e))?;
    let json = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(value).expect("analyses serialise");
    std::fs::write(&json, text + "\n").map_err(|e| AnalysisError::io(&json, "cannot write", e))?;
    let md = dir.join(format!("{name}.md"));
    std::fs::write(&md, markdown).map_err(|e| AnalysisError::io(&md, "cannot write", e))?;
    Ok(vec![json, md])
}
