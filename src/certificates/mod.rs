//! Self-managed serving certificates: the server keeps its own CA and leaf in
//! a Secret, rotates them ahead of expiry, and publishes the CA in the
//! `caBundle` of its MutatingWebhookConfiguration.

pub mod authority;

pub mod store;
