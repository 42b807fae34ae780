//! Command-line options and the encryption modes the bench knows.

use std::path::PathBuf;

use sealbox_auth::SecretAccessKey;

/// `sealbox bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOpts {
    /// Measure a running server instead of starting one (needs --access-key and --secret-key).
    #[arg(long, requires_all = ["access_key", "secret_key"])]
    pub endpoint: Option<String>,
    /// Access key for --endpoint.
    #[arg(long, env = "SEALBOX_BENCH_ACCESS_KEY")]
    pub access_key: Option<String>,
    /// Secret key for --endpoint (never shown by `Debug`).
    #[arg(long, env = "SEALBOX_BENCH_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretAccessKey>,
    /// Process id of the --endpoint server, to read its memory from /proc (same machine only).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Server binary to start as `serve` (default: this executable).
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// Where the temporary data dir (and the raw disk probe) go. Default: the current directory,
    /// because /tmp is often a RAM disk and would flatter the numbers.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// A short run (under a minute): fewer objects, at most 256 MiB for the big object.
    #[arg(long)]
    pub quick: bool,
    /// Encryption modes to measure, one column each: none, AES256, aws:kms, aws:kms+bucket-key,
    /// aws:kms:dsse, SSE-C.
    #[arg(
        long,
        alias = "modes",
        value_delimiter = ',',
        default_value = "none,AES256,aws:kms,aws:kms+bucket-key,aws:kms:dsse,SSE-C"
    )]
    pub sse: Vec<SseMode>,
    /// Size of the big object streamed in and out while the server's peak memory is watched
    /// (e.g. 5GiB, 512MiB, 100MB; 0 skips).
    #[arg(long, default_value = "5GiB", value_parser = parse_size)]
    pub big_size: u64,
    /// Encryption mode of the big object.
    #[arg(long, default_value = "aws:kms")]
    pub big_sse: SseMode,
    /// Size of the raw disk write/read probe (default 1GiB, 256MiB with --quick).
    #[arg(long, value_parser = parse_size)]
    pub disk_size: Option<u64>,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// XKS proxy API Encrypt calls timed at 16 concurrent clients (default 2000, 400 with
    /// --quick; 0 skips). A server the bench starts gets fresh XKS credentials.
    #[arg(long)]
    pub xks_calls: Option<usize>,
    /// XKS access key id of the --endpoint server (not an IAM key).
    #[arg(long, env = "SEALBOX_BENCH_XKS_ACCESS_KEY", requires = "xks_secret_key")]
    pub xks_access_key: Option<String>,
    /// XKS secret access key of the --endpoint server (never shown by `Debug`).
    #[arg(long, env = "SEALBOX_BENCH_XKS_SECRET_KEY", hide_env_values = true, requires = "xks_access_key")]
    pub xks_secret_key: Option<sealbox_auth::SecretAccessKey>,
    /// `--xks-path-prefix` of the --endpoint server (the XKS API is at PREFIX/kms/xks/v1).
    #[arg(long, default_value = "")]
    pub xks_path_prefix: String,
}

/// How objects are encrypted, by the request headers that ask for it (AWS contract C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SseMode {
    /// No encryption headers: the bucket default (sealbox always encrypts, SSE-S3 by default).
    None,
    /// SSE-S3.
    Aes256,
    /// SSE-KMS with a customer key.
    AwsKms,
    /// SSE-KMS with S3 Bucket Keys.
    AwsKmsBucketKey,
    /// DSSE-KMS (two layers).
    AwsKmsDsse,
    /// SSE-C (the client's key on every request).
    SseC,
}

impl SseMode {
    pub fn label(self) -> &'static str {
        match self {
            SseMode::None => "none",
            SseMode::Aes256 => "AES256",
            SseMode::AwsKms => "aws:kms",
            SseMode::AwsKmsBucketKey => "aws:kms+bucket-key",
            SseMode::AwsKmsDsse => "aws:kms:dsse",
            SseMode::SseC => "SSE-C",
        }
    }

    pub fn uses_kms(self) -> bool {
        matches!(self, SseMode::AwsKms | SseMode::AwsKmsBucketKey | SseMode::AwsKmsDsse)
    }

    /// The `x-amz-server-side-encryption` value a PUT response should echo, if any.
    pub fn echoed_algorithm(self) -> Option<&'static str> {
        match self {
            SseMode::None | SseMode::SseC => None,
            SseMode::Aes256 => Some("AES256"),
            SseMode::AwsKms | SseMode::AwsKmsBucketKey => Some("aws:kms"),
            SseMode::AwsKmsDsse => Some("aws:kms:dsse"),
        }
    }
}

impl std::fmt::Display for SseMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl std::str::FromStr for SseMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "default" => Ok(SseMode::None),
            "aes256" | "sse-s3" => Ok(SseMode::Aes256),
            "aws:kms" | "sse-kms" | "kms" => Ok(SseMode::AwsKms),
            "aws:kms+bucket-key" | "aws:kms+bk" | "bucket-key" => Ok(SseMode::AwsKmsBucketKey),
            "aws:kms:dsse" | "dsse" | "dsse-kms" => Ok(SseMode::AwsKmsDsse),
            "sse-c" | "ssec" => Ok(SseMode::SseC),
            other => Err(format!(
                "unknown SSE mode '{other}' (none, AES256, aws:kms, aws:kms+bucket-key, aws:kms:dsse, SSE-C)"
            )),
        }
    }
}

/// `5GiB`, `512MiB`, `100MB`, `4KiB`, `4096` → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("'{s}' is not a size (e.g. 5GiB, 512MiB, 4096)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => return Err(format!("unknown size unit '{other}' (B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    Ok((number * multiplier as f64).round() as u64)
}

/// `4 KiB`, `64 MiB`, `5 GiB` (whole units where possible).
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    if bytes >= 1 << 20 {
        return format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64);
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("5GiB"), Ok(5 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert!(parse_size("five").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(5 << 30), "5 GiB");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            opts: BenchOpts,
        }
        let cli = Cli::parse_from([
            "bench",
            "--endpoint",
            "http://127.0.0.1:9000",
            "--access-key",
            "AK",
            "--secret-key",
            "wJalrXUtnFEMI-bench-secret",
        ]);
        let shown = format!("{cli:?}");
        assert!(!shown.contains("wJalrXUtnFEMI-bench-secret"), "{shown}");
        assert!(shown.contains("SecretAccessKey(<redacted>)"), "{shown}");
        assert_eq!(cli.opts.secret_key.unwrap().expose(), "wJalrXUtnFEMI-bench-secret");
    }

    #[test]
    fn modes_parse_from_their_labels_and_aliases() {
        for mode in [
            SseMode::None,
            SseMode::Aes256,
            SseMode::AwsKms,
            SseMode::AwsKmsBucketKey,
            SseMode::AwsKmsDsse,
            SseMode::SseC,
        ] {
            assert_eq!(mode.label().parse::<SseMode>(), Ok(mode));
        }
        assert_eq!("default".parse::<SseMode>(), Ok(SseMode::None));
        assert_eq!("aws:kms+bk".parse::<SseMode>(), Ok(SseMode::AwsKmsBucketKey));
        assert!("rot13".parse::<SseMode>().is_err());
    }
}
