//! What a request looks like to the policy engine: who, what, on which resource, and the condition
//! key values the S3 / KMS layer filled in.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// One request to authorise.
///
/// Condition keys are stored lower-cased because IAM compares key names case-insensitively.
/// A key with an empty value list counts as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// `arn:aws:iam::000000000000:user/alice`, `arn:aws:iam::000000000000:root`, or
    /// [`RequestContext::ANONYMOUS`] for unsigned requests.
    pub principal_arn: String,
    /// Account of the principal (empty for anonymous requests).
    pub account_id: String,
    /// `s3:GetObject`, `kms:Decrypt`, ...
    pub action: String,
    /// `arn:aws:s3:::bucket/key`, `arn:aws:s3:::bucket`, `arn:aws:kms:us-east-1:000000000000:key/<id>`.
    pub resource: String,
    values: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    /// The principal name sealbox uses for unsigned (anonymous) requests.
    pub const ANONYMOUS: &'static str = "anonymous";

    pub fn new(
        principal_arn: impl Into<String>,
        account_id: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        RequestContext {
            principal_arn: principal_arn.into(),
            account_id: account_id.into(),
            action: action.into(),
            resource: resource.into(),
            values: BTreeMap::new(),
        }
    }

    /// An unsigned request: matches only `"*"` principals.
    pub fn anonymous(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self::new(Self::ANONYMOUS, "", action, resource)
    }

    /// Builder form of [`RequestContext::add_value`].
    pub fn with_value(mut self, key: &str, value: impl Into<String>) -> Self {
        self.add_value(key, value);
        self
    }

    /// Adds one value to a (possibly multi-valued) condition key.
    pub fn add_value(&mut self, key: &str, value: impl Into<String>) {
        self.values.entry(key.to_ascii_lowercase()).or_default().push(value.into());
    }

    /// Replaces all values of a condition key.
    pub fn set_values(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    pub fn remove_value(&mut self, key: &str) {
        self.values.remove(&key.to_ascii_lowercase());
    }

    /// The explicitly set values of a key (case-insensitive name).
    pub fn values(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }

    pub fn is_root(&self) -> bool {
        !self.account_id.is_empty() && self.principal_arn == root_arn(&self.account_id)
    }

    /// Values of a key as the condition evaluator sees them: explicit values first, then the
    /// principal keys IAM always knows (aws:PrincipalArn, aws:PrincipalAccount, aws:username,
    /// aws:PrincipalType) derived from the principal when the caller did not set them.
    pub(crate) fn lookup(&self, lower_key: &str) -> Cow<'_, [String]> {
        if let Some(values) = self.values.get(lower_key) {
            return Cow::Borrowed(values.as_slice());
        }
        let anonymous = self.principal_arn == Self::ANONYMOUS || self.principal_arn.is_empty();
        let derived = match lower_key {
            "aws:principalarn" if !anonymous => Some(self.principal_arn.clone()),
            "aws:principalaccount" if !anonymous && !self.account_id.is_empty() => Some(self.account_id.clone()),
            "aws:username" => self.user_name().map(str::to_string),
            "aws:principaltype" if anonymous => Some("Anonymous".to_string()),
            "aws:principaltype" if self.is_root() => Some("Account".to_string()),
            "aws:principaltype" if self.user_name().is_some() => Some("User".to_string()),
            _ => None,
        };
        Cow::Owned(derived.into_iter().collect())
    }

    /// Single value of a key, for policy-variable substitution (multi-valued keys never substitute).
    pub(crate) fn single_value(&self, lower_key: &str) -> Option<String> {
        match self.lookup(lower_key).as_ref() {
            [single] => Some(single.clone()),
            _ => None,
        }
    }

    /// `alice` from `arn:aws:iam::000000000000:user/path/alice`.
    fn user_name(&self) -> Option<&str> {
        let resource = self.principal_arn.splitn(6, ':').nth(5)?;
        let path = resource.strip_prefix("user/")?;
        path.rsplit('/').next().filter(|name| !name.is_empty())
    }
}

/// `arn:aws:iam::<account>:root`, the principal that stands for a whole account.
pub fn root_arn(account_id: &str) -> String {
    format!("arn:aws:iam::{account_id}:root")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_multi_valued() {
        let mut ctx = RequestContext::new("p", "a", "s3:GetObject", "r").with_value("aws:SourceIp", "10.0.0.1");
        ctx.add_value("AWS:SOURCEIP", "10.0.0.2");
        assert_eq!(ctx.values("aws:sourceip").unwrap(), ["10.0.0.1", "10.0.0.2"]);
        ctx.set_values("kms:EncryptionContextKeys", vec!["a".into()]);
        assert_eq!(ctx.lookup("kms:encryptioncontextkeys").as_ref(), ["a"]);
        ctx.remove_value("aws:sourceip");
        assert!(ctx.values("aws:SourceIp").is_none());
    }

    #[test]
    fn principal_keys_are_derived() {
        let ctx = RequestContext::new("arn:aws:iam::000000000000:user/dev/alice", "000000000000", "s3:GetObject", "r");
        assert_eq!(ctx.lookup("aws:username").as_ref(), ["alice"]);
        assert_eq!(ctx.lookup("aws:principalaccount").as_ref(), ["000000000000"]);
        assert_eq!(ctx.lookup("aws:principalarn").as_ref(), ["arn:aws:iam::000000000000:user/dev/alice"]);
        assert_eq!(ctx.lookup("aws:principaltype").as_ref(), ["User"]);
        assert!(!ctx.is_root());

        let root = RequestContext::new(root_arn("000000000000"), "000000000000", "s3:GetObject", "r");
        assert!(root.is_root());
        assert!(root.lookup("aws:username").is_empty());
        assert_eq!(root.lookup("aws:principaltype").as_ref(), ["Account"]);

        let anon = RequestContext::anonymous("s3:GetObject", "r");
        assert!(anon.lookup("aws:principalarn").is_empty());
        assert!(anon.lookup("aws:principalaccount").is_empty());
        assert_eq!(anon.lookup("aws:principaltype").as_ref(), ["Anonymous"]);
    }

    #[test]
    fn explicit_values_win_over_derived_ones() {
        let ctx = RequestContext::new("arn:aws:iam::000000000000:user/alice", "000000000000", "x", "r")
            .with_value("aws:username", "override");
        assert_eq!(ctx.single_value("aws:username").as_deref(), Some("override"));
    }
}
