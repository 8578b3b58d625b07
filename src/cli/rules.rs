//! `vmcp-normalizer rules`: check a rules file, and explain what it does
//! to objects.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::manifest::for_each_document;
use crate::normalize::{ChecksumAlgorithm, Outcome};
use crate::rules::{Action, ConfigMapRef, Mode, ObjectKind, Rule, RuleSet, RulesError};

/// Exit status: the file passes its checks (`check`), or every object was
/// explained (`explain`).
pub const EXIT_RULES_OK: u8 = 0;
/// Exit status of `check`: the rules file fails its checks (each problem on
/// stdout with line and column).
pub const EXIT_RULES_INVALID: u8 = 1;
/// Exit status: a file cannot be read, or (`explain`) the rules file fails
/// its checks or the object file does not parse.
pub const EXIT_RULES_UNREADABLE: u8 = 2;

const CHECK_EXIT_CODES: &str = "\
Exit status:
  0  every file passes its checks
  1  some file fails them: one line per problem, FILE:LINE:COLUMN: FIELD: MESSAGE
  2  some file cannot be read";

const EXPLAIN_EXIT_CODES: &str = "\
Exit status:
  0  every object explained (whether or not a rule matched it)
  2  the rules file cannot be read or fails its checks, or the object file
     cannot be read or parsed";

#[derive(Debug, Clone, clap::Subcommand)]
pub enum RulesCommand {
    /// Check rules files: each problem with its line and column.
    #[command(after_help = CHECK_EXIT_CODES)]
    Check {
        /// Rules files (YAML, `kind: NormalizationRules`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Say which rule matches each object of a manifest and what it would
    /// do: the changes and the patch, or the refusal and why.
    #[command(after_help = EXPLAIN_EXIT_CODES)]
    Explain {
        /// Rules file; `preset` for the built-in toolhive-vmcp.
        rules: PathBuf,
        /// Manifest with the objects, YAML or JSON, `-` for standard input.
        object: PathBuf,
    },
}

/// Run a `rules` command.
pub fn run(
    command: &RulesCommand,
    stdin: &mut dyn std::io::Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    match command {
        RulesCommand::Check { files } => check(files, stdout, stderr),
        RulesCommand::Explain { rules, object } => explain(rules, object, stdin, stdout, stderr),
    }
}

fn check(files: &[PathBuf], stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let mut status = EXIT_RULES_OK;
    for path in files {
        let name = path.display();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                let _ = writeln!(stderr, "error: {name}: cannot read: {error}");
                status = EXIT_RULES_UNREADABLE;
                continue;
            }
        };
        match RuleSet::from_yaml(&text) {
            Ok(rules) => {
                let names: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
                let _ = writeln!(
                    stdout,
                    "{name}: ok: {} rules ({})",
                    names.len(),
                    names.join(", ")
                );
            }
            Err(error) => {
                for line in problem_lines(&name.to_string(), &error) {
                    let _ = writeln!(stdout, "{line}");
                }
                status = status.max(EXIT_RULES_INVALID);
            }
        }
    }
    status
}

/// `FILE:LINE:COLUMN: FIELD: MESSAGE`, as compilers write them.
fn problem_lines(file: &str, error: &RulesError) -> Vec<String> {
    error
        .problems()
        .iter()
        .map(|problem| {
            let at = problem
                .position
                .map_or_else(String::new, |p| format!("{}:{}:", p.line, p.column));
            format!("{file}:{at} {}: {}", problem.path, problem.message)
        })
        .collect()
}

/// A rules file, or `preset` for the built-in rules; the error is every
/// problem, one `FILE:LINE:COLUMN: FIELD: MESSAGE` line each.
pub(super) fn load(path: &Path) -> Result<RuleSet, String> {
    if path.as_os_str() == "preset" {
        return Ok(RuleSet::preset());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("{}: cannot read: {error}", path.display()))?;
    RuleSet::from_yaml(&text)
        .map_err(|error| problem_lines(&path.display().to_string(), &error).join("\n"))
}

fn explain(
    rules: &Path,
    object: &Path,
    stdin: &mut dyn std::io::Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let rules = match load(rules) {
        Ok(rules) => rules,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return EXIT_RULES_UNREADABLE;
        }
    };
    let mut text = String::new();
    let read = if object.as_os_str() == "-" {
        stdin.read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(object).map(|read| text = read)
    };
    if let Err(error) = read {
        let _ = writeln!(stderr, "error: {}: cannot read: {error}", object.display());
        return EXIT_RULES_UNREADABLE;
    }
    let mut out = String::new();
    let parsed = for_each_document(&text, |_, value, _| {
        let items = value
            .get("kind")
            .and_then(Value::as_str)
            .filter(|kind| kind.ends_with("List"))
            .and_then(|_| value.get("items"))
            .and_then(Value::as_array);
        match items {
            Some(items) => items
                .iter()
                .for_each(|item| explain_one(&rules, item, &mut out)),
            None if !value.is_null() => explain_one(&rules, &value, &mut out),
            None => {}
        }
    });
    if let Err(error) = parsed {
        let _ = writeln!(stderr, "error: {}: {error}", object.display());
        return EXIT_RULES_UNREADABLE;
    }
    let _ = stdout.write_all(out.as_bytes());
    EXIT_RULES_OK
}

fn explain_one(rules: &RuleSet, object: &Value, out: &mut String) {
    use std::fmt::Write as _;
    let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let kind = field("/kind").unwrap_or("(no kind)");
    let name = match (field("/metadata/namespace"), field("/metadata/name")) {
        (Some(namespace), Some(name)) => format!("{namespace}/{name}"),
        (None, Some(name)) => name.to_owned(),
        _ => "(unnamed)".to_owned(),
    };
    let _ = writeln!(out, "{kind} {name}:");
    let Some(object_kind) = ObjectKind::of(object) else {
        let _ = writeln!(out, "  no rule matches (the object has no kind)");
        return;
    };
    if let Some(rule) = rules.workload_rule_for(object_kind, object) {
        let link = rule.workload.as_ref();
        let source = match link.map(|link| &link.config_map) {
            Some(ConfigMapRef::Volume(volume)) => {
                format!("the ConfigMap its volume {volume} mounts")
            }
            Some(ConfigMapRef::NameTemplate(template)) => format!("the ConfigMap named {template}"),
            Some(ConfigMapRef::Env(variable)) => {
                format!("the ConfigMap its env {variable} takes a value from")
            }
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  workload of rule {}: pod-template annotation {} follows the checksum of {source} (kept in step by the webhook, which reads that ConfigMap)",
            rule.name,
            link.map_or("", |link| link.annotation.as_str()),
        );
        return;
    }
    let applied = rules.apply(object_kind, object);
    let Some(rule) = applied.rule else {
        let _ = writeln!(out, "  no rule matches: left as it is");
        return;
    };
    let _ = writeln!(out, "  rule {} (mode {})", rule.name, mode(rule));
    describe_rule(rule, out);
    match &applied.outcome {
        Outcome::NotVmcp | Outcome::Unchanged => {
            let _ = writeln!(out, "  already canonical: nothing to do");
        }
        Outcome::Normalized(normalized) => {
            let verb = if rule.mode == Mode::Warn {
                "would warn"
            } else {
                "would patch"
            };
            let _ = writeln!(out, "  {verb}:");
            for change in &normalized.changes {
                let _ = writeln!(out, "    - {change}");
            }
            let patch = serde_json::to_string(&normalized.patch).unwrap_or_default();
            let _ = writeln!(out, "  patch: {patch}");
        }
        Outcome::Refused(refusal) => {
            let _ = writeln!(out, "  would leave it unchanged: {refusal}");
        }
    }
}

fn mode(rule: &Rule) -> &'static str {
    match rule.mode {
        Mode::Mutate => "mutate",
        Mode::Warn => "warn",
    }
}

fn describe_rule(rule: &Rule, out: &mut String) {
    use std::fmt::Write as _;
    let place = match &rule.action {
        Action::Data(data) => format!("data key {} ({:?})", data.key, data.format).to_lowercase(),
        Action::Object(_) => "the object's fields".to_owned(),
    };
    for set in rule.sets() {
        let _ = writeln!(out, "  set {} by {} in {place}", set.path, set.key);
    }
    if let Action::Data(data) = &rule.action
        && let Some(checksum) = &data.checksum
    {
        let algorithm = match checksum.algorithm {
            ChecksumAlgorithm::ToolhiveContent => "toolhive-content",
            ChecksumAlgorithm::Sha256 => "sha256",
        };
        let _ = writeln!(out, "  checksum {} ({algorithm})", checksum.annotation);
    }
}
