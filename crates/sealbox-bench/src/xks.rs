//! XKS proxy API latency: 16 clients at once calling Encrypt as AWS KMS does for
//! GenerateDataKey (a 32-byte data key, an AAD the size of KMS's, a CDIV asked for), each call
//! timed alone; p50 and p99 against the 250 ms in which AWS KMS must get its answer (spec,
//! "KMS Considerations"). The network to AWS and the TLS handshake are not in these numbers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Serialize;

use crate::client::S3Client;
use crate::measure::in_parallel;

/// AWS KMS times out an XKS call after 250 ms.
pub const BUDGET_MS: f64 = 250.0;
/// The concurrency the issue asks for.
pub const CLIENTS: usize = 16;
/// SigV4 service name of the XKS proxy API.
const SERVICE: &str = "kms-xks-proxy";

/// Where the XKS API is and who may call it.
pub struct XksTarget {
    /// Signs with the XKS credentials (not IAM's).
    pub client: S3Client,
    /// `XksProxyUriPath`, e.g. `/kms/xks/v1`.
    pub uri_path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct XksLatency {
    pub operation: &'static str,
    pub clients: usize,
    pub calls: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub ops_s: f64,
    pub budget_ms: f64,
}

impl XksLatency {
    pub fn within_budget(&self) -> bool {
        self.p99_ms <= self.budget_ms
    }
}

/// Nearest-rank percentile of sorted samples, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn encrypt_request(n: usize) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "requestMetadata": {
            "awsPrincipalArn": "arn:aws:iam::123456789012:role/sealbox-bench",
            "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
            "kmsOperation": "GenerateDataKey",
            "kmsRequestId": format!("sealbox-bench-{n}"),
        },
        "plaintext": b64.encode([n as u8; 32]),
        "additionalAuthenticatedData": b64.encode([0x42u8; 128]),
        "encryptionAlgorithm": "AES_GCM",
        "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
    })
}

/// `calls` Encrypts of `key_id` from [`CLIENTS`] tasks; each answer must carry the spec's fields.
pub async fn measure_encrypt(target: &Arc<XksTarget>, key_id: &str, calls: usize) -> anyhow::Result<XksLatency> {
    let path = Arc::new(format!("{}/keys/{key_id}/encrypt", target.uri_path));
    // Warm-up: connections open, the key's material unwrapped.
    for n in 0..CLIENTS {
        check_answer(&target.client.post_json(SERVICE, &path, &encrypt_request(n)).await?)?;
    }
    let samples = Arc::new(Mutex::new(Vec::with_capacity(calls)));
    let (t, p, s) = (target.clone(), path.clone(), samples.clone());
    let secs = in_parallel(calls, CLIENTS, move |n| {
        let (t, p, s) = (t.clone(), p.clone(), s.clone());
        async move {
            let request = encrypt_request(n);
            let started = Instant::now();
            let answer = t.client.post_json(SERVICE, &p, &request).await?;
            let took = started.elapsed();
            check_answer(&answer)?;
            s.lock().unwrap_or_else(|e| e.into_inner()).push(took);
            Ok(())
        }
    })
    .await?;
    let mut sorted = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    sorted.sort();
    let latency = XksLatency {
        operation: "Encrypt",
        clients: CLIENTS,
        calls,
        p50_ms: percentile(&sorted, 50.0),
        p99_ms: percentile(&sorted, 99.0),
        max_ms: percentile(&sorted, 100.0),
        ops_s: calls as f64 / secs.max(1e-9),
        budget_ms: BUDGET_MS,
    };
    eprintln!(
        "  XKS Encrypt, {CLIENTS} clients: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} op/s (budget {BUDGET_MS} ms)",
        latency.p50_ms, latency.p99_ms, latency.max_ms, latency.ops_s
    );
    Ok(latency)
}

fn check_answer(answer: &serde_json::Value) -> anyhow::Result<()> {
    for field in ["ciphertext", "initializationVector", "authenticationTag", "ciphertextDataIntegrityValue"] {
        anyhow::ensure!(answer[field].is_string(), "XKS Encrypt answered without {field}: {answer}");
    }
    Ok(())
}

/// A customer key served over XKS (tagged `sealbox:xks` = `true`); its key id is the
/// `externalKeyId`.
pub async fn create_xks_key(client: &S3Client) -> anyhow::Result<(String, String)> {
    let created =
        client.kms("CreateKey", &serde_json::json!({ "Description": "sealbox bench XKS (safe to delete)" })).await?;
    let arn = created["KeyMetadata"]["Arn"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("CreateKey answered without KeyMetadata.Arn"))?
        .to_owned();
    let key_id = match created["KeyMetadata"]["KeyId"].as_str() {
        Some(id) => id.to_owned(),
        None => arn.rsplit('/').next().unwrap_or_default().to_owned(),
    };
    let tags = serde_json::json!({ "KeyId": arn, "Tags": [{ "TagKey": "sealbox:xks", "TagValue": "true" }] });
    client.kms("TagResource", &tags).await?;
    Ok((key_id, arn))
}

/// Fresh XKS credentials for a server the bench starts (spec, Appendix A: an access key id of
/// 24 of `A-Z2-7`, a secret of 32 random bytes in Base64).
pub fn fresh_credentials() -> anyhow::Result<(String, String)> {
    use std::io::Read;
    let mut random = [0u8; 56];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id: String = random[..24].iter().map(|b| BASE32[usize::from(b % 32)] as char).collect();
    let secret = base64::engine::general_purpose::STANDARD.encode(&random[24..]);
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), 50.0);
        assert_eq!(percentile(&ms, 99.0), 99.0);
        assert_eq!(percentile(&ms, 100.0), 100.0);
        assert_eq!(percentile(&ms[..1], 99.0), 1.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn credentials_follow_appendix_a() {
        let (id, secret) = fresh_credentials().unwrap();
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(secret.len(), 44);
        assert_ne!(fresh_credentials().unwrap().0, id);
    }
}
