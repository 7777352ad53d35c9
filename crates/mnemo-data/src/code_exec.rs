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
//! x = 4 ; print x ; x ++ ; if x > 2 : y = 7 ; y -- ; print y ; z = 1 ; if z < x : z ++ ; ... END
//! ```
//!
//! Statement forms: `v = c ;` (c a constant), `v ++ ;`, `v -- ;`, `print v ;` and
//! `if v OP w : S` where `OP` is `<` or `>`, `w` is another variable or a constant, and `S` is
//! a `++`/`--` (official style: or `=`) statement applied only when the condition holds. Every
//! value stays in `1..=10` ([`MIN_VALUE`]..=[`MAX_VALUE`]) whether or not a condition fires.
//!
//! The label stream is aligned token for token: [`NO_LABEL`] everywhere except at the `;` that
//! closes a `print v ;`, whose label is `v`'s value at that moment (e.g. `"4"`).
//!
//! # Statement mix: `style = "official"` (the default, the reference's algorithm)
//! Every statement draws its operation uniformly from `{=, ++, --, if, print}`; one that cannot
//! apply is redrawn with everything drawn for it: `=` only assigns a variable not yet assigned
//! (uniform among those, uniform value), and is redrawn once all are; `++`, `--`, `print` and
//! `if` act on a uniform assigned variable (redrawn while none is; a `++` on a 10 or a `--` on a
//! 1 is redrawn). A conditional compares with another assigned variable (a uniform ordered pair,
//! redrawn with fewer than two assigned) or with a uniform constant (½ each), using `<` or `>`
//! (½ each); its inner statement draws among the five again, redrawing `if` and `print` and what
//! cannot apply, so it is `++`, `--` or, while a variable is unassigned, `=`. The inner
//! statement is applied only when the condition holds: an `if x < 3 : y = 7 ;` that does not
//! fire leaves `y` unassigned (a later `y = c ;` may follow). So the first statement is always an
//! assignment and the others spread over the program. Every value stays in `1..=10`
//! ([`MIN_VALUE`]..=[`MAX_VALUE`]) whether or not a condition fires.
//!
//! Measured over 5000 programs of 100 statements (V = 3 / V = 5), as shares of all statements:
//! `=` 2.8% / 4.5%, `++` and `--` 23.2% / 22.7% each, if 25.2% / 24.8% (its condition holds 45%
//! of the time; 1.9% / 4.4% of conditionals guard an `=`), print 25.7% / 25.3%; a program holds
//! 11 to 43 prints, about 25 on average, and has every variable assigned by its end (tests
//! check 22–30% over 200 programs and 10–45 per program). `tests/official_generator.rs`
//! checks the statement mix, the position of each variable's first assignment, the operations
//! inside conditionals and the printed values against a sample of the reference script,
//! bin by bin within sampling error (`|z| ≤ 4`).
//!
//! # Statement mix: `style = "front_loaded"`
//! The first `variables` statements assign every variable once, in random order, with uniform
//! values; each later statement draws its kind uniformly from `{++, --, if, print}` and its
//! variable uniformly (redrawn like the official style's), and a conditional's inner statement
//! is `++` or `--` (½ each), never `=`. Over 5000 programs of 100 statements, as shares of the
//! statements after the initial assignments: print 26.3%, if 26.3% (holds 45% of the time),
//! `++` and `--` 23.7% each; 10 to 43 prints per program. Once all variables are assigned the
//! two styles draw the same mix; they differ in where assignments fall (statements 0..V−1
//! here, spread out in the reference: for V = 3 the third variable is first assigned at
//! statement 2 in only ~8% of programs) and in conditional assignments.
//!
//! In both styles values are never reassigned, so a printed value is the initial assignment
//! plus every change since: answering needs state carried across the whole program, hundreds
//! of tokens back. The last executed statement that set the printed variable is nearer: from
//! the `print` back to that statement's `;` (1 when it directly precedes) is a median of 12
//! tokens for V = 3 (90th percentile 45 official, 46 front-loaded) and 19 / 21 for V = 5 (p90
//! 74 / 78); `tests/official_generator.rs`'s ignored `measure_statistics_for_the_docs` prints
//! these numbers.
//!
//! # Differences from the reference
//! - Seeded: each split has its own ChaCha8 stream ([`Split::rng`]); the reference is unseeded.
//! - `style = "front_loaded"` is mnemo's earlier generator, kept for the runs measured with it.
//!
//! The [`interpreter`](crate::interpreter) accepts a superset (also `==`, `!=`, reassignments
//! and assignments inside conditionals) and is used by the tests to check every label.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::curriculum::{Curriculum, stage_rng};
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
    /// Which generator draws the programs: the reference's algorithm ([`CodeExecStyle::Official`],
    /// the default) or every variable assigned first ([`CodeExecStyle::FrontLoaded`]).
    pub style: CodeExecStyle,
    /// `[data.curriculum]`: shorter programs to train on before `statements` ones
    /// ([`crate::curriculum`]). Default: none, training reads `statements` throughout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curriculum: Option<Curriculum>,
}

/// The algorithm that draws the statements of a program (see the [module docs](self)).
///
/// Written `style = "official"` or `style = "front_loaded"` under `[data]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeExecStyle {
    /// The reference's algorithm: every statement draws its operation among `=`, `++`, `--`,
    /// `if` and `print`, redrawing what cannot apply, so assignments spread over the program
    /// and a conditional may assign a variable not yet assigned.
    #[default]
    Official,
    /// Every variable assigned once first, in random order; then `++`, `--`, `if`, `print`.
    FrontLoaded,
}

impl CodeExecStyle {
    /// The name used in configs and on the command line: `official` or `front_loaded`.
    pub fn name(self) -> &'static str {
        match self {
            CodeExecStyle::Official => "official",
            CodeExecStyle::FrontLoaded => "front_loaded",
        }
    }
}

impl std::fmt::Display for CodeExecStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CodeExecStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "official" => Ok(CodeExecStyle::Official),
            "front_loaded" => Ok(CodeExecStyle::FrontLoaded),
            other => Err(format!(
                "unknown style `{other}`: expected `official` or `front_loaded`"
            )),
        }
    }
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
            style: CodeExecStyle::Official,
            curriculum: None,
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
        self.split_sizes().validate()?;
        match &self.curriculum {
            Some(curriculum) => curriculum.validate(self.variables, self.statements),
            None => Ok(()),
        }
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

    /// The programs of `split` (train or valid) of curriculum stage `stage` (0-based): as many
    /// as [`CodeExecConfig::programs`] of `split`, of that stage's length, drawn from
    /// [`stage_rng`].
    ///
    /// Expects a validated config with a curriculum of more than `stage` stages.
    pub fn stage_examples(
        &self,
        stage: usize,
        split: Split,
    ) -> impl Iterator<Item = LabelledTokens<'static>> + '_ {
        let stages = self.curriculum.as_ref().map_or(&[][..], |c| &c.stages);
        let config = CodeExecConfig {
            statements: stages[stage].statements,
            curriculum: None,
            ..self.clone()
        };
        let mut rng = stage_rng(self.seed, stage, split);
        (0..self.programs(split)).map(move |_| config.generate_program(&mut rng))
    }

    /// Draws one program with its labels, ending with [`END`], in the configured [`CodeExecStyle`].
    ///
    /// Expects a validated config.
    pub fn generate_program<R: Rng + ?Sized>(&self, rng: &mut R) -> LabelledTokens<'static> {
        let names = &VARIABLE_NAMES[..self.variables];
        let mut out = LabelledTokens::default();
        match self.style {
            CodeExecStyle::Official => {
                let mut values = [None; VARIABLE_NAMES.len()];
                let values = &mut values[..self.variables];
                for _ in 0..self.statements {
                    push_official_statement(rng, names, values, &mut out);
                }
            }
            CodeExecStyle::FrontLoaded => {
                let mut values = [MIN_VALUE; VARIABLE_NAMES.len()];
                let values = &mut values[..self.variables];
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
            }
        }
        out.push(END, NO_LABEL);
        out
    }
}

/// The operations the official style draws from, uniformly.
#[derive(Clone, Copy)]
enum Operation {
    Assign,
    Increment,
    Decrement,
    If,
    Print,
}

const OPERATIONS: [Operation; 5] = [
    Operation::Assign,
    Operation::Increment,
    Operation::Decrement,
    Operation::If,
    Operation::Print,
];

/// A uniform index among the variables whose `values` entry is assigned (`Some`) when
/// `assigned`, unassigned (`None`) otherwise; `None` if there is none.
fn pick<R: Rng + ?Sized>(rng: &mut R, values: &[Option<u8>], assigned: bool) -> Option<usize> {
    let count = values.iter().filter(|v| v.is_some() == assigned).count();
    if count == 0 {
        return None;
    }
    let nth = rng.random_range(0..count);
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_some() == assigned)
        .nth(nth)
        .map(|(i, _)| i)
}

/// An ordered pair of distinct assigned variables, uniform; `None` with fewer than two.
fn pick_two<R: Rng + ?Sized>(rng: &mut R, values: &[Option<u8>]) -> Option<(usize, usize)> {
    let first = pick(rng, values, true)?;
    let mut rest = values.to_vec();
    rest[first] = None;
    Some((first, pick(rng, &rest, true)?))
}

/// An update statement of the official style, `v = c ;`, `v ++ ;` or `v -- ;`: a statement
/// of its own or the one a conditional guards.
struct Update {
    var: usize,
    /// The operator token and, for `=`, the constant token.
    tokens: (&'static str, Option<&'static str>),
    /// The variable's value after the statement.
    new: u8,
}

impl Update {
    /// Draws the variable and value of an update `op` (`=`, `++` or `--`) on `values`;
    /// `None` where it cannot apply (`=` with every variable assigned, `++`/`--` leaving the
    /// range or on no assigned variable) or `op` is no update.
    fn draw<R: Rng + ?Sized>(rng: &mut R, values: &[Option<u8>], op: Operation) -> Option<Self> {
        match op {
            Operation::Assign => {
                let var = pick(rng, values, false)?;
                let new = rng.random_range(MIN_VALUE..=MAX_VALUE);
                let tokens = ("=", Some(value_token(new)));
                Some(Self { var, tokens, new })
            }
            Operation::Increment | Operation::Decrement => {
                let increment = matches!(op, Operation::Increment);
                let var = pick(rng, values, true)?;
                let new = step(values[var].expect("picked among the assigned"), increment)?;
                let tokens = (step_token(increment), None);
                Some(Self { var, tokens, new })
            }
            Operation::If | Operation::Print => None,
        }
    }

    /// Writes `v op [c] ;`, every token unlabelled.
    fn push(&self, names: &[&'static str], out: &mut LabelledTokens<'static>) {
        out.push(names[self.var], NO_LABEL);
        out.push(self.tokens.0, NO_LABEL);
        if let Some(constant) = self.tokens.1 {
            out.push(constant, NO_LABEL);
        }
        out.push(";", NO_LABEL);
    }
}

/// Draws the inner statement of a conditional: an operation among the five, redrawn while it
/// is `if`, `print`, or cannot apply.
fn official_inner<R: Rng + ?Sized>(rng: &mut R, values: &[Option<u8>]) -> Update {
    loop {
        let op = OPERATIONS[rng.random_range(0..OPERATIONS.len())];
        if let Some(inner) = Update::draw(rng, values, op) {
            return inner;
        }
    }
}

/// Draws one statement in the official style, applies it to `values` (`None`: not yet
/// assigned) and writes it to `out`. The operation is uniform among the five; one that
/// cannot apply is redrawn together with everything drawn for it.
fn push_official_statement<R: Rng + ?Sized>(
    rng: &mut R,
    names: &[&'static str],
    values: &mut [Option<u8>],
    out: &mut LabelledTokens<'static>,
) {
    loop {
        match OPERATIONS[rng.random_range(0..OPERATIONS.len())] {
            op @ (Operation::Assign | Operation::Increment | Operation::Decrement) => {
                let Some(update) = Update::draw(rng, values, op) else {
                    continue;
                };
                values[update.var] = Some(update.new);
                update.push(names, out);
            }
            Operation::Print => {
                let Some(var) = pick(rng, values, true) else {
                    continue;
                };
                for token in ["print", names[var]] {
                    out.push(token, NO_LABEL);
                }
                out.push(";", value_token(values[var].expect("assigned")));
            }
            Operation::If => {
                let (var, rhs_token, rhs) = if rng.random_bool(0.5) {
                    let Some((var, other)) = pick_two(rng, values) else {
                        continue;
                    };
                    (var, names[other], values[other].expect("assigned"))
                } else {
                    let Some(var) = pick(rng, values, true) else {
                        continue;
                    };
                    let constant = rng.random_range(MIN_VALUE..=MAX_VALUE);
                    (var, value_token(constant), constant)
                };
                let lhs = values[var].expect("assigned");
                let less = rng.random_bool(0.5);
                let holds = if less { lhs < rhs } else { lhs > rhs };
                let inner = official_inner(rng, values);
                let cmp = if less { "<" } else { ">" };
                for token in ["if", names[var], cmp, rhs_token, ":"] {
                    out.push(token, NO_LABEL);
                }
                inner.push(names, out);
                if holds {
                    values[inner.var] = Some(inner.new);
                }
            }
        }
        return;
    }
}

/// Draws one non-assignment statement of the front-loaded style, applies it to `values` and writes it to `out`.
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

    fn styled(variables: usize, seed: u64, style: CodeExecStyle) -> CodeExecConfig {
        CodeExecConfig {
            style,
            ..config(variables, seed)
        }
    }

    /// Bounds the official style's shares (of all statements, 200 programs of 100) and
    /// prints per program stay in; the module docs give the measured values.
    const OFFICIAL_PRINT_SHARE: (f64, f64) = (0.22, 0.30);
    const OFFICIAL_IF_SHARE: (f64, f64) = (0.22, 0.30);
    const OFFICIAL_PRINTS: (usize, usize) = (10, 45);

    const STYLES: [CodeExecStyle; 2] = [CodeExecStyle::Official, CodeExecStyle::FrontLoaded];

    #[test]
    fn labels_match_the_independent_interpreter() {
        for style in STYLES {
            for variables in [3, 5] {
                let data = concatenated(&styled(variables, 3, style), Split::Train);
                let run = interpret_detailed(&data.inputs).unwrap();
                assert_eq!(run.labels, data.labels, "{variables} variables, {style}");
                assert_eq!(run.programs.len(), 200);
            }
        }
    }

    #[test]
    fn programs_have_n_statements_end_and_values_in_range() {
        for style in STYLES {
            for variables in [3, 5] {
                let cfg = CodeExecConfig {
                    statements: 60,
                    ..styled(variables, 5, style)
                };
                for program in cfg.examples(Split::Train) {
                    assert_eq!(program.inputs.last(), Some(&END));
                    assert_eq!(program.inputs.iter().filter(|&&t| t == END).count(), 1);
                    let run = interpret_detailed(&program.inputs).unwrap();
                    let summary = &run.programs[0];
                    assert_eq!(summary.statements, 60);
                    let (min, max) = (summary.min_value.unwrap(), summary.max_value.unwrap());
                    assert!(min >= i64::from(MIN_VALUE), "{summary:?}");
                    assert!(max <= i64::from(MAX_VALUE), "{summary:?}");
                    // Both open with an assignment (nothing else can apply).
                    assert_eq!(program.inputs[1], "=");
                    if style == CodeExecStyle::FrontLoaded {
                        // Every variable is assigned by the opening statements.
                        for (i, name) in VARIABLE_NAMES[..variables].iter().enumerate() {
                            assert!(program.inputs[..4 * variables].contains(name), "{i}");
                        }
                    }
                }
            }
        }
    }

    /// Statement indices of every top-level `=` and of every `if` guarding one, per program.
    fn assignment_positions(tokens: &[&str]) -> (Vec<usize>, Vec<usize>) {
        let (mut top, mut inner) = (Vec::new(), Vec::new());
        let mut statement = 0;
        for (i, &token) in tokens.iter().enumerate() {
            match token {
                "END" => statement = 0,
                ";" => statement += 1,
                "=" if i >= 3 && tokens[i - 2] == ":" => inner.push(statement),
                "=" => top.push(statement),
                _ => {}
            }
        }
        (top, inner)
    }

    #[test]
    fn official_style_spreads_assignments_and_assigns_inside_conditionals() {
        for variables in [3, 5] {
            let official = concatenated(&config(variables, 4), Split::Train);
            let (top, inner) = assignment_positions(&official.inputs);
            // Some first assignments come after the first `variables` statements, and some
            // conditionals assign; neither happens in the front-loaded style.
            assert!(top.iter().any(|&s| s >= variables), "{variables}");
            assert!(!inner.is_empty(), "{variables}");
            assert!(top.len() <= 200 * variables + inner.len());
            let front = concatenated(
                &styled(variables, 4, CodeExecStyle::FrontLoaded),
                Split::Train,
            );
            let (top, inner) = assignment_positions(&front.inputs);
            assert!(top.iter().all(|&s| s < variables));
            assert_eq!((top.len(), inner.len()), (200 * variables, 0));
        }
    }

    #[test]
    fn front_loaded_statement_mix_is_as_documented() {
        for variables in [3, 5] {
            let cfg = styled(variables, 9, CodeExecStyle::FrontLoaded);
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
    fn official_statement_mix_is_as_documented() {
        for variables in [3, 5] {
            let cfg = config(variables, 9);
            let data = concatenated(&cfg, Split::Train);
            let run = interpret_detailed(&data.inputs).unwrap();
            let statements = (cfg.statements * run.programs.len()) as f64;
            let prints: usize = run.programs.iter().map(|p| p.prints).sum();
            let ifs: usize = run.programs.iter().map(|p| p.conditionals).sum();
            let taken: usize = run.programs.iter().map(|p| p.conditionals_taken).sum();
            let print_share = prints as f64 / statements;
            let if_share = ifs as f64 / statements;
            assert!(
                (OFFICIAL_PRINT_SHARE.0..=OFFICIAL_PRINT_SHARE.1).contains(&print_share),
                "print share {print_share}"
            );
            assert!(
                (OFFICIAL_IF_SHARE.0..=OFFICIAL_IF_SHARE.1).contains(&if_share),
                "if share {if_share}"
            );
            let taken_share = taken as f64 / ifs as f64;
            assert!(
                (0.2..=0.8).contains(&taken_share),
                "taken share {taken_share}"
            );
            for program in &run.programs {
                assert!(
                    (OFFICIAL_PRINTS.0..=OFFICIAL_PRINTS.1).contains(&program.prints),
                    "{program:?}"
                );
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
