//! The documentation names only what exists: in README.md, docs/, experiments/, scripts/ and
//! the crates' READMEs, every relative link resolves inside the repository, every repository
//! path in code exists, every `Type::method` of a workspace type is defined, and every
//! `mnemo …` command line parses (its subcommands exist and the binary accepts each flag).
mod scan;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

/// Methods every burn `Module` has (derived, so not written in the workspace).
const MODULE_METHODS: &[&str] = &[
    "num_params",
    "into_record",
    "load_record",
    "to_device",
    "fork",
    "valid",
    "devices",
    "no_grad",
    "save_file",
    "load_file",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file below `dir` (target folders and dot folders left out) ending in `ext`.
fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            files(&path, ext, out);
        } else if name.ends_with(ext) {
            out.push(path);
        }
    }
}

/// The documents checked.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut docs = vec![root.join("README.md")];
    for dir in ["docs", "experiments", "scripts", "crates"] {
        files(&root.join(dir), ".md", &mut docs);
    }
    docs
}

/// `(document, what it claims that does not hold)` for each claim `check` refuses.
fn failures(check: impl Fn(&Path, &scan::Claims) -> Vec<String>) -> Vec<String> {
    let root = root();
    documents()
        .iter()
        .flat_map(|doc| {
            let text = std::fs::read_to_string(doc).unwrap();
            let name = doc.strip_prefix(&root).unwrap_or(doc).display().to_string();
            check(doc, &scan::claims(&text))
                .into_iter()
                .map(move |f| format!("{name}: {f}"))
        })
        .collect()
}

fn assert_none(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} claims do not hold:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The workspace's Rust sources, by file.
struct Sources(Vec<String>);

impl Sources {
    fn read() -> Self {
        let mut paths = Vec::new();
        files(&root().join("crates"), ".rs", &mut paths);
        Self(
            paths
                .iter()
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect(),
        )
    }

    /// None when the workspace does not define `ty` at the top level of a file (a burn or std
    /// type); else whether `ty::method` is a method (or field) of it, or a derived `Module`
    /// method of a module type.
    fn has(&self, ty: &str, method: &str) -> Option<bool> {
        let def = Regex::new(&format!(
            r"(?m)^(?:pub(?:\([^)]*\))? )?(?:struct|enum|trait|type|union) {ty}\b"
        ))
        .unwrap();
        let imp = Regex::new(&format!(r"\bimpl\b[^{{;]*\b{ty}\b[^{{;]*\{{")).unwrap();
        let member = Regex::new(&format!(r"\bfn {method}\b|\b{method}:")).unwrap();
        let defining: Vec<&String> = self.0.iter().filter(|s| def.is_match(s)).collect();
        if defining.is_empty() {
            return None;
        }
        let derived = MODULE_METHODS.contains(&method)
            && defining.iter().any(|s| s.contains("derive(Module"));
        let owners = self.0.iter().filter(|s| def.is_match(s) || imp.is_match(s));
        Some(derived || owners.into_iter().any(|s| member.is_match(s)))
    }
}

/// The `mnemo` binary's command tree, asked through `--help`.
#[derive(Default)]
struct Cli {
    helps: HashMap<Vec<String>, String>,
    accepted: HashMap<(Vec<String>, String), bool>,
}

impl Cli {
    fn run(args: &[String]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_mnemo"))
            .args(args)
            .output()
            .expect("run mnemo")
    }

    /// The subcommands of `mnemo words…`.
    fn subcommands(&mut self, words: &[String]) -> Vec<String> {
        let help = self.helps.entry(words.to_vec()).or_insert_with(|| {
            let out = Self::run(&[words, &["--help".to_string()]].concat());
            String::from_utf8_lossy(&out.stdout).into_owned()
        });
        let Some(list) = help.split("Commands:\n").nth(1) else {
            return Vec::new();
        };
        list.lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    /// Whether `mnemo words… flag` gets past the parser (`--help` after it, so nothing runs:
    /// a known flag prints the help or asks for its value, an unknown one is refused).
    fn accepts(&mut self, words: &[String], flag: &str) -> bool {
        *self
            .accepted
            .entry((words.to_vec(), flag.to_string()))
            .or_insert_with(|| {
                let args = [words, &[flag.to_string(), "--help".to_string()]].concat();
                let out = Self::run(&args);
                !String::from_utf8_lossy(&out.stderr).contains("unexpected argument")
            })
    }

    /// What does not hold of the command line `mnemo args…`.
    fn check(&mut self, args: &[String]) -> Vec<String> {
        let mut words = Vec::new();
        let mut rest = args.iter().peekable();
        while let Some(next) = rest.next_if(|a| self.subcommands(&words).contains(a)) {
            words.push(next.clone());
        }
        let line = format!("`mnemo {}`", args.join(" "));
        let word = Regex::new(r"^[a-z][a-z-]*$").unwrap();
        if words.is_empty() {
            return match args.first() {
                Some(first) if word.is_match(first) => {
                    vec![format!("{line}: no subcommand `{first}`")]
                }
                _ => Vec::new(),
            };
        }
        let flag = Regex::new(r"^(--[a-z][a-z0-9-]*)(?:=.*)?$").unwrap();
        rest.filter_map(|a| flag.captures(a).map(|c| c[1].to_string()))
            .filter(|f| !self.accepts(&words, f))
            .map(|f| format!("{line}: `mnemo {}` has no flag {f}", words.join(" ")))
            .collect()
    }
}

#[test]
fn links_and_paths_in_the_docs_exist() {
    let root = root().canonicalize().unwrap();
    assert_none(failures(|doc, claims| {
        let dir = doc.parent().unwrap();
        let links = claims
            .links
            .iter()
            .filter_map(|l| match dir.join(l).canonicalize() {
                Err(_) => Some(format!("link to {l}, which does not exist")),
                Ok(target) if !target.starts_with(&root) => {
                    Some(format!("link to {l}, outside the repository"))
                }
                Ok(_) => None,
            });
        let paths = claims.paths.iter().filter(|p| !root.join(p).exists());
        links
            .chain(paths.map(|p| format!("`{p}`, which does not exist")))
            .collect()
    }));
}

#[test]
fn methods_named_in_the_docs_are_defined() {
    let sources = Sources::read();
    assert_none(failures(|_, claims| {
        claims
            .items
            .iter()
            .filter(|(ty, method)| sources.has(ty, method) == Some(false))
            .map(|(ty, method)| format!("`{ty}::{method}`: {ty} has no such method"))
            .collect()
    }));
}

#[test]
fn command_lines_in_the_docs_parse() {
    let cli = std::cell::RefCell::new(Cli::default());
    assert_none(failures(|_, claims| {
        claims
            .commands
            .iter()
            .flat_map(|c| cli.borrow_mut().check(c))
            .collect()
    }));
}

/// Each check refuses a claim that does not hold (and takes one that does).
#[test]
fn the_checks_refuse_what_does_not_exist() {
    let args = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let mut cli = Cli::default();
    assert!(
        cli.check(&args("train x.toml --out runs --quiet"))
            .is_empty()
    );
    assert!(
        cli.check(&args("bench --phase fb_gen_b1")).is_empty(),
        "hidden flags count"
    );
    assert_eq!(cli.check(&args("train x.toml --no-such-flag")).len(), 1);
    assert_eq!(cli.check(&args("trian x.toml")).len(), 1);
    assert_eq!(cli.check(&args("data prepare --bogus")).len(), 1);
    let sources = Sources::read();
    assert_eq!(
        sources.has("FeedbackCore", "step_unhooked_read"),
        Some(true)
    );
    assert_eq!(sources.has("FeedbackCore", "no_such_method"), Some(false));
    assert_eq!(sources.has("Model", "num_params"), Some(true));
    assert_eq!(sources.has("Tensor", "no_such_method"), None);
    assert!(root().join("crates/mnemo-cli/tests/docs/scan.rs").exists());
    assert!(
        !root()
            .join("crates/mnemo-models/src/feedback_backward.rs")
            .exists()
    );
}
