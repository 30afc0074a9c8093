//! Tier 1, plain `cargo test`: no servers to install. The Bitwarden client and one whole sync
//! against the Bitwarden double, the generated CRD, and the examples.

#[path = "../support/mod.rs"]
mod support;

mod bitwarden_client;
mod crd;
mod engine;
mod entra;
mod examples;
