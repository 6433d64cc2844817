//! The pages and their assets through the router (`oneshot`): status, content type, caching and
//! security headers; and merged into the API's router, whose JSON 404 still answers the rest.

use std::path::Path;

use aggregator::{AggregatorStore, AppState, IngestConfig, SystemClock, Tokens, UploadScope};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use tower::ServiceExt;

async fn get(app: &Router, path: &str, headers: &[(header::HeaderName, &str)]) -> Response<Body> {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
}

async fn text(response: Response<Body>) -> String {
    String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
}

fn header(response: &Response<Body>, name: header::HeaderName) -> &str {
    response.headers().get(&name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

#[track_caller]
fn check_secure(response: &Response<Body>) {
    let csp = header(response, header::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' ws://racetime.local:7878 wss://racetime.local:7878",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive:?} missing from {csp:?}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(header(response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
}

const HOST: (header::HeaderName, &str) = (header::HOST, "racetime.local:7878");

#[tokio::test]
async fn pages_and_assets_answer_with_their_type_caching_and_security_headers() {
    let app = aggregator::pages::routes();
    for (path, content_type, needle) in [
        ("/", "text/html; charset=utf-8", r#"<script type="module" src="/assets/spectator.js">"#),
        ("/desk", "text/html; charset=utf-8", r#"<script type="module" src="/assets/desk.js">"#),
        ("/fleet", "text/html; charset=utf-8", r#"<script type="module" src="/assets/fleet.js">"#),
        ("/assets/app.css", "text/css; charset=utf-8", ":root"),
        ("/assets/common.js", "text/javascript; charset=utf-8", "export async function getJSON"),
        ("/assets/fleet.js", "text/javascript; charset=utf-8", "/api/v1/fleet"),
        ("/assets/spectator.js", "text/javascript; charset=utf-8", "/api/v1/participants"),
        ("/assets/live.js", "text/javascript; charset=utf-8", "/api/v1/live"),
        ("/assets/charts.js", "text/javascript; charset=utf-8", "export function histogram"),
        ("/assets/desk.js", "text/javascript; charset=utf-8", "/api/v1/desk/corrections"),
        ("/assets/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = get(&app, path, &[HOST]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, header::CONTENT_TYPE), content_type, "{path}");
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-cache", "{path}");
        check_secure(&response);
        let etag = header(&response, header::ETAG).to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18, "{path}: {etag}");
        assert!(text(response).await.contains(needle), "{path} lacks {needle:?}");

        // Revalidation: the same ETag gives a 304 without a body, another one the file.
        let again = get(&app, path, &[HOST, (header::IF_NONE_MATCH, &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(header(&again, header::ETAG), etag);
        check_secure(&again);
        assert!(text(again).await.is_empty());
        let other = get(&app, path, &[HOST, (header::IF_NONE_MATCH, "\"0000000000000000\"")]).await;
        assert_eq!(other.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn html_pages_load_nothing_from_elsewhere_and_no_inline_script() {
    let app = aggregator::pages::routes();
    for path in ["/", "/desk", "/fleet"] {
        let html = text(get(&app, path, &[]).await).await;
        assert!(!html.contains("http://") && !html.contains("https://"), "{path} refers to another origin");
        assert!(!html.contains("<script>") && !html.contains("style="), "{path} has inline script or style");
        assert!(html.contains(r#"<link rel="stylesheet" href="/assets/app.css">"#), "{path}");
    }
}

#[tokio::test]
async fn an_unknown_asset_is_a_json_404() {
    let app = aggregator::pages::routes();
    let response = get(&app, "/assets/nope.js", &[HOST]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    check_secure(&response);
    let body: timing_wire::ErrorBody = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(body.error, "no asset \"nope.js\"");
}

#[tokio::test]
async fn merged_with_the_api_the_pages_are_reached_and_the_api_keeps_its_json_404() {
    let dir = tempfile::tempdir().unwrap();
    let scope = UploadScope::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo")).unwrap();
    let tokens = Tokens::load(&scope, None, |_| None).unwrap();
    let store = AggregatorStore::open(&dir.path().join("aggregator.sqlite")).unwrap();
    let state = AppState::new(store, scope, tokens, IngestConfig::default(), SystemClock);
    let app = aggregator::app(state).merge(aggregator::pages::routes());

    for path in ["/", "/desk", "/fleet", "/assets/app.css"] {
        assert_eq!(get(&app, path, &[]).await.status(), StatusCode::OK, "{path}");
    }
    let fleet = get(&app, "/api/v1/fleet", &[]).await;
    assert_eq!(fleet.status(), StatusCode::OK);
    let edges: Vec<aggregator::FleetEdge> = serde_json::from_str(&text(fleet).await).unwrap();
    assert_eq!(edges.len(), 5, "every edge of the demo event, reported or not");
    assert!(edges.iter().all(|e| e.telemetry.is_none() && e.telemetry_age_ms.is_none()));

    let missing = get(&app, "/nope", &[]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&missing, header::CONTENT_TYPE), "application/json");
    let body: timing_wire::ErrorBody = serde_json::from_str(&text(missing).await).unwrap();
    assert!(body.error.contains("/nope"), "{}", body.error);
}
