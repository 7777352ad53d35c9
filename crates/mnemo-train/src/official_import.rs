//! A model trained with the Feedback Transformer's official code (facebookresearch/
//! transformer-sequential; Fan et al. 2020) as a mnemo model: the official flags as a
//! [`FeedbackConfig`] or a [`TransformerXlConfig`] ([`OfficialFlags::model_config`]) and the official checkpoint's tensors
//! under mnemo's names ([`official_tensors`]), so the imported model computes what the official
//! code computes (tested against log-probabilities the official code wrote,
//! `tests/official_parity.rs`).
//!
//! Every mnemo tensor is taken from one official tensor ([`official_source`]):
//!
//! ```text
//! embed.weight            in_emb.weight                   rows in mnemo's token order
//! head.{weight,bias}      out.out_emb.{weight,bias}        rows in mnemo's token order
//! final_norm.*            out_norm.*
//! mix [L+1]               single_memory_attn_params [1, L+1]
//! layers.l.attn.q/o       layers.l.attn.proj_query/proj_out
//! pos [S,Dh] (tied)       layers.0.attn.attn.key_pe [1,Dh,S]   pos[d] = key_pe[0,:,S-1-d]
//! layers.l.attn.pos       layers.l.attn.attn.key_pe            (untied: the same per layer)
//! layers.l.attn_norm.*    layers.l.norm1.*
//! layers.l.ff_norm.*      layers.l.norm2.*
//! layers.l.ff.up/down.*   layers.l.ff.fc1/fc2.*
//! kv.p.k/v.weight         layers.p.attn.proj_key/proj_val.weight   (p = 0 with --share-proj-kv)
//! kv.p.norm.*             layers.p.norm1.*                (pre-norm: the memory's norm is norm1)
//! layers.l.attn.k/v       layers.l.attn.proj_key/proj_val  (TransformerSeq: per layer)
//! layers.l.attn.span [H]  layers.l.attn.attn.adaptive_span.mask.size_ratio [H,1,1]
//!                         (--adapt-span; [1] and [1] with --adapt-span-layer)
//! ```
//!
//! The official baseline `TransformerSeq` (without `--feedback`) imports as a Transformer-XL
//! ([`OfficialFlags::transformer_seq_config`]); its table `pos` is layer 0's
//! (`layers.0.attn.pos`), which the other layers read.
//!
//! An official tensor no mnemo tensor takes is an error naming it, unless it is a tied copy
//! (same name but for the layer, same values) of one taken: `--share-proj-kv` ties
//! `proj_key`/`proj_val`/`norm1`, and every layer shares layer 0's `key_pe`. The buffer
//! `single_memory_attn_buf` is not a weight, nor is `--adapt-span`'s buffer
//! `layers.l.attn.attn.adaptive_span.mask.mask_template` (checked to be the template of the
//! flags' `--attn-lim`).
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::tensor::{Device, TensorData};
use burn_store::bridge;
use burn_store::burn_pack::Tensor as PackTensor;
use mnemo_core::{Activation, NormKind, NormPlacement};
use mnemo_models::feedback::{Carry, MemorySource};
use mnemo_models::span_config::AdaptiveSpanSettings;
use mnemo_models::{FeedbackConfig, Model, ModelConfig, TransformerXlConfig};
use serde::{Deserialize, Serialize};

use mnemo_data::TaskConfig;

use crate::error::TrainError;
use crate::experiment::ExperimentConfig;
use crate::model_table::ModelEntry;
use crate::official::read_official;
use crate::official_vocab::{OfficialRows, official_dictionary};
use crate::weights::{Problem, TensorName, WeightsError, import_tensors, tensor_names};
use crate::weights_run::{ImportedRun, write_imported_run};

/// The official model flags (`main.py`, `models/transformer_seq.py`, `models/feedback.py`), by
/// their names with `-` written `_`; [`Default`] holds `main.py`'s defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OfficialFlags {
    /// `--hid-sz`: width.
    pub hid_sz: usize,
    /// `--inner-hid-sz`: feed-forward width.
    pub inner_hid_sz: usize,
    /// `--nlayers`.
    pub nlayers: usize,
    /// `--nheads`.
    pub nheads: usize,
    /// `--head-dim` (0: hid_sz / nheads).
    pub head_dim: usize,
    /// `--mem-sz`: the block (segment) length.
    pub mem_sz: usize,
    /// `--attn-lim`: the attention span.
    pub attn_lim: usize,
    /// `--dropout`.
    pub dropout: f64,
    /// `--pre-norm`.
    pub pre_norm: bool,
    /// `--share-proj-kv`.
    pub share_proj_kv: bool,
    /// `--feedback` (without it the model is the official `TransformerSeq`).
    pub feedback: bool,
    /// `--adapt-span`: adaptive attention span (Sukhbaatar et al. 2019) in every layer.
    pub adapt_span: bool,
    /// `--adapt-span-loss`: the span loss coefficient.
    pub adapt_span_loss: f64,
    /// `--adapt-span-len`: the ramp length (a float in the official code; mnemo's is whole).
    pub adapt_span_len: f64,
    /// `--adapt-span-init`: the initial span ratio.
    pub adapt_span_init: f64,
    /// `--adapt-span-trim-step`.
    pub adapt_span_trim_step: usize,
    /// `--adapt-span-layer`: one span per layer instead of one per head.
    pub adapt_span_layer: bool,
    /// `--adapt-span-cache`: the official TransformerSeq keeps a cache only as long as the
    /// widest span needs (the same outputs); the official Feedback model refuses it.
    pub adapt_span_cache: bool,
}

impl Default for OfficialFlags {
    fn default() -> Self {
        Self {
            hid_sz: 256,
            inner_hid_sz: 1024,
            nlayers: 8,
            nheads: 2,
            head_dim: 0,
            mem_sz: 64,
            attn_lim: 64,
            dropout: 0.2,
            pre_norm: false,
            share_proj_kv: false,
            feedback: false,
            adapt_span: false,
            adapt_span_loss: 0.0,
            adapt_span_len: 32.0,
            adapt_span_init: 0.0,
            adapt_span_trim_step: 64,
            adapt_span_layer: false,
            adapt_span_cache: false,
        }
    }
}

impl OfficialFlags {
    /// The head size the official code uses.
    pub fn head_dim(&self) -> usize {
        mnemo_core::heads::head_size(self.hid_sz, self.nheads.max(1), self.head_dim)
    }

    /// The mnemo model computing what the official model of these flags computes, over a
    /// vocabulary of `vocab` tokens (0: the data's): [`feedback_config`](Self::feedback_config)
    /// with `--feedback`, else [`transformer_seq_config`](Self::transformer_seq_config).
    pub fn model_config(&self, vocab: usize) -> Result<ModelConfig, (String, String)> {
        let config = match self.feedback {
            true => ModelConfig::Feedback(self.feedback_config(vocab)?),
            false => ModelConfig::TransformerXl(self.transformer_seq_config(vocab)?),
        };
        let mut sized = config.clone();
        sized.set_vocab_size(vocab.max(1));
        sized
            .validate()
            .map_err(|e| ("the official flags".to_string(), e.to_string()))?;
        Ok(config)
    }

    /// The `adaptive_span` table of `--adapt-span` and its flags (`None` without it); `Err`
    /// names the flag mnemo cannot express: a ramp `--adapt-span-len` that is not a whole
    /// number ≥ 1, a `--adapt-span-trim-step` of 0, `--adapt-span-cache` on a Feedback model (the
    /// official code refuses it too; on TransformerSeq it changes nothing the model computes,
    /// and mnemo's trimming stands for it).
    pub fn adaptive_span(&self) -> Result<Option<AdaptiveSpanSettings>, (String, String)> {
        if !self.adapt_span {
            return Ok(None);
        }
        let ramp = self.adapt_span_len;
        if !(ramp >= 1.0 && ramp.fract() == 0.0 && ramp <= u32::MAX as f64) {
            return Err((
                "--adapt-span-len".into(),
                format!("mnemo's ramp is a whole number of positions ≥ 1, not {ramp}"),
            ));
        }
        if self.adapt_span_trim_step == 0 {
            return Err(("--adapt-span-trim-step".into(), "must be at least 1".into()));
        }
        if self.adapt_span_cache && self.feedback {
            return Err((
                "--adapt-span-cache".into(),
                "the official Feedback model does not support it (its trimming is mnemo's)".into(),
            ));
        }
        Ok(Some(AdaptiveSpanSettings {
            ramp: ramp as usize,
            loss: self.adapt_span_loss,
            init: self.adapt_span_init,
            per_head: !self.adapt_span_layer,
            trim_step: self.adapt_span_trim_step,
            trim: true,
        }))
    }

    /// The placement of `--pre-norm`.
    fn placement(&self) -> NormPlacement {
        match self.pre_norm {
            true => NormPlacement::Pre,
            false => NormPlacement::Post,
        }
    }

    /// The mnemo model computing what the official baseline `TransformerSeq`
    /// (`models/transformer_seq.py`) of these flags computes: a Transformer-XL whose positions
    /// see exactly the `attn_lim` positions before them (not themselves) from a zero initial
    /// memory, with ReLU, no attention biases, one position table and the official head size.
    /// `Err` names the flag mnemo cannot express ([`adaptive_span`](Self::adaptive_span)).
    pub fn transformer_seq_config(
        &self,
        vocab: usize,
    ) -> Result<TransformerXlConfig, (String, String)> {
        Ok(TransformerXlConfig {
            vocab_size: vocab,
            d_model: self.hid_sz,
            n_layers: self.nlayers,
            n_heads: self.nheads,
            d_ff: self.inner_hid_sz,
            memory_len: Some(self.attn_lim),
            memory_schedule: None,
            long_range_layers: None,
            long_memory_len: None,
            short_memory_len: None,
            relative_span: None,
            adaptive_span: self.adaptive_span()?,
            dropout: self.dropout,
            norm: NormKind::Layer,
            placement: self.placement(),
            activation: Activation::Relu,
            bias: false,
            tie_positions: true,
            d_head: self.head_dim(),
            attend_self: false,
            zero_memory: true,
        })
    }

    /// The mnemo model computing what the official Feedback Transformer of these flags
    /// computes, over a vocabulary of `vocab` tokens (0: the data's): ReLU, no attention biases,
    /// one position table, the layer's norm on the memory, the official carry, and the official
    /// head size. `Err` names the flag mnemo cannot express (`--feedback` missing: see
    /// [`transformer_seq_config`](Self::transformer_seq_config)).
    pub fn feedback_config(&self, vocab: usize) -> Result<FeedbackConfig, (String, String)> {
        if !self.feedback {
            return Err((
                "--feedback".into(),
                "without it the official model is the baseline TransformerSeq, a \
                 Transformer-XL in mnemo (OfficialFlags::transformer_seq_config)"
                    .into(),
            ));
        }
        Ok(FeedbackConfig {
            vocab_size: vocab,
            d_model: self.hid_sz,
            n_layers: self.nlayers,
            n_heads: self.nheads,
            d_ff: self.inner_hid_sz,
            span: self.attn_lim,
            adaptive_span: self.adaptive_span()?,
            dropout: self.dropout,
            norm: NormKind::Layer,
            placement: self.placement(),
            share_kv: self.share_proj_kv,
            memory: MemorySource::Mix,
            // The official post-norm code carries memories as they are.
            carry: match self.pre_norm {
                true => Carry::Official,
                false => Carry::Raw,
            },
            activation: Activation::Relu,
            bias: false,
            tie_positions: true,
            // The layer's norm on the memory it reads (post-norm: no norm); with pre-norm and
            // --share-proj-kv one norm1 for every layer (copies kept equal in training).
            tie_norms: true,
            d_head: self.head_dim(),
        })
    }
}

/// How a mnemo tensor is made from its official source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    /// As it is.
    Same,
    /// Rows picked in mnemo's token order.
    Rows,
    /// `[1, n]` → `[n]`.
    Flatten,
    /// `key_pe [1, Dh, S]` → `pos [S, Dh]`, row d = slot S-1-d.
    Positions,
    /// `size_ratio [H, 1, 1]` → `span [H]` (one span per head).
    HeadRatios,
}

/// The official name of layer `l`'s span ratios (`--adapt-span`).
pub const SIZE_RATIO: &str = "attn.attn.adaptive_span.mask.size_ratio";

/// The official name of layer `l`'s mask template buffer (`--adapt-span`): not a weight, the
/// distances `linspace(1 − S, 0, S)` ([`mask_template`]).
pub const MASK_TEMPLATE: &str = "attn.attn.adaptive_span.mask.mask_template";

/// The values of the official buffer [`MASK_TEMPLATE`] of span `attn_lim`: `1 − S, …, 0`.
pub fn mask_template(attn_lim: usize) -> Vec<f32> {
    (0..attn_lim)
        .map(|i| i as f32 + 1.0 - attn_lim as f32)
        .collect()
}

/// Whether the official `name` is a buffer, not a weight: `single_memory_attn_buf`, or a
/// layer's [`MASK_TEMPLATE`].
pub fn is_official_buffer(name: &str) -> bool {
    name == "single_memory_attn_buf"
        || name
            .strip_prefix("layers.")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(l, rest)| l.parse::<usize>().is_ok() && rest == MASK_TEMPLATE)
}

/// The official tensor a mnemo tensor (file name of [`crate::weights`]) is taken from, for a
/// model of `flags`; `None` when the official model has no such tensor.
pub(crate) fn official_source(name: &str, flags: &OfficialFlags) -> Option<(String, Transform)> {
    use Transform::*;
    let fixed = match name {
        "embed.weight" => Some(("in_emb.weight", Rows)),
        "head.weight" => Some(("out.out_emb.weight", Rows)),
        "head.bias" => Some(("out.out_emb.bias", Rows)),
        "final_norm.weight" if flags.pre_norm => Some(("out_norm.weight", Same)),
        "final_norm.bias" if flags.pre_norm => Some(("out_norm.bias", Same)),
        "mix" => Some(("single_memory_attn_params", Flatten)),
        // `tie_positions`: the one table every layer reads (the official layers share layer 0's).
        "pos" => Some(("layers.0.attn.attn.key_pe", Positions)),
        _ => None,
    };
    if let Some((official, how)) = fixed {
        return Some((official.to_string(), how));
    }
    let parts: Vec<&str> = name.split('.').collect();
    let (group, index, rest) = match parts.as_slice() {
        [group @ ("layers" | "kv"), i, rest @ ..] => (*group, i.parse::<usize>().ok()?, rest),
        _ => return None,
    };
    let (path, how) = match (group, rest) {
        ("layers", ["attn", "q", "weight"]) => ("attn.proj_query.weight".to_string(), Same),
        ("layers", ["attn", "o", "weight"]) => ("attn.proj_out.weight".into(), Same),
        ("layers", ["attn", "pos"]) => ("attn.attn.key_pe".into(), Positions),
        // --adapt-span: [H, 1, 1] per head, [1] with --adapt-span-layer.
        ("layers", ["attn", "span"]) if flags.adapt_span => (
            SIZE_RATIO.to_string(),
            match flags.adapt_span_layer {
                true => Same,
                false => HeadRatios,
            },
        ),
        // TransformerSeq's attention projects its own layer's inputs.
        ("layers", ["attn", "k", "weight"]) => ("attn.proj_key.weight".into(), Same),
        ("layers", ["attn", "v", "weight"]) => ("attn.proj_val.weight".into(), Same),
        ("layers", ["attn_norm", w]) => (format!("norm1.{w}"), Same),
        ("layers", ["ff_norm", w]) => (format!("norm2.{w}"), Same),
        ("layers", ["ff", "up", w]) => (format!("ff.fc1.{w}"), Same),
        ("layers", ["ff", "down", w]) => (format!("ff.fc2.{w}"), Same),
        ("kv", ["k", "weight"]) => ("attn.proj_key.weight".into(), Same),
        ("kv", ["v", "weight"]) => ("attn.proj_val.weight".into(), Same),
        ("kv", ["norm", w]) if flags.pre_norm => (format!("norm1.{w}"), Same),
        _ => return None,
    };
    Some((format!("layers.{index}.{path}"), how))
}

/// The f32 values of `tensor` (any float type).
pub(crate) fn values(tensor: &PackTensor) -> Option<Vec<f32>> {
    let data = bridge::to_data(tensor).ok()?;
    data.convert::<f32>().try_into_vec::<f32>().ok()
}

/// `source` made into the mnemo tensor `name` of shape `shape` by `how`; `Err` says why not.
fn transformed(
    source: &PackTensor,
    name: &str,
    shape: &[usize],
    how: Transform,
    rows: &OfficialRows,
) -> Result<PackTensor, String> {
    let found = source.shape.to_vec();
    let v = values(source).ok_or("not a floating-point tensor")?;
    let wrong = || format!("shape {found:?} cannot become mnemo's {shape:?}");
    let out = match how {
        Transform::Same if found == shape => v,
        Transform::Flatten
            if found.iter().product::<usize>() == shape.iter().product::<usize>() =>
        {
            v
        }
        Transform::Rows if found.len() == shape.len() && found[0] == rows.official.len() => {
            let width: usize = found[1..].iter().product();
            if found[1..] != shape[1..] || shape[0] != rows.rows.len() {
                return Err(wrong());
            }
            // A token the official dictionary lacks: zero weights, and a bias that gives it
            // no probability.
            let absent = if name.ends_with("bias") { -1e4 } else { 0.0 };
            rows.rows
                .iter()
                .flat_map(|r| match r {
                    Some(r) => v[r * width..(r + 1) * width].to_vec(),
                    None => vec![absent; width],
                })
                .collect()
        }
        Transform::HeadRatios if found == [shape[0], 1, 1] => v,
        Transform::Positions if found.len() == 3 && [found[2], found[1]] == shape => {
            let (dh, s) = (found[1], found[2]);
            (0..s)
                .flat_map(|d| (0..dh).map(move |k| (d, k)))
                .map(|(d, k)| v[k * s + (s - 1 - d)])
                .collect()
        }
        _ => return Err(wrong()),
    };
    Ok(bridge::from_data(
        TensorData::new(out, shape.to_vec()),
        name.to_string(),
        None,
    ))
}

/// The official shape and values of the mnemo tensor `tensor` taken from an official tensor by
/// `how` (the inverse of [`transformed`]): official rows mnemo has no token for get zero weights
/// and a bias of −1e4.
pub(crate) fn transform_back(
    tensor: &PackTensor,
    how: Transform,
    rows: &OfficialRows,
) -> Result<(Vec<usize>, Vec<f32>), String> {
    let shape = tensor.shape.to_vec();
    let v = values(tensor).ok_or_else(|| format!("`{}` is not floating point", tensor.name))?;
    Ok(match how {
        Transform::Same => (shape, v),
        Transform::Flatten => (vec![1, v.len()], v),
        Transform::HeadRatios => (vec![v.len(), 1, 1], v),
        Transform::Rows => {
            let width: usize = shape[1..].iter().product();
            let absent = if shape.len() == 1 { -1e4 } else { 0.0 };
            let mut out = vec![absent; rows.official.len() * width];
            for (i, r) in rows.rows.iter().enumerate() {
                if let Some(r) = r {
                    out[r * width..(r + 1) * width].copy_from_slice(&v[i * width..(i + 1) * width]);
                }
            }
            let mut official = shape;
            official[0] = rows.official.len();
            (official, out)
        }
        Transform::Positions => {
            let (s, dh) = (shape[0], shape[1]);
            let mut out = vec![0.0; dh * s];
            for d in 0..s {
                for k in 0..dh {
                    out[k * s + (s - 1 - d)] = v[d * dh + k];
                }
            }
            (vec![1, dh, s], out)
        }
    })
}

/// The official tensor `name` with the layer index 0 (`layers.3.x` → `layers.0.x`).
pub(crate) fn layer_zero(name: &str) -> Option<String> {
    let rest = name.strip_prefix("layers.")?;
    let (_, tail) = rest.split_once('.')?;
    Some(format!("layers.0.{tail}"))
}

/// The tensors of a mnemo model whose tensors are `expected` (file names and shapes of
/// [`tensor_names`]) made from the official `official` ones (see the [module docs](self)); every
/// problem named by its official tensor.
pub fn official_tensors(
    official: &BTreeMap<String, PackTensor>,
    expected: &[TensorName],
    flags: &OfficialFlags,
    rows: &OfficialRows,
) -> Result<BTreeMap<String, PackTensor>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut out = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for n in expected {
        let Some((source, how)) = official_source(&n.pytorch, flags) else {
            problems.push(Problem::File(format!(
                "mnemo's `{}` has no counterpart in an official model of these flags",
                n.pytorch
            )));
            continue;
        };
        let Some(tensor) = official.get(&source) else {
            problems.push(Problem::Missing(source));
            continue;
        };
        match transformed(tensor, &n.pytorch, &n.shape, how, rows) {
            Ok(t) if values(&t).is_some_and(|v| v.iter().all(|x| x.is_finite())) => {
                out.insert(n.pytorch.clone(), t);
            }
            Ok(_) => problems.push(Problem::NonFinite(source.clone())),
            Err(reason) => problems.push(Problem::File(format!("`{source}`: {reason}"))),
        }
        taken.insert(source);
    }
    for (name, tensor) in official {
        if name.ends_with(MASK_TEMPLATE) && is_official_buffer(name) {
            // A buffer, but only the one of these flags.
            let want = mask_template(flags.attn_lim);
            if !flags.adapt_span || values(tensor).as_ref() != Some(&want) {
                problems.push(Problem::File(format!(
                    "`{name}` is not the mask template of --adapt-span with --attn-lim {} \
                     (shape {:?})",
                    flags.attn_lim,
                    tensor.shape.to_vec()
                )));
            }
            continue;
        }
        if taken.contains(name) || is_official_buffer(name) {
            continue;
        }
        let tied = layer_zero(name)
            .filter(|zero| taken.contains(zero))
            .is_some_and(|zero| values(&official[&zero]) == values(tensor));
        if !tied {
            problems.push(Problem::Unexpected(name.clone()));
        }
    }
    match problems.is_empty() {
        true => Ok(out),
        false => Err(problems),
    }
}

/// A mnemo model of `config` on `device` with the weights of the official checkpoint at `path`
/// (a model of `flags`), embedding and output rows in the order `rows` gives.
pub fn import_official_model(
    path: &Path,
    flags: &OfficialFlags,
    config: &ModelConfig,
    rows: &OfficialRows,
    device: &Device,
) -> Result<Model, WeightsError> {
    let official = read_official(path)?;
    let model = ModelEntry::init(config, device);
    let expected = tensor_names(&model);
    let tensors =
        official_tensors(&official, &expected, flags, rows).map_err(|problems| WeightsError {
            path: path.to_path_buf(),
            problems,
        })?;
    import_tensors(model, &tensors, path)
}

/// Make the run directory `out` for the official checkpoint at `path` (a model of `flags`):
/// `config` gives the data, training and optimizer settings, its model `model_name` is replaced
/// (or added) by the official model ([`OfficialFlags::feedback_config`]) and `train.segment_len`
/// becomes `--mem-sz`; embedding and output rows are reordered from the official dictionary of
/// `official_data` (the official `--data` directory, see [`crate::official_vocab`]) to the
/// config's vocabulary. The run is at step 0 with fresh optimizer moments, as
/// [`import_run`](crate::weights_run::import_run) makes it.
pub fn import_official_run(
    path: &Path,
    flags: &OfficialFlags,
    official_data: &Path,
    config: &ExperimentConfig,
    model_name: &str,
    out: &Path,
    device: &Device,
) -> Result<ImportedRun, TrainError> {
    let model = flags
        .model_config(0)
        .map_err(|(flag, reason)| TrainError::Flag { flag, reason })?;
    let mut config = config.clone();
    config.models.insert(model_name.to_string(), model);
    config.train.segment_len = flags.mem_sz;
    let bytes = matches!(config.data, TaskConfig::Bytes(_));
    let dictionary = official_dictionary(official_data)?;
    write_imported_run(&config, model_name, out, device, |model_config, vocab| {
        let rows =
            OfficialRows::of(vocab, dictionary, bytes).map_err(|reason| TrainError::Flag {
                flag: format!("--data {}", official_data.display()),
                reason,
            })?;
        Ok(import_official_model(
            path,
            flags,
            model_config,
            &rows,
            device,
        )?)
    })
}
