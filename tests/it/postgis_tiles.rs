//! Our tiles against PostGIS `ST_AsMVT` over the same data and the same tile: the same feature
//! ids, points at the same pixel (±1), grid polygons covering the same area (within a few
//! percent: we simplify and PostGIS only snaps). The data is written once, through our PostGIS
//! store, and both sides read it.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::LonLat;
use safegrid_services::access::{Principal, Role};
use safegrid_services::api::{AppState, app};
use safegrid_services::layer::{Layer, Props};
use safegrid_services::service::Service;
use safegrid_tiles::TileId;
use safegrid_tiles::mvt::{self, Geometry};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

/// Twice the area of a ring (shoelace), in tile units.
fn area2(ring: &[[i32; 2]]) -> i64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            i64::from(a[0]) * i64::from(b[1]) - i64::from(b[0]) * i64::from(a[1])
        })
        .sum()
}

/// Area of a feature's polygons (exteriors minus holes), in tile units.
fn area(g: &Geometry) -> f64 {
    match g {
        Geometry::Polygons(ps) => ps.iter().flatten().map(|r| area2(r) as f64 / 2.0).sum::<f64>().abs(),
        _ => 0.0,
    }
}

crate::test!(async our_tiles_hold_the_features_postgis_st_asmvt_makes_of_the_same_data, PostGis);
async fn our_tiles_hold_the_features_postgis_st_asmvt_makes_of_the_same_data() {
    let Some((store, url)) = support::pg_store("postgis_tiles").await else { return };
    let service = Arc::new(Service::open(store).await.unwrap());
    service.replace_grids(support::fixture_grids()).await.unwrap();

    // A z14 tile across the border of the two 福田 grids, and 400 incidents in and around it.
    let tile = TileId::containing(114.05, 22.55, 14);
    let b = tile.bounds();
    let (w, h) = (b.east - b.west, b.north - b.south);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let rows: Vec<(LonLat, Props)> = (0..400)
        .map(|i| {
            let p = LonLat::new(
                rng.random_range(b.west - 0.2 * w..b.east + 0.2 * w),
                rng.random_range(b.south - 0.2 * h..b.north + 0.2 * h),
            )
            .unwrap();
            let props = serde_json::json!({"type": "theft", "priority": 1 + i % 4, "status": "open",
                                           "reported_at": "2026-11-20T08:00:00Z"});
            (p, Props::parse(Layer::Incidents, props).unwrap())
        })
        .collect();
    service.bulk_insert(Layer::Incidents, rows).await.unwrap();
    let token = "postgis-tiles-admin";
    service.add_token(token, &Principal { name: "t".into(), role: Role::Admin, grids: vec![] }).await.unwrap();

    let ours = {
        let req = Request::builder()
            .uri(format!("/tiles/grids,incidents/{}/{}/{}.mvt", tile.z, tile.x, tile.y))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = app(AppState::started(service.clone())).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        mvt::decode(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
    };

    // The same tile from PostGIS: 4096 extent, a 64-unit buffer, clipped, as ours.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (z, x, y) = (i32::from(tile.z), tile.x as i32, tile.y as i32);
    let sql = "
        WITH env AS (SELECT ST_TileEnvelope($1, $2, $3) AS e),
        pts AS (
            SELECT id, ST_AsMVTGeom(ST_Transform(geom, 3857), env.e, 4096, 64, true) AS geom
            FROM incidents, env
            WHERE geom && ST_Transform(ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096), 4326)),
        grids AS (
            SELECT code::bigint AS id, ST_AsMVTGeom(ST_Transform(geom, 3857), env.e, 4096, 64, true) AS geom
            FROM grid_units, env
            WHERE level = 'grid' AND geom && ST_Transform(ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096), 4326))
        SELECT (SELECT ST_AsMVT(pts, 'incidents', 4096, 'geom', 'id') FROM pts WHERE geom IS NOT NULL)
            || (SELECT ST_AsMVT(grids, 'grids', 4096, 'geom', 'id') FROM grids WHERE geom IS NOT NULL)";
    let bytes: Vec<u8> = sqlx::query_scalar(sql).bind(z).bind(x).bind(y).fetch_one(&pool).await.unwrap();
    let theirs = mvt::decode(&bytes).unwrap();

    let by_layer = |layers: &[mvt::Layer], name: &str| -> BTreeMap<u64, Geometry> {
        let l = layers.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no {name} layer"));
        l.features.iter().map(|f| (f.id.unwrap(), f.geometry.clone())).collect()
    };

    // Incidents: the same ids, each at the same pixel within one unit of rounding.
    let (a, b) = (by_layer(&ours, "incidents"), by_layer(&theirs, "incidents"));
    assert!(a.len() > 100, "the tile holds {} incidents", a.len());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "incident ids");
    for (id, g) in &a {
        let (Geometry::Points(p), Geometry::Points(q)) = (g, &b[id]) else { panic!("{id}: not a point") };
        let (p, q) = (p[0], q[0]);
        assert!((p[0] - q[0]).abs() <= 1 && (p[1] - q[1]).abs() <= 1, "incident {id}: ours {p:?}, PostGIS {q:?}");
    }

    // Grids: the same grids, covering the same area within 3 % (we simplify; PostGIS snaps).
    let (a, b) = (by_layer(&ours, "grids"), by_layer(&theirs, "grids"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "grid ids");
    assert_eq!(a.len(), 2, "the tile straddles two grids");
    for (id, g) in &a {
        let (ours, theirs) = (area(g), area(&b[id]));
        assert!((ours - theirs).abs() <= 0.03 * theirs, "grid {id}: area {ours} vs PostGIS {theirs}");
    }
}
