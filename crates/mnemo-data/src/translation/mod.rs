//! Translation data: line-aligned parallel text, a joint byte-level BPE vocabulary and
//! token-budget batches of sentence pairs.
//!
//! - [`parallel`]: the `[data]` settings ([`ParallelConfig`]) and [`read_parallel`] for
//!   `{split}.{src}` / `{split}.{tgt}` files, with [`sgm`] for WMT `.sgm` test sets;
//! - [`subword`]: [`SubwordTokenizer`], BPE from the `tokenizers` crate, specials
//!   `<pad> <unk> <s> </s>` at ids 0..=3;
//! - [`length_batching`]: [`PairBatcher`] and [`PairBatch`], plus the train length filter
//!   ([`drop_long_pairs`]) and the valid/test loss truncation ([`truncate_pairs`]);
//! - [`dataset`]: [`TranslationData::prepare`] runs all of the above from a [`ParallelConfig`].
//!
//! ```no_run
//! use std::path::Path;
//! use mnemo_data::Split;
//! use mnemo_data::translation::{PairBatcher, SubwordTokenizer, drop_long_pairs, read_parallel};
//!
//! let dir = Path::new("data/translation/en-de");
//! let train = read_parallel(dir, "en", "de", Split::Train)?;
//! let texts: Vec<&str> = train.iter().flat_map(|(s, t)| [s.as_str(), t.as_str()]).collect();
//! let tokenizer = SubwordTokenizer::train(&texts, 8000, 2)?;
//! let encoded = train.iter().map(|(s, t)| (tokenizer.encode(s), tokenizer.encode(t))).collect();
//! let filtered = drop_long_pairs(encoded, 64);
//! let mut batcher = PairBatcher::new(filtered.pairs, 4096, 1)?;
//! let batch = batcher.next_batch();
//! assert!(batch.rows * batch.src_len.max(batch.tgt_len) <= 4096);
//! # Ok::<(), mnemo_data::DataError>(())
//! ```

pub mod dataset;
pub mod length_batching;
pub mod parallel;
pub mod sgm;
pub mod subword;

pub use dataset::{EvalSplit, TrainCounts, TranslationData, encode_pairs};
pub use length_batching::{
    BatchPosition, EncodedPair, LengthFiltered, PairBatch, PairBatcher, drop_long_pairs,
    truncate_pairs,
};
pub use parallel::{
    ParallelConfig, parallel_file, read_lines, read_parallel, sample_pairs, split_name,
};
pub use subword::SubwordTokenizer;
