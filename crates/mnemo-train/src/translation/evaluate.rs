//! Evaluation of a translation model: teacher-forced loss and perplexity, and BLEU of beam
//! search (or greedy) translations, with decoding speed.
use std::time::Instant;

use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_data::LmUnit;
use mnemo_data::translation::{EncodedPair, EvalSplit, PairBatch, PairBatcher, SubwordTokenizer};
use mnemo_models::{SearchConfig, Seq2Seq, beam_search, greedy_search};
use serde::{Deserialize, Serialize};

use crate::bleu::{Bleu, corpus_bleu};
use crate::loss::masked_loss_stats;
use crate::metrics::{Metrics, MetricsAccumulator};
use crate::translation::config::DecodeConfig;
use crate::translation::data::{references, sources};

/// The ids of `rows` sequences of length `len` as a tensor.
///
/// # Shapes
/// - output: `[rows, len]`
pub fn id_tensor(ids: &[u32], rows: usize, len: usize, device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    Tensor::from_data(TensorData::new(ids, [rows, len]), device)
}

/// Source and decoder-input tensors of a batch.
///
/// # Shapes
/// - output: (`[rows, src_len]`, `[rows, tgt_len]`)
pub fn batch_tensors(batch: &PairBatch, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    (
        id_tensor(&batch.src, batch.rows, batch.src_len, device),
        id_tensor(&batch.tgt_in, batch.rows, batch.tgt_len, device),
    )
}

/// Teacher-forced loss, token accuracy and perplexity of `model` over `pairs`.
///
/// Pass an inference copy (`model.valid()`) on a plain device.
pub fn evaluate_loss(
    model: &Seq2Seq,
    pairs: &[EncodedPair],
    max_tokens: usize,
    device: &Device,
) -> Metrics {
    let mut total = MetricsAccumulator::default();
    let batcher = PairBatcher::in_order(pairs.to_vec(), max_tokens)
        .expect("eval_max_tokens is validated to be at least 1");
    for batch in batcher.batches() {
        let (src, tgt_in) = batch_tensors(&batch, device);
        let logits = model.forward(src, tgt_in);
        total.add(&masked_loss_stats(
            logits,
            &batch.tgt_out,
            SubwordTokenizer::PAD,
        ));
    }
    total.metrics().with_lm_unit(Some(LmUnit::Word))
}

/// BLEU of decoded translations and how fast they were decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BleuReport {
    /// Corpus BLEU against the references, as sacrebleu computes it.
    pub bleu: Bleu,
    /// Sentences translated.
    pub sentences: usize,
    /// Subword tokens generated (EOS included).
    pub generated_tokens: usize,
    /// Wall seconds spent decoding.
    pub decode_s: f64,
    /// Generated tokens per second.
    pub tokens_per_s: f64,
    /// Sentences per second.
    pub sentences_per_s: f64,
    /// Beam size used (1 = greedy).
    pub beam_size: usize,
}

/// The search settings of `decode` for a model whose decode cap is `max_len`.
pub fn search_config(decode: &DecodeConfig, beam_size: usize) -> SearchConfig {
    SearchConfig {
        beam_size,
        length_penalty: decode.length_penalty,
        max_len_a: decode.max_len_a,
        max_len_b: decode.max_len_b,
    }
}

/// Translate `sources` (encoded, whole) in batches of similar length, in input order.
///
/// Batches hold at most `max_tokens / beam` padded source tokens. Returns the detokenised
/// translations, the number of generated tokens (EOS counted once per sentence) and the
/// seconds spent.
pub fn translate(
    model: &Seq2Seq,
    tokenizer: &SubwordTokenizer,
    sources: &[Vec<u32>],
    search: &SearchConfig,
    max_tokens: usize,
    device: &Device,
) -> (Vec<String>, usize, f64) {
    let started = Instant::now();
    let (hyps, generated) = decode_ids(model, sources, search, max_tokens, device);
    let out = hyps.iter().map(|hyp| tokenizer.decode(hyp)).collect();
    (out, generated, started.elapsed().as_secs_f64())
}

/// [`translate`]'s search without the tokenizer: the hypotheses' subword ids (EOS excluded),
/// in input order, and the number of generated tokens (EOS counted once per sentence).
pub fn decode_ids(
    model: &Seq2Seq,
    sources: &[Vec<u32>],
    search: &SearchConfig,
    max_tokens: usize,
    device: &Device,
) -> (Vec<Vec<u32>>, usize) {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| (sources[i].len(), i));
    let budget = (max_tokens / search.beam_size.max(1)).max(1);
    let mut out = vec![Vec::new(); sources.len()];
    let mut generated = 0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() {
            let len = sources[order[end]].len().max(1);
            if (end + 1 - start) * len > budget {
                break;
            }
            end += 1;
        }
        let rows = &order[start..end];
        let len = rows
            .iter()
            .map(|&i| sources[i].len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut ids = vec![SubwordTokenizer::PAD; rows.len() * len];
        for (r, &i) in rows.iter().enumerate() {
            ids[r * len..r * len + sources[i].len()].copy_from_slice(&sources[i]);
        }
        let src = id_tensor(&ids, rows.len(), len, device);
        let hyps = match search.beam_size {
            1 => greedy_search(model, src, search),
            _ => beam_search(model, src, search),
        };
        for (&i, hyp) in rows.iter().zip(hyps) {
            generated += hyp.len() + 1;
            out[i] = hyp;
        }
        start = end;
    }
    (out, generated)
}

/// Translate the first `max_pairs` (0 = all) sentences of `split` and score them with BLEU.
///
/// Returns the report and the translations.
pub fn evaluate_bleu(
    model: &Seq2Seq,
    tokenizer: &SubwordTokenizer,
    split: &EvalSplit,
    decode: &DecodeConfig,
    beam_size: usize,
    max_tokens: usize,
    device: &Device,
) -> (BleuReport, Vec<String>) {
    let n = match decode.max_pairs {
        0 => split.text.len(),
        n => n.min(split.text.len()),
    };
    let search = search_config(decode, beam_size);
    let (hyps, generated, seconds) = translate(
        model,
        tokenizer,
        &sources(split)[..n],
        &search,
        max_tokens,
        device,
    );
    let bleu = corpus_bleu(&hyps, &references(split)[..n]).expect("one reference per hypothesis");
    let report = BleuReport {
        bleu,
        sentences: n,
        generated_tokens: generated,
        decode_s: seconds,
        tokens_per_s: generated as f64 / seconds.max(1e-9),
        sentences_per_s: n as f64 / seconds.max(1e-9),
        beam_size,
    };
    (report, hyps)
}
