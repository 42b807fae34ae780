//! The IAM query API subset sealbox serves on its one port, so `aws iam ... --endpoint-url` works:
//! CreateUser, GetUser, DeleteUser, ListUsers, CreateAccessKey, DeleteAccessKey, ListAccessKeys,
//! UpdateAccessKey, PutUserPolicy, GetUserPolicy, DeleteUserPolicy, ListUserPolicies.
//! Requests are form-encoded POSTs signed for service `iam`; answers are IAM's XML.

use std::fmt::Write;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::StatusCode;
use sealbox_store::{AccessKeyRecord, MetaStore, UserRecord};
use zeroize::Zeroizing;

pub const ACCOUNT_ID: &str = "000000000000";
const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Seals secrets at rest (access-key secrets are kept only wrapped by the root key).
pub trait SecretBox: Send + Sync {
    fn seal(&self, plaintext: &[u8]) -> anyhow::Result<Vec<u8>>;
}

/// An IAM error as the query API reports it.
#[derive(Debug)]
pub struct IamError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl IamError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    fn no_such_user(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NoSuchEntity", format!("The user with name {name} cannot be found."))
    }
    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }
}

pub fn user_arn(name: &str, path: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user{path}{name}")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn iso(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn random_id(prefix: &str, len: usize) -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = vec![0u8; len];
    SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(format!("{prefix}{}", bytes.iter().map(|b| ALPHABET[(*b % 32) as usize] as char).collect::<String>()))
}

fn random_secret() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = [0u8; 40];
    SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(bytes.iter().map(|b| ALPHABET[(*b % 64) as usize] as char).collect())
}

/// IAM user names: 1-64 of `[\w+=,.@-]`.
fn check_user_name(name: &str) -> Result<(), IamError> {
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IamError::validation(format!(
            "1 validation error detected: Value '{name}' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )))
    }
}

/// Checks a policy document; `Err` is the message for MalformedPolicyDocument.
pub type PolicyValidator = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The state the IAM handlers work on.
pub struct Iam {
    pub meta: Arc<MetaStore>,
    pub secrets: Arc<dyn SecretBox>,
    /// Validates policy documents (MalformedPolicyDocument with a useful message).
    pub validate_policy: PolicyValidator,
    /// Called after keys change so the server's key ring follows.
    pub on_keys_changed: Box<dyn Fn() + Send + Sync>,
}

/// A parsed form body.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn required(&self, k: &str) -> Result<&str, IamError> {
        self.get(k).ok_or_else(|| {
            IamError::validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(k)
            ))
        })
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn user_xml(u: &UserRecord) -> String {
    format!(
        "<User><Path>{}</Path><UserName>{}</UserName><UserId>{}</UserId><Arn>{}</Arn><CreateDate>{}</CreateDate></User>",
        xml_escape(&u.path),
        xml_escape(&u.name),
        u.user_id,
        xml_escape(&user_arn(&u.name, &u.path)),
        iso(u.created_ms)
    )
}

fn wrap(action: &str, result: &str, request_id: &str) -> String {
    let result = if result.is_empty() { String::new() } else { format!("<{action}Result>{result}</{action}Result>") };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NS}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    )
}

pub fn error_xml(e: &IamError, request_id: &str) -> String {
    let kind = if e.status.is_server_error() { "Receiver" } else { "Sender" };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{NS}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        e.code,
        xml_escape(&e.message)
    )
}

fn internal(e: impl std::fmt::Display + 'static) -> IamError {
    tracing::error!(error = %e, "IAM request failed");
    // A row that failed its integrity check says so (the store has reported and audited it).
    if let Some(tampered @ sealbox_store::StoreError::Tampered(_)) =
        (&e as &dyn std::any::Any).downcast_ref::<sealbox_store::StoreError>()
    {
        return IamError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceFailure",
            format!("The request was refused: {tampered}."),
        );
    }
    IamError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceFailure",
        "The request processing has failed because of an unknown error.",
    )
}

impl Iam {
    fn require_user(&self, name: &str) -> Result<UserRecord, IamError> {
        self.meta.user(name).map_err(internal)?.ok_or_else(|| IamError::no_such_user(name))
    }

    /// Handles one IAM action; returns the XML body on success. Blocking (SQLite).
    pub fn handle(&self, form: &Form, request_id: &str) -> Result<String, IamError> {
        let action = form
            .get("Action")
            .ok_or_else(|| IamError::new(StatusCode::BAD_REQUEST, "MissingAction", "Missing Action"))?;
        let result = match action {
            "CreateUser" => {
                let name = form.required("UserName")?;
                check_user_name(name)?;
                let path = form.get("Path").unwrap_or("/").to_owned();
                let user = UserRecord {
                    name: name.to_owned(),
                    user_id: random_id("AIDA", 17).map_err(internal)?,
                    path,
                    created_ms: now_ms(),
                };
                if !self.meta.create_user(&user).map_err(internal)? {
                    return Err(IamError::new(
                        StatusCode::CONFLICT,
                        "EntityAlreadyExists",
                        format!("User with name {name} already exists."),
                    ));
                }
                user_xml(&user)
            }
            "GetUser" => {
                let name = form.required("UserName")?;
                user_xml(&self.require_user(name)?)
            }
            "ListUsers" => {
                let mut out = String::from("<Users>");
                for u in self.meta.list_users().map_err(internal)? {
                    out.push_str(&user_xml(&u).replace("<User>", "<member>").replace("</User>", "</member>"));
                }
                out.push_str("</Users><IsTruncated>false</IsTruncated>");
                out
            }
            "DeleteUser" => {
                let name = form.required("UserName")?;
                self.require_user(name)?;
                if self.meta.user_has_dependents(name).map_err(internal)? {
                    return Err(IamError::new(
                        StatusCode::CONFLICT,
                        "DeleteConflict",
                        "Cannot delete entity, must delete access keys and policies first.",
                    ));
                }
                self.meta.delete_user(name).map_err(internal)?;
                String::new()
            }
            "CreateAccessKey" => {
                let name = form.required("UserName")?;
                self.require_user(name)?;
                if self.meta.list_access_keys(Some(name)).map_err(internal)?.len() >= 2 {
                    return Err(IamError::new(
                        StatusCode::CONFLICT,
                        "LimitExceeded",
                        "Cannot exceed quota for AccessKeysPerUser: 2",
                    ));
                }
                let id = random_id("AKIA", 16).map_err(internal)?;
                let secret = Zeroizing::new(random_secret().map_err(internal)?);
                let rec = AccessKeyRecord {
                    access_key_id: id.clone(),
                    user_name: name.to_owned(),
                    secret_wrapped: self.secrets.seal(secret.as_bytes()).map_err(internal)?,
                    status: "Active".into(),
                    created_ms: now_ms(),
                };
                self.meta.put_access_key(&rec).map_err(internal)?;
                (self.on_keys_changed)();
                format!(
                    "<AccessKey><UserName>{}</UserName><AccessKeyId>{id}</AccessKeyId><Status>Active</Status><SecretAccessKey>{}</SecretAccessKey><CreateDate>{}</CreateDate></AccessKey>",
                    xml_escape(name),
                    secret.as_str(),
                    iso(rec.created_ms)
                )
            }
            "DeleteAccessKey" => {
                let name = form.required("UserName")?;
                let id = form.required("AccessKeyId")?;
                self.require_user(name)?;
                if !self.meta.delete_access_key(name, id).map_err(internal)? {
                    return Err(IamError::new(
                        StatusCode::NOT_FOUND,
                        "NoSuchEntity",
                        format!("The Access Key with id {id} cannot be found."),
                    ));
                }
                (self.on_keys_changed)();
                String::new()
            }
            "UpdateAccessKey" => {
                let name = form.required("UserName")?;
                let id = form.required("AccessKeyId")?;
                let status = form.required("Status")?;
                if status != "Active" && status != "Inactive" {
                    return Err(IamError::validation(format!("Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]")));
                }
                let mut key = self
                    .meta
                    .list_access_keys(Some(name))
                    .map_err(internal)?
                    .into_iter()
                    .find(|k| k.access_key_id == id)
                    .ok_or_else(|| {
                        IamError::new(
                            StatusCode::NOT_FOUND,
                            "NoSuchEntity",
                            format!("The Access Key with id {id} cannot be found."),
                        )
                    })?;
                key.status = status.to_owned();
                self.meta.put_access_key(&key).map_err(internal)?;
                (self.on_keys_changed)();
                String::new()
            }
            "ListAccessKeys" => {
                let name = form.required("UserName")?;
                self.require_user(name)?;
                let mut out = String::from("<AccessKeyMetadata>");
                for k in self.meta.list_access_keys(Some(name)).map_err(internal)? {
                    let _ = write!(
                        out,
                        "<member><UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>{}</Status><CreateDate>{}</CreateDate></member>",
                        xml_escape(&k.user_name),
                        k.access_key_id,
                        k.status,
                        iso(k.created_ms)
                    );
                }
                out.push_str("</AccessKeyMetadata><IsTruncated>false</IsTruncated>");
                out
            }
            "PutUserPolicy" => {
                let name = form.required("UserName")?;
                let policy = form.required("PolicyName")?;
                let doc = form.required("PolicyDocument")?;
                self.require_user(name)?;
                (self.validate_policy)(doc)
                    .map_err(|m| IamError::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", m))?;
                self.meta.put_user_policy(name, policy, doc).map_err(internal)?;
                String::new()
            }
            "GetUserPolicy" => {
                let name = form.required("UserName")?;
                let policy = form.required("PolicyName")?;
                self.require_user(name)?;
                let doc = self.meta.user_policy(name, policy).map_err(internal)?.ok_or_else(|| {
                    IamError::new(
                        StatusCode::NOT_FOUND,
                        "NoSuchEntity",
                        format!("The user policy with name {policy} cannot be found."),
                    )
                })?;
                // IAM returns the document URL-encoded.
                format!(
                    "<UserName>{}</UserName><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
                    xml_escape(name),
                    xml_escape(policy),
                    xml_escape(&urlencoding::encode(&doc))
                )
            }
            "DeleteUserPolicy" => {
                let name = form.required("UserName")?;
                let policy = form.required("PolicyName")?;
                self.require_user(name)?;
                if !self.meta.delete_user_policy(name, policy).map_err(internal)? {
                    return Err(IamError::new(
                        StatusCode::NOT_FOUND,
                        "NoSuchEntity",
                        format!("The user policy with name {policy} cannot be found."),
                    ));
                }
                String::new()
            }
            "ListUserPolicies" => {
                let name = form.required("UserName")?;
                self.require_user(name)?;
                let mut out = String::from("<PolicyNames>");
                for (p, _) in self.meta.user_policies(name).map_err(internal)? {
                    let _ = write!(out, "<member>{}</member>", xml_escape(&p));
                }
                out.push_str("</PolicyNames><IsTruncated>false</IsTruncated>");
                out
            }
            other => {
                return Err(IamError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidAction",
                    format!("Could not find operation {other} for version 2010-05-08"),
                ))
            }
        };
        Ok(wrap(action, &result, request_id))
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
