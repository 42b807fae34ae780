//! The CloudTrail event record (contract F.1) and builders for the events sealbox emits.
//!
//! Field names and value shapes are CloudTrail's own, so tools that read CloudTrail JSON read ours.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// CloudTrail's record format version that our records follow.
pub const EVENT_VERSION: &str = "1.08";

/// `invokedBy`, `sourceIPAddress` and `userAgent` of calls AWS services make themselves
/// (contract E, automatic rotation).
pub const AWS_INTERNAL: &str = "AWS Internal";

/// `userIdentity.accountId` of an anonymous caller (CloudTrail's shape for unsigned S3 requests).
pub const ANONYMOUS_ACCOUNT: &str = "anonymous";

/// `eventName` of the record written before a state-changing call runs (docs/audit-format.md,
/// "Fail closed"); the call's own record, with the same `requestID`, follows it.
pub const INTENT_EVENT: &str = "ApiCallIntent";

/// `eventName` of the record the writer writes first after recovering from a failed disk.
pub const RECOVERED_EVENT: &str = "AuditWriterRecovered";

/// `eventName` of a flood summary ([`crate::coalesce`]).
pub const SUPPRESSED_EVENT: &str = "RequestsSuppressed";

/// The host S3 reports as caller when it calls KMS on a user's behalf (contract F.1).
pub const S3_SERVICE_HOST: &str = "s3.amazonaws.com";

/// Which API produced the event (`eventSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    Kms,
    S3,
    Iam,
    CloudTrail,
    /// Events of sealbox itself that AWS has no service for (start-up, audit log repair).
    Sealbox,
    /// The AWS KMS External Key Store proxy API (calls AWS KMS makes with the XKS credentials).
    Xks,
    /// Web console sign-in and sign-out (`ConsoleLogin`), as AWS sign-in reports them.
    Signin,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Kms => "kms.amazonaws.com",
            EventSource::S3 => "s3.amazonaws.com",
            EventSource::Iam => "iam.amazonaws.com",
            EventSource::CloudTrail => "cloudtrail.amazonaws.com",
            EventSource::Sealbox => "sealbox.local",
            EventSource::Xks => "kms-xks-proxy.sealbox.local",
            EventSource::Signin => "signin.amazonaws.com",
        }
    }

    /// The `errorCode` each API uses for an authorisation failure.
    fn access_denied_code(self) -> &'static str {
        match self {
            EventSource::Kms | EventSource::CloudTrail | EventSource::Xks => "AccessDeniedException",
            EventSource::S3 | EventSource::Iam | EventSource::Sealbox | EventSource::Signin => "AccessDenied",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    AwsApiCall,
    AwsServiceEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventCategory {
    Management,
    Data,
}

/// `userIdentity`. Every field but `accountId` is optional because service-initiated events carry
/// only `{accountId, invokedBy}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
}

/// One entry of `resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "accountId")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// One CloudTrail event record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub event_version: String,
    pub user_identity: UserIdentity,
    #[serde(with = "event_time")]
    pub event_time: OffsetDateTime,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    pub user_agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Always present; `null` when the call has none (CloudTrail writes `null`, not nothing).
    #[serde(default)]
    pub request_parameters: Option<Value>,
    #[serde(default)]
    pub response_elements: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    #[serde(rename = "requestID")]
    pub request_id: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    pub event_type: EventType,
    pub management_event: bool,
    pub event_category: EventCategory,
    pub recipient_account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_event_details: Option<Value>,
}

/// `eventTime`: UTC, ISO 8601 to the second (`2026-11-24T06:00:00Z`), as CloudTrail writes it.
pub mod event_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time_fmt::iso_seconds(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        crate::time_fmt::parse_iso(&s).ok_or_else(|| serde::de::Error::custom("eventTime is not UTC ISO 8601"))
    }
}

/// The authenticated caller, as the server knows it after SigV4 verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// `IAMUser`, `Root`, `AssumedRole`, ...
    pub identity_type: String,
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub access_key_id: String,
    /// IAM user name; absent for root.
    pub user_name: Option<String>,
}

impl Principal {
    fn identity(&self) -> UserIdentity {
        UserIdentity {
            identity_type: Some(self.identity_type.clone()),
            principal_id: Some(self.principal_id.clone()),
            arn: Some(self.arn.clone()),
            account_id: self.account_id.clone(),
            access_key_id: Some(self.access_key_id.clone()),
            user_name: self.user_name.clone(),
            invoked_by: None,
        }
    }
}

/// Where and when a request arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub time: OffsetDateTime,
    pub region: String,
    pub source_ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// Events CloudTrail marks `readOnly: true`: reads, and KMS crypto operations that change no state
/// (contract F.1).
pub fn is_read_only_event(event_name: &str) -> bool {
    const READ_PREFIXES: [&str; 4] = ["Get", "List", "Describe", "Head"];
    const READ_NAMES: [&str; 13] = [
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "GenerateRandom",
        "Sign",
        "Verify",
        "LookupEvents",
    ];
    READ_PREFIXES.iter().any(|p| event_name.starts_with(p)) || READ_NAMES.contains(&event_name)
}

/// S3 object-level operations are data events (`managementEvent: false`); everything else is a
/// management event (contract F.1).
pub fn is_s3_data_event(event_name: &str) -> bool {
    const OBJECT_OPS: [&str; 19] = [
        "GetObject",
        "PutObject",
        "HeadObject",
        "DeleteObject",
        "DeleteObjects",
        "CopyObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "ListParts",
        "GetObjectAttributes",
        "RestoreObject",
        "GetObjectTagging",
        "PutObjectTagging",
        "DeleteObjectTagging",
        "ListObjects",
        "ListObjectsV2",
    ];
    OBJECT_OPS.contains(&event_name)
}

impl AuditRecord {
    fn base(identity: UserIdentity, ctx: &RequestContext, source: EventSource, event_name: &str) -> Self {
        let data = source == EventSource::S3 && is_s3_data_event(event_name);
        AuditRecord {
            event_version: EVENT_VERSION.to_owned(),
            recipient_account_id: identity.account_id.clone(),
            user_identity: identity,
            event_time: ctx.time,
            event_source: source.as_str().to_owned(),
            event_name: event_name.to_owned(),
            aws_region: ctx.region.clone(),
            source_ip_address: ctx.source_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            error_code: None,
            error_message: None,
            request_parameters: None,
            response_elements: None,
            additional_event_data: None,
            request_id: ctx.request_id.clone(),
            event_id: uuid::Uuid::new_v4().to_string(),
            read_only: is_read_only_event(event_name),
            resources: Vec::new(),
            event_type: EventType::AwsApiCall,
            management_event: !data,
            event_category: if data { EventCategory::Data } else { EventCategory::Management },
            service_event_details: None,
        }
    }

    /// An API call a user made directly. `readOnly` and the management/data split follow
    /// CloudTrail's defaults for `event_name`; override with the `with_*` setters.
    pub fn api_call(principal: &Principal, ctx: &RequestContext, source: EventSource, event_name: &str) -> Self {
        Self::base(principal.identity(), ctx, source, event_name)
    }

    /// A KMS call S3 made on `principal`'s behalf (SSE-KMS, DSSE-KMS, bucket keys): the user is the
    /// identity, S3 is the caller (`invokedBy`, `sourceIPAddress`, `userAgent` = `s3.amazonaws.com`).
    pub fn kms_call_via_s3(principal: &Principal, ctx: &RequestContext, event_name: &str, key_arn: &str) -> Self {
        let mut identity = principal.identity();
        identity.invoked_by = Some(S3_SERVICE_HOST.to_owned());
        let mut r = Self::base(identity, ctx, EventSource::Kms, event_name);
        r.source_ip_address = S3_SERVICE_HOST.to_owned();
        r.user_agent = S3_SERVICE_HOST.to_owned();
        r.with_resource("AWS::KMS::Key", key_arn)
    }

    /// An automatic key rotation, shaped exactly as contract E describes CloudTrail's `RotateKey`
    /// service event.
    pub fn automatic_rotation(
        account_id: &str,
        region: &str,
        time: OffsetDateTime,
        key_arn: &str,
        key_id: &str,
    ) -> Self {
        let mut r = Self::service_event(account_id, region, time, EventSource::Kms, "RotateKey");
        r.service_event_details = Some(serde_json::json!({ "keyId": key_id }));
        r.with_resource("AWS::KMS::Key", key_arn)
    }

    /// An event a service started by itself (`AwsServiceEvent`, caller "AWS Internal",
    /// `requestParameters`/`responseElements` null).
    pub fn service_event(
        account_id: &str,
        region: &str,
        time: OffsetDateTime,
        source: EventSource,
        event_name: &str,
    ) -> Self {
        let identity = UserIdentity {
            account_id: account_id.to_owned(),
            invoked_by: Some(AWS_INTERNAL.to_owned()),
            ..UserIdentity::default()
        };
        let ctx = RequestContext {
            time,
            region: region.to_owned(),
            source_ip: AWS_INTERNAL.to_owned(),
            user_agent: AWS_INTERNAL.to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        let mut r = Self::base(identity, &ctx, source, event_name);
        r.event_type = EventType::AwsServiceEvent;
        r.read_only = false;
        r
    }

    /// A request refused by authorisation: the API's access-denied code and the message the caller
    /// got. `principal` is whoever signed the request (the signature was valid).
    pub fn denied(
        principal: &Principal,
        ctx: &RequestContext,
        source: EventSource,
        event_name: &str,
        error_message: &str,
    ) -> Self {
        Self::api_call(principal, ctx, source, event_name).with_error(source.access_denied_code(), error_message)
    }

    /// A request refused before anyone was authenticated: anonymous (no credentials), a bad
    /// signature, or an access key the server does not know. `claimed_access_key_id` is the key
    /// the request named, unproven (`type: Unknown`); without one the caller is CloudTrail's
    /// anonymous principal.
    pub fn unauthenticated(
        account_id: &str,
        ctx: &RequestContext,
        source: EventSource,
        event_name: &str,
        claimed_access_key_id: Option<&str>,
        error_code: &str,
        error_message: &str,
    ) -> Self {
        let identity = match claimed_access_key_id {
            Some(key) => UserIdentity {
                identity_type: Some("Unknown".into()),
                principal_id: Some(String::new()),
                account_id: account_id.to_owned(),
                access_key_id: Some(key.to_owned()),
                ..UserIdentity::default()
            },
            None => UserIdentity {
                identity_type: Some("AWSAccount".into()),
                principal_id: Some(String::new()),
                account_id: ANONYMOUS_ACCOUNT.to_owned(),
                ..UserIdentity::default()
            },
        };
        let mut r = Self::base(identity, ctx, source, event_name).with_error(error_code, error_message);
        r.recipient_account_id = account_id.to_owned();
        r
    }

    /// Written, durably, before a state-changing call runs: if the call's own record cannot be
    /// written afterwards, this one still says the call was made (outcome unknown).
    pub fn intent(
        principal: &Principal,
        ctx: &RequestContext,
        source: EventSource,
        event_name: &str,
        request_parameters: Value,
    ) -> Self {
        Self::api_call(principal, ctx, EventSource::Sealbox, INTENT_EVENT).with_request_parameters(serde_json::json!({
            "eventSource": source.as_str(),
            "eventName": event_name,
            "requestParameters": request_parameters,
        }))
    }

    /// One record standing for `summary.count` refused requests that were not recorded one by one
    /// ([`crate::coalesce`]): the flood's key in `sourceIPAddress`, `errorCode` and
    /// `userIdentity.accessKeyId`, the count and time span in `serviceEventDetails`.
    pub fn requests_suppressed(account_id: &str, region: &str, summary: &crate::coalesce::Suppressed) -> Self {
        let mut r = Self::service_event(account_id, region, summary.last, EventSource::Sealbox, SUPPRESSED_EVENT);
        let (ip, code, key) = match &summary.key {
            Some(k) => (k.source_ip.as_str(), k.error_code.as_str(), k.access_key_id.as_str()),
            None => ("", "", ""),
        };
        if !ip.is_empty() {
            r.source_ip_address = ip.to_owned();
        }
        if !code.is_empty() {
            r = r.with_error(
                code,
                &format!("{} more requests like this one were counted, not recorded one by one", summary.count),
            );
        }
        if !key.is_empty() {
            r.user_identity.access_key_id = Some(key.to_owned());
        }
        r.with_service_event_details(serde_json::json!({
            "suppressedCount": summary.count,
            "firstEventTime": crate::time_fmt::iso_seconds(summary.first),
            "lastEventTime": crate::time_fmt::iso_seconds(summary.last),
            "sourceIPAddress": ip,
            "errorCode": code,
            "accessKeyId": key,
            "overflow": summary.key.is_none(),
        }))
    }

    pub fn with_error(mut self, code: &str, message: &str) -> Self {
        self.error_code = Some(code.to_owned());
        self.error_message = Some(message.to_owned());
        self
    }

    pub fn with_request_parameters(mut self, params: Value) -> Self {
        self.request_parameters = Some(params);
        self
    }

    pub fn with_response_elements(mut self, elements: Value) -> Self {
        self.response_elements = Some(elements);
        self
    }

    pub fn with_additional_event_data(mut self, data: Value) -> Self {
        self.additional_event_data = Some(data);
        self
    }

    pub fn with_resource(mut self, resource_type: &str, arn: &str) -> Self {
        self.resources.push(Resource {
            account_id: self.user_identity.account_id.clone(),
            resource_type: resource_type.to_owned(),
            arn: arn.to_owned(),
        });
        self
    }

    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Marks the record as a data event (`managementEvent: false`, `eventCategory: Data`).
    pub fn as_data_event(mut self) -> Self {
        self.management_event = false;
        self.event_category = EventCategory::Data;
        self
    }

    pub fn with_service_event_details(mut self, details: Value) -> Self {
        self.service_event_details = Some(details);
        self
    }

    pub fn is_error(&self) -> bool {
        self.error_code.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal() -> Principal {
        Principal {
            identity_type: "IAMUser".into(),
            principal_id: "AIDAEXAMPLE".into(),
            arn: "arn:aws:iam::000000000000:user/alice".into(),
            account_id: "000000000000".into(),
            access_key_id: "AKIAEXAMPLE".into(),
            user_name: Some("alice".into()),
        }
    }

    fn ctx() -> RequestContext {
        RequestContext {
            time: OffsetDateTime::from_unix_timestamp(1_795_500_000).unwrap(),
            region: "us-east-1".into(),
            source_ip: "127.0.0.1".into(),
            user_agent: "aws-cli/2".into(),
            request_id: "req-1".into(),
        }
    }

    #[test]
    fn api_call_serialises_with_cloudtrail_field_names() {
        let r = AuditRecord::api_call(&principal(), &ctx(), EventSource::Kms, "GenerateDataKey")
            .with_request_parameters(json!({"keyId": "alias/x", "keySpec": "AES_256"}))
            .with_resource("AWS::KMS::Key", "arn:aws:kms:us-east-1:000000000000:key/k1");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["eventVersion"], "1.08");
        assert_eq!(v["eventTime"], "2026-11-24T06:00:00Z");
        assert_eq!(v["sourceIPAddress"], "127.0.0.1");
        assert_eq!(v["requestID"], "req-1");
        assert_eq!(v["userIdentity"]["type"], "IAMUser");
        assert_eq!(v["userIdentity"]["accessKeyId"], "AKIAEXAMPLE");
        assert_eq!(v["resources"][0]["ARN"], "arn:aws:kms:us-east-1:000000000000:key/k1");
        assert_eq!(v["resources"][0]["type"], "AWS::KMS::Key");
        assert_eq!(v["eventType"], "AwsApiCall");
        assert_eq!(v["eventCategory"], "Management");
        assert_eq!(v["readOnly"], true);
        assert_eq!(v["responseElements"], Value::Null);
        assert!(v.get("responseElements").is_some(), "null is written, not omitted");
        assert!(v.get("errorCode").is_none() && v.get("errorMessage").is_none());
        assert!(uuid::Uuid::parse_str(v["eventID"].as_str().unwrap()).is_ok());
        let back: AuditRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn kms_call_via_s3_names_s3_as_caller() {
        let r =
            AuditRecord::kms_call_via_s3(&principal(), &ctx(), "Decrypt", "arn:aws:kms:us-east-1:000000000000:key/k1");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["userIdentity"]["invokedBy"], "s3.amazonaws.com");
        assert_eq!(v["userIdentity"]["userName"], "alice");
        assert_eq!(v["sourceIPAddress"], "s3.amazonaws.com");
        assert_eq!(v["userAgent"], "s3.amazonaws.com");
        assert_eq!(v["eventSource"], "kms.amazonaws.com");
    }

    #[test]
    fn automatic_rotation_matches_contract_e() {
        let arn = "arn:aws:kms:us-east-1:000000000000:key/k1";
        let r = AuditRecord::automatic_rotation("000000000000", "us-east-1", ctx().time, arn, "k1");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["userIdentity"], json!({"accountId": "000000000000", "invokedBy": "AWS Internal"}));
        assert_eq!(v["eventType"], "AwsServiceEvent");
        assert_eq!(v["eventName"], "RotateKey");
        assert_eq!(v["sourceIPAddress"], "AWS Internal");
        assert_eq!(v["userAgent"], "AWS Internal");
        assert_eq!(v["requestParameters"], Value::Null);
        assert_eq!(v["responseElements"], Value::Null);
        assert_eq!(v["serviceEventDetails"], json!({"keyId": "k1"}));
        assert_eq!(v["resources"], json!([{"accountId": "000000000000", "type": "AWS::KMS::Key", "ARN": arn}]));
        assert_eq!(v["readOnly"], false);
        assert_eq!(v["managementEvent"], true);
    }

    #[test]
    fn denied_uses_each_apis_code_and_s3_object_calls_are_data_events() {
        let kms = AuditRecord::denied(&principal(), &ctx(), EventSource::Kms, "Decrypt", "not allowed");
        assert_eq!(kms.error_code.as_deref(), Some("AccessDeniedException"));
        let s3 = AuditRecord::denied(&principal(), &ctx(), EventSource::S3, "GetObject", "Access Denied");
        assert_eq!(s3.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(s3.event_category, EventCategory::Data);
        assert!(!s3.management_event);
        let bucket = AuditRecord::api_call(&principal(), &ctx(), EventSource::S3, "CreateBucket");
        assert_eq!(bucket.event_category, EventCategory::Management);
        assert!(!bucket.read_only);
    }
}
