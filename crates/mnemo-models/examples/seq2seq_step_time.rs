//! Rough wall time of one Seq2Seq training step (forward + backward of the token cross-entropy)
//! on the default CPU backend, per decoder kind, and of greedy and beam-4 decoding of the same
//! sources (untrained model: hypotheses run to the length cap `1.0·src_len + 5`).
//!
//! `cargo run --release -p mnemo-models --example seq2seq_step_time -- <d_model> <layers> <rows> <len> [reps] [vocab]`
//! (encoder and decoder both get `layers`; source and target `len` tokens; vocabulary 8000 unless given).
use std::time::Instant;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Distribution, Int, Tensor};
use mnemo_models::{
    DecoderConfig, DecoderKind, SearchConfig, Seq2SeqConfig, beam_search, greedy_search,
};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let [d_model, layers, rows, len] = [args[0], args[1], args[2], args[3]];
    let reps = args.get(4).copied().unwrap_or(2);
    let vocab = args.get(5).copied().unwrap_or(8000);
    let device = mnemo_backend::test_device();
    for kind in [DecoderKind::Transformer, DecoderKind::Feedback] {
        let config = Seq2SeqConfig {
            vocab_size: vocab,
            d_model,
            n_heads: 4,
            d_ff: 4 * d_model,
            encoder_layers: layers,
            decoder_layers: layers,
            decoder: DecoderConfig::of(kind),
            span: 64,
            dropout: 0.1,
            max_len: 200,
            ..Seq2SeqConfig::tiny(vocab, kind)
        };
        let model = config.init(&device);
        let src: Tensor<2, Int> = Tensor::random(
            [rows, len],
            Distribution::Uniform(4.0, vocab as f64),
            &device,
        );
        let tgt: Tensor<2, Int> = Tensor::random(
            [rows, len],
            Distribution::Uniform(4.0, vocab as f64),
            &device,
        );
        let mut times = Vec::new();
        for _ in 0..reps {
            let start = Instant::now();
            let logits = model.forward(src.clone(), tgt.clone()); // [B,T,V]
            let logp = log_softmax(logits, 2);
            let loss = logp
                .gather(2, tgt.clone().unsqueeze_dim::<3>(2))
                .sum()
                .neg();
            let grads = loss.backward();
            drop(grads);
            device.sync().expect("sync");
            times.push(start.elapsed().as_secs_f64());
        }
        println!(
            "{kind:?} d_model={d_model} layers={layers} rows={rows} len={len} params={}: step {:.2?} s (first {:.2} s), {:.0} target tokens/s",
            config.num_params(),
            times[1..].iter().sum::<f64>() / (reps - 1) as f64,
            times[0],
            (rows * len) as f64 / (times[1..].iter().sum::<f64>() / (reps - 1) as f64)
        );
        let eval = model.valid();
        let src = src.inner();
        for beam_size in [1, 4] {
            let search = SearchConfig {
                beam_size,
                length_penalty: 1.0,
                max_len_a: 1.0,
                max_len_b: 5,
            };
            let start = Instant::now();
            let out = if beam_size == 1 {
                greedy_search(&eval, src.clone(), &search)
            } else {
                beam_search(&eval, src.clone(), &search)
            };
            let secs = start.elapsed().as_secs_f64();
            let generated: usize = out.iter().map(|h| h.len()).sum();
            println!(
                "  decode beam {beam_size}: {secs:.2} s for {rows} sentences ({generated} tokens out)"
            );
        }
    }
}
