//! `sealbox migrate`: moving data into (and re-encrypting data inside) an S3-compatible store.
//!
//! Owns: the `migrate` command line ([`MigrateCommand`]), the copy engine (streaming, multipart,
//! verification, SQLite checkpoint, JSON report), plan files that split one source over several
//! buckets, provisioning of those buckets (KMS keys, default encryption, bucket policies),
//! decommissioning of verified sources and in-place re-encryption by self-copy.
//!
//! Must never: count an object done before its destination was verified, delete a source object
//! that a report and a fresh look at the destination do not both vouch for, or buffer a whole
//! object in memory (bodies move in bounded parts).
//!
//! Start reading at [`run`], then `copy.rs` (the engine) and `checkpoint.rs` (what "done" means).

mod checkpoint;
mod cli;
mod conn;
mod copy;
mod decommission;
mod error;
mod location;
mod plan;
mod progress;
mod provision;
mod reencrypt;
mod report;

pub use cli::{
    ApplyArgs, ConnOpts, CopyArgs, DecommissionArgs, MigrateArgs, MigrateCommand, PlanArgs, ReencryptArgs, RewrapArgs,
    SseArg, TransferOpts, VerifyMode,
};
pub use error::MigrateError;

/// Runs one `sealbox migrate` subcommand and returns the process exit code: `Ok(0)` everything
/// done and verified, `Ok(1)` some objects failed (listed in the summary and report), `Ok(2)` the
/// operator declined the decommission prompt. `Err` means the run could not start or was refused
/// (unreachable endpoint, rejected credentials, missing bucket, bad plan file, decommission safety
/// check): print it and exit non-zero.
pub async fn run(cmd: MigrateCommand) -> anyhow::Result<i32> {
    match cmd {
        MigrateCommand::Copy(args) => copy::run_copy(args).await,
        MigrateCommand::Plan(args) => plan::run_plan(args).await,
        MigrateCommand::Apply(args) => plan::run_apply(args).await,
        MigrateCommand::Decommission(args) => decommission::run_decommission(args).await,
        MigrateCommand::Reencrypt(args) => reencrypt::run_reencrypt(args).await,
        MigrateCommand::Rewrap(_) => Err(MigrateError::RewrapUnavailable.into()),
    }
}
