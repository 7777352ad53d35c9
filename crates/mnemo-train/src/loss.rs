//! Masked cross-entropy and accuracy over the scored positions of a segment.
//!
//! A labelled stream scores only some positions (in code execution, the `;` closing a
//! `print`): every other target is the no-label id and counts for nothing. Over the scored set
//! `S` of a segment,
//!
//! ```text
//! loss     = sum_{i in S} -log softmax(logits_i)[target_i] / max(|S|, 1)
//! accuracy = |{i in S : argmax(logits_i) == target_i}| / max(|S|, 1)
//! ```
//!
//! Size legend: B batch, T segment length, V vocabulary, N = B·T.
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

/// The loss of one segment, still attached to the graph, with what is needed to score it.
#[derive(Debug, Clone)]
pub struct MaskedLoss {
    /// Mean negative log-likelihood over the scored positions (0 when none is scored).
    /// Shape `[1]`; differentiable.
    pub loss: Tensor<1>,
    /// Number of scored positions whose argmax equals the target. Shape `[1]`.
    pub correct: Tensor<1, Int>,
    /// Number of scored positions.
    pub scored: usize,
    /// Number of positions, scored or not.
    pub tokens: usize,
}

/// The numbers of a [`MaskedLoss`], read back from the device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossStats {
    /// Mean loss over the scored positions.
    pub loss: f64,
    /// Number of correct scored positions.
    pub correct: usize,
    /// Number of scored positions.
    pub scored: usize,
    /// Number of positions, scored or not.
    pub tokens: usize,
}

impl MaskedLoss {
    /// Read the loss and the number of correct positions (one device sync).
    pub fn stats(&self) -> LossStats {
        let loss = self.loss.clone().detach().into_scalar::<f64>();
        let correct = self.correct.clone().into_scalar::<i64>();
        LossStats {
            loss,
            correct: usize::try_from(correct).unwrap_or(0),
            scored: self.scored,
            tokens: self.tokens,
        }
    }
}

/// The [`LossStats`] of [`masked_cross_entropy`] without a graph (evaluation): on a device whose
/// tensors live in host memory one vectorised pass per row over the logits in place
/// ([`mnemo_kernels::cross_entropy_loss_rows`]), elsewhere burn's operations.
///
/// # Shapes
/// - logits: `[B, T, V]`
/// - targets: `B * T` ids
///
/// # Panics
/// If `targets.len() != B * T`.
pub fn masked_loss_stats(logits: Tensor<3>, targets: &[u32], no_label: u32) -> LossStats {
    if !mnemo_backend::runs_on_host(&logits.device()) {
        return masked_cross_entropy(logits, targets, no_label).stats();
    }
    let [b, t, v] = logits.dims();
    let (n, scored) = scored_targets([b, t], targets, no_label);
    let labels = (targets, no_label, scored);
    let sums = mnemo_backend::with_slice(logits.reshape([n, v]), |x| {
        mnemo_kernels::cross_entropy_loss_rows(x, labels, v)
    });
    LossStats {
        loss: sums.loss / scored.max(1) as f64,
        correct: sums.correct,
        scored,
        tokens: n,
    }
}

/// Masked cross-entropy and accuracy of `logits` against `targets`, skipping every position
/// whose target is `no_label`.
///
/// `targets` is row-major `[B, T]`, as a [`Segment`](mnemo_data::Segment) holds it.
///
/// # Shapes
/// - logits: `[B, T, V]`
/// - targets: `B * T` ids
///
/// # Panics
/// If `targets.len() != B * T`.
pub fn masked_cross_entropy(logits: Tensor<3>, targets: &[u32], no_label: u32) -> MaskedLoss {
    let [b, t, v] = logits.dims();
    let (n, scored) = scored_targets([b, t], targets, no_label);
    let device = logits.device();
    let ids: Vec<i64> = targets.iter().map(|&id| i64::from(id)).collect();
    let mask: Vec<f32> = targets
        .iter()
        .map(|&id| f32::from(u8::from(id != no_label)))
        .collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &device); // [N]
    let mask = Tensor::<1>::from_data(TensorData::new(mask, [n]), &device); // [N]

    let logits = logits.reshape([n, v]); // [N, V]
    let log_probs = log_softmax(logits.clone(), 1); // [N, V]
    let picked = log_probs
        .gather(1, ids.clone().reshape([n, 1]))
        .reshape([n]); // [N]
    let loss = -(picked * mask.clone()).sum() / scored.max(1) as f64; // [1]

    let predicted = logits.detach().argmax(1).reshape([n]); // [N]
    let hits = predicted.equal(ids).float() * mask; // [N]
    let correct = hits.sum().int(); // [1]

    MaskedLoss {
        loss,
        correct,
        scored,
        tokens: n,
    }
}

/// The number of positions `B * T` and of scored targets among them.
///
/// # Panics
/// If `targets.len() != B * T`.
pub(crate) fn scored_targets([b, t]: [usize; 2], targets: &[u32], no_label: u32) -> (usize, usize) {
    let n = b * t;
    assert_eq!(
        targets.len(),
        n,
        "targets must hold B*T = {n} ids, got {}",
        targets.len()
    );
    (n, targets.iter().filter(|&&id| id != no_label).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn device() -> Device {
        mnemo_backend::test_device()
    }

    /// -log softmax(row)[k], computed on the host.
    fn nll(row: &[f64], k: usize) -> f64 {
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = row.iter().map(|x| (x - max).exp()).sum::<f64>().ln() + max;
        log_sum - row[k]
    }

    #[test]
    fn matches_a_hand_computation() {
        // B = 1, T = 3, V = 3; position 1 is not scored (target 0 = no label).
        let rows = [[2.0, 1.0, 0.0], [0.0, 5.0, 0.0], [0.5, 0.2, 3.0]];
        let targets = [1u32, 0, 2];
        let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
        let logits = Tensor::<3>::from_data(TensorData::new(flat, [1, 3, 3]), &device());

        let out = masked_cross_entropy(logits, &targets, 0);
        let stats = out.stats();

        let rows64: Vec<Vec<f64>> = rows.iter().map(|r| r.to_vec()).collect();
        let expected = (nll(&rows64[0], 1) + nll(&rows64[2], 2)) / 2.0;
        assert!(
            (stats.loss - expected).abs() < 1e-5,
            "{} vs {expected}",
            stats.loss
        );
        // Position 0 predicts 0 (wrong), position 2 predicts 2 (right); position 1 is ignored
        // although its argmax (1) differs from its target.
        assert_eq!(stats.correct, 1);
        assert_eq!(stats.scored, 2);
        assert_eq!(stats.tokens, 3);
    }

    /// The evaluation's host pass gives the graph's loss and accuracy: rows of a segment in
    /// the view of a larger tensor (a slice), unscored rows, a tie for the largest logit, no
    /// scored row at all; on a plain device (read in place, as evaluation runs) and on an
    /// autodiff one (read back).
    #[test]
    fn loss_stats_without_a_graph_match_the_graph() {
        for device in [device().inner(), device()] {
            loss_stats_match_on(&device);
        }
    }

    fn loss_stats_match_on(device: &Device) {
        let (b, t, v) = (3, 5, 11);
        let values: Vec<f32> = (0..2 * b * t * v)
            .map(|i| ((i * 7919 % 97) as f32 - 48.0) * 0.11)
            .collect();
        let mut values = values;
        let row2 = (b * t + 2) * v; // row 2 of the slice below
        values[row2 + 4] = 9.0;
        values[row2 + 6] = 9.0; // a tie: the first (4) counts
        let whole = Tensor::<3>::from_data(TensorData::new(values, [2 * b, t, v]), device);
        let logits = whole.slice([b..2 * b, 0..t, 0..v]);
        let mut targets: Vec<u32> = (0..b * t).map(|i| (i * 5 % v) as u32).collect();
        targets[2] = 4;
        targets[3] = 10; // 10 = no label below
        targets[7] = 10;
        for no_label in [10, u32::MAX] {
            let want = masked_cross_entropy(logits.clone(), &targets, no_label).stats();
            let got = masked_loss_stats(logits.clone(), &targets, no_label);
            assert!(want.correct >= 1, "row 2 is correct");
            assert!((got.loss - want.loss).abs() < 1e-5, "{got:?} vs {want:?}");
            assert_eq!(
                (got.correct, got.scored, got.tokens),
                (want.correct, want.scored, want.tokens)
            );
        }
        let none = masked_loss_stats(logits, &vec![10; b * t], 10);
        assert_eq!((none.loss, none.correct, none.scored), (0.0, 0, 0));
    }

    #[test]
    fn no_scored_position_gives_zero_loss_and_zero_gradient() {
        let device = device();
        let logits = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, -1.0, 0.5, 0.25], [2, 1, 2]),
            &device,
        )
        .require_grad();
        let out = masked_cross_entropy(logits.clone(), &[0, 0], 0);
        assert_eq!(
            out.stats(),
            LossStats {
                loss: 0.0,
                correct: 0,
                scored: 0,
                tokens: 2
            }
        );
        let grads = out.loss.backward();
        let grad = logits.grad(&grads).unwrap();
        assert_eq!(grad.abs().sum().into_scalar::<f32>(), 0.0);
    }

    #[test]
    fn gradient_is_softmax_minus_one_hot_over_scored_count() {
        let device = device();
        let row = [0.3f32, -0.2, 1.1];
        let logits = Tensor::<3>::from_data(TensorData::new(row.to_vec(), [1, 1, 3]), &device)
            .require_grad();
        let out = masked_cross_entropy(logits.clone(), &[2], 0);
        let grads = out.loss.backward();
        let grad: Vec<f32> = logits
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let z: f32 = row.iter().map(|x| x.exp()).sum();
        for (k, g) in grad.iter().enumerate() {
            let expected = row[k].exp() / z - if k == 2 { 1.0 } else { 0.0 };
            assert!(
                (g - expected).abs() < 1e-5,
                "d/dlogit {k}: {g} vs {expected}"
            );
        }
    }
}
