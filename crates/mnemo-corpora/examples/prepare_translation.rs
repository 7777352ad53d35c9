//! The library path of `mnemo data prepare translation`, printing the report as JSON:
//!
//! ```sh
//! cargo run --release -p mnemo-corpora --example prepare_translation -- en-de data/mt-root data/translation/en-de [seed]
//! ```
use std::path::Path;
use std::time::Instant;

use mnemo_corpora::{Pair, prepare::DEFAULT_SEED, prepare_pair};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: prepare_translation <en-de|en-es> <root> <out> [seed]".into());
    }
    let pair: Pair = args[0].parse()?;
    let seed = match args.get(3) {
        Some(s) => s.parse()?,
        None => DEFAULT_SEED,
    };
    let start = Instant::now();
    let report = prepare_pair(pair, Path::new(&args[1]), Path::new(&args[2]), seed)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "prepared {} in {:.1} s",
        report.pair,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
