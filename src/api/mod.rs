//! The `DirectorySync` resource (v1alpha1): spec, status, conditions and reasons, and the spec
//! validation that the controller and the CLI run before every sync.

mod reason;
mod spec;
mod status;
pub mod validate;

pub use reason::Reason;
pub use spec::*;
pub use status::*;

/// API group of every dirsync resource.
pub const GROUP: &str = "dirsync.dev";
/// Annotation that asks for an immediate full sync.
pub const SYNC_NOW_ANNOTATION: &str = "dirsync.dev/sync-now";
/// Annotation that lets one plan (by its hash) past the mass-removal guard.
pub const GUARD_OVERRIDE_ANNOTATION: &str = "dirsync.dev/guard-override";
