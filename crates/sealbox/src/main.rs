//! The `sealbox` binary: parses the command line and wires the crates together.

mod access;
mod admin_cli;
mod api_glue;
mod audit_cli;
mod audit_glue;
mod backup;
mod config;
mod console_glue;
mod credentials;
mod iam;
mod identity;
mod keyservice;
mod meta_integrity;
mod metrics;
mod private_files;
mod restore;
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
    Serve(Box<config::ServeArgs>),
    /// Migrate data in: `migrate SRC DST` (= `migrate copy`), or split by plan, verify,
    /// decommission, re-encrypt in place.
    Migrate(Box<sealbox_migrate::MigrateArgs>),
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
    /// Copy a data directory consistently while its server runs (no root key unless asked).
    Backup(backup::BackupArgs),
    /// Check a backup (every blob's tags, the audit chain) and lay it out as a new data directory.
    Restore(restore::RestoreArgs),
    /// Print a shell completion script: `sealbox completions bash > /etc/bash_completion.d/sealbox`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `sealbox man > sealbox.1 && man ./sealbox.1`.
    Man,
}

/// The command line's definition, for completion scripts and the man page.
fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let cfg = config::ServerConfig::resolve(*args)?;
            serve::init_tracing(&cfg);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(serve::run(cfg))
        }
        Command::Migrate(args) => {
            let Some(command) = args.into_command() else {
                let mut cmd = command();
                let migrate = cmd.find_subcommand_mut("migrate").expect("migrate is a subcommand");
                migrate.print_help()?;
                std::process::exit(2);
            };
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
        Command::Backup(args) => std::process::exit(backup::run(args)?),
        Command::Restore(args) => std::process::exit(restore::run(args)?),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "sealbox", &mut script);
            print_quietly(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command()).render(&mut page)?;
            print_quietly(&page)
        }
    }
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is not an error.
fn print_quietly(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        // clap's own checks (conflicting names, bad defaults) over every subcommand, including the
        // hand-written `migrate` arguments.
        super::command().debug_assert();
        let mut script = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut super::command(), "sealbox", &mut script);
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("backup") && script.contains("restore") && script.contains("completions"));
    }
}
