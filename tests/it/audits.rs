//! Grid coverage audits on real layers: the 33 Dongguan towns (whose real overlaps the audit
//! must find and locate), the demo's Shenzhen grids (which must pass), and a damaged copy of
//! them; gap and overlap areas checked against PostGIS on the same polygons; and the offline
//! `safegrid audit` command end to end (exit codes, formats, refusals).

use crate::support;

use geo::MapCoords;
use safegrid_geodata::audit::geometry::{self, GeometryAudit, TerritorySource};
use safegrid_geodata::audit::input::{AuditLayer, ReadOptions, read_layer};
use safegrid_geodata::audit::{Kind, Severity, Silent, Thresholds};
use safegrid_geodata::grid::unit_to_feature;
use safegrid_geodata::{Crs, GridLevel};
use safegrid_services::demo;
use serde_json::Value;
use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_safegrid");

fn read(text: &str) -> AuditLayer {
    read_layer(text, &ReadOptions::default()).unwrap()
}

fn run(layer: &AuditLayer, territory: Option<&geo::MultiPolygon<f64>>) -> GeometryAudit {
    geometry::audit(layer, territory, Thresholds::default(), &Silent).unwrap()
}

/// The demo layer as a file would hold it: the ten districts and their ~3,000 grids.
fn demo_layer_text() -> String {
    let h = demo::hierarchy(2026).unwrap();
    let fc = geojson::FeatureCollection {
        bbox: None,
        features: h.units().iter().map(unit_to_feature).collect(),
        foreign_members: None,
    };
    fc.to_string()
}

fn shenzhen_territory(test: &str) -> Option<geo::MultiPolygon<f64>> {
    let path = support::shared_data(test, "shenzhen_districts/shenzhen_districts.geojson")?;
    let t = read(&std::fs::read_to_string(path).unwrap());
    Some(geo::MultiPolygon(t.features.into_iter().flat_map(|f| f.geometry.unwrap().0).collect()))
}

fn of_kind(a: &GeometryAudit, k: Kind) -> Vec<&safegrid_geodata::audit::Finding> {
    a.findings.iter().filter(|f| f.kind == k).collect()
}

crate::test!(the_dongguan_towns_overlaps_are_found_named_and_located, SharedData);
fn the_dongguan_towns_overlaps_are_found_named_and_located() {
    let Some(path) = support::shared_data("dongguan overlaps", "dongguan_towns/dongguan_towns.geojson") else { return };
    let layer = read_layer(
        &std::fs::read_to_string(path).unwrap(),
        &ReadOptions { code_property: "id".into(), ..ReadOptions::default() },
    )
    .unwrap();
    let a = run(&layer, None);
    assert_eq!(a.grids, 33);
    assert_eq!(a.territory, TerritorySource::LayerOutline);
    let overlaps = of_kind(&a, Kind::Overlap);
    let pairs: Vec<(String, String)> = overlaps
        .iter()
        .map(|f| {
            let names: Vec<String> = f.features.iter().map(|&i| layer.features[i].name.clone().unwrap()).collect();
            (names[0].clone(), names[1].clone())
        })
        .collect();
    let mut sorted: Vec<(String, String)> =
        pairs.iter().map(|(a, b)| if a < b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) }).collect();
    sorted.sort();
    assert_eq!(sorted, [("东城街道".to_owned(), "莞城街道".to_owned()), ("石碣镇".to_owned(), "石龙镇".to_owned())]);
    // About 0.02% of the towns' area, as the data's README measured with shapely.
    let total: f64 = overlaps.iter().map(|f| f.area_m2.unwrap()).sum();
    let share = total / a.covered_m2;
    assert!((0.0001..0.0003).contains(&share), "overlap share {share}");
    for f in &overlaps {
        // Located: the reported point lies in both towns, and the bbox holds it.
        let [x, y] = f.location.unwrap();
        let p = geo::Point::new(x, y);
        for &i in &f.features {
            use geo::Intersects;
            assert!(layer.features[i].geometry.as_ref().unwrap().intersects(&p), "{} at {x},{y}", f.message);
        }
        let b = f.bbox.unwrap();
        assert!(b[0] <= x && x <= b[2] && b[1] <= y && y <= b[3]);
        assert!(f.geometry.is_some());
    }
    // The towns leave holes between them; the audit reports each as a gap with its neighbours.
    assert!(!of_kind(&a, Kind::Gap).is_empty());
    assert!(of_kind(&a, Kind::Gap).iter().all(|g| !g.grids.is_empty()));
}

crate::test!(the_demo_layer_passes_alone_and_against_the_shenzhen_districts, SharedData);
fn the_demo_layer_passes_alone_and_against_the_shenzhen_districts() {
    let layer = read(&demo_layer_text());
    let a = run(&layer, None);
    assert_eq!(a.territory, TerritorySource::TopLevelUnits { count: 10 });
    let errors: Vec<_> = a.findings.iter().filter(|f| f.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(a.grids > 2_000 && a.parents == 10);
    let Some(territory) = shenzhen_territory("demo layer vs districts") else { return };
    let a = run(&layer, Some(&territory));
    let errors: Vec<_> = a.findings.iter().filter(|f| f.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    eprintln!(
        "demo: {} findings, covered {:.1} of {:.1} km²",
        a.findings.len(),
        a.covered_m2 / 1e6,
        a.territory_m2 / 1e6
    );
}

/// The demo layer with faults put in on purpose, all in Futian (440304): grid 001 moved 30 m
/// east (overlaps with its neighbours, and a gap behind it), grid 002 deleted (a gap), the
/// westernmost grid enlarged 10% about its centre (reaching out of the district), 004 unstaffed.
fn damaged_demo_text() -> String {
    use geo::{BoundingRect, Centroid};
    let h = demo::hierarchy(2026).unwrap();
    let west = h
        .units()
        .iter()
        .filter(|u| u.level == GridLevel::Grid && u.code.as_str().starts_with("440304"))
        .min_by(|a, b| {
            a.geometry.bounding_rect().unwrap().min().x.total_cmp(&b.geometry.bounding_rect().unwrap().min().x)
        })
        .unwrap()
        .code
        .to_string();
    let mut features = Vec::new();
    for u in h.units() {
        let mut u = u.clone();
        match u.code.as_str() {
            "440304002" => continue,
            "440304001" => u.geometry = u.geometry.map_coords(|c| geo::Coord { x: c.x + 0.0003, y: c.y }),
            "440304004" => u.manager = None,
            c if c == west => {
                let o = u.geometry.centroid().unwrap();
                u.geometry = u
                    .geometry
                    .map_coords(|c| geo::Coord { x: o.x() + (c.x - o.x()) * 1.1, y: o.y() + (c.y - o.y()) * 1.1 });
            }
            _ => {}
        }
        features.push(unit_to_feature(&u));
    }
    geojson::FeatureCollection { bbox: None, features, foreign_members: None }.to_string()
}

crate::test!(faults_put_into_the_demo_layer_are_each_found_in_futian);
fn faults_put_into_the_demo_layer_are_each_found_in_futian() {
    let layer = read(&damaged_demo_text());
    let a = run(&layer, None);
    let kinds: std::collections::BTreeSet<Kind> =
        a.findings.iter().filter(|f| f.severity == Severity::Error).map(|f| f.kind).collect();
    assert_eq!(kinds, [Kind::Gap, Kind::Overlap, Kind::OutsideParent, Kind::Unstaffed].into_iter().collect());
    for f in a.findings.iter().filter(|f| f.severity == Severity::Error) {
        // Each fault involves a Futian grid (the enlarged one also reaches into Nanshan's).
        assert!(f.grids.iter().any(|g| g.starts_with("440304")), "{f:?}");
    }
    assert!(of_kind(&a, Kind::Gap).iter().all(|g| g.message.contains("福田区")), "gaps name their district");
    assert!(of_kind(&a, Kind::Overlap).iter().any(|o| o.grids.contains(&"440304001".to_owned())));
    let outside = of_kind(&a, Kind::OutsideParent);
    assert!(
        outside.iter().any(|f| f.severity == Severity::Error && f.message.contains("outside its parent 440304")),
        "{outside:#?}"
    );
}

crate::test!(async gap_and_overlap_areas_agree_with_postgis, PostGis, SharedData);
/// Our gap and overlap areas against PostGIS's (`ST_Union`, `ST_Difference`, `ST_Intersection`)
/// on the same polygons: the same overlapping pairs, and areas within 0.1%.
async fn gap_and_overlap_areas_agree_with_postgis() {
    let Some(server) = support::postgis_url("audit vs PostGIS") else { return };
    let url = support::fresh_pg_database(&server).await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis").execute(&mut db).await.unwrap();

    let mut layers: Vec<(&str, String, Option<String>)> = vec![("damaged demo", damaged_demo_text(), None)];
    if let Some(p) = support::shared_data("audit vs PostGIS", "dongguan_towns/dongguan_towns.geojson") {
        layers.push(("dongguan towns", std::fs::read_to_string(p).unwrap(), None));
    }
    if let Some(p) = support::shared_data("audit vs PostGIS", "shenzhen_districts/shenzhen_districts.geojson") {
        layers.push(("demo vs districts", demo_layer_text(), Some(std::fs::read_to_string(p).unwrap())));
    }
    for (name, text, territory_text) in layers {
        let layer = read(&text);
        let territory = territory_text.as_deref().map(|t| {
            let t = read(t);
            geo::MultiPolygon(t.features.into_iter().flat_map(|f| f.geometry.unwrap().0).collect())
        });
        let a = run(&layer, territory.as_ref());
        let grid_idx = &a.grid_features;

        sqlx::query("DROP TABLE IF EXISTS g, t").execute(&mut db).await.unwrap();
        sqlx::query("CREATE TABLE g (i int PRIMARY KEY, geom geometry(MultiPolygon, 4326))")
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (geom geometry(MultiPolygon, 4326))").execute(&mut db).await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        for &i in grid_idx {
            let gj = v["features"][i]["geometry"].to_string();
            sqlx::query("INSERT INTO g VALUES ($1, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)))")
                .bind(i as i32)
                .bind(gj)
                .execute(&mut db)
                .await
                .unwrap();
        }
        sqlx::query("CREATE INDEX ON g USING gist (geom)").execute(&mut db).await.unwrap();
        // The territory as the audit chose it: given, the top-level units, or the grids' outline.
        let territory_features: Vec<Value> = match (&a.territory, &territory_text) {
            (TerritorySource::Given, Some(t)) => {
                serde_json::from_str::<Value>(t).unwrap()["features"].as_array().unwrap().clone()
            }
            (TerritorySource::TopLevelUnits { .. }, _) => v["features"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["properties"]["level"] == "district")
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        for f in &territory_features {
            sqlx::query("INSERT INTO t VALUES (ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)))")
                .bind(f["geometry"].to_string())
                .execute(&mut db)
                .await
                .unwrap();
        }
        let territory_sql = if territory_features.is_empty() {
            "SELECT ST_Union(ST_MakePolygon(ST_ExteriorRing(d.geom))) FROM (SELECT (ST_Dump(ST_Union(geom))).geom FROM g) d"
        } else {
            "SELECT ST_Union(geom) FROM t"
        };
        // Areas on the EASE-Grid 2.0 equal-area projection (EPSG:6933): PostGIS's spheroidal
        // ST_Area(geography) fails outright ("area < 0") on some of the hair-thin pieces an
        // overlay leaves, and for pieces this small the two measures agree to 1e-6.
        // A piece counts as real as the audit defines it: at least sliver_m2, and on average at
        // least sliver_width_m wide (twice the area over the perimeter).
        let t = Thresholds::default();
        let real = "ST_Area(ST_Transform(d.geom, 6933)) >= $1 AND 2 * ST_Area(ST_Transform(d.geom, 6933)) / NULLIF(ST_Perimeter(d.geom::geography), 0) >= $2";
        let gap_sql = format!(
            "SELECT COALESCE(SUM(ST_Area(ST_Transform(d.geom, 6933))), 0) FROM (SELECT (ST_Dump(ST_Difference(({territory_sql}), (SELECT ST_Union(geom) FROM g)))).geom) d WHERE {real}"
        );
        let pg_gap: f64 =
            sqlx::query(&gap_sql).bind(t.sliver_m2).bind(t.sliver_width_m).fetch_one(&mut db).await.unwrap().get(0);
        let rows = sqlx::query(&format!(
            "SELECT i, j, SUM(ST_Area(ST_Transform(d.geom, 6933))) FROM (SELECT a.i, b.i AS j, (ST_Dump(ST_Intersection(a.geom, b.geom))).geom FROM g a JOIN g b ON a.i < b.i AND ST_Intersects(a.geom, b.geom)) d WHERE ST_Dimension(d.geom) = 2 AND {real} GROUP BY i, j"
        ))
        .bind(t.sliver_m2)
        .bind(t.sliver_width_m)
        .fetch_all(&mut db)
        .await
        .unwrap();
        let pg_pairs: BTreeMap<(usize, usize), f64> = rows
            .iter()
            .map(|r| ((r.get::<i32, _>(0) as usize, r.get::<i32, _>(1) as usize), r.get::<f64, _>(2)))
            .collect();

        let ours_gap: f64 = a.findings.iter().filter(|f| f.kind == Kind::Gap).filter_map(|f| f.area_m2).sum();
        let ours_pairs: BTreeMap<(usize, usize), f64> = a
            .findings
            .iter()
            .filter(|f| f.kind == Kind::Overlap)
            .map(|f| ((f.features[0], f.features[1]), f.area_m2.unwrap()))
            .collect();
        eprintln!(
            "{name}: gap {ours_gap:.2} m² vs PostGIS {pg_gap:.2}; {} overlapping pairs vs {}",
            ours_pairs.len(),
            pg_pairs.len()
        );
        let close =
            |ours: f64, theirs: f64| (ours - theirs).abs() <= 0.001 * theirs.max(ours) || (ours - theirs).abs() < 1.0;
        assert!(close(ours_gap, pg_gap), "{name}: gap area {ours_gap} vs PostGIS {pg_gap}");
        assert_eq!(
            ours_pairs.keys().collect::<Vec<_>>(),
            pg_pairs.keys().collect::<Vec<_>>(),
            "{name}: overlapping pairs"
        );
        for (k, ours) in &ours_pairs {
            assert!(close(*ours, pg_pairs[k]), "{name}: overlap {k:?}: {ours} vs PostGIS {}", pg_pairs[k]);
        }
        if name != "demo vs districts" {
            assert!(
                ours_gap > 1_000.0 && !ours_pairs.is_empty(),
                "{name}: the comparison must have something to compare"
            );
        }
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn audit_cmd(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("audit").args(args).output().unwrap()
}

crate::test!(the_cli_exit_code_says_passed_findings_or_unusable);
fn the_cli_exit_code_says_passed_findings_or_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "demo.geojson", &demo_layer_text());
    let out = audit_cmd(&["--grids", &good, "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], true);

    let bad = write(dir.path(), "damaged.geojson", &damaged_demo_text());
    let out = audit_cmd(&["--grids", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FAILED") && stderr.contains("overlap"), "{stderr}");

    let junk = write(dir.path(), "junk.geojson", "{\"type\":\"FeatureCollection\",\"features\":");
    let out = audit_cmd(&["--grids", &junk]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.geojson: not GeoJSON"));
    let out = audit_cmd(&["--grids", &dir.path().join("absent.geojson").display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
}

crate::test!(an_unclosed_ring_and_a_three_point_ring_are_reported_with_their_place);
fn an_unclosed_ring_and_a_three_point_ring_are_reported_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"code":"440304001","manager":"李四"},"geometry":{"type":"Polygon","coordinates":[[[114.0,22.5],[114.01,22.5],[114.01,22.51],[114.0,22.51]]]}},
      {"type":"Feature","properties":{"code":"440304002","manager":"李四"},"geometry":{"type":"Polygon","coordinates":[[[114.01,22.5],[114.02,22.5],[114.01,22.5]]]}}]}"#;
    let f = write(dir.path(), "rings.geojson", text);
    let out = audit_cmd(&["--grids", &f, "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let invalid: Vec<&Value> =
        r["geometry"]["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "invalid_geometry").collect();
    assert_eq!(invalid.len(), 2, "{invalid:#?}");
    assert_eq!(invalid[0]["grids"][0], "440304001");
    assert_eq!(invalid[0]["path"], "coordinates[0]");
    assert!(invalid[0]["message"].as_str().unwrap().contains("not closed"));
    assert!(invalid[1]["message"].as_str().unwrap().contains("3 position(s); a linear ring needs at least 4"));
    assert_eq!(r["geometry"]["unmeasured"], 1);
}

crate::test!(grids_given_in_gcj02_are_refused_unless_converted, SharedData);
fn grids_given_in_gcj02_are_refused_unless_converted() {
    let Some(territory) = support::shared_data("gcj02 grids", "shenzhen_districts/shenzhen_districts.geojson") else {
        return;
    };
    let territory = territory.display().to_string();
    // The demo layer as AMap would show it: every coordinate moved into GCJ-02.
    let h = demo::hierarchy(2026).unwrap();
    let shifted: Vec<_> = h
        .units()
        .iter()
        .filter(|u| u.level == GridLevel::Grid)
        .map(|u| {
            let mut u = u.clone();
            u.geometry = u
                .geometry
                .map_coords(|c| Crs::Gcj02.from_wgs84(safegrid_geodata::LonLat::new(c.x, c.y).unwrap()).to_coord());
            unit_to_feature(&u)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "amap.geojson",
        &geojson::FeatureCollection { bbox: None, features: shifted, foreign_members: None }.to_string(),
    );
    let out = audit_cmd(&["--grids", &f, "--territory", &territory, "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("look like GCJ-02") && err.contains("better as GCJ-02") && err.contains("--crs gcj02"),
        "{err}"
    );
    // Converted, they cover the districts again: what remains is GCJ-02's bending of long
    // straight edges (metres), far below the shift's 300–600 m.
    let out = audit_cmd(&["--grids", &f, "--territory", &territory, "--crs", "gcj02", "--quiet"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let covered = r["geometry"]["covered_m2"].as_f64().unwrap() / r["geometry"]["territory_m2"].as_f64().unwrap();
    assert!((covered - 1.0).abs() < 0.001, "covered share {covered}");
}

crate::test!(the_html_report_is_one_self_contained_page_with_map_and_charts);
fn the_html_report_is_one_self_contained_page_with_map_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "damaged.geojson", &damaged_demo_text());
    let html = dir.path().join("audit.html");
    let out = audit_cmd(&["--grids", &bad, "--format", "html", "--out", &html.display().to_string(), "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>"));
    assert!(page.contains("未通过 FAILED") && page.contains(r#"<svg id="map""#) && page.contains(r#"class="bars""#));
    // Nothing is fetched: no external script, style, image or font.
    for needle in ["src=\"http", "href=\"http", "url(http", "@import", "<link"] {
        assert!(!page.contains(needle), "{needle} in the report");
    }
    // Every finding has its row, and the map draws every grid.
    let rows = page.matches("<tr id=\"f").count();
    let r: Value = serde_json::from_slice(&audit_cmd(&["--grids", &bad, "--quiet"]).stdout).unwrap();
    assert_eq!(rows, r["geometry"]["findings"].as_array().unwrap().len());
    assert!(page.matches("<path d=").count() >= r["geometry"]["grids"].as_u64().unwrap() as usize);

    let gj = audit_cmd(&["--grids", &bad, "--format", "geojson", "--quiet"]);
    let fc: geojson::FeatureCollection = String::from_utf8(gj.stdout).unwrap().trim().parse().unwrap();
    assert_eq!(fc.features.len(), rows);
    assert!(fc.features.iter().all(|f| f.geometry.is_some()));
}

crate::test!(the_cli_audits_patrol_coverage_and_workload_from_files);
fn the_cli_audits_patrol_coverage_and_workload_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let layer = write(dir.path(), "demo.geojson", &demo_layer_text());
    // Two patrol cars in Futian (440304), one on foot in Nanshan 30 hours ago; times in three
    // of the accepted forms.
    let mut csv = String::from("unit,t,lon,lat\n");
    let end = chrono::DateTime::parse_from_rfc3339("2026-11-22T08:00:00+08:00").unwrap().timestamp();
    for i in 0..120 {
        csv.push_str(&format!("粤B-001,{},{:.6},22.53\n", end - 3_600 + i * 10, 114.03 + 0.0003 * i as f64));
        csv.push_str(&format!(
            "粤B-002,{},114.06,{:.6}\n",
            chrono::DateTime::from_timestamp(end - 1_800 + i * 10, 0).unwrap().to_rfc3339(),
            22.52 + 0.0003 * i as f64
        ));
    }
    csv.push_str(&format!("步巡-7,{},113.93,22.52\n", end - 30 * 3_600));
    let traces = write(dir.path(), "traces.csv", &csv);
    // 400 households each in two Futian places, 900 in one: the second grid is over the norm.
    let houses = write(
        dir.path(),
        "houses.csv",
        "lon,lat,units,tenant_count\n114.031,22.531,400,1000\n114.061,22.521,900,3000\n",
    );
    let html = dir.path().join("a.html");
    let out = audit_cmd(&[
        "--grids",
        &layer,
        "--traces",
        &traces,
        "--until",
        "2026-11-22T08:00:00+08:00",
        "--households",
        &houses,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &r["patrol"];
    assert_eq!(
        (p["fixes"].as_u64(), p["units"].as_u64()),
        (Some(240), Some(2)),
        "the walk 30 h ago is outside the 24 h window"
    );
    let grids = p["grids"].as_array().unwrap();
    let patrolled: Vec<&str> =
        grids.iter().filter(|g| !g["last_patrol"].is_null()).map(|g| g["grid"].as_str().unwrap()).collect();
    assert!(!patrolled.is_empty() && patrolled.iter().all(|g| g.starts_with("440304")), "{patrolled:?}");
    assert!(
        grids.iter().filter(|g| g["visited"].as_u64() > Some(0)).all(|g| !g["last_patrol"].is_null()),
        "a grid passed through was patrolled"
    );
    let unpatrolled = p["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "unpatrolled").count();
    assert_eq!(unpatrolled, r["geometry"]["grids"].as_u64().unwrap() as usize - patrolled.len());
    let many: Vec<&Value> =
        r["workload"]["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "many_households").collect();
    assert_eq!(many.len(), 1);
    assert_eq!(many[0]["figures"]["households"], 900);
    let out = audit_cmd(&[
        "--grids",
        &layer,
        "--traces",
        &traces,
        "--format",
        "html",
        "--out",
        &html.display().to_string(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("巡逻覆盖 Patrol coverage") && page.contains("近期无巡逻"));
    let bad = write(dir.path(), "bad.csv", "unit,t,lon,lat\nA,noon,114,22.5\n");
    let out = audit_cmd(&["--grids", &layer, "--traces", &bad, "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.csv: line 2: time \"noon\""));
}

crate::test!(the_cli_grids_communities_and_the_result_passes_the_audit_but_for_workers);
fn the_cli_grids_communities_and_the_result_passes_the_audit_but_for_workers() {
    let dir = tempfile::tempdir().unwrap();
    // Two real-shaped communities: two of the demo's Futian grids, re-coded as communities.
    let h = demo::hierarchy(2026).unwrap();
    let picked: Vec<_> = ["440304010", "440304011"]
        .iter()
        .map(|c| h.get(&safegrid_geodata::GridCode::parse(c).unwrap()).unwrap().clone())
        .collect();
    let communities: Vec<geojson::Feature> = picked
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut u = u.clone();
            u.code = safegrid_geodata::GridCode::parse(&format!("44030400{}", i + 1)).unwrap();
            u.level = GridLevel::Community;
            unit_to_feature(&u)
        })
        .collect();
    let cfile = write(
        dir.path(),
        "communities.geojson",
        &geojson::FeatureCollection { bbox: None, features: communities, foreign_members: None }.to_string(),
    );
    // 2,000 households spread over both.
    let mut csv = String::from("lon,lat,households\n");
    use geo::BoundingRect;
    for (k, u) in picked.iter().enumerate() {
        let r = u.geometry.bounding_rect().unwrap();
        for i in 0..100 {
            for j in 0..10 {
                let (x, y) = (
                    r.min().x + r.width() * (f64::from(i) + 0.5) / 100.0,
                    r.min().y + r.height() * (f64::from(j) + 0.5) / 10.0,
                );
                if geo::Intersects::intersects(&u.geometry, &geo::Point::new(x, y)) {
                    csv.push_str(&format!("{x},{y},{}\n", 1 + k));
                }
            }
        }
    }
    let hfile = write(dir.path(), "households.csv", &csv);
    let out_file = dir.path().join("grids.geojson");
    let out = Command::new(BIN)
        .args(["gridding", "--communities", &cfile, "--households", &hfile, "--out", &out_file.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("grids in"), "a summary on stderr");
    let fc: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let grids: Vec<&Value> =
        fc["features"].as_array().unwrap().iter().filter(|f| f["properties"]["level"] == "grid").collect();
    assert!(grids.len() >= 3, "{}", grids.len());
    // The output, communities and grids together, passes the audit except that no grid has a
    // worker yet.
    let out = audit_cmd(&["--grids", &out_file.display().to_string(), "--quiet"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&Value> = r["geometry"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error" && f["kind"] != "unstaffed")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(r["summary"]["counts"]["unstaffed"].as_u64().unwrap() as usize, grids.len());
    // Bad input: exit 2 and the reason.
    let out = Command::new(BIN).args(["gridding", "--communities", &hfile, "--households", &hfile]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

crate::test!(async two_layers_are_compared_and_their_crosswalk_agrees_with_postgis, PostGis);
/// Futian's demo grids (H3 res-8 pieces) and a "river-chief" layer of the same district cut
/// from H3 res-7 cells: res-8 cells do not nest in res-7 ones, so the layers disagree along
/// many boundaries. Every intersecting pair and its area is checked against PostGIS.
async fn two_layers_are_compared_and_their_crosswalk_agrees_with_postgis() {
    use safegrid_geodata::audit::layers;
    let h = demo::hierarchy(2026).unwrap();
    let futian = h.get(&safegrid_geodata::GridCode::parse("440304").unwrap()).unwrap().clone();
    let a_units: Vec<_> = h
        .units()
        .iter()
        .filter(|u| u.level == GridLevel::Grid && u.code.as_str().starts_with("440304"))
        .cloned()
        .collect();
    let b_units = safegrid_geodata::gridgen::h3_grids(&[futian], h3o::Resolution::Seven).unwrap();
    let (la, lb) = (
        safegrid_geodata::audit::input::AuditLayer::from_units(&a_units),
        safegrid_geodata::audit::input::AuditLayer::from_units(&b_units),
    );
    let (ra, rb): (Vec<_>, Vec<_>) = (la.features.iter().collect(), lb.features.iter().collect());

    let same = layers::audit(("综治", &ra), ("综治", &ra), 5.0, &Silent);
    assert!(same.findings.is_empty(), "{:#?}", same.findings);
    assert_eq!(same.nested_b, a_units.len());

    let r = layers::audit(("综治", &ra), ("河长", &rb), 5.0, &Silent);
    let mismatches: Vec<_> = r.findings.iter().filter(|f| f.kind == Kind::BoundaryMismatch).collect();
    assert!(!mismatches.is_empty());
    assert!(r.findings.iter().all(|f| f.kind == Kind::BoundaryMismatch), "both cover Futian exactly");
    assert!(r.nested_b < b_units.len());

    let Some(server) = support::postgis_url("layers vs PostGIS") else { return };
    let url = support::fresh_pg_database(&server).await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis").execute(&mut db).await.unwrap();
    for (table, units) in [("la", &a_units), ("lb", &b_units)] {
        sqlx::query(&format!("CREATE TABLE {table} (code text PRIMARY KEY, geom geometry(MultiPolygon, 4326))"))
            .execute(&mut db)
            .await
            .unwrap();
        for u in units {
            let g =
                serde_json::to_string(&safegrid_geodata::polygon_check::multipolygon_to_geojson(&u.geometry)).unwrap();
            sqlx::query(&format!(
                "INSERT INTO {table} VALUES ($1, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)))"
            ))
            .bind(u.code.as_str())
            .bind(g)
            .execute(&mut db)
            .await
            .unwrap();
        }
    }
    // Pairs sharing at least 1 m² (below that, the two engines' rounding decides).
    let rows = sqlx::query(
        "SELECT a.code, b.code, ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 6933)) s FROM la a JOIN lb b ON ST_Intersects(a.geom, b.geom)",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let pg: BTreeMap<(String, String), f64> = rows
        .iter()
        .map(|r| ((r.get::<String, _>(0), r.get::<String, _>(1)), r.get::<f64, _>(2)))
        .filter(|(_, s)| *s >= 1.0)
        .collect();
    let ours: BTreeMap<(String, String), f64> =
        r.pairs.iter().filter(|p| p.area_m2 >= 1.0).map(|p| ((p.a.clone(), p.b.clone()), p.area_m2)).collect();
    assert_eq!(ours.keys().collect::<Vec<_>>(), pg.keys().collect::<Vec<_>>(), "the same intersecting pairs");
    for (k, s) in &ours {
        assert!((s - pg[k]).abs() <= 0.001 * pg[k] + 0.5, "{k:?}: {s} vs PostGIS {}", pg[k]);
    }
    eprintln!(
        "Futian: {} × {} grids, {} pairs, {} boundary disagreements",
        a_units.len(),
        b_units.len(),
        ours.len(),
        mismatches.len()
    );
}

crate::test!(the_cli_compares_a_layer_against_another, SharedData);
fn the_cli_compares_a_layer_against_another() {
    let Some(towns) = support::shared_data("cli --against", "dongguan_towns/dongguan_towns.geojson") else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&towns).unwrap();
    // The same towns with every coordinate 0.0003° (31 m) further east: each town's western
    // strip is now its western neighbour's in the other layer.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    fn shift(c: &mut Value) {
        match c {
            Value::Array(a) if a.len() >= 2 && a[0].is_number() => a[0] = json_num(a[0].as_f64().unwrap() + 0.0003),
            Value::Array(a) => a.iter_mut().for_each(shift),
            _ => {}
        }
    }
    fn json_num(x: f64) -> Value {
        serde_json::Number::from_f64(x).map(Value::Number).unwrap()
    }
    for f in v["features"].as_array_mut().unwrap() {
        shift(&mut f["geometry"]["coordinates"]);
    }
    let moved = write(dir.path(), "moved.geojson", &v.to_string());
    let towns = towns.display().to_string();
    let out = audit_cmd(&["--grids", &towns, "--against", &moved, "--code-property", "name", "--quiet"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let l = &r["layers"];
    let mismatch = l["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "boundary_mismatch").count();
    assert!(mismatch >= 20, "shared borders between towns disagree by 31 m: {mismatch}");
    assert!(
        l["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "coverage_mismatch"),
        "the outer edge moved too"
    );
    // Against itself the only disagreements are the layer's own two overlaps (each town of a
    // pair holds ground the other also claims), seen from either side.
    let out = audit_cmd(&["--grids", &towns, "--against", &towns, "--code-property", "name", "--quiet"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut pairs: Vec<Vec<String>> = r["layers"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut g: Vec<String> =
                f["grids"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect();
            g.sort();
            g
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs, [vec!["东城街道", "莞城街道"], vec!["石碣镇", "石龙镇"]]);
}

crate::test!(the_cli_measures_response_coverage_by_road_on_the_demo_extract);
fn the_cli_measures_response_coverage_by_road_on_the_demo_extract() {
    let dir = tempfile::tempdir().unwrap();
    let layer = write(dir.path(), "demo.geojson", &demo_layer_text());
    // Two posts in the Longgang extract the demo ships, households around them and farther off.
    let posts = write(dir.path(), "posts.csv", "lon,lat\n114.205,22.69\n114.22,22.70\n");
    let mut csv = String::from("lon,lat,households\n");
    for i in 0..40 {
        csv.push_str(&format!("{:.5},{:.5},5\n", 114.20 + f64::from(i % 8) * 0.004, 22.685 + f64::from(i / 8) * 0.004));
    }
    csv.push_str("114.05,22.55,50\n");
    let houses = write(dir.path(), "houses.csv", &csv);
    let roads = concat!(env!("CARGO_MANIFEST_DIR"), "/../geodata/data/longgang.osm.pbf");
    let out = audit_cmd(&[
        "--grids",
        &layer,
        "--posts",
        &posts,
        "--households",
        &houses,
        "--roads",
        roads,
        "--minutes",
        "3",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let x = &r["response"];
    assert!(x["method"].as_str().unwrap().starts_with("road"));
    assert_eq!(x["households"], 250);
    let covered = x["households_covered"].as_u64().unwrap();
    assert!(covered > 0 && covered <= 200, "Futian's 50 are far from both posts: {covered}");
    assert!(x["share_area"].as_f64().unwrap() < 0.01, "two posts cover a sliver of Shenzhen");
    assert!(r["summary"]["counts"]["unreachable"].as_u64().unwrap() > 0);
}

crate::test!(the_cli_reads_towns_as_a_gis_officer_has_them_and_says_what_it_does);
/// What a new city's files run into: grids and territory in different datums (`--crs` and
/// `--territory-crs`), a BD-09 layer with nothing but Shenzhen's shipped districts to compare
/// with, a DataV `adcode`, traces as GeoLife `.plt` and GPX, and progress on a log.
fn the_cli_reads_towns_as_a_gis_officer_has_them_and_says_what_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let text = demo_layer_text();
    let truth: Value = serde_json::from_str(&text).unwrap();
    // The ten districts, in WGS-84 (the territory) and as Baidu draws them (the grids).
    let mut districts = truth.clone();
    districts["features"].as_array_mut().unwrap().retain(|f| f["properties"]["level"] == "district");
    let territory = write(dir.path(), "territory.geojson", &districts.to_string());
    let mut bd09 = districts.clone();
    safegrid_geodata::crs::convert_geojson(&mut bd09, Crs::Wgs84, Crs::Bd09);
    // As a Baidu export comes: saying nothing of its datum (convert would name it).
    bd09.as_object_mut().unwrap().remove("crs");
    let grids = write(dir.path(), "bd09.geojson", &bd09.to_string());
    // --crs is the grids' alone: the WGS-84 territory is read as it is, and the two fit.
    let out = audit_cmd(&["--grids", &grids, "--territory", &territory, "--crs", "bd09", "--quiet"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(out.status.code() != Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        report["geometry"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] != "gap" && f["kind"] != "outside_territory"),
        "{report}"
    );
    // A territory in another datum than the grids: said with --territory-crs.
    let bd09_territory = write(dir.path(), "territory_bd09.geojson", &bd09.to_string());
    let out = audit_cmd(&["--grids", &territory, "--territory", &bd09_territory, "--territory-crs", "bd09", "--quiet"]);
    assert!(out.status.code() != Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // No territory: the shipped Shenzhen districts say the layer is BD-09, and by how much.
    let out = audit_cmd(&["--grids", &grids, "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("better as BD-09") && err.contains("Shenzhen") && err.contains("--crs bd09"), "{err}");

    // A DataV file: the code is `adcode`, offered as such.
    let mut datav = districts.clone();
    for f in datav["features"].as_array_mut().unwrap() {
        let code = f["properties"]["code"].take();
        f["properties"] =
            serde_json::json!({"adcode": code, "name": f["properties"]["name"].clone(), "manager": "王五"});
    }
    let datav = write(dir.path(), "datav.geojson", &datav.to_string());
    let out = audit_cmd(&["--grids", &datav, "--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reading \"adcode\" as the code"), "{err}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["geometry"]["findings"].as_array().unwrap().iter().all(|f| f["kind"] != "code_missing"), "{report}");
    // Not a terminal: progress comes as lines a log keeps.
    assert!(err.contains("safegrid audit: overlaps") || err.contains("done in"), "{err}");

    // Patrol traces as a GeoLife .plt and a GPX track, one unit each.
    let end = chrono::DateTime::parse_from_rfc3339("2026-11-22T08:00:00Z").unwrap().to_utc();
    let mut plt = String::from(
        "Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n0,2,255,My Track,0,0,2,8421376\n0\n",
    );
    let mut gpx = String::from(
        r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>"#,
    );
    for i in 0..60 {
        let t = end - chrono::Duration::seconds(3_600 - i * 10);
        plt.push_str(&format!(
            "22.53,{:.6},0,30,0,{},{}\n",
            114.03 + 0.0003 * i as f64,
            t.format("%Y-%m-%d"),
            t.format("%H:%M:%S")
        ));
        gpx.push_str(&format!(
            r#"<trkpt lat="{:.6}" lon="114.06"><time>{}</time></trkpt>"#,
            22.52 + 0.0003 * i as f64,
            t.to_rfc3339()
        ));
    }
    gpx.push_str("</trkseg></trk></gpx>");
    let plt = write(dir.path(), "patrol.plt", &plt);
    let gpx = write(dir.path(), "patrol.gpx", &gpx);
    // Futian and its grids as the layer: enough ground for two units, and quick.
    let mut futian = truth.clone();
    futian["features"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["properties"]["code"].as_str().unwrap().starts_with("440304"));
    let layer = write(dir.path(), "futian.geojson", &futian.to_string());
    let out = audit_cmd(&["--grids", &layer, "--traces", &plt, "--traces", &gpx, "--quiet", "--format", "json"]);
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["patrol"]["units"], 2, "{}", report["patrol"]);
    // A file of no trace format is named as such.
    let kml = write(dir.path(), "patrol.kml", "<kml/>");
    let out = audit_cmd(&["--grids", &layer, "--traces", &kml, "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && err.contains(".plt") && err.contains("GPX"), "{err}");
}
