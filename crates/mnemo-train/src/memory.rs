//! Config sizes checked against the machine's memory before anything is allocated.
//!
//! A config with `d_model = 1000000000` or `train_programs = 1000000000000` is valid TOML and
//! passes every range check, but allocating it aborts the process (`memory allocation of …
//! failed`, SIGABRT) instead of giving an error. [`check_memory`] estimates, from the config
//! alone, the bytes a training run holds at once:
//!
//! ```text
//! parameters   P = 2·V·D + L·(4·D² + 2·D·F + 4·D)     × 16 bytes (weights, gradients, Adam m, v)
//! activations  B·T·(L·(8·D + 2·F + 2·H·(S + T)) + 3·V) × 4 bytes
//! data         tokens of the three splits                × 16 bytes (ids, targets, building)
//! ```
//!
//! (V vocabulary, D `d_model`, L layers, F `d_ff`, H heads, S the span or memory length, B×T
//! the batch), and refuses a run whose estimate is larger than the machine's memory (the
//! smaller of physical memory and the cgroup limit), naming the field that makes it large:
//! the one whose reduction to a small value shrinks the estimate most. The estimate is coarse
//! (within a small factor of what a run uses); it is meant to catch sizes that are off by
//! orders of magnitude, not to tune a config. Where the memory cannot be read, nothing is
//! checked.
use std::path::{Path, PathBuf};

use mnemo_data::{Split, TaskConfig, wikitext_file};
use mnemo_models::{ModelConfig, Seq2SeqConfig};

use crate::experiment::{ConfigError, ExperimentConfig};
use crate::translation::TranslationConfig;

/// One size the estimate depends on: its config field, its value and a small value of it.
#[derive(Debug, Clone)]
struct Size {
    field: String,
    value: f64,
    small: f64,
}

/// The sizes of a model, data and batch, flattened for the estimate.
#[derive(Debug, Clone, Copy, Default)]
struct Dims {
    vocab: f64,
    d_model: f64,
    layers: f64,
    d_ff: f64,
    heads: f64,
    span: f64,
    batch: f64,
    seq: f64,
    examples: f64,
    example_len: f64,
}

impl Dims {
    fn parameters(&self) -> f64 {
        let d = self.d_model;
        2.0 * self.vocab * d + self.layers * (4.0 * d * d + 2.0 * d * self.d_ff + 4.0 * d)
    }

    fn bytes(&self) -> Estimate {
        let per_position = self.layers
            * (8.0 * self.d_model + 2.0 * self.d_ff + 2.0 * self.heads * (self.span + self.seq))
            + 3.0 * self.vocab;
        Estimate {
            parameters: self.parameters() * 16.0,
            activations: self.batch * self.seq * per_position * 4.0,
            data: self.examples * self.example_len * 16.0,
        }
    }
}

/// Estimated bytes, by what holds them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Weights, gradients and the two Adam moments.
    pub parameters: f64,
    /// What one training step keeps for its backward pass.
    pub activations: f64,
    /// The token ids and targets of the three splits.
    pub data: f64,
}

impl Estimate {
    /// All of it.
    pub fn total(&self) -> f64 {
        self.parameters + self.activations + self.data
    }
}

/// A size and how it enters [`Dims`].
type Setter = fn(&mut Dims, f64);

/// The estimate of `base` with every size of `sizes` set into it.
fn estimate(sizes: &[(Size, Setter)], base: Dims) -> Estimate {
    let mut dims = base;
    for (size, set) in sizes {
        set(&mut dims, size.value);
    }
    dims.bytes()
}

/// The error when `sizes` need more than `memory` bytes; `None` when they fit.
fn too_big(sizes: &[(Size, Setter)], memory: f64) -> Option<ConfigError> {
    let base = Dims::default();
    let full = estimate(sizes, base);
    if full.total() <= memory {
        return None;
    }
    // The field that, made small, shrinks the estimate most.
    let (culprit, _) = sizes
        .iter()
        .enumerate()
        .map(|(i, (size, _))| {
            let mut smaller = sizes.to_vec();
            smaller[i].0.value = size.small.min(size.value);
            (i, estimate(&smaller, base).total())
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let size = &sizes[culprit].0;
    Some(ConfigError::field(
        size.field.clone(),
        format!(
            "{} makes the run need about {} of memory (parameters with gradients and Adam \
             moments {}, activations {}, data {}), more than this machine's {}",
            size.value,
            human(full.total()),
            human(full.parameters),
            human(full.activations),
            human(full.data),
            human(memory)
        ),
    ))
}

/// `bytes` as `1.5 GiB`.
fn human(bytes: f64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{value:.0} bytes"),
        _ if unit + 1 == units.len() && value >= 1024.0 => format!("{value:.1e} {}", units[unit]),
        _ => format!("{value:.1} {}", units[unit]),
    }
}

/// The memory this process may use: the smaller of physical memory (`/proc/meminfo`) and the
/// cgroup limit, if either can be read.
pub fn machine_memory() -> Option<f64> {
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024.0)
        });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<f64>().ok());
    match (physical, cgroup) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => p.or(c),
    }
}

fn size(field: impl Into<String>, value: usize, small: f64) -> Size {
    Size {
        field: field.into(),
        value: value as f64,
        small,
    }
}

fn file_len(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64)
}

/// The sizes of a word-level corpus in `files` (at most one word per two bytes: a letter and a
/// space, `data.dir` the field); returns a vocabulary bound, at least `min_vocab`.
fn word_files(files: &[PathBuf], sizes: &mut Vec<(Size, Setter)>, min_vocab: f64) -> usize {
    let bytes: f64 = files.iter().map(|f| file_len(f)).sum();
    sizes.push((
        Size {
            field: "data.dir".into(),
            value: bytes,
            small: 0.0,
        },
        |d, v| {
            d.examples = v / 2.0;
            d.example_len = 1.0;
        },
    ));
    // Distinct words grow slower than the text; a generous bound.
    (bytes / 20.0).clamp(min_vocab, 1e6) as usize
}

/// The sizes of a language-model run of model `name` of `config`, vocabulary estimated from the
/// data when the config leaves it to the data.
fn lm_sizes(config: &ExperimentConfig, name: &str) -> Vec<(Size, Setter)> {
    let mut sizes: Vec<(Size, Setter)> = Vec::new();
    let model = &config.models[name];
    let field = |f: &str| format!("models.{name}.{f}");
    let (d_model, layers, heads, d_ff, span) = match model {
        ModelConfig::Transformer(c) => (c.d_model, c.n_layers, c.n_heads, c.d_ff, c.span),
        ModelConfig::Feedback(c) => (c.d_model, c.n_layers, c.n_heads, c.d_ff, c.span),
        ModelConfig::TransformerXl(c) => {
            let longest = [c.memory_len, c.long_memory_len, c.short_memory_len]
                .into_iter()
                .flatten()
                .chain(c.memory_schedule.iter().flatten().copied())
                .max()
                .unwrap_or(0);
            (c.d_model, c.n_layers, c.n_heads, c.d_ff, longest)
        }
    };
    sizes.push((size(field("d_model"), d_model, 32.0), |d, v| d.d_model = v));
    sizes.push((size(field("n_layers"), layers, 2.0), |d, v| d.layers = v));
    sizes.push((size(field("n_heads"), heads, 2.0), |d, v| d.heads = v));
    sizes.push((size(field("d_ff"), d_ff, 64.0), |d, v| d.d_ff = v));
    sizes.push((size(field("span"), span, 8.0), |d, v| d.span = v));
    sizes.push((
        size("train.batch_size", config.train.batch_size, 4.0),
        |d, v| d.batch = v,
    ));
    sizes.push((
        size("train.segment_len", config.train.segment_len, 16.0),
        |d, v| d.seq = v,
    ));
    // The data: examples (summed over the splits) times tokens per example; the vocabulary
    // from the kind of data.
    let vocab = match &config.data {
        TaskConfig::CodeExecution(c) => {
            // About six tokens a statement (`x = x + 4 ;`, `print x ;`, ...).
            sizes.push((size("data.statements", c.statements, 10.0), |d, v| {
                d.example_len = 6.0 * v
            }));
            for (field, n) in [
                ("data.train_programs", c.train_programs),
                ("data.valid_programs", c.valid_programs),
                ("data.test_programs", c.test_programs),
            ] {
                sizes.push((size(field, n, 10.0), |d, v| d.examples += v));
            }
            64
        }
        TaskConfig::Copy(c) | TaskConfig::Reverse(c) => {
            sizes.push((size("data.max_len", c.max_len, 8.0), |d, v| {
                d.example_len = 2.0 * v + 3.0
            }));
            for (field, n) in [
                ("data.train_sequences", c.train_sequences),
                ("data.valid_sequences", c.valid_sequences),
                ("data.test_sequences", c.test_sequences),
            ] {
                sizes.push((size(field, n, 10.0), |d, v| d.examples += v));
            }
            c.symbols + 8
        }
        TaskConfig::Bytes(c) => {
            let bytes = file_len(&c.path);
            sizes.push((
                Size {
                    field: "data.path".into(),
                    value: bytes,
                    small: 0.0,
                },
                |d, v| {
                    d.examples = v;
                    d.example_len = 1.0;
                },
            ));
            257
        }
        TaskConfig::Wikitext(c) => {
            let files = Split::ALL.map(|s| wikitext_file(&c.dir, s));
            word_files(&files, &mut sizes, 1000.0)
        }
        TaskConfig::LabelledText(c) => {
            // The text files only (the labels are as long).
            let files = Split::ALL.map(|s| mnemo_data::labelled_text::text_file(&c.dir, s));
            word_files(&files, &mut sizes, 100.0)
        }
    };
    let vocab = match model.vocab_size() {
        0 => vocab,
        v => v,
    };
    sizes.push((
        Size {
            field: format!("models.{name}.vocab_size"),
            value: vocab as f64,
            small: 64.0,
        },
        |d, v| d.vocab = v,
    ));
    sizes
}

/// Refuse model `name` of `config` when a training run of it would not fit in this machine's
/// memory; see the [module docs](self). Call before the data is built.
pub fn check_memory(config: &ExperimentConfig, name: &str) -> Result<(), ConfigError> {
    let Some(memory) = machine_memory() else {
        return Ok(());
    };
    if !config.models.contains_key(name) {
        return Ok(()); // Reported by the caller, with the names there are.
    }
    match too_big(&lm_sizes(config, name), memory) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// [`check_memory`] for model `name` of a translation `config`.
pub fn check_translation_memory(config: &TranslationConfig, name: &str) -> Result<(), ConfigError> {
    let Some(memory) = machine_memory() else {
        return Ok(());
    };
    let Some(model) = config.models.get(name) else {
        return Ok(());
    };
    let Seq2SeqConfig {
        d_model,
        n_heads,
        d_ff,
        encoder_layers,
        decoder_layers,
        max_len,
        vocab_size,
        ..
    } = model.clone();
    let parallel = config.data.parallel();
    let vocab = match vocab_size {
        0 => parallel.vocab_size,
        v => v,
    };
    let field = |f: &str| format!("models.{name}.{f}");
    let sizes: Vec<(Size, Setter)> = vec![
        (size("data.vocab_size", vocab, 64.0), |d, v| d.vocab = v),
        (size(field("d_model"), d_model, 32.0), |d, v| d.d_model = v),
        (
            size(field("encoder_layers"), encoder_layers, 1.0),
            |d, v| d.layers += v,
        ),
        (
            size(field("decoder_layers"), decoder_layers, 1.0),
            |d, v| d.layers += 2.0 * v,
        ),
        (size(field("n_heads"), n_heads, 2.0), |d, v| d.heads = v),
        (size(field("d_ff"), d_ff, 64.0), |d, v| d.d_ff = v),
        (size(field("max_len"), max_len, 16.0), |d, v| d.span = v),
        (
            size("train.max_tokens", config.train.max_tokens, 256.0),
            |d, v| {
                d.batch = 1.0;
                d.seq = v;
            },
        ),
    ];
    match too_big(&sizes, memory) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

    fn config(replace: &[(&str, &str)]) -> ExperimentConfig {
        // The experiment module's example config, its feedback model named `fb`.
        let mut text =
            crate::experiment::tests::EXAMPLE.replace("[models.feedback]", "[models.fb]");
        for (from, to) in replace {
            assert!(text.contains(from), "{from}");
            text = text.replace(from, to);
        }
        ExperimentConfig::from_toml_str(&text).unwrap()
    }

    fn culprit(replace: &[(&str, &str)]) -> Option<String> {
        too_big(&lm_sizes(&config(replace), "fb"), 16.0 * GIB).map(|e| {
            let msg = e.to_string();
            assert!(msg.contains("16.0 GiB"), "{msg}");
            e.field.unwrap()
        })
    }

    #[test]
    fn small_configs_fit_and_the_estimate_grows_with_the_model() {
        assert_eq!(culprit(&[]), None);
        let small = estimate(&lm_sizes(&config(&[]), "fb"), Dims::default());
        assert!(small.total() < 64.0 * 1024.0 * 1024.0, "{small:?}");
        // 2 layers of d_model 32, d_ff 64, vocabulary ~64: ~2·64·32 + 2·(4·1024 + 4096 + 128).
        let params = small.parameters / 16.0;
        assert!((20_000.0..30_000.0).contains(&params), "{params}");
    }

    #[test]
    fn each_huge_size_is_named() {
        for (from, to, field) in [
            ("d_model = 32", "d_model = 1000000000", "models.fb.d_model"),
            ("d_ff = 64", "d_ff = 1000000000000", "models.fb.d_ff"),
            ("n_layers = 2", "n_layers = 100000000", "models.fb.n_layers"),
            (
                "train_programs = 50",
                "train_programs = 1000000000000",
                "data.train_programs",
            ),
            (
                "statements = 10",
                "statements = 10000000000",
                "data.statements",
            ),
            (
                "batch_size = 4",
                "batch_size = 100000000000",
                "train.batch_size",
            ),
        ] {
            assert_eq!(culprit(&[(from, to)]).as_deref(), Some(field), "{to}");
        }
    }

    #[test]
    fn sizes_read_as_units() {
        assert_eq!(human(512.0), "512 bytes");
        assert_eq!(human(1.5 * GIB), "1.5 GiB");
        assert!(human(1e30).ends_with("EiB"), "{}", human(1e30));
    }
}
