//! Machine translation: encoder–decoder models ([`mnemo_models::Seq2Seq`]) with a Transformer,
//! a Feedback or a CAN decoder, trained on a line-aligned parallel corpus with a joint BPE
//! vocabulary and scored with sacrebleu's BLEU ([`crate::bleu`]).
//!
//! - [`config`]: the experiment config (`[data] task = "translation"`).
//! - [`data`]: reads and encodes the corpus, trains or reloads the subword vocabulary.
//! - [`trainer`]: [`train_translation`], the [`MtTask`] in the one
//!   [`Trainer`](crate::trainer::Trainer); [`step`]: its training step.
//! - [`evaluate`](mod@evaluate): loss/perplexity, batched beam search, BLEU and decoding speed.
//! - [`run`]: [`load_translation_run`] to reload a trained run (`mnemo translate`).
pub mod config;
pub mod data;
pub mod evaluate;
pub mod run;
pub mod state;
pub mod step;
pub mod summary;
pub mod task;
pub mod trainer;

pub use config::{
    DecodeConfig, MtTrainConfig, TranslationConfig, TranslationData, is_translation_config,
};
pub use data::{load_eval_splits, load_translation_data};
pub use evaluate::{BleuReport, decode_ids, evaluate_bleu, evaluate_loss, translate};
pub use run::{LoadedTranslationRun, load_translation_run};
pub use state::{MtPosition, MtTrainerState};
pub use step::mt_step;
pub use summary::{MtSummary, mt_results_table};
pub use task::MtTask;
pub use trainer::{TOKENIZER_FILE, train_translation};
