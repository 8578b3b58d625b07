//! A workload's rollout history: which rollouts changed nothing but the
//! checksum annotation, or nothing but the order of some lists. A
//! Deployment keeps the pod template of each revision in a ReplicaSet; a
//! StatefulSet or DaemonSet in a ControllerRevision. Consecutive revisions
//! are compared as the webhook's order-churn detector compares an UPDATE.
//!
//! Pure: the caller lists the store's objects a page at a time and keeps,
//! per object the workload owns, only its revision and pod template.

use serde_json::{Value, json};

use crate::cluster::Resource;
use crate::order_churn::{Derived, Kind, LinkedChecksum, detect_deriving};
use crate::recognize::at;
use crate::workload::WorkloadKind;

/// The revision the Deployment controller stamps on each ReplicaSet.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The label the Deployment controller adds to each ReplicaSet's pod
/// template (a hash of it): different for every revision, so never compared.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// The StatefulSet and DaemonSet controllers' hash label; their stored
/// template does not usually carry it, but one that does is not compared
/// on it either.
pub const CONTROLLER_REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// Where a workload kind keeps its rollout history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// A Deployment's: a ReplicaSet per revision, numbered by
    /// [`REVISION_ANNOTATION`], the template at `spec.template`.
    ReplicaSets,
    /// A StatefulSet's or DaemonSet's: a ControllerRevision per revision,
    /// numbered by its `revision` field, the template at
    /// `data.spec.template` (a strategic-merge patch, with `$patch`).
    ControllerRevisions,
}

impl Store {
    pub fn of(kind: WorkloadKind) -> Self {
        match kind {
            WorkloadKind::Deployment => Store::ReplicaSets,
            WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => Store::ControllerRevisions,
        }
    }

    /// The resource to list.
    pub fn resource(self) -> Resource {
        match self {
            Store::ReplicaSets => Resource::replicasets(),
            Store::ControllerRevisions => Resource::controllerrevisions(),
        }
    }

    fn number(self, object: &Value) -> Option<u64> {
        match self {
            Store::ReplicaSets => at(object, &["metadata", "annotations", REVISION_ANNOTATION])
                .and_then(Value::as_str)?
                .parse()
                .ok(),
            Store::ControllerRevisions => object.get("revision").and_then(Value::as_u64),
        }
    }

    fn template(self, object: &Value) -> Option<Value> {
        let mut template = match self {
            Store::ReplicaSets => at(object, &["spec", "template"])?.clone(),
            Store::ControllerRevisions => {
                let mut template = at(object, &["data", "spec", "template"])?.clone();
                // `"$patch": "replace"` says how the controller applies the
                // stored template; it is no part of the template.
                if let Some(fields) = template.as_object_mut() {
                    fields.remove("$patch");
                }
                template
            }
        };
        if let Some(labels) = template
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove(match self {
                Store::ReplicaSets => POD_TEMPLATE_HASH_LABEL,
                Store::ControllerRevisions => CONTROLLER_REVISION_HASH_LABEL,
            });
        }
        Some(template)
    }
}

/// One revision's pod template, the store's hash label taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub number: u64,
    pub template: Value,
}

/// The label selector that lists a workload's ReplicaSets or
/// ControllerRevisions: its own `spec.selector`, as a query (`None`: it has
/// none to send).
pub fn history_selector(workload: &Value) -> Option<String> {
    let selector = at(workload, &["spec", "selector"])?;
    let mut query: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some(format!("{key}={}", value.as_str()?)))
        .collect();
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression.get("key").and_then(Value::as_str)?;
        let values = expression
            .get("values")
            .and_then(Value::as_array)
            .map(|values| {
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        query.push(match expression.get("operator").and_then(Value::as_str)? {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        });
    }
    (!query.is_empty()).then(|| query.join(","))
}

/// The revision and pod template of `object`, a ReplicaSet or
/// ControllerRevision as `store` says, when the workload with uid `owner`
/// owns it; `None` for another's, or one without a revision.
pub fn revision_of(store: Store, object: &Value, owner: &str) -> Option<Revision> {
    let owned = at(object, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .is_some_and(|owners| {
            owners
                .iter()
                .any(|reference| reference.get("uid").and_then(Value::as_str) == Some(owner))
        });
    if !owned {
        return None;
    }
    Some(Revision {
        number: store.number(object)?,
        template: store.template(object)?,
    })
}

/// What the rollouts between consecutive revisions changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollouts {
    /// Pairs of consecutive revisions compared.
    pub compared: usize,
    /// Rollouts whose pod templates differ only in the checksum annotation.
    pub checksum_only: usize,
    /// Rollouts whose pod templates differ only in the order of lists.
    pub order_only: usize,
    /// Those lists, each once, in the order first seen.
    pub paths: Vec<String>,
}

/// Compare each revision of a `kind` workload with the next;
/// `checksum_annotation` is the pod-template annotation that follows a
/// ConfigMap, if any.
pub fn compare(
    kind: WorkloadKind,
    mut revisions: Vec<Revision>,
    checksum_annotation: Option<&str>,
) -> Rollouts {
    revisions.sort_by_key(|revision| revision.number);
    let mut rollouts = Rollouts::default();
    for pair in revisions.windows(2) {
        let [old, new] = pair else { continue };
        rollouts.compared += 1;
        match compare_pair(kind, &old.template, &new.template, checksum_annotation) {
            Pair::ChecksumOnly => rollouts.checksum_only += 1,
            Pair::OrderOnly(paths) => {
                rollouts.order_only += 1;
                for path in paths {
                    if !rollouts.paths.contains(&path) {
                        rollouts.paths.push(path);
                    }
                }
            }
            Pair::Other => {}
        }
    }
    rollouts
}

#[derive(Debug, PartialEq, Eq)]
enum Pair {
    ChecksumOnly,
    OrderOnly(Vec<String>),
    Other,
}

/// The webhook's order-churn detector on two pod templates, as if a `kind`
/// workload were updated from one to the other; the checksum annotation
/// follows the ConfigMap and is no content of its own.
fn compare_pair(
    kind: WorkloadKind,
    old: &Value,
    new: &Value,
    checksum_annotation: Option<&str>,
) -> Pair {
    let workload = |template: &Value| json!({"spec": {"template": template}});
    let derived = Derived {
        checksum: None,
        workload: checksum_annotation.map(|annotation| LinkedChecksum {
            annotation,
            configmap: None,
        }),
    };
    match detect_deriving(Kind::from(kind), &workload(old), &workload(new), derived) {
        Ok(churn) if churn.checksum_only_rollout.is_some() => Pair::ChecksumOnly,
        Ok(churn) if !churn.lists.is_empty() => {
            let mut paths: Vec<String> = churn.lists.into_iter().map(|list| list.path).collect();
            if churn.more {
                paths.push("(more)".to_owned());
            }
            Pair::OrderOnly(paths)
        }
        _ => Pair::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKSUM: &str = "example.com/config-sha256";

    fn template(checksum: &str, env: &[&str], image: &str) -> Value {
        let env: Vec<Value> = env
            .iter()
            .map(|name| json!({"name": name, "value": "1"}))
            .collect();
        json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {CHECKSUM: checksum}},
            "spec": {"containers": [{"name": "web", "image": image, "env": env}]},
        })
    }

    fn replicaset(revision: &str, owner: &str, hash: &str, template: Value) -> Value {
        let mut template = template;
        template["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = json!(hash);
        json!({
            "metadata": {
                "name": format!("web-{hash}"),
                "annotations": {REVISION_ANNOTATION: revision},
                "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": owner}],
            },
            "spec": {"template": template},
        })
    }

    /// A ControllerRevision as the StatefulSet and DaemonSet controllers
    /// write it: the template as a replacing patch in `data`, the number in
    /// `revision`, the hash label on itself (and here on the template too).
    fn controllerrevision(revision: u64, owner: &str, hash: &str, template: Value) -> Value {
        let mut template = template;
        template["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL] = json!(hash);
        template["$patch"] = json!("replace");
        json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {
                "name": format!("web-{hash}"),
                "labels": {"app": "web", CONTROLLER_REVISION_HASH_LABEL: hash},
                // Not where a ControllerRevision's number is.
                "annotations": {REVISION_ANNOTATION: "99"},
                "ownerReferences": [{"kind": "StatefulSet", "name": "web", "uid": owner}],
            },
            "data": {"spec": {"template": template}},
            "revision": revision,
        })
    }

    #[test]
    fn only_the_owners_revisions_are_kept_without_their_hash() {
        let owned = replicaset("3", "uid-1", "abc", template("c1", &["A"], "v1"));
        let revision = revision_of(Store::ReplicaSets, &owned, "uid-1").unwrap();
        assert_eq!(revision.number, 3);
        assert_eq!(revision.template, template("c1", &["A"], "v1"));
        assert_eq!(revision_of(Store::ReplicaSets, &owned, "uid-2"), None);
        let mut no_revision = owned.clone();
        no_revision["metadata"]["annotations"] = json!({});
        assert_eq!(revision_of(Store::ReplicaSets, &no_revision, "uid-1"), None);
    }

    #[test]
    fn a_controllerrevision_gives_its_revision_field_and_bare_template() {
        let store = Store::ControllerRevisions;
        let owned = controllerrevision(4, "uid-1", "7f9c", template("c1", &["A"], "v1"));
        let revision = revision_of(store, &owned, "uid-1").unwrap();
        // The `revision` field, not the annotation; no `$patch`, no hash.
        assert_eq!(revision.number, 4);
        assert_eq!(revision.template, template("c1", &["A"], "v1"));
        assert_eq!(revision_of(store, &owned, "uid-2"), None);
        let mut no_owner = owned.clone();
        no_owner["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        assert_eq!(revision_of(store, &no_owner, "uid-1"), None);
        let mut no_revision = owned.clone();
        no_revision.as_object_mut().unwrap().remove("revision");
        assert_eq!(revision_of(store, &no_revision, "uid-1"), None);
        let mut no_data = owned.clone();
        no_data["data"] = json!({});
        assert_eq!(revision_of(store, &no_data, "uid-1"), None);
        // Read as a ReplicaSet, it has neither template nor number there.
        assert_eq!(revision_of(Store::ReplicaSets, &owned, "uid-1"), None);
    }

    #[test]
    fn each_workload_kind_has_its_store() {
        assert_eq!(Store::of(WorkloadKind::Deployment), Store::ReplicaSets);
        for kind in [WorkloadKind::StatefulSet, WorkloadKind::DaemonSet] {
            assert_eq!(Store::of(kind), Store::ControllerRevisions);
        }
        assert_eq!(
            Store::ControllerRevisions.resource().name(),
            "controllerrevisions.apps"
        );
        assert_eq!(Store::ReplicaSets.resource().name(), "replicasets.apps");
    }

    #[test]
    fn consecutive_revisions_are_told_apart() {
        let revisions = [
            // 1 -> 2: the checksum only; 2 -> 3: env order only (and the
            // checksum); 3 -> 4: a new image; 4 -> 5: the checksum only.
            ("1", "h1", template("c1", &["A", "B"], "v1")),
            ("2", "h2", template("c2", &["A", "B"], "v1")),
            ("3", "h3", template("c3", &["B", "A"], "v1")),
            ("4", "h4", template("c3", &["B", "A"], "v2")),
            ("5", "h5", template("c4", &["B", "A"], "v2")),
        ];
        for kind in WorkloadKind::ALL {
            // Listed in another order than the revisions', from the kind's store.
            let kept: Vec<Revision> = revisions
                .iter()
                .rev()
                .map(|(number, hash, template)| {
                    let template = template.clone();
                    let object = match Store::of(kind) {
                        Store::ReplicaSets => replicaset(number, "uid", hash, template),
                        Store::ControllerRevisions => {
                            controllerrevision(number.parse().unwrap(), "uid", hash, template)
                        }
                    };
                    revision_of(Store::of(kind), &object, "uid").unwrap()
                })
                .collect();
            assert_eq!(
                compare(kind, kept.clone(), Some(CHECKSUM)),
                Rollouts {
                    compared: 4,
                    checksum_only: 2,
                    order_only: 1,
                    paths: vec!["spec.template.spec.containers[*].env".to_owned()],
                },
                "{kind:?}"
            );
            // Without a checksum to follow, a checksum change is content.
            assert_eq!(
                compare(kind, kept, None),
                Rollouts {
                    compared: 4,
                    ..Rollouts::default()
                },
                "{kind:?}"
            );
        }
    }

    #[test]
    fn the_history_selector_is_the_deployments() {
        let deployment = json!({"spec": {"selector": {
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}],
        }}});
        assert_eq!(
            history_selector(&deployment).as_deref(),
            Some("app=web,tier=front,env in (a,b)")
        );
        assert_eq!(history_selector(&json!({"spec": {}})), None);
        assert_eq!(history_selector(&json!({"spec": {"selector": {}}})), None);
    }
}
