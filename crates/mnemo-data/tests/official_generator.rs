//! mnemo's `style = "official"` code-execution generator against a sample of the reference
//! generator (Fan et al. 2020, *Addressing Some Limitations of Transformers with Feedback
//! Memory*; `facebookresearch/transformer-sequential`, `data/gen_data_algo_seq.py`).
//!
//! `tests/fixtures/official_code_exec/sample.zip` holds 2000 programs of 30 statements for 3
//! and for 5 variables, written by the reference script (see the README there). Each program
//! (the independent unit) is reduced to a vector of counts, in four groups:
//!
//! - **mix**: top-level statements by operation (`=`, `++`, `--`, `if`, `print`);
//! - **first assignments**: for the k-th distinct variable to be assigned (k = 2..V, counting
//!   `=` inside conditionals too), a one-hot of the statement index of its first `=`, bins
//!   `0..POSITION_BINS-1` and one for later or never;
//! - **if-inner**: operations guarded by an `if` (`=`, `++`, `--`);
//! - **answers**: printed values `1..=10`.
//!
//! For every bin `b`, with `m` the mean count per program and `s²` its sample variance over
//! the `n` programs of each sample (reference `o`, mnemo `g`),
//!
//! ```text
//! z_b = (m_o − m_g) / sqrt(s_o²/n_o + s_g²/n_g)
//! ```
//!
//! and the samples agree when `|z_b| ≤ Z_MAX = 4` in every bin (a two-sided per-bin level of
//! 6e-5, about 0.5% for the ~80 bins of a variable count together). Comparing per-program means
//! keeps the test valid although statements of one program are not independent. The
//! front-loaded style must fail the first-assignment group, so the test can fail.

use std::io::Read;

use mnemo_data::{CodeExecConfig, CodeExecStyle, Split, interpret, load_labelled_text};

const Z_MAX: f64 = 4.0;
const STATEMENTS: usize = 30;
const POSITION_BINS: usize = 16;
const MNEMO_PROGRAMS: usize = 10_000;

fn sample_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/official_code_exec/sample.zip")
}

/// The text of `member` of the reference sample.
fn sample_member(member: &str) -> String {
    let file = std::fs::File::open(sample_path()).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut text = String::new();
    zip.by_name(member)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The programs of the reference sample for `variables`, with their labels.
fn official_programs(variables: usize) -> Vec<(Vec<String>, Vec<String>)> {
    let text = sample_member(&format!("v{variables}/train.txt"));
    let labels = sample_member(&format!("v{variables}/train.txt.labels"));
    let split = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    text.lines()
        .zip(labels.lines())
        .map(|(t, l)| (split(t), split(l)))
        .collect()
}

fn mnemo_programs(variables: usize, style: CodeExecStyle) -> Vec<Vec<String>> {
    let config = CodeExecConfig {
        variables,
        statements: STATEMENTS,
        train_programs: MNEMO_PROGRAMS,
        valid_programs: 1,
        test_programs: 1,
        seed: 2024,
        style,
        curriculum: None,
    };
    config
        .examples(Split::Train)
        .map(|p| p.inputs.iter().map(|t| t.to_string()).collect())
        .collect()
}

/// One statement of a program as text.
enum Statement<'a> {
    Simple {
        var: &'a str,
        op: &'a str,
    },
    If {
        inner_var: &'a str,
        inner_op: &'a str,
    },
    Print,
}

fn statements(program: &[String]) -> Vec<Statement<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while program[i] != "END" {
        match program[i].as_str() {
            "print" => {
                out.push(Statement::Print);
                i += 3;
            }
            "if" => {
                // if a OP b : v op [c] ;
                let (inner_var, inner_op) = (&program[i + 5], &program[i + 6]);
                out.push(Statement::If {
                    inner_var,
                    inner_op,
                });
                i += if inner_op == "=" { 9 } else { 8 };
            }
            _ => {
                let op = &program[i + 1];
                out.push(Statement::Simple {
                    var: &program[i],
                    op,
                });
                i += if op == "=" { 4 } else { 3 };
            }
        }
    }
    assert_eq!(i, program.len() - 1, "END closes the program");
    out
}

/// Named bin groups of the per-program count vector of `variables` variables.
fn groups(variables: usize) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let positions = (variables - 1) * (POSITION_BINS + 1);
    vec![
        ("mix", 0..5),
        ("first assignments", 5..5 + positions),
        ("if-inner", 5 + positions..8 + positions),
        ("answers", 8 + positions..18 + positions),
    ]
}

/// The count vector of one program (see the module docs).
fn program_counts(program: &[String], variables: usize) -> Vec<f64> {
    let ranges = groups(variables);
    let mut counts = vec![0.0; ranges.last().unwrap().1.end];
    let op_index = |op: &str| ["=", "++", "--"].iter().position(|&o| o == op).unwrap();
    let mut assigned: Vec<&str> = Vec::new();
    let mut assign = |var, index: usize, counts: &mut Vec<f64>| {
        if assigned.contains(&var) {
            return;
        }
        assigned.push(var);
        let k = assigned.len();
        if k >= 2 {
            let bin = index.min(POSITION_BINS);
            counts[ranges[1].1.start + (k - 2) * (POSITION_BINS + 1) + bin] += 1.0;
        }
    };
    for (index, statement) in statements(program).into_iter().enumerate() {
        match statement {
            Statement::Simple { var, op } => {
                counts[op_index(op)] += 1.0;
                if op == "=" {
                    assign(var, index, &mut counts);
                }
            }
            Statement::If {
                inner_var,
                inner_op,
            } => {
                counts[3] += 1.0;
                counts[ranges[2].1.start + op_index(inner_op)] += 1.0;
                if inner_op == "=" {
                    assign(inner_var, index, &mut counts);
                }
            }
            Statement::Print => counts[4] += 1.0,
        }
    }
    // Never assigned (or later than the last bin): the last bin of each k.
    for k in assigned.len().max(1) + 1..=variables {
        counts[ranges[1].1.start + (k - 2) * (POSITION_BINS + 1) + POSITION_BINS] += 1.0;
    }
    // Answers from the interpreter, independent of either generator's labels.
    for label in interpret(program).unwrap() {
        if label != "_" {
            let value: usize = label.parse().unwrap();
            counts[ranges[3].1.start + value - 1] += 1.0;
        }
    }
    counts
}

/// Mean and variance of the mean, per bin.
fn moments(programs: &[Vec<String>], variables: usize) -> Vec<(f64, f64)> {
    let rows: Vec<Vec<f64>> = programs
        .iter()
        .map(|p| program_counts(p, variables))
        .collect();
    let n = rows.len() as f64;
    (0..rows[0].len())
        .map(|b| {
            let mean = rows.iter().map(|r| r[b]).sum::<f64>() / n;
            let var = rows.iter().map(|r| (r[b] - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (mean, var / n)
        })
        .collect()
}

/// The largest `|z|` of each group, with a table of the bins for messages.
fn compare(
    official: &[(f64, f64)],
    mnemo: &[(f64, f64)],
    variables: usize,
) -> Vec<(&'static str, f64, String)> {
    groups(variables)
        .into_iter()
        .map(|(name, range)| {
            let mut worst: f64 = 0.0;
            let mut table = String::new();
            for b in range.clone() {
                let ((mo, vo), (mg, vg)) = (official[b], mnemo[b]);
                let z = match vo + vg {
                    0.0 if mo == mg => 0.0,
                    0.0 => f64::INFINITY,
                    v => (mo - mg) / v.sqrt(),
                };
                worst = worst.max(z.abs());
                table.push_str(&format!(
                    "  bin {:>2}: reference {mo:.4} mnemo {mg:.4} z {z:+.2}\n",
                    b - range.start
                ));
            }
            (name, worst, table)
        })
        .collect()
}

#[test]
fn official_style_matches_the_reference_sample_and_front_loaded_does_not() {
    for variables in [3, 5] {
        let reference: Vec<Vec<String>> = official_programs(variables)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(reference.len(), 2000);
        let official = moments(&reference, variables);
        let mnemo = moments(
            &mnemo_programs(variables, CodeExecStyle::Official),
            variables,
        );
        for (group, worst, table) in compare(&official, &mnemo, variables) {
            println!("{variables} variables, {group}: max |z| {worst:.2}");
            assert!(
                worst <= Z_MAX,
                "{variables} variables, {group}: max |z| {worst:.2} > {Z_MAX}\n{table}"
            );
        }
        let front = moments(
            &mnemo_programs(variables, CodeExecStyle::FrontLoaded),
            variables,
        );
        let results = compare(&official, &front, variables);
        let (_, worst, table) = &results[1];
        println!(
            "{variables} variables, front-loaded: max |z| {results:.1?}",
            results = results.iter().map(|r| r.1).collect::<Vec<_>>()
        );
        assert!(
            *worst > 10.0 * Z_MAX,
            "{variables} variables: front-loaded first assignments pass (max |z| {worst})\n{table}"
        );
    }
}

#[test]
fn reference_labels_read_as_mnemo_labels() {
    // The reference's label files use `_` for unscored positions and the printed value at a
    // print's `;`: exactly mnemo's interpreter and NO_LABEL, assignments inside conditionals
    // included.
    for variables in [3, 5] {
        let programs = official_programs(variables);
        let mut conditional_assignments = 0;
        for (program, labels) in &programs {
            assert_eq!(&interpret(program).unwrap(), labels);
            conditional_assignments += program
                .windows(3)
                .filter(|w| w[0] == ":" && w[2] == "=")
                .count();
        }
        assert!(conditional_assignments > 0);
        // And the labelled-text reader takes the reference's files as they are.
        let dir = tempfile::tempdir().unwrap();
        for split in ["train", "valid", "test"] {
            for (suffix, member) in [("txt", "train.txt"), ("txt.labels", "train.txt.labels")] {
                let text = sample_member(&format!("v{variables}/{member}"));
                std::fs::write(dir.path().join(format!("{split}.{suffix}")), text).unwrap();
            }
        }
        let (vocab, [train, valid, _]) = load_labelled_text(dir.path(), "data.dir").unwrap();
        let tokens: usize = programs.iter().map(|p| p.0.len()).sum();
        assert_eq!((train.len(), valid.len()), (tokens, tokens));
        let prints: usize = programs
            .iter()
            .map(|p| p.0.iter().filter(|t| *t == "print").count())
            .sum();
        assert_eq!(train.scored_positions(), prints);
        // x y z (p r) = ++ -- if print < > : ; END 1..10 and `_`.
        assert_eq!(vocab.len(), variables + 10 + 10 + 1);
    }
}

/// Regenerates the numbers of `code_exec.rs`'s module docs:
/// `cargo test --release -p mnemo-data --test official_generator -- --ignored --nocapture`.
#[test]
#[ignore = "prints statistics for the docs"]
fn measure_statistics_for_the_docs() {
    for style in [CodeExecStyle::Official, CodeExecStyle::FrontLoaded] {
        for variables in [3, 5] {
            let config = CodeExecConfig {
                variables,
                statements: 100,
                train_programs: 5000,
                valid_programs: 1,
                test_programs: 1,
                seed: 1,
                style,
                curriculum: None,
            };
            let programs: Vec<Vec<String>> = config
                .examples(Split::Train)
                .map(|p| p.inputs.iter().map(|t| t.to_string()).collect())
                .collect();
            let mut mix = [0usize; 5];
            let mut inner = [0usize; 3];
            let mut prints = Vec::new();
            let mut distances = Vec::new();
            let (mut taken, mut ifs) = (0usize, 0usize);
            let mut unassigned_at_end = 0usize;
            for program in &programs {
                let (stats, p) = replay(program, &mut distances);
                for (a, b) in mix.iter_mut().zip(stats.mix) {
                    *a += b;
                }
                for (a, b) in inner.iter_mut().zip(stats.inner) {
                    *a += b;
                }
                taken += stats.taken;
                ifs += stats.mix[3];
                unassigned_at_end += variables - stats.assigned;
                prints.push(p);
            }
            let total: usize = mix.iter().sum();
            let share = |c: usize| 100.0 * c as f64 / total as f64;
            distances.sort_unstable();
            let pct = |q: f64| distances[((distances.len() - 1) as f64 * q) as usize];
            println!(
                "{style} V={variables}: = {:.1}% ++ {:.1}% -- {:.1}% if {:.1}% print {:.1}%; \
                 if taken {:.1}%; inner = {} ++ {} -- {}; prints/program {}..{} mean {:.1}; \
                 distance median {} p90 {}; unassigned at end {}",
                share(mix[0]),
                share(mix[1]),
                share(mix[2]),
                share(mix[3]),
                share(mix[4]),
                100.0 * taken as f64 / ifs as f64,
                inner[0],
                inner[1],
                inner[2],
                prints.iter().min().unwrap(),
                prints.iter().max().unwrap(),
                prints.iter().sum::<usize>() as f64 / prints.len() as f64,
                pct(0.5),
                pct(0.9),
                unassigned_at_end,
            );
        }
    }
}

#[derive(Default)]
struct Replay {
    mix: [usize; 5],
    inner: [usize; 3],
    taken: usize,
    assigned: usize,
}

/// Runs `program`, counting statements and, for every print, the distance in tokens from the
/// `print` back to the `;` of the last executed statement that set the printed variable (1
/// when it directly follows).
fn replay(program: &[String], distances: &mut Vec<usize>) -> (Replay, usize) {
    use std::collections::HashMap;
    let mut values: HashMap<&str, i64> = HashMap::new();
    let mut last_set: HashMap<&str, usize> = HashMap::new();
    let mut stats = Replay::default();
    let mut prints = 0;
    let mut i = 0;
    let op_index = |op: &str| ["=", "++", "--"].iter().position(|&o| o == op).unwrap();
    fn apply<'a>(values: &mut HashMap<&'a str, i64>, var: &'a str, op: &str, c: Option<&String>) {
        let new = match op {
            "=" => c.unwrap().parse().unwrap(),
            "++" => values[var] + 1,
            _ => values[var] - 1,
        };
        values.insert(var, new);
    }
    while program[i] != "END" {
        match program[i].as_str() {
            "print" => {
                let var = program[i + 1].as_str();
                distances.push(i - last_set[var]);
                stats.mix[4] += 1;
                prints += 1;
                i += 3;
            }
            "if" => {
                let lhs = values[program[i + 1].as_str()];
                let rhs_token = program[i + 3].as_str();
                let rhs = rhs_token.parse().unwrap_or_else(|_| values[rhs_token]);
                let holds = if program[i + 2] == "<" {
                    lhs < rhs
                } else {
                    lhs > rhs
                };
                let (var, op) = (program[i + 5].as_str(), program[i + 6].as_str());
                let len = if op == "=" { 9 } else { 8 };
                stats.mix[3] += 1;
                stats.inner[op_index(op)] += 1;
                if holds {
                    stats.taken += 1;
                    apply(&mut values, var, op, program.get(i + 7));
                    last_set.insert(var, i + len - 1);
                }
                i += len;
            }
            _ => {
                let (var, op) = (program[i].as_str(), program[i + 1].as_str());
                let len = if op == "=" { 4 } else { 3 };
                stats.mix[op_index(op)] += 1;
                apply(&mut values, var, op, program.get(i + 2));
                last_set.insert(var, i + len - 1);
                i += len;
            }
        }
    }
    stats.assigned = values.len();
    (stats, prints)
}
