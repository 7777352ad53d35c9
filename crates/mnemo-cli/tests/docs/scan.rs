//! What a Markdown document claims about the repository: the relative links it makes, the
//! repository paths, `Type::method` items and `mnemo …` command lines in its code.
use regex::Regex;

/// Top-level folders whose paths the documents name in code spans.
const TOP_FOLDERS: &str = "crates|scripts|experiments|docs|tools|\\.ci";

/// The claims of one document, in the order they appear.
#[derive(Debug, Default, PartialEq)]
pub struct Claims {
    /// Link targets that are not URLs, `#anchor` removed, relative to the document's folder.
    pub links: Vec<String>,
    /// Repository paths in code spans, `{a,b}` alternatives expanded.
    pub paths: Vec<String>,
    /// `(Type, method)` from code spans that start with `Type::method`.
    pub items: Vec<(String, String)>,
    /// The arguments after `mnemo` of every command line (code spans and code blocks).
    pub commands: Vec<Vec<String>>,
}

/// The claims of the Markdown text `text`.
pub fn claims(text: &str) -> Claims {
    let fence = Regex::new(r"(?s)```[^\n]*\n(.*?)```").unwrap();
    let mut claims = Claims::default();
    for block in fence.captures_iter(text) {
        claims.commands.extend(block_commands(&block[1]));
    }
    let prose = fence.replace_all(text, "");
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let url = Regex::new(r"^[a-z]+:").unwrap();
    for target in link.captures_iter(&prose) {
        let target = &target[1];
        let path = target.split('#').next().unwrap_or("");
        if !path.is_empty() && !url.is_match(target) {
            claims.links.push(path.to_string());
        }
    }
    let span = Regex::new(r"`([^`\n]+)`").unwrap();
    let path = Regex::new(&format!(
        r"(?:^|[\s(=])((?:{TOP_FOLDERS})/(?:\{{[^}}\s]*\}}|[^\s`:,;)])*)"
    ))
    .unwrap();
    // Placeholders (`<run>`, `*.json`, `…`) stand for paths, not paths.
    let placeholder = Regex::new(r"[<*…$]|\.\.\.").unwrap();
    let item = Regex::new(r"^([A-Z][A-Za-z0-9_]*)::([a-z_][a-z0-9_]*)\b").unwrap();
    for span in span.captures_iter(&prose) {
        let span = &span[1];
        for p in path.captures_iter(span) {
            let p = p[1].trim_end_matches('.');
            if !placeholder.is_match(p) {
                claims.paths.extend(expand(p));
            }
        }
        if let Some(c) = item.captures(span) {
            claims.items.push((c[1].to_string(), c[2].to_string()));
        }
        if let Some(args) = span.strip_prefix("mnemo ") {
            claims.commands.push(words(args));
        }
    }
    claims
}

/// The `mnemo` command lines of a code block: lines (joined over `\` continuations) that run
/// `mnemo` (by name or path) or `cargo run … --` of the CLI, one per command of a `&&`, `|` or
/// `;` chain, without `#` comments.
fn block_commands(block: &str) -> Vec<Vec<String>> {
    let mnemo = Regex::new(r"(?:^|[\s/])mnemo\s+(.*)").unwrap();
    let cargo_run = Regex::new(r"^cargo run\b(.*?)\s--\s+(.*)").unwrap();
    let chain = Regex::new(r"\s(?:&&|\|\||\||;)\s").unwrap();
    let joined = block.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines() {
        let line = line.split(" #").next().unwrap_or("");
        for command in chain.split(line) {
            let command = command.trim().trim_start_matches("$ ");
            if let Some(c) = cargo_run.captures(command) {
                let cargo_args = &c[1];
                let other_package = cargo_args.contains("--example")
                    || cargo_args.contains("-p mnemo-") && !cargo_args.contains("-p mnemo-cli");
                if !other_package {
                    commands.push(words(&c[2]));
                }
            } else if let Some(c) = mnemo.captures(command) {
                commands.push(words(&c[1]));
            }
        }
    }
    commands
}

fn words(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_string).collect()
}

/// `a{x,y}b` → `axb`, `ayb` (nested and repeated alternatives too).
fn expand(p: &str) -> Vec<String> {
    match (p.find('{'), p.find('}')) {
        (Some(open), Some(close)) if open < close => p[open + 1..close]
            .split(',')
            .flat_map(|alt| expand(&format!("{}{alt}{}", &p[..open], &p[close + 1..])))
            .collect(),
        _ => vec![p.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of claim is found where the documents write it, and only there.
    #[test]
    fn claims_are_found_in_spans_links_and_blocks() {
        let text = "See [the models](models.md#feedback), [burn](https://burn.dev) and \
                    `crates/mnemo-core/src/{attention,norm}.rs` (`docs/bench/<run>/`); \
                    `FeedbackCore::step` and `mnemo eval runs/x --split test`.\n\
                    ```sh\n$ mnemo train a.toml --out runs \\\n  --quiet && mnemo runs\n\
                    cargo run --release -- bench --only ref # comment --no\n\
                    cargo run --release -p mnemo-kernels --example e -- 8\n```\n";
        let c = claims(text);
        assert_eq!(c.links, ["models.md"]);
        assert_eq!(
            c.paths,
            [
                "crates/mnemo-core/src/attention.rs",
                "crates/mnemo-core/src/norm.rs"
            ]
        );
        assert_eq!(c.items, [("FeedbackCore".into(), "step".into())]);
        let commands: Vec<String> = c.commands.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            commands,
            [
                "train a.toml --out runs --quiet",
                "runs",
                "bench --only ref",
                "eval runs/x --split test"
            ]
        );
    }
}
