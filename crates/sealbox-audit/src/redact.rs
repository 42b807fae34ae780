//! The redaction pass every record goes through before it is written: secrets never reach the
//! audit log, whatever the caller put into the record.
//!
//! CloudTrail omits `Plaintext` and `CiphertextBlob` from KMS records (the first is secret, the
//! second is bulky and useless to an auditor), and shows other sensitive inputs as
//! `HIDDEN_DUE_TO_SECURITY_REASONS`, so an auditor still sees that a value was supplied.

use serde_json::Value;

use crate::record::AuditRecord;

/// What CloudTrail writes in place of a sensitive value.
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Fields dropped entirely (compared after [`normalise`]). Besides CloudTrail's own, the inputs of
/// Sign/Verify, GenerateMac/VerifyMac and ImportKeyMaterial: a message, signature or MAC can be as
/// sensitive as a plaintext, and wrapped key material and import tokens have no place in a log.
const OMITTED: [&str; 9] = [
    "plaintext",
    "ciphertextblob",
    "ciphertextforrecipient",
    "body",
    "message",
    "signature",
    "mac",
    "encryptedkeymaterial",
    "importtoken",
];

/// Fields whose value is replaced by [`HIDDEN`] (compared after [`normalise`]).
const HIDDEN_FIELDS: [&str; 21] = [
    "ssecustomerkey",
    "xamzserversideencryptioncustomerkey",
    "copysourcessecustomerkey",
    "xamzcopysourceserversideencryptioncustomerkey",
    "secretaccesskey",
    "secretkey",
    "password",
    "newpassword",
    "oldpassword",
    "passphrase",
    "privatekey",
    "privatekeyplaintext",
    "sessiontoken",
    "xamzsecuritytoken",
    "authorization",
    "rootkey",
    "secretstring",
    "secretbinary",
    "keymaterial",
    "granttoken",
    "granttokens",
];

/// Removes or hides every secret-looking field of the record's free-form JSON parts; returns how
/// many values it touched.
pub fn redact(record: &mut AuditRecord) -> usize {
    let mut touched = 0;
    for part in [
        &mut record.request_parameters,
        &mut record.response_elements,
        &mut record.additional_event_data,
        &mut record.service_event_details,
    ]
    .into_iter()
    .flatten()
    {
        touched += redact_value(part);
    }
    touched
}

/// `x-amz-server-side-encryption-customer-key`, `SSECustomerKey` and `sse_customer_key` are the
/// same field to us.
fn normalise(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

fn looks_like_private_key(s: &str) -> bool {
    s.contains("-----BEGIN") && s.contains("PRIVATE KEY")
}

fn redact_value(v: &mut Value) -> usize {
    match v {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|k, _| !OMITTED.contains(&normalise(k).as_str()));
            let mut touched = before - map.len();
            for (k, child) in map.iter_mut() {
                let hidden = HIDDEN_FIELDS.contains(&normalise(k).as_str())
                    || matches!(child, Value::String(s) if looks_like_private_key(s));
                if hidden {
                    if *child != Value::String(HIDDEN.to_owned()) {
                        *child = Value::String(HIDDEN.to_owned());
                        touched += 1;
                    }
                } else {
                    touched += redact_value(child);
                }
            }
            touched
        }
        Value::Array(items) => items.iter_mut().map(redact_value).sum(),
        Value::String(s) if looks_like_private_key(s) => {
            *s = HIDDEN.to_owned();
            1
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{EventSource, RequestContext};
    use serde_json::json;
    use time::OffsetDateTime;

    fn record(params: Value) -> AuditRecord {
        let ctx = RequestContext {
            time: OffsetDateTime::UNIX_EPOCH,
            region: "us-east-1".into(),
            source_ip: "127.0.0.1".into(),
            user_agent: "t".into(),
            request_id: "r".into(),
        };
        AuditRecord::api_call(&Default::default(), &ctx, EventSource::Kms, "Encrypt").with_request_parameters(params)
    }

    #[test]
    fn drops_plaintext_and_blobs_and_hides_secrets_at_any_depth() {
        let mut r = record(json!({
            "keyId": "k1",
            "Plaintext": "c2VjcmV0",
            "ciphertextBlob": "AAAA",
            "encryptionContext": {"dept": "x"},
            "nested": [{"x-amz-server-side-encryption-customer-key": "a2V5"}, {"SecretAccessKey": "wJalr"}],
            "user": {"password": "hunter2", "PlaintextLength": 32},
            "pem": "-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----",
            "SSECustomerKeyMD5": "md5ok"
        }));
        r.response_elements = Some(json!({"plaintext": "c2VjcmV0", "keyId": "k1"}));
        assert_eq!(redact(&mut r), 7);
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["c2VjcmV0", "AAAA", "a2V5", "wJalr", "hunter2", "MC4C"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let p = r.request_parameters.unwrap();
        assert_eq!(p["keyId"], "k1");
        assert_eq!(p["user"]["PlaintextLength"], 32);
        assert_eq!(p["user"]["password"], HIDDEN);
        assert_eq!(p["SSECustomerKeyMD5"], "md5ok");
        assert!(p.get("Plaintext").is_none());
    }

    /// Intent records carry the raw KMS request document: the inputs of the asymmetric, HMAC,
    /// import and grant operations must not survive it.
    #[test]
    fn drops_kms_messages_signatures_macs_and_import_material() {
        let mut r = record(json!({
            "KeyId": "k1",
            "Message": "U0VDUkVU",
            "Signature": "c2lnbmF0dXJl",
            "Mac": "bWFjbWFj",
            "EncryptedKeyMaterial": "d3JhcHBlZA==",
            "ImportToken": "dG9rZW4=",
            "GrantTokens": ["Z3JhbnQ="],
            "GrantToken": "Z3JhbnQy"
        }));
        redact(&mut r);
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["U0VDUkVU", "c2lnbmF0dXJl", "bWFjbWFj", "d3JhcHBlZA", "dG9rZW4", "Z3JhbnQ"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(r.request_parameters.unwrap()["KeyId"], "k1");
    }

    #[test]
    fn redaction_is_idempotent() {
        let mut r = record(json!({"password": "x"}));
        assert_eq!(redact(&mut r), 1);
        assert_eq!(redact(&mut r), 0);
    }
}
