//! TLS with rustls: certificate files (reloaded on SIGHUP) or `--tls auto`, which makes a private
//! CA and a server certificate for localhost, 127.0.0.1, ::1 and the configured domains.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// For `--tls auto`: the CA clients should trust (`--ca-bundle`).
    pub ca: Option<PathBuf>,
}

fn load_certified_key(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("while reading the TLS certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("the TLS certificate {} is not valid PEM", files.cert.display()))?;
    if certs.is_empty() {
        bail!("the TLS certificate file {} holds no certificate", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| {
        format!("while reading the TLS private key {} (PEM: PKCS#8, PKCS#1 or SEC1)", files.key.display())
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let ck = CertifiedKey::from_der(certs, key, &provider).with_context(|| {
        format!("the TLS key {} does not match the certificate {}", files.key.display(), files.cert.display())
    })?;
    Ok(ck)
}

/// Serves the current certificate; `reload` swaps it in place (SIGHUP) for new connections.
#[derive(Debug)]
pub struct ReloadingResolver {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingResolver {
    pub fn new(files: TlsFiles) -> anyhow::Result<Self> {
        let ck = load_certified_key(&files)?;
        Ok(Self { files, current: RwLock::new(Arc::new(ck)) })
    }

    /// Re-reads the files; on error keeps serving the old certificate.
    pub fn reload(&self) -> anyhow::Result<()> {
        let ck = load_certified_key(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ck);
        Ok(())
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// `client_auth`: the XKS client certificate verifier (`xks_tls.rs`), when mTLS is configured.
pub fn server_config(
    resolver: Arc<ReloadingResolver>,
    client_auth: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_auth {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// `--tls auto`: reuse `DATA/tls/{ca,cert,key}.pem` or create them (a private CA signs the
/// server certificate, so clients trust `ca.pem` with `--ca-bundle` / `verify=`).
pub fn auto_files(data: &Path, domains: &[String]) -> anyhow::Result<TlsFiles> {
    let dir = data.join("tls");
    let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem"), ca: Some(dir.join("ca.pem")) };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    let ca_key = rcgen::KeyPair::generate().context("CA key")?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).context("CA params")?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "sealbox local CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).context("CA certificate")?;
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);

    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    for d in domains {
        names.push(d.clone());
        names.push(format!("*.{d}"));
    }
    let key = rcgen::KeyPair::generate().context("server key")?;
    let mut params = rcgen::CertificateParams::new(names).context("server certificate names")?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "sealbox");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).context("server certificate")?;

    let write = crate::private_files::write_atomic;
    write(files.ca.as_ref().expect("auto has a CA"), ca_cert.pem().as_bytes(), 0o644)?;
    write(&files.cert, format!("{}{}", cert.pem(), ca_cert.pem()).as_bytes(), 0o644)?;
    write(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(files)
}
