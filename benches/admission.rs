//! Cost of a whole answer in process: parse the AdmissionReview, decide, and
//! encode the response, for the bodies the server load benchmark sends. The
//! difference between `buggy` and `not-vmcp` is what the webhook adds per
//! patched write, without TLS, HTTP/2 or the load generator.
//!
//! Results and the machine they were taken on are in BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vmcp_normalizer::admission::Admission;
use vmcp_normalizer::metrics::Metrics;

#[path = "support/reviews.rs"]
mod reviews;

fn review_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let admission = Admission::new(Arc::new(Metrics::new()));
    let mut group = c.benchmark_group("review");
    let mut bodies = reviews::bodies().expect("review bodies");
    bodies.push(("buggy-over-canonical", churn_body(&bodies)));
    for (name, body) in bodies {
        if name == "deployment" {
            // Needs the live ConfigMap lookup: bench/deployments.sh measures it.
            continue;
        }
        group.throughput(Throughput::Bytes(body.len() as u64));
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

/// The operator's write of the buggy order over the stored canonical form:
/// `buggy` with that `oldObject`, so the order-churn detector reads both
/// config.yaml texts (the other bodies carry an `oldObject` equal to the
/// object, which it compares without reading any document).
fn churn_body(bodies: &[reviews::Body]) -> Vec<u8> {
    let (_, buggy) = bodies
        .iter()
        .find(|(name, _)| *name == "buggy")
        .expect("the buggy body");
    let mut review: serde_json::Value = serde_json::from_slice(buggy).expect("JSON");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vmcp-configmap.normalized.yaml"
    );
    let canonical: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("YAML");
    review["request"]["oldObject"] = canonical;
    serde_json::to_vec(&review).expect("JSON")
}

criterion_group!(benches, review_benches);
criterion_main!(benches);
