//! The grid layer: listing, fetching, an admin's edits and what they relocate.

use super::*;

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

crate::test!(async a_grids_own_get_body_put_back_changes_no_coordinate_in_either_store, PostGis);
/// A GIS officer fetches a grid, edits its manager, and PUTs the body back: the boundary must
/// be the same numbers, to the last digit, as it was — in the answer, and once stored and read
/// back by a restarted server (it once moved in the last digit).
async fn a_grids_own_get_body_put_back_changes_no_coordinate_in_either_store() {
    let (sqlite, _dir, _) = support::sqlite_store().await;
    let Some((pg, _)) = support::pg_store("grid round trip").await else { return };
    for store in [sqlite, pg] {
        round_trip_put(store).await;
    }
}

async fn round_trip_put(store: Arc<dyn Store>) {
    let token = "round-trip-admin";
    let open = || async {
        let service = Arc::new(Service::open(store.clone()).await.unwrap());
        app(AppState::started(service.clone()))
    };
    let service = Arc::new(Service::open(store.clone()).await.unwrap());
    // Real boundaries: the demo's Shenzhen grids, with coordinates of full precision.
    service.replace_grids(safegrid_services::demo::hierarchy(2026).unwrap()).await.unwrap();
    service.add_token(token, &Principal { name: "gis".into(), role: Role::Admin, grids: vec![] }).await.unwrap();
    let codes: Vec<String> =
        service.grids().hierarchy.units().iter().step_by(293).map(|u| u.code.to_string()).collect();
    assert!(codes.len() > 8);
    let call = |app: Router, method: &str, code: &str, body: Option<Value>| {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/api/v1/grids/{code}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/geo+json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let req = req.body(body).unwrap();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        }
    };
    let app1 = app(AppState::started(service.clone()));
    let mut before = Vec::new();
    for code in &codes {
        let (status, got) = call(app1.clone(), "GET", code, None).await;
        assert_eq!(status, StatusCode::OK);
        let mut body = got.clone();
        body["properties"]["manager"] = json!("新网格员");
        let (status, put) = call(app1.clone(), "PUT", code, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{code}: {put}");
        assert_eq!(put["geometry"], got["geometry"], "{code}: the PUT's answer");
        before.push(got);
    }
    // A restarted server reads the boundaries back from the store.
    let app2 = open().await;
    for (code, got) in codes.iter().zip(before) {
        let (_, after) = call(app2.clone(), "GET", code, None).await;
        assert_eq!(after["geometry"], got["geometry"], "{code}: stored and read back");
        assert_eq!(after["properties"]["manager"], "新网格员");
    }
}
