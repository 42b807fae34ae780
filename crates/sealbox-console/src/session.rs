//! Console sessions: what a sign-in is exchanged for. The browser holds only a random session
//! token (in an HttpOnly cookie) and a CSRF token; the server keeps, per session, whose access key
//! it stands for and when it expires. Tokens are kept as SHA-256 digests, so the table itself
//! cannot be replayed. Time is passed in (`now`), so expiry is tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::Identity;

/// How long sessions live and how many there may be.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute: Duration,
    /// Most sessions at once (expired ones are dropped first); sign-in is refused beyond.
    pub max_sessions: usize,
}

/// A signed-in user, as the console's handlers see it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub access_key_id: String,
    pub identity: Identity,
    pub csrf_token: String,
    /// Seconds left before the session ends, whichever limit comes first.
    pub expires_in: Duration,
}

struct Session {
    access_key_id: String,
    identity: Identity,
    csrf_token: String,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    fn expires_at(&self, limits: &SessionLimits) -> Instant {
        (self.last_seen + limits.idle).min(self.created + limits.absolute)
    }
}

/// Sign-in refused because the table is full of live sessions.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManySessions;

pub struct SessionStore {
    limits: SessionLimits,
    by_digest: HashMap<[u8; 32], Session>,
}

/// 32 random bytes, URL-safe base64 (43 characters).
pub(crate) fn random_token() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    // The system RNG failing is not recoverable; a zero token would be worse than a panic.
    aws_lc_rs::rand::fill(&mut bytes[..]).expect("system randomness");
    Zeroizing::new(URL_SAFE_NO_PAD.encode(&bytes[..]))
}

fn token_digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Constant-time equality of two secrets (CSRF tokens, secret access keys).
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

impl SessionStore {
    pub fn new(limits: SessionLimits) -> Self {
        Self { limits, by_digest: HashMap::new() }
    }

    /// A new session for `access_key_id`; returns the session token (for the cookie) and its view.
    pub fn create(
        &mut self,
        access_key_id: &str,
        identity: Identity,
        now: Instant,
    ) -> Result<(Zeroizing<String>, SessionView), TooManySessions> {
        if self.by_digest.len() >= self.limits.max_sessions {
            self.purge(now);
            if self.by_digest.len() >= self.limits.max_sessions {
                return Err(TooManySessions);
            }
        }
        let token = random_token();
        let session = Session {
            access_key_id: access_key_id.to_owned(),
            identity,
            csrf_token: random_token().to_string(),
            created: now,
            last_seen: now,
        };
        let view = self.view(&session, now);
        self.by_digest.insert(token_digest(&token), session);
        Ok((token, view))
    }

    /// The live session behind `token`, marked as used now; an expired one is removed.
    pub fn touch(&mut self, token: &str, now: Instant) -> Option<SessionView> {
        let key = token_digest(token);
        let session = self.by_digest.get_mut(&key)?;
        if now >= session.expires_at(&self.limits) {
            self.by_digest.remove(&key);
            return None;
        }
        session.last_seen = now;
        let session = self.by_digest.get(&key)?;
        Some(self.view(session, now))
    }

    /// Ends the session behind `token` (sign-out); true if there was one.
    pub fn remove(&mut self, token: &str) -> bool {
        self.by_digest.remove(&token_digest(token)).is_some()
    }

    /// Ends every session of an access key (it was deleted or deactivated).
    pub fn remove_access_key(&mut self, access_key_id: &str) {
        self.by_digest.retain(|_, s| s.access_key_id != access_key_id);
    }

    /// Drops expired sessions.
    pub fn purge(&mut self, now: Instant) {
        let limits = self.limits;
        self.by_digest.retain(|_, s| now < s.expires_at(&limits));
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    fn view(&self, s: &Session, now: Instant) -> SessionView {
        SessionView {
            access_key_id: s.access_key_id.clone(),
            identity: s.identity.clone(),
            csrf_token: s.csrf_token.clone(),
            expires_in: s.expires_at(&self.limits).saturating_duration_since(now),
        }
    }
}

/// Failed sign-ins per source address: after `MAX_FAILURES` within `WINDOW`, that address may not
/// try again until the window has passed (the secret is 40 random characters; this stops a
/// client from turning the console into an oracle it can hammer, and keeps the audit trail
/// readable).
#[derive(Default)]
pub struct SigninThrottle {
    failures: HashMap<IpAddr, (u32, Instant)>,
}

const MAX_FAILURES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(300);
/// Addresses remembered at most; the oldest windows are forgotten first.
const MAX_TRACKED: usize = 10_000;

impl SigninThrottle {
    /// Whether `ip` may try to sign in now.
    pub fn allows(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.failures.get(&ip) {
            Some((count, since)) if now.duration_since(*since) < WINDOW => *count < MAX_FAILURES,
            Some(_) => {
                self.failures.remove(&ip);
                true
            }
            None => true,
        }
    }

    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_TRACKED {
            self.failures.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
        }
        if self.failures.len() >= MAX_TRACKED {
            return;
        }
        let entry = self.failures.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SessionLimits {
        SessionLimits { idle: Duration::from_secs(60), absolute: Duration::from_secs(300), max_sessions: 3 }
    }

    fn identity() -> Identity {
        Identity { arn: "arn:aws:iam::000000000000:user/ann".into(), user_name: Some("ann".into()) }
    }

    #[test]
    fn idle_expiry_and_use_extends_it() {
        let t0 = Instant::now();
        let mut store = SessionStore::new(limits());
        let (token, view) = store.create("AK", identity(), t0).unwrap();
        assert_eq!(view.expires_in, Duration::from_secs(60));
        assert!(store.touch(&token, t0 + Duration::from_secs(59)).is_some());
        // Used at 59 s: good until 119 s.
        assert!(store.touch(&token, t0 + Duration::from_secs(118)).is_some());
        assert!(store.touch(&token, t0 + Duration::from_secs(177)).is_some());
        assert!(store.touch(&token, t0 + Duration::from_secs(239)).is_none(), "idle for 61 s");
        assert!(store.touch(&token, t0).is_none(), "an expired session is gone for good");
    }

    #[test]
    fn absolute_expiry_even_when_used() {
        let t0 = Instant::now();
        let mut store = SessionStore::new(limits());
        let (token, _) = store.create("AK", identity(), t0).unwrap();
        for s in (30..300).step_by(30) {
            assert!(store.touch(&token, t0 + Duration::from_secs(s)).is_some(), "{s}");
        }
        let last = store.touch(&token, t0 + Duration::from_secs(290)).unwrap();
        assert_eq!(last.expires_in, Duration::from_secs(10));
        assert!(store.touch(&token, t0 + Duration::from_secs(300)).is_none());
    }

    #[test]
    fn tokens_are_random_and_only_the_token_opens_a_session() {
        let t0 = Instant::now();
        let mut store = SessionStore::new(limits());
        let (a, va) = store.create("AK", identity(), t0).unwrap();
        let (b, vb) = store.create("AK", identity(), t0).unwrap();
        assert_ne!(*a, *b);
        assert_ne!(va.csrf_token, vb.csrf_token);
        assert_eq!(a.len(), 43);
        assert!(store.touch(&va.csrf_token, t0).is_none(), "the CSRF token is not a session token");
        let mut forged = a.to_string();
        forged.replace_range(0..1, if forged.starts_with('A') { "B" } else { "A" });
        assert!(store.touch(&forged, t0).is_none());
        assert!(store.remove(&a));
        assert!(store.touch(&a, t0).is_none(), "signed out");
        assert!(store.touch(&b, t0).is_some());
        store.remove_access_key("AK");
        assert!(store.touch(&b, t0).is_none(), "key removed");
    }

    #[test]
    fn table_is_bounded_and_expired_sessions_make_room() {
        let t0 = Instant::now();
        let mut store = SessionStore::new(limits());
        for _ in 0..3 {
            store.create("AK", identity(), t0).unwrap();
        }
        assert_eq!(store.create("AK", identity(), t0).err(), Some(TooManySessions));
        assert!(store.create("AK", identity(), t0 + Duration::from_secs(61)).is_ok());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn throttle_after_ten_failures_per_address() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let mut t = SigninThrottle::default();
        for _ in 0..10 {
            assert!(t.allows(ip, t0));
            t.failed(ip, t0);
        }
        assert!(!t.allows(ip, t0 + Duration::from_secs(299)));
        assert!(t.allows(other, t0));
        assert!(t.allows(ip, t0 + Duration::from_secs(300)), "window over");
        t.failed(ip, t0 + Duration::from_secs(300));
        t.succeeded(ip);
        assert!(t.allows(ip, t0 + Duration::from_secs(301)));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"abcd"));
    }
}
