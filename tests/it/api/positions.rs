//! Live positions: OsmAnd and batch ingest, traces, geofence crossings.

use super::*;

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
    // A phone whose clock is an hour ahead: told so (a 200 would read as stored), and counted.
    let r = f
        .call("GET", &format!("/api/v1/osmand?id={k}&lat=22.52&lon=114.02&timestamp={}", unix_now() + 3600), None, None)
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "timestamp");
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

/// An open `GET /api/v1/events` stream, read event by event.
struct FeedReader {
    body: Body,
    buffer: String,
}

impl FeedReader {
    async fn open(f: &Fixture, uri: &str, role: Role) -> Self {
        let req = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&role]))
            .body(Body::empty())
            .unwrap();
        let resp = f.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        Self { body: resp.into_body(), buffer: String::new() }
    }

    /// The next event of this kind (others are skipped); fails after 10 s.
    async fn next(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let event = block.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim);
                let data: String = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).collect();
                if event == Some(kind) {
                    return serde_json::from_str(&data).unwrap();
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no {kind} event within 10 s"))
                .expect("the stream ended")
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }
}

crate::test!(async the_live_feed_pushes_units_and_dispatches_in_scope_and_audits_what_it_shows);
async fn the_live_feed_pushes_units_and_dispatches_in_scope_and_audits_what_it_shows() {
    let f = fixture().await;
    let west = create_at(&f, Layer::Responders, 114.021, 22.551, unit_props("巡-西")).await;
    let east = create_at(&f, Layer::Responders, 114.07, 22.55, unit_props("巡-东")).await;
    let inc = create_at(&f, Layer::Incidents, 114.02, 22.55, incident("open", 1, "2026-11-22T08:00:00Z")).await;
    // The grid worker of 440304001 hears of the west unit only.
    let mut feed = FeedReader::open(&f, "/api/v1/events?with=units,dispatches", Role::GridWorker).await;
    let open = feed.next("dispatches").await;
    assert_eq!(open["open"], json!([]));
    let snap = feed.next("units").await;
    assert_eq!(snap["full"], true);
    let ids: Vec<i64> = snap["units"].as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [west], "the east unit ({east}) is outside the worker's grid: {snap}");
    assert_eq!(
        (snap["units"][0]["tracked"].clone(), snap["units"][0]["freshness"].clone()),
        (json!(false), json!("none"))
    );
    // The snapshot was logged before it left, naming the unit.
    let rows = f.store.audit_rows(AuditQuery { before_id: None, limit: 5 }).await.unwrap();
    let row = rows.iter().find(|r| r.action == "live_stream").expect("an audit row for the snapshot");
    assert_eq!((row.actor.as_str(), row.subjects.clone()), ("grid_worker user", vec![west]));
    // A dispatch: the dispatch itself, then the unit's new line (status and dispatch), and only
    // what changed.
    let r = f
        .call("POST", "/api/v1/dispatches", Some(Role::Dispatcher), Some(json!({"incident_id": inc, "units": [west]})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let d = feed.next("dispatch").await;
    assert_eq!(d["id"], id);
    let change = feed.next("units").await;
    assert_eq!(change["full"], false);
    assert_eq!(change["units"].as_array().unwrap().len(), 1, "{change}");
    assert_eq!(
        (change["units"][0]["status"].clone(), change["units"][0]["dispatch"].clone()),
        (json!("dispatched"), json!(id))
    );
    // A tracked unit's first fix changes its freshness (a whole line); its next fixes are
    // moves: [id, lon, lat, fix time].
    let tracked = tracked_unit(&f, "feed-1", 114.023, 22.553).await;
    assert_eq!(feed.next("units").await["units"][0]["id"], tracked);
    let t0 = chrono::Utc::now().timestamp();
    let fix = |lon: f64, t: i64| format!("/api/v1/osmand?id={}&lat=22.553&lon={lon}&timestamp={t}", cred("feed-1"));
    assert_eq!(f.call("GET", &fix(114.0231, t0 - 2), None, None).await.status, StatusCode::OK);
    let first = feed.next("units").await;
    assert_eq!(
        (first["units"][0]["id"].as_i64(), first["units"][0]["freshness"].as_str()),
        (Some(tracked), Some("live")),
        "{first}"
    );
    assert_eq!(f.call("GET", &fix(114.0232, t0 - 1), None, None).await.status, StatusCode::OK);
    let moved = feed.next("units").await;
    assert_eq!(moved["units"], json!([]), "{moved}");
    assert_eq!(moved["moves"], json!([[tracked, 114.0232, 22.553, (t0 - 1) * 1000]]));
    // A unit deleted leaves the feed.
    let gone = create_at(&f, Layer::Responders, 114.022, 22.552, unit_props("巡-临时")).await;
    let added = feed.next("units").await;
    assert_eq!(added["units"][0]["id"], gone);
    assert_eq!(
        f.call("DELETE", &format!("/api/v1/responders/{gone}"), Some(Role::Admin), None).await.status,
        StatusCode::NO_CONTENT
    );
    let removed = feed.next("units").await;
    assert_eq!(removed["removed"], json!([gone]));
    // What a feed may carry is named; a gateway hears nothing.
    assert_problem(
        &f.call("GET", "/api/v1/events?with=gossip", Some(Role::Dispatcher), None).await,
        StatusCode::BAD_REQUEST,
        "with",
    );
    assert_problem(&f.call("GET", "/api/v1/events", Some(Role::Gateway), None).await, StatusCode::FORBIDDEN, "");
}

crate::test!(async the_live_feed_is_gzipped_for_a_client_that_takes_it_and_each_event_arrives_whole);
async fn the_live_feed_is_gzipped_for_a_client_that_takes_it_and_each_event_arrives_whole() {
    use std::io::Write as _;
    let f = fixture().await;
    create_at(&f, Layer::Responders, 114.021, 22.551, unit_props("巡-压缩")).await;
    let req = Request::get("/api/v1/events?with=units")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Dispatcher]))
        .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    // Every frame is flushed: decoding the frames so far gives whole events, with no more input.
    let mut text = flate2::write::GzDecoder::new(Vec::new());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.expect("events in time").unwrap().unwrap();
        text.write_all(&frame.into_data().unwrap()).unwrap();
        text.flush().unwrap();
        let so_far = String::from_utf8_lossy(text.get_ref()).into_owned();
        if so_far.contains("event: units") {
            assert!(so_far.ends_with("\n\n"), "{so_far}");
            assert!(so_far.contains("巡-压缩"), "{so_far}");
            break;
        }
    }
}
