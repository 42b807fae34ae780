//! The KMS JSON API and the IAM query API on the shared port: read the (small) body, verify
//! SigV4 for the service, authorise, hand the call to the library that implements it.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use s3s::Body;

use crate::keyservice::{authorize_kms, identity_policies};
use crate::router::{Peer, RouterState};
use sealbox_audit::EventSource;
use sealbox_auth::{AuthError, Expected, Protocol};

/// KMS and IAM requests are small JSON/form documents; anything larger is refused unread.
const MAX_API_BODY: usize = 1 << 20;

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn read_body(body: Body) -> Result<bytes::Bytes, String> {
    match Limited::new(body, MAX_API_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(format!("request body could not be read (limit {MAX_API_BODY} bytes): {e}")),
    }
}

fn json_response(status: u16, body: Vec<u8>, request_id: &str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-amz-json-1.1"));
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

fn kms_error(status: u16, kind: &str, message: &str, request_id: &str) -> Response<Body> {
    let body = serde_json::json!({"__type": kind, "message": message});
    json_response(status, serde_json::to_vec(&body).unwrap_or_default(), request_id)
}

/// An auth refusal on a JSON API (KMS, CloudTrail), coded by `AuthError::code`.
fn json_auth_error(e: &AuthError, request_id: &str) -> Response<Body> {
    let (status, code, message) = crate::signing::answer(e, Protocol::AwsJson);
    kms_error(status, code, &message, request_id)
}

/// The refusal when a KMS call's record cannot be written: KMSInternalException, as AWS KMS
/// answers when it cannot complete a call; nothing of the call is in it.
fn kms_audit_refused(request_id: &str) -> Response<Body> {
    audited(kms_error(500, "KMSInternalException", crate::audit_glue::AUDIT_UNAVAILABLE, request_id))
}

/// Marks a response whose record the handler wrote (the router does not record it again).
fn audited(mut resp: Response<Body>) -> Response<Body> {
    resp.extensions_mut().insert(crate::audit_glue::Audited);
    resp
}

type KmsResult = Result<(sealbox_kms::api::ApiReply, sealbox_kms::api::CallSummary), tokio::task::JoinError>;

/// A KMS call's record and the response it may release.
fn kms_outcome(
    result: KmsResult,
    principal: &sealbox_audit::Principal,
    ctx: &sealbox_audit::RequestContext,
    op: &str,
    rid: &str,
) -> (sealbox_audit::AuditRecord, Response<Body>) {
    let rec = sealbox_audit::AuditRecord::api_call(principal, ctx, sealbox_audit::EventSource::Kms, op);
    match result {
        Ok((reply, summary)) => {
            let mut rec = rec.with_request_parameters(summary.request_parameters.clone());
            if let Some(arn) = &summary.key_arn {
                rec = rec.with_resource("AWS::KMS::Key", arn);
            }
            if reply.status != 200 {
                let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                rec = rec.with_error(v["__type"].as_str().unwrap_or("Error"), v["message"].as_str().unwrap_or(""));
            }
            (rec, json_response(reply.status, reply.body, rid))
        }
        Err(e) => {
            let message = format!("internal error: {e}");
            (rec.with_error("KMSInternalException", &message), kms_error(500, "KMSInternalException", &message, rid))
        }
    }
}

/// A KMS call by an authenticated caller. Fail closed: refused while the trail cannot be written
/// (an intent record first for calls that change state), and the reply (key material, plaintext)
/// is released only once its record is durable.
async fn kms_call(
    state: &Arc<RouterState>,
    peer: Option<Peer>,
    headers: &http::HeaderMap,
    bytes: bytes::Bytes,
    p: crate::identity::Principal,
    op: &str,
    rid: &str,
) -> Response<Body> {
    let source_ip = peer.map(|p| p.addr.ip().to_string());
    let audit_principal = crate::audit_glue::principal(&p);
    let audit_ctx = crate::audit_glue::context(&state.region, source_ip.clone(), Some(headers), rid);
    let intent = || crate::audit_glue::json_intent_parameters(&bytes);
    let begun =
        crate::audit_glue::AuditedCall::begin(&state.audit, &audit_principal, &audit_ctx, EventSource::Kms, op, intent)
            .await;
    let Ok(call) = begun else { return kms_audit_refused(rid) };
    let caller =
        sealbox_kms::Caller { access_key_id: p.access_key_id.clone(), principal_arn: p.arn.clone(), source_ip };
    let (st, op2) = (state.clone(), op.to_owned());
    let result = tokio::task::spawn_blocking(move || {
        let meta = st.meta.clone();
        let arn = caller.principal_arn.clone();
        let authorize = move |request: &sealbox_kms::api::AuthzRequest<'_>| authorize_kms(&meta, &arn, request);
        sealbox_kms::api::handle(&st.kms, &op2, &bytes, &caller, &authorize)
    })
    .await;
    let (rec, resp) = kms_outcome(result, &audit_principal, &audit_ctx, op, rid);
    match call.finish(rec).await {
        Ok(()) => audited(resp),
        Err(_) => kms_audit_refused(rid),
    }
}

/// `POST /` with `X-Amz-Target: TrentService.<op>`.
pub async fn kms(state: Arc<RouterState>, peer: Option<Peer>, req: Request<Body>, op: String) -> Response<Body> {
    let started = Instant::now();
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let resp = match read_body(body).await {
        Err(m) => kms_error(400, "SerializationException", &m, &rid),
        Ok(bytes) => match crate::signing::verify(&state.keyring, &parts, &bytes, Expected::signed_body("kms")) {
            Err(e) => json_auth_error(&e, &rid),
            Ok(v) => match state.keyring.principal(&v.access_key_id) {
                None => json_auth_error(&AuthError::UnknownAccessKey { access_key_id: v.access_key_id }, &rid),
                Some(p) => kms_call(&state, peer, &parts.headers, bytes, p, &op, &rid).await,
            },
        },
    };
    state.metrics.record("kms", &op, resp.status().as_u16(), started.elapsed(), 0, 0);
    resp
}

fn iam_response(status: StatusCode, xml: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/xml"));
    resp
}

fn iam_err(status: StatusCode, code: &'static str, message: impl Into<String>, rid: &str) -> Response<Body> {
    let e = crate::iam::IamError { status, code, message: message.into() };
    iam_response(status, crate::iam::error_xml(&e, rid))
}

/// The refusal when an IAM call's record cannot be written: AWS IAM's ServiceFailure (500,
/// `Receiver`); nothing of the call (no new secret) is in it.
fn iam_audit_refused(rid: &str) -> Response<Body> {
    audited(iam_err(StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailure", crate::audit_glue::AUDIT_UNAVAILABLE, rid))
}

/// IAM's own authorisation of a non-root caller (identity policies; `iam:<Action>` on the user).
fn iam_authorize(
    state: &RouterState,
    p: &crate::identity::Principal,
    form: &crate::iam::Form,
    action: &str,
) -> Result<(), crate::iam::IamError> {
    if p.is_root() {
        return Ok(());
    }
    let resource = match form.get("UserName") {
        Some(u) => crate::iam::user_arn(u, "/"),
        None => "*".to_owned(),
    };
    let ctx = sealbox_policy::RequestContext::new(
        p.arn.clone(),
        crate::iam::ACCOUNT_ID,
        format!("iam:{action}"),
        resource.clone(),
    );
    let policies = identity_policies(&state.meta, &p.arn);
    let refs: Vec<(&sealbox_policy::PolicyDocument, sealbox_policy::PolicyKind)> =
        policies.iter().map(|d| (d, sealbox_policy::PolicyKind::Identity)).collect();
    if sealbox_policy::evaluate(&ctx, &refs).is_allowed() {
        return Ok(());
    }
    Err(crate::iam::IamError {
        status: StatusCode::FORBIDDEN,
        code: "AccessDenied",
        message: format!("User: {} is not authorized to perform: iam:{action} on resource: {resource}", p.arn),
    })
}

/// An IAM call with a valid signature; returns the response and the action (for metrics). Fail
/// closed, as for KMS: no new secret or state change without its record.
async fn iam_call(
    state: &Arc<RouterState>,
    peer: Option<Peer>,
    headers: &http::HeaderMap,
    body: &[u8],
    access_key_id: &str,
    rid: &str,
) -> (Response<Body>, String) {
    let form = crate::iam::Form::parse(body);
    let action = form.get("Action").unwrap_or("Unknown").to_owned();
    let Some(p) = state.keyring.principal(access_key_id) else {
        let e = "The security token included in the request is invalid.";
        return (iam_err(StatusCode::FORBIDDEN, "InvalidClientTokenId", e, rid), action);
    };
    let audit_principal = crate::audit_glue::principal(&p);
    let audit_ctx =
        crate::audit_glue::context(&state.region, peer.map(|p| p.addr.ip().to_string()), Some(headers), rid);
    let mut params = serde_json::Map::new();
    for (k, v) in &form.0 {
        if matches!(k.as_str(), "UserName" | "PolicyName" | "AccessKeyId" | "Status" | "Path") {
            let mut c = k.chars();
            let key = c.next().map(|f| f.to_lowercase().collect::<String>() + c.as_str()).unwrap_or_default();
            params.insert(key, serde_json::json!(v));
        }
    }
    let params = serde_json::Value::Object(params);
    let intent = || params.clone();
    let begun = crate::audit_glue::AuditedCall::begin(
        &state.audit,
        &audit_principal,
        &audit_ctx,
        EventSource::Iam,
        &action,
        intent,
    )
    .await;
    let Ok(call) = begun else { return (iam_audit_refused(rid), action) };
    let (st, rid2, act) = (state.clone(), rid.to_owned(), action.clone());
    let result = tokio::task::spawn_blocking(move || {
        iam_authorize(&st, &p, &form, &act)?;
        st.iam.handle(&form, &rid2)
    })
    .await;
    let mut rec = sealbox_audit::AuditRecord::api_call(&audit_principal, &audit_ctx, EventSource::Iam, &action)
        .with_request_parameters(params);
    let resp = match result {
        Ok(Ok(xml)) => iam_response(StatusCode::OK, xml),
        Ok(Err(e)) => {
            rec = rec.with_error(e.code, &e.message);
            iam_response(e.status, crate::iam::error_xml(&e, rid))
        }
        Err(e) => {
            rec = rec.with_error("ServiceFailure", &e.to_string());
            iam_err(StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailure", e.to_string(), rid)
        }
    };
    match call.finish(rec).await {
        Ok(()) => (audited(resp), action),
        Err(_) => (iam_audit_refused(rid), action),
    }
}

/// The IAM query API (form-encoded POST signed for service `iam`).
pub async fn iam(state: Arc<RouterState>, _peer: Option<Peer>, req: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let mut action = String::from("Unknown");
    let resp = match read_body(body).await {
        Err(m) => iam_err(StatusCode::BAD_REQUEST, "MalformedInput", m, &rid),
        Ok(bytes) => match crate::signing::verify(&state.keyring, &parts, &bytes, Expected::signed_body("iam")) {
            Err(e) => {
                let (status, code, message) = crate::signing::answer(&e, Protocol::AwsQuery);
                iam_err(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), code, message, &rid)
            }
            Ok(v) => {
                let (resp, name) = iam_call(&state, _peer, &parts.headers, &bytes, &v.access_key_id, &rid).await;
                action = name;
                resp
            }
        },
    };
    state.metrics.record("iam", &action, resp.status().as_u16(), started.elapsed(), 0, 0);
    resp
}

/// `POST /_sealbox/rewrap?bucket=B[&prefix=P][&rate=N]` (SigV4, service s3, root only): re-wrap
/// every object's data key under its KMS key's newest material, metadata only.
pub async fn rewrap(state: Arc<RouterState>, peer: Option<Peer>, req: Request<Body>) -> Response<Body> {
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(m) => return kms_error(400, "InvalidRequest", &m, &rid),
    };
    // In S3's URL space and signed for `s3`, but an admin call: its (empty) body is signed too.
    let principal = match crate::signing::verify(&state.keyring, &parts, &bytes, Expected::signed_body("s3")) {
        Ok(v) => state.keyring.principal(&v.access_key_id),
        Err(e) => {
            let (status, code, message) = crate::signing::answer(&e, Protocol::RestXml);
            return kms_error(status, code, &message, &rid);
        }
    };
    let Some(p) = principal else { return kms_error(403, "AccessDenied", "a valid signature is required", &rid) };
    let ctx =
        crate::audit_glue::context(&state.region, peer.map(|p| p.addr.ip().to_string()), Some(&parts.headers), &rid);
    let audit_principal = crate::audit_glue::principal(&p);
    if !p.is_root() {
        let message = "only the account root may rewrap";
        let rec = sealbox_audit::AuditRecord::denied(
            &audit_principal,
            &ctx,
            sealbox_audit::EventSource::Sealbox,
            "RewrapBucket",
            message,
        );
        crate::audit_glue::write(&state.audit, rec, true).await;
        return audited(kms_error(403, "AccessDenied", message, &rid));
    }
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let Some(bucket) = q.get("bucket").cloned() else {
        return kms_error(400, "InvalidRequest", "bucket is required", &rid);
    };
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let rate = q.get("rate").and_then(|r| r.parse::<f64>().ok());
    let params = serde_json::json!({"bucketName": bucket, "prefix": prefix});
    let call = crate::audit_glue::AuditedCall::begin(
        &state.audit,
        &audit_principal,
        &ctx,
        sealbox_audit::EventSource::Sealbox,
        "RewrapBucket",
        || params.clone(),
    )
    .await;
    let Ok(call) = call else {
        return audited(kms_error(503, "ServiceUnavailable", crate::audit_glue::AUDIT_UNAVAILABLE, &rid));
    };
    let result = state.s3_impl.rewrap_bucket(&bucket, &prefix, rate).await;
    let mut rec = sealbox_audit::AuditRecord::api_call(
        &audit_principal,
        &ctx,
        sealbox_audit::EventSource::Sealbox,
        "RewrapBucket",
    )
    .with_request_parameters(params);
    let resp = match result {
        Ok(report) => {
            rec = rec.with_response_elements(serde_json::json!({"examined": report.examined, "rewrapped": report.rewrapped, "failed": report.failed}));
            json_response(200, serde_json::to_vec(&report).unwrap_or_default(), &rid)
        }
        Err(e) => {
            rec = rec.with_error(e.code().as_str(), e.message().unwrap_or(""));
            kms_error(400, e.code().as_str(), e.message().unwrap_or(""), &rid)
        }
    };
    match call.finish(rec).await {
        Ok(()) => audited(resp),
        // The objects may have been re-wrapped: the intent record says the call was made.
        Err(_) => audited(kms_error(503, "ServiceUnavailable", crate::audit_glue::AUDIT_UNAVAILABLE, &rid)),
    }
}

/// CloudTrail's `LookupEvents` (JSON 1.1, SigV4 service `cloudtrail`) over the audit trail, so
/// `aws cloudtrail lookup-events --endpoint-url ...` works. Root, or identity policies allowing
/// `cloudtrail:LookupEvents`.
pub async fn lookup_events(state: Arc<RouterState>, req: Request<Body>) -> Response<Body> {
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(m) => return kms_error(400, "InvalidParameterException", &m, &rid),
    };
    let caller = match crate::signing::verify(&state.keyring, &parts, &bytes, Expected::signed_body("cloudtrail")) {
        Ok(v) => v,
        Err(e) => return json_auth_error(&e, &rid),
    };
    let Some(p) = state.keyring.principal(&caller.access_key_id) else {
        return json_auth_error(&AuthError::UnknownAccessKey { access_key_id: caller.access_key_id }, &rid);
    };
    if !p.is_root() {
        let ctx =
            sealbox_policy::RequestContext::new(p.arn.clone(), crate::iam::ACCOUNT_ID, "cloudtrail:LookupEvents", "*");
        let policies = identity_policies(&state.meta, &p.arn);
        let refs: Vec<(&sealbox_policy::PolicyDocument, sealbox_policy::PolicyKind)> =
            policies.iter().map(|d| (d, sealbox_policy::PolicyKind::Identity)).collect();
        if !sealbox_policy::evaluate(&ctx, &refs).is_allowed() {
            let message = format!("User: {} is not authorized to perform: cloudtrail:LookupEvents", p.arn);
            let audit_ctx = crate::audit_glue::context(&state.region, None, Some(&parts.headers), &rid);
            let rec = sealbox_audit::AuditRecord::denied(
                &crate::audit_glue::principal(&p),
                &audit_ctx,
                sealbox_audit::EventSource::CloudTrail,
                "LookupEvents",
                &message,
            );
            crate::audit_glue::write(&state.audit, rec, true).await;
            return audited(kms_error(400, "AccessDeniedException", &message, &rid));
        }
    }
    let req: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let epoch =
        |v: &serde_json::Value| v.as_f64().and_then(|f| time::OffsetDateTime::from_unix_timestamp(f as i64).ok());
    let mut filter = sealbox_audit::LookupFilter {
        start_time: epoch(&req["StartTime"]),
        end_time: epoch(&req["EndTime"]),
        max_results: Some(req["MaxResults"].as_u64().unwrap_or(50).clamp(1, 50) as usize),
        ..Default::default()
    };
    if let Some(attrs) = req["LookupAttributes"].as_array() {
        for a in attrs {
            let value = a["AttributeValue"].as_str().map(str::to_owned);
            match a["AttributeKey"].as_str().unwrap_or("") {
                "EventName" => filter.event_name = value,
                "Username" => filter.username = value,
                "AccessKeyId" => filter.access_key_id = value,
                "EventSource" => filter.event_source = value,
                "ResourceName" => filter.resource = value,
                other => {
                    return kms_error(
                        400,
                        "InvalidLookupAttributesException",
                        &format!("lookup attribute {other} is not supported"),
                        &rid,
                    )
                }
            }
        }
    }
    let data = state.audit.audit_dir().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let _ = state.audit.flush();
    let found = tokio::task::spawn_blocking(move || sealbox_audit::lookup(&data, &filter)).await;
    let records = match found {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return kms_error(500, "CloudTrailInternalException", &e.to_string(), &rid),
        Err(e) => return kms_error(500, "CloudTrailInternalException", &e.to_string(), &rid),
    };
    let events: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let full = serde_json::to_value(r).unwrap_or_default();
            serde_json::json!({
                "EventId": full["eventID"],
                "EventName": full["eventName"],
                "ReadOnly": full["readOnly"].as_bool().map(|b| b.to_string()),
                "AccessKeyId": full["userIdentity"]["accessKeyId"],
                "EventTime": r.event_time.unix_timestamp(),
                "EventSource": full["eventSource"],
                "Username": full["userIdentity"]["userName"].as_str().map(str::to_owned).or_else(|| full["userIdentity"]["type"].as_str().map(str::to_owned)),
                "Resources": full["resources"].as_array().map(|rs| rs.iter().map(|x| serde_json::json!({"ResourceType": x["type"], "ResourceName": x["ARN"]})).collect::<Vec<_>>()).unwrap_or_default(),
                "CloudTrailEvent": serde_json::to_string(&full).unwrap_or_default(),
            })
        })
        .collect();
    json_response(200, serde_json::to_vec(&serde_json::json!({"Events": events})).unwrap_or_default(), &rid)
}
