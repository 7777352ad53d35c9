//! Reading whitespace-tokenised text files, shared by [`wikitext`](crate::wikitext) and
//! [`labelled_text`](crate::labelled_text): every file is checked before any is read, readers
//! are opened with errors naming the file, and training tokens are numbered in order of first
//! appearance until the sorted vocabulary is known, then remapped:
//!
//! ```text
//! provisional(t) = |{distinct tokens seen before t}|,   id(t) = vocab.id(names[provisional(t)])
//! ```
//!
//! so only the ids (`u32`) and the distinct tokens are held while a file streams by.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::{DataError, Vocab};

/// Checks that every path is a regular file, so that a missing one is reported (naming its
/// path, under `field`) before any reading.
pub(crate) fn require_files(
    paths: impl IntoIterator<Item = PathBuf>,
    field: &str,
) -> Result<(), DataError> {
    for path in paths {
        if !path.is_file() {
            let e = std::fs::metadata(&path)
                .err()
                .unwrap_or_else(|| std::io::Error::other("not a regular file"));
            return Err(DataError::io(field, &path, &e));
        }
    }
    Ok(())
}

/// Opens `path` for buffered line reading; an error names `field` and the path.
pub(crate) fn open_reader(path: &Path, field: &str) -> Result<BufReader<std::fs::File>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(field, path, &e))?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

/// Provisional ids of the training tokens, in order of first appearance.
#[derive(Default)]
pub(crate) struct FirstSeen {
    provisional: HashMap<String, u32>,
    names: Vec<String>,
}

impl FirstSeen {
    /// The provisional id of `token`, numbering it if it is new.
    pub(crate) fn id(&mut self, token: &str) -> u32 {
        match self.provisional.get(token) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as u32;
                self.names.push(token.to_owned());
                self.provisional.insert(token.to_owned(), id);
                id
            }
        }
    }

    /// Builds the vocabulary of the seen tokens plus `extra`, and rewrites the provisional
    /// `ids` into its ids.
    pub(crate) fn into_vocab<'a>(
        self,
        extra: &[&str],
        ids: impl IntoIterator<Item = &'a mut u32>,
    ) -> Vocab {
        drop(self.provisional);
        let vocab = Vocab::build(
            self.names
                .iter()
                .map(String::as_str)
                .chain(extra.iter().copied()),
        );
        let remap: Vec<u32> = self
            .names
            .iter()
            .map(|t| vocab.id(t).expect("vocabulary built from these tokens"))
            .collect();
        ids.into_iter().for_each(|id| *id = remap[*id as usize]);
        vocab
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_first_appearance_then_the_sorted_vocabulary() {
        let mut seen = FirstSeen::default();
        let mut ids: Vec<u32> = "b a b c a".split(' ').map(|t| seen.id(t)).collect();
        assert_eq!(ids, [0, 1, 0, 2, 1]);
        let vocab = seen.into_vocab(&["<eos>"], ids.iter_mut());
        let decoded = vocab.decode(&ids).unwrap();
        assert_eq!(decoded, ["b", "a", "b", "c", "a"]);
        assert!(vocab.id("<eos>").is_some());
    }

    #[test]
    fn missing_file_is_reported_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("a");
        std::fs::write(&present, "x").unwrap();
        let absent = dir.path().join("b");
        assert!(require_files([present.clone()], "data.dir").is_ok());
        let err = require_files([present, absent.clone()], "data.dir").unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("data.dir: {}", absent.display())),
            "{err}"
        );
    }
}
