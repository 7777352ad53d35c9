//! Reading checkpoints of the Feedback Transformer's official code (facebookresearch/
//! transformer-sequential; Fan et al. 2020, "Addressing Some Limitations of Transformers with
//! Feedback Memory") with burn-store's PyTorch reader ([`PytorchStore`]), and naming their
//! tensors the way mnemo's safetensors files do ([`crate::weights`]): the groundwork of
//! `mnemo import official` (issue 18).
//!
//! An official checkpoint is `torch.save({"epoch", "model": model.state_dict(), "optimizer",
//! "logger"})`, its keys prefixed `module.` when trained with DistributedDataParallel; a bare
//! `state_dict` saved alone is read too. [`read_official`] returns the state dict's tensors by
//! name, the prefix removed.
//!
//! Official names and their counterparts ([`mnemo_counterpart`]); `l` a layer, `p` the K/V
//! projection layer `l` reads (0 with `--share-proj-kv`):
//!
//! ```text
//! in_emb.weight                          embed.weight
//! layers.l.attn.proj_query.weight        layers.l.attn.q.weight      (official: no bias)
//! layers.l.attn.proj_out.weight          layers.l.attn.o.weight      (no bias)
//! layers.l.attn.proj_key.weight          kv.p.k.weight               (no bias)
//! layers.l.attn.proj_val.weight          kv.p.v.weight               (no bias)
//! layers.l.attn.attn.key_pe  [1, Dh, S]  layers.l.attn.pos [S, Dh]   (slot i is distance S − i:
//!                                                                     pos = key_pe[0]ᵀ reversed)
//! layers.l.norm1.{weight,bias}           layers.l.attn_norm.*        (pre-norm: also kv.p.norm.*)
//! layers.l.norm2.{weight,bias}           layers.l.ff_norm.*
//! layers.l.ff.fc1.{weight,bias}          layers.l.ff.up.*            (official: ReLU, mnemo: GELU)
//! layers.l.ff.fc2.{weight,bias}          layers.l.ff.down.*
//! out_norm.{weight,bias}                 final_norm.*
//! out.out_emb.{weight,bias}              head.*
//! single_memory_attn_params  [1, L+1]    mix [L+1]
//! single_memory_attn_buf                 (a buffer: the last softmax of the above, not read)
//! layers.l.attn.attn.adaptive_span.mask.size_ratio [H,1,1] or [1]
//!                                        layers.l.attn.span [H] or [1]  (--adapt-span)
//! layers.l.attn.attn.adaptive_span.mask.mask_template  (a buffer, not read)
//! ```
//!
//! The parameterisation differences in parentheses are issue 18's first item; until mnemo can
//! express them, this module reads and names, it does not build a model.
use std::collections::BTreeMap;
use std::path::Path;

use burn_store::burn_pack::Tensor as PackTensor;
use burn_store::{ModuleStore, PytorchStore, SafetensorsStore};

use crate::weights::WeightsError;

/// The top-level key of an official checkpoint that holds the model's state dict.
pub const MODEL_KEY: &str = "model";

/// Prefix DistributedDataParallel puts on every key.
pub const DDP_PREFIX: &str = "module.";

/// The tensors of the official checkpoint (or bare state dict) at `path`, by name with any
/// `module.` prefix removed, or of a `.safetensors` file `mnemo export --format official`
/// wrote. An error names the file.
pub fn read_official(path: &Path) -> Result<BTreeMap<String, PackTensor>, WeightsError> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        // `mnemo export --format official`: the state dict under its official names.
        return SafetensorsStore::from_file(path)
            .get_all_tensors()
            .cloned()
            .map_err(|e| {
                WeightsError::file(path, format!("not a readable safetensors file: {e}"))
            });
    }
    let nested = read_state_dict(path, Some(MODEL_KEY));
    let tensors = match nested {
        Ok(tensors) if !tensors.is_empty() => tensors,
        // Not a training checkpoint: a state dict saved alone.
        _ => read_state_dict(path, None).map_err(|bare| {
            let why = match nested {
                Err(e) => e,
                Ok(_) => format!("its \"{MODEL_KEY}\" entry holds no tensor"),
            };
            WeightsError::file(
                path,
                format!(
                    "not a PyTorch checkpoint with a \"{MODEL_KEY}\" state dict ({why}) nor a \
                     state dict ({bare})"
                ),
            )
        })?,
    };
    if tensors.is_empty() {
        return Err(WeightsError::file(path, "holds no tensor"));
    }
    Ok(tensors)
}

/// The tensors under `key` (or at the top level), `module.` removed; the reader's error as text.
fn read_state_dict(path: &Path, key: Option<&str>) -> Result<BTreeMap<String, PackTensor>, String> {
    let mut store = PytorchStore::from_file(path)
        .map_indices_contiguous(false)
        .with_key_remapping(format!("^{}", regex_escape(DDP_PREFIX)), "");
    if let Some(key) = key {
        store = store.with_top_level_key(key);
    }
    store.get_all_tensors().cloned().map_err(|e| e.to_string())
}

/// `text` with the regex metacharacters it may hold (`.`) escaped.
fn regex_escape(text: &str) -> String {
    text.replace('.', r"\.")
}

/// The name, in mnemo's safetensors files, of the tensor the official tensor `name` becomes
/// (see the table in the [module docs](self)), for a model whose layer `l` reads the K/V
/// projection `projection(l)`; `None` for the official buffers `single_memory_attn_buf` and
/// `layers.l.attn.attn.adaptive_span.mask.mask_template`, which are not weights. An unknown name is returned as `Err` with itself.
pub fn mnemo_counterpart(
    name: &str,
    projection: impl Fn(usize) -> usize,
) -> Result<Option<String>, String> {
    let parts: Vec<&str> = name.split('.').collect();
    let fixed = match name {
        "in_emb.weight" => Some("embed.weight"),
        "out.out_emb.weight" => Some("head.weight"),
        "out.out_emb.bias" => Some("head.bias"),
        "out_norm.weight" => Some("final_norm.weight"),
        "out_norm.bias" => Some("final_norm.bias"),
        "single_memory_attn_params" => Some("mix"),
        _ if crate::official_import::is_official_buffer(name) => return Ok(None),
        _ => None,
    };
    if let Some(fixed) = fixed {
        return Ok(Some(fixed.to_string()));
    }
    let unknown = || Err(name.to_string());
    let ["layers", l, rest @ ..] = parts.as_slice() else {
        return unknown();
    };
    let Ok(layer) = l.parse::<usize>() else {
        return unknown();
    };
    let p = projection(layer);
    let mapped = match rest {
        ["attn", "proj_query", "weight"] => format!("layers.{layer}.attn.q.weight"),
        ["attn", "proj_out", "weight"] => format!("layers.{layer}.attn.o.weight"),
        ["attn", "proj_key", "weight"] => format!("kv.{p}.k.weight"),
        ["attn", "proj_val", "weight"] => format!("kv.{p}.v.weight"),
        ["attn", "attn", "key_pe"] => format!("layers.{layer}.attn.pos"),
        ["attn", "attn", "adaptive_span", "mask", "size_ratio"] => {
            format!("layers.{layer}.attn.span")
        }
        ["norm1", w @ ("weight" | "bias")] => format!("layers.{layer}.attn_norm.{w}"),
        ["norm2", w @ ("weight" | "bias")] => format!("layers.{layer}.ff_norm.{w}"),
        ["ff", "fc1", w @ ("weight" | "bias")] => format!("layers.{layer}.ff.up.{w}"),
        ["ff", "fc2", w @ ("weight" | "bias")] => format!("layers.{layer}.ff.down.{w}"),
        _ => return unknown(),
    };
    Ok(Some(mapped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_store::bridge;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// Every tensor of scripts/make_official_fixture.py, in its order: (name, shape).
    fn expected() -> Vec<(String, Vec<usize>)> {
        let (v, h, k, d, inner, lim, l) = (11, 8, 2, 4, 12, 3, 2);
        let mut out = vec![("in_emb.weight".to_string(), vec![v, h])];
        for layer in 0..l {
            let p = format!("layers.{layer}.");
            for (name, shape) in [
                ("attn.attn.key_pe", vec![1, d, lim]),
                ("attn.proj_query.weight", vec![k * d, h]),
                ("attn.proj_out.weight", vec![h, k * d]),
                ("attn.proj_val.weight", vec![k * d, h]),
                ("attn.proj_key.weight", vec![k * d, h]),
                ("ff.fc1.weight", vec![inner, h]),
                ("ff.fc1.bias", vec![inner]),
                ("ff.fc2.weight", vec![h, inner]),
                ("ff.fc2.bias", vec![h]),
                ("norm1.weight", vec![h]),
                ("norm1.bias", vec![h]),
                ("norm2.weight", vec![h]),
                ("norm2.bias", vec![h]),
            ] {
                out.push((p.clone() + name, shape));
            }
        }
        for (name, shape) in [
            ("out.out_emb.weight", vec![v, h]),
            ("out.out_emb.bias", vec![v]),
            ("out_norm.weight", vec![h]),
            ("out_norm.bias", vec![h]),
            ("single_memory_attn_params", vec![1, l + 1]),
            ("single_memory_attn_buf", vec![1, l + 1]),
        ] {
            out.push((name.to_string(), shape));
        }
        out
    }

    fn values(t: &PackTensor) -> Vec<f32> {
        bridge::to_data(t).unwrap().try_to_vec::<f32>().unwrap()
    }

    /// The DDP checkpoint and the bare state dict read to the same tensors: every official
    /// name without `module.`, its shape, and its values (tensor i holds i + 0.001·k; a tensor
    /// tied to layer 0's holds layer 0's values).
    #[test]
    fn official_checkpoints_read_by_name_shape_and_value() {
        let want = expected();
        for file in ["official_feedback.pt", "official_feedback_state_dict.pt"] {
            let tensors = read_official(&fixture(file)).unwrap();
            let names: Vec<&String> = tensors.keys().collect();
            let mut want_names: Vec<&String> = want.iter().map(|(n, _)| n).collect();
            want_names.sort();
            assert_eq!(names, want_names, "{file}");
            let index = |name: &str| want.iter().position(|(n, _)| n == name).unwrap();
            for (i, (name, shape)) in want.iter().enumerate() {
                let t = &tensors[name];
                assert_eq!(&t.shape.to_vec(), shape, "{file}: {name}");
                let tied = name
                    .strip_prefix("layers.1.")
                    .filter(|rest| {
                        matches!(
                            *rest,
                            "attn.attn.key_pe"
                                | "attn.proj_key.weight"
                                | "attn.proj_val.weight"
                                | "norm1.weight"
                                | "norm1.bias"
                        )
                    })
                    .map(|rest| index(&format!("layers.0.{rest}")));
                let first = tied.unwrap_or(i) as f32;
                let got = values(t);
                for (k, v) in got.iter().enumerate() {
                    let want = first + 0.001 * k as f32;
                    assert!(
                        (v - want).abs() < 1e-6,
                        "{file}: {name}[{k}] = {v}, want {want}"
                    );
                }
            }
        }
    }

    /// A file that is no PyTorch checkpoint is an error naming the file.
    #[test]
    fn other_files_fail_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-checkpoint.pt");
        std::fs::write(&path, b"definitely not a zip or a pickle").unwrap();
        let err = read_official(&path).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}: not a PyTorch checkpoint", path.display())),
            "{text}"
        );
    }

    /// Every tensor of the fixture has a counterpart (but the buffer), as the table says.
    #[test]
    fn every_official_name_has_a_counterpart() {
        let shared = |_l: usize| 0;
        let per_layer = |l: usize| l;
        for (name, _) in expected() {
            let mapped = mnemo_counterpart(&name, shared).unwrap();
            assert_eq!(mapped.is_none(), name == "single_memory_attn_buf", "{name}");
        }
        let cases = [
            ("in_emb.weight", "embed.weight"),
            ("layers.1.attn.proj_query.weight", "layers.1.attn.q.weight"),
            ("layers.1.attn.proj_key.weight", "kv.0.k.weight"),
            ("layers.1.attn.attn.key_pe", "layers.1.attn.pos"),
            ("layers.0.norm1.bias", "layers.0.attn_norm.bias"),
            ("layers.1.ff.fc2.weight", "layers.1.ff.down.weight"),
            ("single_memory_attn_params", "mix"),
            ("out.out_emb.bias", "head.bias"),
        ];
        for (official, mnemo) in cases {
            assert_eq!(mnemo_counterpart(official, shared).unwrap().unwrap(), mnemo);
        }
        assert_eq!(
            mnemo_counterpart("layers.1.attn.proj_val.weight", per_layer).unwrap(),
            Some("kv.1.v.weight".into())
        );
        assert_eq!(
            mnemo_counterpart("layers.0.attn.adaptive_span.x", shared),
            Err("layers.0.attn.adaptive_span.x".into())
        );
        assert_eq!(
            mnemo_counterpart("layers.1.attn.attn.adaptive_span.mask.size_ratio", shared),
            Ok(Some("layers.1.attn.span".into()))
        );
        assert_eq!(
            mnemo_counterpart(
                "layers.1.attn.attn.adaptive_span.mask.mask_template",
                shared
            ),
            Ok(None)
        );
        assert_eq!(
            mnemo_counterpart(
                "layers.x.attn.attn.adaptive_span.mask.mask_template",
                shared
            ),
            Err("layers.x.attn.attn.adaptive_span.mask.mask_template".into())
        );
    }
}
