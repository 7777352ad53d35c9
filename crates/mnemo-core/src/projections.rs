//! The parts every multi-head attention block has (causal, bidirectional and cross attention),
//! built in one place: query, key, value and output projections, the output dropout and the
//! head count. A [`CrossAttention`] is exactly these parts; the self-attention blocks move them
//! into their own fields beside their position terms, so each record layout stays its own.
use burn::nn::{DropoutConfig, LinearConfig};
use burn::tensor::Device;

use crate::attention::scaled_linear;
use crate::cross_attention::CrossAttention;

/// The parts of an attention block over width `d_model` with `n_heads` heads: burn's default
/// initialisation for the query, key and value projections (`D -> D`), the output
/// projection's scaled by `out_init_scale` (1/sqrt(2L) for pre-norm stacks).
///
/// # Panics
/// If `d_model` is not divisible by `n_heads`.
pub(crate) fn projections(c: Shared, device: &Device) -> CrossAttention {
    let (d, n_heads) = (c.d_model, c.n_heads);
    assert!(
        d.is_multiple_of(n_heads),
        "d_model {d} is not divisible by n_heads {n_heads}"
    );
    projections_with(c, d / n_heads, true, device)
}

/// [`projections`] with heads of size `d_head` (queries, keys and values `D -> H·Dh`, output
/// `H·Dh -> D`) and, when `bias` is false, no biases on the four projections (the official
/// Feedback Transformer code's attention).
pub(crate) fn projections_with(
    c: Shared,
    d_head: usize,
    bias: bool,
    device: &Device,
) -> CrossAttention {
    let Shared {
        d_model: d,
        n_heads,
        dropout,
        out_init_scale,
    } = c;
    let inner = n_heads * d_head;
    let mut output = scaled_linear(inner, d, out_init_scale, device);
    if !bias {
        output.bias = None;
    }
    CrossAttention {
        query: LinearConfig::new(d, inner).with_bias(bias).init(device),
        key: LinearConfig::new(d, inner).with_bias(bias).init(device),
        value: LinearConfig::new(d, inner).with_bias(bias).init(device),
        output,
        dropout: DropoutConfig::new(dropout).init(),
        n_heads,
    }
}

/// The fields every attention config shares, as [`shared_fields!`] reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shared {
    pub d_model: usize,
    pub n_heads: usize,
    pub dropout: f64,
    pub out_init_scale: f64,
}

/// `fn shared(&self) -> Shared` for attention configs with fields `d_model`, `n_heads`,
/// `dropout` and `out_init_scale`.
macro_rules! shared_fields {
    ($($config:ty),*) => {$(
        impl $config {
            /// The fields every attention config shares.
            pub(crate) fn shared(&self) -> $crate::projections::Shared {
                $crate::projections::Shared {
                    d_model: self.d_model,
                    n_heads: self.n_heads,
                    dropout: self.dropout,
                    out_init_scale: self.out_init_scale,
                }
            }
        }
    )*};
}

shared_fields!(
    crate::attention::CausalSelfAttentionConfig,
    crate::bidirectional_attention::BidirectionalSelfAttentionConfig,
    crate::cross_attention::CrossAttentionConfig,
    crate::linear_attention::LinearAttentionConfig,
    crate::performer::PerformerAttentionConfig,
    crate::sparse_attention::SparseAttentionConfig
);

/// The checks of the fields every attention config shares (width, heads, dropout, output
/// init scale); the message starts with the offending field's name.
pub(crate) fn check_shared(c: Shared) -> Result<(), String> {
    at_least_one("d_model", c.d_model)?;
    at_least_one("n_heads", c.n_heads)?;
    if !c.d_model.is_multiple_of(c.n_heads) {
        let (h, d) = (c.n_heads, c.d_model);
        return Err(format!("n_heads: {h} does not divide d_model {d}"));
    }
    if !(0.0..1.0).contains(&c.dropout) {
        return Err(format!("dropout: {} is not in [0, 1)", c.dropout));
    }
    if !(c.out_init_scale.is_finite() && c.out_init_scale >= 0.0) {
        let scale = c.out_init_scale;
        return Err(format!(
            "out_init_scale: {scale} is not a finite non-negative number"
        ));
    }
    Ok(())
}

/// `Err("<field>: must be at least 1")` when `value` is 0.
pub(crate) fn at_least_one(field: &str, value: usize) -> Result<(), String> {
    match value {
        0 => Err(format!("{field}: must be at least 1")),
        _ => Ok(()),
    }
}

/// [`projections`] for a config whose `validate()` gave `checked`.
///
/// # Panics
/// With the message of `checked` (it names the field) when the config is invalid.
pub(crate) fn checked_projections(
    checked: Result<(), String>,
    c: Shared,
    device: &Device,
) -> CrossAttention {
    if let Err(e) = checked {
        panic!("{e}");
    }
    projections(c, device)
}
