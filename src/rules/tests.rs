use serde_json::json;

use super::*;
use crate::normalize::normalize_configmap;

const CONFIGMAP: ObjectKind<'static> = ObjectKind {
    api_version: None,
    kind: "ConfigMap",
};

fn vmcp_configmap(config: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "demo-vmcp-config",
            "labels": {"toolhive.stacklok.io/component": "vmcp-config"},
            "annotations": {"toolhive.stacklok.dev/content-checksum": "stale"},
        },
        "data": {"config.yaml": config},
    })
}

#[test]
fn the_preset_is_one_rule_that_does_what_the_configmap_normalizer_does() {
    let preset = RuleSet::preset();
    assert!(preset.is_preset());
    assert_eq!(preset.rules().len(), 1);
    let rule = &preset.rules()[0];
    assert_eq!(rule.name, PRESET);
    assert_eq!(rule.action, Action::Data(DataRule::vmcp_config()));
    for object in [
        vmcp_configmap("backends:\n- name: b\n- name: a\n"),
        vmcp_configmap("backends: [{name: b}, {name: a}]\n"),
        vmcp_configmap("backends:\n- name: a\n"),
        json!({"metadata": {"labels": {"toolhive.stacklok.io/component": "vmcp-config"}}, "data": {"config.yaml": 7}}),
        json!({"metadata": {"labels": {"toolhive.stacklok.io/component": "other"}}, "data": {"config.yaml": "x"}}),
        json!({"data": {"config.yaml": "backends:\n- name: b\n- name: a\n"}}),
    ] {
        let applied = preset.apply(CONFIGMAP, &object);
        assert_eq!(applied.outcome, normalize_configmap(&object), "{object}");
        assert_eq!(
            applied.rule_name(),
            if applied.outcome == Outcome::NotVmcp {
                "none"
            } else {
                PRESET
            }
        );
    }
}

#[test]
fn a_file_that_includes_the_preset_adds_rules_after_it() {
    let rules = RuleSet::from_yaml(&format!(
        "apiVersion: {API_VERSION}\nkind: {KIND}\ninclude: [toolhive-vmcp]\nrules:\n- name: hosts\n  mode: warn\n  match: {{kind: ConfigMap, name: 'hosts-*'}}\n  key: hosts.json\n  format: json\n  sets: [{{path: ., by: .}}]\n"
    ))
    .unwrap();
    assert!(rules.includes_preset() && !rules.is_preset());
    assert_eq!(
        rules
            .rules()
            .iter()
            .map(|rule| rule.name.as_str())
            .collect::<Vec<_>>(),
        [PRESET, "hosts"]
    );
    let hosts = json!({"kind": "ConfigMap", "metadata": {"name": "hosts-a"}, "data": {"hosts.json": "[\"b\",\"a\"]"}});
    let applied = rules.apply(CONFIGMAP, &hosts);
    assert_eq!(applied.rule_name(), "hosts");
    assert!(applied.warn_only());
    assert!(matches!(applied.outcome, Outcome::Normalized(_)));
    let mut other = hosts.clone();
    other["metadata"]["name"] = json!("other");
    assert_eq!(rules.apply(CONFIGMAP, &other).rule_name(), "none");
}

#[test]
fn selectors_and_name_patterns() {
    let selector = Selector {
        match_labels: BTreeMap::from([("a".to_owned(), "1".to_owned())]),
        match_expressions: vec![
            Expression {
                key: "b".into(),
                operator: Operator::In,
                values: vec!["x".into(), "y".into()],
            },
            Expression {
                key: "c".into(),
                operator: Operator::DoesNotExist,
                values: vec![],
            },
        ],
    };
    let with = |labels: Value| json!({"metadata": {"labels": labels}});
    assert!(selector.matches(&with(json!({"a": "1", "b": "y"}))));
    assert!(!selector.matches(&with(json!({"a": "1", "b": "z"}))));
    assert!(!selector.matches(&with(json!({"a": "1", "b": "x", "c": ""}))));
    assert!(!selector.matches(&with(json!({"a": "2", "b": "x"}))));
    for (pattern, name, fits) in [
        ("*-vmcp-config", "demo-vmcp-config", true),
        ("*-vmcp-config", "demo-vmcp-config2", false),
        ("a*b*c", "abc", true),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "acb", false),
        ("ab*ba", "aba", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
        ("*", "", true),
    ] {
        assert_eq!(wildcard(pattern, name), fits, "{pattern} {name}");
    }
}

#[test]
fn problems_are_reported_together_with_line_and_column() {
    let text = "apiVersion: vmcp-normalizer.io/v1alpha1
kind: NormalizationRules
include: [other]
rules:
  - name: Bad_Name
    match:
      kind: Secret
    key: creds.yaml
    format: yaml
    sets:
      - path: a..b
        by: name
      - path: ok
        by: ''
  - name: objects
    match: {kind: Gateway}
    key: x
    format: object
    sets: [{path: spec.listeners, by: name}]
    checksum: {annotation: a/b, algorithm: sha256}
  - name: linked
    match: {kind: ConfigMap}
    key: c.yaml
    format: yaml
    sets: [{path: s, by: .}]
    workload:
      kind: Job
      annotation: x/y
      configMap: {volume: v, nameTemplate: '{name}'}
";
    let error = RuleSet::from_yaml(text).unwrap_err();
    let lines: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "line 3 column 11: include[0]: unknown preset \"other\" (known: toolhive-vmcp)",
            "line 5 column 5: rules[0].name: must be lower-case letters, digits and `-`, at most 63 (it is a metric label)",
            "line 11 column 9: rules[0].sets[0].path: empty key at character 2 (write `.` alone for the document itself)",
            "line 14 column 9: rules[0].sets[1].by: is empty (write `.` for the item itself)",
            "line 9 column 5: rules[0].format: a data key is read from a ConfigMap, not a Secret",
            "line 17 column 5: rules[1].key: is for formats yaml and json; format object reorders the object's own fields",
            "line 20 column 5: rules[1].checksum: needs a data key (formats yaml and json)",
            "line 27 column 7: rules[2].workload.kind: is \"Job\"; a workload is one of Deployment, StatefulSet, DaemonSet (a Job's pod template cannot change; a CronJob's is not at spec.template)",
            "line 26 column 5: rules[2].workload: follows a checksum, and the rule declares none",
            "line 29 column 7: rules[2].workload.configMap: needs exactly one of volume, env and nameTemplate",
        ]
    );
}

#[test]
fn syntax_and_shape_errors_carry_the_readers_position() {
    for (text, line, says) in [
        ("apiVersion: [1]\n", 1, "invalid type: sequence"),
        ("kind: 'x\n", 2, "quoted scalar"),
        (
            "apiVersion: vmcp-normalizer.io/v1alpha1\nkind: NormalizationRules\nrules:\n  - name: a\n    mach: {kind: ConfigMap}\n",
            5,
            "unknown field `mach`",
        ),
        (
            "apiVersion: vmcp-normalizer.io/v1alpha1\nkind: NormalizationRules\nrules:\n  - name: a\n    match: {kind: ConfigMap}\n    format: toml\n",
            6,
            "unknown variant `toml`",
        ),
    ] {
        match RuleSet::from_yaml(text) {
            Err(RulesError::Syntax {
                line: got, message, ..
            }) => {
                assert_eq!(got, line, "{text}: {message}");
                assert!(message.contains(says), "{message}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    let wrong = RuleSet::from_yaml("apiVersion: v1\nkind: ConfigMap\n").unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "line 1 column 1: apiVersion: is \"v1\", expected vmcp-normalizer.io/v1alpha1; line 2 column 1: kind: is \"ConfigMap\", expected NormalizationRules"
    );
}

#[test]
fn workload_links_match_by_kind_and_selector() {
    let preset = RuleSet::preset();
    let deployment = json!({"metadata": {"labels": {"app.kubernetes.io/name": "virtualmcpserver", "app.kubernetes.io/instance": "demo"}}});
    let kind = ObjectKind {
        api_version: Some("apps/v1"),
        kind: "Deployment",
    };
    assert_eq!(
        preset
            .workload_rule_for(kind, &deployment)
            .map(|rule| rule.name.as_str()),
        Some(PRESET)
    );
    let statefulset = ObjectKind {
        api_version: Some("apps/v1"),
        kind: "StatefulSet",
    };
    assert!(preset.workload_rule_for(statefulset, &deployment).is_none());
    let link = preset.rules()[0].workload.as_ref().unwrap();
    assert_eq!(
        link.config_map,
        ConfigMapRef::Volume("vmcp-config".to_owned())
    );
    assert_eq!(link.annotation, "toolhive.stacklok.dev/runconfig-checksum");
}

#[test]
fn a_workload_may_name_its_configmap_by_an_env_value_from() {
    let rules = |config_map: &str| {
        format!(
            "apiVersion: vmcp-normalizer.io/v1alpha1
kind: NormalizationRules
rules:
  - name: linked
    match: {{kind: ConfigMap}}
    key: c.yaml
    format: yaml
    sets: [{{path: s, by: .}}]
    checksum: {{annotation: a/b, algorithm: sha256}}
    workload: {{kind: Deployment, annotation: a/b, configMap: {config_map}}}
"
        )
    };
    let rules_set = RuleSet::from_yaml(&rules("{env: CONFIG}")).unwrap();
    assert_eq!(
        rules_set.rules()[0].workload.as_ref().unwrap().config_map,
        ConfigMapRef::Env("CONFIG".to_owned())
    );
    for refused in ["{env: ''}", "{env: CONFIG, volume: v}"] {
        let error = RuleSet::from_yaml(&rules(refused)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("needs exactly one of volume, env and nameTemplate"),
            "{refused}: {error}"
        );
    }
}

#[test]
fn statefulsets_and_daemonsets_are_workloads_and_jobs_are_not() {
    let rules = |kind: &str| {
        RuleSet::from_yaml(&format!(
            "apiVersion: {API_VERSION}\nkind: {KIND}\nrules:\n- name: hosts\n  match: {{kind: ConfigMap}}\n  key: hosts.json\n  format: json\n  sets: [{{path: ., by: .}}]\n  checksum: {{annotation: example.com/sha, algorithm: sha256}}\n  workload: {{kind: {kind}, selector: {{matchLabels: {{app: egress}}}}, annotation: example.com/sha, configMap: {{volume: hosts}}}}\n"
        ))
    };
    let object = json!({"metadata": {"labels": {"app": "egress"}}});
    for kind in ["StatefulSet", "DaemonSet"] {
        let rules = rules(kind).unwrap_or_else(|error| panic!("{kind}: {error}"));
        let own = ObjectKind {
            api_version: Some("apps/v1"),
            kind,
        };
        assert!(rules.workload_rule_for(own, &object).is_some(), "{kind}");
        // A link names one kind: a Deployment with the same labels is not it.
        let deployment = ObjectKind {
            api_version: Some("apps/v1"),
            kind: "Deployment",
        };
        assert!(
            rules.workload_rule_for(deployment, &object).is_none(),
            "{kind}"
        );
    }
    for kind in ["Job", "CronJob", "ReplicaSet"] {
        let error = rules(kind).expect_err(kind).to_string();
        assert!(
            error.contains(&format!("rules[0].workload.kind: is {kind:?}; a workload is one of Deployment, StatefulSet, DaemonSet (a Job's pod template cannot change; a CronJob's is not at spec.template)")),
            "{error}"
        );
    }
}
