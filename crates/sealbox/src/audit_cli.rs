//! `sealbox audit verify | lookup | export-key`: offline tools over a data directory's trail.

use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Prove the hash chain and the signed digests; names the first bad record or file.
    Verify {
        #[arg(long, env = "SEALBOX_DATA", default_value = "sealbox-data")]
        data: PathBuf,
        /// Public key (PEM) to check digests with. Default: DATA/audit-public-key.pem
        /// (keep a copy elsewhere: an attacker who can rewrite the data dir can replace it).
        #[arg(long)]
        public_key: Option<PathBuf>,
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

fn parse_time(s: Option<String>) -> anyhow::Result<Option<time::OffsetDateTime>> {
    s.map(|t| {
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("{t} is not an RFC 3339 time"))
    })
    .transpose()
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify { data, public_key } => {
            let path = public_key.unwrap_or_else(|| data.join("audit-public-key.pem"));
            let pem = std::fs::read_to_string(&path).with_context(|| format!("while reading {}", path.display()))?;
            let key = sealbox_audit::AuditPublicKey::from_pem(&pem)?;
            match sealbox_audit::verify(&data, &key) {
                Ok(r) => {
                    println!(
                        "audit trail OK: {} records in {} files, {} digests; {} covered by signed digests, {} newer (hash chain only); key {}",
                        r.records, r.files, r.digests, r.covered_records, r.uncovered_records, r.key_fingerprint
                    );
                    Ok(0)
                }
                Err(e) => {
                    println!("audit trail FAILED verification: {e}");
                    Ok(1)
                }
            }
        }
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
            let path = data.join("audit-public-key.pem");
            let pem = std::fs::read_to_string(&path).with_context(|| format!("while reading {}", path.display()))?;
            let key = sealbox_audit::AuditPublicKey::from_pem(&pem)?;
            print!("{pem}");
            eprintln!("fingerprint: {}", key.fingerprint());
            Ok(0)
        }
    }
}
