//! The canonical request (AWS contract A.1): URI, query, headers.

/// AWS URI encoding: `A-Za-z0-9-_.~` stay, everything else becomes `%XX` upper-case
/// (`/` stays too when `keep_slash`, as in paths).
pub(crate) fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes `%XX` escapes; a `%` not followed by two hex digits stays as it is (AWS clients never
/// send one, and refusing here would turn a bad signature into a different error). `+` is kept:
/// SigV4 clients encode a space as `%20`, so a literal `+` was signed as `%2B`.
pub(crate) fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Canonical URI of the raw (as sent) path.
///
/// S3 signs the path as sent, re-encoded once and never normalised (`//`, `.` and `..` are parts
/// of key names). Every other service normalises the path (RFC 3986 dot segments, empty segments
/// dropped) and then URI-encodes the already-encoded path again ("double encoding"): botocore
/// quotes `urlsplit(url).path`, which is what went on the wire.
pub(crate) fn canonical_uri(raw_path: &str, service: &str) -> String {
    if service == "s3" {
        let decoded = percent_decode(raw_path);
        let uri = uri_encode(&decoded, true);
        return if uri.is_empty() { "/".to_owned() } else { uri };
    }
    let normalized = normalize_path(raw_path);
    uri_encode(normalized.as_bytes(), true)
}

/// Dot segments removed and empty segments dropped; a trailing `/` is kept; never empty.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    let ends_in_directory = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || ends_in_directory {
        out.push('/');
    }
    out
}

/// Canonical query string of the raw query: each name and value decoded and re-encoded, sorted
/// by name then value, `name=value` joined by `&`. `skip` names a parameter left out
/// (`X-Amz-Signature` for presigned URLs).
pub(crate) fn canonical_query(raw_query: &str, skip: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = uri_encode(&percent_decode(name), false);
            if skip.is_some_and(|s| s == name) {
                return None;
            }
            Some((name, uri_encode(&percent_decode(value), false)))
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A header value as signed: trimmed, inner runs of whitespace collapsed to one space.
pub(crate) fn canonical_header_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `name:value\n` for each signed header (values of repeated headers joined by `,` in the order
/// received). Returns the name of a signed header the request lacks.
pub(crate) fn canonical_headers<'a>(signed_headers: &[&'a str], headers: &[(&str, &str)]) -> Result<String, &'a str> {
    let mut out = String::new();
    for &name in signed_headers {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| canonical_header_value(v))
            .collect();
        if values.is_empty() {
            return Err(name);
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

pub(crate) struct CanonicalRequest<'a> {
    pub method: &'a str,
    pub uri: String,
    pub query: String,
    pub headers: String,
    pub signed_headers: String,
    pub payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    pub fn render(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method, self.uri, self.query, self.headers, self.signed_headers, self.payload_hash
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_s3_paths_are_normalised_and_double_encoded() {
        for (raw, want) in [
            ("/", "/"),
            ("", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./example", "/example"),
            ("//example//", "/example/"),
            ("/example space/", "/example%20space/"),
            ("/a%20b", "/a%2520b"),
            ("/ሴ", "/%E1%88%B4"),
        ] {
            assert_eq!(canonical_uri(raw, "kms"), want, "{raw}");
        }
    }

    #[test]
    fn s3_paths_are_encoded_once_and_kept() {
        for (raw, want) in [
            ("/b/a%20b", "/b/a%20b"),
            ("/b//k/../x", "/b//k/../x"),
            ("/b/test%24file.text", "/b/test%24file.text"),
            ("/b/test$file.text", "/b/test%24file.text"),
            ("", "/"),
        ] {
            assert_eq!(canonical_uri(raw, "s3"), want, "{raw}");
        }
    }

    #[test]
    fn query_is_sorted_and_reencoded() {
        assert_eq!(canonical_query("Param2=value2&Param1=value1", None), "Param1=value1&Param2=value2");
        assert_eq!(canonical_query("uploads", None), "uploads=");
        assert_eq!(canonical_query("a=1&a=0", None), "a=0&a=1");
        assert_eq!(canonical_query("k=a%2fb&x=a+b&y=a%20b", None), "k=a%2Fb&x=a%2Bb&y=a%20b");
        assert_eq!(canonical_query("X-Amz-Signature=abc&b=1", Some("X-Amz-Signature")), "b=1");
        assert_eq!(canonical_query("", None), "");
        assert_eq!(canonical_query("a=%zz&b=%", None), "a=%25zz&b=%25");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        assert_eq!(canonical_header_value("  \"a   b   c\"  "), "\"a b c\"");
        let headers = [("My-Header1", "value2"), ("host", "h"), ("my-header1", "value1")];
        assert_eq!(canonical_headers(&["host", "my-header1"], &headers).unwrap(), "host:h\nmy-header1:value2,value1\n");
        assert_eq!(canonical_headers(&["host", "x-amz-date"], &headers), Err("x-amz-date"));
    }

    #[test]
    fn decode_keeps_stray_percent() {
        assert_eq!(percent_decode("%41%4a%"), b"AJ%");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("a+b"), b"a+b");
    }
}
