//! Health, readiness, metrics, the OpenAPI document, and locate.

use super::*;

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
