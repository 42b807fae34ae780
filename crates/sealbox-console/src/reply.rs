//! Small HTTP answers of the console's own endpoints: JSON, redirects, cookies.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use s3s::Body;
use serde::Serialize;

use crate::COOKIE_NAME;

/// Longest browser user agent passed on (it ends up in audit records).
const MAX_USER_AGENT: usize = 200;

fn with_api_headers(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    resp
}

pub fn json_ok(value: &impl Serialize) -> Response<Body> {
    with_api_headers(Response::new(Body::from(serde_json::to_vec(value).unwrap_or_default())))
}

/// `{"error": code, "message": ...}` with `status`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": code, "message": message});
    let mut resp = json_ok(&body);
    *resp.status_mut() = status;
    resp
}

pub fn redirect(to: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    resp.headers_mut().insert(http::header::LOCATION, HeaderValue::from_static(to));
    resp
}

/// The value of cookie `name` in the request, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// The session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page
/// sends it), only under `/console`, Secure over HTTPS, gone at the session's absolute expiry.
pub fn session_cookie(token: &str, lifetime: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}", lifetime.as_secs())
}

pub fn clear_cookie(secure: bool) -> String {
    session_cookie("", Duration::ZERO, secure)
}

pub fn set_cookie(resp: &mut Response<Body>, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
}

/// The browser's user agent, printable ASCII only and bounded.
pub fn user_agent(headers: &HeaderMap) -> String {
    let ua = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    ua.chars().filter(|c| (' '..='~').contains(c) && *c != '(' && *c != ')').take(MAX_USER_AGENT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_carry_every_attribute() {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, HeaderValue::from_static("a=1; sealbox_console=tok; b=2"));
        assert_eq!(cookie(&h, COOKIE_NAME).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        let c = session_cookie("tok", Duration::from_secs(3600), true);
        assert_eq!(c, "sealbox_console=tok; Path=/console; HttpOnly; SameSite=Strict; Max-Age=3600; Secure");
        assert!(!session_cookie("tok", Duration::from_secs(1), false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
