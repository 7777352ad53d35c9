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
pub(crate) fn projections(
    d_model: usize,
    n_heads: usize,
    dropout: f64,
    out_init_scale: f64,
    device: &Device,
) -> CrossAttention {
    assert!(
        d_model.is_multiple_of(n_heads),
        "d_model {d_model} is not divisible by n_heads {n_heads}"
    );
    let d = d_model;
    CrossAttention {
        query: LinearConfig::new(d, d).init(device),
        key: LinearConfig::new(d, d).init(device),
        value: LinearConfig::new(d, d).init(device),
        output: scaled_linear(d, d, out_init_scale, device),
        dropout: DropoutConfig::new(dropout).init(),
        n_heads,
    }
}
