//! Translation data: parallel-text reading (plain and `.sgm`), the byte-level BPE and the
//! token-budget pair batcher.

use std::collections::HashSet;
use std::path::Path;

use mnemo_data::Split;
use mnemo_data::translation::{
    EncodedPair, PairBatch, PairBatcher, ParallelConfig, SubwordTokenizer, TranslationData,
    drop_long_pairs, read_lines, read_parallel, truncate_pairs,
};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// Asserts that the message `err` mentions every one of `parts`.
fn assert_mentions(err: &str, parts: &[&str]) {
    for part in parts {
        assert!(err.contains(part), "`{part}` not mentioned: {err}");
    }
}

/// The error of reading the `src`-`tgt` pairs of `split` from a directory holding `files`.
fn read_error(files: &[(&str, &[u8])], src: &str, tgt: &str, split: Split) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        write(dir.path(), name, bytes);
    }
    read_parallel(dir.path(), src, tgt, split)
        .unwrap_err()
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Parallel text
// ---------------------------------------------------------------------------------------

#[test]
fn plain_files_pair_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "train.en", b"Hello world.\r\nOpen the file.\n");
    write(
        dir.path(),
        "train.de",
        b"Hallo Welt.\r\n\xc3\x96ffne die Datei.",
    );
    let pairs = read_parallel(dir.path(), "en", "de", Split::Train).unwrap();
    assert_eq!(
        pairs,
        vec![
            ("Hello world.".to_string(), "Hallo Welt.".to_string()),
            ("Open the file.".to_string(), "Öffne die Datei.".to_string()),
        ]
    );
}

#[test]
fn read_lines_reads_a_plain_side_alone() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hyp.txt", b"one\r\n\ntwo\n");
    let lines = read_lines(&dir.path().join("hyp.txt")).unwrap();
    assert_eq!(lines, ["one", "", "two"]);
    let missing = dir.path().join("nope.txt");
    let err = read_lines(&missing).unwrap_err().to_string();
    assert_mentions(&err, &["data.dir", "nope.txt"]);
}

#[test]
fn sgm_file_is_read_when_the_plain_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let sgm = "<srcset setid=\"newstest\" srclang=\"any\">\n<doc sysid=\"ref\" docid=\"1\">\n\
               <h1>ignored heading</h1>\n<p>\n<seg id=\"1\">Tom &amp; Jerry say &quot;hi&quot;</seg>\n\
               <seg id=\"2\">  1 &lt; 2 &gt; 0,\n   isn&apos;t it? </seg>\n</p>\n</doc>\n</srcset>\n";
    write(dir.path(), "test.en.sgm", sgm.as_bytes());
    write(
        dir.path(),
        "test.de",
        "Tom &amp; Jerry sagen „hi“\n1 < 2 > 0, nicht?\n".as_bytes(),
    );
    let pairs = read_parallel(dir.path(), "en", "de", Split::Test).unwrap();
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0].0, "Tom & Jerry say \"hi\"");
    assert_eq!(pairs[1].0, "1 < 2 > 0, isn't it?");
    // The plain side is taken literally: no entity unescaping.
    assert_eq!(pairs[0].1, "Tom &amp; Jerry sagen „hi“");
}

#[test]
fn line_count_mismatch_names_both_files_and_counts() {
    let files: [(&str, &[u8]); 2] = [("valid.en", b"a\nb\nc\n"), ("valid.es", b"x\ny\n")];
    let err = read_error(&files, "en", "es", Split::Valid);
    assert!(err.starts_with("data.dir:"), "{err}");
    assert_mentions(&err, &["valid.en", "valid.es"]);
    assert_mentions(&err, &["has 3 segments", "has 2"]);
}

#[test]
fn missing_file_names_the_path_and_the_field() {
    let err = read_error(&[("train.en", b"a\n")], "en", "de", Split::Train);
    assert!(err.starts_with("data.dir:"), "{err}");
    assert!(err.contains("train.de"), "{err}");
    assert!(
        err.contains("train.de.sgm"),
        "mentions the .sgm alternative: {err}"
    );
}

#[test]
fn invalid_utf8_names_the_file_and_line() {
    let files: [(&str, &[u8]); 2] = [
        ("train.en", b"a\nb\nc\n"),
        ("train.de", b"a\nok\nbad \xff byte\n"),
    ];
    let err = read_error(&files, "en", "de", Split::Train);
    assert_mentions(&err, &["train.de", "line 3"]);
    assert!(err.contains("UTF-8"), "{err}");
}

#[test]
fn config_parses_with_defaults_and_rejects_unknown_fields() {
    let config: ParallelConfig =
        toml::from_str("dir = \"d\"\nsrc = \"en\"\ntgt = \"es\"\n").unwrap();
    assert_eq!(config, ParallelConfig::new("d", "en", "es"));
    assert_eq!(
        (config.vocab_size, config.min_frequency, config.max_len),
        (8000, 2, 64)
    );
    assert_eq!(config.max_train_pairs, None);
    let err =
        toml::from_str::<ParallelConfig>("dir = \"d\"\nsrc = \"en\"\ntgt = \"es\"\nvocab = 3\n")
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown field `vocab`"), "{err}");
    let bad = ParallelConfig {
        vocab_size: 200,
        ..config
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("data.vocab_size must be at least 261"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Subwords
// ---------------------------------------------------------------------------------------

const TRAIN_TEXT: &[&str] = &[
    "Öffnen Sie die Datei, bevor Sie das Fenster schließen.",
    "Die Datei konnte nicht geöffnet werden: Zugriff verweigert.",
    "Wählen Sie eine Datei aus, um sie zu öffnen.",
    "Die Größe der Datei beträgt 1.024 Bytes (ungefähr 1 KB).",
    "Über 3,5 Millionen Benutzer haben das Paket heruntergeladen!",
    "Abra el archivo antes de cerrar la ventana.",
    "No se pudo abrir el archivo: acceso denegado.",
    "¿Desea guardar los cambios en el documento?",
    "El niño pidió información sobre la canción «Mañana».",
    "En el principio creó Dios los cielos y la tierra.",
    "Open the file before you close the window.",
    "The file could not be opened: access denied.",
];

/// Lines not seen in training, with umlauts, accents, punctuation, numbers and symbols outside
/// the training alphabet.
const HELD_OUT: &[&str] = &[
    "Schließen Sie die Fenster, öffnen Sie die Türen: 42 Äpfel für 3,99 €!",
    "¿Dónde está el niño? ¡Está en la montaña, a 2.500 m de altura!",
    "Naïve café owners' \"quotes\" -- (parentheses) [brackets] {braces} 100%",
    "日本語 and emoji 🦀 survive byte-level encoding.",
    "a",
    "Tags like <s>, </s>, <pad> and <unk> are plain text here.",
];

fn trained(vocab_size: usize) -> SubwordTokenizer {
    SubwordTokenizer::train(TRAIN_TEXT, vocab_size, 2).unwrap()
}

#[test]
fn bpe_round_trips_text_exactly() {
    let tok = trained(400);
    for line in TRAIN_TEXT.iter().chain(HELD_OUT) {
        let ids = tok.encode(line);
        assert!(!ids.is_empty());
        assert!(
            ids.iter()
                .all(|&id| id > SubwordTokenizer::EOS && (id as usize) < tok.vocab_size()),
            "{line}: {ids:?}"
        );
        assert_eq!(tok.decode(&ids), *line);
    }
    let batch = tok.encode_batch(HELD_OUT);
    let single: Vec<Vec<u32>> = HELD_OUT.iter().map(|l| tok.encode(l)).collect();
    assert_eq!(batch, single);
}

#[test]
fn specials_sit_at_ids_0_to_3_and_decode_skips_them() {
    let tok = trained(400);
    for (id, name) in ["<pad>", "<unk>", "<s>", "</s>"].iter().enumerate() {
        assert_eq!(tok.id_to_token(id as u32).as_deref(), Some(*name));
    }
    assert_eq!(
        (
            SubwordTokenizer::PAD,
            SubwordTokenizer::UNK,
            SubwordTokenizer::BOS,
            SubwordTokenizer::EOS
        ),
        (0, 1, 2, 3)
    );
    let text = "Öffnen Sie die Datei.";
    let mut ids = vec![SubwordTokenizer::BOS];
    ids.extend(tok.encode(text));
    ids.extend([
        SubwordTokenizer::EOS,
        SubwordTokenizer::PAD,
        SubwordTokenizer::PAD,
    ]);
    assert_eq!(tok.decode(&ids), text);
    // The special names in text are ordinary characters, not special ids.
    let ids = tok.encode("<s> x </s>");
    assert!(ids.iter().all(|&id| id > 3), "{ids:?}");
    assert_eq!(tok.decode(&ids), "<s> x </s>");
}

#[test]
fn bpe_learns_merges_up_to_the_vocabulary_size() {
    // 4 specials + 256 byte symbols = 260 before any merge.
    let small = trained(SubwordTokenizer::MIN_VOCAB_SIZE);
    assert_eq!(small.vocab_size(), SubwordTokenizer::MIN_VOCAB_SIZE);
    let big = trained(400);
    assert!(
        big.vocab_size() > 300 && big.vocab_size() <= 400,
        "{}",
        big.vocab_size()
    );
    // A frequent word becomes a single subword; merges shorten every line.
    assert_eq!(big.encode(" Datei").len(), 1, "{:?}", big.encode(" Datei"));
    let line = TRAIN_TEXT[0];
    assert!(big.encode(line).len() < small.encode(line).len());
    // Without any pair seen min_frequency times, nothing is merged.
    let none = SubwordTokenizer::train(TRAIN_TEXT, 400, 1_000_000).unwrap();
    assert_eq!(none.vocab_size(), 260);
    assert_eq!(none.encode("Datei").len(), "Datei".len());
    let err = SubwordTokenizer::train(TRAIN_TEXT, 260, 2)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("vocab_size must be at least 261"), "{err}");
}

#[test]
fn training_is_deterministic_and_save_load_keeps_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let tok = trained(400);
    tok.save(&a).unwrap();
    trained(400).save(&b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let loaded = SubwordTokenizer::load(&a).unwrap();
    assert_eq!(loaded.vocab_size(), tok.vocab_size());
    for line in TRAIN_TEXT.iter().chain(HELD_OUT) {
        assert_eq!(loaded.encode(line), tok.encode(line), "{line}");
    }
}

#[test]
fn corrupt_or_foreign_tokenizer_json_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    let tok = trained(300);
    tok.save(&path).unwrap();
    let json = std::fs::read_to_string(&path).unwrap();

    write(
        dir.path(),
        "tokenizer.json",
        &json.as_bytes()[..json.len() / 2],
    );
    let err = SubwordTokenizer::load(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not a valid tokenizer.json"), "{err}");

    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["decoder"] = serde_json::Value::Null;
    write(dir.path(), "tokenizer.json", value.to_string().as_bytes());
    let err = SubwordTokenizer::load(&path).unwrap_err().to_string();
    assert_mentions(&err, &[&path.display().to_string(), "decoder"]);

    let missing = dir.path().join("nope.json");
    let err = SubwordTokenizer::load(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.json"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Batching
// ---------------------------------------------------------------------------------------

/// `n` pairs of pseudo-random lengths 1..=max_len; token values encode (pair, position) so
/// that batches can be checked against the pairs.
fn pairs(n: usize, max_len: usize) -> Vec<EncodedPair> {
    (0..n)
        .map(|i| {
            let ls = 1 + (i * 7919 + 13) % max_len;
            let lt = 1 + (i * 104_729 + 5) % max_len;
            let src = (0..ls).map(|k| (4 + i * 100 + k) as u32).collect();
            let tgt = (0..lt).map(|k| (4 + i * 100 + 50 + k) as u32).collect();
            (src, tgt)
        })
        .collect()
}

/// Checks a batch's layout against the pairs it came from.
fn check_batch(batch: &PairBatch, pairs: &[EncodedPair], max_tokens: Option<usize>) {
    let (r, s, t) = (batch.rows, batch.src_len, batch.tgt_len);
    assert_eq!(batch.ids.len(), r);
    assert_eq!(
        (batch.src.len(), batch.tgt_in.len(), batch.tgt_out.len()),
        (r * s, r * t, r * t)
    );
    if let Some(max_tokens) = max_tokens {
        assert!(
            r * s.max(t) <= max_tokens,
            "{r} × max({s}, {t}) > {max_tokens}"
        );
    }
    let mut n_tokens = 0;
    for (row, &id) in batch.ids.iter().enumerate() {
        let (src, tgt) = &pairs[id];
        let src_row = &batch.src[row * s..(row + 1) * s];
        assert_eq!(&src_row[..src.len()], &src[..]);
        assert!(src_row[src.len()..].iter().all(|&x| x == 0));
        let tin = &batch.tgt_in[row * t..(row + 1) * t];
        let tout = &batch.tgt_out[row * t..(row + 1) * t];
        assert_eq!(tin[0], SubwordTokenizer::BOS);
        assert_eq!(&tin[1..=tgt.len()], &tgt[..]);
        assert!(tin[tgt.len() + 1..].iter().all(|&x| x == 0));
        assert_eq!(&tout[..tgt.len()], &tgt[..]);
        assert_eq!(tout[tgt.len()], SubwordTokenizer::EOS);
        assert!(tout[tgt.len() + 1..].iter().all(|&x| x == 0));
        n_tokens += tgt.len() + 1;
    }
    // The padded widths are the longest row of the batch, not more.
    assert_eq!(
        s,
        batch.ids.iter().map(|&i| pairs[i].0.len()).max().unwrap()
    );
    assert_eq!(
        t,
        batch
            .ids
            .iter()
            .map(|&i| pairs[i].1.len() + 1)
            .max()
            .unwrap()
    );
    assert_eq!(batch.n_tgt_tokens, n_tokens);
    assert_eq!(n_tokens, batch.tgt_out.iter().filter(|&&x| x != 0).count());
}

#[test]
fn padding_bos_and_eos_placement_by_hand() {
    let pairs = vec![(vec![10, 11, 12], vec![20]), (vec![13], vec![21, 22, 23])];
    let mut batcher = PairBatcher::new(pairs, 8, 0).unwrap();
    assert_eq!(batcher.num_batches(), 1);
    let batch = batcher.next_batch();
    // Sorted by padded length: pair 0 costs max(3, 2) = 3, pair 1 costs max(1, 4) = 4.
    assert_eq!(batch.ids, vec![0, 1]);
    assert_eq!((batch.rows, batch.src_len, batch.tgt_len), (2, 3, 4));
    assert_eq!(batch.src, vec![10, 11, 12, 13, 0, 0]);
    assert_eq!(batch.tgt_in, vec![2, 20, 0, 0, 2, 21, 22, 23]);
    assert_eq!(batch.tgt_out, vec![20, 3, 0, 0, 21, 22, 23, 3]);
    assert_eq!(batch.n_tgt_tokens, 6);
}

#[test]
fn every_pair_once_per_epoch_within_the_budget() {
    let data = pairs(300, 30);
    let max_tokens = 200;
    let mut batcher = PairBatcher::new(data.clone(), max_tokens, 5).unwrap();
    let n = batcher.num_batches();
    assert!(n > 10, "{n}");
    let mut orders = Vec::new();
    for epoch in 0..3u64 {
        assert_eq!(batcher.position(), (epoch, 0));
        let mut seen = vec![0usize; data.len()];
        let mut first_ids = Vec::new();
        for _ in 0..n {
            let batch = batcher.next_batch();
            check_batch(&batch, &data, Some(max_tokens));
            first_ids.push(batch.ids[0]);
            batch.ids.iter().for_each(|&i| seen[i] += 1);
        }
        assert!(seen.iter().all(|&c| c == 1), "epoch {epoch}: {seen:?}");
        orders.push(first_ids);
    }
    assert_ne!(orders[0], orders[1], "batch order is reshuffled per epoch");
    assert_ne!(orders[1], orders[2]);
}

#[test]
fn batches_are_filled_greedily_in_length_order() {
    let data = pairs(200, 25);
    let max_tokens = 150;
    let cost = |i: usize| data[i].0.len().max(data[i].1.len() + 1);
    let batcher = PairBatcher::in_order(data.clone(), max_tokens).unwrap();
    let batches: Vec<PairBatch> = batcher.batches().collect();
    for w in batches.windows(2) {
        let last = cost(*w[0].ids.last().unwrap());
        let next = cost(w[1].ids[0]);
        assert!(last <= next, "length-sorted");
        assert!(
            (w[0].rows + 1) * next > max_tokens,
            "the next pair would have fit: {} rows, cost {next}",
            w[0].rows
        );
    }
}

#[test]
fn same_seed_same_stream_other_seed_other_order() {
    let data = pairs(200, 20);
    let take = |seed: u64| {
        let mut b = PairBatcher::new(data.clone(), 120, seed).unwrap();
        (0..2 * b.num_batches())
            .map(|_| b.next_batch())
            .collect::<Vec<_>>()
    };
    assert_eq!(take(3), take(3));
    assert_ne!(take(3), take(4));
    // The batch contents (as sets) do not depend on the seed, only their order.
    let sets = |batches: Vec<PairBatch>| -> HashSet<Vec<usize>> {
        batches.into_iter().map(|b| b.ids).collect()
    };
    assert_eq!(sets(take(3)), sets(take(4)));
}

#[test]
fn seek_resumes_the_same_stream_across_epochs() {
    let data = pairs(150, 20);
    let mut original = PairBatcher::new(data.clone(), 100, 9).unwrap();
    let n = original.num_batches();
    for _ in 0..(n + n / 2) {
        original.next_batch();
    }
    let saved = original.position();
    assert_eq!(saved, (1, n / 2));
    let expected: Vec<PairBatch> = (0..n + 3).map(|_| original.next_batch()).collect();
    assert_eq!(original.position(), (2, n / 2 + 3));

    let mut resumed = PairBatcher::new(data.clone(), 100, 9).unwrap();
    resumed.seek(saved).unwrap();
    let got: Vec<PairBatch> = (0..n + 3).map(|_| resumed.next_batch()).collect();
    assert_eq!(got, expected);
    assert_eq!(resumed.batch(1, n / 2), expected[0]);

    let err = resumed.seek((0, n)).unwrap_err().to_string();
    assert_mentions(&err, &["position", &format!("{n} batches")]);
}

#[test]
fn in_order_recovers_the_input_order_and_keeps_long_pairs() {
    let mut data = pairs(50, 10);
    data.push(((4..40).collect(), vec![5; 3])); // cost 36 > max_tokens
    let batcher = PairBatcher::in_order(data.clone(), 30).unwrap();
    let mut rows: Vec<Option<Vec<u32>>> = vec![None; data.len()];
    for batch in batcher.batches() {
        check_batch(&batch, &data, (batch.rows > 1).then_some(30));
        for (r, &id) in batch.ids.iter().enumerate() {
            assert!(rows[id].is_none(), "pair {id} twice");
            rows[id] = Some(batch.src[r * batch.src_len..][..data[id].0.len()].to_vec());
        }
    }
    let sources: Vec<Vec<u32>> = rows.into_iter().map(Option::unwrap).collect();
    assert_eq!(
        sources,
        data.iter().map(|p| p.0.clone()).collect::<Vec<_>>()
    );
    // Two passes give identical batches: no shuffling.
    assert!(batcher.batches().eq(batcher.batches()));

    let err = PairBatcher::new(data, 30, 0).unwrap_err().to_string();
    assert!(
        err.starts_with("max_tokens is 30 but pair 50 alone needs 36"),
        "{err}"
    );
}

#[test]
fn bad_batcher_inputs_are_errors() {
    let err = PairBatcher::new(Vec::new(), 10, 0).unwrap_err().to_string();
    assert!(err.contains("pairs is empty"), "{err}");
    let err = PairBatcher::in_order(vec![(vec![4], vec![5]), (vec![], vec![6])], 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pair 1 has an empty source"), "{err}");
    let err = PairBatcher::in_order(vec![(vec![4], vec![5])], 0)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("max_tokens must be at least 1"), "{err}");
}

#[test]
fn length_filter_counts_and_truncation_for_the_loss() {
    let data: Vec<EncodedPair> = vec![
        (vec![4; 3], vec![5; 3]), // kept
        (vec![4; 4], vec![5; 1]), // source too long
        (vec![4; 1], vec![5; 5]), // target too long
        (vec![4; 2], vec![5; 2]), // kept
    ];
    let filtered = drop_long_pairs(data.clone(), 3);
    assert_eq!(filtered.dropped, 2);
    assert_eq!(filtered.kept, vec![0, 3]);
    assert_eq!(filtered.pairs, vec![data[0].clone(), data[3].clone()]);
    assert_eq!(drop_long_pairs(data.clone(), 5).dropped, 0);

    let cut = truncate_pairs(&data, 3);
    let lens: Vec<(usize, usize)> = cut.iter().map(|(s, t)| (s.len(), t.len())).collect();
    assert_eq!(lens, vec![(3, 3), (3, 1), (1, 3), (2, 2)]);
    assert_eq!(cut[2].1, data[2].1[..3]);
}

#[test]
fn end_to_end_from_files_to_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (de, es): (Vec<&str>, Vec<&str>) = (TRAIN_TEXT[..5].to_vec(), TRAIN_TEXT[5..10].to_vec());
    write(dir.path(), "train.de", (de.join("\n") + "\n").as_bytes());
    write(dir.path(), "train.es", (es.join("\n") + "\n").as_bytes());
    let pairs = read_parallel(dir.path(), "de", "es", Split::Train).unwrap();
    let texts: Vec<&str> = pairs
        .iter()
        .flat_map(|(s, t)| [s.as_str(), t.as_str()])
        .collect();
    let tok = SubwordTokenizer::train(&texts, 300, 2).unwrap();
    let encoded: Vec<EncodedPair> = pairs
        .iter()
        .map(|(s, t)| (tok.encode(s), tok.encode(t)))
        .collect();
    let mut batcher = PairBatcher::new(encoded.clone(), 200, 1).unwrap();
    let mut decoded = vec![None; pairs.len()];
    for _ in 0..batcher.num_batches() {
        let batch = batcher.next_batch();
        check_batch(&batch, &encoded, Some(200));
        for (r, &id) in batch.ids.iter().enumerate() {
            let row = &batch.tgt_out[r * batch.tgt_len..(r + 1) * batch.tgt_len];
            decoded[id] = Some(tok.decode(row));
        }
    }
    let targets: Vec<String> = decoded.into_iter().map(Option::unwrap).collect();
    assert_eq!(targets, es);
}

// ---------------------------------------------------------------------------------------
// The whole pipeline
// ---------------------------------------------------------------------------------------

/// A corpus directory: train = the German lines paired with the Spanish ones (plus 20
/// numbered short pairs), valid/test = held-out lines.
fn corpus() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut de: Vec<String> = TRAIN_TEXT[..5].iter().map(|s| s.to_string()).collect();
    let mut es: Vec<String> = TRAIN_TEXT[5..10].iter().map(|s| s.to_string()).collect();
    for i in 0..20 {
        de.push(format!("Datei {i}"));
        es.push(format!("archivo {i}"));
    }
    let lines = |v: &[String]| (v.join("\n") + "\n").into_bytes();
    write(dir.path(), "train.de", &lines(&de));
    write(dir.path(), "train.es", &lines(&es));
    write(dir.path(), "valid.de", HELD_OUT[0].as_bytes());
    write(dir.path(), "valid.es", HELD_OUT[1].as_bytes());
    write(
        dir.path(),
        "test.de",
        format!("{}\n{}\n", HELD_OUT[2], HELD_OUT[4]).as_bytes(),
    );
    write(
        dir.path(),
        "test.es",
        format!("{}\n{}\n", HELD_OUT[3], HELD_OUT[5]).as_bytes(),
    );
    dir
}

#[test]
fn prepare_samples_trains_encodes_and_filters() {
    let dir = corpus();
    let config = ParallelConfig {
        vocab_size: 300,
        max_len: 8,
        ..ParallelConfig::new(dir.path(), "de", "es")
    };
    let data = TranslationData::prepare(&config, None).unwrap();
    let tok = &data.tokenizer;
    // The 5 sentence pairs are longer than 8 subwords on some side; the 20 short ones are not.
    let counts = data.train_counts;
    assert_eq!(
        (counts.read, counts.sampled, counts.too_long, counts.kept),
        (25, 25, 5, 20)
    );
    assert_eq!(data.train.len(), 20);
    assert_eq!(tok.decode(&data.train[3].0), "Datei 3");
    assert_eq!(tok.decode(&data.train[3].1), "archivo 3");
    assert!(data.train.iter().all(|(s, t)| s.len() <= 8 && t.len() <= 8));
    // Evaluation splits keep their text and full-length encodings.
    assert_eq!(
        data.valid.text,
        vec![(HELD_OUT[0].to_string(), HELD_OUT[1].to_string())]
    );
    assert!(data.valid.encoded[0].0.len() > 8, "not truncated");
    assert_eq!(tok.decode(&data.test.encoded[1].1), HELD_OUT[5]);
    assert_eq!(data.eval_split(Split::Test), Some(&data.test));

    // A given tokenizer is used as is, and a sample is seeded.
    let sampled = ParallelConfig {
        max_train_pairs: Some(10),
        seed: 4,
        ..config.clone()
    };
    let a = TranslationData::prepare(&sampled, Some(tok.clone())).unwrap();
    let b = TranslationData::prepare(&sampled, Some(tok.clone())).unwrap();
    assert_eq!(a.train_counts.sampled, 10);
    assert_eq!(a.train_counts.kept + a.train_counts.too_long, 10);
    assert_eq!(a.train, b.train);
    assert!(a.train.iter().all(|p| data.train.contains(p)));
    assert_eq!(a.valid, data.valid);

    let err = TranslationData::prepare(
        &ParallelConfig {
            max_len: 1,
            ..config
        },
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("data.max_len is 1 subwords"), "{err}");
}
