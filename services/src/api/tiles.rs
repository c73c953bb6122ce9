//! Vector tiles from the live state (first part of the map-wall issue).
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
use super::params::Params;
use super::problem::ApiError;
use super::tile_cache::Built;
use crate::access::Principal;
use crate::layer::{Item, Layer, Props};
use crate::live::ItemQuery;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use geo::BoundingRect;
use safegrid_geodata::{BBox, GridCode, GridLevel, LonLat};
use safegrid_tiles::mvt::{self, Feature, Geometry, Value};
use safegrid_tiles::shape::{clip_ring, simplify_ring, snap_ring};
use safegrid_tiles::{MAX_ZOOM, TileId};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

const EXTENT: u32 = 4096;
/// Pixels drawn beyond the tile edge, so that lines and labels meet across tiles.
const BUFFER: u32 = 64;
/// Above this many points a point layer is clustered into cells of `CLUSTER_PX` pixels.
const CLUSTER_ABOVE: usize = 2_000;
const CLUSTER_PX: i32 = 64;
/// Below this zoom the grids layer shows districts (and streets); from it, the grids.
const GRIDS_FROM_ZOOM: u8 = 11;

/// One layer of a tile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TileLayer {
    Grids,
    /// Incidents counted per H3 cell, the resolution chosen by zoom (the heat map).
    IncidentsH3,
    Items(Layer),
}

impl TileLayer {
    fn name(self) -> &'static str {
        match self {
            Self::Grids => "grids",
            Self::IncidentsH3 => "incidents_h3",
            Self::Items(l) => l.name(),
        }
    }

    fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "grids" => return Ok(Self::Grids),
            "incidents_h3" => return Ok(Self::IncidentsH3),
            _ => {}
        }
        s.parse::<Layer>().map(Self::Items).map_err(|_| {
            ApiError::not_found(
                "layers",
                s,
                "unknown tile layer: grids, incidents_h3, incidents, rental_housing, posts, responders or key_personnel",
            )
        })
    }
}

fn parse_layers(text: &str) -> Result<Vec<TileLayer>, ApiError> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let l = TileLayer::parse(part)?;
        if out.contains(&l) {
            return Err(ApiError::invalid("layers", text, format!("{part} is named twice")));
        }
        out.push(l);
    }
    Ok(out)
}

pub(super) fn parse_tile(z: &str, x: &str, y_file: &str) -> Result<TileId, ApiError> {
    let y = y_file
        .strip_suffix(".mvt")
        .or_else(|| y_file.strip_suffix(".pbf"))
        .ok_or_else(|| ApiError::not_found("y", y_file, "tile paths end in {y}.mvt"))?;
    let num = |field: &'static str, v: &str| -> Result<u32, ApiError> {
        v.parse().map_err(|_| ApiError::invalid(field, v, "expected a whole number"))
    };
    let z =
        u8::try_from(num("z", z)?).map_err(|_| ApiError::invalid("z", z, format!("zoom runs from 0 to {MAX_ZOOM}")))?;
    TileId::new(z, num("x", x)?, num("y", y)?).map_err(|e| {
        let field = match e {
            safegrid_tiles::TileError::Zoom { .. } => "z",
            safegrid_tiles::TileError::OutOfRange { axis, .. } => axis,
            _ => "tile",
        };
        ApiError::invalid(field, format!("{z}/{x}/{y}"), e.to_string())
    })
}

/// `GET /tiles/{layers}/{z}/{x}/{y}.mvt`
///
/// # Errors
/// 400 for an unknown or malformed parameter, a layer named twice, or a z/x/y that is not a
/// tile; 404 for an unknown layer or a path not ending in `.mvt`; 503 + `Retry-After` past the
/// tile-build bound; 500 when a build fails; 500 or 503 (with `Retry-After`) when the store fails (a sensitive tile's audit row must
/// precede it).
pub async fn tile(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path((layers, z, x, y)): Path<(String, String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        uri.0.query(),
        &["since", "until", "type", "kind", "category", "status", "priority", "capability", "grid", "v"],
    )?;
    // `v` is the client's cache-buster (the wall adds the data version it saw on the event feed,
    // so that its own tile cache refetches); it changes nothing, so it is not part of the key.
    let query: String =
        uri.0.query().unwrap_or("").split('&').filter(|kv| !kv.starts_with("v=")).collect::<Vec<_>>().join("&");
    // Filters apply to the point layers (the map wall's time slider, type and status switches).
    let filters = ItemQuery { since: p.time("since")?, until: p.time("until")?, ..super::items::filters_from(&p)? };
    let layers = parse_layers(&layers)?;
    let tile = parse_tile(&z, &x, &y)?;
    // Who may read which layer of a tile (grids, hexbins and points alike) was decided by the
    // access policy before this handler ran, before anything could answer (a 304 included).
    let sensitive = layers.iter().any(|l| matches!(l, TileLayer::Items(l) if l.is_sensitive()));
    let grids = st.service.grids();
    let versions: Vec<String> = layers
        .iter()
        .map(|l| match l {
            TileLayer::Grids => grids.version.to_string(),
            TileLayer::IncidentsH3 => {
                let incidents = st.service.layer(Layer::Incidents);
                let v =
                    if hexbins_within_neighbours(tile) { incidents.version_around(tile) } else { incidents.version() };
                v.to_string()
            }
            // Where this tile is: writes elsewhere in the city leave its cached bytes valid.
            TileLayer::Items(l) => st.service.layer(*l).version_at(tile).to_string(),
        })
        .collect();
    let scope: Vec<&str> = who.grids.iter().map(GridCode::as_str).collect();
    let scope = scope.join(",");
    // Everything the tile's bytes depend on: the cache key, and (hashed) the ETag.
    let key = format!("{tile}|{}|{}|{scope}|{}|{query}", versions.join(","), who.role, names(&layers));
    let etag = format!("\"{:016x}\"", super::fnv(key.bytes()));
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
    let audited_layer = layers.iter().find_map(|l| match l {
        TileLayer::Items(x) if x.is_sensitive() => Some(*x),
        _ => None,
    });
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
    layers: Vec<TileLayer>,
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
        let Self { st, who, layers, versions, tile, filters, query, .. } = self;
        let tile = *tile;
        let scope = &self.scope;
        let grids = st.service.grids();
        let mut raw = Vec::new();
        let mut sensitive_count = 0;
        for (l, version) in layers.iter().zip(versions) {
            let layer_key = match l {
                TileLayer::Grids => format!("L|{tile}|grids|{version}"),
                _ => format!("L|{tile}|{}|{version}|{}|{scope}|{query}", l.name(), who.role),
            };
            let layer_sensitive = matches!(l, TileLayer::Items(l) if l.is_sensitive());
            if !layer_sensitive && let Some(bytes) = st.tiles.get(&layer_key) {
                raw.extend_from_slice(&bytes);
                continue;
            }
            let built = match l {
                TileLayer::Grids => grid_layer(&grids, tile),
                TileLayer::IncidentsH3 => hexbin_layer(st, who, tile, filters),
                TileLayer::Items(layer) => {
                    let (mvt_layer, n) = point_layer(st, who, *layer, tile, filters);
                    if layer.is_sensitive() {
                        sensitive_count += n;
                    }
                    mvt_layer
                }
            };
            let bytes = mvt::encode(std::slice::from_ref(&built));
            raw.extend_from_slice(&bytes);
            if !layer_sensitive {
                st.tiles.put(layer_key, bytes::Bytes::from(bytes));
            }
        }
        (raw, sensitive_count)
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

fn names(layers: &[TileLayer]) -> String {
    layers.iter().map(|l| l.name()).collect::<Vec<_>>().join(",")
}

/// The tile's bounds widened by the buffer, as a lon/lat box.
fn buffered_bbox(tile: TileId) -> Option<BBox> {
    let b = tile.bounds();
    let (dx, dy) = (
        (b.east - b.west) * f64::from(BUFFER) / f64::from(EXTENT),
        (b.north - b.south) * f64::from(BUFFER) / f64::from(EXTENT),
    );
    let min = LonLat::new((b.west - dx).max(-180.0), (b.south - dy).max(-90.0)).ok()?;
    let max = LonLat::new((b.east + dx).min(180.0), (b.north + dy).min(90.0)).ok()?;
    BBox::new(min, max)
}

fn grid_layer(grids: &crate::live::GridState, tile: TileId) -> mvt::Layer {
    let show_grids = tile.z >= GRIDS_FROM_ZOOM;
    let b = tile.bounds();
    // Simplify to half a pixel: invisible, and it removes most vertices of a district outline.
    let tolerance = 0.5;
    let (lo, hi) = (-f64::from(BUFFER), f64::from(EXTENT + BUFFER));
    let mut features = Vec::new();
    for u in grids.hierarchy.units() {
        let wanted = if show_grids { u.level == GridLevel::Grid } else { u.level < GridLevel::Community };
        if !wanted {
            continue;
        }
        let Some(r) = u.geometry.bounding_rect() else { continue };
        if r.max().x < b.west || r.min().x > b.east || r.max().y < b.south || r.min().y > b.north {
            continue;
        }
        let mut polygons = Vec::new();
        for poly in &u.geometry.0 {
            let mut rings = Vec::new();
            for (i, ring) in std::iter::once(poly.exterior()).chain(poly.interiors()).enumerate() {
                let px: Vec<[f64; 2]> =
                    ring.0[..ring.0.len().saturating_sub(1)].iter().map(|c| tile.to_pixels(c.x, c.y, EXTENT)).collect();
                let clipped = clip_ring(&px, lo, hi);
                match snap_ring(&simplify_ring(&clipped, tolerance)) {
                    Some(r) => rings.push(r),
                    None if i == 0 => break, // the exterior vanished: so does the polygon
                    None => {}
                }
            }
            if !rings.is_empty() {
                polygons.push(rings);
            }
        }
        if polygons.is_empty() {
            continue;
        }
        let mut properties = vec![
            ("code".to_owned(), Value::String(u.code.to_string())),
            ("name".to_owned(), Value::String(u.name.clone())),
            ("level".to_owned(), Value::String(u.level.name().to_owned())),
        ];
        if let Some(m) = &u.manager {
            properties.push(("manager".to_owned(), Value::String(m.name.clone())));
        }
        // Codes are digits: the numeric code is a stable feature id.
        features.push(Feature { id: u.code.as_str().parse().ok(), geometry: Geometry::Polygons(polygons), properties });
    }
    mvt::Layer { name: "grids".into(), extent: EXTENT, features }
}

/// The H3 resolution whose cells are some 20–60 pixels across at a zoom (at Shenzhen's latitude).
fn hexbin_resolution(z: u8) -> h3o::Resolution {
    use h3o::Resolution as R;
    match z {
        0..=5 => R::Three,
        6 => R::Four,
        7..=8 => R::Five,
        9 => R::Six,
        10..=11 => R::Seven,
        12 => R::Eight,
        13..=14 => R::Nine,
        _ => R::Ten,
    }
}

/// How far beyond a tile (degrees of longitude, of latitude) the incidents its hexbins count
/// may lie: a cell touching the tile lies within a few edge lengths of it.
fn hexbin_reach(tile: TileId) -> (f64, f64) {
    let b = tile.bounds();
    // Three mean edge lengths: cells vary in size, and the mean understates the large ones.
    let reach_deg = 3.0 * hexbin_resolution(tile.z).edge_length_m() / safegrid_geodata::distance::METRES_PER_DEGREE;
    (reach_deg / b.north.abs().max(b.south.abs()).min(85.0).to_radians().cos(), reach_deg)
}

/// Whether every incident a hexbin tile counts lies in the tile or its eight neighbours, so
/// that the incidents' change stamps there ([`crate::live::LayerState::version_around`]) cover it.
/// True wherever cells are smaller than tiles — everywhere but near the poles.
fn hexbins_within_neighbours(tile: TileId) -> bool {
    let b = tile.bounds();
    let (lon_reach, lat_reach) = hexbin_reach(tile);
    // A margin for the neighbours' slightly different heights in Mercator.
    lon_reach < (b.east - b.west) * 0.9 && lat_reach < (b.north - b.south) * 0.9
}

/// Incidents counted per H3 cell. Every cell that touches the tile gets all its incidents, not
/// only those inside the tile, so a cell shows the same count in every tile it spans.
fn hexbin_layer(st: &AppState, who: &Principal, tile: TileId, filters: &ItemQuery) -> mvt::Layer {
    let res = hexbin_resolution(tile.z);
    let b = tile.bounds();
    let (lon_reach, reach_deg) = hexbin_reach(tile);
    let bbox = LonLat::new((b.west - lon_reach).max(-180.0), (b.south - reach_deg).max(-90.0))
        .ok()
        .zip(LonLat::new((b.east + lon_reach).min(180.0), (b.north + reach_deg).min(90.0)).ok())
        .and_then(|(lo, hi)| BBox::new(lo, hi));
    let mut layer = mvt::Layer { name: "incidents_h3".into(), extent: EXTENT, features: Vec::new() };
    let Some(bbox) = bbox else { return layer };
    let counts = {
        let state = st.service.layer(Layer::Incidents);
        let q = ItemQuery { bbox: Some(bbox), ..filters.clone() };
        if who.covers(None) && q.is_index_only() {
            // Positions straight from the point index, as for clusters (`point_layer`).
            let mut points = Vec::new();
            state.for_each_position_in(&q, |_, lon, lat| points.extend(LonLat::new(lon, lat).ok()));
            safegrid_geodata::h3::counts_per_cell(points, res)
        } else {
            let items = state.matching(&q, |it| who.covers_item(it));
            safegrid_geodata::h3::counts_per_cell(items.iter().map(|(it, _)| it.pos), res)
        }
    };
    let mut cells: Vec<_> = counts.into_iter().collect();
    cells.sort_unstable_by_key(|(c, _)| u64::from(*c));
    let (lo, hi) = (-f64::from(BUFFER), f64::from(EXTENT + BUFFER));
    for (cell, count) in cells {
        let hex = safegrid_geodata::h3::cell_polygon(cell);
        let px: Vec<[f64; 2]> =
            hex.exterior().0[..hex.exterior().0.len() - 1].iter().map(|c| tile.to_pixels(c.x, c.y, EXTENT)).collect();
        let Some(ring) = snap_ring(&clip_ring(&px, lo, hi)) else { continue };
        layer.features.push(Feature {
            id: Some(u64::from(cell)),
            geometry: Geometry::Polygons(vec![vec![ring]]),
            properties: vec![
                ("h3".to_owned(), Value::String(cell.to_string())),
                ("count".to_owned(), Value::UInt(count)),
            ],
        });
    }
    layer
}

/// The properties a map needs to draw and label an item: enough for a popup's first line, not
/// the whole record (the API gives that).
fn tile_properties(it: &Item) -> Vec<(String, Value)> {
    let s = |k: &str, v: &str| (k.to_owned(), Value::String(v.to_owned()));
    let mut p = match &it.props {
        Props::Incident(i) => vec![
            s("type", &i.incident_type),
            ("priority".to_owned(), Value::UInt(u64::from(i.priority))),
            s("status", i.status.name()),
            s("reported_at", &i.reported_at.to_rfc3339()),
        ],
        Props::RentalHousing(h) => vec![
            s("safety_rating", h.safety_rating.name()),
            ("units".to_owned(), Value::UInt(u64::from(h.units))),
            ("tenant_count".to_owned(), Value::UInt(u64::from(h.tenant_count))),
        ],
        Props::Post(post) => vec![s("kind", post.kind.name()), s("name", &post.name)],
        Props::Responder(r) => vec![s("kind", r.kind.name()), s("callsign", &r.callsign), s("status", r.status.name())],
        Props::KeyPerson(k) => {
            vec![s("category", &k.category), s("name", &k.name), s("assigned_grid", k.assigned_grid.as_str())]
        }
    };
    if let Some(g) = &it.grid {
        p.push(s("grid_code", g.as_str()));
    }
    p
}

/// A point layer; returns it and how many items it holds (clusters count their members).
fn point_layer(st: &AppState, who: &Principal, layer: Layer, tile: TileId, filters: &ItemQuery) -> (mvt::Layer, usize) {
    let Some(bbox) = buffered_bbox(tile) else {
        return (mvt::Layer { name: layer.name().into(), extent: EXTENT, features: vec![] }, 0);
    };
    let state = st.service.layer(layer);
    let px = |lon: f64, lat: f64| {
        let p = tile.to_pixels(lon, lat, EXTENT);
        [p[0].round() as i32, p[1].round() as i32]
    };
    // A caller who sees every grid, filtering by status and time at most: the point index alone
    // knows which points are in, and when they are too many to draw, their clusters need
    // nothing else.
    if who.covers(None) && filters.is_index_only() {
        let mut points = Vec::new();
        let q = ItemQuery { bbox: Some(bbox), ..filters.clone() };
        state.for_each_position_in(&q, |id, lon, lat| points.push((id, px(lon, lat))));
        let n = points.len();
        let features = if n > CLUSTER_ABOVE {
            clusters(&points.iter().map(|(_, p)| *p).collect::<Vec<_>>())
        } else {
            // Few enough to draw: each item with its properties, in id order.
            points.sort_unstable_by_key(|(id, _)| *id);
            points
                .iter()
                .filter_map(|(id, _)| state.get(*id))
                .map(|it| Feature {
                    id: u64::try_from(it.id).ok(),
                    geometry: Geometry::Points(vec![px(it.pos.lon(), it.pos.lat())]),
                    properties: tile_properties(it),
                })
                .collect()
        };
        return (mvt::Layer { name: layer.name().into(), extent: EXTENT, features }, n);
    }
    let q = ItemQuery { bbox: Some(bbox), ..filters.clone() };
    let mut items = state.matching(&q, |it| who.covers_item(it));
    let n = items.len();
    let to_px = |it: &Item| px(it.pos.lon(), it.pos.lat());
    let features = if n <= CLUSTER_ABOVE {
        // In id order, so that the same data always makes the same bytes (and ETag).
        items.sort_unstable_by_key(|(it, _)| it.id);
        items
            .iter()
            .map(|(it, _)| Feature {
                id: u64::try_from(it.id).ok(),
                geometry: Geometry::Points(vec![to_px(it)]),
                properties: tile_properties(it),
            })
            .collect()
    } else {
        clusters(&items.iter().map(|(it, _)| to_px(it)).collect::<Vec<_>>())
    };
    (mvt::Layer { name: layer.name().into(), extent: EXTENT, features }, n)
}

/// Too many points to draw one by one: one feature per `CLUSTER_PX` cell, at its members' mean
/// position, with their count.
fn clusters(points: &[[i32; 2]]) -> Vec<Feature> {
    let mut cells: HashMap<(i32, i32), (i64, i64, u64)> = HashMap::new();
    for p in points {
        let c = cells.entry((p[0].div_euclid(CLUSTER_PX), p[1].div_euclid(CLUSTER_PX))).or_default();
        c.0 += i64::from(p[0]);
        c.1 += i64::from(p[1]);
        c.2 += 1;
    }
    let mut cells: Vec<_> = cells.into_iter().collect();
    cells.sort_unstable_by_key(|(k, _)| *k);
    cells
        .into_iter()
        .map(|(_, (sx, sy, count))| {
            let c = count as i64;
            Feature {
                id: None,
                geometry: Geometry::Points(vec![[(sx / c) as i32, (sy / c) as i32]]),
                properties: vec![("point_count".to_owned(), Value::UInt(count))],
            }
        })
        .collect()
}

/// `GET /tiles/{layer}.json` — TileJSON 3.0 for one layer or a comma-joined set.
///
/// # Errors
/// 404 for a path not ending in `.json` or an unknown layer; 400 for a layer named twice.
pub async fn tilejson(
    State(st): State<AppState>,
    Caller(_): Caller,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = file
        .strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found("path", file.as_str(), "TileJSON lives at /tiles/{layer}.json"))?;
    let layers = parse_layers(name)?;
    let vector_layers: Vec<_> = layers
        .iter()
        .map(|l| {
            let fields = match l {
                TileLayer::Grids => json!({"code": "String", "name": "String", "level": "String", "manager": "String"}),
                TileLayer::IncidentsH3 => json!({"h3": "String", "count": "Number"}),
                TileLayer::Items(Layer::Incidents) => json!({"type": "String", "priority": "Number", "status": "String", "reported_at": "String", "grid_code": "String", "point_count": "Number"}),
                TileLayer::Items(Layer::RentalHousing) => json!({"safety_rating": "String", "units": "Number", "tenant_count": "Number", "grid_code": "String", "point_count": "Number"}),
                TileLayer::Items(Layer::Posts) => json!({"kind": "String", "name": "String", "grid_code": "String", "point_count": "Number"}),
                TileLayer::Items(Layer::Responders) => json!({"kind": "String", "callsign": "String", "status": "String", "grid_code": "String", "point_count": "Number"}),
                TileLayer::Items(Layer::KeyPersonnel) => json!({"category": "String", "name": "String", "assigned_grid": "String", "grid_code": "String", "point_count": "Number"}),
            };
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
