//! Shared test helpers: a real `sealbox serve` on a free port, clients, and the CLI parser.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::error::ProvideErrorMetadata;
use clap::Parser;
use sealbox_migrate::MigrateCommand;

pub struct TestServer {
    child: Child,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    pub access_key: String,
    pub secret_key: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn is_live(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).contains(" 200")
}

impl TestServer {
    pub fn start() -> Self {
        let bin = std::env::var("SEALBOX_BIN").unwrap_or_else(|_| "/work/cache/target/debug/sealbox".into());
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = Command::new(&bin)
            .args(["serve", "--data"])
            .arg(&data)
            .args(["--listen", &addr])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e} (set SEALBOX_BIN)"));
        let mut server = TestServer {
            child,
            endpoint: format!("http://{addr}"),
            dir,
            access_key: String::new(),
            secret_key: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_live(&addr) {
            assert!(Instant::now() < deadline, "sealbox did not come up on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let creds: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.join("root-credentials.json")).expect("root credentials"))
                .expect("credentials json");
        server.access_key = creds["access_key_id"].as_str().expect("akid").to_owned();
        server.secret_key = creds["secret_access_key"].as_str().expect("secret").to_owned();
        server
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new(&self.access_key, &self.secret_key, None, None, "test");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn profile_section(&self, name: &str) -> String {
        format!("[{name}]\naws_access_key_id = {}\naws_secret_access_key = {}\n", self.access_key, self.secret_key)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let exited = self.child.try_wait().ok().flatten();
            let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("--- sealbox {} (exit: {exited:?}) log tail:", self.endpoint);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a shared credentials file with the given profiles.
pub fn credentials_file(dir: &Path, profiles: &[(&str, &TestServer)]) -> PathBuf {
    let path = dir.join("credentials");
    let text: String = profiles.iter().map(|(n, s)| s.profile_section(n)).collect::<Vec<_>>().join("\n");
    std::fs::write(&path, text).expect("credentials file");
    path
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: MigrateCommand,
}

/// Runs `sealbox migrate ARGS...` in-process, exactly as the binary parses it.
pub async fn migrate(args: &[&str]) -> anyhow::Result<i32> {
    let cli = Cli::try_parse_from(std::iter::once("migrate").chain(args.iter().copied()))?;
    sealbox_migrate::run(cli.cmd).await
}

pub fn parse(args: &[&str]) -> MigrateCommand {
    Cli::try_parse_from(std::iter::once("migrate").chain(args.iter().copied())).expect("args").cmd
}

pub async fn create_bucket(c: &aws_sdk_s3::Client, b: &str) {
    c.create_bucket().bucket(b).send().await.expect("create bucket");
}

pub async fn put(c: &aws_sdk_s3::Client, b: &str, k: &str, data: Vec<u8>) {
    c.put_object().bucket(b).key(k).body(data.into()).send().await.expect("put");
}

pub async fn get(c: &aws_sdk_s3::Client, b: &str, k: &str) -> Vec<u8> {
    let r = c.get_object().bucket(b).key(k).send().await.unwrap_or_else(|e| panic!("get {b}/{k}: {e:?}"));
    r.body.collect().await.expect("body").into_bytes().to_vec()
}

pub async fn list(c: &aws_sdk_s3::Client, b: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let r = c.list_objects_v2().bucket(b).set_continuation_token(token).send().await.expect("list");
        out.extend(r.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        match r.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    out
}

/// Deterministic pseudo-random bytes (no rand dependency needed).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read json")).expect("json")
}

impl TestServer {
    pub fn kms(&self) -> aws_sdk_kms::Client {
        let creds = aws_sdk_kms::config::Credentials::new(&self.access_key, &self.secret_key, None, None, "test");
        let conf = aws_sdk_kms::config::Builder::new()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// Whether this server stores objects under SSE-KMS (probed with a real PUT).
    pub async fn supports_sse_kms(&self, bucket: &str) -> Result<(), String> {
        let r = self
            .client()
            .put_object()
            .bucket(bucket)
            .key("__kms_probe")
            .body(b"probe".to_vec().into())
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
            .send()
            .await;
        if let Err(e) = r {
            return Err(short_error(&e));
        }
        // Accepting the header is not enough: the object must say it is KMS-encrypted.
        let head = self.client().head_object().bucket(bucket).key("__kms_probe").send().await;
        let _ = self.client().delete_object().bucket(bucket).key("__kms_probe").send().await;
        match head {
            Ok(h) if h.server_side_encryption() == Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms) => Ok(()),
            Ok(h) => Err(format!("a PUT with aws:kms is stored as {:?}", h.server_side_encryption())),
            Err(e) => Err(short_error(&e)),
        }
    }
}

/// `CODE (HTTP n): message` of an SDK error, for skip notes.
pub fn short_error<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    format!("{} (HTTP {status}): {}", e.code().unwrap_or("?"), e.message().unwrap_or(""))
}
