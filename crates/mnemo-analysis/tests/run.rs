//! The analyses and the report on a trained run: the smoke config (both models, 12 steps)
//! trained once per test binary.
//! - `ffn`: every key's top prefixes are the brute-force top of an independent capture, with
//!   the right text and target; every value's top tokens are the brute-force top of
//!   `softmax(E v)` computed on the host;
//! - `memory`: refused for a Transformer naming the kind; the mixing weights are the softmax of
//!   the loaded parameter; every head's mass over distance sums to 1;
//! - `report`: the run's figures are valid SVG (XML) and PNG (decoded) with one colour per
//!   series: 4 learning curves (2 models × train/valid), 1 mixing series, L×H = 4 distance lines.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mnemo_analysis::capture::capture;
use mnemo_analysis::chart::series_color;
use mnemo_analysis::{AnalysisError, FfnOptions, ReportOptions, ffn_of_run, memory_of_run, report};
use mnemo_core::host::to_vec;
use mnemo_data::Split;
use mnemo_train::{ExperimentConfig, TrainOptions, load_run, train};
use plotters::style::RGBColor;

/// `<tmp>/smoke-tiny/{feedback,transformer}`, trained once.
fn smoke_runs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../experiments/smoke/tiny.toml"
        );
        let config = ExperimentConfig::load(path).unwrap();
        let mut options = TrainOptions::new(dir.path(), mnemo_backend::test_device());
        options.quiet = true;
        for name in config.model_names() {
            train(&config, &name, &options).unwrap();
        }
        dir
    })
    .path()
}

fn run_dir(model: &str) -> PathBuf {
    smoke_runs().join("smoke-tiny").join(model)
}

fn device() -> burn::tensor::Device {
    mnemo_backend::device("cpu").unwrap()
}

#[test]
fn ffn_keys_and_values_are_the_brute_force_top() {
    for model in ["transformer", "feedback"] {
        let run = load_run(run_dir(model), &device()).unwrap();
        let options = FfnOptions {
            top_k: 4,
            context: 5,
            value_tokens: 3,
        };
        let max = 150;
        let analysis = ffn_of_run(&run, Split::Valid, max, &options).unwrap();
        assert_eq!(analysis.positions, max);
        assert_eq!(analysis.layers.len(), 2);
        // An independent capture of the same positions.
        let train = &run.config.train;
        let cap = capture(
            &run.model,
            run.data.split(Split::Valid),
            train.eval_batch_size(),
            train.segment_len,
            max,
            &run.device,
        )
        .unwrap();
        let f = cap.d_ff;
        assert_eq!(f, 64);
        let heads = mnemo_analysis::ffn::value_weights(&run.model);
        for layer in &analysis.layers {
            let acts = cap.ffn[layer.layer].as_ref().unwrap();
            assert_eq!(layer.keys.len(), f);
            let (down, head) = heads[layer.layer].clone().unwrap();
            let (down, head) = (to_vec(down), to_vec(head));
            let d = down.len() / f;
            let v = head.len() / d;
            for key in &layer.keys {
                let i = key.key;
                let mut all: Vec<(usize, f32)> = (0..max).map(|p| (p, acts[p * f + i])).collect();
                all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
                assert_eq!(key.top.len(), 4);
                for (got, (p, a)) in key.top.iter().zip(&all) {
                    assert_eq!(got.activation, *a, "{model} layer {} key {i}", layer.layer);
                    let (row, column) = cap.positions[*p];
                    assert_eq!((got.row, got.column), (row, column));
                    let from = (column + 1).saturating_sub(5).max(cap.visible_from[*p]);
                    let text: Vec<&str> = cap.rows[row][from..=column]
                        .iter()
                        .map(|&id| run.vocab.token(id))
                        .collect();
                    assert_eq!(got.prefix, text.join(" "));
                    assert!(got.prefix.split(' ').count() <= 5);
                    assert_eq!(got.target, run.vocab.token(cap.row_targets[row][column]));
                }
                // softmax(E v_i) on the host, brute-force sorted.
                let logits: Vec<f64> = (0..v)
                    .map(|j| {
                        (0..d)
                            .map(|k| f64::from(down[i * d + k]) * f64::from(head[k * v + j]))
                            .sum()
                    })
                    .collect();
                let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
                let mut probs: Vec<(usize, f64)> = logits
                    .iter()
                    .map(|l| (l - m).exp() / z)
                    .enumerate()
                    .collect();
                probs.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
                for (got, (id, p)) in key.value_tokens.iter().zip(&probs) {
                    assert_eq!(got.token, run.vocab.token(*id as u32));
                    assert!((f64::from(got.prob) - p).abs() < 1e-5);
                }
                let agree = key
                    .top
                    .iter()
                    .filter(|t| t.target == key.value_tokens[0].token)
                    .count();
                assert_eq!(key.agreement, agree);
            }
        }
        // The Transformer sees only its segment; the Feedback model its whole row.
        let starts: BTreeSet<usize> = cap.visible_from.iter().copied().collect();
        match model {
            "transformer" => assert!(starts.len() > 1, "{starts:?}"),
            _ => assert_eq!(starts, BTreeSet::from([0])),
        }
    }
}

#[test]
fn memory_analysis_of_the_feedback_run() {
    let transformer = load_run(run_dir("transformer"), &device()).unwrap();
    let err = memory_of_run(&transformer, Split::Valid, 64).unwrap_err();
    assert!(matches!(err, AnalysisError::Unsupported { .. }));
    assert!(err.to_string().contains("feedback"), "{err}");

    let run = load_run(run_dir("feedback"), &device()).unwrap();
    let a = memory_of_run(&run, Split::Valid, 100).unwrap();
    assert_eq!(a.queries, 100);
    let mnemo_models::Model::Feedback(m) = &run.model else {
        panic!("a feedback run")
    };
    let w = to_vec(m.core.mix.val());
    assert!(w.iter().any(|&x| x != 0.0), "trained logits moved from 0");
    let z: f32 = w.iter().map(|x| x.exp()).sum();
    for (got, x) in a.mix_weights.iter().zip(&w) {
        assert!((got - x.exp() / z).abs() < 1e-6);
    }
    assert_eq!(a.attention.len(), 2);
    for layer in &a.attention {
        assert_eq!(layer.heads.len(), 2);
        for head in &layer.heads {
            assert_eq!(head.by_distance.len(), 8);
            let sum: f32 = head.by_distance.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5);
        }
    }
}

/// The distinct series colours among a figure's SVG polylines and filled rects, after checking
/// the SVG is well-formed XML.
fn svg_colours(path: &Path, palette: &[String]) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut colours = BTreeSet::new();
    for event in xml::reader::EventReader::new(text.as_bytes()) {
        if let xml::reader::XmlEvent::StartElement {
            name, attributes, ..
        } = event.unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()))
        {
            let attr = |n: &str| {
                attributes
                    .iter()
                    .find(|a| a.name.local_name == n)
                    .map(|a| a.value.to_uppercase())
            };
            let colour = match name.local_name.as_str() {
                "polyline" => attr("stroke"),
                "rect" => attr("fill"),
                _ => None,
            };
            colours.extend(colour.filter(|c| palette.contains(c)));
        }
    }
    colours
}

/// The distinct palette colours among a PNG's pixels, after decoding it.
fn png_colours(path: &Path, palette: &[(u8, u8, u8)]) -> BTreeSet<(u8, u8, u8)> {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf[..info.buffer_size()]
        .chunks(3)
        .map(|p| (p[0], p[1], p[2]))
        .filter(|c| palette.contains(c))
        .collect()
}

/// The figure's files have exactly `n` series colours (of the `n`-series palette) in both the
/// SVG and the PNG.
fn assert_series(stem: &Path, n: usize) {
    let palette: Vec<_> = (0..n).map(|i| series_color(i, n)).collect();
    let hex: Vec<String> = palette
        .iter()
        .map(|c| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2))
        .collect();
    let rgb: Vec<(u8, u8, u8)> = palette.iter().map(|c| (c.0, c.1, c.2)).collect();
    let svg = stem.with_extension("svg");
    assert_eq!(svg_colours(&svg, &hex).len(), n, "{}", svg.display());
    let png = stem.with_extension("png");
    assert_eq!(png_colours(&png, &rgb).len(), n, "{}", png.display());
}

/// Report into `out` on the valid split, `memory_positions` per Feedback model.
fn report_options(out: &Path, memory_positions: usize) -> ReportOptions {
    ReportOptions {
        out: out.to_path_buf(),
        split: Split::Valid,
        memory_positions,
        device: device(),
    }
}

#[test]
fn report_of_the_smoke_run_draws_every_series() {
    let out = tempfile::tempdir().unwrap();
    let options = report_options(out.path(), 64);
    let written = report(&[smoke_runs().join("smoke-tiny")], &options).unwrap();
    assert!(written.notes.is_empty(), "{:?}", written.notes);
    assert_eq!(written.files.len(), 8, "{:?}", written.files);
    assert_series(&out.path().join("smoke-tiny-curves"), 4);
    // Results: valid and test bars in the first panel, training speed in the second.
    assert_series(&out.path().join("smoke-tiny-results"), 3);
    assert_series(&out.path().join("smoke-tiny-memory-mix"), 1);
    assert_series(
        &out.path().join("smoke-tiny-feedback-attention-distance"),
        4,
    );
    // A model's run directory alone: its two curves.
    let single = report(&[run_dir("transformer")], &options).unwrap();
    assert_eq!(single.files.len(), 2);
    assert_series(&out.path().join("smoke-tiny-transformer-curves"), 2);
    // Nothing to draw: refused naming the path.
    let err = report(&[out.path().to_path_buf()], &options).unwrap_err();
    assert!(err.to_string().contains("no metrics.jsonl"), "{err}");
}

/// `mnemo report` of a committed benchmark file under `docs/bench/`, into a fresh folder.
fn report_committed(file: &str) -> (tempfile::TempDir, mnemo_analysis::Report) {
    let out = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/bench")
        .join(file);
    let written = report(&[path], &report_options(out.path(), 0)).unwrap();
    (out, written)
}

/// How many `<element …>` tags of an SVG have `attr` set to series colour `colour`.
fn count_coloured(svg: &str, element: &str, attr: &str, colour: RGBColor) -> usize {
    let value = format!(
        "{attr}=\"#{:02X}{:02X}{:02X}\"",
        colour.0, colour.1, colour.2
    );
    svg.split(&format!("<{element}"))
        .skip(1)
        .filter(|e| e.split('>').next().unwrap().contains(&value))
        .count()
}

#[test]
fn scaling_report_draws_one_line_per_mechanism() {
    let (out, written) = report_committed("attention-2026-12-03/scaling.json");
    assert_eq!(written.files.len(), 2);
    // softmax, linear, performer, sparse: 4 series, each in both panels.
    assert_series(&out.path().join("scaling"), 4);
    let svg = std::fs::read_to_string(out.path().join("scaling.svg")).unwrap();
    // Each mechanism is one polyline per panel.
    for i in 0..4 {
        let lines = count_coloured(&svg, "polyline", "stroke", series_color(i, 4));
        assert_eq!(lines, 2, "series {i}");
    }
    // A JSON file that is not a benchmark mnemo draws is refused naming it.
    let other = out.path().join("other.json");
    std::fs::write(&other, "{\"points\": []}").unwrap();
    let err = report(&[other], &report_options(out.path(), 0)).unwrap_err();
    assert!(err.to_string().contains("other.json"), "{err}");
}

#[test]
fn vs_peer_report_draws_a_bar_per_measured_phase() {
    let (out, written) = report_committed("intel-2026-12-05-official/summary.json");
    assert_eq!(written.files.len(), 2, "{:?}", written.files);
    // Named after the run's folder; the PyTorch peer, mnemo and the paper's code.
    let stem = out.path().join("intel-2026-12-05-official-vs-peer");
    assert_series(&stem, 3);
    // Filled rects per colour: the peer and mnemo a bar per phase (5) in both panels and a
    // legend entry in each; the paper's code one bar (fb_train_chunk1 only) and its legend.
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    for (i, want) in [12, 12, 2].into_iter().enumerate() {
        let rects = count_coloured(&svg, "rect", "fill", series_color(i, 3));
        assert_eq!(rects, want, "series {i}");
    }
}
