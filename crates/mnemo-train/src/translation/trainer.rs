//! The translation training loop: batches of similar-length sentence pairs, teacher forcing,
//! Adam(W) with warmup and clipping; validation loss on schedule; at the end, BLEU of beam
//! search on the validation and test splits, with decoding speed.
//!
//! Reproducibility and resume work as for the language-model trainer: the device is seeded
//! with `run.seed` before the model is built and with `(run.seed, step)` before every step;
//! the checkpoint holds weights, optimizer moments, step and data position, and the subword
//! vocabulary is saved next to it (`tokenizer.json`), so a resumed run continues exactly.
use std::path::Path;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use mnemo_data::LmUnit;
use mnemo_data::translation::{EncodedPair, PairBatcher, SubwordTokenizer, TranslationData};
use mnemo_models::Seq2Seq;
use serde_json::json;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::clip::clip_global_norm;
use crate::error::TrainError;
use crate::loss::{LossStats, masked_cross_entropy};
use crate::metrics::{Metrics, MetricsAccumulator};
use crate::metrics_log::MetricsLog;
use crate::progress::Progress;
use crate::run_dir::RunDir;
use crate::trainer::{TrainOptions, step_seed};
use crate::translation::config::TranslationConfig;
use crate::translation::data::{load_translation_data, loss_pairs};
use crate::translation::evaluate::{batch_tensors, evaluate_bleu, evaluate_loss};
use crate::translation::state::MtTrainerState;
use crate::translation::summary::MtSummary;

/// File name of the subword vocabulary in a translation run directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Train model `model_name` of `config`; see the [module docs](self).
///
/// Writes `config.toml`, `tokenizer.json`, `metrics.jsonl`, `checkpoint.mnemo`,
/// `valid.hyp.txt`, `test.hyp.txt` and `summary.json` into the run directory and returns the
/// summary.
pub fn train_translation(
    config: &TranslationConfig,
    model_name: &str,
    opts: &TrainOptions,
) -> Result<MtSummary, TrainError> {
    let dir = RunDir::new(&opts.out_dir, &config.run.name, model_name);
    let resuming = dir.checkpoint().is_file();
    if resuming && !opts.resume {
        return Err(TrainError::RunExists {
            dir: dir.path().into(),
        });
    }
    let tokenizer_path = dir.path().join(TOKENIZER_FILE);
    let data = load_translation_data(config.data.parallel(), &tokenizer_path)?;
    let config = config.for_model(model_name, data.tokenizer.vocab_size())?;
    let device = mnemo_backend::autodiff_device(&opts.backend)?;
    let model_config = config.models[model_name].clone();
    device.seed(config.run.seed);
    let model = touch_params(model_config.init(&device));
    let batcher = PairBatcher::new(data.train.clone(), config.train.max_tokens, config.run.seed)
        .map_err(|e| TrainError::data("batching the training pairs (train.max_tokens)", e))?;
    let max_len = config.data.parallel().max_len;
    let valid_pairs = loss_pairs(&data.valid, max_len);
    let test_pairs = loss_pairs(&data.test, max_len);
    let mut session = MtSession {
        state: MtTrainerState {
            model_name: model_name.to_string(),
            model_config,
            data: config.data.parallel().clone(),
            train: config.train.clone(),
            seed: config.run.seed,
            step: 0,
            position: batcher.position(),
            batches_per_epoch: batcher.num_batches(),
            train_time_s: 0.0,
            tokens_seen: 0,
            window: MetricsAccumulator::default(),
            last_valid: None,
            best_valid: None,
        },
        model,
        optimizer: config.optim.init(),
        batcher,
        log: None,
        last_checkpoint: None,
        window_time_s: 0.0,
        window_tokens: 0,
        config: &config,
        data: &data,
        valid_pairs,
        test_pairs,
        dir,
        device,
    };
    if resuming {
        session.restore()?;
    }
    std::fs::create_dir_all(session.dir.path())
        .map_err(|e| TrainError::io(session.dir.path(), "cannot create run directory", e))?;
    write_file(&session.dir.config(), config.to_toml_string().as_bytes())?;
    if !tokenizer_path.is_file() {
        data.tokenizer
            .save(&tokenizer_path)
            .map_err(|e| TrainError::data("saving the tokenizer", e))?;
    }
    session.log = Some(match resuming {
        true => MetricsLog::resume(&session.dir.metrics(), session.state.step)?,
        false => MetricsLog::create(&session.dir.metrics())?,
    });
    let target = opts
        .stop_after
        .map_or(config.run.steps, |s| s.min(config.run.steps));
    let progress = Progress::new(model_name, session.state.step, config.run.steps, opts.quiet);
    progress.announce(&format!(
        "training {model_name} (encoder {} + {} decoder {}, {} parameters) on {} into {}: \
         {} training pairs ({} of {} dropped as longer than {} subwords), vocabulary {}{}",
        session.state.model_config.encoder_layers,
        decoder_name(session.state.model_config.decoder),
        session.state.model_config.decoder_layers,
        session.model.num_params(),
        opts.backend,
        session.dir.path().display(),
        data.train_counts.kept,
        data.train_counts.too_long,
        data.train_counts.sampled,
        config.data.parallel().max_len,
        data.tokenizer.vocab_size(),
        match resuming {
            true => format!(", resuming at step {}", session.state.step),
            false => String::new(),
        }
    ));
    let result = session.run(target, &progress);
    progress.finish();
    result?;
    session.finish(&progress, target)
}

/// `transformer` or `feedback`.
fn decoder_name(kind: mnemo_models::DecoderKind) -> &'static str {
    match kind {
        mnemo_models::DecoderKind::Transformer => "transformer",
        mnemo_models::DecoderKind::Feedback => "feedback",
    }
}

/// Draw every lazily initialised parameter now, in the module's visiting order.
fn touch_params<M: Module>(model: M) -> M {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
    model
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    std::fs::write(path, bytes).map_err(|e| TrainError::io(path, "cannot write", e))
}

struct MtSession<'a> {
    config: &'a TranslationConfig,
    data: &'a TranslationData,
    valid_pairs: Vec<EncodedPair>,
    test_pairs: Vec<EncodedPair>,
    dir: RunDir,
    device: Device,
    model: Seq2Seq,
    optimizer: ModuleOptimizer,
    batcher: PairBatcher,
    state: MtTrainerState,
    log: Option<MetricsLog>,
    last_checkpoint: Option<u64>,
    window_time_s: f64,
    window_tokens: u64,
}

impl MtSession<'_> {
    fn restore(&mut self) -> Result<(), TrainError> {
        let path = self.dir.checkpoint();
        let ckpt = Checkpoint::<MtTrainerState>::read(&path)?;
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
        if saved.batches_per_epoch != self.state.batches_per_epoch {
            return Err(mismatch("the training data (batches per epoch)"));
        }
        self.model = ckpt.load_model(self.model.clone(), &path)?;
        self.optimizer = ckpt.load_optimizer(&self.config.optim, &path)?;
        self.batcher
            .seek(saved.position)
            .map_err(|e| CheckpointError::mismatch(&path, format!("data position: {e}")))?;
        self.last_checkpoint = Some(saved.step);
        self.state = ckpt.trainer;
        Ok(())
    }

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
            self.window_tokens += stats.scored as u64;
            self.state.window.add(&stats);
            let window = self.state.window.metrics().with_lm_unit(Some(LmUnit::Word));
            let tokens_per_s = self.window_tokens as f64 / self.window_time_s.max(1e-9);
            progress.step(step, &window, tokens_per_s);
            if due(step, run.log_every) {
                let lr = self.config.optim.lr_at(step, run.steps);
                self.append(window.record(json!({
                    "step": step, "split": "train", "epoch": self.state.position.0,
                    "lr": lr, "tokens_per_s": tokens_per_s, "elapsed_s": self.state.train_time_s,
                })))?;
                progress.log(step, &window, lr, tokens_per_s);
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

    fn step(&mut self, step: u64) -> Result<LossStats, TrainError> {
        let batch = self.batcher.next_batch();
        self.device.seed(step_seed(self.state.seed, step));
        let (src, tgt_in) = batch_tensors(&batch, &self.device);
        let logits = self.model.forward(src, tgt_in);
        let loss = masked_cross_entropy(logits, &batch.tgt_out, SubwordTokenizer::PAD);
        let stats = loss.stats();
        if !stats.loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step,
                loss: stats.loss,
                kept: self.last_checkpoint.map(|s| (s, self.dir.checkpoint())),
            });
        }
        let grads = GradientsParams::from_grads(loss.loss.backward(), &self.model);
        let (grads, _norm) = clip_global_norm(&self.model, grads, self.config.optim.grad_clip);
        let lr = self.config.optim.lr_at(step, self.config.run.steps);
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        self.state.step = step;
        self.state.tokens_seen += stats.scored as u64;
        self.state.position = self.batcher.position();
        Ok(stats)
    }

    fn append(&mut self, record: serde_json::Value) -> Result<(), TrainError> {
        match &mut self.log {
            Some(log) => log.append(&record),
            None => Ok(()),
        }
    }

    fn inference(&self) -> (Seq2Seq, Device) {
        (self.model.valid(), self.device.clone().inner())
    }

    fn evaluate_valid(&mut self) -> Result<Metrics, TrainError> {
        let (model, device) = self.inference();
        let max_tokens = self.config.train.eval_max_tokens();
        let metrics = evaluate_loss(&model, &self.valid_pairs, max_tokens, &device);
        let step = self.state.step;
        self.append(metrics.record(json!({
            "step": step, "split": "valid", "elapsed_s": self.state.train_time_s,
        })))?;
        self.state.last_valid = Some((step, metrics));
        if self.state.best_valid.is_none_or(|(_, best)| metrics.better_than(&best)) {
            self.state.best_valid = Some((step, metrics));
        }
        Ok(metrics)
    }

    fn save_checkpoint(&mut self) -> Result<(), TrainError> {
        let path = self.dir.checkpoint();
        Checkpoint::of(&path, self.state.clone(), &self.model, &self.optimizer)?.write_atomic(&path)?;
        self.last_checkpoint = Some(self.state.step);
        Ok(())
    }

    /// Final validation loss, checkpoint, test loss, BLEU on valid and test, `summary.json`.
    fn finish(mut self, progress: &Progress, target: u64) -> Result<MtSummary, TrainError> {
        let step = self.state.step;
        let valid = match self.state.last_valid {
            Some((at, metrics)) if at == step => metrics,
            _ => self.evaluate_valid()?,
        };
        if self.last_checkpoint != Some(step) {
            self.save_checkpoint()?;
        }
        let (model, device) = self.inference();
        let max_tokens = self.config.train.eval_max_tokens();
        let test = evaluate_loss(&model, &self.test_pairs, max_tokens, &device);
        self.append(test.record(json!({
            "step": step, "split": "test", "elapsed_s": self.state.train_time_s,
        })))?;
        let decode = &self.config.decode;
        let mut reports = Vec::new();
        for (name, split) in [("valid", &self.data.valid), ("test", &self.data.test)] {
            progress.announce(&format!(
                "{}: decoding {name} with beam {} ...",
                self.state.model_name, decode.beam_size
            ));
            let (report, hyps) = evaluate_bleu(
                &model,
                &self.data.tokenizer,
                split,
                decode,
                decode.beam_size,
                max_tokens,
                &device,
            );
            progress.announce(&format!("{}: {name} {}", self.state.model_name, report.bleu));
            let mut text = hyps.join("\n");
            text.push('\n');
            write_file(&self.dir.path().join(format!("{name}.hyp.txt")), text.as_bytes())?;
            self.append(json!({
                "step": step, "split": name, "bleu": report.bleu.score,
                "bleu_string": report.bleu.to_string(), "beam_size": report.beam_size,
                "decode_tokens_per_s": report.tokens_per_s,
                "decode_sentences_per_s": report.sentences_per_s,
            }))?;
            reports.push(report);
        }
        let test_bleu = reports.pop().expect("two reports");
        let valid_bleu = reports.pop().expect("two reports");
        let summary = MtSummary {
            model: self.state.model_name.clone(),
            decoder: decoder_name(self.state.model_config.decoder).to_string(),
            encoder_layers: self.state.model_config.encoder_layers,
            decoder_layers: self.state.model_config.decoder_layers,
            params: self.model.num_params(),
            steps: step,
            finished: step >= self.config.run.steps && step >= target,
            train_time_s: self.state.train_time_s,
            train_tokens_per_s: self.state.tokens_seen as f64 / self.state.train_time_s.max(1e-9),
            valid,
            test,
            best_valid: self.state.best_valid,
            valid_bleu,
            test_bleu,
            run_dir: self.dir.path().to_path_buf(),
        };
        let json = serde_json::to_vec_pretty(&summary).expect("summaries serialise");
        write_file(&self.dir.summary(), &json)?;
        Ok(summary)
    }
}
