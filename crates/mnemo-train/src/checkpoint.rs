//! One-file checkpoints, checksummed and written atomically.
//!
//! # Format (version 2)
//!
//! ```text
//! magic    8 bytes   "MNEMOCKP"
//! version  u32 LE    2
//! count    u32 LE    3
//! then `count` sections, in this order:
//!   tag     4 bytes  "STAT" | "MODL" | "OPTM"
//!   length  u64 LE   payload length in bytes
//!   sha256  32 bytes digest of the payload
//!   payload          trainer state (JSON) | model record (burnpack) | optimizer (burnpack)
//! ```
//!
//! Nothing may follow the last section. [`Checkpoint::read`] checks every length and digest
//! before any byte reaches burn or serde, so a truncated or corrupted file is an error naming
//! the file and the section, never a panic. [`Checkpoint::write_atomic`] writes
//! `checkpoint.mnemo.tmp` next to the target, fsyncs it, and renames it over the old file, so a
//! run killed mid-write keeps its previous checkpoint.
//!
//! The trainer state is a [`RunState`](crate::trainer::RunState), the same for every task:
//! the run's identity, the step, the task's data position under `position`, and the metrics.
//! Version 1 (before the one training loop) kept each task's position fields at the top level
//! and is not read.
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::lm::TrainerState;
use crate::optim::OptimConfig;

/// File name of a run's checkpoint.
pub const CHECKPOINT_FILE: &str = "checkpoint.mnemo";

/// First bytes of every checkpoint.
pub const MAGIC: &[u8; 8] = b"MNEMOCKP";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

const TAGS: [(&[u8; 4], &str); 3] = [
    (b"STAT", "trainer state"),
    (b"MODL", "model"),
    (b"OPTM", "optimizer"),
];
const HEADER_LEN: usize = 8 + 4 + 4;
const SECTION_HEADER_LEN: usize = 4 + 8 + 32;

/// Everything a checkpoint file holds.
///
/// `S` is the trainer state stored as JSON in the `STAT` section: [`TrainerState`] for
/// language-model and algorithmic runs, [`MtTrainerState`](crate::translation::MtTrainerState)
/// for translation runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint<S = TrainerState> {
    /// Step, data position, carried state, metrics.
    pub trainer: S,
    /// The model record (`Module::into_record().into_bytes()`).
    pub model: Vec<u8>,
    /// The optimizer state (`ModuleOptimizer::into_bytes()`).
    pub optimizer: Vec<u8>,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file system refused.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done, e.g. `cannot read checkpoint`.
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid checkpoint of this format.
    #[error("{}: corrupt checkpoint: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file ends before its declared content.
    #[error("{}: truncated checkpoint (corrupt): {reason}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Which part is missing.
        reason: String,
    },
    /// The file is a valid checkpoint, but not of this run (another model or data).
    #[error("{}: checkpoint does not match this run: {reason}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

impl CheckpointError {
    /// A [`CheckpointError::Mismatch`] for `path`.
    pub fn mismatch(path: &Path, reason: impl Into<String>) -> Self {
        Self::Mismatch {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// A problem found while decoding bytes, before the file name is attached.
enum Problem {
    Corrupt(String),
    Truncated(String),
}

impl<S: Serialize + DeserializeOwned> Checkpoint<S> {
    /// The checkpoint as bytes in the format above.
    pub fn to_bytes(&self) -> Vec<u8> {
        let state = serde_json::to_vec(&self.trainer).expect("trainer state serialises to JSON");
        let payloads: [&[u8]; 3] = [&state, &self.model, &self.optimizer];
        let total = HEADER_LEN
            + payloads
                .iter()
                .map(|p| SECTION_HEADER_LEN + p.len())
                .sum::<usize>();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(TAGS.len() as u32).to_le_bytes());
        for ((tag, _), payload) in TAGS.iter().zip(payloads) {
            out.extend_from_slice(*tag);
            out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            out.extend_from_slice(&Sha256::digest(payload));
            out.extend_from_slice(payload);
        }
        out
    }

    /// Decode bytes written by [`Checkpoint::to_bytes`]; `path` only names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        Self::decode(bytes).map_err(|problem| match problem {
            Problem::Corrupt(reason) => CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason,
            },
            Problem::Truncated(reason) => CheckpointError::Truncated {
                path: path.to_path_buf(),
                reason,
            },
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, Problem> {
        if bytes.len() < HEADER_LEN {
            return Err(
                if bytes.len() >= MAGIC.len() && &bytes[..MAGIC.len()] != MAGIC {
                    Problem::Corrupt("not a mnemo checkpoint (wrong magic bytes)".into())
                } else {
                    Problem::Truncated(format!(
                        "{} bytes, shorter than the {HEADER_LEN}-byte header",
                        bytes.len()
                    ))
                },
            );
        }
        if &bytes[..8] != MAGIC {
            return Err(Problem::Corrupt(
                "not a mnemo checkpoint (wrong magic bytes)".into(),
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(Problem::Corrupt(format!(
                "format version {version}, but this build reads version {FORMAT_VERSION}"
            )));
        }
        let count = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if count as usize != TAGS.len() {
            return Err(Problem::Corrupt(format!(
                "{count} sections, expected {}",
                TAGS.len()
            )));
        }
        let mut rest = &bytes[HEADER_LEN..];
        let mut payloads = Vec::with_capacity(TAGS.len());
        for (tag, name) in TAGS {
            if rest.len() < SECTION_HEADER_LEN {
                return Err(Problem::Truncated(format!(
                    "the {name} section header is cut off"
                )));
            }
            if &rest[..4] != tag {
                return Err(Problem::Corrupt(format!(
                    "expected the {name} section (tag {:?}), found tag {:?}",
                    String::from_utf8_lossy(tag),
                    String::from_utf8_lossy(&rest[..4])
                )));
            }
            let len = u64::from_le_bytes(rest[4..12].try_into().expect("8 bytes"));
            let digest = &rest[12..SECTION_HEADER_LEN];
            rest = &rest[SECTION_HEADER_LEN..];
            if len > rest.len() as u64 {
                return Err(Problem::Truncated(format!(
                    "the {name} section declares {len} bytes but only {} remain",
                    rest.len()
                )));
            }
            let (payload, tail) = rest.split_at(len as usize);
            if Sha256::digest(payload).as_slice() != digest {
                return Err(Problem::Corrupt(format!(
                    "the {name} section fails its sha256 check"
                )));
            }
            payloads.push(payload);
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(Problem::Corrupt(format!(
                "{} unexpected bytes after the last section",
                rest.len()
            )));
        }
        let trainer: S = serde_json::from_slice(payloads[0])
            .map_err(|e| Problem::Corrupt(format!("the trainer state does not parse: {e}")))?;
        Ok(Self {
            trainer,
            model: payloads[1].to_vec(),
            optimizer: payloads[2].to_vec(),
        })
    }

    /// Read and verify a checkpoint file.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            action: "cannot read checkpoint",
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Write to `path` atomically: a `.tmp` sibling is written, fsynced and renamed over `path`.
    /// If anything fails (a full disk), the `.tmp` is removed and `path` is left as it was.
    pub fn write_atomic(&self, path: &Path) -> Result<(), CheckpointError> {
        let tmp = tmp_path(path);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io {
                path,
                action,
                source,
            }
        };
        let written = File::create(&tmp)
            .map_err(io("cannot create checkpoint", &tmp))
            .and_then(|mut file| {
                file.write_all(&self.to_bytes())
                    .map_err(io("cannot write checkpoint", &tmp))?;
                file.sync_all().map_err(io("cannot sync checkpoint", &tmp))
            })
            .and_then(|()| {
                fs::rename(&tmp, path).map_err(io("cannot move checkpoint into place", path))
            });
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        // Make the rename itself durable.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl<S: Serialize + DeserializeOwned> Checkpoint<S> {
    /// A checkpoint of `model` and `optimizer` with trainer state `state`; `path` only names
    /// the file in errors.
    pub fn of<M: Module>(
        path: &Path,
        state: S,
        model: &M,
        optimizer: &ModuleOptimizer,
    ) -> Result<Self, CheckpointError> {
        let corrupt = |what: &str, e: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("cannot serialise the {what}: {e}"),
        };
        let model = model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| corrupt("model", e.to_string()))?;
        let optimizer = optimizer
            .into_bytes()
            .map_err(|e| corrupt("optimizer", e.to_string()))?;
        Ok(Self {
            trainer: state,
            model: model.to_vec(),
            optimizer: optimizer.to_vec(),
        })
    }

    /// Load the stored weights into `model` (built from the same config).
    pub fn load_model<M: Module>(&self, model: M, path: &Path) -> Result<M, CheckpointError> {
        let record =
            ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.model.clone())).map_err(|e| {
                CheckpointError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("model record: {e}"),
                }
            })?;
        model.try_load_record(record).map_err(|e| {
            CheckpointError::mismatch(path, format!("model weights do not fit the config: {e}"))
        })
    }

    /// The stored optimizer state, into a fresh optimizer of `config`.
    pub fn load_optimizer(
        &self,
        config: &OptimConfig,
        path: &Path,
    ) -> Result<ModuleOptimizer, CheckpointError> {
        config
            .init()
            .from_bytes(Bytes::from_bytes_vec(self.optimizer.clone()))
            .map_err(|e| CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("optimizer state: {e}"),
            })
    }
}

/// The temporary file [`Checkpoint::write_atomic`] writes before renaming.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::TrainConfig;
    use crate::lm::LmPosition;
    use crate::metrics::{Metrics, MetricsAccumulator};
    use mnemo_data::TaskConfig;
    use mnemo_models::{ModelConfig, StateSnapshot, TransformerConfig};

    fn sample() -> Checkpoint {
        Checkpoint {
            trainer: TrainerState {
                model_name: "tiny".into(),
                model_config: ModelConfig::Transformer(TransformerConfig::tiny(7)),
                data: TaskConfig::default(),
                train: TrainConfig {
                    feedback_backward: Default::default(),
                    batch_size: 2,
                    segment_len: 8,
                    eval_batch_size: None,
                    on_nonfinite: Default::default(),
                },
                seed: 3,
                step: 12,
                position: LmPosition {
                    next_segment: 4,
                    epoch: 1,
                    segments_per_epoch: 9,
                    carried: StateSnapshot::Feedback {
                        shape: [1, 1, 2],
                        values: vec![0.1, -3.5e-7],
                    },
                    stage: 2,
                    stage_steps: 5,
                },
                train_time_s: 1.5,
                tokens_seen: 1234,
                last_train: None,
                window: MetricsAccumulator::default(),
                last_valid: Some((
                    10,
                    Metrics {
                        loss: 0.5,
                        accuracy: 0.25,
                        scored: 8,
                        tokens: 64,
                        bpc: Some(0.72),
                        ppl: None,
                    },
                )),
                best_valid: None,
                data_files: Vec::new(),
                skipped_batches: 0,
            },
            model: (0..200u32).map(|i| i as u8).collect(),
            optimizer: vec![9; 33],
        }
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        let ckpt = sample();
        ckpt.write_atomic(&path).unwrap();
        assert!(!tmp_path(&path).exists());
        assert_eq!(Checkpoint::<TrainerState>::read(&path).unwrap(), ckpt);
        // Overwriting replaces the file.
        let mut next = sample();
        next.trainer.step = 13;
        next.write_atomic(&path).unwrap();
        assert_eq!(
            Checkpoint::<TrainerState>::read(&path)
                .unwrap()
                .trainer
                .step,
            13
        );
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let bytes = sample().to_bytes();
        let path = Path::new("runs/x/checkpoint.mnemo");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let err = Checkpoint::<TrainerState>::from_bytes(&bad, path)
                .expect_err("flipped byte accepted");
            let msg = err.to_string();
            assert!(msg.starts_with("runs/x/checkpoint.mnemo: "), "{msg}");
            assert!(msg.contains("corrupt"), "byte {i}: {msg}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes();
        let path = Path::new("c.mnemo");
        for len in 0..bytes.len() {
            let err = Checkpoint::<TrainerState>::from_bytes(&bytes[..len], path)
                .expect_err("truncation accepted");
            assert!(
                matches!(err, CheckpointError::Truncated { .. }),
                "length {len}: {err}"
            );
            assert!(err.to_string().contains("truncated"), "{err}");
        }
    }

    #[test]
    fn a_failed_write_leaves_no_tmp_and_the_old_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        sample().write_atomic(&path).unwrap();
        // The rename fails: the target is now a non-empty directory.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        let err = sample().write_atomic(&blocked).unwrap_err();
        assert!(err.to_string().contains("cannot move checkpoint"), "{err}");
        assert!(!tmp_path(&blocked).exists(), "partial .tmp left behind");
        assert_eq!(Checkpoint::<TrainerState>::read(&path).unwrap(), sample());
    }

    #[test]
    fn non_finite_metrics_round_trip_through_the_trainer_state() {
        let mut ckpt = sample();
        let nan = Metrics {
            loss: f64::NAN,
            accuracy: 0.1 + 0.2,
            scored: 8,
            tokens: 64,
            bpc: Some(f64::INFINITY),
            ppl: None,
        };
        ckpt.trainer.last_valid = Some((12, nan));
        ckpt.trainer.train_time_s = 1.0 / 3.0;
        let back = Checkpoint::<TrainerState>::from_bytes(&ckpt.to_bytes(), Path::new("c"))
            .expect("a NaN validation loss reads back");
        let (_, m) = back.trainer.last_valid.unwrap();
        assert!(m.loss.is_nan());
        assert_eq!(m.bpc, Some(f64::INFINITY));
        assert_eq!(m.accuracy.to_bits(), (0.1f64 + 0.2).to_bits());
        assert_eq!(
            back.trainer.train_time_s.to_bits(),
            (1.0f64 / 3.0).to_bits()
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err =
            Checkpoint::<TrainerState>::read(Path::new("/nonexistent/ckpt.mnemo")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ckpt.mnemo"), "{err}");
    }
}
