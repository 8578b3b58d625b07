//! A rule's selector as the API server's `labelSelector` query, so a list
//! sends only the objects the rule can match.

use super::{Operator, Selector};

impl Selector {
    /// `k=v` per matchLabels entry, then per expression `k in (a,b)`,
    /// `k notin (a,b)`, `k` or `!k`, comma-separated (the syntax kubectl
    /// and the API server read); `None` when it selects everything.
    pub fn to_query(&self) -> Option<String> {
        let labels = self
            .match_labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"));
        let expressions = self.match_expressions.iter().map(|expression| {
            let key = &expression.key;
            let values = || expression.values.join(",");
            match expression.operator {
                Operator::In => format!("{key} in ({})", values()),
                Operator::NotIn => format!("{key} notin ({})", values()),
                Operator::Exists => key.clone(),
                Operator::DoesNotExist => format!("!{key}"),
            }
        });
        let query: Vec<String> = labels.chain(expressions).collect();
        (!query.is_empty()).then(|| query.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Expression;
    use super::*;

    fn expression(key: &str, operator: Operator, values: &[&str]) -> Expression {
        Expression {
            key: key.to_owned(),
            operator,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn selectors_render_as_the_api_server_reads_them() {
        assert_eq!(Selector::default().to_query(), None);
        let selector = Selector {
            match_labels: [("b", "2"), ("a", "1")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            match_expressions: vec![
                expression("tier", Operator::In, &["web", "api"]),
                expression("env", Operator::NotIn, &["dev"]),
                expression("app.kubernetes.io/instance", Operator::Exists, &[]),
                expression("legacy", Operator::DoesNotExist, &[]),
            ],
        };
        assert_eq!(
            selector.to_query().as_deref(),
            Some("a=1,b=2,tier in (web,api),env notin (dev),app.kubernetes.io/instance,!legacy")
        );
    }

    /// The preset's workload selector is the one `audit` always sent.
    #[test]
    fn the_presets_selectors_are_the_vmcp_ones() {
        let preset = super::super::RuleSet::preset();
        let rule = &preset.rules()[0];
        assert_eq!(
            rule.matcher.selector.to_query(),
            Some(crate::recognize::vmcp_configmap_selector())
        );
        let workload = rule.workload.as_ref().unwrap();
        assert_eq!(
            workload.selector.to_query(),
            Some(crate::recognize::vmcp_deployment_selector())
        );
    }
}
