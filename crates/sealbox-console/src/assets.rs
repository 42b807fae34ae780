//! The console's pages, embedded in the binary: plain HTML, CSS and JavaScript, no build step,
//! no third-party code. Every page is served with a strict Content-Security-Policy (scripts and
//! styles from this origin only, no inline script, no framing).

use http::{HeaderValue, Response, StatusCode};
use s3s::Body;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");

const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                        connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /console/<asset>`: the page shell for `/console/` (the app routes by `#hash`).
pub fn serve(path: &str) -> Response<Body> {
    let (body, content_type) = match path {
        "/console/" | "/console/index.html" => (INDEX_HTML, "text/html; charset=utf-8"),
        "/console/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/console/app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "/console/favicon.svg" => (FAVICON_SVG, "image/svg+xml"),
        _ => return crate::reply::json_error(StatusCode::NOT_FOUND, "NotFound", "no such console page"),
    };
    let mut resp = Response::new(Body::from(body.to_owned()));
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(http::header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(http::header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
