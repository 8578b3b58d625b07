use super::*;
use serde_json::json;

/// A YAML or JSON text as the detector reads a changed data value.
fn doc(text: &str) -> Tree<'static> {
    read_document(text, 0).expect("within bounds")
}

/// The reordered lists from `old` to `new`; `None` for a content change.
fn lists(old: &str, new: &str) -> Option<Vec<String>> {
    reordered_lists(&doc(old), &doc(new)).map(|found| {
        assert!(!found.more);
        found.paths
    })
}

#[test]
fn documents_table() {
    let cases: &[(&str, &str, &str, Option<&[&str]>)] = &[
        ("equal", "a: [1, 2]\n", "a: [1, 2]\n", Some(&[])),
        (
            "top-level list of mappings",
            "backends:\n- name: b\n  url: x\n- name: a\n  url: y\n",
            "backends:\n- name: a\n  url: y\n- name: b\n  url: x\n",
            Some(&["backends"]),
        ),
        (
            "a list inside items, items in place",
            "aggregation:\n  tools:\n  - {name: t, filter: [x, y]}\n  - {name: u, filter: [p]}\n",
            "aggregation:\n  tools:\n  - {name: t, filter: [y, x]}\n  - {name: u, filter: [p]}\n",
            Some(&["aggregation.tools[*].filter"]),
        ),
        (
            "items moved and a list inside one of them reordered",
            "aggregation:\n  tools:\n  - {name: t, filter: [x, y]}\n  - {name: u, filter: [p]}\n",
            "aggregation:\n  tools:\n  - {name: u, filter: [p]}\n  - {name: t, filter: [y, x]}\n",
            Some(&["aggregation.tools", "aggregation.tools[*].filter"]),
        ),
        (
            "the same inner path in several items is named once",
            "t:\n- {f: [1, 2]}\n- {f: [3, 4]}\n",
            "t:\n- {f: [2, 1]}\n- {f: [4, 3]}\n",
            Some(&["t[*].f"]),
        ),
        (
            "scalars",
            "a: [1, two, 3.5, true, null]\n",
            "a: [null, true, 3.5, two, 1]\n",
            Some(&["a"]),
        ),
        (
            "a reorder and a content change: no churn",
            "backends:\n- name: b\n- name: a\n",
            "backends:\n- name: a\n- name: c\n",
            None,
        ),
        (
            "a reorder here and a changed value there: no churn",
            "x: 1\nbackends: [b, a]\n",
            "x: 2\nbackends: [a, b]\n",
            None,
        ),
        (
            "duplicates moved",
            "a: [x, x, y]\n",
            "a: [x, y, x]\n",
            Some(&["a"]),
        ),
        (
            "a duplicate more, one fewer: content",
            "a: [x, x, y]\n",
            "a: [x, y, y]\n",
            None,
        ),
        (
            "an item added: content",
            "a: [x, y]\n",
            "a: [y, x, z]\n",
            None,
        ),
        (
            "mapping key order is no list's",
            "{p: 1, q: [1, 2]}",
            "{q: [1, 2], p: 1}",
            Some(&[]),
        ),
        (
            "JSON",
            r#"{"servers": [{"id": 1}, {"id": 2}], "n": 1}"#,
            r#"{"n": 1, "servers": [{"id": 2}, {"id": 1}]}"#,
            Some(&["servers"]),
        ),
        ("a list at the root", "[1, 2]", "[2, 1]", Some(&["."])),
        (
            "lists of lists",
            "[[1, 2], [3]]",
            "[[3], [2, 1]]",
            Some(&[".", "[*]"]),
        ),
        (
            "keys that are not plain are quoted",
            "a.b: {\"c d\": [1, 2]}\n",
            "a.b: {\"c d\": [2, 1]}\n",
            Some(&[r#"["a.b"]["c d"]"#]),
        ),
        (
            "a tagged list",
            "a: !set [1, 2]\n",
            "a: !set [2, 1]\n",
            Some(&["a"]),
        ),
        (
            "a different tag: content",
            "a: !x [1, 2]\n",
            "a: !y [2, 1]\n",
            None,
        ),
        (
            "a quoted number is not the number",
            "a: ['1', 2]\n",
            "a: [2, 1]\n",
            None,
        ),
        (
            "aliases read as their anchors",
            "d: &d {k: v}\na: [*d, 1]\n",
            "a: [1, {k: v}]\nd: {k: v}\n",
            Some(&["a"]),
        ),
        (
            "a text that reads as neither: content",
            "a: [",
            "b: [",
            None,
        ),
    ];
    for (name, old, new, expected) in cases {
        let expected = expected.map(|paths| paths.iter().map(|p| p.to_string()).collect());
        assert_eq!(lists(old, new), expected, "{name}");
        // Symmetric: the reorder reads the same backwards.
        let backwards = expected.map(|paths: Vec<String>| paths);
        assert_eq!(lists(new, old), backwards, "{name}, backwards");
    }
}

#[test]
fn the_number_of_lists_reported_is_capped() {
    let keys = 0..MAX_REPORTED_LISTS + 3;
    let old: String = keys.clone().map(|k| format!("k{k}: [1, 2]\n")).collect();
    let new: String = keys.map(|k| format!("k{k}: [2, 1]\n")).collect();
    let found = reordered_lists(&doc(&old), &doc(&new)).unwrap();
    assert_eq!(found.paths.len(), MAX_REPORTED_LISTS);
    assert!(found.more);
    assert_eq!(found.paths[0], "k0");
}

#[test]
fn long_paths_are_cut() {
    let key = "k".repeat(500);
    let found = lists(&format!("{key}: [1, 2]\n"), &format!("{key}: [2, 1]\n")).unwrap();
    assert_eq!(found[0].len(), MAX_PATH_BYTES);
    assert!(found[0].ends_with('…'));
}

#[test]
fn reading_is_bounded() {
    let deep = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH + 1),
        "]".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(read_document(&deep, 0), Err(Skipped::TooDeep));
    assert_eq!(
        read_document(&deep.replace('[', "- ").replace(']', ""), 0),
        Err(Skipped::TooDeep)
    );
    let shallow = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    assert!(matches!(
        read_document(&shallow, 0),
        Ok(Tree::Document(Format::Json, _))
    ));
    let large = format!("a: \"{}\"\n", "x".repeat(MAX_DOCUMENT_BYTES));
    assert_eq!(
        read_document(&large, 0),
        Err(Skipped::TooLarge { bytes: large.len() })
    );
}

// ---- Objects ----

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The lists expected in one case, with their rules.
type Expected = &'static [(&'static str, Rule)];

fn paths(churn: &OrderChurn) -> Vec<(&str, Rule)> {
    churn
        .lists
        .iter()
        .map(|list| (list.path.as_str(), list.rule))
        .collect()
}

#[test]
fn the_buggy_configmap_over_its_normalized_form_is_backends_churn() {
    let buggy = fixture("vmcp-configmap.yaml");
    let normalized = fixture("vmcp-configmap.normalized.yaml");
    // Their content-checksums differ: derived, so not compared.
    assert_ne!(
        buggy["metadata"]["annotations"],
        normalized["metadata"]["annotations"]
    );
    for (old, new) in [(&normalized, &buggy), (&buggy, &normalized)] {
        let churn = detect(Kind::ConfigMap, old, new).unwrap();
        assert_eq!(
            paths(&churn),
            [("config.yaml: backends", Rule::ToolhiveVmcp)]
        );
        assert!(!churn.more && churn.checksum_only_rollout.is_none());
    }

    // The same ConfigMap without the vMCP label: warn only.
    let mut plain = buggy.clone();
    let mut plain_old = normalized.clone();
    for object in [&mut plain, &mut plain_old] {
        object["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("toolhive.stacklok.io/component");
    }
    let churn = detect(Kind::ConfigMap, &plain_old, &plain).unwrap();
    assert_eq!(paths(&churn), [("config.yaml: backends", Rule::None)]);
}

#[test]
fn objects_table() {
    let configmap = fixture("vmcp-configmap.normalized.yaml");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut object = configmap.clone();
        edit(&mut object);
        object
    };
    let cases: Vec<(&str, Value, Value, Expected)> = vec![
        (
            "the apiserver's fields and status are not compared",
            configmap.clone(),
            with(&|o| {
                o["metadata"]["resourceVersion"] = json!("2");
                o["metadata"]["managedFields"] = json!([{"manager": "b"}, {"manager": "a"}]);
                o["metadata"]["generation"] = json!(9);
                o["status"] = json!({"x": [2, 1]});
            }),
            &[],
        ),
        (
            "a second data key in JSON",
            with(&|o| o["data"]["tools.json"] = json!(r#"{"allow": ["a", "b"]}"#)),
            with(&|o| o["data"]["tools.json"] = json!(r#"{"allow": ["b", "a"]}"#)),
            &[("tools.json: allow", Rule::None)],
        ),
        (
            "a list at a data value's root",
            with(&|o| o["data"]["hosts"] = json!("- a\n- b\n")),
            with(&|o| o["data"]["hosts"] = json!("- b\n- a\n")),
            &[("hosts: .", Rule::None)],
        ),
        (
            "a list in the object itself",
            with(&|o| o["metadata"]["finalizers"] = json!(["x/a", "x/b"])),
            with(&|o| o["metadata"]["finalizers"] = json!(["x/b", "x/a"])),
            &[("metadata.finalizers", Rule::None)],
        ),
        (
            "a data value that reads as neither, changed: content",
            with(&|o| o["data"]["raw"] = json!("a: [\n")),
            with(&|o| o["data"]["raw"] = json!("b: [\n")),
            &[],
        ),
        (
            "a data value that is not a string, changed, and a reorder: content",
            with(&|o| {
                o["data"]["hosts"] = json!("- a\n- b\n");
                o["data"]["bad"] = json!([1]);
            }),
            with(&|o| {
                o["data"]["hosts"] = json!("- b\n- a\n");
                o["data"]["bad"] = json!([2]);
            }),
            &[],
        ),
        (
            "a reordered list and a changed label: content",
            with(&|o| o["data"]["hosts"] = json!("- a\n- b\n")),
            with(&|o| {
                o["data"]["hosts"] = json!("- b\n- a\n");
                o["metadata"]["labels"]["extra"] = json!("1");
            }),
            &[],
        ),
    ];
    for (name, old, new, expected) in cases {
        let churn = detect(Kind::ConfigMap, &old, &new).unwrap();
        assert_eq!(paths(&churn), expected, "{name}");
        assert!(churn.checksum_only_rollout.is_none(), "{name}");
    }
}

#[test]
fn kubectl_last_applied_copy_is_read_as_the_object_it_holds() {
    let buggy = fixture("vmcp-configmap.yaml");
    let normalized = fixture("vmcp-configmap.normalized.yaml");
    let applied = |object: &Value| {
        let mut object = object.clone();
        let copy = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "demo-vmcp-vmcp-config"},
                          "data": {"config.yaml": object["data"]["config.yaml"]}});
        object["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = json!(copy.to_string());
        object
    };
    let churn = detect(Kind::ConfigMap, &applied(&normalized), &applied(&buggy)).unwrap();
    assert_eq!(
        paths(&churn),
        [
            ("config.yaml: backends", Rule::ToolhiveVmcp),
            ("last-applied: config.yaml: backends", Rule::ToolhiveVmcp)
        ]
    );
}

#[test]
fn bounds_skip_only_what_changed() {
    let configmap = fixture("vmcp-configmap.normalized.yaml");
    let mut old = configmap.clone();
    old["data"]["big"] = json!("x".repeat(MAX_DOCUMENT_BYTES + 1));
    // Unchanged, however large: never read.
    let mut new = old.clone();
    new["data"]["small"] = json!("[1, 2]");
    old["data"]["small"] = json!("[2, 1]");
    assert_eq!(
        paths(&detect(Kind::ConfigMap, &old, &new).unwrap()),
        [("small: .", Rule::None)]
    );
    // Changed and too large: skipped.
    new["data"]["big"] = json!("y".repeat(MAX_DOCUMENT_BYTES + 1));
    assert_eq!(
        detect(Kind::ConfigMap, &old, &new),
        Err(Skipped::TooLarge {
            bytes: MAX_DOCUMENT_BYTES + 1
        })
    );
    // Too deep in the object itself.
    let mut deep = json!(1);
    for _ in 0..MAX_DEPTH {
        deep = json!({ "d": deep });
    }
    let mut deep_old = configmap.clone();
    deep_old["spec"] = deep.clone();
    let mut deep_new = deep_old.clone();
    deep_new["metadata"]["labels"]["x"] = json!("y");
    assert_eq!(
        detect(Kind::ConfigMap, &deep_old, &deep_new),
        Err(Skipped::TooDeep)
    );
}

fn deployment_with(edit: &dyn Fn(&mut Value)) -> Value {
    let mut deployment = fixture("vmcp-deployment.yaml");
    edit(&mut deployment);
    deployment
}

const RUNCONFIG: &str =
    "/spec/template/metadata/annotations/toolhive.stacklok.dev~1runconfig-checksum";

fn set(object: &mut Value, pointer: &str, value: Value) {
    *object.pointer_mut(pointer).expect(pointer) = value;
}

#[test]
fn deployments_table() {
    let stored = fixture("vmcp-deployment.yaml");
    let rollout = Some(ChecksumOnlyRollout {
        configmap: Some("demo-vmcp-vmcp-config".to_owned()),
    });
    let two_vars = json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]);
    let swapped = json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]);
    let cases: Vec<(&str, Value, Value, Expected, Option<ChecksumOnlyRollout>)> = vec![
        (
            "only the checksum: a checksum-only rollout",
            stored.clone(),
            deployment_with(&|d| set(d, RUNCONFIG, json!("0123"))),
            &[],
            rollout.clone(),
        ),
        (
            "the checksum and the replica count: still checksum-only",
            stored.clone(),
            deployment_with(&|d| {
                set(d, RUNCONFIG, json!("0123"));
                d["spec"]["replicas"] = json!(7);
            }),
            &[],
            rollout.clone(),
        ),
        (
            "the checksum and the image: a real rollout",
            stored.clone(),
            deployment_with(&|d| {
                set(d, RUNCONFIG, json!("0123"));
                d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other:1");
            }),
            &[],
            None,
        ),
        (
            "env reordered: churn, not checksum-only",
            deployment_with(&|d| {
                d["spec"]["template"]["spec"]["containers"][0]["env"] = two_vars.clone()
            }),
            deployment_with(&|d| {
                d["spec"]["template"]["spec"]["containers"][0]["env"] = swapped.clone();
                set(d, RUNCONFIG, json!("0123"));
            }),
            &[("spec.template.spec.containers[*].env", Rule::None)],
            None,
        ),
        ("nothing", stored.clone(), stored.clone(), &[], None),
    ];
    for (name, old, new, expected, checksum_only) in cases {
        let churn = detect(Kind::Deployment, &old, &new).unwrap();
        assert_eq!(paths(&churn), expected, "{name}");
        assert_eq!(churn.checksum_only_rollout, checksum_only, "{name}");
    }
}

#[test]
fn rules_name_the_builtin_paths_only_for_configmaps() {
    // A Deployment is never the built-in normalizer's, whatever its paths.
    let old = json!({"data": {"config.yaml": "backends: [a, b]\n"},
                     "metadata": {"labels": {"toolhive.stacklok.io/component": "vmcp-config"}}});
    let mut new = old.clone();
    new["data"]["config.yaml"] = json!("backends: [b, a]\n");
    assert_eq!(
        paths(&detect(Kind::ConfigMap, &old, &new).unwrap()),
        [("config.yaml: backends", Rule::ToolhiveVmcp)]
    );
    assert_eq!(
        paths(&detect(Kind::Deployment, &old, &new).unwrap()),
        [("config.yaml: backends", Rule::None)]
    );
    assert_eq!(
        BUILTIN_PATHS[0],
        format!("{}: backends", crate::recognize::CONFIG_KEY)
    );
}

/// A StatefulSet or DaemonSet a rule links: a change in the link's
/// pod-template annotation alone is a checksum-only rollout naming the
/// link's ConfigMap; without the link that annotation is content.
#[test]
fn linked_workloads_of_every_kind_have_checksum_only_rollouts() {
    const ANNOTATION: &str = "example.com/peers-sha256";
    let stored = json!({
        "apiVersion": "apps/v1",
        "metadata": {"name": "cache"},
        "spec": {"template": {
            "metadata": {"annotations": {ANNOTATION: "old"}},
            "spec": {"containers": [{"name": "cache", "image": "cache:1"}]},
        }},
    });
    let mut written = stored.clone();
    written["spec"]["template"]["metadata"]["annotations"][ANNOTATION] = json!("new");
    let linked = Derived {
        checksum: None,
        workload: Some(LinkedChecksum {
            annotation: ANNOTATION,
            configmap: Some("cache-peers"),
        }),
    };
    for kind in [Kind::Deployment, Kind::StatefulSet, Kind::DaemonSet] {
        let churn = detect_deriving(kind, &stored, &written, linked).unwrap();
        assert_eq!(
            churn.checksum_only_rollout,
            Some(ChecksumOnlyRollout {
                configmap: Some("cache-peers".to_owned())
            }),
            "{kind:?}"
        );
        assert!(churn.lists.is_empty(), "{kind:?}");
        // Unlinked, the annotation is no checksum the detector knows.
        let churn = detect(kind, &stored, &written).unwrap();
        assert_eq!(churn.checksum_only_rollout, None, "{kind:?}");
    }
    // A ConfigMap has no pod template to roll.
    let churn = detect_deriving(Kind::ConfigMap, &stored, &written, linked).unwrap();
    assert_eq!(churn.checksum_only_rollout, None);

    // Env reordered beside the checksum: churn in a StatefulSet too.
    let env = |order: [&str; 2]| json!(order.map(|name| json!({"name": name, "value": "1"})));
    let mut old = stored.clone();
    old["spec"]["template"]["spec"]["containers"][0]["env"] = env(["A", "B"]);
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["env"] = env(["B", "A"]);
    new["spec"]["template"]["metadata"]["annotations"][ANNOTATION] = json!("new");
    let churn = detect_deriving(Kind::StatefulSet, &old, &new, linked).unwrap();
    assert_eq!(
        paths(&churn),
        [("spec.template.spec.containers[*].env", Rule::None)]
    );
    assert_eq!(churn.checksum_only_rollout, None);
}
