//! Real clients at the edges: what Traccar Client 9, a history replay, a web portal on another
//! origin and a careless filter send, and what they must get back.

use super::*;

/// The body Traccar Client 9 posts (its background-location library's shape, which Traccar's
/// own server reads): `device_id` beside a `location` with `coords`, `battery`, `activity`.
fn traccar_json(device_id: &str, lon: f64, lat: f64, at: chrono::DateTime<chrono::Utc>) -> String {
    json!({
        "location": {
            "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "coords": {"latitude": lat, "longitude": lon, "accuracy": 5.0, "speed": 2.5, "heading": 90.0, "altitude": 30.0},
            "is_moving": true,
            "odometer": 1520.0,
            "event": "motionchange",
            "battery": {"level": 0.64, "is_charging": false},
            "activity": {"type": "on_foot"},
            "extras": {},
        },
        "device_id": device_id,
    })
    .to_string()
}

async fn post_json(f: &Fixture, uri: &str, body: String) -> Reply {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    f.send(req).await
}

crate::test!(async traccar_client_9s_json_body_moves_its_unit_like_the_query_form);
async fn traccar_client_9s_json_body_moves_its_unit_like_the_query_form() {
    let f = fixture().await;
    let id = tracked_unit(&f, "traccar-9", 114.01, 22.51).await;
    let at = chrono::Utc::now() - chrono::Duration::seconds(30);
    let r = post_json(&f, "/api/v1/osmand", traccar_json(&cred("traccar-9"), 114.0123, 22.5123, at)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let it = f.service.layer(Layer::Responders).get(id).cloned().unwrap();
    assert_eq!((it.pos.lon(), it.pos.lat()), (114.0123, 22.5123));
    let trace =
        f.call("GET", &format!("/api/v1/responders/{id}/trace?format=json"), Some(Role::Dispatcher), None).await;
    assert_eq!(trace.status, StatusCode::OK, "{}", trace.text);
    let p = &trace.body["points"][0];
    let speed = p["speed_mps"].as_f64().unwrap_or_else(|| panic!("{}", trace.text));
    assert!((speed - 2.5).abs() < 1e-6, "speed is m/s in the JSON form: {p}");
    assert!((p["battery_pct"].as_f64().unwrap() - 64.0).abs() < 1e-6, "{p}");
    // Without the secret: the same refusal as the query form, and nothing moves.
    let r = post_json(&f, "/api/v1/osmand", traccar_json("traccar-9", 114.05, 22.55, at)).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "id");
    // A malformed body names the JSON path at fault.
    let mut bad: Value = serde_json::from_str(&traccar_json(&cred("traccar-9"), 114.05, 22.55, at)).unwrap();
    bad["location"]["coords"]["latitude"] = json!(123.0);
    let r = post_json(&f, "/api/v1/osmand", bad.to_string()).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "location.coords.latitude");
    let it = f.service.layer(Layer::Responders).get(id).cloned().unwrap();
    assert_eq!((it.pos.lon(), it.pos.lat()), (114.0123, 22.5123));
}

crate::test!(async a_fix_older_than_the_retention_is_an_error_naming_the_option_not_a_200);
async fn a_fix_older_than_the_retention_is_an_error_naming_the_option_not_a_200() {
    let f = fixture().await;
    tracked_unit(&f, "replay-1", 114.01, 22.51).await;
    let old = unix_now() - 400 * 86_400;
    let r = f
        .call(
            "GET",
            &format!("/api/v1/osmand?id={}&lat=22.51&lon=114.01&timestamp={old}", cred("replay-1")),
            None,
            None,
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "timestamp");
    let reason = r.body["errors"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("183 days") && reason.contains("--retention-days"), "{reason}");
    let ahead = unix_now() + 3_600;
    let r = f
        .call(
            "GET",
            &format!("/api/v1/osmand?id={}&lat=22.51&lon=114.01&timestamp={ahead}", cred("replay-1")),
            None,
            None,
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "timestamp");
    // Counted as refused, as before; and a repeat of the live fix is still a 200 (it is stored).
    assert!(metric(&f, "too_old").await >= 1.0 && metric(&f, "future").await >= 1.0);
    let now = unix_now() - 5;
    let uri = format!("/api/v1/osmand?id={}&lat=22.51&lon=114.01&timestamp={now}", cred("replay-1"));
    assert_eq!(f.call("GET", &uri, None, None).await.status, StatusCode::OK);
    let r = f.call("GET", &uri, None, None).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "refused: duplicate\n"));
}

crate::test!(async a_filter_value_no_item_can_have_is_refused_by_name);
async fn a_filter_value_no_item_can_have_is_refused_by_name() {
    let f = fixture().await;
    for (uri, field) in [
        ("/api/v1/incidents?priority=9", "priority"),
        ("/api/v1/incidents?priority=0", "priority"),
        ("/api/v1/incidents?status=open,bogus", "status"),
        ("/api/v1/posts?kind=castle", "kind"),
        ("/api/v1/posts?priority=1", "priority"),
        ("/api/v1/responders?type=submarine", "type"),
        ("/api/v1/posts?capability=medic", "capability"),
        ("/api/v1/incidents/nearest?lon=114.02&lat=22.55&status=shut", "status"),
    ] {
        let r = f.call("GET", uri, Some(Role::Admin), None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, field);
        assert!(r.body["errors"][0]["reason"].as_str().unwrap().len() > 5, "{uri}: {}", r.text);
    }
    // Values items can hold are filters as before; incident types are the city's own words.
    for uri in [
        "/api/v1/incidents?priority=4&status=open,closed&type=anything",
        "/api/v1/posts?kind=police_room&status=open",
        "/api/v1/responders?kind=patrol&capability=medic&status=available",
    ] {
        let r = f.call("GET", uri, Some(Role::Admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
    }
    let (tx, ty) = tile_of(114.02, 22.55);
    let (status, _, _) =
        f.tile(&format!("/tiles/incidents/14/{tx}/{ty}.mvt?priority=7"), Some(Role::Admin), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

crate::test!(async a_new_incident_without_reported_at_is_stamped_with_its_arrival_and_a_put_keeps_it);
async fn a_new_incident_without_reported_at_is_stamped_with_its_arrival_and_a_put_keeps_it() {
    let f = fixture().await;
    let before = chrono::Utc::now();
    let props = json!({"type": "theft", "priority": 2, "status": "open", "address": "深南大道1号"});
    let r = f
        .call("POST", "/api/v1/incidents", Some(Role::Dispatcher), Some(feature(point(114.02, 22.55), props.clone())))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let stamped: chrono::DateTime<chrono::Utc> = r.body["properties"]["reported_at"].as_str().unwrap().parse().unwrap();
    assert!(stamped >= before - chrono::Duration::milliseconds(1) && stamped <= chrono::Utc::now(), "{stamped}");
    let id = r.body["id"].as_i64().unwrap();
    let mut changed = props;
    changed["status"] = json!("closed");
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/incidents/{id}"),
            Some(Role::Dispatcher),
            Some(feature(point(114.02, 22.55), changed)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kept: chrono::DateTime<chrono::Utc> = r.body["properties"]["reported_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(kept, stamped);
    // A time that is given is kept as given.
    let r = f
        .call(
            "POST",
            "/api/v1/incidents",
            Some(Role::Dispatcher),
            Some(feature(point(114.02, 22.55), incident("open", 1, "2026-11-01T00:00:00Z"))),
        )
        .await;
    assert_eq!(r.body["properties"]["reported_at"], "2026-11-01T00:00:00Z", "{}", r.text);
}

crate::test!(async cross_origin_calls_are_answered_for_configured_origins_only);
async fn cross_origin_calls_are_answered_for_configured_origins_only() {
    let f = fixture().await;
    let portal = "https://portal.example.gov.cn";
    let preflight = |app: Router, origin: &str| {
        let req = Request::builder()
            .method("OPTIONS")
            .uri("/api/v1/incidents")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
            .body(Body::empty())
            .unwrap();
        async move { app.oneshot(req).await.unwrap() }
    };
    let get = |app: Router, origin: &str, token: &str| {
        let req = Request::builder()
            .uri("/api/v1/incidents")
            .header(header::ORIGIN, origin)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        async move { app.oneshot(req).await.unwrap() }
    };
    let allow = |r: &axum::response::Response| {
        r.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).map(|v| v.to_str().unwrap().to_owned())
    };
    // Off by default: no origin is told it may read.
    let token = f.tokens[&Role::Dispatcher].clone();
    assert_eq!(allow(&get(f.app.clone(), portal, &token).await), None);
    // Configured: that origin's preflight and calls are allowed; another's are not.
    let state = AppState::started(f.service.clone()).with_cors_origins(vec![portal.parse().unwrap()]);
    let app = app(state);
    let r = preflight(app.clone(), portal).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(allow(&r).as_deref(), Some(portal));
    let methods = r.headers().get(header::ACCESS_CONTROL_ALLOW_METHODS).unwrap().to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let headers = r.headers().get(header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap().to_str().unwrap().to_ascii_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    let r = get(app.clone(), portal, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(allow(&r).as_deref(), Some(portal));
    assert_eq!(allow(&preflight(app.clone(), "https://evil.example").await), None);
    assert_eq!(allow(&get(app.clone(), "https://evil.example", &token).await), None);
    // The origin opens no door: without a token the call is still refused.
    let req = Request::builder().uri("/api/v1/incidents").header(header::ORIGIN, portal).body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

crate::test!(async metrics_are_typed_as_prometheus_defines_them_with_process_and_build_series);
async fn metrics_are_typed_as_prometheus_defines_them_with_process_and_build_series() {
    let f = fixture().await;
    let r = f.call("GET", "/metrics", Some(Role::Admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let types: HashMap<&str, &str> =
        r.text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split_once(' ').unwrap()).collect();
    for counter in [
        "safegrid_fixes_total",
        "safegrid_fix_commits_total",
        "safegrid_fix_commit_failures_total",
        "safegrid_tile_cache_requests_total",
        "safegrid_shed_total",
        "process_cpu_seconds_total",
    ] {
        assert_eq!(types.get(counter), Some(&"counter"), "{counter}\n{}", r.text);
    }
    for (name, kind) in &types {
        assert_eq!(name.ends_with("_total"), *kind == "counter", "{name} is a {kind}");
    }
    for gauge in
        ["process_resident_memory_bytes", "process_start_time_seconds", "process_open_fds", "safegrid_build_info"]
    {
        assert_eq!(types.get(gauge), Some(&"gauge"), "{gauge}");
    }
    let build = r.text.lines().find(|l| l.starts_with("safegrid_build_info{")).unwrap();
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))) && build.ends_with(" 1"), "{build}");
    // Each name has one TYPE line.
    assert_eq!(types.len(), r.text.lines().filter(|l| l.starts_with("# TYPE ")).count());
}
