//! Datasets for mnemo: seeded algorithmic tasks, a word vocabulary and stream batching.
//!
//! - [`TaskConfig`] chooses a task ([`CodeExecConfig`]: the Feedback Transformer paper's
//!   code-execution task; [`SequenceTaskConfig`]: copy and reverse) and
//!   [`TaskConfig::build`] generates its train/valid/test [`LabelledStream`]s and [`Vocab`]
//!   from a seed.
//! - [`interpret`] runs code-execution programs independently of the generator, to check it.
//! - [`StreamBatcher`] cuts a stream into contiguous batch rows and serves fixed-length
//!   [`Segment`]s, so that memory carried across segments sees a continuous stream.
//!
//! Pure Rust, no I/O, no dependency on the rest of mnemo.
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
pub mod code_exec;
pub mod error;
pub mod interpreter;
pub mod sequence_tasks;
pub mod split;
pub mod stream;
pub mod task;
pub mod vocab;

pub use batching::{Segment, StreamBatcher};
pub use code_exec::{CodeExecConfig, END, MAX_VALUE, MIN_VALUE, VARIABLE_NAMES};
pub use error::DataError;
pub use interpreter::{Interpretation, ProgramSummary, interpret, interpret_detailed};
pub use sequence_tasks::{SEPARATOR, SequenceTask, SequenceTaskConfig, SequenceTaskKind};
pub use split::Split;
pub use stream::{LabelledStream, LabelledTokens};
pub use task::{TaskConfig, TaskData};
pub use vocab::{NO_LABEL, NO_LABEL_ID, Vocab};
