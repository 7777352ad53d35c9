//! Datasets for mnemo: seeded algorithmic tasks, a word vocabulary and stream batching.
//!
//! - [`TaskConfig`] chooses a task ([`CodeExecConfig`]: the Feedback Transformer paper's
//!   code-execution task; [`SequenceTaskConfig`]: copy and reverse) and
//!   [`TaskConfig::build`] generates its train/valid/test [`LabelledStream`]s and [`Vocab`]
//!   from a seed; [`Curriculum`] (`[data.curriculum]`) adds shorter programs to train on
//!   first ([`curriculum`]).
//! - [`TaskConfig::Bytes`] and [`TaskConfig::Wikitext`] read language-modelling corpora from
//!   user paths (never downloading): enwik8-format byte files or zips ([`byte_corpus`]) and
//!   WikiText `wiki.{train,valid,test}.tokens` directories ([`wikitext`]).
//! - [`TaskConfig::LabelledText`] reads any `{train,valid,test}.txt` + `.txt.labels`
//!   directory, the official format of the Feedback Transformer's code ([`labelled_text`]);
//!   [`write_labelled_text`] writes generated tasks in it.
//! - [`interpret`] runs code-execution programs independently of the generator, to check it.
//! - [`translation`]: parallel text ([`ParallelConfig`]), a joint byte-level BPE
//!   ([`SubwordTokenizer`]) and token-budget batches of sentence pairs ([`PairBatcher`]).
//! - [`StreamBatcher`] cuts a stream into contiguous batch rows and serves fixed-length
//!   [`Segment`]s, so that memory carried across segments sees a continuous stream.
//!
//! Pure Rust, no dependency on the rest of mnemo; file I/O only in the corpus loaders. The
//! one-off builders that make those corpora from raw downloads live in `mnemo-corpora`; they
//! share [`entities`], the `&name;` decoder, with the `.sgm` reader here.
//!
//! ```
//! use mnemo_data::{CodeExecConfig, StreamBatcher, TaskConfig};
//!
//! let config = TaskConfig::CodeExecution(CodeExecConfig {
//!     train_programs: 8,
//!     valid_programs: 2,
//!     test_programs: 2,
//!     ..CodeExecConfig::default()
//! });
//! let data = config.build()?;
//! let batcher = StreamBatcher::new(&data.train, 4, 64)?;
//! let segment = batcher.segment(0);
//! assert_eq!(segment.inputs.len(), 4 * 64);
//! # Ok::<(), mnemo_data::DataError>(())
//! ```

pub mod batching;
pub mod byte_corpus;
pub mod code_exec;
pub mod curriculum;
pub mod entities;
pub mod error;
pub mod interpreter;
pub mod labelled_text;
pub mod sequence_tasks;
pub mod split;
pub mod stream;
pub mod task;
mod token_files;
pub mod translation;
pub mod vocab;
pub mod wikitext;

pub use batching::{Segment, StreamBatcher};
pub use byte_corpus::{
    ByteCorpusConfig, byte_id, byte_split_ranges, byte_streams, byte_token, byte_vocab,
    read_byte_file,
};
pub use code_exec::{CodeExecConfig, CodeExecStyle, END, MAX_VALUE, MIN_VALUE, VARIABLE_NAMES};
pub use curriculum::{Curriculum, CurriculumStage, StageStreams};
pub use error::DataError;
pub use interpreter::{Interpretation, ProgramSummary, interpret, interpret_detailed};
pub use labelled_text::{LabelledTextConfig, load_labelled_text, write_labelled_text};
pub use sequence_tasks::{SEPARATOR, SequenceTask, SequenceTaskConfig, SequenceTaskKind};
pub use split::Split;
pub use stream::{LabelledStream, LabelledTokens};
pub use task::{LmUnit, Scoring, TaskConfig, TaskData};
pub use translation::{PairBatch, PairBatcher, ParallelConfig, SubwordTokenizer, TranslationData};
pub use vocab::{NO_LABEL, NO_LABEL_ID, Vocab};
pub use wikitext::{EOS, UNK, WikiTextConfig, load_wikitext, wikitext_file};
