//! What a rules file of 100 rules adds to a review, against the built-in
//! preset alone (one rule): for a ConfigMap that matches none of them, and
//! for a buggy vMCP ConfigMap matched by the preset standing last (99 rules
//! tried before it). The whole answer in process, as benches/admission.rs.
//!
//! Results and the machine they were taken on are in BENCHMARKS.md.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use vmcp_normalizer::admission::Admission;
use vmcp_normalizer::metrics::Metrics;
use vmcp_normalizer::rules::RuleSet;

#[path = "support/reviews.rs"]
mod reviews;

/// 99 rules that match ConfigMaps by a label none of the bodies carry (each
/// with a name pattern, a nested set and a checksum, so each is a whole
/// rule), then the preset: 100 rules.
fn hundred_rules() -> RuleSet {
    let mut text =
        String::from("apiVersion: vmcp-normalizer.io/v1alpha1\nkind: NormalizationRules\nrules:\n");
    for n in 0..99 {
        let _ = write!(
            text,
            "- name: producer-{n}\n  match:\n    kind: ConfigMap\n    name: '*-config-{n}'\n    selector:\n      matchLabels: {{example.com/producer: p{n}}}\n  key: config.yaml\n  format: yaml\n  sets: [{{path: 'routes[*].upstreams', by: name}}]\n  checksum: {{annotation: example.com/sha256, algorithm: sha256}}\n"
        );
    }
    // The preset last: the worst case for the object it matches.
    text.push_str("include: [toolhive-vmcp]\n");
    let rules = RuleSet::from_yaml(&text).expect("100 rules");
    assert_eq!(rules.rules().len(), 100);
    rules
}

fn rules_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let bodies = reviews::bodies().expect("review bodies");
    let body = |name: &str| {
        bodies
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, body)| body.clone())
            .expect("body")
    };
    let with = |rules: RuleSet| {
        Admission::new(Arc::new(Metrics::new())).with_rules(Arc::new(ArcSwap::from_pointee(rules)))
    };
    let hundred = hundred_rules();
    // `include` puts the preset first; move it last.
    let hundred_preset_last = {
        let mut rules = hundred.rules().to_vec();
        rules.rotate_left(1);
        RuleSet::from_rules(rules)
    };
    for (group_name, body_name) in [("rules/no-match", "not-vmcp"), ("rules/match", "buggy")] {
        let body = body(body_name);
        let mut group = c.benchmark_group(group_name);
        for (name, admission) in [
            ("preset", with(RuleSet::preset())),
            ("100-rules", with(hundred_preset_last.clone())),
        ] {
            group.bench_function(name, |b| {
                b.iter(|| {
                    runtime
                        .block_on(admission.review(black_box(&body), Duration::from_secs(10)))
                        .expect("an answer")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, rules_benches);
criterion_main!(benches);
