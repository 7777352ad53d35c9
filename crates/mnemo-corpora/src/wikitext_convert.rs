//! Converts a MediaWiki XML export (such as the enwiki excerpt shipped in the gensim wheel) into
//! WikiText-format files, the "wikitext-mini" stand-in of `scripts/setup-data.sh`.
//!
//! What it does, following the WikiText-103 format (Merity et al., 2016):
//! - keeps main-namespace (`<ns>0</ns>`) pages that are not redirects, in file order;
//! - strips markup: comments, `<ref>`s, templates `{{…}}`, tables `{|…|}`, file/category/
//!   interwiki links, other HTML tags, bold/italic quotes; `[[target|label]]` becomes `label`,
//!   `[[target]]` becomes `target`, `[url label]` becomes `label`;
//! - writes ` = Title = ` for the article and ` = = Section = = ` (one `=` per level) for
//!   headings, each between blank ` ` lines, then one line per paragraph or list item;
//! - tokenises: words and single punctuation marks are separated by spaces, `'s`-style clitics
//!   split off, and `-` between word characters, `,` and `.` between digits become ` @-@ `,
//!   ` @,@ `, ` @.@ `;
//! - splits by article: article `i` (0-based) goes to valid if `i % 20 == 18`, to test if
//!   `i % 20 == 19`, else to train (90/5/5);
//! - replaces every token seen fewer than 3 times in train by `<unk>`, in all three splits.
//!
//! A hand parser (no XML crate): the export format is regular, and entities are decoded.

use std::collections::HashMap;

use mnemo_data::entities::EntityRules;
use mnemo_data::{Split, UNK};

/// Tokens seen fewer than this many times in the training split become `<unk>`.
pub const MIN_TRAIN_COUNT: usize = 3;

/// A main-namespace article of a MediaWiki export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WikiArticle {
    /// The page title, entities decoded.
    pub title: String,
    /// The wikitext of the latest revision, entities decoded.
    pub text: String,
}

/// The three WikiText files, as text (each line ends with `\n`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WikiTextSplits {
    /// `wiki.train.tokens`.
    pub train: String,
    /// `wiki.valid.tokens`.
    pub valid: String,
    /// `wiki.test.tokens`.
    pub test: String,
    /// Number of articles in train, valid and test.
    pub articles: [usize; 3],
}

/// The split article `index` goes to: valid for `index % 20 == 18`, test for 19, else train.
pub fn article_split(index: usize) -> Split {
    match index % 20 {
        18 => Split::Valid,
        19 => Split::Test,
        _ => Split::Train,
    }
}

/// The text between `open` (a tag name; attributes allowed) and its closing tag, searched from
/// `from`; returns the content and the index after the closing tag. `None` if absent.
fn element<'a>(xml: &'a str, name: &str, from: usize) -> Option<(&'a str, usize)> {
    let open = format!("<{name}");
    let mut at = from;
    let start = loop {
        let found = at + xml[at..].find(&open)?;
        let after = found + open.len();
        match xml[after..].chars().next() {
            Some('>' | ' ' | '/' | '\t' | '\n') => break found,
            _ => at = after,
        }
    };
    let tag_end = start + xml[start..].find('>')?;
    if xml[..tag_end].ends_with('/') {
        return Some(("", tag_end + 1));
    }
    let close = format!("</{name}>");
    let end = tag_end + 1 + xml[tag_end + 1..].find(&close)?;
    Some((&xml[tag_end + 1..end], end + close.len()))
}

/// Decodes the XML entities and character references of `text`; other `&name;` entities
/// (HTML ones left in wikitext) become a space if `nbsp`, a dash if `ndash`/`mdash`, and are
/// dropped otherwise when `html` is set.
fn decode_entities(text: &str, html: bool) -> String {
    let html_names = |name: &str| match name {
        "nbsp" => Some(" "),
        "ndash" | "mdash" => Some("-"),
        _ if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) => Some(""),
        _ => None,
    };
    let rules = EntityRules {
        numeric: true,
        max_semi: 11,
        other: if html { html_names } else { |_| None },
    };
    mnemo_data::entities::decode_entities(text, rules)
}

/// The main-namespace, non-redirect articles of a MediaWiki XML export, in file order.
///
/// Fails (with a reason) if the text holds no `<mediawiki` root or a `<page>` is unterminated.
pub fn parse_mediawiki(xml: &str) -> Result<Vec<WikiArticle>, String> {
    if !xml.contains("<mediawiki") {
        return Err("not a MediaWiki XML export: no <mediawiki> element".into());
    }
    let mut articles = Vec::new();
    let mut at = 0;
    while let Some(offset) = xml[at..].find("<page>") {
        let start = at + offset;
        let Some((page, next)) = element(xml, "page", start) else {
            return Err(format!("<page> at byte {start} is not closed"));
        };
        at = next;
        let ns = element(page, "ns", 0).map_or("0", |(ns, _)| ns.trim());
        if ns != "0" || page.contains("<redirect") {
            continue;
        }
        let title = element(page, "title", 0).map_or("", |(t, _)| t);
        let text = element(page, "text", 0).map_or("", |(t, _)| t);
        articles.push(WikiArticle {
            title: decode_entities(title, false),
            text: decode_entities(text, false),
        });
    }
    Ok(articles)
}

/// Removes every span from `open` to the matching `close`, counting nesting.
fn remove_nested(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(open) {
            depth += 1;
            i += open.len();
        } else if depth > 0 && text[i..].starts_with(close) {
            depth -= 1;
            i += close.len();
        } else {
            let c = text[i..].chars().next().expect("in bounds");
            if depth == 0 {
                out.push(c);
            }
            i += c.len_utf8();
        }
    }
    out
}

/// Removes `<tag ...>...</tag>` and `<tag .../>` (case-sensitive tag name).
fn remove_tag_spans(text: &str, tag: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        if after[..gt].ends_with('/') {
            rest = &after[gt + 1..];
        } else {
            rest = match after.find(&close) {
                Some(end) => &after[end + close.len()..],
                None => &after[gt + 1..],
            };
        }
    }
    out.push_str(rest);
    out
}

/// Replaces internal links `[[...]]` (nested allowed) by their label; drops file, image,
/// category and interwiki links.
fn replace_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with("[[") {
            // Find the matching "]]".
            let mut depth = 0usize;
            let mut j = i;
            let mut end = None;
            while j < text.len() {
                if text[j..].starts_with("[[") {
                    depth += 1;
                    j += 2;
                } else if text[j..].starts_with("]]") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                } else {
                    j += text[j..].chars().next().map_or(1, char::len_utf8);
                }
            }
            let Some(end) = end else {
                i += 2;
                continue;
            };
            let inner = &text[i + 2..end - 2];
            let target = inner.split('|').next().unwrap_or("");
            let prefix = target.split(':').next().unwrap_or("").trim();
            // File, image and category links, and interwiki links (`de:`, `zh-min-nan:`).
            let namespaced = target.contains(':')
                && (matches!(
                    prefix.to_ascii_lowercase().as_str(),
                    "file" | "image" | "category" | "media"
                ) || (!prefix.is_empty()
                    && prefix.len() <= 12
                    && prefix.chars().all(|c| c.is_ascii_lowercase() || c == '-')));
            if !namespaced {
                let label = inner.rsplit('|').next().unwrap_or(inner);
                out.push_str(&replace_links(label));
            }
            i = end;
        } else {
            let c = text[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Replaces every `open inner close` span for which `replace(inner)` gives a text by that text;
/// an `open` that starts no such span (no `close` after it, or `replace` declines) stays, and
/// the scan goes on just after it. `inner` is what lies before the first `close`.
fn replace_spans<'a>(
    text: &'a str,
    open: char,
    close: char,
    replace: impl Fn(&'a str) -> Option<&'a str>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len_utf8()..];
        let replaced = after
            .find(close)
            .and_then(|end| Some((replace(&after[..end])?, end)));
        match replaced {
            Some((by, end)) => {
                out.push_str(by);
                rest = &after[end + close.len_utf8()..];
            }
            None => {
                out.push(open);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces external links `[url label]` by `label` and `[url]` by nothing.
fn replace_external_links(text: &str) -> String {
    replace_spans(text, '[', ']', |link| {
        let is_url = ["http://", "https://", "ftp://", "//"]
            .iter()
            .any(|p| link.starts_with(p));
        is_url.then(|| link.split_once(' ').map_or("", |(_, label)| label))
    })
}

/// Removes any remaining `<...>` tag, keeping what is between tags.
fn remove_tags(text: &str) -> String {
    replace_spans(text, '<', '>', |tag| {
        let looks_like_tag = tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        looks_like_tag.then_some("")
    })
}

/// Wikitext with markup stripped (see the module docs), still one line per source line.
pub fn strip_markup(text: &str) -> String {
    let text = remove_nested(text, "<!--", "-->");
    let text = remove_tag_spans(&text, "ref");
    let text = remove_nested(&text, "{{", "}}");
    let text = remove_nested(&text, "{|", "|}");
    let text = replace_links(&text);
    let text = replace_external_links(&text);
    let text = remove_tags(&text);
    let text = text.replace("'''", "").replace("''", "");
    decode_entities(&text, true)
}

/// WikiText tokens of a piece of plain text.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for chunk in text.split_whitespace() {
        let chars: Vec<char> = chunk.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            if c.is_alphanumeric() {
                let start = i;
                while i < chars.len() && chars[i].is_alphanumeric() {
                    i += 1;
                }
                tokens.push(chars[start..i].iter().collect());
                continue;
            }
            let between = |f: fn(char) -> bool| prev.is_some_and(f) && next.is_some_and(f);
            if c == '\'' && between(char::is_alphabetic) {
                // A clitic: "game's" -> "game 's".
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_alphanumeric() {
                    i += 1;
                }
                tokens.push(chars[start..i].iter().collect());
                continue;
            }
            let token = match c {
                '-' if between(char::is_alphanumeric) => "@-@".to_string(),
                ',' if between(|c| c.is_ascii_digit()) => "@,@".to_string(),
                '.' if between(|c| c.is_ascii_digit()) => "@.@".to_string(),
                _ => c.to_string(),
            };
            tokens.push(token);
            i += 1;
        }
    }
    tokens
}

/// The WikiText lines of an article (before `<unk>` replacement), without the trailing
/// newline: the title heading, then section headings and paragraphs.
pub fn article_lines(article: &WikiArticle) -> Vec<Vec<String>> {
    let mut lines: Vec<Vec<String>> = Vec::new();
    let heading = |level: usize, text: &str| {
        let mut line = vec!["=".to_string(); level];
        line.extend(tokenize(text));
        line.extend(std::iter::repeat_n("=".to_string(), level));
        line
    };
    lines.push(Vec::new());
    lines.push(heading(1, &article.title));
    lines.push(Vec::new());
    for raw in strip_markup(&article.text).lines() {
        let line = raw.trim();
        if line.is_empty()
            || line.starts_with(['|', '!', '{', '}'])
            || (line.starts_with("__") && line.ends_with("__"))
        {
            continue;
        }
        let level = line.chars().take_while(|&c| c == '=').count();
        if level >= 2 && line.ends_with(&"=".repeat(level)) && line.len() > 2 * level {
            let title = line[level..line.len() - level].trim();
            if !title.is_empty() {
                lines.push(Vec::new());
                lines.push(heading(level, title));
                lines.push(Vec::new());
                continue;
            }
        }
        let body = line.trim_start_matches(['*', '#', ':', ';']);
        let tokens = tokenize(body);
        if !tokens.is_empty() {
            lines.push(tokens);
        }
    }
    lines
}

/// Converts a MediaWiki XML export into the three WikiText files (see the module docs).
pub fn convert_mediawiki(xml: &str) -> Result<WikiTextSplits, String> {
    let articles = parse_mediawiki(xml)?;
    let mut per_split: [Vec<Vec<String>>; 3] = Default::default();
    let mut counts = [0usize; 3];
    for (index, article) in articles.iter().enumerate() {
        let split = article_split(index).stream_id() as usize;
        counts[split] += 1;
        per_split[split].extend(article_lines(article));
    }
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for token in per_split[0].iter().flatten() {
        *frequency.entry(token.as_str()).or_default() += 1;
    }
    let render = |lines: &[Vec<String>]| {
        let mut out = String::new();
        for line in lines {
            out.push(' ');
            for token in line {
                let rare = frequency.get(token.as_str()).copied().unwrap_or(0) < MIN_TRAIN_COUNT;
                out.push_str(if rare { UNK } else { token });
                out.push(' ');
            }
            out.push('\n');
        }
        out
    };
    Ok(WikiTextSplits {
        train: render(&per_split[0]),
        valid: render(&per_split[1]),
        test: render(&per_split[2]),
        articles: counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">
  <siteinfo><sitename>Wikipedia</sitename></siteinfo>
  <page>
    <title>AccessibleComputing</title>
    <ns>0</ns>
    <redirect title="Computer accessibility" />
    <revision><text xml:space="preserve">#REDIRECT [[Computer accessibility]]</text></revision>
  </page>
  <page>
    <title>Anarchism</title>
    <ns>0</ns>
    <revision>
      <text xml:space="preserve">{{Infobox|name={{nested}}}}
'''Anarchism''' is a [[political philosophy|philosophy]] that rejects [[hierarchy]].&lt;ref name="a"&gt;Cite me&lt;/ref&gt; It began in 1,840.5 in the self-governed [[France]]'s towns.&lt;!-- hidden --&gt;

== History ==
[[File:Flag.svg|thumb|A [[flag]]]]
* Proudhon's work (see [http://example.org the site]).
{| class="wikitable"
| cell
|}
=== Modern era ===
Text&amp;nbsp;more &amp;amp; ''less''.
[[Category:Anarchism]]
[[de:Anarchismus]]</text>
    </revision>
  </page>
  <page>
    <title>Talk:Anarchism</title>
    <ns>1</ns>
    <revision><text>Talk text</text></revision>
  </page>
</mediawiki>
"#;

    #[test]
    fn external_links_and_tags_are_replaced_only_where_they_are_complete() {
        let links = "[not a link] [http://x] [https://y label here] [//a b] [http://z";
        assert_eq!(
            replace_external_links(links),
            "[not a link]  label here b [http://z"
        );
        assert_eq!(replace_external_links("[[http://a b]]"), "[b]");
        let tags = "a < b <br/> c <!-- x --> <> </p> <3 > <<b>> <a";
        assert_eq!(remove_tags(tags), "a < b  c  <>  <3 > <> <a");
    }

    fn render(lines: &[Vec<String>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| match l.is_empty() {
                true => " ".to_string(),
                false => format!(" {} ", l.join(" ")),
            })
            .collect()
    }

    #[test]
    fn parse_keeps_main_namespace_articles_only() {
        let articles = parse_mediawiki(FIXTURE).unwrap();
        assert_eq!(articles.len(), 1);
        assert_eq!(articles[0].title, "Anarchism");
        assert!(articles[0].text.contains("<ref name=\"a\">"));
        assert!(parse_mediawiki("<html></html>").is_err());
        let err = parse_mediawiki("<mediawiki><page><title>A</title>").unwrap_err();
        assert!(err.contains("not closed"), "{err}");
    }

    #[test]
    fn fixture_article_gives_exactly_the_wikitext_lines() {
        let articles = parse_mediawiki(FIXTURE).unwrap();
        let lines = render(&article_lines(&articles[0]));
        let expected = [
            " ",
            " = Anarchism = ",
            " ",
            " Anarchism is a philosophy that rejects hierarchy . It began in 1 @,@ 840 @.@ 5 in \
             the self @-@ governed France 's towns . ",
            " ",
            " = = History = = ",
            " ",
            " Proudhon 's work ( see the site ) . ",
            " ",
            " = = = Modern era = = = ",
            " ",
            " Text more & less . ",
        ];
        assert_eq!(lines, expected);
    }

    #[test]
    fn tokenizer_escapes_like_wikitext() {
        assert_eq!(
            tokenize("role-playing 2,000.25 don't \"x\" -5 a-"),
            [
                "role", "@-@", "playing", "2", "@,@", "000", "@.@", "25", "don", "'t", "\"", "x",
                "\"", "-", "5", "a", "-"
            ]
        );
    }

    #[test]
    fn splits_by_article_and_unks_rare_train_tokens() {
        let mut xml = String::from("<mediawiki>\n");
        for i in 0..20 {
            let text = match i {
                0 => "common words here rare.",
                18 => "common zebra.",
                19 => "words.",
                _ => "common words here.",
            };
            xml.push_str(&format!(
                "<page><title>Same</title><ns>0</ns><revision><text>{text}</text></revision></page>\n"
            ));
        }
        xml.push_str("</mediawiki>\n");
        let splits = convert_mediawiki(&xml).unwrap();
        assert_eq!(splits.articles, [18, 1, 1]);
        assert_eq!(splits.valid, " \n = Same = \n \n common <unk> . \n");
        assert_eq!(splits.test, " \n = Same = \n \n words . \n");
        assert!(
            splits
                .train
                .starts_with(" \n = Same = \n \n common words here <unk> . \n \n = Same = \n"),
            "{}",
            splits.train
        );
        assert_eq!(splits.train.matches("<unk>").count(), 1);
        assert_eq!(splits.train.lines().count(), 18 * 4);
    }
}
