//! Labelled text in the official format of the Feedback Transformer's code: `train.txt` +
//! `train.txt.labels`, `valid.txt` + `valid.txt.labels`, `test.txt` + `test.txt.labels`.
//!
//! Paper: Fan, Lavril, Grave, Joulin, Sukhbaatar, *Addressing Some Limitations of Transformers
//! with Feedback Memory* (2020). Reference code: `facebookresearch/transformer-sequential`,
//! whose `data/gen_data_algo_seq.py` writes the code-execution task in this format and whose
//! `data.py` reads it.
//!
//! # Format
//! Each split is a text file and a label file of the same number of lines: one example (a
//! program, closed by its `END` token) per line, tokens separated by whitespace, and line `n`
//! of `<split>.txt.labels` holds exactly one label per token of line `n` of `<split>.txt`:
//!
//! ```text
//! train.txt         y = 7 ; print y ; END
//! train.txt.labels  _ _ _ _ _ _ 7 _
//! ```
//!
//! Lines are concatenated into one stream per split with nothing between them (the reference
//! trains without `--data-eos`); blank lines add nothing. Position `i` reads input `x_i` and is
//! scored against label `y_i`:
//!
//! ```text
//! loss = Σ_{i: y_i ≠ _} −log p(y_i | x_{≤i}) / |{i: y_i ≠ _}|,
//! accuracy = |{i: y_i ≠ _, argmax p(· | x_{≤i}) = y_i}| / |{i: y_i ≠ _}|
//! ```
//!
//! The official label files write `_` at every position that is not scored (the reference
//! generator emits `_ _ v` for `print x ;` and `_` for every other token and for `END`), and the
//! official runs pass `--data-omit-labels "_"`, which masks those positions out of both the loss
//! and the error rate. `_` is [`NO_LABEL`](crate::NO_LABEL), id
//! [`NO_LABEL_ID`](crate::NO_LABEL_ID) in every mnemo vocabulary, so the mapping is the
//! identity and accuracy means the same as for the generated
//! [`code_exec`](crate::code_exec) task; every other label is scored.
//!
//! # Vocabulary and errors
//! The vocabulary holds every input and label token of the training files (plus `_`), sorted
//! ([`Vocab::build`]), as the reference builds one dictionary over `train.txt` and
//! `train.txt.labels`. Where the reference maps an unseen valid/test token to `<unk>`, here it
//! is an error naming the file, line and token; so is a line whose label count differs from its
//! token count, and a missing file names its path.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::token_files::{FirstSeen, open_reader, require_files};
use crate::{DataError, LabelledStream, LabelledTokens, Split, Vocab};

/// Settings of a labelled-text task (`task = "labelled_text"` under `[data]`).
///
/// ```toml
/// [data]
/// task = "labelled_text"
/// dir = "data/algo_seq_3var"   # {train,valid,test}.txt and .txt.labels
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledTextConfig {
    /// Directory holding the six files. Relative paths resolve against the current directory.
    pub dir: PathBuf,
}

impl LabelledTextConfig {
    /// The six files the task reads, text then labels of each split in [`Split::ALL`] order.
    pub fn files(&self) -> Vec<PathBuf> {
        Split::ALL
            .into_iter()
            .flat_map(|split| [text_file(&self.dir, split), labels_file(&self.dir, split)])
            .collect()
    }
}

/// The text file of `split`: `<dir>/<split>.txt`.
pub fn text_file(dir: &Path, split: Split) -> PathBuf {
    dir.join(format!("{}.txt", split.name()))
}

/// The label file of `split`: `<dir>/<split>.txt.labels`.
pub fn labels_file(dir: &Path, split: Split) -> PathBuf {
    dir.join(format!("{}.txt.labels", split.name()))
}

/// A file read line by line, counting lines.
struct Lines {
    path: PathBuf,
    reader: std::io::BufReader<std::fs::File>,
    line: String,
    number: usize,
}

impl Lines {
    fn open(path: PathBuf, field: &str) -> Result<Self, DataError> {
        Ok(Self {
            reader: open_reader(&path, field)?,
            path,
            line: String::new(),
            number: 0,
        })
    }

    /// Reads the next line; `false` at the end of the file.
    fn advance(&mut self, field: &str) -> Result<bool, DataError> {
        self.line.clear();
        let read = self.reader.read_line(&mut self.line).map_err(|e| {
            DataError::file(field, &self.path, format!("line {}: {e}", self.number + 1))
        })?;
        if read > 0 {
            self.number += 1;
        }
        Ok(read > 0)
    }

    /// The error of this file ending while its partner `longer` still has a line.
    fn ended_before(&self, longer: &Lines, field: &str) -> DataError {
        let reason = format!(
            "line {}: missing, {} has more lines ({} lines here)",
            longer.number,
            longer.name(),
            self.number
        );
        DataError::file(field, &self.path, reason)
    }

    fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// Calls `each(file, line, inputs, labels)` on every line pair of `split`, checking that the
/// two files have the same number of lines and every line as many labels as tokens.
fn for_each_line(
    dir: &Path,
    split: Split,
    field: &str,
    mut each: impl FnMut(&Path, &Path, usize, &[&str], &[&str]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut text = Lines::open(text_file(dir, split), field)?;
    let mut labels = Lines::open(labels_file(dir, split), field)?;
    loop {
        let (more_text, more_labels) = (text.advance(field)?, labels.advance(field)?);
        match (more_text, more_labels) {
            (false, false) => return Ok(()),
            (true, false) => return Err(labels.ended_before(&text, field)),
            (false, true) => return Err(text.ended_before(&labels, field)),
            (true, true) => {}
        }
        let inputs: Vec<&str> = text.line.split_whitespace().collect();
        let targets: Vec<&str> = labels.line.split_whitespace().collect();
        if inputs.len() != targets.len() {
            let reason = format!(
                "line {}: {} labels for the {} tokens of {} line {}",
                labels.number,
                targets.len(),
                inputs.len(),
                text.name(),
                text.number
            );
            return Err(DataError::file(field, &labels.path, reason));
        }
        each(&text.path, &labels.path, text.number, &inputs, &targets)?;
    }
}

/// Loads a labelled-text directory: the vocabulary of the training files and the three
/// labelled streams (`field` names the config field in errors, e.g. `data.dir`).
pub fn load_labelled_text(
    dir: &Path,
    field: &str,
) -> Result<(Vocab, [LabelledStream; 3]), DataError> {
    require_files(LabelledTextConfig { dir: dir.into() }.files(), field)?;
    let mut seen = FirstSeen::default();
    let (mut inputs, mut targets) = (Vec::new(), Vec::new());
    for_each_line(
        dir,
        Split::Train,
        field,
        |_, _, _, line_inputs, line_labels| {
            inputs.extend(line_inputs.iter().map(|t| seen.id(t)));
            targets.extend(line_labels.iter().map(|t| seen.id(t)));
            Ok(())
        },
    )?;
    let vocab = seen.into_vocab(&[], inputs.iter_mut().chain(targets.iter_mut()));
    let mut streams = vec![LabelledStream::new(inputs, targets)?];
    let train_text = text_file(dir, Split::Train);
    let train_name = train_text.file_name().unwrap_or_default().to_string_lossy();
    for split in [Split::Valid, Split::Test] {
        let (mut inputs, mut targets) = (Vec::new(), Vec::new());
        for_each_line(
            dir,
            split,
            field,
            |text, labels, line, line_inputs, line_labels| {
                for (path, tokens, ids) in [
                    (text, line_inputs, &mut inputs),
                    (labels, line_labels, &mut targets),
                ] {
                    for (index, token) in tokens.iter().enumerate() {
                        let Some(id) = vocab.id(token) else {
                            let reason = format!(
                                "line {line}, token {}: unknown token `{token}` (not in \
                             {train_name} or {train_name}.labels)",
                                index + 1
                            );
                            return Err(DataError::file(field, path, reason));
                        };
                        ids.push(id);
                    }
                }
                Ok(())
            },
        )?;
        streams.push(LabelledStream::new(inputs, targets)?);
    }
    let streams: [LabelledStream; 3] = streams.try_into().expect("three splits");
    Ok((vocab, streams))
}

/// Writes `examples` as `<dir>/<split>.txt` and `<dir>/<split>.txt.labels`, one example per
/// line, tokens separated by single spaces (`field` names the argument in errors, e.g.
/// `--out`). Each file goes through a temporary file and a rename, so an interrupted write
/// leaves no partial file. Returns the number of examples written.
///
/// An example whose labels do not align with its inputs, or with an empty token or a token
/// holding whitespace, is an [`DataError::InvalidArgument`] naming its index.
pub fn write_labelled_text<'a>(
    dir: &Path,
    split: Split,
    examples: impl IntoIterator<Item = LabelledTokens<'a>>,
    field: &str,
) -> Result<usize, DataError> {
    let paths = [text_file(dir, split), labels_file(dir, split)];
    let tmp = paths.clone().map(|p| {
        let mut name = p.into_os_string();
        name.push(".tmp");
        PathBuf::from(name)
    });
    let written = write_files(&tmp, examples, field).and_then(|count| {
        for (from, to) in tmp.iter().zip(&paths) {
            std::fs::rename(from, to).map_err(|e| DataError::io(field, to, &e))?;
        }
        Ok(count)
    });
    if written.is_err() {
        for path in &tmp {
            let _ = std::fs::remove_file(path);
        }
    }
    written
}

/// Writes the text and label lines of `examples` to `paths` (text, labels).
fn write_files<'a>(
    paths: &[PathBuf; 2],
    examples: impl IntoIterator<Item = LabelledTokens<'a>>,
    field: &str,
) -> Result<usize, DataError> {
    let create = |path: &PathBuf| {
        std::fs::File::create(path)
            .map(|f| std::io::BufWriter::with_capacity(1 << 16, f))
            .map_err(|e| DataError::io(field, path, &e))
    };
    let mut files = [create(&paths[0])?, create(&paths[1])?];
    let mut count = 0;
    for (index, example) in examples.into_iter().enumerate() {
        if example.inputs.len() != example.labels.len() {
            return Err(DataError::InvalidArgument {
                name: "examples",
                reason: format!(
                    "example {index} has {} inputs but {} labels",
                    example.inputs.len(),
                    example.labels.len()
                ),
            });
        }
        for ((file, path), tokens) in files
            .iter_mut()
            .zip(paths)
            .zip([&example.inputs, &example.labels])
        {
            if let Some(bad) = tokens
                .iter()
                .find(|t| t.is_empty() || t.chars().any(char::is_whitespace))
            {
                return Err(DataError::InvalidArgument {
                    name: "examples",
                    reason: format!("example {index} holds the token {bad:?}"),
                });
            }
            writeln!(file, "{}", tokens.join(" ")).map_err(|e| DataError::io(field, path, &e))?;
        }
        count += 1;
    }
    for (file, path) in files.into_iter().zip(paths) {
        file.into_inner()
            .map_err(|e| DataError::io(field, path, e.error()))?
            .sync_all()
            .map_err(|e| DataError::io(field, path, &e))?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodeExecConfig, CodeExecStyle, NO_LABEL_ID, TaskConfig};

    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const TRAIN: &str = "x = 3 ; print x ; END\n\ny = 1 ; y ++ ; print y ; END\n";
    const TRAIN_LABELS: &str = "_ _ _ _ _ _ 3 _\n\n_ _ _ _ _ _ _ _ _ 2 _\n";

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("train.txt", TRAIN),
            ("train.txt.labels", TRAIN_LABELS),
            ("valid.txt", "y = 3 ; print y ; END\n"),
            ("valid.txt.labels", "_ _ _ _ _ _ 3 _\n"),
            ("test.txt", "x = 1 ; x ++ ; print x ; END"),
            ("test.txt.labels", "_ _ _ _ _ _ _ _ _ 2 _"),
        ]
    }

    fn replaced(name: &str, text: &'static str) -> tempfile::TempDir {
        let mut files = good();
        files.iter_mut().find(|f| f.0 == name).unwrap().1 = text;
        fixture(&files)
    }

    /// The loading error of `dir`, after checking that it names the config field and the file
    /// `name` of `dir`: the reason that follows.
    fn err_in(dir: &tempfile::TempDir, name: &str) -> String {
        let err = load_labelled_text(dir.path(), "data.dir")
            .unwrap_err()
            .to_string();
        let prefix = format!("data.dir: {}: ", dir.path().join(name).display());
        match err.strip_prefix(&prefix) {
            Some(reason) => reason.to_owned(),
            None => panic!("{err:?} does not start with {prefix:?}"),
        }
    }

    #[test]
    fn reads_lines_as_one_stream_with_vocab_from_train() {
        let dir = fixture(&good());
        let (vocab, [train, valid, test]) = load_labelled_text(dir.path(), "data.dir").unwrap();
        // Inputs and labels of train, `_` first, the rest sorted; the blank line adds nothing.
        let expected: Vec<&str> = "_ ++ 1 2 3 ; = END print x y".split(' ').collect();
        assert_eq!(vocab.tokens(), expected);
        let decode = |ids: &[u32]| vocab.decode(ids).unwrap().join(" ");
        assert_eq!(
            decode(&train.inputs),
            "x = 3 ; print x ; END y = 1 ; y ++ ; print y ; END"
        );
        assert_eq!(
            decode(&train.targets),
            "_ _ _ _ _ _ 3 _ _ _ _ _ _ _ _ _ _ 2 _"
        );
        assert_eq!(decode(&valid.inputs), "y = 3 ; print y ; END");
        // `_` is the unscored label, as the reference's --data-omit-labels "_".
        assert_eq!(train.scored_positions(), 2);
        assert_eq!(valid.scored_positions(), 1);
        assert_eq!(test.targets[9], vocab.id("2").unwrap());
        assert_eq!(test.targets[0], NO_LABEL_ID);
    }

    #[test]
    fn unknown_valid_or_test_token_names_file_line_and_token() {
        let dir = replaced(
            "valid.txt",
            "y = 3 ; print y ; END\nq = 3 ; print y ; END\n",
        );
        std::fs::write(
            dir.path().join("valid.txt.labels"),
            "_ _ _ _ _ _ 3 _\n_ _ _ _ _ _ 3 _\n",
        )
        .unwrap();
        assert_eq!(
            err_in(&dir, "valid.txt"),
            "line 2, token 1: unknown token `q` (not in train.txt or train.txt.labels)"
        );
        // An unseen label is refused the same way, in the label file.
        let dir = replaced("test.txt.labels", "_ _ _ _ _ _ _ _ _ 7 _");
        let err = err_in(&dir, "test.txt.labels");
        assert!(
            err.starts_with("line 1, token 10: unknown token `7`"),
            "{err}"
        );
    }

    #[test]
    fn label_count_or_line_count_mismatch_names_file_and_line() {
        let dir = replaced(
            "train.txt.labels",
            "_ _ _ _ _ _ 3 _\n\n_ _ _ _ _ _ _ _ 2 _\n",
        );
        assert_eq!(
            err_in(&dir, "train.txt.labels"),
            "line 3: 10 labels for the 11 tokens of train.txt line 3"
        );
        let dir = replaced("valid.txt.labels", "_ _ _ _ _ _ 3 _\n_\n");
        let err = err_in(&dir, "valid.txt");
        assert!(err.starts_with("line 2: missing"), "{err}");
        let dir = replaced("test.txt.labels", "");
        let err = err_in(&dir, "test.txt.labels");
        assert!(err.starts_with("line 1: missing"), "{err}");
    }

    #[test]
    fn missing_file_names_its_path() {
        let files: Vec<_> = good()
            .into_iter()
            .filter(|f| f.0 != "test.txt.labels")
            .collect();
        let dir = fixture(&files);
        let err = err_in(&dir, "test.txt.labels");
        assert!(err.contains("No such file"), "{err}");
    }

    #[test]
    fn written_programs_read_back_as_the_code_execution_task() {
        for (variables, style) in [
            (3, CodeExecStyle::Official),
            (5, CodeExecStyle::FrontLoaded),
        ] {
            let generated = CodeExecConfig {
                variables,
                statements: 25,
                train_programs: 30,
                valid_programs: 6,
                test_programs: 5,
                seed: 8,
                style,
                curriculum: None,
            };
            let dir = tempfile::tempdir().unwrap();
            for split in Split::ALL {
                let n = write_labelled_text(dir.path(), split, generated.examples(split), "--out")
                    .unwrap();
                assert_eq!(n, generated.programs(split));
            }
            let text = std::fs::read_to_string(dir.path().join("valid.txt")).unwrap();
            assert_eq!(text.lines().count(), 6);
            assert!(text.lines().all(|l| l.ends_with(" END")), "{text}");
            assert!(!dir.path().join("valid.txt.tmp").exists());
            let read = TaskConfig::LabelledText(LabelledTextConfig {
                dir: dir.path().into(),
            })
            .build()
            .unwrap();
            let expected = TaskConfig::CodeExecution(generated).build().unwrap();
            // Same vocabulary (train holds every token), same ids, same scoring.
            assert_eq!(read, expected, "{variables} variables, {style}");
            assert_eq!(read.scoring(), expected.scoring());
        }
    }

    #[test]
    fn write_refuses_misaligned_or_spaced_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let bad = LabelledTokens {
            inputs: vec!["x", "END"],
            labels: vec!["_"],
        };
        let err = write_labelled_text(dir.path(), Split::Train, [bad], "--out").unwrap_err();
        assert_eq!(
            err.to_string(),
            "examples example 0 has 2 inputs but 1 labels"
        );
        let spaced = LabelledTokens {
            inputs: vec!["x y"],
            labels: vec!["_"],
        };
        let err = write_labelled_text(dir.path(), Split::Train, [spaced], "--out").unwrap_err();
        assert!(err.to_string().contains("\"x y\""), "{err}");
        for leftover in ["train.txt", "train.txt.tmp", "train.txt.labels.tmp"] {
            assert!(!dir.path().join(leftover).exists(), "{leftover}");
        }
    }
}
