//! Tier 1, plain `cargo test`: no servers to install. The Bitwarden client and whole syncs
//! against the Bitwarden double (collection access and onboarding included), the command on bad
//! input, the generated CRD, the examples, and each cloud source against its double.

#[path = "../support/mod.rs"]
mod support;

mod bitwarden_client;
mod cli;
mod collections;
mod crd;
mod engine;
mod entra;
mod examples;
mod google;
mod okta;
mod onelogin;
