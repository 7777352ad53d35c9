//! `mnemo analyze ffn`: the feed-forward layers as key-value memories (Geva, Schuster, Berant,
//! Levy 2021, "Transformer Feed-Forward Layers Are Key-Value Memories").
//!
//! A feed-forward sublayer `FF(x) = W2 gelu(W1 x + b1) + b2` with `W1: [F, D]`, `W2: [D, F]`
//! (in burn's `[in, out]` layout, `up.weight: [D, F]` and `down.weight: [F, D]`) is a memory of
//! F key-value pairs: key `k_i` (row i of W1) and value `v_i` (column i of W2, row i of burn's
//! `down.weight`). For every layer and key this reports
//!
//! - **keys**: the `top_k` positions of the split whose hidden unit `u_i = gelu(k_i·x + b1_i)` is
//!   largest, each with its prefix (the last `context` tokens up to and including the position
//!   that the model could see, as text) and the position's target;
//! - **values**: `p_i = softmax(E v_i)` over the vocabulary, with E the output layer's weight
//!   (`head.weight`, `[D, V]`): Geva et al.'s projection through the output embedding (their
//!   Sec. 4). Like them we apply neither the final norm nor the head's bias: the final norm's
//!   gain and centring would depend on the rest of the residual stream, which a value alone
//!   does not have. The report lists the most probable tokens;
//! - **agreement**: how many of the key's top prefixes have as target the value's most
//!   probable token (Geva et al.'s Sec. 4.2, on the top-k prefixes of each key).
//!
//! Keys are ranked over a capped part of the split (`--max-tokens`), in the order the model
//! reads it ([`crate::capture`]); ties go to the earlier position.
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use mnemo_core::host::to_vec;
use mnemo_data::{LmUnit, Vocab};
use mnemo_models::Model;
use serde::Serialize;

use crate::capture::Capture;
use crate::text::render;

/// How much `mnemo analyze ffn` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FfnOptions {
    /// Prefixes per key.
    pub top_k: usize,
    /// Tokens of each prefix (ending at the position).
    pub context: usize,
    /// Most probable tokens listed per value.
    pub value_tokens: usize,
}

impl Default for FfnOptions {
    fn default() -> Self {
        Self {
            top_k: 5,
            context: 10,
            value_tokens: 5,
        }
    }
}

/// The whole analysis, as written to `ffn.json`.
#[derive(Debug, Clone, Serialize)]
pub struct FfnAnalysis {
    /// Model name.
    pub model: String,
    /// Model kind (`transformer`, `feedback`).
    pub kind: String,
    /// Split the keys were ranked on.
    pub split: String,
    /// Positions read.
    pub positions: usize,
    /// Prefixes per key.
    pub top_k: usize,
    /// How values are projected onto the vocabulary.
    pub projection: String,
    /// One entry per layer with a feed-forward sublayer, bottom first.
    pub layers: Vec<FfnLayer>,
}

/// One layer's keys and values.
#[derive(Debug, Clone, Serialize)]
pub struct FfnLayer {
    /// Layer index (0 = bottom).
    pub layer: usize,
    /// Every key, in index order.
    pub keys: Vec<FfnKey>,
}

/// One key-value pair.
#[derive(Debug, Clone, Serialize)]
pub struct FfnKey {
    /// Index i of the hidden unit.
    pub key: usize,
    /// The positions that activate it most, largest first.
    pub top: Vec<Trigger>,
    /// The value's most probable tokens, most probable first.
    pub value_tokens: Vec<TokenProb>,
    /// How many of `top` have the value's most probable token as target.
    pub agreement: usize,
}

/// A position that activates a key.
#[derive(Debug, Clone, Serialize)]
pub struct Trigger {
    /// The hidden unit's value there.
    pub activation: f32,
    /// Batch row of the position.
    pub row: usize,
    /// Column of the position in its row.
    pub column: usize,
    /// The prefix ending at the position, as text.
    pub prefix: String,
    /// The position's target token (`_`: not scored).
    pub target: String,
}

/// A token and its probability.
#[derive(Debug, Clone, Serialize)]
pub struct TokenProb {
    /// The token.
    pub token: String,
    /// Its probability.
    pub prob: f32,
}

/// For each of the `f` units of `acts` (`[n, f]` row-major), the indices and values of its
/// `k` largest activations over the n positions, largest first (ties: lower index first).
pub fn top_k_per_unit(acts: &[f32], n: usize, f: usize, k: usize) -> Vec<Vec<(usize, f32)>> {
    assert_eq!(
        acts.len(),
        n * f,
        "acts: {} values for [{n}, {f}]",
        acts.len()
    );
    let k = k.min(n);
    let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    (0..f)
        .map(|i| {
            let mut column: Vec<(usize, f32)> = (0..n).map(|p| (p, acts[p * f + i])).collect();
            if k < n && k > 0 {
                column.select_nth_unstable_by(k - 1, order);
            }
            column.truncate(k);
            column.sort_by(order);
            column
        })
        .collect()
}

/// `softmax(E v_i)` for every value of a layer: the rows of `down` (`[F, D]`) through the
/// output weight `head` (`[D, V]`).
///
/// # Shapes
/// - down: `[F, D]`, head: `[D, V]`
/// - output: `[F, V]`, each row a distribution
pub fn value_distributions(down: Tensor<2>, head: Tensor<2>) -> Tensor<2> {
    softmax(down.matmul(head), 1)
}

/// The indices of the `k` largest entries of `row`, largest first (ties: lower index first).
pub fn top_indices(row: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// The per-layer `(down.weight [F, D], head.weight [D, V])` of a Transformer or Feedback model
/// (None for a layer without feed-forward).
pub fn value_weights(model: &Model) -> Vec<Option<(Tensor<2>, Tensor<2>)>> {
    match model {
        Model::Transformer(m) => m
            .layers
            .iter()
            .map(|l| {
                l.ff.as_ref()
                    .map(|ff| (ff.down.weight.val(), m.head.weight.val()))
            })
            .collect(),
        Model::Feedback(m) => m
            .core
            .layers
            .iter()
            .map(|l| Some((l.ff.down.weight.val(), m.head.weight.val())))
            .collect(),
        Model::TransformerXl(_) => Vec::new(),
    }
}

/// Geva et al.'s analysis of every layer of `model` over `capture`; see the [module docs](self).
pub fn analyze_ffn(
    model: &Model,
    capture: &Capture,
    vocab: &Vocab,
    unit: Option<LmUnit>,
    options: &FfnOptions,
) -> Vec<FfnLayer> {
    let n = capture.len();
    let f = capture.d_ff;
    let weights = value_weights(model);
    let mut layers = Vec::new();
    for (l, units) in capture.ffn.iter().enumerate() {
        let (Some(units), Some(Some((down, head)))) = (units, weights.get(l)) else {
            continue;
        };
        let vocab_size = head.dims()[1];
        let probs = to_vec(value_distributions(down.clone(), head.clone()));
        let tops = top_k_per_unit(units, n, f, options.top_k);
        let keys = tops
            .into_iter()
            .enumerate()
            .map(|(i, top)| {
                let row = &probs[i * vocab_size..(i + 1) * vocab_size];
                let best = top_indices(row, options.value_tokens);
                let triggers: Vec<Trigger> = top
                    .into_iter()
                    .map(|(p, activation)| trigger(capture, p, activation, vocab, unit, options))
                    .collect();
                let first = best.first().map(|&id| vocab.token(id as u32));
                FfnKey {
                    key: i,
                    agreement: triggers
                        .iter()
                        .filter(|t| Some(t.target.as_str()) == first)
                        .count(),
                    top: triggers,
                    value_tokens: best
                        .into_iter()
                        .map(|id| TokenProb {
                            token: vocab.token(id as u32).to_string(),
                            prob: row[id],
                        })
                        .collect(),
                }
            })
            .collect();
        layers.push(FfnLayer { layer: l, keys });
    }
    layers
}

/// Position `p` of the capture as a [`Trigger`].
fn trigger(
    capture: &Capture,
    p: usize,
    activation: f32,
    vocab: &Vocab,
    unit: Option<LmUnit>,
    options: &FfnOptions,
) -> Trigger {
    let (row, column) = capture.positions[p];
    let from = (column + 1)
        .saturating_sub(options.context)
        .max(capture.visible_from[p]);
    Trigger {
        activation,
        row,
        column,
        prefix: render(vocab, &capture.rows[row][from..=column], unit),
        target: vocab.token(capture.row_targets[row][column]).to_string(),
    }
}

/// The readable report of an [`FfnAnalysis`]: per layer, the `show` keys with the largest top
/// activation, each with its top prefixes and its value's top tokens.
pub fn ffn_markdown(analysis: &FfnAnalysis, show: usize) -> String {
    let mut md = format!(
        "# Feed-forward keys and values: {} ({})\n\n\
         Geva et al. 2021, \"Transformer Feed-Forward Layers Are Key-Value Memories\". {} \
         positions of the {} split; per key the {} prefixes that activate it most (ending at the \
         position; → its target) and the value's top tokens under {}. Agreement: prefixes \
         whose target is the value's top token.\n",
        analysis.model,
        analysis.kind,
        analysis.positions,
        analysis.split,
        analysis.top_k,
        analysis.projection,
    );
    for layer in &analysis.layers {
        let mut keys: Vec<&FfnKey> = layer.keys.iter().collect();
        keys.sort_by(|a, b| {
            let top = |k: &FfnKey| k.top.first().map_or(f32::NEG_INFINITY, |t| t.activation);
            top(b).total_cmp(&top(a)).then(a.key.cmp(&b.key))
        });
        let agree: usize = layer.keys.iter().filter(|k| k.agreement > 0).count();
        md.push_str(&format!(
            "\n## Layer {} ({} keys; {} agree with their value on at least one prefix)\n\n\
             | key | max act. | top prefixes | value's top tokens | agreement |\n\
             |---|---|---|---|---|\n",
            layer.layer + 1,
            layer.keys.len(),
            agree
        ));
        for key in keys.into_iter().take(show) {
            let prefixes: Vec<String> = key
                .top
                .iter()
                .take(3)
                .map(|t| format!("`{}` → `{}`", cell(&t.prefix), cell(&t.target)))
                .collect();
            let values: Vec<String> = key
                .value_tokens
                .iter()
                .map(|t| format!("`{}` {:.2}", cell(&t.token), t.prob))
                .collect();
            md.push_str(&format!(
                "| {} | {:.3} | {} | {} | {}/{} |\n",
                key.key,
                key.top.first().map_or(0.0, |t| t.activation),
                prefixes.join("<br>"),
                values.join(", "),
                key.agreement,
                key.top.len()
            ));
        }
    }
    md
}

/// Text safe inside a Markdown table cell and a code span.
fn cell(text: &str) -> String {
    text.replace('|', "¦").replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: sort every column fully and compare, on values with many ties.
    #[test]
    fn top_k_is_the_brute_force_top() {
        let (n, f) = (37, 5);
        let acts: Vec<f32> = (0..n * f)
            .map(|i| ((i * 7919 % 23) as f32 - 11.0) / 3.0)
            .collect();
        for k in [0, 1, 4, 37, 50] {
            let got = top_k_per_unit(&acts, n, f, k);
            for (i, top) in got.iter().enumerate() {
                let mut all: Vec<(usize, f32)> = (0..n).map(|p| (p, acts[p * f + i])).collect();
                all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
                all.truncate(k.min(n));
                assert_eq!(top, &all, "unit {i}, k {k}");
            }
        }
    }

    #[test]
    fn top_indices_orders_by_value_then_index() {
        assert_eq!(top_indices(&[0.1, 0.5, 0.5, 0.2], 3), vec![1, 2, 3]);
        assert_eq!(top_indices(&[0.3], 4), vec![0]);
    }
}
