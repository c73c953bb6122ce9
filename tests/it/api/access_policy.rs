//! The access policy walked over every documented route × role; gateway, capture, headers, load shedding.

use super::*;

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
    // Every route of the table is documented and was walked: the wall's files and the basemap
    // included (without a basemap served, its routes answer 404 to everyone).
    for r in policy::ROUTES {
        assert!(
            reached.contains(&(r.method, r.path)),
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
