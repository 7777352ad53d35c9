//! The code-execution task of the Feedback Transformer paper, generated from a seed.
//!
//! Paper: Fan, Lavril, Grave, Joulin, Sukhbaatar, *Addressing Some Limitations of Transformers
//! with Feedback Memory* (2020), its algorithmic (code-execution) task. Reference generator:
//! `facebookresearch/transformer-sequential`, `data/gen_data_algo_seq.py`.
//!
//! # Format
//! A program is [`CodeExecConfig::statements`] statements over the first
//! [`CodeExecConfig::variables`] of the names `x y z p r` (3 → `x y z`, 5 → `x y z p r`, as in
//! the reference), written as space-separated tokens and closed by the token [`END`]:
//!
//! ```text
//! y = 7 ; x = 2 ; z = 10 ; x ++ ; print x ; if z > y : y -- ; z -- ; print y ; ... END
//! ```
//!
//! Statement forms: `v = c ;` (c a constant), `v ++ ;`, `v -- ;`, `print v ;` and
//! `if v OP w : S` where `OP` is `<` or `>`, `w` is another variable or a constant, and `S` is
//! a `++`/`--` statement applied only when the condition holds. Every value stays in
//! `1..=10` ([`MIN_VALUE`]..=[`MAX_VALUE`]) whether or not a condition fires.
//!
//! The label stream is aligned token for token: [`NO_LABEL`] everywhere except at the `;` that
//! closes a `print v ;`, whose label is `v`'s value at that moment (e.g. `"4"`).
//!
//! # Statement mix (follows the reference)
//! After the initial assignments, each statement draws its kind uniformly from
//! `{++, --, if, print}` and its variable uniformly; a `++` on a 10 or a `--` on a 1 is rejected
//! and the whole statement redrawn. A conditional compares with another variable or with a
//! uniform constant (½ each) using `<` or `>` (½ each); its inner statement is `++` or `--`
//! (½ each) on a uniform variable, redrawn until it keeps the value in range, so the range holds
//! whether or not the condition fires. Measured over 5000 programs of 100 statements (V = 3
//! and 5 alike), as shares of the statements after the initial assignments: print 26.3%,
//! if 26.3% (its condition holds 45% of the time), `++` and `--` 23.7% each; a program holds
//! 10 to 43 prints, about 25 on average (tests check 22–31% over 200 programs and 10–45 per
//! program). Values are never reassigned, so a printed value is the initial assignment plus
//! every change since the program began: answering needs state carried across the whole
//! program, hundreds of tokens back. The last statement that touched the printed variable is
//! nearer (median 11 tokens back for V = 3, 20 for V = 5; 90th percentile 37 and 64).
//!
//! # Differences from the reference
//! - Seeded: each split has its own ChaCha8 stream ([`Split::rng`]); the reference is unseeded.
//! - The first `variables` statements assign every variable once, in random order, with
//!   uniform values. The reference draws `=` like any other statement, only for variables not
//!   yet assigned, so its first assignments are interleaved with other statements over the
//!   variables already assigned; once all are assigned the two mixes are the same.
//! - The reference's inner statement of a conditional could, in that early phase, assign a
//!   variable not yet assigned; here assignments never appear inside a conditional.
//!
//! The [`interpreter`](crate::interpreter) accepts a superset (also `==`, `!=`, reassignments
//! and assignments inside conditionals) and is used by the tests to check every label.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::split::SplitSizes;
use crate::{DataError, LabelledTokens, NO_LABEL, Split};

/// Variable names; a program over `V` variables uses the first `V`.
pub const VARIABLE_NAMES: [&str; 5] = ["x", "y", "z", "p", "r"];

/// The token that closes every program (and every copy/reverse example).
pub const END: &str = "END";

/// Smallest value a variable can hold.
pub const MIN_VALUE: u8 = 1;

/// Largest value a variable can hold.
pub const MAX_VALUE: u8 = 10;

/// Value tokens, indexed by `value - 1`.
const VALUE_TOKENS: [&str; MAX_VALUE as usize] =
    ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"];

fn value_token(value: u8) -> &'static str {
    VALUE_TOKENS[usize::from(value - MIN_VALUE)]
}

/// Configuration of the code-execution task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeExecConfig {
    /// Number of variables: 3 (`x y z`) or 5 (`x y z p r`). Default 3.
    pub variables: usize,
    /// Statements per program, the initial assignments included (paper: 100). Default 100.
    pub statements: usize,
    /// Programs in the training split (reference: 10 000). Default 10 000.
    pub train_programs: usize,
    /// Programs in the validation split (reference: 1000). Default 1000.
    pub valid_programs: usize,
    /// Programs in the test split (reference: 1000). Default 1000.
    pub test_programs: usize,
    /// Seed of the generator; splits use separate streams of it ([`Split::rng`]). Default 0.
    pub seed: u64,
}

impl Default for CodeExecConfig {
    fn default() -> Self {
        Self {
            variables: 3,
            statements: 100,
            train_programs: 10_000,
            valid_programs: 1000,
            test_programs: 1000,
            seed: 0,
        }
    }
}

/// The kind of a non-assignment statement, drawn uniformly.
#[derive(Clone, Copy)]
enum Kind {
    Increment,
    Decrement,
    If,
    Print,
}

const KINDS: [Kind; 4] = [Kind::Increment, Kind::Decrement, Kind::If, Kind::Print];

/// `value ± 1` if that stays in range.
fn step(value: u8, increment: bool) -> Option<u8> {
    match increment {
        true if value < MAX_VALUE => Some(value + 1),
        false if value > MIN_VALUE => Some(value - 1),
        _ => None,
    }
}

fn step_token(increment: bool) -> &'static str {
    if increment { "++" } else { "--" }
}

impl CodeExecConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.variables != 3 && self.variables != 5 {
            return Err(DataError::config(
                "data.variables",
                format!("must be 3 or 5, got {}", self.variables),
            ));
        }
        if self.statements <= self.variables {
            return Err(DataError::config(
                "data.statements",
                format!(
                    "must be greater than data.variables ({}) so that programs hold more than \
                     their initial assignments, got {}",
                    self.variables, self.statements
                ),
            ));
        }
        self.split_sizes().validate()
    }

    /// Number of programs in `split`.
    pub fn programs(&self, split: Split) -> usize {
        self.split_sizes().of(split)
    }

    fn split_sizes(&self) -> SplitSizes {
        let sizes = [self.train_programs, self.valid_programs, self.test_programs];
        SplitSizes::new("programs", sizes)
    }

    /// The programs of `split`, drawn from [`Split::rng`] of [`CodeExecConfig::seed`].
    ///
    /// Expects a validated config.
    pub fn examples(&self, split: Split) -> impl Iterator<Item = LabelledTokens<'static>> + '_ {
        let mut rng = split.rng(self.seed);
        (0..self.programs(split)).map(move |_| self.generate_program(&mut rng))
    }

    /// Draws one program with its labels, ending with [`END`].
    ///
    /// Expects a validated config.
    pub fn generate_program<R: Rng + ?Sized>(&self, rng: &mut R) -> LabelledTokens<'static> {
        let names = &VARIABLE_NAMES[..self.variables];
        let mut values = [MIN_VALUE; VARIABLE_NAMES.len()];
        let values = &mut values[..self.variables];
        let mut out = LabelledTokens::default();

        let mut order: Vec<usize> = (0..names.len()).collect();
        order.shuffle(rng);
        for var in order {
            values[var] = rng.random_range(MIN_VALUE..=MAX_VALUE);
            for token in [names[var], "=", value_token(values[var]), ";"] {
                out.push(token, NO_LABEL);
            }
        }
        for _ in names.len()..self.statements {
            push_statement(rng, names, values, &mut out);
        }
        out.push(END, NO_LABEL);
        out
    }
}

/// Draws one non-assignment statement, applies it to `values` and writes it to `out`.
fn push_statement<R: Rng + ?Sized>(
    rng: &mut R,
    names: &[&'static str],
    values: &mut [u8],
    out: &mut LabelledTokens<'static>,
) {
    loop {
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        let var = rng.random_range(0..names.len());
        match kind {
            Kind::Increment | Kind::Decrement => {
                let increment = matches!(kind, Kind::Increment);
                let Some(new) = step(values[var], increment) else {
                    continue;
                };
                values[var] = new;
                for token in [names[var], step_token(increment), ";"] {
                    out.push(token, NO_LABEL);
                }
            }
            Kind::Print => {
                for token in ["print", names[var]] {
                    out.push(token, NO_LABEL);
                }
                out.push(";", value_token(values[var]));
            }
            Kind::If => {
                let (rhs_token, rhs) = if rng.random_bool(0.5) {
                    // Another variable, uniform among the rest.
                    let mut other = rng.random_range(0..names.len() - 1);
                    if other >= var {
                        other += 1;
                    }
                    (names[other], values[other])
                } else {
                    let constant = rng.random_range(MIN_VALUE..=MAX_VALUE);
                    (value_token(constant), constant)
                };
                let less = rng.random_bool(0.5);
                let holds = if less {
                    values[var] < rhs
                } else {
                    values[var] > rhs
                };
                let (inner, increment, new) = loop {
                    let increment = rng.random_bool(0.5);
                    let inner = rng.random_range(0..names.len());
                    if let Some(new) = step(values[inner], increment) {
                        break (inner, increment, new);
                    }
                };
                let cmp = if less { "<" } else { ">" };
                for token in ["if", names[var], cmp, rhs_token, ":"] {
                    out.push(token, NO_LABEL);
                }
                for token in [names[inner], step_token(increment), ";"] {
                    out.push(token, NO_LABEL);
                }
                if holds {
                    values[inner] = new;
                }
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpreter::interpret_detailed;

    fn config(variables: usize, seed: u64) -> CodeExecConfig {
        CodeExecConfig {
            variables,
            train_programs: 200,
            valid_programs: 20,
            test_programs: 20,
            seed,
            ..CodeExecConfig::default()
        }
    }

    fn concatenated(config: &CodeExecConfig, split: Split) -> LabelledTokens<'static> {
        let mut all = LabelledTokens::default();
        for program in config.examples(split) {
            all.inputs.extend(program.inputs);
            all.labels.extend(program.labels);
        }
        all
    }

    #[test]
    fn same_seed_same_programs_other_seed_or_split_differs() {
        let a = concatenated(&config(3, 11), Split::Train);
        assert_eq!(a, concatenated(&config(3, 11), Split::Train));
        assert_ne!(a, concatenated(&config(3, 12), Split::Train));
        let valid = concatenated(&config(3, 11), Split::Valid);
        assert_ne!(a.inputs[..valid.len()], valid.inputs[..]);
    }

    #[test]
    fn labels_match_the_independent_interpreter() {
        for variables in [3, 5] {
            let data = concatenated(&config(variables, 3), Split::Train);
            let run = interpret_detailed(&data.inputs).unwrap();
            assert_eq!(run.labels, data.labels, "{variables} variables");
            assert_eq!(run.programs.len(), 200);
        }
    }

    #[test]
    fn programs_have_n_statements_end_and_values_in_range() {
        for variables in [3, 5] {
            let cfg = CodeExecConfig {
                statements: 60,
                ..config(variables, 5)
            };
            for program in cfg.examples(Split::Train) {
                assert_eq!(program.inputs.last(), Some(&END));
                assert_eq!(program.inputs.iter().filter(|&&t| t == END).count(), 1);
                let run = interpret_detailed(&program.inputs).unwrap();
                let summary = &run.programs[0];
                assert_eq!(summary.statements, 60);
                assert!(
                    summary.min_value.unwrap() >= i64::from(MIN_VALUE),
                    "{summary:?}"
                );
                assert!(
                    summary.max_value.unwrap() <= i64::from(MAX_VALUE),
                    "{summary:?}"
                );
                // Every variable is assigned by the opening statements.
                for (i, name) in VARIABLE_NAMES[..variables].iter().enumerate() {
                    assert!(program.inputs[..4 * variables].contains(name), "{i}");
                }
            }
        }
    }

    #[test]
    fn statement_mix_is_as_documented() {
        for variables in [3, 5] {
            let cfg = config(variables, 9);
            let data = concatenated(&cfg, Split::Train);
            let run = interpret_detailed(&data.inputs).unwrap();
            let after_init = (cfg.statements - variables) * run.programs.len();
            let prints: usize = run.programs.iter().map(|p| p.prints).sum();
            let ifs: usize = run.programs.iter().map(|p| p.conditionals).sum();
            let taken: usize = run.programs.iter().map(|p| p.conditionals_taken).sum();
            let print_share = prints as f64 / after_init as f64;
            let if_share = ifs as f64 / after_init as f64;
            assert!(
                (0.22..=0.31).contains(&print_share),
                "print share {print_share}"
            );
            assert!((0.22..=0.31).contains(&if_share), "if share {if_share}");
            // Conditions are neither always true nor always false.
            let taken_share = taken as f64 / ifs as f64;
            assert!(
                (0.2..=0.8).contains(&taken_share),
                "taken share {taken_share}"
            );
            for program in &run.programs {
                assert!((10..=45).contains(&program.prints), "{program:?}");
            }
        }
    }

    #[test]
    fn validate_names_the_field() {
        let invalid = |config: CodeExecConfig| config.validate().unwrap_err().to_string();
        let default = CodeExecConfig::default;
        let err = invalid(CodeExecConfig {
            variables: 4,
            ..default()
        });
        assert_eq!(err, "data.variables must be 3 or 5, got 4");
        for (config, field) in [
            (
                CodeExecConfig {
                    statements: 3,
                    ..default()
                },
                "data.statements ",
            ),
            (
                CodeExecConfig {
                    valid_programs: 0,
                    ..default()
                },
                "data.valid_programs ",
            ),
        ] {
            let err = invalid(config);
            assert!(err.starts_with(field), "{err}");
        }
        assert!(CodeExecConfig::default().validate().is_ok());
        assert!(
            CodeExecConfig {
                variables: 5,
                ..CodeExecConfig::default()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn serde_defaults_and_unknown_fields() {
        let cfg: CodeExecConfig = serde_json::from_str(r#"{"variables": 5, "seed": 4}"#).unwrap();
        assert_eq!(
            cfg,
            CodeExecConfig {
                variables: 5,
                seed: 4,
                ..CodeExecConfig::default()
            }
        );
        let err = serde_json::from_str::<CodeExecConfig>(r#"{"variable": 5}"#).unwrap_err();
        assert!(err.to_string().contains("variable"), "{err}");
    }
}
