//! Vector tiles over HTTP. The layers are built by [`crate::tile_source`] (one `TileSource` per
//! layer, no HTTP there); this file parses the request, keys the cache, answers ETags and gzip,
//! and writes the audit row of a key-personnel tile.
//!
//! - `GET /tiles/{layers}/{z}/{x}/{y}.mvt` — `layers` is one name or several joined by commas
//!   (`grids,incidents`), as martin allows: `grids`, `incidents_h3` (incident counts per H3
//!   cell, the resolution chosen by zoom) and the five point layers.
//! - `GET /tiles/{layer}.json` — TileJSON 3.0.
//!
//! Tiles are built from the in-memory indexes, never from the store, and are never stale: a
//! write is in the very next tile. Each tile's cache key and `ETag` hold, for each point layer,
//! the latest write in and around the tile ([`crate::live::LayerState::version_at`]), the grid
//! version, the caller's role and scope, and the filters: an unchanged tile costs a 304, and a
//! write elsewhere in the city leaves it cached. Key-personnel tiles are never cached, never
//! answered with 304, and every one is written to the audit log.
//!
//! Point layers take the list filters as query parameters (`since`, `until`, `type`, `status`,
//! `priority`, `capability`, `grid`). Responses are gzipped when the client accepts it.
//!
//! Whole tiles (plain and gzipped) and single layers are kept in a byte-bounded LRU cache
//! (`tile_cache.rs`); a missing tile is built once, on a blocking thread, however many ask.

use super::AppState;
use super::caller::Caller;
use super::extract::{AppPath, PathValue, TileCoord};
use super::items::with_item_filters;
use super::problem::ApiError;
use super::query::AppQuery;
use super::tile_cache::Built;
use crate::access::Principal;
use crate::layer::Layer;
use crate::live::ItemQuery;
use crate::tile_source::{self, TileRequest, TileSource};
use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use geo::BoundingRect;
use safegrid_geodata::GridCode;
use safegrid_tiles::mvt;
use safegrid_tiles::{MAX_ZOOM, TileId};
use serde_json::json;
use std::sync::Arc;

/// The sources a `layers` path segment names (`grids,incidents`), each once.
pub struct TileLayers(Vec<&'static dyn TileSource>);

impl PathValue for TileLayers {
    /// An unknown layer is a tile set that does not exist (404); a layer named twice is a
    /// malformed request (400).
    fn from_path(field: &str, text: &str) -> Result<Self, ApiError> {
        let mut out: Vec<&'static dyn TileSource> = Vec::new();
        for part in text.split(',') {
            let source = tile_source::named(part).ok_or_else(|| {
                ApiError::not_found(
                    field,
                    part,
                    "unknown tile layer: grids, incidents_h3, incidents, rental_housing, posts, responders or key_personnel",
                )
            })?;
            if out.iter().any(|s| s.name() == source.name()) {
                return Err(ApiError::invalid(field, text, format!("{part} is named twice")));
            }
            out.push(source);
        }
        Ok(Self(out))
    }
}

with_item_filters! {
    /// The filters a tile of point layers takes (the map wall's time slider, type and status
    /// switches), and the client's cache-buster `v`.
    pub struct TileQuery {
        #[serde(default, deserialize_with = "crate::api::query::opt_time")]
        since: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "crate::api::query::opt_time")]
        until: Option<DateTime<Utc>>,
        /// Changes nothing: the wall adds the data version it saw so its own cache refetches.
        #[serde(default, rename = "v")]
        _cache_buster: Option<String>,
    }
}

/// `GET /tiles/{layers}/{z}/{x}/{y}.mvt`
///
/// # Errors
/// 400 for an unknown or malformed parameter, a layer named twice, or a z/x/y that is not a
/// tile; 404 for an unknown layer or a path not ending in `.mvt`; 503 + `Retry-After` past the
/// tile-build bound; 500 when a build fails; 500 or 503 (with `Retry-After`) when the store fails (a sensitive tile's audit row must
/// precede it).
async fn tile(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath((TileLayers(layers), TileCoord(tile))): AppPath<(TileLayers, TileCoord)>,
    AppQuery(q): AppQuery<TileQuery>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // `v` is the client's cache-buster (the wall adds the data version it saw on the event feed,
    // so that its own tile cache refetches); it changes nothing, so it is not part of the key.
    let query: String =
        uri.0.query().unwrap_or("").split('&').filter(|kv| !kv.starts_with("v=")).collect::<Vec<_>>().join("&");
    // Filters apply to the point layers (the map wall's time slider, type and status switches).
    // Checked against every point layer: a tile URL's filters are the wall's, shared by the
    // layers it draws; a value no point layer can hold is refused.
    let filters = ItemQuery { since: q.since, until: q.until, ..q.filters(&Layer::ALL)? };
    // Who may read which layer of a tile (grids, hexbins and points alike) was decided by the
    // access policy before this handler ran, before anything could answer (a 304 included).
    let sensitive = layers.iter().any(|l| l.audited().is_some());
    let versions: Vec<String> = layers.iter().map(|l| l.version(&st.service, tile)).collect();
    let scope: Vec<&str> = who.grids.iter().map(GridCode::as_str).collect();
    let scope = scope.join(",");
    // Everything the tile's bytes depend on: the cache key, and (hashed) the ETag.
    let key = format!("{tile}|{}|{}|{scope}|{}|{query}", versions.join(","), who.role, names(&layers));
    let etag = format!("\"{:016x}\"", crate::fnv::fnv(key.bytes()));
    let not_modified = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str());
    if not_modified && !sensitive {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).map_err(|_| ApiError::internal())?);
        return Ok(r);
    }

    // Tiles are cached gzipped too: compressing a 100 KB tile on every request cost more than
    // everything else a cache hit does (the map-wall benchmark, BENCHMARKS.md).
    let gzip = accepts_gzip(&headers);
    // Prefixed, not suffixed: the key ends with the caller's query string.
    let gz_key = format!("gz|{key}");
    if !sensitive && let Some(body) = st.tiles.get(if gzip { &gz_key } else { &key }) {
        return tile_response(body, Some(&etag), gzip);
    }
    // The sensitive layer the tile shows (key personnel), named in its audit row.
    let audited_layer = layers.iter().find_map(|l| l.audited());
    let job = Job { st: st.clone(), who: who.clone(), layers, versions, tile, filters, query, scope };
    if sensitive {
        // Built for this request alone (never cached, never shared), audited before it leaves.
        let permit = st.shed.start(super::guard::Work::TileBuild)?;
        let (raw, count) = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job.build()
        })
        .await
        .map_err(|_| ApiError::internal())?;
        let entry = crate::audit_log::AuditEntry {
            action: "tile",
            request: &format!("GET {}", uri.0),
            layer: audited_layer,
            result_count: count,
            ..Default::default()
        };
        st.service.audit_entry(&who, entry).await?;
        // The compression layer gzips it on the way out if asked.
        return tile_response(bytes::Bytes::from(raw), None, false);
    }
    let cache = Arc::clone(&st.tiles);
    let raw_key = key.clone();
    // A cold build holds a blocking thread: past the bound, 503 rather than a queue of them.
    let _permit = st.shed.start(super::guard::Work::TileBuild)?;
    let built = st
        .tiles
        .build_once(&key, move || {
            let (raw, _) = job.build();
            let raw = bytes::Bytes::from(raw);
            let gz = gzipped(&raw).map_err(|_| ApiError::internal())?;
            cache.put(raw_key, raw.clone());
            cache.put(gz_key, gz.clone());
            Ok(Built { raw, gz })
        })
        .await?;
    if gzip { tile_response(built.gz, Some(&etag), true) } else { tile_response(built.raw, Some(&etag), false) }
}

/// What a tile is built from, owned, so the build can run on a blocking thread.
struct Job {
    st: AppState,
    who: Principal,
    layers: Vec<&'static dyn TileSource>,
    versions: Vec<String>,
    tile: TileId,
    filters: ItemQuery,
    query: String,
    /// The caller's grid scope, joined (part of each layer's cache key).
    scope: String,
}

impl Job {
    /// The tile's bytes, and how many sensitive items it holds (for the audit row).
    ///
    /// Each layer's bytes are cached on their own too, keyed by what that layer depends on (an
    /// MVT tile is its layers' messages one after another, so cached layers concatenate): a
    /// write to incidents then rebuilds only the incidents part of a composite wall tile, not
    /// its grids and housing, which at low zoom cost the most.
    fn build(&self) -> (Vec<u8>, usize) {
        let Self { st, who, layers, versions, tile, filters, query, scope } = self;
        let req = TileRequest { tile: *tile, who, filters };
        let mut raw = Vec::new();
        let mut audited_items = 0;
        for (source, version) in layers.iter().zip(versions) {
            let name = source.name();
            let layer_key = if source.same_for_everyone() {
                format!("L|{tile}|{name}|{version}")
            } else {
                format!("L|{tile}|{name}|{version}|{}|{scope}|{query}", who.role)
            };
            let audited = source.audited().is_some();
            if !audited && let Some(bytes) = st.tiles.get(&layer_key) {
                raw.extend_from_slice(&bytes);
                continue;
            }
            let built = source.build(&st.service, &req);
            if audited {
                audited_items += built.items;
            }
            let bytes = mvt::encode(std::slice::from_ref(&built.layer));
            raw.extend_from_slice(&bytes);
            if !audited {
                st.tiles.put(layer_key, bytes::Bytes::from(bytes));
            }
        }
        (raw, audited_items)
    }
}

/// This server as the client reached it (`http://` + Host), for the absolute URLs TileJSON and
/// styles carry.
pub(super) fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

/// Whether the client takes gzip (and has not refused it with `q=0`).
pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next() == Some("gzip") && !parts.any(|p| p.replace(' ', "").starts_with("q=0") && !p.contains('.'))
        },
    )
}

/// Gzip for the wire. Large tiles (low zooms, rebuilt after every write around them) use the
/// fastest level: on a 104 KB z11 wall tile, zlib took 1.1 ms at level 1 against 2.8 ms at
/// the default level, for 15 % more bytes (measured with Python's zlib, not this encoder) —
/// which a command centre's LAN does not notice but the wall's p99 under writes does.
fn gzipped(body: &[u8]) -> std::io::Result<bytes::Bytes> {
    use std::io::Write;
    let level = if body.len() > 32 << 10 { flate2::Compression::fast() } else { flate2::Compression::default() };
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 3), level);
    enc.write_all(body)?;
    Ok(bytes::Bytes::from(enc.finish()?))
}

/// A tile response; `gzip` when the body is already gzipped (the compression layer leaves a
/// response with a Content-Encoding alone).
fn tile_response(body: bytes::Bytes, etag: Option<&str>, gzip: bool) -> Result<Response, ApiError> {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.mapbox-vector-tile"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Some(e) = etag {
        h.insert(header::ETAG, HeaderValue::from_str(e).map_err(|_| ApiError::internal())?);
    }
    Ok(r)
}

fn names(layers: &[&'static dyn TileSource]) -> String {
    layers.iter().map(|l| l.name()).collect::<Vec<_>>().join(",")
}

/// `GET /tiles/{layer}.json` — TileJSON 3.0 for one layer or a comma-joined set.
///
/// # Errors
/// 404 for a path not ending in `.json` or an unknown layer; 400 for a layer named twice.
async fn tilejson(
    State(st): State<AppState>,
    Caller(_): Caller,
    AppPath(file): AppPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = file
        .strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found("path", file.as_str(), "TileJSON lives at /tiles/{layer}.json"))?;
    let TileLayers(layers) = TileLayers::from_path("layers", name)?;
    let vector_layers: Vec<_> = layers
        .iter()
        .map(|l| {
            let fields = l.fields();
            json!({"id": l.name(), "fields": fields, "minzoom": 0, "maxzoom": MAX_ZOOM})
        })
        .collect();
    let mut body = json!({
        "tilejson": "3.0.0",
        "name": names(&layers),
        "scheme": "xyz",
        "tiles": [format!("{}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", origin(&headers), names(&layers))],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "vector_layers": vector_layers,
    });
    // Where the data is: the grid layer's extent (clients open the map there).
    let grids = st.service.grids();
    let extent = grids.hierarchy.units().iter().filter_map(|u| u.geometry.bounding_rect()).reduce(|a, b| {
        geo::Rect::new(
            geo::coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
            geo::coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
        )
    });
    if let Some(r) = extent {
        body["bounds"] = json!([r.min().x, r.min().y, r.max().x, r.max().y]);
        body["center"] = json!([r.center().x, r.center().y, 10]);
    }
    Ok(axum::Json(body).into_response())
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new().route("/tiles/{file}", get(tilejson)).route("/tiles/{layers}/{z}/{x}/{y}", get(tile))
}
