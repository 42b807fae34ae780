//! Policy evaluation for one account (sealbox has exactly one): an explicit Deny in any policy
//! wins, otherwise any applicable Allow allows, otherwise the request is implicitly denied.
//!
//! Resource policies (bucket and key policies) match principals. Naming the account
//! (`"000000000000"` or `arn:aws:iam::000000000000:root`) in an Allow does not grant anything to
//! the account's users by itself: it delegates to their identity policies, as in AWS. The account
//! root user *is* the account, so such a statement allows root directly.

use crate::condition::block_holds;
use crate::context::{root_arn, RequestContext};
use crate::document::{
    is_account_id, ActionElement, Effect, PolicyDocument, PolicyKind, Principal, PrincipalElement, PrincipalType,
    ResourceElement, Statement,
};
use crate::variables;
use crate::wildcard::Pattern;

/// Outcome of an authorisation check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    /// `explicit` is true when a Deny statement matched, false for "nothing allowed it".
    Deny {
        explicit: bool,
    },
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// The statement behind an explicit deny, for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedStatement {
    /// Index into the `policies` slice given to [`evaluate_detailed`].
    pub policy_index: usize,
    pub kind: PolicyKind,
    /// Zero-based index of the statement in its document.
    pub statement_index: usize,
    pub sid: Option<String>,
}

/// Everything evaluation found out, before a caller combines it into a [`Decision`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// First Deny statement that applied.
    pub explicit_deny: Option<MatchedStatement>,
    /// An identity policy allows the request.
    pub identity_allow: bool,
    /// A resource policy allows this principal (by name, by `"*"`, or root through its account).
    pub resource_allow: bool,
    /// A resource policy allows the principal's account, delegating the decision to the
    /// principal's identity policies.
    pub resource_account_allow: bool,
}

impl Evaluation {
    /// AWS's same-account rule: explicit deny, else the union of identity and resource allows.
    pub fn decision(&self) -> Decision {
        if self.explicit_deny.is_some() {
            Decision::Deny { explicit: true }
        } else if self.identity_allow || self.resource_allow {
            Decision::Allow
        } else {
            Decision::Deny { explicit: false }
        }
    }
}

/// Evaluates a request against a set of policies with AWS's same-account logic.
pub fn evaluate(request: &RequestContext, policies: &[(&PolicyDocument, PolicyKind)]) -> Decision {
    evaluate_detailed(request, policies).decision()
}

/// Like [`evaluate`], but tells which kind of policy allowed or denied.
pub fn evaluate_detailed(request: &RequestContext, policies: &[(&PolicyDocument, PolicyKind)]) -> Evaluation {
    let mut evaluation = Evaluation::default();
    for (policy_index, (document, kind)) in policies.iter().enumerate() {
        for (statement_index, statement) in document.statements.iter().enumerate() {
            let Some(scope) = statement_scope(document, statement, *kind, request) else { continue };
            match (statement.effect, kind, scope) {
                (Effect::Deny, _, _) => {
                    evaluation.explicit_deny = Some(MatchedStatement {
                        policy_index,
                        kind: *kind,
                        statement_index,
                        sid: statement.sid.clone(),
                    });
                    return evaluation;
                }
                (Effect::Allow, PolicyKind::Identity, _) => evaluation.identity_allow = true,
                (Effect::Allow, PolicyKind::Resource, PrincipalScope::Direct) => evaluation.resource_allow = true,
                (Effect::Allow, PolicyKind::Resource, PrincipalScope::Account) => {
                    evaluation.resource_account_allow = true
                }
            }
        }
    }
    evaluation
}

/// Bucket-policy actions the account root user may always perform, even when the bucket policy
/// denies them: AWS's way out of a policy that locks everyone out of a bucket.
const ROOT_BUCKET_POLICY_ACTIONS: &[&str] = &["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"];

/// S3 authorisation: the bucket policy's explicit Deny binds everyone, including the account root
/// (except for the three bucket-policy actions above); root is otherwise always allowed (identity
/// policies cannot restrict it); other principals need an identity-policy Allow or a bucket-policy
/// Allow naming them, and no explicit Deny in their identity policies.
pub fn s3_allowed(
    identity_policies: &[&PolicyDocument],
    bucket_policy: Option<&PolicyDocument>,
    is_root: bool,
    ctx: &RequestContext,
) -> Decision {
    let bucket =
        bucket_policy.map(|policy| evaluate_detailed(ctx, &[(policy, PolicyKind::Resource)])).unwrap_or_default();
    let root_escape = is_root && ROOT_BUCKET_POLICY_ACTIONS.iter().any(|a| a.eq_ignore_ascii_case(&ctx.action));
    if bucket.explicit_deny.is_some() && !root_escape {
        return Decision::Deny { explicit: true };
    }
    if is_root {
        return Decision::Allow;
    }
    let identity = evaluate_detailed(ctx, &with_kind(identity_policies, PolicyKind::Identity));
    if identity.explicit_deny.is_some() {
        return Decision::Deny { explicit: true };
    }
    if identity.identity_allow || bucket.resource_allow {
        Decision::Allow
    } else {
        Decision::Deny { explicit: false }
    }
}

/// KMS authorisation: the key policy is the root of trust. It must allow the principal directly,
/// or allow the principal's account (e.g. the default "Enable IAM User Permissions" statement),
/// in which case an identity policy must allow too. An explicit Deny anywhere wins. Root has no
/// special power here: a key policy that does not mention the account locks root out, as in AWS.
pub fn kms_allowed(
    key_policy: &PolicyDocument,
    identity_policies: &[&PolicyDocument],
    ctx: &RequestContext,
) -> Decision {
    let key = evaluate_detailed(ctx, &[(key_policy, PolicyKind::Resource)]);
    let identity = evaluate_detailed(ctx, &with_kind(identity_policies, PolicyKind::Identity));
    if key.explicit_deny.is_some() || identity.explicit_deny.is_some() {
        return Decision::Deny { explicit: true };
    }
    if key.resource_allow || (key.resource_account_allow && identity.identity_allow) {
        Decision::Allow
    } else {
        Decision::Deny { explicit: false }
    }
}

fn with_kind<'a>(policies: &[&'a PolicyDocument], kind: PolicyKind) -> Vec<(&'a PolicyDocument, PolicyKind)> {
    policies.iter().map(|p| (*p, kind)).collect()
}

/// How a statement's principal element covers the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PrincipalScope {
    /// Covered through the principal's account only (delegation to identity policies).
    Account,
    /// Covered by name, by `"*"`, or (identity policies) implicitly.
    Direct,
}

/// `Some(scope)` when the statement applies to the request.
fn statement_scope(
    document: &PolicyDocument,
    statement: &Statement,
    kind: PolicyKind,
    ctx: &RequestContext,
) -> Option<PrincipalScope> {
    let scope = match kind {
        PolicyKind::Identity => PrincipalScope::Direct,
        PolicyKind::Resource => principal_scope(statement.principal.as_ref()?, ctx)?,
    };
    let substitute = document.substitutes_variables();
    let applies = action_matches(&statement.action, &ctx.action)
        && resource_matches(&statement.resource, ctx, substitute)
        && statement.condition.iter().all(|block| block_holds(block, ctx, substitute));
    applies.then_some(scope)
}

fn principal_scope(element: &PrincipalElement, ctx: &RequestContext) -> Option<PrincipalScope> {
    match element {
        PrincipalElement::Principal(principal) => principal_match(principal, ctx),
        // NotPrincipal excludes only the principals it names exactly; naming an account does not
        // exclude its users (AWS evaluates users and their account separately).
        PrincipalElement::NotPrincipal(principal) => match principal_match(principal, ctx) {
            Some(PrincipalScope::Direct) => None,
            _ => Some(PrincipalScope::Direct),
        },
    }
}

fn principal_match(principal: &Principal, ctx: &RequestContext) -> Option<PrincipalScope> {
    let Principal::Named(types) = principal else { return Some(PrincipalScope::Direct) };
    types
        .iter()
        .flat_map(|(principal_type, ids)| ids.iter().map(move |id| (*principal_type, id)))
        .filter_map(|(principal_type, id)| principal_id_match(principal_type, id, ctx))
        .max()
}

fn principal_id_match(principal_type: PrincipalType, id: &str, ctx: &RequestContext) -> Option<PrincipalScope> {
    if principal_type != PrincipalType::Aws {
        return (id == ctx.principal_arn).then_some(PrincipalScope::Direct);
    }
    if id == "*" {
        return Some(PrincipalScope::Direct);
    }
    let account = if is_account_id(id) {
        Some(id)
    } else {
        id.strip_prefix("arn:aws:iam::").and_then(|rest| rest.strip_suffix(":root")).filter(|a| is_account_id(a))
    };
    match account {
        Some(account) if ctx.account_id == account && ctx.principal_arn == root_arn(account) => {
            Some(PrincipalScope::Direct)
        }
        Some(account) if ctx.account_id == account => Some(PrincipalScope::Account),
        Some(_) => None,
        None => (id == ctx.principal_arn).then_some(PrincipalScope::Direct),
    }
}

fn action_matches(element: &ActionElement, action: &str) -> bool {
    let listed = |patterns: &[String]| patterns.iter().any(|p| action_pattern_matches(p, action));
    match element {
        ActionElement::Action(patterns) => listed(patterns),
        ActionElement::NotAction(patterns) => !listed(patterns),
    }
}

fn action_pattern_matches(pattern: &str, action: &str) -> bool {
    if pattern == "*" {
        true
    } else if pattern.contains(['*', '?']) {
        Pattern::glob(pattern).matches_ignore_case(action)
    } else {
        pattern.eq_ignore_ascii_case(action)
    }
}

fn resource_matches(element: &ResourceElement, ctx: &RequestContext, substitute: bool) -> bool {
    let lookup = |key: &str| ctx.single_value(key);
    let listed = |patterns: &[String]| {
        patterns.iter().any(|p| {
            // Most resources are `*` or plain ARNs: skip compiling a pattern for those.
            if p == "*" {
                true
            } else if !p.contains(['*', '?', '$']) {
                *p == ctx.resource
            } else {
                variables::compile(p, substitute, true, &lookup)
                    .is_some_and(|pattern| pattern.matches_arn(&ctx.resource))
            }
        })
    };
    match element {
        ResourceElement::Resource(patterns) => listed(patterns),
        ResourceElement::NotResource(patterns) => !listed(patterns),
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
