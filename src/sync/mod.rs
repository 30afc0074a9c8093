//! The sync core. No I/O: every function here takes data and returns data, so each rule of
//! `sync-semantics.md` is a table-driven test.

pub mod access;
pub mod email;
pub mod flatten;
pub mod grace;
pub mod guard;
pub mod hash;
pub mod model;
pub mod onboarding;
pub mod plan;
pub mod prepare;
pub mod request;
