//! Building the line-aligned translation corpora (`{train,valid,test}.{en,xx}` plus
//! `manifest.json`) from the unpacked sources.
//!
//! - **En–De** ([`prepare_en_de`]): gettext catalogs and DDTP descriptions for train and
//!   valid, the Debian Administrator's Handbook as test. Valid is held out *by group*: a
//!   seeded choice of whole gettext catalogs and whole DDTP packages, so that no catalog or
//!   package has pairs in both train and valid.
//! - **En–Es** ([`prepare_en_es`]): KJV ↔ Reina-Valera 1909 verses, split by book
//!   ([`EN_ES_VALID_BOOKS`], [`EN_ES_TEST_BOOKS`]).
//!
//! Cleaning, in order: whitespace collapsed (one segment per line), gettext accelerator marks
//! removed ([`strip_accelerator`]); pairs dropped when a side is empty, the sides are equal,
//! or a side is only format codes ([`is_format_only`](crate::clean::is_format_only)). Then
//! per split, test first: exact duplicate pairs are dropped, valid pairs whose English side
//! occurs in test are dropped, and train pairs whose English side occurs in valid or test are
//! dropped. Every count is
//! recorded in the [`PrepareReport`] written as `manifest.json`.
//!
//! Deterministic: inputs are read in sorted order and the held-out choice uses a seeded
//! ChaCha8 generator, so the same inputs and seed give byte-identical files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::clean::{collapse_whitespace, strip_accelerator};
pub use crate::corpus_output::{PrepareReport, SplitCounts};
use crate::corpus_output::{Split, Unit, finish, keep, write_manifest};
use crate::{ddtp, handbook, mo_file, sword};
use mnemo_data::DataError;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The default seed of the held-out choice.
pub const DEFAULT_SEED: u64 = 6;

/// The default target number of held-out En–De valid pairs (before cross-split
/// deduplication), half from gettext catalogs and half from DDTP packages.
pub const DEFAULT_VALID_PAIRS: usize = 2500;

/// A gettext catalog with more pairs than this is never held out (valid stays a mix of many
/// catalogs rather than one big one).
pub const MAX_HELD_OUT_CATALOG: usize = 400;

/// OSIS ids of the Bible books whose verses form the En–Es valid split.
pub const EN_ES_VALID_BOOKS: [&str; 6] = ["Ruth", "Eccl", "Dan", "Jonah", "Col", "1Pet"];

/// OSIS ids of the Bible books whose verses form the En–Es test split.
pub const EN_ES_TEST_BOOKS: [&str; 6] = ["Esth", "Lam", "Mic", "Eph", "Heb", "Jas"];

/// A language pair that can be prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    /// English–German (gettext + DDTP + Handbook).
    EnDe,
    /// English–Spanish (Bible verses).
    EnEs,
}

impl Pair {
    /// The target language code (`de`, `es`).
    pub fn target(self) -> &'static str {
        match self {
            Self::EnDe => "de",
            Self::EnEs => "es",
        }
    }

    /// The pair's name (`en-de`, `en-es`).
    pub fn name(self) -> &'static str {
        match self {
            Self::EnDe => "en-de",
            Self::EnEs => "en-es",
        }
    }
}

impl FromStr for Pair {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, DataError> {
        match s {
            "en-de" => Ok(Self::EnDe),
            "en-es" => Ok(Self::EnEs),
            other => Err(DataError::InvalidArgument {
                name: "--pair",
                reason: format!("must be `en-de` or `en-es`, got `{other}`"),
            }),
        }
    }
}

/// Where the En–De inputs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnDeSources {
    /// Directories searched recursively for German catalogs `.../de/LC_MESSAGES/*.mo`.
    pub catalog_dirs: Vec<PathBuf>,
    /// The uncompressed DDTP `Translation-en` index.
    pub translation_en: PathBuf,
    /// The uncompressed DDTP `Translation-de` index.
    pub translation_de: PathBuf,
    /// The Handbook's English HTML directory (`.../debian-handbook/html/en-US`).
    pub handbook_en: PathBuf,
    /// The Handbook's German HTML directory (`.../debian-handbook/html/de-DE`).
    pub handbook_de: PathBuf,
    /// Seed of the held-out choice.
    pub seed: u64,
    /// Target number of held-out valid pairs (see [`DEFAULT_VALID_PAIRS`]).
    pub valid_pairs: usize,
}

impl EnDeSources {
    /// The layout `scripts/setup-data.sh` builds under `root` (`.debs` unpacked into `root`,
    /// the DDTP indexes in `root/ddtp/`): catalogs under `root/usr`, `root/ddtp/Translation-en`
    /// and `-de`, and `root/usr/share/doc/debian-handbook/html/{en-US,de-DE}`; default seed
    /// and valid size.
    pub fn from_root(root: &Path) -> Self {
        let html = root.join("usr/share/doc/debian-handbook/html");
        Self {
            catalog_dirs: vec![root.join("usr")],
            translation_en: root.join("ddtp/Translation-en"),
            translation_de: root.join("ddtp/Translation-de"),
            handbook_en: html.join("en-US"),
            handbook_de: html.join("de-DE"),
            seed: DEFAULT_SEED,
            valid_pairs: DEFAULT_VALID_PAIRS,
        }
    }
}

/// The KJV and Reina-Valera 1909 module directories under a `root` built by
/// `scripts/setup-data.sh` (`root/usr/share/sword/modules/texts/ztext/{engKJV2006eb,
/// spaRV1909eb}`).
pub fn en_es_dirs(root: &Path) -> (PathBuf, PathBuf) {
    let ztext = root.join("usr/share/sword/modules/texts/ztext");
    (ztext.join("engKJV2006eb"), ztext.join("spaRV1909eb"))
}

/// Prepare `pair` from the inputs under `root` (the layouts of [`EnDeSources::from_root`] and
/// [`en_es_dirs`]) into `out_dir`, with the given seed (En–De only; En–Es has no random
/// choice). This is what `mnemo data prepare translation --pair P --root R --out O [--seed S]`
/// runs.
///
/// # Errors
/// See [`prepare_en_de`] and [`prepare_en_es`].
pub fn prepare_pair(
    pair: Pair,
    root: &Path,
    out_dir: &Path,
    seed: u64,
) -> Result<PrepareReport, DataError> {
    match pair {
        Pair::EnDe => {
            let sources = EnDeSources {
                seed,
                ..EnDeSources::from_root(root)
            };
            prepare_en_de(&sources, out_dir)
        }
        Pair::EnEs => {
            let (kjv, rv) = en_es_dirs(root);
            prepare_en_es(&kjv, &rv, out_dir)
        }
    }
}

/// Prepare the En–De corpus (see the module docs) into `out_dir` (created if needed):
/// `{train,valid,test}.{en,de}` and `manifest.json`.
///
/// # Errors
/// [`DataError::File`] naming the input that cannot be read or parsed, or the output file that
/// cannot be written; [`DataError::InvalidArgument`] when no catalog is found or
/// `valid_pairs` is 0.
pub fn prepare_en_de(sources: &EnDeSources, out_dir: &Path) -> Result<PrepareReport, DataError> {
    if sources.valid_pairs == 0 {
        return Err(DataError::InvalidArgument {
            name: "valid_pairs",
            reason: "must be at least 1 (the En-De valid split is held out by group)".to_string(),
        });
    }
    let mut dropped = BTreeMap::new();
    let mut inputs = BTreeMap::new();
    let mut units = Vec::new();

    // gettext catalogs, in path order.
    let mut catalogs = Vec::new();
    for dir in &sources.catalog_dirs {
        find_catalogs(dir, &mut catalogs)?;
    }
    catalogs.sort();
    if catalogs.is_empty() {
        return Err(DataError::InvalidArgument {
            name: "catalog_dirs",
            reason: format!(
                "no German gettext catalog (de/LC_MESSAGES/*.mo) under {}; run \
                 scripts/setup-data.sh translation-en-de",
                sources
                    .catalog_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    inputs.insert("gettext_catalogs".to_string(), catalogs.len());
    let mut raw_gettext = 0;
    for path in &catalogs {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (en, de) in mo_file::read_mo(path)? {
            raw_gettext += 1;
            let en = collapse_whitespace(&strip_accelerator(&en));
            let de = collapse_whitespace(&strip_accelerator(&de));
            if let Some(unit) = keep("gettext", format!("gettext:{name}"), en, de, &mut dropped) {
                units.push(unit);
            }
        }
    }
    inputs.insert("gettext_pairs_read".to_string(), raw_gettext);

    // DDTP descriptions.
    let en = ddtp::read_translation_index(&sources.translation_en)?;
    let de = ddtp::read_translation_index(&sources.translation_de)?;
    inputs.insert("ddtp_en_records".to_string(), en.len());
    inputs.insert("ddtp_de_records".to_string(), de.len());
    let ddtp_pairs = ddtp::pair_descriptions(&en, &de);
    inputs.insert("ddtp_pairs_read".to_string(), ddtp_pairs.len());
    drop((en, de));
    for (package, en, de) in ddtp_pairs {
        if let Some(unit) = keep("ddtp", format!("ddtp:{package}"), en, de, &mut dropped) {
            units.push(unit);
        }
    }

    // The Handbook.
    let alignment = handbook::align_chapters_detailed(&sources.handbook_en, &sources.handbook_de)?;
    inputs.insert(
        "handbook_chapters_aligned".to_string(),
        alignment.chapters_aligned.len(),
    );
    inputs.insert("handbook_pairs_read".to_string(), alignment.pairs.len());
    let skipped = alignment
        .chapters_skipped
        .iter()
        .map(|c| format!("handbook:{c}"))
        .collect();
    let mut test_units = Vec::new();
    for (en, de) in alignment.pairs {
        if let Some(unit) = keep("handbook", "handbook".to_string(), en, de, &mut dropped) {
            test_units.push(unit);
        }
    }

    // The held-out valid groups.
    let held_out = choose_held_out(&units, sources.seed, sources.valid_pairs);
    let mut assigned: Vec<(Split, Unit)> = units
        .into_iter()
        .map(|u| {
            let split = if held_out.contains(&u.group) {
                Split::Valid
            } else {
                Split::Train
            };
            (split, u)
        })
        .collect();
    assigned.extend(test_units.into_iter().map(|u| (Split::Test, u)));

    let mut report = finish(Pair::EnDe, sources.seed, assigned, dropped, out_dir)?;
    report.held_out_valid = held_out.into_iter().collect();
    report.held_out_test = vec!["handbook".to_string()];
    report.inputs = inputs;
    report.skipped = skipped;
    write_manifest(&report, out_dir)?;
    Ok(report)
}

/// Prepare the En–Es Bible corpus from the KJV module in `kjv_dir` and the Reina-Valera 1909
/// module in `rv_dir` (both zText, KJV versification) into `out_dir`:
/// `{train,valid,test}.{en,es}` and `manifest.json`. Verse slots where both modules have text
/// are paired; books [`EN_ES_VALID_BOOKS`] go to valid, [`EN_ES_TEST_BOOKS`] to test, the rest
/// to train.
///
/// # Errors
/// [`DataError::File`] naming the module file that cannot be read, or `rv_dir` when the two
/// modules have different numbers of verse slots (different versifications), or the output
/// file that cannot be written.
pub fn prepare_en_es(
    kjv_dir: &Path,
    rv_dir: &Path,
    out_dir: &Path,
) -> Result<PrepareReport, DataError> {
    let kjv_raw = sword::read_ztext_raw(kjv_dir)?;
    let rv = sword::read_ztext(rv_dir)?;
    if kjv_raw.len() != rv.len() {
        return Err(DataError::file(
            "SWORD module",
            rv_dir,
            format!(
                "{} verse slots, but {} has {}: the versifications differ",
                rv.len(),
                kjv_dir.display(),
                kjv_raw.len()
            ),
        ));
    }
    let books = sword::book_ids(&kjv_raw);
    let mut dropped = BTreeMap::new();
    let mut assigned = Vec::new();
    let mut verse_slots = 0;
    for ((raw, es), book) in kjv_raw.iter().zip(rv).zip(books) {
        let (Some(raw), Some(es), Some(book)) = (raw, es, book) else {
            continue;
        };
        let en = sword::strip_osis(raw);
        if en.is_empty() {
            continue;
        }
        verse_slots += 1;
        let split = if EN_ES_VALID_BOOKS.contains(&book.as_str()) {
            Split::Valid
        } else if EN_ES_TEST_BOOKS.contains(&book.as_str()) {
            Split::Test
        } else {
            Split::Train
        };
        if let Some(unit) = keep("bible", book, en, es, &mut dropped) {
            assigned.push((split, unit));
        }
    }
    let mut report = finish(Pair::EnEs, 0, assigned, dropped, out_dir)?;
    let sorted = |books: &[&str]| {
        let mut v: Vec<String> = books.iter().map(|b| b.to_string()).collect();
        v.sort();
        v
    };
    report.held_out_valid = sorted(&EN_ES_VALID_BOOKS);
    report.held_out_test = sorted(&EN_ES_TEST_BOOKS);
    report
        .inputs
        .insert("verse_slots".to_string(), kjv_raw.len());
    report
        .inputs
        .insert("paired_verses_read".to_string(), verse_slots);
    write_manifest(&report, out_dir)?;
    Ok(report)
}

/// Every `.../de/LC_MESSAGES/*.mo` under `dir` (recursively, symlinks not followed).
fn find_catalogs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io("catalog_dirs", dir, &e))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            find_catalogs(&path, out)?;
        } else if meta.is_file()
            && path.extension().is_some_and(|e| e == "mo")
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "LC_MESSAGES")
            && path
                .parent()
                .and_then(Path::parent)
                .and_then(Path::file_name)
                .is_some_and(|n| n == "de")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The seeded choice of held-out groups: gettext catalogs (at most
/// [`MAX_HELD_OUT_CATALOG`] pairs, `iso_*` code lists excluded) until half of `target` pairs,
/// DDTP packages until the other half.
fn choose_held_out(units: &[Unit], seed: u64, target: usize) -> BTreeSet<String> {
    let mut sizes: BTreeMap<(&'static str, &str), usize> = BTreeMap::new();
    for u in units {
        *sizes.entry((u.source, u.group.as_str())).or_default() += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut held_out = BTreeSet::new();
    let quotas = [("gettext", target / 2), ("ddtp", target - target / 2)];
    for (source, quota) in quotas {
        let mut groups: Vec<(&str, usize)> = sizes
            .iter()
            .filter(|((s, g), n)| {
                *s == source
                    && !(source == "gettext"
                        && (g.starts_with("gettext:iso_") || **n > MAX_HELD_OUT_CATALOG))
            })
            .map(|((_, g), n)| (*g, *n))
            .collect();
        groups.shuffle(&mut rng);
        let mut taken = 0;
        for (group, n) in groups {
            if taken >= quota {
                break;
            }
            if taken + n > quota + quota / 4 {
                continue; // would overshoot by much; try a smaller group
            }
            held_out.insert(group.to_string());
            taken += n;
        }
    }
    held_out
}
