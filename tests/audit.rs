//! `vmcp-normalizer audit`, the real binary, against the in-process API
//! server stand-in (HTTPS on loopback, reached through a kubeconfig): what
//! it reports, what it asks the API server for, and that every failure to
//! read is an error with no report.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::apiserver::{self, ApiServer, Fault};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_vmcp-normalizer");
const OLD_CHECKSUM: &str = "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48";
const NEW_CHECKSUM: &str = "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee";
const CONFIGMAP_SELECTOR: &str = "toolhive.stacklok.io/component=vmcp-config";
const DEPLOYMENT_SELECTOR: &str =
    "app.kubernetes.io/name=virtualmcpserver,app.kubernetes.io/instance";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture ConfigMap (buggy order, or normalized) as `<vmcp>-vmcp-config`
/// in `namespace`; neither the name nor the namespace is in the checksum.
fn configmap(namespace: &str, vmcp: &str, normalized: bool) -> Value {
    let mut configmap = fixture(if normalized {
        "vmcp-configmap.normalized.yaml"
    } else {
        "vmcp-configmap.yaml"
    });
    configmap["metadata"]["namespace"] = json!(namespace);
    configmap["metadata"]["name"] = json!(format!("{vmcp}-vmcp-config"));
    configmap
}

/// The fixture Deployment `vmcp` in `namespace`, mounting its ConfigMap, its
/// pod template carrying `checksum`.
fn deployment(namespace: &str, vmcp: &str, checksum: &str) -> Value {
    let mut deployment = fixture("vmcp-deployment.yaml");
    deployment["metadata"]["namespace"] = json!(namespace);
    deployment["metadata"]["name"] = json!(vmcp);
    deployment["spec"]["template"]["metadata"]["annotations"]["toolhive.stacklok.dev/runconfig-checksum"] =
        json!(checksum);
    let volumes = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array_mut()
        .unwrap();
    for volume in volumes {
        if volume["name"] == "vmcp-config" {
            volume["configMap"]["name"] = json!(format!("{vmcp}-vmcp-config"));
        }
    }
    deployment
}

fn plain_configmap(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"namespace": namespace, "name": name, "labels": {"app": "web"}},
           "data": {"FEATURE_X": "yes"}})
}

/// A stand-in and a kubeconfig for it, in a directory that also serves as
/// `HOME` (so no real `~/.kube/config` is read).
struct Cluster {
    api: ApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn cluster() -> Cluster {
    let api = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path());
    Cluster {
        api,
        dir,
        kubeconfig,
    }
}

impl Cluster {
    /// Run `audit --kubeconfig <stand-in> args...`.
    async fn audit(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--kubeconfig".to_owned(),
            self.kubeconfig.display().to_string(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        self.run(all, Vec::new()).await
    }

    /// Run `audit args...` with only `env` pointing at a cluster.
    async fn run(&self, args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
        let home = self.dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let output = Command::new(BIN)
                .arg("audit")
                .args(&args)
                .env_clear()
                .env("HOME", home)
                .envs(env)
                .output()
                .unwrap();
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "audit took {:?}",
                started.elapsed()
            );
            output
        })
        .await
        .unwrap()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The table's rows (not the header or the summary) as (namespace, kind,
/// name, finding code).
fn rows(table: &str) -> Vec<(String, String, String, String)> {
    table
        .lines()
        .skip(1)
        .filter(|line| !line.starts_with("all canonical") && !line.starts_with("not canonical"))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let code = cells[3].trim_end_matches(':').to_owned();
            (
                cells[0].to_owned(),
                cells[1].to_owned(),
                cells[2].to_owned(),
                code,
            )
        })
        .collect()
}

fn row(namespace: &str, kind: &str, name: &str, code: &str) -> (String, String, String, String) {
    (
        namespace.to_owned(),
        kind.to_owned(),
        name.to_owned(),
        code.to_owned(),
    )
}

/// A failed read: exit 2, the cause on stderr, nothing on stdout.
fn assert_failed_without_report(output: &Output, cause: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert_eq!(stdout(output), "", "a report was written: {err}");
    assert!(err.contains(cause), "{cause:?} not in: {err}");
    assert!(
        err.contains("the audit is incomplete; no report was written"),
        "{err}"
    );
}

const CONFIGMAPS_ALL: &str = "/api/v1/configmaps";
const DEPLOYMENTS_ALL: &str = "/apis/apps/v1/deployments";

fn configmaps_in(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps")
}

fn deployments_in(namespace: &str) -> String {
    format!("/apis/apps/v1/namespaces/{namespace}/deployments")
}

fn replicasets_in(namespace: &str) -> String {
    format!("/apis/apps/v1/namespaces/{namespace}/replicasets")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_namespace_is_listed_with_label_selectors_and_reported_as_a_table() {
    let cluster = cluster().await;
    let api = &cluster.api;
    api.insert(configmap("toolhive-system", "demo-vmcp", false));
    api.insert(deployment("toolhive-system", "demo-vmcp", OLD_CHECKSUM));
    api.insert(plain_configmap("toolhive-system", "web"));
    // Another namespace, out of order too: not in scope.
    api.insert(configmap("team-a", "other", false));

    let output = cluster.audit(&["-n", "toolhive-system"]).await;
    let table = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{table}{}", stderr(&output));
    assert!(
        table.starts_with("NAMESPACE         KIND         NAME                    FINDING\n"),
        "{table}"
    );
    assert_eq!(
        rows(&table),
        [
            row(
                "toolhive-system",
                "ConfigMap",
                "demo-vmcp-vmcp-config",
                "backends_order"
            ),
            row(
                "toolhive-system",
                "ConfigMap",
                "demo-vmcp-vmcp-config",
                "content_checksum_wrong"
            ),
            row(
                "toolhive-system",
                "Deployment",
                "demo-vmcp",
                "runconfig_checksum_stale"
            ),
        ]
    );
    assert!(
        table.contains("backends_order: sorted 5 backends by name in config.yaml; only the order of: config.yaml: backends\n"),
        "{table}"
    );
    assert!(
        table.contains(
            "runconfig-checksum 9ba036ba5342 -> 32cf106c9df1 (ConfigMap demo-vmcp-vmcp-config)"
        ),
        "{table}"
    );
    assert!(
        table.ends_with(
            "not canonical: 2 objects would change, 0 cannot be normalized, of 1 vMCP ConfigMaps and 1 vMCP Deployments in namespace toolhive-system\n"
        ),
        "{table}"
    );

    // Exactly three namespaced lists, each with its label selector and a
    // limit: the vMCP objects, and the vMCP Deployment's ReplicaSets.
    let paths: Vec<String> = api.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            configmaps_in("toolhive-system"),
            deployments_in("toolhive-system"),
            replicasets_in("toolhive-system"),
        ]
    );
    let configmaps = api.list_queries(&configmaps_in("toolhive-system"));
    assert_eq!(configmaps[0]["labelSelector"], CONFIGMAP_SELECTOR);
    assert_eq!(configmaps[0]["limit"], "500");
    assert!(!configmaps[0].contains_key("continue"));
    let deployments = api.list_queries(&deployments_in("toolhive-system"));
    assert_eq!(deployments[0]["labelSelector"], DEPLOYMENT_SELECTOR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_namespaces_are_read_page_by_page_and_reported_as_json() {
    let cluster = cluster().await;
    let api = &cluster.api;
    // 7 vMCP ConfigMaps over 7 namespaces: 3 buggy, 4 canonical, each with
    // its Deployment (the buggy ones stale), and unlabelled ConfigMaps that
    // the selector keeps off the wire.
    for i in 0..7 {
        let namespace = format!("ns-{i}");
        let buggy = i % 2 == 0 && i < 6;
        api.insert(configmap(&namespace, "vmcp", !buggy));
        api.insert(deployment(
            &namespace,
            "vmcp",
            if buggy { OLD_CHECKSUM } else { NEW_CHECKSUM },
        ));
        api.insert(plain_configmap(&namespace, "web"));
    }

    let output = cluster
        .audit(&["-A", "--chunk-size", "2", "-o", "json"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        report["scope"],
        json!({"allNamespaces": true, "namespace": null})
    );
    assert_eq!(
        report["scanned"],
        json!({"configMaps": 7, "deployments": 7})
    );
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 9, "{report:#}");
    assert_eq!(
        findings[0],
        json!({
            "namespace": "ns-0",
            "kind": "ConfigMap",
            "name": "vmcp-vmcp-config",
            "finding": "backends_order",
            "effect": "would_change",
            "reason": null,
            "detail": "sorted 5 backends by name in config.yaml; only the order of: config.yaml: backends",
            "paths": ["config.yaml: backends"],
            "rule": "toolhive-vmcp",
            "mode": "mutate",
        })
    );
    let named: Vec<(&str, &str, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["namespace"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
                f["finding"].as_str().unwrap(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for namespace in ["ns-0", "ns-2", "ns-4"] {
        expected.push((namespace, "ConfigMap", "backends_order"));
        expected.push((namespace, "ConfigMap", "content_checksum_wrong"));
    }
    for namespace in ["ns-0", "ns-2", "ns-4"] {
        expected.push((namespace, "Deployment", "runconfig_checksum_stale"));
    }
    assert_eq!(named, expected);

    // Cluster-wide paths, 4 pages of 2 ConfigMaps each following the last
    // page's continue token, the selector on every page.
    let queries = api.list_queries(CONFIGMAPS_ALL);
    assert_eq!(queries.len(), 4, "{queries:?}");
    assert!(!queries[0].contains_key("continue"));
    for query in &queries {
        assert_eq!(query["labelSelector"], CONFIGMAP_SELECTOR);
        assert_eq!(query["limit"], "2");
    }
    for page in 1..4 {
        assert!(!queries[page]["continue"].is_empty());
        assert_ne!(
            queries[page].get("continue"),
            queries[page - 1].get("continue")
        );
    }
    assert_eq!(api.list_queries(DEPLOYMENTS_ALL).len(), 4);
    // And each Deployment's ReplicaSets, in its own namespace.
    let mut replicasets: Vec<String> = api
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .filter(|path| path != CONFIGMAPS_ALL && path != DEPLOYMENTS_ALL)
        .collect();
    replicasets.sort();
    assert_eq!(
        replicasets,
        (0..7)
            .map(|i| replicasets_in(&format!("ns-{i}")))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canonical_cluster_exits_0_and_says_so() {
    let cluster = cluster().await;
    cluster.api.insert(configmap("default", "demo", true));
    cluster
        .api
        .insert(deployment("default", "demo", NEW_CHECKSUM));
    let output = cluster.audit(&[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "all canonical: 1 vMCP ConfigMaps and 1 vMCP Deployments in namespace default\n"
    );
    assert_eq!(stderr(&output), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_defaults_to_the_contexts_and_kubeconfig_comes_from_the_environment() {
    let cluster = cluster().await;
    let kubeconfig = cluster
        .api
        .kubeconfig()
        .replace("    namespace: default\n", "    namespace: team-b\n");
    let path = cluster.dir.path().join("team-b.kubeconfig");
    std::fs::write(&path, kubeconfig).unwrap();
    cluster.api.insert(configmap("team-b", "demo", false));

    let output = cluster
        .run(Vec::new(), vec![("KUBECONFIG", path.display().to_string())])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(cluster.api.count("GET", &configmaps_in("team-b")), 1);
    assert_eq!(cluster.api.count("GET", &deployments_in("team-b")), 1);

    // A context the kubeconfig does not have is an error, not a guess.
    let output = cluster
        .run(
            vec!["--context".into(), "nowhere".into()],
            vec![("KUBECONFIG", path.display().to_string())],
        )
        .await;
    assert_failed_without_report(&output, "nowhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_normalized_is_listed_with_the_cores_reason_and_exits_3() {
    let cluster = cluster().await;
    let api = &cluster.api;
    let mut unreadable = configmap("ns", "broken", false);
    unreadable["data"]["config.yaml"] = json!("backends: [a\n");
    api.insert(unreadable);
    api.insert(deployment("ns", "broken", OLD_CHECKSUM));
    // Its ConfigMap was never created.
    api.insert(deployment("ns", "orphan", OLD_CHECKSUM));
    // Mounts a ConfigMap without the vmcp-config label: not listed by the
    // selector, read by name, and the core says why it cannot follow it.
    let mut unlabelled = configmap("ns", "unlabelled", true);
    unlabelled["metadata"]["labels"] = json!({"app": "web"});
    api.insert(unlabelled);
    api.insert(deployment("ns", "unlabelled", NEW_CHECKSUM));
    // And one that would only change: 3 wins over 1.
    api.insert(configmap("ns", "buggy", false));

    let output = cluster.audit(&["-n", "ns", "-o", "json"]).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let findings: Vec<(&str, &str, &str, &str, Value)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap(),
                f["name"].as_str().unwrap(),
                f["finding"].as_str().unwrap(),
                f["effect"].as_str().unwrap(),
                f["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            (
                "ConfigMap",
                "broken-vmcp-config",
                "refused",
                "cannot_normalize",
                json!("invalid_yaml")
            ),
            (
                "ConfigMap",
                "buggy-vmcp-config",
                "backends_order",
                "would_change",
                Value::Null
            ),
            (
                "ConfigMap",
                "buggy-vmcp-config",
                "content_checksum_wrong",
                "would_change",
                Value::Null
            ),
            (
                "Deployment",
                "broken",
                "unsynced",
                "cannot_normalize",
                json!("configmap_refused")
            ),
            (
                "Deployment",
                "orphan",
                "configmap_missing",
                "cannot_normalize",
                Value::Null
            ),
            (
                "Deployment",
                "unlabelled",
                "unsynced",
                "cannot_normalize",
                json!("configmap_not_vmcp")
            ),
        ]
    );
    assert_eq!(
        report["scanned"],
        json!({"configMaps": 2, "deployments": 3})
    );
    let missing = &report["findings"][4]["detail"];
    assert_eq!(
        missing,
        "its ConfigMap orphan-vmcp-config does not exist in namespace ns"
    );
    // The two ConfigMaps not in the labelled list were read by name.
    let by_name: Vec<String> = api
        .list_queries(&configmaps_in("ns"))
        .iter()
        .filter_map(|q| q.get("fieldSelector").cloned())
        .collect();
    assert_eq!(
        by_name,
        [
            "metadata.name=orphan-vmcp-config",
            "metadata.name=unlabelled-vmcp-config"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_is_an_error_naming_the_permission() {
    let cluster = cluster().await;
    cluster.api.insert(configmap("default", "demo", true));
    let path = configmaps_in("default");
    // RBAC's answer to a list, word for word.
    let forbidden = apiserver::status(
        403,
        "Forbidden",
        &format!(
            "configmaps is forbidden: User \"{}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"",
            apiserver::USER
        ),
        Some(json!({"kind": "configmaps"})),
    );
    cluster.api.fail("GET", &path, Fault::Status(forbidden));
    let output = cluster.audit(&["-n", "default"]).await;
    assert_failed_without_report(
        &output,
        "listing configmaps in namespace default (page 1): not allowed (HTTP 403): configmaps is forbidden: User \"system:serviceaccount:vmcp-normalizer:vmcp-normalizer\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"",
    );
    // Nothing more was asked once the first list failed.
    assert_eq!(cluster.api.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_is_an_error() {
    let cluster = cluster().await;
    cluster.api.insert(configmap("default", "demo", false));
    let path = deployments_in("default");
    cluster.api.fail(
        "GET",
        &path,
        Fault::Status(apiserver::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )),
    );
    // JSON too: no document at all, not one with fewer findings.
    let output = cluster.audit(&["-o", "json"]).await;
    assert_failed_without_report(
        &output,
        "listing deployments.apps in namespace default (page 1): not found (HTTP 404): the server could not find the requested resource",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continue_token_is_an_error_not_a_shorter_list() {
    let cluster = cluster().await;
    for i in 0..3 {
        cluster
            .api
            .insert(configmap("default", &format!("v{i}"), true));
    }
    cluster.api.fail_continued(
        &configmaps_in("default"),
        Fault::Status(apiserver::expired()),
        false,
    );
    let output = cluster.audit(&["--chunk-size", "2"]).await;
    assert_failed_without_report(
        &output,
        "listing configmaps in namespace default (page 2): the API server no longer serves this list's continuation (HTTP 410 Gone): The provided continue parameter is too old",
    );
    assert_eq!(cluster.api.list_queries(&configmaps_in("default")).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_first_page_writes_no_report() {
    let cluster = cluster().await;
    // Page 1 holds nothing to report: a report now would claim "all canonical".
    for i in 0..3 {
        cluster
            .api
            .insert(configmap("default", &format!("v{i}"), i < 2));
    }
    cluster.api.fail_continued(
        &configmaps_in("default"),
        Fault::Status(apiserver::internal_error("etcdserver: request timed out")),
        true,
    );
    for format in ["table", "json"] {
        cluster.api.fail_continued(
            &configmaps_in("default"),
            Fault::Status(apiserver::internal_error("etcdserver: request timed out")),
            true,
        );
        let output = cluster.audit(&["--chunk-size", "2", "-o", format]).await;
        assert_failed_without_report(
            &output,
            "listing configmaps in namespace default (page 2): the API server answered HTTP 500: Internal error occurred: etcdserver: request timed out",
        );
    }
    // Read whole, page 2 holds a finding.
    let output = cluster.audit(&["--chunk-size", "2"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_with_a_clear_error() {
    let cluster = cluster().await;
    cluster.api.insert(configmap("default", "demo", true));
    cluster
        .api
        .fail("GET", &deployments_in("default"), Fault::Hang);
    let started = Instant::now();
    let output = cluster.audit(&["--request-timeout", "1s"]).await;
    assert_failed_without_report(
        &output,
        "listing deployments.apps in namespace default (page 1): no answer from the API server within 1s (--request-timeout)",
    );
    // Loose: the deadline is 1 s, not the 30 s default.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cluster_configured_is_an_error() {
    let cluster = cluster().await;
    let output = cluster.run(Vec::new(), Vec::new()).await;
    assert_failed_without_report(&output, "no cluster to read");
    let output = cluster
        .run(
            vec!["--kubeconfig".into(), "/nonexistent/kubeconfig".into()],
            Vec::new(),
        )
        .await;
    assert_failed_without_report(&output, "cannot load kubeconfig /nonexistent/kubeconfig");
    assert!(cluster.api.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_and_an_unreachable_server_are_errors() {
    let cluster = cluster().await;
    let wrong_token = cluster.dir.path().join("wrong-token");
    std::fs::write(
        &wrong_token,
        cluster
            .api
            .kubeconfig()
            .replace(apiserver::TOKEN, "not-the-token"),
    )
    .unwrap();
    let output = cluster
        .run(
            vec!["--kubeconfig".into(), wrong_token.display().to_string()],
            Vec::new(),
        )
        .await;
    assert_failed_without_report(
        &output,
        "listing configmaps in namespace default (page 1): not allowed (HTTP 401): Unauthorized",
    );

    // A stand-in that has stopped: nothing listens on its port any more.
    let gone = ApiServer::start().await;
    let dir = cluster.dir.path().join("gone");
    std::fs::create_dir(&dir).unwrap();
    let kubeconfig = gone.write_kubeconfig(&dir);
    drop(gone);
    let output = cluster
        .run(
            vec!["--kubeconfig".into(), kubeconfig.display().to_string()],
            Vec::new(),
        )
        .await;
    assert_failed_without_report(
        &output,
        "listing configmaps in namespace default (page 1): cannot reach the API server",
    );
}

#[test]
fn help_documents_every_exit_code_and_the_flags() {
    let output = Command::new(BIN)
        .args(["audit", "--help"])
        .output()
        .unwrap();
    let help = stdout(&output);
    for code in ["0  ", "1  ", "2  ", "3  "] {
        assert!(help.contains(&format!("\n  {code}")), "{code}: {help}");
    }
    for flag in [
        "--kubeconfig",
        "--context",
        "-n, --namespace",
        "-A, --all-namespaces",
        "-o, --output",
        "--chunk-size",
        "--request-timeout",
        "--rules <FILE>",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    let output = Command::new(BIN)
        .args(["audit", "-n", "a", "-A"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// The README's code blocks after `heading`, up to the next `## ` heading.
fn readme_blocks(heading: &str, language: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let start = readme.find(heading).expect("the README section");
    let section = &readme[start..];
    let end = section[heading.len()..]
        .find("\n## ")
        .map_or(section.len(), |end| end + heading.len());
    section[..end]
        .split(&format!("```{language}\n"))
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_owned())
        .collect()
}

/// The README's JSON example is what the binary prints for the fixture
/// (its one finding is the first of two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_json_example_is_real_output() {
    let cluster = cluster().await;
    cluster.api.insert(fixture("vmcp-configmap.yaml"));
    cluster
        .api
        .insert(deployment("toolhive-system", "demo-vmcp", NEW_CHECKSUM));
    let output = cluster
        .audit(&["-n", "toolhive-system", "-o", "json"])
        .await;
    let mut report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    report["findings"].as_array_mut().unwrap().truncate(1);
    let blocks = readme_blocks("## Audit a live cluster", "json");
    let example: Value = serde_json::from_str(&blocks[0]).unwrap();
    assert_eq!(report, example);
    // And the keys come in the documented order.
    let text = stdout(&output);
    let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap();
    assert!(
        at("scope") < at("scanned") && at("scanned") < at("findings"),
        "{text}"
    );
}

/// The README's RBAC examples grant `list` on exactly the four resources
/// the audit reads (ReplicaSets and ControllerRevisions for the rollout
/// history), and bind it.
#[test]
fn the_readme_rbac_examples_grant_what_audit_lists() {
    let blocks = readme_blocks("### RBAC for `audit`", "yaml");
    assert_eq!(blocks.len(), 2);
    for (block, (role, binding)) in blocks.iter().zip([
        ("ClusterRole", "ClusterRoleBinding"),
        ("Role", "RoleBinding"),
    ]) {
        let documents = vmcp_normalizer::manifest::parse_manifest(block)
            .unwrap()
            .documents;
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[0]["kind"], role);
        assert_eq!(
            documents[0]["rules"],
            json!([
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
                {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "controllerrevisions"], "verbs": ["list"]},
            ])
        );
        assert_eq!(documents[1]["kind"], binding);
        assert_eq!(documents[1]["roleRef"]["kind"], role);
        assert_eq!(
            documents[1]["roleRef"]["name"],
            documents[0]["metadata"]["name"]
        );
        assert_eq!(
            documents[1]["metadata"]["namespace"],
            documents[0]["metadata"]["namespace"]
        );
    }
}

// ---- `--rules`: declared sets, workload links, rollout history ----------

/// Three rules: a ConfigMap set with a checksum and a workload link, a
/// warn-only JSON set whose selector also lists the first rule's
/// ConfigMaps, and a set in a custom resource found by discovery.
const RULES: &str = r#"apiVersion: vmcp-normalizer.io/v1alpha1
kind: NormalizationRules
rules:
  - name: gateway-upstreams
    match:
      kind: ConfigMap
      selector: {matchLabels: {app.kubernetes.io/name: gateway}}
    key: gateway.yaml
    format: yaml
    sets: [{path: "routes[*].upstreams", by: name}]
    checksum: {annotation: example.com/config-sha256, algorithm: sha256}
    workload:
      kind: Deployment
      selector: {matchLabels: {app.kubernetes.io/name: gateway}}
      annotation: example.com/config-sha256
      configMap: {nameTemplate: "{name}-gateway"}
  - name: hosts-warn
    mode: warn
    match:
      kind: ConfigMap
      selector:
        matchExpressions:
          - {key: app.kubernetes.io/name, operator: In, values: [gateway, egress]}
    key: hosts.json
    format: json
    sets: [{path: allowed, by: .}]
  - name: listener-sets
    match: {apiVersion: example.com/v1, kind: ListenerSet}
    format: object
    sets: [{path: spec.listeners, by: name}]
"#;

/// `hashlib.sha256` of the canonical gateway.yaml (tests/rules.rs).
const GATEWAY_SHA256: &str = "834bea27d21089a09e7fcc38af2a97b646e58412fa4df2242777fc1692543ed8";
const CANONICAL_GATEWAY: &str = "routes:\n    - path: /api\n      upstreams:\n        # the canary\n        - name: alpha\n          url: http://alpha:8080\n          weight: 10\n        - name: zeta\n          url: http://zeta:8080\n      middleware:\n        - auth\n        - ratelimit\n    - path: /static\n      upstreams:\n        - name: cdn-a\n        - name: cdn-b\n";

fn fixture_documents(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut documents = Vec::new();
    vmcp_normalizer::manifest::for_each_document(&text, |_, value, _| documents.push(value))
        .unwrap();
    documents
}

/// A Deployment of the gateway whose pod template carries `checksum`.
fn gateway_deployment(name: &str, checksum: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"namespace": "demo", "name": name, "uid": format!("uid-{name}"),
                     "labels": {"app.kubernetes.io/name": "gateway"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name},
                             "annotations": {"example.com/config-sha256": checksum}},
                "spec": {"containers": [{"name": "gateway", "image": "gateway:1"}]},
            },
        },
    })
}

impl Cluster {
    /// Write `rules` into the cluster's directory and return its path.
    fn rules_file(&self, rules: &str) -> String {
        let path = self.dir.path().join("rules.yaml");
        std::fs::write(&path, rules).unwrap();
        path.display().to_string()
    }
}

/// The JSON report's findings as (kind, name, finding, effect, rule, mode).
fn named_findings(report: &Value) -> Vec<[String; 6]> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            ["kind", "name", "finding", "effect", "rule", "mode"]
                .map(|key| f[key].as_str().unwrap_or("-").to_owned())
        })
        .collect()
}

fn finding(fields: [&str; 6]) -> [String; 6] {
    fields.map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_judge_each_object_once_by_its_first_matching_rule() {
    let cluster = cluster().await;
    let api = &cluster.api;
    let configmaps = fixture_documents("rules/configmaps.yaml");
    // Out of order in gateway.yaml and in hosts.json: only its first
    // rule's set (gateway.yaml) is judged, as the webhook would.
    let mut edge = configmaps[0].clone();
    edge["data"]["hosts.json"] = json!("{\"allowed\": [\"z\", \"a\"]}");
    api.insert(edge);
    let mut west = configmaps[0].clone();
    west["metadata"]["name"] = json!("west-gateway");
    west["data"]["gateway.yaml"] = json!(CANONICAL_GATEWAY);
    west["metadata"]["annotations"]["example.com/config-sha256"] = json!(GATEWAY_SHA256);
    api.insert(west);
    api.insert(configmaps[1].clone());
    api.insert(plain_configmap("demo", "web"));
    let listeners = fixture_documents("rules/listenerset.yaml").remove(0);
    let mut in_order = listeners.clone();
    in_order["metadata"]["name"] = json!("internal");
    in_order["spec"]["listeners"] = json!([{"name": "a"}, {"name": "b"}]);
    api.insert(listeners);
    api.insert(in_order);
    api.insert(gateway_deployment("edge", "stale"));
    api.insert(gateway_deployment("west", GATEWAY_SHA256));

    let rules = cluster.rules_file(RULES);
    let output = cluster
        .audit(&["-n", "demo", "--rules", &rules, "-o", "json"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        named_findings(&report),
        [
            finding([
                "ConfigMap",
                "edge-gateway",
                "set_order",
                "would_change",
                "gateway-upstreams",
                "mutate"
            ]),
            finding([
                "ConfigMap",
                "edge-gateway",
                "checksum_wrong",
                "would_change",
                "gateway-upstreams",
                "mutate"
            ]),
            finding([
                "ConfigMap",
                "egress",
                "set_order",
                "note",
                "hosts-warn",
                "warn"
            ]),
            finding([
                "ListenerSet",
                "public",
                "set_order",
                "would_change",
                "listener-sets",
                "mutate"
            ]),
            finding([
                "Deployment",
                "edge",
                "workload_checksum_stale",
                "would_change",
                "gateway-upstreams",
                "mutate"
            ]),
        ]
    );
    let findings = &report["findings"];
    assert_eq!(
        findings[0]["paths"],
        json!(["gateway.yaml: routes[*].upstreams"])
    );
    assert_eq!(
        findings[0]["detail"],
        "sorted 4 items of routes[*].upstreams by name in gateway.yaml; only the order of: gateway.yaml: routes[*].upstreams"
    );
    assert_eq!(
        findings[1]["detail"],
        "example.com/config-sha256 stale -> 834bea27d210"
    );
    assert_eq!(findings[2]["paths"], json!(["hosts.json: allowed"]));
    assert!(
        findings[2]["detail"]
            .as_str()
            .unwrap()
            .starts_with("rule hosts-warn (warn only): sorted 3 items of allowed"),
        "{}",
        findings[2]
    );
    assert_eq!(findings[3]["paths"], json!(["spec.listeners"]));
    assert_eq!(
        findings[4]["detail"],
        "example.com/config-sha256 stale -> 834bea27d210 (ConfigMap edge-gateway)"
    );
    assert_eq!(
        report["scanned"],
        json!({"configMaps": 3, "deployments": 2, "otherObjects": 2})
    );

    // Each rule's selector went to the server; the custom kind's resource
    // came from discovery, read once.
    let selectors = |path: &str| -> Vec<String> {
        api.list_queries(path)
            .iter()
            .map(|q| q.get("labelSelector").cloned().unwrap_or_default())
            .collect()
    };
    assert_eq!(
        selectors(&configmaps_in("demo")),
        [
            "app.kubernetes.io/name=gateway",
            "app.kubernetes.io/name in (gateway,egress)"
        ]
    );
    assert_eq!(
        selectors(&deployments_in("demo")),
        ["app.kubernetes.io/name=gateway"]
    );
    assert_eq!(
        selectors("/apis/example.com/v1/namespaces/demo/listenersets"),
        [""]
    );
    assert_eq!(api.count("GET", "/apis/example.com/v1"), 1);
    assert_eq!(
        selectors("/apis/apps/v1/namespaces/demo/replicasets"),
        ["app=edge", "app=west"]
    );

    // The table says which rule warns.
    let output = cluster.audit(&["-n", "demo", "--rules", &rules]).await;
    let table = stdout(&output);
    assert!(
        table.contains("set_order: rule hosts-warn (warn only): sorted 3 items of allowed"),
        "{table}"
    );
    assert!(
        table.ends_with("not canonical: 3 objects would change, 0 cannot be normalized, of 3 ConfigMaps, 2 Deployments and 2 other objects the rules match in namespace demo\n"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_server_does_not_know_is_an_error_before_any_list() {
    let cluster = cluster().await;
    cluster.api.insert(configmap("default", "demo", false));
    for (rules, message) in [
        (
            RULES.replace("kind: ListenerSet", "kind: Gateway"),
            "rule listener-sets: the API server serves no kind Gateway in example.com/v1",
        ),
        (
            RULES.replace("apiVersion: example.com/v1,", "apiVersion: nowhere.io/v2,"),
            "rule listener-sets: the API server serves no kind ListenerSet in nowhere.io/v2",
        ),
        (
            RULES.replace("apiVersion: example.com/v1, ", ""),
            "rule listener-sets: kind ListenerSet needs match.apiVersion",
        ),
    ] {
        let before = cluster.api.requests().len();
        let path = cluster.rules_file(&rules);
        let output = cluster.audit(&["--rules", &path]).await;
        assert_failed_without_report(&output, message);
        // Discovery only: not one list.
        let asked: Vec<String> = cluster.api.requests()[before..]
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert!(
            asked.iter().all(|path| !path.contains("/namespaces/")),
            "{asked:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rules_file_is_refused_before_any_request() {
    let cluster = cluster().await;
    let path = cluster.rules_file(
        &RULES
            .replace("by: name}]\n    checksum", "by: \"\"}]\n    checksum")
            .replace("name: hosts-warn", "name: Hosts"),
    );
    let output = cluster.audit(&["--rules", &path]).await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert_eq!(stdout(&output), "");
    // Every problem, with its position, as `rules check` writes them.
    assert!(err.contains(&format!("{path}:10:")), "{err}");
    assert!(err.contains("rules[0].sets[0].by: is empty"), "{err}");
    assert!(err.contains("rules[1].name: must be lower-case"), "{err}");
    let output = cluster.audit(&["--rules", "/nonexistent/rules.yaml"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("/nonexistent/rules.yaml: cannot read"));
    assert!(
        cluster.api.requests().is_empty(),
        "{:?}",
        cluster.api.requests()
    );
}

// ---- Rollout history ------------------------------------------------------

/// A vMCP Deployment `vmcp` with uid `uid-<vmcp>`, in step with its
/// canonical ConfigMap (inserted too).
fn vmcp_pair(api: &ApiServer, vmcp: &str) -> Value {
    api.insert(configmap("toolhive-system", vmcp, true));
    let mut deployment = deployment("toolhive-system", vmcp, NEW_CHECKSUM);
    deployment["metadata"]["uid"] = json!(format!("uid-{vmcp}"));
    api.insert(deployment.clone());
    deployment
}

/// A ReplicaSet of `deployment` (owned by `owner`) at `revision`, its pod
/// template the Deployment's changed by `edit`, with a pod-template-hash.
fn replicaset(deployment: &Value, owner: &str, revision: u32, edit: impl Fn(&mut Value)) -> Value {
    let name = format!(
        "{}-{revision}-{owner}",
        deployment["metadata"]["name"].as_str().unwrap()
    );
    let mut template = deployment["spec"]["template"].clone();
    edit(&mut template);
    template["metadata"]["labels"]["pod-template-hash"] = json!(format!("hash{revision}{owner}"));
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "namespace": "toolhive-system", "name": name,
            "labels": template["metadata"]["labels"],
            "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                 "name": deployment["metadata"]["name"], "uid": owner,
                                 "controller": true}],
        },
        "spec": {"selector": deployment["spec"]["selector"], "template": template},
    })
}

fn set_checksum(checksum: &'static str) -> impl Fn(&mut Value) {
    move |template| {
        template["metadata"]["annotations"]["toolhive.stacklok.dev/runconfig-checksum"] =
            json!(checksum);
    }
}

/// Two vMCP Deployments sharing a selector: `demo-vmcp` rolled out three
/// times, twice for its checksum alone; `churny` once for its env order
/// alone. A ReplicaSet another Deployment owns is not theirs.
fn history_cluster(api: &ApiServer) {
    let demo = vmcp_pair(api, "demo-vmcp");
    api.insert(replicaset(
        &demo,
        "uid-demo-vmcp",
        1,
        set_checksum(OLD_CHECKSUM),
    ));
    api.insert(replicaset(&demo, "uid-demo-vmcp", 2, set_checksum("aaaa")));
    api.insert(replicaset(&demo, "uid-demo-vmcp", 3, |_| {}));
    api.insert(replicaset(
        &demo,
        "uid-someone-else",
        4,
        set_checksum("bbbb"),
    ));
    let churny = vmcp_pair(api, "churny");
    api.insert(replicaset(&churny, "uid-churny", 1, |_| {}));
    api.insert(replicaset(&churny, "uid-churny", 2, |template| {
        let env = template["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap();
        env.reverse();
    }));
}

const REPLICASETS: &str = "/apis/apps/v1/namespaces/toolhive-system/replicasets";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_history_reports_checksum_only_rollouts_and_order_churn() {
    let cluster = cluster().await;
    history_cluster(&cluster.api);
    let output = cluster
        .audit(&[
            "-n",
            "toolhive-system",
            "--rules",
            "preset",
            "--chunk-size",
            "2",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{report:#}");
    assert_eq!(
        findings[0],
        json!({
            "namespace": "toolhive-system", "kind": "Deployment", "name": "churny",
            "finding": "order_churn", "effect": "note", "reason": null,
            "detail": "1 of 1 rollouts changed only the order of: spec.template.spec.containers[*].env",
            "paths": ["spec.template.spec.containers[*].env"], "count": 1,
            "rule": "toolhive-vmcp", "mode": "mutate",
        })
    );
    assert_eq!(
        findings[1],
        json!({
            "namespace": "toolhive-system", "kind": "Deployment", "name": "demo-vmcp",
            "finding": "checksum_only_rollouts", "effect": "note", "reason": null,
            "detail": "2 of 2 rollouts changed only toolhive.stacklok.dev/runconfig-checksum (ConfigMap demo-vmcp-vmcp-config)",
            "count": 2, "rule": "toolhive-vmcp", "mode": "mutate",
        })
    );
    // Each Deployment's ReplicaSets by its own selector, a page at a time.
    let queries = cluster.api.list_queries(REPLICASETS);
    assert_eq!(queries.len(), 6, "{queries:?}");
    for query in &queries {
        assert_eq!(
            query["labelSelector"],
            "app=virtualmcpserver,app.kubernetes.io/instance=demo-vmcp,app.kubernetes.io/name=virtualmcpserver,toolhive=true,toolhive-name=demo-vmcp"
        );
        assert_eq!(query["limit"], "2");
    }

    // --no-history: no ReplicaSet is asked for, and no history finding.
    let skipped = cluster
        .audit(&["-n", "toolhive-system", "--no-history", "-o", "json"])
        .await;
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let report: Value = serde_json::from_str(&stdout(&skipped)).unwrap();
    assert_eq!(report["findings"], json!([]), "{report:#}");
    assert_eq!(cluster.api.list_queries(REPLICASETS).len(), 6);
}

/// The API server's 403 for listing `resource` (in group apps) in
/// `namespace`.
fn forbidden_to_list(resource: &str, namespace: &str) -> Value {
    apiserver::status(
        403,
        "Forbidden",
        &format!(
            "{resource}.apps is forbidden: User \"{}\" cannot list resource \"{resource}\" in API group \"apps\" in the namespace \"{namespace}\"",
            apiserver::USER
        ),
        Some(json!({"group": "apps", "kind": resource})),
    )
}

/// The audit's one note when listing `resource` was forbidden.
fn history_forbidden_note(resource: &str, namespace: &str) -> String {
    format!(
        "note: rollout history was not read: listing {resource}.apps in namespace {namespace} (page 1) is forbidden; grant `list` on {resource}.apps (apiGroups: [\"apps\"], resources: [\"{resource}\"]) to report checksum_only_rollouts and order_churn\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_replicasets_leave_the_history_out_with_one_note() {
    let cluster = cluster().await;
    history_cluster(&cluster.api);
    // And something to change, so the exit status says the report stands.
    cluster
        .api
        .insert(configmap("toolhive-system", "buggy", false));
    let args = ["-n", "toolhive-system", "--rules", "preset", "-o", "json"];
    let allowed = cluster.audit(&args).await;
    assert_eq!(allowed.status.code(), Some(1), "{}", stderr(&allowed));

    let forbidden = forbidden_to_list("replicasets", "toolhive-system");
    cluster
        .api
        .fail("GET", REPLICASETS, Fault::Status(forbidden));
    let before = cluster.api.count("GET", REPLICASETS);
    let output = cluster.audit(&args).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        history_forbidden_note("replicasets", "toolhive-system")
    );
    // Asked once, not once per Deployment.
    assert_eq!(cluster.api.count("GET", REPLICASETS), before + 1);
    // The same report but for the history.
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let mut expected: Value = serde_json::from_str(&stdout(&allowed)).unwrap();
    expected["findings"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["finding"] != "order_churn" && f["finding"] != "checksum_only_rollouts");
    assert_eq!(report, expected);
    assert_eq!(report["findings"].as_array().unwrap().len(), 2);

    // Any other failure is still the audit's: no report.
    cluster.api.fail(
        "GET",
        REPLICASETS,
        Fault::Status(apiserver::internal_error("etcdserver: request timed out")),
    );
    let output = cluster.audit(&args).await;
    assert_failed_without_report(
        &output,
        "listing replicasets.apps in namespace toolhive-system (page 1): the API server answered HTTP 500",
    );
}

/// A ControllerRevision of `workload` (owned by `owner`) at `revision`, as
/// the StatefulSet and DaemonSet controllers store it: the pod template,
/// changed by `edit`, as a replacing patch in `data`, and the hash label.
fn controllerrevision(
    workload: &Value,
    owner: &str,
    revision: u64,
    edit: impl Fn(&mut Value),
) -> Value {
    let name = format!(
        "{}-{revision}-{owner}",
        workload["metadata"]["name"].as_str().unwrap()
    );
    let hash = format!("hash{revision}{owner}");
    let mut template = workload["spec"]["template"].clone();
    edit(&mut template);
    template["metadata"]["labels"]["controller-revision-hash"] = json!(hash);
    template["$patch"] = json!("replace");
    let mut labels = workload["spec"]["selector"]["matchLabels"].clone();
    labels["controller-revision-hash"] = json!(hash);
    json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {
            "namespace": workload["metadata"]["namespace"], "name": name, "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": workload["kind"],
                                 "name": workload["metadata"]["name"], "uid": owner,
                                 "controller": true}],
        },
        "data": {"spec": {"template": template}},
        "revision": revision,
    })
}

fn set_annotation(annotation: &'static str, value: &'static str) -> impl Fn(&mut Value) {
    move |template| template["metadata"]["annotations"][annotation] = json!(value)
}

const CONTROLLERREVISIONS: &str = "/apis/apps/v1/namespaces/edge/controllerrevisions";

/// The StatefulSet and DaemonSet of `tests/fixtures/rules/workloads.yaml`
/// with their ConfigMaps: the StatefulSet `cache` rolled out twice for its
/// checksum alone (and a ControllerRevision another owner has, with the
/// same labels, is not its); the DaemonSet `node-agent` once for its env
/// order alone. Returns the rules file's path.
fn revisions_cluster(cluster: &Cluster) -> String {
    let api = &cluster.api;
    let mut objects = fixture_documents("rules/workloads-objects.yaml");
    for object in &mut objects {
        object["metadata"]["uid"] = json!(format!(
            "uid-{}",
            object["metadata"]["name"].as_str().unwrap()
        ));
        api.insert(object.clone());
    }
    let cache = &objects[1];
    let peers = "example.com/peers-sha256";
    api.insert(controllerrevision(
        cache,
        "uid-cache",
        1,
        set_annotation(peers, "one"),
    ));
    api.insert(controllerrevision(
        cache,
        "uid-cache",
        2,
        set_annotation(peers, "two"),
    ));
    api.insert(controllerrevision(cache, "uid-cache", 3, |_| {}));
    api.insert(controllerrevision(
        cache,
        "uid-someone-else",
        4,
        set_annotation(peers, "four"),
    ));
    let agent = &objects[3];
    let env = |names: [&'static str; 2]| {
        move |template: &mut Value| {
            template["spec"]["containers"][0]["env"] =
                json!(names.map(|name| json!({"name": name, "value": "1"})));
        }
    };
    api.insert(controllerrevision(
        agent,
        "uid-node-agent",
        1,
        env(["A", "B"]),
    ));
    api.insert(controllerrevision(
        agent,
        "uid-node-agent",
        2,
        env(["B", "A"]),
    ));
    let rules = std::fs::read_to_string(format!(
        "{}/tests/fixtures/rules/workloads.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    cluster.rules_file(&rules)
}

/// The report's rollout-history findings.
fn history_findings(report: &Value) -> Vec<Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["finding"] == "checksum_only_rollouts" || f["finding"] == "order_churn")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_and_daemonset_history_comes_from_controllerrevisions() {
    let cluster = cluster().await;
    let rules = revisions_cluster(&cluster);
    let args = [
        "-n",
        "edge",
        "--rules",
        &rules,
        "--chunk-size",
        "2",
        "-o",
        "json",
    ];
    let output = cluster.audit(&args).await;
    // Exit 1: the fixture ConfigMaps and checksums are out of step.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        history_findings(&report),
        [
            json!({
                "namespace": "edge", "kind": "StatefulSet", "name": "cache",
                "finding": "checksum_only_rollouts", "effect": "note", "reason": null,
                "detail": "2 of 2 rollouts changed only example.com/peers-sha256 (ConfigMap cache-peers)",
                "count": 2, "rule": "cache-peers", "mode": "mutate",
            }),
            json!({
                "namespace": "edge", "kind": "DaemonSet", "name": "node-agent",
                "finding": "order_churn", "effect": "note", "reason": null,
                "detail": "1 of 1 rollouts changed only the order of: spec.template.spec.containers[*].env",
                "paths": ["spec.template.spec.containers[*].env"], "count": 1,
                "rule": "agent-hosts", "mode": "mutate",
            }),
        ],
        "{report:#}"
    );
    // Each workload's ControllerRevisions by its own selector, a page at a
    // time; no ReplicaSet is asked for.
    let selectors: Vec<(String, String)> = cluster
        .api
        .list_queries(CONTROLLERREVISIONS)
        .iter()
        .map(|q| (q["labelSelector"].clone(), q["limit"].clone()))
        .collect();
    let page = |selector: &str| (selector.to_owned(), "2".to_owned());
    assert_eq!(
        selectors,
        [
            page("app.kubernetes.io/name=cache"),
            page("app.kubernetes.io/name=cache"),
            page("app.kubernetes.io/name=node-agent"),
        ]
    );
    assert_eq!(
        cluster
            .api
            .count("GET", "/apis/apps/v1/namespaces/edge/replicasets"),
        0
    );

    // --no-history: no ControllerRevision is asked for.
    let mut skipped = args.to_vec();
    skipped.push("--no-history");
    let output = cluster.audit(&skipped).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(history_findings(&report), Vec::<Value>::new());
    assert_eq!(cluster.api.list_queries(CONTROLLERREVISIONS).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_controllerrevisions_leave_the_history_out_with_one_note() {
    let cluster = cluster().await;
    let linked = revisions_cluster(&cluster);
    // And, audited by object rules in this order, a StatefulSet no link
    // names (the first to ask for ControllerRevisions) and a Deployment
    // whose history (env order churn) is in ReplicaSets: the refusal is
    // only ControllerRevisions'.
    let object_rule = |name: &str, kind: &str| {
        format!(
            "  - name: {name}\n    match: {{apiVersion: apps/v1, kind: {kind}, selector: {{matchLabels: {{app: {name}}}}}}}\n    format: object\n    sets: [{{path: spec.template.spec.imagePullSecrets, by: name}}]\n"
        )
    };
    let rules = cluster.rules_file(&format!(
        "{}{}{}",
        std::fs::read_to_string(&linked).unwrap(),
        object_rule("db", "StatefulSet"),
        object_rule("web", "Deployment"),
    ));
    cluster.api.insert(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"namespace": "edge", "name": "db", "uid": "uid-db", "labels": {"app": "db"}},
        "spec": {
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "db", "image": "db:1"}]}},
        },
    }));
    let web = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"namespace": "edge", "name": "web", "uid": "uid-web", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1",
                                         "env": [{"name": "A"}, {"name": "B"}]}]},
            },
        },
    });
    cluster.api.insert(web.clone());
    for revision in [1, 2] {
        let mut replicaset = replicaset(&web, "uid-web", revision, |template| {
            if revision == 2 {
                let env = template["spec"]["containers"][0]["env"]
                    .as_array_mut()
                    .unwrap();
                env.reverse();
            }
        });
        replicaset["metadata"]["namespace"] = json!("edge");
        cluster.api.insert(replicaset);
    }
    let args = ["-n", "edge", "--rules", &rules, "-o", "json"];
    let allowed = cluster.audit(&args).await;
    assert_eq!(allowed.status.code(), Some(1), "{}", stderr(&allowed));

    let forbidden = forbidden_to_list("controllerrevisions", "edge");
    cluster
        .api
        .fail("GET", CONTROLLERREVISIONS, Fault::Status(forbidden));
    // Allowed, each of the three StatefulSets and DaemonSets asked.
    let before = cluster.api.count("GET", CONTROLLERREVISIONS);
    assert_eq!(before, 3);
    let output = cluster.audit(&args).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        history_forbidden_note("controllerrevisions", "edge")
    );
    // Asked once, not once per workload.
    assert_eq!(cluster.api.count("GET", CONTROLLERREVISIONS), before + 1);
    // The same report but for the history.
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let mut expected: Value = serde_json::from_str(&stdout(&allowed)).unwrap();
    assert_eq!(history_findings(&expected).len(), 3, "{expected:#}");
    expected["findings"].as_array_mut().unwrap().retain(|f| {
        f["kind"] == "Deployment"
            || f["finding"] != "order_churn" && f["finding"] != "checksum_only_rollouts"
    });
    assert_eq!(report, expected);
    let kept = history_findings(&report);
    assert_eq!(kept.len(), 1, "{report:#}");
    assert_eq!(
        (&kept[0]["kind"], &kept[0]["name"], &kept[0]["finding"]),
        (&json!("Deployment"), &json!("web"), &json!("order_churn"))
    );

    // Any other failure is still the audit's: no report.
    cluster.api.fail(
        "GET",
        CONTROLLERREVISIONS,
        Fault::Status(apiserver::internal_error("etcdserver: request timed out")),
    );
    let output = cluster.audit(&args).await;
    assert_failed_without_report(
        &output,
        "listing controllerrevisions.apps in namespace edge (page 1): the API server answered HTTP 500",
    );
}

/// `--rules preset` judges the vMCP objects as the plain audit does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rules_the_audit_runs_the_preset() {
    let cluster = cluster().await;
    let api = &cluster.api;
    api.insert(configmap("toolhive-system", "demo-vmcp", false));
    api.insert(deployment("toolhive-system", "demo-vmcp", OLD_CHECKSUM));
    api.insert(deployment("toolhive-system", "orphan", OLD_CHECKSUM));
    api.insert(plain_configmap("toolhive-system", "web"));
    let codes = |output: &Output| -> Vec<(String, String, String, String)> {
        let report: Value = serde_json::from_str(&stdout(output)).unwrap();
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                ["kind", "name", "finding", "detail"].map(|k| f[k].as_str().unwrap().to_owned())
            })
            .map(|[a, b, c, d]| (a, b, c, d))
            .collect()
    };
    let plain = cluster
        .audit(&["-n", "toolhive-system", "-o", "json"])
        .await;
    let preset = cluster
        .audit(&["-n", "toolhive-system", "--rules", "preset", "-o", "json"])
        .await;
    assert_eq!(plain.status.code(), Some(3));
    assert_eq!(preset.status.code(), Some(3));
    // Without a rules file the audit runs the preset: the same report.
    assert_eq!(stdout(&plain), stdout(&preset));
    let found = codes(&plain);
    assert_eq!(found[0].2, "backends_order");
    assert!(
        found[0]
            .3
            .ends_with("; only the order of: config.yaml: backends"),
        "{found:?}"
    );
}
