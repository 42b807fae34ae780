//! The `sealbox migrate` command line. The binary flattens [`MigrateCommand`] under `migrate`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// `sealbox migrate <subcommand>`.
#[derive(Debug, Clone, Subcommand)]
pub enum MigrateCommand {
    /// Copy a local folder or an S3 bucket/prefix into an S3 bucket/prefix, verifying every object.
    Copy(CopyArgs),
    /// Print what a plan file would do to SRC (rule -> bucket, counts, bytes, unmatched keys).
    Plan(PlanArgs),
    /// Run a plan file: split SRC over the buckets its rules name.
    Apply(ApplyArgs),
    /// Delete source objects that a migration report shows verified (after re-checking them).
    Decommission(DecommissionArgs),
    /// Re-encrypt objects in place by copying each one onto itself with new SSE settings.
    Reencrypt(ReencryptArgs),
    /// Re-wrap data keys under the newest KMS material without rewriting data (not available yet).
    #[command(hide = true)]
    Rewrap(RewrapArgs),
}

/// `sealbox migrate SRC DST [copy options]` (the short form of `migrate copy`) or
/// `sealbox migrate <subcommand> ...`. Parsed by hand from clap's matches: clap's derive cannot
/// tell an `Option` of [`CopyArgs`] apart from its absence (it flattens more options).
#[derive(Debug, Clone)]
pub struct MigrateArgs {
    pub command: Option<MigrateCommand>,
    /// `SRC DST` with no subcommand: the same as `migrate copy SRC DST`.
    pub copy: Option<CopyArgs>,
}

impl MigrateArgs {
    /// The subcommand to run: the one named, or `copy` for the short form.
    pub fn into_command(self) -> Option<MigrateCommand> {
        self.command.or(self.copy.map(MigrateCommand::Copy))
    }
}

impl clap::FromArgMatches for MigrateArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        if matches.subcommand_name().is_some() {
            Ok(Self { command: Some(MigrateCommand::from_arg_matches_mut(matches)?), copy: None })
        } else {
            Ok(Self { command: None, copy: Some(CopyArgs::from_arg_matches_mut(matches)?) })
        }
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for MigrateArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let cmd = CopyArgs::augment_args(MigrateCommand::augment_subcommands(cmd));
        cmd.args_conflicts_with_subcommands(true).subcommand_negates_reqs(true)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Where the source and destination endpoints are and which credentials they take.
/// Anything not given comes from the usual AWS chain: AWS_* variables, ~/.aws/config and
/// ~/.aws/credentials (AWS_ENDPOINT_URL is honoured too).
#[derive(Debug, Clone, Default, Args)]
pub struct ConnOpts {
    /// S3 endpoint of the source, e.g. http://127.0.0.1:9000 (default: AWS / AWS_ENDPOINT_URL).
    #[arg(long)]
    pub src_endpoint: Option<String>,
    /// AWS profile for the source.
    #[arg(long)]
    pub src_profile: Option<String>,
    /// S3 endpoint of the destination.
    #[arg(long)]
    pub dst_endpoint: Option<String>,
    /// AWS profile for the destination.
    #[arg(long)]
    pub dst_profile: Option<String>,
    /// Region for both sides (default: the profile's, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Shared credentials file to read profiles from instead of ~/.aws/credentials.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
}

/// Server-side encryption asked of the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SseArg {
    /// SSE-S3.
    #[value(name = "AES256")]
    Aes256,
    /// SSE-KMS.
    #[value(name = "aws:kms")]
    AwsKms,
    /// DSSE-KMS.
    #[value(name = "aws:kms:dsse")]
    AwsKmsDsse,
}

/// How each copied object is verified before it counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Destination size equals source size.
    Size,
    /// Size plus the destination's stored SHA-256 (x-amz-checksum-sha256) equals the one computed
    /// while streaming the source.
    #[default]
    Checksum,
    /// Size, checksum, and the destination read back in full and hashed again.
    Full,
}

/// Options shared by `copy` and `apply`.
#[derive(Debug, Clone, Args)]
pub struct TransferOpts {
    /// Only objects whose key (relative to SRC) starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Objects transferred at once.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Verification of each object.
    #[arg(long, value_enum, default_value_t = VerifyMode::Checksum)]
    pub verify: VerifyMode,
    /// SQLite checkpoint: what is verified done survives a killed run.
    #[arg(long, value_name = "FILE", default_value = ".sealbox-migrate.sqlite")]
    pub checkpoint: PathBuf,
    /// Continue a killed run: trust the checkpoint's done objects without asking the destination
    /// again, and take over its open multipart uploads part by part.
    #[arg(long)]
    pub resume: bool,
    /// Write a JSON report here (input of `decommission`).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// List what would be copied, copy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Throttle to this many objects started per second.
    #[arg(long, value_name = "OBJ_PER_S")]
    pub rate: Option<f64>,
    /// Objects larger than this many MiB go multipart.
    #[arg(long, default_value_t = 16)]
    pub multipart_threshold_mib: u64,
    /// Multipart part size in MiB (8..=64).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(8..=64))]
    pub part_size_mib: u64,
    #[command(flatten)]
    pub conn: ConnOpts,
}

/// `migrate copy SRC DST`.
#[derive(Debug, Clone, Args)]
pub struct CopyArgs {
    /// A local folder or s3://bucket[/prefix].
    pub src: String,
    /// s3://bucket[/prefix].
    pub dst: String,
    /// Destination encryption (default: the destination bucket's default).
    #[arg(long, value_enum)]
    pub sse: Option<SseArg>,
    /// KMS key id, ARN or alias for aws:kms / aws:kms:dsse.
    #[arg(long)]
    pub kms_key: Option<String>,
    /// Ask for an S3 Bucket Key (aws:kms only).
    #[arg(long)]
    pub bucket_key: bool,
    #[command(flatten)]
    pub opts: TransferOpts,
}

/// `migrate plan --plan rules.toml SRC`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// The rules file.
    #[arg(long = "plan", value_name = "rules.toml")]
    pub plan: PathBuf,
    /// A local folder or s3://bucket[/prefix].
    pub src: String,
    #[command(flatten)]
    pub conn: ConnOpts,
}

/// `migrate apply --plan rules.toml SRC`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The rules file.
    #[arg(long = "plan", value_name = "rules.toml")]
    pub plan: PathBuf,
    /// A local folder or s3://bucket[/prefix].
    pub src: String,
    /// Create missing buckets, KMS keys (rotation on), default encryption and bucket policies.
    #[arg(long)]
    pub create_buckets: bool,
    /// Account id used in the policies' principals.
    #[arg(long, default_value = "000000000000")]
    pub account_id: String,
    #[command(flatten)]
    pub opts: TransferOpts,
}

/// `migrate decommission SRC --report FILE.json`.
#[derive(Debug, Clone, Args)]
pub struct DecommissionArgs {
    /// The source the report was made for.
    pub src: String,
    /// The report written by `copy` / `apply`.
    #[arg(long, value_name = "FILE.json")]
    pub report: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub conn: ConnOpts,
}

/// `migrate reencrypt s3://bucket[/prefix]`.
#[derive(Debug, Clone, Args)]
pub struct ReencryptArgs {
    /// s3://bucket[/prefix].
    pub target: String,
    /// New encryption (default: the bucket's current default encryption).
    #[arg(long, value_enum)]
    pub sse: Option<SseArg>,
    /// KMS key id, ARN or alias for aws:kms / aws:kms:dsse.
    #[arg(long)]
    pub kms_key: Option<String>,
    /// Ask for an S3 Bucket Key (aws:kms only).
    #[arg(long)]
    pub bucket_key: bool,
    /// Throttle to this many objects per second.
    #[arg(long, value_name = "OBJ_PER_S")]
    pub rate: Option<f64>,
    /// Objects rewritten at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// SQLite checkpoint of rewritten objects (resume after a kill).
    #[arg(long, value_name = "FILE", default_value = ".sealbox-reencrypt.sqlite")]
    pub checkpoint: PathBuf,
    /// S3 endpoint (default: AWS / AWS_ENDPOINT_URL).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// AWS profile.
    #[arg(long)]
    pub profile: Option<String>,
    /// Region (default: the profile's, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Shared credentials file to read profiles from.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
}

/// `migrate rewrap` (placeholder until the server's admin API exists).
#[derive(Debug, Clone, Args)]
pub struct RewrapArgs {
    /// s3://bucket[/prefix].
    pub target: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Top {
        Migrate(MigrateArgs),
    }

    fn parse(args: &[&str]) -> Result<Option<MigrateCommand>, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("sealbox").chain(args.iter().copied()))?;
        let Top::Migrate(m) = cli.command;
        Ok(m.into_command())
    }

    #[test]
    fn short_form_is_copy() {
        let Some(MigrateCommand::Copy(c)) = parse(&["migrate", "./dir", "s3://b/p", "--kms-key", "alias/x"]).unwrap()
        else {
            panic!("not a copy")
        };
        assert_eq!((c.src.as_str(), c.dst.as_str(), c.kms_key.as_deref()), ("./dir", "s3://b/p", Some("alias/x")));
        let Some(MigrateCommand::Copy(long)) = parse(&["migrate", "copy", "./dir", "s3://b/p"]).unwrap() else {
            panic!("not a copy")
        };
        assert_eq!((long.src.as_str(), long.dst.as_str()), ("./dir", "s3://b/p"));
    }

    #[test]
    fn subcommands_still_parse_and_short_form_needs_both_locations() {
        assert!(matches!(
            parse(&["migrate", "plan", "--plan", "rules.toml", "s3://src"]).unwrap(),
            Some(MigrateCommand::Plan(_))
        ));
        assert!(matches!(parse(&["migrate", "reencrypt", "s3://b"]).unwrap(), Some(MigrateCommand::Reencrypt(_))));
        assert!(parse(&["migrate", "./only-src"]).is_err());
        assert!(parse(&["migrate"]).is_err());
    }
}
