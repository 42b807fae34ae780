//! XKS proxy settings: the flags, the path prefix, and the SigV4 credentials file (re-read on
//! SIGHUP). XKS credentials are not IAM users: they open the XKS API and nothing else, and no IAM
//! key opens the XKS API.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use anyhow::{bail, Context};
use sealbox_auth::SecretAccessKey;
use serde::Deserialize;

/// The spec's fixed part of every XKS URI path (`XksProxyUriPath` ends with it).
pub const API_ROOT: &str = "/kms/xks/v1";
/// The spec's longest `XksProxyUriPath` (prefix + `/kms/xks/v1`).
const MAX_URI_PATH: usize = 128;

/// `sealbox serve` flags for the XKS proxy API (also env and config-file keys).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct XksArgs {
    /// Serve the AWS KMS External Key Store proxy API with these SigV4 credentials: a TOML file
    /// with one or two `[[credential]]` tables (`access_key_id`, `secret_access_key`), mode 0600;
    /// `kill -HUP` re-reads it. Without it the XKS API is off.
    #[arg(long, env = "SEALBOX_XKS_CREDENTIALS")]
    pub xks_credentials: Option<PathBuf>,
    /// Path prefix of the XKS API (`XksProxyUriPath` = PREFIX/kms/xks/v1). Default: none.
    #[arg(long, env = "SEALBOX_XKS_PATH_PREFIX")]
    pub xks_path_prefix: Option<String>,
    /// Mutual TLS for XKS: the HTTPS listener asks for client certificates chained to this CA
    /// (PEM), and XKS requests without one are refused (S3/KMS clients need none).
    #[arg(long, env = "SEALBOX_XKS_CLIENT_CA")]
    pub xks_client_ca: Option<PathBuf>,
    /// With --xks-client-ca: the subject common name client certificates must carry (AWS KMS
    /// presents `cks.kms.<region>.amazonaws.com`); others fail the TLS handshake.
    #[arg(long, env = "SEALBOX_XKS_CLIENT_CN", requires = "xks_client_ca")]
    pub xks_client_cn: Option<String>,
    /// DANGER, tests and TLS-terminating proxies only: serve XKS over plain HTTP (data keys
    /// travel in the clear).
    #[arg(long, env = "SEALBOX_INSECURE_ALLOW_XKS_OVER_HTTP")]
    pub insecure_allow_xks_over_http: bool,
}

/// The resolved XKS settings; `None` in [`crate::config::ServerConfig`] when the API is off.
#[derive(Debug, Clone)]
pub struct XksConfig {
    pub credentials: PathBuf,
    /// `/kms/xks/v1` with the prefix before it (`/keystores/a/kms/xks/v1`).
    pub api_root: String,
    pub client_ca: Option<PathBuf>,
    pub client_cn: Option<String>,
    pub allow_http: bool,
}

impl XksConfig {
    /// `args` already merged with the config file; `tls` says whether an HTTPS listener exists.
    pub fn resolve(args: XksArgs, tls: bool) -> anyhow::Result<Option<Self>> {
        let Some(credentials) = args.xks_credentials else {
            if args.xks_path_prefix.is_some() || args.xks_client_ca.is_some() || args.insecure_allow_xks_over_http {
                bail!("the --xks-* options need --xks-credentials (the XKS API is off without it)");
            }
            return Ok(None);
        };
        if args.xks_client_ca.is_some() && !tls {
            bail!("--xks-client-ca needs TLS (--tls auto or --tls-cert/--tls-key)");
        }
        if args.xks_client_cn.is_some() && args.xks_client_ca.is_none() {
            bail!("--xks-client-cn needs --xks-client-ca");
        }
        let api_root = format!("{}{API_ROOT}", normalize_prefix(args.xks_path_prefix.as_deref().unwrap_or(""))?);
        Ok(Some(XksConfig {
            credentials,
            api_root,
            client_ca: args.xks_client_ca,
            client_cn: args.xks_client_cn,
            allow_http: args.insecure_allow_xks_over_http,
        }))
    }
}

/// `keystores/a/` → `/keystores/a`; `` → ``. The spec allows `a-z A-Z 0-9 / - _` and 128
/// characters for the whole `XksProxyUriPath`.
fn normalize_prefix(prefix: &str) -> anyhow::Result<String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let allowed = trimmed.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'));
    if !allowed || trimmed.contains("//") {
        bail!("--xks-path-prefix {prefix:?} may hold only a-z, A-Z, 0-9, '-', '_' and single '/'");
    }
    let normalized = format!("/{trimmed}");
    if normalized.len() + API_ROOT.len() > MAX_URI_PATH {
        bail!("--xks-path-prefix {prefix:?} is too long: the XKS URI path may have at most {MAX_URI_PATH} characters");
    }
    Ok(normalized)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    credential: Vec<CredentialEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    access_key_id: String,
    secret_access_key: String,
}

/// The XKS SigV4 credentials: one set, or two during a rotation (spec, "SigV4 credentials
/// rotation"), both accepted at once.
pub struct XksCredentials {
    path: PathBuf,
    current: RwLock<Vec<(String, SecretAccessKey)>>,
}

impl XksCredentials {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let entries = read_credentials(path)?;
        Ok(XksCredentials { path: path.to_owned(), current: RwLock::new(entries) })
    }

    /// Re-reads the file (SIGHUP); on any error the credentials in use stay. Returns the access
    /// key ids now accepted.
    pub fn reload(&self) -> anyhow::Result<Vec<String>> {
        let entries = read_credentials(&self.path)?;
        let ids = entries.iter().map(|(id, _)| id.clone()).collect();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = entries;
        Ok(ids)
    }

    pub fn secret(&self, access_key_id: &str) -> Option<SecretAccessKey> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.iter().find(|(id, _)| id == access_key_id).map(|(_, s)| s.clone())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads and checks the credentials file: private to its owner (like the root key), one or two
/// credentials, each as Appendix A of the spec requires (access key id: 20-30 of `A-Z2-7`;
/// secret: 43-64 of `A-Za-z0-9+/=`, i.e. at least 256 bits of Base64).
fn read_credentials(path: &Path) -> anyhow::Result<Vec<(String, SecretAccessKey)>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("while reading the XKS credentials {}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "the XKS credentials {} are readable by group or others (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("while reading the XKS credentials {}", path.display()))?,
    );
    // The TOML error would quote the offending line, which may hold a secret: say where only.
    let file: CredentialsFile = toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|s| format!(" (at byte {})", s.start)).unwrap_or_default();
        anyhow::anyhow!(
            "the XKS credentials {} are not a TOML file of [[credential]] tables with access_key_id and secret_access_key{at}",
            path.display()
        )
    })?;
    if file.credential.is_empty() || file.credential.len() > 2 {
        bail!("the XKS credentials {} must hold one or two [[credential]] tables", path.display());
    }
    let mut out: Vec<(String, SecretAccessKey)> = Vec::new();
    for (i, c) in file.credential.into_iter().enumerate() {
        let id_ok = (20..=30).contains(&c.access_key_id.len())
            && c.access_key_id.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
        if !id_ok {
            bail!("XKS credential {}: access_key_id must be 20 to 30 of A-Z and 2-7", i + 1);
        }
        let secret_ok = (43..=64).contains(&c.secret_access_key.len())
            && c.secret_access_key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if !secret_ok {
            bail!(
                "XKS credential {} ({}): secret_access_key must be 43 to 64 of A-Z, a-z, 0-9, '+', '/', '=' (e.g. openssl rand -base64 32)",
                i + 1,
                c.access_key_id
            );
        }
        if out.iter().any(|(id, _)| *id == c.access_key_id) {
            bail!("XKS credential {}: access_key_id {} appears twice", i + 1, c.access_key_id);
        }
        out.push((c.access_key_id, SecretAccessKey::new(c.secret_access_key)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID1: &str = "MUBSXM6K3KMXHN6RRCXI7TWQ";
    const ID2: &str = "HGIE2BUAFNDMBCMSQVWLGCEX";
    const SECRET1: &str = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE=";
    const SECRET2: &str = "VU6W2byoiBrhDqNGbx703oL0syCAmhlQgwNUT1234567";

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("xks.toml");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn entry(id: &str, secret: &str) -> String {
        format!("[[credential]]\naccess_key_id = \"{id}\"\nsecret_access_key = \"{secret}\"\n")
    }

    #[test]
    fn one_or_two_credentials_and_reload_keeps_the_old_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), &entry(ID1, SECRET1), 0o600);
        let creds = XksCredentials::load(&p).unwrap();
        assert_eq!(creds.secret(ID1).unwrap().expose(), SECRET1);
        assert!(creds.secret(ID2).is_none());
        write(dir.path(), &(entry(ID1, SECRET1) + &entry(ID2, SECRET2)), 0o600);
        assert_eq!(creds.reload().unwrap(), [ID1, ID2]);
        assert!(creds.secret(ID1).is_some() && creds.secret(ID2).is_some());
        write(dir.path(), "not toml [[", 0o600);
        assert!(creds.reload().is_err());
        assert!(creds.secret(ID1).is_some() && creds.secret(ID2).is_some(), "a bad file changes nothing");
        write(dir.path(), &entry(ID2, SECRET2), 0o600);
        assert_eq!(creds.reload().unwrap(), [ID2]);
        assert!(creds.secret(ID1).is_none(), "the retired credential stops working");
    }

    #[test]
    fn refuses_weak_malformed_or_exposed_files_without_printing_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let three = entry(ID1, SECRET1) + &entry(ID2, SECRET2) + &entry("ABCDEFGHIJKLMNOPQRSTUVWX", SECRET1);
        for (text, mode, why) in [
            (entry(ID1, SECRET1), 0o644, "readable by group or others"),
            (String::new(), 0o600, "not a TOML file"),
            (three, 0o600, "one or two"),
            (entry(ID1, SECRET1) + &entry(ID1, SECRET2), 0o600, "appears twice"),
            (entry("short", SECRET1), 0o600, "20 to 30"),
            (entry("mubsxm6k3kmxhn6rrcxi7twq", SECRET1), 0o600, "20 to 30"),
            (entry("MUBSXM6K3KMXHN6RRCXI7TW1", SECRET1), 0o600, "20 to 30"),
            (entry(ID1, "password"), 0o600, "43 to 64"),
            (entry(ID1, &format!("{SECRET1}!")), 0o600, "43 to 64"),
            (format!("{}extra = 1\n", entry(ID1, SECRET1)), 0o600, "not a TOML file"),
        ] {
            let p = write(dir.path(), &text, mode);
            let e = format!("{:#}", XksCredentials::load(&p).err().unwrap());
            assert!(e.contains(why), "{why}: {e}");
            assert!(!e.contains(SECRET1) && !e.contains(SECRET2), "the error shows a secret: {e}");
        }
    }

    #[test]
    fn prefixes_are_normalized_and_checked() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("/").unwrap(), "");
        assert_eq!(normalize_prefix("keystores/a-1_b/").unwrap(), "/keystores/a-1_b");
        assert_eq!(normalize_prefix("/p").unwrap(), "/p");
        for bad in ["a b", "a//b", "a?b", "a%2Fb", "a.b", &"p".repeat(120)] {
            assert!(normalize_prefix(bad).is_err(), "{bad}");
        }
        let ok = "p".repeat(MAX_URI_PATH - API_ROOT.len() - 1);
        assert!(normalize_prefix(&ok).is_ok());
    }

    #[test]
    fn options_that_need_credentials_or_tls() {
        let none = XksConfig::resolve(XksArgs::default(), false).unwrap();
        assert!(none.is_none(), "off without credentials");
        let prefix_only = XksArgs { xks_path_prefix: Some("p".into()), ..Default::default() };
        assert!(XksConfig::resolve(prefix_only, true).is_err());
        let creds = XksArgs { xks_credentials: Some("x.toml".into()), ..Default::default() };
        let c = XksConfig::resolve(creds.clone(), false).unwrap().unwrap();
        assert_eq!(c.api_root, "/kms/xks/v1");
        let mtls_without_tls = XksArgs { xks_client_ca: Some("ca.pem".into()), ..creds.clone() };
        assert!(XksConfig::resolve(mtls_without_tls.clone(), false).is_err());
        assert!(XksConfig::resolve(mtls_without_tls, true).is_ok());
        let cn_without_ca = XksArgs { xks_client_cn: Some("cks.kms.eu-west-1.amazonaws.com".into()), ..creds };
        assert!(XksConfig::resolve(cn_without_ca, true).is_err());
    }
}
