//! An interpreter for code-execution programs, independent of the generator.
//!
//! [`interpret`] parses a token stream of programs, each closed by `END`, runs them (variables
//! reset at every `END`) and returns the label stream the generator should have produced:
//! `_` everywhere except at the `;` closing a `print v ;`, labelled with `v`'s value.
//!
//! It shares no code with [`code_exec`](crate::code_exec) (token spellings are written out
//! here on purpose), so agreement between the two is evidence that both are right. It accepts
//! a superset of what the generator writes:
//!
//! ```text
//! program   := statement* END
//! statement := simple | print VAR ; | if VAR CMP (VAR | INT) : simple
//! simple    := VAR = INT ; | VAR ++ ; | VAR -- ;
//! CMP       := < | > | == | !=
//! ```
//!
//! A variable is a token that starts with an ASCII letter, continues with ASCII letters,
//! digits or `_`, and is not a keyword (`print`, `if`, `END`); it must be assigned before it is
//! read (also inside a conditional that does not fire). Values are unbounded `i64`.

use std::collections::HashMap;

use crate::DataError;

/// The outcome of running a token stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpretation {
    /// Label of every token: `_`, or a printed value at a print's closing `;`.
    pub labels: Vec<String>,
    /// One summary per program, in order.
    pub programs: Vec<ProgramSummary>,
}

/// Counts and value range of one program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramSummary {
    /// Statements, a conditional with its inner statement counting as one.
    pub statements: usize,
    /// `print` statements.
    pub prints: usize,
    /// `if` statements.
    pub conditionals: usize,
    /// `if` statements whose condition held.
    pub conditionals_taken: usize,
    /// Smallest value any variable held (`None` if nothing was assigned).
    pub min_value: Option<i64>,
    /// Largest value any variable held (`None` if nothing was assigned).
    pub max_value: Option<i64>,
}

/// Runs `tokens` and returns their expected label stream.
///
/// The error names the index of the first token that does not parse or cannot run.
pub fn interpret<S: AsRef<str>>(tokens: &[S]) -> Result<Vec<String>, DataError> {
    Ok(interpret_detailed(tokens)?.labels)
}

/// Runs `tokens` like [`interpret`], also returning a summary of every program.
pub fn interpret_detailed<S: AsRef<str>>(tokens: &[S]) -> Result<Interpretation, DataError> {
    let mut machine = Machine {
        tokens,
        pos: 0,
        vars: HashMap::new(),
        labels: vec!["_".to_owned(); tokens.len()],
        summary: ProgramSummary::default(),
    };
    let mut programs = Vec::new();
    while machine.pos < tokens.len() {
        programs.push(machine.program()?);
    }
    Ok(Interpretation {
        labels: machine.labels,
        programs,
    })
}

struct Machine<'t, S> {
    tokens: &'t [S],
    pos: usize,
    vars: HashMap<&'t str, i64>,
    labels: Vec<String>,
    summary: ProgramSummary,
}

fn is_variable(token: &str) -> bool {
    let mut chars = token.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(token, "print" | "if" | "END")
}

fn parse_int(token: &str) -> Option<i64> {
    let digits = token.strip_prefix('-').unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

impl<'t, S: AsRef<str>> Machine<'t, S> {
    fn error(&self, index: usize, reason: impl Into<String>) -> DataError {
        let token = match self.tokens.get(index) {
            Some(token) => token.as_ref().to_owned(),
            None => "<end of input>".to_owned(),
        };
        DataError::Malformed {
            index,
            token,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<&'t str> {
        self.tokens.get(self.pos).map(AsRef::as_ref)
    }

    /// Consumes the next token, failing with `expected` at the end of input.
    fn next(&mut self, expected: &str) -> Result<(usize, &'t str), DataError> {
        let Some(token) = self.peek() else {
            return Err(self.error(self.pos, format!("expected {expected}")));
        };
        self.pos += 1;
        Ok((self.pos - 1, token))
    }

    fn expect(&mut self, want: &str) -> Result<usize, DataError> {
        let (index, token) = self.next(&format!("`{want}`"))?;
        if token != want {
            return Err(self.error(index, format!("expected `{want}`")));
        }
        Ok(index)
    }

    fn variable(&mut self) -> Result<(usize, &'t str), DataError> {
        let (index, token) = self.next("a variable")?;
        if !is_variable(token) {
            return Err(self.error(index, "expected a variable"));
        }
        Ok((index, token))
    }

    fn read(&self, index: usize, name: &str) -> Result<i64, DataError> {
        self.vars
            .get(name)
            .copied()
            .ok_or_else(|| self.error(index, format!("variable `{name}` read before assignment")))
    }

    fn write(&mut self, name: &'t str, value: i64) {
        self.vars.insert(name, value);
        let s = &mut self.summary;
        s.min_value = Some(s.min_value.map_or(value, |m| m.min(value)));
        s.max_value = Some(s.max_value.map_or(value, |m| m.max(value)));
    }

    /// Runs one program up to and including its `END`.
    fn program(&mut self) -> Result<ProgramSummary, DataError> {
        self.vars.clear();
        self.summary = ProgramSummary::default();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(self.pos, "program not terminated by `END`"));
                }
                Some("END") => {
                    self.pos += 1;
                    return Ok(std::mem::take(&mut self.summary));
                }
                Some("print") => {
                    self.pos += 1;
                    let (index, name) = self.variable()?;
                    let value = self.read(index, name)?;
                    let end = self.expect(";")?;
                    self.labels[end] = value.to_string();
                    self.summary.prints += 1;
                }
                Some("if") => {
                    self.pos += 1;
                    let holds = self.condition()?;
                    self.simple(holds)?;
                    self.summary.conditionals += 1;
                    self.summary.conditionals_taken += usize::from(holds);
                }
                Some(_) => self.simple(true)?,
            }
            self.summary.statements += 1;
        }
    }

    /// Parses `VAR CMP (VAR | INT) :` and evaluates it.
    fn condition(&mut self) -> Result<bool, DataError> {
        let (index, name) = self.variable()?;
        let lhs = self.read(index, name)?;
        let (cmp_index, cmp) = self.next("a comparison")?;
        let (rhs_index, rhs_token) = self.next("a variable or an integer")?;
        let rhs = match parse_int(rhs_token) {
            Some(value) => value,
            None if is_variable(rhs_token) => self.read(rhs_index, rhs_token)?,
            None => return Err(self.error(rhs_index, "expected a variable or an integer")),
        };
        let holds = match cmp {
            "<" => lhs < rhs,
            ">" => lhs > rhs,
            "==" => lhs == rhs,
            "!=" => lhs != rhs,
            _ => {
                return Err(self.error(cmp_index, "expected `<`, `>`, `==` or `!=`"));
            }
        };
        self.expect(":")?;
        Ok(holds)
    }

    /// Parses `VAR = INT ;`, `VAR ++ ;` or `VAR -- ;`, applying it if `execute`.
    fn simple(&mut self, execute: bool) -> Result<(), DataError> {
        let (index, name) = self.variable()?;
        let (op_index, op) = self.next("`=`, `++` or `--`")?;
        let value = match op {
            "=" => {
                let (int_index, int) = self.next("an integer")?;
                parse_int(int).ok_or_else(|| self.error(int_index, "expected an integer"))?
            }
            "++" | "--" => {
                let old = self.read(index, name)?;
                let new = if op == "++" {
                    old.checked_add(1)
                } else {
                    old.checked_sub(1)
                };
                new.ok_or_else(|| self.error(op_index, "integer overflow"))?
            }
            _ => return Err(self.error(op_index, "expected `=`, `++` or `--`")),
        };
        self.expect(";")?;
        if execute {
            self.write(name, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(program: &str) -> Vec<String> {
        program.split_whitespace().map(str::to_owned).collect()
    }

    fn labels(program: &str) -> Vec<String> {
        interpret(&tokens(program)).unwrap()
    }

    fn error_index(program: &str) -> usize {
        match interpret(&tokens(program)).unwrap_err() {
            DataError::Malformed { index, .. } => index,
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn hand_checked_program() {
        // x=3 y=5; x<y holds so x becomes 4; y<x is false so y stays 5; y==5 holds, y=1.
        let program = "x = 3 ; y = 5 ; print x ; \
                       if x < y : x ++ ; print x ; \
                       if y < x : y -- ; print y ; \
                       if y == 5 : y = 1 ; if x != 4 : x -- ; print y ; print x ; END";
        let mut expected = vec!["_"; 57];
        // The `;` closing each print, with the value printed.
        for (index, value) in [(10, "3"), (21, "4"), (32, "5"), (52, "1"), (55, "4")] {
            assert_eq!(tokens(program)[index - 2], "print");
            expected[index] = value;
        }
        assert_eq!(labels(program), expected);
        let run = interpret_detailed(&tokens(program)).unwrap();
        assert_eq!(
            run.programs,
            [ProgramSummary {
                statements: 11,
                prints: 5,
                conditionals: 4,
                conditionals_taken: 2,
                min_value: Some(1),
                max_value: Some(5),
            }]
        );
    }

    #[test]
    fn comparison_with_constant_and_decrement() {
        let program = "z = 10 ; if z > 9 : z -- ; if z > 9 : z -- ; print z ; END";
        assert_eq!(
            labels(program)
                .iter()
                .filter(|l| *l != "_")
                .collect::<Vec<_>>(),
            ["9"]
        );
    }

    #[test]
    fn variables_reset_at_end() {
        let program = "x = 2 ; x ++ ; print x ; END x = 7 ; print x ; END";
        let got = labels(program);
        assert_eq!(got[9], "3");
        assert_eq!(got[got.len() - 2], "7");
        assert_eq!(got.len(), tokens(program).len());
        // Reading a variable of the previous program fails, naming the token.
        assert_eq!(error_index("x = 2 ; END print x ; END"), 6);
        assert!(interpret::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn malformed_programs_name_the_token() {
        assert_eq!(error_index("x = 2 ; print x ;"), 7); // no END
        assert_eq!(error_index("x = 2 ; print y ; END"), 5); // unassigned
        assert_eq!(error_index("x = 2 ; print x END"), 6); // missing ;
        assert_eq!(error_index("x = two ; END"), 2);
        assert_eq!(error_index("x = 2 ; if x <= 3 : x ++ ; END"), 6);
        assert_eq!(error_index("x = 2 ; if x < 3 : print x ; END"), 9);
        assert_eq!(error_index("x = 2 ; if x < q : x ++ ; END"), 7);
        assert_eq!(error_index("x = 2 ; x ** ; END"), 5);
        assert_eq!(error_index("; END"), 0);
        // Even a false condition may not touch an unassigned variable.
        assert_eq!(error_index("x = 2 ; if x > 5 : y ++ ; END"), 9);
        let err = interpret(&tokens("x = 2 ; print y ; END")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed program at token 5 (`y`): variable `y` read before assignment"
        );
    }
}
