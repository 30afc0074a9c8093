//! The outside-Kubernetes runner: `dirsync test` and `dirsync sync` read the same YAML a user
//! would `kubectl apply`, run the engine once, and print the result.

pub mod bench;
mod limits;
pub mod manifests;
pub mod output;
pub mod state;
mod strict;

use std::path::PathBuf;

use crate::Error;
use crate::api::Reason;
use crate::engine::{self, Connector, Outcome, RunOptions, SyncState};
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
    /// Indent the JSON output (compact otherwise, as `bwdc` prints it).
    pub pretty: bool,
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
            eprintln!("error: {}: {message}", Reason::InvalidSpec);
            EXIT_INVALID_INPUT
        }
        Err(Failure::Output(message)) => {
            eprintln!("error: cannot write the output: {message}");
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
    /// Files, flags or the state file: reason InvalidSpec.
    Input(String),
    /// Printing the result failed (a closed pipe).
    Output(String),
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
    let secrets = manifests
        .secret_store(&namespace)
        .map_err(|e| Failure::Input(e.to_string()))?;
    let previous = match &args.state {
        Some(path) => state::load(path).map_err(Failure::Input)?,
        None => SyncState::default(),
    };
    // A sync whose new baseline cannot be saved must not send anything: the guard and
    // skip-unchanged would start from nothing next time.
    if let Some(path) = &args.state
        && !args.dry_run
    {
        state::check_writable(path).map_err(Failure::Input)?;
    }
    let options = RunOptions {
        force: args.force,
        guard_override: args.guard_override.clone(),
        dry_run: args.dry_run,
        directory_only: args.dry_run && args.json,
    };
    let outcome = engine::run(&ds.spec, &previous, &options, &secrets, connector)
        .await
        .map_err(Failure::Sync)?;
    let result = report(args, &outcome, &previous, out);
    free_in_background(outcome);
    result
}

/// Drops a large value on another thread. The process exits once the result is printed; freeing
/// a large directory string by string would hold that up (a twentieth of a 100,000-user `test`).
fn free_in_background<T: Send + 'static>(value: T) {
    // If no thread can be started, the value is dropped here instead.
    let _ = std::thread::Builder::new().spawn(move || drop(value));
}

/// Prints the outcome (and saves the state file after a sync).
fn report(
    args: &RunArgs,
    outcome: &Outcome,
    previous: &SyncState,
    out: &mut dyn std::io::Write,
) -> Result<i32, Failure> {
    let write = |out: &mut dyn std::io::Write, text: &str| {
        out.write_all(text.as_bytes())
            .map_err(|e| Failure::Output(e.to_string()))
    };
    if args.dry_run {
        if args.json {
            // Streamed: a large directory's JSON is never held in memory as one string.
            let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut *out);
            let json = output::TestJson::new(&outcome.prepared);
            if args.pretty {
                serde_json::to_writer_pretty(&mut w, &json)
            } else {
                serde_json::to_writer(&mut w, &json)
            }
            .map_err(|e| Failure::Output(e.to_string()))?;
            std::io::Write::write_all(&mut w, b"\n").map_err(|e| Failure::Output(e.to_string()))?;
            std::io::Write::flush(&mut w).map_err(|e| Failure::Output(e.to_string()))?;
        } else {
            write(out, &output::test_text(outcome))?;
        }
        return Ok(EXIT_OK);
    }

    if let Some(path) = &args.state
        && outcome.state != *previous
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
            members: outcome.members,
            collections: &outcome.collections,
        };
        let text = if args.pretty {
            serde_json::to_string_pretty(&json)
        } else {
            serde_json::to_string(&json)
        };
        write(out, &(text.expect("serialises") + "\n"))?;
    } else {
        write(out, &output::sync_text(outcome, &outcome.api_url))?;
    }
    Ok(EXIT_OK)
}
