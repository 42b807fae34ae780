//! Glob patterns as IAM uses them: `*` matches any run of characters, `?` exactly one.
//!
//! A pattern is a token list rather than a string so that text substituted from a policy variable
//! (`${aws:username}`) stays literal: a user named `*` must not match every resource.

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Literal(char),
    AnyRun,
    AnyChar,
}

/// A compiled glob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// `*` and `?` are wildcards, everything else literal.
    pub(crate) fn glob(text: &str) -> Pattern {
        let mut pattern = Pattern::default();
        pattern.push_glob(text);
        pattern
    }

    pub(crate) fn push_glob(&mut self, text: &str) {
        self.tokens.extend(text.chars().map(|c| match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyChar,
            other => Token::Literal(other),
        }));
    }

    pub(crate) fn push_literal(&mut self, text: &str) {
        self.tokens.extend(text.chars().map(Token::Literal));
    }

    /// Folds literals to lower case, for the case-insensitive comparisons (actions, `...IgnoreCase`).
    pub(crate) fn to_lowercase(&self) -> Pattern {
        let tokens = self
            .tokens
            .iter()
            .flat_map(|t| match t {
                Token::Literal(c) => c.to_lowercase().map(Token::Literal).collect::<Vec<_>>(),
                other => vec![other.clone()],
            })
            .collect();
        Pattern { tokens }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        glob_match(&self.tokens, &text)
    }

    pub(crate) fn matches_ignore_case(&self, text: &str) -> bool {
        self.to_lowercase().matches(&text.to_lowercase())
    }

    /// ARN matching as IAM does it: each of the six colon-separated parts is matched on its own,
    /// so a wildcard never spans a `:` before the resource part (which may itself contain colons).
    /// A pattern with fewer parts (`*`, `arn:aws:s3:*`) lets its last part cover the rest.
    pub(crate) fn matches_arn(&self, arn: &str) -> bool {
        let text: Vec<char> = arn.chars().collect();
        let pattern_parts = split_parts(&self.tokens, |t| *t == Token::Literal(':'), 6);
        let text_parts = split_parts(&text, |c| *c == ':', pattern_parts.len());
        text_parts.len() == pattern_parts.len()
            && pattern_parts.iter().zip(&text_parts).all(|(pattern, part)| glob_match(pattern, part))
    }
}

/// Splits at separators into at most `max` parts; the last part keeps any further separators.
fn split_parts<T>(items: &[T], is_separator: impl Fn(&T) -> bool, max: usize) -> Vec<&[T]> {
    let mut parts = Vec::with_capacity(max);
    let mut start = 0;
    for (i, item) in items.iter().enumerate() {
        if parts.len() + 1 < max && is_separator(item) {
            parts.push(&items[start..i]);
            start = i + 1;
        }
    }
    parts.push(&items[start..]);
    parts
}

/// Linear-time-per-backtrack glob matcher: remembers the last `*` and retries from there.
fn glob_match(pattern: &[Token], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::AnyRun) => {
                resume = Some((p, t));
                p += 1;
            }
            Some(Token::AnyChar) => {
                p += 1;
                t += 1;
            }
            Some(Token::Literal(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((star_p, star_t)) => {
                    resume = Some((star_p, star_t + 1));
                    p = star_p + 1;
                    t = star_t + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|token| *token == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, t: &str) -> bool {
        Pattern::glob(p).matches(t)
    }

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(glob("*", ""));
        assert!(glob("*", "anything/at:all"));
        assert!(glob("s3:Get*", "s3:Get"));
        assert!(glob("s3:Get*", "s3:GetObject"));
        assert!(!glob("s3:Get*", "s3:PutObject"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("*.txt", "dir/file.txt"));
        assert!(!glob("*.txt", "dir/file.txt.gz"));
        assert!(glob("**", "x"));
    }

    #[test]
    fn question_mark_matches_exactly_one_char() {
        assert!(glob("file?.txt", "file1.txt"));
        assert!(!glob("file?.txt", "file.txt"));
        assert!(!glob("file?.txt", "file12.txt"));
        assert!(glob("??", "ab"));
        assert!(!glob("??", "abc"));
        assert!(glob("caf?", "café"));
    }

    #[test]
    fn literal_matching_is_case_sensitive_unless_folded() {
        assert!(!glob("Bucket/*", "bucket/x"));
        assert!(Pattern::glob("S3:GETOBJECT").matches_ignore_case("s3:GetObject"));
        assert!(Pattern::glob("s3:get*").matches_ignore_case("S3:GetObject"));
    }

    #[test]
    fn literal_tokens_do_not_act_as_wildcards() {
        let mut p = Pattern::glob("arn:aws:s3:::b/home/");
        p.push_literal("*");
        p.push_glob("/*");
        assert!(p.matches("arn:aws:s3:::b/home/*/x"));
        assert!(!p.matches("arn:aws:s3:::b/home/alice/x"));
    }

    #[test]
    fn arn_wildcards_stay_within_their_part() {
        let p = Pattern::glob("arn:aws:kms:*:000000000000:key/*");
        assert!(p.matches_arn("arn:aws:kms:us-east-1:000000000000:key/abc"));
        assert!(!p.matches_arn("arn:aws:kms:us-east-1:111111111111:key/abc"));
        // The region wildcard must not swallow the account part.
        let region_only = Pattern::glob("arn:aws:kms:*:key/abc");
        assert!(!region_only.matches_arn("arn:aws:kms:us-east-1:000000000000:key/abc"));
        // Colons in the resource part belong to it.
        let s3 = Pattern::glob("arn:aws:s3:::bucket/*");
        assert!(s3.matches_arn("arn:aws:s3:::bucket/a:b:c"));
        assert!(!s3.matches_arn("arn:aws:s3:::other/a"));
        assert!(Pattern::glob("*").matches_arn("arn:aws:s3:::bucket"));
        assert!(Pattern::glob("arn:*").matches_arn("arn:aws:s3:::bucket"));
        assert!(Pattern::glob("arn:aws:s3:*").matches_arn("arn:aws:s3:::bucket/key"));
        assert!(!Pattern::glob("arn:aws:kms:*").matches_arn("arn:aws:s3:::bucket/key"));
        assert!(!Pattern::glob("arn:aws:s3:::bucket").matches_arn("arn:aws:s3:::bucket/key"));
    }

    #[test]
    fn pathological_patterns_finish() {
        let p = Pattern::glob(&"*a".repeat(50));
        assert!(!p.matches(&"a".repeat(49)));
        assert!(p.matches(&"a".repeat(60)));
    }
}
