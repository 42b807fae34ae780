//! sealbox-policy owns AWS IAM policy documents — user (identity) policies, S3 bucket policies
//! and KMS key policies: parsing with AWS's grammar and error messages, the condition operators,
//! and AWS's evaluation logic for one account.
//!
//! It must never do I/O, know about HTTP, or look at a clock: the S3 and KMS layers build a
//! [`RequestContext`] (principal, action, resource ARN, condition key values including
//! aws:CurrentTime) and ask [`s3_allowed`] / [`kms_allowed`]. Start reading at `evaluate.rs`;
//! docs/policies.md lists the condition keys sealbox fills in.

mod actions;
mod builtin;
mod condition;
mod context;
mod document;
mod error;
mod evaluate;
mod variables;
mod wildcard;

pub use actions::{KMS_ACTIONS, KNOWN_SERVICES, S3_ACTIONS};
pub use builtin::{bucket_policy_is_public, default_key_policy};
pub use condition::{ConditionBlock, ConditionEntry, ConditionOperator, OperatorKind, SetQualifier, OPERATOR_KINDS};
pub use context::{root_arn, RequestContext};
pub use document::{
    ActionElement, Effect, PolicyDocument, PolicyKind, PolicyVersion, Principal, PrincipalElement, PrincipalType,
    ResourceElement, Statement,
};
pub use error::PolicyError;
pub use evaluate::{evaluate, evaluate_detailed, kms_allowed, s3_allowed, Decision, Evaluation, MatchedStatement};
