//! The item layers: create, read, replace, query, nearest, delete; CRS; every bad-input class.

use super::*;

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

crate::test!(async malformed_path_values_are_refused_naming_their_parameter);
/// Path values are parsed once, by type (`api::extract`): each bad one is refused naming the
/// route's parameter, its value and the reason, before the handler runs.
async fn malformed_path_values_are_refused_naming_their_parameter() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    assert_problem(&f.call("GET", "/api/v1/nowhere/1", a, None).await, StatusCode::NOT_FOUND, "layer");
    assert_problem(&f.call("GET", "/api/v1/incidents/0", a, None).await, StatusCode::BAD_REQUEST, "id");
    assert_problem(&f.call("GET", "/api/v1/incidents/x1", a, None).await, StatusCode::BAD_REQUEST, "id");
    assert_problem(&f.call("GET", "/api/v1/dispatches/-3", a, None).await, StatusCode::BAD_REQUEST, "id");
    let step = json!({"step": "acknowledged"});
    let r = f.call("POST", "/api/v1/dispatches/1/units/seven", Some(Role::Dispatcher), Some(step)).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "unit");
    assert_problem(&f.call("GET", "/api/v1/grids/44X304", a, None).await, StatusCode::BAD_REQUEST, "code");
    let r = f.call("PUT", "/api/v1/grids/44X304", a, Some(json!({"type": "Feature"}))).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "code");
    assert_problem(&f.call("GET", "/api/v1/responders/1.5/trace", a, None).await, StatusCode::BAD_REQUEST, "id");
}

crate::test!(async search_finds_incidents_units_grids_posts_and_addresses_in_scope_and_audits_units);
async fn search_finds_incidents_units_grids_posts_and_addresses_in_scope_and_audits_units() {
    let f = fixture().await;
    let west = create_at(&f, Layer::Responders, 114.02, 22.55, unit_props("巡-搜西")).await;
    create_at(&f, Layer::Responders, 114.07, 22.55, unit_props("巡-搜东")).await;
    let inc = create_at(&f, Layer::Incidents, 114.021, 22.551, incident("open", 2, "2026-11-22T08:00:00Z")).await;
    let kinds = |r: &Reply| -> Vec<(String, String)> {
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["kind"].as_str().unwrap().to_owned(), x["label"].as_str().unwrap().to_owned()))
            .collect()
    };
    let d = Some(Role::Dispatcher);
    let r = f.call("GET", &format!("/api/v1/search?q=%23{inc}"), d, None).await;
    assert_eq!(kinds(&r)[0], ("incident".into(), format!("#{inc} theft open")), "{}", r.text);
    let r = f.call("GET", "/api/v1/search?q=%E6%90%9C", d, None).await; // 搜
    assert_eq!(kinds(&r).iter().filter(|(k, _)| k == "unit").count(), 2, "{}", r.text);
    let r = f.call("GET", "/api/v1/search?q=440304002", d, None).await;
    assert_eq!(kinds(&r), [("grid".into(), "440304002 福田第002网格".into())], "{}", r.text);
    assert_eq!(r.body["results"][0]["bbox"], json!([114.05, 22.5, 114.1, 22.6]));
    let r = f.call("GET", "/api/v1/search?q=%E6%B7%B1%E5%8D%97", d, None).await; // 深南: an incident's address
    assert!(kinds(&r).iter().any(|(k, l)| k == "address" && l.contains("深南大道")), "{}", r.text);
    // A grid worker finds only what lies in its grids; the units it found are audited.
    let r = f.call("GET", "/api/v1/search?q=%E5%B7%A1", Some(Role::GridWorker), None).await; // 巡
    let units: Vec<i64> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "unit")
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert_eq!(units, [west], "{}", r.text);
    let rows = f.store.audit_rows(AuditQuery { before_id: None, limit: 1 }).await.unwrap();
    assert_eq!((rows[0].action.as_str(), rows[0].subjects.clone()), ("search", vec![west]));
    assert_problem(&f.call("GET", "/api/v1/search?q=%20", d, None).await, StatusCode::BAD_REQUEST, "q");
    assert_problem(&f.call("GET", "/api/v1/search?q=x", Some(Role::Gateway), None).await, StatusCode::FORBIDDEN, "");
}

crate::test!(async search_finds_the_basemaps_streets_by_their_osm_names);
async fn search_finds_the_basemaps_streets_by_their_osm_names() {
    use safegrid_services::basemap::Basemap;
    let mut f = fixture().await;
    let basemap = Basemap::demo().await.unwrap();
    let bounds = basemap.tiles.as_ref().unwrap().metadata.bounds.unwrap();
    let streets = basemap.streets().await.to_vec();
    assert!(streets.len() > 20, "street names read from the Longgang basemap: {}", streets.len());
    // Every name lies where the basemap is (with a tile's margin: a road's middle vertex may lie
    // in the buffer beyond its tile).
    for s in &streets {
        let (lon, lat) = (s.at.lon(), s.at.lat());
        assert!(
            lon > bounds[0] - 0.05 && lon < bounds[2] + 0.05 && lat > bounds[1] - 0.05 && lat < bounds[3] + 0.05,
            "{s:?}"
        );
    }
    f.app = app(AppState::started(f.service.clone()).with_basemap(basemap));
    let road = streets.iter().find(|s| s.name.chars().count() >= 3).expect("a named road");
    let q = road.name.bytes().fold(String::new(), |mut q, b| {
        use std::fmt::Write as _;
        let _ = write!(q, "%{b:02X}");
        q
    });
    let r = f.call("GET", &format!("/api/v1/search?q={q}"), Some(Role::Dispatcher), None).await;
    let found = r.body["results"].as_array().unwrap().iter().find(|x| x["kind"] == "street").cloned();
    let found = found.unwrap_or_else(|| panic!("{} not found: {}", road.name, r.text));
    assert!(found["label"].as_str().unwrap().starts_with(&road.name), "{found}");
    assert!((found["lon"].as_f64().unwrap() - road.at.lon()).abs() < 1e-9);
}
