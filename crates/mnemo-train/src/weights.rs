//! A model's weights as a safetensors file with the names and layouts of a plain PyTorch
//! implementation of the same model (`mnemo export RUN --format safetensors`, `mnemo import
//! safetensors FILE`), through burn's `burn-store`: its [`SafetensorsStore`] reads and writes the
//! file, its [`BurnToPyTorchAdapter`] / [`PyTorchToBurnAdapter`] convert the layouts.
//!
//! The models are those of mnemo-models: Vaswani et al. 2017 (the causal Transformer LM), Fan
//! et al. 2020 ("Addressing Some Limitations of Transformers with Feedback Memory", the Feedback
//! Transformer), Dai et al. 2019 (Transformer-XL). Their equations do not change here; only the
//! storage of their parameters does:
//!
//! ```text
//! Linear   y = x W + b      burn stores W as [in, out]; the file holds Wᵀ, PyTorch's [out, in]
//! LayerNorm y = γ ⊙ (x−μ)/√(σ²+ε) + β   burn's gamma/beta are the file's weight/bias
//! RMSNorm   y = γ ⊙ x/√(mean(x²)+ε)     burn's gamma is the file's weight
//! ```
//!
//! Every other tensor (embeddings `[V, D]`, relative-position tables `[S, Dh]`, the Feedback
//! mixing logits `[L+1]`) is stored as it is. Names: the module path with enum variants left
//! out (`norm.Layer.gamma` is `norm.weight`) and renamed by [`pytorch_name`], e.g.
//! `core.layers.0.query.weight` → `layers.0.attn.q.weight`. The table of every name is in
//! docs/models.md, "Weights in PyTorch"; `scripts/torch_reference.py` is a PyTorch
//! implementation that loads these files and reproduces mnemo's logits.
//!
//! Reading checks the file against the model before any weight changes: every expected tensor
//! present, none extra, each of the expected shape (PyTorch layout), floating point and finite;
//! the error names the file and every offending tensor by its file name.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::DType;
use burn_store::burn_pack::Tensor as PackTensor;
use burn_store::{
    BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleContext, ModuleSnapshot,
    ModuleStore, PyTorchToBurnAdapter, SafetensorsStore, bridge,
};

/// File name `mnemo export` writes into a run directory by default.
pub const SAFETENSORS_FILE: &str = "model.safetensors";

/// One tensor of a model in the file: its name there, its module path in mnemo, its shape in
/// the file (PyTorch layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorName {
    /// Name in the file, e.g. `layers.0.attn.q.weight`.
    pub pytorch: String,
    /// Module path in mnemo (enum variants left out), e.g. `layers.0.attn.query.weight`.
    pub mnemo: String,
    /// Shape in the file (a Linear weight as `[out, in]`).
    pub shape: Vec<usize>,
}

/// What is wrong with one tensor of a file (or with the file itself).
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The file cannot be read or written, or is not a safetensors file.
    File(String),
    /// The model has this tensor; the file does not.
    Missing(String),
    /// The file has this tensor; the model does not.
    Unexpected(String),
    /// The tensor has another shape than the model's (both in the file's layout).
    Shape {
        /// Name in the file.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the model needs.
        expected: Vec<usize>,
    },
    /// The tensor is not floating point.
    DType {
        /// Name in the file.
        name: String,
        /// Its type.
        found: String,
    },
    /// The tensor holds NaN or infinity.
    NonFinite(String),
    /// The file was written for a model with another config (`mnemo.config` metadata).
    Config(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::File(reason) => write!(f, "{reason}"),
            Problem::Missing(name) => write!(f, "tensor `{name}` is missing"),
            Problem::Unexpected(name) => write!(f, "tensor `{name}` is not part of this model"),
            Problem::Shape {
                name,
                found,
                expected,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?}, the model needs {expected:?}"
            ),
            Problem::DType { name, found } => {
                write!(f, "tensor `{name}` is {found}, not floating point")
            }
            Problem::NonFinite(name) => write!(f, "tensor `{name}` holds NaN or infinity"),
            Problem::Config(reason) => write!(f, "{reason}"),
        }
    }
}

/// Why weights could not be written or read: the file and everything wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {}", path.display(), problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct WeightsError {
    /// The safetensors file.
    pub path: PathBuf,
    /// What is wrong, at least one.
    pub problems: Vec<Problem>,
}

impl WeightsError {
    pub(crate) fn file(path: &Path, reason: impl fmt::Display) -> Self {
        Self {
            path: path.to_path_buf(),
            problems: vec![Problem::File(reason.to_string())],
        }
    }
}

impl From<WeightsError> for crate::TrainError {
    fn from(e: WeightsError) -> Self {
        let message = e.to_string();
        let prefix = format!("{}: ", e.path.display());
        crate::TrainError::BadFile {
            message: message
                .strip_prefix(&prefix)
                .unwrap_or(&message)
                .to_string(),
            path: e.path,
        }
    }
}

/// The file name of the tensor at module path `path` (enum variants left out, norm parameters
/// already `weight`/`bias`). Segment rules, in order:
///
/// | mnemo                                   | file          |
/// |-----------------------------------------|---------------|
/// | leading `core.` (Feedback LM)           | (dropped)     |
/// | `attn_residual.norm`, `ff_residual.norm`| `attn_norm`, `ff_norm` |
/// | `positions.table`                       | `pos`         |
/// | `query`, `key`, `value`, `output`       | `q`, `k`, `v`, `o` |
/// | `memory_projections`                    | `kv`          |
/// | `embedding`                             | `embed`       |
/// | `adaptive_span.ratio`                   | `span`        |
/// | `layers.N.{q,o,pos,span}` (Feedback layer) | `layers.N.attn.{q,o,pos,span}` |
///
/// Other segments are kept.
pub fn pytorch_name(path: &str) -> String {
    let segments: Vec<&str> = path.split('.').collect();
    let segments = match segments.first() {
        Some(&"core") => &segments[1..],
        _ => &segments[..],
    };
    let mut out: Vec<&str> = Vec::with_capacity(segments.len() + 1);
    let mut i = 0;
    while i < segments.len() {
        let next = segments.get(i + 1).copied();
        let (name, used) = match (segments[i], next) {
            ("attn_residual", Some("norm")) => ("attn_norm", 2),
            ("ff_residual", Some("norm")) => ("ff_norm", 2),
            ("positions", Some("table")) => ("pos", 2),
            ("adaptive_span", Some("ratio")) => ("span", 2),
            ("query", _) => ("q", 1),
            ("key", _) => ("k", 1),
            ("value", _) => ("v", 1),
            ("output", _) => ("o", 1),
            ("memory_projections", _) => ("kv", 1),
            ("embedding", _) => ("embed", 1),
            (other, _) => (other, 1),
        };
        // A Feedback layer holds its query, output and positions directly: group them as the
        // Transformer's `attn` does.
        let in_layer = out.len() >= 2
            && out[out.len() - 2] == "layers"
            && out[out.len() - 1].parse::<usize>().is_ok();
        if in_layer && matches!(name, "q" | "o" | "pos" | "span") {
            out.push("attn");
        }
        out.push(name);
        i += used;
    }
    out.join(".")
}

/// The adapter of [`export_safetensors`]: burn's PyTorch layouts, then [`pytorch_name`].
#[derive(Debug, Clone, Copy, Default)]
struct TorchLayout;

impl ModuleAdapter for TorchLayout {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        let mut tensor = BurnToPyTorchAdapter.adapt(tensor, ctx);
        tensor.name = pytorch_name(&tensor.name);
        tensor
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// Every tensor of `model` by its file name, in the PyTorch layout (as [`export_safetensors`]
/// would write it).
pub(crate) fn torch_tensors<M: Module>(model: &M) -> BTreeMap<String, PackTensor> {
    model
        .collect(None, Some(Box::new(TorchLayout)), true)
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect()
}

/// Every tensor of `model`, in its visiting order, with its file name and shape.
///
/// # Panics
/// If two tensors would get the same file name (a gap in [`pytorch_name`]'s rules).
pub fn tensor_names<M: Module>(model: &M) -> Vec<TensorName> {
    let torch = model.collect(None, Some(Box::new(TorchLayout)), true);
    let mnemo = model.collect(None, None, true);
    let names: Vec<TensorName> = torch
        .into_iter()
        .zip(mnemo)
        .map(|(t, m)| TensorName {
            pytorch: t.name,
            mnemo: m.name,
            shape: t.shape.to_vec(),
        })
        .collect();
    let mut seen = BTreeSet::new();
    for n in &names {
        assert!(
            seen.insert(n.pytorch.as_str()),
            "pytorch_name: two tensors map to `{}`",
            n.pytorch
        );
    }
    names
}

/// Write `model`'s weights to `path` (replacing it) in the PyTorch layout and names, with
/// `metadata` (string pairs) in the file's header beside burn's own.
pub fn export_safetensors<M: Module>(
    model: &M,
    path: &Path,
    metadata: &[(&str, String)],
) -> Result<(), WeightsError> {
    tensor_names(model); // the names are distinct
    let mut store = SafetensorsStore::from_file(path)
        .overwrite(true)
        .skip_enum_variants(true)
        .with_to_adapter(TorchLayout);
    for (key, value) in metadata {
        store = store.metadata(*key, value.clone());
    }
    model
        .save_into(&mut store)
        .map_err(|e| WeightsError::file(path, format!("cannot write: {e}")))
}

/// `model` with every weight read from the safetensors file at `path` (names and layouts of
/// [`export_safetensors`]). The file is checked first (see the [module docs](self)); on error
/// no weight is read and the error lists every offending tensor.
pub fn import_safetensors<M: Module>(model: M, path: &Path) -> Result<M, WeightsError> {
    let mut store = SafetensorsStore::from_file(path);
    let file = store
        .get_all_tensors()
        .map_err(|e| WeightsError::file(path, format!("not a readable safetensors file: {e}")))?;
    import_tensors(model, file, path)
}

/// `model` with every weight taken from `file` (tensors by file name, PyTorch layouts, as
/// [`export_safetensors`] writes them) read from `path`; checked first, as
/// [`import_safetensors`] does.
pub(crate) fn import_tensors<M: Module>(
    mut model: M,
    file: &BTreeMap<String, PackTensor>,
    path: &Path,
) -> Result<M, WeightsError> {
    let expected = tensor_names(&model);
    let problems = check_tensors(&expected, file);
    if !problems.is_empty() {
        return Err(WeightsError {
            path: path.to_path_buf(),
            problems,
        });
    }
    let tensors = expected
        .iter()
        .map(|n| {
            let mut tensor = file[&n.pytorch].clone();
            tensor.name = n.mnemo.clone();
            tensor
        })
        .collect();
    let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
    let result = model.apply(tensors, None, Some(Box::new(adapter)), true);
    // Every tensor was checked above: anything left here is a fault of this module.
    if !(result.errors.is_empty() && result.missing.is_empty() && result.unused.is_empty()) {
        return Err(WeightsError::file(
            path,
            format!("the weights could not be applied: {result}"),
        ));
    }
    Ok(model)
}

/// Every problem of the file's tensors `file` against the model's `expected` ones, in the
/// model's order, then the extra tensors in name order.
fn check_tensors(expected: &[TensorName], file: &BTreeMap<String, PackTensor>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for n in expected {
        let Some(tensor) = file.get(&n.pytorch) else {
            problems.push(Problem::Missing(n.pytorch.clone()));
            continue;
        };
        let name = n.pytorch.clone();
        if !tensor.dtype.is_float() {
            let found = format!("{:?}", tensor.dtype);
            problems.push(Problem::DType { name, found });
        } else if tensor.shape.to_vec() != n.shape {
            problems.push(Problem::Shape {
                name,
                found: tensor.shape.to_vec(),
                expected: n.shape.clone(),
            });
        } else if !finite(tensor) {
            problems.push(Problem::NonFinite(name));
        }
    }
    let known: BTreeSet<&str> = expected.iter().map(|n| n.pytorch.as_str()).collect();
    problems.extend(
        file.keys()
            .filter(|name| !known.contains(name.as_str()))
            .map(|name| Problem::Unexpected(name.clone())),
    );
    problems
}

/// Whether every value of `tensor` is finite (false if its bytes cannot be read).
fn finite(tensor: &PackTensor) -> bool {
    bridge::to_data(tensor).is_ok_and(|data| data.iter::<f64>().all(f64::is_finite))
}

/// The string metadata of the safetensors file at `path` (the `__metadata__` of its JSON
/// header: 8 bytes little-endian header length, then the header).
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>, WeightsError> {
    let bad = |reason: String| WeightsError::file(path, reason);
    let mut file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| bad(format!("not a safetensors file (no header): {e}")))?;
    let len = u64::from_le_bytes(len);
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > size.saturating_sub(8) || len > 100_000_000 {
        return Err(bad(format!(
            "not a safetensors file (header of {len} bytes in a file of {size})"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(format!("not a safetensors file (short header): {e}")))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("not a safetensors file (header is not JSON: {e})")))?;
    Ok(header
        .get("__metadata__")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
#[path = "weights_tests.rs"]
mod tests;
