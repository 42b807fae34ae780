use super::*;

fn ctx(pairs: &[(&str, &str)]) -> RequestContext {
    let mut ctx = RequestContext::new("arn:aws:iam::000000000000:user/alice", "000000000000", "s3:GetObject", "r");
    for (key, value) in pairs {
        ctx.add_value(key, *value);
    }
    ctx
}

fn blocks(condition: &str) -> Vec<ConditionBlock> {
    let value: Value = serde_json::from_str(condition).expect("test condition is JSON");
    parse_condition(&value, "Statement 1").expect("test condition parses")
}

fn holds(condition: &str, ctx: &RequestContext) -> bool {
    blocks(condition).iter().all(|block| block_holds(block, ctx, true))
}

fn parse_error(condition: &str) -> PolicyError {
    let value: Value = serde_json::from_str(condition).expect("test condition is JSON");
    parse_condition(&value, "Statement 1").expect_err("condition should be refused")
}

#[test]
fn string_equals_is_case_sensitive_and_false_on_absent_key() {
    let c = r#"{"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}"#;
    assert!(holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "aws:kms")])));
    assert!(!holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "AES256")])));
    assert!(!holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "AWS:KMS")])));
    assert!(!holds(c, &ctx(&[])));
}

#[test]
fn string_equals_treats_star_literally() {
    let c = r#"{"StringEquals": {"s3:prefix": "home/*"}}"#;
    assert!(holds(c, &ctx(&[("s3:prefix", "home/*")])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "home/alice")])));
}

#[test]
fn string_not_equals_is_true_on_absent_key() {
    let c = r#"{"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}"#;
    assert!(holds(c, &ctx(&[])), "the C.10 gotcha: absent key satisfies a negated operator");
    assert!(holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "AES256")])));
    assert!(!holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "aws:kms")])));
}

#[test]
fn if_exists_makes_absent_keys_match_and_checks_present_ones() {
    let c = r#"{"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}"#;
    assert!(holds(c, &ctx(&[])));
    assert!(holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "AES256")])));
    assert!(!holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "aws:kms")])));

    let c = r#"{"StringEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}"#;
    assert!(holds(c, &ctx(&[])));
    assert!(holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "aws:kms")])));
    assert!(!holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "AES256")])));
}

#[test]
fn several_values_or_and_negated_operators_need_to_miss_all() {
    let c = r#"{"StringEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]}}"#;
    assert!(holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "aws:kms:dsse")])));
    assert!(!holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "AES256")])));
    let c = r#"{"StringNotEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]}}"#;
    assert!(!holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "aws:kms")])));
    assert!(!holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "aws:kms:dsse")])));
    assert!(holds(c, &ctx(&[("s3:x-amz-server-side-encryption", "AES256")])));
}

#[test]
fn several_keys_and_several_operators_and() {
    let c =
        r#"{"StringEquals": {"s3:prefix": "a/", "s3:delimiter": "/"}, "NumericLessThanEquals": {"s3:max-keys": "10"}}"#;
    assert!(holds(c, &ctx(&[("s3:prefix", "a/"), ("s3:delimiter", "/"), ("s3:max-keys", "10")])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "a/"), ("s3:delimiter", "/"), ("s3:max-keys", "11")])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "a/"), ("s3:max-keys", "10")])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "b/"), ("s3:delimiter", "/"), ("s3:max-keys", "1")])));
}

#[test]
fn condition_keys_are_case_insensitive() {
    let c = r#"{"Bool": {"AWS:SECURETRANSPORT": "false"}}"#;
    assert!(holds(c, &ctx(&[("aws:SecureTransport", "false")])));
    assert!(holds(c, &ctx(&[("aws:securetransport", "false")])));
}

#[test]
fn ignore_case_variants() {
    let c = r#"{"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}"#;
    assert!(holds(c, &ctx(&[])), "aws:username is derived from the user ARN");
    assert!(holds(c, &ctx(&[("aws:username", "Alice")])));
    assert!(!holds(c, &ctx(&[("aws:username", "bob")])));
    let c = r#"{"StringNotEqualsIgnoreCase": {"kms:ViaService": "S3.US-EAST-1.AMAZONAWS.COM"}}"#;
    assert!(!holds(c, &ctx(&[("kms:ViaService", "s3.us-east-1.amazonaws.com")])));
    assert!(holds(c, &ctx(&[("kms:ViaService", "other.amazonaws.com")])));
    assert!(holds(c, &ctx(&[])));
}

#[test]
fn string_like_and_not_like() {
    let c = r#"{"StringLike": {"s3:prefix": ["home/*", "shared/??/x"]}}"#;
    assert!(holds(c, &ctx(&[("s3:prefix", "home/alice/")])));
    assert!(holds(c, &ctx(&[("s3:prefix", "shared/ab/x")])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "shared/abc/x")])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "Home/alice")])));
    assert!(!holds(c, &ctx(&[])));
    let c = r#"{"StringNotLike": {"s3:prefix": "private/*"}}"#;
    assert!(holds(c, &ctx(&[("s3:prefix", "public/a")])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "private/a")])));
    assert!(holds(c, &ctx(&[])));
    let c = r#"{"StringLikeIfExists": {"s3:prefix": "home/*"}}"#;
    assert!(holds(c, &ctx(&[])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "etc/")])));
}

#[test]
fn policy_variables_in_condition_values() {
    let c = r#"{"StringLike": {"s3:prefix": "home/${aws:username}/*"}}"#;
    assert!(holds(c, &ctx(&[("s3:prefix", "home/alice/docs")])));
    assert!(!holds(c, &ctx(&[("s3:prefix", "home/bob/docs")])));
    let not_substituted = blocks(c);
    assert!(!not_substituted.iter().all(|b| block_holds(b, &ctx(&[("s3:prefix", "home/alice/docs")]), false)));
    assert!(not_substituted.iter().all(|b| block_holds(b, &ctx(&[("s3:prefix", "home/${aws:username}/x")]), false)));
}

#[test]
fn bool_operator() {
    let c = r#"{"Bool": {"aws:SecureTransport": "false"}}"#;
    assert!(holds(c, &ctx(&[("aws:SecureTransport", "false")])));
    assert!(holds(c, &ctx(&[("aws:SecureTransport", "FALSE")])));
    assert!(!holds(c, &ctx(&[("aws:SecureTransport", "true")])));
    assert!(!holds(c, &ctx(&[])));
    let c = r#"{"BoolIfExists": {"aws:MultiFactorAuthPresent": false}}"#;
    assert!(holds(c, &ctx(&[])));
    assert!(!holds(c, &ctx(&[("aws:MultiFactorAuthPresent", "true")])));
}

#[test]
fn null_tests_presence() {
    let absent = r#"{"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "true"}}"#;
    let present = r#"{"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}"#;
    let with_header = ctx(&[("s3:x-amz-server-side-encryption-customer-algorithm", "AES256")]);
    assert!(holds(absent, &ctx(&[])));
    assert!(!holds(absent, &with_header));
    assert!(!holds(present, &ctx(&[])));
    assert!(holds(present, &with_header));
    let mut empty = ctx(&[]);
    empty.set_values("s3:x-amz-server-side-encryption-customer-algorithm", vec![]);
    assert!(holds(absent, &empty), "an empty value list counts as absent");
}

#[test]
fn ip_address_operators() {
    let c = r#"{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]}}"#;
    assert!(holds(c, &ctx(&[("aws:SourceIp", "10.1.2.3")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "192.0.2.7")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "192.0.2.8")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "2001:db8:1::5")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "2001:db9::1")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "::ffff:10.9.9.9")])), "IPv4-mapped IPv6 matches IPv4 blocks");
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "not-an-ip")])));
    assert!(!holds(c, &ctx(&[])));
    let c = r#"{"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}"#;
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "127.0.0.1")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "192.168.1.1")])));
    assert!(holds(c, &ctx(&[])));
    let c = r#"{"IpAddressIfExists": {"aws:SourceIp": "0.0.0.0/0"}}"#;
    assert!(holds(c, &ctx(&[])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "8.8.8.8")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "::1")])), "an IPv4 block never matches IPv6 clients");
}

#[test]
fn numeric_operators() {
    let cases = [
        ("NumericEquals", "10", [false, true, false]),
        ("NumericNotEquals", "10", [true, false, true]),
        ("NumericLessThan", "10", [true, false, false]),
        ("NumericLessThanEquals", "10", [true, true, false]),
        ("NumericGreaterThan", "10", [false, false, true]),
        ("NumericGreaterThanEquals", "10", [false, true, true]),
    ];
    for (operator, limit, expected) in cases {
        let c = format!(r#"{{"{operator}": {{"s3:max-keys": "{limit}"}}}}"#);
        for (request, want) in ["9", "10.0", "11"].iter().zip(expected) {
            assert_eq!(holds(&c, &ctx(&[("s3:max-keys", request)])), want, "{operator} {request}");
        }
        let negated = operator == "NumericNotEquals";
        assert_eq!(holds(&c, &ctx(&[])), negated, "{operator} on absent key");
        assert!(holds(&format!(r#"{{"{operator}IfExists": {{"s3:max-keys": "{limit}"}}}}"#), &ctx(&[])));
        assert_eq!(holds(&c, &ctx(&[("s3:max-keys", "lots")])), negated, "{operator} on a non-number");
    }
    assert!(holds(r#"{"NumericEquals": {"s3:max-keys": 1.5}}"#, &ctx(&[("s3:max-keys", "1.50")])));
}

#[test]
fn date_operators_accept_iso8601_and_epoch() {
    let now = ctx(&[("aws:CurrentTime", "2024-01-31T12:00:00Z"), ("aws:EpochTime", "1706702400")]);
    let cases = [
        ("DateEquals", "2024-01-31T12:00:00Z", true),
        ("DateEquals", "2024-01-31T14:00:00+02:00", true),
        ("DateEquals", "1706702400", true),
        ("DateNotEquals", "2024-01-31T12:00:01Z", true),
        ("DateNotEquals", "2024-01-31T12:00:00.000Z", false),
        ("DateLessThan", "2024-02-01", true),
        ("DateLessThan", "2024-01-31", false),
        ("DateLessThanEquals", "2024-01-31T12:00Z", true),
        ("DateGreaterThan", "2024-01-31T11:59:59.999Z", true),
        ("DateGreaterThan", "2024-01-31T12:00:00Z", false),
        ("DateGreaterThanEquals", "2024-01-31T12:00:00Z", true),
        ("DateGreaterThanEquals", "1706702401", false),
    ];
    for (operator, value, want) in cases {
        for key in ["aws:CurrentTime", "aws:EpochTime"] {
            let c = format!(r#"{{"{operator}": {{"{key}": "{value}"}}}}"#);
            assert_eq!(holds(&c, &now), want, "{operator} {key} {value}");
        }
    }
    assert!(!holds(r#"{"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}"#, &ctx(&[])));
    assert!(holds(r#"{"DateNotEquals": {"aws:CurrentTime": "2030-01-01"}}"#, &ctx(&[])));
    assert!(holds(r#"{"DateLessThanIfExists": {"aws:CurrentTime": "2000-01-01"}}"#, &ctx(&[])));
}

#[test]
fn date_parsing() {
    const S: i128 = NANOS_PER_SECOND;
    assert_eq!(parse_date("2024-01-31T12:00:00Z"), Some(1_706_702_400 * S));
    assert_eq!(parse_date("2024-01-31T12:00:00"), Some(1_706_702_400 * S));
    assert_eq!(parse_date("2024-01-31t12:00:00z"), Some(1_706_702_400 * S));
    assert_eq!(parse_date("2024-01-31T13:30:00+0130"), Some(1_706_702_400 * S));
    assert_eq!(parse_date("2024-01-31T10:00:00-02"), Some(1_706_702_400 * S));
    assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800 * S));
    assert_eq!(parse_date("2000-03-01"), Some(951_868_800 * S));
    assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some(-S));
    assert_eq!(parse_date("1706702400.25"), Some(1_706_702_400 * S + S / 4));
    assert_eq!(parse_date("2024-01-31T12:00:00.123456789123Z"), Some(1_706_702_400 * S + 123_456_789));
    for bad in [
        "",
        "2023-02-29",
        "2024-13-01",
        "2024-01-32",
        "2024-01-31T24:00:00Z",
        "2024-01-31T12:60Z",
        "2024-01-31T12",
        "2024/01/31",
        "yesterday",
        "1.2.3",
        "2024-01-31T12:00:00+25:00",
        "2024-01-31T12:00.5Z",
        "2024-01-31X",
        "1234567890123",
        "2024-01-31T12:00:00+aéb",
        "2024-01-31T12:00:00-éé",
        "2024-01-éT12:00:00Z",
        "éééééé",
    ] {
        assert_eq!(parse_date(bad), None, "{bad:?}");
    }
}

#[test]
fn arn_operators_match_part_by_part() {
    let c = r#"{"ArnLike": {"aws:SourceArn": "arn:aws:s3:::logs-*"}}"#;
    assert!(holds(c, &ctx(&[("aws:SourceArn", "arn:aws:s3:::logs-2024")])));
    assert!(!holds(c, &ctx(&[("aws:SourceArn", "arn:aws:s3:::data")])));
    assert!(!holds(c, &ctx(&[("aws:SourceArn", "not an arn")])));
    assert!(!holds(c, &ctx(&[])));
    let c = r#"{"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::000000000000:user/*"}}"#;
    assert!(holds(c, &ctx(&[])), "aws:PrincipalArn is derived from the principal");
    let c = r#"{"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::000000000000:user/alice"}}"#;
    assert!(!holds(c, &ctx(&[])));
    let c = r#"{"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::logs-*"}}"#;
    assert!(holds(c, &ctx(&[])));
    assert!(holds(c, &ctx(&[("aws:SourceArn", "arn:aws:s3:::data")])));
    assert!(!holds(c, &ctx(&[("aws:SourceArn", "arn:aws:s3:::logs-1")])));
    let c = r#"{"ArnLike": {"aws:SourceArn": "arn:aws:kms:*:000000000000:key/*"}}"#;
    assert!(!holds(c, &ctx(&[("aws:SourceArn", "arn:aws:kms:us-east-1:111111111111:key/000000000000:key/x")])));
}

#[test]
fn binary_equals_compares_base64_text() {
    let c = r#"{"BinaryEquals": {"kms:RecipientAttestation:ImageSha384": "QUJD"}}"#;
    assert!(holds(c, &ctx(&[("kms:RecipientAttestation:ImageSha384", "QUJD")])));
    assert!(!holds(c, &ctx(&[("kms:RecipientAttestation:ImageSha384", "QUJE")])));
}

#[test]
fn for_any_value_on_present_and_absent_keys() {
    let c = r#"{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#;
    let keys = |values: &[&str]| {
        let mut ctx = ctx(&[]);
        ctx.set_values("kms:EncryptionContextKeys", values.iter().map(|v| v.to_string()).collect());
        ctx
    };
    assert!(holds(c, &keys(&["Owner", "Project"])));
    assert!(!holds(c, &keys(&["Owner"])));
    assert!(!holds(c, &keys(&[])), "ForAnyValue is false on an absent key");
    let c = r#"{"ForAnyValue:StringNotEquals": {"kms:EncryptionContextKeys": ["Department"]}}"#;
    assert!(holds(c, &keys(&["Department", "Owner"])));
    assert!(!holds(c, &keys(&["Department"])));
    assert!(!holds(c, &keys(&[])), "even for negated operators");
    let c = r#"{"ForAnyValue:StringEqualsIfExists": {"kms:EncryptionContextKeys": "Department"}}"#;
    assert!(holds(c, &keys(&[])));
}

#[test]
fn for_all_values_on_present_and_absent_keys() {
    let c = r#"{"ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["Department", "app-*"]}}"#;
    let keys = |values: &[&str]| {
        let mut ctx = ctx(&[]);
        for value in values {
            ctx.add_value("kms:EncryptionContextKeys", *value);
        }
        ctx
    };
    assert!(holds(c, &keys(&["Department", "app-db"])));
    assert!(!holds(c, &keys(&["Department", "Owner"])));
    assert!(holds(c, &keys(&[])), "ForAllValues is true on an absent key");
    let c = r#"{"ForAllValues:StringNotEquals": {"kms:EncryptionContextKeys": ["Secret"]}}"#;
    assert!(holds(c, &keys(&["a", "b"])));
    assert!(!holds(c, &keys(&["a", "Secret"])));
    assert!(holds(c, &keys(&[])));
}

#[test]
fn unprefixed_operators_on_multi_valued_keys() {
    let mut multi = ctx(&[]);
    multi.add_value("kms:EncryptionContextKeys", "a");
    multi.add_value("kms:EncryptionContextKeys", "b");
    assert!(holds(r#"{"StringEquals": {"kms:EncryptionContextKeys": "b"}}"#, &multi));
    assert!(!holds(r#"{"StringNotEquals": {"kms:EncryptionContextKeys": "b"}}"#, &multi));
    assert!(holds(r#"{"StringNotEquals": {"kms:EncryptionContextKeys": "c"}}"#, &multi));
}

#[test]
fn operator_names_parse_and_display_round_trip() {
    for kind in OPERATOR_KINDS {
        for set in [None, Some(SetQualifier::ForAnyValue), Some(SetQualifier::ForAllValues)] {
            for if_exists in [false, true] {
                let operator = ConditionOperator { set, kind: *kind, if_exists };
                let parsed = ConditionOperator::parse(&operator.to_string());
                if *kind == OperatorKind::Null && (set.is_some() || if_exists) {
                    assert_eq!(parsed, None, "{operator}");
                } else {
                    assert_eq!(parsed, Some(operator), "{operator}");
                    let lower = ConditionOperator::parse(&operator.to_string().to_lowercase());
                    assert_eq!(lower, Some(operator), "names compare case-insensitively");
                }
            }
        }
    }
    for bad in
        ["StringEqualz", "ForSomeValues:StringEquals", "IfExists", "NullIfExists", "", "StringEqualsIfExistsIfExists"]
    {
        assert_eq!(ConditionOperator::parse(bad), None, "{bad}");
    }
}

#[test]
fn unknown_operators_and_bad_values_are_refused_with_context() {
    let err = parse_error(r#"{"StringEqualz": {"aws:username": "x"}}"#);
    assert_eq!(err.to_string(), "Statement 1: unknown condition operator \"StringEqualz\"");
    for (condition, value) in [
        (r#"{"NumericLessThan": {"s3:max-keys": "ten"}}"#, "ten"),
        (r#"{"DateGreaterThan": {"aws:CurrentTime": "yesterday"}}"#, "yesterday"),
        (r#"{"Bool": {"aws:SecureTransport": "yes"}}"#, "yes"),
        (r#"{"Null": {"aws:SecureTransport": "maybe"}}"#, "maybe"),
        (r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}"#, "10.0.0.0/33"),
        (r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0/8"}}"#, "10.0.0/8"),
    ] {
        match parse_error(condition) {
            PolicyError::InvalidConditionValue { value: got, .. } => assert_eq!(got, value),
            other => panic!("{condition}: {other:?}"),
        }
    }
    for condition in [
        r#"{"StringEquals": "x"}"#,
        r#"{"StringEquals": {"aws:username": []}}"#,
        r#"{"StringEquals": {"aws:username": {"a": "b"}}}"#,
        r#"{"StringEquals": {"aws:username": [null]}}"#,
        r#"{"StringEquals": {"": "x"}}"#,
        r#"{"StringEquals": {"a": "x"}, "stringequals": {"b": "y"}}"#,
    ] {
        assert!(matches!(parse_error(condition), PolicyError::InvalidConditionBlock { .. }), "{condition}");
    }
    assert!(matches!(parse_error(r#"[]"#), PolicyError::InvalidFieldType { field: "Condition", .. }));
}

#[test]
fn scalar_values_of_any_json_type_compare_as_text() {
    let parsed = blocks(r#"{"NumericEquals": {"s3:max-keys": [5, "6"]}, "Bool": {"aws:SecureTransport": true}}"#);
    assert_eq!(parsed[0].entries[0].values, ["true"]);
    assert_eq!(parsed[1].entries[0].values, ["5", "6"]);
}

#[test]
fn cidr_parsing() {
    assert!(parse_cidr("0.0.0.0/0").is_some());
    assert!(parse_cidr("::/0").is_some());
    assert!(parse_cidr("2001:db8::/129").is_none());
    assert!(parse_cidr("10.0.0.1/").is_none());
    assert!(parse_cidr("10.0.0.1/+8").is_none());
    assert_eq!(parse_cidr(" 10.0.0.1 ").map(|(_, p)| p), Some(32));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn date_parser_never_panics(text in "\\PC{0,40}", shaped in "[0-9T:+.Zé-]{0,30}") {
            let _ = parse_date(&text);
            let _ = parse_date(&shaped);
            let _ = parse_date(&format!("2024-01-31T{shaped}"));
        }

        #[test]
        fn any_request_value_evaluates_without_panicking(
            kind in proptest::sample::select(OPERATOR_KINDS),
            request in "\\PC{0,30}",
            if_exists in any::<bool>(),
        ) {
            let value = match kind {
                OperatorKind::NumericEquals | OperatorKind::NumericLessThan => "5",
                OperatorKind::DateEquals | OperatorKind::DateGreaterThan => "2024-01-31T12:00:00Z",
                OperatorKind::Bool | OperatorKind::Null => "true",
                OperatorKind::IpAddress | OperatorKind::NotIpAddress => "10.0.0.0/8",
                _ => "a*b${aws:username}",
            };
            let if_exists = if_exists && kind != OperatorKind::Null;
            let operator = ConditionOperator { set: None, kind, if_exists };
            let block = ConditionBlock { operator, entries: vec![ConditionEntry { key: "k".into(), values: vec![value.into()] }] };
            let _ = block_holds(&block, &ctx(&[("k", &request)]), true);
        }
    }
}
