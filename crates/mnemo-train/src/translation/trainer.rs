//! [`train_translation`]: a translation experiment's model as an [`MtTask`] in the one
//! [`Trainer`](crate::trainer::Trainer).
//!
//! Reproducibility and resume work as for the language-model trainer: the device is seeded
//! with `run.seed` before the model is built and with `(run.seed, step)` before every step;
//! the checkpoint holds weights, optimizer moments, step and data position, and the subword
//! vocabulary is saved next to it (`tokenizer.json`), so a resumed run continues exactly.
use crate::error::TrainError;
use crate::memory::check_translation_memory;
use crate::run_dir::RunDir;
use crate::trainer::{TrainOptions, Trainer, open_run};
use crate::translation::config::TranslationConfig;
use crate::translation::data::load_translation_data;
use crate::translation::summary::MtSummary;
use crate::translation::task::MtTask;

/// File name of the subword vocabulary in a translation run directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Train model `model_name` of `config` on `opts.device`; see the [module docs](self).
///
/// Writes `config.toml`, `tokenizer.json`, `metrics.jsonl`, `checkpoint.mnemo`,
/// `valid.hyp.txt`, `test.hyp.txt` and `summary.json` into the run directory and returns the
/// summary.
pub fn train_translation(
    config: &TranslationConfig,
    model_name: &str,
    opts: &TrainOptions,
) -> Result<MtSummary, TrainError> {
    check_translation_memory(config, model_name)?;
    let dir = RunDir::new(&opts.out_dir, &config.run.name, model_name);
    let tokenizer_path = dir.path().join(TOKENIZER_FILE);
    // Reading only: the run directory is created (and locked) once the data and model are
    // known to be usable, so a failed start writes nothing.
    let data = load_translation_data(config.data.parallel(), &tokenizer_path)?;
    let config = config.for_model(model_name, data.tokenizer.vocab_size())?;
    let (lock, resuming) = open_run(&dir, opts)?;
    let device = opts.device.clone().autodiff();
    let task = MtTask::new(config.clone(), data, tokenizer_path, &device)?;
    Trainer::new(task, &config, model_name, dir, device)
        .locked(lock)
        .train(opts, resuming)
}
