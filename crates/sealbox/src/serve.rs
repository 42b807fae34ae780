//! `sealbox serve`: open the stores, sweep orphans, listen, shut down gracefully.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::{S3Auth, SecretKey};
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Result};
use sealbox_s3::{S3Config, SealboxS3};
use sealbox_store::{BlobStore, MetaStore};
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::credentials;
use crate::router::{Peer, Router, RouterState};

pub fn init_tracing(cfg: &ServerConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEALBOX_LOG").unwrap_or_else(|_| "info,s3s=off".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cfg.json_logs {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Access keys the server accepts, looked up on every signed request.
#[derive(Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<String, String>>,
}

impl KeyRing {
    pub fn insert(&self, access_key_id: &str, secret: &str) {
        self.keys.write().unwrap_or_else(|e| e.into_inner()).insert(access_key_id.to_owned(), secret.to_owned());
    }
    pub fn secret(&self, access_key_id: &str) -> Option<String> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(access_key_id).cloned()
    }
}

struct KeyRingAuth(Arc<KeyRing>);

#[async_trait::async_trait]
impl S3Auth for KeyRingAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.secret(access_key) {
            Some(s) => Ok(SecretKey::from(s)),
            None => Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")),
        }
    }
}

fn create_data_dir(cfg: &ServerConfig) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&cfg.data)
        .with_context(|| format!("while creating the data directory {}", cfg.data.display()))
}

pub async fn run(cfg: ServerConfig) -> anyhow::Result<()> {
    create_data_dir(&cfg)?;
    let meta = Arc::new(
        MetaStore::open(&cfg.data.join("meta.db")).with_context(|| format!("while opening the meta store in {}", cfg.data.display()))?,
    );
    let blobs = BlobStore::open(&cfg.data).context("while opening the blob store")?;
    let referenced = meta.referenced_blobs().context("while reading blob references")?;
    let (temps, orphans) = blobs.remove_orphans(&referenced).context("while sweeping orphan blobs")?;
    if temps + orphans > 0 {
        tracing::info!(temps, orphans, "start-up sweep removed unfinished writes");
    }

    let (creds, created) = credentials::load_or_create(&cfg.data)?;
    let keyring = Arc::new(KeyRing::default());
    keyring.insert(&creds.access_key_id, &creds.secret_access_key);

    let s3 = SealboxS3::new(meta.clone(), blobs, S3Config { region: cfg.region.clone(), ..Default::default() });
    let mut builder = S3ServiceBuilder::new(s3);
    builder.set_auth(KeyRingAuth(keyring.clone()));
    if !cfg.domains.is_empty() {
        builder.set_host(s3s::host::MultiDomain::new(&cfg.domains).context("invalid --domain")?);
    }
    let state = Arc::new(RouterState { ready: AtomicBool::new(false) });
    let router = Router { s3: builder.build(), state: state.clone(), peer: None };

    let listener = TcpListener::bind(cfg.listen).await.with_context(|| format!("while binding {}", cfg.listen))?;
    let local = listener.local_addr()?;
    print_banner(&cfg, &local.to_string(), &creds, created);
    state.ready.store(true, Ordering::Release);

    serve_http(listener, router).await;
    tracing::info!("sealbox stopped");
    Ok(())
}

fn print_banner(cfg: &ServerConfig, addr: &str, creds: &credentials::RootCredentials, created: bool) {
    let endpoint = format!("http://{addr}");
    println!("sealbox listening on {endpoint} (region {}, data {})", cfg.region, cfg.data.display());
    if created {
        println!("Generated root credentials (stored in {}/root-credentials.json, mode 0600):", cfg.data.display());
    } else {
        println!("Root credentials (from {}/root-credentials.json):", cfg.data.display());
    }
    println!("  export AWS_ACCESS_KEY_ID={}", creds.access_key_id);
    println!("  export AWS_SECRET_ACCESS_KEY={}", creds.secret_access_key);
    println!("  export AWS_DEFAULT_REGION={}", cfg.region);
    println!("  export AWS_ENDPOINT_URL={endpoint}");
    println!("Try: aws s3 mb s3://my-bucket && aws s3 cp README.md s3://my-bucket/");
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Accepts connections until SIGINT/SIGTERM, then lets in-flight requests finish (bounded).
async fn serve_http(listener: TcpListener, router: Router) {
    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let (socket, addr) = tokio::select! {
            res = listener.accept() => match res {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.as_mut() => break,
        };
        let _ = socket.set_nodelay(true);
        let svc = router.for_connection(Peer { addr, is_tls: false });
        let conn = http.serve_connection(TokioIo::new(socket), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(%err, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("in-flight requests did not finish in 30 s"),
    }
}
