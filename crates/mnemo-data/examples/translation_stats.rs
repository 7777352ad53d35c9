//! Statistics of a prepared translation corpus through the data pipeline: BPE training time,
//! subword lengths, the `max_len` filter, round trips and batch padding.
//!
//! ```text
//! cargo run --release -p mnemo-data --example translation_stats -- \
//!     data/translation/en-de en de [vocab_size=8000] [max_len=64] [max_tokens=4096]
//! ```

use std::time::Instant;

use mnemo_data::translation::{PairBatcher, ParallelConfig, TranslationData};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err(
            "usage: translation_stats DIR SRC TGT [VOCAB_SIZE] [MAX_LEN] [MAX_TOKENS]".into(),
        );
    }
    let number = |i: usize, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(args
            .get(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let config = ParallelConfig {
        vocab_size: number(3, 8000)?,
        max_len: number(4, 64)?,
        ..ParallelConfig::new(&args[0], args[1].as_str(), args[2].as_str())
    };
    let max_tokens = number(5, 4096)?;

    let start = Instant::now();
    let data = TranslationData::prepare(&config, None)?;
    let prepared = start.elapsed().as_secs_f64();
    let tok = &data.tokenizer;
    println!(
        "prepare (read + BPE {} + encode): {prepared:.1} s; vocab {}",
        config.vocab_size,
        tok.vocab_size()
    );
    println!("train counts: {:?}", data.train_counts);

    let start = Instant::now();
    let texts: Vec<&str> = data
        .valid
        .text
        .iter()
        .flat_map(|(s, t)| [s.as_str(), t.as_str()])
        .collect();
    let encoded = tok.encode_batch(&texts);
    let round_trips = texts
        .iter()
        .zip(&encoded)
        .filter(|(t, ids)| tok.decode(ids) == **t)
        .count();
    println!(
        "valid round trips: {round_trips}/{} ({:.2} s)",
        texts.len(),
        start.elapsed().as_secs_f64()
    );

    for (name, split) in [("valid", &data.valid), ("test", &data.test)] {
        let n = split.encoded.len().max(1) as f64;
        let src: usize = split.encoded.iter().map(|p| p.0.len()).sum();
        let tgt: usize = split.encoded.iter().map(|p| p.1.len()).sum();
        let words: usize = split
            .text
            .iter()
            .map(|p| p.0.split_whitespace().count())
            .sum();
        let long = split
            .encoded
            .iter()
            .filter(|p| p.0.len().max(p.1.len()) > config.max_len)
            .count();
        println!(
            "{name}: {} pairs, mean subwords src {:.1} tgt {:.1}, src subwords/word {:.2}, \
             longer than max_len: {long}",
            split.encoded.len(),
            src as f64 / n,
            tgt as f64 / n,
            src as f64 / words.max(1) as f64
        );
    }

    let batcher = PairBatcher::new(data.train.clone(), max_tokens, 0)?;
    let (mut real, mut padded) = (0usize, 0usize);
    for batch in batcher.batches() {
        real += batch.n_tgt_tokens;
        padded += batch.rows * batch.tgt_len;
    }
    println!(
        "train batches at max_tokens {max_tokens}: {} (mean {:.1} pairs), target padding {:.1}%",
        batcher.num_batches(),
        batcher.num_pairs() as f64 / batcher.num_batches() as f64,
        100.0 * (padded - real) as f64 / padded as f64
    );
    Ok(())
}
