//! The PKCS#11 root key provider: AES-256-GCM wrapping done inside the token by a key that never
//! leaves it (CKA_SENSITIVE, not CKA_EXTRACTABLE). Tested against SoftHSM2.

use std::path::Path;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::KmsError;

pub(crate) struct HsmKey {
    session: Mutex<Session>,
    key: ObjectHandle,
    _ctx: Pkcs11,
}

fn hsm_err(what: &str, e: impl std::fmt::Display) -> KmsError {
    KmsError::RootKey(format!("PKCS#11 {what}: {e}"))
}

impl HsmKey {
    pub(crate) fn open(module: &Path, token_label: &str, pin: &str, key_label: &str) -> Result<Self, KmsError> {
        let ctx = Pkcs11::new(module).map_err(|e| hsm_err(&format!("loading {}", module.display()), e))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(|e| hsm_err("initialize", e))?;
        let slot = ctx
            .get_slots_with_token()
            .map_err(|e| hsm_err("listing slots", e))?
            .into_iter()
            .find(|s| ctx.get_token_info(*s).map(|t| t.label().trim() == token_label).unwrap_or(false))
            .ok_or_else(|| KmsError::RootKey(format!("PKCS#11: no token labelled {token_label:?}")))?;
        let session = ctx.open_rw_session(slot).map_err(|e| hsm_err("opening a session", e))?;
        session.login(UserType::User, Some(&AuthPin::new(pin.into()))).map_err(|e| hsm_err("login (wrong PIN?)", e))?;
        let template = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(key_label.as_bytes().to_vec())];
        let found = session.find_objects(&template).map_err(|e| hsm_err("finding the root key", e))?;
        let key = match found.first() {
            Some(k) => *k,
            None => session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Label(key_label.as_bytes().to_vec()),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                    ],
                )
                .map_err(|e| hsm_err("generating the root key", e))?,
        };
        Ok(HsmKey { session: Mutex::new(session), key, _ctx: ctx })
    }

    pub(crate) fn wrap(&self, mut nonce: [u8; 12], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KmsError> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let params = GcmParams::new(&mut nonce, aad, 128.into()).map_err(|e| hsm_err("GCM parameters", e))?;
        let ct = session.encrypt(&Mechanism::AesGcm(params), self.key, plaintext).map_err(|e| hsm_err("wrap", e))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub(crate) fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        if wrapped.len() < 12 + 16 {
            return Err(KmsError::WrongRootKey);
        }
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&wrapped[..12]);
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let params = GcmParams::new(&mut nonce, aad, 128.into()).map_err(|e| hsm_err("GCM parameters", e))?;
        // A failed tag check is a wrong key (or tampering): never a partial result.
        let plain = session
            .decrypt(&Mechanism::AesGcm(params), self.key, &wrapped[12..])
            .map_err(|_| KmsError::WrongRootKey)?;
        Ok(Zeroizing::new(plain))
    }
}
