//! The training loop: segments of a stream in order, memory carried from one to the next.
//!
//! One optimizer step reads one segment `[B, T]` of the training split. Row `r` of segment
//! `i + 1` continues row `r` of segment `i` ([`StreamBatcher`]), so the model state returned by
//! `forward_segment` (already detached: truncated backpropagation through time) is carried
//! into the next step; it is reset to a fresh state whenever the segment index wraps to 0 (a
//! new epoch). Adam(W) with linear warmup, clipping of the global gradient norm. Feedback
//! models get their gradients from the hand-written exact backward
//! ([`train_feedback_segment`]) unless `train.feedback_backward = "autodiff"` or the model
//! has dropout or post-norm.
//!
//! Reproducibility: the device is seeded with `run.seed` before the model is built, and with a
//! value derived from `(run.seed, step)` before every step, so dropout masks depend only on the
//! step. A checkpoint holds the weights, the optimizer moments, the step, the data position and
//! the carried state, so a resumed run continues exactly as an uninterrupted one would.
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use mnemo_data::{Scoring, Split, StreamBatcher, Vocab};
use mnemo_models::{Model, ModelState, StepProducts};
use serde_json::json;

use crate::checkpoint::{Checkpoint, CheckpointError, TrainerState};
use crate::clip::clip_global_norm;
use crate::error::TrainError;
use crate::evaluate::{evaluate, segment_tokens, split_batcher};
use crate::experiment::ExperimentConfig;
use crate::feedback_step::{FeedbackBackward, step_products, train_feedback_segment};
use crate::loss::masked_cross_entropy;
use crate::metrics::{Metrics, MetricsAccumulator};
use crate::metrics_log::MetricsLog;
use crate::progress::Progress;
use crate::run_dir::RunDir;
use crate::summary::RunSummary;

/// How to run [`train`]: where, on what, and whether to continue a previous run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainOptions {
    /// Root of all runs; this run goes to `<out_dir>/<run.name>/<model name>/`.
    pub out_dir: PathBuf,
    /// Backend name (see `mnemo_backend`), e.g. `cpu`.
    pub backend: String,
    /// Continue from `checkpoint.mnemo` if the run directory has one.
    pub resume: bool,
    /// Show no progress at all.
    pub quiet: bool,
    /// Stop (with a checkpoint, an evaluation and a summary marked unfinished) after this step,
    /// as if interrupted; `None` trains all `run.steps`.
    pub stop_after: Option<u64>,
}

impl TrainOptions {
    /// Train into `out_dir` on the default backend, fresh, with progress shown.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            backend: mnemo_backend::DEFAULT_BACKEND.to_string(),
            resume: false,
            quiet: false,
            stop_after: None,
        }
    }
}

/// The seed of step `step`'s random draws (dropout): a mix of the run seed and the step.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    fn splitmix64(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    splitmix64(seed ^ splitmix64(step))
}

/// Train model `model_name` of `config`; see the [module docs](self).
///
/// Writes `config.toml`, `vocab.json`, `metrics.jsonl`, `checkpoint.mnemo` and `summary.json`
/// into the run directory ([`RunDir`]) and returns the summary.
pub fn train(
    config: &ExperimentConfig,
    model_name: &str,
    opts: &TrainOptions,
) -> Result<RunSummary, TrainError> {
    let data = config
        .data
        .build()
        .map_err(|e| TrainError::data("preparing the data", e))?;
    let config = config.for_model(model_name, data.vocab.len())?;
    let device = mnemo_backend::autodiff_device(&opts.backend)?;
    let dir = RunDir::new(&opts.out_dir, &config.run.name, model_name);
    let resuming = dir.checkpoint().is_file();
    if resuming && !opts.resume {
        return Err(TrainError::RunExists {
            dir: dir.path().into(),
        });
    }
    let batchers =
        [Split::Train, Split::Valid, Split::Test].map(|s| split_batcher(&config, &data, s));
    let [train, valid, test] = batchers;
    let (train, valid, test) = (train?, valid?, test?);

    let model_config = config.models[model_name].clone();
    let seed = config.run.seed;
    device.seed(seed);
    let model = initialize_params(model_config.init(&device));
    let mut session = Session {
        carried: model.init_state(train.batch(), &device),
        state: TrainerState {
            model_name: model_name.to_string(),
            model_config,
            data: config.data.clone(),
            train: config.train.clone(),
            seed,
            step: 0,
            next_segment: 0,
            epoch: 0,
            segments_per_epoch: train.num_segments(),
            carried: model.init_state(train.batch(), &device).snapshot(),
            train_time_s: 0.0,
            tokens_seen: 0,
            last_train: None,
            window: MetricsAccumulator::default(),
            last_valid: None,
            best_valid: None,
        },
        model,
        optimizer: config.optim.init(),
        log: None,
        last_checkpoint: None,
        window_time_s: 0.0,
        window_tokens: 0,
        scoring: data.scoring(),
        config: &config,
        dir,
        products: step_products(&device),
        device,
        train,
        valid,
        test,
    };
    if resuming {
        session.restore()?;
    }
    // Only now, with the checkpoint (if any) known to fit, touch the run directory.
    prepare_dir(&session.dir, &config, &data.vocab)?;
    session.log = Some(match resuming {
        true => MetricsLog::resume(&session.dir.metrics(), session.state.step)?,
        false => MetricsLog::create(&session.dir.metrics())?,
    });
    let target = opts
        .stop_after
        .map_or(config.run.steps, |s| s.min(config.run.steps));
    let progress = Progress::new(model_name, session.state.step, config.run.steps, opts.quiet);
    progress.announce(&format!(
        "training {model_name} ({}, {} parameters) on {} into {}{}",
        session.state.model_config.kind(),
        session.model.num_params(),
        opts.backend,
        session.dir.path().display(),
        match resuming {
            true => format!(", resuming at step {}", session.state.step),
            false => String::new(),
        }
    ));
    let result = session.run(target, &progress);
    progress.finish();
    result?;
    session.finish()
}

/// Draw every lazily initialised parameter now, in the module's visiting order.
///
/// burn initialises a parameter at its first use; without this, the initial weights would
/// depend on the order in which the first training step touches them (which differs between
/// the autodiff and the hand-written Feedback backward), and on the step's reseeding.
pub fn initialize_params(model: Model) -> Model {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
    model
}

/// Create the run directory and write the resolved config and the vocabulary.
fn prepare_dir(dir: &RunDir, config: &ExperimentConfig, vocab: &Vocab) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir.path())
        .map_err(|e| TrainError::io(dir.path(), "cannot create run directory", e))?;
    write_file(&dir.config(), config.to_toml_string().as_bytes())?;
    let vocab = serde_json::to_vec(vocab).expect("vocabularies serialise");
    write_file(&dir.vocab(), &vocab)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    std::fs::write(path, bytes).map_err(|e| TrainError::io(path, "cannot write", e))
}

/// Everything one training session holds.
struct Session<'a> {
    config: &'a ExperimentConfig,
    dir: RunDir,
    device: Device,
    /// How the manual Feedback backward multiplies one step's rows (host kernels on CPU).
    products: StepProducts,
    model: Model,
    optimizer: ModuleOptimizer,
    state: TrainerState,
    carried: ModelState,
    train: StreamBatcher,
    valid: StreamBatcher,
    test: StreamBatcher,
    scoring: Scoring,
    log: Option<MetricsLog>,
    last_checkpoint: Option<u64>,
    /// Seconds and positions of the steps of the open log window taken in this session.
    window_time_s: f64,
    window_tokens: u64,
}

impl Session<'_> {
    /// Load the checkpoint of the run directory over the fresh session.
    fn restore(&mut self) -> Result<(), TrainError> {
        let path = self.dir.checkpoint();
        let ckpt = Checkpoint::<TrainerState>::read(&path)?;
        let saved = &ckpt.trainer;
        let mismatch = |what: &str| -> TrainError {
            CheckpointError::mismatch(
                &path,
                format!("{what} differs from the config; train into another --out"),
            )
            .into()
        };
        if saved.model_name != self.state.model_name {
            return Err(mismatch("the model name"));
        }
        if saved.model_config != self.state.model_config {
            return Err(mismatch(&format!("models.{}", self.state.model_name)));
        }
        if saved.seed != self.state.seed {
            return Err(mismatch("run.seed"));
        }
        if saved.data != self.state.data {
            return Err(mismatch("[data]"));
        }
        if saved.train != self.state.train {
            return Err(mismatch("[train]"));
        }
        if saved.segments_per_epoch != self.state.segments_per_epoch {
            return Err(mismatch("the training data (segments per epoch)"));
        }
        if saved.next_segment >= saved.segments_per_epoch {
            return Err(CheckpointError::Corrupt {
                path,
                reason: "data position past the end of an epoch".into(),
            }
            .into());
        }
        self.model = ckpt.load_model(self.model.clone(), &path)?;
        self.optimizer = ckpt.load_optimizer(&self.config.optim, &path)?;
        self.carried = self
            .model
            .restore_state(&saved.carried, self.train.batch(), &self.device)
            .map_err(|e| CheckpointError::mismatch(&path, format!("carried state: {e}")))?;
        self.last_checkpoint = Some(saved.step);
        self.state = ckpt.trainer;
        Ok(())
    }

    /// Steps until `target`, logging, evaluating and checkpointing on schedule.
    fn run(&mut self, target: u64, progress: &Progress) -> Result<(), TrainError> {
        let run = &self.config.run;
        let due = |step: u64, every: u64| every > 0 && step % every == 0;
        while self.state.step < target {
            let step = self.state.step + 1;
            let started = Instant::now();
            let stats = self.step(step)?;
            let elapsed = started.elapsed().as_secs_f64();
            self.state.train_time_s += elapsed;
            self.window_time_s += elapsed;
            self.window_tokens += stats.tokens as u64;
            self.state.window.add(&stats);
            let window = self.state.window.metrics().with_lm_unit(self.scoring.lm);
            let tokens_per_s = self.window_tokens as f64 / self.window_time_s.max(1e-9);
            progress.step(step, &window, tokens_per_s);
            if due(step, run.log_every) {
                let lr = self.config.optim.lr_at(step, run.steps);
                self.append(window.record(json!({
                    "step": step, "split": "train",
                    "lr": lr, "tokens_per_s": tokens_per_s, "elapsed_s": self.state.train_time_s,
                })))?;
                progress.log(step, &window, lr, tokens_per_s);
                self.state.last_train = Some(window);
                self.state.window = MetricsAccumulator::default();
                self.window_time_s = 0.0;
                self.window_tokens = 0;
            }
            let last = step == target;
            if due(step, run.eval_every) || last {
                let metrics = self.evaluate_valid()?;
                progress.eval(step, "valid", &metrics);
            }
            if due(step, run.checkpoint_every) || last {
                self.save_checkpoint()?;
            }
        }
        Ok(())
    }

    /// One optimizer step on the next training segment.
    fn step(&mut self, step: u64) -> Result<crate::loss::LossStats, TrainError> {
        let batch = self.train.batch();
        if self.state.next_segment == 0 {
            self.carried = self.model.init_state(batch, &self.device);
        }
        let segment = self.train.segment(self.state.next_segment);
        self.device.seed(step_seed(self.state.seed, step));
        let carried = self.carried.clone();
        let tokens = segment_tokens(&segment, &self.device);
        let (stats, grads, next) = match &self.model {
            Model::Feedback(fb)
                if self.config.train.feedback_backward == FeedbackBackward::Manual
                    && fb.supports_manual_backward() =>
            {
                let out = train_feedback_segment(fb, tokens, &segment.targets, self.scoring.no_label, carried, self.products);
                (out.stats, out.grads, out.state)
            }
            _ => {
                let out = self.model.forward_segment(tokens, carried);
                let loss = masked_cross_entropy(out.logits, &segment.targets, self.scoring.no_label);
                let stats = loss.stats();
                let grads = match stats.loss.is_finite() {
                    true => GradientsParams::from_grads(loss.loss.backward(), &self.model),
                    false => GradientsParams::new(),
                };
                (stats, grads, out.state)
            }
        };
        if !stats.loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step,
                loss: stats.loss,
                kept: self.last_checkpoint.map(|s| (s, self.dir.checkpoint())),
            });
        }
        let (grads, _norm) = clip_global_norm(&self.model, grads, self.config.optim.grad_clip);
        let lr = self.config.optim.lr_at(step, self.config.run.steps);
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        self.carried = next;
        self.state.step = step;
        self.state.tokens_seen += stats.tokens as u64;
        self.state.next_segment += 1;
        if self.state.next_segment == self.train.num_segments() {
            self.state.next_segment = 0;
            self.state.epoch += 1;
        }
        Ok(stats)
    }

    fn append(&mut self, record: serde_json::Value) -> Result<(), TrainError> {
        match &mut self.log {
            Some(log) => log.append(&record),
            None => Ok(()),
        }
    }

    fn inference(&self) -> (Model, Device) {
        (self.model.valid(), self.device.clone().inner())
    }

    fn evaluate_valid(&mut self) -> Result<Metrics, TrainError> {
        let (model, device) = self.inference();
        let metrics = evaluate(&model, &self.valid, self.scoring, &device);
        let step = self.state.step;
        self.append(metrics.record(json!({
            "step": step, "split": "valid", "elapsed_s": self.state.train_time_s,
        })))?;
        self.state.last_valid = Some((step, metrics));
        let better = match self.state.best_valid {
            None => true,
            Some((_, best)) => metrics.better_than(&best),
        };
        if better {
            self.state.best_valid = Some((step, metrics));
        }
        Ok(metrics)
    }

    fn save_checkpoint(&mut self) -> Result<(), TrainError> {
        let path = self.dir.checkpoint();
        self.state.carried = self.carried.snapshot();
        Checkpoint::of(&path, self.state.clone(), &self.model, &self.optimizer)?.write_atomic(&path)?;
        self.last_checkpoint = Some(self.state.step);
        Ok(())
    }

    /// Final evaluations, checkpoint (if not already at this step) and `summary.json`.
    fn finish(mut self) -> Result<RunSummary, TrainError> {
        let step = self.state.step;
        let valid = match self.state.last_valid {
            Some((at, metrics)) if at == step => metrics,
            _ => self.evaluate_valid()?,
        };
        if self.last_checkpoint != Some(step) {
            self.save_checkpoint()?;
        }
        let (model, device) = self.inference();
        let test = evaluate(&model, &self.test, self.scoring, &device);
        self.append(test.record(json!({
            "step": step, "split": "test", "elapsed_s": self.state.train_time_s,
        })))?;
        let summary = RunSummary {
            model: self.state.model_name.clone(),
            kind: self.state.model_config.kind().to_string(),
            params: self.model.num_params(),
            steps: step,
            finished: step >= self.config.run.steps,
            train_time_s: self.state.train_time_s,
            tokens_per_s: self.state.tokens_seen as f64 / self.state.train_time_s.max(1e-9),
            valid,
            test,
            best_valid: self.state.best_valid,
            run_dir: self.dir.path().to_path_buf(),
        };
        let json = serde_json::to_vec_pretty(&summary).expect("summaries serialise");
        write_file(&self.dir.summary(), &json)?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_seeds_differ_by_step_and_seed() {
        let a: Vec<u64> = (1..100).map(|s| step_seed(7, s)).collect();
        let mut dedup = a.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), a.len());
        assert_ne!(step_seed(7, 1), step_seed(8, 1));
        assert_eq!(step_seed(7, 5), step_seed(7, 5));
    }
}
