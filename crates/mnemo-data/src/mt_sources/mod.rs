//! Readers for the real parallel corpora reachable through Debian packages, and the
//! preparation of line-aligned translation corpora from them (`scripts/setup-data.sh
//! translation-en-de` / `translation-en-es`; docs/datasets.md).
//!
//! - [`mo_file`]: GNU gettext `.mo` catalogs (English msgid → translated msgstr).
//! - [`sword`]: SWORD zText Bible modules (verse slots in versification order).
//! - [`ddtp`]: Debian package-description translation indexes, paired on `Description-md5`.
//! - [`handbook`]: the Debian Administrator's Handbook HTML, aligned by position per chapter.
//! - [`clean`]: whitespace, entity and accelerator normalisation.
//! - [`prepare`]: cleaning, the held-out splits, deduplication and the output files
//!   (`{train,valid,test}.{en,xx}`, `manifest.json`).

pub mod clean;
mod corpus_output;
pub mod ddtp;
pub mod handbook;
pub mod mo_file;
pub mod prepare;
pub mod sword;

pub use ddtp::{DdtpRecord, pair_descriptions, read_translation_index};
pub use handbook::align_chapters;
pub use mo_file::read_mo;
pub use prepare::{
    EnDeSources, Pair, PrepareReport, SplitCounts, en_es_dirs, prepare_en_de, prepare_en_es,
    prepare_pair,
};
pub use sword::read_ztext;
