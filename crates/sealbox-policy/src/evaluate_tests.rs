use super::*;
use crate::builtin::{bucket_policy_is_public, default_key_policy};

const ACCOUNT: &str = "000000000000";
const ALICE: &str = "arn:aws:iam::000000000000:user/alice";
const BOB: &str = "arn:aws:iam::000000000000:user/bob";
const ROOT: &str = "arn:aws:iam::000000000000:root";
const SEED_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/KEY-ID";

/// Reference C.10, verbatim.
const SEED_POLICIES: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",
  "Resource":["arn:aws:s3:::BUCKET","arn:aws:s3:::BUCKET/*"],
  "Condition":{"Bool":{"aws:SecureTransport":"false"}}},
 {"Sid":"RequireSSEKMS","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
  "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}},
 {"Sid":"RequireKey","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
  "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption-aws-kms-key-id":
    "arn:aws:kms:us-east-1:111122223333:key/KEY-ID"}}}]}"#;

const ALLOW_ALL_S3: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

const DENY: Decision = Decision::Deny { explicit: true };
const IMPLICIT_DENY: Decision = Decision::Deny { explicit: false };

fn doc(text: &str) -> PolicyDocument {
    PolicyDocument::parse(text).expect("test policy parses")
}

fn request(principal: &str, action: &str, resource: &str) -> RequestContext {
    RequestContext::new(principal, ACCOUNT, action, resource)
}

/// An S3 request as sealbox's S3 layer would describe it.
fn s3_request(principal: &str, action: &str, resource: &str, https: bool) -> RequestContext {
    request(principal, action, resource).with_value("aws:SecureTransport", if https { "true" } else { "false" })
}

fn put(https: bool, sse: Option<&str>, key_id: Option<&str>) -> RequestContext {
    let mut ctx = s3_request(ALICE, "s3:PutObject", "arn:aws:s3:::BUCKET/report.pdf", https);
    if let Some(sse) = sse {
        ctx.add_value("s3:x-amz-server-side-encryption", sse);
    }
    if let Some(key_id) = key_id {
        ctx.add_value("s3:x-amz-server-side-encryption-aws-kms-key-id", key_id);
    }
    ctx
}

fn alice_s3(bucket_policy: &PolicyDocument, ctx: &RequestContext) -> Decision {
    s3_allowed(&[&doc(ALLOW_ALL_S3)], Some(bucket_policy), false, ctx)
}

#[test]
fn seed_policies_allow_only_https_puts_with_the_right_kms_key() {
    let seed = doc(SEED_POLICIES);
    assert_eq!(alice_s3(&seed, &put(true, Some("aws:kms"), Some(SEED_KEY))), Decision::Allow);
    assert_eq!(alice_s3(&seed, &put(false, Some("aws:kms"), Some(SEED_KEY))), DENY, "HTTP");
    assert_eq!(alice_s3(&seed, &put(true, None, None)), DENY, "no SSE header: StringNotEquals on an absent key");
    assert_eq!(alice_s3(&seed, &put(true, Some("AES256"), None)), DENY, "SSE-S3");
    assert_eq!(alice_s3(&seed, &put(true, Some("aws:kms"), None)), DENY, "KMS without a key id");
    let wrong_key = "arn:aws:kms:us-east-1:111122223333:key/OTHER";
    assert_eq!(alice_s3(&seed, &put(true, Some("aws:kms"), Some(wrong_key))), DENY, "wrong key");
    assert_eq!(alice_s3(&seed, &put(true, Some("aws:kms"), Some("KEY-ID"))), DENY, "bare key id is compared literally");
    assert_eq!(alice_s3(&seed, &put(true, Some("aws:kms:dsse"), Some(SEED_KEY))), DENY, "DSSE is not aws:kms");
}

#[test]
fn seed_policies_deny_every_http_request_but_only_puts_need_sse() {
    let seed = doc(SEED_POLICIES);
    let get = |https| s3_request(ALICE, "s3:GetObject", "arn:aws:s3:::BUCKET/report.pdf", https);
    assert_eq!(alice_s3(&seed, &get(true)), Decision::Allow);
    assert_eq!(alice_s3(&seed, &get(false)), DENY);
    let list = |https| s3_request(ALICE, "s3:ListBucket", "arn:aws:s3:::BUCKET", https);
    assert_eq!(alice_s3(&seed, &list(true)), Decision::Allow);
    assert_eq!(alice_s3(&seed, &list(false)), DENY, "the bucket ARN itself is covered too");
    // Another bucket is untouched by this bucket's policy.
    let other = s3_request(ALICE, "s3:PutObject", "arn:aws:s3:::OTHER/x", false);
    assert_eq!(alice_s3(&seed, &other), Decision::Allow);
    // Without aws:SecureTransport in the context, Bool is false and the deny does not fire:
    // sealbox must always fill the key in.
    let unset = request(ALICE, "s3:GetObject", "arn:aws:s3:::BUCKET/x");
    assert_eq!(alice_s3(&seed, &unset), Decision::Allow);
}

#[test]
fn seed_policies_bind_the_root_user_except_for_bucket_policy_management() {
    let seed = doc(SEED_POLICIES);
    let root = |action: &str, resource: &str, https| {
        s3_allowed(&[], Some(&seed), true, &s3_request(ROOT, action, resource, https))
    };
    assert_eq!(root("s3:GetObject", "arn:aws:s3:::BUCKET/x", true), Decision::Allow);
    assert_eq!(root("s3:GetObject", "arn:aws:s3:::BUCKET/x", false), DENY);
    assert_eq!(root("s3:PutObject", "arn:aws:s3:::BUCKET/x", true), DENY, "root still needs the SSE headers");
    for escape in ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"] {
        assert_eq!(root(escape, "arn:aws:s3:::BUCKET", false), Decision::Allow, "{escape}");
    }
    let alice = s3_allowed(
        &[&doc(ALLOW_ALL_S3)],
        Some(&seed),
        false,
        &s3_request(ALICE, "s3:DeleteBucketPolicy", "arn:aws:s3:::BUCKET", false),
    );
    assert_eq!(alice, DENY, "only root gets the lock-out escape");
}

#[test]
fn null_guard_blocks_only_wrong_headers_if_exists_does_not_in_a_deny() {
    // Deny only a *present* wrong header: StringNotEquals AND Null=false in one statement.
    let policy = doc(r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"WrongAlgorithm","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
         "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"},
                      "Null":{"s3:x-amz-server-side-encryption":"false"}}},
        {"Sid":"NoSseC","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
         "Condition":{"Null":{"s3:x-amz-server-side-encryption-customer-algorithm":"false"}}}]}"#);
    assert_eq!(alice_s3(&policy, &put(true, None, None)), Decision::Allow, "header-less PUT relies on the default");
    assert_eq!(alice_s3(&policy, &put(true, Some("aws:kms"), None)), Decision::Allow);
    assert_eq!(alice_s3(&policy, &put(true, Some("AES256"), None)), DENY);
    let sse_c = put(true, None, None).with_value("s3:x-amz-server-side-encryption-customer-algorithm", "AES256");
    assert_eq!(alice_s3(&policy, &sse_c), DENY);

    // IfExists makes an absent key satisfy the condition, so in a Deny it still denies the
    // header-less PUT (it only helps in Allow statements).
    let if_exists_deny = doc(r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
         "Condition":{"StringNotEqualsIfExists":{"s3:x-amz-server-side-encryption":"aws:kms"}}}]}"#);
    assert_eq!(alice_s3(&if_exists_deny, &put(true, None, None)), DENY);
    assert_eq!(alice_s3(&if_exists_deny, &put(true, Some("aws:kms"), None)), Decision::Allow);
    let if_exists_allow = doc(r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
         "Condition":{"StringEqualsIfExists":{"s3:x-amz-server-side-encryption":"aws:kms"}}}]}"#);
    let no_identity = |ctx: &RequestContext| s3_allowed(&[], Some(&if_exists_allow), false, ctx);
    assert_eq!(no_identity(&put(true, None, None)), Decision::Allow);
    assert_eq!(no_identity(&put(true, Some("aws:kms"), None)), Decision::Allow);
    assert_eq!(no_identity(&put(true, Some("AES256"), None)), IMPLICIT_DENY);
}

const APP_DB_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"ReadDbSecrets","Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],
   "Resource":["arn:aws:s3:::secrets-db","arn:aws:s3:::secrets-db/*"]},
  {"Sid":"UseK1","Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],
   "Resource":"arn:aws:kms:us-east-1:000000000000:key/K1"}]}"#;
const APP_DB: &str = "arn:aws:iam::000000000000:user/app-db";
const APP_WEB: &str = "arn:aws:iam::000000000000:user/app-web";
const K1: &str = "arn:aws:kms:us-east-1:000000000000:key/K1";
const K2: &str = "arn:aws:kms:us-east-1:000000000000:key/K2";

#[test]
fn per_category_secrets_user_reads_only_its_bucket() {
    let app_db = PolicyDocument::parse_for(APP_DB_POLICY, PolicyKind::Identity).unwrap();
    let s3 = |principal: &str, action: &str, resource: &str| {
        s3_allowed(&[&app_db], None, false, &s3_request(principal, action, resource, true))
    };
    assert_eq!(s3(APP_DB, "s3:GetObject", "arn:aws:s3:::secrets-db/password"), Decision::Allow);
    assert_eq!(s3(APP_DB, "s3:ListBucket", "arn:aws:s3:::secrets-db"), Decision::Allow);
    assert_eq!(s3(APP_DB, "s3:GetObject", "arn:aws:s3:::secrets-web/password"), IMPLICIT_DENY);
    assert_eq!(s3(APP_DB, "s3:GetObject", "arn:aws:s3:::secrets-dbx/password"), IMPLICIT_DENY);
    assert_eq!(s3(APP_DB, "s3:PutObject", "arn:aws:s3:::secrets-db/password"), IMPLICIT_DENY);
    assert_eq!(s3(APP_DB, "s3:DeleteObject", "arn:aws:s3:::secrets-db/password"), IMPLICIT_DENY);
    assert_eq!(s3(APP_DB, "s3:ListAllMyBuckets", "*"), IMPLICIT_DENY);
    let web = s3_allowed(&[], None, false, &s3_request(APP_WEB, "s3:GetObject", "arn:aws:s3:::secrets-db/p", true));
    assert_eq!(web, IMPLICIT_DENY, "a user without policies gets nothing");
}

#[test]
fn per_category_secrets_user_uses_only_its_key() {
    let app_db = doc(APP_DB_POLICY);
    let default = doc(&default_key_policy(ACCOUNT));
    let kms = |principal: &str, action: &str, key: &str, identity: &[&PolicyDocument]| {
        kms_allowed(&default, identity, &request(principal, action, key))
    };
    assert_eq!(kms(APP_DB, "kms:Decrypt", K1, &[&app_db]), Decision::Allow);
    assert_eq!(kms(APP_DB, "kms:GenerateDataKey", K1, &[&app_db]), Decision::Allow);
    assert_eq!(kms(APP_DB, "kms:Decrypt", K2, &[&app_db]), IMPLICIT_DENY);
    assert_eq!(kms(APP_DB, "kms:Encrypt", K1, &[&app_db]), IMPLICIT_DENY);
    assert_eq!(kms(APP_DB, "kms:ScheduleKeyDeletion", K1, &[&app_db]), IMPLICIT_DENY);
    assert_eq!(kms(APP_WEB, "kms:Decrypt", K1, &[]), IMPLICIT_DENY);
}

#[test]
fn default_key_policy_delegates_to_iam_and_allows_root() {
    let default = PolicyDocument::parse_for(&default_key_policy(ACCOUNT), PolicyKind::Resource).unwrap();
    for action in ["kms:Decrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"] {
        assert_eq!(kms_allowed(&default, &[], &request(ROOT, action, K1)), Decision::Allow, "root {action}");
    }
    let identity = doc(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#);
    assert_eq!(kms_allowed(&default, &[&identity], &request(ALICE, "kms:Decrypt", K1)), Decision::Allow);
    assert_eq!(kms_allowed(&default, &[], &request(ALICE, "kms:Decrypt", K1)), IMPLICIT_DENY);
    let other_account = RequestContext::new("arn:aws:iam::111111111111:user/eve", "111111111111", "kms:Decrypt", K1);
    assert_eq!(kms_allowed(&default, &[&identity], &other_account), IMPLICIT_DENY);
    let anonymous = RequestContext::anonymous("kms:Decrypt", K1);
    assert_eq!(kms_allowed(&default, &[&identity], &anonymous), IMPLICIT_DENY);
}

#[test]
fn key_policy_without_delegation_ignores_identity_policies() {
    let key_policy = doc(&format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"{ROOT}"}},"Action":"kms:*","Resource":"*"}},
        {{"Sid":"AliceUse","Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}]}}"#
    ));
    let identity = doc(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#);
    assert_eq!(kms_allowed(&key_policy, &[], &request(ALICE, "kms:Decrypt", K1)), Decision::Allow, "key policy alone");
    assert_eq!(
        kms_allowed(&key_policy, &[&identity], &request(ALICE, "kms:DisableKey", K1)),
        Decision::Allow,
        "root statement delegates the other actions to IAM"
    );
    let bob_only_named = doc(&format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"kms:*","Resource":"*"}}]}}"#
    ));
    assert_eq!(
        kms_allowed(&bob_only_named, &[&identity], &request(BOB, "kms:Decrypt", K1)),
        IMPLICIT_DENY,
        "no account statement: IAM permissions do not count"
    );
    assert_eq!(
        kms_allowed(&bob_only_named, &[], &request(ROOT, "kms:PutKeyPolicy", K1)),
        IMPLICIT_DENY,
        "root is locked out by a key policy that does not name it"
    );
}

#[test]
fn key_policy_deny_binds_everyone_and_conditions_see_kms_keys() {
    let key_policy = doc(&format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"{ROOT}"}},"Action":"kms:*","Resource":"*"}},
        {{"Sid":"OnlyViaS3","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
          "Condition":{{"StringNotEquals":{{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}}}},
        {{"Sid":"NeedContext","Effect":"Deny","Principal":"*","Action":"kms:GenerateDataKey","Resource":"*",
          "Condition":{{"Null":{{"kms:EncryptionContext:aws:s3:arn":"true"}}}}}}]}}"#
    ));
    let direct = request(ROOT, "kms:Decrypt", K1);
    assert_eq!(kms_allowed(&key_policy, &[], &direct), DENY);
    let via_s3 = request(ROOT, "kms:Decrypt", K1).with_value("kms:ViaService", "s3.us-east-1.amazonaws.com");
    assert_eq!(kms_allowed(&key_policy, &[], &via_s3), Decision::Allow);
    let no_context = request(ROOT, "kms:GenerateDataKey", K1);
    assert_eq!(kms_allowed(&key_policy, &[], &no_context), DENY);
    let with_context = no_context.with_value("kms:EncryptionContext:aws:s3:arn", "arn:aws:s3:::b/k");
    assert_eq!(kms_allowed(&key_policy, &[], &with_context), Decision::Allow);
    let identity_deny = doc(r#"{"Statement":[{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*"}]}"#);
    assert_eq!(kms_allowed(&key_policy, &[&identity_deny], &request(ALICE, "kms:Encrypt", K1)), DENY);
}

#[test]
fn explicit_deny_wins_over_any_allow() {
    let allow = doc(ALLOW_ALL_S3);
    let deny = doc(r#"{"Statement":[{"Sid":"NoDeletes","Effect":"Deny","Action":"s3:Delete*","Resource":"*"}]}"#);
    let ctx = request(ALICE, "s3:DeleteObject", "arn:aws:s3:::b/k");
    for order in [[&allow, &deny], [&deny, &allow]] {
        let policies: Vec<_> = order.iter().map(|p| (*p, PolicyKind::Identity)).collect();
        assert_eq!(evaluate(&ctx, &policies), DENY);
    }
    assert_eq!(
        evaluate(
            &request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k"),
            &[(&allow, PolicyKind::Identity), (&deny, PolicyKind::Identity)]
        ),
        Decision::Allow
    );
    let detailed = evaluate_detailed(&ctx, &[(&allow, PolicyKind::Identity), (&deny, PolicyKind::Identity)]);
    assert_eq!(
        detailed.explicit_deny,
        Some(MatchedStatement {
            policy_index: 1,
            kind: PolicyKind::Identity,
            statement_index: 0,
            sid: Some("NoDeletes".into())
        })
    );
    let bucket_allow = doc(&format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"s3:*","Resource":"arn:aws:s3:::b/*"}}]}}"#
    ));
    assert_eq!(s3_allowed(&[&deny], Some(&bucket_allow), false, &ctx), DENY, "identity deny beats bucket allow");
    assert_eq!(
        s3_allowed(&[&deny], Some(&bucket_allow), true, &request(ROOT, "s3:DeleteObject", "arn:aws:s3:::b/k")),
        Decision::Allow,
        "identity policies cannot restrict root"
    );
    assert_eq!(evaluate(&ctx, &[]), IMPLICIT_DENY);
}

#[test]
fn not_action_and_not_resource() {
    let everything_but_iam =
        doc(r#"{"Statement":[{"Effect":"Allow","NotAction":["iam:*","s3:Delete*"],"Resource":"*"}]}"#);
    let ids = |ctx: &RequestContext| evaluate(ctx, &[(&everything_but_iam, PolicyKind::Identity)]);
    assert_eq!(ids(&request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k")), Decision::Allow);
    assert_eq!(ids(&request(ALICE, "kms:Decrypt", K1)), Decision::Allow);
    assert_eq!(ids(&request(ALICE, "iam:CreateUser", "arn:aws:iam::000000000000:user/x")), IMPLICIT_DENY);
    assert_eq!(ids(&request(ALICE, "s3:DeleteObject", "arn:aws:s3:::b/k")), IMPLICIT_DENY);

    let confine = doc(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},
        {"Effect":"Deny","Action":"s3:*","NotResource":["arn:aws:s3:::team","arn:aws:s3:::team/*"]}]}"#);
    let confined =
        |resource: &str| evaluate(&request(ALICE, "s3:GetObject", resource), &[(&confine, PolicyKind::Identity)]);
    assert_eq!(confined("arn:aws:s3:::team/doc"), Decision::Allow);
    assert_eq!(confined("arn:aws:s3:::team"), Decision::Allow);
    assert_eq!(confined("arn:aws:s3:::other/doc"), DENY);
}

#[test]
fn actions_match_case_insensitively_resources_case_sensitively() {
    let policy = doc(
        r#"{"Statement":[{"Effect":"Allow","Action":["S3:GETOBJECT","s3:list?ucket"],"Resource":["arn:aws:s3:::Bucket/*","arn:aws:s3:::bucket"]}]}"#,
    );
    let check =
        |action: &str, resource: &str| evaluate(&request(ALICE, action, resource), &[(&policy, PolicyKind::Identity)]);
    assert_eq!(check("s3:GetObject", "arn:aws:s3:::Bucket/k"), Decision::Allow);
    assert_eq!(check("s3:getobject", "arn:aws:s3:::Bucket/k"), Decision::Allow);
    assert_eq!(check("s3:GetObject", "arn:aws:s3:::bucket/k"), IMPLICIT_DENY);
    assert_eq!(check("s3:ListBucket", "arn:aws:s3:::bucket"), Decision::Allow);
    assert_eq!(check("s3:ListBucketVersions", "arn:aws:s3:::bucket"), IMPLICIT_DENY);
    assert_eq!(check("s3:GetObjectTagging", "arn:aws:s3:::Bucket/k"), IMPLICIT_DENY);
}

#[test]
fn wildcards_in_resources() {
    let policy = doc(
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::logs-????/*","arn:aws:s3:::data/*.csv"]}]}"#,
    );
    let check =
        |resource: &str| evaluate(&request(ALICE, "s3:GetObject", resource), &[(&policy, PolicyKind::Identity)]);
    assert_eq!(check("arn:aws:s3:::logs-2024/a"), Decision::Allow);
    assert_eq!(check("arn:aws:s3:::logs-24/a"), IMPLICIT_DENY);
    assert_eq!(check("arn:aws:s3:::data/x/y.csv"), Decision::Allow);
    assert_eq!(check("arn:aws:s3:::data/x/y.csv.gz"), IMPLICIT_DENY);
}

#[test]
fn policy_variables_scope_users_to_their_home() {
    let text = |version: &str| {
        format!(
            r#"{{"Version":"{version}","Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${{aws:username}}/*"}}]}}"#
        )
    };
    let modern = doc(&text("2012-10-17"));
    let old = doc(&text("2008-10-17"));
    let check = |policy: &PolicyDocument, principal: &str, resource: &str| {
        evaluate(&request(principal, "s3:GetObject", resource), &[(policy, PolicyKind::Identity)])
    };
    assert_eq!(check(&modern, ALICE, "arn:aws:s3:::home/alice/notes"), Decision::Allow);
    assert_eq!(check(&modern, ALICE, "arn:aws:s3:::home/bob/notes"), IMPLICIT_DENY);
    assert_eq!(check(&modern, BOB, "arn:aws:s3:::home/bob/notes"), Decision::Allow);
    assert_eq!(check(&modern, ROOT, "arn:aws:s3:::home//notes"), IMPLICIT_DENY, "root has no aws:username");
    assert_eq!(check(&old, ALICE, "arn:aws:s3:::home/alice/notes"), IMPLICIT_DENY, "2008-10-17: no substitution");
    assert_eq!(check(&old, ALICE, "arn:aws:s3:::home/${aws:username}/notes"), Decision::Allow);
    let star_user = request("arn:aws:iam::000000000000:user/*", "s3:GetObject", "arn:aws:s3:::home/alice/notes");
    assert_eq!(evaluate(&star_user, &[(&modern, PolicyKind::Identity)]), IMPLICIT_DENY, "a user named * is literal");
}

#[test]
fn resource_policy_principals() {
    let allow_to = |principal: &str| {
        doc(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}]}}"#
        ))
    };
    let read = |policy: &PolicyDocument, ctx: &RequestContext| s3_allowed(&[], Some(policy), false, ctx);
    let alice = request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k");
    let bob = request(BOB, "s3:GetObject", "arn:aws:s3:::b/k");
    let anonymous = RequestContext::anonymous("s3:GetObject", "arn:aws:s3:::b/k");
    let stranger =
        RequestContext::new("arn:aws:iam::111111111111:user/eve", "111111111111", "s3:GetObject", "arn:aws:s3:::b/k");

    let everyone = allow_to(r#""*""#);
    let aws_everyone = allow_to(r#"{"AWS":"*"}"#);
    for policy in [&everyone, &aws_everyone] {
        for ctx in [&alice, &anonymous, &stranger] {
            assert_eq!(read(policy, ctx), Decision::Allow);
        }
    }
    let named = allow_to(&format!(r#"{{"AWS":["{ALICE}"]}}"#));
    assert_eq!(read(&named, &alice), Decision::Allow);
    assert_eq!(read(&named, &bob), IMPLICIT_DENY);
    assert_eq!(read(&named, &anonymous), IMPLICIT_DENY);

    // Naming the account delegates to identity policies: users still need their own Allow.
    for account in [format!(r#"{{"AWS":"{ACCOUNT}"}}"#), format!(r#"{{"AWS":"{ROOT}"}}"#)] {
        let account_policy = allow_to(&account);
        assert_eq!(read(&account_policy, &alice), IMPLICIT_DENY);
        let detailed = evaluate_detailed(&alice, &[(&account_policy, PolicyKind::Resource)]);
        assert!(detailed.resource_account_allow && !detailed.resource_allow);
        assert_eq!(read(&account_policy, &stranger), IMPLICIT_DENY);
        let root = request(ROOT, "s3:GetObject", "arn:aws:s3:::b/k");
        assert!(
            evaluate_detailed(&root, &[(&account_policy, PolicyKind::Resource)]).resource_allow,
            "root is the account"
        );
    }
    let service = allow_to(r#"{"Service":"cloudtrail.amazonaws.com"}"#);
    assert_eq!(read(&service, &alice), IMPLICIT_DENY);
    let no_principal = doc(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#);
    assert_eq!(evaluate(&alice, &[(&no_principal, PolicyKind::Resource)]), IMPLICIT_DENY);
}

#[test]
fn account_wide_deny_in_a_resource_policy_binds_users_of_the_account() {
    let deny_account = doc(&format!(
        r#"{{"Statement":[{{"Effect":"Deny","Principal":{{"AWS":"{ACCOUNT}"}},"Action":"s3:DeleteBucket","Resource":"*"}}]}}"#
    ));
    let ctx = request(ALICE, "s3:DeleteBucket", "arn:aws:s3:::b");
    assert_eq!(s3_allowed(&[&doc(ALLOW_ALL_S3)], Some(&deny_account), false, &ctx), DENY);
}

#[test]
fn not_principal_excludes_only_named_principals() {
    let policy = doc(&format!(
        r#"{{"Statement":[{{"Effect":"Deny","NotPrincipal":{{"AWS":["{ALICE}","{ROOT}"]}},"Action":"s3:*","Resource":"*"}}]}}"#
    ));
    let identity = doc(ALLOW_ALL_S3);
    let check = |principal: &str| {
        s3_allowed(&[&identity], Some(&policy), false, &request(principal, "s3:GetObject", "arn:aws:s3:::b/k"))
    };
    assert_eq!(check(ALICE), Decision::Allow);
    assert_eq!(check(BOB), DENY, "naming the account root does not exempt its users");
    assert_eq!(
        s3_allowed(&[], Some(&policy), false, &RequestContext::anonymous("s3:GetObject", "arn:aws:s3:::b/k")),
        DENY
    );
}

#[test]
fn conditions_on_allow_statements() {
    let policy = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
        "Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*"]},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
    );
    let list = |prefix: Option<&str>, ip: &str| {
        let mut ctx = request(ALICE, "s3:ListBucket", "arn:aws:s3:::b").with_value("aws:SourceIp", ip);
        if let Some(prefix) = prefix {
            ctx.add_value("s3:prefix", prefix);
        }
        evaluate(&ctx, &[(&policy, PolicyKind::Identity)])
    };
    assert_eq!(list(Some("home/alice/x"), "10.1.1.1"), Decision::Allow);
    assert_eq!(list(Some("home/alice/x"), "192.168.0.1"), IMPLICIT_DENY);
    assert_eq!(list(Some("home/bob/x"), "10.1.1.1"), IMPLICIT_DENY);
    assert_eq!(list(None, "10.1.1.1"), IMPLICIT_DENY);
}

#[test]
fn time_window_conditions() {
    let policy = doc(r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
        "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2024-02-01T00:00:00Z"}}}]}"#);
    let at = |time: &str| {
        evaluate(
            &request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k").with_value("aws:CurrentTime", time),
            &[(&policy, PolicyKind::Identity)],
        )
    };
    assert_eq!(at("2024-01-15T10:00:00Z"), Decision::Allow);
    assert_eq!(at("2024-02-01T00:00:01Z"), IMPLICIT_DENY);
    assert_eq!(at("2023-12-31T23:59:59Z"), IMPLICIT_DENY);
}

#[test]
fn default_key_policy_text_is_aws_shaped() {
    let text = default_key_policy("123456789012");
    assert_eq!(
        text,
        "{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {\n      \"AWS\" : \"arn:aws:iam::123456789012:root\"\n    },\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  } ]\n}"
    );
    let parsed = doc(&text);
    assert_eq!(parsed.id.as_deref(), Some("key-default-1"));
    assert_eq!(parsed.statements[0].sid.as_deref(), Some("Enable IAM User Permissions"));
    assert!(!bucket_policy_is_public(&parsed));
}

#[test]
fn public_bucket_policies() {
    let statement = |principal: &str, condition: &str| {
        doc(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"{condition}}}]}}"#
        ))
    };
    assert!(bucket_policy_is_public(&statement(r#""*""#, "")));
    assert!(bucket_policy_is_public(&statement(r#"{"AWS":"*"}"#, "")));
    assert!(bucket_policy_is_public(&statement(r#"{"AWS":["arn:aws:iam::000000000000:user/alice","*"]}"#, "")));
    assert!(!bucket_policy_is_public(&statement(r#"{"AWS":"000000000000"}"#, "")));
    assert!(!bucket_policy_is_public(&statement(r#"{"AWS":"arn:aws:iam::000000000000:user/alice"}"#, "")));
    let restricted = [
        r#","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        r#","Condition":{"StringEquals":{"aws:PrincipalAccount":"000000000000"}}"#,
        r#","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::000000000000:user/alice"}}"#,
        r#","Condition":{"StringEquals":{"AWS:SourceVpce":"vpce-1a2b3c4d"}}"#,
    ];
    for condition in restricted {
        assert!(!bucket_policy_is_public(&statement(r#""*""#, condition)), "{condition}");
    }
    let still_public = [
        r#","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/1"}}"#,
        r#","Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        r#","Condition":{"IpAddressIfExists":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        r#","Condition":{"StringLike":{"aws:PrincipalAccount":"*"}}"#,
        r#","Condition":{"Bool":{"aws:SecureTransport":"true"}}"#,
        r#","Condition":{"StringEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}"#,
        r#","Condition":{"ForAllValues:StringEquals":{"aws:PrincipalAccount":"000000000000"}}"#,
    ];
    for condition in still_public {
        assert!(bucket_policy_is_public(&statement(r#""*""#, condition)), "{condition}");
    }
    let not_principal = doc(
        r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"000000000000"},"Action":"s3:GetObject","Resource":"*"}]}"#,
    );
    assert!(bucket_policy_is_public(&not_principal));
    assert!(!bucket_policy_is_public(&doc(SEED_POLICIES)), "deny statements never make a policy public");
}

/// `cargo test -p sealbox-policy --release -- --ignored --nocapture evaluation_speed`
#[test]
#[ignore = "timing, not a check"]
fn evaluation_speed() {
    let seed = doc(SEED_POLICIES);
    let identity = doc(APP_DB_POLICY);
    let allow_all = doc(ALLOW_ALL_S3);
    let ctx = put(true, Some("aws:kms"), Some(SEED_KEY));
    let rounds = 100_000;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        assert!(s3_allowed(&[&identity, &allow_all], Some(&seed), false, &ctx).is_allowed());
    }
    let per_call = started.elapsed() / rounds;
    println!("s3_allowed with the C.10 bucket policy and two identity policies: {per_call:?} per call");
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        let _ = PolicyDocument::parse(SEED_POLICIES);
    }
    println!("parse of the C.10 policy: {:?} per call", started.elapsed() / rounds);
}
