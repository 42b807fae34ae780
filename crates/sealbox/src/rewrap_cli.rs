//! `sealbox rewrap BUCKET`: asks a running server to re-wrap every object's data key under its
//! KMS key's newest material (after a rotation), metadata only, and prints the report.

use anyhow::Context;
use sealbox_auth::SecretAccessKey;

#[derive(Debug, clap::Args)]
pub struct RewrapArgs {
    /// The bucket (optionally `bucket/prefix`).
    pub target: String,
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: SecretAccessKey,
    /// Objects per second at most (throttle).
    #[arg(long)]
    pub rate: Option<f64>,
}

pub async fn run(args: RewrapArgs) -> anyhow::Result<i32> {
    let (bucket, prefix) = args.target.trim_start_matches("s3://").split_once('/').unwrap_or((&args.target, ""));
    let bucket = bucket.trim_start_matches("s3://");
    let mut query = format!("bucket={}", urlencoding::encode(bucket));
    if !prefix.is_empty() {
        query.push_str(&format!("&prefix={}", urlencoding::encode(prefix)));
    }
    if let Some(r) = args.rate {
        query.push_str(&format!("&rate={r}"));
    }
    let (status, body) = crate::signing::send(crate::signing::SignedCall {
        endpoint: &args.endpoint,
        access_key_id: &args.access_key,
        secret: &args.secret_key,
        service: "s3",
        method: "POST",
        path: "/_sealbox/rewrap",
        query: &query,
        headers: &[],
        body: bytes::Bytes::new(),
    })
    .await
    .context("rewrap call")?;
    println!("{}", String::from_utf8_lossy(&body));
    if !status.is_success() {
        return Ok(1);
    }
    let report: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(if report["failed"].as_u64().unwrap_or(0) > 0 { 1 } else { 0 })
}
