//! Point → grid on the 33 real Dongguan towns, checked against PostGIS `ST_Contains` on the same
//! polygons and the same points (the data stays in ../shared/data: its licence forbids shipping).

use crate::support;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::grid::{GridLevel, unit_from_feature};
use safegrid_geodata::polygon_check::polygonal_from_geojson;
use safegrid_geodata::{GridCode, GridHierarchy, GridLocator, GridUnit, LonLat};
use sqlx::Connection;

/// The towns as units 441900001… under a city unit 441900, in file order.
fn dongguan(text: &str) -> (GridHierarchy, Vec<(String, String)>) {
    let fc: geojson::FeatureCollection = text.parse().unwrap();
    let mut units = Vec::new();
    let mut raw = Vec::new();
    for (i, f) in fc.features.iter().enumerate() {
        let code = format!("441900{:03}", i + 1);
        let mut f2 = f.clone();
        let props = f2.properties.get_or_insert_with(Default::default);
        props.insert("code".into(), code.clone().into());
        props.insert("level".into(), "street".into());
        let u = unit_from_feature(&f2).unwrap();
        raw.push((code, serde_json::to_string(f.geometry.as_ref().unwrap()).unwrap()));
        units.push(u);
    }
    let bbox = polygonal_from_geojson(
        &serde_json::from_str(
            r#"{"type":"Polygon","coordinates":[[[113.5,22.6],[114.3,22.6],[114.3,23.2],[113.5,23.2],[113.5,22.6]]]}"#,
        )
        .unwrap(),
    )
    .unwrap();
    units.push(GridUnit {
        code: GridCode::parse("441900").unwrap(),
        name: "东莞市".into(),
        level: GridLevel::District,
        manager: None,
        geometry: bbox,
    });
    (GridHierarchy::new(units).unwrap(), raw)
}

crate::test!(async locating_in_dongguan_towns_agrees_with_postgis_st_contains, PostGis, SharedData);
async fn locating_in_dongguan_towns_agrees_with_postgis_st_contains() {
    let test = "locating_in_dongguan_towns_agrees_with_postgis_st_contains";
    let Some(path) = support::shared_data(test, "dongguan_towns/dongguan_towns.geojson") else { return };
    let Some(server) = support::postgis_url(test) else { return };
    let url = support::fresh_pg_database(&server).await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis").execute(&mut db).await.unwrap();
    sqlx::query("CREATE TABLE towns (code text PRIMARY KEY, geom geometry(MultiPolygon, 4326))")
        .execute(&mut db)
        .await
        .unwrap();

    let (h, raw) = dongguan(&std::fs::read_to_string(path).unwrap());
    for (code, geojson) in &raw {
        sqlx::query("INSERT INTO towns VALUES ($1, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)))")
            .bind(code)
            .bind(geojson)
            .execute(&mut db)
            .await
            .unwrap();
    }
    sqlx::query("CREATE INDEX ON towns USING gist (geom)").execute(&mut db).await.unwrap();

    // 20,000 seeded points over Dongguan's bounding box, some outside every town.
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let pts: Vec<(f64, f64)> =
        (0..20_000).map(|_| (rng.random_range(113.50..114.27), rng.random_range(22.64..23.16))).collect();
    let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT p.i, (SELECT min(t.code) FROM towns t WHERE ST_Contains(t.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)))
         FROM UNNEST($1::float8[], $2::float8[]) WITH ORDINALITY AS p(x, y, i) ORDER BY p.i",
    )
    .bind(&xs)
    .bind(&ys)
    .fetch_all(&mut db)
    .await
    .unwrap();

    let loc = GridLocator::new(&h);
    let (mut inside, mut disagreements) = (0, Vec::new());
    for ((x, y), (_, theirs)) in pts.iter().zip(rows) {
        let ours = loc.containing_unit(LonLat::new(*x, *y).unwrap()).map(|i| h.unit(i).code.to_string());
        inside += usize::from(ours.is_some());
        if ours != theirs {
            disagreements.push((x, y, ours, theirs));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first {:?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(5)]
    );
    assert!(inside > 10_000, "the sample must mostly fall in towns ({inside})");
}
