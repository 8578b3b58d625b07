//! `vmcp-normalizer normalize`: the normalizer offline, for files, pipes, CI
//! and pre-commit hooks.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::manifest::{Format, Manifest, describe, parse_manifest, render_manifest};
use crate::normalize::{Outcome, Refusal, RefusalReason, normalize_object};

/// Exit status: everything canonical (or written normalized).
pub const EXIT_OK: u8 = 0;
/// Exit status of `--check` when some object would change.
pub const EXIT_WOULD_CHANGE: u8 = 1;
/// Exit status when an input cannot be read or parsed.
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Clone, clap::Args)]
pub struct NormalizeArgs {
    /// Manifest files, YAML or JSON, one or many documents, `kind: List`
    /// included. No file, or `-`, reads standard input.
    pub files: Vec<PathBuf>,
    /// Write nothing; exit 1 when any object would change, naming it and why.
    #[arg(long, conflicts_with = "patch")]
    pub check: bool,
    /// Print each object's RFC 6902 JSON patch (one JSON line per object)
    /// instead of the objects.
    #[arg(long)]
    pub patch: bool,
}

/// One object's result, with where it came from.
struct Report {
    source: String,
    object: String,
    outcome: Outcome,
}

/// Run the command. Output is written only once every input has been read.
pub fn run(
    args: &NormalizeArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let sources: Vec<PathBuf> = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    let mut manifests = Vec::new();
    let mut reports = Vec::new();
    for path in &sources {
        let source = if path.as_os_str() == "-" {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        let manifest = match read_source(path, stdin)
            .and_then(|text| parse_manifest(&text).map_err(|e| e.to_string()))
        {
            Ok(manifest) => manifest,
            Err(message) => {
                let _ = writeln!(stderr, "error: {source}: {message}");
                return EXIT_BAD_INPUT;
            }
        };
        manifests.push(normalize_manifest(manifest, &source, &mut reports));
    }

    for report in &reports {
        if let Outcome::Refused(refusal) = &report.outcome {
            let _ = writeln!(
                stderr,
                "warning: {}: {}: {refusal}",
                report.source, report.object
            );
        }
    }
    let written = if args.check {
        write_check(&reports, stdout)
    } else if args.patch {
        write_patches(&reports, stdout)
    } else {
        write_manifests(&manifests, stdout)
    };
    match written {
        Err(error) => {
            let _ = writeln!(stderr, "error: cannot write output: {error}");
            EXIT_BAD_INPUT
        }
        Ok(())
            if args.check
                && reports
                    .iter()
                    .any(|r| matches!(r.outcome, Outcome::Normalized(_))) =>
        {
            EXIT_WOULD_CHANGE
        }
        Ok(()) => EXIT_OK,
    }
}

fn read_source(path: &PathBuf, stdin: &mut dyn Read) -> Result<String, String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        stdin
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read: {e}"))?;
    } else {
        text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    }
    Ok(text)
}

/// Normalize every object of the manifest, the items of `List`s included.
fn normalize_manifest(mut manifest: Manifest, source: &str, reports: &mut Vec<Report>) -> Manifest {
    for document in &mut manifest.documents {
        if is_list(document) {
            if let Some(items) = document.get_mut("items").and_then(Value::as_array_mut) {
                for item in items.iter_mut() {
                    normalize_in_place(item, source, reports);
                }
            }
        } else {
            normalize_in_place(document, source, reports);
        }
    }
    manifest
}

/// `kubectl get -o yaml` prints `kind: List`; typed lists end in `List`.
fn is_list(document: &Value) -> bool {
    let kind = document.get("kind").and_then(Value::as_str);
    kind.is_some_and(|kind| kind.ends_with("List"))
        && document.get("items").is_some_and(Value::is_array)
}

fn normalize_in_place(object: &mut Value, source: &str, reports: &mut Vec<Report>) {
    let mut outcome = normalize_object(object);
    if let Outcome::Normalized(normalized) = &outcome {
        match normalized.apply_to(object) {
            Ok(canonical) => *object = canonical,
            Err(error) => {
                outcome = Outcome::Refused(Refusal {
                    reason: RefusalReason::ProofFailed,
                    detail: format!("the patch does not apply: {error}"),
                })
            }
        }
    }
    reports.push(Report {
        source: source.to_owned(),
        object: describe(object),
        outcome,
    });
}

fn write_manifests(manifests: &[Manifest], out: &mut dyn Write) -> std::io::Result<()> {
    for (index, manifest) in manifests.iter().enumerate() {
        if index > 0 && manifest.format == Format::Yaml && !manifest.documents.is_empty() {
            out.write_all(b"---\n")?;
        }
        let text = render_manifest(manifest).map_err(std::io::Error::other)?;
        out.write_all(text.as_bytes())?;
    }
    out.flush()
}

fn write_check(reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    for report in reports {
        if let Outcome::Normalized(normalized) = &report.outcome {
            let changes: Vec<String> = normalized.changes.iter().map(ToString::to_string).collect();
            writeln!(
                out,
                "{}: {} would change: {}",
                report.source,
                report.object,
                changes.join("; ")
            )?;
        }
    }
    out.flush()
}

fn write_patches(reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    for report in reports {
        let patch = match report.outcome.patch() {
            Some(patch) => serde_json::to_value(patch).map_err(std::io::Error::other)?,
            None => json!([]),
        };
        let line = json!({"source": report.source, "object": report.object, "patch": patch});
        writeln!(out, "{line}")?;
    }
    out.flush()
}
