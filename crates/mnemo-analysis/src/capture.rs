//! Running a trained model over (a capped part of) a split and keeping what its layers
//! computed: the feed-forward hidden units of every layer (Geva et al. 2021's key
//! activations) and, for the Feedback Transformer (Fan et al. 2020), every layer's attention
//! probabilities over its memory window.
//!
//! The split is laid out exactly as evaluation lays it out ([`StreamBatcher`]: `batch`
//! contiguous rows cut into segments of T tokens). The Feedback model carries its memory from
//! segment to segment (as `mnemo eval` does); the Transformer reads each segment alone. Per
//! position p = (row r, column c) and layer l:
//!
//! ```text
//! ffn[l][p, i]      = gelu(W1 x^l_p + b1)_i                    i = 0..F
//! attention[l][p,h,j] = a^l_p[h, j]   (slot j of the window at distance S - j; Σ_j = 1)
//! ```
//!
//! Size legend: N captured positions, L layers, F d_ff, H heads, S span.
use burn::tensor::Device;
use mnemo_core::host::to_vec;
use mnemo_data::{LabelledStream, StreamBatcher};
use mnemo_models::{Model, ModelState};
use mnemo_train::segment_tokens;

use crate::error::AnalysisError;

/// What the layers computed over the captured positions; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Capture {
    /// The input ids of each batch row, as far as it was read.
    pub rows: Vec<Vec<u32>>,
    /// The target ids of each batch row, aligned with `rows`.
    pub row_targets: Vec<Vec<u32>>,
    /// `(row, column)` of each captured position, in capture order (segment, row, step).
    pub positions: Vec<(usize, usize)>,
    /// Per captured position, the first column the model could see when it read it (the
    /// segment start for a Transformer, 0 for a Feedback model carrying its memory and for a
    /// Transformer whose layers carry their fast weights).
    pub visible_from: Vec<usize>,
    /// Feed-forward width F.
    pub d_ff: usize,
    /// Per layer, the hidden units `[N, F]` row-major (None: a layer without feed-forward).
    pub ffn: Vec<Option<Vec<f32>>>,
    /// Heads H (Feedback only, else 0).
    pub heads: usize,
    /// Span S (Feedback only, else 0).
    pub span: usize,
    /// Feedback only: per layer, the attention probabilities `[N, H, S]` row-major.
    pub attention: Option<Vec<Vec<f32>>>,
}

impl Capture {
    /// Number of captured positions N.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

/// Run `model` (an inference copy on `device`) over the first segments of `stream`, laid out
/// as `batch` rows of segments of `segment_len` tokens, until at least `max_positions`
/// positions are read, and keep the first `max_positions` (all if the split is shorter).
///
/// Errors: a Transformer-XL model (no trace yet), or a split too short for one segment.
pub fn capture(
    model: &Model,
    stream: &LabelledStream,
    batch: usize,
    segment_len: usize,
    max_positions: usize,
    device: &Device,
) -> Result<Capture, AnalysisError> {
    if let Model::TransformerXl(_) = model {
        return Err(AnalysisError::Unsupported {
            what: "transformer_xl".into(),
            reason: "tracing is written for the Transformer and Feedback models only".into(),
        });
    }
    let batcher =
        StreamBatcher::new(stream, batch, segment_len).map_err(|e| AnalysisError::Unsupported {
            what: format!("the split (batch {batch}, segment_len {segment_len})"),
            reason: e.to_string(),
        })?;
    let per_segment = batch * segment_len;
    let n_segments = max_positions
        .div_ceil(per_segment)
        .clamp(1, batcher.num_segments());
    let mut out = Capture {
        rows: vec![Vec::new(); batch],
        row_targets: vec![Vec::new(); batch],
        positions: Vec::new(),
        visible_from: Vec::new(),
        d_ff: 0,
        ffn: Vec::new(),
        heads: 0,
        span: 0,
        attention: None,
    };
    let mut state = model.init_state(batch, device);
    for (index, segment) in batcher.segments().take(n_segments).enumerate() {
        let start = index * segment_len;
        let tokens = segment_tokens(&segment, device);
        let (hidden, attention) = match (model, state) {
            (Model::Transformer(m), ModelState::Transformer(s)) => {
                let (_, hidden, next) = m.forward_traced(tokens, s);
                state = ModelState::Transformer(next);
                (hidden, None)
            }
            (Model::Feedback(m), ModelState::Feedback(s)) => {
                let (_, next, trace) = m.forward_segment_traced(tokens, s);
                state = ModelState::Feedback(next);
                (
                    trace.ffn_hidden.into_iter().map(Some).collect(),
                    Some(trace.attention),
                )
            }
            _ => unreachable!("the state was made by this model"),
        };
        append_hidden(&mut out, hidden);
        if let Some(attention) = attention {
            append_attention(&mut out, attention);
        }
        for r in 0..batch {
            let row = r * segment.len..(r + 1) * segment.len;
            out.rows[r].extend_from_slice(&segment.inputs[row.clone()]);
            out.row_targets[r].extend_from_slice(&segment.targets[row]);
            for t in 0..segment.len {
                out.positions.push((r, start + t));
                out.visible_from.push(match model {
                    Model::Feedback(_) => 0,
                    Model::Transformer(m) if m.carries() => 0,
                    _ => start,
                });
            }
        }
    }
    truncate(&mut out, max_positions);
    Ok(out)
}

/// Append one segment's hidden units (`[B, T, F]` per layer, row-major = capture order).
fn append_hidden(out: &mut Capture, hidden: Vec<Option<burn::tensor::Tensor<3>>>) {
    if out.ffn.is_empty() {
        out.ffn = vec![Some(Vec::new()); hidden.len()];
    }
    for (l, units) in hidden.into_iter().enumerate() {
        match (units, &mut out.ffn[l]) {
            (Some(u), Some(all)) => {
                out.d_ff = u.dims()[2];
                all.extend(to_vec(u));
            }
            _ => out.ffn[l] = None,
        }
    }
}

/// Append one segment's attention (`[B, H, T, S]` per layer) as `[B·T, H, S]` rows.
fn append_attention(out: &mut Capture, attention: Vec<burn::tensor::Tensor<4>>) {
    let all = out
        .attention
        .get_or_insert_with(|| vec![Vec::new(); attention.len()]);
    for (l, a) in attention.into_iter().enumerate() {
        let [_b, h, _t, s] = a.dims();
        out.heads = h;
        out.span = s;
        all[l].extend(to_vec(a.swap_dims(1, 2))); // [B,T,H,S]
    }
}

/// Keep the first `n` positions.
fn truncate(out: &mut Capture, n: usize) {
    if out.positions.len() <= n {
        return;
    }
    out.positions.truncate(n);
    out.visible_from.truncate(n);
    let f = out.d_ff;
    for units in out.ffn.iter_mut().flatten() {
        units.truncate(n * f);
    }
    let hs = out.heads * out.span;
    for a in out.attention.iter_mut().flatten() {
        a.truncate(n * hs);
    }
}
