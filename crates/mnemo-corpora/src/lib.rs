//! One-off corpus builders for mnemo: they turn raw downloads into the formats the loaders of
//! `mnemo-data` read, and are used by `mnemo data prepare` and `scripts/setup-data.sh`
//! (docs/datasets.md). No trainer needs this crate.
//!
//! Translation corpora from the real parallel text reachable through Debian packages
//! (`mnemo data prepare translation --pair en-de|en-es`):
//!
//! - [`mo_file`]: GNU gettext `.mo` catalogs (English msgid → translated msgstr).
//! - [`sword`]: SWORD zText Bible modules (verse slots in versification order).
//! - [`ddtp`]: Debian package-description translation indexes, paired on `Description-md5`.
//! - [`handbook`]: the Debian Administrator's Handbook HTML, aligned by position per chapter.
//! - [`clean`]: whitespace, entity and accelerator normalisation.
//! - [`prepare`]: cleaning, the held-out splits, deduplication and the output files
//!   (`{train,valid,test}.{en,xx}`, `manifest.json`).
//!
//! Language-modelling text (`mnemo data prepare wikitext`):
//!
//! - [`wikitext_convert`] turns a MediaWiki XML export into WikiText-format files.
//!
//! Errors are `mnemo_data`'s [`DataError`](mnemo_data::DataError), and `&name;` references
//! are decoded by the one decoder in [`mnemo_data::entities`].
#![warn(missing_docs)]

pub mod clean;
mod corpus_output;
pub mod ddtp;
pub mod handbook;
pub mod mo_file;
pub mod prepare;
pub mod sword;
pub mod wikitext_convert;

pub use ddtp::{DdtpRecord, pair_descriptions, read_translation_index};
pub use handbook::align_chapters;
pub use mo_file::read_mo;
pub use prepare::{
    EnDeSources, Pair, PrepareReport, SplitCounts, en_es_dirs, prepare_en_de, prepare_en_es,
    prepare_pair,
};
pub use sword::read_ztext;
pub use wikitext_convert::{WikiArticle, WikiTextSplits, convert_mediawiki, parse_mediawiki};
