//! Tier 1, plain `cargo test`: no servers to install. The Bitwarden client and one whole sync
//! against the Bitwarden double, the generated CRD, the examples, and the OneLogin source against
//! its double.

#[path = "../support/mod.rs"]
mod support;

mod bitwarden_client;
mod crd;
mod engine;
mod examples;
mod onelogin;
