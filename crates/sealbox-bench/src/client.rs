//! A minimal signed S3 + KMS client over hyper's pooled HTTP/1 client. Bodies stream both ways.

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use md5::Digest;
use sealbox_auth::{Credentials, RequestToSign, SecretAccessKey, UNSIGNED_PAYLOAD};

use crate::body::{bytes_body, empty_body, object_body, BodyCheck, BoxBody};
use crate::opts::SseMode;

/// Fixed SSE-C key for the bench (sent over plain HTTP to a local server only).
const SSE_C_KEY: [u8; 32] = [0x5c; 32];

#[derive(Clone)]
pub struct S3Client {
    http: Client<HttpConnector, BoxBody>,
    endpoint: String,
    host: String,
    access_key_id: String,
    secret: SecretAccessKey,
    region: String,
}

/// A refused request: status and the S3/KMS error code, for the "n/a" notes.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// Headers of a PUT and the headers its GETs must repeat.
#[derive(Debug, Clone, Default)]
pub struct SseHeaders {
    pub put: Vec<(&'static str, String)>,
    pub get: Vec<(&'static str, String)>,
}

impl SseHeaders {
    pub fn for_mode(mode: SseMode, kms_key: Option<&str>) -> Self {
        let sse = |v: &str| ("x-amz-server-side-encryption", v.to_owned());
        let key = kms_key.map(|k| ("x-amz-server-side-encryption-aws-kms-key-id", k.to_owned()));
        let put: Vec<(&'static str, String)> = match mode {
            SseMode::None => vec![],
            SseMode::Aes256 => vec![sse("AES256")],
            SseMode::AwsKms => [Some(sse("aws:kms")), key].into_iter().flatten().collect(),
            SseMode::AwsKmsBucketKey => {
                [Some(sse("aws:kms")), key, Some(("x-amz-server-side-encryption-bucket-key-enabled", "true".into()))]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            SseMode::AwsKmsDsse => [Some(sse("aws:kms:dsse")), key].into_iter().flatten().collect(),
            SseMode::SseC => sse_c_headers(),
        };
        let get = if mode == SseMode::SseC { put.clone() } else { Vec::new() };
        Self { put, get }
    }
}

fn sse_c_headers() -> Vec<(&'static str, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        ("x-amz-server-side-encryption-customer-algorithm", "AES256".into()),
        ("x-amz-server-side-encryption-customer-key", b64.encode(SSE_C_KEY)),
        ("x-amz-server-side-encryption-customer-key-md5", b64.encode(md5::Md5::digest(SSE_C_KEY))),
    ]
}

type Response = http::Response<hyper::body::Incoming>;

impl S3Client {
    pub fn new(endpoint: &str, access_key_id: &str, secret: &str, region: &str) -> anyhow::Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let host = endpoint
            .strip_prefix("http://")
            .context("only http:// endpoints are supported (the bench measures the store, not TLS)")?
            .to_owned();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build(connector);
        Ok(Self {
            http,
            endpoint,
            host,
            access_key_id: access_key_id.to_owned(),
            secret: SecretAccessKey::new(secret),
            region: region.to_owned(),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        service: &str,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        payload_sha256: &str,
        body: BoxBody,
        content_length: u64,
    ) -> anyhow::Result<Response> {
        let mut signed: Vec<(&str, &str)> = vec![("host", self.host.as_str())];
        signed.extend_from_slice(headers);
        let request = RequestToSign { method, path, query, headers: &signed, payload_sha256 };
        let credentials =
            Credentials { access_key_id: &self.access_key_id, secret: &self.secret, region: &self.region, service };
        let added = sealbox_auth::sign(&request, &credentials, time::OffsetDateTime::now_utc());
        let uri = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in signed.iter().copied().chain(added.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
            builder = builder.header(name, value);
        }
        if content_length > 0 || method == "PUT" || method == "POST" {
            builder = builder.header(http::header::CONTENT_LENGTH, content_length);
        }
        let response = self.http.request(builder.body(body)?).await.with_context(|| format!("{method} {path}"))?;
        Ok(response)
    }

    /// Fails with [`Refused`] on a non-2xx answer (body read, bounded).
    async fn expect_success(response: Response) -> anyhow::Result<Response> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let code = between(&text, "<Code>", "</Code>")
            .or_else(|| json_field(&text, "__type"))
            .or_else(|| json_field(&text, "errorName"))
            .unwrap_or_else(|| "(no code)".into());
        let message = between(&text, "<Message>", "</Message>")
            .or_else(|| json_field(&text, "message"))
            .or_else(|| json_field(&text, "Message"))
            .or_else(|| json_field(&text, "errorMessage"))
            .unwrap_or_default();
        Err(Refused { status, code, message }.into())
    }

    async fn s3_simple(&self, method: &str, path: &str, query: &str) -> anyhow::Result<()> {
        let response = self.send("s3", method, path, query, &[], sealbox_auth::EMPTY_SHA256, empty_body(), 0).await?;
        let response = Self::expect_success(response).await?;
        let _ = response.into_body().collect().await;
        Ok(())
    }

    pub async fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        self.s3_simple("PUT", &format!("/{bucket}"), "").await
    }

    pub async fn delete_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        self.s3_simple("DELETE", &format!("/{bucket}"), "").await
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        self.s3_simple("DELETE", &format!("/{bucket}/{key}"), "").await
    }

    /// Streams object `id` of `size` bytes up; returns the response headers.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        id: u64,
        size: u64,
        sse: &SseHeaders,
    ) -> anyhow::Result<http::HeaderMap> {
        let headers: Vec<(&str, &str)> = sse.put.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let path = format!("/{bucket}/{key}");
        let response =
            self.send("s3", "PUT", &path, "", &headers, UNSIGNED_PAYLOAD, object_body(id, size), size).await?;
        let response = Self::expect_success(response).await?;
        let (parts, body) = response.into_parts();
        let _ = body.collect().await;
        Ok(parts.headers)
    }

    /// Streams object `id` down, checking it on the way; never holds it.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        id: u64,
        size: u64,
        sse: &SseHeaders,
    ) -> anyhow::Result<u64> {
        let headers: Vec<(&str, &str)> = sse.get.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let path = format!("/{bucket}/{key}");
        let response = self.send("s3", "GET", &path, "", &headers, UNSIGNED_PAYLOAD, empty_body(), 0).await?;
        let mut body = Self::expect_success(response).await?.into_body();
        let mut check = BodyCheck::new(id, size);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.with_context(|| format!("reading {path}"))?.into_data() {
                check.update(&data);
            }
        }
        let n = check.bytes_seen();
        check.finish()?;
        Ok(n)
    }

    /// One KMS JSON call (`TrentService.<op>`), signed for service `kms`.
    pub async fn kms(&self, op: &str, request: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let body = Bytes::from(serde_json::to_vec(request)?);
        let hash = sealbox_auth::hex_sha256(&body);
        let target = format!("TrentService.{op}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let len = body.len() as u64;
        let response = self.send("kms", "POST", "/", "", &headers, &hash, bytes_body(body), len).await?;
        let response = Self::expect_success(response).await?;
        let bytes = response.into_body().collect().await?.to_bytes();
        serde_json::from_slice(&bytes).with_context(|| format!("{op}: answer is not JSON"))
    }

    /// A JSON POST to `path` signed for `service` with this client's credentials (the XKS proxy
    /// API: `kms-xks-proxy`, with the XKS credentials).
    pub async fn post_json(
        &self,
        service: &str,
        path: &str,
        request: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let body = Bytes::from(serde_json::to_vec(request)?);
        let hash = sealbox_auth::hex_sha256(&body);
        let headers = [("content-type", "application/json")];
        let len = body.len() as u64;
        let response = self.send(service, "POST", path, "", &headers, &hash, bytes_body(body), len).await?;
        let response = Self::expect_success(response).await?;
        let bytes = response.into_body().collect().await?.to_bytes();
        serde_json::from_slice(&bytes).with_context(|| format!("POST {path}: answer is not JSON"))
    }

    /// GET without signing (health probes).
    pub async fn get_unsigned(&self, path: &str) -> anyhow::Result<u16> {
        let request = http::Request::builder()
            .uri(format!("{}{path}", self.endpoint))
            .header("host", self.host.as_str())
            .body(empty_body())?;
        let response = self.http.request(request).await?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        Ok(status)
    }
}

fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(text[start..end].to_owned())
}

fn json_field(text: &str, field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get(field)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_headers_per_mode() {
        let kms = SseHeaders::for_mode(SseMode::AwsKmsBucketKey, Some("arn:k"));
        assert!(kms.put.contains(&("x-amz-server-side-encryption-bucket-key-enabled", "true".into())));
        assert!(kms.put.contains(&("x-amz-server-side-encryption-aws-kms-key-id", "arn:k".into())));
        assert!(kms.get.is_empty());
        let c = SseHeaders::for_mode(SseMode::SseC, None);
        assert_eq!(c.put, c.get, "SSE-C repeats its key on reads");
        assert_eq!(c.put[2].1.len(), 24, "base64 of a 16-byte MD5");
        assert!(SseHeaders::for_mode(SseMode::None, None).put.is_empty());
        assert_eq!(SseHeaders::for_mode(SseMode::AwsKms, None).put.len(), 1);
    }

    #[test]
    fn error_codes_from_xml_and_json() {
        assert_eq!(
            between("<Error><Code>InvalidRequest</Code></Error>", "<Code>", "</Code>").unwrap(),
            "InvalidRequest"
        );
        assert_eq!(json_field(r#"{"__type":"NotFoundException"}"#, "__type").unwrap(), "NotFoundException");
        assert!(between("<Error>", "<Code>", "</Code>").is_none());
    }
}
