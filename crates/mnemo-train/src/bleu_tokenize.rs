//! The "13a" tokenizer of sacrebleu (mteval-v13a.pl as used by WMT), reimplemented exactly.
//!
//! Follows `sacrebleu/tokenizers/tokenizer_13a.py` and `tokenizer_re.py` of sacrebleu 2.x:
//!
//! 1. remove `<skipped>`, join `-\n` line breaks, turn other `\n` into spaces;
//! 2. if the line holds `&`, unescape `&quot;` `&amp;` `&lt;` `&gt;` in that order (one pass each,
//!    so `&amp;quot;` becomes `&quot;`, not `"`);
//! 3. pad with one space on each side and apply four regex substitutions, each a left-to-right,
//!    non-overlapping scan like Python's `re.sub`:
//!    - `([\{-\~\[-\` -\&\(-\+\:-\@\/])` → ` \1 `: split off ASCII punctuation and symbols
//!      (`{|}~ [\]^_` and backtick, space to `&`, `()*+`, `:;<=>?@`, `/`), but not `'` `-` `.` `,`;
//!    - `([^0-9])([\.,])` → `\1 \2 `: a period or comma not preceded by a digit;
//!    - `([\.,])([^0-9])` → ` \1 \2`: a period or comma not followed by a digit;
//!    - `([0-9])(-)` → `\1 \2 `: a dash preceded by a digit;
//! 4. split on whitespace and join with single spaces.
//!
//! "Whitespace" here is Python's `str.isspace()` (used by `rstrip()` and `split()`), which is
//! Rust's [`char::is_whitespace`] plus the ASCII information separators U+001C..U+001F.

/// Whether Python 3's `str.isspace()` holds for this character.
///
/// That is Unicode `White_Space` ([`char::is_whitespace`]) plus U+001C..U+001F, which Python
/// counts as whitespace (bidirectional class B/S) and Rust does not.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `line.rstrip()`: the line without trailing [`is_python_space`] characters.
pub fn python_rstrip(line: &str) -> &str {
    line.trim_end_matches(is_python_space)
}

/// Python's `line.split()`: the maximal runs of non-[`is_python_space`] characters.
pub fn python_split(line: &str) -> impl Iterator<Item = &str> {
    line.split(is_python_space)
        .filter(|token| !token.is_empty())
}

/// Tokenizes one segment as sacrebleu's `Tokenizer13a` does and returns the tokens joined by
/// single spaces (no leading or trailing space).
///
/// sacrebleu's `BLEU` calls this on `segment.rstrip()`; [`tokenize_13a_tokens`] does both.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let padded: Vec<char> = format!(" {line} ").chars().collect();
    let step1 = split_symbols(&padded);
    let step2 = substitute_pairs(
        &step1,
        |a, b| !is_digit(a) && is_period_or_comma(b),
        |a, b| [a, ' ', b, ' '],
    );
    let step3 = substitute_pairs(
        &step2,
        |a, b| is_period_or_comma(a) && !is_digit(b),
        |a, b| [' ', a, ' ', b],
    );
    let step4 = substitute_pairs(
        &step3,
        |a, b| is_digit(a) && b == '-',
        |a, b| [a, ' ', b, ' '],
    );
    let text: String = step4.into_iter().collect();
    python_split(&text).collect::<Vec<_>>().join(" ")
}

/// The tokens sacrebleu's default `BLEU()` counts n-grams over: [`tokenize_13a`] of the
/// right-stripped segment (no lowercasing), split on whitespace.
pub fn tokenize_13a_tokens(segment: &str) -> Vec<String> {
    tokenize_13a(python_rstrip(segment))
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `[0-9]` of a Python `str` pattern: ASCII digits only.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// `[\.,]`.
fn is_period_or_comma(c: char) -> bool {
    c == '.' || c == ','
}

/// The class `[\{-\~\[-\` -\&\(-\+\:-\@\/]` of the first 13a substitution.
fn is_split_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// First substitution: every [`is_split_symbol`] character `c` becomes ` c `.
fn split_symbols(chars: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() * 2);
    for &c in chars {
        if is_split_symbol(c) {
            out.extend([' ', c, ' ']);
        } else {
            out.push(c);
        }
    }
    out
}

/// Python's `re.sub` for a two-character pattern `(A)(B)`: scans left to right; where
/// `matches(chars[i], chars[i + 1])` it emits `replace(chars[i], chars[i + 1])` and resumes
/// after the pair (matches do not overlap), otherwise it copies `chars[i]` and moves one on.
fn substitute_pairs(
    chars: &[char],
    matches: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char) -> [char; 4],
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() + chars.len() / 2);
    let mut i = 0;
    while i < chars.len() {
        if i + 1 < chars.len() && matches(chars[i], chars[i + 1]) {
            out.extend(replace(chars[i], chars[i + 1]));
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_punctuation_but_keeps_numbers_and_apostrophes() {
        assert_eq!(
            tokenize_13a("Hello, world. It's 1,000.5 (approx)!"),
            "Hello , world . It's 1,000.5 ( approx ) !"
        );
    }

    #[test]
    fn unescapes_entities_in_order() {
        assert_eq!(
            tokenize_13a("&quot;a&quot; &amp;quot; &lt;b&gt;"),
            "\" a \" & quot ; < b >"
        );
    }

    #[test]
    fn dash_after_digit_is_split_but_not_between_letters() {
        assert_eq!(tokenize_13a("3-4 well-known"), "3 - 4 well-known");
    }

    #[test]
    fn python_whitespace_includes_information_separators() {
        assert_eq!(
            python_split("a\u{1f}b\u{a0}c").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(python_rstrip("a \u{1c}\u{3000}"), "a");
    }
}
