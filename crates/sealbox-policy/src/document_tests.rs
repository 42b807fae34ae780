use proptest::prelude::*;

use super::*;
use crate::condition::{ConditionEntry, ConditionOperator, OperatorKind, SetQualifier};

const SEED_POLICIES: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",
  "Resource":["arn:aws:s3:::BUCKET","arn:aws:s3:::BUCKET/*"],
  "Condition":{"Bool":{"aws:SecureTransport":"false"}}},
 {"Sid":"RequireSSEKMS","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
  "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}},
 {"Sid":"RequireKey","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
  "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption-aws-kms-key-id":
    "arn:aws:kms:us-east-1:111122223333:key/KEY-ID"}}}]}"#;

fn error(text: &str) -> String {
    PolicyDocument::parse(text).expect_err("document should be refused").to_string()
}

fn statement(body: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"A","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}},{body}]}}"#
    )
}

#[test]
fn parses_the_seed_policies_into_the_model() {
    let policy = PolicyDocument::parse(SEED_POLICIES).unwrap();
    assert_eq!(policy.version, Some(PolicyVersion::V2012_10_17));
    assert_eq!(policy.id, None);
    assert_eq!(policy.statements.len(), 3);
    let first = &policy.statements[0];
    assert_eq!(first.sid.as_deref(), Some("DenyInsecureTransport"));
    assert_eq!(first.effect, Effect::Deny);
    assert_eq!(first.principal, Some(PrincipalElement::Principal(Principal::Anyone)));
    assert_eq!(first.action, ActionElement::Action(vec!["s3:*".into()]));
    assert_eq!(
        first.resource,
        ResourceElement::Resource(vec!["arn:aws:s3:::BUCKET".into(), "arn:aws:s3:::BUCKET/*".into()])
    );
    assert_eq!(first.condition.len(), 1);
    assert_eq!(
        first.condition[0].operator,
        ConditionOperator { set: None, kind: OperatorKind::Bool, if_exists: false }
    );
    assert_eq!(
        first.condition[0].entries,
        [ConditionEntry { key: "aws:SecureTransport".into(), values: vec!["false".into()] }]
    );
    assert!(policy.check_kind(PolicyKind::Resource).is_ok());
    assert!(PolicyDocument::parse_for(SEED_POLICIES, PolicyKind::Identity).is_err());
}

#[test]
fn single_statement_object_and_principal_forms() {
    let policy = PolicyDocument::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["000000000000","arn:aws:iam::000000000000:user/alice"],"Service":"s3.amazonaws.com"},"Action":["s3:GetObject","s3:ListBucket"],"Resource":"arn:aws:s3:::b/*"}}"#,
    )
    .unwrap();
    assert_eq!(policy.version, None);
    assert!(!policy.substitutes_variables());
    assert_eq!(
        policy.statements[0].principal,
        Some(PrincipalElement::Principal(Principal::Named(vec![
            (PrincipalType::Aws, vec!["000000000000".into(), "arn:aws:iam::000000000000:user/alice".into()]),
            (PrincipalType::Service, vec!["s3.amazonaws.com".into()]),
        ])))
    );
    let not_principal = PolicyDocument::parse(
        r#"{"Version":"2008-10-17","Id":"x","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"*"},"NotAction":"kms:Decrypt","NotResource":["arn:aws:kms:us-east-1:000000000000:key/k"]}]}"#,
    )
    .unwrap();
    assert_eq!(not_principal.version, Some(PolicyVersion::V2008_10_17));
    assert_eq!(not_principal.id.as_deref(), Some("x"));
    let s = &not_principal.statements[0];
    assert!(matches!(s.principal, Some(PrincipalElement::NotPrincipal(_))));
    assert!(matches!(s.action, ActionElement::NotAction(_)));
    assert!(matches!(s.resource, ResourceElement::NotResource(_)));
}

#[test]
fn document_level_errors() {
    assert!(error("{").starts_with("Policy is not valid JSON"));
    assert_eq!(error("[]"), "Policy document must be a JSON object");
    assert_eq!(error(r#"{"Statement":[],"Extra":1}"#), "Policy document has an unknown field \"Extra\"");
    assert_eq!(
        error(r#"{"Version":"2020-01-01","Statement":[]}"#),
        "Policy has an invalid Version \"2020-01-01\" (expected \"2012-10-17\" or \"2008-10-17\")"
    );
    assert_eq!(error(r#"{"Version":2012,"Statement":[]}"#), "Policy document field \"Version\" must be a string");
    assert_eq!(error(r#"{"Id":5,"Statement":[]}"#), "Policy document field \"Id\" must be a string");
    assert_eq!(error(r#"{"Version":"2012-10-17"}"#), "Policy is missing required field Statement");
    assert_eq!(error(r#"{"Statement":[]}"#), "Policy has no statements");
    assert_eq!(
        error(r#"{"Statement":"x"}"#),
        "Policy document field \"Statement\" must be an object or a list of objects"
    );
    assert_eq!(error(r#"{"Statement":["x"]}"#), "Statement 1: a statement must be a JSON object");
}

#[test]
fn statement_errors_name_the_statement_and_field() {
    let cases = [
        (
            r#"{"Sid":"B","Effect":"Allow","Action":"s3:GetObject","Resource":"*","Principle":"*"}"#,
            "Statement 2 (Sid \"B\"): unknown field \"Principle\"",
        ),
        (
            r#"{"Effect":"allow","Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: invalid Effect \"allow\" (expected \"Allow\" or \"Deny\")",
        ),
        (
            r#"{"Effect":true,"Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: invalid Effect \"true\" (expected \"Allow\" or \"Deny\")",
        ),
        (r#"{"Action":"s3:GetObject","Resource":"*"}"#, "Statement 2: missing required field Effect"),
        (r#"{"Effect":"Allow","Resource":"*"}"#, "Statement 2: missing required field Action"),
        (r#"{"Effect":"Allow","Action":"s3:GetObject"}"#, "Statement 2: missing required field Resource"),
        (
            r#"{"Effect":"Allow","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"*"}"#,
            "Statement 2: Action and NotAction cannot both be present",
        ),
        (
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","NotResource":"*"}"#,
            "Statement 2: Resource and NotResource cannot both be present",
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: Principal and NotPrincipal cannot both be present",
        ),
        (
            r#"{"Sid":"X","Effect":"Allow","Action":"s3:GetObjects","Resource":"*"}"#,
            "Statement 2 (Sid \"X\"): action \"s3:GetObjects\" is not a known action of its service",
        ),
        (
            r#"{"Effect":"Allow","Action":"kms:ReEncrypt","Resource":"*"}"#,
            "Statement 2: action \"kms:ReEncrypt\" is not a known action of its service",
        ),
        (
            r#"{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*"}"#,
            "Statement 2: action \"ec2:RunInstances\" names an unknown service prefix",
        ),
        (
            r#"{"Effect":"Allow","Action":"GetObject","Resource":"*"}"#,
            "Statement 2: invalid action \"GetObject\" (expected \"*\" or \"<service>:<action>\")",
        ),
        (
            r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#,
            "Statement 2: field Action must be a non-empty string or a non-empty list of non-empty strings",
        ),
        (
            r#"{"Effect":"Allow","Action":["s3:GetObject", 5],"Resource":"*"}"#,
            "Statement 2: field Action must be a non-empty string or a non-empty list of non-empty strings",
        ),
        (
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"bucket/*"}"#,
            "Statement 2: invalid resource \"bucket/*\" (expected \"*\" or an ARN)",
        ),
        (
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3"}"#,
            "Statement 2: invalid resource \"arn:aws:s3\" (expected \"*\" or an ARN)",
        ),
        (
            r#"{"Effect":"Allow","Principal":"alice","Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: invalid principal \"alice\"",
        ),
        (
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/*"},"Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: invalid principal \"arn:aws:iam::000000000000:user/*\"",
        ),
        (
            r#"{"Effect":"Allow","Principal":{"AWS":"12345"},"Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: invalid principal \"12345\"",
        ),
        (
            r#"{"Effect":"Allow","Principal":{},"Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: invalid principal \"{}\"",
        ),
        (
            r#"{"Effect":"Allow","Principal":{"Users":"alice"},"Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: unsupported principal type \"Users\"",
        ),
        (
            r#"{"Sid":7,"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#,
            "Statement 2: field Sid must be a string",
        ),
        (
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringLikeX":{"a":"b"}}}"#,
            "Statement 2: unknown condition operator \"StringLikeX\"",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(error(&statement(body)), message, "{body}");
    }
}

#[test]
fn accepts_what_aws_accepts() {
    for body in [
        r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#,
        r#"{"Effect":"Allow","Action":["S3:getobject","s3:List*","iam:PassRole","sts:AssumeRole","cloudtrail:LookupEvents"],"Resource":"*"}"#,
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#,
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:*"}"#,
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{}}"#,
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::000000000000:assumed-role/r/s"},"Action":"s3:GetObject","Resource":"*"}"#,
        r#"{"Effect":"Allow","Principal":{"CanonicalUser":"abc","Federated":"cognito-identity.amazonaws.com"},"Action":"s3:GetObject","Resource":"*"}"#,
    ] {
        assert!(PolicyDocument::parse(&statement(body)).is_ok(), "{body}");
    }
}

#[test]
fn kind_rules() {
    let identity = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    assert!(PolicyDocument::parse_for(identity, PolicyKind::Identity).is_ok());
    assert_eq!(
        PolicyDocument::parse_for(identity, PolicyKind::Resource).unwrap_err().to_string(),
        "Statement 1: missing required field Principal"
    );
    let with_not_principal =
        r#"{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"000000000000"},"Action":"s3:*","Resource":"*"}]}"#;
    assert!(PolicyDocument::parse_for(with_not_principal, PolicyKind::Resource).is_ok());
    assert_eq!(
        PolicyDocument::parse_for(with_not_principal, PolicyKind::Identity).unwrap_err().to_string(),
        "Statement 1: field NotPrincipal is not allowed in this kind of policy"
    );
    let duplicate_sids = r#"{"Statement":[{"Sid":"S","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"S","Effect":"Deny","Action":"kms:*","Resource":"*"}]}"#;
    assert_eq!(
        PolicyDocument::parse_for(duplicate_sids, PolicyKind::Identity).unwrap_err().to_string(),
        "Statement 2 (Sid \"S\"): Sid \"S\" is used by more than one statement"
    );
}

#[test]
fn bucket_policy_rules() {
    let policy = |action: &str, resource: &str| {
        PolicyDocument::parse(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"{action}","Resource":"{resource}"}}]}}"#
        ))
        .unwrap()
    };
    for (action, resource) in [
        ("s3:GetObject", "arn:aws:s3:::photos/*"),
        ("s3:ListBucket", "arn:aws:s3:::photos"),
        ("*", "arn:aws:s3:::photos/a/${aws:username}/*"),
        ("s3:*", "arn:aws:s3:::pho*"),
        ("s3:*", "arn:aws:s3:::*"),
        ("S3:Get*", "*"),
    ] {
        assert_eq!(policy(action, resource).check_bucket_policy("photos"), Ok(()), "{action} {resource}");
    }
    assert_eq!(
        policy("kms:Decrypt", "arn:aws:s3:::photos/*").check_bucket_policy("photos").unwrap_err().to_string(),
        "Statement 1: action \"kms:Decrypt\" does not apply to s3 resources"
    );
    for resource in ["arn:aws:s3:::other/*", "arn:aws:s3:::photosx", "arn:aws:kms:us-east-1:000000000000:key/k"] {
        assert_eq!(
            policy("s3:GetObject", resource).check_bucket_policy("photos").unwrap_err().to_string(),
            format!("Statement 1: resource \"{resource}\" is not bucket photos or an object in it")
        );
    }
    let identity =
        PolicyDocument::parse(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#).unwrap();
    assert!(matches!(
        identity.check_bucket_policy("photos"),
        Err(PolicyError::MissingField { field: "Principal", .. })
    ));
}

#[test]
fn to_json_writes_aws_field_order_and_round_trips() {
    let policy = PolicyDocument::parse(SEED_POLICIES).unwrap();
    let json = policy.to_json();
    assert!(json.starts_with(r#"{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["#));
    assert_eq!(PolicyDocument::parse(&json).unwrap(), policy);
    let tricky = statement(
        r#"{"Sid":"quote \" back \\ unicode é ✓","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/\"x\"","Condition":{"ForAnyValue:StringLikeIfExists":{"Key":["a","b"]}}}"#,
    );
    let policy = PolicyDocument::parse(&tricky).unwrap();
    assert_eq!(PolicyDocument::parse(&policy.to_json()).unwrap(), policy);
    assert_eq!(policy.statements[1].condition[0].operator.set, Some(SetQualifier::ForAnyValue));
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9 _/-]{1,12}", "\\PC{1,8}", Just("quote\"and\\slash".to_string()),]
}

fn arb_list(options: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(options, 1..=options.len().min(3))
        .prop_map(|items| items.into_iter().map(str::to_string).collect())
}

fn arb_principal() -> impl Strategy<Value = Principal> {
    prop_oneof![
        Just(Principal::Anyone),
        (
            arb_list(&["*", "000000000000", "arn:aws:iam::000000000000:root", "arn:aws:iam::000000000000:user/alice"]),
            proptest::option::of(arb_list(&["s3.amazonaws.com", "kms.amazonaws.com"])),
        )
            .prop_map(|(aws, service)| {
                let mut types = vec![(PrincipalType::Aws, aws)];
                if let Some(service) = service {
                    types.push((PrincipalType::Service, service));
                }
                Principal::Named(types)
            }),
    ]
}

/// Values valid for each operator kind, so generated documents always parse.
fn arb_values(kind: OperatorKind) -> BoxedStrategy<Vec<String>> {
    use OperatorKind::*;
    let values: BoxedStrategy<String> = match kind {
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => any::<i32>().prop_map(|n| n.to_string()).boxed(),
        DateEquals | DateNotEquals | DateLessThan | DateLessThanEquals | DateGreaterThan | DateGreaterThanEquals => {
            prop_oneof![
                Just("2024-01-31T12:00:00Z".to_string()),
                Just("2019-07-16".to_string()),
                Just("1700000000".to_string())
            ]
            .boxed()
        }
        Bool | Null => prop_oneof![Just("true".to_string()), Just("false".to_string())].boxed(),
        IpAddress | NotIpAddress => prop_oneof![
            Just("10.0.0.0/8".to_string()),
            Just("192.0.2.1".to_string()),
            Just("2001:db8::/32".to_string())
        ]
        .boxed(),
        _ => arb_text().boxed(),
    };
    proptest::collection::vec(values, 1..3).boxed()
}

fn arb_condition() -> impl Strategy<Value = Vec<ConditionBlock>> {
    let operator = (
        proptest::sample::select(crate::condition::OPERATOR_KINDS),
        proptest::option::of(prop_oneof![Just(SetQualifier::ForAnyValue), Just(SetQualifier::ForAllValues)]),
        any::<bool>(),
    )
        .prop_map(|(kind, set, if_exists)| {
            let plain = kind == OperatorKind::Null;
            ConditionOperator { set: if plain { None } else { set }, kind, if_exists: if_exists && !plain }
        });
    let block = operator.prop_flat_map(|operator| {
        let key = proptest::sample::select(
            &["aws:SourceIp", "s3:prefix", "kms:EncryptionContext:Dept", "aws:CurrentTime"][..],
        );
        proptest::collection::btree_map(key, arb_values(operator.kind), 1..3).prop_map(move |entries| ConditionBlock {
            operator,
            entries: entries.into_iter().map(|(key, values)| ConditionEntry { key: key.to_string(), values }).collect(),
        })
    });
    // Blocks come back from the parser sorted by operator name, so generate them that way.
    proptest::collection::vec(block, 0..3).prop_map(|blocks| {
        let mut by_name = std::collections::BTreeMap::new();
        for block in blocks {
            by_name.insert(block.operator.to_string(), block);
        }
        by_name.into_values().collect()
    })
}

fn arb_statement() -> impl Strategy<Value = Statement> {
    (
        proptest::option::of(arb_text()),
        prop_oneof![Just(Effect::Allow), Just(Effect::Deny)],
        proptest::option::of((any::<bool>(), arb_principal())),
        (
            any::<bool>(),
            arb_list(&[
                "*",
                "s3:*",
                "s3:GetObject",
                "s3:PutObject",
                "kms:Decrypt",
                "kms:GenerateDataKey*",
                "iam:GetUser",
            ]),
        ),
        (
            any::<bool>(),
            arb_list(&[
                "*",
                "arn:aws:s3:::bucket",
                "arn:aws:s3:::bucket/*",
                "arn:aws:s3:::home/${aws:username}/*",
                "arn:aws:kms:us-east-1:000000000000:key/k?",
            ]),
        ),
        arb_condition(),
    )
        .prop_map(
            |(sid, effect, principal, (positive_action, actions), (positive_resource, resources), condition)| {
                Statement {
                    sid,
                    effect,
                    principal: principal.map(|(positive, p)| {
                        if positive {
                            PrincipalElement::Principal(p)
                        } else {
                            PrincipalElement::NotPrincipal(p)
                        }
                    }),
                    action: if positive_action {
                        ActionElement::Action(actions)
                    } else {
                        ActionElement::NotAction(actions)
                    },
                    resource: if positive_resource {
                        ResourceElement::Resource(resources)
                    } else {
                        ResourceElement::NotResource(resources)
                    },
                    condition,
                }
            },
        )
}

fn arb_document() -> impl Strategy<Value = PolicyDocument> {
    (
        proptest::option::of(prop_oneof![Just(PolicyVersion::V2012_10_17), Just(PolicyVersion::V2008_10_17)]),
        proptest::option::of(arb_text()),
        proptest::collection::vec(arb_statement(), 1..4),
    )
        .prop_map(|(version, id, statements)| PolicyDocument { version, id, statements })
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("2012-10-17"),
            Just("Allow"),
            Just("Deny"),
            Just("*"),
            Just("s3:GetObject"),
            Just("arn:aws:s3:::b/*"),
            Just("StringEquals"),
            Just("ForAllValues:NumericLessThanIfExists"),
            Just("Null"),
            Just("${aws:username"),
        ]
        .prop_map(|s| serde_json::Value::String(s.to_string())),
        "\\PC{0,6}".prop_map(serde_json::Value::String),
    ];
    let keys = prop_oneof![
        Just("Version"),
        Just("Statement"),
        Just("Effect"),
        Just("Action"),
        Just("NotAction"),
        Just("Resource"),
        Just("Principal"),
        Just("AWS"),
        Just("Condition"),
        Just("IpAddress"),
        Just("DateEquals"),
        Just("aws:SourceIp"),
        Just("Sid"),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(keys.clone().prop_map(str::to_string), inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_of_to_json_round_trips(document in arb_document()) {
        let json = document.to_json();
        let parsed = PolicyDocument::parse(&json);
        prop_assert_eq!(parsed.as_ref(), Ok(&document), "{}", json);
        prop_assert_eq!(parsed.unwrap().to_json(), json);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = PolicyDocument::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_json_shaped_input(value in arb_json()) {
        let _ = PolicyDocument::parse(&value.to_string());
    }

    #[test]
    fn parse_never_panics_on_mutated_documents(document in arb_document(), at in any::<prop::sample::Index>(), with in any::<char>()) {
        let json = document.to_json();
        let mut chars: Vec<char> = json.chars().collect();
        let index = at.index(chars.len());
        chars[index] = with;
        let _ = PolicyDocument::parse(&chars.into_iter().collect::<String>());
    }
}
