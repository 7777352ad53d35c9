//! A diverging, interrupted or tampered-with run never loses its saved work (issue 14): a
//! non-finite step writes nothing, the checkpoint on disk stays finite and resumable, saved
//! floats read back bit for bit, changed data is refused, and a damaged log line costs only
//! that line.
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::{config, options, parameters, resume_options, tiny_toml};
use mnemo_data::{LmUnit, Split};
use mnemo_train::checkpoint::CheckpointError;
use mnemo_train::task::ModelOf;
use mnemo_train::trainer::resuming;
use mnemo_train::{
    Ending, ExperimentConfig, LmTask, LossStats, Metrics, MetricsLog, RunDir, RunSummary,
    StepOutput, Task, TrainError, TrainOptions, Trainer, load_run, train,
};
use serde_json::{Map, Value};

/// A task (here the language-model task) with the loss of the steps in `poisoned` replaced
/// by NaN (as a batch of overflowing logits would give); all else is the task's own.
struct Poisoned<T> {
    inner: T,
    poisoned: BTreeSet<u64>,
    calls: u64,
}

impl<T: Task> Task for Poisoned<T> {
    type Config = T::Config;
    type Position = T::Position;
    type Carry = T::Carry;
    type Summary = T::Summary;

    fn start(&self, model: &ModelOf<T>) -> T::Carry {
        self.inner.start(model)
    }
    fn step(&mut self, model: &ModelOf<T>, carry: T::Carry) -> StepOutput<T::Carry> {
        self.calls += 1;
        let mut out = self.inner.step(model, carry);
        if self.poisoned.contains(&self.calls) {
            out.stats.loss = f64::NAN;
            out.grads = burn::optim::GradientsParams::new();
        }
        out
    }
    fn counted(&self, stats: &LossStats) -> u64 {
        self.inner.counted(stats)
    }
    fn position(&self, carry: &T::Carry) -> T::Position {
        self.inner.position(carry)
    }
    fn restore(
        &mut self,
        model: &ModelOf<T>,
        saved: &T::Position,
        path: &Path,
    ) -> Result<T::Carry, CheckpointError> {
        self.inner.restore(model, saved, path)
    }
    fn lm_unit(&self) -> Option<LmUnit> {
        self.inner.lm_unit()
    }
    fn train_log_fields(&self) -> Map<String, Value> {
        self.inner.train_log_fields()
    }
    fn evaluate(&self, model: &ModelOf<T>, device: &Device, split: Split) -> Metrics {
        self.inner.evaluate(model, device, split)
    }
    fn write_files(&self, dir: &RunDir) -> Result<(), TrainError> {
        self.inner.write_files(dir)
    }
    fn data_files(&self) -> Vec<PathBuf> {
        self.inner.data_files()
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn describe(&self, model: &ModelOf<T>) -> (String, Option<String>) {
        self.inner.describe(model)
    }
    fn summarize(
        &self,
        run: RunSummary,
        ending: &mut Ending<'_, ModelOf<T>>,
    ) -> Result<T::Summary, TrainError> {
        self.inner.summarize(run, ending)
    }
}

/// Train `model` of `config` into `out` with the loss of steps `poisoned` made NaN.
fn train_poisoned(
    config: &ExperimentConfig,
    model: &str,
    out: &Path,
    poisoned: &[u64],
) -> Result<RunSummary, TrainError> {
    let opts = options(out);
    let data = config.data.build().unwrap();
    let single = config.for_model(model, data.vocab.len()).unwrap();
    let device = opts.device.clone().autodiff();
    let task = Poisoned {
        inner: LmTask::new(&single, data, &device).unwrap(),
        poisoned: poisoned.iter().copied().collect(),
        calls: 0,
    };
    let dir = RunDir::new(out, &single.run.name, model);
    let resuming = resuming(&dir, &opts)?;
    Trainer::new(task, &single, model, dir, device).train(&opts, resuming)
}

/// The 12-step tiny run that evaluates and checkpoints every 3 steps.
fn cadenced(on_nonfinite: &str) -> ExperimentConfig {
    config(
        &tiny_toml(
            "steps = 12\neval_every = 3\ncheckpoint_every = 3\nlog_every = 1",
            3e-3,
            0.0,
        )
        .replace(
            "segment_len = 16",
            &format!("segment_len = 16\non_nonfinite = \"{on_nonfinite}\""),
        ),
    )
}

#[test]
fn nan_at_an_eval_and_checkpoint_step_keeps_a_finite_checkpoint_that_resumes() {
    let out = tempfile::tempdir().unwrap();
    let run_dir = out.path().join("t/feedback");
    // Step 6 evaluates and checkpoints (the quickstart's cadence, shortened).
    let err = train_poisoned(&cadenced("stop"), "feedback", out.path(), &[6]).unwrap_err();
    let msg = err.to_string();
    let ckpt = run_dir.join("checkpoint.mnemo");
    assert!(
        matches!(err, TrainError::NonFinite { step: 6, .. }),
        "expected a non-finite stop at step 6: {msg}"
    );
    assert!(
        msg.starts_with("step 6: training loss is NaN")
            && msg.contains("(step 3, every weight finite)")
            && msg.contains(&ckpt.display().to_string())
            && !msg.contains("good checkpoint"),
        "{msg}"
    );
    // The checkpoint on disk is step 3's, readable, finite, with a finite validation result.
    let run = load_run(&run_dir, &common::cpu()).unwrap();
    assert_eq!(run.trainer.step, 3);
    assert!(parameters(&run.model).iter().all(|w| w.is_finite()));
    let (at, valid) = run.trainer.last_valid.unwrap();
    assert_eq!(at, 3);
    assert!(valid.loss.is_finite());
    // Nothing of step 6 (nor 4, 5) reached the log or the directory.
    let steps: Vec<u64> = MetricsLog::read(&run_dir.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert!(steps.iter().all(|&s| s <= 5), "{steps:?}");
    assert!(!run_dir.join("summary.json").exists());
    assert!(!run_dir.join("checkpoint.mnemo.tmp").exists());

    // A plain `train` still refuses to overwrite it; `--resume` continues it to the end.
    let err = train(&cadenced("stop"), "feedback", &options(out.path())).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }), "{err}");
    let summary = train(&cadenced("stop"), "feedback", &resume_options(out.path())).unwrap();
    assert_eq!((summary.steps, summary.finished), (12, true));
    assert!(summary.valid.loss.is_finite());
}

#[test]
fn skip_batch_drops_the_bad_batch_logs_it_and_finishes() {
    let out = tempfile::tempdir().unwrap();
    let run_dir = out.path().join("t/transformer");
    let summary =
        train_poisoned(&cadenced("skip_batch"), "transformer", out.path(), &[4, 6]).unwrap();
    assert_eq!((summary.steps, summary.finished), (12, true));
    let run = load_run(&run_dir, &common::cpu()).unwrap();
    assert_eq!(run.trainer.skipped_batches, 2);
    assert!(parameters(&run.model).iter().all(|w| w.is_finite()));
    let log = MetricsLog::read(&run_dir.join("metrics.jsonl")).unwrap();
    let skipped: Vec<u64> = log
        .iter()
        .filter(|v| v["split"] == "skipped")
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(skipped, [4, 6]);
    let reason = log.iter().find(|v| v["split"] == "skipped").unwrap()["reason"].clone();
    assert!(
        reason.as_str().unwrap().contains("training loss is NaN"),
        "{reason}"
    );
    // The skipped steps' windows hold only the good batches: every logged loss is finite.
    assert!(
        log.iter()
            .filter(|v| v["split"] == "train")
            .all(|v| v["loss"].as_f64().is_some_and(f64::is_finite))
    );
}

/// The text of `"key": ...` in a pretty-printed summary, up to the next top-level key.
fn summary_field(text: &str, key: &str) -> String {
    let start = text
        .find(&format!("\n  \"{key}\""))
        .unwrap_or_else(|| panic!("{key} in {text}"));
    let rest = &text[start + 1..];
    let end = rest[1..].find("\n  \"").map_or(rest.len(), |e| e + 1);
    rest[..end].to_string()
}

#[test]
fn summary_floats_are_byte_identical_after_a_resume() {
    let config = config(&tiny_toml(
        "steps = 8\neval_every = 2\ncheckpoint_every = 2",
        3e-3,
        0.1,
    ));
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train(&config, "feedback", &options(a.path())).unwrap();
    for stop in [3, 5] {
        let stopped = TrainOptions {
            stop_after: Some(stop),
            resume: stop != 3,
            ..options(b.path())
        };
        train(&config, "feedback", &stopped).unwrap();
    }
    train(&config, "feedback", &resume_options(b.path())).unwrap();
    let read = |dir: &Path| std::fs::read_to_string(dir.join("t/feedback/summary.json")).unwrap();
    let (whole, resumed) = (read(a.path()), read(b.path()));
    for key in ["valid", "test", "best_valid", "steps"] {
        assert_eq!(
            summary_field(&whole, key),
            summary_field(&resumed, key),
            "{key} differs after two resumes"
        );
    }
}

/// A byte-corpus config reading `corpus`.
fn bytes_config(corpus: &Path) -> ExperimentConfig {
    let text = tiny_toml("steps = 4\ncheckpoint_every = 2", 3e-3, 0.0);
    let data_start = text.find("[data]").unwrap();
    let data_end = text.find("[train]").unwrap();
    config(&format!(
        "{}[data]\ntask = \"bytes\"\npath = \"{}\"\n\n{}",
        &text[..data_start],
        corpus.display(),
        &text[data_end..]
    ))
}

#[test]
fn resume_on_changed_data_is_refused_naming_the_file() {
    let out = tempfile::tempdir().unwrap();
    let corpus = out.path().join("corpus.txt");
    let text: String = (0..4000)
        .map(|i| ["the ", "cat ", "sat ", "on ", "a ", "mat. "][i * 7 % 6])
        .collect();
    std::fs::write(&corpus, &text).unwrap();
    let config = bytes_config(&corpus);
    let stopped = TrainOptions {
        stop_after: Some(2),
        ..options(out.path())
    };
    train(&config, "transformer", &stopped).unwrap();
    let run = load_run(out.path().join("t/transformer"), &common::cpu()).unwrap();
    assert_eq!(run.trainer.data_files.len(), 1);
    assert_eq!(run.trainer.data_files[0].bytes, text.len() as u64);

    // Same size, one byte different.
    let mut changed = text.into_bytes();
    changed[100] = b'X';
    std::fs::write(&corpus, &changed).unwrap();
    let err = train(&config, "transformer", &resume_options(out.path())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&corpus.display().to_string())
            && msg.contains("changed")
            && msg.contains("--allow-data-change"),
        "{msg}"
    );
    // Nothing was trained on the other data.
    let run = load_run(out.path().join("t/transformer"), &common::cpu()).unwrap();
    assert_eq!(run.trainer.step, 2);

    let anyway = TrainOptions {
        allow_data_change: true,
        ..resume_options(out.path())
    };
    assert_eq!(train(&config, "transformer", &anyway).unwrap().steps, 4);
    let run = load_run(out.path().join("t/transformer"), &common::cpu()).unwrap();
    assert_eq!(
        run.trainer.data_files[0],
        mnemo_train::fingerprint::FileFingerprint::of(&corpus).unwrap(),
        "the new data's fingerprint is recorded"
    );
}

#[test]
fn a_corrupt_metrics_line_costs_only_that_line_on_resume() {
    let out = tempfile::tempdir().unwrap();
    let config = config(&tiny_toml(
        "steps = 8\ncheckpoint_every = 4\nlog_every = 1",
        3e-3,
        0.0,
    ));
    let stopped = TrainOptions {
        stop_after: Some(4),
        ..options(out.path())
    };
    train(&config, "transformer", &stopped).unwrap();
    let log = out.path().join("t/transformer/metrics.jsonl");
    let mut bytes = std::fs::read(&log).unwrap();
    // Damage the second line with a byte that is not UTF-8.
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 3;
    bytes[second] = 0xff;
    std::fs::write(&log, &bytes).unwrap();
    train(&config, "transformer", &resume_options(out.path())).unwrap();
    let train_steps: Vec<u64> = MetricsLog::read(&log)
        .unwrap()
        .iter()
        .filter(|v| v["split"] == "train")
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(train_steps, [1, 3, 4, 5, 6, 7, 8]);
}
