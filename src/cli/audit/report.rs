//! The audit's report: a table for people, JSON for machines. Written only
//! once the whole scan succeeded, so nothing partial ever looks complete.

use std::io::Write;

use serde::Serialize;

use super::findings::{Effect, Finding};
use crate::cluster::Scope;

/// A finished scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub scope: Scope,
    /// vMCP ConfigMaps and Deployments examined.
    pub configmaps: usize,
    pub deployments: usize,
    /// Objects of other kinds the rules judged; `None` without `--rules`.
    pub others: Option<usize>,
    pub findings: Vec<Finding>,
    /// Said on stderr, not in the report (rollout history not read).
    pub notes: Vec<String>,
}

impl Report {
    /// The worst effect found, if any.
    pub fn worst(&self) -> Option<Effect> {
        self.findings.iter().map(|f| f.effect).max()
    }

    /// How many objects have a finding of `effect`.
    fn objects_with(&self, effect: Effect) -> usize {
        let mut objects: Vec<(&str, &str, &str)> = self
            .findings
            .iter()
            .filter(|f| f.effect == effect)
            .map(|f| (f.namespace.as_str(), f.kind.as_str(), f.name.as_str()))
            .collect();
        objects.dedup();
        objects.len()
    }
}

/// NAMESPACE, KIND, NAME, FINDING columns (one row per finding), then a
/// summary line.
pub fn write_table(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let header = ["NAMESPACE", "KIND", "NAME", "FINDING"];
    let rows: Vec<[String; 4]> = report
        .findings
        .iter()
        .map(|f| {
            let reason = f.reason.map(|r| format!(" ({r})")).unwrap_or_default();
            [
                f.namespace.clone(),
                f.kind.clone(),
                f.name.clone(),
                format!("{}{reason}: {}", f.finding.as_str(), f.detail),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 4]| {
            format!(
                "{:w0$}   {:w1$}   {:w2$}   {}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
            )
        };
        writeln!(out, "{}", line(header))?;
        for row in &rows {
            writeln!(out, "{}", line([&row[0], &row[1], &row[2], &row[3]]))?;
        }
    }
    let scanned = match report.others {
        None => format!(
            "{} vMCP ConfigMaps and {} vMCP Deployments {}",
            report.configmaps, report.deployments, report.scope
        ),
        Some(others) => format!(
            "{} ConfigMaps, {} Deployments and {others} other objects the rules match {}",
            report.configmaps, report.deployments, report.scope
        ),
    };
    let would_change = report.objects_with(Effect::WouldChange);
    let cannot = report.objects_with(Effect::CannotNormalize);
    if would_change == 0 && cannot == 0 {
        writeln!(out, "all canonical: {scanned}")?;
    } else {
        writeln!(
            out,
            "not canonical: {} would change, {cannot} cannot be normalized, of {scanned}",
            objects(would_change)
        )?;
    }
    out.flush()
}

fn objects(count: usize) -> String {
    match count {
        1 => "1 object".to_owned(),
        _ => format!("{count} objects"),
    }
}

/// The JSON document (README, "Audit a live cluster"): `scope`, `scanned`
/// and `findings`, in that order.
pub fn write_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Document<'r> {
        scope: JsonScope<'r>,
        scanned: Scanned,
        findings: &'r [Finding],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct JsonScope<'r> {
        all_namespaces: bool,
        namespace: Option<&'r str>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Scanned {
        config_maps: usize,
        deployments: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        other_objects: Option<usize>,
    }
    let scope = match &report.scope {
        Scope::Namespace(namespace) => JsonScope {
            all_namespaces: false,
            namespace: Some(namespace),
        },
        Scope::AllNamespaces => JsonScope {
            all_namespaces: true,
            namespace: None,
        },
    };
    let document = Document {
        scope,
        scanned: Scanned {
            config_maps: report.configmaps,
            deployments: report.deployments,
            other_objects: report.others,
        },
        findings: &report.findings,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::super::findings::Code;
    use super::*;

    fn finding(name: &str, finding: Code, effect: Effect) -> Finding {
        let object = serde_json::json!({"metadata": {"namespace": "ns", "name": name}});
        Finding::about(&object, "ConfigMap", finding, effect, None, "d".to_owned())
    }

    #[test]
    fn objects_are_counted_once_and_the_worst_effect_wins() {
        let report = Report {
            scope: Scope::AllNamespaces,
            configmaps: 3,
            deployments: 0,
            others: None,
            notes: Vec::new(),
            findings: vec![
                finding("a", Code::BackendsOrder, Effect::WouldChange),
                finding("a", Code::ContentChecksumWrong, Effect::WouldChange),
                finding("b", Code::ContentChecksumMissing, Effect::Note),
            ],
        };
        assert_eq!(report.objects_with(Effect::WouldChange), 1);
        assert_eq!(report.worst(), Some(Effect::WouldChange));
        let mut table = Vec::new();
        write_table(&report, &mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.starts_with("NAMESPACE   KIND        NAME   FINDING\n"),
            "{table}"
        );
        assert!(table.ends_with("not canonical: 1 object would change, 0 cannot be normalized, of 3 vMCP ConfigMaps and 0 vMCP Deployments in all namespaces\n"), "{table}");
    }
}
