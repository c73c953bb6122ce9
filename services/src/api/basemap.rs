//! `/basemap/…`: the offline basemap's style, TileJSON, tiles, glyph ranges and sprite
//! (`crate::basemap`). OpenStreetMap data, fonts and icons: public, no token needed, so any
//! MapLibre client on the command centre's network can use it.
//!
//! - `GET /basemap/style.json` — the dark style (basemap layers only; the wall adds its own)
//! - `GET /basemap/tiles.json` — TileJSON 3.0 of the MBTiles
//! - `GET /basemap/tiles/{z}/{x}/{y}.mvt` — a tile (204 where the file has none)
//! - `GET /basemap/fonts/{fontstack}/{start}-{end}.pbf` — a glyph range
//! - `GET /basemap/sprite[@2x].{json,png}` — the icons

use super::AppState;
use super::extract::{AppPath, TileCoord};
use super::problem::ApiError;
use super::tiles::{accepts_gzip, origin};
use crate::basemap::{self, FONT_STACK};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// Static for as long as the server runs; an hour keeps a restarted server's new basemap from
/// waiting long in the browsers' caches.
const CACHE: &str = "public, max-age=3600";

fn respond(body: impl Into<axum::body::Body>, kind: &'static str, etag: u64, headers: &HeaderMap) -> Response {
    let tag = format!("\"{etag:016x}\"");
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(tag.as_str());
    let mut r =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { (StatusCode::OK, body.into()).into_response() };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// `GET /basemap/style.json`
async fn style(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let body = style_json(&st.basemap, &origin(&headers));
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let tag = crate::fnv::fnv(bytes.iter().copied());
    let mut r = respond(bytes, "application/json", tag, &headers);
    // The style names this server's own URLs: it must not be reused for another Host.
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("host"));
    r
}

/// `GET /basemap/tiles.json`
///
/// # Errors
/// 404 when the server runs without a basemap.
async fn tilejson(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(t) = &st.basemap.tiles else {
        return Err(ApiError::not_found("basemap", "tiles.json", "this server runs without a basemap (see --basemap)"));
    };
    let m = &t.metadata;
    let mut body = json!({
        "tilejson": "3.0.0",
        "name": m.name,
        "attribution": m.attribution,
        "scheme": "xyz",
        "tiles": [format!("{}/basemap/tiles/{{z}}/{{x}}/{{y}}.mvt", origin(&headers))],
        "minzoom": m.minzoom,
        "maxzoom": m.maxzoom,
        "vector_layers": m.vector_layers,
    });
    if let Some(b) = m.bounds {
        body["bounds"] = json!(b);
        body["center"] = json!([f64::midpoint(b[0], b[2]), f64::midpoint(b[1], b[3]), m.maxzoom.min(13)]);
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let tag = crate::fnv::fnv(bytes.iter().copied());
    Ok(respond(bytes, "application/json", tag, &headers))
}

/// `GET /basemap/tiles/{z}/{x}/{y}.mvt`
///
/// # Errors
/// 404 when the server runs without a basemap or the path does not end in `.mvt`; 400 for
/// a z/x/y that is not a tile; 500 when the MBTiles cannot be read or a stored tile is not
/// valid gzip.
async fn tile(
    State(st): State<AppState>,
    AppPath(TileCoord(id)): AppPath<TileCoord>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(t) = &st.basemap.tiles else {
        return Err(ApiError::not_found("basemap", "tiles", "this server runs without a basemap (see --basemap)"));
    };
    let stored = t.tile(id.z, id.x, id.y).await.map_err(|e| {
        tracing::error!(error = %e, "basemap read failed");
        ApiError::internal()
    })?;
    // No tile: an empty answer, as martin gives, which MapLibre draws as an empty tile.
    let Some(stored) = stored else { return Ok(StatusCode::NO_CONTENT.into_response()) };
    let stored_gzip = basemap::is_gzip(&stored);
    let gzip_out = stored_gzip && accepts_gzip(&headers);
    // The two encodings are different representations: different ETags.
    let tag = crate::fnv::fnv(stored.iter().copied()) ^ u64::from(gzip_out);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(format!("\"{tag:016x}\"").as_str()) {
        // Fresh: no need to unpack what will not be sent.
        return Ok(respond(Vec::new(), "application/vnd.mapbox-vector-tile", tag, &headers));
    }
    let body = if stored_gzip && !gzip_out {
        let mut raw = Vec::with_capacity(stored.len() * 4);
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&stored[..]), &mut raw).map_err(|e| {
            tracing::error!(error = %e, tile = %id, "basemap tile is not valid gzip");
            ApiError::internal()
        })?;
        raw
    } else {
        stored
    };
    let mut r = respond(body, "application/vnd.mapbox-vector-tile", tag, &headers);
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip_out {
        // Already compressed: the compression layer leaves a response with an encoding alone.
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(r)
}

/// `GET /basemap/fonts/{fontstack}/{range}.pbf`
///
/// # Errors
/// 400 for a range that is not `START-END.pbf` over 256 code points from a multiple of 256.
async fn glyphs(
    State(st): State<AppState>,
    AppPath((stack, range)): AppPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bad = || {
        ApiError::invalid(
            "range",
            range.as_str(),
            "a glyph range is START-END.pbf, 256 code points from a multiple of 256",
        )
    };
    let (start, end) = range.strip_suffix(".pbf").and_then(|r| r.split_once('-')).ok_or_else(bad)?;
    let (start, end): (u32, u32) = (start.parse().map_err(|_| bad())?, end.parse().map_err(|_| bad())?);
    if !start.is_multiple_of(256) || end != start + 255 || start > 0x10_ffff {
        return Err(bad());
    }
    let body = st.basemap.glyph_range(&stack, start);
    let tag = crate::fnv::fnv(body.iter().copied());
    Ok(respond(body, "application/x-protobuf", tag, &headers))
}

/// `GET /basemap/{sprite file}`: `sprite.json`, `sprite.png`, `sprite@2x.json`, `sprite@2x.png`.
///
/// # Errors
/// 404 for any file but `sprite.json`, `sprite.png`, `sprite@2x.json` and `sprite@2x.png`.
async fn sprite(AppPath(file): AppPath<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (ratio, ext) = match file.as_str() {
        "sprite.json" => (1, "json"),
        "sprite.png" => (1, "png"),
        "sprite@2x.json" => (2, "json"),
        "sprite@2x.png" => (2, "png"),
        _ => return Err(ApiError::not_found("path", format!("/basemap/{file}"), "no such basemap file")),
    };
    let s = basemap::sprite(ratio);
    let tag = crate::fnv::fnv(s.json.bytes()) ^ u64::from(ratio);
    Ok(if ext == "json" {
        respond(s.json.clone(), "application/json", tag, &headers)
    } else {
        respond(s.png.clone(), "image/png", tag.rotate_left(1), &headers)
    })
}

/// The basemap's style: its layers under whatever a client adds, with glyphs and sprite. The
/// `metadata` tells the wall whether Chinese glyphs come from the server
/// (`safegrid:server-ideographs`) and which font stack labels use.
#[must_use]
pub fn style_json(b: &basemap::Basemap, origin: &str) -> Value {
    let font = json!([FONT_STACK]);
    let mut layers = vec![json!({"id": "background", "type": "background", "paint": {"background-color": "#0b1220"}})];
    let mut sources = json!({});
    if let Some(t) = &b.tiles {
        sources["basemap"] = json!({"type": "vector", "url": format!("{origin}/basemap/tiles.json"), "attribution": t.metadata.attribution});
        layers.extend(basemap_layers(&font));
    }
    json!({
        "version": 8,
        "name": "safegrid dark",
        "metadata": {"safegrid:server-ideographs": b.server_ideographs(), "safegrid:font": FONT_STACK},
        "glyphs": format!("{origin}/basemap/fonts/{{fontstack}}/{{range}}.pbf"),
        "sprite": format!("{origin}/basemap/sprite"),
        "sources": sources,
        "layers": layers,
    })
}

/// A dark map for a big screen: muted land, water and roads that stay behind the data drawn
/// over them; labels in a grey-blue that reads at three metres.
fn basemap_layers(font: &Value) -> Vec<Value> {
    let src = |id: &str, layer: &str| json!({"id": id, "source": "basemap", "source-layer": layer});
    let with = |mut base: Value, extra: Value| {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        base
    };
    // Widths grow with zoom; `base` (a number or a per-class expression) sets a road's weight.
    // MapLibre allows one zoom curve per expression, and it must be outermost.
    let road_width = |base: Value| {
        json!([
            "interpolate",
            ["exponential", 1.6],
            ["zoom"],
            10,
            ["*", base, 0.3],
            14,
            ["*", base, 1.6],
            18,
            ["*", base, 8.0]
        ])
    };
    let name = json!(["coalesce", ["get", "name"], ["get", "name_en"], ["get", "ref"]]);
    vec![
        with(
            src("bm-landuse", "landuse"),
            json!({"type": "fill", "paint": {
            "fill-color": ["match", ["get", "class"],
                "park", "#10291f", "green", "#10291f", "forest", "#0f2a1d",
                "industrial", "#17172a", "commercial", "#1b1830", "education", "#1f1c14", "hospital", "#2a1519",
                "#111a2b"],
            "fill-opacity": 0.9}}),
        ),
        with(src("bm-water", "water"), json!({"type": "fill", "paint": {"fill-color": "#0c2a47"}})),
        with(
            src("bm-waterway", "waterway"),
            json!({"type": "line", "paint": {"line-color": "#0c2a47",
            "line-width": ["match", ["get", "class"], "river", 2.5, 1.2]}}),
        ),
        with(
            src("bm-building", "building"),
            json!({"type": "fill", "minzoom": 14, "paint": {
            "fill-color": "#1a2436", "fill-outline-color": "#26334a"}}),
        ),
        with(
            src("bm-path", "road"),
            json!({"type": "line", "filter": ["in", ["get", "class"], ["literal", ["path", "service"]]],
            "paint": {"line-color": "#223046", "line-width": road_width(json!(0.6)), "line-dasharray": [2, 1]}}),
        ),
        with(
            src("bm-rail", "road"),
            json!({"type": "line", "filter": ["==", ["get", "class"], "rail"],
            "paint": {"line-color": "#39404f", "line-width": 1.2, "line-dasharray": [3, 2]}}),
        ),
        with(
            src("bm-road", "road"),
            json!({"type": "line",
            "filter": ["!", ["in", ["get", "class"], ["literal", ["path", "service", "rail"]]]],
            "layout": {"line-cap": "round", "line-join": "round"},
            "paint": {
                "line-color": ["match", ["get", "class"], "motorway", "#6b5634", "trunk", "#5e4f36", "primary", "#3f4d63",
                    "secondary", "#35435a", "tertiary", "#2e3b50", "#28344a"],
                "line-width": road_width(json!(["match", ["get", "class"], "motorway", 2.2, "trunk", 2.0,
                    "primary", 1.7, "secondary", 1.4, "tertiary", 1.1, 0.8]))}}),
        ),
        with(
            src("bm-road-name", "road_name"),
            json!({"type": "symbol", "minzoom": 13,
            "layout": {"symbol-placement": "line", "text-field": name, "text-font": font, "text-size": 12,
                "text-max-angle": 30, "symbol-spacing": 300},
            "paint": {"text-color": "#7f8fa8", "text-halo-color": "#0b1220", "text-halo-width": 1.5}}),
        ),
        with(
            src("bm-poi", "poi"),
            json!({"type": "symbol", "minzoom": 13,
            "layout": {
                "icon-image": ["coalesce", ["image", ["concat", "poi-", ["get", "class"]]], ["image", "poi"]],
                "icon-size": 0.9, "text-field": name, "text-font": font, "text-size": 11,
                "text-offset": [0, 1.1], "text-anchor": "top", "text-optional": true},
            "paint": {"text-color": "#9aa8bf", "text-halo-color": "#0b1220", "text-halo-width": 1.5}}),
        ),
        with(
            src("bm-place", "place"),
            json!({"type": "symbol",
            "layout": {"text-field": name, "text-font": font, "text-size": ["match", ["get", "class"], "suburb", 15, "town", 15, 12]},
            "paint": {"text-color": "#a9b6cc", "text-halo-color": "#0b1220", "text-halo-width": 2}}),
        ),
    ]
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/basemap/style.json", get(style))
        .route("/basemap/tiles.json", get(tilejson))
        .route("/basemap/tiles/{z}/{x}/{y}", get(tile))
        .route("/basemap/fonts/{stack}/{range}", get(glyphs))
        .route("/basemap/{file}", get(sprite))
}
