//! The translation phases of `mnemo bench` (`mt_<model>_train`, or `--only translation`):
//! training steps of `experiments/translation/en-es-longer.toml`'s three models (one 3-layer
//! encoder, width 128, vocabulary 8,000, with a Feedback decoder of 2 layers or a Transformer
//! decoder of 2 or 6) on batches of up to 2,048 padded tokens, as the trainer runs them
//! (`mnemo_train::translation::mt_step`, then the clipped Adam update). Not peer phases: the PyTorch
//! references have no translation model; these time what `mnemo train` on that config runs,
//! with a median over steps instead of a run's mean tokens/s.
//!
//! The sentence pairs are random ids with lengths drawn like a Bible verse's subwords (4–64,
//! most between 15 and 45), batched by `mnemo_data`'s length batcher as in training; the
//! tokens counted are the scored target tokens (the trainer's tokens/s).
use anyhow::anyhow;
use burn::tensor::Device;
use mnemo_data::translation::{EncodedPair, PairBatch, PairBatcher};
use mnemo_models::{DecoderConfig, DecoderKind, Seq2SeqConfig};
use mnemo_models::{EOS, StepProducts};
use mnemo_train::translation::mt_step;
use mnemo_train::translation::step::GradientPath;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::SEED;
use super::phases::{Iters, Update};
use super::proc_stats::{round, rss_now_mb};
use super::timing::{median, timed};

/// The translation phases, in run order.
pub const MT_PHASES: &[&str] = &["mt_fb2_train", "mt_tf2_train", "mt_tf6_train"];

/// The en-es-longer config's token budget per batch (`train.max_tokens`).
const MAX_TOKENS: usize = 2048;
/// Its vocabulary (`data.vocab_size`).
const VOCAB: usize = 8000;
/// Sentence pairs drawn for the batches (a few hundred batches' worth of lengths).
const PAIRS: usize = 4000;
/// Batches the timed steps cycle through.
const BATCHES: usize = 8;

/// The model of phase `name`, as en-es-longer.toml's `[models.*]` table has it.
fn mt_config(name: &str) -> Option<Seq2SeqConfig> {
    let (decoder, layers) = match name {
        "mt_fb2_train" => (DecoderKind::Feedback, 2),
        "mt_tf2_train" => (DecoderKind::Transformer, 2),
        "mt_tf6_train" => (DecoderKind::Transformer, 6),
        _ => return None,
    };
    Some(Seq2SeqConfig {
        vocab_size: VOCAB,
        d_model: 128,
        n_heads: 4,
        d_ff: 512,
        encoder_layers: 3,
        decoder_layers: layers,
        decoder: DecoderConfig::of(decoder),
        span: 256,
        max_len: 256,
        ..Seq2SeqConfig::tiny(VOCAB, decoder)
    })
}

/// A random sentence length in subwords: the sum of three uniform draws (a bell over 4..=64,
/// mean ~30), both sides drawn apart.
fn length(rng: &mut ChaCha8Rng) -> usize {
    (0..3).map(|_| rng.random_range(1..=21usize)).sum::<usize>() + 1
}

/// `PAIRS` random pairs batched as training batches them, the first `BATCHES` batches of the
/// shuffled epoch.
fn batches(rng: &mut ChaCha8Rng) -> Vec<PairBatch> {
    let ids = |n: usize, rng: &mut ChaCha8Rng| -> Vec<u32> {
        // Ids past the special ones (PAD, UNK, BOS, EOS).
        (0..n)
            .map(|_| rng.random_range(EOS + 1..VOCAB as u32))
            .collect()
    };
    let pairs: Vec<EncodedPair> = (0..PAIRS)
        .map(|_| {
            let (s, t) = (length(rng), length(rng));
            (ids(s, rng), ids(t, rng))
        })
        .collect();
    let mut batcher = PairBatcher::new(pairs, MAX_TOKENS, SEED).expect("pairs within the budget");
    (0..BATCHES).map(|_| batcher.next_batch()).collect()
}

/// Run translation phase `name`, or None if `name` is not one.
pub(super) fn run_mt_phase(
    name: &str,
    device: &Device,
    products: StepProducts,
    p: Iters,
) -> Option<anyhow::Result<Value>> {
    let config = mt_config(name)?;
    Some(phase_mt_train(&config, device, products, p))
}

/// Time training steps of `config` on the batches of [`batches`]: `mt_step` (forward, loss,
/// gradients as the trainer computes them) and the clipped Adam update.
fn phase_mt_train(
    config: &Seq2SeqConfig,
    device: &Device,
    products: StepProducts,
    p: Iters,
) -> anyhow::Result<Value> {
    config
        .validate()
        .map_err(|e| anyhow!("bench translation model config: {e}"))?;
    let device = device.clone().autodiff();
    let mut model = config.init(&device).with_step_products(products);
    let mut update = Update::new();
    let data = batches(&mut ChaCha8Rng::seed_from_u64(SEED));
    let path = GradientPath::of(&model, &device);
    let rss0 = rss_now_mb()?;
    let (mut i, mut last_loss, mut tokens) = (0, f64::NAN, Vec::new());
    let mut step = || {
        let batch = &data[i % data.len()];
        i += 1;
        let out = mt_step(&model, batch, &device);
        last_loss = out.stats.loss;
        tokens.push(out.stats.scored);
        model = update.apply(model.clone(), out.grads);
    };
    // Whole rounds of the batches: each batch timed equally often.
    let iters = p.train_iters.div_ceil(BATCHES) * BATCHES;
    let times = timed(p.train_warmup, iters, &mut step);
    let tokens = &tokens[tokens.len() - times.len()..];
    let mut res = summarize_steps(&times, tokens);
    res["params"] = json!(config.num_params());
    res["decoder"] = json!(format!("{:?}", config.decoder.kind()).to_lowercase());
    res["decoder_layers"] = json!(config.decoder_layers);
    res["gradient_path"] = json!(format!("{path:?}").to_lowercase());
    res["step_products"] = json!(format!("{products:?}").to_lowercase());
    res["batches"] = json!(
        data.iter()
            .map(|b| [b.rows, b.src_len, b.tgt_len])
            .collect::<Vec<_>>()
    );
    res["last_loss"] = json!(round(last_loss, 4));
    res["rss_after_setup_mb"] = json!(round(rss0, 1));
    Ok(res)
}

/// Timed steps of unequal batches: per-step times and scored tokens, the median of the
/// steps' tokens/s, and all tokens over all time (the trainer's mean).
fn summarize_steps(times: &[f64], tokens: &[usize]) -> Value {
    let rates: Vec<f64> = times
        .iter()
        .zip(tokens)
        .map(|(t, &n)| n as f64 / t)
        .collect();
    let total: usize = tokens.iter().sum();
    json!({
        "iter_s": times.iter().map(|t| round(*t, 4)).collect::<Vec<_>>(),
        "tokens": tokens,
        "median_iter_s": round(median(times), 4),
        "tokens_per_s": round(median(&rates), 1),
        "mean_tokens_per_s": round(total as f64 / times.iter().sum::<f64>(), 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnemo_train::translation::config::TranslationConfig;

    /// The phases time the models, vocabulary and token budget of en-es-longer.toml (a change
    /// there that the bench does not follow fails here), and every batch keeps the budget.
    #[test]
    fn phases_time_the_en_es_longer_models() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../experiments/translation/en-es-longer.toml"
        );
        let config = TranslationConfig::load(path).expect("the experiment config");
        assert_eq!(config.train.max_tokens, MAX_TOKENS);
        assert_eq!(config.data.parallel().vocab_size, VOCAB);
        let names = [
            ("mt_fb2_train", "feedback-2"),
            ("mt_tf2_train", "transformer-2"),
            ("mt_tf6_train", "transformer-6"),
        ];
        assert_eq!(MT_PHASES, names.map(|(phase, _)| phase));
        for (phase, model) in names {
            let want = Seq2SeqConfig {
                vocab_size: VOCAB,
                ..config.models[model].clone()
            };
            let got = mt_config(phase).expect("a translation phase");
            assert_eq!(
                serde_json::to_value(&got).unwrap(),
                serde_json::to_value(&want).unwrap(),
                "{phase} vs [models.{model}]"
            );
        }
        for b in batches(&mut ChaCha8Rng::seed_from_u64(SEED)) {
            assert!(b.rows * b.src_len.max(b.tgt_len) <= MAX_TOKENS, "{b:?}");
            assert!(b.tgt_out.iter().filter(|&&id| id != 0).count() == b.n_tgt_tokens);
        }
    }
}
