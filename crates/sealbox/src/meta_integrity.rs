//! The metadata key at start-up (docs/key-hierarchy.md, "Metadata key"): 32 random bytes, sealed
//! by the root key (through the KMS, so a PKCS#11 root key works too) and kept in `meta.db`
//! itself, so that the key and the rows it authenticates are backed up and restored together.
//!
//! First start on a store from before authenticated metadata: the key is made and every existing
//! row is authenticated as it is, in one transaction with storing the key (a crash leaves the
//! store untouched and the next start does it again). A store that has authenticated rows but no
//! key was edited: the server refuses to start rather than vouch for rows it cannot check.

use std::sync::Arc;

use anyhow::{bail, Context};
use sealbox_s3::MetadataKeys;
use sealbox_store::{LegacyCounts, MetaStore};
use zeroize::Zeroizing;

const PURPOSE: &str = "metadata integrity";

pub struct Opened {
    pub keys: MetadataKeys,
    /// What the one-time migration authenticated, when it ran on this start.
    pub migrated: Option<LegacyCounts>,
}

/// Opens (or makes) the metadata key and installs the configuration-row authenticator;
/// `on_failure` is told about every configuration row that fails its check.
pub fn open(
    meta: &MetaStore,
    kms: &sealbox_kms::Kms,
    on_failure: Arc<dyn Fn(&str) + Send + Sync>,
) -> anyhow::Result<Opened> {
    if let Some(sealed) = meta.integrity_key()? {
        let secret = kms
            .open_secret(&sealed, PURPOSE)
            .context("the metadata key in meta.db does not open with this root key")?;
        let secret: Zeroizing<[u8; 32]> =
            Zeroizing::new(secret[..].try_into().context("the metadata key in meta.db is damaged")?);
        let keys = keys_from(&secret)?;
        meta.set_row_authenticator(keys.row_authenticator(on_failure));
        return Ok(Opened { keys, migrated: None });
    }
    if meta.has_authenticated_rows()? {
        bail!(
            "meta.db holds authenticated records but its metadata key is missing: the database was \
             changed outside sealbox (or pieced together from different backups). Restore meta.db \
             from a backup; sealbox will not vouch for rows it cannot check."
        );
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut secret[..]).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let sealed = kms.seal_secret(&secret[..], PURPOSE)?;
    let keys = keys_from(&secret)?;
    meta.set_row_authenticator(keys.row_authenticator(on_failure));
    let counts = keys
        .authenticate_legacy_store(meta, &sealed)
        .context("while authenticating the records of meta.db (first start with authenticated metadata)")?;
    Ok(Opened { keys, migrated: Some(counts) })
}

fn keys_from(secret: &[u8; 32]) -> anyhow::Result<MetadataKeys> {
    MetadataKeys::from_secret(secret).map_err(|e| anyhow::anyhow!("deriving the metadata keys: {e}"))
}
