//! The offline CLI, run as a process the way CI jobs and hooks run it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vmcp-normalizer");

fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

fn normalize(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("normalize")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn documents(text: &str) -> Vec<Value> {
    vmcp_normalizer::manifest::parse_manifest(text)
        .unwrap()
        .documents
}

fn expected_config() -> Value {
    documents(&fixture_text("vmcp-configmap.normalized.yaml"))[0]["data"]["config.yaml"].clone()
}

#[test]
fn normalizes_a_file_to_the_fixed_operators_output() {
    let output = normalize(&[&fixture_path("vmcp-configmap.yaml")], "");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let docs = documents(&stdout(&output));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["data"]["config.yaml"], expected_config());
    assert_eq!(
        docs[0]["metadata"]["annotations"]["toolhive.stacklok.dev/content-checksum"],
        "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee"
    );
}

#[test]
fn stdin_streams_and_lists_are_normalized_and_other_objects_pass() {
    let configmap = documents(&fixture_text("vmcp-configmap.yaml")).remove(0);
    let deployment = documents(&fixture_text("vmcp-deployment.yaml")).remove(0);
    let list =
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [configmap, deployment]});
    let stream = format!(
        "{}---\n{}",
        fixture_text("vmcp-deployment.yaml"),
        yaml_serde::to_string(&list).unwrap()
    );
    let output = normalize(&["-"], &stream);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let docs = documents(&stdout(&output));
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0], deployment);
    assert_eq!(
        docs[1]["items"][0]["data"]["config.yaml"],
        expected_config()
    );
    assert_eq!(docs[1]["items"][1], deployment);
}

#[test]
fn json_in_json_out() {
    let configmap = documents(&fixture_text("vmcp-configmap.yaml")).remove(0);
    let output = normalize(&[], &serde_json::to_string(&configmap).unwrap());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(out["data"]["config.yaml"], expected_config());
}

#[test]
fn check_names_what_would_change_and_exits_1() {
    let buggy = fixture_path("vmcp-configmap.yaml");
    let output = normalize(
        &["--check", &buggy, &fixture_path("vmcp-deployment.yaml")],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    let report = stdout(&output);
    assert!(
        report.contains("ConfigMap toolhive-system/demo-vmcp-vmcp-config would change: sorted 5 backends by name"),
        "{report}"
    );
    assert!(!report.contains("Deployment"), "{report}");

    let canonical = normalize(
        &["--check", &fixture_path("vmcp-configmap.normalized.yaml")],
        "",
    );
    assert_eq!(canonical.status.code(), Some(0));
    assert_eq!(stdout(&canonical), "");
}

#[test]
fn patch_prints_one_applicable_patch_per_object() {
    let buggy_text = fixture_text("vmcp-configmap.yaml");
    let output = normalize(&["--patch"], &buggy_text);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let patch: json_patch::Patch = serde_json::from_value(lines[0]["patch"].clone()).unwrap();
    let mut object = documents(&buggy_text).remove(0);
    json_patch::patch(&mut object, &patch).unwrap();
    assert_eq!(object["data"]["config.yaml"], expected_config());
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    let output = normalize(&[], "kind: ConfigMap\ndata: [\n");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.starts_with("error: <stdin>: invalid YAML at line"),
        "{message}"
    );
    assert_eq!(stdout(&output), "");

    let output = normalize(
        &[
            &fixture_path("vmcp-configmap.yaml"),
            "/nonexistent/file.yaml",
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("/nonexistent/file.yaml: cannot read"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        stdout(&output),
        "",
        "nothing is written when an input is bad"
    );
}

#[test]
fn refused_objects_pass_unchanged_with_a_warning() {
    let config = "backends: [{name: b}, {name: a}]\n";
    let configmap = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "labels": {"toolhive.stacklok.io/component": "vmcp-config"}},
        "data": {"config.yaml": config},
    });
    let output = normalize(&["--check"], &serde_json::to_string(&configmap).unwrap());
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("warning: <stdin>: ConfigMap x: left unchanged (unsupported)"),
        "{}",
        stderr(&output)
    );
}

/// A config only the proof stands between and a wrong patch: the last item
/// ends the text inside a block scalar with no final line break, so moved up
/// it would read with a newline it never had (under libyaml, vMCP's reader).
#[test]
fn what_the_proof_refuses_is_written_back_unchanged() {
    let config = "backends:\n- name: b\n- name: a\n  note: |\n    x";
    let configmap = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "labels": {"toolhive.stacklok.io/component": "vmcp-config"}},
        "data": {"config.yaml": config},
    });
    let output = normalize(&[], &serde_json::to_string(&configmap).unwrap());
    assert!(
        stderr(&output).contains("ConfigMap x: left unchanged (proof_failed)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(documents(&stdout(&output)), vec![configmap]);
}
