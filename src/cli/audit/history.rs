//! A Deployment's rollout history, read from its ReplicaSets: which
//! rollouts changed nothing but the checksum annotation, or nothing but
//! the order of some lists. Each ReplicaSet keeps the pod template of one
//! revision; consecutive revisions are compared as the webhook's
//! order-churn detector compares an UPDATE.
//!
//! Pure: the caller lists the ReplicaSets a page at a time and keeps, per
//! ReplicaSet of the Deployment, only its revision and pod template.

use serde_json::{Value, json};

use crate::order_churn::{Derived, Kind, LinkedChecksum, detect_deriving};
use crate::recognize::at;

/// The revision the Deployment controller stamps on each ReplicaSet.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The label the controller adds to each ReplicaSet's pod template (a
/// hash of it): different for every revision, so never compared.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// One revision's pod template, the `pod-template-hash` label taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub number: u64,
    pub template: Value,
}

/// The label selector that lists a Deployment's ReplicaSets: its own
/// `spec.selector`, as a query (`None`: it has none to send).
pub fn replicaset_selector(deployment: &Value) -> Option<String> {
    let selector = at(deployment, &["spec", "selector"])?;
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

/// The revision and pod template of `replicaset` when the Deployment with
/// uid `owner` owns it; `None` for another's, or one without a revision.
pub fn revision_of(replicaset: &Value, owner: &str) -> Option<Revision> {
    let owned = at(replicaset, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .is_some_and(|owners| {
            owners
                .iter()
                .any(|reference| reference.get("uid").and_then(Value::as_str) == Some(owner))
        });
    if !owned {
        return None;
    }
    let number = at(
        replicaset,
        &["metadata", "annotations", REVISION_ANNOTATION],
    )
    .and_then(Value::as_str)?
    .parse()
    .ok()?;
    let mut template = at(replicaset, &["spec", "template"])?.clone();
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    Some(Revision { number, template })
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

/// Compare each revision with the next; `checksum_annotation` is the
/// pod-template annotation that follows a ConfigMap, if any.
pub fn compare(mut revisions: Vec<Revision>, checksum_annotation: Option<&str>) -> Rollouts {
    revisions.sort_by_key(|revision| revision.number);
    let mut rollouts = Rollouts::default();
    for pair in revisions.windows(2) {
        let [old, new] = pair else { continue };
        rollouts.compared += 1;
        match compare_pair(&old.template, &new.template, checksum_annotation) {
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

/// The webhook's order-churn detector on two pod templates, as if a
/// Deployment were updated from one to the other; the checksum annotation
/// follows the ConfigMap and is no content of its own.
fn compare_pair(old: &Value, new: &Value, checksum_annotation: Option<&str>) -> Pair {
    let deployment = |template: &Value| json!({"spec": {"template": template}});
    let derived = Derived {
        checksum: None,
        workload: checksum_annotation.map(|annotation| LinkedChecksum {
            annotation,
            configmap: None,
        }),
    };
    match detect_deriving(
        Kind::Deployment,
        &deployment(old),
        &deployment(new),
        derived,
    ) {
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

    #[test]
    fn only_the_owners_revisions_are_kept_without_their_hash() {
        let owned = replicaset("3", "uid-1", "abc", template("c1", &["A"], "v1"));
        let revision = revision_of(&owned, "uid-1").unwrap();
        assert_eq!(revision.number, 3);
        assert_eq!(revision.template, template("c1", &["A"], "v1"));
        assert_eq!(revision_of(&owned, "uid-2"), None);
        let mut no_revision = owned.clone();
        no_revision["metadata"]["annotations"] = json!({});
        assert_eq!(revision_of(&no_revision, "uid-1"), None);
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
        // Listed in another order than the revisions'.
        let kept: Vec<Revision> = revisions
            .iter()
            .rev()
            .map(|(number, hash, template)| {
                revision_of(&replicaset(number, "uid", hash, template.clone()), "uid").unwrap()
            })
            .collect();
        assert_eq!(
            compare(kept.clone(), Some(CHECKSUM)),
            Rollouts {
                compared: 4,
                checksum_only: 2,
                order_only: 1,
                paths: vec!["spec.template.spec.containers[*].env".to_owned()],
            }
        );
        // Without a checksum to follow, a checksum change is content.
        assert_eq!(
            compare(kept, None),
            Rollouts {
                compared: 4,
                ..Rollouts::default()
            }
        );
    }

    #[test]
    fn the_replicaset_selector_is_the_deployments() {
        let deployment = json!({"spec": {"selector": {
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}],
        }}});
        assert_eq!(
            replicaset_selector(&deployment).as_deref(),
            Some("app=web,tier=front,env in (a,b)")
        );
        assert_eq!(replicaset_selector(&json!({"spec": {}})), None);
        assert_eq!(
            replicaset_selector(&json!({"spec": {"selector": {}}})),
            None
        );
    }
}
