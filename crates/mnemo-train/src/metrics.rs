//! Loss and accuracy accumulated over many segments.
use serde::{Deserialize, Serialize};

use crate::loss::LossStats;

/// Loss and accuracy over a set of segments (a log window, or a whole split).
///
/// `loss` and `accuracy` are means over the *scored* positions of all segments together (not
/// means of per-segment means), so the result does not depend on how a split is cut.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean negative log-likelihood (nats) per scored position.
    pub loss: f64,
    /// Fraction of scored positions predicted exactly.
    pub accuracy: f64,
    /// Number of scored positions.
    pub scored: u64,
    /// Number of positions read, scored or not.
    pub tokens: u64,
}

/// Sums [`LossStats`] of segments into [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsAccumulator {
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
    fn empty_is_zero() {
        let m = MetricsAccumulator::default().metrics();
        assert_eq!((m.loss, m.accuracy, m.scored, m.tokens), (0.0, 0.0, 0, 0));
    }
}
