//! Corpus BLEU (Papineni et al., 2002) exactly as sacrebleu 2.x computes it by default.
//!
//! [`corpus_bleu`] reproduces `sacrebleu.metrics.BLEU()` with its defaults, i.e.
//! `BLEU().corpus_score(hyps, [refs])`: the "13a" tokenizer ([`crate::bleu_tokenize`]), case
//! kept, n-grams up to order 4, smoothing "exp" (the NIST/mteval-v13a method: the k-th order
//! with no match gets precision `100 / (2^k · total)`), effective order off, and the brevity
//! penalty `exp(1 − ref_len / sys_len)` when the system output is shorter. The score, counts,
//! totals, precisions and the [`Display`](std::fmt::Display) string match sacrebleu's
//! `BLEUScore` (`BLEU = 26.99 58.3/32.9/20.7/13.6 (BP = 1.000 ratio = 1.012 hyp_len = 123
//! ref_len = 121)`); `tests/bleu.rs` checks that against values sacrebleu computed
//! (`tests/fixtures/bleu/make_refs.py`).
//!
//! Differences from sacrebleu: one reference per hypothesis only; a length mismatch or an empty
//! corpus is a [`BleuError`] (sacrebleu silently truncates to the shorter list, and raises an
//! `IndexError` on an empty one).
//!
//! ```
//! use mnemo_train::bleu::corpus_bleu;
//!
//! let hyps = vec!["The cat sat on the mat.".to_string()];
//! let refs = vec!["The cat sat on the mat.".to_string()];
//! let bleu = corpus_bleu(&hyps, &refs)?;
//! assert_eq!(bleu.to_string(), "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)");
//! # Ok::<(), mnemo_train::bleu::BleuError>(())
//! ```
use std::collections::HashMap;
use std::fmt;
use std::ops::AddAssign;

use crate::bleu_tokenize::tokenize_13a_tokens;

/// The highest n-gram order BLEU counts (sacrebleu's `MAX_NGRAM_ORDER`).
pub const MAX_NGRAM_ORDER: usize = 4;

/// Why BLEU could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BleuError {
    /// The hypothesis and reference lists differ in length.
    #[error(
        "BLEU: {hypotheses} hypotheses but {references} references; each hypothesis needs exactly \
         one reference, in the same order"
    )]
    LengthMismatch {
        /// Number of hypotheses.
        hypotheses: usize,
        /// Number of references.
        references: usize,
    },
    /// There are no segments at all.
    #[error("BLEU: no segments to score (0 hypotheses and 0 references)")]
    Empty,
}

/// BLEU's sufficient statistics, summed over segments: lengths and clipped n-gram matches.
///
/// Adding the statistics of two sets of segments gives those of their union, so a caller can
/// accumulate them batch by batch and call [`Bleu::from_stats`] at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleuStats {
    /// Number of hypothesis tokens (after 13a tokenization).
    pub sys_len: u64,
    /// Number of reference tokens.
    pub ref_len: u64,
    /// Matched n-grams per order 1..=4, each clipped by its count in the reference.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams per order 1..=4.
    pub totals: [u64; MAX_NGRAM_ORDER],
}

impl BleuStats {
    /// The statistics of one hypothesis against its reference, both tokenized with 13a after
    /// right-stripping whitespace (sacrebleu's `_preprocess_segment`, no lowercasing).
    pub fn segment(hypothesis: &str, reference: &str) -> Self {
        let hyp = tokenize_13a_tokens(hypothesis);
        let reference = tokenize_13a_tokens(reference);
        let mut stats = Self {
            sys_len: hyp.len() as u64,
            ref_len: reference.len() as u64,
            ..Self::default()
        };
        for n in 1..=MAX_NGRAM_ORDER {
            let ref_ngrams = ngram_counts(&reference, n);
            for (ngram, hyp_count) in ngram_counts(&hyp, n) {
                stats.totals[n - 1] += hyp_count;
                if let Some(&ref_count) = ref_ngrams.get(ngram) {
                    stats.counts[n - 1] += hyp_count.min(ref_count);
                }
            }
        }
        stats
    }
}

impl AddAssign for BleuStats {
    fn add_assign(&mut self, other: Self) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for n in 0..MAX_NGRAM_ORDER {
            self.counts[n] += other.counts[n];
            self.totals[n] += other.totals[n];
        }
    }
}

/// A BLEU score with its parts, as sacrebleu's `BLEUScore` reports them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bleu {
    /// The score, 0..=100.
    pub score: f64,
    /// Matched (clipped) n-grams per order 1..=4.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams per order 1..=4.
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// Smoothed n-gram precisions in percent, per order 1..=4 (all 0 when nothing matched).
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty: 1 unless the output is shorter than the references.
    pub bp: f64,
    /// Hypothesis tokens in the corpus.
    pub sys_len: u64,
    /// Reference tokens in the corpus.
    pub ref_len: u64,
}

impl Bleu {
    /// Corpus BLEU from summed statistics, with sacrebleu's default settings (exp smoothing,
    /// effective order off).
    pub fn from_stats(stats: &BleuStats) -> Self {
        compute_bleu(stats, false)
    }

    /// `sys_len / ref_len` (0 when there are no reference tokens), as sacrebleu prints it.
    pub fn ratio(&self) -> f64 {
        if self.ref_len == 0 {
            0.0
        } else {
            self.sys_len as f64 / self.ref_len as f64
        }
    }
}

impl fmt::Display for Bleu {
    /// sacrebleu's `str(BLEUScore)`, e.g.
    /// `BLEU = 26.99 58.3/32.9/20.7/13.6 (BP = 1.000 ratio = 1.012 hyp_len = 123 ref_len = 121)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [p1, p2, p3, p4] = self.precisions;
        write!(
            f,
            "BLEU = {:.2} {p1:.1}/{p2:.1}/{p3:.1}/{p4:.1} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            self.score,
            self.bp,
            self.ratio(),
            self.sys_len,
            self.ref_len
        )
    }
}

/// Corpus BLEU of `hypotheses` against one reference each, exactly as sacrebleu 2.x's default
/// `BLEU().corpus_score(hypotheses, [references])`.
///
/// Errors when the lists differ in length or are empty.
pub fn corpus_bleu(hypotheses: &[String], references: &[String]) -> Result<Bleu, BleuError> {
    if hypotheses.len() != references.len() {
        return Err(BleuError::LengthMismatch {
            hypotheses: hypotheses.len(),
            references: references.len(),
        });
    }
    if hypotheses.is_empty() {
        return Err(BleuError::Empty);
    }
    let mut stats = BleuStats::default();
    for (hyp, reference) in hypotheses.iter().zip(references) {
        stats += BleuStats::segment(hyp, reference);
    }
    Ok(Bleu::from_stats(&stats))
}

/// Sentence BLEU of one hypothesis against one reference, exactly as sacrebleu 2.x's
/// `sacrebleu.sentence_bleu(hypothesis, [reference])`: like [`corpus_bleu`] on one segment but
/// with *effective order* on (orders beyond the longest one the hypothesis has are left out of
/// the geometric mean), so short sentences are not scored 0.
pub fn sentence_bleu(hypothesis: &str, reference: &str) -> Bleu {
    compute_bleu(&BleuStats::segment(hypothesis, reference), true)
}

/// Counts of the `n`-grams of `tokens`.
fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], u64> {
    let mut counts = HashMap::new();
    for ngram in tokens.windows(n) {
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// sacrebleu's `my_log`: `ln`, with 0 mapped to −9999999999 instead of −∞.
fn floored_ln(x: f64) -> f64 {
    if x == 0.0 { -9_999_999_999.0 } else { x.ln() }
}

/// sacrebleu's `BLEU.compute_bleu` with `smooth_method = "exp"`, step for step (the same
/// floating-point operations in the same order, so scores agree to the last bit).
fn compute_bleu(stats: &BleuStats, effective_order: bool) -> Bleu {
    let BleuStats {
        sys_len,
        ref_len,
        counts,
        totals,
    } = *stats;
    let bp = if sys_len < ref_len {
        if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut precisions = [0.0; MAX_NGRAM_ORDER];
    let mut bleu = Bleu {
        score: 0.0,
        counts,
        totals,
        precisions,
        bp,
        sys_len,
        ref_len,
    };
    // Early stop when nothing matches at all (sacrebleu issue #141).
    if counts.iter().all(|&c| c == 0) {
        return bleu;
    }
    let mut smooth_mteval = 1.0_f64;
    let mut eff_order = MAX_NGRAM_ORDER;
    for n in 1..=MAX_NGRAM_ORDER {
        let (correct, total) = (counts[n - 1], totals[n - 1]);
        if total == 0 {
            break;
        }
        if effective_order {
            eff_order = n;
        }
        precisions[n - 1] = if correct == 0 {
            smooth_mteval *= 2.0;
            100.0 / (smooth_mteval * total as f64)
        } else {
            100.0 * correct as f64 / total as f64
        };
    }
    let log_sum = precisions[..eff_order]
        .iter()
        .fold(0.0, |sum, &p| sum + floored_ln(p));
    bleu.precisions = precisions;
    bleu.score = bp * (log_sum / eff_order as f64).exp();
    bleu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_exp_smoothing_and_brevity_penalty() {
        // hyp "a b c" vs ref "a b d e": 2/3 unigrams, 1/2 bigrams, 0/1 trigram, no 4-gram.
        let stats = BleuStats::segment("a b c", "a b d e");
        assert_eq!(stats.counts, [2, 1, 0, 0]);
        assert_eq!(stats.totals, [3, 2, 1, 0]);
        let bleu = Bleu::from_stats(&stats);
        let p3 = 100.0 / (2.0 * 1.0);
        assert_eq!(bleu.precisions, [200.0 / 3.0, 50.0, p3, 0.0]);
        // Order 4 has no n-grams: the loop stops and its precision stays 0 -> score 0.
        assert_eq!(bleu.score, 0.0);
        assert_eq!(bleu.bp, (1.0 - 4.0 / 3.0_f64).exp());
        // With effective order the geometric mean covers orders 1..=3 only.
        let sentence = sentence_bleu("a b c", "a b d e");
        let expected = bleu.bp * ((((200.0_f64 / 3.0).ln() + 50.0_f64.ln()) + p3.ln()) / 3.0).exp();
        assert_eq!(sentence.score, expected);
    }
}
