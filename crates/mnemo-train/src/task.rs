//! What a training task gives the one training loop ([`Trainer`](crate::trainer::Trainer)).
//!
//! The loop owns everything every run does alike: the optimizer step, the cadence of logs,
//! evaluations and checkpoints, the checkpoint format and the checks before a resume,
//! `metrics.jsonl`, progress and `summary.json`. A [`Task`] owns its data and says how one
//! batch becomes a loss and gradients ([`Task::step`]), where the data stands (for
//! checkpoints), how a split is evaluated, and what its summary holds. Language modelling
//! ([`LmTask`](crate::lm::LmTask)) and translation
//! ([`MtTask`](crate::translation::MtTask)) are the two tasks.
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use mnemo_data::{LmUnit, Split};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::checkpoint::CheckpointError;
use crate::config_file::Experiment;
use crate::error::TrainError;
use crate::loss::{LossStats, masked_cross_entropy};
use crate::metrics::Metrics;
use crate::metrics_log::MetricsLog;
use crate::model_table::ModelEntry;
use crate::progress::Progress;
use crate::run_dir::RunDir;
use crate::summary::RunSummary;

/// A value stored in a checkpoint and compared on resume.
pub trait Saved: Clone + Debug + PartialEq + Serialize + DeserializeOwned {}

impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> Saved for T {}

/// What one training step computed, before the optimizer step.
#[derive(Debug)]
pub struct StepOutput<C> {
    /// Loss and accuracy of the batch.
    pub stats: LossStats,
    /// Gradient of every parameter (empty when the loss is not finite).
    pub grads: GradientsParams,
    /// The state to carry into the next batch (detached).
    pub next: C,
    /// The logits of the batch, detached.
    ///
    /// # Shapes
    /// `[B, T, V]`
    pub logits: Tensor<3>,
}

impl<C> StepOutput<C> {
    /// The masked cross-entropy of `logits` against `targets` (`no_label` unscored), the
    /// gradients of `model`'s parameters by burn's autodiff (none when the loss is not
    /// finite), and `next` to carry on.
    ///
    /// # Shapes
    /// - logits: `[B, T, V]`, on an autodiff device
    /// - targets: `B * T` ids
    pub fn autodiff<M: Module>(
        model: &M,
        logits: Tensor<3>,
        targets: &[u32],
        no_label: u32,
        next: C,
    ) -> Self {
        let loss = masked_cross_entropy(logits.clone(), targets, no_label);
        let stats = loss.stats();
        let grads = match stats.loss.is_finite() {
            true => GradientsParams::from_grads(loss.loss.backward(), model),
            false => GradientsParams::new(),
        };
        Self {
            stats,
            grads,
            next,
            logits: logits.detach(),
        }
    }
}

/// The model a task of type `T` trains.
pub type ModelOf<T> = <<<T as Task>::Config as Experiment>::Model as ModelEntry>::Module;

/// A kind of training run: its data, its step and its evaluation.
pub trait Task {
    /// The experiment config (its `[models]`, `[data]` and `[train]` are saved and checked on
    /// resume; the model is built from its entry).
    type Config: Experiment;
    /// Where the training data stands and what is carried into the next batch, as saved.
    type Position: Saved;
    /// What one step hands the next (the model's memory; `()` when nothing).
    type Carry: Clone;
    /// What the run reports at the end (`summary.json`).
    type Summary: Serialize;

    /// The state carried into the first batch of a fresh run.
    fn start(&self, model: &ModelOf<Self>) -> Self::Carry;

    /// Forward, loss and gradients of `model` on the next training batch, run from `carry`
    /// (or from a fresh state where the batch starts a new stream); advances the data
    /// position.
    fn step(&mut self, model: &ModelOf<Self>, carry: Self::Carry) -> StepOutput<Self::Carry>;

    /// A fresh model, before its first step (never on a resume: whatever this sets is in the
    /// checkpoint). Unchanged by default; the language-model task runs Admin's profiling
    /// (`init = "admin"`) on its first training segment.
    fn prepare(&self, model: ModelOf<Self>) -> ModelOf<Self> {
        model
    }

    /// A fresh model with the weights of the trained run in `from` (fine-tuning), and a line
    /// saying what was taken; used instead of [`Task::prepare`] when
    /// [`TrainOptions::init_from`](crate::trainer::TrainOptions::init_from) is set. Refused
    /// by default.
    fn init_from(
        &self,
        _model: ModelOf<Self>,
        from: &Path,
    ) -> Result<(ModelOf<Self>, String), TrainError> {
        Err(TrainError::BadFile {
            path: from.to_path_buf(),
            message: format!(
                "starting from a trained run is not supported for {} runs",
                self.kind()
            ),
        })
    }

    /// The model after optimizer step `step` was applied to it (unchanged by default; the
    /// language-model task lets Performer layers redraw their features).
    fn after_update(&self, model: ModelOf<Self>, _step: u64) -> ModelOf<Self> {
        model
    }

    /// Positions of a step counted for speed and `tokens_seen`.
    fn counted(&self, stats: &LossStats) -> u64;

    /// The data position after the batches read so far, carrying `carry` (for a checkpoint).
    fn position(&self, carry: &Self::Carry) -> Self::Position;

    /// Move the data to `saved` (read from the checkpoint at `path`) and return the carried
    /// state stored there; `model` is the fresh model with the checkpoint's weights.
    fn restore(
        &mut self,
        model: &ModelOf<Self>,
        saved: &Self::Position,
        path: &Path,
    ) -> Result<Self::Carry, CheckpointError>;

    /// Bits per character or perplexity of the training loss, if the task reports one.
    fn lm_unit(&self) -> Option<LmUnit>;

    /// After the scheduled validation at `step` (every `run.eval_every` steps; not the one
    /// that closes a session stopped early, so that a resumed run sees the calls an
    /// uninterrupted one does), with an inference copy of `model` on the plain `device`: the
    /// task may evaluate more and change what it trains on next (the language-model task
    /// ends a curriculum stage on accuracy). Returns lines for `metrics.jsonl` (none by
    /// default).
    fn after_valid(&mut self, _model: &ModelOf<Self>, _device: &Device, _step: u64) -> Vec<Value> {
        Vec::new()
    }

    /// Fields added to every training line of `metrics.jsonl` (none by default).
    fn train_log_fields(&self) -> Map<String, Value> {
        Map::new()
    }

    /// The progress text of a training log window: its metrics and the speed in counted
    /// positions per second (default: loss, accuracy, tokens/s).
    fn window_text(&self, window: &Metrics, per_s: f64) -> String {
        loss_window_text(window, per_s)
    }

    /// The progress text of an evaluation (default: loss, accuracy and positions scored).
    fn eval_text(&self, metrics: &Metrics) -> String {
        format!(
            "loss {:.4} acc {:.2}% ({} scored)",
            metrics.loss,
            100.0 * metrics.accuracy,
            metrics.scored
        )
    }

    /// Metrics of `model` (an inference copy on the plain `device`) on `split` (valid or test).
    fn evaluate(&self, model: &ModelOf<Self>, device: &Device, split: Split) -> Metrics;

    /// Write the task's own files into the run directory (vocabulary, tokenizer).
    fn write_files(&self, dir: &RunDir) -> Result<(), TrainError>;

    /// The data files the task reads, fingerprinted into every checkpoint and checked on
    /// resume ([`fingerprint`](crate::fingerprint)). None by default: generated data is
    /// identified by its `[data]` config, which is compared anyway.
    fn data_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The architecture (`feedback`, `transformer`, `seq2seq`), as [`RunSummary::kind`].
    fn kind(&self) -> &'static str;

    /// What is trained, for the opening line (`feedback, 1234 parameters`), and optionally
    /// what it is trained on.
    fn describe(&self, model: &ModelOf<Self>) -> (String, Option<String>);

    /// The task's summary of the finished (or stopped) run from what every run reports,
    /// `run`; `ending` lends the trained model (an inference copy) and the run's files.
    fn summarize(
        &self,
        run: RunSummary,
        ending: &mut Ending<'_, ModelOf<Self>>,
    ) -> Result<Self::Summary, TrainError>;
}

/// The finished run lent to [`Task::summarize`]: its trained model `M` and device, its
/// directory, progress and log.
#[derive(Debug)]
pub struct Ending<'a, M> {
    /// The trained model, an inference copy on `device`.
    pub model: &'a M,
    /// The plain (non-autodiff) device the model is on.
    pub device: &'a Device,
    /// The run directory.
    pub dir: &'a RunDir,
    /// Progress reporting.
    pub progress: &'a Progress,
    pub(crate) log: Option<&'a mut MetricsLog>,
}

impl<M> Ending<'_, M> {
    /// Append a record to `metrics.jsonl`.
    pub fn append(&mut self, record: &Value) -> Result<(), TrainError> {
        match &mut self.log {
            Some(log) => log.append(record),
            None => Ok(()),
        }
    }
}

/// The default progress text of a training log window: loss, accuracy and tokens/s.
pub fn loss_window_text(window: &Metrics, per_s: f64) -> String {
    format!(
        "loss {:.4} acc {:5.1}% {per_s:.0} tok/s",
        window.loss,
        100.0 * window.accuracy
    )
}
