//! dirsync: keeps a Bitwarden organization's members and groups in step with a company directory.
//!
//! Data flows one way: a [`source`] yields users and groups → [`sync`] (no I/O) turns them and the
//! last state into a plan → the [`bitwarden`] client sends it → the [`engine`] records the outcome
//! for the controller or the [`cli`] runner.

pub mod api;
pub mod bitwarden;
pub mod cli;
pub mod controller;
pub mod engine;
mod error;
pub mod metrics;
pub mod net;
pub mod secrets;
pub mod source;
pub mod sync;
pub mod telemetry;

pub use error::Error;

/// Installs the process-wide TLS crypto provider (ring). Every TLS client in the crate (kube,
/// reqwest, LDAP) uses rustls with this one provider. Safe to call more than once.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
