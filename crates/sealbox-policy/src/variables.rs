//! Policy variables (`${aws:username}`) in Resource / NotResource and in string and ARN condition
//! values. Only documents with Version "2012-10-17" get substitution; in "2008-10-17" documents,
//! and in every document written without a Version, `${...}` is literal text, as in AWS.

use crate::wildcard::Pattern;

/// Compiles `template` into a pattern, substituting variables through `lookup` (keys are passed
/// lower-cased). Text outside variables is a glob when `wildcards` is true, literal otherwise;
/// substituted values are always literal. Returns `None` when a variable has no value and no
/// default: AWS then treats the element as not matching.
pub(crate) fn compile(
    template: &str,
    substitute: bool,
    wildcards: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Pattern> {
    let mut pattern = Pattern::default();
    let push_text = |pattern: &mut Pattern, text: &str| {
        if wildcards {
            pattern.push_glob(text)
        } else {
            pattern.push_literal(text)
        }
    };
    if !substitute {
        push_text(&mut pattern, template);
        return Some(pattern);
    }
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        push_text(&mut pattern, &rest[..start]);
        pattern.push_literal(&resolve(&after[..end], lookup)?);
        rest = &after[end + 1..];
    }
    push_text(&mut pattern, rest);
    Some(pattern)
}

/// Value of one `${...}` body: a special character, a context key, or `key, 'default'`.
fn resolve(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let body = body.trim();
    if let special @ ("*" | "?" | "$") = body {
        return Some(special.to_string());
    }
    let (key, default) = match body.split_once(',') {
        Some((key, default)) => (key.trim(), parse_default(default.trim())),
        None => (body, None),
    };
    lookup(&key.to_ascii_lowercase()).or(default)
}

fn parse_default(text: &str) -> Option<String> {
    text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')).map(str::to_string)
}

/// Whether the text uses a `${...}` variable (used to keep such values out of literal validation).
pub(crate) fn has_variable(text: &str) -> bool {
    text.find("${").is_some_and(|start| text[start..].contains('}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(key: &str) -> Option<String> {
        match key {
            "aws:username" => Some("alice".into()),
            "aws:userid" => Some("AIDA*".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_known_variables_case_insensitively() {
        let p = compile("arn:aws:s3:::home/${aws:UserName}/*", true, true, &alice).unwrap();
        assert!(p.matches("arn:aws:s3:::home/alice/notes.txt"));
        assert!(!p.matches("arn:aws:s3:::home/bob/notes.txt"));
    }

    #[test]
    fn substituted_text_is_literal() {
        let p = compile("home/${aws:userid}/x", true, true, &alice).unwrap();
        assert!(p.matches("home/AIDA*/x"));
        assert!(!p.matches("home/AIDAXYZ/x"));
    }

    #[test]
    fn missing_variable_without_default_does_not_match() {
        assert!(compile("home/${aws:PrincipalTag/team}/*", true, true, &alice).is_none());
        let p = compile("home/${aws:PrincipalTag/team, 'none'}/*", true, true, &alice).unwrap();
        assert!(p.matches("home/none/a"));
    }

    #[test]
    fn special_characters_and_unterminated_variables() {
        let p = compile("a${*}b${?}c${$}d", true, true, &alice).unwrap();
        assert!(p.matches("a*b?c$d"));
        assert!(!p.matches("aXb?c$d"));
        let p = compile("x${aws:username", true, false, &alice).unwrap();
        assert!(p.matches("x${aws:username"));
    }

    #[test]
    fn no_substitution_in_old_versions() {
        let p = compile("home/${aws:username}", false, true, &alice).unwrap();
        assert!(p.matches("home/${aws:username}"));
        assert!(!p.matches("home/alice"));
        assert!(has_variable("a${b}"));
        assert!(!has_variable("a${b"));
    }
}
