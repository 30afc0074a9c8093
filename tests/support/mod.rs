//! Test doubles and real-server harnesses shared by the integration tests. Each test file
//! declares `mod support;` and uses what it needs (hence `dead_code` is allowed: no file uses
//! everything).
#![allow(dead_code)]

pub mod bitwarden;
pub mod cli;
pub mod double;
pub mod entra;
pub mod flows;
pub mod google;
pub mod kube;
pub mod okta;
pub mod onelogin;
pub mod raw;
pub mod samba;
pub mod secrets;
pub mod slapd;
pub mod tls;
pub mod vendor;
