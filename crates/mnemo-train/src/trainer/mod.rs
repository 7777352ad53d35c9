//! The one training loop, [`Trainer`], for every [`Task`].
//!
//! Each optimizer step reads the task's next batch, runs [`Task::step`] (forward, loss,
//! gradients) and applies the update of [`checked_update`] (global-norm clipping, Adam(W), the
//! learning rate of the schedule). A non-finite loss, gradient norm or updated weight is caught
//! in the step itself, before anything is logged, evaluated or written: the run stops with an
//! error naming the step and the last checkpoint (which is finite), or, with
//! `train.on_nonfinite = "skip_batch"`, the batch is dropped and logged ([`OnNonFinite`]).
//! Training metrics are logged every `run.log_every` steps, the validation split evaluated
//! every `run.eval_every` steps and a checkpoint written every `run.checkpoint_every` steps
//! (and all three at the last step); at the end come a test evaluation, the task's own
//! results and `summary.json`.
//!
//! Reproducibility: the device is seeded with `run.seed` before the model is built
//! ([`Trainer::new`]), and with a value derived from `(run.seed, step)` before every step
//! ([`step_seed`]), so dropout masks depend only on the step; both inside [`seeded`], so other
//! runs in the same process cannot draw in between. A checkpoint holds the weights,
//! the optimizer moments and the [`RunState`] (step, data position, carried state, metrics),
//! so a resumed run continues exactly as an uninterrupted one would.
//!
//! Safety of the run directory: the run holds its [`RunLock`] from before the first file is
//! written until it returns; the checkpoint records fingerprints of the task's data files
//! ([`Task::data_files`]), and a resume on changed data is refused unless
//! [`TrainOptions::allow_data_change`].
mod options;
mod state;

pub use options::{TrainOptions, initialize_params, step_seed};
pub use state::{RunState, RunWeights, differs_from_config, load_run_weights};

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use mnemo_data::Split;
use serde_json::{Value, json};

use crate::checkpoint::{Checkpoint, CheckpointError, tmp_path};
use crate::config_file::Experiment;
use crate::error::TrainError;
use crate::experiment::{OnNonFinite, RunConfig};
use crate::fingerprint::{check_same_data, fingerprint_files};
use crate::layer_groups::LayerGroups;
use crate::linf_ball::LinfBall;
use crate::loss::LossStats;
use crate::metrics::{Metrics, MetricsAccumulator};
use crate::metrics_log::MetricsLog;
use crate::model_table::ModelEntry;
use crate::optim::OptimConfig;
use crate::progress::Progress;
use crate::rng::seeded;
use crate::run_dir::RunDir;
use crate::run_lock::RunLock;
use crate::summary::RunSummary;
use crate::task::{Ending, ModelOf, Task};
use crate::update::{Divergence, StepLr, checked_update, first_non_finite};

/// File in the run directory holding the weights a run started from, the centre of
/// `optim.max_change`'s ball ([`LinfBall`]); a checkpoint-format file.
pub const START_WEIGHTS_FILE: &str = "start-weights.mnemo";

/// The [`RunState`] of task `T`.
pub type StateOf<T> = RunState<
    <ConfigOf<T> as Experiment>::Model,
    <ConfigOf<T> as Experiment>::Data,
    <ConfigOf<T> as Experiment>::Train,
    <T as Task>::Position,
>;

type ConfigOf<T> = <T as Task>::Config;

/// Whether training into `dir` continues a run: it does when `dir` has a checkpoint, which
/// is an error unless `opts.resume` asks for it.
pub fn resuming(dir: &RunDir, opts: &TrainOptions) -> Result<bool, TrainError> {
    let resuming = dir.checkpoint().is_file();
    if resuming && !opts.resume {
        return Err(TrainError::RunExists {
            dir: dir.path().into(),
        });
    }
    Ok(resuming)
}

/// Lock the run directory `dir`, then tell whether training into it continues a run (see
/// [`resuming`]). Taking the lock first means two processes cannot both decide to start the
/// same fresh run; hand the lock to [`Trainer::locked`].
pub fn open_run(dir: &RunDir, opts: &TrainOptions) -> Result<(RunLock, bool), TrainError> {
    let lock = RunLock::acquire(dir)?;
    let resuming = resuming(dir, opts)?;
    Ok((lock, resuming))
}

/// Write `bytes` to `path`, naming it in the error.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    std::fs::write(path, bytes).map_err(|e| TrainError::io(path, "cannot write", e))
}

/// Write `bytes` to `path` through a `.tmp` sibling renamed over it, so that a reader (or a
/// kill) never sees half a file; the `.tmp` is removed if anything fails.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = tmp_path(path);
    let result = std::fs::write(&tmp, bytes)
        .map_err(|e| TrainError::io(&tmp, "cannot write", e))
        .and_then(|()| {
            std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, "cannot replace", e))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The learning rate of optimizer step `step` of `steps`: one for all, or one per layer group
/// when `groups` are given.
fn step_lr<'g>(
    optim: &OptimConfig,
    steps: u64,
    groups: Option<&'g LayerGroups>,
    step: u64,
) -> StepLr<'g> {
    match groups {
        None => StepLr::All(optim.lr_at(step, steps)),
        Some(groups) => StepLr::Groups(groups, optim.group_lrs(step, steps, groups.count())),
    }
}

/// One training run of a task: the loop, its cadence, checkpoints and logs.
pub struct Trainer<'a, T: Task> {
    task: T,
    run: &'a RunConfig,
    optim: &'a OptimConfig,
    dir: RunDir,
    device: Device,
    model: ModelOf<T>,
    optimizer: ModuleOptimizer,
    state: StateOf<T>,
    carry: T::Carry,
    config_toml: String,
    log: Option<MetricsLog>,
    last_checkpoint: Option<u64>,
    /// Seconds and counted positions of the steps of the open log window in this session.
    window_time_s: f64,
    window_tokens: u64,
    /// The lock of the run directory, when taken before [`Trainer::train`].
    lock: Option<RunLock>,
    /// `train.on_nonfinite` of the config.
    on_nonfinite: OnNonFinite,
    /// Lines for the opening announcement (a stale lock, skipped log lines, changed data).
    notes: Vec<String>,
    /// The model's layer groups, when `[optim]` treats them differently.
    groups: Option<LayerGroups>,
    /// `optim.max_change`'s ball around the starting weights, once known.
    ball: Option<LinfBall>,
}

impl<'a, T: Task> Trainer<'a, T> {
    /// A fresh run of model `model_name` of `config` (a single-model config the task was
    /// built from) into `dir`: the model is built on the autodiff `device`, seeded with
    /// `run.seed`.
    pub fn new(
        task: T,
        config: &'a T::Config,
        model_name: &str,
        dir: RunDir,
        device: Device,
    ) -> Self {
        let run = config.run();
        let model_config = config.models()[model_name].clone();
        let model = seeded(&device, run.seed, || {
            initialize_params(model_config.init(&device))
        });
        let carry = task.start(&model);
        let (data, train) = (config.data().clone(), config.train().clone());
        let position = task.position(&carry);
        Self {
            state: RunState::new(model_name, model_config, data, train, run.seed, position),
            task,
            run,
            optim: config.optim(),
            dir,
            device,
            optimizer: config.optim().init(),
            carry,
            config_toml: config.toml(),
            log: None,
            last_checkpoint: None,
            window_time_s: 0.0,
            window_tokens: 0,
            lock: None,
            on_nonfinite: config.on_nonfinite(),
            notes: Vec::new(),
            groups: config.optim().per_group().then(|| LayerGroups::of(&model)),
            ball: None,
            model,
        }
    }

    /// This trainer with the lock of its run directory already held (from [`open_run`]);
    /// without one, [`Trainer::train`] takes it itself.
    pub fn locked(mut self, lock: RunLock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Train (continuing the checkpoint of the run directory if `resuming`), then evaluate
    /// and summarise; see the [module docs](self).
    pub fn train(mut self, opts: &TrainOptions, resuming: bool) -> Result<T::Summary, TrainError> {
        // Held until this function returns, whatever happens.
        let lock = match self.lock.take() {
            Some(lock) => lock,
            None => RunLock::acquire(&self.dir)?,
        };
        if let Some(pid) = lock.stale() {
            self.notes.push(format!(
                "{}: process {pid} was killed while training this run; taking over",
                lock.path().display()
            ));
        }
        // What a killed process may have left half-written; nobody else writes here now.
        for leftover in [
            tmp_path(&self.dir.checkpoint()),
            tmp_path(&self.dir.metrics()),
            tmp_path(&self.dir.summary()),
        ] {
            let _ = std::fs::remove_file(leftover);
        }
        let data_files = fingerprint_files(&self.task.data_files())?;
        if resuming {
            self.restore(opts, data_files)?;
        } else {
            self.state.data_files = data_files;
            let model = self.model.clone();
            match &opts.init_from {
                Some(from) => {
                    let (model, what) = self.task.init_from(model, from)?;
                    self.model = model;
                    self.notes.push(what);
                }
                None => {
                    // Dropout during the task's preparation draws from the seed of "step 0"
                    // (the steps reseed themselves from step 1 on).
                    let seed = step_seed(self.state.seed, 0);
                    self.model = seeded(&self.device, seed, || self.task.prepare(model));
                }
            }
        }
        // A checkpoint's weights come with their own parameter ids: group what is trained now.
        if self.groups.is_some() {
            self.groups = Some(LayerGroups::of(&self.model));
        }
        self.ball = self.start_ball(resuming)?;
        // Only now, with the checkpoint (if any) known to fit, write into the run directory.
        write_file(&self.dir.config(), self.config_toml.as_bytes())?;
        self.task.write_files(&self.dir)?;
        let log = match resuming {
            true => MetricsLog::resume(&self.dir.metrics(), self.state.step)?,
            false => MetricsLog::create(&self.dir.metrics())?,
        };
        self.notes.extend(log.skipped().iter().map(|bad| {
            format!(
                "{}: line {} skipped: {}",
                self.dir.metrics().display(),
                bad.line,
                bad.reason
            )
        }));
        self.log = Some(log);
        let target = opts
            .stop_after
            .map_or(self.run.steps, |s| s.min(self.run.steps));
        let name = self.state.model_name.clone();
        let progress = Progress::new(&name, self.state.step, self.run.steps, opts.quiet);
        let (model, data) = self.task.describe(&self.model);
        progress.announce(&format!(
            "training {name} ({model}) on {:?} into {}{}{}",
            self.device.clone().inner(),
            self.dir.path().display(),
            data.map(|d| format!(": {d}")).unwrap_or_default(),
            match resuming {
                true => format!(", resuming at step {}", self.state.step),
                false => String::new(),
            }
        ));
        for note in std::mem::take(&mut self.notes) {
            progress.announce(&format!("note: {note}"));
        }
        let result = self.run_until(target, &progress);
        progress.finish();
        result?;
        self.finish(&progress)
    }

    /// Load the checkpoint of the run directory over the fresh run, whose data files have the
    /// fingerprints `data_files`.
    fn restore(
        &mut self,
        opts: &TrainOptions,
        data_files: Vec<crate::fingerprint::FileFingerprint>,
    ) -> Result<(), TrainError> {
        let path = self.dir.checkpoint();
        let mut ckpt = Checkpoint::<StateOf<T>>::read(&path)?;
        self.state.check_resumable(&ckpt.trainer, &path)?;
        if opts.allow_data_change {
            if check_same_data(&ckpt.trainer.data_files, &data_files, &path).is_err() {
                self.notes.push(format!(
                    "{}: the data files changed since this checkpoint; continuing on the new \
                     data (--allow-data-change)",
                    path.display()
                ));
            }
        } else {
            check_same_data(&ckpt.trainer.data_files, &data_files, &path)?;
        }
        self.model = ckpt.load_model(self.model.clone(), &path)?;
        if let Some(name) = first_non_finite(&self.model) {
            return Err(CheckpointError::Corrupt {
                path,
                reason: format!(
                    "parameter `{name}` is not finite (written by an older mnemo that saved \
                     diverged weights); this run cannot be resumed"
                ),
            }
            .into());
        }
        self.optimizer = ckpt.load_optimizer(self.optim, &path)?;
        self.carry = self
            .task
            .restore(&self.model, &ckpt.trainer.position, &path)?;
        self.last_checkpoint = Some(ckpt.trainer.step);
        // The policies of `[train]` are this session's; the data is what was just read.
        ckpt.trainer.train = self.state.train.clone();
        ckpt.trainer.data_files = data_files;
        self.state = ckpt.trainer;
        Ok(())
    }

    /// `optim.max_change`'s ball: around the model as it is now on a fresh run (its weights
    /// saved to [`START_WEIGHTS_FILE`]), around the saved ones on a resume.
    fn start_ball(&self, resuming: bool) -> Result<Option<LinfBall>, TrainError> {
        let radius = self.optim.max_change;
        if radius <= 0.0 {
            return Ok(None);
        }
        let path = self.dir.path().join(START_WEIGHTS_FILE);
        if !resuming {
            let note =
                serde_json::json!({"weights": "the start of this run, for optim.max_change"});
            Checkpoint::of(&path, note, &self.model, &self.optim.init())?.write_atomic(&path)?;
            return Ok(Some(LinfBall::around(&self.model, &self.model, radius)));
        }
        if !path.is_file() {
            return Err(CheckpointError::mismatch(
                &path,
                "missing: optim.max_change needs the weights this run started from, and the run \
                 was started without it; train into another --out",
            )
            .into());
        }
        let start = Checkpoint::<Value>::read(&path)?.load_model(self.model.clone(), &path)?;
        Ok(Some(LinfBall::around(&start, &self.model, radius)))
    }

    /// Steps until `target`, logging, evaluating and checkpointing on schedule.
    fn run_until(&mut self, target: u64, progress: &Progress) -> Result<(), TrainError> {
        let due = |step: u64, every: u64| every > 0 && step.is_multiple_of(every);
        while self.state.step < target {
            let step = self.state.step + 1;
            let started = Instant::now();
            let stats = self.step(step)?;
            let elapsed = started.elapsed().as_secs_f64();
            self.state.train_time_s += elapsed;
            self.window_time_s += elapsed;
            match &stats {
                Ok(stats) => {
                    self.window_tokens += self.task.counted(stats);
                    self.state.window.add(stats);
                }
                Err(cause) => {
                    progress.announce(&format!("step {step}: {cause}; batch skipped"));
                    let lr = self.optim.lr_at(step, self.run.steps);
                    self.append(&json!({
                        "step": step, "split": "skipped", "reason": cause.to_string(),
                        "lr": lr, "elapsed_s": self.state.train_time_s,
                    }))?;
                }
            }
            let window = self
                .state
                .window
                .metrics()
                .with_lm_unit(self.task.lm_unit());
            let tokens_per_s = self.window_tokens as f64 / self.window_time_s.max(1e-9);
            progress.step(step, &self.task.window_text(&window, tokens_per_s));
            if due(step, self.run.log_every) {
                self.log_window(step, window, tokens_per_s, progress)?;
            }
            let last = step == target;
            if due(step, self.run.eval_every) || last {
                let metrics = self.evaluate_valid()?;
                progress.eval(step, "valid", &self.task.eval_text(&metrics));
            }
            if due(step, self.run.eval_every) {
                let (model, device) = self.inference();
                for record in self.task.after_valid(&model, &device, step) {
                    self.append(&record)?;
                }
            }
            if due(step, self.run.checkpoint_every) || last {
                self.save_checkpoint()?;
            }
        }
        Ok(())
    }

    /// One optimizer step on the task's next batch: its stats, or (with
    /// `train.on_nonfinite = "skip_batch"`) why the batch was dropped; a non-finite step under
    /// `"stop"` is an error. Either way, nothing non-finite is kept.
    fn step(&mut self, step: u64) -> Result<Result<LossStats, Divergence>, TrainError> {
        let (task, model, carry) = (&mut self.task, &self.model, self.carry.clone());
        let out = seeded(&self.device, step_seed(self.state.seed, step), || {
            task.step(model, carry)
        });
        let lr = step_lr(self.optim, self.run.steps, self.groups.as_ref(), step);
        let update = match out.stats.loss.is_finite() {
            false => Err(Divergence::Loss(out.stats.loss)),
            true => {
                // Skipping needs the moments from before a step that produced bad weights.
                let before =
                    (self.on_nonfinite == OnNonFinite::SkipBatch).then(|| self.optimizer.clone());
                let model = self.model.clone();
                let update = checked_update(
                    &mut self.optimizer,
                    model,
                    out.grads,
                    &lr,
                    self.optim.grad_clip,
                );
                if let (Err(_), Some(before)) = (&update, before) {
                    self.optimizer = before;
                }
                update.map(|(model, _norm)| match &self.ball {
                    Some(ball) => ball.project(model),
                    None => model,
                })
            }
        };
        self.state.step = step;
        match update {
            Ok(model) => {
                self.model = self.task.after_update(model, step);
                self.carry = out.next;
                self.state.tokens_seen += self.task.counted(&out.stats);
                Ok(Ok(out.stats))
            }
            Err(cause) if self.on_nonfinite == OnNonFinite::SkipBatch => {
                // The weights stay as they were; the state carried out of a bad batch may
                // itself be non-finite, so the next batch starts from a fresh one.
                self.carry = self.task.start(&self.model);
                self.state.skipped_batches += 1;
                Ok(Err(cause))
            }
            Err(cause) => Err(TrainError::NonFinite {
                step,
                cause,
                kept: self.last_checkpoint.map(|s| (s, self.dir.checkpoint())),
            }),
        }
    }

    /// Close the log window at `step`: one training line, and a fresh window.
    fn log_window(
        &mut self,
        step: u64,
        window: Metrics,
        tokens_per_s: f64,
        progress: &Progress,
    ) -> Result<(), TrainError> {
        let lr = self.optim.lr_at(step, self.run.steps);
        let mut fields = json!({
            "step": step, "split": "train",
            "lr": lr, "tokens_per_s": tokens_per_s, "elapsed_s": self.state.train_time_s,
        });
        if let Value::Object(map) = &mut fields {
            map.extend(self.task.train_log_fields());
        }
        self.append(&window.record(fields))?;
        progress.log(step, &self.task.window_text(&window, tokens_per_s), lr);
        self.state.last_train = Some(window);
        self.state.window = MetricsAccumulator::default();
        self.window_time_s = 0.0;
        self.window_tokens = 0;
        Ok(())
    }

    fn append(&mut self, record: &Value) -> Result<(), TrainError> {
        match &mut self.log {
            Some(log) => log.append(record),
            None => Ok(()),
        }
    }

    /// An inference copy of the model and the plain device it runs on.
    fn inference(&self) -> (ModelOf<T>, Device) {
        (self.model.valid(), self.device.clone().inner())
    }

    /// Evaluate `split` and append its line to the log.
    fn evaluate(&mut self, split: Split, name: &str) -> Result<Metrics, TrainError> {
        let (model, device) = self.inference();
        let metrics = self.task.evaluate(&model, &device, split);
        self.append(&metrics.record(json!({
            "step": self.state.step, "split": name, "elapsed_s": self.state.train_time_s,
        })))?;
        Ok(metrics)
    }

    fn evaluate_valid(&mut self) -> Result<Metrics, TrainError> {
        let metrics = self.evaluate(Split::Valid, "valid")?;
        let step = self.state.step;
        self.state.last_valid = Some((step, metrics));
        if self
            .state
            .best_valid
            .is_none_or(|(_, best)| metrics.better_than(&best))
        {
            self.state.best_valid = Some((step, metrics));
        }
        Ok(metrics)
    }

    fn save_checkpoint(&mut self) -> Result<(), TrainError> {
        let path = self.dir.checkpoint();
        self.state.position = self.task.position(&self.carry);
        Checkpoint::of(&path, self.state.clone(), &self.model, &self.optimizer)?
            .write_atomic(&path)?;
        self.last_checkpoint = Some(self.state.step);
        Ok(())
    }

    /// Final evaluations, checkpoint (if not already at this step), the task's summary and
    /// `summary.json`.
    fn finish(mut self, progress: &Progress) -> Result<T::Summary, TrainError> {
        let step = self.state.step;
        let valid = match self.state.last_valid {
            Some((at, metrics)) if at == step => metrics,
            _ => self.evaluate_valid()?,
        };
        if self.last_checkpoint != Some(step) {
            self.save_checkpoint()?;
        }
        let test = self.evaluate(Split::Test, "test")?;
        if self.state.skipped_batches > 0 {
            progress.announce(&format!(
                "{} batches skipped for non-finite values (train.on_nonfinite = \"skip_batch\")",
                self.state.skipped_batches
            ));
        }
        let state = &self.state;
        let run = RunSummary {
            model: state.model_name.clone(),
            kind: self.task.kind().to_string(),
            params: self.model.num_params(),
            steps: step,
            finished: step >= self.run.steps,
            train_time_s: state.train_time_s,
            tokens_per_s: state.tokens_seen as f64 / state.train_time_s.max(1e-9),
            valid,
            test,
            best_valid: state.best_valid,
            run_dir: self.dir.path().to_path_buf(),
            learnt_spans: None,
        };
        let (model, device) = self.inference();
        let mut ending = Ending {
            model: &model,
            device: &device,
            dir: &self.dir,
            progress,
            log: self.log.as_mut(),
        };
        let summary = self.task.summarize(run, &mut ending)?;
        let json = serde_json::to_vec_pretty(&summary).expect("summaries serialise");
        write_atomic(&self.dir.summary(), &json)?;
        Ok(summary)
    }
}
