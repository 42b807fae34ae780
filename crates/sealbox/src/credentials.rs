//! The root credentials: generated on first start, kept in the data dir (mode 0600), reused after.
//! The secret is shown once, when it is generated; later starts only say where it is (logs end
//! up in journald and container logs).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct RootCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The file, in the data dir.
pub const FILE: &str = "root-credentials.json";

/// Where this start's root credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Generated now (first start): the one time the secret is printed.
    Generated,
    /// Taken from `SEALBOX_ROOT_ACCESS_KEY`/`SEALBOX_ROOT_SECRET_KEY` now (first start): the
    /// operator already has the secret.
    Environment,
    /// Read from the file a previous start wrote.
    Stored,
}

/// Loads the root credentials, creating them on first start.
pub fn load_or_create(data: &Path) -> anyhow::Result<(RootCredentials, Origin)> {
    let path = data.join(FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("while reading {}", path.display()))?;
        let creds: RootCredentials =
            serde_json::from_str(&text).with_context(|| format!("while parsing {}", path.display()))?;
        return Ok((creds, Origin::Stored));
    }
    let (creds, origin) = match (std::env::var("SEALBOX_ROOT_ACCESS_KEY"), std::env::var("SEALBOX_ROOT_SECRET_KEY")) {
        (Ok(a), Ok(s)) if !a.is_empty() && !s.is_empty() => {
            (RootCredentials { access_key_id: a, secret_access_key: s }, Origin::Environment)
        }
        _ => (generate()?, Origin::Generated),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("while creating {}", path.display()))?;
    file.write_all(serde_json::to_string_pretty(&creds)?.as_bytes())?;
    file.sync_all()?;
    Ok((creds, origin))
}

fn generate() -> anyhow::Result<RootCredentials> {
    const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let rng = SystemRandom::new();
    let mut id = [0u8; 17];
    let mut secret = [0u8; 40];
    rng.fill(&mut id).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    rng.fill(&mut secret).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    // 32 and 64 divide 256, so taking the byte modulo the alphabet size has no bias.
    let access_key_id =
        format!("SBX{}", id.iter().take(17).map(|b| ID_ALPHABET[(*b % 32) as usize] as char).collect::<String>());
    let secret_access_key = secret.iter().map(|b| SECRET_ALPHABET[(*b % 64) as usize] as char).collect();
    Ok(RootCredentials { access_key_id, secret_access_key })
}
