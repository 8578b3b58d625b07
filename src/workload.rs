//! The workload kinds whose pod template can follow a ConfigMap's checksum:
//! the `apps/v1` kinds with a pod template at `spec.template` that a writer
//! may change. Job (its template is immutable) and CronJob (its template is
//! at `spec.jobTemplate.spec.template`) are not among them.

use crate::rules::ObjectKind;

/// The group/version of every workload kind.
pub const API_VERSION: &str = "apps/v1";
/// Their API group.
pub const GROUP: &str = "apps";

/// A kind whose pod template (`spec.template`) can follow a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    /// Every workload kind, in the order error messages list them.
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    /// The kind's name, as objects and metric labels spell it.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    /// The resource (plural) the API server names in a review.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        }
    }

    /// The kind named `name`, if it is a workload kind.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind a review's group and resource name.
    pub fn of_resource(group: &str, resource: &str) -> Option<Self> {
        if group != GROUP {
            return None;
        }
        Self::ALL
            .into_iter()
            .find(|kind| kind.resource() == resource)
    }

    /// The kind as rules match it.
    pub fn object_kind(self) -> ObjectKind<'static> {
        ObjectKind {
            api_version: Some(API_VERSION),
            kind: self.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_resources_go_both_ways() {
        for kind in WorkloadKind::ALL {
            assert_eq!(WorkloadKind::named(kind.name()), Some(kind));
            assert_eq!(
                WorkloadKind::of_resource("apps", kind.resource()),
                Some(kind)
            );
            assert_eq!(kind.resource(), format!("{}s", kind.name().to_lowercase()));
            // Another group's resource of the same name is not a workload.
            assert_eq!(WorkloadKind::of_resource("", kind.resource()), None);
        }
        for other in ["Job", "CronJob", "ReplicaSet", "deployment"] {
            assert_eq!(WorkloadKind::named(other), None, "{other}");
        }
        assert_eq!(WorkloadKind::of_resource("batch", "jobs"), None);
    }
}
