//! Self-managed serving certificates: the server keeps its own CA and leaf in
//! a Secret, rotates them ahead of expiry, publishes the CA in the `caBundle`
//! of its MutatingWebhookConfiguration, and serves the leaf from local files.

pub mod authority;
pub mod dev;
pub mod files;
pub mod self_managed;
pub mod store;
