//! The output side of the translation-corpus preparation: the per-pair filters, the
//! cross-split deduplication, the line-aligned files and the [`PrepareReport`] written as
//! `manifest.json`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::clean::is_format_only;
use crate::prepare::Pair;
use mnemo_data::DataError;

/// Pairs per split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    /// Training pairs.
    pub train: usize,
    /// Validation pairs.
    pub valid: usize,
    /// Test pairs.
    pub test: usize,
}

/// What a preparation did; written as `manifest.json` beside the corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrepareReport {
    /// `en-de` or `en-es`.
    pub pair: String,
    /// Seed of the held-out choice.
    pub seed: u64,
    /// Pairs written per split.
    pub splits: SplitCounts,
    /// Pairs written per source (`gettext`, `ddtp`, `handbook`, `bible`) and split.
    pub sources: BTreeMap<String, SplitCounts>,
    /// English / target words written per split (whitespace-separated).
    pub words: BTreeMap<String, [usize; 2]>,
    /// Pairs dropped, by source and reason (`empty`, `identical`, `format_only`,
    /// `duplicate`, `overlaps_eval`).
    pub dropped: BTreeMap<String, BTreeMap<String, usize>>,
    /// Groups whose pairs form the valid split (`gettext:<catalog>`, `ddtp:<package>`, or
    /// Bible book ids), sorted.
    pub held_out_valid: Vec<String>,
    /// Groups whose pairs form the test split (`handbook`, or Bible book ids), sorted.
    pub held_out_test: Vec<String>,
    /// Facts about the inputs (catalog count, paired descriptions, aligned chapters, ...).
    pub inputs: BTreeMap<String, usize>,
    /// Inputs skipped (e.g. Handbook chapters whose segment counts differ), sorted.
    pub skipped: Vec<String>,
}

/// One candidate pair before splitting.
pub(crate) struct Unit {
    pub(crate) source: &'static str,
    pub(crate) group: String,
    pub(crate) en: String,
    pub(crate) tgt: String,
}

/// Split of a unit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Valid => "valid",
            Self::Test => "test",
        }
    }
}

/// Dropped pairs by source and reason.
pub(crate) type Dropped = BTreeMap<String, BTreeMap<String, usize>>;

pub(crate) fn count_drop(dropped: &mut Dropped, source: &str, reason: &str) {
    *dropped
        .entry(source.to_string())
        .or_default()
        .entry(reason.to_string())
        .or_default() += 1;
}

/// Apply the per-pair filters; count what is dropped.
pub(crate) fn keep(
    source: &'static str,
    group: String,
    en: String,
    tgt: String,
    dropped: &mut Dropped,
) -> Option<Unit> {
    let reason = if en.is_empty() || tgt.is_empty() {
        Some("empty")
    } else if en == tgt {
        Some("identical")
    } else if is_format_only(&en) || is_format_only(&tgt) {
        Some("format_only")
    } else {
        None
    };
    if let Some(reason) = reason {
        count_drop(dropped, source, reason);
        return None;
    }
    Some(Unit {
        source,
        group,
        en,
        tgt,
    })
}

/// Deduplicate across splits (test first), write the six files and fill the counts.
pub(crate) fn finish(
    pair: Pair,
    seed: u64,
    mut assigned: Vec<(Split, Unit)>,
    mut dropped: Dropped,
    out_dir: &Path,
) -> Result<PrepareReport, DataError> {
    // Stable: test, then valid, then train, each in input order.
    assigned.sort_by_key(|(split, _)| std::cmp::Reverse(*split));
    let mut seen_pairs: HashSet<(String, String)> = HashSet::new();
    let mut eval_sources: HashSet<String> = HashSet::new();
    let mut lines: BTreeMap<Split, (String, String)> = BTreeMap::new();
    let mut sources: BTreeMap<String, SplitCounts> = BTreeMap::new();
    let mut words: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    let mut splits = SplitCounts::default();
    let mut current = None;
    let mut split_sources: HashSet<String> = HashSet::new();
    for (split, unit) in assigned {
        if current != Some(split) {
            // Sources of the splits already written are "eval" for the ones that follow.
            eval_sources.extend(split_sources.drain());
            current = Some(split);
        }
        if eval_sources.contains(&unit.en) {
            count_drop(&mut dropped, unit.source, "overlaps_eval");
            continue;
        }
        if !seen_pairs.insert((unit.en.clone(), unit.tgt.clone())) {
            count_drop(&mut dropped, unit.source, "duplicate");
            continue;
        }
        if split != Split::Train {
            split_sources.insert(unit.en.clone());
        }
        let (en_text, tgt_text) = lines.entry(split).or_default();
        en_text.push_str(&unit.en);
        en_text.push('\n');
        tgt_text.push_str(&unit.tgt);
        tgt_text.push('\n');
        let counts = sources.entry(unit.source.to_string()).or_default();
        let w = words.entry(split.name().to_string()).or_default();
        w[0] += unit.en.split_whitespace().count();
        w[1] += unit.tgt.split_whitespace().count();
        match split {
            Split::Train => {
                counts.train += 1;
                splits.train += 1;
            }
            Split::Valid => {
                counts.valid += 1;
                splits.valid += 1;
            }
            Split::Test => {
                counts.test += 1;
                splits.test += 1;
            }
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|e| DataError::io("--out", out_dir, &e))?;
    for split in Split::ALL {
        let (en_text, tgt_text) = lines.remove(&split).unwrap_or_default();
        write_atomic(&out_dir.join(format!("{}.en", split.name())), &en_text)?;
        write_atomic(
            &out_dir.join(format!("{}.{}", split.name(), pair.target())),
            &tgt_text,
        )?;
    }
    Ok(PrepareReport {
        pair: pair.name().to_string(),
        seed,
        splits,
        sources,
        words,
        dropped,
        held_out_valid: Vec::new(),
        held_out_test: Vec::new(),
        inputs: BTreeMap::new(),
        skipped: Vec::new(),
    })
}

pub(crate) fn write_manifest(report: &PrepareReport, out_dir: &Path) -> Result<(), DataError> {
    let path = out_dir.join("manifest.json");
    let mut json = serde_json::to_string_pretty(report)
        .map_err(|e| DataError::file("--out", &path, e.to_string()))?;
    json.push('\n');
    write_atomic(&path, &json)
}

/// Write through `<path>.tmp` and rename, so an interrupted run leaves no partial file.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), DataError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| DataError::io("--out", &tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| DataError::io("--out", path, &e))
}
