//! Every API route, every class of bad input, every role — against the real router and a real
//! SQLite store in a temporary directory.

use crate::support;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use safegrid_geodata::{Crs, GridCode, LonLat};
use safegrid_services::access::{Principal, Role};
use safegrid_services::api::{AppState, app};
use safegrid_services::layer::Layer;
use safegrid_services::policy;
use safegrid_services::service::Service;
use safegrid_services::store::{AuditQuery, Store};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

struct Fixture {
    app: Router,
    service: Arc<Service>,
    store: Arc<dyn Store>,
    tokens: HashMap<Role, String>,
    /// The server's load gates, to hold a permit as a running audit would.
    shed: Arc<safegrid_services::api::guard::Shedder>,
    /// The store's temporary directory, removed when the fixture is dropped.
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let (store, dir, _) = support::sqlite_store().await;
    let service = Arc::new(Service::open(store.clone()).await.unwrap());
    service.replace_grids(support::fixture_grids()).await.unwrap();
    let mut tokens = HashMap::new();
    for role in Role::ALL {
        let token = format!("test-token-{}", role.name());
        let grids = if role == Role::GridWorker { vec![GridCode::parse("440304001").unwrap()] } else { vec![] };
        service.add_token(&token, &Principal { name: format!("{} user", role.name()), role, grids }).await.unwrap();
        tokens.insert(role, token);
    }
    let state = AppState::started(service.clone());
    let shed = state.shed.clone();
    let app = app(state);
    Fixture { app, service, store, tokens, shed, dir }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: Value,
    text: String,
    raw: Vec<u8>,
}

impl Fixture {
    async fn call(&self, method: &str, uri: &str, role: Option<Role>, body: Option<Value>) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(r) = role {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", self.tokens[&r]));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/geo+json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type =
            headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, content_type, headers, body, text, raw: bytes.to_vec() }
    }

    async fn count(&self, layer: Layer) -> usize {
        self.store.load_items(layer).await.unwrap().len()
    }

    async fn audit_rows(&self) -> Vec<safegrid_services::store::AuditRow> {
        self.store.audit_rows(AuditQuery { before_id: None, limit: 1000 }).await.unwrap()
    }

    /// The audit rows of reads (writes of key personnel and responders leave rows too).
    async fn read_rows(&self) -> Vec<safegrid_services::store::AuditRow> {
        self.audit_rows().await.into_iter().filter(|r| r.kind == "read").collect()
    }
}

fn point(lon: f64, lat: f64) -> Value {
    json!({"type": "Point", "coordinates": [lon, lat]})
}

fn feature(geometry: Value, properties: Value) -> Value {
    let mut f = json!({"type": "Feature"});
    f["geometry"] = geometry;
    f["properties"] = properties;
    f
}

fn incident(status: &str, priority: u32, reported_at: &str) -> Value {
    json!({"type": "theft", "priority": priority, "status": status, "reported_at": reported_at, "address": "深南大道1号"})
}

fn props_for(layer: Layer) -> Value {
    match layer {
        Layer::Incidents => incident("open", 2, "2026-11-20T08:00:00Z"),
        Layer::RentalHousing => {
            json!({"address": "百花路2号", "units": 12, "tenant_count": 20, "safety_rating": "b", "last_inspection": "2026-10-01"})
        }
        Layer::Posts => {
            json!({"kind": "police_room", "name": "百花警务室", "phone": "0755-80000000", "radio_channel": "CH-07", "opening_hours": "24h"})
        }
        Layer::Responders => {
            json!({"kind": "patrol", "callsign": "巡-0001", "status": "available", "capabilities": ["first_aid"]})
        }
        Layer::KeyPersonnel => {
            json!({"category": "community_correction", "name": "赵六", "assigned_grid": "440304001", "caretaker": "张伟"})
        }
    }
}

fn assert_problem(r: &Reply, status: StatusCode, field: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.text);
    assert_eq!(r.body["status"], status.as_u16());
    assert!(r.body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(r.body["title"].is_string() && r.body["detail"].is_string());
    if !field.is_empty() {
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
        assert!(r.body["errors"][0]["reason"].is_string());
    }
}

fn grid_feature(coords: Value) -> Value {
    let mut f = json!({"type": "Feature", "properties": {"name": "新网格", "manager": "孙七"}, "geometry": {"type": "Polygon"}});
    f["geometry"]["coordinates"] = coords;
    f
}

/// A clock the test moves: the audit log's times, and so its windows, follow it.
fn driven_clock(f: &Fixture) -> Arc<std::sync::atomic::AtomicI64> {
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z").unwrap().to_utc();
    let ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let m = Arc::clone(&ms);
    f.service.set_audit_clock(Arc::new(move || {
        t0 + chrono::Duration::milliseconds(m.load(std::sync::atomic::Ordering::SeqCst))
    }));
    ms
}

// ---------------------------------------------------------------------------------------------
// Vector tiles

use safegrid_tiles::TileId;
use safegrid_tiles::mvt::{self, Geometry as TileGeometry, Value as TileValue};

impl Fixture {
    async fn tile(
        &self,
        path: &str,
        role: Option<Role>,
        if_none_match: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        if let Some(r) = role {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", self.tokens[&r]));
        }
        if let Some(e) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        let resp = self.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
    }
}

fn tile_path(layers: &str, t: TileId) -> String {
    format!("/tiles/{layers}/{}/{}/{}.mvt", t.z, t.x, t.y)
}

// ---- live positions ---------------------------------------------------------------------------

/// A responder carrying tracker `device` at (lon, lat); returns its id.
async fn tracked_unit(f: &Fixture, device: &str, lon: f64, lat: f64) -> i64 {
    let props =
        json!({"kind": "patrol", "callsign": format!("巡-{device}"), "status": "available", "device_id": device});
    let r = f.call("POST", "/api/v1/responders", Some(Role::Dispatcher), Some(feature(point(lon, lat), props))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    trust(f, device);
    r.body["id"].as_i64().unwrap()
}

/// The secret the tests give `device` (set in memory, as a mint would; the routes that mint
/// are tested on their own).
fn test_secret(device: &str) -> String {
    format!("test-secret-{device}")
}

/// What a tracker sends as its identifier: `DEVICE_ID:SECRET`.
fn cred(device: &str) -> String {
    format!("{device}:{}", test_secret(device))
}

/// Puts `device`'s test secret in force.
fn trust(f: &Fixture, device: &str) {
    f.service.device_secrets().set(device, &safegrid_services::positions::devices::secret_hash(&test_secret(device)));
}

async fn form_post(f: &Fixture, uri: &str, form: &str) -> Reply {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    f.send(req).await
}

async fn metric(f: &Fixture, outcome: &str) -> f64 {
    let r = f.call("GET", "/metrics", Some(Role::Admin), None).await;
    let key = format!("safegrid_fixes_total{{outcome=\"{outcome}\"}} ");
    r.text.lines().find_map(|l| l.strip_prefix(&key)).unwrap().parse().unwrap()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Fixes of a walk along lat 22.55 from `from_m` to `to_m` metres east of the border at lon
/// 114.05, one metre and one second a fix, with ±12 m of jitter across the street.
fn border_walk(device: &str, t0: i64, from_m: i32, to_m: i32) -> Value {
    let metre = 1.0 / (111_320.0 * 22.55f64.to_radians().cos());
    let step = if to_m >= from_m { 1 } else { -1 };
    let fixes: Vec<Value> = (0..=(to_m - from_m).abs())
        .map(|i| {
            let along = f64::from(from_m + step * i);
            let jitter = 12.0 * (f64::from(i) * 2.39).sin();
            json!({"device_id": cred(device), "time": t0 + i64::from(i), "lon": 114.05 + (along + jitter) * metre, "lat": 22.55, "accuracy_m": 8})
        })
        .collect();
    json!({ "fixes": fixes })
}

/// Reads server-sent events from a streaming body until `n` events have come (or 10 s pass).
async fn sse_events(body: &mut axum::body::Body, n: usize) -> Vec<(String, Value)> {
    let mut text = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while out.len() < n {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.expect("events in time").unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_owned()))
            };
            if let (Some(id), Some(data)) = (field("id"), field("data")) {
                out.push((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

// ---- dispatch ------------------------------------------------------------------------------

/// The fixture with the demo's Longgang road network, and `n` live units scattered over it.
async fn longgang_fixture(n: usize) -> (Fixture, Arc<safegrid_services::roads::Roads>, tempfile::TempDir, Vec<i64>) {
    use rand::{Rng, SeedableRng};
    let mut f = fixture().await;
    let cache = tempfile::tempdir().unwrap();
    let roads = Arc::new(safegrid_services::roads::Roads::demo(cache.path()).unwrap());
    f.app = app(AppState::started(f.service.clone()).with_roads(Some(roads.clone())));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut ids = Vec::new();
    let mut fixes = Vec::new();
    let t = unix_now() - 10;
    for i in 0..n {
        let (lon, lat) = (rng.random_range(114.195..114.225), rng.random_range(22.678..22.698));
        let kind = if i % 3 == 0 { "police" } else { "patrol" };
        let caps = if i % 2 == 0 { json!(["first_aid"]) } else { json!([]) };
        let props = json!({"kind": kind, "callsign": format!("龙-{i}"), "status": "available", "capabilities": caps, "device_id": format!("lg-{i}")});
        let r =
            f.call("POST", "/api/v1/responders", Some(Role::Dispatcher), Some(feature(point(lon, lat), props))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["id"].as_i64().unwrap());
        trust(&f, &format!("lg-{i}"));
        fixes.push(json!({"device_id": cred(&format!("lg-{i}")), "time": t, "lon": lon, "lat": lat}));
    }
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(json!({"fixes": fixes}))).await;
    assert_eq!(r.body["live"], n, "{}", r.text);
    (f, roads, cache, ids)
}

// ---- dispatch lifecycle --------------------------------------------------------------------

async fn create_at(f: &Fixture, layer: Layer, lon: f64, lat: f64, props: Value) -> i64 {
    let r = f
        .call("POST", &format!("/api/v1/{}", layer.name()), Some(Role::Admin), Some(feature(point(lon, lat), props)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

fn unit_props(name: &str) -> Value {
    json!({"kind": "patrol", "callsign": name, "status": "available"})
}

// ---------------------------------------------------------------------------------------------
// The access policy: every documented route × every role against the table (issue "Close the
// doors"). A route added to the API without a row in `policy::ROUTES` is refused for everyone,
// and a documented one then fails here.

/// The policy row the router would pick for a concrete path: a literal segment beats a
/// parameter, as in axum's router.
fn route_for(method: &str, path: &str) -> Option<&'static policy::Route> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(&'static policy::Route, Vec<usize>)> = None;
    for r in policy::ROUTES.iter().filter(|r| r.method == method) {
        let pat: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let wildcard = pat.last().is_some_and(|s| s.starts_with("{*"));
        if !(pat.len() == segs.len() || wildcard && segs.len() >= pat.len()) {
            continue;
        }
        let ok = pat.iter().zip(&segs).all(|(p, s)| p.starts_with('{') || p == s);
        if !ok {
            continue;
        }
        // Rank by where the literals are, left to right.
        let literal: Vec<usize> = pat.iter().map(|p| usize::from(!p.starts_with('{'))).collect();
        if best.as_ref().is_none_or(|(_, b)| literal > *b) {
            best = Some((r, literal));
        }
    }
    best.map(|(r, _)| r)
}

fn params_of(route: &policy::Route, path: &str) -> HashMap<String, String> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    route
        .path
        .trim_start_matches('/')
        .split('/')
        .zip(segs)
        .filter_map(|(p, s)| {
            p.strip_prefix('{')
                .and_then(|p| p.strip_suffix('}'))
                .map(|n| (n.trim_start_matches('*').to_owned(), s.to_owned()))
        })
        .collect()
}

/// The z14 tile holding a place.
fn tile_of(lon: f64, lat: f64) -> (u32, u32) {
    let n = f64::from(1u32 << 14);
    let x = ((lon + 180.0) / 360.0 * n) as u32;
    let r = lat.to_radians();
    let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n) as u32;
    (x, y)
}

/// Status only: the event streams never end, so their bodies are not read.
async fn status_of(f: &Fixture, method: &str, uri: &str, role: Role, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if role != Role::Public {
        req = req.header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&role]));
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = f.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let streaming =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let v = if streaming {
        Value::Null
    } else {
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap_or(Value::Null)
    };
    (status, v)
}

/// A GET of the OsmAnd route from a client address.
async fn osmand_from(f: &Fixture, addr: &str, query: &str) -> Reply {
    let mut req = Request::builder().method("GET").uri(format!("/api/v1/osmand?{query}")).body(Body::empty()).unwrap();
    let peer: std::net::SocketAddr = addr.parse().unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    f.send(req).await
}

/// Mints `device`'s secret through the API; the identifier a tracker would send.
async fn mint(f: &Fixture, role: Role, device: &str) -> Reply {
    f.call("POST", &format!("/api/v1/devices/{device}/secret"), Some(role), None).await
}

mod access;
mod access_policy;
mod audit_log;
mod audits;
mod dispatch;
mod edges;
mod grids;
mod items;
mod positions;
mod probes;
mod tiles;
mod trackers;
