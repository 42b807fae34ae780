//! The server's side of the web console (`sealbox-console`): the console's API requests go
//! through the router in-process (`Router::dispatch`, with the browser's connection as the
//! peer), sign-ins are checked against the key ring and recorded as CloudTrail's `ConsoleLogin`,
//! and the Health and Audit pages get the facts no AWS API carries.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Instant;

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use s3s::service::S3Service;
use s3s::Body;
use sealbox_audit::{Admission, AuditRecord, Durability, EventSource, FloodKey};
use sealbox_console::{Denied, Identity, NotRecorded, Peer, SessionEvent, SessionEventKind};

use crate::identity::Principal;
use crate::router::{Router, RouterState};

/// One listener, as the Health page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListenerInfo {
    pub url: String,
    pub tls: bool,
}

pub struct ConsoleBackend {
    pub s3: S3Service,
    /// Weak: the router state owns the console, which must not keep it alive.
    pub state: Weak<RouterState>,
    pub started: Instant,
    pub started_at: time::OffsetDateTime,
    pub listeners: Vec<ListenerInfo>,
    /// How TLS is configured (`auto`, `files`, or off), for the Health page.
    pub tls_mode: &'static str,
    /// The audit signing key's public half, from the key sealed by the root key: the trust
    /// anchor the Audit page verifies against (not the data directory's copy).
    pub audit_public_key: sealbox_audit::AuditPublicKey,
    pub data_dir: PathBuf,
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text.to_owned()));
    *resp.status_mut() = status;
    resp
}

fn audit_context(state: &RouterState, peer: Option<Peer>, user_agent: &str) -> sealbox_audit::RequestContext {
    let mut ctx = crate::audit_glue::context(
        &state.region,
        peer.map(|p| p.addr.ip().to_string()),
        None,
        &uuid::Uuid::new_v4().to_string(),
    );
    ctx.user_agent = format!("sealbox-console/{} ({user_agent})", env!("CARGO_PKG_VERSION"));
    ctx
}

impl sealbox_console::ConsoleHost for ConsoleBackend {
    fn dispatch(&self, req: Request<Body>, peer: Option<Peer>) -> BoxFuture<'static, Response<Body>> {
        let Some(state) = self.state.upgrade() else {
            return Box::pin(async { plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n") });
        };
        let peer = peer.map(|p| crate::router::Peer { addr: p.addr, is_tls: p.is_tls, client_cert: false });
        let router = Router { s3: self.s3.clone(), state, peer };
        let answer = router.dispatch(req);
        Box::pin(async move {
            answer.await.unwrap_or_else(|e| {
                tracing::error!(error = ?e, "console request failed inside the router");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
            })
        })
    }

    fn credentials(&self, access_key_id: &str) -> Option<(sealbox_auth::SecretAccessKey, Identity)> {
        let state = self.state.upgrade()?;
        let secret = state.keyring.secret(access_key_id)?;
        let p = state.keyring.principal(access_key_id)?;
        Some((sealbox_auth::SecretAccessKey::new(secret.as_str()), Identity { arn: p.arn, user_name: p.user_name }))
    }

    fn record(&self, event: SessionEvent) -> BoxFuture<'static, Result<(), NotRecorded>> {
        let Some(state) = self.state.upgrade() else { return Box::pin(async { Err(NotRecorded) }) };
        Box::pin(async move { record_session_event(&state, event).await })
    }

    fn server_status(&self) -> serde_json::Value {
        let Some(state) = self.state.upgrade() else { return serde_json::Value::Null };
        let requests: Vec<serde_json::Value> = state
            .metrics
            .totals()
            .into_iter()
            .map(|(api, total, client, server)| {
                serde_json::json!({"api": api, "total": total, "clientErrors": client, "serverErrors": server})
            })
            .collect();
        let audit = state.audit.stats();
        let started = self.started_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "startedAt": started,
            "uptimeSeconds": self.started.elapsed().as_secs(),
            "region": state.region,
            "listeners": self.listeners,
            "tls": {"mode": self.tls_mode, "enabled": self.listeners.iter().any(|l| l.tls)},
            "audit": {
                "writerFailed": state.audit.has_failed(),
                "records": audit.records,
                "digests": audit.digests,
                "dataEvents": state.audit_data_events,
            },
            "requests": requests,
        })
    }

    fn audit_status(
        &self,
        access_key_id: &str,
        identity: &Identity,
        peer: Option<Peer>,
        user_agent: &str,
    ) -> BoxFuture<'static, Result<serde_json::Value, Denied>> {
        let Some(state) = self.state.upgrade() else { return Box::pin(async { Err(Denied("shutting down".into())) }) };
        let Some(p) = state.keyring.principal(access_key_id).filter(|p| p.arn == identity.arn) else {
            return Box::pin(async { Err(Denied("the session's access key is gone".into())) });
        };
        let ctx = audit_context(&state, peer, user_agent);
        let (data, key) = (self.data_dir.clone(), self.audit_public_key);
        Box::pin(async move { verify_for(&state, &p, ctx, data, key).await })
    }
}

/// `cloudtrail:GetTrailStatus` (root, or an identity policy that allows it), recorded like the
/// API call: then the trail is verified against the signing key's own public half.
async fn verify_for(
    state: &Arc<RouterState>,
    p: &Principal,
    ctx: sealbox_audit::RequestContext,
    data: PathBuf,
    key: sealbox_audit::AuditPublicKey,
) -> Result<serde_json::Value, Denied> {
    const ACTION: &str = "cloudtrail:GetTrailStatus";
    let audit_principal = crate::audit_glue::principal(p);
    if !p.is_root() {
        let policy_ctx = sealbox_policy::RequestContext::new(p.arn.clone(), crate::iam::ACCOUNT_ID, ACTION, "*");
        let policies = crate::keyservice::identity_policies(&state.meta, &p.arn);
        let refs: Vec<(&sealbox_policy::PolicyDocument, sealbox_policy::PolicyKind)> =
            policies.iter().map(|d| (d, sealbox_policy::PolicyKind::Identity)).collect();
        if !sealbox_policy::evaluate(&policy_ctx, &refs).is_allowed() {
            let message = format!("User: {} is not authorized to perform: {ACTION}", p.arn);
            let rec = AuditRecord::denied(&audit_principal, &ctx, EventSource::CloudTrail, "GetTrailStatus", &message);
            crate::audit_glue::write(&state.audit, rec, true).await;
            return Err(Denied(message));
        }
    }
    let rec = AuditRecord::api_call(&audit_principal, &ctx, EventSource::CloudTrail, "GetTrailStatus");
    if state.audit.append_async(rec, Durability::Durable).await.is_err() {
        return Err(Denied(crate::audit_glue::AUDIT_UNAVAILABLE.into()));
    }
    let _ = state.audit.flush();
    let result = tokio::task::spawn_blocking(move || sealbox_audit::verify(&data, &key)).await;
    Ok(match result {
        Ok(Ok(r)) => serde_json::json!({
            "verified": true,
            "records": r.records,
            "files": r.files,
            "digests": r.digests,
            "coveredRecords": r.covered_records,
            "uncoveredRecords": r.uncovered_records,
            "lastSeq": r.last_seq,
            "newestDigest": r.newest_digest,
            "newestDigestEndTime": r.newest_digest_end_time,
            "keyFingerprint": r.key_fingerprint,
            "tornTail": r.torn_tail.map(|t| format!("{} line {}", t.file, t.line)),
        }),
        Ok(Err(e)) => serde_json::json!({"verified": false, "error": e.to_string(), "file": e.file()}),
        Err(e) => serde_json::json!({"verified": false, "error": e.to_string()}),
    })
}

/// `ConsoleLogin` as AWS sign-in records it (`responseElements.ConsoleLogin` = Success or
/// Failure); failures are coalesced per address and claimed key like other refused requests.
async fn record_session_event(state: &Arc<RouterState>, event: SessionEvent) -> Result<(), NotRecorded> {
    let ctx = audit_context(state, event.peer, &event.user_agent);
    let principal = state.keyring.principal(&event.access_key_id);
    let rec = match (event.kind, principal) {
        (SessionEventKind::SignInFailed, _) | (_, None) => {
            let key = FloodKey {
                source_ip: ctx.source_ip.clone(),
                error_code: "ConsoleLoginFailure".into(),
                access_key_id: event.access_key_id.clone(),
            };
            if state.audit.admit(&key) == Admission::Suppress {
                return Ok(());
            }
            let claimed = (!event.access_key_id.is_empty()).then_some(event.access_key_id.as_str());
            AuditRecord::unauthenticated(
                crate::iam::ACCOUNT_ID,
                &ctx,
                EventSource::Signin,
                "ConsoleLogin",
                claimed,
                "FailedAuthentication",
                "Failed authentication",
            )
            .with_response_elements(serde_json::json!({"ConsoleLogin": "Failure"}))
        }
        (SessionEventKind::SignIn, Some(p)) => {
            AuditRecord::api_call(&crate::audit_glue::principal(&p), &ctx, EventSource::Signin, "ConsoleLogin")
                .with_response_elements(serde_json::json!({"ConsoleLogin": "Success"}))
        }
        (SessionEventKind::SignOut, Some(p)) => {
            AuditRecord::api_call(&crate::audit_glue::principal(&p), &ctx, EventSource::Signin, "ConsoleLogout")
        }
    };
    state.audit.append_async(rec, Durability::Durable).await.map_err(|e| {
        tracing::error!(error = %e, "AUDIT RECORD COULD NOT BE WRITTEN: console sign-in refused");
        NotRecorded
    })
}
