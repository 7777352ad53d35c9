//! A mnemo Feedback model, or a Transformer-XL that is the official baseline `TransformerSeq`,
//! as the official code's state dict (`mnemo export RUN --format official`, issue 18 §3): the
//! inverse of [`crate::official_import`]. Every official tensor is
//! made from the mnemo tensor the import would fill it from (a tied official copy from the one
//! mnemo tensor), the rows in the official dictionary's order, `key_pe` from `pos`, the
//! buffer `single_memory_attn_buf` = softmax(mix), and with adaptive span (`--adapt-span`) each
//! layer's `size_ratio` from its `span` and the buffer `mask_template`.
//!
//! The file is safetensors with the official names and shapes, and the official flags as JSON
//! in its `official.flags` metadata: `mnemo import official` reads it back, and
//! `scripts/official_checkpoint.py` turns it into the `torch.save` checkpoint the official
//! `main.py --checkpoint` loads. Only a model the official code can express exports: ReLU, no
//! attention biases, LayerNorm, one position table, the official carry (pre-norm) or the raw one
//! (post-norm), a memory of the mix, and (pre-norm) memory-side norms equal to the norm1 they
//! stand for; anything else is an error naming the field.
use std::collections::BTreeMap;
use std::path::Path;

use burn_store::burn_pack::Tensor as PackTensor;
use mnemo_core::{Activation, NormKind, NormPlacement};
use mnemo_models::feedback::{Carry, MemorySource};
use mnemo_models::span_config::AdaptiveSpanSettings;
use mnemo_models::{FeedbackConfig, Model, ModelConfig, TransformerXlConfig};

use crate::error::TrainError;
use crate::official_import::{
    MASK_TEMPLATE, OfficialFlags, SIZE_RATIO, Transform, mask_template, official_source,
    transform_back, values,
};
use crate::official_vocab::OfficialRows;
use crate::trainer::write_atomic;
use crate::weights::torch_tensors;

/// One official tensor: name, shape, f32 values (row-major).
pub type OfficialTensor = (String, Vec<usize>, Vec<f32>);

/// Metadata key of the official flags (JSON) in an exported file.
pub const FLAGS_KEY: &str = "official.flags";

/// The official flags of a mnemo model config's sizes, head size, dropout and placement (the
/// other flags: defaults), after the checks both official models make ([`check_common`]).
macro_rules! official_sizes {
    ($config:expr) => {
        check_common(
            $config.activation,
            $config.bias,
            $config.norm,
            $config.tie_positions,
        )
        .map(|()| OfficialFlags {
            hid_sz: $config.d_model,
            inner_hid_sz: $config.d_ff,
            nlayers: $config.n_layers,
            nheads: $config.n_heads,
            head_dim: mnemo_core::heads::head_size(
                $config.d_model,
                $config.n_heads,
                $config.d_head,
            ),
            dropout: $config.dropout,
            pre_norm: $config.placement == NormPlacement::Pre,
            ..span_flags($config.adaptive_span)
        })
    };
}

/// The default official flags with `--adapt-span` and its flags of `adaptive_span` (mnemo's
/// `trim = false` computes the same outputs, so it is not a flag).
fn span_flags(adaptive_span: Option<AdaptiveSpanSettings>) -> OfficialFlags {
    let default = OfficialFlags::default();
    match adaptive_span {
        None => default,
        Some(a) => OfficialFlags {
            adapt_span: true,
            adapt_span_loss: a.loss,
            adapt_span_len: a.ramp as f64,
            adapt_span_init: a.init,
            adapt_span_trim_step: a.trim_step,
            adapt_span_layer: !a.per_head,
            ..default
        },
    }
}

/// `Err((field, why))`: the official code has `want` only.
fn refuse<T>(field: &str, want: &str) -> Result<T, (String, String)> {
    Err((
        field.to_string(),
        format!("the official code has {want} only"),
    ))
}

/// The checks both official models make: ReLU, no attention biases, LayerNorm, one position
/// table.
fn check_common(
    activation: Activation,
    bias: bool,
    norm: NormKind,
    tie_positions: bool,
) -> Result<(), (String, String)> {
    if activation != Activation::Relu {
        return refuse("activation", "\"relu\"");
    }
    if bias {
        return refuse("bias", "attention projections without bias (bias = false)");
    }
    if norm != NormKind::Layer {
        return refuse("norm", "LayerNorm (norm = \"layer\")");
    }
    if !tie_positions {
        return refuse("tie_positions", "one position table (tie_positions = true)");
    }
    Ok(())
}

impl OfficialFlags {
    /// The official flags of a model of `config` trained on blocks of `mem_sz`: a Feedback
    /// Transformer, or a Transformer-XL that is the official `TransformerSeq`; `Err` names the
    /// field the official code cannot express.
    pub fn of(config: &ModelConfig, mem_sz: usize) -> Result<Self, (String, String)> {
        match config {
            ModelConfig::Feedback(c) => Self::of_feedback(c, mem_sz),
            ModelConfig::TransformerXl(c) => Self::of_transformer_seq(c, mem_sz),
            other => Err((
                "kind".into(),
                format!(
                    "only Feedback models and Transformer-XLs (as the official TransformerSeq) \
                     export to the official format, not {}",
                    other.kind()
                ),
            )),
        }
    }

    /// The official flags of a Transformer-XL that computes what the official `TransformerSeq`
    /// computes: earlier positions only, a zero initial memory, one memory length and the
    /// table of exactly those distances.
    fn of_transformer_seq(
        config: &TransformerXlConfig,
        mem_sz: usize,
    ) -> Result<Self, (String, String)> {
        let sizes = official_sizes!(config)?;
        if config.attend_self {
            return refuse(
                "attend_self",
                "positions that do not attend to themselves (false)",
            );
        }
        if !config.zero_memory {
            return refuse("zero_memory", "a zero initial memory (true)");
        }
        let lens = config
            .memory_lens()
            .map_err(|e| (e.field.clone(), e.message.clone()))?;
        let attn_lim = lens[0];
        if lens.iter().any(|&m| m != attn_lim) {
            return refuse("memory_schedule", "one memory length for every layer");
        }
        if config.relative_span.is_some_and(|p| p != attn_lim) {
            return refuse(
                "relative_span",
                "a position table of exactly the memory length (relative_span absent)",
            );
        }
        Ok(Self {
            mem_sz,
            attn_lim,
            share_proj_kv: false,
            feedback: false,
            ..sizes
        })
    }

    /// The official flags of a Feedback model of `config`.
    fn of_feedback(config: &FeedbackConfig, mem_sz: usize) -> Result<Self, (String, String)> {
        let sizes = official_sizes!(config)?;
        if config.memory != MemorySource::Mix {
            return refuse("memory", "the mix of all layers (memory = \"mix\")");
        }
        let carry = match config.placement == NormPlacement::Pre {
            true => Carry::Official,
            false => Carry::Raw,
        };
        if config.carry != carry {
            return refuse(
                "carry",
                "carry = \"official\" with pre-norm and \"raw\" with post-norm",
            );
        }
        Ok(Self {
            mem_sz,
            attn_lim: config.span,
            share_proj_kv: config.share_kv,
            feedback: true,
            ..sizes
        })
    }

    /// The names of the official model's state dict, in its order.
    pub fn state_dict_names(&self) -> Vec<String> {
        let mut names = vec!["in_emb.weight".to_string()];
        for l in 0..self.nlayers {
            names.push(format!("layers.{l}.attn.attn.key_pe"));
            if self.adapt_span {
                names.push(format!("layers.{l}.{SIZE_RATIO}"));
                names.push(format!("layers.{l}.{MASK_TEMPLATE}"));
            }
            for rest in [
                "attn.proj_query.weight",
                "attn.proj_out.weight",
                "attn.proj_val.weight",
                "attn.proj_key.weight",
                "ff.fc1.weight",
                "ff.fc1.bias",
                "ff.fc2.weight",
                "ff.fc2.bias",
                "norm1.weight",
                "norm1.bias",
                "norm2.weight",
                "norm2.bias",
            ] {
                names.push(format!("layers.{l}.{rest}"));
            }
        }
        names.extend(["out.out_emb.weight".into(), "out.out_emb.bias".into()]);
        if self.pre_norm {
            names.extend(["out_norm.weight".into(), "out_norm.bias".into()]);
        }
        if self.feedback {
            names.extend([
                "single_memory_attn_params".into(),
                "single_memory_attn_buf".into(),
            ]);
        }
        names
    }
}

/// The official state dict of `model` (a model of `flags`), rows in the order `rows` gives.
pub fn official_state_dict(
    model: &Model,
    flags: &OfficialFlags,
    rows: &OfficialRows,
) -> Result<Vec<OfficialTensor>, String> {
    let mnemo = torch_tensors(model);
    // official name → the mnemo tensors the import fills from it.
    let mut sources: BTreeMap<String, Vec<(&String, &PackTensor, Transform)>> = BTreeMap::new();
    for (name, tensor) in &mnemo {
        let (official, how) = official_source(name, flags)
            .ok_or_else(|| format!("mnemo's `{name}` has no official counterpart"))?;
        sources
            .entry(official)
            .or_default()
            .push((name, tensor, how));
    }
    let mut out = Vec::new();
    for name in flags.state_dict_names() {
        if name == "single_memory_attn_buf" {
            let mix = values(&mnemo["mix"]).ok_or("mix is not floating point")?;
            let max = mix.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = mix.iter().map(|x| (x - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            out.push((
                name,
                vec![1, mix.len()],
                exp.iter().map(|e| e / sum).collect(),
            ));
            continue;
        }
        if name.ends_with(MASK_TEMPLATE) {
            out.push((name, vec![flags.attn_lim], mask_template(flags.attn_lim)));
            continue;
        }
        let zero = crate::official_import::layer_zero(&name);
        let from = sources
            .get(&name)
            .or_else(|| zero.as_ref().and_then(|z| sources.get(z)))
            .ok_or_else(|| format!("no mnemo tensor gives the official `{name}`"))?;
        let (first, tensor, how) = from[0];
        let (shape, data) = transform_back(tensor, how, rows)?;
        for &(other, t, how) in &from[1..] {
            if transform_back(t, how, rows)?.1 != data {
                return Err(format!(
                    "mnemo's `{first}` and `{other}` differ but the official model has one \
                     `{name}` (tie_norms = true keeps them equal)"
                ));
            }
        }
        out.push((name, shape, data));
    }
    if flags.share_proj_kv && flags.pre_norm {
        // The official model ties norm1 across layers: every layer's must be layer 0's.
        let norm1 = |name: &str| out.iter().find(|t| t.0 == name).map(|t| &t.2);
        for l in 1..flags.nlayers {
            for w in ["weight", "bias"] {
                if norm1(&format!("layers.{l}.norm1.{w}")) != norm1(&format!("layers.0.norm1.{w}"))
                {
                    return Err(format!(
                        "layer {l}'s attention norm differs from layer 0's but the official model \
                         with --share-proj-kv has one (tie_norms = true keeps them equal)"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Write `tensors` (name, shape, f32 values) as a safetensors file at `path` with `metadata`,
/// atomically ([`write_atomic`]).
pub fn write_safetensors(
    path: &Path,
    tensors: &[OfficialTensor],
    metadata: &[(&str, String)],
) -> Result<(), TrainError> {
    let mut header = serde_json::Map::new();
    let meta: serde_json::Map<String, serde_json::Value> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().into()))
        .collect();
    header.insert("__metadata__".into(), meta.into());
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        let end = offset + 4 * data.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header)).expect("JSON");
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut bytes = Vec::with_capacity(8 + json.len() + offset);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for (_, _, data) in tensors {
        bytes.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    }
    write_atomic(path, &bytes)
}

/// Write the run's model as the official state dict (safetensors, official names, the flags in
/// [`FLAGS_KEY`]) at `path`, rows in the order of the official dictionary of `official_data`
/// (the official `--data` directory). Returns the flags.
pub fn export_official_run(
    run: &crate::LoadedRun,
    official_data: &Path,
    path: &Path,
) -> Result<OfficialFlags, TrainError> {
    let bad = |reason: String| TrainError::BadFile {
        path: run.dir.config(),
        message: reason,
    };
    let flags = OfficialFlags::of(&run.model_config, run.config.train.segment_len)
        .map_err(|(field, why)| bad(format!("models.{}.{field}: {why}", run.model_name)))?;
    let dictionary = crate::official_vocab::official_dictionary(official_data)?;
    let bytes = matches!(run.config.data, mnemo_data::TaskConfig::Bytes(_));
    let rows =
        OfficialRows::of(&run.vocab, dictionary, bytes).map_err(|reason| TrainError::Flag {
            flag: format!("--data {}", official_data.display()),
            reason,
        })?;
    let tensors = official_state_dict(&run.model, &flags, &rows).map_err(bad)?;
    let json = serde_json::to_string(&flags).expect("flags serialise");
    write_safetensors(path, &tensors, &[(FLAGS_KEY, json)])?;
    Ok(flags)
}
