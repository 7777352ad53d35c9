//! Beam search and greedy decoding: beam 1 equals greedy, beam search against exhaustive
//! search on a tiny vocabulary, and row selection of the decode state.
use super::*;

/// Sum of log-probabilities of `hyp` followed by EOS, under teacher forcing.
fn model_score(model: &Seq2Seq, src: Tensor<2, Int>, hyp: &[u32]) -> f64 {
    let device = src.device();
    let vocab = model.vocab_size();
    let mut tgt_in = vec![BOS as i64];
    tgt_in.extend(hyp.iter().map(|&t| t as i64));
    let mut out: Vec<i64> = hyp.iter().map(|&t| t as i64).collect();
    out.push(EOS as i64);
    let n = tgt_in.len();
    let logits = model.forward(
        src,
        Tensor::from_data(TensorData::new(tgt_in, [1, n]), &device),
    );
    let logp: Vec<f32> = log_softmax(logits, 2)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    out.iter()
        .enumerate()
        .map(|(t, &y)| logp[t * vocab + y as usize] as f64)
        .sum()
}

fn search(alpha: f64, k: usize) -> SearchConfig {
    SearchConfig {
        beam_size: k,
        length_penalty: alpha,
        max_len_a: 1.0,
        max_len_b: 3,
    }
}

/// The searches' host log-probabilities equal burn's `log_softmax` over the logits, PAD and
/// BOS ruled out.
#[test]
fn next_token_log_probs_are_the_log_softmax() {
    let device = mnemo_backend::test_device().inner();
    let (rows, vocab) = (3, 1001);
    let data: Vec<f32> = (0..rows * vocab)
        .map(|i| ((i * 7919) % 1000) as f32 / 40.0 - 12.0)
        .collect();
    let logits = Tensor::<2>::from_data(TensorData::new(data, [rows, vocab]), &device);
    let want: Vec<f32> = log_softmax(logits.clone(), 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let got = next_token_log_probs(logits);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let t = (i % vocab) as u32;
        if t == PAD || t == BOS {
            assert_eq!(*g, f32::NEG_INFINITY, "token {t} is ruled out");
        } else {
            assert!(
                (g - w).abs() < 1e-5,
                "row {}, token {t}: {g} vs {w}",
                i / vocab
            );
        }
    }
}

#[test]
fn beam_of_one_equals_greedy() {
    let device = mnemo_backend::test_device().inner();
    for kind in [
        DecoderKind::Transformer,
        DecoderKind::Feedback,
        DecoderKind::Can,
    ] {
        let model = seeded(
            &Seq2SeqConfig {
                max_len: 12,
                ..Seq2SeqConfig::tiny(VOCAB, kind)
            },
            11,
            &device,
        );
        let src = batch(&[6, 2, 4, 7], 7, 12, false, &device);
        let g = greedy_search(&model, src.clone(), &search(1.0, 1));
        let b = beam_search(&model, src.clone(), &search(1.0, 1));
        assert_eq!(g, b, "{kind:?}");
        assert!(
            g.iter().any(|h| !h.is_empty()),
            "{kind:?}: every hypothesis is empty"
        );
        for (h, &n) in g.iter().zip(&[6usize, 2, 4, 7]) {
            assert!(h.len() <= n + 3, "{kind:?}: hypothesis over the length cap");
            assert!(
                h.iter().all(|&t| t != BOS && t != EOS && t != PAD),
                "{kind:?}: special token in output"
            );
        }
        // Plain greedy decodes up to the model's max_len.
        let free = greedy(&model, src);
        assert!(free.iter().all(|h| h.len() <= 12));
    }
}

/// Vocabulary of the exhaustive-search test: PAD, UNK, BOS, EOS and two ordinary tokens, so
/// three tokens continue a hypothesis (PAD and BOS are banned, EOS closes it).
const TINY_VOCAB: usize = 6;
/// Length cap of the exhaustive-search test (generated tokens, EOS excluded).
const TINY_CAP: usize = 3;

/// Every hypothesis the search can return for one sentence, with its summed log-probability
/// (its EOS included), by breadth-first expansion of the decoding state: each open hypothesis
/// is closed with EOS and, below `cap` tokens, continued with every token that is neither EOS
/// nor banned (-inf). Sums accumulate in f32 in token order, as the beam search's do.
///
/// # Shapes
/// - src: `[1, S]`
fn exhaustive(model: &Seq2Seq, src: Tensor<2, Int>, cap: usize) -> Vec<(Vec<u32>, f32)> {
    let device = src.device();
    let mut state = model.start(&model.encode(src));
    let mut open: Vec<(Vec<u32>, f32)> = vec![(Vec::new(), 0.0)];
    let mut feed = vec![BOS as i64];
    let mut closed = Vec::new();
    loop {
        let logits = model.step(&mut state, ids(&feed, &device)); // [R,V]
        let vocab = logits.dims()[1];
        let logp = next_token_log_probs(logits);
        let (mut next, mut rows) = (Vec::new(), Vec::new());
        feed.clear();
        for (r, (hyp, lp)) in open.iter().enumerate() {
            let row = &logp[r * vocab..(r + 1) * vocab];
            closed.push((hyp.clone(), lp + row[EOS as usize]));
            if hyp.len() == cap {
                continue;
            }
            for (t, &l) in row
                .iter()
                .enumerate()
                .filter(|&(t, l)| t != EOS as usize && l.is_finite())
            {
                next.push(([hyp.as_slice(), &[t as u32]].concat(), lp + l));
                rows.push(r);
                feed.push(t as i64);
            }
        }
        if next.is_empty() {
            return closed;
        }
        state.select(&rows);
        open = next;
    }
}

/// The search's ranking score of a finished hypothesis of `len` tokens: `lp / (len + 1)^α`
/// (its EOS counted), as in [`mnemo_models::seq2seq_search`].
fn penalised(lp: f32, len: usize, alpha: f64) -> f64 {
    lp as f64 / ((len + 1) as f64).powf(alpha)
}

/// On a tiny vocabulary with a short cap every hypothesis is enumerated: a beam wide enough to
/// keep them all returns the exhaustive optimum, narrower beams and greedy never score above
/// it, and a sentence's result does not depend on the batch it is decoded in.
#[test]
fn beam_search_matches_exhaustive_search_on_a_tiny_vocabulary() {
    let device = mnemo_backend::test_device().inner();
    let grow = TINY_VOCAB - 3; // continuations of an open hypothesis
    let hypotheses: usize = (0..=TINY_CAP as u32).map(|l| grow.pow(l)).sum();
    // The beam finishes only EOS continuations ranked among a step's K best (fairseq's rule),
    // so it is exhaustive once K covers every finite candidate of the widest step: the
    // grow^(cap-1) hypotheses open before the cap, each with grow + 1 continuations (EOS too).
    let full = grow.pow(TINY_CAP as u32 - 1) * (grow + 1);
    let lens = [5usize, 2, 4, 1];
    let mut optimum_lens = std::collections::BTreeSet::new();
    for kind in [
        DecoderKind::Transformer,
        DecoderKind::Feedback,
        DecoderKind::Can,
    ] {
        let config = Seq2SeqConfig {
            max_len: TINY_CAP,
            ..Seq2SeqConfig::tiny(TINY_VOCAB, kind)
        };
        let model = seeded(&config, 21, &device);
        let src = padded_ids(&lens, 5, TINY_VOCAB, 22, false, &device);
        for alpha in [0.0, 0.5, 1.0] {
            let search = |k| SearchConfig {
                beam_size: k,
                length_penalty: alpha,
                max_len_a: 0.0,
                max_len_b: TINY_CAP,
            };
            let widths = [1, 2, 3, full];
            let batched: Vec<_> = widths
                .iter()
                .map(|&k| beam_search(&model, src.clone(), &search(k)))
                .collect();
            let greedy_out = greedy_search(&model, src.clone(), &search(1));
            for (i, &n) in lens.iter().enumerate() {
                let case = format!("{kind:?} alpha {alpha} sentence {i}");
                let row = src.clone().slice([i..i + 1, 0..n]);
                let all = exhaustive(&model, row.clone(), TINY_CAP);
                assert_eq!(all.len(), hypotheses, "{case}");
                let score = |hyp: &[u32]| {
                    let (_, lp) = all
                        .iter()
                        .find(|(h, _)| h == hyp)
                        .unwrap_or_else(|| panic!("{case}: {hyp:?} is no hypothesis"));
                    penalised(*lp, hyp.len(), alpha)
                };
                let (best, best_lp) = all
                    .iter()
                    .max_by(|a, b| {
                        penalised(a.1, a.0.len(), alpha).total_cmp(&penalised(
                            b.1,
                            b.0.len(),
                            alpha,
                        ))
                    })
                    .unwrap();
                let best_score = penalised(*best_lp, best.len(), alpha);
                optimum_lens.insert(best.len());
                // The enumeration (cached steps) agrees with teacher forcing.
                let forced = model_score(&model, row.clone(), best);
                assert!(
                    (forced - *best_lp as f64).abs() < 1e-4,
                    "{case}: step sum {best_lp} vs forward {forced}"
                );
                for (&k, out) in widths.iter().zip(&batched) {
                    let alone = beam_search(&model, row.clone(), &search(k)).remove(0);
                    assert_eq!(alone, out[i], "{case} K={k}: batched beam differs");
                    let got = score(&alone);
                    assert!(
                        got <= best_score + 1e-5,
                        "{case} K={k}: beam {got} above the optimum {best_score}"
                    );
                    if k == full {
                        // Equal hypotheses, or (within rounding) a tie for the optimum.
                        assert!(
                            alone == *best || (got - best_score).abs() < 1e-5,
                            "{case}: the full beam found {alone:?} ({got}), the optimum is {best:?} ({best_score})"
                        );
                    }
                }
                assert_eq!(
                    greedy_out[i], batched[0][i],
                    "{case}: greedy differs from a beam of one"
                );
            }
        }
    }
    // Not vacuous: the optima do not all have one length, so the search had to compare lengths.
    assert!(
        optimum_lens.len() > 1,
        "every optimum has length {optimum_lens:?}"
    );
}

#[test]
fn select_reorders_and_duplicates_rows() {
    for_each_model(configs(), seeded_with(5), |name, model, device| {
        let src = batch(&[5, 3], 5, 14, false, device);
        let tgt = batch(&[6, 6], 6, 15, true, device);
        let enc = model.encode(src.clone());
        let mut state = model.start(&enc);
        for t in 0..4 {
            model.step(&mut state, tgt.clone().narrow(1, t, 1).squeeze_dim(1));
        }
        state.select(&[1, 1, 0]);
        assert_eq!(state.rows(), 3);
        let order = ids(&[1, 1, 0], device);
        let reference = model.forward(
            src.clone().select(0, order.clone()),
            tgt.clone().select(0, order.clone()),
        );
        for t in 4..6 {
            let logits = model.step(
                &mut state,
                tgt.clone()
                    .select(0, order.clone())
                    .narrow(1, t, 1)
                    .squeeze_dim(1),
            );
            let d = max_abs_diff(logits, reference.clone().narrow(1, t, 1).squeeze_dim(1));
            assert!(d < 1e-4, "{name}: step {t} after select differs by {d}");
        }
        let d = max_abs_diff(
            enc.select(order.clone()).states,
            model.encode(src.select(0, order)).states,
        );
        assert!(d < 1e-5, "{name}: Encoded::select differs by {d}");
    });
}

/// Selects that keep every row's source sentence (beams of one sentence reordered: the
/// cross-attention memory is left as it is) and selects that change them, in sequence, with
/// rows of one source holding different decoder histories: every step's logits equal the
/// teacher-forced forward of the rows' sources and histories.
#[test]
fn select_keeps_the_cross_memory_only_while_sources_stay() {
    for_each_model(configs(), seeded_with(6), |name, model, device| {
        let src = batch(&[5, 3], 5, 16, false, device);
        let tgt = batch(&[7, 7, 7], 7, 17, true, device);
        let enc = model.encode(src.clone());
        let mut state = model.start(&enc);
        // Per state row: its source row and the target row its history was fed from.
        let (mut sources, mut histories) = (vec![1usize, 1, 0], vec![0usize, 1, 2]);
        state.select(&[1, 1, 0]);
        let as_ids = |v: &[usize]| ids(&v.iter().map(|&r| r as i64).collect::<Vec<_>>(), device);
        // Sources [1, 1, 0] → [1, 1, 0] (kept: rows 0 and 1 swap histories) → [0, 1, 1].
        let selects: [&[usize]; 3] = [&[], &[1, 0, 2], &[2, 0, 1]];
        for (phase, rows) in selects.iter().enumerate() {
            if !rows.is_empty() {
                state.select(rows);
                sources = rows.iter().map(|&r| sources[r]).collect();
                histories = rows.iter().map(|&r| histories[r]).collect();
            }
            let fed = tgt.clone().select(0, as_ids(&histories));
            let reference = model.forward(src.clone().select(0, as_ids(&sources)), fed.clone());
            for t in 2 * phase..2 * phase + 2 {
                let logits = model.step(&mut state, fed.clone().narrow(1, t, 1).squeeze_dim(1));
                let want = reference.clone().narrow(1, t, 1).squeeze_dim(1);
                let d = max_abs_diff(logits, want);
                assert!(
                    d < 1e-4,
                    "{name}: step {t} (sources {sources:?}) differs by {d}"
                );
            }
        }
    });
}
