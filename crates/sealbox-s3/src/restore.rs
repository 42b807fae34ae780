//! Storage classes and RestoreObject, as S3 answers them.
//!
//! The storage class is kept with the object and reported (HEAD/GET, listings, attributes); it
//! never changes where or how the bytes are stored: every object, archived or not, is sealed in
//! the blob store the same way. What an archive class (GLACIER, DEEP_ARCHIVE) changes is access:
//! its data cannot be read (GET, copy source) until a RestoreObject has completed, and only until
//! the restored copy expires. A restore takes `--restore-delay-secs` (AWS: hours) and lasts the
//! requested days, rounded up to midnight UTC as AWS does. GLACIER_IR reads at once, as on AWS.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sealbox_store::{ObjectRecord, RestoreState, StoreError};

use crate::error::blocking;
use crate::service::SealboxS3;

/// Every storage class a general-purpose S3 bucket accepts.
const STORAGE_CLASSES: [&str; 8] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

/// Classes whose data must be restored before it can be read.
const ARCHIVE_CLASSES: [&str; 2] = ["GLACIER", "DEEP_ARCHIVE"];

const DAY_MS: i64 = 86_400_000;

/// Validates `x-amz-storage-class`; STANDARD is stored as no class (AWS never names it in
/// object headers).
pub(crate) fn storage_class_of(sc: Option<&StorageClass>) -> S3Result<Option<String>> {
    match sc.map(|s| s.as_str()) {
        None | Some("STANDARD") => Ok(None),
        Some(s) if STORAGE_CLASSES.contains(&s) => Ok(Some(s.to_owned())),
        Some(_) => Err(s3_error!(InvalidStorageClass, "The storage class you specified is not valid")),
    }
}

/// The object's class as listings and GetObjectAttributes report it.
pub(crate) fn class_name(rec: &ObjectRecord) -> String {
    rec.storage_class.clone().unwrap_or_else(|| "STANDARD".to_owned())
}

fn is_archived(rec: &ObjectRecord) -> bool {
    rec.storage_class.as_deref().is_some_and(|c| ARCHIVE_CLASSES.contains(&c))
}

/// Where an archived object's restore stands at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestoreStatusNow {
    /// Not archived, or archived and never restored (or its restored copy expired).
    None,
    InProgress,
    /// Restored; readable until `expires_ms`.
    Restored {
        expires_ms: i64,
    },
}

pub(crate) fn restore_status(rec: &ObjectRecord, now_ms: i64) -> RestoreStatusNow {
    match rec.restore {
        Some(r) if is_archived(rec) && now_ms < r.completes_ms => RestoreStatusNow::InProgress,
        Some(r) if is_archived(rec) && now_ms < r.expires_ms => RestoreStatusNow::Restored { expires_ms: r.expires_ms },
        _ => RestoreStatusNow::None,
    }
}

/// The `x-amz-restore` header of HEAD/GET (AWS's exact shape).
pub(crate) fn restore_header(rec: &ObjectRecord, now_ms: i64) -> Option<String> {
    match restore_status(rec, now_ms) {
        RestoreStatusNow::None => None,
        RestoreStatusNow::InProgress => Some("ongoing-request=\"true\"".to_owned()),
        RestoreStatusNow::Restored { expires_ms } => {
            Some(format!("ongoing-request=\"false\", expiry-date=\"{}\"", http_date(expires_ms)))
        }
    }
}

/// `RestoreStatus` of a listing entry (ListObjectsV2 `OptionalObjectAttributes=RestoreStatus`).
pub(crate) fn listing_restore_status(rec: &ObjectRecord, now_ms: i64) -> Option<RestoreStatus> {
    match restore_status(rec, now_ms) {
        RestoreStatusNow::None => None,
        RestoreStatusNow::InProgress => {
            Some(RestoreStatus { is_restore_in_progress: Some(true), restore_expiry_date: None })
        }
        RestoreStatusNow::Restored { expires_ms } => Some(RestoreStatus {
            is_restore_in_progress: Some(false),
            restore_expiry_date: Some(crate::service::timestamp(expires_ms)),
        }),
    }
}

/// Refuses to serve the data of an archived object that is not restored (GET, copy source).
pub(crate) fn check_readable(rec: &ObjectRecord, now_ms: i64) -> S3Result<()> {
    if is_archived(rec) && !matches!(restore_status(rec, now_ms), RestoreStatusNow::Restored { .. }) {
        return Err(s3_error!(InvalidObjectState, "The operation is not valid for the object's storage class"));
    }
    Ok(())
}

/// AWS's expiry of a restored copy: `days` after `from`, rounded up to the next midnight UTC.
fn expiry_ms(from_ms: i64, days: i64) -> i64 {
    let end = from_ms + days * DAY_MS;
    (end.div_euclid(DAY_MS) + 1) * DAY_MS
}

fn http_date(ms: i64) -> String {
    crate::put::format_http_date(&crate::service::timestamp(ms)).unwrap_or_default()
}

/// What a RestoreObject request does to the object's restore state.
#[derive(Debug, PartialEq, Eq)]
enum RestoreOutcome {
    /// A new restore started: 202 Accepted.
    Started(RestoreState),
    /// Already restored: its copy now lasts `days` from now, 200 OK.
    Extended(RestoreState),
}

fn plan_restore(rec: &ObjectRecord, days: i64, now_ms: i64, delay_ms: i64) -> S3Result<RestoreOutcome> {
    if !is_archived(rec) {
        return Err(s3_error!(InvalidObjectState, "Restore is not allowed for the object's current storage class"));
    }
    match restore_status(rec, now_ms) {
        RestoreStatusNow::InProgress => {
            Err(s3_error!(RestoreAlreadyInProgress, "Object restore is already in progress"))
        }
        RestoreStatusNow::Restored { .. } => {
            let completes_ms = rec.restore.map_or(now_ms, |r| r.completes_ms);
            Ok(RestoreOutcome::Extended(RestoreState { completes_ms, expires_ms: expiry_ms(now_ms, days) }))
        }
        RestoreStatusNow::None => {
            let completes_ms = now_ms + delay_ms;
            Ok(RestoreOutcome::Started(RestoreState { completes_ms, expires_ms: expiry_ms(completes_ms, days) }))
        }
    }
}

/// The days of a restore request, refusing what we do not do (SELECT restores, output
/// locations) instead of ignoring it. Every retrieval tier is accepted; none changes the delay.
fn restore_days(req: Option<&RestoreRequest>, storage_class: Option<&str>) -> S3Result<i64> {
    let Some(req) = req else {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    };
    if req.type_.is_some() || req.select_parameters.is_some() || req.output_location.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "Restores of type SELECT (S3 Select on archived objects) are not supported"
        ));
    }
    let tier = req
        .glacier_job_parameters
        .as_ref()
        .map(|p| p.tier.as_str().to_owned())
        .or_else(|| req.tier.as_ref().map(|t| t.as_str().to_owned()));
    match tier.as_deref() {
        None | Some("Standard") | Some("Bulk") => {}
        Some("Expedited") if storage_class == Some("DEEP_ARCHIVE") => {
            return Err(s3_error!(
                InvalidArgument,
                "The Expedited retrieval tier is not available for objects in the DEEP_ARCHIVE storage class"
            ))
        }
        Some("Expedited") => {}
        Some(other) => return Err(s3_error!(InvalidArgument, "Invalid retrieval tier: {other}")),
    }
    match req.days {
        Some(d) if d >= 1 => Ok(i64::from(d)),
        Some(_) => Err(s3_error!(InvalidArgument, "Days must be a positive integer")),
        None => Err(s3_error!(InvalidArgument, "Days is required to restore an object from an archive storage class")),
    }
}

impl SealboxS3 {
    pub(crate) async fn op_restore_object(
        &self,
        req: S3Request<RestoreObjectInput>,
    ) -> S3Result<S3Response<RestoreObjectOutput>> {
        let input = req.input;
        crate::get::check_version_id(input.version_id.as_ref())?;
        let current = self.load_object(&input.bucket, &input.key).await?;
        let days = restore_days(input.restore_request.as_ref(), current.storage_class.as_deref())?;
        let now = self.clock_ms();
        let delay = self.config.restore_delay.as_millis() as i64;
        // Planned again inside the store transaction, against the record as it is then.
        let (meta, s3) = (self.meta.clone(), self.clone());
        let (b, k) = (input.bucket.clone(), input.key.clone());
        let updated = blocking(move || {
            meta.update_object_meta(&b, &k, |current, next| {
                // The record as stored is checked first (never re-tag, or act on, a record edited
                // behind sealbox's back), then changed and re-tagged.
                s3.check_and_retag(current, next)?;
                let planned = plan_restore(current, days, now, delay).map_err(|e| StoreError::Refused(Box::new(e)))?;
                let (RestoreOutcome::Started(r) | RestoreOutcome::Extended(r)) = &planned;
                next.restore = Some(*r);
                s3.retag_row(next);
                Ok(matches!(planned, RestoreOutcome::Started(_)))
            })
        })
        .await?;
        let Some((_, started)) = updated else {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        };
        // 202 Accepted for a restore that starts; 200 OK when an existing restored copy is kept
        // longer (AWS).
        Ok(match started {
            true => crate::service::with_status(RestoreObjectOutput::default(), http::StatusCode::ACCEPTED),
            false => S3Response::new(RestoreObjectOutput::default()),
        })
    }

    /// The clock restores are judged by (shifted by `SEALBOX_TEST_CLOCK_OFFSET_SECS` in tests).
    pub(crate) fn clock_ms(&self) -> i64 {
        crate::service::now_ms() + self.config.clock_offset_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archived(class: &str, restore: Option<RestoreState>) -> ObjectRecord {
        ObjectRecord {
            bucket: "b".into(),
            key: "k".into(),
            size: 1,
            etag: "e".into(),
            last_modified_ms: 0,
            generation: 0,
            content_type: None,
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            expires: None,
            website_redirect_location: None,
            user_metadata: Default::default(),
            checksums: Default::default(),
            checksum_type: None,
            parts: Vec::new(),
            sse: None,
            tags: Default::default(),
            storage_class: Some(class.into()),
            restore,
            row_mac: None,
        }
    }

    #[test]
    fn expiry_rounds_up_to_the_next_midnight_utc() {
        // 2012-12-20 10:30 UTC + 1 day -> 2012-12-22 00:00 UTC (AWS's example shape).
        let start = 1_356_000_000_000 - 1_356_000_000_000 % DAY_MS + 10 * 3_600_000 + 1_800_000;
        let midnight_after_next = start - start % DAY_MS + 2 * DAY_MS;
        assert_eq!(expiry_ms(start, 1), midnight_after_next);
        assert_eq!(expiry_ms(start - start % DAY_MS, 1), start - start % DAY_MS + 2 * DAY_MS);
    }

    #[test]
    fn restore_life_cycle() {
        let rec = archived("GLACIER", None);
        assert!(check_readable(&rec, 0).is_err());
        assert_eq!(restore_header(&rec, 0), None);
        let RestoreOutcome::Started(r) = plan_restore(&rec, 2, 1_000, 5_000).unwrap() else { panic!() };
        assert_eq!(r.completes_ms, 6_000);
        let rec = archived("GLACIER", Some(r));
        assert_eq!(restore_header(&rec, 2_000).as_deref(), Some("ongoing-request=\"true\""));
        assert!(check_readable(&rec, 2_000).is_err());
        assert_eq!(
            plan_restore(&rec, 2, 2_000, 5_000).unwrap_err().code(),
            &s3s::S3ErrorCode::RestoreAlreadyInProgress
        );
        assert!(check_readable(&rec, 6_000).is_ok());
        let header = restore_header(&rec, 6_000).unwrap();
        assert!(
            header.starts_with("ongoing-request=\"false\", expiry-date=\"Sun, 04 Jan 1970 00:00:00 GMT\""),
            "{header}"
        );
        assert!(matches!(plan_restore(&rec, 5, 7_000, 5_000).unwrap(), RestoreOutcome::Extended(_)));
        // Expired: archived again, a new restore starts over.
        assert!(check_readable(&rec, r.expires_ms).is_err());
        assert_eq!(restore_header(&rec, r.expires_ms), None);
        assert!(matches!(plan_restore(&rec, 1, r.expires_ms, 0).unwrap(), RestoreOutcome::Started(_)));
    }

    #[test]
    fn only_archive_classes_need_or_take_a_restore() {
        for class in ["STANDARD_IA", "GLACIER_IR", "INTELLIGENT_TIERING"] {
            let rec = archived(class, None);
            assert!(check_readable(&rec, 0).is_ok());
            assert_eq!(plan_restore(&rec, 1, 0, 0).unwrap_err().code(), &s3s::S3ErrorCode::InvalidObjectState);
        }
        assert!(check_readable(&archived("DEEP_ARCHIVE", None), 0).is_err());
        assert!(storage_class_of(Some(&StorageClass::from("STANDARD".to_owned()))).unwrap().is_none());
        assert!(storage_class_of(Some(&StorageClass::from("GLACIER".to_owned()))).unwrap().is_some());
        assert!(storage_class_of(Some(&StorageClass::from("OUTPOSTS".to_owned()))).is_err());
    }

    #[test]
    fn restore_requests_refuse_what_is_not_done() {
        let days = |r: RestoreRequest, class: &str| restore_days(Some(&r), Some(class)).map_err(|e| e.code().clone());
        assert_eq!(days(RestoreRequest { days: Some(3), ..Default::default() }, "GLACIER"), Ok(3));
        assert_eq!(days(RestoreRequest::default(), "GLACIER"), Err(s3s::S3ErrorCode::InvalidArgument));
        assert_eq!(
            days(RestoreRequest { days: Some(0), ..Default::default() }, "GLACIER"),
            Err(s3s::S3ErrorCode::InvalidArgument)
        );
        let select = RestoreRequest {
            days: Some(1),
            type_: Some(RestoreRequestType::from("SELECT".to_owned())),
            ..Default::default()
        };
        assert_eq!(days(select, "GLACIER"), Err(s3s::S3ErrorCode::NotImplemented));
        let expedited = |d| RestoreRequest {
            days: Some(d),
            glacier_job_parameters: Some(GlacierJobParameters { tier: Tier::from("Expedited".to_owned()) }),
            ..Default::default()
        };
        assert_eq!(days(expedited(1), "GLACIER"), Ok(1));
        assert_eq!(days(expedited(1), "DEEP_ARCHIVE"), Err(s3s::S3ErrorCode::InvalidArgument));
        assert_eq!(restore_days(None, Some("GLACIER")).unwrap_err().code(), &s3s::S3ErrorCode::MalformedXML);
    }
}
