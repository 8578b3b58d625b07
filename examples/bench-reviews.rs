//! Write the AdmissionReview bodies the server load benchmark sends
//! (bench/server.sh): `cargo run --example bench-reviews -- DIR`.
//!
//! - `buggy.json`: the fixture vMCP ConfigMap in buggy order (a patch comes back)
//! - `canonical.json`: the normalized fixture (no patch)
//! - `not-vmcp.json`: the buggy fixture without the vMCP label (same size, no patch)
//! - `deployment.json`: the fixture vMCP Deployment (bench/deployments.sh): its
//!   checksum is the buggy ConfigMap's, so with that ConfigMap stored the
//!   webhook reads it live and patches the checksum to the canonical one

use std::path::PathBuf;

#[path = "../benches/support/reviews.rs"]
mod reviews;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .unwrap_or_else(|| "bench/out".into()),
    );
    std::fs::create_dir_all(&dir)?;
    for (name, body) in reviews::bodies()? {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, body)?;
        println!("{}", path.display());
    }
    Ok(())
}
