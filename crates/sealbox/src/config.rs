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
    /// TLS: `auto` makes a private CA and a certificate in DATA/tls (trust DATA/tls/ca.pem).
    #[arg(long, env = "SEALBOX_TLS", value_parser = ["auto"])]
    pub tls: Option<String>,
    /// TLS certificate chain (PEM); reloaded on SIGHUP.
    #[arg(long, env = "SEALBOX_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); reloaded on SIGHUP.
    #[arg(long, env = "SEALBOX_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Address of the HTTPS listener (when TLS is configured). Default: 127.0.0.1:9443
    #[arg(long, env = "SEALBOX_LISTEN_TLS")]
    pub listen_tls: Option<SocketAddr>,
    /// Disable the plain-HTTP listener (serve HTTPS only).
    #[arg(long, env = "SEALBOX_NO_HTTP")]
    pub no_http: bool,
    /// DANGER, local testing only: accept SSE-C keys over plain HTTP (they travel in the clear).
    #[arg(long, env = "SEALBOX_INSECURE_ALLOW_SSE_C_OVER_HTTP")]
    pub insecure_allow_sse_c_over_http: bool,
    /// Most concurrent connections; further clients wait in the accept queue. Default: 1024
    #[arg(long, env = "SEALBOX_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client may take to send the request head (slow-loris guard). Default: 30
    #[arg(long, env = "SEALBOX_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds an upload may send nothing before it is abandoned (RequestTimeout). Default: 60
    #[arg(long, env = "SEALBOX_BODY_IDLE_TIMEOUT_SECS")]
    pub body_idle_timeout_secs: Option<u64>,
    /// Largest single PUT in bytes (AWS: 5 GiB). Default: 5368709120
    #[arg(long, env = "SEALBOX_MAX_PUT_SIZE")]
    pub max_put_size: Option<u64>,
    /// Root key file (32 bytes, mode 0600; created on first start). Default: DATA/root.key.
    /// Keep it outside the data dir in production. `SEALBOX_ROOT_PASSPHRASE` (Argon2id) replaces it.
    #[arg(long, env = "SEALBOX_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// Seconds between signed audit digests (one is also written at shutdown). Default: 3600
    #[arg(long, env = "SEALBOX_AUDIT_DIGEST_INTERVAL_SECS")]
    pub audit_digest_interval_secs: Option<u64>,
    /// Also record object reads and writes (S3 data events) in the audit trail.
    #[arg(long, env = "SEALBOX_AUDIT_DATA_EVENTS")]
    pub audit_data_events: bool,
    /// Seconds a replaced or deleted object's blobs stay on disk before the collector removes
    /// them, so reads that started before the change still find them. Default: 60
    #[arg(long, env = "SEALBOX_BLOB_GRACE_SECS")]
    pub blob_grace_secs: Option<u64>,
    /// Seconds after which a blob no record took counts as an orphan of an interrupted request
    /// and is removed by the periodic sweep. Default: 900
    #[arg(long, env = "SEALBOX_ORPHAN_AGE_SECS")]
    pub orphan_age_secs: Option<u64>,
    /// Seconds a RestoreObject of a GLACIER or DEEP_ARCHIVE object takes before its data can be
    /// read (AWS: hours). Default: 5
    #[arg(long, env = "SEALBOX_RESTORE_DELAY_SECS")]
    pub restore_delay_secs: Option<u64>,
    /// Do not serve the web console at /console.
    #[arg(long, env = "SEALBOX_NO_CONSOLE")]
    pub no_console: bool,
    /// Seconds a console session may stay unused before it ends. Default: 900
    #[arg(long, env = "SEALBOX_CONSOLE_IDLE_TIMEOUT_SECS")]
    pub console_idle_timeout_secs: Option<u64>,
    /// Seconds a console session lasts at most, used or not. Default: 28800 (8 hours)
    #[arg(long, env = "SEALBOX_CONSOLE_SESSION_MAX_SECS")]
    pub console_session_max_secs: Option<u64>,
    /// TOML config file with the same keys (data, listen, region, domain, log_format, tls, ...).
    #[arg(long, env = "SEALBOX_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub xks: crate::xks_config::XksArgs,
}

/// How the HTTPS listener gets its certificate.
#[derive(Debug, Clone)]
pub enum TlsSource {
    Auto,
    Files { cert: PathBuf, key: PathBuf },
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
    tls: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    listen_tls: Option<SocketAddr>,
    #[serde(default)]
    no_http: bool,
    #[serde(default)]
    insecure_allow_sse_c_over_http: bool,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_idle_timeout_secs: Option<u64>,
    max_put_size: Option<u64>,
    root_key_file: Option<PathBuf>,
    audit_digest_interval_secs: Option<u64>,
    #[serde(default)]
    audit_data_events: bool,
    blob_grace_secs: Option<u64>,
    orphan_age_secs: Option<u64>,
    restore_delay_secs: Option<u64>,
    xks_credentials: Option<PathBuf>,
    xks_path_prefix: Option<String>,
    xks_client_ca: Option<PathBuf>,
    xks_client_cn: Option<String>,
    #[serde(default)]
    insecure_allow_xks_over_http: bool,
    #[serde(default)]
    no_console: bool,
    console_idle_timeout_secs: Option<u64>,
    console_session_max_secs: Option<u64>,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub region: String,
    pub domains: Vec<String>,
    pub json_logs: bool,
    pub tls: Option<TlsSource>,
    pub listen_tls: SocketAddr,
    pub http_enabled: bool,
    pub insecure_allow_sse_c_over_http: bool,
    pub max_connections: usize,
    pub header_timeout: std::time::Duration,
    pub body_idle_timeout: std::time::Duration,
    pub max_put_size: u64,
    pub root_key_file: Option<PathBuf>,
    pub audit_digest_interval: std::time::Duration,
    pub audit_data_events: bool,
    /// When replaced blobs go, and when unnamed blobs count as orphans.
    pub blob_lifecycle: sealbox_store::BlobLifecycle,
    /// How long a RestoreObject takes.
    pub restore_delay: std::time::Duration,
    /// Test-only: shift the server's clock (rotation, deletion windows) by this many seconds.
    pub test_clock_offset_secs: i64,
    /// The XKS proxy API; `None` (off) without `--xks-credentials`.
    pub xks: Option<crate::xks_config::XksConfig>,
    /// The web console, and how long its sessions live (`None`: not served).
    pub console: Option<ConsoleSettings>,
}

/// Console session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleSettings {
    pub idle_timeout: std::time::Duration,
    pub session_max: std::time::Duration,
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
        let tls = match (args.tls.or(file.tls), args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                anyhow::bail!("use either --tls auto or --tls-cert/--tls-key, not both")
            }
            (Some(_), None, None) => Some(TlsSource::Auto),
            (None, Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
            (None, None, None) => None,
            _ => anyhow::bail!("--tls-cert and --tls-key go together"),
        };
        let xks_args = crate::xks_config::XksArgs {
            xks_credentials: args.xks.xks_credentials.or(file.xks_credentials),
            xks_path_prefix: args.xks.xks_path_prefix.or(file.xks_path_prefix),
            xks_client_ca: args.xks.xks_client_ca.or(file.xks_client_ca),
            xks_client_cn: args.xks.xks_client_cn.or(file.xks_client_cn),
            insecure_allow_xks_over_http: args.xks.insecure_allow_xks_over_http || file.insecure_allow_xks_over_http,
        };
        let xks = crate::xks_config::XksConfig::resolve(xks_args, tls.is_some())?;
        let http_enabled = !(args.no_http || file.no_http);
        if !http_enabled && tls.is_none() {
            anyhow::bail!("--no-http needs TLS (--tls auto or --tls-cert/--tls-key)");
        }
        let console = (!(args.no_console || file.no_console)).then(|| ConsoleSettings {
            idle_timeout: std::time::Duration::from_secs(
                args.console_idle_timeout_secs.or(file.console_idle_timeout_secs).unwrap_or(900).max(1),
            ),
            session_max: std::time::Duration::from_secs(
                args.console_session_max_secs.or(file.console_session_max_secs).unwrap_or(8 * 3600).max(1),
            ),
        });
        Ok(Self {
            console,
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(1024).max(1),
            header_timeout: std::time::Duration::from_secs(
                args.header_timeout_secs.or(file.header_timeout_secs).unwrap_or(30).max(1),
            ),
            body_idle_timeout: std::time::Duration::from_secs(
                args.body_idle_timeout_secs.or(file.body_idle_timeout_secs).unwrap_or(60).max(1),
            ),
            root_key_file: args.root_key_file.or(file.root_key_file),
            audit_data_events: args.audit_data_events || file.audit_data_events,
            blob_lifecycle: sealbox_store::BlobLifecycle {
                grace: std::time::Duration::from_secs(args.blob_grace_secs.or(file.blob_grace_secs).unwrap_or(60)),
                orphan_age: std::time::Duration::from_secs(
                    args.orphan_age_secs.or(file.orphan_age_secs).unwrap_or(900).max(1),
                ),
            },
            restore_delay: std::time::Duration::from_secs(
                args.restore_delay_secs.or(file.restore_delay_secs).unwrap_or(5),
            ),
            audit_digest_interval: std::time::Duration::from_secs(
                args.audit_digest_interval_secs.or(file.audit_digest_interval_secs).unwrap_or(3600).max(1),
            ),
            max_put_size: args.max_put_size.or(file.max_put_size).unwrap_or(5 * 1024 * 1024 * 1024),
            tls,
            listen_tls: args.listen_tls.or(file.listen_tls).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9443))),
            http_enabled,
            insecure_allow_sse_c_over_http: args.insecure_allow_sse_c_over_http || file.insecure_allow_sse_c_over_http,
            data: args.data.or(file.data).unwrap_or_else(|| PathBuf::from("sealbox-data")),
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000))),
            region: args.region.or(file.region).unwrap_or_else(|| "us-east-1".into()),
            domains,
            json_logs,
            test_clock_offset_secs,
            xks,
        })
    }
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("while reading the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("while parsing the config file {}", path.display()))
}
