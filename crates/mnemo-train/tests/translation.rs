//! The translation trainer end to end on a small synthetic parallel corpus: training,
//! decoding, BLEU tied to [`corpus_bleu`], exact resume, reload, and config errors.
mod common;

use std::path::Path;

use common::{error_naming, max_abs_diff, options, parameters, resume_options};
use mnemo_data::Split;
use mnemo_data::translation::read_lines;
use mnemo_train::translation::{
    MtSummary, TranslationConfig, evaluate_bleu, load_translation_run, train_translation,
};
use mnemo_train::{TrainError, TrainOptions, corpus_bleu};
use rand::{Rng, SeedableRng};

/// A toy language pair: English-like words map one to one onto made-up target words, and the
/// target reverses the order of every adjacent pair of words. Written as `{split}.{en,xx}`.
fn write_corpus(dir: &Path) {
    let src_words = [
        "the", "cat", "dog", "sees", "a", "big", "small", "house", "runs", "file", "open", "save",
        "red", "blue", "tree", "under", "on", "quickly",
    ];
    let tgt_word = |w: &str| -> String { format!("{}x", w.chars().rev().collect::<String>()) };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for (split, n) in [("train", 240), ("valid", 12), ("test", 10)] {
        let (mut en, mut xx) = (String::new(), String::new());
        for _ in 0..n {
            let len = rng.random_range(2..7);
            let words: Vec<&str> = (0..len)
                .map(|_| src_words[rng.random_range(0..src_words.len())])
                .collect();
            let mut target: Vec<String> = words.iter().map(|w| tgt_word(w)).collect();
            for pair in target.chunks_mut(2) {
                pair.reverse();
            }
            en.push_str(&words.join(" "));
            en.push('\n');
            xx.push_str(&target.join(" "));
            xx.push('\n');
        }
        std::fs::write(dir.join(format!("{split}.en")), en).unwrap();
        std::fs::write(dir.join(format!("{split}.xx")), xx).unwrap();
    }
}

fn toml(dir: &Path, run: &str) -> String {
    format!(
        r#"
[run]
name = "mt"
seed = 3
{run}

[data]
task = "translation"
dir = "{}"
src = "en"
tgt = "xx"
vocab_size = 300
min_frequency = 1
max_len = 16

[train]
max_tokens = 256

[optim]
lr = 3e-3
warmup_steps = 4
grad_clip = 1.0

[decode]
beam_size = 3
length_penalty = 0.6

[models.transformer]
d_model = 32
n_heads = 2
d_ff = 64
encoder_layers = 1
decoder_layers = 2
decoder = "transformer"
span = 32
max_len = 24

[models.feedback]
d_model = 32
n_heads = 2
d_ff = 64
encoder_layers = 1
decoder_layers = 2
decoder = "feedback"
span = 32
max_len = 24

[models.can]
d_model = 32
n_heads = 2
d_ff = 64
encoder_layers = 1
decoder_layers = 2
decoder = "can"
span = 32
max_len = 24
"#,
        dir.display()
    )
}

/// The toy corpus written into a fresh directory, and the config with `run` that reads it.
fn corpus_and_config(run: &str) -> (tempfile::TempDir, TranslationConfig) {
    let data = tempfile::tempdir().unwrap();
    write_corpus(data.path());
    let config = config(&toml(data.path(), run));
    (data, config)
}

fn config(text: &str) -> TranslationConfig {
    TranslationConfig::from_toml_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn lines(path: &Path) -> Vec<String> {
    read_lines(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_decoder_trains_decodes_and_reports_bleu_as_corpus_bleu_of_its_output() {
    let (data, config) = corpus_and_config("steps = 40\nlog_every = 10");
    let out = tempfile::tempdir().unwrap();
    for model in ["transformer", "feedback", "can"] {
        let summary: MtSummary = train_translation(&config, model, &options(out.path())).unwrap();
        let dir = out.path().join("mt").join(model);
        for file in [
            "tokenizer.json",
            "checkpoint.mnemo",
            "summary.json",
            "config.toml",
        ] {
            assert!(dir.join(file).is_file(), "{model}: no {file}");
        }
        // Learning happened: the validation loss is well below a uniform guess over the vocabulary.
        let uniform = 261f64.ln(); // the smallest vocabulary the BPE can have
        assert!(
            summary.run.valid.loss < uniform - 1.0,
            "{model}: valid loss {}",
            summary.run.valid.loss
        );
        // The reported BLEU is corpus_bleu of the written translations against the references.
        for (split, report, n) in [
            ("valid", &summary.valid_bleu, 12),
            ("test", &summary.test_bleu, 10),
        ] {
            let hyps = lines(&dir.join(format!("{split}.hyp.txt")));
            let refs = lines(&data.path().join(format!("{split}.xx")));
            assert_eq!((hyps.len(), report.sentences), (n, n), "{model} {split}");
            assert_eq!(
                report.bleu,
                corpus_bleu(&hyps, &refs).unwrap(),
                "{model} {split}"
            );
            assert_eq!(report.beam_size, 3);
            assert!(
                report.generated_tokens >= n,
                "{model}: at least one EOS per sentence"
            );
        }
    }
}

#[test]
fn a_reloaded_run_translates_exactly_as_at_the_end_of_training() {
    let (_data, config) = corpus_and_config("steps = 12");
    let out = tempfile::tempdir().unwrap();
    let summary = train_translation(&config, "feedback", &options(out.path())).unwrap();
    let run = load_translation_run(out.path().join("mt").join("feedback"), &common::cpu()).unwrap();
    assert_eq!(run.trainer.step, 12);
    let split = run.split(Split::Test);
    let decode = &run.config.decode;
    let (report, hyps) = evaluate_bleu(
        &run.model,
        &run.tokenizer,
        split,
        decode,
        3,
        256,
        &run.device,
    );
    assert_eq!(report.bleu, summary.test_bleu.bleu);
    assert_eq!(hyps, lines(&out.path().join("mt/feedback/test.hyp.txt")));
}

#[test]
fn an_interrupted_and_resumed_run_ends_exactly_like_an_uninterrupted_one() {
    // 240 pairs in batches of <= 256 tokens: several epochs, so the stop lands mid-epoch and
    // the resumed run must restore the shuffled batch order.
    let (_data, config) = corpus_and_config("steps = 16\ncheckpoint_every = 5");
    for model in ["feedback", "transformer"] {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let whole = train_translation(&config, model, &options(a.path())).unwrap();
        let stopped = TrainOptions {
            stop_after: Some(7),
            ..options(b.path())
        };
        let first = train_translation(&config, model, &stopped).unwrap();
        assert_eq!((first.run.steps, first.run.finished), (7, false));
        let again = train_translation(&config, model, &options(b.path())).unwrap_err();
        assert!(matches!(again, TrainError::RunExists { .. }), "{again}");
        let resumed = train_translation(&config, model, &resume_options(b.path())).unwrap();
        assert_eq!((resumed.run.steps, resumed.run.finished), (16, true));
        let run_a = load_translation_run(a.path().join("mt").join(model), &common::cpu()).unwrap();
        let run_b = load_translation_run(b.path().join("mt").join(model), &common::cpu()).unwrap();
        let diff = max_abs_diff(&parameters(&run_a.model), &parameters(&run_b.model));
        assert!(diff < 1e-6, "{model}: parameters differ by {diff}");
        assert!(
            (whole.run.valid.loss - resumed.run.valid.loss).abs() < 1e-6,
            "{model}"
        );
        assert_eq!(whole.test_bleu.bleu, resumed.test_bleu.bleu, "{model}");
    }
}

#[test]
fn config_errors_name_file_line_and_field() {
    let data = tempfile::tempdir().unwrap();
    let text = toml(data.path(), "steps = 4");
    let err = |text: &str| {
        TranslationConfig::from_toml_str(text)
            .unwrap_err()
            .in_file(Path::new("mt.toml"), Some(text))
            .to_string()
    };
    for (from, to, expected) in [
        (
            "beam_size = 3",
            "beam_size = 0",
            "decode.beam_size: must be at least 1",
        ),
        (
            "max_tokens = 256",
            "max_tokens = 0",
            "train.max_tokens: must be at least 1",
        ),
        (
            "length_penalty = 0.6",
            "length_penalty = -1.0",
            "decode.length_penalty",
        ),
        (
            "decoder = \"feedback\"",
            "decoder = \"lstm\"",
            "models.feedback.decoder: unknown variant `lstm`",
        ),
        (
            "n_heads = 2\nd_ff = 64\nencoder_layers = 1\ndecoder_layers = 2\ndecoder = \"feedback\"",
            "n_heads = 3\nd_ff = 64\nencoder_layers = 1\ndecoder_layers = 2\ndecoder = \"feedback\"",
            "models.feedback.n_heads",
        ),
        (
            "max_len = 16",
            "max_len = 16\nmax_lenght = 3",
            "data.max_lenght: unknown field",
        ),
        ("vocab_size = 300", "vocab_size = 10", "data.vocab_size"),
    ] {
        assert!(text.contains(from), "{from}");
        let msg = err(&text.replacen(from, to, 1));
        assert!(msg.starts_with("mt.toml:"), "{msg}");
        assert!(msg.contains(expected), "expected `{expected}` in: {msg}");
    }
    // A corpus directory that does not exist is named when training starts.
    let config = config(&text.replace(&data.path().display().to_string(), "/no/such/corpus"));
    let out = tempfile::tempdir().unwrap();
    error_naming(
        train_translation(&config, "transformer", &options(out.path())),
        &["/no/such/corpus", "data.dir"],
    );
    assert!(
        !out.path().join("mt").exists(),
        "nothing is written for a failed start"
    );
}
