//! The whole bench against a stub S3/KMS server on 127.0.0.1 that verifies every signature with
//! sealbox-auth, keeps only each object's size and tag, and refuses SSE-C (which must show n/a
//! without failing the run).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use sealbox_auth::{SecretAccessKey, SignedRequest, EMPTY_SHA256};

const AK: &str = "AKSTUB";
const SK: &str = "stub-secret";
/// The XKS credentials: a different key pair, accepted only for `kms-xks-proxy`.
const XKS_AK: &str = "XKSSTUBACCESSKEYID234567";
const XKS_SK: &str = "c3R1Yi14a3Mtc2VjcmV0LXN0dWIteGtzLXNlY3JldCE=";

#[derive(Default)]
struct Stub {
    /// key → (tag bytes, size)
    objects: Mutex<HashMap<String, (Vec<u8>, u64)>>,
    verified: AtomicUsize,
    refused: AtomicUsize,
    xks_encrypts: AtomicUsize,
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn reply(status: u16, body: impl Into<Bytes>) -> http::Response<Body> {
    let body = Full::new(body.into()).map_err(|never| match never {}).boxed();
    http::Response::builder().status(status).body(body).unwrap()
}

fn header(req: &http::request::Parts, name: &str) -> Option<String> {
    req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn check_signature(stub: &Stub, parts: &http::request::Parts, service: &str, body_hash: &str) -> bool {
    let headers: Vec<(&str, &str)> =
        parts.headers.iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))).collect();
    let request = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body_sha256_hex: body_hash,
    };
    let lookup = |id: &str| match service {
        "kms-xks-proxy" => (id == XKS_AK).then(|| SecretAccessKey::new(XKS_SK)),
        _ => (id == AK).then(|| SecretAccessKey::new(SK)),
    };
    let expected =
        if service == "s3" { sealbox_auth::Expected::s3() } else { sealbox_auth::Expected::signed_body(service) };
    let ok = sealbox_auth::verify(&request, lookup, time::OffsetDateTime::now_utc(), expected).is_ok();
    let counter = if ok { &stub.verified } else { &stub.refused };
    counter.fetch_add(1, Ordering::Relaxed);
    ok
}

async fn handle(stub: Arc<Stub>, req: http::Request<Incoming>) -> Result<http::Response<Body>, Infallible> {
    let (parts, mut body) = req.into_parts();
    if parts.uri.path().starts_with("/kms/xks/v1/keys/stub/") {
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if !check_signature(&stub, &parts, "kms-xks-proxy", &sealbox_auth::hex_sha256(&bytes)) {
            return Ok(reply(401, r#"{"errorName":"AuthenticationFailedException"}"#));
        }
        stub.xks_encrypts.fetch_add(1, Ordering::Relaxed);
        let sealed = r#"{"ciphertext":"AAAA","ciphertextMetadata":"AQ==","initializationVector":"AAAAAAAAAAAAAAAA","authenticationTag":"AAAAAAAAAAAAAAAAAAAAAA==","ciphertextDataIntegrityValue":"AAAA"}"#;
        return Ok(reply(200, sealed));
    }
    if let Some(target) = header(&parts, "x-amz-target") {
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if !check_signature(&stub, &parts, "kms", &sealbox_auth::hex_sha256(&bytes)) {
            return Ok(reply(400, r#"{"__type":"InvalidSignatureException"}"#));
        }
        let answer = match target.trim_start_matches("TrentService.") {
            "CreateKey" => r#"{"KeyMetadata":{"Arn":"arn:aws:kms:us-east-1:000000000000:key/stub"}}"#,
            "GenerateDataKey" => r#"{"CiphertextBlob":"c3R1Yg==","Plaintext":"AAAA"}"#,
            "Decrypt" => r#"{"Plaintext":"AAAA"}"#,
            _ => "{}",
        };
        return Ok(reply(200, answer));
    }
    if !check_signature(&stub, &parts, "s3", EMPTY_SHA256) {
        return Ok(reply(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>"));
    }
    let path = parts.uri.path().to_owned();
    let is_object = path.trim_start_matches('/').contains('/');
    match (parts.method.as_str(), is_object) {
        ("PUT", false) => Ok(reply(200, "")),
        ("DELETE", false) => Ok(reply(204, "")),
        ("PUT", true) => {
            if header(&parts, "x-amz-server-side-encryption-customer-algorithm").is_some() {
                let _ = body.collect().await;
                return Ok(reply(400, "<Error><Code>InvalidRequest</Code><Message>no SSE-C here</Message></Error>"));
            }
            let (mut tag, mut size) = (Vec::new(), 0u64);
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    let take = data.len().min(16 - tag.len());
                    tag.extend_from_slice(&data[..take]);
                    size += data.len() as u64;
                }
            }
            stub.objects.lock().unwrap().insert(path, (tag, size));
            let mut response = reply(200, "");
            if let Some(sse) = header(&parts, "x-amz-server-side-encryption") {
                response.headers_mut().insert("x-amz-server-side-encryption", sse.parse().unwrap());
            }
            Ok(response)
        }
        ("GET", true) => {
            let Some((tag, size)) = stub.objects.lock().unwrap().get(&path).cloned() else {
                return Ok(reply(404, "<Error><Code>NoSuchKey</Code></Error>"));
            };
            // The object's id is the first 8 bytes of its tag.
            let id = u64::from_le_bytes(tag[..8].try_into().unwrap());
            let body = regenerate(id, size);
            let mut response = http::Response::new(body);
            response.headers_mut().insert(http::header::CONTENT_LENGTH, size.into());
            Ok(response)
        }
        ("DELETE", true) => {
            stub.objects.lock().unwrap().remove(&path);
            Ok(reply(204, ""))
        }
        _ => Ok(reply(405, "")),
    }
}

/// The same bytes the bench sent for object `id`: its 16-byte tag, then the bench's 1 MiB
/// pattern repeated (the stub stores only the tag and size, so big objects cost it nothing).
fn regenerate(id: u64, size: u64) -> Body {
    let mut tag = [0u8; 16];
    tag[..8].copy_from_slice(&id.to_le_bytes());
    tag[8..].copy_from_slice(&(!id).to_le_bytes());
    let pattern = Bytes::from(pattern());
    let head = Bytes::copy_from_slice(&tag[..(size as usize).min(16)]);
    let rest = size.saturating_sub(16);
    let frames = futures::stream::unfold((Some(head), rest), move |(head, left)| {
        let pattern = pattern.clone();
        async move {
            if let Some(h) = head {
                return Some((Ok::<_, std::io::Error>(Frame::data(h)), (None, left)));
            }
            if left == 0 {
                return None;
            }
            let n = left.min(pattern.len() as u64) as usize;
            Some((Ok(Frame::data(pattern.slice(..n))), (None, left - n as u64)))
        }
    });
    StreamBody::new(frames).boxed()
}

/// The bench's pattern (xorshift64*, see src/body.rs): the stub must echo it bit for bit.
fn pattern() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(1 << 20);
    while out.len() < 1 << 20 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out
}

async fn start_stub() -> (String, Arc<Stub>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let stub = Arc::new(Stub::default());
    let shared = stub.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let stub = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(stub.clone(), req));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (endpoint, stub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_run_against_a_stub_server() {
    let (endpoint, stub) = start_stub().await;
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("report.json");
    let opts = sealbox_bench::BenchOpts {
        endpoint: Some(endpoint),
        access_key: Some(AK.into()),
        secret_key: Some(SecretAccessKey::new(SK)),
        server_pid: None,
        server_bin: None,
        work_dir: Some(work.path().to_path_buf()),
        quick: true,
        sse: vec![sealbox_bench::SseMode::Aes256, sealbox_bench::SseMode::SseC],
        big_size: 3 << 20,
        big_sse: sealbox_bench::SseMode::AwsKms,
        disk_size: Some(4 << 20),
        region: "us-east-1".into(),
        json: Some(json.clone()),
        xks_calls: Some(64),
        xks_access_key: Some(XKS_AK.into()),
        xks_secret_key: Some(SecretAccessKey::new(XKS_SK)),
        xks_path_prefix: String::new(),
    };
    sealbox_bench::run(opts).await.unwrap();

    assert_eq!(stub.refused.load(Ordering::Relaxed), 0, "every request the bench signs verifies");
    assert!(stub.verified.load(Ordering::Relaxed) > 1000);
    assert!(stub.objects.lock().unwrap().is_empty(), "the bench deletes what it wrote");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let aes = &report["modes"][0];
    assert_eq!(aes["mode"], "Aes256");
    assert!(aes["unavailable"].is_null() && aes["note"].is_null(), "{aes}");
    let cells = aes["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 6, "3 sizes x 2 concurrencies");
    for cell in cells {
        assert!(cell["error"].is_null(), "{cell}");
        assert!(cell["put"]["mib_s"].as_f64().unwrap() > 0.0 && cell["get"]["ops_s"].as_f64().unwrap() > 0.0);
    }
    let sse_c = &report["modes"][1];
    assert!(sse_c["unavailable"].as_str().unwrap().contains("InvalidRequest"), "{sse_c}");
    assert_eq!(report["kms"].as_array().unwrap().len(), 4);
    let in_process = report["kms_in_process"].as_array().unwrap();
    assert_eq!(in_process.len(), 2, "GenerateDataKey and Decrypt, one core");
    assert!(in_process.iter().all(|r| r["ops_s"].as_f64().unwrap() > 0.0), "{in_process:?}");
    let xks = &report["xks"];
    assert_eq!((xks["clients"].as_u64(), xks["calls"].as_u64()), (Some(16), Some(64)), "{xks}");
    assert!(xks["p99_ms"].as_f64().unwrap() >= xks["p50_ms"].as_f64().unwrap(), "{xks}");
    assert_eq!(xks["budget_ms"], 250.0);
    assert_eq!(stub.xks_encrypts.load(Ordering::Relaxed), 64 + 16, "the calls and the warm-up, all signed for XKS");
    assert_eq!(report["big_object"]["size"], 3 << 20);
    assert!(report["big_object"]["peak_rss"].is_null(), "no pid, no memory reading");
}
