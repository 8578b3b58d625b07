//! Which resource serves a rule's kind: built-in kinds from a table, any
//! other by API discovery (`GET /api/v1` or `/apis/GROUP/VERSION`, which
//! every authenticated user may read), asked once per apiVersion.

use std::collections::HashMap;

use crate::cluster::{DiscoveredResource, Lister, Resource};
use crate::workload::{self, WorkloadKind};

use super::AuditError;

/// Resolved kinds, and discovery documents already read.
#[derive(Debug, Default)]
pub struct Kinds {
    /// `None`: the API server serves no such apiVersion.
    discovered: HashMap<String, Option<Vec<DiscoveredResource>>>,
}

impl Kinds {
    /// The resource of `kind` (at `api_version`, when the rule names one),
    /// for the messages of rule `rule`.
    pub async fn resolve(
        &mut self,
        lister: &Lister,
        rule: &str,
        api_version: Option<&str>,
        kind: &str,
    ) -> Result<Resource, AuditError> {
        if let Some(resource) = known(api_version, kind) {
            return Ok(resource);
        }
        let Some(api_version) = api_version else {
            return Err(AuditError::NoApiVersion {
                rule: rule.to_owned(),
                kind: kind.to_owned(),
            });
        };
        if !self.discovered.contains_key(api_version) {
            let resources = lister.discover(api_version).await?;
            self.discovered.insert(api_version.to_owned(), resources);
        }
        let unknown = || AuditError::UnknownKind {
            rule: rule.to_owned(),
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        };
        let resources = self
            .discovered
            .get(api_version)
            .and_then(Option::as_ref)
            .ok_or_else(unknown)?;
        let found = resources
            .iter()
            .find(|resource| resource.kind == kind)
            .ok_or_else(unknown)?;
        Ok(Resource::new(
            api_version,
            kind,
            &found.name,
            found.namespaced,
        ))
    }
}

/// Kinds known without discovery (a rule may leave out their apiVersion):
/// ConfigMap, and every workload kind a link may name.
fn known(api_version: Option<&str>, kind: &str) -> Option<Resource> {
    let (version, plural) = match WorkloadKind::named(kind) {
        Some(workload) => (workload::API_VERSION, workload.resource()),
        None if kind == "ConfigMap" => ("v1", "configmaps"),
        None => return None,
    };
    api_version
        .is_none_or(|wanted| wanted == version)
        .then(|| Resource::new(version, kind, plural, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_kinds_need_no_discovery() {
        assert_eq!(known(None, "ConfigMap"), Some(Resource::configmaps()));
        assert_eq!(known(Some("v1"), "ConfigMap"), Some(Resource::configmaps()));
        assert_eq!(known(None, "Deployment"), Some(Resource::deployments()));
        assert_eq!(
            known(Some("apps/v1"), "StatefulSet"),
            Some(Resource::new(
                "apps/v1",
                "StatefulSet",
                "statefulsets",
                true
            ))
        );
        assert_eq!(
            known(None, "DaemonSet").map(|resource| resource.plural),
            Some("daemonsets".to_owned())
        );
        // Another version of a built-in kind goes to discovery.
        assert_eq!(known(Some("apps/v1beta2"), "Deployment"), None);
        assert_eq!(known(Some("example.com/v1"), "ListenerSet"), None);
    }
}
