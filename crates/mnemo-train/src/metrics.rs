//! Loss and accuracy accumulated over many segments, and the language-modelling figures
//! derived from the loss:
//!
//! ```text
//! bpc = mean NLL (nats) / ln 2        over every scored byte
//! ppl = exp(mean NLL (nats))          over every scored token, <eos> included
//! ```
use mnemo_data::LmUnit;
use serde::{Deserialize, Serialize};

use crate::loss::LossStats;

/// Loss and accuracy over a set of segments (a log window, or a whole split).
///
/// `loss` and `accuracy` are means over the *scored* positions of all segments together (not
/// means of per-segment means), so the result does not depend on how a split is cut.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean negative log-likelihood (nats) per scored position.
    #[serde(with = "crate::float_repr::exact")]
    pub loss: f64,
    /// Fraction of scored positions predicted exactly.
    #[serde(with = "crate::float_repr::exact")]
    pub accuracy: f64,
    /// Number of scored positions.
    pub scored: u64,
    /// Number of positions read, scored or not.
    pub tokens: u64,
    /// Bits per character (byte corpora only): `loss / ln 2`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::float_repr::exact_opt"
    )]
    pub bpc: Option<f64>,
    /// Perplexity (word corpora only): `exp(loss)`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::float_repr::exact_opt"
    )]
    pub ppl: Option<f64>,
}

impl Metrics {
    /// These metrics with [`Metrics::bpc`] (for [`LmUnit::Byte`]) or [`Metrics::ppl`] (for
    /// [`LmUnit::Word`]) filled in from the mean loss; unchanged for `None`.
    pub fn with_lm_unit(self, unit: Option<LmUnit>) -> Self {
        match unit {
            Some(LmUnit::Byte) => Self {
                bpc: Some(self.loss / std::f64::consts::LN_2),
                ppl: None,
                ..self
            },
            Some(LmUnit::Word) => Self {
                bpc: None,
                ppl: Some(self.loss.exp()),
                ..self
            },
            None => self,
        }
    }

    /// The language-modelling figure as `("bpc", value)` or `("ppl", value)`, if any.
    pub fn lm_figure(&self) -> Option<(&'static str, f64)> {
        match (self.bpc, self.ppl) {
            (Some(bpc), _) => Some(("bpc", bpc)),
            (None, Some(ppl)) => Some(("ppl", ppl)),
            (None, None) => None,
        }
    }

    /// Whether these metrics are better than `other` for model selection: lower loss for
    /// language modelling, else higher accuracy, then lower loss.
    pub fn better_than(&self, other: &Metrics) -> bool {
        match self.lm_figure() {
            Some(_) => self.loss < other.loss,
            None => {
                self.accuracy > other.accuracy
                    || (self.accuracy == other.accuracy && self.loss < other.loss)
            }
        }
    }

    /// A metrics-log record: `fields` (step, split, ...) followed by loss, accuracy, scored and,
    /// for language modelling, bpc or ppl (non-finite values as `"NaN"`, `"inf"`, `"-inf"`:
    /// see [`float_repr`](crate::float_repr)).
    pub fn record(&self, mut fields: serde_json::Value) -> serde_json::Value {
        use crate::float_repr::json;
        if let Some(map) = fields.as_object_mut() {
            map.insert("loss".into(), json(self.loss));
            map.insert("accuracy".into(), json(self.accuracy));
            map.insert("scored".into(), self.scored.into());
            if let Some((name, value)) = self.lm_figure() {
                map.insert(name.into(), json(value));
            }
        }
        fields
    }
}

/// Sums [`LossStats`] of segments into [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsAccumulator {
    #[serde(with = "crate::float_repr::exact")]
    loss_sum: f64,
    correct: u64,
    scored: u64,
    tokens: u64,
}

impl MetricsAccumulator {
    /// Add one segment.
    pub fn add(&mut self, stats: &LossStats) {
        self.loss_sum += stats.loss * stats.scored as f64;
        self.correct += stats.correct as u64;
        self.scored += stats.scored as u64;
        self.tokens += stats.tokens as u64;
    }

    /// Positions read so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }

    /// The metrics of everything added (0 loss and accuracy when nothing was scored).
    pub fn metrics(&self) -> Metrics {
        let denominator = self.scored.max(1) as f64;
        Metrics {
            loss: self.loss_sum / denominator,
            accuracy: self.correct as f64 / denominator,
            scored: self.scored,
            tokens: self.tokens,
            bpc: None,
            ppl: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_segments_by_their_scored_positions() {
        let mut acc = MetricsAccumulator::default();
        acc.add(&LossStats {
            loss: 1.0,
            correct: 1,
            scored: 1,
            tokens: 4,
        });
        acc.add(&LossStats {
            loss: 4.0,
            correct: 0,
            scored: 3,
            tokens: 4,
        });
        acc.add(&LossStats {
            loss: 0.0,
            correct: 0,
            scored: 0,
            tokens: 4,
        });
        let m = acc.metrics();
        assert_eq!(m.loss, 13.0 / 4.0);
        assert_eq!(m.accuracy, 0.25);
        assert_eq!((m.scored, m.tokens), (4, 12));
    }

    #[test]
    fn bpc_and_ppl_from_the_mean_loss() {
        let mut acc = MetricsAccumulator::default();
        // Two segments: 3 positions at mean ln 4, 1 position at ln 16 -> mean (3 ln4 + ln16)/4.
        for (loss, scored) in [(4f64.ln(), 3), (16f64.ln(), 1)] {
            acc.add(&LossStats {
                loss,
                correct: 0,
                scored,
                tokens: scored,
            });
        }
        let mean = (3.0 * 4f64.ln() + 16f64.ln()) / 4.0; // = 2.5 ln 2
        let bytes = acc.metrics().with_lm_unit(Some(LmUnit::Byte));
        assert!((bytes.bpc.unwrap() - 2.5).abs() < 1e-12, "{bytes:?}");
        assert_eq!(bytes.ppl, None);
        let words = acc.metrics().with_lm_unit(Some(LmUnit::Word));
        assert!((words.ppl.unwrap() - mean.exp()).abs() < 1e-12);
        assert!((words.ppl.unwrap() - 2f64.powf(2.5)).abs() < 1e-9);
        assert_eq!(acc.metrics().with_lm_unit(None).lm_figure(), None);
        let record = bytes.record(serde_json::json!({"step": 3}));
        assert_eq!(record["bpc"], serde_json::json!(bytes.bpc.unwrap()));
        assert_eq!(record["step"], 3);
        assert!(words.record(serde_json::json!({})).get("bpc").is_none());
    }

    /// The loss of `rows` (`[1, T, V]`) against `targets`, every position scored, as metrics.
    fn lm_metrics(rows: Vec<f32>, t: usize, v: usize, targets: &[u32], unit: LmUnit) -> Metrics {
        use burn::tensor::{Tensor, TensorData};
        let logits = Tensor::<3>::from_data(
            TensorData::new(rows, [1, t, v]),
            &mnemo_backend::test_device(),
        );
        let mut acc = MetricsAccumulator::default();
        acc.add(&crate::loss::masked_cross_entropy(logits, targets, u32::MAX).stats());
        acc.metrics().with_lm_unit(Some(unit))
    }

    #[test]
    fn uniform_logits_over_256_bytes_give_8_bpc() {
        let targets: Vec<u32> = (0..7).map(|i| i * 37 % 256).collect();
        let m = lm_metrics(vec![0.0; 7 * 256], 7, 256, &targets, LmUnit::Byte);
        assert_eq!(m.scored, 7, "every position is scored");
        assert!((m.bpc.unwrap() - 256f64.log2()).abs() < 1e-6, "{m:?}");
    }

    #[test]
    fn three_token_perplexity_by_hand() {
        // Softmax rows [1/4, 1/2, 1/4], [3/5, 1/5, 1/5], [1/3, 1/3, 1/3]; targets 1, 0, 2 have
        // probabilities 1/2, 3/5, 1/3, product 1/10: ppl = 10^(1/3), bpc = log2(10) / 3.
        let (l2, l3) = (2f32.ln(), 3f32.ln());
        let rows = vec![0.0, l2, 0.0, l3, 0.0, 0.0, 0.0, 0.0, 0.0];
        let words = lm_metrics(rows.clone(), 3, 3, &[1, 0, 2], LmUnit::Word);
        assert!(
            (words.ppl.unwrap() - 10f64.cbrt()).abs() < 1e-5,
            "{words:?}"
        );
        assert!((words.loss - 10f64.ln() / 3.0).abs() < 1e-6);
        let bytes = lm_metrics(rows, 3, 3, &[1, 0, 2], LmUnit::Byte);
        assert!(
            (bytes.bpc.unwrap() - 10f64.log2() / 3.0).abs() < 1e-6,
            "{bytes:?}"
        );
    }

    #[test]
    fn empty_is_zero() {
        let m = MetricsAccumulator::default().metrics();
        assert_eq!((m.loss, m.accuracy, m.scored, m.tokens), (0.0, 0.0, 0, 0));
    }
}
