//! Policies and policy facts sealbox needs without a user writing them: the KMS default key
//! policy and S3's "is this bucket policy public" test (GetBucketPolicyStatus).

use crate::condition::{parse_cidr, ConditionBlock, OperatorKind, SetQualifier};
use crate::document::{Effect, PolicyDocument, Principal, PrincipalElement, PrincipalType, Statement};

/// The key policy AWS KMS attaches when CreateKey gets no Policy: the account root may do
/// everything, which delegates the key to the account's IAM (identity) policies. Formatted as AWS
/// returns it from GetKeyPolicy.
pub fn default_key_policy(account_id: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \
         \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \
         \"AWS\" : \"arn:aws:iam::{account_id}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \
         \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}

/// Condition keys whose fixed values pin a statement to known callers, so that a `"*"` principal
/// restricted by one of them is not public (S3's "the meaning of public").
const RESTRICTING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:userid",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

/// Whether a bucket policy grants access to the public: an Allow to `"*"` (or `{"AWS":"*"}`, or
/// through NotPrincipal) that no condition pins to fixed callers. Deny statements never make a
/// policy public.
pub fn bucket_policy_is_public(policy: &PolicyDocument) -> bool {
    policy.statements.iter().any(|s| s.effect == Effect::Allow && has_public_principal(s) && !is_restricted(s))
}

fn has_public_principal(statement: &Statement) -> bool {
    match &statement.principal {
        Some(PrincipalElement::Principal(Principal::Anyone)) | Some(PrincipalElement::NotPrincipal(_)) => true,
        Some(PrincipalElement::Principal(Principal::Named(types))) => {
            types.iter().any(|(t, ids)| *t == PrincipalType::Aws && ids.iter().any(|id| id == "*"))
        }
        None => false,
    }
}

fn is_restricted(statement: &Statement) -> bool {
    statement.condition.iter().any(block_restricts)
}

/// A positive operator that an absent key cannot satisfy, on a restricting key, with fixed values.
fn block_restricts(block: &ConditionBlock) -> bool {
    let operator = block.operator;
    let binding = !operator.kind.is_negated()
        && !operator.if_exists
        && operator.set != Some(SetQualifier::ForAllValues)
        && operator.kind != OperatorKind::Null;
    binding
        && block.entries.iter().any(|entry| {
            RESTRICTING_KEYS.contains(&entry.key.to_ascii_lowercase().as_str())
                && entry.values.iter().all(|value| is_fixed_value(operator.kind, value))
        })
}

/// No wildcard, and for IP ranges nothing broader than a /8 (IPv4) or /32 (IPv6):
/// `0.0.0.0/1` is public in AWS's eyes.
fn is_fixed_value(kind: OperatorKind, value: &str) -> bool {
    if value.contains(['*', '?']) || value.contains("${") {
        return false;
    }
    match kind {
        OperatorKind::IpAddress => match parse_cidr(value) {
            Some((ip, prefix)) => prefix >= if ip.is_ipv4() { 8 } else { 32 },
            None => false,
        },
        _ => true,
    }
}
