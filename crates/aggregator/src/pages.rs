//! The web pages, served from the binary: the spectator page (`/`), the results desk (`/desk`),
//! the fleet page for timing crews (`/fleet`), and their shared assets (`/assets/<file>`).
//!
//! Design note: plain HTML, CSS and ES modules from `crates/aggregator/web/`, embedded at
//! compile time. No npm, no build step, no CDN: the aggregator runs offline at races, and one
//! binary carries everything. The pages only read the JSON APIs, so nothing here has state.
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts, styles and images from this
//! origin only, no inline script, fetches and WebSockets to this origin only, no framing),
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
//! Caching: `Cache-Control: no-cache` with a strong `ETag` (a hash of the embedded bytes, fixed at
//! compile time). File names carry no version, so a browser revalidates on every load (a 304
//! has no body); a new binary's page then never runs with the previous binary's scripts.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// FNV-1a of `body`.
    hash: u64,
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../web/", $name)),
            hash: fnv1a(include_bytes!(concat!("../web/", $name))),
        }
    };
}

static INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
static DESK: Asset = asset!("desk.html", "text/html; charset=utf-8");
static FLEET: Asset = asset!("fleet.html", "text/html; charset=utf-8");

/// What `/assets/<name>` serves.
static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("desk.js", "text/javascript; charset=utf-8"),
    asset!("fleet.js", "text/javascript; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("live.js", "text/javascript; charset=utf-8"),
    asset!("spectator.js", "text/javascript; charset=utf-8"),
];

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The pages and assets (no fallback: merge into a router that has one).
pub fn routes() -> Router {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }))
        .route("/desk", get(|headers: HeaderMap| async move { serve(&DESK, &headers) }))
        .route("/fleet", get(|headers: HeaderMap| async move { serve(&FLEET, &headers) }))
        .route("/assets/{name}", get(asset))
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => serve(a, &headers),
        None => {
            let body = timing_wire::ErrorBody { error: format!("no asset {name:?}") };
            let mut response = (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
            secure(response.headers_mut(), &headers);
            response
        }
    }
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh =
        request.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
            |tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/") == etag
            },
        );
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = response.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    secure(h, request);
    response
}

/// The security headers every answer here carries.
fn secure(h: &mut HeaderMap, request: &HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(request.get(header::HOST))) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// The policy: this origin only. `connect-src` names the host's `ws:`/`wss:` origins as well,
/// because browsers that predate CSP 3 do not count WebSockets to the page's own host as 'self'.
fn content_security_policy(host: Option<&HeaderValue>) -> String {
    let mut connect = String::from("'self'");
    if let Some(host) = host.and_then(|h| h.to_str().ok()).filter(|h| is_plain_host(h)) {
        connect.push_str(&format!(" ws://{host} wss://{host}"));
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// A `Host` header fit to go into the policy: a name or address and a port, nothing else.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_only_a_plain_host() {
        let csp = |h: &str| content_security_policy(Some(&HeaderValue::from_str(h).unwrap()));
        assert!(csp("127.0.0.1:7878").contains("connect-src 'self' ws://127.0.0.1:7878 wss://127.0.0.1:7878;"));
        assert!(csp("[::1]:80").contains("ws://[::1]:80 "));
        assert!(csp("evil; script-src *").contains("connect-src 'self';"));
        assert!(content_security_policy(None).contains("connect-src 'self';"));
        assert!(!csp("x").contains("unsafe"));
    }

    #[test]
    fn every_asset_has_a_distinct_name_and_hash() {
        let mut names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
