//! Grant operations: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

use serde_json::{json, Value};

use super::{missing, opt_str, page, paged, req_str, stop_if_dry_run, string_map, Access, Ctx};
use crate::grants::{check_grant_id, grant_id_of_token, grant_token, takes_context, Grant, GrantConstraints};
use crate::kms::{epoch, Kms, NewGrant};
use crate::spec::{GrantOperation, KeySpec};
use crate::KmsError;

/// At most this many pairs in a constraint, each value at most 384 characters (AWS's limits).
const MAX_CONSTRAINT_PAIRS: usize = 8;
const MAX_CONSTRAINT_VALUE: usize = 384;

fn validation(msg: impl Into<String>) -> KmsError {
    KmsError::Validation(msg.into())
}

/// A principal of a grant: an IAM principal ARN (account root, user, role, assumed role,
/// federated user) or an AWS service principal.
fn principal(ctx: &Ctx<'_>, field: &str) -> Result<Option<String>, KmsError> {
    let Some(p) = opt_str(ctx.req, field)? else { return Ok(None) };
    let pattern_ok =
        !p.is_empty() && p.len() <= 256 && p.chars().all(|c| c.is_alphanumeric() || "_+=,.@:/-".contains(c));
    if !pattern_ok {
        return Err(validation(format!(
            "1 validation error detected: Value '{p}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$",
            super::lower_first(field)
        )));
    }
    let iam = p
        .strip_prefix("arn:aws:iam::")
        .or_else(|| p.strip_prefix("arn:aws:sts::"))
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(account, resource)| {
            account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && (resource == "root"
                    || ["user/", "role/", "assumed-role/", "federated-user/"].iter().any(|t| resource.starts_with(t)))
        });
    if !(iam || p.ends_with(".amazonaws.com")) {
        return Err(KmsError::InvalidArn(format!("{field} {p} is not a valid principal ARN.")));
    }
    Ok(Some(p.to_owned()))
}

fn operations(ctx: &Ctx<'_>) -> Result<Vec<GrantOperation>, KmsError> {
    let list = match ctx.req.get("Operations") {
        None | Some(Value::Null) => return Err(missing("Operations")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(KmsError::Serialization("Expected a list for Operations".into())),
    };
    if list.is_empty() {
        return Err(validation("1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1"));
    }
    list.iter()
        .map(|v| {
            let s = v.as_str().ok_or_else(|| KmsError::Serialization("Operations must be strings".into()))?;
            GrantOperation::parse(s).ok_or_else(|| {
                let names: Vec<&str> = GrantOperation::ALL.iter().map(|o| o.as_str()).collect();
                validation(format!(
                    "1 validation error detected: Value '[{s}]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                    names.join(", ")
                ))
            })
        })
        .collect()
}

fn constraints(ctx: &Ctx<'_>) -> Result<Option<GrantConstraints>, KmsError> {
    let c = match ctx.req.get("Constraints") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(KmsError::Serialization("Expected a structure for Constraints".into())),
    };
    let field = |name: &str| -> Result<Option<std::collections::BTreeMap<String, String>>, KmsError> {
        let Some(v) = c.get(name).filter(|v| !v.is_null()) else { return Ok(None) };
        let m = string_map(v, name)?;
        if m.len() > MAX_CONSTRAINT_PAIRS || m.values().any(|v| v.chars().count() > MAX_CONSTRAINT_VALUE) {
            return Err(validation(format!(
                "{name} may have at most {MAX_CONSTRAINT_PAIRS} pairs of at most {MAX_CONSTRAINT_VALUE} characters each."
            )));
        }
        Ok(Some(m))
    };
    let out = GrantConstraints { subset: field("EncryptionContextSubset")?, equals: field("EncryptionContextEquals")? };
    Ok((!out.is_empty()).then_some(out))
}

fn grant_json(kms: &Kms, g: &Grant) -> Value {
    let mut v = json!({
        "KeyId": kms.key_arn(&g.key_id),
        "GrantId": g.grant_id,
        "CreationDate": epoch(g.created),
        "GranteePrincipal": g.grantee,
        "IssuingAccount": format!("arn:aws:iam::{}:root", kms.config.account_id),
        "Operations": g.operations.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
    });
    if let Some(n) = &g.name {
        v["Name"] = json!(n);
    }
    if let Some(r) = &g.retiring {
        v["RetiringPrincipal"] = json!(r);
    }
    if let Some(c) = &g.constraints {
        let mut cv = json!({});
        if let Some(s) = &c.subset {
            cv["EncryptionContextSubset"] = json!(s);
        }
        if let Some(e) = &c.equals {
            cv["EncryptionContextEquals"] = json!(e);
        }
        v["Constraints"] = cv;
    }
    v
}

fn sorted_page(kms: &Kms, ctx: &Ctx<'_>, grants: Vec<Grant>) -> Result<Value, KmsError> {
    let items: Vec<(String, Value)> =
        grants.iter().map(|g| (format!("{:020}/{}", g.created.max(0), g.grant_id), grant_json(kms, g))).collect();
    let (items, next) = page(items, ctx.req, 100, 50)?;
    Ok(paged("Grants", items, next))
}

pub(super) fn create_grant(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.key("KeyId", false)?;
    let grantee = principal(ctx, "GranteePrincipal")?.ok_or_else(|| missing("GranteePrincipal"))?;
    let retiring = principal(ctx, "RetiringPrincipal")?;
    let ops = operations(ctx)?;
    let valid = rec.key_spec.grant_operations(rec.key_usage);
    if let Some(bad) = ops.iter().find(|o| !valid.contains(o)) {
        return Err(validation(format!(
            "{bad} is not a valid grant operation for a {} {} key.",
            rec.key_spec, rec.key_usage
        )));
    }
    let constraints = constraints(ctx)?;
    if constraints.is_some() {
        // Only symmetric encryption keys take an encryption context; the constraint may ride
        // along on DescribeKey, RetireGrant and CreateGrant, where it does not apply.
        let carriers = [GrantOperation::DescribeKey, GrantOperation::RetireGrant, GrantOperation::CreateGrant];
        if rec.key_spec != KeySpec::SymmetricDefault || ops.iter().any(|o| !takes_context(*o) && !carriers.contains(o))
        {
            return Err(validation(format!(
                "Grant constraints are not supported for these operations on a {} key: they take no encryption context.",
                rec.key_spec
            )));
        }
    }
    let name = opt_str(ctx.req, "Name")?.map(str::to_owned);
    if let Some(n) = &name {
        if n.is_empty() || n.len() > 256 || !n.chars().all(|c| c.is_ascii_alphanumeric() || ":/_-".contains(c)) {
            return Err(validation(format!(
                "1 validation error detected: Value '{n}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
            )));
        }
    }
    let mut access = Access::default()
        .condition("kms:GranteePrincipal", grantee.clone())
        .condition("kms:GrantIsForAWSResource", "false");
    for o in &ops {
        access = access.condition("kms:GrantOperations", o.as_str());
    }
    if let Some(r) = &retiring {
        access = access.condition("kms:RetiringPrincipal", r.clone());
    }
    if let Some(c) = &constraints {
        if c.subset.is_some() {
            access = access.condition("kms:GrantConstraintType", "EncryptionContextSubset");
        }
        if c.equals.is_some() {
            access = access.condition("kms:GrantConstraintType", "EncryptionContextEquals");
        }
    }
    access.grant_allows =
        Some(ctx.kms.grant_allows_child(&ctx.caller.principal_arn, &rec, &ops, constraints.as_ref())?);
    ctx.allow(&rec, "kms:CreateGrant", access)?;
    ctx.kms.require_usable(&rec)?;
    stop_if_dry_run(ctx.req)?;
    let grant = ctx.kms.create_grant(&rec, &NewGrant { grantee, retiring, operations: ops, constraints, name })?;
    Ok(json!({"GrantToken": grant_token(&grant.grant_id)?, "GrantId": grant.grant_id}))
}

pub(super) fn list_grants(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec =
        ctx.target("KeyId", false, "kms:ListGrants", Access { grant_allows: Some(false), ..Default::default() })?;
    let grant_id = opt_str(ctx.req, "GrantId")?;
    if let Some(id) = grant_id {
        check_grant_id(id)?;
    }
    let grantee = opt_str(ctx.req, "GranteePrincipal")?;
    let grants: Vec<Grant> = ctx
        .kms
        .grants_of_key(&rec.key_id, grantee)?
        .into_iter()
        .filter(|g| grant_id.is_none_or(|id| g.grant_id == id))
        .collect();
    sorted_page(ctx.kms, ctx, grants)
}

pub(super) fn list_retirable_grants(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let retiring = principal(ctx, "RetiringPrincipal")?.ok_or_else(|| missing("RetiringPrincipal"))?;
    // "The authorized resource in ListRetirableGrants calls is the retiring principal".
    ctx.allow_account("kms:ListRetirableGrants", &retiring, &[])?;
    let grants = ctx.kms.grants_retirable_by(&retiring)?;
    sorted_page(ctx.kms, ctx, grants)
}

fn no_such_grant(id: &str) -> KmsError {
    KmsError::NotFound(format!("Grant ID {id} not found."))
}

pub(super) fn retire_grant(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let grant_id = match (opt_str(ctx.req, "GrantToken")?, opt_str(ctx.req, "KeyId")?, opt_str(ctx.req, "GrantId")?) {
        (Some(token), _, _) => grant_id_of_token(token)?,
        (None, Some(_), Some(id)) => {
            check_grant_id(id)?;
            id.to_owned()
        }
        _ => return Err(validation("Either GrantToken, or both KeyId and GrantId, must be specified.")),
    };
    let grant = ctx.kms.grant(&grant_id)?.ok_or_else(|| no_such_grant(&grant_id))?;
    if let Some(k) = opt_str(ctx.req, "KeyId")? {
        if ctx.kms.resolve(k, false)?.key_id != grant.key_id {
            return Err(no_such_grant(&grant_id));
        }
    }
    let rec = ctx.kms.key(&grant.key_id)?.ok_or_else(|| no_such_grant(&grant_id))?;
    ctx.key_arn = Some(ctx.kms.key_arn(&rec.key_id));
    // The retiring principal, the grantee when the grant allows RetireGrant, and the account
    // the grant was created in may retire it; others need a policy allowing kms:RetireGrant.
    let caller = ctx.caller.principal_arn.as_str();
    let by_grant = grant.may_retire(caller) || caller == format!("arn:aws:iam::{}:root", ctx.kms.config.account_id);
    ctx.allow(&rec, "kms:RetireGrant", Access { grant_allows: Some(by_grant), ..Default::default() })?;
    stop_if_dry_run(ctx.req)?;
    if !ctx.kms.delete_grant(&grant_id)? {
        return Err(no_such_grant(&grant_id));
    }
    Ok(json!({}))
}

pub(super) fn revoke_grant(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec =
        ctx.target("KeyId", false, "kms:RevokeGrant", Access { grant_allows: Some(false), ..Default::default() })?;
    let grant_id = req_str(ctx.req, "GrantId")?;
    check_grant_id(grant_id)?;
    ctx.kms.grant(grant_id)?.filter(|g| g.key_id == rec.key_id).ok_or_else(|| no_such_grant(grant_id))?;
    stop_if_dry_run(ctx.req)?;
    if !ctx.kms.delete_grant(grant_id)? {
        return Err(no_such_grant(grant_id));
    }
    Ok(json!({}))
}
