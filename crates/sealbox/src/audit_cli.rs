//! `sealbox audit verify | lookup | export-key`: offline tools over a data directory's trail.
//!
//! `verify` exit codes: 0 = the trail verifies against the key the verifier brought
//! (`--public-key` or `--fingerprint`); 1 = verification failed (or the key does not match);
//! 2 = usage error; 3 = the trail is consistent with the data directory's own copy of the key
//! only, which proves nothing against someone who can write the data directory.

use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Prove the hash chain and the signed digests; names the first bad record or file.
    Verify {
        #[arg(long, env = "SEALBOX_DATA", default_value = "sealbox-data")]
        data: PathBuf,
        /// Public key (PEM) to check the digests with, kept away from the server (`export-key`).
        #[arg(long, conflicts_with = "fingerprint")]
        public_key: Option<PathBuf>,
        /// Fingerprint (hex SHA-256) of the audit key, as printed at first start and by
        /// `export-key`: DATA/audit-public-key.pem must be that key.
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// Print records (newest first) as CloudTrail JSON, filtered.
    Lookup {
        #[arg(long, env = "SEALBOX_DATA", default_value = "sealbox-data")]
        data: PathBuf,
        #[arg(long)]
        event_name: Option<String>,
        #[arg(long)]
        event_source: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        access_key_id: Option<String>,
        /// A key id or resource ARN.
        #[arg(long)]
        resource: Option<String>,
        #[arg(long)]
        bucket: Option<String>,
        /// RFC 3339 times, inclusive.
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
        #[arg(long, default_value_t = 50)]
        max_results: usize,
    },
    /// Print the audit public key (PEM) and its fingerprint.
    ExportKey {
        #[arg(long, env = "SEALBOX_DATA", default_value = "sealbox-data")]
        data: PathBuf,
    },
}

/// Exit code of a trail that verifies only against the data directory's own key copy.
pub const EXIT_UNANCHORED: i32 = 3;

fn verify(data: &std::path::Path, public_key: Option<PathBuf>, fingerprint: Option<String>) -> anyhow::Result<i32> {
    use sealbox_audit::TrustAnchor;
    let anchor = match (public_key, fingerprint) {
        (Some(path), _) => TrustAnchor::PublicKey(sealbox_audit::read_public_key(&path)?),
        (None, Some(fp)) => TrustAnchor::Fingerprint(fp),
        (None, None) => TrustAnchor::DataDirCopy,
    };
    let resolved = match sealbox_audit::resolve_anchor(data, &anchor) {
        Ok(r) => r,
        Err(e @ sealbox_audit::AnchorError::FingerprintMismatch { .. }) => {
            println!("audit trail FAILED verification: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    match sealbox_audit::verify(data, &resolved.key) {
        Ok(r) => {
            println!(
                "audit trail OK: {} records in {} files, {} digests; {} covered by signed digests, {} newer (hash chain only); key {}",
                r.records, r.files, r.digests, r.covered_records, r.uncovered_records, r.key_fingerprint
            );
            if resolved.anchored {
                return Ok(0);
            }
            let pem = sealbox_audit::public_key_path(data);
            println!(
                "WARNING: checked only against {}, the data directory's own copy of the key. This proves NOTHING \
                 against someone who can write the data directory: they can rewrite the trail, re-sign it with a \
                 key of their own and replace that file. Verify with the key you kept: --public-key FILE or \
                 --fingerprint HEX (printed at first start and by `sealbox audit export-key`). Exit code {EXIT_UNANCHORED}.",
                pem.display()
            );
            Ok(EXIT_UNANCHORED)
        }
        Err(e) => {
            println!("audit trail FAILED verification: {e}");
            Ok(1)
        }
    }
}

fn parse_time(s: Option<String>) -> anyhow::Result<Option<time::OffsetDateTime>> {
    s.map(|t| {
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("{t} is not an RFC 3339 time"))
    })
    .transpose()
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify { data, public_key, fingerprint } => verify(&data, public_key, fingerprint),
        AuditCommand::Lookup {
            data,
            event_name,
            event_source,
            user,
            access_key_id,
            resource,
            bucket,
            start,
            end,
            max_results,
        } => {
            let filter = sealbox_audit::LookupFilter {
                start_time: parse_time(start)?,
                end_time: parse_time(end)?,
                event_name,
                event_source,
                username: user,
                access_key_id,
                resource,
                bucket,
                max_results: Some(max_results),
            };
            let records = sealbox_audit::lookup(&data, &filter)?;
            // A closed pipe (`| head`) is not an error worth a panic.
            let text = serde_json::to_string_pretty(&serde_json::json!({"Records": records}))?;
            let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{text}\n").as_bytes());
            Ok(0)
        }
        AuditCommand::ExportKey { data } => {
            let path = sealbox_audit::public_key_path(&data);
            let pem = std::fs::read_to_string(&path).with_context(|| format!("while reading {}", path.display()))?;
            let key = sealbox_audit::AuditPublicKey::from_pem(&pem)?;
            print!("{pem}");
            eprintln!("fingerprint: {}", key.fingerprint());
            eprintln!(
                "keep both away from this machine; check the trail with `sealbox audit verify --data {} --fingerprint {}`",
                data.display(),
                key.fingerprint()
            );
            Ok(0)
        }
    }
}
