//! Readers of the real parallel corpora (gettext `.mo`, SWORD zText, DDTP, Handbook HTML) and
//! the translation-corpus preparation, on fixtures built here in temporary directories.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use mnemo_corpora::clean::{is_format_only, strip_accelerator, unescape_entities};
use mnemo_corpora::prepare::{EN_ES_TEST_BOOKS, EN_ES_VALID_BOOKS};
use mnemo_corpora::{
    EnDeSources, align_chapters, handbook, pair_descriptions, prepare_en_de, prepare_en_es,
    read_mo, read_translation_index, read_ztext, sword,
};
use mnemo_data::DataError;
use mnemo_data::translation::read_lines;

// ---------------------------------------------------------------- gettext .mo

/// The bytes of a `.mo` file holding `entries` (msgid, msgstr) in the given byte order,
/// laid out as GNU msgfmt does (header, two tables, then the strings NUL-terminated).
/// Asserts that the message `err` mentions every one of `parts`.
fn assert_mentions(err: &str, parts: &[&str]) {
    for part in parts {
        assert!(err.contains(part), "`{part}` not mentioned: {err}");
    }
}

/// Creates the folders `names` under `root` (with their parents) and returns their paths.
fn make_dirs<const N: usize>(root: &Path, names: [&str; N]) -> [PathBuf; N] {
    names.map(|name| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn mo_bytes(entries: &[(&[u8], &[u8])], big_endian: bool) -> Vec<u8> {
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let n = entries.len() as u32;
    let originals = 28u32;
    let translations = originals + 8 * n;
    let mut strings_at = translations + 8 * n;
    let mut tables = (Vec::new(), Vec::new());
    let mut strings = Vec::new();
    for (id, tr) in entries {
        for (table, s) in [(&mut tables.0, id), (&mut tables.1, tr)] {
            table.extend_from_slice(&u32b(s.len() as u32));
            table.extend_from_slice(&u32b(strings_at));
            strings.extend_from_slice(s);
            strings.push(0);
            strings_at += s.len() as u32 + 1;
        }
    }
    let mut out = Vec::new();
    for v in [0x9504_12de, 0, n, originals, translations, 0, strings_at] {
        out.extend_from_slice(&u32b(v));
    }
    out.extend_from_slice(&tables.0);
    out.extend_from_slice(&tables.1);
    out.extend_from_slice(&strings);
    out
}

fn sample_mo_entries() -> Vec<(&'static [u8], &'static [u8])> {
    vec![
        (
            b"",
            b"Project-Id-Version: demo\nContent-Type: text/plain; charset=UTF-8\n",
        ),
        (b"Open", "Öffnen".as_bytes()),
        (b"menu\x04File", b"Datei"),
        (b"One file\0%d files", b"Eine Datei\0%d Dateien"),
        (b"Untranslated", b""),
    ]
}

#[test]
fn mo_files_read_back_in_both_byte_orders() {
    let dir = tempfile::tempdir().unwrap();
    for big_endian in [false, true] {
        let path = dir.path().join(format!("demo-{big_endian}.mo"));
        std::fs::write(&path, mo_bytes(&sample_mo_entries(), big_endian)).unwrap();
        let pairs = read_mo(&path).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("Open".to_string(), "Öffnen".to_string()),
                ("File".to_string(), "Datei".to_string()),
                ("One file".to_string(), "Eine Datei".to_string()),
            ],
            "big_endian = {big_endian}"
        );
    }
}

#[test]
fn mo_files_in_latin1_are_decoded_with_the_header_charset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.mo");
    let entries: Vec<(&[u8], &[u8])> = vec![
        (b"", b"Content-Type: text/plain; charset=ISO-8859-1\n"),
        (b"Size", b"Gr\xf6\xdfe"),
    ];
    std::fs::write(&path, mo_bytes(&entries, false)).unwrap();
    assert_eq!(
        read_mo(&path).unwrap(),
        vec![("Size".to_string(), "Größe".to_string())]
    );
}

#[test]
fn truncated_or_garbage_mo_files_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let full = mo_bytes(&sample_mo_entries(), false);
    let truncated = dir.path().join("truncated.mo");
    std::fs::write(&truncated, &full[..full.len() - 20]).unwrap();
    let err = read_mo(&truncated).unwrap_err().to_string();
    assert!(err.contains(&truncated.display().to_string()), "{err}");
    assert!(err.contains("truncated"), "{err}");

    let garbage = dir.path().join("garbage.mo");
    std::fs::write(&garbage, b"this is not a gettext catalog at all").unwrap();
    let err = read_mo(&garbage).unwrap_err().to_string();
    assert!(err.contains(&garbage.display().to_string()), "{err}");
    assert!(err.contains("magic number"), "{err}");

    let missing = dir.path().join("missing.mo");
    let err = read_mo(&missing).unwrap_err();
    assert!(matches!(err, DataError::File { ref path, .. } if path.ends_with("missing.mo")));
}

// ---------------------------------------------------------------- SWORD zText

/// Write `{testament}.{bzv,bzs,bzz}` into `dir`: `blocks` are lists of verse texts, `slots`
/// name `(block, verse index in block)` or `None` for an empty slot.
fn write_testament(
    dir: &Path,
    testament: &str,
    blocks: &[Vec<&str>],
    slots: &[Option<(usize, usize)>],
) {
    let mut bzs = Vec::new();
    let mut bzz = Vec::new();
    let mut offsets = Vec::new(); // per block, per verse: (offset, len)
    for verses in blocks {
        let mut text = Vec::new();
        let mut spans = Vec::new();
        for v in verses {
            spans.push((text.len() as u32, v.len() as u16));
            text.extend_from_slice(v.as_bytes());
        }
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&text).unwrap();
        let compressed = enc.finish().unwrap();
        bzs.extend_from_slice(&(bzz.len() as u32).to_le_bytes());
        bzs.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
        bzs.extend_from_slice(&(text.len() as u32).to_le_bytes());
        bzz.extend_from_slice(&compressed);
        offsets.push(spans);
    }
    let mut bzv = Vec::new();
    for slot in slots {
        let (block, off, len) = match slot {
            Some((b, v)) => (*b as u32, offsets[*b][*v].0, offsets[*b][*v].1),
            None => (0, 0, 0),
        };
        bzv.extend_from_slice(&block.to_le_bytes());
        bzv.extend_from_slice(&off.to_le_bytes());
        bzv.extend_from_slice(&len.to_le_bytes());
    }
    std::fs::write(dir.join(format!("{testament}.bzv")), bzv).unwrap();
    std::fs::write(dir.join(format!("{testament}.bzs")), bzs).unwrap();
    std::fs::write(dir.join(format!("{testament}.bzz")), bzz).unwrap();
}

#[test]
fn sword_ztext_modules_read_back_verse_by_verse() {
    let dir = tempfile::tempdir().unwrap();
    let ot_blocks = vec![
        vec!["<milestone type=\"x-importer\"/>"],
        vec![
            "<div osisID=\"Gen\" type=\"book\"/> <title type=\"main\">The First Book</title>",
            "<chapter n=\"1\" osisID=\"Gen.1\"/> ",
            "In the <w lemma=\"strong:H7225\">beginning</w> God<note placement=\"foot\">Heb. <reference>1.1</reference> note</note> created.",
            "¶ And it <transChange type=\"added\">was</transChange> good &amp; fine.",
        ],
    ];
    write_testament(
        dir.path(),
        "ot",
        &ot_blocks,
        &[
            None,
            Some((0, 0)),
            Some((1, 0)),
            Some((1, 1)),
            Some((1, 2)),
            Some((1, 3)),
        ],
    );
    let nt_blocks = vec![vec![
        "<div osisID=\"Matt\" type=\"book\"/>",
        "<title canonical=\"true\" type=\"psalm\">A Song.</title><l>Line one</l><l>line two</l>",
    ]];
    write_testament(
        dir.path(),
        "nt",
        &nt_blocks,
        &[None, Some((0, 0)), None, Some((0, 1))],
    );

    let verses = read_ztext(dir.path()).unwrap();
    let expected: Vec<Option<&str>> = vec![
        None,
        None, // only a milestone
        None, // book heading: non-canonical title dropped
        None, // chapter marker
        Some("In the beginning God created."),
        Some("And it was good & fine."),
        None,
        None,
        None,
        Some("A Song. Line one line two"),
    ];
    assert_eq!(
        verses,
        expected
            .iter()
            .map(|v| v.map(String::from))
            .collect::<Vec<_>>()
    );

    let raw = sword::read_ztext_raw(dir.path()).unwrap();
    let books = sword::book_ids(&raw);
    assert_eq!(books[1], None);
    assert_eq!(books[4].as_deref(), Some("Gen"));
    assert_eq!(books[9].as_deref(), Some("Matt"));

    std::fs::remove_file(dir.path().join("nt.bzz")).unwrap();
    let err = read_ztext(dir.path()).unwrap_err().to_string();
    assert!(err.contains("nt.bzz"), "{err}");
}

#[test]
fn sword_records_pointing_outside_their_block_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_testament(dir.path(), "ot", &[vec!["short"]], &[Some((0, 0))]);
    write_testament(dir.path(), "nt", &[vec!["x"]], &[Some((0, 0))]);
    // Claim 200 bytes for the only Old Testament verse.
    let bzv = dir.path().join("ot.bzv");
    let mut bytes = std::fs::read(&bzv).unwrap();
    bytes[8..10].copy_from_slice(&200u16.to_le_bytes());
    std::fs::write(&bzv, bytes).unwrap();
    let err = read_ztext(dir.path()).unwrap_err().to_string();
    assert_mentions(&err, &["ot.bzv", "slot 0"]);
}

// ---------------------------------------------------------------- DDTP

const DDTP_EN: &str = "\
Package: alpha
Description-md5: 11111111111111111111111111111111
Description-en: fast text tool
 Alpha is a fast
 text tool.
 .
 It has two
 paragraphs.

Package: beta
Description-md5: 22222222222222222222222222222222
Description-en: beta library
 Beta does one thing.
 .
 And another thing.

Package: gamma
Description-md5: 33333333333333333333333333333333
Description-en: gamma only in English
 Nothing to pair.
";

const DDTP_DE: &str = "\
Package: alpha
Description-md5: 11111111111111111111111111111111
Description-de: schnelles Textwerkzeug
 Alpha ist ein schnelles
 Textwerkzeug.
 .
 Es hat zwei Absätze.

Package: beta
Description-md5: 22222222222222222222222222222222
Description-de: Beta-Bibliothek
 Beta tut eine Sache und noch eine.

Package: delta
Description-md5: 44444444444444444444444444444444
Description-de: nur auf Deutsch
";

#[test]
fn ddtp_descriptions_pair_on_md5_and_drop_mismatched_paragraphs() {
    let dir = tempfile::tempdir().unwrap();
    let (en_path, de_path) = (
        dir.path().join("Translation-en"),
        dir.path().join("Translation-de"),
    );
    std::fs::write(&en_path, DDTP_EN).unwrap();
    std::fs::write(&de_path, DDTP_DE).unwrap();
    let en = read_translation_index(&en_path).unwrap();
    let de = read_translation_index(&de_path).unwrap();
    assert_eq!(en.len(), 3);
    assert_eq!(en[0].language, "en");
    assert_eq!(
        en[0].paragraphs,
        vec!["Alpha is a fast text tool.", "It has two paragraphs."]
    );
    assert_eq!(de[2].paragraphs, Vec::<String>::new());
    let pairs = pair_descriptions(&en, &de);
    let t = |p: &str, a: &str, b: &str| (p.to_string(), a.to_string(), b.to_string());
    assert_eq!(
        pairs,
        vec![
            t("alpha", "fast text tool", "schnelles Textwerkzeug"),
            t(
                "alpha",
                "Alpha is a fast text tool.",
                "Alpha ist ein schnelles Textwerkzeug."
            ),
            t("alpha", "It has two paragraphs.", "Es hat zwei Absätze."),
            // beta: 2 English paragraphs vs 1 German one -> only the summary.
            t("beta", "beta library", "Beta-Bibliothek"),
        ]
    );
}

#[test]
fn ddtp_record_without_md5_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Translation-de");
    std::fs::write(
        &path,
        "Package: a\nDescription-md5: 1\nDescription-de: x\n\nPackage: b\nDescription-de: y\n",
    )
    .unwrap();
    let err = read_translation_index(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert_mentions(&err, &["line 5", "Description-md5"]);
}

// ---------------------------------------------------------------- Handbook

fn chapter(title: &str, paras: &[&str]) -> String {
    let mut html = format!(
        "<html><head><title>{title}</title></head><body><div class=\"chapter\"><div class=\"titlepage\">\
         <h1 class=\"title\"><a id=\"x\"></a>{title}</h1></div>"
    );
    for p in paras {
        html.push_str(&format!("<div class=\"para\">\n\t\t{p}\n\t</div>"));
    }
    html.push_str("</div></body></html>");
    html
}

#[test]
fn handbook_chapters_align_by_position_and_skip_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let [en, de] = make_dirs(dir.path(), ["en-US", "de-DE"]);
    std::fs::write(
        en.join("a.html"),
        chapter(
            "Chapter 1. Getting Started",
            &[
                "Install the <span class=\"emphasis\"><em>APT</em></span> tools &amp; more.",
                "Two words",
                "Outer text <div class=\"para\">nested para</div> after.",
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        de.join("a.html"),
        chapter(
            "Kapitel 1. Erste Schritte",
            &[
                "Installieren Sie die <em>APT</em>-Werkzeuge &amp; mehr.",
                "Zwei Wörter",
                "Äußerer Text <div class=\"para\">innerer Absatz</div> danach.",
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        en.join("b.html"),
        chapter(
            "Mismatched chapter here",
            &["One para here.", "Two paras here."],
        ),
    )
    .unwrap();
    std::fs::write(
        de.join("b.html"),
        chapter("Kapitel mit Abweichung", &["Ein Absatz."]),
    )
    .unwrap();
    std::fs::write(
        en.join("c.html"),
        chapter("Only in English", &["No translation exists."]),
    )
    .unwrap();

    let pairs = align_chapters(&en, &de).unwrap();
    let p = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        pairs,
        vec![
            p("Chapter 1. Getting Started", "Kapitel 1. Erste Schritte"),
            p(
                "Install the APT tools & more.",
                "Installieren Sie die APT-Werkzeuge & mehr."
            ),
            p(
                "Outer text nested para after.",
                "Äußerer Text innerer Absatz danach."
            ),
        ]
    );
    let detailed = handbook::align_chapters_detailed(&en, &de).unwrap();
    assert_eq!(detailed.chapters_aligned, vec!["a.html"]);
    assert_eq!(detailed.chapters_skipped, vec!["b.html", "c.html"]);
}

// ---------------------------------------------------------------- cleaning

#[test]
fn cleaning_strips_single_accelerators_and_spots_format_only_strings() {
    assert_eq!(strip_accelerator("_Open File"), "Open File");
    assert_eq!(strip_accelerator("Save ~As"), "Save As");
    assert_eq!(strip_accelerator("&Datei"), "Datei");
    assert_eq!(strip_accelerator("snake_case_name"), "snake_case_name");
    assert_eq!(strip_accelerator("Tom & Jerry"), "Tom & Jerry");
    assert_eq!(strip_accelerator("a &amp; b"), "a &amp; b");
    assert!(is_format_only("%s: %s"));
    assert!(is_format_only("{0} ({1})"));
    assert!(is_format_only("%1$s / %-10.3lf"));
    assert!(!is_format_only("%s files"));
    assert_eq!(
        unescape_entities("&lt;a&gt; &#228;&#xFC; &bogus; &"),
        "<a> äü &bogus; &"
    );
}

// ---------------------------------------------------------------- preparation

/// A root in the layout of `EnDeSources::from_root`: 8 catalogs of 12 pairs, 30 DDTP
/// packages, a two-chapter Handbook.
fn en_de_root(root: &Path) {
    let [locale] = make_dirs(root, ["usr/share/locale/de/LC_MESSAGES"]);
    for c in 0..8 {
        let mut strings = vec![(
            String::new(),
            "Content-Type: text/plain; charset=UTF-8\n".to_string(),
        )];
        for i in 0..12 {
            strings.push((
                format!("_Message {i} of catalog {c}"),
                format!("Meldung {i} aus Katalog {c}"),
            ));
        }
        strings.push(("Shared string".to_string(), "Gemeinsamer Text".to_string()));
        strings.push(("%s: %s".to_string(), "%s : %s".to_string()));
        strings.push(("Same".to_string(), "Same".to_string()));
        let entries: Vec<(&[u8], &[u8])> = strings
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
            .collect();
        std::fs::write(
            locale.join(format!("cat{c}.mo")),
            mo_bytes(&entries, c % 2 == 1),
        )
        .unwrap();
    }
    let [ddtp] = make_dirs(root, ["ddtp"]);
    let (mut en, mut de) = (String::new(), String::new());
    for p in 0..30 {
        en.push_str(&format!(
            "Package: pkg{p}\nDescription-md5: {p:032}\nDescription-en: package number {p}\n \
             Package {p} does useful things.\n\n"
        ));
        de.push_str(&format!(
            "Package: pkg{p}\nDescription-md5: {p:032}\nDescription-de: Paket Nummer {p}\n \
             Paket {p} tut nützliche Dinge.\n\n"
        ));
    }
    std::fs::write(ddtp.join("Translation-en"), en).unwrap();
    std::fs::write(ddtp.join("Translation-de"), de).unwrap();
    let html = root.join("usr/share/doc/debian-handbook/html");
    for (lang, title, para) in [
        ("en-US", "Chapter one title", "A handbook paragraph number"),
        (
            "de-DE",
            "Titel von Kapitel eins",
            "Ein Handbuch-Absatz Nummer",
        ),
    ] {
        let [dir] = make_dirs(&html, [lang]);
        for ch in 0..2 {
            let paras: Vec<String> = (0..5).map(|i| format!("{para} {ch}.{i}.")).collect();
            let refs: Vec<&str> = paras.iter().map(String::as_str).collect();
            std::fs::write(
                dir.join(format!("ch{ch}.html")),
                chapter(&format!("{title} {ch}"), &refs),
            )
            .unwrap();
        }
    }
}

/// The lines of a prepared corpus file, read as the translation data loader reads them.
fn lines(path: &Path) -> Vec<String> {
    read_lines(path).unwrap()
}

#[test]
fn en_de_preparation_is_deterministic_and_holds_out_whole_groups() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    en_de_root(&root);
    let sources = EnDeSources {
        valid_pairs: 40,
        ..EnDeSources::from_root(&root)
    };
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));
    let report = prepare_en_de(&sources, &out1).unwrap();
    prepare_en_de(&sources, &out2).unwrap();
    for name in [
        "train.en",
        "train.de",
        "valid.en",
        "valid.de",
        "test.en",
        "test.de",
        "manifest.json",
    ] {
        assert_eq!(
            std::fs::read(out1.join(name)).unwrap(),
            std::fs::read(out2.join(name)).unwrap(),
            "{name} differs between two runs"
        );
    }

    let train_en = lines(&out1.join("train.en"));
    let valid_en = lines(&out1.join("valid.en"));
    let test_en = lines(&out1.join("test.en"));
    for split in ["train", "valid", "test"] {
        let (en, de) = (
            lines(&out1.join(format!("{split}.en"))),
            lines(&out1.join(format!("{split}.de"))),
        );
        assert_eq!(en.len(), de.len(), "{split}");
        assert!(
            en.iter().chain(&de).all(|l| !l.trim().is_empty()),
            "{split} has an empty line"
        );
    }
    assert_eq!(
        (report.splits.train, report.splits.valid, report.splits.test),
        (train_en.len(), valid_en.len(), test_en.len())
    );
    // 2 chapters x (title + 5 paragraphs).
    assert_eq!(test_en.len(), 12);
    assert_eq!(report.sources["handbook"].test, 12);

    // Both kinds of group are held out, and each held-out group lives only in valid.
    assert!(
        report
            .held_out_valid
            .iter()
            .any(|g| g.starts_with("gettext:")),
        "{:?}",
        report.held_out_valid
    );
    assert!(
        report.held_out_valid.iter().any(|g| g.starts_with("ddtp:")),
        "{:?}",
        report.held_out_valid
    );
    for group in &report.held_out_valid {
        let marker = if let Some(cat) = group.strip_prefix("gettext:cat") {
            format!("of catalog {cat}")
        } else {
            let p = group.strip_prefix("ddtp:pkg").unwrap();
            format!("Package {p} does")
        };
        assert!(
            valid_en.iter().any(|l| l.contains(&marker)),
            "{group} not in valid"
        );
        assert!(
            !train_en.iter().any(|l| l.contains(&marker)),
            "{group} leaks into train"
        );
    }
    // Cleaning: accelerators gone, format-only and identical pairs dropped, the string shared
    // by all catalogs appears once and never in train when a catalog is held out.
    assert!(train_en.iter().all(|l| !l.starts_with('_')));
    assert!(
        !train_en
            .iter()
            .chain(&valid_en)
            .any(|l| l == "%s: %s" || l == "Same")
    );
    assert_eq!(
        train_en
            .iter()
            .chain(&valid_en)
            .filter(|l| *l == "Shared string")
            .count(),
        1
    );
    assert!(!train_en.contains(&"Shared string".to_string()));
    assert_eq!(report.dropped["gettext"]["format_only"], 8);
    assert_eq!(report.dropped["gettext"]["identical"], 8);
    // "Shared string" is in all 8 catalogs: one copy is kept, the 7 others are dropped.
    let gettext_drops = &report.dropped["gettext"];
    assert_eq!(
        gettext_drops.get("duplicate").copied().unwrap_or(0)
            + gettext_drops.get("overlaps_eval").copied().unwrap_or(0),
        7
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out1.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["splits"]["valid"], valid_en.len());
    assert_eq!(
        manifest["held_out_valid"].as_array().unwrap().len(),
        report.held_out_valid.len()
    );
}

#[test]
fn en_de_preparation_without_catalogs_names_the_setup_target() {
    let dir = tempfile::tempdir().unwrap();
    make_dirs(dir.path(), ["usr"]);
    let err = prepare_en_de(&EnDeSources::from_root(dir.path()), &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["translation-en-de", "LC_MESSAGES"]);
}

#[test]
fn en_es_preparation_splits_by_book() {
    let dir = tempfile::tempdir().unwrap();
    let [kjv, rv] = make_dirs(dir.path(), ["kjv", "rv"]);
    let (valid_book, test_book) = (EN_ES_VALID_BOOKS[0], EN_ES_TEST_BOOKS[0]);
    let books = ["Gen", valid_book, test_book];
    for (module, word) in [(&kjv, "verse"), (&rv, "versículo")] {
        let mut blocks = vec![vec!["<milestone type=\"x-importer\"/>".to_string()]];
        let mut slots = vec![None, Some((0, 0))];
        for (b, book) in books.iter().enumerate() {
            let mut verses = vec![format!("<div osisID=\"{book}\" type=\"book\"/>")];
            for v in 0..3 {
                verses.push(format!("{book} {word} {v}."));
            }
            for v in 0..verses.len() {
                slots.push(Some((b + 1, v)));
            }
            blocks.push(verses);
        }
        let blocks: Vec<Vec<&str>> = blocks
            .iter()
            .map(|b| b.iter().map(String::as_str).collect())
            .collect();
        write_testament(module, "ot", &blocks, &slots);
        write_testament(module, "nt", &[vec!["x"]], &[None]);
    }
    let out = dir.path().join("out");
    let report = prepare_en_es(&kjv, &rv, &out).unwrap();
    assert_eq!(
        (report.splits.train, report.splits.valid, report.splits.test),
        (3, 3, 3)
    );
    assert_eq!(
        lines(&out.join("valid.en")),
        (0..3)
            .map(|v| format!("{valid_book} verse {v}."))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        lines(&out.join("test.es")),
        (0..3)
            .map(|v| format!("{test_book} versículo {v}."))
            .collect::<Vec<_>>()
    );
    assert_eq!(lines(&out.join("train.en"))[0], "Gen verse 0.");

    // A module with another versification (slot count) is refused, naming it.
    write_testament(&rv, "nt", &[vec!["x"]], &[None, None]);
    let err = prepare_en_es(&kjv, &rv, &out).unwrap_err().to_string();
    assert_mentions(&err, &[&rv.display().to_string(), "versification"]);
}

#[test]
fn pair_names_parse_and_unknown_pairs_name_the_flag() {
    use mnemo_corpora::Pair;
    assert_eq!("en-de".parse::<Pair>().unwrap(), Pair::EnDe);
    assert_eq!("en-es".parse::<Pair>().unwrap().target(), "es");
    let err = "en-fr".parse::<Pair>().unwrap_err().to_string();
    assert_mentions(&err, &["--pair", "en-fr"]);
}
