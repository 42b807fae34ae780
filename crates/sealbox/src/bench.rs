//! `sealbox bench`: starts a server on a temp data dir and measures it with a streaming client,
//! next to the raw disk in the same run (ratios, not absolute claims). Prints a markdown table.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::sigv4;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Use a running server instead of starting one (needs --access-key/--secret-key).
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub access_key: Option<String>,
    #[arg(long)]
    pub secret_key: Option<String>,
    /// Size of the big streamed object for the peak-RSS measurement (MiB; 0 skips).
    #[arg(long, default_value_t = 5120)]
    pub big_mib: u64,
    /// A short run (< 1 minute): fewer objects, 256 MiB big object.
    #[arg(long)]
    pub quick: bool,
    /// Encryption modes to measure, comma separated: default,AES256,aws:kms,aws:kms+bk,aws:kms:dsse,SSE-C
    #[arg(long, default_value = "default,aws:kms,aws:kms+bk,aws:kms:dsse,SSE-C")]
    pub modes: String,
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, BoxBody>;
type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

struct Target {
    endpoint: String,
    host: String,
    access_key: String,
    secret_key: String,
    client: HttpClient,
}

impl Target {
    fn headers(
        &self,
        method: &str,
        path: &str,
        query: &str,
        extra: &[(&str, String)],
        payload: &str,
    ) -> Vec<(String, String)> {
        sigv4::sign(
            method,
            &self.host,
            path,
            query,
            extra,
            payload,
            &self.access_key,
            &self.secret_key,
            "us-east-1",
            "s3",
            time::OffsetDateTime::now_utc(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        extra: &[(&str, String)],
        payload: &str,
        body: BoxBody,
        len: Option<u64>,
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        let uri = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let mut req = http::Request::builder().method(method).uri(uri);
        for (k, v) in self.headers(method, path, query, extra, payload) {
            req = req.header(k, v);
        }
        for (k, v) in extra {
            req = req.header(*k, v);
        }
        if let Some(l) = len {
            req = req.header(http::header::CONTENT_LENGTH, l);
        }
        Ok(self.client.request(req.body(body)?).await?)
    }

    async fn put(&self, bucket: &str, key: &str, size: u64, extra: &[(&str, String)]) -> anyhow::Result<()> {
        let resp = self
            .send("PUT", &format!("/{bucket}/{key}"), "", extra, "UNSIGNED-PAYLOAD", generated_body(size), Some(size))
            .await?;
        let status = resp.status();
        let text = resp.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "PUT {key}: {status} {}", String::from_utf8_lossy(&text));
        Ok(())
    }

    /// Streams the object through, counting bytes; never holds it.
    async fn get(&self, bucket: &str, key: &str, extra: &[(&str, String)]) -> anyhow::Result<u64> {
        let empty: BoxBody = Full::new(Bytes::new()).map_err(|never| match never {}).boxed();
        let resp = self.send("GET", &format!("/{bucket}/{key}"), "", extra, "UNSIGNED-PAYLOAD", empty, None).await?;
        anyhow::ensure!(resp.status().is_success(), "GET {key}: {}", resp.status());
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                n += data.len() as u64;
            }
        }
        Ok(n)
    }

    async fn simple(&self, method: &str, path: &str, query: &str) -> anyhow::Result<()> {
        let empty: BoxBody = Full::new(Bytes::new()).map_err(|never| match never {}).boxed();
        let resp = self.send(method, path, query, &[], "UNSIGNED-PAYLOAD", empty, Some(0)).await?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        anyhow::ensure!(status.is_success() || status.as_u16() == 409, "{method} {path}: {status}");
        Ok(())
    }
}

/// A body of `size` pseudo-random bytes made on the fly, 1 MiB at a time.
fn generated_body(size: u64) -> BoxBody {
    // One 1 MiB pattern, made once: the client must cost next to nothing per request.
    static PATTERN: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let chunk =
        PATTERN.get_or_init(|| Bytes::from((0..1024 * 1024).map(|i| (i * 7 + 13) as u8).collect::<Vec<u8>>())).clone();
    if size <= chunk.len() as u64 {
        // Small bodies go out in one piece with the head.
        return Full::new(chunk.slice(..size as usize)).map_err(|never| match never {}).boxed();
    }
    let stream = futures::stream::unfold(size, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(chunk.len() as u64) as usize;
            Some((Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk.slice(..n))), left - n as u64))
        }
    });
    StreamBody::new(stream).boxed()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Spawned {
    child: std::process::Child,
    data: tempfile::TempDir,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn spawn_server() -> anyhow::Result<(Spawned, String, String, String)> {
    let data = tempfile::Builder::new().prefix("sealbox-bench-").tempdir_in(std::env::current_dir()?)?;
    let port = free_port()?;
    let exe = std::env::current_exe()?;
    let child = std::process::Command::new(exe)
        .args(["serve", "--data"])
        .arg(data.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--insecure-allow-sse-c-over-http"])
        .env("SEALBOX_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting the server")?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && data.path().join("data/root-credentials.json").exists()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("data/root-credentials.json"))?)?;
    let ak = creds["access_key_id"].as_str().unwrap_or_default().to_owned();
    let sk = creds["secret_access_key"].as_str().unwrap_or_default().to_owned();
    Ok((Spawned { child, data }, endpoint, ak, sk))
}

/// Sequential write (+fsync) and read of `mib` MiB in `dir`: the disk's own speed, for scale.
fn raw_disk(dir: &Path, mib: usize) -> anyhow::Result<(f64, f64)> {
    let path = dir.join("raw-disk-probe");
    let chunk = vec![0x5au8; 1024 * 1024];
    let t = Instant::now();
    {
        let mut f = std::fs::File::create(&path)?;
        for _ in 0..mib {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }
    let write = mib as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    {
        let mut f = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; 1024 * 1024];
        while f.read(&mut buf)? > 0 {}
    }
    let read = mib as f64 / t.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok((write, read))
}

fn mode_headers(mode: &str, kms_key: &str) -> Vec<(&'static str, String)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    match mode {
        "AES256" => vec![("x-amz-server-side-encryption", "AES256".into())],
        "aws:kms" => vec![
            ("x-amz-server-side-encryption", "aws:kms".into()),
            ("x-amz-server-side-encryption-aws-kms-key-id", kms_key.into()),
        ],
        "aws:kms+bk" => vec![
            ("x-amz-server-side-encryption", "aws:kms".into()),
            ("x-amz-server-side-encryption-aws-kms-key-id", kms_key.into()),
            ("x-amz-server-side-encryption-bucket-key-enabled", "true".into()),
        ],
        "aws:kms:dsse" => vec![
            ("x-amz-server-side-encryption", "aws:kms:dsse".into()),
            ("x-amz-server-side-encryption-aws-kms-key-id", kms_key.into()),
        ],
        "SSE-C" => {
            let key = [7u8; 32];
            let md5 = {
                use md5::Digest;
                md5::Md5::digest(key)
            };
            vec![
                ("x-amz-server-side-encryption-customer-algorithm", "AES256".into()),
                ("x-amz-server-side-encryption-customer-key", b64.encode(key)),
                ("x-amz-server-side-encryption-customer-key-md5", b64.encode(md5)),
            ]
        }
        _ => Vec::new(),
    }
}

/// SSE-C must be repeated on reads; the other modes must not be.
fn read_headers(mode: &str, put: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    if mode == "SSE-C" {
        put.to_vec()
    } else {
        Vec::new()
    }
}

struct Cell {
    put_mib_s: f64,
    get_mib_s: f64,
    put_ops: f64,
    get_ops: f64,
}

async fn measure(
    t: &Arc<Target>,
    bucket: &str,
    mode: &str,
    kms_key: &str,
    size: u64,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Cell> {
    let put_h = Arc::new(mode_headers(mode, kms_key));
    let get_h = Arc::new(read_headers(mode, &put_h));
    let prefix = format!("{}-{size}-{concurrency}", mode.replace([':', '+'], "_"));
    let run = |is_put: bool| {
        let (t, put_h, get_h, prefix, bucket) =
            (t.clone(), put_h.clone(), get_h.clone(), prefix.clone(), bucket.to_owned());
        async move {
            let start = Instant::now();
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (t, put_h, get_h, prefix, bucket, next) =
                    (t.clone(), put_h.clone(), get_h.clone(), prefix.clone(), bucket.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= count {
                            return Ok::<_, anyhow::Error>(());
                        }
                        let key = format!("{prefix}/{i}");
                        if is_put {
                            t.put(&bucket, &key, size, &put_h).await?;
                        } else {
                            let n = t.get(&bucket, &key, &get_h).await?;
                            anyhow::ensure!(n == size, "short read of {key}: {n} of {size}");
                        }
                    }
                }));
            }
            for task in tasks {
                task.await??;
            }
            Ok::<_, anyhow::Error>(start.elapsed().as_secs_f64())
        }
    };
    let put_s = run(true).await?;
    let get_s = run(false).await?;
    let mib = (size as f64 * count as f64) / (1024.0 * 1024.0);
    Ok(Cell {
        put_mib_s: mib / put_s,
        get_mib_s: mib / get_s,
        put_ops: count as f64 / put_s,
        get_ops: count as f64 / get_s,
    })
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn kms_call(t: &Target, op: &str, body: &str) -> anyhow::Result<serde_json::Value> {
    let hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes()));
    let extra =
        [("x-amz-target", format!("TrentService.{op}")), ("content-type", "application/x-amz-json-1.1".to_owned())];
    let headers = sigv4::sign(
        "POST",
        &t.host,
        "/",
        "",
        &extra,
        &hash,
        &t.access_key,
        &t.secret_key,
        "us-east-1",
        "kms",
        time::OffsetDateTime::now_utc(),
    );
    let mut req = http::Request::builder().method("POST").uri(format!("{}/", t.endpoint));
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    for (k, v) in &extra {
        req = req.header(*k, v);
    }
    let body: BoxBody = Full::new(Bytes::from(body.to_owned())).map_err(|never| match never {}).boxed();
    let resp = t.client.request(req.body(body)?).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    anyhow::ensure!(status.is_success(), "{op}: {status} {}", String::from_utf8_lossy(&bytes));
    Ok(serde_json::from_slice(&bytes)?)
}

async fn kms_ops(
    t: &Arc<Target>,
    key: &str,
    op: &str,
    body: Arc<String>,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (t, next, body, op) = (t.clone(), next.clone(), body.clone(), op.to_owned());
        let _ = key;
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                kms_call(&t, &op, &body).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// In-process KMS throughput on one core (no HTTP, no SigV4).
fn kms_in_process(n: usize) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let root = sealbox_kms::RootKey::load_or_create_file(&dir.path().join("root.key"))?;
    let kms = sealbox_kms::Kms::open(
        &dir.path().join("kms.db"),
        root,
        Arc::new(sealbox_kms::SystemClock),
        sealbox_kms::KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() },
    )?;
    let key = kms.create_key("bench", None, &[])?;
    let ctx = std::collections::BTreeMap::from([("aws:s3:arn".to_owned(), "arn:aws:s3:::b/k".to_owned())]);
    let t = Instant::now();
    let mut blob = Vec::new();
    for _ in 0..n {
        blob = kms.generate_data_key_with(&key, 32, &ctx)?.ciphertext_blob;
    }
    let gdk = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..n {
        kms.decrypt_data_key(&blob, &ctx)?;
    }
    Ok((gdk, n as f64 / t.elapsed().as_secs_f64()))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (spawned, endpoint, ak, sk) = match &args.endpoint {
        Some(e) => (
            None,
            e.clone(),
            args.access_key.clone().context("--access-key")?,
            args.secret_key.clone().context("--secret-key")?,
        ),
        None => {
            let (s, e, a, k) = spawn_server().await?;
            (Some(s), e, a, k)
        }
    };
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build(connector);
    let t = Arc::new(Target { endpoint, host, access_key: ak, secret_key: sk, client });
    let data_dir: PathBuf = match &spawned {
        Some(s) => s.data.path().to_path_buf(),
        None => std::env::current_dir()?,
    };
    let quick = args.quick;
    println!(
        "# sealbox bench ({} run, 127.0.0.1, {} cores)\n",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let (disk_w, disk_r) = raw_disk(&data_dir, if quick { 256 } else { 1024 })?;
    println!("raw disk in the data dir: write+fsync {disk_w:.0} MiB/s, read {disk_r:.0} MiB/s\n");

    t.simple("PUT", "/bench", "").await?;
    let key_arn = kms_call(&t, "CreateKey", r#"{"Description":"bench"}"#).await?["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let sizes: Vec<(u64, &str, usize, usize)> = if quick {
        vec![(4096, "4 KiB", 200, 400), (1 << 20, "1 MiB", 20, 40), (64 << 20, "64 MiB", 2, 4)]
    } else {
        vec![(4096, "4 KiB", 1000, 3000), (1 << 20, "1 MiB", 100, 300), (64 << 20, "64 MiB", 4, 16)]
    };
    println!("| mode | size | conc | PUT MiB/s | GET MiB/s | PUT ops/s | GET ops/s | PUT / raw disk write |");
    println!("|---|---|---|---|---|---|---|---|");
    for mode in args.modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        for (size, label, c1, c16) in &sizes {
            for (conc, count) in [(1usize, *c1), (16usize, *c16)] {
                match measure(&t, "bench", mode, &key_arn, *size, count, conc).await {
                    Ok(c) => println!(
                        "| {mode} | {label} | {conc} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} |",
                        c.put_mib_s,
                        c.get_mib_s,
                        c.put_ops,
                        c.get_ops,
                        c.put_mib_s / disk_w
                    ),
                    Err(e) => println!("| {mode} | {label} | {conc} | n/a | n/a | n/a | n/a | {e} |"),
                }
            }
        }
    }

    println!("\n| KMS over HTTP | conc | ops/s |\n|---|---|---|");
    let n = if quick { 300 } else { 2000 };
    let gdk_body = Arc::new(format!(r#"{{"KeyId":"{key_arn}","KeySpec":"AES_256"}}"#));
    let blob =
        kms_call(&t, "GenerateDataKey", &gdk_body).await?["CiphertextBlob"].as_str().unwrap_or_default().to_owned();
    let dec_body = Arc::new(format!(r#"{{"CiphertextBlob":"{blob}"}}"#));
    for conc in [1usize, 16] {
        println!(
            "| GenerateDataKey | {conc} | {:.0} |",
            kms_ops(&t, &key_arn, "GenerateDataKey", gdk_body.clone(), n, conc).await?
        );
        println!("| Decrypt | {conc} | {:.0} |", kms_ops(&t, &key_arn, "Decrypt", dec_body.clone(), n, conc).await?);
    }
    let (gdk, dec) = tokio::task::spawn_blocking(move || kms_in_process(if quick { 2000 } else { 20000 })).await??;
    println!("| GenerateDataKey in-process, 1 core | 1 | {gdk:.0} |\n| Decrypt in-process, 1 core | 1 | {dec:.0} |");

    let big = if quick { args.big_mib.min(256) } else { args.big_mib };
    if let (Some(s), true) = (&spawned, big > 0) {
        let pid = s.child.id();
        let base = vm_rss(pid).unwrap_or(0);
        let size = big << 20;
        let start = Instant::now();
        t.put("bench", "big-object", size, &mode_headers("aws:kms", &key_arn)).await?;
        let put_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let n = t.get("bench", "big-object", &[]).await?;
        anyhow::ensure!(n == size, "big object read back {n} of {size} bytes");
        let get_s = start.elapsed().as_secs_f64();
        println!(
            "\nbig object ({big} MiB, SSE-KMS): PUT {:.0} MiB/s, GET {:.0} MiB/s; server RSS before {:.1} MiB, peak (VmHWM) {:.1} MiB",
            big as f64 / put_s,
            big as f64 / get_s,
            base as f64 / 1024.0,
            vm_hwm(pid).unwrap_or(0) as f64 / 1024.0
        );
    }
    Ok(())
}
