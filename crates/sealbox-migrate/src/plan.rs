//! Plan files: ordered `[[rule]]`s that split one source over several buckets. The first rule
//! that matches a key decides where it goes; keys no rule matches stay where they are.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use crate::checkpoint::Checkpoint;
use crate::cli::{ApplyArgs, PlanArgs, SseArg};
use crate::conn::{Conn, Endpoint};
use crate::copy::{ensure_bucket, finish_run, Engine, Source, SourceObject, SseSpec, Transfer};
use crate::error::{MigrateError, Side};
use crate::location::Location;
use crate::progress::human_bytes;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(rename = "match")]
    matcher: Spanned<MatchSpec>,
    bucket: Spanned<String>,
    #[serde(default)]
    dest_prefix: Option<String>,
    #[serde(default)]
    strip_prefix: Option<String>,
    #[serde(default)]
    kms_key: Option<Spanned<String>>,
    #[serde(default)]
    sse: Option<Spanned<String>>,
    #[serde(default)]
    readers: Vec<String>,
    #[serde(default)]
    writers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchSpec {
    prefix: Option<String>,
    glob: Option<String>,
    regex: Option<String>,
}

/// How a rule selects keys (relative to SRC).
#[derive(Debug, Clone)]
pub(crate) enum KeyMatcher {
    Prefix(String),
    Glob(globset::GlobMatcher),
    Regex(regex::Regex),
}

impl KeyMatcher {
    fn is_match(&self, key: &str) -> bool {
        match self {
            KeyMatcher::Prefix(p) => key.starts_with(p.as_str()),
            KeyMatcher::Glob(g) => g.is_match(key),
            KeyMatcher::Regex(r) => r.is_match(key),
        }
    }

    fn describe(&self) -> String {
        match self {
            KeyMatcher::Prefix(p) => format!("prefix {p:?}"),
            KeyMatcher::Glob(g) => format!("glob {:?}", g.glob().glob()),
            KeyMatcher::Regex(r) => format!("regex {:?}", r.as_str()),
        }
    }
}

/// One validated rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub matcher: KeyMatcher,
    pub bucket: String,
    pub dest_prefix: String,
    pub strip_prefix: Option<String>,
    /// `alias/<name>` (or a key id / ARN given as such).
    pub kms_key: Option<String>,
    pub sse: Option<SseArg>,
    pub readers: Vec<String>,
    pub writers: Vec<String>,
}

impl Rule {
    pub(crate) fn sse_spec(&self) -> SseSpec {
        SseSpec { algorithm: self.sse, kms_key: self.kms_key.clone(), bucket_key: false }
    }

    fn dest_key(&self, rel: &str) -> String {
        let rest = match &self.strip_prefix {
            Some(p) => rel.strip_prefix(p.as_str()).unwrap_or(rel),
            None => rel,
        };
        format!("{}{rest}", self.dest_prefix)
    }
}

/// A parsed plan file.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub rules: Vec<Rule>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| before.len() - i).unwrap_or(before.len() + 1);
    (line, col)
}

fn bucket_name_ok(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && b.as_bytes().first().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.as_bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn parse_sse(s: &str) -> Option<SseArg> {
    match s {
        "AES256" => Some(SseArg::Aes256),
        "aws:kms" => Some(SseArg::AwsKms),
        "aws:kms:dsse" => Some(SseArg::AwsKmsDsse),
        _ => None,
    }
}

/// A bare name in `kms_key` is an alias: `db-credentials` -> `alias/db-credentials`.
pub(crate) fn kms_key_ref(name: &str) -> String {
    if name.starts_with("alias/") || name.starts_with("arn:") || is_key_id(name) {
        name.to_owned()
    } else {
        format!("alias/{name}")
    }
}

fn is_key_id(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-')
}

impl Plan {
    /// Parses and validates; every error names `path:line:column`.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self, MigrateError> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            MigrateError::Plan { path: path.to_owned(), line, column, message }
        };
        let file: PlanFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            at(span, e.message().to_owned())
        })?;
        if file.rule.is_empty() {
            return Err(at(0..0, "no [[rule]] tables: a plan needs at least one rule".into()));
        }
        let mut rules = Vec::new();
        for spec in file.rule {
            let m = spec.matcher.get_ref();
            let given = [m.prefix.is_some(), m.glob.is_some(), m.regex.is_some()].iter().filter(|x| **x).count();
            if given != 1 {
                return Err(at(spec.matcher.span(), "`match` needs exactly one of prefix, glob or regex".into()));
            }
            let matcher = if let Some(p) = &m.prefix {
                KeyMatcher::Prefix(p.clone())
            } else if let Some(g) = &m.glob {
                let glob = globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| at(spec.matcher.span(), format!("bad glob: {e}")))?;
                KeyMatcher::Glob(glob.compile_matcher())
            } else {
                let r = m.regex.as_deref().unwrap_or_default();
                KeyMatcher::Regex(regex::Regex::new(r).map_err(|e| at(spec.matcher.span(), format!("bad regex: {e}")))?)
            };
            if !bucket_name_ok(spec.bucket.get_ref()) {
                return Err(at(spec.bucket.span(), format!("{:?} is not a valid bucket name", spec.bucket.get_ref())));
            }
            let sse = match &spec.sse {
                Some(s) => Some(parse_sse(s.get_ref()).ok_or_else(|| {
                    at(s.span(), format!("sse must be AES256, aws:kms or aws:kms:dsse, not {:?}", s.get_ref()))
                })?),
                None => None,
            };
            let kms_key = spec.kms_key.as_ref().map(|k| kms_key_ref(k.get_ref()));
            // A key without an algorithm means SSE-KMS with that key.
            let sse = match (sse, &kms_key) {
                (None, Some(_)) => Some(SseArg::AwsKms),
                (Some(SseArg::Aes256), Some(_)) => {
                    let span = spec.kms_key.as_ref().map(|k| k.span()).unwrap_or(0..0);
                    return Err(at(span, "kms_key cannot be used with sse = \"AES256\"".into()));
                }
                (s, _) => s,
            };
            rules.push(Rule {
                matcher,
                bucket: spec.bucket.into_inner(),
                dest_prefix: spec.dest_prefix.unwrap_or_default(),
                strip_prefix: spec.strip_prefix,
                kms_key,
                sse,
                readers: spec.readers,
                writers: spec.writers,
            });
        }
        Ok(Plan { rules })
    }

    pub(crate) fn load(path: &Path) -> Result<Self, MigrateError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| MigrateError::Io { path: path.to_owned(), source })?;
        Self::parse(path, &text)
    }

    /// Index of the first rule that takes `rel`.
    fn rule_for(&self, rel: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.matcher.is_match(rel))
    }

    /// Splits the source listing into transfers and unmatched keys.
    pub(crate) fn map(&self, objects: Vec<SourceObject>) -> (Vec<(usize, Transfer)>, Vec<SourceObject>) {
        let mut mapped = Vec::new();
        let mut unmatched = Vec::new();
        for src in objects {
            match self.rule_for(&src.rel) {
                Some(i) => {
                    let rule = &self.rules[i];
                    mapped.push((
                        i,
                        Transfer {
                            dst_bucket: rule.bucket.clone(),
                            dst_key: rule.dest_key(&src.rel),
                            sse: rule.sse_spec(),
                            src,
                        },
                    ));
                }
                None => unmatched.push(src),
            }
        }
        (mapped, unmatched)
    }

    /// The dry-run table printed by `migrate plan`.
    pub(crate) fn describe_mapping(&self, mapped: &[(usize, Transfer)], unmatched: &[SourceObject]) -> String {
        let mut out = String::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let (count, bytes) =
                mapped.iter().filter(|(r, _)| *r == i).fold((0u64, 0u64), |(c, b), (_, t)| (c + 1, b + t.src.size));
            let enc = match (&rule.sse, &rule.kms_key) {
                (Some(SseArg::Aes256), _) => "SSE-S3".to_owned(),
                (Some(a), Some(k)) => format!("{} {k}", if *a == SseArg::AwsKmsDsse { "DSSE-KMS" } else { "SSE-KMS" }),
                (Some(SseArg::AwsKmsDsse), None) => "DSSE-KMS (default key)".to_owned(),
                (Some(_), None) => "SSE-KMS (default key)".to_owned(),
                (None, _) => "bucket default".to_owned(),
            };
            out.push_str(&format!(
                "rule {} ({}) -> s3://{}/{}  [{enc}]: {count} objects, {}\n",
                i + 1,
                rule.matcher.describe(),
                rule.bucket,
                rule.dest_prefix,
                human_bytes(bytes)
            ));
        }
        let unmatched_bytes: u64 = unmatched.iter().map(|o| o.size).sum();
        out.push_str(&format!("unmatched: {} objects, {}\n", unmatched.len(), human_bytes(unmatched_bytes)));
        for o in unmatched.iter().take(50) {
            out.push_str(&format!("  {}\n", o.key));
        }
        if unmatched.len() > 50 {
            out.push_str(&format!("  ... and {} more\n", unmatched.len() - 50));
        }
        out
    }
}

/// `migrate plan --plan rules.toml SRC`.
pub(crate) async fn run_plan(args: PlanArgs) -> anyhow::Result<i32> {
    let plan = Plan::load(&args.plan)?;
    let loc = Location::parse(&args.src)?;
    let source = Source::connect(&loc, &args.conn).await?;
    let (mapped, unmatched) = plan.map(source.list("").await?);
    print!("{}", plan.describe_mapping(&mapped, &unmatched));
    Ok(0)
}

/// `migrate apply --plan rules.toml SRC`.
pub(crate) async fn run_apply(args: ApplyArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let plan = Plan::load(&args.plan)?;
    let opts = &args.opts;
    let loc = Location::parse(&args.src)?;
    let source = Source::connect(&loc, &opts.conn).await?;
    let (mapped, unmatched) = plan.map(source.list(opts.prefix.as_deref().unwrap_or("")).await?);
    print!("{}", plan.describe_mapping(&mapped, &unmatched));
    if opts.dry_run {
        return Ok(0);
    }
    let dst = Conn::connect(&Endpoint::for_side(&opts.conn, Side::Destination), Side::Destination).await;
    if args.create_buckets {
        for line in crate::provision::provision(&dst, &plan, &args.account_id).await? {
            println!("{line}");
        }
    } else {
        let mut buckets: Vec<&str> = plan.rules.iter().map(|r| r.bucket.as_str()).collect();
        buckets.sort_unstable();
        buckets.dedup();
        for b in buckets {
            ensure_bucket(&dst, b).await.map_err(|e| {
                MigrateError::BadArgument(format!("{e} (pass --create-buckets to create the plan's buckets)"))
            })?;
        }
    }
    let plan_path = std::fs::canonicalize(&args.plan).unwrap_or_else(|_| PathBuf::from(&args.plan));
    let job = format!("apply {} plan {}", source.describe(), plan_path.display());
    let checkpoint = Checkpoint::open(&opts.checkpoint, &job)?;
    let transfers: Vec<Transfer> = mapped.into_iter().map(|(_, t)| t).collect();
    let total: u64 = transfers.iter().map(|t| t.src.size).sum();
    let engine = Arc::new(Engine::new(source, dst, checkpoint, opts, (transfers.len() as u64, total)).await?);
    let results = engine.execute(transfers, opts.parallel).await;
    let unmatched: Vec<String> = unmatched.into_iter().map(|o| o.key).collect();
    Ok(finish_run(args.src.clone(), opts, results, unmatched, started)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(rel: &str) -> SourceObject {
        SourceObject { key: rel.into(), rel: rel.into(), size: 1, tag: String::new() }
    }

    const EXAMPLE: &str = r#"
[[rule]]
match = { prefix = "db/" }
bucket = "db-credentials"
strip_prefix = "db/"
kms_key = "db-credentials"
readers = ["app"]

[[rule]]
match = { glob = "**/*.pem" }
bucket = "certificates"
sse = "AES256"

[[rule]]
match = { regex = "^api[-_]keys?/" }
bucket = "api-keys"
dest_prefix = "imported/"
"#;

    #[test]
    fn first_matching_rule_wins_and_keys_are_rewritten() {
        let plan = Plan::parse(Path::new("rules.toml"), EXAMPLE).unwrap();
        let (mapped, unmatched) =
            plan.map(vec![obj("db/prod.json"), obj("db/tls/x.pem"), obj("tls/site.pem"), obj("api-keys/s"), obj("x")]);
        let got: Vec<(usize, &str, &str)> =
            mapped.iter().map(|(i, t)| (*i, t.dst_bucket.as_str(), t.dst_key.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (0, "db-credentials", "prod.json"),
                (0, "db-credentials", "tls/x.pem"),
                (1, "certificates", "tls/site.pem"),
                (2, "api-keys", "imported/api-keys/s"),
            ]
        );
        assert_eq!(unmatched.len(), 1);
        assert_eq!(plan.rules[0].kms_key.as_deref(), Some("alias/db-credentials"));
        assert_eq!(plan.rules[0].sse, Some(SseArg::AwsKms));
    }

    #[test]
    fn errors_carry_line_numbers() {
        let bad = "[[rule]]\nmatch = { prefix = \"a\" }\nbucket = \"Bad_Name\"\n";
        let err = Plan::parse(Path::new("r.toml"), bad).unwrap_err().to_string();
        assert!(err.starts_with("r.toml:3:"), "{err}");
        let bad = "[[rule]]\nmatch = { prefix = \"a\", glob = \"b\" }\nbucket = \"ok-bucket\"\n";
        let err = Plan::parse(Path::new("r.toml"), bad).unwrap_err().to_string();
        assert!(err.starts_with("r.toml:2:"), "{err}");
        let bad = "[[rule]]\nmatch = { prefix = \"a\" }\nbucket = \"ok-bucket\"\ncolour = 1\n";
        let err = Plan::parse(Path::new("r.toml"), bad).unwrap_err().to_string();
        assert!(err.starts_with("r.toml:4:"), "{err}");
        let bad = "[[rule]]\nmatch = { regex = \"(\" }\nbucket = \"ok-bucket\"\n";
        let err = Plan::parse(Path::new("r.toml"), bad).unwrap_err().to_string();
        assert!(err.starts_with("r.toml:2:") && err.contains("regex"), "{err}");
    }
}
