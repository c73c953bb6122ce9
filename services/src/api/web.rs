//! The map wall's files, compiled into the binary (`web-map/`), so that a closed network needs
//! nothing but safegrid: the page at `/`, its entry script `/web/app.js` and the ES modules it
//! imports from `/web/js/`, its strings and style, and MapLibre GL JS vendored from its npm
//! package under `/web/vendor/maplibre-gl/`. A path is looked up whole (`js/map.js`), so files
//! in folders need nothing but their row in FILES.
//!
//! Every file is served with a Content-Security-Policy that allows only this origin, so a
//! browser refuses any request to another host, from the page or from MapLibre's worker.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

use super::AppState;
use super::problem::ApiError;
use axum::Router;
use axum::routing::get;

/// (path under `/web/`, bytes, content type).
const FILES: &[(&str, &[u8], &str)] = &[
    ("index.html", include_bytes!("../../../web-map/index.html"), "text/html; charset=utf-8"),
    ("errors.js", include_bytes!("../../../web-map/errors.js"), "text/javascript; charset=utf-8"),
    ("app.js", include_bytes!("../../../web-map/app.js"), "text/javascript; charset=utf-8"),
    ("i18n.js", include_bytes!("../../../web-map/i18n.js"), "text/javascript; charset=utf-8"),
    ("js/api.js", include_bytes!("../../../web-map/js/api.js"), "text/javascript; charset=utf-8"),
    ("js/audit.js", include_bytes!("../../../web-map/js/audit.js"), "text/javascript; charset=utf-8"),
    ("js/board.js", include_bytes!("../../../web-map/js/board.js"), "text/javascript; charset=utf-8"),
    ("js/dispatch.js", include_bytes!("../../../web-map/js/dispatch.js"), "text/javascript; charset=utf-8"),
    ("js/dom.js", include_bytes!("../../../web-map/js/dom.js"), "text/javascript; charset=utf-8"),
    ("js/layers.js", include_bytes!("../../../web-map/js/layers.js"), "text/javascript; charset=utf-8"),
    ("js/live.js", include_bytes!("../../../web-map/js/live.js"), "text/javascript; charset=utf-8"),
    ("js/map.js", include_bytes!("../../../web-map/js/map.js"), "text/javascript; charset=utf-8"),
    ("js/popups.js", include_bytes!("../../../web-map/js/popups.js"), "text/javascript; charset=utf-8"),
    ("js/queue.js", include_bytes!("../../../web-map/js/queue.js"), "text/javascript; charset=utf-8"),
    ("js/search.js", include_bytes!("../../../web-map/js/search.js"), "text/javascript; charset=utf-8"),
    ("js/signin.js", include_bytes!("../../../web-map/js/signin.js"), "text/javascript; charset=utf-8"),
    ("js/state.js", include_bytes!("../../../web-map/js/state.js"), "text/javascript; charset=utf-8"),
    ("js/stats.js", include_bytes!("../../../web-map/js/stats.js"), "text/javascript; charset=utf-8"),
    ("js/units.js", include_bytes!("../../../web-map/js/units.js"), "text/javascript; charset=utf-8"),
    ("app.css", include_bytes!("../../../web-map/app.css"), "text/css; charset=utf-8"),
    (
        "vendor/maplibre-gl/maplibre-gl.mjs",
        include_bytes!("../../../web-map/vendor/maplibre-gl/maplibre-gl.mjs"),
        "text/javascript; charset=utf-8",
    ),
    (
        "vendor/maplibre-gl/maplibre-gl-worker.mjs",
        include_bytes!("../../../web-map/vendor/maplibre-gl/maplibre-gl-worker.mjs"),
        "text/javascript; charset=utf-8",
    ),
    (
        "vendor/maplibre-gl/maplibre-gl.css",
        include_bytes!("../../../web-map/vendor/maplibre-gl/maplibre-gl.css"),
        "text/css; charset=utf-8",
    ),
    (
        "vendor/maplibre-gl/LICENSE.txt",
        include_bytes!("../../../web-map/vendor/maplibre-gl/LICENSE.txt"),
        "text/plain; charset=utf-8",
    ),
];

/// Only this origin; workers may also come from blob URLs (MapLibre can wrap its worker);
/// MapLibre sets inline styles on its own elements.
const CSP: &str = "default-src 'self'; script-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; \
                   img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; \
                   font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/// The path of every file served under `/web/` (the OpenAPI document lists them).
pub(crate) fn paths() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(path, _, _)| *path)
}

/// One ETag per build: the files change only with the binary.
fn etag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let h = crate::fnv::fnv(FILES.iter().flat_map(|(_, b, _)| b.iter().copied()));
        format!("\"{h:016x}\"")
    })
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((_, body, kind)) = FILES.iter().find(|(p, _, _)| *p == path) else {
        return ApiError::not_found("path", format!("/web/{path}"), "no such file of the map wall").into_response();
    };
    let tag = etag();
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(tag);
    let mut r = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { (*body).into_response() };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::ETAG, HeaderValue::from_static(tag));
    // Revalidate every time: an upgraded server must not run yesterday's script.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // On every file, not only the page: a worker started from a script URL (MapLibre's) takes
    // its policy from that script's response, and it is the worker that fetches tiles.
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// `GET /`: the map wall.
async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /web/{*path}`: the wall's scripts, styles and vendored library.
async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/web/{*path}", get(file))
}
