//! The `dirsync` binary: CLI parsing and wiring only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dirsync::cli::{self, RunArgs};
use dirsync::engine::DefaultConnector;
use dirsync::telemetry::{self, LogFormat};

/// Keeps a Bitwarden organization's members and groups in step with a company directory.
#[derive(Parser)]
#[command(name = "dirsync", version, about)]
struct Cli {
    /// Log level (or a RUST_LOG-style filter); logs go to stderr.
    #[arg(long, global = true, default_value = "info", env = "DIRSYNC_LOG_LEVEL")]
    log_level: String,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "DIRSYNC_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Dry run: read the directory and print the users and groups a sync would send.
    Test {
        #[command(flatten)]
        run: RunFlags,
        /// Print JSON in the shape `bwdc test` prints.
        #[arg(long)]
        json: bool,
    },
    /// Run one sync and print what was sent and what changed.
    Sync {
        #[command(flatten)]
        run: RunFlags,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        /// Ignore the skip-unchanged hash and the incremental cursor (as `dirsync.dev/sync-now`).
        #[arg(long)]
        force: bool,
        /// Let the plan with this hash past the mass-removal guard (as `dirsync.dev/guard-override`).
        #[arg(long, value_name = "HASH")]
        guard_override: Option<String>,
    },
    /// Print the DirectorySync CustomResourceDefinition (YAML).
    Crd,
    /// Run the operator (watches DirectorySyncs in a cluster).
    Controller(ControllerFlags),
    /// Measure the sync core on a synthetic directory (no network).
    Bench {
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        #[arg(long, default_value_t = 1_000)]
        groups: usize,
    },
}

#[derive(Args)]
struct ControllerFlags {
    /// Watch DirectorySyncs (and Secrets) in this namespace only; all namespaces when unset.
    #[arg(long, env = "DIRSYNC_NAMESPACE")]
    namespace: Option<String>,
    /// How many syncs may run at the same time.
    #[arg(long, default_value_t = 4)]
    concurrency: u16,
    /// Address of the /metrics, /healthz and /readyz endpoint.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: std::net::SocketAddr,
    /// Only the holder of a coordination.k8s.io Lease reconciles (for more than one replica).
    #[arg(long)]
    leader_election: bool,
    #[arg(long, default_value = "dirsync-leader")]
    lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long)]
    lease_namespace: Option<String>,
}

#[derive(Args)]
struct RunFlags {
    /// YAML files holding a DirectorySync and the Secrets it references (repeatable).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Which DirectorySync, when the files hold several.
    #[arg(long)]
    name: Option<String>,
    /// Keep the hash, cursor and last counts between runs in this JSON file.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Indent the JSON output by two spaces (as `bwdc --pretty`); it is compact otherwise.
    #[arg(long, requires = "json")]
    pretty: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log_level, cli.log_format);
    dirsync::init_crypto();
    let code = match cli.command {
        Command::Crd => {
            print!("{}", dirsync::api::crd_yaml());
            0
        }
        Command::Bench { users, groups } => match cli::bench::run(users, groups, &mut std::io::stdout()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
        Command::Controller(flags) => controller(flags),
        Command::Test { run, json } => block_on(RunArgs {
            files: run.files,
            name: run.name,
            state: run.state,
            json,
            pretty: run.pretty,
            dry_run: true,
            ..Default::default()
        }),
        Command::Sync {
            run,
            json,
            force,
            guard_override,
        } => block_on(RunArgs {
            files: run.files,
            name: run.name,
            state: run.state,
            json,
            pretty: run.pretty,
            force,
            guard_override,
            dry_run: false,
        }),
    };
    ExitCode::from(code as u8)
}

fn controller(flags: ControllerFlags) -> i32 {
    let identity = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "dirsync".to_string());
    let identity = format!("{identity}-{}", std::process::id());
    let options = dirsync::controller::Options {
        namespace: flags.namespace,
        concurrency: flags.concurrency,
        metrics_addr: flags.metrics_addr,
        leader_election: flags.leader_election,
        lease_name: flags.lease_name,
        lease_namespace: flags
            .lease_namespace
            .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "default".to_string()),
        identity,
    };
    // One thread: the controller waits on I/O almost all the time, and one thread (one malloc
    // arena, one stack) keeps 1,000 idle DirectorySyncs under 30 MiB. The CPU-heavy steps of a
    // sync (parsing pages, planning) take well under a second, far below the 15 s lease.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(dirsync::controller::run(options, std::sync::Arc::new(DefaultConnector))) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn block_on(args: RunArgs) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(cli::run(&args, &DefaultConnector, &mut std::io::stdout()))
}
