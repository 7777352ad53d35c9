//! The parallel corpus of a translation run: [`TranslationData`] with the run's vocabulary.
use std::path::Path;

use mnemo_data::Split;
use mnemo_data::translation::{
    EncodedPair, EvalSplit, ParallelConfig, SubwordTokenizer, TranslationData, encode_pairs,
    read_parallel, truncate_pairs,
};

use crate::error::TrainError;

/// Read and encode the corpus of `config`, with the tokenizer saved at `tokenizer` if that
/// file exists (a resumed or reloaded run), otherwise with one trained on the training split.
pub fn load_translation_data(
    config: &ParallelConfig,
    tokenizer: &Path,
) -> Result<TranslationData, TrainError> {
    let saved = match tokenizer.is_file() {
        true => Some(
            SubwordTokenizer::load(tokenizer)
                .map_err(|e| TrainError::data("the run's saved tokenizer", e))?,
        ),
        false => None,
    };
    TranslationData::prepare(config, saved).map_err(|e| TrainError::data("translation data", e))
}

/// The validation and test splits of `config`, encoded with `tokenizer` (what decoding a
/// trained run needs: the training split is not read).
pub fn load_eval_splits(
    config: &ParallelConfig,
    tokenizer: &SubwordTokenizer,
) -> Result<(EvalSplit, EvalSplit), TrainError> {
    config
        .validate()
        .map_err(|e| TrainError::data("translation data", e))?;
    let read = |split: Split| -> Result<EvalSplit, TrainError> {
        let text = read_parallel(&config.dir, &config.src, &config.tgt, split)
            .map_err(|e| TrainError::data("translation data", e))?;
        Ok(EvalSplit {
            encoded: encode_pairs(tokenizer, &text),
            text,
        })
    };
    Ok((read(Split::Valid)?, read(Split::Test)?))
}

/// The pairs of an evaluation split cut to `max_len` subwords a side (for the loss only;
/// decoding reads whole sources).
pub fn loss_pairs(split: &EvalSplit, max_len: usize) -> Vec<EncodedPair> {
    truncate_pairs(&split.encoded, max_len)
}

/// The whole encoded sources of an evaluation split (what decoding reads).
pub fn sources(split: &EvalSplit) -> Vec<Vec<u32>> {
    split.encoded.iter().map(|(s, _)| s.clone()).collect()
}

/// The reference translations of an evaluation split, as read.
pub fn references(split: &EvalSplit) -> Vec<String> {
    split.text.iter().map(|(_, t)| t.clone()).collect()
}
