//! The same wiring the `sealbox` binary uses, as a standalone program:
//! `cargo run -p sealbox-migrate --example migrate -- migrate copy ./dir s3://bucket --dst-endpoint ...`

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "sealbox")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate data in: copy, split by plan, verify, decommission, re-encrypt in place.
    Migrate {
        #[command(subcommand)]
        command: sealbox_migrate::MigrateCommand,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Migrate { command } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let code = rt.block_on(sealbox_migrate::run(command))?;
            std::process::exit(code);
        }
    }
}
