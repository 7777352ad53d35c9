//! Translation as a [`Task`]: batches of similar-length sentence pairs, teacher forcing;
//! validation loss on schedule; at the end, BLEU of beam search on the validation and test
//! splits, with decoding speed.
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use mnemo_data::translation::{
    EncodedPair, PairBatcher, TranslationData, parallel_file, split_name,
};
use mnemo_data::{LmUnit, Split};
use mnemo_models::{DecoderKind, Seq2Seq, Seq2SeqConfig};
use serde_json::{Map, Value, json};

use crate::checkpoint::CheckpointError;
use crate::error::TrainError;
use crate::loss::LossStats;
use crate::metrics::Metrics;
use crate::run_dir::RunDir;
use crate::summary::RunSummary;
use crate::task::{Ending, StepOutput, Task};
use crate::trainer::{differs_from_config, write_file};
use crate::translation::config::TranslationConfig;
use crate::translation::data::loss_pairs;
use crate::translation::evaluate::{BleuReport, evaluate_bleu, evaluate_loss};
use crate::translation::state::MtPosition;
use crate::translation::step::{GradientPath, mt_step};
use crate::translation::summary::MtSummary;

/// A translation run: the corpus, its batcher and the pairs the loss is evaluated on.
#[derive(Debug)]
pub struct MtTask {
    config: TranslationConfig,
    data: TranslationData,
    tokenizer_path: PathBuf,
    device: Device,
    batcher: PairBatcher,
    valid_pairs: Vec<EncodedPair>,
    test_pairs: Vec<EncodedPair>,
}

impl MtTask {
    /// The task of the single-model `config` on `data`, stepping on the autodiff `device`;
    /// the tokenizer is saved to `tokenizer_path` unless it is there already.
    pub fn new(
        config: TranslationConfig,
        data: TranslationData,
        tokenizer_path: PathBuf,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let batcher =
            PairBatcher::new(data.train.clone(), config.train.max_tokens, config.run.seed)
                .map_err(|e| {
                    TrainError::data("batching the training pairs (train.max_tokens)", e)
                })?;
        let max_len = config.data.parallel().max_len;
        Ok(Self {
            valid_pairs: loss_pairs(&data.valid, max_len),
            test_pairs: loss_pairs(&data.test, max_len),
            config,
            data,
            tokenizer_path,
            device: device.clone(),
            batcher,
        })
    }

    fn model_config(&self) -> &Seq2SeqConfig {
        self.config
            .models
            .values()
            .next()
            .expect("a single-model config")
    }

    /// Decode `split` (`valid` or `test`), write `<split>.hyp.txt` and log its BLEU.
    fn bleu(
        &self,
        name: &str,
        ending: &mut Ending<'_, Seq2Seq>,
        step: u64,
    ) -> Result<BleuReport, TrainError> {
        let split = match name {
            "test" => &self.data.test,
            _ => &self.data.valid,
        };
        let decode = &self.config.decode;
        let model_name = self
            .config
            .models
            .keys()
            .next()
            .expect("a single-model config");
        let max_tokens = self.config.train.eval_max_tokens();
        ending.progress.announce(&format!(
            "{model_name}: decoding {name} with beam {} ...",
            decode.beam_size
        ));
        let tokenizer = &self.data.tokenizer;
        let (report, hyps) = evaluate_bleu(
            ending.model,
            tokenizer,
            split,
            decode,
            decode.beam_size,
            max_tokens,
            ending.device,
        );
        ending
            .progress
            .announce(&format!("{model_name}: {name} {}", report.bleu));
        let mut text = hyps.join("\n");
        text.push('\n');
        write_file(
            &ending.dir.path().join(format!("{name}.hyp.txt")),
            text.as_bytes(),
        )?;
        ending.append(&json!({
            "step": step, "split": name, "bleu": report.bleu.score,
            "bleu_string": report.bleu.to_string(), "beam_size": report.beam_size,
            "decode_tokens_per_s": report.tokens_per_s,
            "decode_sentences_per_s": report.sentences_per_s,
        }))?;
        Ok(report)
    }
}

/// `transformer`, `feedback` or `can`: the kind's name in a config.
pub fn decoder_name(kind: DecoderKind) -> &'static str {
    match kind {
        DecoderKind::Transformer => "transformer",
        DecoderKind::Feedback => "feedback",
        DecoderKind::Can => "can",
    }
}

impl Task for MtTask {
    type Config = TranslationConfig;
    type Position = MtPosition;
    type Carry = ();
    type Summary = MtSummary;

    fn start(&self, _model: &Seq2Seq) {}

    fn step(&mut self, model: &Seq2Seq, _carry: ()) -> StepOutput<()> {
        mt_step(model, &self.batcher.next_batch(), &self.device)
    }

    fn counted(&self, stats: &LossStats) -> u64 {
        stats.scored as u64
    }

    fn position(&self, _carry: &()) -> MtPosition {
        MtPosition {
            position: self.batcher.position(),
            batches_per_epoch: self.batcher.num_batches(),
        }
    }

    fn restore(
        &mut self,
        _model: &Seq2Seq,
        saved: &MtPosition,
        path: &Path,
    ) -> Result<(), CheckpointError> {
        if saved.batches_per_epoch != self.batcher.num_batches() {
            return Err(differs_from_config(
                path,
                "the training data (batches per epoch)",
            ));
        }
        self.batcher
            .seek(saved.position)
            .map_err(|e| CheckpointError::mismatch(path, format!("data position: {e}")))
    }

    fn lm_unit(&self) -> Option<LmUnit> {
        Some(LmUnit::Word)
    }

    fn train_log_fields(&self) -> Map<String, Value> {
        Map::from_iter([("epoch".to_string(), json!(self.batcher.position().0))])
    }

    fn evaluate(&self, model: &Seq2Seq, device: &Device, split: Split) -> Metrics {
        let pairs = match split {
            Split::Test => &self.test_pairs,
            _ => &self.valid_pairs,
        };
        evaluate_loss(model, pairs, self.config.train.eval_max_tokens(), device)
    }

    /// Both sides of the three splits, as [`read_parallel`](mnemo_data::translation::read_parallel)
    /// reads them (the plain file, else its `.sgm`).
    fn data_files(&self) -> Vec<PathBuf> {
        let parallel = self.config.data.parallel();
        let mut files = Vec::new();
        for split in Split::ALL {
            for lang in [&parallel.src, &parallel.tgt] {
                let plain = parallel_file(&parallel.dir, split, lang);
                let sgm = parallel
                    .dir
                    .join(format!("{}.{lang}.sgm", split_name(split)));
                files.push(match !plain.is_file() && sgm.is_file() {
                    true => sgm,
                    false => plain,
                });
            }
        }
        files
    }

    fn write_files(&self, _dir: &RunDir) -> Result<(), TrainError> {
        if self.tokenizer_path.is_file() {
            return Ok(());
        }
        self.data
            .tokenizer
            .save(&self.tokenizer_path)
            .map_err(|e| TrainError::data("saving the tokenizer", e))
    }

    fn kind(&self) -> &'static str {
        "seq2seq"
    }

    fn describe(&self, model: &Seq2Seq) -> (String, Option<String>) {
        let c = self.model_config();
        let counts = &self.data.train_counts;
        let gradients = GradientPath::of(model, &self.device).describe(model, &self.device);
        let model = format!(
            "encoder {} + {} decoder {}, {} parameters, {gradients}",
            c.encoder_layers,
            decoder_name(c.decoder.kind()),
            c.decoder_layers,
            model.num_params()
        );
        let data = format!(
            "{} training pairs ({} of {} dropped as longer than {} subwords), vocabulary {}",
            counts.kept,
            counts.too_long,
            counts.sampled,
            self.config.data.parallel().max_len,
            self.data.tokenizer.vocab_size()
        );
        (model, Some(data))
    }

    fn summarize(
        &self,
        run: RunSummary,
        ending: &mut Ending<'_, Seq2Seq>,
    ) -> Result<MtSummary, TrainError> {
        let valid_bleu = self.bleu("valid", ending, run.steps)?;
        let test_bleu = self.bleu("test", ending, run.steps)?;
        Ok(MtSummary::new(
            run,
            self.model_config(),
            valid_bleu,
            test_bleu,
        ))
    }
}
