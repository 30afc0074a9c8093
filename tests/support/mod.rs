//! Test doubles shared by the integration tests. Each test file declares `mod support;` and uses
//! what it needs (hence `dead_code` is allowed: no file uses everything).
#![allow(dead_code)]

pub mod bitwarden;
pub mod secrets;
