//! Answer one of the benchmark bodies N times in process, for profilers and
//! instruction counters (BENCHMARKS.md, "The whole answer in process"):
//!
//! ```sh
//! cargo build --release --example review-loop
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/review-loop buggy 600
//! ```
//!
//! Bodies: `buggy`, `canonical`, `not-vmcp` (see benches/support/reviews.rs).

use std::sync::Arc;
use std::time::Duration;

use vmcp_normalizer::admission::Admission;
use vmcp_normalizer::metrics::Metrics;

#[path = "../benches/support/reviews.rs"]
mod reviews;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "buggy".to_owned());
    let count: usize = args.next().as_deref().unwrap_or("1000").parse()?;
    let body = reviews::bodies()?
        .into_iter()
        .find(|(body, _)| *body == name)
        .ok_or_else(|| format!("no body named {name:?}"))?
        .1;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let admission = Admission::new(Arc::new(Metrics::new()));
    let mut answered = 0;
    for _ in 0..count {
        answered += runtime
            .block_on(admission.review(&body, Duration::from_secs(10)))?
            .len();
    }
    println!("{count} answers, {answered} bytes");
    Ok(())
}
