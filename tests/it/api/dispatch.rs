//! Dispatch: nearest by road, the public lookup, the lifecycle and its alarms, zone alerts.

use super::*;

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
    // The title names the status it comes with (it once said "Service unavailable").
    assert_eq!(
        (r.body["status"].as_u64(), r.body["title"].as_str()),
        (Some(429), Some("Too many requests")),
        "{}",
        r.text
    );
    // A dispatcher's token is not rate-limited and sees the full post.
    let r = f.call("GET", "/api/v1/posts/nearest?lon=114.21&lat=22.688&k=1", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["features"][0]["properties"]["radio_channel"], "CH-9");
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

crate::test!(async an_incident_follows_its_dispatches_and_keeps_its_history);
async fn an_incident_follows_its_dispatches_and_keeps_its_history() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let inc = create_at(&f, Layer::Incidents, 114.02, 22.55, incident("open", 1, "2026-11-22T08:00:00Z")).await;
    let (a, b) = (
        create_at(&f, Layer::Responders, 114.021, 22.551, unit_props("巡-甲")).await,
        create_at(&f, Layer::Responders, 114.022, 22.552, unit_props("巡-乙")).await,
    );
    let incident_status = |id: i64| {
        let it = f.service.layer(Layer::Incidents).get(id).unwrap().clone();
        match it.props {
            safegrid_services::layer::Props::Incident(i) => i.status.name(),
            _ => unreachable!(),
        }
    };
    let r = f.call("POST", "/api/v1/dispatches", d, Some(json!({"incident_id": inc, "units": [a, b]}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(incident_status(inc), "dispatched");
    // The queue leaves out an incident a dispatch is open for, whatever its status says.
    let queued = |r: &Reply| r.body["features"].as_array().unwrap().iter().any(|x| x["id"] == inc);
    let it = f.service.layer(Layer::Incidents).get(inc).unwrap().clone();
    let reopened = feature(point(it.pos.lon(), it.pos.lat()), incident("open", 1, "2026-11-22T08:00:00Z"));
    assert_eq!(f.call("PUT", &format!("/api/v1/incidents/{inc}"), d, Some(reopened)).await.status, StatusCode::OK);
    assert!(!queued(&f.call("GET", "/api/v1/dispatch/queue", d, None).await));
    // Neither the incident nor a unit on the dispatch can be deleted: 409 naming the dispatch,
    // and nothing is written.
    let r = f.call("DELETE", &format!("/api/v1/incidents/{inc}"), Some(Role::Admin), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "id");
    assert!(r.body["detail"].as_str().unwrap().contains(&format!("open dispatch {id}")), "{}", r.text);
    let r = f.call("DELETE", &format!("/api/v1/responders/{a}"), Some(Role::Admin), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "id");
    assert!(
        f.service.layer(Layer::Incidents).get(inc).is_some() && f.service.layer(Layer::Responders).get(a).is_some()
    );
    // On scene: so is the incident.
    let r = f.call("POST", &format!("/api/v1/dispatches/{id}/units/{a}"), d, Some(json!({"step": "on_scene"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(incident_status(inc), "on_scene");
    // Cancelling needs a reason; it clears every unit still out and reopens the incident.
    let cancel = format!("/api/v1/dispatches/{id}/cancel");
    assert_problem(&f.call("POST", &cancel, d, Some(json!({"reason": "  "}))).await, StatusCode::BAD_REQUEST, "reason");
    assert_problem(
        &f.call("POST", &cancel, Some(Role::Auditor), Some(json!({"reason": "误报"}))).await,
        StatusCode::FORBIDDEN,
        "",
    );
    let r = f.call("POST", &cancel, d, Some(json!({"reason": "报警人撤回"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["closed_at"].is_string());
    assert_eq!(r.body["cancelled"], "报警人撤回");
    assert_eq!(r.body["units"][b.to_string()]["step"], "cleared");
    assert_eq!(incident_status(inc), "open");
    assert_problem(&f.call("POST", &cancel, d, Some(json!({"reason": "again"}))).await, StatusCode::CONFLICT, "");
    let status = |u: i64| match f.service.layer(Layer::Responders).get(u).unwrap().props.clone() {
        safegrid_services::layer::Props::Responder(r) => r.status.name(),
        _ => unreachable!(),
    };
    assert_eq!((status(a), status(b)), ("available", "available"));
    // Still kept, now for its history: the timeline must stay readable.
    let r = f.call("DELETE", &format!("/api/v1/incidents/{inc}"), Some(Role::Admin), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "id");
    assert!(r.body["detail"].as_str().unwrap().contains("history"), "{}", r.text);
    // A second dispatch runs to its end: the incident closes with it.
    let r = f.call("POST", "/api/v1/dispatches", d, Some(json!({"incident_id": inc, "units": [b]}))).await;
    let id2 = r.body["id"].as_i64().unwrap();
    assert_eq!(incident_status(inc), "dispatched");
    let r = f.call("POST", &format!("/api/v1/dispatches/{id2}/units/{b}"), d, Some(json!({"step": "cleared"}))).await;
    assert!(r.body["closed_at"].is_string(), "{}", r.text);
    assert_eq!(incident_status(inc), "closed");
    let r = f.call("GET", &format!("/api/v1/incidents/{inc}/timeline"), Some(Role::Auditor), None).await;
    let kinds: Vec<&str> = r.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "dispatched",
            "dispatched",
            "on_scene",
            "cleared",
            "cleared",
            "closed",
            "created",
            "dispatched",
            "cleared",
            "closed"
        ]
    );
    assert_eq!(r.body["events"][6]["detail"]["cancelled"], "报警人撤回");
    // An incident no dispatch ever referred to is deleted as before.
    let lone = create_at(&f, Layer::Incidents, 114.03, 22.55, incident("open", 3, "2026-11-22T08:00:00Z")).await;
    let r = f.call("DELETE", &format!("/api/v1/incidents/{lone}"), Some(Role::Admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
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
    // The person's alerts keep them: deleting them is refused, naming the alerts, and writes
    // nothing.
    let r = f.call("DELETE", &format!("/api/v1/key_personnel/{id}"), Some(Role::Admin), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "id");
    assert!(r.body["detail"].as_str().unwrap().contains("2 zone alert(s)"), "{}", r.text);
    assert!(f.service.layer(Layer::KeyPersonnel).get(id).is_some());
}
