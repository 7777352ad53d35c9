//! Greedy and beam search for [`Seq2Seq`](crate::Seq2Seq), batched over sentences.
//!
//! Beam search keeps the K hypotheses of every sentence as B·K rows of one [`DecodeState`],
//! reordered after each step with [`DecodeState::select`]; sentences that are done leave the
//! state. Scoring follows fairseq: a finished hypothesis of n tokens (EOS included) with summed
//! log-probability `lp` scores `lp / n^α` (α = [`SearchConfig::length_penalty`]); a sentence is
//! done once K hypotheses have finished, or at its length cap, where every open hypothesis is
//! closed with EOS. Among each step's 2K best continuations per sentence, EOS continuations
//! ranked in the first K finish and the non-EOS ones fill the K beams (so K = 1 is greedy). Results exclude BOS, EOS and PAD.
use burn::tensor::{Int, Tensor, TensorData};
use mnemo_core::host::to_vec;
use mnemo_kernels::{Isa, block_maxima, log_softmax_rows};

use crate::seq2seq::{BOS, EOS, Encoded, PAD, Seq2Seq};
use crate::seq2seq_cache::DecodeState;

/// Settings of [`beam_search`] (and of [`greedy_search`]'s length cap).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// Beams per sentence K (≥ 1).
    pub beam_size: usize,
    /// Length penalty α: hypotheses are ranked by `sum log p / len^α` (0 = plain sum).
    pub length_penalty: f64,
    /// Target length cap `a·src_len + b` (src_len counts non-PAD source tokens), capped by the
    /// model's `max_len`.
    pub max_len_a: f64,
    /// See [`max_len_a`](Self::max_len_a).
    pub max_len_b: usize,
}

impl Default for SearchConfig {
    /// Beam 4, α = 1, cap `1.5·src_len + 10` (then the model's `max_len`).
    fn default() -> Self {
        Self {
            beam_size: 4,
            length_penalty: 1.0,
            max_len_a: 1.5,
            max_len_b: 10,
        }
    }
}

impl SearchConfig {
    /// The cap on generated tokens (EOS excluded) for a source of `src_len` tokens.
    pub fn max_len(&self, src_len: usize, model_max_len: usize) -> usize {
        let cap = (self.max_len_a * src_len as f64).floor() as usize + self.max_len_b;
        cap.min(model_max_len)
    }
}

/// Log-probabilities of the next token with PAD and BOS ruled out (set to -inf, as fairseq does;
/// the others keep their model log-probability), as host rows: what the searches rank. The
/// log-softmax runs on the host kernels (`mnemo_kernels::log_softmax_rows`), one vectorised
/// pass per row instead of a scalar `exp` per logit.
///
/// # Shapes
/// - logits: `[R, V]`
/// - output: `[R, V]` row-major
pub fn next_token_log_probs(logits: Tensor<2>) -> Vec<f32> {
    let [_, vocab] = logits.dims();
    let mut logp = to_vec(logits);
    log_softmax_rows(Isa::detect(), &mut logp, vocab);
    for row in logp.chunks_exact_mut(vocab) {
        row[PAD as usize] = f32::NEG_INFINITY;
        row[BOS as usize] = f32::NEG_INFINITY;
    }
    logp
}

/// The first largest entry of each row.
///
/// # Shapes
/// - rows: `[R, V]` row-major; output `[R]`
fn argmax_rows(rows: &[f32], vocab: usize) -> Vec<i64> {
    rows.chunks_exact(vocab)
        .map(|row| {
            let mut best = 0;
            for (t, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = t;
                }
            }
            best as i64
        })
        .collect()
}

fn ids_tensor(ids: &[i64], device: &burn::tensor::Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(ids.to_vec(), [ids.len()]), device)
}

/// Greedy decoding up to the model's `max_len` tokens per sentence.
///
/// # Shapes
/// - src: `[B, S]`, PAD-padded
pub fn greedy(model: &Seq2Seq, src: Tensor<2, Int>) -> Vec<Vec<u32>> {
    let unbounded = SearchConfig {
        beam_size: 1,
        length_penalty: 0.0,
        max_len_a: 0.0,
        max_len_b: usize::MAX / 2,
    };
    greedy_search(model, src, &unbounded)
}

/// Greedy decoding with the length cap of `search` (its beam size and penalty are unused).
///
/// # Shapes
/// - src: `[B, S]`, PAD-padded
pub fn greedy_search(model: &Seq2Seq, src: Tensor<2, Int>, search: &SearchConfig) -> Vec<Vec<u32>> {
    let device = src.device();
    let enc = model.encode(src);
    let caps: Vec<usize> = enc
        .src_lens
        .iter()
        .map(|&n| search.max_len(n, model.max_len))
        .collect();
    let mut state = model.start(&enc);
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); enc.rows()];
    // Rows still decoding: `alive[r]` is the sentence of state row r.
    let mut alive: Vec<usize> = (0..enc.rows()).filter(|&i| caps[i] > 0).collect();
    if alive.len() < enc.rows() {
        state.select(&alive);
    }
    let mut tokens = vec![BOS as i64; alive.len()];
    while !alive.is_empty() {
        let logits = model.step(&mut state, ids_tensor(&tokens, &device)); // [B',V]
        let vocab = logits.dims()[1];
        let best = argmax_rows(&next_token_log_probs(logits), vocab);
        let mut keep = Vec::with_capacity(alive.len());
        for (r, &i) in alive.iter().enumerate() {
            let token = best[r] as u32;
            if token == EOS {
                continue;
            }
            out[i].push(token);
            if out[i].len() < caps[i] {
                keep.push(r);
            }
        }
        if keep.len() < alive.len() {
            state.select(&keep);
        }
        tokens = keep.iter().map(|&r| best[r]).collect();
        alive = keep.iter().map(|&r| alive[r]).collect();
    }
    out
}

/// One open hypothesis.
#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    score: f32,
}

/// Per-sentence search bookkeeping.
#[derive(Debug)]
struct Sentence {
    beams: Vec<Beam>,
    finished: Vec<(f64, Vec<u32>)>,
    cap: usize,
}

/// Beam search (see the [module docs](self)); one hypothesis per sentence.
///
/// # Shapes
/// - src: `[B, S]`, PAD-padded
pub fn beam_search(model: &Seq2Seq, src: Tensor<2, Int>, search: &SearchConfig) -> Vec<Vec<u32>> {
    assert!(search.beam_size >= 1, "beam_size must be at least 1");
    let k = search.beam_size;
    let device = src.device();
    let enc: Encoded = model.encode(src);
    let b = enc.rows();
    let mut sentences: Vec<Sentence> = enc
        .src_lens
        .iter()
        .map(|&n| Sentence {
            beams: vec![Beam {
                tokens: Vec::new(),
                score: 0.0,
            }],
            finished: Vec::new(),
            cap: search.max_len(n, model.max_len),
        })
        .collect();
    // State rows: for each live sentence (in `live` order), its beams in order.
    let mut live: Vec<usize> = (0..b).collect();
    let mut state: DecodeState = model.start(&enc);
    let mut tokens = vec![BOS as i64; b];
    let close = |lp: f32, len: usize| lp as f64 / (len as f64).powf(search.length_penalty);
    let (isa, mut maxima) = (Isa::detect(), Vec::new());
    while !live.is_empty() {
        let logits = model.step(&mut state, ids_tensor(&tokens, &device)); // [R,V]
        let [rows, vocab] = logits.dims();
        let logp = next_token_log_probs(logits);
        debug_assert_eq!(logp.len(), rows * vocab);
        let mut next_rows = Vec::new();
        let mut next_tokens = Vec::new();
        let mut next_live = Vec::new();
        let mut row0 = 0;
        for &i in &live {
            let sent = &mut sentences[i];
            let n_beams = sent.beams.len();
            let len = sent.beams[0].tokens.len(); // tokens generated before this step
            if len >= sent.cap {
                // Length cap: close every open hypothesis with EOS.
                for (j, beam) in sent.beams.iter().enumerate() {
                    let lp = beam.score + logp[(row0 + j) * vocab + EOS as usize];
                    sent.finished
                        .push((close(lp, len + 1), beam.tokens.clone()));
                }
                sent.beams.clear();
                row0 += n_beams;
                continue;
            }
            // The 2K best (beam, token) continuations of this sentence: each of the sentence's
            // 2K best is among its beam's 2K best, so those are gathered per beam, then ranked.
            let top = 2 * k;
            let mut cands: Vec<(f32, usize, u32)> = Vec::with_capacity(n_beams * top);
            for (j, beam) in sent.beams.iter().enumerate() {
                let row = &logp[(row0 + j) * vocab..(row0 + j + 1) * vocab];
                block_maxima(isa, row, SKIP_BLOCK, &mut maxima);
                best_of_row((row, &maxima), beam.score, j, top, &mut cands);
            }
            cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            cands.truncate(top);
            let mut beams = Vec::with_capacity(k);
            for (rank, (score, j, token)) in cands.into_iter().enumerate() {
                if token == EOS {
                    // As fairseq: only an EOS ranked among the K best finishes a hypothesis.
                    if rank < k && sent.finished.len() < k {
                        sent.finished
                            .push((close(score, len + 1), sent.beams[j].tokens.clone()));
                    }
                } else if beams.len() < k {
                    let mut t = sent.beams[j].tokens.clone();
                    t.push(token);
                    beams.push(Beam { tokens: t, score });
                    next_rows.push(row0 + j);
                    next_tokens.push(token as i64);
                }
                if beams.len() == k && sent.finished.len() >= k {
                    break;
                }
            }
            if sent.finished.len() >= k || beams.is_empty() {
                // Done: drop the rows this sentence just queued.
                next_rows.truncate(next_rows.len() - beams.len());
                next_tokens.truncate(next_tokens.len() - beams.len());
                sent.beams.clear();
            } else {
                sent.beams = beams;
                next_live.push(i);
            }
            row0 += n_beams;
        }
        if next_live.is_empty() {
            break;
        }
        state.select(&next_rows);
        tokens = next_tokens;
        live = next_live;
    }
    sentences
        .into_iter()
        .map(|s| {
            s.finished
                .into_iter()
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, t)| t)
                .unwrap_or_default()
        })
        .collect()
}

/// Tokens per block of [`best_of_row`]'s skipping.
const SKIP_BLOCK: usize = 256;

/// Append the `top` best continuations `(score + lp, j, token)` of beam `j` (log-probabilities
/// `row`) to `out`: highest score first, the lower token on ties, as the sentence-wide ranking
/// orders them. One pass over the vocabulary with a sorted buffer of `top` entries; once the
/// buffer is full, a block of [`SKIP_BLOCK`] tokens whose largest lp (`maxima`, from
/// [`block_maxima`]) is below the worst kept entry is skipped after one comparison (most of a
/// vocabulary), which changes nothing: every score of the block is at most `score + its largest
/// lp` (rounding is monotone), and a NaN never skips.
fn best_of_row(
    (row, maxima): (&[f32], &[f32]),
    score: f32,
    j: usize,
    top: usize,
    out: &mut Vec<(f32, usize, u32)>,
) {
    let start = out.len();
    for (b, (block, &max)) in row.chunks(SKIP_BLOCK).zip(maxima).enumerate() {
        if out.len() - start == top && score + max < out[out.len() - 1].0 {
            continue;
        }
        for (i, &lp) in block.iter().enumerate() {
            let t = b * SKIP_BLOCK + i;
            let s = score + lp;
            if out.len() - start == top {
                // Tokens come in increasing order, so a tie never beats an entry already kept.
                if s.total_cmp(&out[out.len() - 1].0).is_le() {
                    continue;
                }
                out.pop();
            }
            let at = start + out[start..].partition_point(|c| c.0.total_cmp(&s).is_ge());
            out.insert(at, (s, j, t as u32));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-beam buffer keeps exactly the first `top` of a full sort (score descending,
    /// lower token first on ties), ties and -inf included, for every `top` up to past the row;
    /// also over rows long enough to skip blocks: better tokens late in the row (few skips) or
    /// early (many), ties across blocks, a score so large that rounding ties neighbouring
    /// tokens, a NaN in a block that would be skipped.
    #[test]
    fn best_of_row_is_the_head_of_a_full_sort() {
        let short: Vec<f32> = (0..40u32)
            .map(|t| match t % 7 {
                0 => f32::NEG_INFINITY,
                _ => -((t * 13 % 11) as f32) * 0.25,
            })
            .collect();
        // Log-probability-like values, rising on average along the row, with repeats.
        let long: Vec<f32> = (0..1000u32)
            .map(|t| -8.0 + t as f32 * 0.005 - ((t * 7919 % 101) as f32) * 0.04)
            .collect();
        let falling: Vec<f32> = long.iter().rev().copied().collect();
        let mut with_nan = falling.clone();
        with_nan[613] = f32::NAN;
        // Late blocks holding values just above and exactly at kept ones (blocks to be read
        // whatever their neighbours).
        let mut sorted = falling.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let mut spiked = falling.clone();
        spiked[600] = sorted[1] + 1e-3;
        spiked[900] = sorted[2];
        spiked[999] = sorted[39] + 1e-3;
        let rows = [
            (&short, -1.5),
            (&long, -1.5),
            (&falling, -1.5),
            (&falling, -3.0e5),
            (&with_nan, -0.5),
            (&spiked, -1.5),
        ];
        for (row, score) in rows {
            for top in [1, 2, 3, 8, 39, 40, 41] {
                let mut got = vec![(9.0, 9, 9)];
                let mut maxima = Vec::new();
                block_maxima(Isa::detect(), row, SKIP_BLOCK, &mut maxima);
                best_of_row((row, &maxima), score, 2, top, &mut got);
                let mut want: Vec<(f32, usize, u32)> = row
                    .iter()
                    .enumerate()
                    .map(|(t, &lp)| (score + lp, 2, t as u32))
                    .collect();
                want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)));
                want.truncate(top);
                assert_eq!(got[0], (9.0, 9, 9), "entries before the buffer are kept");
                let same = got[1..].len() == want.len()
                    && got[1..]
                        .iter()
                        .zip(&want)
                        .all(|(g, w)| g.0.to_bits() == w.0.to_bits() && (g.1, g.2) == (w.1, w.2));
                assert!(same, "top {top} of {} at score {score}", row.len());
            }
        }
    }
}
