//! The outside-Kubernetes runner: `dirsync test` and `dirsync sync` read the same YAML a user
//! would `kubectl apply`, run the engine once, and print the result.

pub mod bench;
pub mod manifests;
pub mod output;
pub mod state;

use std::path::PathBuf;

use crate::Error;
use crate::api::Reason;
use crate::engine::{self, Connector, RunOptions, SyncState};
use manifests::Manifests;

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_SYNC_FAILED: i32 = 1;
pub const EXIT_INVALID_INPUT: i32 = 2;

#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    pub files: Vec<PathBuf>,
    pub name: Option<String>,
    pub state: Option<PathBuf>,
    pub json: bool,
    pub force: bool,
    pub guard_override: Option<String>,
    /// `test` (dry run) instead of `sync`.
    pub dry_run: bool,
}

/// Runs `test` or `sync`; returns the process exit code. Output goes to `out`, errors to stderr.
pub async fn run(args: &RunArgs, connector: &dyn Connector, out: &mut dyn std::io::Write) -> i32 {
    match run_inner(args, connector, out).await {
        Ok(code) => code,
        Err(Failure::Input(message)) => {
            eprintln!("error: {message}");
            EXIT_INVALID_INPUT
        }
        Err(Failure::Sync(err)) => {
            eprintln!("error: {}: {err}", err.reason());
            if input_error(&err) {
                EXIT_INVALID_INPUT
            } else {
                EXIT_SYNC_FAILED
            }
        }
    }
}

enum Failure {
    Input(String),
    Sync(Error),
}

/// Failures the user fixes in the files rather than in the directory or the organization.
fn input_error(err: &Error) -> bool {
    matches!(
        err.reason(),
        Reason::InvalidSpec | Reason::SecretNotFound | Reason::SecretKeyMissing
    )
}

async fn run_inner(args: &RunArgs, connector: &dyn Connector, out: &mut dyn std::io::Write) -> Result<i32, Failure> {
    let manifests = Manifests::load(&args.files).map_err(|e| Failure::Input(e.to_string()))?;
    let ds = manifests
        .select(args.name.as_deref(), &args.files)
        .map_err(|e| Failure::Input(e.to_string()))?;
    let namespace = ds.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
    let secrets = manifests.secret_store(&namespace);
    let previous = match &args.state {
        Some(path) => state::load(path).map_err(Failure::Input)?,
        None => SyncState::default(),
    };
    let options = RunOptions {
        force: args.force,
        guard_override: args.guard_override.clone(),
        dry_run: args.dry_run,
    };
    let outcome = engine::run(&ds.spec, &previous, &options, &secrets, connector)
        .await
        .map_err(Failure::Sync)?;

    let write = |out: &mut dyn std::io::Write, text: &str| {
        out.write_all(text.as_bytes())
            .map_err(|e| Failure::Input(e.to_string()))
    };
    if args.dry_run {
        // Streamed: a large directory's output is never held in memory as one string.
        let written = if args.json {
            output::write_test_json(&outcome.prepared, out)
        } else {
            output::write_test_text(&outcome, out)
        };
        written.map_err(|e| Failure::Input(e.to_string()))?;
        return Ok(EXIT_OK);
    }

    if let Some(path) = &args.state
        && outcome.state != previous
    {
        state::save(path, &outcome.state).map_err(Failure::Input)?;
    }
    if args.json {
        let json = output::SyncJson {
            reason: outcome.reason.to_string(),
            message: &outcome.message,
            users: outcome.users,
            groups: outcome.groups,
            changes: outcome.changes,
            requests: outcome.sent.len(),
            sync_hash: outcome.state.sync_hash.as_deref(),
            warnings: &outcome.warnings,
            pending_removals: &outcome.pending_removals,
        };
        write(out, &(serde_json::to_string_pretty(&json).expect("serialises") + "\n"))?;
    } else {
        write(out, &output::sync_text(&outcome, &outcome.api_url))?;
    }
    Ok(EXIT_OK)
}
