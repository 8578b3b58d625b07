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
    for (name, body) in reviews::bodies().expect("review bodies") {
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

criterion_group!(benches, review_benches);
criterion_main!(benches);
