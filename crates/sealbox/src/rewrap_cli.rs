//! `sealbox rewrap BUCKET`: asks a running server to re-wrap every object's data key under its
//! KMS key's newest material (after a rotation), metadata only, and prints the report.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

#[derive(Debug, clap::Args)]
pub struct RewrapArgs {
    /// The bucket (optionally `bucket/prefix`).
    pub target: String,
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
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
    let endpoint = args.endpoint.trim_end_matches('/');
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint).to_owned();
    let payload = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b""));
    let headers = crate::sigv4::sign(
        "POST",
        &host,
        "/_sealbox/rewrap",
        &query,
        &[],
        &payload,
        &args.access_key,
        &args.secret_key,
        "us-east-1",
        "s3",
        time::OffsetDateTime::now_utc(),
    );
    let mut req = http::Request::builder().method("POST").uri(format!("{endpoint}/_sealbox/rewrap?{query}"));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = client
        .request(req.body(Full::new(Bytes::new()))?)
        .await
        .with_context(|| format!("while calling {endpoint}"))?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    println!("{}", String::from_utf8_lossy(&body));
    if !status.is_success() {
        return Ok(1);
    }
    let report: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(if report["failed"].as_u64().unwrap_or(0) > 0 { 1 } else { 0 })
}
