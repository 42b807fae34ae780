//! Why a policy document was rejected. The S3 layer returns these messages as `MalformedPolicy`,
//! the KMS layer as `MalformedPolicyDocumentException`, so each one names the statement and field.

use thiserror::Error;

/// A policy document that does not follow the AWS grammar (or sealbox's supported subset of it).
///
/// `statement` is a human label such as `Statement 2 (Sid "RequireKey")`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("Policy is not valid JSON: {reason}")]
    InvalidJson { reason: String },

    #[error("Policy document must be a JSON object")]
    NotAnObject,

    #[error("Policy document has an unknown field \"{field}\"")]
    UnknownField { field: String },

    #[error("Policy has an invalid Version \"{version}\" (expected \"2012-10-17\" or \"2008-10-17\")")]
    InvalidVersion { version: String },

    #[error("Policy document field \"{field}\" must be {expected}")]
    InvalidDocumentField { field: &'static str, expected: &'static str },

    #[error("Policy is missing required field Statement")]
    MissingStatement,

    #[error("Policy has no statements")]
    EmptyStatement,

    #[error("{statement}: a statement must be a JSON object")]
    StatementNotAnObject { statement: String },

    #[error("{statement}: unknown field \"{field}\"")]
    UnknownStatementField { statement: String, field: String },

    #[error("{statement}: missing required field {field}")]
    MissingField { statement: String, field: &'static str },

    #[error("{statement}: field {field} must be {expected}")]
    InvalidFieldType { statement: String, field: &'static str, expected: &'static str },

    #[error("{statement}: {first} and {second} cannot both be present")]
    ConflictingFields { statement: String, first: &'static str, second: &'static str },

    #[error("{statement}: invalid Effect \"{effect}\" (expected \"Allow\" or \"Deny\")")]
    InvalidEffect { statement: String, effect: String },

    #[error("{statement}: Sid \"{sid}\" is used by more than one statement")]
    DuplicateSid { statement: String, sid: String },

    #[error("{statement}: invalid action \"{action}\" (expected \"*\" or \"<service>:<action>\")")]
    InvalidAction { statement: String, action: String },

    #[error("{statement}: action \"{action}\" names an unknown service prefix")]
    UnknownService { statement: String, action: String },

    #[error("{statement}: action \"{action}\" is not a known action of its service")]
    UnknownAction { statement: String, action: String },

    #[error("{statement}: invalid resource \"{resource}\" (expected \"*\" or an ARN)")]
    InvalidResource { statement: String, resource: String },

    #[error("{statement}: invalid principal \"{principal}\"")]
    InvalidPrincipal { statement: String, principal: String },

    #[error("{statement}: unsupported principal type \"{principal_type}\"")]
    UnsupportedPrincipalType { statement: String, principal_type: String },

    #[error("{statement}: field {field} is not allowed in this kind of policy")]
    ProhibitedField { statement: String, field: &'static str },

    #[error("{statement}: action \"{action}\" does not apply to {service} resources")]
    ActionOutsideService { statement: String, action: String, service: &'static str },

    #[error("{statement}: resource \"{resource}\" is not bucket {bucket} or an object in it")]
    ResourceOutsideBucket { statement: String, resource: String, bucket: String },

    #[error("{statement}: unknown condition operator \"{operator}\"")]
    UnknownConditionOperator { statement: String, operator: String },

    #[error("{statement}: condition {operator} on key \"{key}\" has invalid value \"{value}\": {reason}")]
    InvalidConditionValue { statement: String, operator: String, key: String, value: String, reason: &'static str },

    #[error("{statement}: condition {operator} must map condition keys to a value or a list of values")]
    InvalidConditionBlock { statement: String, operator: String },
}
