//! The HTTP API: `app(state)` builds the whole service as an axum `Router`; `main` only parses
//! configuration and calls it, and the tests drive the same function.

pub mod audits;
pub mod basemap;
pub mod caller;
pub mod devices;
pub mod dispatch;
pub mod dispatches;
pub mod extract;
pub mod feed;
pub mod grids;
pub mod guard;
pub mod items;
pub mod openapi;
pub mod ops;
pub mod positions;
pub mod problem;
pub mod public;
pub mod query;
pub mod result_cache;
pub mod search;
pub mod tile_cache;
pub mod tiles;
pub mod wall;
pub mod web;

use crate::ingest::{Ingest, IngestConfig, IngestWriter};
use crate::metrics::Metrics;
use crate::service::Service;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use problem::{ApiError, BODY_LIMIT};
use std::sync::Arc;
use std::time::Instant;
use tower_http::compression::CompressionLayer;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Store and live state.
    pub service: Arc<Service>,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Encoded tiles, keyed by what they were built from.
    pub tiles: Arc<tile_cache::TileCache>,
    /// The offline basemap, glyphs and sprite.
    pub basemap: Arc<crate::basemap::Basemap>,
    /// Position ingest (group commit); shared by every ingest route.
    pub ingest: Arc<Ingest>,
    /// The road networks for travel times, when one was loaded.
    pub roads: Option<Arc<crate::roads::Roads>>,
    /// Per-address limits of the public lookup.
    pub public_rate: Arc<public::RateLimiter>,
    /// The dispatch lifecycle.
    pub desk: Arc<crate::dispatch::desk::Desk>,
    /// In-flight limits per route class and per kind of expensive work.
    pub shed: Arc<guard::Shedder>,
    /// Audit answers per data version.
    pub results: Arc<result_cache::ResultCache>,
    /// Web origins allowed to call the API from a browser (CORS); empty: none, the default.
    pub cors_origins: Vec<HeaderValue>,
}

/// Tile cache budget: enough for the map wall's working set of low-zoom tiles.
const TILE_CACHE_BYTES: usize = 128 << 20;

/// The tasks a server runs besides answering requests. Building an [`AppState`] starts none of
/// them; [`Background::start`] does, once the server is ready to serve.
#[must_use = "nothing is committed and no alarm is raised until the background is started"]
pub struct Background {
    ingest: IngestWriter,
    desk: Arc<crate::dispatch::desk::Desk>,
}

impl Background {
    /// Spawns the ingest writer (without it, fixes wait in the queue and trackers time out) and
    /// the dispatch deadline alarms.
    pub fn start(self) {
        tokio::spawn(self.ingest.run());
        tokio::spawn(self.desk.run_alarms());
    }
}

impl AppState {
    /// The state of a service, with fresh metrics and an empty tile cache, and its background
    /// tasks, not yet started.
    pub fn new(service: Arc<Service>) -> (Self, Background) {
        Self::with_ingest(service, IngestConfig::default())
    }

    /// The same, with position ingest using `config`.
    pub fn with_ingest(service: Arc<Service>, config: IngestConfig) -> (Self, Background) {
        let desk = Arc::new(crate::dispatch::desk::Desk::new(Arc::clone(&service)));
        // The desk refers to incidents and units: the service asks it before a delete.
        let weak = Arc::downgrade(&desk);
        let referrer: std::sync::Weak<dyn crate::service::Referrer> = weak;
        service.add_referrer(referrer);
        let (ingest, writer) = Ingest::new(Arc::clone(&service), config);
        let background = Background { ingest: writer, desk: Arc::clone(&desk) };
        let state = Self {
            desk,
            ingest: Arc::new(ingest),
            roads: None,
            public_rate: Arc::default(),
            shed: Arc::new(guard::Shedder::new(guard::Limits::default())),
            results: Arc::new(result_cache::ResultCache::new(16)),
            service,
            metrics: Arc::new(Metrics::default()),
            tiles: Arc::new(tile_cache::TileCache::new(TILE_CACHE_BYTES)),
            basemap: Arc::new(crate::basemap::Basemap::none()),
            cors_origins: Vec::new(),
        };
        (state, background)
    }

    /// The state with its background already started: for tests and tools that serve at once.
    #[must_use]
    pub fn started(service: Arc<Service>) -> Self {
        let (state, background) = Self::new(service);
        background.start();
        state
    }

    /// The same state routing on these road networks.
    #[must_use]
    pub fn with_roads(mut self, roads: Option<Arc<crate::roads::Roads>>) -> Self {
        self.roads = roads;
        self
    }

    /// The same state with the citizens' lookup limited to `per_minute` per client address
    /// (bursts of a third of a minute's worth, at least the default's).
    #[must_use]
    pub fn with_public_rate(mut self, per_minute: f64) -> Self {
        self.public_rate = Arc::new(public::RateLimiter::new(per_minute, (per_minute / 3.0).max(public::BURST)));
        self
    }

    /// The same state with these in-flight limits.
    #[must_use]
    pub fn with_limits(mut self, limits: guard::Limits) -> Self {
        self.shed = Arc::new(guard::Shedder::new(limits));
        self
    }

    /// The same state answering cross-origin requests from these origins (`https://host:port`,
    /// compared exactly, as browsers send them).
    #[must_use]
    pub fn with_cors_origins(mut self, origins: Vec<HeaderValue>) -> Self {
        self.cors_origins = origins;
        self
    }

    /// The same state serving a basemap.
    #[must_use]
    pub fn with_basemap(mut self, basemap: crate::basemap::Basemap) -> Self {
        self.basemap = Arc::new(basemap);
        self
    }
}

/// The whole HTTP service: every module's routes, merged here and only here.
pub fn app(state: AppState) -> Router {
    let cors = cors(&state.cors_origins);
    let router = Router::new()
        .merge(web::router())
        .merge(wall::router())
        .merge(feed::router())
        .merge(search::router())
        .merge(basemap::router())
        .merge(ops::router())
        .merge(audits::router())
        .merge(grids::router())
        .merge(positions::router())
        .merge(devices::router())
        .merge(dispatch::router())
        .merge(dispatches::router())
        .merge(items::router())
        .merge(tiles::router())
        // Every matched route passes the access policy and the load gates once (api::guard).
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::enforce))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // gzip when the client asks for it: tiles and GeoJSON shrink four- to tenfold.
        .layer(CompressionLayer::new().gzip(true))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state);
    // Outside the guard: a browser's preflight carries no token, and is answered here.
    match cors {
        Some(c) => router.layer(c),
        None => router,
    }
}

/// Cross-origin access for a web client served from another origin (a city's own portal):
/// only the configured origins, only the API's methods and request headers, and the response
/// headers a client acts on. No cookies are involved (tokens travel in `Authorization`), so
/// credentials stay off. `None` without origins: browsers then refuse cross-origin reads.
fn cors(origins: &[HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::IF_NONE_MATCH,
                header::HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::LOCATION, header::RETRY_AFTER, header::ETAG, header::LINK])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The OsmAnd port (5055 by default, like Traccar): every path and method goes to the OsmAnd
/// handler, since tracker apps post to the server's root or to a path of their own.
pub fn osmand_app(state: AppState) -> Router {
    Router::new()
        .fallback(positions::osmand)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    ApiError::not_found("path", req.uri().path(), "no such route; see /api/v1/openapi.json").into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    let mut e = ApiError::invalid("method", req.method().as_str(), "this route does not accept this method");
    e = e.with_status(axum::http::StatusCode::METHOD_NOT_ALLOWED);
    e.into_response()
}

/// Records metrics and a structured log line for every request.
async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let path = req.uri().clone();
    let mut resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    st.metrics.record(method.as_str(), route, status, elapsed);
    // Every answer, JSON included: a browser must never guess a type (problem+json shown as
    // HTML, say).
    resp.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Per-request lines are debug (RUST_LOG=safegrid=debug): at thousands of requests a second
    // an info line each would cost more than the request. Server errors are always logged.
    let micros = elapsed.as_micros() as u64;
    // A 503 is load shed on purpose (or a store that is down, which says so where it is found)
    // and is counted in /metrics: at a flood, a warning each would cost more than the answer.
    if status >= 500 && status != 503 {
        tracing::warn!(target: "safegrid::http", method = %method, route, path = %path.path(), status, micros, "request failed");
    } else {
        tracing::debug!(target: "safegrid::http", method = %method, route, path = %path.path(), status, micros, "request");
    }
    resp
}
