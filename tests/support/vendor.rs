//! The vendors' API descriptions (Microsoft Graph, Google Admin SDK Directory, Okta, OneLogin),
//! which tests check the cloud sources' requests and test doubles against. They are not in the
//! repository: `DIRSYNC_VENDOR_SPECS` names the directory holding them (CI sets it and fails
//! without them; see `.ci/run`).

use std::io::Write;
use std::path::PathBuf;

/// The environment variable naming the directory of vendor API descriptions.
pub const VENDOR_SPECS_VAR: &str = "DIRSYNC_VENDOR_SPECS";

/// The path of the vendor API description `name` (relative to `$DIRSYNC_VENDOR_SPECS`, e.g.
/// `"msgraph-v1.0-Users.yml"` or `"onelogin/UsersV2Api.md"`). `checks` names what the caller
/// would check with it, for the message when it cannot.
///
/// - Variable unset: prints one line to stderr saying which checks are skipped and returns `None`
///   (a developer without the descriptions can still run the rest of the suite).
/// - Variable set but the file missing: panics. A check that was asked for never passes silently.
pub fn vendor_spec(name: &str, checks: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(VENDOR_SPECS_VAR) else {
        // Straight to stderr, not `eprintln!`, which the test harness captures: the line shows in
        // a plain `cargo test` run.
        let _ = writeln!(
            std::io::stderr(),
            "vendor API description checks skipped ({checks}): set {VENDOR_SPECS_VAR} to the directory holding {name}"
        );
        return None;
    };
    assert!(
        !dir.is_empty(),
        "{VENDOR_SPECS_VAR} is set but empty: set it to the directory holding {name}, or unset it to skip {checks}"
    );
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.is_file(),
        "{VENDOR_SPECS_VAR} is set, but {} does not exist: {checks} cannot run",
        path.display()
    );
    Some(path)
}
