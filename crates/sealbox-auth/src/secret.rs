use zeroize::Zeroizing;

/// A secret access key. Wiped on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretAccessKey(Zeroizing<String>);

impl SecretAccessKey {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret itself, for key derivation only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretAccessKey {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

impl From<String> for SecretAccessKey {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

/// So command-line parsers (clap) can take a secret straight into this type.
impl std::str::FromStr for SecretAccessKey {
    type Err = std::convert::Infallible;

    fn from_str(secret: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(secret))
    }
}

impl std::fmt::Debug for SecretAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretAccessKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretAccessKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let shown = format!("{s:?}");
        assert!(!shown.contains("wJalr"), "{shown}");
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let parsed: SecretAccessKey = "from a flag".parse().unwrap();
        assert_eq!(parsed.expose(), "from a flag");
        assert_eq!(format!("{:?}", Some(parsed)), "Some(SecretAccessKey(<redacted>))");
    }
}
