//! The whole data side of a translation run from its `[data]` settings: the three splits
//! read, the joint BPE trained (or given), the pairs encoded and the training pairs filtered.

use super::length_batching::{EncodedPair, drop_long_pairs};
use super::parallel::{ParallelConfig, read_parallel, sample_pairs};
use super::subword::SubwordTokenizer;
use crate::{DataError, Split};

/// An evaluation split: the text (for decoding and BLEU) and its full-length encoding (for
/// the loss, cut with [`truncate_pairs`](super::truncate_pairs) to `data.max_len`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalSplit {
    /// (source, reference) lines as read.
    pub text: Vec<(String, String)>,
    /// (source ids, target ids) of each line, untruncated, without BOS/EOS.
    pub encoded: Vec<EncodedPair>,
}

/// Counts of the training-pair pipeline, for logs and run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainCounts {
    /// Pairs in `train.{src}` / `train.{tgt}`.
    pub read: usize,
    /// Pairs kept by the `data.max_train_pairs` sample (= `read` without one).
    pub sampled: usize,
    /// Sampled pairs dropped for a side longer than `data.max_len` subwords.
    pub too_long: usize,
    /// Pairs left to train on: `sampled - too_long`.
    pub kept: usize,
}

/// The prepared data of a translation run.
#[derive(Debug, Clone)]
pub struct TranslationData {
    /// The joint subword vocabulary.
    pub tokenizer: SubwordTokenizer,
    /// Training pairs (sampled, length-filtered), encoded, in file order.
    pub train: Vec<EncodedPair>,
    /// How the training pairs were counted down.
    pub train_counts: TrainCounts,
    /// The validation split.
    pub valid: EvalSplit,
    /// The test split.
    pub test: EvalSplit,
}

impl TranslationData {
    /// Runs the pipeline documented on [`ParallelConfig`]: validate, read the three splits,
    /// sample the training pairs (`data.max_train_pairs`, `data.seed`), train the BPE on both
    /// sides of the sampled training pairs unless `tokenizer` is given (a resumed or evaluated
    /// run passes the one it saved), encode everything, and drop training pairs longer than
    /// `data.max_len`.
    ///
    /// Errors name the field or file; an empty training split after filtering is an error
    /// naming `data.max_len`.
    pub fn prepare(
        config: &ParallelConfig,
        tokenizer: Option<SubwordTokenizer>,
    ) -> Result<Self, DataError> {
        config.validate()?;
        let (dir, src, tgt) = (&config.dir, config.src.as_str(), config.tgt.as_str());
        let train_text = read_parallel(dir, src, tgt, Split::Train)?;
        let read = train_text.len();
        let valid_text = read_parallel(dir, src, tgt, Split::Valid)?;
        let test_text = read_parallel(dir, src, tgt, Split::Test)?;
        let train_text = sample_pairs(train_text, config.max_train_pairs, config.seed);
        let sampled = train_text.len();
        let tokenizer = match tokenizer {
            Some(tokenizer) => tokenizer,
            None => {
                let sides: Vec<&str> = train_text
                    .iter()
                    .flat_map(|(s, t)| [s.as_str(), t.as_str()])
                    .collect();
                SubwordTokenizer::train(&sides, config.vocab_size, config.min_frequency)?
            }
        };
        let filtered = drop_long_pairs(encode_pairs(&tokenizer, &train_text), config.max_len);
        if filtered.pairs.is_empty() {
            return Err(DataError::config(
                "data.max_len",
                format!(
                    "is {} subwords, which leaves none of the {sampled} training pairs",
                    config.max_len
                ),
            ));
        }
        let counts = TrainCounts {
            read,
            sampled,
            too_long: filtered.dropped,
            kept: filtered.pairs.len(),
        };
        let eval = |text: Vec<(String, String)>| EvalSplit {
            encoded: encode_pairs(&tokenizer, &text),
            text,
        };
        let (valid, test) = (eval(valid_text), eval(test_text));
        Ok(Self {
            train: filtered.pairs,
            train_counts: counts,
            valid,
            test,
            tokenizer,
        })
    }

    /// The evaluation split `split` (`None` for [`Split::Train`], whose text is not kept).
    pub fn eval_split(&self, split: Split) -> Option<&EvalSplit> {
        match split {
            Split::Train => None,
            Split::Valid => Some(&self.valid),
            Split::Test => Some(&self.test),
        }
    }
}

/// Encodes both sides of every pair (in parallel, [`SubwordTokenizer::encode_batch`]).
pub fn encode_pairs(tokenizer: &SubwordTokenizer, pairs: &[(String, String)]) -> Vec<EncodedPair> {
    let src: Vec<&str> = pairs.iter().map(|(s, _)| s.as_str()).collect();
    let tgt: Vec<&str> = pairs.iter().map(|(_, t)| t.as_str()).collect();
    tokenizer
        .encode_batch(&src)
        .into_iter()
        .zip(tokenizer.encode_batch(&tgt))
        .collect()
}
