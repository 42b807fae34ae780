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

use crate::config::{ServerConfig, TlsSource};
use crate::credentials;
use crate::router::{Peer, Router, RouterState};
use crate::tls;

pub fn init_tracing(cfg: &ServerConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEALBOX_LOG")
        .unwrap_or_else(|_| "info,s3s=off".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(access_key_id.to_owned(), secret.to_owned());
    }
    pub fn secret(&self, access_key_id: &str) -> Option<String> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(access_key_id)
            .cloned()
    }
}

struct KeyRingAuth(Arc<KeyRing>);

#[async_trait::async_trait]
impl S3Auth for KeyRingAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.secret(access_key) {
            Some(s) => Ok(SecretKey::from(s)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
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
        MetaStore::open(&cfg.data.join("meta.db"))
            .with_context(|| format!("while opening the meta store in {}", cfg.data.display()))?,
    );
    let blobs = BlobStore::open(&cfg.data).context("while opening the blob store")?;
    let referenced = meta
        .referenced_blobs()
        .context("while reading blob references")?;
    let (temps, orphans) = blobs
        .remove_orphans(&referenced)
        .context("while sweeping orphan blobs")?;
    if temps + orphans > 0 {
        tracing::info!(temps, orphans, "start-up sweep removed unfinished writes");
    }

    let (creds, created) = credentials::load_or_create(&cfg.data)?;
    let keyring = Arc::new(KeyRing::default());
    keyring.insert(&creds.access_key_id, &creds.secret_access_key);

    let s3 = SealboxS3::new(
        meta.clone(),
        blobs,
        S3Config {
            region: cfg.region.clone(),
            ..Default::default()
        },
    );
    let mut builder = S3ServiceBuilder::new(s3);
    builder.set_auth(KeyRingAuth(keyring.clone()));
    builder.set_access(crate::access::SealboxAccess);
    if !cfg.domains.is_empty() {
        builder.set_host(s3s::host::MultiDomain::new(&cfg.domains).context("invalid --domain")?);
    }
    let state = Arc::new(RouterState {
        ready: AtomicBool::new(false),
        metrics: Default::default(),
    });
    let router = Router {
        s3: builder.build(),
        state: state.clone(),
        peer: None,
    };

    let http = match cfg.http_enabled {
        true => Some(
            TcpListener::bind(cfg.listen)
                .await
                .with_context(|| format!("while binding {}", cfg.listen))?,
        ),
        false => None,
    };
    let tls = match &cfg.tls {
        Some(source) => {
            let files = match source {
                TlsSource::Auto => tls::auto_files(&cfg.data, &cfg.domains)?,
                TlsSource::Files { cert, key } => tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    ca: None,
                },
            };
            let resolver = Arc::new(tls::ReloadingResolver::new(files.clone())?);
            let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(resolver.clone())?);
            let listener = TcpListener::bind(cfg.listen_tls)
                .await
                .with_context(|| format!("while binding {}", cfg.listen_tls))?;
            tokio::spawn(reload_on_sighup(resolver));
            Some((listener, acceptor, files))
        }
        None => None,
    };
    let http_addr = http.as_ref().map(|l| l.local_addr()).transpose()?;
    let tls_addr = tls
        .as_ref()
        .map(|(l, _, f)| l.local_addr().map(|a| (a, f.clone())))
        .transpose()?;
    print_banner(&cfg, http_addr, tls_addr.as_ref(), &creds, created);
    state.ready.store(true, Ordering::Release);

    let limits = Limits {
        connections: Arc::new(tokio::sync::Semaphore::new(cfg.max_connections)),
        header_timeout: cfg.header_timeout,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal_stop.cancel();
    });
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let mut tasks = Vec::new();
    if let Some(listener) = http {
        tasks.push(tokio::spawn(accept_loop(
            listener,
            None,
            router.clone(),
            graceful.clone(),
            stop.clone(),
            limits.clone(),
        )));
    }
    if let Some((listener, acceptor, _)) = tls {
        tasks.push(tokio::spawn(accept_loop(
            listener,
            Some(acceptor),
            router.clone(),
            graceful.clone(),
            stop.clone(),
            limits.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("shutting down: waiting for in-flight requests");
    let graceful = Arc::try_unwrap(graceful)
        .map_err(|_| anyhow::anyhow!("listener tasks still hold the shutdown handle"))?;
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("in-flight requests did not finish in 30 s"),
    }
    tracing::info!("sealbox stopped");
    Ok(())
}

async fn reload_on_sighup(resolver: Arc<tls::ReloadingResolver>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match resolver.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "TLS reload failed; keeping the old certificate")
            }
        }
    }
}

fn print_banner(
    cfg: &ServerConfig,
    http: Option<std::net::SocketAddr>,
    tls: Option<&(std::net::SocketAddr, tls::TlsFiles)>,
    creds: &credentials::RootCredentials,
    created: bool,
) {
    if let Some(addr) = http {
        println!(
            "sealbox listening on http://{addr} (region {}, data {})",
            cfg.region,
            cfg.data.display()
        );
    }
    if let Some((addr, files)) = tls {
        println!(
            "sealbox listening on https://{addr} (certificate {})",
            files.cert.display()
        );
        if let Some(ca) = &files.ca {
            println!("  trust it with: aws --ca-bundle {0} ... | boto3 verify=\"{0}\" | curl --cacert {0}", ca.display());
        }
    }
    let endpoint = match (http, tls) {
        (Some(a), _) => format!("http://{a}"),
        (None, Some((a, _))) => format!("https://{a}"),
        (None, None) => String::new(),
    };
    if created {
        println!(
            "Generated root credentials (stored in {}/root-credentials.json, mode 0600):",
            cfg.data.display()
        );
    } else {
        println!(
            "Root credentials (from {}/root-credentials.json):",
            cfg.data.display()
        );
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

/// Connection limits shared by the listeners.
#[derive(Clone)]
struct Limits {
    connections: Arc<tokio::sync::Semaphore>,
    header_timeout: Duration,
}

/// Accepts connections until `stop`; TLS handshakes run in the connection's own task.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
    stop: tokio_util::sync::CancellationToken,
    limits: Limits,
) {
    let mut http = ConnBuilder::new(TokioExecutor::new());
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        // Past the connection limit, stop accepting: clients queue in the kernel's backlog.
        let permit = tokio::select! {
            p = limits.connections.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.cancelled() => break,
        };
        let (socket, addr) = tokio::select! {
            res = listener.accept() => match res {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = socket.set_nodelay(true);
        let svc = router.for_connection(Peer {
            addr,
            is_tls: tls.is_some(),
        });
        match &tls {
            None => {
                let conn = graceful.watch(
                    http.serve_connection(TokioIo::new(socket), svc)
                        .into_owned(),
                );
                tokio::spawn(async move {
                    if let Err(err) = conn.await {
                        tracing::debug!(%err, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let http = http.clone();
                let limits_header_timeout = limits.header_timeout;
                let graceful = graceful.clone();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(socket),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(err)) => return tracing::debug!(%err, %addr, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%addr, "TLS handshake timed out"),
                    };
                    let conn = graceful.watch(
                        http.serve_connection(TokioIo::new(stream), svc)
                            .into_owned(),
                    );
                    if let Err(err) = conn.await {
                        tracing::debug!(%err, "connection ended with an error");
                    }
                });
            }
        }
    }
}
