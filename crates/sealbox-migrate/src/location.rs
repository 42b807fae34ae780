//! SRC / DST arguments: a local folder or `s3://bucket[/prefix]`.

use std::path::PathBuf;

use crate::error::MigrateError;

/// A parsed SRC or DST argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    pub(crate) fn parse(text: &str) -> Result<Self, MigrateError> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = match rest.split_once('/') {
                Some((b, p)) => (b, p),
                None => (rest, ""),
            };
            if bucket.is_empty() {
                return Err(MigrateError::BadLocation(text.to_owned()));
            }
            return Ok(Location::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() });
        }
        if text.contains("://") || text.is_empty() {
            return Err(MigrateError::BadLocation(text.to_owned()));
        }
        Ok(Location::Local(PathBuf::from(text)))
    }

    /// The destination must be S3: sealbox migrates *into* a store.
    pub(crate) fn parse_s3(text: &str) -> Result<(String, String), MigrateError> {
        match Self::parse(text)? {
            Location::S3 { bucket, prefix } => Ok((bucket, prefix)),
            Location::Local(_) => Err(MigrateError::BadArgument(format!("{text}: expected s3://bucket[/prefix]"))),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_and_local() {
        assert_eq!(Location::parse("s3://b/p/q").unwrap(), Location::S3 { bucket: "b".into(), prefix: "p/q".into() });
        assert_eq!(Location::parse("s3://b").unwrap(), Location::S3 { bucket: "b".into(), prefix: String::new() });
        assert_eq!(Location::parse("./dir").unwrap(), Location::Local("./dir".into()));
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("gs://x").is_err());
        assert!(Location::parse_s3("/tmp").is_err());
    }
}
