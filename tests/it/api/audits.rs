//! The coverage audits on the live layer, and gridding.

use super::*;

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
