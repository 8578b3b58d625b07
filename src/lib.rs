#![forbid(unsafe_code)]
//! vmcp-normalizer: keeps ToolHive vMCP configuration in canonical order at admission.

pub mod admission;
pub mod certificates;
pub mod checksum;
pub mod checksum_sync;
pub mod cli;
pub mod cluster;
pub mod log_field;
pub mod lookup;
pub mod manifest;
pub mod metrics;
pub mod normalize;
pub mod order_churn;
pub mod recognize;
pub mod rules;
pub mod selftest;
pub mod server;
pub mod splice;
pub mod version;
pub mod workload;
