//! Grants: what one grant allows, its encryption-context constraints, the "equally or more
//! restrictive" rule for grants made through a grant, and grant tokens. Pure logic; the store
//! keeps the rows and the server combines "a grant allows" with key and IAM policies (an explicit
//! Deny in either still wins, as in AWS).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

use crate::spec::GrantOperation;
use crate::KmsError;

/// Encryption-context constraints (`Constraints` of CreateGrant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantConstraints {
    /// The request's context must contain these pairs (and may have more).
    pub subset: Option<BTreeMap<String, String>>,
    /// The request's context must be exactly these pairs.
    pub equals: Option<BTreeMap<String, String>>,
}

/// One grant, as stored and as ListGrants shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// 64 hex characters, like AWS's grant ids.
    pub grant_id: String,
    pub key_id: String,
    pub name: Option<String>,
    pub created: i64,
    pub grantee: String,
    pub retiring: Option<String>,
    pub operations: Vec<GrantOperation>,
    pub constraints: Option<GrantConstraints>,
}

/// Operations whose requests carry an encryption context; the constraints apply to them only
/// ("Grants with grant constraints can include the DescribeKey and RetireGrant operations, but
/// the constraint doesn't apply to these operations").
pub fn takes_context(op: GrantOperation) -> bool {
    use GrantOperation as G;
    matches!(
        op,
        G::Decrypt
            | G::Encrypt
            | G::GenerateDataKey
            | G::GenerateDataKeyWithoutPlaintext
            | G::ReEncryptFrom
            | G::ReEncryptTo
            | G::GenerateDataKeyPair
            | G::GenerateDataKeyPairWithoutPlaintext
    )
}

impl GrantConstraints {
    pub fn is_empty(&self) -> bool {
        self.subset.is_none() && self.equals.is_none()
    }

    /// Whether a request's encryption context satisfies the constraints (case-sensitive).
    pub fn hold_for(&self, context: &BTreeMap<String, String>) -> bool {
        let subset_ok = self.subset.as_ref().is_none_or(|s| s.iter().all(|(k, v)| context.get(k) == Some(v)));
        let equals_ok = self.equals.as_ref().is_none_or(|e| e == context);
        subset_ok && equals_ok
    }

    /// Whether constraints `self` (of a grant being created) are equally or more restrictive
    /// than `parent`'s: every context `self` admits, `parent` admits too.
    pub fn at_least_as_strict_as(&self, parent: &GrantConstraints) -> bool {
        // The contexts `self` admits: with Equals, exactly one; else all supersets of Subset.
        match (&self.equals, &parent.equals) {
            (Some(mine), _) => parent.hold_for(mine) && self.hold_for(mine),
            (None, Some(_)) => false,
            (None, None) => match (&self.subset, &parent.subset) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(mine), Some(theirs)) => theirs.iter().all(|(k, v)| mine.get(k) == Some(v)),
            },
        }
    }
}

impl Grant {
    /// Whether this grant lets `principal` perform `op` with a request context `context`
    /// (`None` for operations without one).
    pub fn allows(&self, principal: &str, op: GrantOperation, context: Option<&BTreeMap<String, String>>) -> bool {
        if self.grantee != principal || !self.operations.contains(&op) {
            return false;
        }
        match &self.constraints {
            Some(c) if takes_context(op) => c.hold_for(context.unwrap_or(&BTreeMap::new())),
            _ => true,
        }
    }

    /// Whether this grant lets `principal` create a grant with `operations` and `constraints`
    /// (the child must be a subset, equally or more constrained).
    pub fn allows_child(
        &self,
        principal: &str,
        operations: &[GrantOperation],
        constraints: Option<&GrantConstraints>,
    ) -> bool {
        if self.grantee != principal || !self.operations.contains(&GrantOperation::CreateGrant) {
            return false;
        }
        if !operations.iter().all(|o| self.operations.contains(o)) {
            return false;
        }
        match &self.constraints {
            None => true,
            Some(parent) => constraints.is_some_and(|c| c.at_least_as_strict_as(parent)),
        }
    }

    /// Who may retire the grant besides those a policy lets: its retiring principal, and its
    /// grantee when the grant includes RetireGrant (the account root is added by the caller).
    pub fn may_retire(&self, principal: &str) -> bool {
        self.retiring.as_deref() == Some(principal)
            || (self.grantee == principal && self.operations.contains(&GrantOperation::RetireGrant))
    }
}

const TOKEN_MAGIC: &[u8] = b"SBGT\x01";

/// A grant token: names the grant (its id) plus 16 random bytes, so every CreateGrant call
/// returns a distinct token for the same grant, as AWS does. Tokens carry no authority: the
/// grant row does, and grants take effect at once here, so a token is evidence, never required.
pub fn grant_token(grant_id: &str) -> Result<String, KmsError> {
    let id = hex::decode(grant_id).map_err(|_| KmsError::Internal("grant id is not hex".into()))?;
    let nonce = crate::root::random::<16>()?;
    Ok(B64URL.encode([TOKEN_MAGIC, &id, &nonce].concat()))
}

/// The grant id a token names; InvalidGrantTokenException for anything sealbox did not issue.
pub fn grant_id_of_token(token: &str) -> Result<String, KmsError> {
    let invalid = || KmsError::InvalidGrantToken("The grant token is not valid.".into());
    let raw = B64URL.decode(token).map_err(|_| invalid())?;
    if raw.len() != TOKEN_MAGIC.len() + 32 + 16 || !raw.starts_with(TOKEN_MAGIC) {
        return Err(invalid());
    }
    Ok(hex::encode(&raw[TOKEN_MAGIC.len()..TOKEN_MAGIC.len() + 32]))
}

/// A grant id of AWS's shape (64 hex); InvalidGrantIdException otherwise.
pub fn check_grant_id(id: &str) -> Result<(), KmsError> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(KmsError::InvalidGrantId(format!("Invalid grant ID: {id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GrantOperation as G;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn grant(ops: &[GrantOperation], constraints: Option<GrantConstraints>) -> Grant {
        Grant {
            grant_id: "a".repeat(64),
            key_id: "k".into(),
            name: None,
            created: 0,
            grantee: "arn:aws:iam::000000000000:user/alice".into(),
            retiring: Some("arn:aws:iam::000000000000:user/admin".into()),
            operations: ops.to_vec(),
            constraints,
        }
    }

    const ALICE: &str = "arn:aws:iam::000000000000:user/alice";

    /// The worked example of AWS's grant-constraints guide.
    #[test]
    fn subset_and_equals_as_the_aws_guide_shows() {
        let c = GrantConstraints {
            subset: Some(ctx(&[("Department", "Finance"), ("Classification", "Public")])),
            equals: None,
        };
        assert!(c.hold_for(&ctx(&[("Classification", "Public"), ("Department", "Finance")])));
        assert!(c.hold_for(&ctx(&[
            ("Customer", "12345"),
            ("Department", "Finance"),
            ("Classification", "Public"),
            ("Purpose", "Test")
        ])));
        assert!(!c.hold_for(&ctx(&[("Department", "Finance")])));
        assert!(!c.hold_for(&ctx(&[("department", "finance"), ("classification", "public")])));
        assert!(!c.hold_for(&ctx(&[("Classification", "Public"), ("Customer", "12345")])));
        let e = GrantConstraints { subset: None, equals: Some(ctx(&[("a", "1")])) };
        assert!(e.hold_for(&ctx(&[("a", "1")])));
        assert!(!e.hold_for(&ctx(&[("a", "1"), ("b", "2")])));
        assert!(!e.hold_for(&ctx(&[])));
    }

    #[test]
    fn a_grant_allows_its_grantee_its_operations_under_its_constraints() {
        let g = grant(
            &[G::Decrypt, G::DescribeKey],
            Some(GrantConstraints { subset: Some(ctx(&[("app", "x")])), equals: None }),
        );
        assert!(g.allows(ALICE, G::Decrypt, Some(&ctx(&[("app", "x"), ("more", "y")]))));
        assert!(!g.allows(ALICE, G::Decrypt, Some(&ctx(&[("app", "y")]))));
        assert!(!g.allows(ALICE, G::Decrypt, None));
        assert!(g.allows(ALICE, G::DescribeKey, None), "constraints do not apply to DescribeKey");
        assert!(!g.allows(ALICE, G::Encrypt, Some(&ctx(&[("app", "x")]))));
        assert!(!g.allows("arn:aws:iam::000000000000:user/bob", G::Decrypt, Some(&ctx(&[("app", "x")]))));
    }

    #[test]
    fn grants_made_through_a_grant_are_never_wider() {
        let parent = grant(
            &[G::CreateGrant, G::Decrypt, G::GenerateDataKey],
            Some(GrantConstraints { subset: Some(ctx(&[("a", "1")])), equals: None }),
        );
        let sub = |pairs: &[(&str, &str)]| GrantConstraints { subset: Some(ctx(pairs)), equals: None };
        let eq = |pairs: &[(&str, &str)]| GrantConstraints { subset: None, equals: Some(ctx(pairs)) };
        assert!(parent.allows_child(ALICE, &[G::Decrypt], Some(&sub(&[("a", "1")]))));
        assert!(parent.allows_child(ALICE, &[G::Decrypt], Some(&sub(&[("a", "1"), ("b", "2")]))));
        assert!(parent.allows_child(ALICE, &[G::Decrypt], Some(&eq(&[("a", "1"), ("b", "2")]))));
        assert!(!parent.allows_child(ALICE, &[G::Decrypt], Some(&eq(&[("b", "2")]))));
        assert!(!parent.allows_child(ALICE, &[G::Decrypt], None), "dropping the constraint widens");
        assert!(!parent.allows_child(ALICE, &[G::Encrypt], Some(&sub(&[("a", "1")]))), "not a subset");
        let eq_parent = grant(&[G::CreateGrant, G::Decrypt], Some(eq(&[("a", "1")])));
        assert!(eq_parent.allows_child(ALICE, &[G::Decrypt], Some(&eq(&[("a", "1")]))));
        assert!(
            !eq_parent.allows_child(ALICE, &[G::Decrypt], Some(&sub(&[("a", "1")]))),
            "Subset is wider than Equals"
        );
        let unconstrained = grant(&[G::CreateGrant, G::Decrypt], None);
        assert!(unconstrained.allows_child(ALICE, &[G::Decrypt], None));
        assert!(!grant(&[G::Decrypt], None).allows_child(ALICE, &[G::Decrypt], None), "needs CreateGrant");
    }

    #[test]
    fn retiring() {
        let g = grant(&[G::Decrypt], None);
        assert!(g.may_retire("arn:aws:iam::000000000000:user/admin"));
        assert!(!g.may_retire(ALICE), "grantee without RetireGrant");
        assert!(grant(&[G::Decrypt, G::RetireGrant], None).may_retire(ALICE));
    }

    #[test]
    fn tokens_name_their_grant_and_differ_each_time() {
        let id = "0123456789abcdef".repeat(4);
        let (t1, t2) = (grant_token(&id).unwrap(), grant_token(&id).unwrap());
        assert_ne!(t1, t2);
        assert_eq!(grant_id_of_token(&t1).unwrap(), id);
        for bad in ["", "nope", &t1[..t1.len() - 2], "AAAA"] {
            assert!(matches!(grant_id_of_token(bad), Err(KmsError::InvalidGrantToken(_))), "{bad}");
        }
        assert!(check_grant_id(&id).is_ok());
        assert!(matches!(check_grant_id("xyz"), Err(KmsError::InvalidGrantId(_))));
    }
}
