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
    let state = AppState::new(service.clone());
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

crate::test!(async health_readiness_metrics_and_openapi_answer);
async fn health_readiness_metrics_and_openapi_answer() {
    let f = fixture().await;
    let r = f.call("GET", "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = f.call("GET", "/readyz", None, None).await;
    assert_eq!((r.status, r.body["store"].as_str()), (StatusCode::OK, Some("sqlite")));
    f.call("GET", "/api/v1/locate?lon=114.02&lat=22.55", Some(Role::Dispatcher), None).await;
    assert_problem(&f.call("GET", "/metrics", None, None).await, StatusCode::UNAUTHORIZED, "Authorization");
    assert_problem(&f.call("GET", "/metrics", Some(Role::Dispatcher), None).await, StatusCode::FORBIDDEN, "");
    let r = f.call("GET", "/metrics", Some(Role::Auditor), None).await;
    assert!(
        r.text.contains("safegrid_http_requests_total{method=\"GET\",route=\"/api/v1/locate\",status=\"200\"} 1"),
        "{}",
        r.text
    );
    assert!(r.text.contains("safegrid_grid_units 5"));
    let r = f.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.body["openapi"], "3.1.0");
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/tiles/{layers}/{z}/{x}/{y}.mvt",
        "/tiles/{layers}.json",
        "/api/v1/locate",
        "/api/v1/grids",
        "/api/v1/grids/{code}",
        "/api/v1/audit_log",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} undocumented");
    }
    for l in Layer::ALL {
        for suffix in ["", "/nearest", "/{id}"] {
            assert!(paths.contains_key(&format!("/api/v1/{l}{suffix}")), "{l}{suffix} undocumented");
        }
    }
}

crate::test!(async locate_returns_the_grid_with_its_chain_and_manager);
async fn locate_returns_the_grid_with_its_chain_and_manager() {
    let f = fixture().await;
    let r = f.call("GET", "/api/v1/locate?lon=114.02&lat=22.55", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["inside"], true);
    assert_eq!(r.content_type, "application/json", "a location is JSON, not GeoJSON");
    assert_eq!(r.body["grid"]["code"], "440304001");
    assert_eq!(r.body["grid"]["manager"]["name"], "张伟");
    let chain: Vec<&str> = r.body["chain"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
    assert_eq!(chain, ["440304", "440304001"]);
}

crate::test!(async locate_on_a_shared_border_gives_exactly_one_grid_by_smallest_code);
async fn locate_on_a_shared_border_gives_exactly_one_grid_by_smallest_code() {
    let f = fixture().await;
    // lon 114.10 is the border between 440304002 and 440303001.
    let r = f.call("GET", "/api/v1/locate?lon=114.1&lat=22.55", Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["grid"]["code"], "440303001", "{}", r.text);
}

crate::test!(async locate_outside_every_grid_names_the_nearest_and_its_distance);
async fn locate_outside_every_grid_names_the_nearest_and_its_distance() {
    let f = fixture().await;
    let r = f.call("GET", "/api/v1/locate?lon=114.02&lat=22.49", Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["inside"], false);
    assert_eq!(r.body["nearest"]["grid"]["code"], "440304001");
    let d = r.body["nearest"]["distance_m"].as_f64().unwrap();
    assert!((d - 1112.0).abs() < 2.0, "{d}");
}

crate::test!(async locate_converts_gcj02_and_bd09_input_when_named);
async fn locate_converts_gcj02_and_bd09_input_when_named() {
    let f = fixture().await;
    // A WGS-84 point 30 m west of the 114.05 border; its GCJ-02 position lies ~500 m east of it,
    // so it is located right only if the conversion is applied.
    let w = LonLat::new(114.0497, 22.55).unwrap();
    for crs in [Crs::Gcj02, Crs::Bd09] {
        let c = crs.from_wgs84(w);
        assert!(c.lon() > 114.05);
        let uri = format!("/api/v1/locate?lon={}&lat={}&crs={}", c.lon(), c.lat(), crs.name());
        let r = f.call("GET", &uri, Some(Role::Dispatcher), None).await;
        assert_eq!(r.body["grid"]["code"], "440304001", "{crs}: {}", r.text);
    }
}

crate::test!(async locate_refuses_bad_coordinates_unknown_crs_and_missing_parameters);
async fn locate_refuses_bad_coordinates_unknown_crs_and_missing_parameters() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    assert_problem(&f.call("GET", "/api/v1/locate?lon=114&lat=95", d, None).await, StatusCode::BAD_REQUEST, "lat");
    assert_problem(&f.call("GET", "/api/v1/locate?lon=abc&lat=22", d, None).await, StatusCode::BAD_REQUEST, "lon");
    assert_problem(&f.call("GET", "/api/v1/locate?lon=NaN&lat=22", d, None).await, StatusCode::BAD_REQUEST, "lon");
    assert_problem(&f.call("GET", "/api/v1/locate?lat=22", d, None).await, StatusCode::BAD_REQUEST, "lon");
    let r = f.call("GET", "/api/v1/locate?lon=114&lat=22.5&crs=utm50", d, None).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "crs");
    assert_eq!(r.body["errors"][0]["value"], "utm50");
    assert_problem(
        &f.call("GET", "/api/v1/locate?lon=114&lat=22.5&foo=1", d, None).await,
        StatusCode::BAD_REQUEST,
        "foo",
    );
}

crate::test!(async grids_are_listed_and_fetched_as_geojson);
async fn grids_are_listed_and_fetched_as_geojson() {
    let f = fixture().await;
    let r = f.call("GET", "/api/v1/grids?level=grid", Some(Role::Auditor), None).await;
    assert_eq!(r.body["numberReturned"], 3);
    let r = f.call("GET", "/api/v1/grids?parent=440304&limit=1", Some(Role::Auditor), None).await;
    assert_eq!(r.body["features"][0]["id"], "440304001");
    assert_eq!(r.body["next_cursor"], "440304001");
    let r = f.call("GET", "/api/v1/grids?parent=440304&limit=1&cursor=440304001", Some(Role::Auditor), None).await;
    assert_eq!(r.body["features"][0]["id"], "440304002");
    let r = f.call("GET", "/api/v1/grids/440304002", Some(Role::GridWorker), None).await;
    assert_eq!(r.body["properties"]["manager"], "李娜");
    assert_eq!(r.body["geometry"]["type"], "MultiPolygon");
    assert_problem(
        &f.call("GET", "/api/v1/grids/440304009", Some(Role::Admin), None).await,
        StatusCode::NOT_FOUND,
        "code",
    );
    assert_problem(&f.call("GET", "/api/v1/grids/12", Some(Role::Admin), None).await, StatusCode::BAD_REQUEST, "code");
    assert_problem(
        &f.call("GET", "/api/v1/grids?level=county", Some(Role::Admin), None).await,
        StatusCode::BAD_REQUEST,
        "level",
    );
}

fn grid_feature(coords: Value) -> Value {
    let mut f = json!({"type": "Feature", "properties": {"name": "新网格", "manager": "孙七"}, "geometry": {"type": "Polygon"}});
    f["geometry"]["coordinates"] = coords;
    f
}

crate::test!(async admin_puts_a_grid_and_bad_polygons_are_refused_without_writing);
async fn admin_puts_a_grid_and_bad_polygons_are_refused_without_writing() {
    let f = fixture().await;
    let good =
        grid_feature(json!([[[114.10, 22.50], [114.15, 22.50], [114.15, 22.55], [114.10, 22.55], [114.10, 22.50]]]));
    let r = f.call("PUT", "/api/v1/grids/440303002", Some(Role::Dispatcher), Some(good.clone())).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    let r = f.call("PUT", "/api/v1/grids/440303002", Some(Role::Admin), Some(good)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(f.store.load_grids().await.unwrap().len(), 6);

    let bow_tie = grid_feature(json!([[[114.1, 22.5], [114.2, 22.6], [114.2, 22.5], [114.1, 22.6], [114.1, 22.5]]]));
    let r = f.call("PUT", "/api/v1/grids/440303003", Some(Role::Admin), Some(bow_tie)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "geometry.coordinates");
    assert!(r.body["errors"][0]["reason"].as_str().unwrap().contains("intersects itself"));
    let unclosed = grid_feature(json!([[[114.1, 22.5], [114.2, 22.5], [114.2, 22.6], [114.1, 22.6]]]));
    let r = f.call("PUT", "/api/v1/grids/440303003", Some(Role::Admin), Some(unclosed)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "geometry.coordinates[0]");
    assert!(r.body["errors"][0]["reason"].as_str().unwrap().contains("not closed"));
    let out_of_range = grid_feature(json!([[[114.1, 22.5], [194.2, 22.5], [114.2, 22.6], [114.1, 22.5]]]));
    let r = f.call("PUT", "/api/v1/grids/440303003", Some(Role::Admin), Some(out_of_range)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "geometry.coordinates[0][1]");
    // A grid whose parent does not exist breaks the hierarchy.
    let orphan = grid_feature(json!([[[114.1, 22.5], [114.2, 22.5], [114.2, 22.6], [114.1, 22.5]]]));
    let r = f.call("PUT", "/api/v1/grids/440399001", Some(Role::Admin), Some(orphan)).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "properties.code");
    assert_eq!(f.store.load_grids().await.unwrap().len(), 6, "rejected requests wrote nothing");
}

crate::test!(async editing_a_grid_boundary_relocates_the_items_it_moves);
async fn editing_a_grid_boundary_relocates_the_items_it_moves() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let r = f
        .call("POST", "/api/v1/rental_housing", a, Some(feature(point(114.04, 22.55), props_for(Layer::RentalHousing))))
        .await;
    assert_eq!(r.body["properties"]["grid_code"], "440304001");
    let id = r.body["id"].as_i64().unwrap();
    // Shrink grid 001 to west of 114.03 and widen 002 to meet it: the house now lies in 002.
    let shrink = json!({"type": "Feature", "properties": {"name": "福田第001网格"}, "geometry": {"type": "Polygon",
        "coordinates": [[[114.00, 22.50], [114.03, 22.50], [114.03, 22.60], [114.00, 22.60], [114.00, 22.50]]]}});
    let widen = json!({"type": "Feature", "properties": {"name": "福田第002网格"}, "geometry": {"type": "Polygon",
        "coordinates": [[[114.03, 22.50], [114.10, 22.50], [114.10, 22.60], [114.03, 22.60], [114.03, 22.50]]]}});
    assert_eq!(f.call("PUT", "/api/v1/grids/440304002", a, Some(widen)).await.status, StatusCode::OK);
    assert_eq!(f.call("PUT", "/api/v1/grids/440304001", a, Some(shrink)).await.status, StatusCode::OK);
    let r = f.call("GET", &format!("/api/v1/rental_housing/{id}"), a, None).await;
    assert_eq!(r.body["properties"]["grid_code"], "440304002");
    let stored = f.store.load_items(Layer::RentalHousing).await.unwrap();
    assert_eq!(stored[0].grid.as_ref().unwrap().as_str(), "440304002", "the store moved it too");
    // The worker of grid 001 no longer sees it.
    let r = f.call("GET", &format!("/api/v1/rental_housing/{id}"), Some(Role::GridWorker), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "id");
}

crate::test!(async every_layer_supports_create_read_replace_query_nearest_and_delete);
async fn every_layer_supports_create_read_replace_query_nearest_and_delete() {
    let f = fixture().await;
    for layer in Layer::ALL {
        let l = layer.name();
        let admin = Some(Role::Admin);
        let r =
            f.call("POST", &format!("/api/v1/{l}"), admin, Some(feature(point(114.02, 22.55), props_for(layer)))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.text);
        assert_eq!(r.content_type, "application/geo+json");
        let id = r.body["id"].as_i64().unwrap();
        assert_eq!(r.headers[header::LOCATION], format!("/api/v1/{l}/{id}").as_str());
        assert_eq!(r.body["properties"]["grid_code"], "440304001", "grid computed on write");

        let r = f.call("GET", &format!("/api/v1/{l}/{id}"), admin, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["geometry"]["coordinates"], json!([114.02, 22.55]));

        // Move it east across the border: the grid follows.
        let mut moved = r.body.clone();
        moved["geometry"] = point(114.07, 22.55);
        let r = f.call("PUT", &format!("/api/v1/{l}/{id}"), admin, Some(moved)).await;
        assert_eq!(r.status, StatusCode::OK, "{l}: {}", r.text);
        assert_eq!(r.body["properties"]["grid_code"], "440304002");

        let r = f.call("GET", &format!("/api/v1/{l}?bbox=114.06,22.54,114.08,22.56"), admin, None).await;
        assert_eq!(r.body["numberMatched"], 1, "{l} bbox: {}", r.text);
        let r = f.call("GET", &format!("/api/v1/{l}?bbox=114.00,22.54,114.05,22.56"), admin, None).await;
        assert_eq!(r.body["numberMatched"], 0);
        let r = f.call("GET", &format!("/api/v1/{l}?grid=440304002"), admin, None).await;
        assert_eq!(r.body["numberMatched"], 1);
        let r = f.call("GET", &format!("/api/v1/{l}?grid=440304"), admin, None).await;
        assert_eq!(r.body["numberMatched"], 1, "a district covers its grids");
        let r = f.call("GET", &format!("/api/v1/{l}/nearest?lon=114.07&lat=22.56&k=3"), admin, None).await;
        let d = r.body["features"][0]["properties"]["distance_m"].as_f64().unwrap();
        assert!((d - 1112.0).abs() < 2.0, "{l} nearest distance {d}");

        let r = f.call("DELETE", &format!("/api/v1/{l}/{id}"), admin, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = f.call("GET", &format!("/api/v1/{l}/{id}"), admin, None).await;
        assert_problem(&r, StatusCode::NOT_FOUND, "id");
        assert_eq!(f.count(layer).await, 0);
    }
}

crate::test!(async queries_filter_by_time_type_status_priority_radius_and_paginate);
async fn queries_filter_by_time_type_status_priority_radius_and_paginate() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    for i in 0..25u32 {
        let status = if i % 2 == 0 { "open" } else { "closed" };
        let t = format!("2026-11-{:02}T10:00:00Z", 1 + i);
        let mut p = incident(status, 1 + i % 4, &t);
        if i % 5 == 0 {
            p["type"] = "fire".into();
        }
        let r = f
            .call("POST", "/api/v1/incidents", d, Some(feature(point(114.001 + f64::from(i) * 0.001, 22.55), p)))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let n = |r: &Reply| r.body["numberMatched"].as_u64().unwrap();
    assert_eq!(n(&f.call("GET", "/api/v1/incidents?since=2026-11-10&until=2026-11-20", d, None).await), 10);
    assert_eq!(n(&f.call("GET", "/api/v1/incidents?type=fire", d, None).await), 5);
    assert_eq!(n(&f.call("GET", "/api/v1/incidents?status=open", d, None).await), 13);
    assert_eq!(n(&f.call("GET", "/api/v1/incidents?priority=1&status=open", d, None).await), 7);
    // Points are ~102.8 m apart along the parallel; 250 m around the first holds three.
    let r = f.call("GET", "/api/v1/incidents?lon=114.001&lat=22.55&radius_m=250", d, None).await;
    assert_eq!(n(&r), 3);
    assert!(r.body["features"][2]["properties"]["distance_m"].as_f64().unwrap() > 200.0);
    // Pages of 10 cover everything exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let uri = match cursor {
            Some(c) => format!("/api/v1/incidents?limit=10&cursor={c}"),
            None => "/api/v1/incidents?limit=10".to_owned(),
        };
        let r = f.call("GET", &uri, d, None).await;
        seen.extend(r.body["features"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()));
        match r.body["next_cursor"].as_i64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    // Nearest with a status filter skips the closed ones.
    let r = f.call("GET", "/api/v1/incidents/nearest?lon=114.0015&lat=22.55&k=2&status=open", d, None).await;
    let ids: Vec<i64> = r.body["features"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 3]);
    // Bad filters are named.
    assert_problem(
        &f.call("GET", "/api/v1/incidents?since=yesterday", d, None).await,
        StatusCode::BAD_REQUEST,
        "since",
    );
    assert_problem(&f.call("GET", "/api/v1/incidents?bbox=1,2,3", d, None).await, StatusCode::BAD_REQUEST, "bbox");
    assert_problem(
        &f.call("GET", "/api/v1/incidents?bbox=115,22,114,23", d, None).await,
        StatusCode::BAD_REQUEST,
        "bbox",
    );
    assert_problem(&f.call("GET", "/api/v1/incidents?limit=0", d, None).await, StatusCode::BAD_REQUEST, "limit");
    assert_problem(
        &f.call("GET", "/api/v1/incidents?lon=114&lat=22.5", d, None).await,
        StatusCode::BAD_REQUEST,
        "radius_m",
    );
    assert_problem(
        &f.call("GET", "/api/v1/incidents/nearest?lon=114&lat=22.5&k=1000", d, None).await,
        StatusCode::BAD_REQUEST,
        "k",
    );
}

crate::test!(async positions_are_returned_in_the_crs_the_caller_names);
async fn positions_are_returned_in_the_crs_the_caller_names() {
    let f = fixture().await;
    let w = LonLat::new(114.02, 22.55).unwrap();
    let g = Crs::Gcj02.from_wgs84(w);
    let r = f
        .call(
            "POST",
            "/api/v1/posts?crs=gcj02",
            Some(Role::Admin),
            Some(feature(point(g.lon(), g.lat()), props_for(Layer::Posts))),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let stored = f.service.layer(Layer::Posts).get(id).unwrap().pos;
    assert!((stored.lon() - 114.02).abs() < 1e-8 && (stored.lat() - 22.55).abs() < 1e-8, "stored as WGS-84");
    let r = f.call("GET", &format!("/api/v1/posts/{id}?crs=gcj02"), Some(Role::Admin), None).await;
    let c = &r.body["geometry"]["coordinates"];
    assert!((c[0].as_f64().unwrap() - g.lon()).abs() < 1e-8);
}

crate::test!(async every_bad_input_class_is_a_named_problem_and_writes_nothing);
async fn every_bad_input_class_is_a_named_problem_and_writes_nothing() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let good = props_for(Layer::Incidents);
    let cases: Vec<(Option<Value>, StatusCode, &str)> = vec![
        (Some(feature(point(114.02, 95.0), good.clone())), StatusCode::UNPROCESSABLE_ENTITY, "geometry.coordinates[1]"),
        (
            Some(feature(point(f64::MAX, 22.0), good.clone())),
            StatusCode::UNPROCESSABLE_ENTITY,
            "geometry.coordinates[0]",
        ),
        (
            Some(feature(
                json!({"type": "Polygon", "coordinates": [[[114, 22], [115, 22], [115, 23], [114, 22]]]}),
                good.clone(),
            )),
            StatusCode::UNPROCESSABLE_ENTITY,
            "geometry.type",
        ),
        (
            Some(feature(json!({"type": "Point", "coordinates": ["114", 22]}), good.clone())),
            StatusCode::UNPROCESSABLE_ENTITY,
            "geometry.coordinates[0]",
        ),
        (Some(feature(point(114.02, 22.55), json!({"type": "theft"}))), StatusCode::BAD_REQUEST, "properties.priority"),
        (
            Some(feature(point(114.02, 22.55), {
                let mut p = good.clone();
                p["colour"] = "red".into();
                p
            })),
            StatusCode::BAD_REQUEST,
            "properties.colour",
        ),
        (
            Some(feature(point(114.02, 22.55), {
                let mut p = good.clone();
                p["status"] = "lost".into();
                p
            })),
            StatusCode::BAD_REQUEST,
            "properties.status",
        ),
        (Some(json!({"type": "FeatureCollection", "features": []})), StatusCode::BAD_REQUEST, "type"),
        (Some(json!([1, 2])), StatusCode::BAD_REQUEST, "body"),
    ];
    for (body, status, field) in cases {
        let r = f.call("POST", "/api/v1/incidents", a, body).await;
        assert_problem(&r, status, field);
    }
    // Malformed JSON names line and column.
    let req = Request::post("/api/v1/incidents")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Admin]))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"type\": \"Feature\", "))
        .unwrap();
    let r = f.send(req).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "body");
    assert_eq!(r.body["type"], "/problems/malformed-json");
    assert!(r.body["detail"].as_str().unwrap().contains("line 1"));
    // Oversize body.
    let big = json!({"type": "Feature", "geometry": point(114.02, 22.55), "properties": {"description": "x".repeat(2 << 20)}});
    assert_problem(&f.call("POST", "/api/v1/incidents", a, Some(big)).await, StatusCode::PAYLOAD_TOO_LARGE, "body");
    // Wrong media type.
    let req = Request::post("/api/v1/incidents")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Admin]))
        .header(header::CONTENT_TYPE, "text/csv")
        .body(Body::from("lon,lat"))
        .unwrap();
    assert_problem(&f.send(req).await, StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type");
    // Unknown layer, unknown CRS, bad id, unknown route, wrong method.
    assert_problem(&f.call("GET", "/api/v1/bicycles", a, None).await, StatusCode::NOT_FOUND, "layer");
    let r = f.call("POST", "/api/v1/incidents?crs=mars", a, Some(feature(point(114.02, 22.55), good.clone()))).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "crs");
    assert_problem(&f.call("GET", "/api/v1/incidents/abc", a, None).await, StatusCode::BAD_REQUEST, "id");
    assert_problem(&f.call("GET", "/nowhere", a, None).await, StatusCode::NOT_FOUND, "path");
    assert_problem(&f.call("DELETE", "/api/v1/audit_log", a, None).await, StatusCode::METHOD_NOT_ALLOWED, "method");

    assert_eq!(f.count(Layer::Incidents).await, 0, "no rejected request wrote anything");
    assert_eq!(f.service.layer(Layer::Incidents).len(), 0);
}

crate::test!(async tokens_are_checked_and_the_public_sees_only_the_nearest_posts);
async fn tokens_are_checked_and_the_public_sees_only_the_nearest_posts() {
    let f = fixture().await;
    f.call("POST", "/api/v1/posts", Some(Role::Admin), Some(feature(point(114.02, 22.55), props_for(Layer::Posts))))
        .await;
    f.call(
        "POST",
        "/api/v1/responders",
        Some(Role::Admin),
        Some(feature(point(114.02, 22.55), props_for(Layer::Responders))),
    )
    .await;
    // Anonymous and public-token callers alike.
    for role in [None, Some(Role::Public)] {
        let r = f.call("GET", "/api/v1/posts/nearest?lon=114.021&lat=22.55&k=3", role, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let props = r.body["features"][0]["properties"].as_object().unwrap();
        let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["distance_m", "kind", "name", "open_now", "opening_hours", "phone", "walk_s", "walk_source"],
            "no internal fields"
        );
        assert!(r.body["features"][0].get("id").is_none(), "no ids: {}", r.text);
        // Filters that would probe internal data are refused by name.
        for probe in ["status=open", "grid=440304001", "capability=first_aid", "type=theft", "fields=radio_channel"] {
            let r = f.call("GET", &format!("/api/v1/posts/nearest?lon=114.021&lat=22.55&{probe}"), role, None).await;
            assert_problem(&r, StatusCode::BAD_REQUEST, probe.split('=').next().unwrap());
        }
        for uri in [
            "/api/v1/responders/nearest?lon=114&lat=22.5",
            "/api/v1/posts",
            "/api/v1/incidents",
            "/api/v1/locate?lon=114&lat=22.5",
            "/api/v1/key_personnel",
        ] {
            assert_problem(&f.call("GET", uri, role, None).await, StatusCode::UNAUTHORIZED, "");
        }
        let r =
            f.call("POST", "/api/v1/posts", role, Some(feature(point(114.02, 22.55), props_for(Layer::Posts)))).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED, "");
    }
    let req = Request::get("/api/v1/incidents")
        .header(header::AUTHORIZATION, "Bearer not-a-token")
        .body(Body::empty())
        .unwrap();
    assert_problem(&f.send(req).await, StatusCode::UNAUTHORIZED, "");
    let req = Request::get("/api/v1/incidents")
        .header(header::AUTHORIZATION, "Basic Zm9vOmJhcg==")
        .body(Body::empty())
        .unwrap();
    assert_problem(&f.send(req).await, StatusCode::UNAUTHORIZED, "");
}

crate::test!(async roles_may_write_only_what_they_are_allowed);
async fn roles_may_write_only_what_they_are_allowed() {
    let f = fixture().await;
    let body = |l| Some(feature(point(114.02, 22.55), props_for(l)));
    let r = f.call("POST", "/api/v1/incidents", Some(Role::Auditor), body(Layer::Incidents)).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    let r = f.call("POST", "/api/v1/key_personnel", Some(Role::Dispatcher), body(Layer::KeyPersonnel)).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    let r = f.call("POST", "/api/v1/incidents", Some(Role::Dispatcher), body(Layer::Incidents)).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = f.call("GET", "/api/v1/audit_log", Some(Role::Dispatcher), None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    assert_eq!(f.count(Layer::KeyPersonnel).await, 0);
}

crate::test!(async a_grid_worker_reads_and_edits_only_its_own_grids);
#[expect(clippy::float_cmp, reason = "a longitude stored as sent comes back exactly")]
async fn a_grid_worker_reads_and_edits_only_its_own_grids() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let w = Some(Role::GridWorker);
    let mine = f
        .call("POST", "/api/v1/rental_housing", a, Some(feature(point(114.02, 22.55), props_for(Layer::RentalHousing))))
        .await;
    let theirs = f
        .call("POST", "/api/v1/rental_housing", a, Some(feature(point(114.07, 22.55), props_for(Layer::RentalHousing))))
        .await;
    let (mine, theirs) = (mine.body["id"].as_i64().unwrap(), theirs.body["id"].as_i64().unwrap());

    let r = f.call("GET", "/api/v1/rental_housing", w, None).await;
    let ids: Vec<i64> = r.body["features"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [mine], "lists are cut to the worker's grids");
    let r = f.call("GET", "/api/v1/rental_housing/nearest?lon=114.07&lat=22.55&k=5", w, None).await;
    assert_eq!(r.body["features"].as_array().unwrap().len(), 1);
    // Outside the worker's grids an item is "not found": a 403 would confirm that it exists.
    assert_problem(
        &f.call("GET", &format!("/api/v1/rental_housing/{theirs}"), w, None).await,
        StatusCode::NOT_FOUND,
        "id",
    );

    // Edit inside: fine. Move out of its grids, create outside: refused. Edit or delete outside:
    // not found.
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/rental_housing/{mine}"),
            w,
            Some(feature(point(114.03, 22.56), props_for(Layer::RentalHousing))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/rental_housing/{mine}"),
            w,
            Some(feature(point(114.08, 22.56), props_for(Layer::RentalHousing))),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/rental_housing/{theirs}"),
            w,
            Some(feature(point(114.03, 22.56), props_for(Layer::RentalHousing))),
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "id");
    assert_problem(
        &f.call("DELETE", &format!("/api/v1/rental_housing/{theirs}"), w, None).await,
        StatusCode::NOT_FOUND,
        "id",
    );
    let r = f
        .call("POST", "/api/v1/rental_housing", w, Some(feature(point(114.15, 22.55), props_for(Layer::RentalHousing))))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    assert_eq!(f.count(Layer::RentalHousing).await, 2);
    let stored = f.store.load_items(Layer::RentalHousing).await.unwrap();
    assert_eq!(stored.iter().find(|i| i.id == mine).unwrap().pos.lon(), 114.03, "only the allowed edit landed");
}

crate::test!(async every_read_of_key_personnel_appends_an_audit_row);
async fn every_read_of_key_personnel_appends_an_audit_row() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let r = f
        .call("POST", "/api/v1/key_personnel", a, Some(feature(point(114.02, 22.55), props_for(Layer::KeyPersonnel))))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    // Seen in the neighbour's grid, but assigned to the worker's: the worker still sees them.
    let mut moved = r.body.clone();
    moved["geometry"] = point(114.07, 22.55);
    assert_eq!(f.call("PUT", &format!("/api/v1/key_personnel/{id}"), a, Some(moved)).await.status, StatusCode::OK);
    assert!(f.read_rows().await.is_empty(), "writes are not reads");
    assert_eq!(f.audit_rows().await.len(), 2, "but they are audited, as writes");

    let reads: [(Role, String, &str, i64); 5] = [
        (Role::Dispatcher, "/api/v1/key_personnel?grid=440304".into(), "query", 1),
        (Role::Dispatcher, format!("/api/v1/key_personnel/{id}"), "get", 1),
        (Role::Auditor, "/api/v1/key_personnel/nearest?lon=114.07&lat=22.55&k=3".into(), "nearest", 1),
        (Role::GridWorker, format!("/api/v1/key_personnel/{id}"), "get", 1),
        (Role::Admin, "/api/v1/key_personnel?category=mental_health".into(), "query", 0),
    ];
    for (i, (role, uri, action, count)) in reads.iter().enumerate() {
        let r = f.call("GET", uri, Some(*role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
        let rows = f.read_rows().await;
        assert_eq!(rows.len(), i + 1, "one row per read");
        let row = &rows[0];
        assert_eq!((row.role.as_str(), row.action.as_str(), row.result_count), (role.name(), *action, *count));
        assert_eq!(row.actor, format!("{} user", role.name()));
        assert_eq!(row.request, format!("GET {uri}"));
    }
    // Reads of other layers are not audited; the auditor reads the log, nobody can change it.
    f.call("GET", "/api/v1/incidents", Some(Role::Dispatcher), None).await;
    assert_eq!(f.read_rows().await.len(), 5);
    let r = f.call("GET", "/api/v1/audit_log?limit=2", Some(Role::Auditor), None).await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 2);
    let before = r.body["next_before"].as_i64().unwrap();
    let r = f.call("GET", &format!("/api/v1/audit_log?before={before}"), Some(Role::Auditor), None).await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 5, "three reads and the two writes");
    for method in ["PUT", "DELETE", "POST"] {
        assert_problem(
            &f.call(method, "/api/v1/audit_log", Some(Role::Admin), Some(json!({}))).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
        );
    }
    assert_eq!(f.read_rows().await.len(), 5);
}

crate::test!(async writes_of_key_personnel_and_responders_leave_write_rows_naming_the_subject);
async fn writes_of_key_personnel_and_responders_leave_write_rows_naming_the_subject() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let r = f
        .call("POST", "/api/v1/key_personnel", a, Some(feature(point(114.02, 22.55), props_for(Layer::KeyPersonnel))))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let mut moved = r.body.clone();
    moved["geometry"] = point(114.03, 22.55);
    assert_eq!(f.call("PUT", &format!("/api/v1/key_personnel/{id}"), a, Some(moved)).await.status, StatusCode::OK);
    assert_eq!(f.call("DELETE", &format!("/api/v1/key_personnel/{id}"), a, None).await.status, StatusCode::NO_CONTENT);
    // Refused attempts leave a row too: a grid worker's key person outside its grid, a delete
    // of an id that is not there.
    let mut elsewhere = props_for(Layer::KeyPersonnel);
    elsewhere["assigned_grid"] = json!("440304002");
    let r = f
        .call("POST", "/api/v1/key_personnel", Some(Role::GridWorker), Some(feature(point(114.07, 22.55), elsewhere)))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(f.call("DELETE", "/api/v1/key_personnel/999999", a, None).await.status, StatusCode::NOT_FOUND);
    // A role that may not write key personnel at all is refused at the door, and recorded there.
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/key_personnel/{id}"),
            Some(Role::Auditor),
            Some(feature(point(114.02, 22.55), props_for(Layer::KeyPersonnel))),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Responders hold someone's whereabouts: audited; incidents are not.
    let r = f
        .call(
            "POST",
            "/api/v1/responders",
            Some(Role::Dispatcher),
            Some(feature(point(114.02, 22.55), props_for(Layer::Responders))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let unit = r.body["id"].as_i64().unwrap();
    let r =
        f.call("POST", "/api/v1/incidents", a, Some(feature(point(114.02, 22.55), props_for(Layer::Incidents)))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let rows = f.audit_rows().await;
    // kind, action, outcome, layer, subjects, role, actor
    type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Vec<i64>, &'a str, &'a str);
    let got: Vec<Row<'_>> = rows
        .iter()
        .rev()
        .map(|r| {
            (
                r.kind.as_str(),
                r.action.as_str(),
                r.outcome.as_str(),
                r.layer.as_deref(),
                r.subjects.clone(),
                r.role.as_str(),
                r.actor.as_str(),
            )
        })
        .collect();
    let kp = Some("key_personnel");
    assert_eq!(
        got,
        [
            ("write", "create", "ok", kp, vec![id], "admin", "admin user"),
            ("write", "update", "ok", kp, vec![id], "admin", "admin user"),
            ("write", "delete", "ok", kp, vec![id], "admin", "admin user"),
            ("write", "create", "forbidden", kp, vec![], "grid_worker", "grid_worker user"),
            ("write", "delete", "not_found", kp, vec![999_999], "admin", "admin user"),
            ("write", "update", "forbidden", kp, vec![id], "auditor", "auditor user"),
            ("write", "create", "ok", Some("responders"), vec![unit], "dispatcher", "dispatcher user"),
        ]
    );
    assert_eq!(rows[2].request, "delete key_personnel/999999");
    assert_eq!(rows[1].request, format!("update key_personnel/{id}"));
    assert!(rows.iter().all(|r| r.repeats == 1 && r.hash.is_some()));
    // A done write is never collapsed: the same write twice is two rows.
    let mut same = f.call("GET", &format!("/api/v1/responders/{unit}"), a, None).await.body;
    same["geometry"] = point(114.021, 22.55);
    let rows = f.audit_rows().await; // the GET is a read of a responder, itself a row
    for _ in 0..2 {
        let r = f.call("PUT", &format!("/api/v1/responders/{unit}"), a, Some(same.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert_eq!(f.audit_rows().await.len(), rows.len() + 2);
    // A refusal changed nothing: repeated within the window it is counted, so that a script
    // retrying a forbidden write cannot flood the log (this one repeats the delete above).
    for _ in 0..3 {
        f.call("DELETE", "/api/v1/key_personnel/999999", a, None).await;
    }
    assert_eq!(f.audit_rows().await.len(), rows.len() + 2, "the repeats wait for their window");
    f.service.flush_audit().await;
    let after = f.audit_rows().await;
    assert_eq!(after.len(), rows.len() + 3);
    assert_eq!(
        (after[0].kind.as_str(), after[0].outcome.as_str(), after[0].request.as_str(), after[0].repeats),
        ("write", "not_found", "delete key_personnel/999999", 3)
    );
    let v = safegrid_services::audit_log::verify(f.store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, None);
    assert_eq!(v.check.chained, rows.len() as u64 + 3);
}

crate::test!(async a_write_whose_audit_row_cannot_be_stored_does_not_happen);
/// A write of an audited layer and its audit row are one transaction: when the row cannot be
/// appended, the write does not happen either (in the store or in memory), and the caller hears
/// so.
async fn a_write_whose_audit_row_cannot_be_stored_does_not_happen() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let id = create_at(&f, Layer::KeyPersonnel, 114.02, 22.55, props_for(Layer::KeyPersonnel)).await;
    let before = f.store.load_items(Layer::KeyPersonnel).await.unwrap();
    // The audit log refuses rows of updates (a full disk, a broken constraint: any failure).
    let db = f.dir.path().join("test.db");
    let mut c =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_update_rows BEFORE INSERT ON audit_log WHEN NEW.action = 'update' AND NEW.outcome = 'ok'
         BEGIN SELECT RAISE(ABORT, 'no room'); END",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let mut moved = f.call("GET", &format!("/api/v1/key_personnel/{id}"), a, None).await.body;
    moved["geometry"] = point(114.03, 22.55);
    let r = f.call("PUT", &format!("/api/v1/key_personnel/{id}"), a, Some(moved.clone())).await;
    assert!(r.status.is_server_error(), "{} {}", r.status, r.text);
    assert_eq!(f.store.load_items(Layer::KeyPersonnel).await.unwrap(), before, "nothing stored");
    let live = f.service.layer(Layer::KeyPersonnel).get(id).map(|it| it.pos).unwrap();
    assert_eq!((live.lon(), live.lat()), (114.02, 22.55), "nothing changed in memory");
    // Once the log takes rows again, the same write goes through, with its row, on an intact chain.
    sqlx::query("DROP TRIGGER refuse_update_rows").execute(&mut c).await.unwrap();
    let r = f.call("PUT", &format!("/api/v1/key_personnel/{id}"), a, Some(moved)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rows = f.audit_rows().await;
    assert_eq!(rows.iter().filter(|r| r.action == "update" && r.outcome == "ok").count(), 1, "{rows:?}");
    let v = safegrid_services::audit_log::verify(f.store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, None);
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

crate::test!(async a_wall_polling_for_an_hour_writes_two_rows_a_window_and_every_read_is_counted);
async fn a_wall_polling_for_an_hour_writes_two_rows_a_window_and_every_read_is_counted() {
    let f = fixture().await;
    let mut ids = Vec::new();
    for lon in [114.02, 114.07] {
        let r = f
            .call(
                "POST",
                "/api/v1/key_personnel",
                Some(Role::Admin),
                Some(feature(point(lon, 22.55), props_for(Layer::KeyPersonnel))),
            )
            .await;
        ids.push(r.body["id"].as_i64().unwrap());
    }
    let ms = driven_clock(&f);
    // Every 3 s for an hour: 1,200 reads; the background flush runs every 6 s.
    let reads = 1200;
    for i in 0..reads {
        ms.store(i * 3000, std::sync::atomic::Ordering::SeqCst);
        if i % 2 == 0 {
            f.service.flush_ended_audit().await;
        }
        let r = f.call("GET", "/api/v1/key_personnel?grid=440304", Some(Role::Dispatcher), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if i == 30 {
            // Mid-window: the first read of the run is already durable.
            let rows = f.read_rows().await;
            assert!(rows.len() >= 2 && rows[0].repeats == 1, "{rows:?}");
        }
    }
    f.service.flush_audit().await; // graceful shutdown
    let rows = f.read_rows().await;
    assert!(rows.len() <= 2 * 60 + 1, "{} rows for an hour of polling", rows.len());
    assert_eq!(rows.iter().map(|r| r.repeats).sum::<i64>(), reads, "the counts add up to every read");
    // Per minute of the hour: at most the run's first read and one row of its repeats.
    let mut per_window: HashMap<i64, usize> = HashMap::new();
    for r in &rows {
        *per_window.entry(r.at.timestamp() / 60).or_default() += 1;
        assert_eq!(r.subjects, ids, "each row names whom the wall saw");
        assert_eq!(r.result_count, 2 * r.repeats);
        if r.repeats > 1 {
            let last = r.last_at.unwrap();
            assert!(last > r.at && last - r.at < chrono::Duration::seconds(60), "{r:?}");
        }
    }
    assert!(per_window.values().all(|n| *n <= 2), "{per_window:?}");
    let v = safegrid_services::audit_log::verify(f.store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, None);
}

crate::test!(async the_audit_log_filters_and_exports_exactly_the_matching_rows);
async fn the_audit_log_filters_and_exports_exactly_the_matching_rows() {
    let f = fixture().await;
    let ms = driven_clock(&f);
    let at = |s: i64| ms.store(s * 1000, std::sync::atomic::Ordering::SeqCst);
    // A caller whose name needs quoting in CSV.
    let odd = "王, \"五\"";
    f.service
        .add_token("odd-token", &Principal { name: odd.into(), role: Role::Dispatcher, grids: vec![] })
        .await
        .unwrap();
    at(0);
    let mut ids = Vec::new();
    for lon in [114.02, 114.07] {
        let r = f
            .call(
                "POST",
                "/api/v1/key_personnel",
                Some(Role::Admin),
                Some(feature(point(lon, 22.55), props_for(Layer::KeyPersonnel))),
            )
            .await;
        ids.push(r.body["id"].as_i64().unwrap());
    }
    at(100);
    f.call("GET", &format!("/api/v1/key_personnel/{}", ids[0]), Some(Role::Dispatcher), None).await;
    at(200);
    f.call("GET", "/api/v1/key_personnel?grid=440304", Some(Role::Auditor), None).await;
    at(300);
    let req = Request::builder()
        .uri(format!("/api/v1/key_personnel/{}", ids[1]))
        .header(header::AUTHORIZATION, "Bearer odd-token")
        .body(Body::empty())
        .unwrap();
    assert_eq!(f.send(req).await.status, StatusCode::OK);
    at(400);
    f.call("DELETE", &format!("/api/v1/key_personnel/{}", ids[1]), Some(Role::Admin), None).await;
    let all = f.audit_rows().await;
    assert_eq!(all.len(), 6);

    let t = |s: i64| {
        (chrono::DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z").unwrap().to_utc() + chrono::Duration::seconds(s))
            .to_rfc3339()
    };
    let enc = |s: &str| s.replace('+', "%2B").replace(' ', "%20").replace(',', "%2C").replace('"', "%22");
    type Case = (String, Box<dyn Fn(&safegrid_services::store::AuditRow) -> bool>);
    let cases: Vec<Case> = vec![
        ("actor=admin%20user".into(), Box::new(|r| r.actor == "admin user")),
        (format!("actor={}", enc(odd)), Box::new(move |r| r.actor == odd)),
        ("role=auditor".into(), Box::new(|r| r.role == "auditor")),
        ("layer=key_personnel".into(), Box::new(|r| r.layer.as_deref() == Some("key_personnel"))),
        ("layer=incidents".into(), Box::new(|_| false)),
        (
            format!("subject={}", ids[1]),
            Box::new({
                let id = ids[1];
                move |r| r.subjects.contains(&id)
            }),
        ),
        ("action=get".into(), Box::new(|r| r.action == "get")),
        ("kind=write".into(), Box::new(|r| r.kind == "write")),
        ("kind=read".into(), Box::new(|r| r.kind == "read")),
        (format!("since={}", enc(&t(150))), Box::new(|r| r.at.timestamp() % 3600 >= 150)),
        (format!("until={}", enc(&t(150))), Box::new(|r| r.at.timestamp() % 3600 < 150)),
        (
            format!("since={}&until={}&kind=read", enc(&t(100)), enc(&t(300))),
            Box::new(|r| {
                let s = r.at.timestamp() % 3600;
                r.kind == "read" && (100..300).contains(&s)
            }),
        ),
    ];
    for (q, keep) in &cases {
        let want: Vec<i64> = all.iter().filter(|r| keep(r)).map(|r| r.id).collect();
        let r = f.call("GET", &format!("/api/v1/audit_log?{q}"), Some(Role::Auditor), None).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
        assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let got: Vec<i64> = r.body["rows"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect();
        assert_eq!(got, want, "{q}");
        // The same rows as CSV.
        let r = f.call("GET", &format!("/api/v1/audit_log?{q}&format=csv"), Some(Role::Admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
        assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
        assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let mut csv = csv::Reader::from_reader(r.raw.as_slice());
        assert_eq!(
            csv.headers().unwrap(),
            &csv::StringRecord::from(safegrid_services::api::ops::AUDIT_CSV_HEADER.to_vec())
        );
        let recs: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
        let got: Vec<i64> = recs.iter().map(|x| x[0].parse().unwrap()).collect();
        assert_eq!(got, want, "{q} as CSV");
        for (rec, row) in recs.iter().zip(all.iter().filter(|r| keep(r))) {
            assert_eq!(
                (&rec[6], &rec[11], &rec[14]),
                (row.actor.as_str(), row.request.as_str(), row.hash.as_deref().unwrap())
            );
            let subjects: Vec<i64> = rec[10].split_whitespace().map(|s| s.parse().unwrap()).collect();
            assert_eq!(subjects, row.subjects);
        }
    }
    // RFC 4180: CRLF, and a field with a comma or quote quoted, its quotes doubled.
    let r = f.call("GET", "/api/v1/audit_log?format=csv&limit=1", Some(Role::Auditor), None).await;
    assert!(r.text.starts_with(
        "id,at,last_at,repeats,kind,outcome,actor,role,action,layer,subjects,request,result_count,prev_hash,hash\r\n"
    ));
    assert_eq!(r.headers.get("x-next-before").unwrap().to_str().unwrap(), all[0].id.to_string());
    let r = f.call("GET", &format!("/api/v1/audit_log?format=csv&actor={}", enc(odd)), Some(Role::Auditor), None).await;
    assert!(r.text.contains(",\"王, \"\"五\"\"\","), "{}", r.text);
    // Paging with filters.
    let r = f.call("GET", "/api/v1/audit_log?layer=key_personnel&limit=2", Some(Role::Auditor), None).await;
    let next = r.body["next_before"].as_i64().unwrap();
    let r =
        f.call("GET", &format!("/api/v1/audit_log?layer=key_personnel&before={next}"), Some(Role::Auditor), None).await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 4);

    // Bad filter values name the parameter; the answer is not cached either.
    for (q, field) in [
        ("role=chief", "role"),
        ("layer=people", "layer"),
        ("kind=delete", "kind"),
        ("subject=abc", "subject"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("format=xml", "format"),
        ("actor=", "actor"),
        ("limit=0", "limit"),
        ("owner=x", "owner"),
    ] {
        let r = f.call("GET", &format!("/api/v1/audit_log?{q}"), Some(Role::Auditor), None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, field);
        assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store", "{q}");
    }
    let r = f
        .call(
            "GET",
            &format!("/api/v1/audit_log?since={}&until={}", enc(&t(300)), enc(&t(100))),
            Some(Role::Auditor),
            None,
        )
        .await;
    assert_eq!(r.body["rows"], json!([]), "an empty interval has no rows");
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

crate::test!(async a_written_item_is_in_the_very_next_tile_and_etags_follow_the_data);
async fn a_written_item_is_in_the_very_next_tile_and_etags_follow_the_data() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let t = TileId::containing(114.02, 22.55, 14);
    let (status, headers, body) = f.tile(&tile_path("incidents", t), d, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.mapbox-vector-tile");
    assert!(mvt::decode(&body).unwrap()[0].features.is_empty());
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let (status, _, _) = f.tile(&tile_path("incidents", t), d, Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED, "unchanged data: 304");

    let r =
        f.call("POST", "/api/v1/incidents", d, Some(feature(point(114.02, 22.55), props_for(Layer::Incidents)))).await;
    let id = r.body["id"].as_u64().unwrap();
    let (status, headers, body) = f.tile(&tile_path("incidents", t), d, Some(&etag)).await;
    assert_eq!(status, StatusCode::OK, "the write changes the ETag");
    assert_ne!(headers[header::ETAG].to_str().unwrap(), etag);
    let layers = mvt::decode(&body).unwrap();
    let feat = &layers[0].features[0];
    assert_eq!(feat.id, Some(id));
    let want = t.to_pixels(114.02, 22.55, 4096);
    let TileGeometry::Points(p) = &feat.geometry else { panic!() };
    assert!((f64::from(p[0][0]) - want[0]).abs() <= 0.5 && (f64::from(p[0][1]) - want[1]).abs() <= 0.5);
    assert!(feat.properties.contains(&("grid_code".into(), TileValue::String("440304001".into()))));
}

crate::test!(async the_grids_layer_shows_districts_when_far_and_grids_when_near);
async fn the_grids_layer_shows_districts_when_far_and_grids_when_near() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let codes = |body: &[u8]| -> Vec<String> {
        let layers = mvt::decode(body).unwrap();
        let mut c: Vec<String> = layers[0]
            .features
            .iter()
            .map(|f| match &f.properties[0].1 {
                TileValue::String(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        c.sort();
        c
    };
    let near = TileId::containing(114.05, 22.55, 12);
    let (_, _, body) = f.tile(&tile_path("grids", near), d, None).await;
    assert_eq!(codes(&body), ["440304001", "440304002"]);
    let far = TileId::containing(114.1, 22.55, 8);
    let (_, _, body) = f.tile(&tile_path("grids,posts", far), d, None).await;
    assert_eq!(codes(&body), ["440303", "440304"]);
    let layers = mvt::decode(&body).unwrap();
    assert_eq!(layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["grids", "posts"]);
    // Every polygon decodes with a clockwise exterior (the decoder refuses anything else).
    for feat in &layers[0].features {
        assert!(matches!(&feat.geometry, TileGeometry::Polygons(p) if !p.is_empty()));
    }
}

crate::test!(async dense_point_layers_are_clustered_with_counts_at_low_zoom);
async fn dense_point_layers_are_clustered_with_counts_at_low_zoom() {
    let f = fixture().await;
    let rows: Vec<_> = (0..3_000)
        .map(|i| {
            let props =
                safegrid_services::layer::Props::parse(Layer::RentalHousing, props_for(Layer::RentalHousing)).unwrap();
            (LonLat::new(114.0 + f64::from(i % 100) * 0.001, 22.5 + f64::from(i / 100) * 0.002).unwrap(), props)
        })
        .collect();
    f.service.bulk_insert(Layer::RentalHousing, rows).await.unwrap();
    let t = TileId::containing(114.05, 22.53, 10);
    let (_, _, body) = f.tile(&tile_path("rental_housing", t), Some(Role::Auditor), None).await;
    let layer = &mvt::decode(&body).unwrap()[0];
    assert!(layer.features.len() < 3_000, "clustered: {} features", layer.features.len());
    let total: u64 = layer
        .features
        .iter()
        .map(|f| match f.properties.iter().find(|(k, _)| k == "point_count") {
            Some((_, TileValue::UInt(n))) => *n,
            _ => panic!("a cluster without point_count"),
        })
        .sum();
    assert_eq!(total, 3_000, "every point is counted once");
}

crate::test!(async key_personnel_tiles_are_scoped_audited_and_refused_to_the_public);
async fn key_personnel_tiles_are_scoped_audited_and_refused_to_the_public() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    f.call("POST", "/api/v1/key_personnel", a, Some(feature(point(114.02, 22.55), props_for(Layer::KeyPersonnel))))
        .await;
    let mut elsewhere = props_for(Layer::KeyPersonnel);
    elsewhere["assigned_grid"] = "440304002".into();
    f.call("POST", "/api/v1/key_personnel", a, Some(feature(point(114.07, 22.55), elsewhere))).await;
    let t = TileId::containing(114.05, 22.55, 11);
    let path = tile_path("key_personnel", t);
    let (status, _, _) = f.tile(&path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, body) = f.tile(&path, Some(Role::Dispatcher), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::ETAG).is_none(), "sensitive tiles are never answered from a client cache");
    assert_eq!(mvt::decode(&body).unwrap()[0].features.len(), 2);
    let (_, _, body) = f.tile(&path, Some(Role::GridWorker), None).await;
    assert_eq!(mvt::decode(&body).unwrap()[0].features.len(), 1, "a grid worker sees its grid only");
    let rows = f.read_rows().await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].action.as_str(), rows[0].role.as_str(), rows[0].result_count), ("tile", "grid_worker", 1));
    assert_eq!((rows[1].action.as_str(), rows[1].result_count), ("tile", 2));
}

crate::test!(async bad_tile_requests_name_what_is_wrong_and_tilejson_describes_the_layers);
async fn bad_tile_requests_name_what_is_wrong_and_tilejson_describes_the_layers() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    for (path, status, field) in [
        ("/tiles/incidents/25/0/0.mvt", StatusCode::BAD_REQUEST, "z"),
        ("/tiles/incidents/2/4/0.mvt", StatusCode::BAD_REQUEST, "x"),
        ("/tiles/incidents/2/0/0.png", StatusCode::NOT_FOUND, "y"),
        ("/tiles/bicycles/2/0/0.mvt", StatusCode::NOT_FOUND, "layers"),
        ("/tiles/posts,posts/2/0/0.mvt", StatusCode::BAD_REQUEST, "layers"),
    ] {
        assert_problem(&f.call("GET", path, d, None).await, status, field);
    }
    let r = f.call("GET", "/tiles/grids,incidents.json", d, None).await;
    assert_eq!(r.body["tilejson"], "3.0.0");
    assert_eq!(r.body["tiles"][0], "http://127.0.0.1:8080/tiles/grids,incidents/{z}/{x}/{y}.mvt");
    assert_eq!(r.body["vector_layers"][1]["id"], "incidents");
}

crate::test!(async gdal_reads_our_tiles_with_their_layers_features_and_properties);
async fn gdal_reads_our_tiles_with_their_layers_features_and_properties() {
    let test = "gdal_reads_our_tiles_with_their_layers_features_and_properties";
    if std::process::Command::new("ogrinfo").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "{test}: CI installs gdal-bin, but ogrinfo is missing");
        eprintln!("{test}: skipped — ogrinfo (Debian gdal-bin) is not installed");
        return;
    }
    let f = fixture().await;
    let a = Some(Role::Admin);
    f.call("POST", "/api/v1/posts", a, Some(feature(point(114.02, 22.55), props_for(Layer::Posts)))).await;
    let t = TileId::containing(114.02, 22.55, 12);
    let (_, _, body) = f.tile(&tile_path("grids,posts", t), a, None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tile.mvt");
    std::fs::write(&file, &body).unwrap();
    let out = std::process::Command::new("ogrinfo").args(["-ro", "-al"]).arg(&file).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}{}", String::from_utf8_lossy(&out.stderr));
    assert!(listing.contains("Layer name: grids") && listing.contains("Layer name: posts"), "{listing}");
    assert!(
        listing.contains("code (String) = 440304001") && listing.contains("name (String) = 百花警务室"),
        "{listing}"
    );
    assert!(listing.contains("POLYGON ((") && listing.contains("POINT ("), "{listing}");
}

crate::test!(async hexbins_count_each_incident_once_and_tiles_take_the_list_filters);
async fn hexbins_count_each_incident_once_and_tiles_take_the_list_filters() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    for i in 0..40u32 {
        let mut p = incident(
            if i % 4 == 0 { "open" } else { "closed" },
            1 + i % 4,
            &format!("2026-11-{:02}T10:00:00Z", 1 + i % 20),
        );
        if i % 10 == 0 {
            p["type"] = "fire".into();
        }
        let r =
            f.call("POST", "/api/v1/incidents", d, Some(feature(point(114.01 + f64::from(i) * 0.002, 22.55), p))).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let t = TileId::containing(114.05, 22.55, 10);
    let count_sum = |body: &[u8]| -> u64 {
        mvt::decode(body).unwrap()[0]
            .features
            .iter()
            .map(|f| match f.properties.iter().find(|(k, _)| k == "count") {
                Some((_, TileValue::UInt(n))) => *n,
                _ => panic!("a hexbin without a count"),
            })
            .sum()
    };
    let (_, _, body) = f.tile(&tile_path("incidents_h3", t), d, None).await;
    assert_eq!(count_sum(&body), 40);
    let (_, _, body) = f.tile(&format!("{}?status=open", tile_path("incidents_h3", t)), d, None).await;
    assert_eq!(count_sum(&body), 10);
    let (_, _, body) =
        f.tile(&format!("{}?type=fire&since=2026-11-01&until=2026-11-11", tile_path("incidents", t)), d, None).await;
    // Fires are i = 0, 10, 20, 30, reported on the 1st, 11th, 1st, 11th: two before the 11th.
    assert_eq!(mvt::decode(&body).unwrap()[0].features.len(), 2);
    let (status, _, _) = f.tile(&format!("{}?colour=red", tile_path("incidents", t)), d, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

crate::test!(async tiles_are_gzipped_when_the_client_accepts_it);
async fn tiles_are_gzipped_when_the_client_accepts_it() {
    use std::io::Read;
    let f = fixture().await;
    let req = Request::get(tile_path("grids", TileId::containing(114.05, 22.55, 12)))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Admin]))
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(mvt::decode(&plain).unwrap()[0].features.len(), 2);
}

crate::test!(async the_tile_cache_answers_repeats_and_never_serves_a_stale_tile);
async fn the_tile_cache_answers_repeats_and_never_serves_a_stale_tile() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let t = TileId::containing(114.02, 22.55, 13);
    let path = tile_path("grids,posts", t);
    let (_, _, first) = f.tile(&path, d, None).await;
    let (_, _, again) = f.tile(&path, d, None).await;
    assert_eq!(first, again);
    let metrics = f.call("GET", "/metrics", Some(Role::Admin), None).await.text;
    assert!(metrics.contains("safegrid_tile_cache_requests{result=\"hit\"} 1"), "{metrics}");
    f.call("POST", "/api/v1/posts", d, Some(feature(point(114.02, 22.55), props_for(Layer::Posts)))).await;
    let (_, _, after) = f.tile(&path, d, None).await;
    let layers = mvt::decode(&after).unwrap();
    assert_eq!(layers[1].features.len(), 1, "the new post is in the next tile, cache or not");

    // A write invalidates the tiles around it, not the whole layer: a tile across the city
    // keeps its ETag (and its cache entry), the one under the write does not.
    let far = tile_path("grids,posts", TileId::containing(114.15, 22.55, 13));
    let etag = async |path: &str| {
        let r = f.call("GET", path, d, None).await;
        (r.status, r.headers[header::ETAG].to_str().unwrap().to_owned())
    };
    let (far_before, near_before) = (etag(&far).await, etag(&path).await);
    f.call("POST", "/api/v1/posts", d, Some(feature(point(114.021, 22.551), props_for(Layer::Posts)))).await;
    assert_eq!(etag(&far).await, far_before, "a write elsewhere changed a distant tile's ETag");
    assert_ne!(etag(&path).await, near_before);
}

crate::test!(async the_wall_learns_who_it_is_counts_within_scope_and_hears_of_changes);
async fn the_wall_learns_who_it_is_counts_within_scope_and_hears_of_changes() {
    let f = fixture().await;
    for (lon, prio, status) in
        [(114.02, 1, "open"), (114.03, 2, "dispatched"), (114.07, 1, "open"), (114.15, 3, "closed")]
    {
        let r = f
            .call(
                "POST",
                "/api/v1/incidents",
                Some(Role::Admin),
                Some(feature(point(lon, 22.55), incident(status, prio, "2026-11-20T08:00:00Z"))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let me = f.call("GET", "/api/v1/whoami", Some(Role::GridWorker), None).await;
    assert_eq!(me.body["role"], "grid_worker");
    assert_eq!(me.body["grids"], json!(["440304001"]));
    assert!(me.body["layers"].as_array().unwrap().contains(&json!("key_personnel")));
    let public = f.call("GET", "/api/v1/whoami", None, None).await;
    assert_eq!((public.body["role"].clone(), public.body["layers"].clone()), (json!("public"), json!([])));

    // The dispatcher sees the whole city; the grid worker only its grid. Closed ones don't count.
    let all = f.call("GET", "/api/v1/stats", Some(Role::Dispatcher), None).await;
    let open = &all.body["open_incidents"];
    assert_eq!(open["total"], 3);
    assert_eq!(open["by_priority"], json!({"1": 2, "2": 1, "3": 0, "4": 0}));
    assert_eq!(open["by_district"], json!([{"code": "440304", "name": "福田区", "open": 3}]));
    assert_eq!(open["top_grids"][0], json!({"code": "440304001", "name": "福田第001网格", "open": 2}));
    assert_eq!(all.body["counts"]["incidents"], 4);
    let mine = f.call("GET", "/api/v1/stats", Some(Role::GridWorker), None).await;
    assert_eq!(mine.body["open_incidents"]["total"], 2);
    assert_eq!(mine.body["counts"]["incidents"], 2);
    assert_eq!(f.call("GET", "/api/v1/stats", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.call("GET", "/api/v1/events", None, None).await.status, StatusCode::UNAUTHORIZED);

    // The event feed: versions at once, and new ones after a write.
    let req = Request::builder()
        .uri("/api/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Dispatcher]))
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    let mut next_event = async || -> Value {
        let mut text = String::new();
        loop {
            let frame =
                tokio::time::timeout(std::time::Duration::from_secs(5), body.frame()).await.unwrap().unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data:"))
                && text.contains("\n\n")
            {
                return serde_json::from_str(line.trim()).unwrap();
            }
        }
    };
    let first = next_event().await;
    assert!(first["incidents"].is_string() && first["grids"].is_string(), "{first}");
    let r = f
        .call(
            "POST",
            "/api/v1/incidents",
            Some(Role::Admin),
            Some(feature(point(114.04, 22.55), incident("open", 1, "2026-11-21T08:00:00Z"))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let second = next_event().await;
    assert_ne!(second["incidents"], first["incidents"]);
    assert_eq!(second["posts"], first["posts"]);

    // Revoking the token ends the open feed: it is re-checked on every turn, not only at
    // connection.
    let hash = safegrid_services::access::token_hash(&f.tokens[&Role::Dispatcher]);
    assert!(f.store.delete_token(&hash).await.unwrap());
    f.service.reload_tokens().await.unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match body.frame().await {
                None => return,
                Some(Ok(_)) => {} // a keep-alive or an event written before the check
                Some(Err(e)) => panic!("{e}"),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the feed went on after its token was revoked");
}

crate::test!(async the_map_wall_and_its_vendored_library_are_served_from_the_binary);
async fn the_map_wall_and_its_vendored_library_are_served_from_the_binary() {
    let f = fixture().await;
    let page = f.call("GET", "/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.text.contains("/web/app.js"));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    for path in [
        "/web/app.js",
        "/web/vendor/maplibre-gl/maplibre-gl.mjs",
        "/web/vendor/maplibre-gl/maplibre-gl-worker.mjs",
        "/web/vendor/maplibre-gl/LICENSE.txt",
    ] {
        let r = f.call("GET", path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let etag = r.headers[header::ETAG].clone();
        let again =
            f.send(Request::builder().uri(path).header(header::IF_NONE_MATCH, etag).body(Body::empty()).unwrap()).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
    }
    assert_problem(&f.call("GET", "/web/nothing.js", None, None).await, StatusCode::NOT_FOUND, "path");
    // Every module the wall imports, from its entry on, is served (a file missing from the
    // binary's table would leave the wall blank).
    let mut todo = vec!["/web/app.js".to_owned()];
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = f.call("GET", &path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.content_type.starts_with("text/javascript"), "{path}: {}", r.content_type);
        for line in r.text.lines().filter(|l| l.trim_start().starts_with("import ")) {
            let from = line.rsplit_once(" from ").map_or(line, |(_, f)| f);
            let target = from.trim().trim_end_matches(';').trim_matches(|c| c == '\'' || c == '"');
            assert!(target.starts_with("/web/"), "{path} imports {target} from elsewhere");
            todo.push(target.to_owned());
        }
    }
    assert!(seen.len() >= 10, "the wall's modules: {seen:?}");
}

crate::test!(async the_basemap_style_tiles_glyphs_and_sprite_are_served_without_a_token);
async fn the_basemap_style_tiles_glyphs_and_sprite_are_served_without_a_token() {
    use safegrid_services::basemap::{Basemap, FONT_STACK};
    use safegrid_tiles::glyphs;
    use std::io::Read;
    let mut f = fixture().await;
    let plain = fixture().await;
    f.app = app(AppState::new(f.service.clone()).with_basemap(Basemap::demo().await.unwrap()));
    let get = |uri: &str, host: &str, extra: Option<(header::HeaderName, &str)>| {
        let mut req = Request::get(uri).header(header::HOST, host);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.body(Body::empty()).unwrap()
    };

    // The style names this server as the client reached it, and every layer's source exists.
    let style = f.send(get("/basemap/style.json", "wall.example:8080", None)).await;
    assert_eq!(style.status, StatusCode::OK);
    let s = &style.body;
    assert_eq!(s["version"], 8);
    assert_eq!(s["glyphs"], "http://wall.example:8080/basemap/fonts/{fontstack}/{range}.pbf");
    assert_eq!(s["sprite"], "http://wall.example:8080/basemap/sprite");
    assert_eq!(s["sources"]["basemap"]["url"], "http://wall.example:8080/basemap/tiles.json");
    assert!(s["sources"]["basemap"]["attribution"].as_str().unwrap().contains("OpenStreetMap"));
    let layers = s["layers"].as_array().unwrap();
    let mut ids = std::collections::HashSet::new();
    for l in layers {
        assert!(ids.insert(l["id"].as_str().unwrap()), "duplicate layer {}", l["id"]);
        if let Some(src) = l["source"].as_str() {
            assert!(s["sources"].get(src).is_some(), "{} draws from missing source {src}", l["id"]);
        }
        if let Some(font) = l["layout"].get("text-font") {
            assert_eq!(font, &json!([FONT_STACK]), "{}", l["id"]);
        }
    }
    assert!(ids.contains("bm-road") && ids.contains("bm-poi"));
    // Without a basemap the style still carries glyphs and sprite, and no basemap source.
    let bare = plain.send(get("/basemap/style.json", "h", None)).await;
    assert_eq!(bare.body["layers"].as_array().unwrap().len(), 1);
    assert!(bare.body["sources"].get("basemap").is_none());
    assert_problem(&plain.send(get("/basemap/tiles.json", "h", None)).await, StatusCode::NOT_FOUND, "basemap");

    // TileJSON and a tile over Longgang: gzipped as stored when accepted, plain otherwise, with
    // an ETag that revalidates; 204 where the file has no tile.
    let tj = f.send(get("/basemap/tiles.json", "h:1", None)).await;
    assert_eq!(tj.body["tilejson"], "3.0.0");
    assert_eq!(tj.body["tiles"][0], "http://h:1/basemap/tiles/{z}/{x}/{y}.mvt");
    let t = TileId::containing(114.21, 22.69, 14);
    let path = format!("/basemap/tiles/{}/{}/{}.mvt", t.z, t.x, t.y);
    let gz = f.send(get(&path, "h", Some((header::ACCEPT_ENCODING, "gzip")))).await;
    assert_eq!(gz.status, StatusCode::OK);
    assert_eq!(gz.headers[header::CONTENT_ENCODING], "gzip");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz.raw[..]).read_to_end(&mut unzipped).unwrap();
    let raw = f.send(get(&path, "h", None)).await;
    assert!(raw.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(raw.raw, unzipped);
    let tile = mvt::decode(&raw.raw).unwrap();
    assert!(tile.iter().any(|l| l.name == "road" && !l.features.is_empty()));
    let etag = raw.headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(f.send(get(&path, "h", Some((header::IF_NONE_MATCH, &etag)))).await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(f.send(get("/basemap/tiles/14/0/0.mvt", "h", None)).await.status, StatusCode::NO_CONTENT);
    assert_problem(&f.send(get("/basemap/tiles/99/0/0.mvt", "h", None)).await, StatusCode::BAD_REQUEST, "z");

    // Glyph ranges: the compiled-in Latin range, an empty one for what nobody has, and a named
    // problem for a malformed range.
    let latin = f.send(get("/basemap/fonts/Noto%20Sans%20CJK%20SC%20Regular/0-255.pbf", "h", None)).await;
    assert_eq!(latin.status, StatusCode::OK);
    let range = glyphs::decode(&latin.raw).unwrap();
    assert!(range.glyphs.iter().any(|g| g.id == u32::from('7') && g.width > 0));
    let han = f.send(get("/basemap/fonts/Noto%20Sans%20CJK%20SC%20Regular/19968-20223.pbf", "h", None)).await;
    assert!(glyphs::decode(&han.raw).unwrap().glyphs.is_empty());
    for bad in ["1-256.pbf", "0-511.pbf", "0-255", "a-b.pbf"] {
        assert_problem(
            &f.send(get(&format!("/basemap/fonts/x/{bad}"), "h", None)).await,
            StatusCode::BAD_REQUEST,
            "range",
        );
    }

    // The sprite: an index whose icons lie inside a PNG twice as large at @2x.
    let one = f.send(get("/basemap/sprite.json", "h", None)).await;
    let two = f.send(get("/basemap/sprite@2x.json", "h", None)).await;
    assert_eq!(one.body["post"]["pixelRatio"], 1);
    assert_eq!(two.body["post"]["width"].as_u64().unwrap(), 2 * one.body["post"]["width"].as_u64().unwrap());
    let png = f.send(get("/basemap/sprite@2x.png", "h", None)).await;
    assert_eq!(png.content_type, "image/png");
    assert!(png.raw.starts_with(b"\x89PNG"));
    assert_problem(&f.send(get("/basemap/sprite@3x.png", "h", None)).await, StatusCode::NOT_FOUND, "path");
}

crate::test!(async a_cached_tile_always_equals_one_built_afresh_after_writes_nearby_and_far);
async fn a_cached_tile_always_equals_one_built_afresh_after_writes_nearby_and_far() {
    // The oracle is a tile built by a second app over the same service with an empty cache.
    // Every tile around the writes, at every zoom the wall uses and for hexbins, clusters and
    // points, must match it byte for byte after each write: the cache keys (change stamps
    // around each tile) may never let a stale tile through.
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let layer_sets = ["incidents_h3", "incidents", "grids,incidents,rental_housing"];
    let writes = [(114.03, 22.55), (114.0999, 22.5501), (114.15, 22.58), (114.03, 22.55)];
    let around = |z: u8| {
        let c = TileId::containing(114.06, 22.55, z);
        let mut v = Vec::new();
        for dx in -2i64..=2 {
            for dy in -2i64..=2 {
                if let Ok(t) = TileId::new(z, (i64::from(c.x) + dx) as u32, (i64::from(c.y) + dy) as u32) {
                    v.push(t);
                }
            }
        }
        v
    };
    // Warm the cache first, so that every later comparison goes through it.
    let check = async |f: &Fixture, fresh: &Router| {
        for z in [6, 8, 10, 11, 12, 14] {
            for t in around(z) {
                for layers in layer_sets {
                    let path = tile_path(layers, t);
                    let (_, _, cached) = f.tile(&path, d, None).await;
                    let req = Request::get(&path)
                        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Dispatcher]))
                        .body(Body::empty())
                        .unwrap();
                    let resp = fresh.clone().oneshot(req).await.unwrap();
                    let built = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
                    assert_eq!(cached, built, "stale {path}");
                }
            }
        }
    };
    check(&f, &app(AppState::new(f.service.clone()))).await;
    for (i, (lon, lat)) in writes.into_iter().enumerate() {
        let r = f
            .call(
                "POST",
                "/api/v1/incidents",
                d,
                Some(feature(point(lon, lat), incident("open", 1, "2026-11-21T08:00:00Z"))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        if i == 3 {
            // And a removal.
            let id = r.body["id"].as_i64().unwrap();
            assert_eq!(
                f.call("DELETE", &format!("/api/v1/incidents/{id}"), Some(Role::Admin), None).await.status,
                StatusCode::NO_CONTENT
            );
        }
        check(&f, &app(AppState::new(f.service.clone()))).await;
    }
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

crate::test!(async an_osmand_tracker_moves_its_unit_in_every_parameter_form);
async fn an_osmand_tracker_moves_its_unit_in_every_parameter_form() {
    let f = fixture().await;
    let id = tracked_unit(&f, "862100012345678", 114.01, 22.51).await;
    let c = cred("862100012345678");
    let t = unix_now() - 30;
    // GET with lat/lon and unix seconds, as OsmAnd sends it.
    let r = f
        .call(
            "GET",
            &format!(
                "/api/v1/osmand?id={c}&lat=22.52&lon=114.049&timestamp={t}&speed=10&bearing=90&batt=80&accuracy=5&sat=9"
            ),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The unit stands where its tracker said, in the grid there.
    let r = f.call("GET", &format!("/api/v1/responders/{id}"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["geometry"]["coordinates"], json!([114.049, 22.52]));
    assert_eq!(r.body["properties"]["grid_code"], "440304001");
    // A form POST with deviceid, location=lat,lon and milliseconds moves it across the border.
    let r =
        form_post(&f, "/api/v1/osmand", &format!("deviceid={c}&location=22.52,114.051&timestamp={}", (t + 10) * 1000))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Traccar Client posts its parameters in the query string with an empty body.
    let iso = chrono::DateTime::from_timestamp(t + 20, 0).unwrap().to_rfc3339();
    let r = f
        .call(
            "POST",
            &format!("/api/v1/osmand?id={c}&lat=22.5201&lon=114.0512&timestamp={}", iso.replace('+', "%2B")),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = f.call("GET", &format!("/api/v1/responders/{id}"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["geometry"]["coordinates"], json!([114.0512, 22.5201]));
    assert_eq!(r.body["properties"]["grid_code"], "440304002");

    // The live view: freshness, the fix's details, the grid; and an audit row for the read.
    let r = f.call("GET", "/api/v1/positions/live?freshness=live", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let unit = r.body["features"].as_array().unwrap().iter().find(|u| u["id"] == id).unwrap().clone();
    assert_eq!(unit["properties"]["freshness"], "live");
    assert_eq!(unit["properties"]["grid_code"], "440304002");
    assert!(unit["properties"]["age_s"].as_f64().unwrap() < 60.0);
    let audit = f.store.audit_rows(AuditQuery { before_id: None, limit: 1 }).await.unwrap();
    assert_eq!(audit[0].action, "live");

    // The trace: three fixes in order, with the first one's speed in m/s and its extra key kept.
    let r = f.call("GET", &format!("/api/v1/responders/{id}/trace?format=json"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let pts = r.body["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3, "{}", r.text);
    assert!((pts[0]["speed_mps"].as_f64().unwrap() - 5.144).abs() < 0.01);
    assert_eq!(pts[2]["lon"], 114.0512);
    assert_eq!(f.store.audit_rows(AuditQuery { before_id: None, limit: 1 }).await.unwrap()[0].action, "trace");
}

crate::test!(async osmand_refuses_unknown_devices_and_bad_values_by_name_and_counts_them);
#[expect(clippy::float_cmp, reason = "counters are whole numbers, exact in f64")]
async fn osmand_refuses_unknown_devices_and_bad_values_by_name_and_counts_them() {
    let f = fixture().await;
    tracked_unit(&f, "known", 114.01, 22.51).await;
    let k = cred("known");
    let r = f.call("GET", "/api/v1/osmand?id=stranger&lat=22.5&lon=114.0", None, None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "id");
    assert_eq!(metric(&f, "unauthenticated_device").await, 1.0);
    for (query, field) in [
        ("id=known&lat=95&lon=114", "lat"),
        ("id=known&lat=22.5", "lon"),
        ("id=known&lat=22.5&lon=114&timestamp=yesterday", "timestamp"),
        ("id=known&lat=22.5&lon=114&batt=140", "batt"),
        ("lat=22.5&lon=114", "id"),
    ] {
        let r = f.call("GET", &format!("/api/v1/osmand?{query}"), None, None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, field);
    }
    assert_eq!(metric(&f, "malformed").await, 5.0);
    // A tracker re-sending its fix gets 200 (it must not retry forever) and one row is stored.
    let q = format!("/api/v1/osmand?id={k}&lat=22.52&lon=114.02&timestamp={}", unix_now());
    assert_eq!(f.call("GET", &q, None, None).await.status, StatusCode::OK);
    assert_eq!(f.call("GET", &q, None, None).await.status, StatusCode::OK);
    assert_eq!(metric(&f, "duplicate").await, 1.0);
    // A phone whose clock is an hour ahead.
    let r = f
        .call("GET", &format!("/api/v1/osmand?id={k}&lat=22.52&lon=114.02&timestamp={}", unix_now() + 3600), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(metric(&f, "future").await, 1.0);
}

crate::test!(async a_tracker_belongs_to_one_responder_only);
async fn a_tracker_belongs_to_one_responder_only() {
    let f = fixture().await;
    let first = tracked_unit(&f, "dev-1", 114.01, 22.51).await;
    let props = json!({"kind": "patrol", "callsign": "巡-X", "status": "available", "device_id": "dev-1"});
    let r =
        f.call("POST", "/api/v1/responders", Some(Role::Dispatcher), Some(feature(point(114.02, 22.52), props))).await;
    assert_problem(&r, StatusCode::CONFLICT, "properties.device_id");
    assert!(r.text.contains(&first.to_string()));
    // A bulk import is held to the same rule, against the layer and within itself.
    let unit = |dev: &str| {
        let props = json!({"kind": "patrol", "callsign": "导入", "status": "available", "device_id": dev});
        (LonLat::new(114.02, 22.52).unwrap(), safegrid_services::layer::Props::parse(Layer::Responders, props).unwrap())
    };
    for rows in [vec![unit("dev-2"), unit("dev-1")], vec![unit("dev-3"), unit("dev-3")]] {
        let e = f.service.bulk_insert(Layer::Responders, rows).await.unwrap_err();
        assert!(e.to_string().contains("device_id") && e.to_string().contains("row 2"), "{e}");
    }
    assert_eq!(f.service.layer(Layer::Responders).len(), 1, "nothing was imported");
}

crate::test!(async a_gateway_batch_is_stored_whole_or_refused_whole);
#[expect(clippy::float_cmp, reason = "counters are whole numbers, exact in f64")]
async fn a_gateway_batch_is_stored_whole_or_refused_whole() {
    let f = fixture().await;
    let a = tracked_unit(&f, "gw-a", 114.01, 22.51).await;
    let b = tracked_unit(&f, "gw-b", 114.11, 22.51).await;
    let t = unix_now() - 100;
    let fix = |dev: &str, dt: i64, lon: f64, lat: f64| json!({"device_id": dev, "device_secret": test_secret(dev), "time": t + dt, "lon": lon, "lat": lat, "accuracy_m": 5});
    // Only gateway, dispatcher and admin tokens may post batches.
    let body = json!({"fixes": [fix("gw-a", 0, 114.01, 22.51)]});
    let r = f.call("POST", "/api/v1/positions", None, Some(body.clone())).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "Authorization");
    let r = f.call("POST", "/api/v1/positions", Some(Role::Auditor), Some(body.clone())).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    // One bad fix refuses the batch, naming it; nothing is stored.
    let bad = json!({"fixes": [fix("gw-a", 0, 114.01, 22.51), fix("gw-a", 5, 114.01, 95.0)]});
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(bad)).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "fixes[1].lat");
    let all = chrono::DateTime::from_timestamp(0, 0).unwrap();
    assert!(
        f.store
            .trace(safegrid_services::positions::Subject::Responder, a, all, chrono::Utc::now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A good batch: live fixes, a late one, a jump, an unknown device; the answer says which.
    let good = json!({"fixes": [
        fix("gw-a", 0, 114.010, 22.510),
        fix("gw-a", 10, 114.011, 22.510),
        fix("gw-a", 5, 114.0105, 22.510),    // late
        fix("gw-a", 20, 114.900, 22.510),    // 91 km in 10 s
        fix("gw-b", 0, 114.110, 22.510),
        fix("nobody", 0, 114.0, 22.5),
    ]});
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(good)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["received"], 6);
    assert_eq!(r.body["stored"], 5);
    assert_eq!(r.body["live"], 3);
    assert_eq!(r.body["history"], 2);
    assert_eq!(r.body["refused"], json!([{"index": 5, "device_id": "nobody", "reason": "unauthenticated_device"}]));
    // The unit stayed at its last plausible fix.
    let r = f.call("GET", &format!("/api/v1/responders/{a}"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["geometry"]["coordinates"], json!([114.011, 22.51]));
    assert_eq!(
        f.store
            .trace(safegrid_services::positions::Subject::Responder, b, all, chrono::Utc::now(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // The trace hides flagged fixes unless asked, and names their flags.
    let r = f.call("GET", &format!("/api/v1/responders/{a}/trace?format=json"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["points"].as_array().unwrap().len(), 2);
    let r = f
        .call("GET", &format!("/api/v1/responders/{a}/trace?format=json&flagged=true"), Some(Role::Dispatcher), None)
        .await;
    let flags: Vec<Value> = r.body["points"].as_array().unwrap().iter().map(|p| p["flags"].clone()).collect();
    assert_eq!(flags, [json!([]), json!(["late"]), json!([]), json!(["jump"])]);
    assert_eq!(metric(&f, "late").await, 1.0);
    assert_eq!(metric(&f, "jump").await, 1.0);
}

crate::test!(async a_trace_comes_as_geojson_simplified_and_as_gpx);
async fn a_trace_comes_as_geojson_simplified_and_as_gpx() {
    let f = fixture().await;
    let id = tracked_unit(&f, "walker", 114.01, 22.51).await;
    let t = unix_now() - 600;
    // A straight walk east with one corner: 40 fixes, 20 m apart, 10 s apart.
    let fixes: Vec<Value> = (0..40)
        .map(|i| {
            let (lon, lat) = if i < 20 {
                (114.01 + f64::from(i) * 0.0002, 22.51)
            } else {
                (114.014, 22.51 + f64::from(i - 20) * 0.0002)
            };
            json!({"device_id": cred("walker"), "time": t + i64::from(i) * 10, "lon": lon, "lat": lat, "altitude_m": 12.5})
        })
        .collect();
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(json!({"fixes": fixes}))).await;
    assert_eq!(r.body["live"], 40, "{}", r.text);
    let r = f.call("GET", &format!("/api/v1/responders/{id}/trace?simplify_m=2"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.content_type, "application/geo+json");
    assert_eq!(r.body["geometry"]["type"], "LineString");
    // Start, corner, end.
    assert_eq!(r.body["geometry"]["coordinates"].as_array().unwrap().len(), 3, "{}", r.text);
    assert_eq!(r.body["properties"]["stored"], 40);
    assert_eq!(r.body["properties"]["times"].as_array().unwrap().len(), 3);
    let r = f.call("GET", &format!("/api/v1/responders/{id}/trace?format=gpx"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.content_type, "application/gpx+xml");
    assert_eq!(r.text.matches("<trkpt ").count(), 40);
    assert!(r.text.contains("<ele>12.5</ele>") && r.text.contains("巡-walker"));
    // Out of scope is not found; bad parameters are named.
    let r = f.call("GET", "/api/v1/responders/999/trace", Some(Role::Dispatcher), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "id");
    let r = f.call("GET", &format!("/api/v1/responders/{id}/trace?format=kml"), Some(Role::Dispatcher), None).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "format");
    let r = f.call("GET", &format!("/api/v1/responders/{id}/trace"), None, None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "Authorization");
    let r = f.call("GET", &format!("/api/v1/responders/{id}/trace"), Some(Role::Gateway), None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
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

crate::test!(async a_unit_jittering_across_a_grid_border_crosses_once_and_the_feed_resumes);
async fn a_unit_jittering_across_a_grid_border_crosses_once_and_the_feed_resumes() {
    let f = fixture().await;
    let id = tracked_unit(&f, "border", 114.049, 22.55).await;
    let t0 = unix_now() - 1_000;
    // 150 m east across the border, jittering all the way.
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(border_walk("border", t0, -80, 70))).await;
    assert_eq!(r.body["live"], 151, "{}", r.text);
    let r = f.call("GET", "/api/v1/geofence/events", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kinds: Vec<(Value, Value, Value)> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].clone(), e["grid_code"].clone(), e["unit_id"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [(json!("exit"), json!("440304001"), json!(id)), (json!("enter"), json!("440304002"), json!(id))]
    );
    let first = r.body["events"][0]["id"].as_i64().unwrap();
    let r = f.call("GET", &format!("/api/v1/responders/{id}"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["properties"]["grid_code"], "440304002");

    // A feed resumed after the first event replays the second, then follows live crossings.
    let req = Request::builder()
        .uri("/api/v1/geofence/stream")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Dispatcher]))
        .header("Last-Event-ID", first.to_string())
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let replayed = sse_events(&mut body, 1).await;
    assert_eq!(replayed[0].0, (first + 1).to_string());
    assert_eq!(replayed[0].1["kind"], "enter");
    // Back west, well into the first grid.
    let r =
        f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(border_walk("border", t0 + 200, 70, -80))).await;
    assert_eq!(r.body["live"], 151, "{}", r.text);
    let live = sse_events(&mut body, 2).await;
    let got: Vec<(Value, Value)> = live.iter().map(|(_, e)| (e["kind"].clone(), e["grid_code"].clone())).collect();
    assert_eq!(got, [(json!("exit"), json!("440304002")), (json!("enter"), json!("440304001"))]);

    // A grid worker of 440304001 sees the crossings of its grid only; a gateway none.
    let r = f.call("GET", "/api/v1/geofence/events", Some(Role::GridWorker), None).await;
    let grids: Vec<Value> = r.body["events"].as_array().unwrap().iter().map(|e| e["grid_code"].clone()).collect();
    assert_eq!(grids, [json!("440304001"), json!("440304001")]);
    // Paging moves past crossings of other grids even when a page shows none of them.
    let r =
        f.call("GET", &format!("/api/v1/geofence/events?after={first}&limit=1"), Some(Role::GridWorker), None).await;
    assert_eq!(r.body["events"], json!([]));
    assert_eq!(r.body["last_id"], first + 1);
    let r = f.call("GET", "/api/v1/geofence/events", Some(Role::Gateway), None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
}

// ---- dispatch ------------------------------------------------------------------------------

/// The fixture with the demo's Longgang road network, and `n` live units scattered over it.
async fn longgang_fixture(n: usize) -> (Fixture, Arc<safegrid_services::roads::Roads>, tempfile::TempDir, Vec<i64>) {
    use rand::{Rng, SeedableRng};
    let mut f = fixture().await;
    let cache = tempfile::tempdir().unwrap();
    let roads = Arc::new(safegrid_services::roads::Roads::demo(cache.path()).unwrap());
    f.app = app(AppState::new(f.service.clone()).with_roads(Some(roads.clone())));
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

crate::test!(async nearest_units_are_ranked_by_road_time_as_a_brute_force_dijkstra_ranks_them);
async fn nearest_units_are_ranked_by_road_time_as_a_brute_force_dijkstra_ranks_them() {
    let (f, roads, _cache, _) = longgang_fixture(40).await;
    let g = &roads.drive;
    let mut differs = 0;
    for (lon, lat) in [(114.205, 22.685), (114.215, 22.690), (114.220, 22.680), (114.200, 22.695)] {
        let r = f
            .call("GET", &format!("/api/v1/dispatch/nearest?lon={lon}&lat={lat}&k=5"), Some(Role::Dispatcher), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["road_network"]["covers_this_place"], true);
        let got: Vec<(i64, f64)> = r.body["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["id"].as_i64().unwrap(), u["properties"]["eta_s"].as_f64().unwrap()))
            .collect();
        // The oracle: every unit, a plain Dijkstra each; a unit the roads do not connect to the
        // place (the extract cuts some streets off) is estimated from the straight line.
        use safegrid_services::dispatch::nearest::{ESTIMATE_DETOUR, ESTIMATE_MPS};
        let target = g.snap(LonLat::new(lon, lat).unwrap()).unwrap();
        let mut all: Vec<(i64, f64, f64)> = f
            .service
            .layer(Layer::Responders)
            .iter()
            .map(|it| {
                let straight = safegrid_geodata::haversine_m(it.pos, LonLat::new(lon, lat).unwrap());
                let eta = g
                    .snap(it.pos)
                    .and_then(|s| g.dijkstra_eta_s(&s, &target))
                    .unwrap_or(straight * ESTIMATE_DETOUR / ESTIMATE_MPS);
                (it.id, eta, straight)
            })
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1));
        let want: Vec<(i64, f64)> = all.iter().take(5).map(|(id, eta, _)| (*id, (eta * 10.0).round() / 10.0)).collect();
        assert_eq!(got, want, "at {lon},{lat}");
        let crow = all.iter().min_by(|a, b| a.2.total_cmp(&b.2)).unwrap().0;
        differs += usize::from(crow != want[0].0);
    }
    eprintln!("straight-line top 1 differs from road top 1 at {differs} of 4 places");
    let audit = f.store.audit_rows(AuditQuery { before_id: None, limit: 1 }).await.unwrap();
    assert_eq!(audit[0].action, "dispatch_nearest");
}

crate::test!(async nearest_units_honour_filters_and_say_when_the_eta_is_an_estimate);
async fn nearest_units_honour_filters_and_say_when_the_eta_is_an_estimate() {
    let (f, _roads, _cache, ids) = longgang_fixture(9).await;
    let q = |extra: &str| format!("/api/v1/dispatch/nearest?lon=114.21&lat=22.688&k=50{extra}");
    let count = |r: &Reply| r.body["features"].as_array().unwrap().len();
    let r = f.call("GET", &q(""), Some(Role::Dispatcher), None).await;
    assert_eq!(count(&r), 9);
    let r = f.call("GET", &q("&kind=police"), Some(Role::Dispatcher), None).await;
    assert_eq!(count(&r), 3);
    let r = f.call("GET", &q("&capability=first_aid"), Some(Role::Dispatcher), None).await;
    assert_eq!(count(&r), 5);
    // A dispatched unit is busy: left out unless asked for.
    let busy = ids[0];
    let it = f.service.layer(Layer::Responders).get(busy).unwrap().clone();
    let props = json!({"kind": "police", "callsign": "龙-0", "status": "dispatched", "capabilities": ["first_aid"], "device_id": "lg-0"});
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/responders/{busy}"),
            Some(Role::Dispatcher),
            Some(feature(point(it.pos.lon(), it.pos.lat()), props)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = f.call("GET", &q(""), Some(Role::Dispatcher), None).await;
    assert_eq!(count(&r), 8);
    let r = f.call("GET", &q("&include=busy"), Some(Role::Dispatcher), None).await;
    assert_eq!(count(&r), 9);
    // A unit that never reported is left out unless asked for.
    let props = json!({"kind": "patrol", "callsign": "岗亭", "status": "available"});
    f.call("POST", "/api/v1/responders", Some(Role::Dispatcher), Some(feature(point(114.21, 22.688), props))).await;
    assert_eq!(count(&f.call("GET", &q(""), Some(Role::Dispatcher), None).await), 8);
    assert_eq!(count(&f.call("GET", &q("&include=untracked"), Some(Role::Dispatcher), None).await), 9);
    // Off the road network (far from Longgang), every ETA is an estimate.
    let r = f.call("GET", "/api/v1/dispatch/nearest?lon=114.05&lat=22.55&k=3", Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["road_network"]["covers_this_place"], false);
    assert!(r.body["features"].as_array().unwrap().iter().all(|u| u["properties"]["eta_source"] == "estimate"));
    // Who may ask, and bad parameters.
    assert_problem(&f.call("GET", &q(""), None, None).await, StatusCode::UNAUTHORIZED, "Authorization");
    assert_problem(&f.call("GET", &q(""), Some(Role::Gateway), None).await, StatusCode::FORBIDDEN, "");
    assert_problem(
        &f.call("GET", &q("&include=everyone"), Some(Role::Dispatcher), None).await,
        StatusCode::BAD_REQUEST,
        "include",
    );
    assert_problem(
        &f.call("GET", &q("&kind=tank"), Some(Role::Dispatcher), None).await,
        StatusCode::BAD_REQUEST,
        "kind",
    );
}

crate::test!(async citizens_get_open_posts_with_walking_times_and_a_rate_limit);
async fn citizens_get_open_posts_with_walking_times_and_a_rate_limit() {
    let (f, roads, _cache, _) = longgang_fixture(0).await;
    // A post open around the clock, one that is never open now (a one-minute window an hour
    // ahead of China time), and one far off the road network.
    let cst = (chrono::Utc::now() + chrono::Duration::hours(9)).format("%H:%M").to_string();
    let cst_end =
        (chrono::Utc::now() + chrono::Duration::hours(9) + chrono::Duration::minutes(1)).format("%H:%M").to_string();
    for (lon, lat, name, hours) in [
        (114.2050, 22.6850, "大运警务室", "24h".to_owned()),
        (114.2052, 22.6851, "夜间岗亭", format!("{cst}-{cst_end}")),
        (114.2600, 22.6200, "远处岗亭", "24h".to_owned()),
    ] {
        let props = json!({"kind": "police_room", "name": name, "phone": "0755-110", "radio_channel": "CH-9", "opening_hours": hours});
        let r = f.call("POST", "/api/v1/posts", Some(Role::Admin), Some(feature(point(lon, lat), props))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = f.call("GET", "/api/v1/posts/nearest?lon=114.2100&lat=22.6880&k=3", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let names: Vec<&str> =
        r.body["features"].as_array().unwrap().iter().map(|p| p["properties"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["大运警务室", "远处岗亭"], "the closed post is left out");
    let near = &r.body["features"][0]["properties"];
    assert_eq!(near["walk_source"], "road");
    assert_eq!(near["open_now"], true);
    // Walking time agrees with the walking network's own route, and is a walker's pace.
    let g = &roads.walk;
    let (from, to) =
        (g.snap(LonLat::new(114.21, 22.688).unwrap()).unwrap(), g.snap(LonLat::new(114.205, 22.685).unwrap()).unwrap());
    let want = g.dijkstra_eta_s(&from, &to).unwrap();
    assert!((near["walk_s"].as_f64().unwrap() - want.round()).abs() <= 1.0, "{near} vs {want}");
    let metres = near["distance_m"].as_f64().unwrap();
    assert!(metres > 500.0 && metres / near["walk_s"].as_f64().unwrap() < 1.5, "{near}");
    assert!(!r.text.contains("CH-9"), "never the radio channel");
    // The far post is off the walking network: estimated.
    assert_eq!(r.body["features"][1]["properties"]["walk_source"], "estimate");
    // Each address gets a burst, then 429 with Retry-After.
    let mut limited = None;
    for i in 0..40 {
        let r = f.call("GET", "/api/v1/posts/nearest?lon=114.21&lat=22.688", None, None).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, r));
            break;
        }
    }
    let (i, r) = limited.expect("rate-limited within 40 requests");
    assert!(i >= 15, "limited after only {i}");
    assert!(r.headers.get(header::RETRY_AFTER).is_some());
    assert_eq!(r.content_type, "application/problem+json");
    // A dispatcher's token is not rate-limited and sees the full post.
    let r = f.call("GET", "/api/v1/posts/nearest?lon=114.21&lat=22.688&k=1", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["features"][0]["properties"]["radio_channel"], "CH-9");
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

crate::test!(async a_dispatch_runs_its_lifecycle_raises_each_deadline_alarm_and_keeps_a_timeline);
async fn a_dispatch_runs_its_lifecycle_raises_each_deadline_alarm_and_keeps_a_timeline() {
    let f = fixture().await;
    // Deadlines short enough to watch: acknowledge in 1 s, arrive in 2 s; 罗湖 (440303) gets 10 min.
    let cfg = json!({"default": {"ack_s": 1, "arrive_s": 2}, "grids": {"440303": {"ack_s": 60, "arrive_s": 600}}});
    let r = f.call("PUT", "/api/v1/dispatch/deadlines", Some(Role::Dispatcher), Some(cfg.clone())).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    let r = f.call("PUT", "/api/v1/dispatch/deadlines", Some(Role::Admin), Some(cfg)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bad = json!({"default": {"ack_s": 30, "arrive_s": 10}});
    assert_problem(
        &f.call("PUT", "/api/v1/dispatch/deadlines", Some(Role::Admin), Some(bad)).await,
        StatusCode::BAD_REQUEST,
        "grids",
    );

    let inc = create_at(&f, Layer::Incidents, 114.02, 22.55, incident("open", 1, "2026-11-22T08:00:00Z")).await;
    let (slow, quick) = (
        create_at(&f, Layer::Responders, 114.021, 22.551, unit_props("巡-慢")).await,
        create_at(&f, Layer::Responders, 114.022, 22.552, unit_props("巡-快")).await,
    );
    let body = json!({"incident_id": inc, "units": [slow, quick], "note": "打架"});
    assert_problem(
        &f.call("POST", "/api/v1/dispatches", Some(Role::Auditor), Some(body.clone())).await,
        StatusCode::FORBIDDEN,
        "",
    );
    let r = f.call("POST", "/api/v1/dispatches", Some(Role::Dispatcher), Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["deadlines"], json!({"ack_s": 1, "arrive_s": 2}));
    assert_eq!(r.body["grid_code"], "440304001");
    let status = |u: i64| {
        let it = f.service.layer(Layer::Responders).get(u).unwrap().clone();
        match it.props {
            safegrid_services::layer::Props::Responder(r) => r.status.name(),
            _ => unreachable!(),
        }
    };
    assert_eq!((status(slow), status(quick)), ("dispatched", "dispatched"));
    // A busy unit cannot be sent again.
    let r = f.call("POST", "/api/v1/dispatches", Some(Role::Dispatcher), Some(body)).await;
    assert_problem(&r, StatusCode::CONFLICT, "");
    // The quick unit acknowledges and arrives in time; steps only go forward.
    let step = |u: i64, s: &'static str| {
        let (f, uri) = (&f, format!("/api/v1/dispatches/{id}/units/{u}"));
        async move { f.call("POST", &uri, Some(Role::Dispatcher), Some(json!({"step": s}))).await }
    };
    assert_eq!(step(quick, "acknowledged").await.status, StatusCode::OK);
    assert_eq!(step(quick, "on_scene").await.status, StatusCode::OK);
    assert_problem(&step(quick, "en_route").await, StatusCode::CONFLICT, "");
    assert_problem(&step(quick, "teleported").await, StatusCode::BAD_REQUEST, "step");
    assert_eq!(status(quick), "on_scene");
    // The slow one misses both deadlines.
    tokio::time::sleep(std::time::Duration::from_millis(3_200)).await;
    let r = f.call("GET", &format!("/api/v1/dispatches/{id}"), Some(Role::Auditor), None).await;
    assert_eq!(r.body["units"][slow.to_string()]["alarms"], json!(["ack_overdue", "arrival_overdue"]), "{}", r.text);
    assert_eq!(r.body["units"][quick.to_string()]["alarms"], json!([]));
    // Both clear: the dispatch closes and the units are free.
    assert_eq!(step(slow, "cleared").await.status, StatusCode::OK);
    // A unit that cleared cannot be sent on the same dispatch again (its steps are done).
    let again = json!({"units": [slow]});
    let r = f.call("POST", &format!("/api/v1/dispatches/{id}/units"), Some(Role::Dispatcher), Some(again)).await;
    assert_problem(&r, StatusCode::CONFLICT, "");
    let r = step(quick, "cleared").await;
    assert!(r.body["closed_at"].is_string(), "{}", r.text);
    assert_eq!((status(slow), status(quick)), ("available", "available"));
    // The incident's timeline, in order.
    let r = f.call("GET", &format!("/api/v1/incidents/{inc}/timeline"), Some(Role::GridWorker), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kinds: Vec<(String, Option<i64>)> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["unit_id"].as_i64()))
        .collect();
    let want: Vec<(String, Option<i64>)> = [
        ("created", None),
        ("dispatched", Some(slow)),
        ("dispatched", Some(quick)),
        ("acknowledged", Some(quick)),
        ("on_scene", Some(quick)),
        ("ack_overdue", Some(slow)),
        ("arrival_overdue", Some(slow)),
        ("cleared", Some(slow)),
        ("cleared", Some(quick)),
        ("closed", None),
    ]
    .into_iter()
    .map(|(k, u)| (k.to_owned(), u))
    .collect();
    assert_eq!(kinds, want);
    // An incident in 罗湖 gets 罗湖's deadlines.
    let far = create_at(&f, Layer::Incidents, 114.15, 22.55, incident("open", 2, "2026-11-22T08:00:00Z")).await;
    let r = f
        .call("POST", "/api/v1/dispatches", Some(Role::Dispatcher), Some(json!({"incident_id": far, "units": [slow]})))
        .await;
    assert_eq!(r.body["deadlines"], json!({"ack_s": 60, "arrive_s": 600}), "{}", r.text);
    // Roles: the public and gateways read nothing.
    assert_problem(&f.call("GET", "/api/v1/dispatches", None, None).await, StatusCode::UNAUTHORIZED, "Authorization");
    assert_problem(&f.call("GET", "/api/v1/dispatches", Some(Role::Gateway), None).await, StatusCode::FORBIDDEN, "");
}

crate::test!(async a_city_wide_call_notifies_every_unit_and_post_within_reach_at_once);
async fn a_city_wide_call_notifies_every_unit_and_post_within_reach_at_once() {
    let f = fixture().await;
    let inc = create_at(&f, Layer::Incidents, 114.02, 22.55, incident("open", 1, "2026-11-22T08:00:00Z")).await;
    let near = create_at(&f, Layer::Responders, 114.025, 22.55, unit_props("近")).await; // ~515 m
    let far = create_at(&f, Layer::Responders, 114.08, 22.55, unit_props("远")).await; // ~6 km
    let post = create_at(&f, Layer::Posts, 114.021, 22.551, props_for(Layer::Posts)).await;
    let r = f
        .call("POST", "/api/v1/dispatches", Some(Role::Dispatcher), Some(json!({"incident_id": inc, "units": [near]})))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let r = f
        .call(
            "POST",
            &format!("/api/v1/dispatches/{id}/city_wide"),
            Some(Role::Dispatcher),
            Some(json!({"radius_m": 2000})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ids = |k: &str| r.body[k].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids("units"), [near]);
    assert_eq!(ids("posts"), [post]);
    let _ = far;
    // By travel time instead (no road network here: estimates at 30 km/h with a 1.4 detour).
    let r = f
        .call(
            "POST",
            &format!("/api/v1/dispatches/{id}/city_wide"),
            Some(Role::Dispatcher),
            Some(json!({"within_s": 1200})),
        )
        .await;
    assert_eq!(r.body["units"].as_array().unwrap().len(), 2, "{}", r.text);
    let both = json!({"radius_m": 100, "within_s": 60});
    let r = f.call("POST", &format!("/api/v1/dispatches/{id}/city_wide"), Some(Role::Dispatcher), Some(both)).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "radius_m");
    let r = f.call("GET", &format!("/api/v1/incidents/{inc}/timeline"), Some(Role::Dispatcher), None).await;
    let notified = r.body["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "notified").count();
    assert_eq!(notified, 2 + 3, "two reached by radius, three by travel time");
}

crate::test!(async a_monitored_person_leaving_their_zone_alerts_their_grid_worker);
async fn a_monitored_person_leaving_their_zone_alerts_their_grid_worker() {
    let f = fixture().await;
    let person = json!({"category": "community_correction", "name": "赵六", "assigned_grid": "440304001",
        "device_id": "kp-1", "zone": {"mode": "stay_inside", "grids": ["440304001"]}});
    let id = create_at(&f, Layer::KeyPersonnel, 114.03, 22.55, person).await;
    trust(&f, "kp-1");
    // The device belongs to the person: no responder may carry it too.
    let r = f
        .call(
            "POST",
            "/api/v1/responders",
            Some(Role::Dispatcher),
            Some(feature(
                point(114.0, 22.5),
                json!({"kind": "patrol", "callsign": "x", "status": "available", "device_id": "kp-1"}),
            )),
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "properties.device_id");
    let bad_zone = json!({"category": "c", "name": "n", "assigned_grid": "440304001", "zone": {"mode": "stay_inside", "grids": []}});
    let r =
        f.call("POST", "/api/v1/key_personnel", Some(Role::Admin), Some(feature(point(114.03, 22.55), bad_zone))).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "properties.zone.grids");
    // East across the border into 440304002 (100 m every 10 s), then back.
    let t0 = unix_now() - 2_000;
    let walk = |from: f64, to: f64, t: i64| {
        let steps = ((to - from).abs() / 0.001).round() as i64;
        let fixes: Vec<Value> = (0..=steps)
            .map(|i| {
                let lon = from + (to - from).signum() * 0.001 * i as f64;
                json!({"device_id": "kp-1", "device_secret": test_secret("kp-1"), "time": t + i * 10, "lon": lon, "lat": 22.55})
            })
            .collect();
        json!({ "fixes": fixes })
    };
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(walk(114.03, 114.07, t0))).await;
    assert_eq!(r.body["live"], 41, "{}", r.text);
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(walk(114.07, 114.03, t0 + 500))).await;
    assert_eq!(r.body["live"], 41, "{}", r.text);
    let r = f.call("GET", "/api/v1/geofence/events", Some(Role::GridWorker), None).await;
    let seen: Vec<(Value, Value, Value)> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["subject"].clone(), e["kind"].clone(), e["grid_code"].clone()))
        .collect();
    let kp = json!("key_person");
    assert_eq!(
        seen,
        [
            (kp.clone(), json!("exit"), json!("440304001")),
            (kp.clone(), json!("zone_breach"), json!("440304001")),
            (kp.clone(), json!("enter"), json!("440304001")),
            (kp.clone(), json!("zone_return"), json!("440304001")),
        ],
        "the worker of 440304001 sees the person leave and return, and both alerts: {}",
        r.text
    );
    // The person stands at the last fix, and the history holds every fix.
    let it = f.service.layer(Layer::KeyPersonnel).get(id).unwrap().clone();
    assert!((it.pos.lon() - 114.03).abs() < 1e-9 && it.grid.as_ref().unwrap().as_str() == "440304001");
    let all = chrono::DateTime::from_timestamp(0, 0).unwrap();
    let trace = f
        .store
        .trace(safegrid_services::positions::Subject::KeyPerson, id, all, chrono::Utc::now(), 1_000)
        .await
        .unwrap();
    assert_eq!(trace.len(), 82);
    // A dispatcher sees every crossing, the person's included.
    let r = f.call("GET", "/api/v1/geofence/events", Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["events"].as_array().unwrap().len(), 6);
}

crate::test!(async the_live_layer_is_audited_for_geometry_and_workload);
async fn the_live_layer_is_audited_for_geometry_and_workload() {
    let f = fixture().await;
    let r = f.call("GET", "/api/v1/audit/geometry", Some(Role::Auditor), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["passed"], true, "{}", r.text);
    assert_eq!(r.body["geometry"]["grids"], 3);
    assert_problem(&f.call("GET", "/api/v1/audit/geometry", None, None).await, StatusCode::UNAUTHORIZED, "");
    assert_problem(
        &f.call("GET", "/api/v1/audit/geometry", Some(Role::Gateway), None).await,
        StatusCode::FORBIDDEN,
        "",
    );
    assert_problem(
        &f.call("GET", "/api/v1/audit/geometry?format=kml", Some(Role::Auditor), None).await,
        StatusCode::BAD_REQUEST,
        "format",
    );
    assert_problem(
        &f.call("GET", "/api/v1/audit/geometry?sliver_m2=-1", Some(Role::Auditor), None).await,
        StatusCode::BAD_REQUEST,
        "sliver_m2",
    );

    // An admin draws a grid over the east half of 福田 and past its border into 罗湖, unstaffed.
    let over = json!({"type": "Feature", "properties": {"name": "越界网格"}, "geometry": {"type": "Polygon",
        "coordinates": [[[114.08, 22.52], [114.12, 22.52], [114.12, 22.54], [114.08, 22.54], [114.08, 22.52]]]}});
    let r = f.call("PUT", "/api/v1/grids/440304003", Some(Role::Admin), Some(over)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = f.call("GET", "/api/v1/audit/geometry", Some(Role::Dispatcher), None).await;
    assert_eq!(r.body["passed"], false);
    let kinds: Vec<&str> =
        r.body["geometry"]["findings"].as_array().unwrap().iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["overlap", "overlap", "outside_parent", "unstaffed"], "{}", r.text);
    let overlap = &r.body["geometry"]["findings"][0];
    assert_eq!(overlap["grids"], json!(["440303001", "440304003"]));
    // 0.02° × 0.02° at 22.53°N: about 2,055 m × 2,214 m.
    let a = overlap["area_m2"].as_f64().unwrap();
    assert!((a - 4_550_000.0).abs() < 50_000.0, "{a}");

    let r = f.call("GET", "/api/v1/audit/geometry?format=geojson", Some(Role::GridWorker), None).await;
    assert_eq!(r.content_type, "application/geo+json");
    assert_eq!(r.body["type"], "FeatureCollection");
    assert_eq!(r.body["passed"], false);
    assert_eq!(r.body["features"].as_array().unwrap().len(), 4);
    assert_eq!(r.body["features"][3]["properties"]["kind"], "unstaffed");
    assert_eq!(r.body["features"][3]["geometry"]["type"], "MultiPolygon", "a grid finding carries the grid's outline");

    // Workload: 罗湖's one grid gets 600 households in 30 buildings.
    for i in 0..30 {
        let props = json!({"address": format!("东门路{i}号"), "units": 20, "tenant_count": 50, "safety_rating": "b"});
        let r = f
            .call(
                "POST",
                "/api/v1/rental_housing",
                Some(Role::Admin),
                Some(feature(point(114.15 + f64::from(i) * 1e-3, 22.58), props)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = f.call("GET", "/api/v1/audit/workload?max_households=550", Some(Role::Auditor), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let w = &r.body["workload"];
    let luohu = w["grids"].as_array().unwrap().iter().find(|g| g["grid"] == "440303001").unwrap();
    assert_eq!((luohu["households"].as_u64(), luohu["people"].as_u64()), (Some(600), Some(1_500)));
    let many: Vec<&Value> =
        w["findings"].as_array().unwrap().iter().filter(|x| x["kind"] == "many_households").collect();
    assert_eq!(many.len(), 1);
    assert_eq!(many[0]["figures"]["households"], 600);
    assert_problem(
        &f.call("GET", "/api/v1/audit/workload?min_households=9&max_households=3", Some(Role::Auditor), None).await,
        StatusCode::BAD_REQUEST,
        "min_households",
    );
}

crate::test!(async patrol_coverage_comes_from_stored_traces_and_its_read_is_logged);
async fn patrol_coverage_comes_from_stored_traces_and_its_read_is_logged() {
    let f = fixture().await;
    tracked_unit(&f, "pt-1", 114.001, 22.55).await;
    // Ten minutes driving east across 福田's west grid along 22.55, a fix every 10 s (~31 km/h).
    let t0 = unix_now() - 700;
    let fixes: Vec<Value> = (0..60)
        .map(|i| json!({"device_id": cred("pt-1"), "time": t0 + i * 10, "lon": 114.001 + 0.0008 * i as f64, "lat": 22.55, "accuracy_m": 5}))
        .collect();
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(json!({"fixes": fixes}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = f.call("GET", "/api/v1/audit/patrol?hours=2", Some(Role::Auditor), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = &r.body["patrol"];
    assert_eq!((p["fixes"].as_u64(), p["units"].as_u64()), (Some(60), Some(1)));
    let west = p["grids"].as_array().unwrap().iter().find(|g| g["grid"] == "440304001").unwrap();
    assert!((west["hours"].as_f64().unwrap() - 590.0 / 3600.0).abs() < 1e-6, "{west}");
    // A 4.7 km line across a 5 km × 11 km grid: a thin band of its cells.
    let share = west["share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 0.05, "{west}");
    let kinds: Vec<(String, String)> = p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["kind"].as_str().unwrap().to_owned(), x["grids"][0].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("unpatrolled".to_owned(), "440303001".to_owned()),
            ("low_patrol_coverage".to_owned(), "440304001".to_owned()),
            ("unpatrolled".to_owned(), "440304002".to_owned()),
        ]
    );
    assert_eq!(r.body["passed"], false);
    let rows = f.audit_rows().await;
    assert!(
        rows.iter().any(|row| row.action == "audit patrol" && row.result_count == 60 && row.actor == "auditor user")
    );

    assert_problem(
        &f.call("GET", "/api/v1/audit/patrol?min_share=2", Some(Role::Auditor), None).await,
        StatusCode::BAD_REQUEST,
        "min_share",
    );
    assert_problem(
        &f.call("GET", "/api/v1/audit/patrol?hours=0", Some(Role::Auditor), None).await,
        StatusCode::BAD_REQUEST,
        "hours",
    );
    assert_problem(&f.call("GET", "/api/v1/audit/patrol", Some(Role::Gateway), None).await, StatusCode::FORBIDDEN, "");
    assert_problem(
        &f.call("GET", "/api/v1/audit/patrol", Some(Role::GridWorker), None).await,
        StatusCode::FORBIDDEN,
        "",
    );
}

crate::test!(async gridding_divides_a_community_by_the_registered_housing_and_stores_nothing);
async fn gridding_divides_a_community_by_the_registered_housing_and_stores_nothing() {
    let f = fixture().await;
    // 1,200 households in 30 buildings across a 2 km × 2 km community in 福田.
    for i in 0..30 {
        let (x, y) = (114.061 + f64::from(i % 6) * 0.003, 22.531 + f64::from(i / 6) * 0.0035);
        let props = json!({"address": format!("福华路{i}号"), "units": 40, "tenant_count": 90, "safety_rating": "a"});
        let r = f.call("POST", "/api/v1/rental_housing", Some(Role::Admin), Some(feature(point(x, y), props))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let community = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
        "properties": {"code": "440304002001", "name": "福新社区"},
        "geometry": {"type": "Polygon", "coordinates": [[[114.06, 22.53], [114.08, 22.53], [114.08, 22.548], [114.06, 22.548], [114.06, 22.53]]]}}]});
    let body = json!({"communities": community});
    let r = f.call("POST", "/api/v1/gridding", Some(Role::Dispatcher), Some(body.clone())).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "");
    let r = f.call("POST", "/api/v1/gridding", Some(Role::Admin), Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let feats = r.body["features"].as_array().unwrap();
    assert_eq!(feats[0]["properties"]["level"], "community");
    let grids: Vec<&Value> = feats.iter().filter(|x| x["properties"]["level"] == "grid").collect();
    assert_eq!(grids.len(), 3, "1,200 households make three grids of about 400");
    assert_eq!(grids.iter().map(|g| g["properties"]["households"].as_u64().unwrap()).sum::<u64>(), 1_200);
    assert_eq!(grids[0]["properties"]["code"], "440304002001001");
    assert_eq!(grids[0]["properties"]["parent"], "440304002001");
    assert_eq!(r.body["summary"]["grids"], 3);
    assert_eq!(f.store.load_grids().await.unwrap().len(), 5, "nothing stored");

    let bad = json!({"communities": community, "res": 4});
    assert_problem(
        &f.call("POST", "/api/v1/gridding", Some(Role::Auditor), Some(bad)).await,
        StatusCode::BAD_REQUEST,
        "res",
    );
    let bad = json!({"communities": community, "min_households": 600});
    assert_problem(
        &f.call("POST", "/api/v1/gridding", Some(Role::Auditor), Some(bad)).await,
        StatusCode::BAD_REQUEST,
        "min_households",
    );
    let nocode = json!({"communities": {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "无编码"},
        "geometry": {"type": "Polygon", "coordinates": [[[114.06, 22.53], [114.08, 22.53], [114.08, 22.548], [114.06, 22.53]]]}}]}});
    let r = f.call("POST", "/api/v1/gridding", Some(Role::Auditor), Some(nocode)).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "communities");
    assert!(r.body["errors"][0]["reason"].as_str().unwrap().contains("needs a code"), "{}", r.text);
}

crate::test!(async another_layer_is_compared_with_the_live_one);
async fn another_layer_is_compared_with_the_live_one() {
    let f = fixture().await;
    let sq = |code: &str, x0: f64, x1: f64| {
        json!({"type": "Feature", "properties": {"code": code, "name": code, "manager": "河长"},
               "geometry": {"type": "Polygon", "coordinates": [[[x0, 22.5], [x1, 22.5], [x1, 22.6], [x0, 22.6], [x0, 22.5]]]}})
    };
    // River-chief grids: 福田 split at 114.06 rather than 114.05; 罗湖 the same as ours.
    let river = json!({"type": "FeatureCollection", "features": [sq("440304901", 114.0, 114.06), sq("440304902", 114.06, 114.1), sq("440303901", 114.1, 114.2)]});
    let r = f.call("POST", "/api/v1/audit/layers?tolerance_m=5", Some(Role::Auditor), Some(river)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let l = &r.body["layers"];
    assert_eq!(l["pairs"].as_array().unwrap().len(), 4, "{}", l["pairs"]);
    let m = &l["findings"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{m:#?}");
    assert_eq!(m[0]["kind"], "boundary_mismatch");
    assert_eq!(m[0]["grids"], json!(["440304002", "440304901"]));
    // A 0.01° (1,028 m) strip 0.1° (11 km) long.
    assert!((m[0]["area_m2"].as_f64().unwrap() - 11_400_000.0).abs() < 200_000.0, "{}", m[0]);
    assert_eq!(r.body["passed"], false);
    let bad = f
        .call(
            "POST",
            "/api/v1/audit/layers",
            Some(Role::Auditor),
            Some(json!({"type": "Point", "coordinates": [114, 22]})),
        )
        .await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "body");
    assert_problem(
        &f.call("POST", "/api/v1/audit/layers?tolerance_m=x", Some(Role::Auditor), Some(json!({}))).await,
        StatusCode::BAD_REQUEST,
        "tolerance_m",
    );
}

crate::test!(async response_coverage_finds_the_far_households_and_suggests_a_post_among_them);
async fn response_coverage_finds_the_far_households_and_suggests_a_post_among_them() {
    let f = fixture().await;
    let post = json!({"kind": "police_room", "name": "福田警务室", "phone": "0755-80000000", "radio_channel": "CH-07", "opening_hours": "24h"});
    let r = f.call("POST", "/api/v1/posts", Some(Role::Admin), Some(feature(point(114.02, 22.55), post))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // 200 households beside the post, 400 in a Luohu estate 13 km east.
    for (i, (x, units)) in [(114.021, 100), (114.022, 100), (114.15, 200), (114.151, 200)].into_iter().enumerate() {
        let props =
            json!({"address": format!("路{i}号"), "units": units, "tenant_count": units * 2, "safety_rating": "b"});
        let r =
            f.call("POST", "/api/v1/rental_housing", Some(Role::Admin), Some(feature(point(x, 22.55), props))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = f.call("GET", "/api/v1/audit/response?minutes=5", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let x = &r.body["response"];
    assert!(x["method"].as_str().unwrap().starts_with("straight line"), "no road network in this fixture");
    assert_eq!((x["households"].as_u64(), x["households_covered"].as_u64()), (Some(600), Some(200)));
    // 5 min at 20 km/h is a 1,667 m circle: 8.7 km² of the 232 km² of grids, by H3 cells.
    let share = x["share_area"].as_f64().unwrap();
    assert!((0.03..0.045).contains(&share), "{share}");
    let s = &x["suggestion"];
    assert_eq!(s["households_gained"], 400);
    assert!((114.149..114.152).contains(&s["at"][0].as_f64().unwrap()), "{s}");
    let unreachable: Vec<&Value> = x["findings"].as_array().unwrap().iter().collect();
    assert!(unreachable.iter().all(|u| u["kind"] == "unreachable"));
    assert_eq!(unreachable[0]["figures"]["households"], 400, "the largest uncovered area holds the estate");
    assert_problem(
        &f.call("GET", "/api/v1/audit/response?minutes=0", Some(Role::Auditor), None).await,
        StatusCode::BAD_REQUEST,
        "minutes",
    );
    assert_problem(
        &f.call("GET", "/api/v1/audit/response", Some(Role::GridWorker), None).await,
        StatusCode::FORBIDDEN,
        "",
    );
    assert!(
        f.audit_rows().await.iter().any(|row| row.action == "audit response" && row.result_count == 1),
        "the read of positions is logged"
    );
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

crate::test!(async every_documented_route_answers_every_role_as_the_policy_table_says);
async fn every_documented_route_answers_every_role_as_the_policy_table_says() {
    let f = fixture().await;
    let at = (114.02, 22.55);
    for layer in Layer::ALL {
        let r = f
            .call(
                "POST",
                &format!("/api/v1/{layer}"),
                Some(Role::Admin),
                Some(feature(point(at.0, at.1), props_for(layer))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{layer}: {}", r.text);
    }
    let (tx, ty) = tile_of(at.0, at.1);
    let doc = f.call("GET", "/api/v1/openapi.json", None, None).await.body;
    let mut reached = std::collections::HashSet::new();
    let mut checked = 0;
    let paths = doc["paths"].as_object().unwrap();
    // Deletions last, so that every other call finds its item.
    let mut ops: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| m.as_str() != "parameters")
                .map(move |m| (p.clone(), m.to_uppercase()))
        })
        .collect();
    ops.sort_by_key(|(_, m)| m == "DELETE");
    for (template, method) in ops {
        let path = template
            .replace("{id}", "1")
            .replace("{unit}", "1")
            .replace("{code}", "440304001")
            .replace("{device_id}", "dev-policy")
            .replace("{layers}", "grids")
            .replace("{z}", "14")
            .replace("{x}", &tx.to_string())
            .replace("{y}", &ty.to_string());
        let route =
            route_for(&method, &path).unwrap_or_else(|| panic!("{method} {template} has no row in policy::ROUTES"));
        reached.insert((route.method, route.path));
        let params = params_of(route, &path);
        let actions = policy::actions(route, |k| params.get(k).cloned());
        let body = match (method.as_str(), params.get("layer").and_then(|l| l.parse::<Layer>().ok())) {
            ("POST" | "PUT", Some(layer)) => Some(feature(point(at.0, at.1), props_for(layer))),
            ("POST" | "PUT", None) => Some(json!({})),
            _ => None,
        };
        for role in Role::ALL {
            let before = f.audit_rows().await.len();
            let uri = if path.contains("nearest") || path.ends_with("/locate") {
                format!("{path}?lon={}&lat={}", at.0, at.1)
            } else {
                path.clone()
            };
            let (status, v) = status_of(&f, &method, &uri, role, body.clone()).await;
            let what = format!("{method} {path} as {role}: {status} {v}");
            match policy::decide(role, &actions) {
                policy::Decision::NeedsToken(_) => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
                policy::Decision::Refused(_) => assert_eq!(status, StatusCode::FORBIDDEN, "{what}"),
                policy::Decision::Allow(grant) => {
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
                    // A scoped caller may still be refused a place outside its grids.
                    if status == StatusCode::FORBIDDEN {
                        assert_eq!(grant, policy::Grant::OwnGrids, "{what}");
                        assert!(v["detail"].as_str().unwrap_or("").contains("outside"), "{what}");
                    }
                    let audited = actions.iter().any(|a| policy::rule_of(*a).audit != policy::Audit::No);
                    if audited && status.is_success() && !path.contains("stream") {
                        assert!(f.audit_rows().await.len() > before, "{what}: allowed and audited, but no audit row");
                    }
                }
            }
            if policy::personal(route, &actions)
                && status.is_success()
                && !path.contains("stream")
                && !path.contains("events")
            {
                // Checked on the reply of a JSON route; the tile route is checked in its own test.
                let r = f.call(&method, &uri, Some(role), body.clone()).await;
                if r.status.is_success() {
                    assert_eq!(
                        r.headers.get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap()),
                        Some("no-store"),
                        "{what}"
                    );
                }
            }
            checked += 1;
        }
    }
    // Every route of the table is documented, but for the wall's files and the basemap.
    for r in policy::ROUTES {
        let undocumented = r.path == "/" || r.path.starts_with("/web/") || r.path.starts_with("/basemap/");
        assert!(
            undocumented || reached.contains(&(r.method, r.path)),
            "{} {} is in the policy but not in the OpenAPI document",
            r.method,
            r.path
        );
    }
    assert!(checked > 300, "only {checked} route × role calls");
}

crate::test!(async the_gateway_only_sends_positions);
async fn the_gateway_only_sends_positions() {
    let f = fixture().await;
    for uri in [
        "/api/v1/stats",
        "/api/v1/grids",
        "/api/v1/locate?lon=114.02&lat=22.55",
        "/tiles/grids/14/13381/7150.mvt",
        "/tiles/incidents_h3/14/13381/7150.mvt",
        "/tiles/grids.json",
        "/api/v1/incidents",
        "/api/v1/audit/geometry",
    ] {
        let r = f.call("GET", uri, Some(Role::Gateway), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}: {}", r.text);
    }
    // A dispatcher no longer posts position batches: that is the gateway's.
    let batch = json!({"fixes": []});
    let r = f.call("POST", "/api/v1/positions", Some(Role::Dispatcher), Some(batch)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

crate::test!(async a_grid_worker_cannot_capture_or_create_a_key_person_outside_its_grids);
async fn a_grid_worker_cannot_capture_or_create_a_key_person_outside_its_grids() {
    let f = fixture().await;
    // A key person living in 440303001 (罗湖), assigned there.
    let mut props = props_for(Layer::KeyPersonnel);
    props["assigned_grid"] = json!("440303001");
    let r = f
        .call("POST", "/api/v1/key_personnel", Some(Role::Admin), Some(feature(point(114.15, 22.55), props.clone())))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_i64().unwrap();
    // The worker of 440304001 re-points them to its own grid and moves them into it: not found
    // (outside its scope, it may not even learn they exist).
    let mut mine = props.clone();
    mine["assigned_grid"] = json!("440304001");
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/key_personnel/{id}"),
            Some(Role::GridWorker),
            Some(feature(point(114.02, 22.55), mine.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // …nor claim them by naming its grid while they stay where they are.
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/key_personnel/{id}"),
            Some(Role::GridWorker),
            Some(feature(point(114.15, 22.55), mine.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = f.call("GET", &format!("/api/v1/key_personnel/{id}"), Some(Role::GridWorker), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Creating a key person who lives outside its grids, assigned to its own grid: refused.
    let r = f
        .call(
            "POST",
            "/api/v1/key_personnel",
            Some(Role::GridWorker),
            Some(feature(point(114.15, 22.55), mine.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // One living in its grid but assigned elsewhere: refused too (it would hand them away).
    let r = f
        .call(
            "POST",
            "/api/v1/key_personnel",
            Some(Role::GridWorker),
            Some(feature(point(114.02, 22.55), props.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // In its grid and assigned to it: allowed; then re-assigning them elsewhere is not.
    let r = f
        .call(
            "POST",
            "/api/v1/key_personnel",
            Some(Role::GridWorker),
            Some(feature(point(114.02, 22.55), mine.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let own = r.body["id"].as_i64().unwrap();
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/key_personnel/{own}"),
            Some(Role::GridWorker),
            Some(feature(point(114.02, 22.55), props.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // …nor moving them out of its grids.
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/key_personnel/{own}"),
            Some(Role::GridWorker),
            Some(feature(point(114.15, 22.55), mine.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(f.count(Layer::KeyPersonnel).await, 2, "nothing refused was written");
    // The city-wide workload audit is not a grid worker's.
    let r = f.call("GET", "/api/v1/audit/workload", Some(Role::GridWorker), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

crate::test!(async every_answer_says_nosniff_and_personal_data_is_never_cached);
async fn every_answer_says_nosniff_and_personal_data_is_never_cached() {
    let f = fixture().await;
    for (uri, role) in [("/healthz", None), ("/api/v1/nope", None), ("/api/v1/key_personnel", Some(Role::Dispatcher))] {
        let r = f.call("GET", uri, role, None).await;
        assert_eq!(r.headers.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{uri}");
    }
    for uri in [
        "/api/v1/key_personnel",
        "/api/v1/positions/live",
        "/api/v1/audit_log",
        "/tiles/key_personnel/14/13381/7150.mvt",
    ] {
        let r = f.call("GET", uri, Some(Role::Admin), None).await;
        assert!(r.status.is_success(), "{uri}: {}", r.text);
        assert_eq!(r.headers.get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap()), Some("no-store"), "{uri}");
    }
}

crate::test!(async concurrent_response_audits_past_the_bound_get_503_with_retry_after);
async fn concurrent_response_audits_past_the_bound_get_503_with_retry_after() {
    let f = fixture().await;
    for i in 0..20 {
        let lon = 114.0 + f64::from(i % 5) * 0.03;
        let lat = 22.5 + f64::from(i / 5) * 0.02;
        let r = f
            .call(
                "POST",
                "/api/v1/rental_housing",
                Some(Role::Admin),
                Some(feature(point(lon, lat), props_for(Layer::RentalHousing))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // One audit is running (its permit held here, as its computation would hold it)…
    let running = f.shed.start(safegrid_services::api::guard::Work::Audit).unwrap();
    // …so four more asked at once are each refused at once, not queued behind seconds of CPU.
    let calls = (0..4).map(|i| {
        let uri = format!("/api/v1/audit/response?minutes={}", 5 + i);
        let f = &f;
        async move { f.call("GET", &uri, Some(Role::Dispatcher), None).await }
    });
    let replies = futures_util::future::join_all(calls).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
        assert!(r.headers.get(header::RETRY_AFTER).is_some());
        assert_eq!(r.body["status"], 503);
    }
    // Cheap routes keep answering meanwhile.
    assert_eq!(
        f.call("GET", "/api/v1/locate?lon=114.02&lat=22.55", Some(Role::Dispatcher), None).await.status,
        StatusCode::OK
    );
    assert_eq!(f.call("GET", "/api/v1/posts/nearest?lon=114.02&lat=22.55", None, None).await.status, StatusCode::OK);
    let m = f.call("GET", "/metrics", Some(Role::Admin), None).await;
    assert!(m.text.contains("safegrid_work_refused_total{work=\"audit\"} 4"), "{}", m.text);
    assert!(m.text.contains("safegrid_work_running{work=\"audit\"} 1"), "{}", m.text);
    assert!(m.text.contains("safegrid_inflight_limit{class=\"heavy\"}"));
    drop(running);
    // Then one is answered, and asked again with nothing changed it comes from the cache even
    // while another audit runs.
    let first = f.call("GET", "/api/v1/audit/response?minutes=5", Some(Role::Dispatcher), None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let running = f.shed.start(safegrid_services::api::guard::Work::Audit).unwrap();
    let again = f.call("GET", "/api/v1/audit/response?minutes=5", Some(Role::Dispatcher), None).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.raw, first.raw);
    drop(running);
    // A change to what it reads is never served stale.
    f.call("POST", "/api/v1/posts", Some(Role::Admin), Some(feature(point(114.03, 22.53), props_for(Layer::Posts))))
        .await;
    let running = f.shed.start(safegrid_services::api::guard::Work::Audit).unwrap();
    let changed = f.call("GET", "/api/v1/audit/response?minutes=5", Some(Role::Dispatcher), None).await;
    assert_eq!(changed.status, StatusCode::SERVICE_UNAVAILABLE, "a new post means a new computation");
    drop(running);
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

crate::test!(async an_osmand_fix_without_the_devices_secret_moves_nothing_and_strangers_all_get_one_answer);
/// The defect found by the attacker's test: an OsmAnd fix moved a unit 52 km with no
/// credential, and the answer told a known device id from an unknown one.
#[expect(clippy::float_cmp, reason = "counters are whole numbers, exact in f64")]
async fn an_osmand_fix_without_the_devices_secret_moves_nothing_and_strangers_all_get_one_answer() {
    let f = fixture().await;
    let a = tracked_unit(&f, "dev-000001", 114.01, 22.51).await;
    tracked_unit(&f, "dev-000002", 114.02, 22.52).await;
    // Minted by a dispatcher: 201, shown once, never cached.
    let r = mint(&f, Role::Dispatcher, "dev-000001").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 26, "at least 128 bits");
    let ident = r.body["identifier"].as_str().unwrap().to_owned();
    assert_eq!(ident, format!("dev-000001:{secret}"));
    // The secret is stored hashed, never in the clear.
    let db = f.store.device_secrets().await.unwrap();
    assert_eq!(db.len(), 1);
    assert_ne!(db[0].hash, secret);
    assert_eq!(db[0].hash, safegrid_services::positions::devices::secret_hash(&secret));

    let t = unix_now() - 60;
    let r = f.call("GET", &format!("/api/v1/osmand?id={ident}&lat=22.515&lon=114.015&timestamp={t}"), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let place = |f: &Fixture| f.service.layer(Layer::Responders).get(a).map(|it| it.pos).unwrap();
    let before = place(&f);
    assert_eq!((before.lon(), before.lat()), (114.015, 22.515));
    let nearest = || async {
        let r =
            f.call("GET", "/api/v1/dispatch/nearest?lon=114.015&lat=22.515&k=2", Some(Role::Dispatcher), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.text
    };
    let nearest_before = nearest().await;
    // Where each unit stands and its last fix (not its age, which grows as the test runs).
    let live = || async {
        let r = f.call("GET", "/api/v1/positions/live", Some(Role::Dispatcher), None).await;
        r.body["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["id"].clone(), u["geometry"].clone(), u["properties"]["fix"].clone()))
            .collect::<Vec<_>>()
    };
    let live_before = live().await;

    // No secret, a wrong one, the other device's, an unknown device with or without one, the
    // secret with the wrong device: one status, one body, and nothing moves.
    let attempts = [
        "dev-000001".to_owned(),
        "dev-000001:wrongwrongwrongwrongwrongw".to_owned(),
        "dev-000001:".to_owned(),
        format!("dev-000002:{secret}"),
        "dev-000003".to_owned(),
        "dev-999999:wrongwrongwrongwrongwrongw".to_owned(),
    ];
    let mut answers = Vec::new();
    for (i, id) in attempts.iter().enumerate() {
        let q = format!("/api/v1/osmand?id={id}&lat=22.5&lon=113.9&timestamp={}", t + 10 + i as i64);
        let r = f.call("GET", &q, None, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{id}: {}", r.text);
        assert_eq!(r.content_type, "application/problem+json");
        assert!(!r.text.contains(&secret) && !r.text.contains("dev-0"), "the answer names nothing: {}", r.text);
        answers.push((r.status, r.content_type.clone(), r.text.clone()));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    assert_eq!(metric(&f, "unauthenticated_device").await, attempts.len() as f64);
    assert_eq!(place(&f), before, "the unit did not move");
    assert_eq!(nearest().await, nearest_before, "dispatch/nearest still sends the same units");
    assert_eq!(live().await, live_before, "shown live where it was");
    let all = chrono::DateTime::from_timestamp(0, 0).unwrap();
    let stored =
        f.store.trace(safegrid_services::positions::Subject::Responder, a, all, chrono::Utc::now(), 10).await.unwrap();
    assert_eq!(stored.len(), 1, "only the authenticated fix is stored");

    // The batch API refuses each unauthenticated fix, with one reason, never echoing a secret.
    let fix = |dev: &str, dt: i64| json!({"device_id": dev, "time": t + 100 + dt, "lon": 113.9, "lat": 22.5});
    let body = json!({"fixes": [
        fix("dev-000001", 0),
        fix("dev-000001:nottheone", 1),
        {"device_id": "dev-000001", "device_secret": "nottheone", "time": t + 102, "lon": 113.9, "lat": 22.5},
        fix("dev-000003:whatever", 3),
        fix(&ident, 4),
    ]});
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let refused = r.body["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 4, "{}", r.text);
    for (i, x) in refused.iter().enumerate() {
        assert_eq!(x["index"], i);
        assert_eq!(x["reason"], "unauthenticated_device");
        assert!(!x["device_id"].as_str().unwrap().contains(':'), "{x}");
    }
    assert_eq!(r.body["stored"], 1, "the authenticated fix (a jump: history) is stored");
    assert_eq!(place(&f), before);

    // Revoked: refused at once in this process, with the same answer.
    let r = f.call("DELETE", "/api/v1/devices/dev-000001/secret", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = f
        .call("GET", &format!("/api/v1/osmand?id={ident}&lat=22.516&lon=114.016&timestamp={}", t + 200), None, None)
        .await;
    assert_eq!((r.status, r.text.clone()), (answers[0].0, answers[0].2.clone()));
    assert_eq!(place(&f), before);
    assert!(f.store.device_secrets().await.unwrap().is_empty(), "revoked in the store too");

    // Rotated: a new secret works and the one before it does not.
    let first = mint(&f, Role::Admin, "dev-000002").await.body["identifier"].as_str().unwrap().to_owned();
    let second = mint(&f, Role::Admin, "dev-000002").await.body["identifier"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let r = f
        .call("GET", &format!("/api/v1/osmand?id={first}&lat=22.521&lon=114.021&timestamp={}", t + 300), None, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = f
        .call("GET", &format!("/api/v1/osmand?id={second}&lat=22.521&lon=114.021&timestamp={}", t + 301), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

crate::test!(async tracker_secrets_are_managed_by_admins_and_dispatchers_for_carried_devices_only);
async fn tracker_secrets_are_managed_by_admins_and_dispatchers_for_carried_devices_only() {
    let f = fixture().await;
    tracked_unit(&f, "car-1", 114.01, 22.51).await;
    let person =
        json!({"category": "community_correction", "name": "钱七", "assigned_grid": "440304001", "device_id": "mon-1"});
    create_at(&f, Layer::KeyPersonnel, 114.03, 22.55, person).await;
    for role in [Role::GridWorker, Role::Auditor, Role::Gateway] {
        let r = mint(&f, role, "car-1").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}: {}", r.text);
        let r = f.call("DELETE", "/api/v1/devices/car-1/secret", Some(role), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}: {}", r.text);
    }
    assert_eq!(f.call("POST", "/api/v1/devices/car-1/secret", None, None).await.status, StatusCode::UNAUTHORIZED);
    // A key person's monitor is an admin's to manage.
    assert_eq!(mint(&f, Role::Dispatcher, "mon-1").await.status, StatusCode::FORBIDDEN);
    let r = f.call("DELETE", "/api/v1/devices/mon-1/secret", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(mint(&f, Role::Admin, "mon-1").await.status, StatusCode::CREATED);
    // A device nobody carries has no secret to mint; an admin may still revoke whatever
    // secret it has (one minted from the command line, say), a dispatcher may not.
    let r = mint(&f, Role::Admin, "nobody-carries-this").await;
    assert_problem(&r, StatusCode::NOT_FOUND, "device_id");
    let r = f.call("DELETE", "/api/v1/devices/nobody-carries-this/secret", Some(Role::Dispatcher), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "device_id");
    trust(&f, "nobody-carries-this");
    let r = f.call("DELETE", "/api/v1/devices/nobody-carries-this/secret", Some(Role::Admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = osmand_from(
        &f,
        "192.0.2.50:1",
        &format!("id={}&lat=22.5&lon=114&timestamp={}", cred("nobody-carries-this"), unix_now()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "revoked: {}", r.text);
    assert_eq!(mint(&f, Role::Dispatcher, "car-1").await.status, StatusCode::CREATED);
    // The three acts are in the audit log, the secret nowhere in it.
    let rows = f.audit_rows().await;
    let acts: Vec<&str> = rows.iter().map(|r| r.action.as_str()).filter(|a| a.starts_with("device_secret")).collect();
    assert_eq!(acts.len(), 3, "{acts:?}");
}

crate::test!(async a_trackers_secret_dies_with_its_carrier_or_when_the_carrier_gives_it_up);
/// A secret does not outlive its carrier: deleting the unit, or giving its tracker up, revokes
/// it in the same transaction — in memory and in the store.
async fn a_trackers_secret_dies_with_its_carrier_or_when_the_carrier_gives_it_up() {
    let f = fixture().await;
    let a = tracked_unit(&f, "car-7", 114.01, 22.51).await;
    let b = tracked_unit(&f, "car-8", 114.02, 22.52).await;
    let ident_a = mint(&f, Role::Dispatcher, "car-7").await.body["identifier"].as_str().unwrap().to_owned();
    let ident_b = mint(&f, Role::Dispatcher, "car-8").await.body["identifier"].as_str().unwrap().to_owned();
    let t = unix_now() - 100;
    let report = |ident: &str, dt: i64| format!("id={ident}&lat=22.511&lon=114.011&timestamp={}", t + dt);
    assert_eq!(osmand_from(&f, "192.0.2.60:1", &report(&ident_a, 0)).await.status, StatusCode::OK);
    // The dispatcher moves car-7's tracker elsewhere: car-7 carries "car-7-new" now.
    let mut unit = f.call("GET", &format!("/api/v1/responders/{a}"), Some(Role::Dispatcher), None).await.body;
    unit["properties"]["device_id"] = json!("car-7-new");
    let r = f.call("PUT", &format!("/api/v1/responders/{a}"), Some(Role::Dispatcher), Some(unit)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(osmand_from(&f, "192.0.2.60:1", &report(&ident_a, 10)).await.status, StatusCode::FORBIDDEN);
    // car-8 is deleted.
    let r = f.call("DELETE", &format!("/api/v1/responders/{b}"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(osmand_from(&f, "192.0.2.61:1", &report(&ident_b, 20)).await.status, StatusCode::FORBIDDEN);
    // Neither secret is in force in the store either (a restart would not revive them).
    assert!(f.store.device_secrets().await.unwrap().is_empty());
}

crate::test!(async guessing_secrets_from_one_address_is_stopped_with_429_and_retry_after_without_locking_out_its_neighbours);
async fn guessing_secrets_from_one_address_is_stopped_with_429_and_retry_after_without_locking_out_its_neighbours() {
    let f = fixture().await;
    tracked_unit(&f, "g-1", 114.01, 22.51).await;
    let t = unix_now() - 500;
    // 20 failed authentications a minute per address are answered; the next is refused
    // unchecked, even with the right secret, and says when to come back.
    for i in 0..20 {
        let r =
            osmand_from(&f, "198.51.100.7:40000", &format!("id=g-1:guess{i:04}&lat=22.5&lon=114&timestamp={}", t + i))
                .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "attempt {i}: {}", r.text);
    }
    let r = osmand_from(
        &f,
        "198.51.100.7:40001",
        &format!("id={}&lat=22.511&lon=114.011&timestamp={}", cred("g-1"), t + 30),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json");
    let wait: u64 = r.headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(metric(&f, "rate_limited").await >= 1.0);
    // Another address is not held back, and the device is not locked out by a stranger.
    let r =
        osmand_from(&f, "203.0.113.9:5000", &format!("id={}&lat=22.511&lon=114.011&timestamp={}", cred("g-1"), t + 31))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Nor is another tracker behind the same address (a carrier NAT): only the pair is held.
    tracked_unit(&f, "g-2", 114.02, 22.52).await;
    let r = osmand_from(
        &f,
        "198.51.100.7:40002",
        &format!("id={}&lat=22.521&lon=114.021&timestamp={}", cred("g-2"), t + 32),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // An IPv6 phone is one subscriber across its /64: a new address does not reset its count.
    for i in 0..20 {
        let addr = format!("[2408:8256:3::{:x}]:4000", i + 1);
        let r = osmand_from(&f, &addr, &format!("id=g-2:guess{i:04}&lat=22.5&lon=114&timestamp={}", t + 40 + i)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "attempt {i}: {}", r.text);
    }
    let r =
        osmand_from(&f, "[2408:8256:3:0:ffff::1]:4000", &format!("id=g-2:guess&lat=22.5&lon=114&timestamp={}", t + 70))
            .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}

crate::test!(async one_device_is_held_to_its_rate_but_its_offline_buffer_replays);
async fn one_device_is_held_to_its_rate_but_its_offline_buffer_replays() {
    let f = fixture().await;
    tracked_unit(&f, "fast-1", 114.01, 22.51).await;
    let t = unix_now() - 5_000;
    // The bucket refills so slowly here that the test does not depend on how fast this machine
    // commits: only the burst of 300 (an offline buffer replayed at once) goes through.
    let config = safegrid_services::positions::ingest::IngestConfig {
        limits: safegrid_services::positions::devices::LimitConfig { device_rate: 1e-6, ..Default::default() },
        ..Default::default()
    };
    let slow = app(AppState::with_ingest(f.service.clone(), config));
    let mut limited = None;
    for i in 0..400 {
        let q = format!(
            "id={}&lat=22.51&lon={:.6}&timestamp={}",
            cred("fast-1"),
            114.01 + f64::from(i) * 0.00001,
            t + i64::from(i)
        );
        let mut req = Request::builder().method("GET").uri(format!("/api/v1/osmand?{q}")).body(Body::empty()).unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo("192.0.2.1:1".parse::<std::net::SocketAddr>().unwrap()));
        let resp = slow.clone().oneshot(req).await.unwrap();
        let r = Reply {
            status: resp.status(),
            content_type: String::new(),
            headers: resp.headers().clone(),
            body: Value::Null,
            text: String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned(),
            raw: Vec::new(),
        };
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers.get(header::RETRY_AFTER).is_some());
            limited = Some(i);
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{i}: {}", r.text);
    }
    let at = limited.expect("the device's bucket ran dry");
    assert_eq!(at, 300, "limited after {at} fixes: the burst is 300");
}

crate::test!(async the_database_and_its_directory_are_readable_by_their_owner_only);
async fn the_database_and_its_directory_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city").join("safegrid.db");
    let url = format!("sqlite://{}", path.display());
    let store = safegrid_services::store::open(&url).await.unwrap();
    store.set_meta("written", "yes").await.unwrap();
    assert_eq!(mode(&dir.path().join("city")), 0o700);
    assert_eq!(mode(&path), 0o600);
    for suffix in ["-wal", "-shm"] {
        let side = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        assert!(side.exists(), "{suffix} exists while the store is open");
        assert_eq!(mode(&side), 0o600, "{suffix}");
    }
    drop(store);
    // A file left readable by others (by an older version) is tightened on the next start.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = safegrid_services::store::open(&url).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(store.meta("written").await.unwrap().as_deref(), Some("yes"), "the data is still there");
}
