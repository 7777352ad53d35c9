//! `mnemo analyze memory`: what the Feedback Transformer's memory is made of and how far back
//! its layers read it (Fan et al. 2020, "Addressing Some Limitations of Transformers with
//! Feedback Memory").
//!
//! - **Mixing weights.** A memory is `m_t = Σ_{l=0..L} softmax(w)_l hˡ_t` over the embedding
//!   (`l = 0`) and the L layer outputs; the report gives `w` and `softmax(w)`
//!   ([`FeedbackCore::mix_weights`](mnemo_models::FeedbackCore::mix_weights): the constant
//!   `[0, …, 0, 1]` for `memory = "top"`).
//! - **Attention over memory distance.** Layer l, head h attends at step t with probabilities
//!   `a[h, j]` over the S window slots, slot j at distance `d = S - j` (the memory of step
//!   `t - d`). Over the N captured queries,
//!
//!   ```text
//!   A_l[h, d] = (1/N) Σ_t a^l_t[h, S - d]        d = 1..S,  Σ_d A_l[h, d] = 1
//!   mean distance_l[h] = Σ_d d · A_l[h, d]
//!   ```
//!
//!   From a fresh stream the first steps' windows hold zero memories; their mass counts at
//!   their distances like any other slot's.
//! - **Learnt spans.** With `adaptive_span`, each head's span `z_h·S` (one per layer with
//!   `per_head = false`); the attention above is then the masked, renormalised one the model
//!   uses.
use mnemo_core::host::to_vec;
use mnemo_models::FeedbackLm;
use mnemo_models::feedback::MemorySource;
use serde::Serialize;

use crate::capture::Capture;

/// The memory analysis of one Feedback model, as written to `memory.json`.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryAnalysis {
    /// Model name.
    pub model: String,
    /// Split the attention was sampled on.
    pub split: String,
    /// `"mix"` or `"top"`.
    pub memory: String,
    /// What each mixing weight weighs: `embedding`, `layer 1`, …, `layer L`.
    pub sources: Vec<String>,
    /// The learned logits `w` (L+1).
    pub mix_logits: Vec<f32>,
    /// `softmax(w)` (the constant one-hot of the top layer for `memory = "top"`).
    pub mix_weights: Vec<f32>,
    /// Span S.
    pub span: usize,
    /// Queries (steps) averaged over.
    pub queries: usize,
    /// Per layer, bottom first.
    pub attention: Vec<LayerAttention>,
    /// Per layer, bottom first, each head's learnt span `z_h·S` (one value with one span per
    /// layer); None without adaptive spans.
    pub learnt_spans: Option<Vec<Vec<f32>>>,
}

/// One layer's attention over distance.
#[derive(Debug, Clone, Serialize)]
pub struct LayerAttention {
    /// Layer index (0 = bottom).
    pub layer: usize,
    /// Per head.
    pub heads: Vec<HeadAttention>,
}

/// One head's mean attention over distance.
#[derive(Debug, Clone, Serialize)]
pub struct HeadAttention {
    /// Head index.
    pub head: usize,
    /// `by_distance[d - 1]`: mean attention mass at distance d = 1..S (sums to 1).
    pub by_distance: Vec<f32>,
    /// `Σ_d d · by_distance[d - 1]`.
    pub mean_distance: f32,
}

/// The mean attention mass over distance of `probs` (`[n, heads, span]` row-major, slot j at
/// distance `span - j`): `[heads][span]`, index `d - 1` for distance d.
pub fn attention_by_distance(probs: &[f32], n: usize, heads: usize, span: usize) -> Vec<Vec<f32>> {
    assert_eq!(
        probs.len(),
        n * heads * span,
        "probs: {} values for [{n}, {heads}, {span}]",
        probs.len()
    );
    let mut sums = vec![vec![0.0f64; span]; heads];
    for q in 0..n {
        for (h, sum) in sums.iter_mut().enumerate() {
            let row = &probs[(q * heads + h) * span..(q * heads + h + 1) * span];
            for (j, &p) in row.iter().enumerate() {
                sum[span - 1 - j] += f64::from(p);
            }
        }
    }
    sums.into_iter()
        .map(|s| {
            s.into_iter()
                .map(|v| (v / n.max(1) as f64) as f32)
                .collect()
        })
        .collect()
}

/// The analysis of `model` over `capture` (a capture of the same model: it holds attention).
pub fn analyze_memory(
    name: &str,
    split: &str,
    model: &FeedbackLm,
    capture: &Capture,
) -> MemoryAnalysis {
    let core = &model.core;
    let n_layers = core.layers.len();
    let mut sources = vec!["embedding".to_string()];
    sources.extend((1..=n_layers).map(|l| format!("layer {l}")));
    let attention = capture
        .attention
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(l, probs)| LayerAttention {
            layer: l,
            heads: attention_by_distance(probs, capture.len(), capture.heads, capture.span)
                .into_iter()
                .enumerate()
                .map(|(head, by_distance)| HeadAttention {
                    head,
                    mean_distance: by_distance
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i + 1) as f32 * p)
                        .sum(),
                    by_distance,
                })
                .collect(),
        })
        .collect();
    MemoryAnalysis {
        model: name.to_string(),
        split: split.to_string(),
        memory: match core.memory {
            MemorySource::Mix => "mix",
            MemorySource::Top => "top",
        }
        .into(),
        sources,
        mix_logits: to_vec(core.mix.val()),
        mix_weights: to_vec(core.mix_weights()),
        span: core.span,
        queries: capture.len(),
        attention,
        learnt_spans: core
            .layers
            .iter()
            .map(|l| l.adaptive_span.as_ref().map(|s| s.current_spans()))
            .collect(),
    }
}

/// Head `h`'s learnt span in `spans` (a layer's spans: one per head, or one for the layer).
fn span_of(spans: &[f32], h: usize) -> f32 {
    spans[h.min(spans.len() - 1)]
}

/// The readable report of a [`MemoryAnalysis`].
pub fn memory_markdown(a: &MemoryAnalysis) -> String {
    let mut md = format!(
        "# Feedback memory: {}\n\n\
         Fan et al. 2020. A memory is `m_t = Σ_l softmax(w)_l h^l_t` (memory = \"{}\").\n\n\
         | source | w | softmax(w) |\n|---|---|---|\n",
        a.model, a.memory
    );
    for ((s, w), p) in a.sources.iter().zip(&a.mix_logits).zip(&a.mix_weights) {
        md.push_str(&format!("| {s} | {w:.4} | {p:.4} |\n"));
    }
    let spans = a.learnt_spans.as_ref();
    md.push_str(&format!(
        "\nAttention mass over memory distance (1 = the previous step … {} = the oldest memory), \
         mean over {} queries of the {} split{}:\n\n| layer | head | mean distance | mass at d = 1, 2, 3 | mass at d > {} |{}\n|---|---|---|---|---|{}\n",
        a.span,
        a.queries,
        a.split,
        if spans.is_some() { ", with the learnt adaptive span z·S of each head" } else { "" },
        (a.span / 2).max(1),
        if spans.is_some() { " learnt span |" } else { "" },
        if spans.is_some() { "---|" } else { "" },
    ));
    for layer in &a.attention {
        for head in &layer.heads {
            let first: Vec<String> = head
                .by_distance
                .iter()
                .take(3)
                .map(|p| format!("{p:.3}"))
                .collect();
            let far: f32 = head.by_distance.iter().skip((a.span / 2).max(1)).sum();
            let span = spans
                .map(|s| format!(" {:.1} |", span_of(&s[layer.layer], head.head)))
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | {} | {:.2} | {} | {:.3} |{span}\n",
                layer.layer + 1,
                head.head,
                head.mean_distance,
                first.join(", "),
                far
            ));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slot j is distance S - j; the mean over queries keeps each head's row a distribution.
    #[test]
    fn slots_map_to_distances_and_rows_stay_distributions() {
        // 2 queries, 1 head, span 3: all mass on the newest slot, then on the oldest.
        let probs = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let a = attention_by_distance(&probs, 2, 1, 3);
        assert_eq!(a, vec![vec![0.5, 0.0, 0.5]]);
        let probs = [0.2, 0.3, 0.5, 0.1, 0.1, 0.8];
        let a = attention_by_distance(&probs, 1, 2, 3);
        assert_eq!(a[0], vec![0.5, 0.3, 0.2]);
        assert_eq!(a[1], vec![0.8, 0.1, 0.1]);
    }
}
