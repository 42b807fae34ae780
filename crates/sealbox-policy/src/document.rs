//! The policy document model, its parser (AWS grammar, strict) and its JSON writer.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::actions::{check_action, ActionProblem};
use crate::condition::{parse_condition, ConditionBlock};
use crate::error::PolicyError;
use crate::variables;

/// `Version`: only "2012-10-17" substitutes policy variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyVersion {
    V2012_10_17,
    V2008_10_17,
}

impl PolicyVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyVersion::V2012_10_17 => "2012-10-17",
            PolicyVersion::V2008_10_17 => "2008-10-17",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// Which kind of policy a document is used as; decides which fields are required or refused and
/// how `Principal` is read during evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to a user: no Principal (the user is the principal).
    Identity,
    /// Attached to a bucket or a KMS key: every statement names its principals.
    Resource,
}

/// The keys of a `Principal` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrincipalType {
    Aws,
    CanonicalUser,
    Federated,
    Service,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Aws => "AWS",
            PrincipalType::CanonicalUser => "CanonicalUser",
            PrincipalType::Federated => "Federated",
            PrincipalType::Service => "Service",
        }
    }

    fn parse(name: &str) -> Option<PrincipalType> {
        [PrincipalType::Aws, PrincipalType::CanonicalUser, PrincipalType::Federated, PrincipalType::Service]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// `"*"` or a map of principal types to identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The string `"*"`: everyone, including anonymous callers.
    Anyone,
    /// `{"AWS": [...], "Service": [...]}`; each list is non-empty.
    Named(Vec<(PrincipalType, Vec<String>)>),
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalElement {
    Principal(Principal),
    NotPrincipal(Principal),
}

/// `Action` or `NotAction`, as written (matching is case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionElement {
    Action(Vec<String>),
    NotAction(Vec<String>),
}

/// `Resource` or `NotResource`, as written (matching is case-sensitive, variables substituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceElement {
    Resource(Vec<String>),
    NotResource(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<PrincipalElement>,
    pub action: ActionElement,
    pub resource: ResourceElement,
    /// Operator blocks; all must hold. Empty when the statement has no Condition.
    pub condition: Vec<ConditionBlock>,
}

/// A parsed, validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    /// `None` when the document has no Version (AWS then applies 2008-10-17 rules).
    pub version: Option<PolicyVersion>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Parses a document with the grammar shared by all policy kinds.
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::InvalidJson { reason: e.to_string() })?;
        parse_document(&value)
    }

    /// Parses a document and applies the rules of its kind (see [`PolicyDocument::check_kind`]).
    pub fn parse_for(text: &str, kind: PolicyKind) -> Result<PolicyDocument, PolicyError> {
        let document = Self::parse(text)?;
        document.check_kind(kind)?;
        Ok(document)
    }

    /// Identity policies may not name principals and need unique Sids (IAM's rules); resource
    /// policies (bucket, key) need `Principal` or `NotPrincipal` in every statement.
    pub fn check_kind(&self, kind: PolicyKind) -> Result<(), PolicyError> {
        let mut sids = HashSet::new();
        for (index, statement) in self.statements.iter().enumerate() {
            let label = statement_label(index, statement.sid.as_deref());
            match (kind, &statement.principal) {
                (PolicyKind::Identity, Some(PrincipalElement::Principal(_))) => {
                    return Err(PolicyError::ProhibitedField { statement: label, field: "Principal" })
                }
                (PolicyKind::Identity, Some(PrincipalElement::NotPrincipal(_))) => {
                    return Err(PolicyError::ProhibitedField { statement: label, field: "NotPrincipal" })
                }
                (PolicyKind::Resource, None) => {
                    return Err(PolicyError::MissingField { statement: label, field: "Principal" })
                }
                _ => {}
            }
            if let (PolicyKind::Identity, Some(sid)) = (kind, statement.sid.as_deref()) {
                if !sid.is_empty() && !sids.insert(sid) {
                    return Err(PolicyError::DuplicateSid { statement: label, sid: sid.to_string() });
                }
            }
        }
        Ok(())
    }

    /// S3's extra rules for PutBucketPolicy: a resource policy whose actions are S3 actions (or
    /// `*`) and whose resources are the bucket itself or objects in it (AWS: "Policy has invalid
    /// action" / "Policy has invalid resource").
    pub fn check_bucket_policy(&self, bucket: &str) -> Result<(), PolicyError> {
        self.check_kind(PolicyKind::Resource)?;
        for (index, statement) in self.statements.iter().enumerate() {
            let label = || statement_label(index, statement.sid.as_deref());
            let (ActionElement::Action(actions) | ActionElement::NotAction(actions)) = &statement.action;
            if let Some(action) = actions.iter().find(|a| !is_s3_action(a)) {
                return Err(PolicyError::ActionOutsideService {
                    statement: label(),
                    action: action.clone(),
                    service: "s3",
                });
            }
            let (ResourceElement::Resource(resources) | ResourceElement::NotResource(resources)) = &statement.resource;
            if let Some(resource) = resources.iter().find(|r| !is_in_bucket(r, bucket)) {
                return Err(PolicyError::ResourceOutsideBucket {
                    statement: label(),
                    resource: resource.clone(),
                    bucket: bucket.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Whether `${...}` policy variables are substituted (Version 2012-10-17 only).
    pub fn substitutes_variables(&self) -> bool {
        self.version == Some(PolicyVersion::V2012_10_17)
    }

    /// Serialises the document in AWS's field order (Version, Id, Statement; Sid, Effect,
    /// Principal, Action, Resource, Condition). One-element lists are written as plain strings.
    pub fn to_json(&self) -> String {
        let mut fields = Vec::new();
        if let Some(version) = self.version {
            fields.push(("Version", json_string(version.as_str())));
        }
        if let Some(id) = &self.id {
            fields.push(("Id", json_string(id)));
        }
        let statements: Vec<String> = self.statements.iter().map(statement_json).collect();
        fields.push(("Statement", format!("[{}]", statements.join(","))));
        json_object(&fields)
    }
}

/// `Statement 2 (Sid "RequireKey")`, used in every error message about a statement.
pub(crate) fn statement_label(index: usize, sid: Option<&str>) -> String {
    match sid {
        Some(sid) if !sid.is_empty() => format!("Statement {} (Sid \"{}\")", index + 1, sid),
        _ => format!("Statement {}", index + 1),
    }
}

fn parse_document(value: &Value) -> Result<PolicyDocument, PolicyError> {
    let Value::Object(fields) = value else { return Err(PolicyError::NotAnObject) };
    if let Some(field) = fields.keys().find(|k| !matches!(k.as_str(), "Version" | "Id" | "Statement")) {
        return Err(PolicyError::UnknownField { field: field.clone() });
    }
    let version = match fields.get("Version") {
        None => None,
        Some(Value::String(v)) if v == "2012-10-17" => Some(PolicyVersion::V2012_10_17),
        Some(Value::String(v)) if v == "2008-10-17" => Some(PolicyVersion::V2008_10_17),
        Some(Value::String(v)) => return Err(PolicyError::InvalidVersion { version: v.clone() }),
        Some(_) => return Err(PolicyError::InvalidDocumentField { field: "Version", expected: "a string" }),
    };
    let id = match fields.get("Id") {
        None => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err(PolicyError::InvalidDocumentField { field: "Id", expected: "a string" }),
    };
    let raw_statements: Vec<&Value> = match fields.get("Statement") {
        None => return Err(PolicyError::MissingStatement),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        Some(_) => {
            return Err(PolicyError::InvalidDocumentField {
                field: "Statement",
                expected: "an object or a list of objects",
            })
        }
    };
    if raw_statements.is_empty() {
        return Err(PolicyError::EmptyStatement);
    }
    let statements =
        raw_statements.iter().enumerate().map(|(i, raw)| parse_statement(i, raw)).collect::<Result<_, _>>()?;
    Ok(PolicyDocument { version, id, statements })
}

const STATEMENT_FIELDS: &[&str] =
    &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];

fn parse_statement(index: usize, raw: &Value) -> Result<Statement, PolicyError> {
    let Value::Object(fields) = raw else {
        return Err(PolicyError::StatementNotAnObject { statement: statement_label(index, None) });
    };
    let sid = match fields.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(_) => {
            return Err(PolicyError::InvalidFieldType {
                statement: statement_label(index, None),
                field: "Sid",
                expected: "a string",
            })
        }
    };
    let label = statement_label(index, sid.as_deref());
    if let Some(field) = fields.keys().find(|k| !STATEMENT_FIELDS.contains(&k.as_str())) {
        return Err(PolicyError::UnknownStatementField { statement: label, field: field.clone() });
    }
    let effect = match fields.get("Effect") {
        None => return Err(PolicyError::MissingField { statement: label, field: "Effect" }),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            let effect = other.as_str().map_or_else(|| other.to_string(), str::to_string);
            return Err(PolicyError::InvalidEffect { statement: label, effect });
        }
    };
    let principal = match pick_one(fields, &label, "Principal", "NotPrincipal")? {
        None => None,
        Some((true, value)) => Some(PrincipalElement::Principal(parse_principal(value, &label, "Principal")?)),
        Some((false, value)) => Some(PrincipalElement::NotPrincipal(parse_principal(value, &label, "NotPrincipal")?)),
    };
    let action = match pick_one(fields, &label, "Action", "NotAction")? {
        None => return Err(PolicyError::MissingField { statement: label, field: "Action" }),
        Some((positive, value)) => {
            let field = if positive { "Action" } else { "NotAction" };
            let actions = string_list(value, &label, field)?;
            for action in &actions {
                check_statement_action(action, &label)?;
            }
            if positive {
                ActionElement::Action(actions)
            } else {
                ActionElement::NotAction(actions)
            }
        }
    };
    let resource = match pick_one(fields, &label, "Resource", "NotResource")? {
        None => return Err(PolicyError::MissingField { statement: label, field: "Resource" }),
        Some((positive, value)) => {
            let field = if positive { "Resource" } else { "NotResource" };
            let resources = string_list(value, &label, field)?;
            if let Some(bad) = resources.iter().find(|r| !is_valid_resource(r)) {
                return Err(PolicyError::InvalidResource { statement: label, resource: bad.clone() });
            }
            if positive {
                ResourceElement::Resource(resources)
            } else {
                ResourceElement::NotResource(resources)
            }
        }
    };
    let condition = match fields.get("Condition") {
        None => Vec::new(),
        Some(value) => parse_condition(value, &label)?,
    };
    Ok(Statement { sid, effect, principal, action, resource, condition })
}

/// The value of `positive` or `negative` (true = positive), refusing both at once.
fn pick_one<'a>(
    fields: &'a Map<String, Value>,
    label: &str,
    positive: &'static str,
    negative: &'static str,
) -> Result<Option<(bool, &'a Value)>, PolicyError> {
    match (fields.get(positive), fields.get(negative)) {
        (Some(_), Some(_)) => {
            Err(PolicyError::ConflictingFields { statement: label.to_string(), first: positive, second: negative })
        }
        (Some(value), None) => Ok(Some((true, value))),
        (None, Some(value)) => Ok(Some((false, value))),
        (None, None) => Ok(None),
    }
}

/// A string or a non-empty list of non-empty strings.
fn string_list(value: &Value, label: &str, field: &'static str) -> Result<Vec<String>, PolicyError> {
    let invalid = || PolicyError::InvalidFieldType {
        statement: label.to_string(),
        field,
        expected: "a non-empty string or a non-empty list of non-empty strings",
    };
    let list: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => {
            items.iter().map(|i| i.as_str().map(str::to_string).ok_or_else(invalid)).collect::<Result<_, _>>()?
        }
        _ => return Err(invalid()),
    };
    if list.is_empty() || list.iter().any(String::is_empty) {
        return Err(invalid());
    }
    Ok(list)
}

fn check_statement_action(action: &str, label: &str) -> Result<(), PolicyError> {
    let statement = label.to_string();
    let action = action.to_string();
    match check_action(&action) {
        Ok(()) => Ok(()),
        Err(ActionProblem::Malformed) => Err(PolicyError::InvalidAction { statement, action }),
        Err(ActionProblem::UnknownService) => Err(PolicyError::UnknownService { statement, action }),
        Err(ActionProblem::UnknownAction) => Err(PolicyError::UnknownAction { statement, action }),
    }
}

fn is_s3_action(action: &str) -> bool {
    action == "*" || action.split_once(':').is_some_and(|(service, _)| service.eq_ignore_ascii_case("s3"))
}

/// `arn:aws:s3:::<bucket>` or `arn:aws:s3:::<bucket>/<key pattern>`, where the bucket part may be
/// a glob that covers this bucket (`arn:aws:s3:::*` is accepted, as S3 does).
fn is_in_bucket(resource: &str, bucket: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let Some(path) = resource.strip_prefix("arn:aws:s3:::") else { return false };
    let bucket_part = path.split('/').next().unwrap_or(path);
    crate::wildcard::Pattern::glob(bucket_part).matches(bucket)
}

/// `"*"` or an ARN with its six parts (a wildcard may stand for the tail, as in `arn:aws:s3:*`).
fn is_valid_resource(resource: &str) -> bool {
    resource == "*"
        || (resource.starts_with("arn:")
            && (resource.splitn(6, ':').count() == 6 || resource.contains('*') || variables::has_variable(resource)))
}

fn parse_principal(value: &Value, label: &str, field: &'static str) -> Result<Principal, PolicyError> {
    let invalid = |principal: String| PolicyError::InvalidPrincipal { statement: label.to_string(), principal };
    match value {
        Value::String(s) if s == "*" => Ok(Principal::Anyone),
        Value::Object(types) if !types.is_empty() => {
            let mut named = Vec::with_capacity(types.len());
            for (name, ids) in types {
                let principal_type = PrincipalType::parse(name).ok_or_else(|| {
                    PolicyError::UnsupportedPrincipalType { statement: label.to_string(), principal_type: name.clone() }
                })?;
                let ids = string_list(ids, label, field)?;
                if principal_type == PrincipalType::Aws {
                    if let Some(bad) = ids.iter().find(|id| !is_valid_aws_principal(id)) {
                        return Err(invalid(bad.clone()));
                    }
                }
                named.push((principal_type, ids));
            }
            Ok(Principal::Named(named))
        }
        other => Err(invalid(other.as_str().map_or_else(|| other.to_string(), str::to_string))),
    }
}

/// `"*"`, a 12-digit account id, or an IAM/STS ARN without wildcards (AWS refuses wildcards in
/// principal ARNs: "Invalid principal in policy").
fn is_valid_aws_principal(id: &str) -> bool {
    if id == "*" || is_account_id(id) {
        return true;
    }
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && matches!(parts[2], "iam" | "sts")
        && is_account_id(parts[4])
        && !parts[5].is_empty()
        && !id.contains(['*', '?'])
}

pub(crate) fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.chars().all(|c| c.is_ascii_digit())
}

fn json_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

fn json_object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields.iter().map(|(name, value)| format!("{}:{}", json_string(name), value)).collect();
    format!("{{{}}}", body.join(","))
}

fn json_string_or_list(items: &[String]) -> String {
    match items {
        [single] => json_string(single),
        many => format!("[{}]", many.iter().map(|i| json_string(i)).collect::<Vec<_>>().join(",")),
    }
}

fn principal_json(principal: &Principal) -> String {
    match principal {
        Principal::Anyone => json_string("*"),
        Principal::Named(types) => {
            let fields: Vec<(&str, String)> =
                types.iter().map(|(t, ids)| (t.as_str(), json_string_or_list(ids))).collect();
            json_object(&fields)
        }
    }
}

fn statement_json(statement: &Statement) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(sid) = &statement.sid {
        fields.push(("Sid", json_string(sid)));
    }
    fields.push(("Effect", json_string(statement.effect.as_str())));
    match &statement.principal {
        Some(PrincipalElement::Principal(p)) => fields.push(("Principal", principal_json(p))),
        Some(PrincipalElement::NotPrincipal(p)) => fields.push(("NotPrincipal", principal_json(p))),
        None => {}
    }
    match &statement.action {
        ActionElement::Action(a) => fields.push(("Action", json_string_or_list(a))),
        ActionElement::NotAction(a) => fields.push(("NotAction", json_string_or_list(a))),
    }
    match &statement.resource {
        ResourceElement::Resource(r) => fields.push(("Resource", json_string_or_list(r))),
        ResourceElement::NotResource(r) => fields.push(("NotResource", json_string_or_list(r))),
    }
    if !statement.condition.is_empty() {
        let operators: Vec<(String, String)> = statement
            .condition
            .iter()
            .map(|block| {
                let keys: Vec<(&str, String)> =
                    block.entries.iter().map(|e| (e.key.as_str(), json_string_or_list(&e.values))).collect();
                (block.operator.to_string(), json_object(&keys))
            })
            .collect();
        let operators: Vec<(&str, String)> = operators.iter().map(|(o, k)| (o.as_str(), k.clone())).collect();
        fields.push(("Condition", json_object(&operators)));
    }
    json_object(&fields)
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
