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

const OLD_CHECKSUM: &str = "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48";
const NEW_CHECKSUM: &str = "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee";

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
    let mut synced = deployment.clone();
    synced["spec"]["template"]["metadata"]["annotations"]["toolhive.stacklok.dev/runconfig-checksum"] =
        NEW_CHECKSUM.into();
    assert_eq!(docs[0], synced);
    assert_eq!(
        docs[1]["items"][0]["data"]["config.yaml"],
        expected_config()
    );
    assert_eq!(docs[1]["items"][1], synced);
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
    // The Deployment's ConfigMap is in the same input: it follows it.
    assert!(
        report.contains(
            "vmcp-deployment.yaml: Deployment toolhive-system/demo-vmcp would change: runconfig-checksum 9ba036ba5342 -> 32cf106c9df1"
        ),
        "{report}"
    );

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
    // The object is named field by field, for `jq` to select on.
    assert_eq!(lines[0]["apiVersion"], "v1");
    assert_eq!(lines[0]["kind"], "ConfigMap");
    assert_eq!(lines[0]["namespace"], "toolhive-system");
    assert_eq!(lines[0]["name"], "demo-vmcp-vmcp-config");
    assert_eq!(
        lines[0]["changes"],
        serde_json::json!([
            "sorted 5 backends by name in config.yaml",
            "content-checksum 9ba036ba5342 -> 32cf106c9df1"
        ])
    );
    assert_eq!(lines[0]["warnings"], serde_json::json!([]));
}

#[test]
fn patch_lines_name_every_object_and_carry_its_warnings() {
    let input = format!(
        "{}---\n{}---\nkind: Service\napiVersion: v1\nmetadata: {{name: s}}\n",
        fixture_text("vmcp-deployment.yaml"),
        fixture_text("vmcp-configmap.yaml")
    );
    let output = normalize(&["--patch"], &input);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "Deployment");
    assert_eq!(lines[0]["apiVersion"], "apps/v1");
    assert_eq!(
        lines[0]["patch"],
        serde_json::json!([{"op": "replace",
            "path": "/spec/template/metadata/annotations/toolhive.stacklok.dev~1runconfig-checksum",
            "value": NEW_CHECKSUM}])
    );
    assert_eq!(lines[2]["kind"], "Service");
    assert_eq!(lines[2]["namespace"], Value::Null);
    assert_eq!(lines[2]["patch"], serde_json::json!([]));

    // Alone, the Deployment is left as read and says why.
    let output = normalize(&["--patch"], &fixture_text("vmcp-deployment.yaml"));
    let line: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(line["patch"], serde_json::json!([]));
    assert_eq!(
        line["warnings"],
        serde_json::json!([
            "runconfig-checksum left as read: its ConfigMap demo-vmcp-vmcp-config is not in the input"
        ])
    );
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
    assert_eq!(
        output.status.code(),
        Some(3),
        "could not normalize has its own code"
    );
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

/// The buggy and the golden fixture's `config.yaml` blocks, as kubectl
/// prints them (from the line after `config.yaml: |` to `kind:`).
fn config_block(name: &str) -> String {
    let text = fixture_text(name);
    let start = text.find("  config.yaml: |\n").unwrap() + "  config.yaml: |\n".len();
    let end = text.find("\nkind: ConfigMap").unwrap() + 1;
    text[start..end].to_owned()
}

/// What the input becomes: the config block and both checksums replaced,
/// every other byte as it was.
fn expected_from(input: &str, indent: &str) -> String {
    let indented = |block: String| {
        block
            .lines()
            .map(|line| match line {
                "" => "\n".to_owned(),
                line => format!("{indent}{line}\n"),
            })
            .collect::<String>()
    };
    let buggy = indented(config_block("vmcp-configmap.yaml"));
    let golden = indented(config_block("vmcp-configmap.normalized.yaml"));
    assert!(input.contains(&buggy));
    input
        .replace(&buggy, &golden)
        .replace(OLD_CHECKSUM, NEW_CHECKSUM)
}

const ISSUE_EXAMPLE: &str = r#"# Hand-written, with data a type-guessing reader would retype unquoted.
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-vmcp-config   # named by the operator
  namespace: team-a
  labels:
    toolhive.stacklok.io/component: vmcp-config
  annotations:
    enabled: "on"
    toolhive.stacklok.dev/content-checksum: "0000"
data:
  FEATURE_X: "yes"
  COUNTRY: "NO"
  when: "2026-01-01"
  config.yaml: |
    name: demo
    backends:
      # the fetcher
      - name: fetch
        url: http://fetch
      - name: context7
        url: http://context7
    incomingAuth:
      type: anonymous
"#;

const ISSUE_EXAMPLE_BACKENDS: &str = "      # the fetcher
      - name: fetch
        url: http://fetch
      - name: context7
        url: http://context7
";

const ISSUE_EXAMPLE_SORTED: &str = "      - name: context7
        url: http://context7
      # the fetcher
      - name: fetch
        url: http://fetch
";

#[test]
fn only_the_changed_values_are_rewritten_and_quotes_stay() {
    let output = normalize(&[], ISSUE_EXAMPLE);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    let object = documents(&out).remove(0);
    let checksum = vmcp_normalizer::checksum::content_checksum(&object).unwrap();
    assert_ne!(checksum, "0000");
    let expected = ISSUE_EXAMPLE
        .replace(ISSUE_EXAMPLE_BACKENDS, ISSUE_EXAMPLE_SORTED)
        .replace("\"0000\"", &format!("\"{checksum}\""));
    assert_eq!(out, expected);
    for quoted in [
        "FEATURE_X: \"yes\"",
        "COUNTRY: \"NO\"",
        "when: \"2026-01-01\"",
        "enabled: \"on\"",
    ] {
        assert!(out.contains(quoted), "{quoted} lost its quotes:\n{out}");
    }
}

/// Every scalar of `text` with the type PyYAML (a YAML 1.1 reader, like
/// kubectl's) gives it, by path.
fn yaml_1_1_types(text: &str) -> Vec<(String, String)> {
    const SCRIPT: &str = r#"
import json, sys, yaml
def walk(node, path, out):
    if isinstance(node, dict):
        for k, v in node.items(): walk(v, path + [str(k)], out)
    elif isinstance(node, list):
        for i, v in enumerate(node): walk(v, path + [str(i)], out)
    else:
        out.append(["/".join(path), type(node).__name__])
out = []
for doc in yaml.safe_load_all(sys.stdin): walk(doc, [], out)
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("this test needs python3 with PyYAML (pip install pyyaml)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "this test needs python3 with PyYAML: {}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_yaml_1_1_reader_types_every_scalar_as_before() {
    let input = format!(
        "{ISSUE_EXAMPLE}---\n{}",
        fixture_text("vmcp-deployment.yaml")
    );
    let output = normalize(&[], &input);
    let out = stdout(&output);
    let before = yaml_1_1_types(&input);
    assert!(before.contains(&("data/FEATURE_X".to_owned(), "str".to_owned())));
    assert_eq!(yaml_1_1_types(&out), before);

    // The check can fail: a whole-object re-render (what `normalize` wrote
    // before) retypes these strings.
    let rerendered: String = documents(&input)
        .iter()
        .map(|d| format!("---\n{}", yaml_serde::to_string(d).unwrap()))
        .collect();
    assert_ne!(yaml_1_1_types(&rerendered), before);
}

#[test]
fn a_multi_document_file_keeps_its_comments_markers_and_other_documents() {
    let input = format!(
        "# a stream with comments\n---\n# not vMCP\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc   # kept\nspec:\n  ports: [{{port: 80}}]\n...\n--- # the Deployment comes first\n{}---\n{}\n# trailing comment\n",
        fixture_text("vmcp-deployment.yaml"),
        fixture_text("vmcp-configmap.yaml"),
    );
    let output = normalize(&[], &input);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), expected_from(&input, ""));

    // Canonical input is written back byte for byte.
    let again = normalize(&[], &stdout(&output));
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(stdout(&again), stdout(&output));
}

/// A fixture as an item of a `kind: List`, the way `kubectl get -o yaml`
/// prints one.
fn as_list_item(text: &str) -> String {
    let mut out = String::new();
    for (index, line) in text.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let prefix = if index == 0 { "- " } else { "  " };
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("{prefix}{line}\n"));
        }
    }
    out
}

#[test]
fn a_kubectl_list_is_edited_in_place() {
    let input = format!(
        "apiVersion: v1\nitems:\n{}{}kind: List\nmetadata:\n  resourceVersion: \"\"\n",
        as_list_item(&fixture_text("vmcp-configmap.yaml")),
        as_list_item(&fixture_text("vmcp-deployment.yaml")),
    );
    let output = normalize(&[], &input);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), expected_from(&input, "  "));
}

/// A dump's List mixes vMCP objects with others (read as stubs, never
/// whole): the result is the same, byte for byte.
#[test]
fn a_kubectl_list_with_other_objects_is_edited_in_place() {
    let plain = "apiVersion: v1\ndata:\n  FEATURE_X: \"yes\"\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: toolhive-system\n";
    let input = format!(
        "apiVersion: v1\nitems:\n{}{}{}{}kind: List\nmetadata:\n  resourceVersion: \"\"\n",
        as_list_item(plain),
        as_list_item(&fixture_text("vmcp-deployment.yaml")),
        as_list_item(plain),
        as_list_item(&fixture_text("vmcp-configmap.yaml")),
    );
    let output = normalize(&[], &input);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), expected_from(&input, "  "));
    // --patch still names every object, the stubbed ones included.
    let output = normalize(&["--patch"], &input);
    let names: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["name"].clone())
        .collect();
    assert_eq!(names, ["web", "demo-vmcp", "web", "demo-vmcp-vmcp-config"]);
}

/// A List in flow style is proven whole, not item by item: against the
/// whole document read again, not the one with stubs.
#[test]
fn a_flow_style_list_with_other_objects_is_edited_in_place() {
    let configmap = documents(&fixture_text("vmcp-configmap.yaml")).remove(0);
    let plain = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web", "namespace": "toolhive-system"}, "data": {"FEATURE_X": "yes"}});
    let input = format!(
        "apiVersion: v1\nitems: [{}, {}]\nkind: List\n",
        serde_json::to_string(&plain).unwrap(),
        serde_json::to_string(&configmap).unwrap()
    );
    let output = normalize(&[], &input);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = documents(&stdout(&output)).remove(0);
    assert_eq!(out["items"][0], plain);
    assert_eq!(out["items"][1]["data"]["config.yaml"], expected_config());
    assert!(stdout(&output).starts_with("apiVersion: v1\nitems: [{"));
}

#[test]
fn json_is_edited_in_place_and_stays_json() {
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            documents(&fixture_text("vmcp-configmap.yaml")).remove(0),
            documents(&fixture_text("vmcp-deployment.yaml")).remove(0),
        ],
    });
    // kubectl's layout: four spaces.
    let four_spaces = |value: &Value| {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(value, &mut serializer).unwrap();
        String::from_utf8(out).unwrap() + "\n"
    };
    let output = normalize(&[], &four_spaces(&list));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut expected = list.clone();
    expected["items"][0]["data"]["config.yaml"] = expected_config();
    expected["items"][0]["metadata"]["annotations"]["toolhive.stacklok.dev/content-checksum"] =
        NEW_CHECKSUM.into();
    expected["items"][1]["spec"]["template"]["metadata"]["annotations"]["toolhive.stacklok.dev/runconfig-checksum"] =
        NEW_CHECKSUM.into();
    assert_eq!(stdout(&output), four_spaces(&expected));
}

#[test]
fn a_deployment_without_its_configmap_is_left_and_says_so() {
    let deployment = fixture_text("vmcp-deployment.yaml");
    let output = normalize(&[], &deployment);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), deployment);
    assert!(
        stderr(&output).contains(
            "Deployment toolhive-system/demo-vmcp: runconfig-checksum left as read: its ConfigMap demo-vmcp-vmcp-config is not in the input"
        ),
        "{}",
        stderr(&output)
    );

    // In another namespace, the same name is another ConfigMap.
    let elsewhere = fixture_text("vmcp-configmap.yaml")
        .replace("namespace: toolhive-system", "namespace: elsewhere");
    let output = normalize(&["--check"], &format!("{elsewhere}---\n{deployment}"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        !stdout(&output).contains("Deployment"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn could_not_normalize_exits_3_before_would_change() {
    let unreadable = ISSUE_EXAMPLE.replace("    name: demo\n", "    name: [demo\n");
    let input = format!("{unreadable}---\n{}", fixture_text("vmcp-configmap.yaml"));
    let output = normalize(&["--check"], &input);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("ConfigMap toolhive-system/demo-vmcp-vmcp-config would change"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output)
            .contains("ConfigMap team-a/demo-vmcp-config: left unchanged (invalid_yaml)"),
        "{}",
        stderr(&output)
    );
    // Written out, the unreadable one is left as read and the rest normalized.
    let output = normalize(&[], &input);
    assert_eq!(output.status.code(), Some(3));
    let out = stdout(&output);
    assert!(out.starts_with(&unreadable), "{out}");
    assert_eq!(documents(&out)[1]["data"]["config.yaml"], expected_config());
}

#[test]
fn help_documents_every_exit_code() {
    let output = Command::new(BIN)
        .args(["normalize", "--help"])
        .output()
        .unwrap();
    let help = stdout(&output);
    for code in ["0  ", "1  --check", "2  ", "3  "] {
        assert!(help.contains(&format!("\n  {code}")), "{code}: {help}");
    }
}

/// The README's `normalize` examples run as written from the repository
/// root (with the built binary for `cargo run --`, and without what is piped
/// after it, `jq`); examples that need a cluster (`kubectl`) are left out.
#[test]
fn the_readme_examples_run_as_written() {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let examples: Vec<&str> = readme
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("cargo run -- normalize"))
        .collect();
    assert!(examples.len() >= 2, "{examples:?}");
    for example in examples {
        let command = example
            .split(" #")
            .next()
            .and_then(|command| command.split(" |").next())
            .unwrap()
            .replacen("cargo run --", BIN, 1);
        let output = Command::new("sh")
            .args(["-c", &command])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{example}: {:?} {}",
            output.status,
            stderr(&output)
        );
    }
}

/// When a ConfigMap's change cannot be written in place (here its
/// `config.yaml` carries an anchor, which is left alone), its Deployment
/// keeps its checksum too: both stay as read.
#[test]
fn a_deployment_does_not_follow_a_configmap_change_that_was_not_written() {
    let configmap = fixture_text("vmcp-configmap.yaml")
        .replace("  config.yaml: |\n", "  config.yaml: &config |\n");
    let input = format!("{configmap}---\n{}", fixture_text("vmcp-deployment.yaml"));
    let output = normalize(&[], &input);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(stdout(&output), input);
    let warnings = stderr(&output);
    assert!(
        warnings.contains("ConfigMap toolhive-system/demo-vmcp-vmcp-config: left as read"),
        "{warnings}"
    );
    assert!(
        warnings.contains(
            "Deployment toolhive-system/demo-vmcp: left as read (runconfig-checksum 9ba036ba5342 -> 32cf106c9df1): its ConfigMap's change could not be written"
        ),
        "{warnings}"
    );
}

/// `kubectl apply` leaves the applied object, in the producer's order, in an
/// annotation the checksum covers: offline as live, both copies are put in
/// canonical form, so two orders of one set give one file.
#[test]
fn kubectl_applied_configmaps_in_any_order_give_one_file() {
    let applied = |first: &str, second: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x-vmcp-config\n  labels:\n    toolhive.stacklok.io/component: vmcp-config\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {{\"apiVersion\":\"v1\",\"data\":{{\"config.yaml\":\"backends:\\n- name: {first}\\n- name: {second}\\n\"}},\"kind\":\"ConfigMap\",\"metadata\":{{\"annotations\":{{}},\"name\":\"x-vmcp-config\"}}}}\n    toolhive.stacklok.dev/content-checksum: \"0\"\ndata:\n  config.yaml: |\n    backends:\n    - name: {first}\n    - name: {second}\n"
        )
    };
    let one = normalize(&[], &applied("b", "a"));
    let other = normalize(&[], &applied("a", "b"));
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    assert_eq!(other.status.code(), Some(0), "{}", stderr(&other));
    assert_eq!(stdout(&one), stdout(&other));
    let object = &documents(&stdout(&one))[0];
    let copy: Value = serde_json::from_str(
        object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        copy["data"]["config.yaml"],
        "backends:\n- name: a\n- name: b\n"
    );
    assert_eq!(
        object["data"]["config.yaml"],
        "backends:\n- name: a\n- name: b\n"
    );
}
