//! Language modelling (and the algorithmic tasks) as a [`Task`]: segments of a stream in
//! order, the model's memory carried from one to the next.
//!
//! One optimizer step reads one segment `[B, T]` of the training split. Row `r` of segment
//! `i + 1` continues row `r` of segment `i` ([`StreamBatcher`]), so the model state returned
//! by the step (already detached: truncated backpropagation through time) is carried into the
//! next one; it is reset to a fresh state whenever the segment index wraps to 0 (a new epoch).
//!
//! With code execution's `[data.curriculum]` the segments come from the current stage's
//! programs ([`Schedule`]); a new stage starts at its stream's first segment with a fresh
//! state. Validation and test always read the `data.statements` splits.
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use mnemo_data::{LmUnit, Scoring, Split, StreamBatcher, TaskConfig, TaskData, wikitext_file};
use mnemo_models::{Model, ModelConfig, ModelState};
use serde_json::{Map, Value, json};

use crate::checkpoint::CheckpointError;
use crate::error::TrainError;
use crate::evaluate::{TrainedRun, evaluate, read_trained, segment_tokens, split_batcher};
use crate::experiment::ExperimentConfig;
use crate::lm::curriculum::Schedule;
use crate::lm::state::LmPosition;
use crate::lm::step::{LmBatch, LmStep};
use crate::loss::LossStats;
use crate::metrics::Metrics;
use crate::run_dir::RunDir;
use crate::summary::RunSummary;
use crate::task::{Ending, StepOutput, Task, loss_window_text};
use crate::trainer::{differs_from_config, write_file};
use crate::weight_transfer::{transfer, vocab_rows};

/// A language-model run: the data, its batchers and where the training stream stands.
#[derive(Debug)]
pub struct LmTask {
    data: TaskData,
    kind: &'static str,
    device: Device,
    step: LmStep,
    /// The training stream of each curriculum stage and where the run stands in them.
    schedule: Schedule,
    valid: StreamBatcher,
    test: StreamBatcher,
    scoring: Scoring,
    next_segment: usize,
    epoch: u64,
    data_files: Vec<PathBuf>,
}

impl LmTask {
    /// The task of the single-model `config` (see [`ExperimentConfig::for_model`]) on `data`,
    /// stepping on the autodiff `device`.
    pub fn new(
        config: &ExperimentConfig,
        data: TaskData,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let batchers =
            [Split::Train, Split::Valid, Split::Test].map(|s| split_batcher(config, &data, s));
        let [train, valid, test] = batchers;
        let kind = config.models.values().next().map_or("", ModelConfig::kind);
        Ok(Self {
            kind,
            device: device.clone(),
            step: LmStep::new(config.train.feedback_backward),
            schedule: Schedule::new(config, &data, train?)?,
            valid: valid?,
            test: test?,
            scoring: data.scoring(),
            next_segment: 0,
            epoch: 0,
            data_files: data_files(&config.data),
            data,
        })
    }

    /// Start the next curriculum stage at the beginning of its stream (a fresh memory).
    fn next_stage(&mut self) {
        self.schedule.advance();
        self.next_segment = 0;
        self.epoch = 0;
    }
}

/// The files `data` is read from (none for generated tasks).
fn data_files(data: &TaskConfig) -> Vec<PathBuf> {
    match data {
        TaskConfig::Bytes(config) => vec![config.path.clone()],
        TaskConfig::Wikitext(config) => Split::ALL
            .into_iter()
            .map(|split| wikitext_file(&config.dir, split))
            .collect(),
        TaskConfig::LabelledText(config) => config.files(),
        TaskConfig::CodeExecution(_) | TaskConfig::Copy(_) | TaskConfig::Reverse(_) => Vec::new(),
    }
}

impl Task for LmTask {
    type Config = ExperimentConfig;
    type Position = LmPosition;
    type Carry = ModelState;
    type Summary = RunSummary;

    fn start(&self, model: &Model) -> ModelState {
        model.init_state(self.schedule.train().batch(), &self.device)
    }

    /// The next segment, from the carried state (a fresh one at the start of an epoch or of a
    /// curriculum stage).
    fn step(&mut self, model: &Model, carry: ModelState) -> StepOutput<ModelState> {
        if self.schedule.stage_done() {
            self.next_stage();
        }
        let carry = match self.next_segment {
            0 => self.start(model),
            _ => carry,
        };
        let train = self.schedule.train();
        let segment = train.segment(self.next_segment);
        self.schedule.count_step();
        self.next_segment += 1;
        if self.next_segment == self.schedule.train().num_segments() {
            self.next_segment = 0;
            self.epoch += 1;
        }
        let batch = LmBatch {
            tokens: segment_tokens(&segment, &self.device),
            targets: &segment.targets,
            no_label: self.scoring.no_label,
        };
        self.step.run(model, batch, carry)
    }

    /// Admin's profiling of a fresh `init = "admin"` Transformer on the first training
    /// segment (the one step 1 reads); other models are unchanged.
    fn prepare(&self, model: Model) -> Model {
        match model {
            Model::Transformer(mut m) if m.is_admin() => {
                let segment = self.schedule.train().segment(0);
                m.admin_profile(segment_tokens(&segment, &self.device));
                Model::Transformer(m)
            }
            model => model,
        }
    }

    /// The weights of the trained run in `from`, token rows matched by token where the
    /// vocabularies differ ([`transfer`]).
    fn init_from(&self, model: Model, from: &Path) -> Result<(Model, String), TrainError> {
        let dir = RunDir::at(from);
        let TrainedRun {
            vocab,
            trainer: state,
            model: source,
            ..
        } = read_trained(&dir, &self.device.clone().inner())?;
        let rows = vocab_rows(vocab.tokens(), self.data.vocab.tokens());
        let (model, done) = transfer(&source, model, &rows, vocab.len()).map_err(|message| {
            TrainError::BadFile {
                path: dir.checkpoint(),
                message,
            }
        })?;
        let new = rows.iter().filter(|r| r.is_none()).count();
        Ok((
            model,
            format!(
                "starting from {} (step {}): {} parameters copied, {} token by token ({new} of \
                 {} tokens new)",
                dir.path().display(),
                state.step,
                done.copied,
                done.remapped,
                rows.len()
            ),
        ))
    }

    fn after_update(&self, model: Model, step: u64) -> Model {
        model.after_update(step)
    }

    fn counted(&self, stats: &LossStats) -> u64 {
        stats.tokens as u64
    }

    fn position(&self, carry: &ModelState) -> LmPosition {
        let (stage, stage_steps) = self.schedule.position();
        LmPosition {
            next_segment: self.next_segment,
            epoch: self.epoch,
            segments_per_epoch: self.schedule.train().num_segments(),
            carried: carry.snapshot(),
            stage,
            stage_steps,
        }
    }

    fn restore(
        &mut self,
        model: &Model,
        saved: &LmPosition,
        path: &Path,
    ) -> Result<ModelState, CheckpointError> {
        self.schedule
            .restore(saved.stage, saved.stage_steps)
            .map_err(|reason| CheckpointError::mismatch(path, reason))?;
        if saved.segments_per_epoch != self.schedule.train().num_segments() {
            return Err(differs_from_config(
                path,
                "the training data (segments per epoch)",
            ));
        }
        if saved.next_segment >= saved.segments_per_epoch {
            return Err(CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason: "data position past the end of an epoch".into(),
            });
        }
        self.next_segment = saved.next_segment;
        self.epoch = saved.epoch;
        model
            .restore_state(&saved.carried, self.schedule.train().batch(), &self.device)
            .map_err(|e| CheckpointError::mismatch(path, format!("carried state: {e}")))
    }

    /// On a curriculum stage that can end on accuracy: scores the stage's own validation
    /// programs (a `"split": "stage_valid"` line) and starts the next stage from the next step
    /// when the accuracy reaches `advance_at_accuracy`.
    fn after_valid(&mut self, model: &Model, device: &Device, step: u64) -> Vec<Value> {
        let Some((threshold, valid)) = self.schedule.stage_valid() else {
            return Vec::new();
        };
        let metrics = evaluate(model, valid, self.scoring, device);
        let mut fields = json!({ "step": step, "split": "stage_valid" });
        if let Value::Object(map) = &mut fields {
            map.extend(self.schedule.fields());
        }
        if metrics.accuracy >= threshold {
            self.next_stage();
        }
        vec![metrics.record(fields)]
    }

    /// The current curriculum stage (`stage`, `statements`) on curriculum runs.
    fn train_log_fields(&self) -> Map<String, Value> {
        self.schedule.fields()
    }

    /// Loss, accuracy and tokens/s, then the curriculum stage on curriculum runs.
    fn window_text(&self, window: &Metrics, per_s: f64) -> String {
        let text = loss_window_text(window, per_s);
        match self.schedule.text() {
            Some(stage) => format!("{text} {stage}"),
            None => text,
        }
    }

    fn lm_unit(&self) -> Option<LmUnit> {
        self.scoring.lm
    }

    fn evaluate(&self, model: &Model, device: &Device, split: Split) -> Metrics {
        let batcher = match split {
            Split::Test => &self.test,
            _ => &self.valid,
        };
        evaluate(model, batcher, self.scoring, device)
    }

    fn write_files(&self, dir: &RunDir) -> Result<(), TrainError> {
        let vocab = serde_json::to_vec(&self.data.vocab).expect("vocabularies serialise");
        write_file(&dir.vocab(), &vocab)
    }

    fn data_files(&self) -> Vec<PathBuf> {
        self.data_files.clone()
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn describe(&self, model: &Model) -> (String, Option<String>) {
        (
            format!("{}, {} parameters", self.kind, model.num_params()),
            self.schedule.describe(),
        )
    }

    fn summarize(
        &self,
        run: RunSummary,
        ending: &mut Ending<'_, Model>,
    ) -> Result<RunSummary, TrainError> {
        let spans = ending.model.learnt_spans();
        if spans.is_empty() {
            return Ok(run);
        }
        for (l, heads) in spans.iter().enumerate() {
            let heads: Vec<String> = heads.iter().map(|s| format!("{s:.1}")).collect();
            ending.progress.announce(&format!(
                "{}: learnt span of layer {} (per head): {}",
                run.model,
                l + 1,
                heads.join(" ")
            ));
        }
        Ok(RunSummary {
            learnt_spans: Some(spans),
            ..run
        })
    }
}
