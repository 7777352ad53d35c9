//! Masked cross-entropy over rows of logits and its gradient, a few vectorised passes per row
//! (maximum, shifted exponentials and their sum, scaling: `crate::softmax_rows`).
//!
//! For each row `x` (V logits) with a target `t` that is scored: `lse = max + ln Σ exp(x − max)`,
//! the loss term `lse − x_t`, the gradient `(exp(x − lse) − onehot(t)) / scored`; a row without
//! a target (`no_label`) has gradient 0. A row counts as correct when its first largest logit is
//! at `t`. As burn tensor operations this was a dozen passes over `[N, V]`.
use crate::Isa;
use crate::dispatch::on_isa;
use crate::softmax_rows::{exp_shifted, row_max};

/// The summed loss (f64, not yet divided by the scored rows) and the correct rows of
/// [`cross_entropy_rows`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossEntropySums {
    /// `Σ (lse − x_t)` over the scored rows.
    pub loss: f64,
    /// Scored rows whose first largest logit is the target.
    pub correct: usize,
}

/// Cross-entropy of each row of `logits` against `targets` (rows whose target is `no_label`
/// are not scored), writing the gradient of the mean loss over the `scored` rows into `grad`.
///
/// # Shapes
/// - logits, grad: `[rows, v]`; targets: `[rows]`
///
/// # Panics
/// If a slice's length does not match its shape or a scored target is not below `v`.
pub fn cross_entropy_rows(
    logits: &[f32],
    labels: Labels,
    v: usize,
    grad: &mut [f32],
) -> CrossEntropySums {
    check(logits, labels, v);
    assert!(
        grad.len() == logits.len(),
        "grad must be [rows, v] like the logits"
    );
    let isa = Isa::detect();
    let run = |logits: &[f32], labels: Labels, grad: &mut [f32]| {
        on_isa!(
            isa,
            rows_loop(logits: &[f32], labels: Labels, v: usize, grad: &mut [f32]) -> CrossEntropySums
        )
    };
    match split_at(labels.0.len(), v) {
        Some(h) => {
            let ((l0, l1), (g0, g1)) = (logits.split_at(h * v), grad.split_at_mut(h * v));
            let (t0, t1) = halves(labels, h);
            let (mut s0, mut s1) = (None, None);
            crate::helper::both(|| s0 = Some(run(l0, t0, g0)), || s1 = Some(run(l1, t1, g1)));
            joined(s0, s1)
        }
        None => run(logits, labels, grad),
    }
}

/// Rows × vocabulary values from which the rows are split between this thread and the helper
/// thread ([`crate::helper`]), half each: a translation batch's `[2048, 8000]` logits are a
/// tenth of its training step on one core.
const SPLIT_MIN_VALUES: usize = 1 << 16;

/// Where to split `rows` rows of `v` logits (None: not split). Whether the helper then runs
/// the second half or this thread does, the halves' sums are added in one order: the result
/// does not depend on it.
fn split_at(rows: usize, v: usize) -> Option<usize> {
    (rows >= 2 && rows * v >= SPLIT_MIN_VALUES).then_some(rows / 2)
}

/// The labels of rows `..h` and `h..`.
fn halves(labels: Labels<'_>, h: usize) -> (Labels<'_>, Labels<'_>) {
    let (targets, no_label, scored) = labels;
    let (t0, t1) = targets.split_at(h);
    ((t0, no_label, scored), (t1, no_label, scored))
}

/// The sums of both halves.
fn joined(s0: Option<CrossEntropySums>, s1: Option<CrossEntropySums>) -> CrossEntropySums {
    let (s0, s1) = (s0.expect("first half ran"), s1.expect("second half ran"));
    CrossEntropySums {
        loss: s0.loss + s1.loss,
        correct: s0.correct + s1.correct,
    }
}

/// What [`cross_entropy_rows`] scores against: the targets `[rows]`, the target value of
/// unscored rows (`no_label`), and the number of scored rows (the mean's divisor).
pub type Labels<'a> = (&'a [u32], u32, usize);

/// [`cross_entropy_rows`]' loss and correct rows without the gradient (evaluation): one
/// scratch row of `v` values instead of a `[rows, v]` gradient.
///
/// # Shapes
/// - logits: `[rows, v]`; targets: `[rows]`
///
/// # Panics
/// As [`cross_entropy_rows`].
pub fn cross_entropy_loss_rows(logits: &[f32], labels: Labels, v: usize) -> CrossEntropySums {
    check(logits, labels, v);
    let isa = Isa::detect();
    let run = |logits: &[f32], labels: Labels| {
        on_isa!(
            isa,
            loss_loop(logits: &[f32], labels: Labels, v: usize) -> CrossEntropySums
        )
    };
    match split_at(labels.0.len(), v) {
        Some(h) => {
            let (l0, l1) = logits.split_at(h * v);
            let (t0, t1) = halves(labels, h);
            let (mut s0, mut s1) = (None, None);
            crate::helper::both(|| s0 = Some(run(l0, t0)), || s1 = Some(run(l1, t1)));
            joined(s0, s1)
        }
        None => run(logits, labels),
    }
}

/// Panics unless `logits` holds `[rows, v]` values and every scored target is below `v`.
fn check(logits: &[f32], (targets, no_label, _): Labels, v: usize) {
    let rows = targets.len();
    assert!(
        v > 0 && logits.len() == rows * v,
        "logits must be [rows, v] = [{rows}, {v}]"
    );
    if let Some(&t) = targets.iter().find(|&&t| t != no_label && t as usize >= v) {
        panic!("target {t} is not below the vocabulary size {v}");
    }
}

/// One scored row `x` against target `t`: writes `exp(x − max)` into `e`, adds the loss term
/// and the hit to `sums`, and returns `Σ exp(x − max)`.
#[inline(always)]
fn score_row(x: &[f32], t: usize, e: &mut [f32], sums: &mut CrossEntropySums) -> f32 {
    let max = row_max(x);
    let arg = x.iter().position(|&xi| xi == max).unwrap_or(x.len());
    let sum = exp_shifted(x, max, e);
    sums.loss += f64::from(max + sum.ln() - x[t]);
    sums.correct += usize::from(arg == t);
    sum
}

/// The loop every instruction set compiles (inlined into [`on_isa!`]'s wrappers); targets are
/// checked.
#[inline(always)]
fn rows_loop(logits: &[f32], labels: Labels, v: usize, grad: &mut [f32]) -> CrossEntropySums {
    let (targets, no_label, scored) = labels;
    let scale = 1.0 / scored.max(1) as f32;
    let mut sums = CrossEntropySums {
        loss: 0.0,
        correct: 0,
    };
    for ((x, g), &t) in logits
        .chunks_exact(v)
        .zip(grad.chunks_exact_mut(v))
        .zip(targets)
    {
        if t == no_label {
            g.fill(0.0);
            continue;
        }
        let inv = scale / score_row(x, t as usize, g, &mut sums);
        g.iter_mut().for_each(|gi| *gi *= inv);
        g[t as usize] -= scale;
    }
    sums
}

/// [`cross_entropy_loss_rows`]' loop, as [`rows_loop`] without the gradient.
#[inline(always)]
fn loss_loop(logits: &[f32], labels: Labels, v: usize) -> CrossEntropySums {
    let (targets, no_label, _) = labels;
    let mut sums = CrossEntropySums {
        loss: 0.0,
        correct: 0,
    };
    let mut scratch = vec![0.0f32; v];
    for (x, &t) in logits.chunks_exact(v).zip(targets) {
        if t != no_label {
            score_row(x, t as usize, &mut scratch, &mut sums);
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss, count and gradient against the definition in f64 (softmax by direct sums), with
    /// one unscored row and a tie for the largest logit.
    #[test]
    fn matches_the_definition() {
        let v = 7;
        let logits: Vec<f32> = (0..4 * v)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7)
            .collect();
        let mut logits = logits;
        logits[2 * v + 3] = 9.0;
        logits[2 * v + 5] = 9.0; // tie: the first (3) counts
        let targets = [1, u32::MAX, 3, 6];
        let scored = 3;
        let mut grad = vec![f32::NAN; 4 * v];
        let sums = cross_entropy_rows(&logits, (&targets, u32::MAX, scored), v, &mut grad);
        let (mut loss, mut correct) = (0.0f64, 0);
        for (r, &t) in targets.iter().enumerate() {
            let x = &logits[r * v..(r + 1) * v];
            if t == u32::MAX {
                assert!(grad[r * v..(r + 1) * v].iter().all(|&g| g == 0.0));
                continue;
            }
            let z: f64 = x.iter().map(|&xi| (xi as f64).exp()).sum();
            loss += z.ln() - x[t as usize] as f64;
            let best = x.iter().cloned().fold(f32::MIN, f32::max);
            correct += usize::from(x.iter().position(|&xi| xi == best) == Some(t as usize));
            for i in 0..v {
                let p = (x[i] as f64).exp() / z - f64::from(u8::from(i == t as usize));
                let want = p / scored as f64;
                assert!(
                    (grad[r * v + i] as f64 - want).abs() < 1e-6,
                    "row {r} col {i}"
                );
            }
        }
        assert!((sums.loss - loss).abs() < 1e-5, "{} vs {loss}", sums.loss);
        assert_eq!(sums.correct, correct);
        // Without the gradient: the same sums, bit for bit.
        let alone = cross_entropy_loss_rows(&logits, (&targets, u32::MAX, scored), v);
        assert_eq!(alone, sums);
    }

    /// Rows enough to be split over two threads: the gradient equals the rows computed one by
    /// one (each row alone), bit for bit, and the sums equal theirs up to the order of the
    /// addition; the loss without the gradient gives the same sums bit for bit; on one core
    /// (`on_this_core`) the results are the same bits.
    #[test]
    fn split_rows_equal_the_rows_alone() {
        let (rows, v) = (37, 2000);
        assert!(split_at(rows, v).is_some(), "the test's size splits");
        let logits: Vec<f32> = (0..rows * v)
            .map(|i| ((i * 7919 % 1009) as f32 - 500.0) * 0.01)
            .collect();
        let targets: Vec<u32> = (0..rows as u32)
            .map(|r| {
                if r % 5 == 3 {
                    u32::MAX
                } else {
                    r * 31 % v as u32
                }
            })
            .collect();
        let scored = targets.iter().filter(|&&t| t != u32::MAX).count();
        let labels = (targets.as_slice(), u32::MAX, scored);
        let mut grad = vec![f32::NAN; rows * v];
        let sums = cross_entropy_rows(&logits, labels, v, &mut grad);
        let (mut loss, mut correct) = (0.0f64, 0);
        for r in 0..rows {
            let mut g = vec![f32::NAN; v];
            let one = cross_entropy_rows(
                &logits[r * v..(r + 1) * v],
                (&targets[r..r + 1], u32::MAX, scored),
                v,
                &mut g,
            );
            assert_eq!(g, grad[r * v..(r + 1) * v], "row {r}");
            loss += one.loss;
            correct += one.correct;
        }
        assert!(
            (sums.loss - loss).abs() < 1e-9 * loss.abs(),
            "{} vs {loss}",
            sums.loss
        );
        assert_eq!(sums.correct, correct);
        assert_eq!(cross_entropy_loss_rows(&logits, labels, v), sums);
        let mut alone = vec![f32::NAN; rows * v];
        let here = crate::on_this_core(|| cross_entropy_rows(&logits, labels, v, &mut alone));
        assert_eq!((here, alone), (sums, grad));
    }
}
