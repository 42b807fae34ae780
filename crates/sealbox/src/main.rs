//! The `sealbox` binary: parses the command line and wires the crates together.

mod access;
mod admin_cli;
mod api_glue;
mod audit_cli;
mod audit_glue;
mod config;
mod credentials;
mod iam;
mod identity;
mod keyservice;
mod meta_integrity;
mod metrics;
mod private_files;
mod rewrap_cli;
mod router;
mod s3_actions;
mod serve;
mod signing;
mod tls;
mod xks_config;
mod xks_glue;
mod xks_tls;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sealbox",
    version,
    about = "An S3-compatible object store that encrypts every byte at rest, with a built-in KMS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (S3 + KMS on one port).
    Serve(config::ServeArgs),
    /// Migrate data in: copy, split by plan, verify, decommission, re-encrypt in place.
    Migrate {
        #[command(subcommand)]
        command: sealbox_migrate::MigrateCommand,
    },
    /// Users, access keys and user policies (through the server's IAM API).
    Admin(admin_cli::AdminArgs),
    /// Re-wrap every object's data key under its KMS key's newest material (metadata only).
    Rewrap(rewrap_cli::RewrapArgs),
    /// The audit trail: verify, lookup, export-key.
    Audit {
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
    },
    /// Measure throughput, KMS ops/s and peak memory against a fresh server (prints a table).
    Bench(sealbox_bench::BenchOpts),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let cfg = config::ServerConfig::resolve(args)?;
            serve::init_tracing(&cfg);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(serve::run(cfg))
        }
        Command::Migrate { command } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let code = rt.block_on(sealbox_migrate::run(command))?;
            std::process::exit(code);
        }
        Command::Admin(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            std::process::exit(rt.block_on(admin_cli::run(args))?)
        }
        Command::Rewrap(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            std::process::exit(rt.block_on(rewrap_cli::run(args))?)
        }
        Command::Audit { command } => std::process::exit(audit_cli::run(command)?),
        Command::Bench(opts) => {
            // With no --server-bin the bench starts this very executable as `sealbox serve`.
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(sealbox_bench::run(opts))
        }
    }
}
