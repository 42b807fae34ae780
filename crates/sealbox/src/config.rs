//! Server configuration: command line > environment (clap reads `SEALBOX_*`) > config file >
//! defaults. Every option can come from any of the three.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Data directory (objects, metadata, keys). Default: ./sealbox-data
    #[arg(long, env = "SEALBOX_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on (HTTP). Default: 127.0.0.1:9000
    #[arg(long, env = "SEALBOX_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Region reported to clients and used in ARNs. Default: us-east-1
    #[arg(long, env = "SEALBOX_REGION")]
    pub region: Option<String>,
    /// Base domain(s) for virtual-hosted-style requests (<bucket>.<domain>), comma separated.
    #[arg(long, env = "SEALBOX_DOMAIN", value_delimiter = ',')]
    pub domain: Vec<String>,
    /// Log format: text or json.
    #[arg(long, env = "SEALBOX_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// TOML config file with the same keys (data, listen, region, domain, log_format).
    #[arg(long, env = "SEALBOX_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    region: Option<String>,
    #[serde(default)]
    domain: Vec<String>,
    log_format: Option<String>,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub region: String,
    pub domains: Vec<String>,
    pub json_logs: bool,
    /// Test-only: shift the server's clock (rotation, deletion windows) by this many seconds.
    pub test_clock_offset_secs: i64,
}

impl ServerConfig {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let domains = if args.domain.is_empty() { file.domain } else { args.domain };
        let log_format = args.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        let json_logs = match log_format.as_str() {
            "json" => true,
            "text" => false,
            other => anyhow::bail!("unknown log format {other:?} (expected text or json)"),
        };
        let test_clock_offset_secs = match std::env::var("SEALBOX_TEST_CLOCK_OFFSET_SECS") {
            Ok(v) => v.parse().with_context(|| format!("SEALBOX_TEST_CLOCK_OFFSET_SECS={v:?} is not an integer"))?,
            Err(_) => 0,
        };
        Ok(Self {
            data: args.data.or(file.data).unwrap_or_else(|| PathBuf::from("sealbox-data")),
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000))),
            region: args.region.or(file.region).unwrap_or_else(|| "us-east-1".into()),
            domains,
            json_logs,
            test_clock_offset_secs,
        })
    }
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("while reading the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("while parsing the config file {}", path.display()))
}
