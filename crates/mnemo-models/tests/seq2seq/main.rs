//! The encoder-decoder (`Seq2Seq`) with every decoder kind (Transformer, Feedback, CAN) and both
//! encoder token mixings (attention, FNet's Fourier mixing): cached decoding equals teacher
//! forcing, target causality, source padding invariance, the Feedback decoder against a naive
//! re-implementation (forward and gradients), a CAN layer against a one-softmax host reference
//! (and not a two-softmax one), beam search against exhaustive search on a tiny vocabulary, row selection of
//! the decode state, finite-difference gradients, the encoder's parameter names (old
//! checkpoints load), and config errors. Weights and data come from explicit seeds ([`seeded`]), so the tests share no
//! generator and run in any order, in parallel.
//!
//! One test binary; its modules: [`teacher_forcing`] (cached decoding, causality, padding,
//! finite differences), [`feedback_reference`], [`search`] (beam, greedy, exhaustive, row
//! selection), [`fourier_and_can`] (the Fourier encoder, the CAN layer), [`config`] (config
//! errors, parameter names).
#[path = "../common/mod.rs"]
mod common;

mod config;
mod feedback_reference;
mod fourier_and_can;
mod search;
mod teacher_forcing;

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
