//! Cost of the core: the fixture, large sets, and how it grows.
//!
//! Results and the machine they were taken on are in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use vmcp_normalizer::checksum::content_checksum;
use vmcp_normalizer::normalize::{normalize_configmap, sort_backends};
use vmcp_normalizer::order_churn::{Kind, detect};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    yaml_serde::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture yaml")
}

/// An operator-style config with `n` backends, in reverse order or sorted.
fn config(n: usize, sorted: bool) -> String {
    let mut text = String::from("name: bench\ngroupRef: g\nbackends:\n");
    let order: Vec<usize> = if sorted {
        (0..n).collect()
    } else {
        (0..n).rev().collect()
    };
    for i in order {
        text.push_str(&format!(
            "    - name: backend-{i:05}\n      url: http://mcp-backend-{i:05}-proxy.ns.svc.cluster.local:8080/mcp\n      transport: streamable-http\n      metadata:\n        group: g\n        namespace: ns\n        tool_type: mcp\n        workload_status: Running\n        workload_type: mcp_server\n"
        ));
    }
    text.push_str("incomingAuth:\n    type: anonymous\noutgoingAuth:\n    source: inline\n");
    text
}

fn configmap(config: &str) -> Value {
    let mut object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bench-vmcp-config", "namespace": "ns",
                     "labels": {"toolhive.stacklok.io/component": "vmcp-config"},
                     "annotations": {}},
        "data": {"config.yaml": config},
    });
    let checksum = content_checksum(&object).expect("checksum");
    object["metadata"]["annotations"]["toolhive.stacklok.dev/content-checksum"] =
        Value::String(checksum);
    object
}

fn fixture_benches(c: &mut Criterion) {
    let buggy = fixture("vmcp-configmap.yaml");
    let canonical = fixture("vmcp-configmap.normalized.yaml");
    let mut group = c.benchmark_group("fixture");
    group.bench_function("needs_patch", |b| {
        b.iter(|| normalize_configmap(black_box(&buggy)))
    });
    group.bench_function("canonical", |b| {
        b.iter(|| normalize_configmap(black_box(&canonical)))
    });
    group.finish();
}

fn set_size_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("backends");
    for n in [10, 100, 300, 1000, 3000] {
        let shuffled = configmap(&config(n, false));
        let sorted = configmap(&config(n, true));
        let bytes = shuffled["data"]["config.yaml"].as_str().map_or(0, str::len) as u64;
        group.throughput(Throughput::Bytes(bytes));
        group.bench_with_input(BenchmarkId::new("needs_patch", n), &shuffled, |b, o| {
            b.iter(|| normalize_configmap(black_box(o)))
        });
        group.bench_with_input(BenchmarkId::new("canonical", n), &sorted, |b, o| {
            b.iter(|| normalize_configmap(black_box(o)))
        });
    }
    group.finish();
}

/// The reorder alone: an in-order list costs one parse; a list that moves
/// costs that plus the reassembly and the proof (a second parse and a tree
/// comparison). The difference is what the proof costs.
fn proof_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("sort_backends");
    for n in [5, 300] {
        let shuffled = config(n, false);
        let sorted = config(n, true);
        group.bench_with_input(BenchmarkId::new("in_order", n), &sorted, |b, t| {
            b.iter(|| sort_backends(black_box(t)))
        });
        group.bench_with_input(
            BenchmarkId::new("reorder_and_prove", n),
            &shuffled,
            |b, t| b.iter(|| sort_backends(black_box(t))),
        );
    }
    group.finish();
}

/// The order-churn detector on the operator's write: the buggy fixture over
/// its canonical form (both config.yaml texts read) and over itself (nothing
/// read), and 200 backends (55 KB, under the 64 KiB bound) reversed over sorted.
fn order_churn_benches(c: &mut Criterion) {
    let buggy = fixture("vmcp-configmap.yaml");
    let canonical = fixture("vmcp-configmap.normalized.yaml");
    let mut group = c.benchmark_group("order_churn");
    group.bench_function("fixture_reordered", |b| {
        b.iter(|| detect(Kind::ConfigMap, black_box(&canonical), black_box(&buggy)))
    });
    group.bench_function("fixture_unchanged", |b| {
        b.iter(|| detect(Kind::ConfigMap, black_box(&buggy), black_box(&buggy)))
    });
    let (shuffled, sorted) = (
        configmap(&config(200, false)),
        configmap(&config(200, true)),
    );
    // What is measured is a detection, not a skip.
    for (old, new) in [(&canonical, &buggy), (&sorted, &shuffled)] {
        let churn = detect(Kind::ConfigMap, old, new);
        assert_eq!(
            churn.as_ref().map(|churn| churn.lists.len()),
            Ok(1),
            "{churn:?}"
        );
    }
    group.bench_function("reordered_200", |b| {
        b.iter(|| detect(Kind::ConfigMap, black_box(&sorted), black_box(&shuffled)))
    });
    group.finish();
}

criterion_group!(
    benches,
    fixture_benches,
    set_size_benches,
    proof_benches,
    order_churn_benches
);
criterion_main!(benches);
