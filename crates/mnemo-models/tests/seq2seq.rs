//! The encoder-decoder (`Seq2Seq`) with every decoder kind (Transformer, Feedback, CAN) and both
//! encoder token mixings (attention, FNet's Fourier mixing): cached decoding equals teacher
//! forcing, target causality, source padding invariance, the Feedback decoder against a naive
//! re-implementation (forward and gradients), a CAN layer against a one-softmax host reference
//! (and not a two-softmax one), beam search against exhaustive search on a tiny vocabulary, row selection of
//! the decode state, finite-difference gradients, the encoder's parameter names (old
//! checkpoints load), and config errors. Weights and data come from explicit seeds ([`seeded`]), so the tests share no
//! generator and run in any order, in parallel.
mod common;

use burn::module::Module;
use burn::nn::{Dropout, Embedding};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::translation::{padded_ids, with_mixed_memory};
use common::{assert_causal, assert_differs, final_norm, for_each_model, max_abs, max_abs_diff};
use mnemo_core::{
    BidirectionalSelfAttention, FeedForward, Norm, NormKind, Residual, TokenMixing, host, seeded,
};
use mnemo_models::seq2seq_decoder::{CachedLayer, Decoder};
use mnemo_models::{
    BOS, DecoderConfig, DecoderKind, EOS, PAD, SearchConfig, Seq2Seq, Seq2SeqConfig, beam_search,
    greedy, greedy_search, next_token_log_probs,
};

const VOCAB: usize = 17;

/// The model of `config` with weights drawn from `seed` alone (no process-wide generator).
fn seeded(config: &Seq2SeqConfig, seed: u64, device: &Device) -> Seq2Seq {
    seeded::reinit(config.init(device), seed)
}

/// [`seeded`] with `seed`, for [`for_each_model`].
fn seeded_with(seed: u64) -> impl Fn(&Seq2SeqConfig, &Device) -> Seq2Seq {
    move |config, device| seeded(config, seed, device)
}

/// Tiny configs of every decoder kind (Transformer, Feedback, CAN), plus variants: post-norm
/// RMSNorm, per-layer memory projections, a span shorter than the target (the caches slide),
/// and the Fourier-mixing encoder (pre- and post-norm; named so that the Feedback reference
/// test, which reads the encoder's attention, skips them).
fn configs() -> Vec<(&'static str, Seq2SeqConfig)> {
    let mut out = Vec::new();
    for (kind, name, post, short) in [
        (
            DecoderKind::Transformer,
            "transformer",
            "transformer post-norm rms",
            "transformer short span",
        ),
        (
            DecoderKind::Feedback,
            "feedback",
            "feedback post-norm rms per-layer kv",
            "feedback short span",
        ),
        (
            DecoderKind::Can,
            "can",
            "can post-norm rms",
            "can short span",
        ),
    ] {
        let base = Seq2SeqConfig::tiny(VOCAB, kind);
        out.push((name, base.clone()));
        out.push((
            post,
            Seq2SeqConfig {
                placement: mnemo_core::NormPlacement::Post,
                norm: NormKind::Rms,
                decoder: match base.decoder {
                    DecoderConfig::Feedback { .. } => DecoderConfig::Feedback { share_kv: false },
                    other => other,
                },
                decoder_layers: 3,
                ..base.clone()
            },
        ));
        out.push((short, Seq2SeqConfig { span: 3, ..base }));
    }
    let fourier = |kind| Seq2SeqConfig {
        mixing: TokenMixing::Fourier,
        ..Seq2SeqConfig::tiny(VOCAB, kind)
    };
    out.push((
        "fourier encoder, transformer decoder",
        fourier(DecoderKind::Transformer),
    ));
    out.push(("fourier encoder, can decoder", fourier(DecoderKind::Can)));
    out.push((
        "fourier encoder post-norm rms, feedback decoder",
        Seq2SeqConfig {
            placement: mnemo_core::NormPlacement::Post,
            norm: NormKind::Rms,
            ..fourier(DecoderKind::Feedback)
        },
    ));
    out
}

/// A batch of token rows: row i has `lens[i]` random non-special tokens then PAD up to `width`;
/// with `bos`, each row starts with BOS (counted in its length).
fn batch(lens: &[usize], width: usize, seed: u64, bos: bool, device: &Device) -> Tensor<2, Int> {
    padded_ids(lens, width, VOCAB, seed, bos, device)
}

fn ids(v: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

/// Step-by-step logits for teacher-forced inputs.
fn stepped(model: &Seq2Seq, src: Tensor<2, Int>, tgt_in: Tensor<2, Int>) -> Tensor<3> {
    let [_b, t] = tgt_in.dims();
    let mut state = model.start(&model.encode(src));
    let steps: Vec<Tensor<3>> = (0..t)
        .map(|i| {
            model
                .step(&mut state, tgt_in.clone().narrow(1, i, 1).squeeze_dim(1))
                .unsqueeze_dim(1)
        })
        .collect();
    assert_eq!(state.steps(), t);
    Tensor::cat(steps, 1)
}

#[test]
fn incremental_steps_equal_teacher_forcing() {
    for_each_model(configs(), seeded_with(1), |name, model, device| {
        let src = batch(&[6, 3, 5], 7, 1, false, device);
        let tgt_in = batch(&[9, 9, 9], 9, 2, true, device);
        let forward = model.forward(src.clone(), tgt_in.clone());
        assert_eq!(forward.dims(), [3, 9, VOCAB]);
        let diff = max_abs_diff(forward, stepped(&model, src, tgt_in));
        assert!(
            diff < 1e-4,
            "{name}: cached steps differ from forward by {diff}"
        );
    });
}

#[test]
fn target_is_causal() {
    for_each_model(configs(), seeded_with(2), |name, model, device| {
        let src = batch(&[5, 4], 5, 3, false, device);
        let x = batch(&[8, 8], 8, 4, true, device);
        let y = x
            .clone()
            .slice_assign([0..2, 5..8], batch(&[3, 3], 3, 5, false, device));
        let (a, b) = (model.forward(src.clone(), x), model.forward(src, y));
        assert_causal(name, a, b, 5);
    });
}

#[test]
fn source_padding_is_invisible() {
    for_each_model(configs(), seeded_with(3), |name, model, device| {
        let src = batch(&[6, 3], 6, 6, false, device);
        let tgt_in = batch(&[5, 5], 5, 7, true, device);
        let base = model.forward(src.clone(), tgt_in.clone());
        // Extra PAD columns.
        let wide = Tensor::cat(vec![src.clone(), Tensor::zeros([2, 3], device)], 1);
        let d = max_abs_diff(base.clone(), model.forward(wide, tgt_in.clone()));
        assert!(
            d < 1e-5,
            "{name}: extra PAD columns changed the logits by {d}"
        );
        // Row 1 alone, unpadded, equals row 1 of the padded batch.
        let alone = model.forward(
            src.clone().slice([1..2, 0..3]),
            tgt_in.clone().slice([1..2, 0..5]),
        );
        let d = max_abs_diff(base.clone().slice([1..2, 0..5]), alone);
        assert!(d < 1e-5, "{name}: padding row 1 changed its logits by {d}");
        // A real source token does matter.
        let changed = src.clone().slice_assign(
            [1..2, 0..1],
            Tensor::from_data(TensorData::new(vec![4i64], [1, 1]), device),
        );
        let changed = if src.clone().slice([1..2, 0..1]).into_scalar::<i64>() == 4 {
            src.clone().slice_assign(
                [1..2, 0..1],
                Tensor::from_data(TensorData::new(vec![5i64], [1, 1]), device),
            )
        } else {
            changed
        };
        let what = format!("{name}: the source token");
        assert_differs(&what, base, model.forward(changed, tgt_in), 1e-4);
    });
}

/// The Feedback decoder written out op by op from DESIGN.md §4 plus cross-attention: a list of
/// memories (S zero memories first), the last S concatenated and re-projected at every step.
fn naive_feedback_logits(
    model: &Seq2Seq,
    src: Tensor<2, Int>,
    tgt_in: Tensor<2, Int>,
) -> Tensor<3> {
    let Decoder::Feedback(dec) = &model.decoder else {
        panic!("feedback decoder expected")
    };
    let enc = model.encode(src);
    let [b, t_len] = tgt_in.dims();
    let d = model.embedding.weight.dims()[1];
    let s = dec.core.span;
    let heads = dec.core.layers[0].n_heads;
    let dh = d / heads;
    let device = enc.states.device();
    let emb = model
        .embedding
        .forward(tgt_in)
        .mul_scalar((d as f32).sqrt());
    let w = softmax(dec.core.mix.val(), 0);
    let mut mems: Vec<Tensor<3>> = (0..s).map(|_| Tensor::zeros([b, 1, d], &device)).collect();
    // Additive source mask: -1e9 at padding, per row.
    let src_bias = enc.key_mask.clone().float().mul_scalar(-1.0e9); // [B,1,1,S_src]
    let split = |x: Tensor<3>| {
        let n = x.dims()[1];
        x.reshape([b, n, heads, dh]).swap_dims(1, 2)
    };
    let merge = |x: Tensor<4>| {
        let n = x.dims()[2];
        x.swap_dims(1, 2).reshape([b, n, d])
    };
    let mut tops = Vec::new();
    for t in 0..t_len {
        let window = Tensor::cat(mems[mems.len() - s..].to_vec(), 1); // [B,S,D]
        let mut h = emb.clone().narrow(1, t, 1);
        let mut m = h.clone() * w.clone().narrow(0, 0, 1).reshape([1, 1, 1]);
        for (l, (fl, cross)) in dec.core.layers.iter().zip(&dec.cross).enumerate() {
            let (cross_norm, cross) = (&cross.residual.norm, &cross.attention);
            let proj = &dec.core.memory_projections[if dec.core.memory_projections.len() == 1 {
                0
            } else {
                l
            }];
            let mn = proj.norm.as_ref().unwrap().forward(window.clone());
            let (k, v) = (
                split(proj.key.forward(mn.clone())),
                split(proj.value.forward(mn)),
            );
            let table = fl.positions.as_ref().unwrap().table.val();
            let p = Tensor::cat(
                (0..s)
                    .map(|j| table.clone().narrow(0, s - j - 1, 1))
                    .collect(),
                0,
            ); // [S,Dh]
            let self_attn = |x: Tensor<3>| {
                let q = split(fl.query.forward(x));
                let scores = q
                    .matmul((k.clone() + p.clone().unsqueeze::<4>()).swap_dims(2, 3))
                    .div_scalar((dh as f32).sqrt());
                fl.output
                    .forward(merge(softmax(scores, 3).matmul(v.clone())))
            };
            let cross_attn = |x: Tensor<3>| {
                let q = split(cross.query.forward(x));
                let ks = split(cross.key.forward(enc.states.clone()));
                let vs = split(cross.value.forward(enc.states.clone()));
                let scores =
                    q.matmul(ks.swap_dims(2, 3)).div_scalar((dh as f32).sqrt()) + src_bias.clone();
                cross.output.forward(merge(softmax(scores, 3).matmul(vs)))
            };
            h = if fl.attn_residual.is_pre() {
                let h = h.clone() + self_attn(fl.attn_residual.norm.forward(h));
                let h = h.clone() + cross_attn(cross_norm.forward(h));
                h.clone() + fl.ff.forward(fl.ff_residual.norm.forward(h))
            } else {
                let h = fl.attn_residual.norm.forward(h.clone() + self_attn(h));
                let h = cross_norm.forward(h.clone() + cross_attn(h));
                fl.ff_residual.norm.forward(h.clone() + fl.ff.forward(h))
            };
            m = m + h.clone() * w.clone().narrow(0, l + 1, 1).reshape([1, 1, 1]);
        }
        tops.push(h);
        mems.push(m);
    }
    let h = final_norm(&dec.final_norm, Tensor::cat(tops, 1));
    h.matmul(model.embedding.weight.val().transpose().unsqueeze::<3>())
}

#[test]
fn feedback_decoder_equals_naive_reference_forward_and_gradients() {
    let device = mnemo_backend::test_device();
    for (name, config) in configs()
        .into_iter()
        .filter(|(n, _)| n.starts_with("feedback"))
    {
        for layers in [1, config.decoder_layers] {
            let config = Seq2SeqConfig {
                decoder_layers: layers,
                ..config.clone()
            };
            let model = seeded(&config, 4, &device);
            let model = with_mixed_memory(model, 40 + layers as u64);
            let src = batch(&[5, 3], 5, 8, false, &device);
            let tgt_in = batch(&[7, 7], 7, 9, true, &device);
            let probe = seeded::normal([2, 7, VOCAB], 41, &device);
            let fast = model.forward(src.clone(), tgt_in.clone());
            let slow = naive_feedback_logits(&model, src, tgt_in);
            let diff = max_abs_diff(fast.clone(), slow.clone());
            assert!(
                diff < 1e-5 * (1.0 + max_abs(fast.clone())),
                "{name} L={layers}: logits differ by {diff}"
            );
            let g_fast = (fast * probe.clone()).sum().backward();
            let g_slow = (slow * probe).sum().backward();
            let Decoder::Feedback(dec) = &model.decoder else {
                unreachable!()
            };
            let compare = |label: String, p: Tensor<2>| {
                let a = p.grad(&g_fast).expect("fast grad");
                let b = p.grad(&g_slow).expect("slow grad");
                let scale = 1.0 + max_abs(b.clone());
                let diff = max_abs_diff(a.clone(), b);
                assert!(
                    diff < 1e-4 * scale,
                    "{name} L={layers}: grad of {label} differs by {diff}"
                );
                assert!(
                    max_abs(a) > 0.0,
                    "{name} L={layers}: grad of {label} is zero"
                );
            };
            compare("embedding".into(), model.embedding.weight.val());
            compare(
                "encoder 0 query".into(),
                model.encoder[0].attn.as_ref().unwrap().query.weight.val(),
            );
            for (l, (layer, cross)) in dec.core.layers.iter().zip(&dec.cross).enumerate() {
                compare(format!("layer {l} memory query"), layer.query.weight.val());
                compare(
                    format!("layer {l} positions"),
                    layer.positions.as_ref().unwrap().table.val(),
                );
                compare(
                    format!("layer {l} cross key"),
                    cross.attention.key.weight.val(),
                );
                compare(format!("layer {l} ff.down"), layer.ff.down.weight.val());
            }
            for (i, p) in dec.core.memory_projections.iter().enumerate() {
                compare(format!("projection {i} key"), p.key.weight.val());
                compare(format!("projection {i} value"), p.value.weight.val());
            }
            let (a, b) = (
                dec.core.mix.val().grad(&g_fast).unwrap(),
                dec.core.mix.val().grad(&g_slow).unwrap(),
            );
            let diff = max_abs_diff(a.clone(), b);
            assert!(
                diff < 1e-4 * (1.0 + max_abs(a)),
                "{name} L={layers}: mix grad differs by {diff}"
            );
        }
    }
}

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
        let logp: Vec<f32> = next_token_log_probs(logits)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
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
                rows.push(r as i64);
                feed.push(t as i64);
            }
        }
        if next.is_empty() {
            return closed;
        }
        state.select(ids(&rows, &device));
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
        state.select(ids(&[1, 1, 0], device));
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

/// Autodiff gradients of a few encoder and decoder weights match central finite differences,
/// with the attention encoder and (through layer 1's Fourier mixing to layer 0) the Fourier one.
#[test]
fn gradients_reach_encoder_and_decoder_weights() {
    let device = mnemo_backend::test_device();
    let plain = device.clone().inner();
    for (kind, mixing) in [
        (DecoderKind::Transformer, TokenMixing::Attention),
        (DecoderKind::Feedback, TokenMixing::Attention),
        (DecoderKind::Transformer, TokenMixing::Fourier),
        (DecoderKind::Can, TokenMixing::Attention),
    ] {
        let config = Seq2SeqConfig {
            mixing,
            ..Seq2SeqConfig::tiny(VOCAB, kind)
        };
        let model = seeded(&config, 6, &device);
        let src = batch(&[5, 3], 5, 16, false, &plain);
        let tgt = batch(&[6, 6], 6, 17, true, &plain);
        let probe = seeded::normal([2, 6, VOCAB], 42, &plain);
        let loss = |m: &Seq2Seq, dev: &Device| {
            (m.forward(src.clone().to_device(dev), tgt.clone().to_device(dev))
                * probe.clone().to_device(dev))
            .sum()
        };
        let grads = loss(&model, &device).backward();
        let base = model.valid();
        type Pick = fn(&Seq2Seq) -> burn::module::Param<Tensor<2>>;
        type Put = fn(Seq2Seq, burn::module::Param<Tensor<2>>) -> Seq2Seq;
        let cases: Vec<(&str, Pick, Put)> = vec![
            (
                "encoder 0 value",
                |m| m.encoder[0].attn.as_ref().unwrap().value.weight.clone(),
                |mut m, p| {
                    m.encoder[0].attn.as_mut().unwrap().value.weight = p;
                    m
                },
            ),
            (
                "encoder 0 ff.down",
                |m| m.encoder[0].ff.down.weight.clone(),
                |mut m, p| {
                    m.encoder[0].ff.down.weight = p;
                    m
                },
            ),
            (
                "encoder 1 ff.up",
                |m| m.encoder[1].ff.up.weight.clone(),
                |mut m, p| {
                    m.encoder[1].ff.up.weight = p;
                    m
                },
            ),
            (
                "decoder 0 cross query (CAN: source key)",
                |m| match &m.decoder {
                    Decoder::Transformer(d) => d.layers[0].cross.attention.query.weight.clone(),
                    Decoder::Feedback(d) => d.cross[0].attention.query.weight.clone(),
                    Decoder::Can(d) => d.layers[0].attention.source_key.weight.clone(),
                },
                |mut m, p| {
                    match &mut m.decoder {
                        Decoder::Transformer(d) => d.layers[0].cross.attention.query.weight = p,
                        Decoder::Feedback(d) => d.cross[0].attention.query.weight = p,
                        Decoder::Can(d) => d.layers[0].attention.source_key.weight = p,
                    }
                    m
                },
            ),
            (
                "decoder 1 self/memory query",
                |m| match &m.decoder {
                    Decoder::Transformer(d) => d.layers[1].self_attn.query.weight.clone(),
                    Decoder::Feedback(d) => d.core.layers[1].query.weight.clone(),
                    Decoder::Can(d) => d.layers[1].attention.query.weight.clone(),
                },
                |mut m, p| {
                    match &mut m.decoder {
                        Decoder::Transformer(d) => d.layers[1].self_attn.query.weight = p,
                        Decoder::Feedback(d) => d.core.layers[1].query.weight = p,
                        Decoder::Can(d) => d.layers[1].attention.query.weight = p,
                    }
                    m
                },
            ),
            (
                "decoder 0 target value (CAN; the others: ff.up)",
                |m| match &m.decoder {
                    Decoder::Transformer(d) => d.layers[0].ff.up.weight.clone(),
                    Decoder::Feedback(d) => d.core.layers[0].ff.up.weight.clone(),
                    Decoder::Can(d) => d.layers[0].attention.value.weight.clone(),
                },
                |mut m, p| {
                    match &mut m.decoder {
                        Decoder::Transformer(d) => d.layers[0].ff.up.weight = p,
                        Decoder::Feedback(d) => d.core.layers[0].ff.up.weight = p,
                        Decoder::Can(d) => d.layers[0].attention.value.weight = p,
                    }
                    m
                },
            ),
        ];
        for (label, pick, put) in cases {
            if mixing == TokenMixing::Fourier && label == "encoder 0 value" {
                continue; // no attention
            }
            let kind = format!("{kind:?} {mixing:?}");
            let analytic: Vec<f32> = pick(&model)
                .val()
                .grad(&grads)
                .expect(label)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let [rows, cols] = pick(&base).val().dims();
            for &(i, j) in &[(0usize, 1usize), (rows / 2, cols - 1), (rows - 1, cols / 2)] {
                let eps = 1e-2f32;
                let shifted = |delta: f32| {
                    let mut e = vec![0.0f32; rows * cols];
                    e[i * cols + j] = delta;
                    let bump = Tensor::<2>::from_data(TensorData::new(e, [rows, cols]), &plain);
                    let p = pick(&base).map(|w| w + bump);
                    loss(&put(base.clone(), p), &plain).into_scalar::<f64>()
                };
                let numeric = ((shifted(eps) - shifted(-eps)) / (2.0 * eps as f64)) as f32;
                let a = analytic[i * cols + j];
                assert!(
                    (numeric - a).abs() < 2e-2 * (1.0 + a.abs()),
                    "{kind} {label}[{i},{j}]: finite difference {numeric} vs autodiff {a}"
                );
            }
            assert!(
                analytic.iter().any(|g| g.abs() > 1e-4),
                "{kind} {label}: zero gradient"
            );
        }
    }
}

#[test]
fn config_errors_name_the_field() {
    let good = Seq2SeqConfig::tiny(VOCAB, DecoderKind::Feedback);
    assert!(good.validate().is_ok());
    let cases = [
        (
            Seq2SeqConfig {
                n_heads: 3,
                ..good.clone()
            },
            "model.n_heads",
        ),
        (
            Seq2SeqConfig {
                vocab_size: 0,
                ..good.clone()
            },
            "model.vocab_size",
        ),
        (
            Seq2SeqConfig {
                vocab_size: 3,
                ..good.clone()
            },
            "model.vocab_size",
        ),
        (
            Seq2SeqConfig {
                encoder_layers: 0,
                ..good.clone()
            },
            "model.encoder_layers",
        ),
        (
            Seq2SeqConfig {
                decoder_layers: 0,
                ..good.clone()
            },
            "model.decoder_layers",
        ),
        (
            Seq2SeqConfig {
                span: 0,
                ..good.clone()
            },
            "model.span",
        ),
        (
            Seq2SeqConfig {
                dropout: 1.5,
                ..good.clone()
            },
            "model.dropout",
        ),
        (
            Seq2SeqConfig {
                max_len: 0,
                ..good.clone()
            },
            "model.max_len",
        ),
    ];
    for (config, field) in cases {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with(field), "{field}: got {err}");
    }
    // CAN splits its d_ff-wide values into the heads: an odd d_ff is refused for it only.
    let odd = Seq2SeqConfig {
        d_ff: 65,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
    };
    assert!(odd.validate().is_ok());
    let err = Seq2SeqConfig {
        decoder: DecoderConfig::Can,
        ..odd
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("model.d_ff") && err.contains("CAN"),
        "{err}"
    );
    // TOML: defaults fill in, unknown fields and unknown decoder kinds are rejected by name.
    let toml_ok = "d_model = 32\nn_heads = 2\nd_ff = 64\nencoder_layers = 1\ndecoder_layers = 1\ndecoder = \"feedback\"\nspan = 8\n";
    let parsed: Seq2SeqConfig = toml::from_str(toml_ok).unwrap();
    assert!(parsed.is_pre_norm() && parsed.vocab_size == 0 && parsed.max_len == 200);
    assert_eq!(parsed.decoder, DecoderConfig::Feedback { share_kv: true });
    // Norm placement as in the language-model configs; the old boolean is refused by name.
    let post: Seq2SeqConfig = toml::from_str(&format!("{toml_ok}placement = \"post\"\n")).unwrap();
    assert_eq!(post.placement, mnemo_core::NormPlacement::Post);
    let err = toml::from_str::<Seq2SeqConfig>(&format!("{toml_ok}pre_norm = false\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pre_norm"), "{err}");
    let err = toml::from_str::<Seq2SeqConfig>(&format!("{toml_ok}n_layer = 2\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("n_layer"), "{err}");
    let err = toml::from_str::<Seq2SeqConfig>(&toml_ok.replace("\"feedback\"", "\"lstm\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lstm") && err.contains("transformer"), "{err}");
    // decoder = "can": parses, round-trips, refuses the Feedback decoder's share_kv.
    let can: Seq2SeqConfig = toml::from_str(&toml_ok.replace("\"feedback\"", "\"can\"")).unwrap();
    assert_eq!(can.decoder, DecoderConfig::Can);
    let text = toml::to_string(&can).unwrap();
    assert!(text.contains("decoder = \"can\""), "{text}");
    assert_eq!(toml::from_str::<Seq2SeqConfig>(&text).unwrap(), can);
    let err = toml::from_str::<Seq2SeqConfig>(
        &toml_ok.replace("\"feedback\"", "{ kind = \"can\", share_kv = false }"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("share_kv belongs to the Feedback decoder") && err.contains("CAN"),
        "{err}"
    );
    let can = Seq2SeqConfig {
        vocab_size: VOCAB,
        ..can
    };
    assert!(can.validate().is_ok());
    assert_eq!(
        can.num_params(),
        can.init(&mnemo_backend::test_device().inner()).num_params()
    );
    // Encoder token mixing: attention by default, "fourier" parses and round-trips, anything
    // else is refused naming `mixing`.
    assert_eq!(parsed.mixing, TokenMixing::Attention);
    let fourier: Seq2SeqConfig =
        toml::from_str(&format!("{toml_ok}mixing = \"fourier\"\n")).unwrap();
    assert_eq!(fourier.mixing, TokenMixing::Fourier);
    let sized = Seq2SeqConfig {
        vocab_size: VOCAB,
        ..fourier.clone()
    };
    assert!(sized.validate().is_ok());
    let text = toml::to_string(&fourier).unwrap();
    assert!(text.contains("mixing = \"fourier\""), "{text}");
    assert_eq!(toml::from_str::<Seq2SeqConfig>(&text).unwrap(), fourier);
    let err = toml::from_str::<Seq2SeqConfig>(&format!("{toml_ok}mixing = \"fft\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mixing: unknown token mixing \"fft\""),
        "{err}"
    );
    // The parameter count needs no allocation and matches the built model.
    let config = Seq2SeqConfig {
        vocab_size: VOCAB,
        ..parsed
    };
    let device = mnemo_backend::test_device().inner();
    assert_eq!(config.num_params(), config.init(&device).num_params());
}

/// The encoder layer as it was before `mixing` existed (attention a plain field), to check
/// that the attention encoder's parameter names did not change.
#[derive(Module, Debug)]
struct LegacyEncoderLayer {
    attn_residual: Residual,
    attn: BidirectionalSelfAttention,
    ff_residual: Residual,
    ff: FeedForward,
}

/// [`Seq2Seq`] with [`LegacyEncoderLayer`]s.
#[derive(Module, Debug)]
struct LegacySeq2Seq {
    embedding: Embedding,
    encoder: Vec<LegacyEncoderLayer>,
    encoder_norm: Option<Norm>,
    decoder: Decoder,
    dropout: Dropout,
    max_len: usize,
}

/// `model` (attention encoder) in the legacy layout, parameters moved over unchanged.
fn legacy(model: Seq2Seq) -> LegacySeq2Seq {
    LegacySeq2Seq {
        embedding: model.embedding,
        encoder: model
            .encoder
            .into_iter()
            .map(|l| LegacyEncoderLayer {
                attn_residual: l.attn_residual,
                attn: l.attn.expect("attention encoder"),
                ff_residual: l.ff_residual,
                ff: l.ff,
            })
            .collect(),
        encoder_norm: model.encoder_norm,
        decoder: model.decoder,
        dropout: model.dropout,
        max_len: model.max_len,
    }
}

/// A checkpoint of the attention encoder from before `mixing` existed loads strictly (nothing
/// missing, nothing unused) into today's model, and today's into the old layout: the parameter
/// names are unchanged. The Fourier encoder has exactly the attention parameters fewer, refuses
/// an attention checkpoint by naming them, and round-trips its own.
#[test]
fn attention_encoder_keeps_its_parameter_names() {
    let device = mnemo_backend::test_device().inner();
    for kind in [DecoderKind::Transformer, DecoderKind::Feedback] {
        let config = Seq2SeqConfig::tiny(VOCAB, kind);
        let model = seeded(&config, 31, &device);
        let want = host::parameters(&model);
        let fresh = seeded(&config, 32, &device);
        assert_ne!(
            host::parameters(&fresh),
            want,
            "{kind:?}: seeds gave equal weights"
        );
        let loaded = fresh
            .try_load_record(legacy(model.clone()).into_record())
            .unwrap_or_else(|e| panic!("{kind:?}: legacy record: {e:?}"));
        assert_eq!(host::parameters(&loaded), want, "{kind:?}: legacy -> new");
        let old = legacy(seeded(&config, 33, &device))
            .try_load_record(model.clone().into_record())
            .unwrap_or_else(|e| panic!("{kind:?}: new record into legacy: {e:?}"));
        assert_eq!(host::parameters(&old), want, "{kind:?}: new -> legacy");

        let fourier_config = Seq2SeqConfig {
            mixing: TokenMixing::Fourier,
            ..config.clone()
        };
        let fourier = seeded(&fourier_config, 34, &device);
        assert!(
            fourier
                .encoder
                .iter()
                .all(|l| l.mixing() == TokenMixing::Fourier)
        );
        let per_layer = model.encoder[0].attn.as_ref().unwrap().num_params();
        assert_eq!(
            fourier_config.num_params() + config.encoder_layers * per_layer,
            config.num_params(),
            "{kind:?}: parameter counts"
        );
        let err = format!(
            "{:?}",
            fourier
                .clone()
                .try_load_record(model.into_record())
                .unwrap_err()
        );
        assert!(
            err.contains("encoder.0.attn.query.weight"),
            "{kind:?}: {err}"
        );
        let own = seeded(&fourier_config, 35, &device)
            .try_load_record(fourier.clone().into_record())
            .unwrap_or_else(|e| panic!("{kind:?}: fourier record: {e:?}"));
        assert_eq!(host::parameters(&own), host::parameters(&fourier));
    }
}

/// The Fourier encoder encodes a padded sentence, at its tokens, exactly as the sentence alone
/// (pre- and post-norm); its mixing is global within a sentence (the last token moves the first
/// state) and never crosses sentences.
#[test]
fn fourier_encoder_encodes_a_padded_sentence_as_its_unpadded_self() {
    let device = mnemo_backend::test_device().inner();
    for placement in [
        mnemo_core::NormPlacement::Pre,
        mnemo_core::NormPlacement::Post,
    ] {
        let config = Seq2SeqConfig {
            mixing: TokenMixing::Fourier,
            placement,
            ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
        };
        let model = seeded(&config, 36, &device);
        let lens = [6usize, 3, 5];
        let src = batch(&lens, 8, 37, false, &device);
        let enc = model.encode(src.clone());
        for (row, &n) in lens.iter().enumerate() {
            let alone = model.encode(src.clone().slice([row..row + 1, 0..n]));
            let d = max_abs_diff(enc.states.clone().slice([row..row + 1, 0..n]), alone.states);
            assert!(
                d < 1e-5,
                "{placement:?} row {row}: padding moved the states by {d}"
            );
        }
        let last = src.clone().slice([0..1, 5..6]).into_scalar::<i64>();
        let changed = src.clone().slice_assign(
            [0..1, 5..6],
            Tensor::from_data(
                TensorData::new(vec![if last == 4 { 5i64 } else { 4 }], [1, 1]),
                &device,
            ),
        );
        let moved = model.encode(changed).states;
        let first = max_abs_diff(
            enc.states.clone().slice([0..1, 0..1]),
            moved.clone().slice([0..1, 0..1]),
        );
        assert!(
            first > 1e-4,
            "{placement:?}: the last token did not reach the first"
        );
        let others = max_abs_diff(enc.states.slice([1..3, 0..8]), moved.slice([1..3, 0..8]));
        assert_eq!(others, 0.0, "{placement:?}: mixing crossed sentences");
    }
}

/// A linear layer's weight `[in, out]` (row-major) and bias on the host, in f64.
fn host_linear(l: &burn::nn::Linear) -> (Vec<f64>, Vec<f64>) {
    let w = host::to_vec(l.weight.val()).into_iter().map(f64::from);
    let b = host::to_vec(l.bias.as_ref().expect("bias").val());
    (w.collect(), b.into_iter().map(f64::from).collect())
}

/// `x W + b` for one row `x`.
fn host_apply(x: &[f64], (w, b): &(Vec<f64>, Vec<f64>)) -> Vec<f64> {
    let out = b.len();
    let mut y = b.clone();
    for (i, xi) in x.iter().enumerate() {
        for (o, yo) in y.iter_mut().enumerate() {
            *yo += xi * w[i * out + o];
        }
    }
    y
}

/// GELU `x Φ(x)` with erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
fn host_gelu(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * z.abs());
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = (1.0 - poly * (-z * z).exp()).copysign(z);
    0.5 * x * (1.0 + erf)
}

/// A softmax of `scores` applied to `values` (rows of equal width).
fn host_softmax_sum(scores: &[f64], values: &[Vec<f64>]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let z: f64 = w.iter().sum();
    let mut out = vec![0.0; values[0].len()];
    for (wi, v) in w.iter().zip(values) {
        for (o, vi) in out.iter_mut().zip(v) {
            *o += wi / z * vi;
        }
    }
    out
}

/// One pre-norm CAN layer equals a host reference written here from the equations: per head,
/// ONE softmax over [the target keys t−S < i ≤ t, scored `q·(k_i + p_{t−i})/√Dh` ; the
/// non-PAD source keys, scored `q·k'_j/√Dh`], the F/H-wide values summed under it, then
/// `x + W_2 gelu(a + W_1 x̂ + b_1)`. The same weights with two softmaxes (target and source
/// normalised apart, as the Transformer decoder's two attention sublayers do) give other
/// outputs, so the comparison can fail; span 3 < T, so the span mask is exercised too.
#[test]
fn can_layer_equals_a_one_softmax_host_reference() {
    let device = mnemo_backend::test_device().inner();
    let config = Seq2SeqConfig {
        span: 3,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Can)
    };
    let (d, f, heads, span) = (config.d_model, config.d_ff, config.n_heads, config.span);
    let (dh, fh) = (d / heads, f / heads);
    let model = seeded(&config, 51, &device);
    let Decoder::Can(dec) = &model.decoder else {
        panic!("CAN decoder expected")
    };
    let layer = &dec.layers[0];
    let (b, t, s_src) = (2, 6, 5);
    let src_lens = [5usize, 3];
    let x = seeded::normal([b, t, d], 52, &device);
    let states = seeded::normal([b, s_src, d], 53, &device);
    let key_mask =
        mnemo_core::key_padding_mask(batch(&src_lens, s_src, 54, false, &device), PAD as i64);
    let source = layer.attention.project_source(states.clone(), &key_mask);
    let got = host::to_vec(layer.forward(x.clone(), &source));

    let a = &layer.attention;
    let (wq, wk, wv) = (
        host_linear(&a.query),
        host_linear(&a.key),
        host_linear(&a.value),
    );
    let (wsk, wsv) = (host_linear(&a.source_key), host_linear(&a.source_value));
    let (up, down) = (host_linear(&a.up), host_linear(&a.down));
    let table: Vec<f64> = host::to_vec(a.positions.table.val())
        .into_iter()
        .map(f64::from)
        .collect();
    let rows = |v: Vec<f32>, width: usize| -> Vec<Vec<f64>> {
        v.chunks(width)
            .map(|r| r.iter().map(|&x| x as f64).collect())
            .collect()
    };
    let x_rows = rows(host::to_vec(x.clone()), d);
    let xn = rows(host::to_vec(layer.residual.norm.forward(x)), d); // x̂ = norm(x)
    let e = rows(host::to_vec(states), d);
    let scale = 1.0 / (dh as f64).sqrt();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (mut joint, mut apart) = (Vec::new(), Vec::new());
    for bi in 0..b {
        let keys: Vec<Vec<f64>> = (0..t).map(|i| host_apply(&xn[bi * t + i], &wk)).collect();
        let vals: Vec<Vec<f64>> = (0..t).map(|i| host_apply(&xn[bi * t + i], &wv)).collect();
        let src_keys: Vec<Vec<f64>> = (0..src_lens[bi])
            .map(|j| host_apply(&e[bi * s_src + j], &wsk))
            .collect();
        let src_vals: Vec<Vec<f64>> = (0..src_lens[bi])
            .map(|j| host_apply(&e[bi * s_src + j], &wsv))
            .collect();
        for ti in 0..t {
            let q = host_apply(&xn[bi * t + ti], &wq);
            let (mut a_joint, mut a_apart) = (Vec::new(), Vec::new());
            for hh in 0..heads {
                let qh = &q[hh * dh..(hh + 1) * dh];
                let kh = |k: &Vec<f64>| k[hh * dh..(hh + 1) * dh].to_vec();
                let vh = |v: &Vec<f64>| v[hh * fh..(hh + 1) * fh].to_vec();
                let own: Vec<usize> = (ti.saturating_sub(span - 1)..=ti).collect();
                let own_scores: Vec<f64> = own
                    .iter()
                    .map(|&i| {
                        let p = &table[(ti - i) * dh..(ti - i + 1) * dh];
                        (dot(qh, &kh(&keys[i])) + dot(qh, p)) * scale
                    })
                    .collect();
                let own_vals: Vec<Vec<f64>> = own.iter().map(|&i| vh(&vals[i])).collect();
                let src_scores: Vec<f64> =
                    src_keys.iter().map(|k| dot(qh, &kh(k)) * scale).collect();
                let src_v: Vec<Vec<f64>> = src_vals.iter().map(vh).collect();
                let all_scores = [own_scores.clone(), src_scores.clone()].concat();
                let all_vals = [own_vals.clone(), src_v.clone()].concat();
                a_joint.extend(host_softmax_sum(&all_scores, &all_vals));
                let two = host_softmax_sum(&own_scores, &own_vals)
                    .into_iter()
                    .zip(host_softmax_sum(&src_scores, &src_v))
                    .map(|(x, y)| x + y);
                a_apart.extend(two);
            }
            let w1x = host_apply(&xn[bi * t + ti], &up);
            let out = |a: Vec<f64>| -> Vec<f64> {
                let hidden: Vec<f64> = a.iter().zip(&w1x).map(|(x, y)| host_gelu(x + y)).collect();
                host_apply(&hidden, &down)
                    .into_iter()
                    .zip(&x_rows[bi * t + ti])
                    .map(|(y, x)| y + x)
                    .collect()
            };
            joint.extend(out(a_joint));
            apart.extend(out(a_apart));
        }
    }
    let max_diff = |want: &[f64]| {
        got.iter()
            .zip(want)
            .map(|(&g, &w)| (g as f64 - w).abs())
            .fold(0.0, f64::max)
    };
    let one = max_diff(&joint);
    assert!(one < 1e-4, "one-softmax reference differs by {one}");
    let two = max_diff(&apart);
    assert!(
        two > 1e-2,
        "two softmaxes give the same output (differ by {two}): the test cannot tell them apart"
    );
}

/// A CAN layer holds one norm, three `D -> D` maps (query, target key, source key), three
/// `D -> F` maps (target value, source value, W_1), W_2 and S·Dh position terms; a Transformer
/// decoder layer two attentions, an FFN, the same position terms and three norms. Nothing else
/// in the model differs.
#[test]
fn can_parameter_count_follows_its_formula() {
    let device = mnemo_backend::test_device().inner();
    let can = Seq2SeqConfig::tiny(VOCAB, DecoderKind::Can);
    let transformer = Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer);
    let (d, f, s, dh, l) = (
        can.d_model,
        can.d_ff,
        can.span,
        can.d_model / can.n_heads,
        can.decoder_layers,
    );
    let model = can.init(&device);
    let Decoder::Can(dec) = &model.decoder else {
        panic!("CAN decoder expected")
    };
    let norm = dec.layers[0].residual.num_params();
    assert_eq!(norm, 2 * d, "LayerNorm: gain and bias");
    let can_layer = 3 * (d * d + d) + 3 * (d * f + f) + (f * d + d) + s * dh + norm;
    let transformer_layer = 8 * (d * d + d) + (d * f + f) + (f * d + d) + s * dh + 3 * norm;
    assert_eq!(dec.layers[0].num_params(), can_layer);
    assert_eq!(can.num_params(), model.num_params());
    assert_eq!(
        transformer.num_params() as i64 - can.num_params() as i64,
        l as i64 * (transformer_layer as i64 - can_layer as i64)
    );
}
