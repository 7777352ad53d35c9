//! BLEU against reference values computed by the real sacrebleu 2.x.
//!
//! `tests/fixtures/bleu/sacrebleu_refs.json` was written by `tests/fixtures/bleu/make_refs.py`
//! (the command and sacrebleu version are in that directory's README.md); these tests read it
//! and need no Python.
use std::path::PathBuf;

use mnemo_train::bleu::{Bleu, BleuError, BleuStats, corpus_bleu, sentence_bleu};
use mnemo_train::bleu_tokenize::{python_rstrip, tokenize_13a, tokenize_13a_tokens};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixtures {
    sacrebleu_version: String,
    signature: String,
    corpora: Vec<CorpusCase>,
    tokenize_13a: Vec<TokenizerCase>,
    sentence_bleu: Vec<SentenceCase>,
}

#[derive(Deserialize)]
struct CorpusCase {
    name: String,
    hypotheses: Vec<String>,
    references: Vec<String>,
    #[serde(flatten)]
    expected: Expected,
}

#[derive(Deserialize)]
struct SentenceCase {
    hypothesis: String,
    reference: String,
    #[serde(flatten)]
    expected: Expected,
}

#[derive(Deserialize)]
struct TokenizerCase {
    input: String,
    output: String,
}

/// What sacrebleu's `BLEUScore` held. Floats are read from their IEEE-754 bits (`*_bits`):
/// serde_json's default decimal parsing can be one ulp off.
#[derive(Deserialize)]
struct Expected {
    score_bits: u64,
    counts: [u64; 4],
    totals: [u64; 4],
    precision_bits: [u64; 4],
    bp_bits: u64,
    sys_len: u64,
    ref_len: u64,
    string: String,
}

impl Expected {
    fn score(&self) -> f64 {
        f64::from_bits(self.score_bits)
    }

    fn bp(&self) -> f64 {
        f64::from_bits(self.bp_bits)
    }
}

fn fixtures() -> Fixtures {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bleu/sacrebleu_refs.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Differences between our score and sacrebleu's, one line each (empty when they agree).
///
/// Precisions are plain IEEE arithmetic done in sacrebleu's order, so they must agree to the
/// bit; score and BP go through `exp`/`ln`, whose last bit may differ between math libraries,
/// so they must agree to 1e-12 (relative).
fn mismatches(label: &str, got: &Bleu, want: &Expected) -> Vec<String> {
    let mut out = Vec::new();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    if got.counts != want.counts || got.totals != want.totals {
        out.push(format!(
            "{label}: counts/totals {:?}/{:?} != {:?}/{:?}",
            got.counts, got.totals, want.counts, want.totals
        ));
    }
    if (got.sys_len, got.ref_len) != (want.sys_len, want.ref_len) {
        out.push(format!(
            "{label}: lengths {}/{} != {}/{}",
            got.sys_len, got.ref_len, want.sys_len, want.ref_len
        ));
    }
    if !close(got.score, want.score()) || !close(got.bp, want.bp()) {
        out.push(format!(
            "{label}: score/bp {:?}/{:?} != {:?}/{:?}",
            got.score,
            got.bp,
            want.score(),
            want.bp()
        ));
    }
    if got.precisions.map(f64::to_bits) != want.precision_bits {
        out.push(format!(
            "{label}: precisions {:?} != {:?}",
            got.precisions,
            want.precision_bits.map(f64::from_bits)
        ));
    }
    if got.to_string() != want.string {
        out.push(format!(
            "{label}: string\n  got  {got}\n  want {}",
            want.string
        ));
    }
    out
}

#[test]
fn fixtures_come_from_sacrebleu_2_with_default_settings_and_cover_the_edge_cases() {
    let f = fixtures();
    assert!(
        f.sacrebleu_version.starts_with("2."),
        "{}",
        f.sacrebleu_version
    );
    assert!(
        f.signature
            .starts_with("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|"),
        "{}",
        f.signature
    );
    let corpora = &f.corpora;
    assert!(corpora.len() >= 50 && f.tokenize_13a.len() >= 50 && f.sentence_bleu.len() >= 50);
    let big = corpora
        .iter()
        .find(|c| c.name == "random_300")
        .expect("random_300 corpus");
    assert_eq!(big.hypotheses.len(), 300);
    // Brevity penalty below 1, an empty hypothesis, exp smoothing (a zero order after a
    // non-zero one with a non-zero score) and a score of 0 with matches are all present.
    assert!(
        corpora
            .iter()
            .any(|c| c.expected.bp() < 1.0 && c.expected.bp() > 0.0)
    );
    assert!(
        corpora
            .iter()
            .any(|c| c.hypotheses.iter().any(String::is_empty))
    );
    assert!(corpora.iter().any(|c| {
        let e = &c.expected;
        e.score() > 0.0 && e.counts[0] > 0 && e.counts[1..].contains(&0)
    }));
    assert!(
        corpora
            .iter()
            .any(|c| c.expected.score() == 0.0 && c.expected.counts[0] > 0)
    );
}

#[test]
fn corpus_bleu_matches_sacrebleu_on_every_fixture_corpus() {
    let f = fixtures();
    let mut errors = Vec::new();
    for case in &f.corpora {
        let bleu = corpus_bleu(&case.hypotheses, &case.references).unwrap();
        errors.extend(mismatches(&case.name, &bleu, &case.expected));
    }
    assert!(
        errors.is_empty(),
        "{} of {} corpora differ from sacrebleu:\n{}",
        errors.len(),
        f.corpora.len(),
        errors.join("\n")
    );
}

#[test]
fn sentence_bleu_matches_sacrebleu_sentence_bleu_with_effective_order() {
    let f = fixtures();
    let mut errors = Vec::new();
    for (i, case) in f.sentence_bleu.iter().enumerate() {
        let bleu = sentence_bleu(&case.hypothesis, &case.reference);
        errors.extend(mismatches(
            &format!("pair {i} {:?}", case.hypothesis),
            &bleu,
            &case.expected,
        ));
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn tokenizer_13a_matches_sacrebleu_token_for_token() {
    let f = fixtures();
    let mut errors = Vec::new();
    for case in &f.tokenize_13a {
        let got = tokenize_13a(python_rstrip(&case.input));
        if got != case.output {
            errors.push(format!(
                "{:?}\n  got  {got:?}\n  want {:?}",
                case.input, case.output
            ));
        }
        let tokens = tokenize_13a_tokens(&case.input);
        assert_eq!(tokens.join(" "), case.output, "{:?}", case.input);
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn statistics_of_parts_add_up_to_the_corpus_score() {
    let f = fixtures();
    let big = f.corpora.iter().find(|c| c.name == "random_300").unwrap();
    let mut stats = BleuStats::default();
    for (start, end) in [(0, 97), (97, 250), (250, 300)] {
        for (h, r) in big.hypotheses[start..end]
            .iter()
            .zip(&big.references[start..end])
        {
            stats += BleuStats::segment(h, r);
        }
    }
    let whole = corpus_bleu(&big.hypotheses, &big.references).unwrap();
    assert_eq!(Bleu::from_stats(&stats), whole);
    assert_eq!(whole.to_string(), big.expected.string);
}

#[test]
fn lists_of_different_lengths_are_an_error_naming_both_counts() {
    let hyps = vec!["a b c".to_string(); 3];
    let refs = vec!["a b c".to_string(); 2];
    let err = corpus_bleu(&hyps, &refs).unwrap_err();
    assert_eq!(
        err,
        BleuError::LengthMismatch {
            hypotheses: 3,
            references: 2
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("3 hypotheses") && message.contains("2 references"),
        "{message}"
    );
}

#[test]
fn an_empty_corpus_is_an_error() {
    let err = corpus_bleu(&[], &[]).unwrap_err();
    assert_eq!(err, BleuError::Empty);
    assert!(err.to_string().contains("no segments"), "{err}");
}
