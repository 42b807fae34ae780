//! Who is calling: access keys and the principals they belong to (the root user from first start,
//! IAM users created through the IAM API).

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};
use zeroize::Zeroizing;

use crate::iam::{user_arn, ACCOUNT_ID};

/// The identity behind an access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key_id: String,
    /// `None` for the account root user.
    pub user_name: Option<String>,
    pub user_id: String,
    pub arn: String,
}

impl Principal {
    pub fn root(access_key_id: &str) -> Self {
        Principal {
            access_key_id: access_key_id.to_owned(),
            user_name: None,
            user_id: ACCOUNT_ID.to_owned(),
            arn: format!("arn:aws:iam::{ACCOUNT_ID}:root"),
        }
    }

    pub fn user(access_key_id: &str, name: &str, user_id: &str, path: &str) -> Self {
        Principal {
            access_key_id: access_key_id.to_owned(),
            user_name: Some(name.to_owned()),
            user_id: user_id.to_owned(),
            arn: user_arn(name, path),
        }
    }

    pub fn is_root(&self) -> bool {
        self.user_name.is_none()
    }
}

struct Entry {
    secret: Zeroizing<String>,
    principal: Principal,
}

/// Access keys the server accepts, looked up on every signed request.
#[derive(Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<String, Entry>>,
}

impl KeyRing {
    pub fn insert(&self, secret: &str, principal: Principal) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.insert(principal.access_key_id.clone(), Entry { secret: Zeroizing::new(secret.to_owned()), principal });
    }

    /// Replaces every non-root key (after IAM changes), keeping the root key.
    pub fn replace_users(&self, users: Vec<(String, Principal)>) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.retain(|_, e| e.principal.is_root());
        for (secret, p) in users {
            keys.insert(p.access_key_id.clone(), Entry { secret: Zeroizing::new(secret), principal: p });
        }
    }

    pub fn secret(&self, access_key_id: &str) -> Option<Zeroizing<String>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(access_key_id).map(|e| e.secret.clone())
    }

    pub fn principal(&self, access_key_id: &str) -> Option<Principal> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(access_key_id).map(|e| e.principal.clone())
    }
}

/// s3s asks for the secret of the access key on each S3 request.
pub struct KeyRingAuth(pub std::sync::Arc<KeyRing>);

#[async_trait]
impl S3Auth for KeyRingAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.secret(access_key) {
            Some(s) => Ok(SecretKey::from(s.as_str())),
            None => {
                Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
            }
        }
    }
}
