//! The vMCP Deployment: keep its pod-template `runconfig-checksum` equal to
//! the checksum of the canonical config ConfigMap.
//!
//! The operator copies the ConfigMap's `content-checksum` annotation into the
//! Deployment's pod template, and any change of that annotation is a rollout.
//! Once the webhook normalizes the ConfigMap, the checksum the operator reads
//! back is the one of the normalized ConfigMap; this module makes the
//! Deployment agree with it, so a rollout happens only when the configuration
//! really changed.
//!
//! Pure: the caller fetches the ConfigMap (see `crate::lookup`) between
//! [`checksum_source`] and [`sync_runconfig_checksum`].

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use serde_json::Value;

use super::Outcome;
use super::data::{DataRule, normalize_data};
use crate::recognize::{
    CONFIG_VOLUME, CONTENT_CHECKSUM_ANNOTATION, RUNCONFIG_CHECKSUM_ANNOTATION, at,
    is_vmcp_configmap, vmcp_deployment_configmap,
};

/// The ConfigMap a vMCP Deployment's checksum must follow, read before any
/// lookup so that Deployments with nothing to keep in step cost no request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumSource<'a, N = &'a str> {
    /// Not a vMCP Deployment: nothing to do.
    NotVmcp,
    /// A vMCP Deployment whose pod template carries no `runconfig-checksum`:
    /// nothing to keep in step (the annotation is never added).
    NoRunconfigChecksum,
    /// Read this ConfigMap, in the Deployment's namespace, then call
    /// [`sync_runconfig_checksum`].
    ConfigMap { name: N, current: &'a str },
    /// A vMCP Deployment whose reference or annotation cannot be used.
    Unusable(Unsynced),
}

/// How a workload follows a ConfigMap's checksum: which pod-template
/// annotation holds it, how the workload names the ConfigMap, and what the
/// ConfigMap's canonical form and checksum are (the rule's data key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// The pod-template annotation that holds the checksum.
    pub annotation: String,
    pub config_map: ConfigMapName,
    /// The ConfigMap annotation whose canonical value it must hold.
    pub checksum_annotation: String,
    /// The ConfigMap's normalization.
    pub data: DataRule,
    /// Said when the ConfigMap read is not one the rule matches.
    pub not_matching: String,
}

/// How a workload names the ConfigMap it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigMapName {
    /// The ConfigMap the pod volume of this name mounts.
    Volume(String),
    /// `{name}` replaced by the workload's `metadata.name`.
    NameTemplate(String),
    /// The ConfigMap of this environment variable's
    /// `valueFrom.configMapKeyRef`, in any container or init container.
    Env(String),
}

impl Follow {
    /// The vMCP Deployment's `runconfig-checksum`: what the preset declares.
    pub fn vmcp_runconfig() -> Self {
        Self {
            annotation: RUNCONFIG_CHECKSUM_ANNOTATION.to_owned(),
            config_map: ConfigMapName::Volume(CONFIG_VOLUME.to_owned()),
            checksum_annotation: CONTENT_CHECKSUM_ANNOTATION.to_owned(),
            data: DataRule::vmcp_config(),
            not_matching: "the mounted ConfigMap lacks the vmcp-config label or config.yaml"
                .to_owned(),
        }
    }
}

static VMCP_RUNCONFIG: LazyLock<Follow> = LazyLock::new(Follow::vmcp_runconfig);

impl<'a, N> ChecksumSource<'a, N> {
    /// The same source with the ConfigMap's name in another form.
    pub fn map_name<M>(self, f: impl FnOnce(N) -> M) -> ChecksumSource<'a, M> {
        match self {
            ChecksumSource::NotVmcp => ChecksumSource::NotVmcp,
            ChecksumSource::NoRunconfigChecksum => ChecksumSource::NoRunconfigChecksum,
            ChecksumSource::ConfigMap { name, current } => ChecksumSource::ConfigMap {
                name: f(name),
                current,
            },
            ChecksumSource::Unusable(unsynced) => ChecksumSource::Unusable(unsynced),
        }
    }
}

/// Decide whether `deployment` needs its ConfigMap read, and which one.
pub fn checksum_source(deployment: &Value) -> ChecksumSource<'_> {
    if vmcp_deployment_configmap(deployment).is_none() {
        return ChecksumSource::NotVmcp;
    }
    let Some(name) = mounted_configmap(deployment, CONFIG_VOLUME) else {
        return ChecksumSource::NotVmcp;
    };
    source_named(deployment, &VMCP_RUNCONFIG, name)
}

/// [`checksum_source`] for a workload a rule matched, following `follow`.
pub fn checksum_source_of<'a>(
    deployment: &'a Value,
    follow: &Follow,
) -> ChecksumSource<'a, Cow<'a, str>> {
    let name = match &follow.config_map {
        ConfigMapName::Volume(volume) => mounted_configmap(deployment, volume).map(Cow::Borrowed),
        ConfigMapName::NameTemplate(template) => at(deployment, &["metadata", "name"])
            .and_then(Value::as_str)
            .map(|own| Cow::Owned(template.replace("{name}", own))),
        ConfigMapName::Env(variable) => match env_configmap(deployment, variable) {
            Ok(name) => name.map(Cow::Borrowed),
            Err(unsynced) => return ChecksumSource::Unusable(unsynced),
        },
    };
    match name {
        Some(name) => source_named(deployment, follow, name),
        None => ChecksumSource::NotVmcp,
    }
}

/// The source of a workload that names the ConfigMap `name`.
fn source_named<'a, N: AsRef<str>>(
    deployment: &'a Value,
    follow: &Follow,
    name: N,
) -> ChecksumSource<'a, N> {
    let annotation = follow.annotation.as_str();
    let current = match at(
        deployment,
        &["spec", "template", "metadata", "annotations", annotation],
    ) {
        None => return ChecksumSource::NoRunconfigChecksum,
        Some(Value::String(current)) => current.as_str(),
        Some(_) => {
            return ChecksumSource::Unusable(Unsynced::new(
                UnsyncedReason::MalformedObject,
                format!("pod-template annotation {annotation} is not a string"),
            ));
        }
    };
    // Mutating webhooks run before validation: the name goes into a URL path,
    // so anything but a valid object name is refused here.
    if !is_dns_subdomain(name.as_ref()) {
        let named_by = match &follow.config_map {
            ConfigMapName::Volume(volume) => format!("volume {volume}"),
            ConfigMapName::NameTemplate(template) => format!("name template {template:?}"),
            ConfigMapName::Env(variable) => format!("env {variable}"),
        };
        return ChecksumSource::Unusable(Unsynced::new(
            UnsyncedReason::MalformedObject,
            format!("{named_by} names an invalid ConfigMap {:?}", name.as_ref()),
        ));
    }
    ChecksumSource::ConfigMap { name, current }
}

/// The ConfigMap the pod volume `volume` mounts, when it names one.
fn mounted_configmap<'a>(deployment: &'a Value, volume: &str) -> Option<&'a str> {
    at(deployment, &["spec", "template", "spec", "volumes"])?
        .as_array()?
        .iter()
        .find(|candidate| candidate.get("name").and_then(Value::as_str) == Some(volume))
        .and_then(|candidate| at(candidate, &["configMap", "name"]))?
        .as_str()
        .filter(|name| !name.is_empty())
}

/// The ConfigMap that the environment variable `variable` takes a value
/// from, in the pod template's containers and init containers. Containers
/// that name different ConfigMaps leave no one ConfigMap to follow.
fn env_configmap<'a>(workload: &'a Value, variable: &str) -> Result<Option<&'a str>, Unsynced> {
    let spec = at(workload, &["spec", "template", "spec"]);
    let mut found: Option<&str> = None;
    for containers in ["initContainers", "containers"] {
        let Some(containers) = spec.and_then(|spec| spec.get(containers)?.as_array()) else {
            continue;
        };
        let env = containers
            .iter()
            .filter_map(|container| container.get("env")?.as_array())
            .flatten();
        for entry in env {
            if entry.get("name").and_then(Value::as_str) != Some(variable) {
                continue;
            }
            let Some(name) = at(entry, &["valueFrom", "configMapKeyRef", "name"])
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty())
            else {
                continue;
            };
            match found {
                Some(earlier) if earlier != name => {
                    return Err(Unsynced::new(
                        UnsyncedReason::MalformedObject,
                        format!(
                            "env {variable} takes its value from ConfigMaps {earlier} and {name}: no one ConfigMap to follow"
                        ),
                    ));
                }
                _ => found = Some(name),
            }
        }
    }
    Ok(found)
}

/// What to do with a vMCP Deployment's pod-template checksum, given the
/// ConfigMap it mounts as currently stored.
#[derive(Debug, Clone, PartialEq)]
pub enum ChecksumSync {
    /// Not a vMCP Deployment.
    NotVmcp,
    /// No `runconfig-checksum` on the pod template: left alone.
    NoRunconfigChecksum,
    /// The annotation already holds the canonical ConfigMap's checksum.
    InStep,
    /// The annotation is stale: `patch` replaces its value, and only that.
    Replace {
        from: String,
        to: String,
        patch: Patch,
    },
    /// The right checksum cannot be told: left alone, with the reason.
    Unsynced(Unsynced),
}

/// Why a vMCP Deployment's checksum was left as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsynced {
    pub reason: UnsyncedReason,
    /// Human detail for logs; warnings use [`UnsyncedReason::describe`].
    pub detail: String,
}

/// Low-cardinality reasons, usable as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnsyncedReason {
    /// The Deployment's reference or annotation is not usable.
    MalformedObject,
    /// The mounted ConfigMap is not a vMCP config ConfigMap.
    ConfigMapNotVmcp,
    /// The normalizer left the ConfigMap as stored (it could not prove a
    /// rewrite safe), so its canonical checksum is unknown.
    ConfigMapRefused,
    /// The ConfigMap carries no `content-checksum` for the operator to copy.
    NoContentChecksum,
}

impl UnsyncedReason {
    pub const ALL: [UnsyncedReason; 4] = [
        UnsyncedReason::MalformedObject,
        UnsyncedReason::ConfigMapNotVmcp,
        UnsyncedReason::ConfigMapRefused,
        UnsyncedReason::NoContentChecksum,
    ];

    /// A stable snake_case label for metrics and audit annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsyncedReason::MalformedObject => "malformed_deployment",
            UnsyncedReason::ConfigMapNotVmcp => "configmap_not_vmcp",
            UnsyncedReason::ConfigMapRefused => "configmap_refused",
            UnsyncedReason::NoContentChecksum => "no_content_checksum",
        }
    }

    /// A few words for a warning line.
    pub fn describe(self) -> &'static str {
        match self {
            UnsyncedReason::MalformedObject => "unusable ConfigMap reference or annotation",
            UnsyncedReason::ConfigMapNotVmcp => "ConfigMap is not a vMCP config",
            UnsyncedReason::ConfigMapRefused => "ConfigMap cannot be normalized",
            UnsyncedReason::NoContentChecksum => "ConfigMap has no content-checksum",
        }
    }
}

impl Unsynced {
    fn new(reason: UnsyncedReason, detail: String) -> Self {
        Self { reason, detail }
    }
}

impl fmt::Display for Unsynced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

/// Compare the Deployment's `runconfig-checksum` with what the operator will
/// read from `configmap` once it is normalized, and patch it when it differs.
///
/// `configmap` is the ConfigMap as stored (possibly still in buggy order,
/// written before the webhook was installed).
pub fn sync_runconfig_checksum(deployment: &Value, configmap: &Value) -> ChecksumSync {
    if vmcp_deployment_configmap(deployment).is_none() {
        return ChecksumSync::NotVmcp;
    }
    sync_checksum_of(
        deployment,
        configmap,
        &VMCP_RUNCONFIG,
        is_vmcp_configmap(configmap),
    )
}

/// [`sync_runconfig_checksum`] with the ConfigMap's side already computed:
/// `canonical` is [`canonical_content_checksum`] of it, called only when the
/// Deployment has a checksum to compare. For callers that read many
/// Deployments and keep only each ConfigMap's checksum (`audit`).
pub fn sync_to_canonical_checksum(
    deployment: &Value,
    canonical: impl FnOnce() -> Result<String, Unsynced>,
) -> ChecksumSync {
    if vmcp_deployment_configmap(deployment).is_none() {
        return ChecksumSync::NotVmcp;
    }
    sync_to(deployment, &VMCP_RUNCONFIG, canonical)
}

/// [`sync_runconfig_checksum`] for a workload a rule matched: `configmap`
/// is the one [`checksum_source_of`] named, as stored, and
/// `configmap_matches` says whether the rule matches it.
pub fn sync_checksum_of(
    deployment: &Value,
    configmap: &Value,
    follow: &Follow,
    configmap_matches: bool,
) -> ChecksumSync {
    sync_to(deployment, follow, || {
        canonical_checksum_for(configmap, follow, configmap_matches)
    })
}

/// [`sync_checksum_of`] with the ConfigMap's side already computed:
/// `canonical` is [`canonical_checksum_for`] of it, called only when the
/// workload has a checksum to compare (`audit`, as
/// [`sync_to_canonical_checksum`] for the preset).
pub fn sync_to_checksum_of(
    workload: &Value,
    follow: &Follow,
    canonical: impl FnOnce() -> Result<String, Unsynced>,
) -> ChecksumSync {
    sync_to(workload, follow, canonical)
}

/// The checksum a workload following `follow` must hold for `configmap` as
/// stored; `configmap_matches` says whether the rule matches it.
pub fn canonical_checksum_for(
    configmap: &Value,
    follow: &Follow,
    configmap_matches: bool,
) -> Result<String, Unsynced> {
    if !configmap_matches {
        return Err(Unsynced::new(
            UnsyncedReason::ConfigMapNotVmcp,
            follow.not_matching.clone(),
        ));
    }
    canonical_checksum_of(configmap, follow)
}

/// The workload's annotation against `canonical`, which is asked for only
/// when the workload carries the annotation.
fn sync_to(
    deployment: &Value,
    follow: &Follow,
    canonical: impl FnOnce() -> Result<String, Unsynced>,
) -> ChecksumSync {
    let current = match checksum_source_of(deployment, follow) {
        ChecksumSource::NotVmcp => return ChecksumSync::NotVmcp,
        ChecksumSource::NoRunconfigChecksum => return ChecksumSync::NoRunconfigChecksum,
        ChecksumSource::Unusable(unsynced) => return ChecksumSync::Unsynced(unsynced),
        ChecksumSource::ConfigMap { current, .. } => current,
    };
    let expected = match canonical() {
        Ok(expected) => expected,
        Err(unsynced) => return ChecksumSync::Unsynced(unsynced),
    };
    if current == expected {
        return ChecksumSync::InStep;
    }
    ChecksumSync::Replace {
        from: current.to_owned(),
        patch: replace_annotation(&follow.annotation, &expected),
        to: expected,
    }
}

/// The `content-checksum` the normalized `configmap` carries: what the operator
/// reads back from the stored ConfigMap once the webhook has put it in
/// canonical form.
pub fn canonical_content_checksum(configmap: &Value) -> Result<String, Unsynced> {
    if !is_vmcp_configmap(configmap) {
        return Err(Unsynced::new(
            UnsyncedReason::ConfigMapNotVmcp,
            VMCP_RUNCONFIG.not_matching.clone(),
        ));
    }
    canonical_checksum_of(configmap, &VMCP_RUNCONFIG)
}

/// The checksum annotation of `configmap` once the rule's data key is in
/// canonical form.
fn canonical_checksum_of(configmap: &Value, follow: &Follow) -> Result<String, Unsynced> {
    let normalized;
    let canonical = match normalize_data(configmap, &follow.data) {
        Outcome::Unchanged | Outcome::NotVmcp => configmap,
        Outcome::Normalized(result) => {
            normalized = result.apply_to(configmap).map_err(|error| {
                Unsynced::new(
                    UnsyncedReason::ConfigMapRefused,
                    format!("the ConfigMap's patch does not apply: {error}"),
                )
            })?;
            &normalized
        }
        Outcome::Refused(refusal) => {
            return Err(Unsynced::new(
                UnsyncedReason::ConfigMapRefused,
                refusal.to_string(),
            ));
        }
    };
    let annotation = follow.checksum_annotation.as_str();
    // The normalizer refuses a non-string checksum, so this is a string or absent.
    at(canonical, &["metadata", "annotations", annotation])
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Unsynced::new(
                UnsyncedReason::NoContentChecksum,
                format!("the ConfigMap has no {annotation} annotation"),
            )
        })
}

/// The one operation this module ever emits: a `replace` of an annotation
/// that exists (never an `add`: the operator treats any extra pod-template
/// key as drift).
fn replace_annotation(annotation: &str, checksum: &str) -> Patch {
    Patch(vec![PatchOperation::Replace(ReplaceOperation {
        path: PointerBuf::from_tokens(["spec", "template", "metadata", "annotations", annotation]),
        value: Value::String(checksum.to_owned()),
    })])
}

/// An RFC 1123 subdomain, the form of a ConfigMap name: at most 253 characters
/// of lower-case letters, digits, `-` and `.`, starting and ending with an
/// alphanumeric.
pub fn is_dns_subdomain(name: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 253
        && bytes
            .iter()
            .all(|&b| alphanumeric(b) || b == b'-' || b == b'.')
        && bytes.first().copied().is_some_and(alphanumeric)
        && bytes.last().copied().is_some_and(alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BUGGY_CHECKSUM: &str = "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48";
    const CANONICAL_CHECKSUM: &str =
        "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee";

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn deployment_with(annotation: Option<Value>) -> Value {
        let mut deployment = fixture("vmcp-deployment.yaml");
        let annotations = &mut deployment["spec"]["template"]["metadata"]["annotations"];
        match annotation {
            Some(value) => annotations[RUNCONFIG_CHECKSUM_ANNOTATION] = value,
            None => {
                annotations
                    .as_object_mut()
                    .unwrap()
                    .remove(RUNCONFIG_CHECKSUM_ANNOTATION);
            }
        }
        deployment
    }

    fn configmap_with_checksum(checksum: Option<&str>) -> Value {
        let mut configmap = fixture("vmcp-configmap.yaml");
        let annotations = configmap["metadata"]["annotations"]
            .as_object_mut()
            .unwrap();
        match checksum {
            Some(checksum) => {
                annotations.insert(CONTENT_CHECKSUM_ANNOTATION.into(), json!(checksum));
            }
            None => {
                annotations.remove(CONTENT_CHECKSUM_ANNOTATION);
            }
        }
        configmap
    }

    fn not_vmcp_configmap() -> Value {
        let mut configmap = fixture("vmcp-configmap.normalized.yaml");
        configmap["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("toolhive.stacklok.io/component");
        configmap
    }

    fn refused_configmap() -> Value {
        let mut configmap = fixture("vmcp-configmap.yaml");
        // An alias to an anchor in another item: in name order it would come
        // before its anchor, so the reorder cannot be proven.
        configmap["data"]["config.yaml"] = json!(
            "name: x\nbackends:\n    - name: z\n      url: &u x\n    - name: a\n      url: *u\n"
        );
        configmap
    }

    enum Expect {
        NotVmcp,
        NoRunconfigChecksum,
        InStep,
        Replace(&'static str),
        Unsynced(UnsyncedReason),
    }

    #[test]
    fn table() {
        let stale = Some(json!(BUGGY_CHECKSUM));
        let cases: Vec<(&str, Value, Value, Expect)> = vec![
            (
                "buggy stored ConfigMap: its normalized checksum",
                deployment_with(stale.clone()),
                fixture("vmcp-configmap.yaml"),
                Expect::Replace(CANONICAL_CHECKSUM),
            ),
            (
                "normalized ConfigMap, stale annotation",
                deployment_with(stale.clone()),
                fixture("vmcp-configmap.normalized.yaml"),
                Expect::Replace(CANONICAL_CHECKSUM),
            ),
            (
                "stored content-checksum itself stale: recomputed",
                deployment_with(stale.clone()),
                configmap_with_checksum(Some("0000")),
                Expect::Replace(CANONICAL_CHECKSUM),
            ),
            (
                "already right",
                deployment_with(Some(json!(CANONICAL_CHECKSUM))),
                fixture("vmcp-configmap.yaml"),
                Expect::InStep,
            ),
            (
                "annotation absent: never added",
                deployment_with(None),
                fixture("vmcp-configmap.normalized.yaml"),
                Expect::NoRunconfigChecksum,
            ),
            (
                "annotation not a string",
                deployment_with(Some(json!(7))),
                fixture("vmcp-configmap.normalized.yaml"),
                Expect::Unsynced(UnsyncedReason::MalformedObject),
            ),
            (
                "not a vMCP Deployment",
                {
                    let mut deployment = deployment_with(stale.clone());
                    deployment["metadata"]["labels"]["app.kubernetes.io/name"] = json!("other");
                    deployment
                },
                fixture("vmcp-configmap.normalized.yaml"),
                Expect::NotVmcp,
            ),
            (
                "ConfigMap without content-checksum",
                deployment_with(stale.clone()),
                configmap_with_checksum(None),
                Expect::Unsynced(UnsyncedReason::NoContentChecksum),
            ),
            (
                "ConfigMap not vMCP",
                deployment_with(stale.clone()),
                not_vmcp_configmap(),
                Expect::Unsynced(UnsyncedReason::ConfigMapNotVmcp),
            ),
            (
                "ConfigMap the normalizer refuses",
                deployment_with(stale.clone()),
                refused_configmap(),
                Expect::Unsynced(UnsyncedReason::ConfigMapRefused),
            ),
        ];
        for (name, deployment, configmap, expect) in cases {
            let sync = sync_runconfig_checksum(&deployment, &configmap);
            match (expect, &sync) {
                (Expect::NotVmcp, ChecksumSync::NotVmcp)
                | (Expect::NoRunconfigChecksum, ChecksumSync::NoRunconfigChecksum)
                | (Expect::InStep, ChecksumSync::InStep) => {}
                (Expect::Replace(to), ChecksumSync::Replace { to: got, patch, .. }) => {
                    assert_eq!(got, to, "{name}");
                    assert_only_the_annotation_changes(&deployment, patch, to, name);
                }
                (Expect::Unsynced(reason), ChecksumSync::Unsynced(unsynced)) => {
                    assert_eq!(unsynced.reason, reason, "{name}: {unsynced}");
                }
                (_, other) => panic!("{name}: unexpected {other:?}"),
            }
        }
    }

    fn assert_only_the_annotation_changes(deployment: &Value, patch: &Patch, to: &str, name: &str) {
        assert_eq!(
            serde_json::to_value(patch).unwrap(),
            json!([{"op": "replace",
                    "path": "/spec/template/metadata/annotations/toolhive.stacklok.dev~1runconfig-checksum",
                    "value": to}]),
            "{name}"
        );
        let mut patched = deployment.clone();
        json_patch::patch(&mut patched, patch).expect("applies to the received Deployment");
        let mut expected = deployment.clone();
        expected["spec"]["template"]["metadata"]["annotations"][RUNCONFIG_CHECKSUM_ANNOTATION] =
            json!(to);
        assert_eq!(patched, expected, "{name}: nothing else changes");
        // Idempotent: the patched Deployment is in step.
        assert_eq!(
            sync_runconfig_checksum(&patched, &fixture("vmcp-configmap.yaml")),
            ChecksumSync::InStep,
            "{name}"
        );
    }

    #[test]
    fn the_source_is_the_mounted_configmap_only_when_annotated() {
        let deployment = deployment_with(Some(json!(BUGGY_CHECKSUM)));
        assert_eq!(
            checksum_source(&deployment),
            ChecksumSource::ConfigMap {
                name: "demo-vmcp-vmcp-config",
                current: BUGGY_CHECKSUM
            }
        );
        assert_eq!(
            checksum_source(&deployment_with(None)),
            ChecksumSource::NoRunconfigChecksum
        );
    }

    #[test]
    fn a_configmap_name_that_is_not_an_object_name_is_never_looked_up() {
        for name in ["../secrets/x", "a/b", "a?watch=1", "UPPER", "-a", "a.", ""] {
            let mut deployment = deployment_with(Some(json!(BUGGY_CHECKSUM)));
            deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = json!(name);
            let source = checksum_source(&deployment);
            assert!(
                matches!(
                    source,
                    ChecksumSource::Unusable(Unsynced {
                        reason: UnsyncedReason::MalformedObject,
                        ..
                    }) | ChecksumSource::NotVmcp
                ),
                "{name:?}: {source:?}"
            );
        }
    }

    #[test]
    fn dns_subdomains() {
        for (name, ok) in [
            ("demo-vmcp-vmcp-config", true),
            ("a", true),
            ("a.b-c.9", true),
            (&"a".repeat(253), true),
            (&"a".repeat(254), false),
            ("A", false),
            ("a_b", false),
            ("a b", false),
            ("a%2fb", false),
            ("é", false),
        ] {
            assert_eq!(is_dns_subdomain(name), ok, "{name}");
        }
    }

    /// A workload that names its ConfigMap by an env `valueFrom`: found in
    /// an init container or a container; two ConfigMaps for the variable
    /// leave none to follow; no such variable, nothing to do.
    #[test]
    fn a_workload_names_its_configmap_by_an_env_value_from() {
        let follow = Follow {
            config_map: ConfigMapName::Env("CONFIG".to_owned()),
            ..Follow::vmcp_runconfig()
        };
        let env = |name: &str, configmap: &str| json!({"name": name, "valueFrom": {"configMapKeyRef": {"name": configmap, "key": "config.yaml"}}});
        let workload = |init: Value, containers: Value| {
            json!({"metadata": {"name": "w"}, "spec": {"template": {
                "metadata": {"annotations": {RUNCONFIG_CHECKSUM_ANNOTATION: "old"}},
                "spec": {"initContainers": init, "containers": containers}}}})
        };
        let one = workload(
            json!([]),
            json!([{"env": [{"name": "CONFIG", "value": "plain"}, env("OTHER", "x"), env("CONFIG", "w-config")]}]),
        );
        assert_eq!(
            checksum_source_of(&one, &follow),
            ChecksumSource::ConfigMap {
                name: Cow::Borrowed("w-config"),
                current: "old"
            }
        );
        let init_only = workload(json!([{"env": [env("CONFIG", "w-init")]}]), json!([{}]));
        assert_eq!(
            checksum_source_of(&init_only, &follow),
            ChecksumSource::ConfigMap {
                name: Cow::Borrowed("w-init"),
                current: "old"
            }
        );
        let agreeing = workload(
            json!([{"env": [env("CONFIG", "same")]}]),
            json!([{"env": [env("CONFIG", "same")]}]),
        );
        assert!(matches!(
            checksum_source_of(&agreeing, &follow),
            ChecksumSource::ConfigMap { name, .. } if name == "same"
        ));
        let two = workload(
            json!([{"env": [env("CONFIG", "a")]}]),
            json!([{"env": [env("CONFIG", "b")]}]),
        );
        let ChecksumSource::Unusable(unsynced) = checksum_source_of(&two, &follow) else {
            panic!("two ConfigMaps followed");
        };
        assert_eq!(unsynced.reason, UnsyncedReason::MalformedObject);
        assert!(unsynced.detail.contains("ConfigMaps a and b"), "{unsynced}");
        let none = workload(json!([]), json!([{"env": [env("OTHER", "x")]}]));
        assert_eq!(checksum_source_of(&none, &follow), ChecksumSource::NotVmcp);
        let invalid = workload(json!([]), json!([{"env": [env("CONFIG", "Not_Valid")]}]));
        assert!(matches!(
            checksum_source_of(&invalid, &follow),
            ChecksumSource::Unusable(Unsynced { detail, .. }) if detail.contains("env CONFIG names an invalid ConfigMap")
        ));
    }
}
