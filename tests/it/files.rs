//! A city's own files through the `safegrid` binary, as its GIS officer runs them: imports that
//! must refuse clearly and completely, exports that must re-import to the same layer, and what
//! a user error looks like on the terminal.

use crate::support::process::BIN;
use std::process::Command;

crate::test!(a_user_error_is_its_causes_without_a_backtrace_even_with_rust_backtrace_set);
fn a_user_error_is_its_causes_without_a_backtrace_even_with_rust_backtrace_set() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("city.db").display());
    let out = Command::new(BIN)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .args(["--database-url", &url, "import", "--layer", "incidents", "--file"])
        .arg(dir.path().join("missing.geojson"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: ") && stderr.contains("missing.geojson"), "{stderr}");
    assert!(!stderr.to_ascii_lowercase().contains("backtrace"), "{stderr}");
    assert!(stderr.lines().count() < 6, "{stderr}");
}

fn run(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(["--database-url", url]).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The demo's ~3,000 Shenzhen grids as a city's file would hold them.
fn demo_grid_file() -> serde_json::Value {
    let h = safegrid_services::demo::hierarchy(2026).unwrap();
    let features: Vec<serde_json::Value> =
        h.units().iter().map(|u| serde_json::to_value(safegrid_geodata::grid::unit_to_feature(u)).unwrap()).collect();
    serde_json::json!({"type": "FeatureCollection", "features": features})
}

fn move_coordinates(v: &mut serde_json::Value, f: &dyn Fn(f64, f64) -> (f64, f64)) {
    match v {
        serde_json::Value::Array(a) if a.len() == 2 && a.iter().all(serde_json::Value::is_f64) => {
            let (x, y) = f(a[0].as_f64().unwrap(), a[1].as_f64().unwrap());
            *v = serde_json::json!([x, y]);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| move_coordinates(x, f)),
        _ => {}
    }
}

crate::test!(a_grid_layer_round_trips_through_export_the_api_and_a_district_and_refuses_a_page);
/// A GIS officer's grid files: a complete export (the command, and the unpaged download)
/// re-imports to the identical layer; a district's download imports under the stored district;
/// a page of the default download is refused, not taken for the layer.
fn a_grid_layer_round_trips_through_export_the_api_and_a_district_and_refuses_a_page() {
    use crate::support::process::{http_text, serve};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("city.db").display());
    let file = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(file("city.geojson"), demo_grid_file().to_string()).unwrap();
    let (ok, out, err) = run(&url, &["import", "--layer", "grids", "--file", &file("city.geojson")]);
    assert!(ok && out.contains("the whole layer"), "{out}{err}");
    let (ok, _, err) = run(&url, &["export", "--layer", "grids", "--out", &file("export1.geojson")]);
    assert!(ok && err.contains("exported"), "{err}");
    let exported = std::fs::read_to_string(file("export1.geojson")).unwrap();
    let (ok, _, err) = run(&url, &["import", "--layer", "grids", "--file", &file("export1.geojson")]);
    assert!(ok, "{err}");
    run(&url, &["export", "--layer", "grids", "--out", &file("export2.geojson")]);
    assert_eq!(
        std::fs::read_to_string(file("export2.geojson")).unwrap(),
        exported,
        "export → import → export is the identity"
    );

    let (ok, token, _) = run(&url, &["token", "--role", "admin", "--name", "gis"]);
    assert!(ok);
    let token = token.trim();
    let (mut server, addr) = serve(&url);
    let (status, page) = http_text(&addr, "/api/v1/grids", token);
    assert_eq!(status, 200);
    let (status, all) = http_text(&addr, "/api/v1/grids?limit=all", token);
    assert_eq!(status, 200);
    let (status, district) = http_text(&addr, "/api/v1/grids?parent=440304&limit=all", token);
    assert_eq!(status, 200);
    server.kill().unwrap();
    let _ = server.wait();
    let all_json: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all_json["numberReturned"], all_json["numberMatched"]);
    assert!(all_json["numberMatched"].as_u64().unwrap() > 3000);

    std::fs::write(file("page.geojson"), &page).unwrap();
    let (ok, _, err) = run(&url, &["import", "--layer", "grids", "--file", &file("page.geojson")]);
    assert!(!ok && err.contains("one page") && err.contains("?limit=all"), "{err}");
    std::fs::write(file("all.geojson"), &all).unwrap();
    let (ok, _, err) = run(&url, &["import", "--layer", "grids", "--file", &file("all.geojson")]);
    assert!(ok, "{err}");
    run(&url, &["export", "--layer", "grids", "--out", &file("export3.geojson")]);
    assert_eq!(
        std::fs::read_to_string(file("export3.geojson")).unwrap(),
        exported,
        "the unpaged download re-imports to the same layer"
    );

    // A district's grids, one renamed: they go in under the stored 福田, the rest stays.
    let mut district: serde_json::Value = serde_json::from_str(&district).unwrap();
    let n = district["features"].as_array().unwrap().len();
    assert!(n > 50, "{n}");
    district["features"][0]["properties"]["name"] = "园岭第一网格".into();
    std::fs::write(file("futian.geojson"), district.to_string()).unwrap();
    let (ok, out, err) = run(&url, &["import", "--layer", "grids", "--file", &file("futian.geojson")]);
    assert!(ok && out.contains("under 440304"), "{out}{err}");
    run(&url, &["export", "--layer", "grids", "--out", &file("export4.geojson")]);
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("export4.geojson")).unwrap()).unwrap();
    let before: serde_json::Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(after["features"].as_array().unwrap().len(), before["features"].as_array().unwrap().len());
    let renamed =
        after["features"].as_array().unwrap().iter().filter(|f| f["properties"]["name"] == "园岭第一网格").count();
    assert_eq!(renamed, 1);
}

crate::test!(a_grid_file_drawn_on_a_chinese_map_is_refused_first_and_converted_when_named);
/// A GCJ-02 grid file (as AMap draws it): refused before anything else — the datum first, then
/// every faulty feature, numbered from 1 and named — and imported once its CRS is named.
fn a_grid_file_drawn_on_a_chinese_map_is_refused_first_and_converted_when_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("city.db").display());
    let file = |name: &str| dir.path().join(name).display().to_string();
    // The ten districts (converting the generated grids' hair-thin slivers into GCJ-02 would
    // itself cross some rings, which no file drawn on AMap has).
    let mut truth = demo_grid_file();
    truth["features"].as_array_mut().unwrap().retain(|f| f["properties"]["level"] == "district");
    assert_eq!(truth["features"].as_array().unwrap().len(), 10);
    let mut gcj = truth.clone();
    for f in gcj["features"].as_array_mut().unwrap() {
        move_coordinates(&mut f["geometry"]["coordinates"], &|x, y| {
            let p = safegrid_geodata::Crs::Gcj02.from_wgs84(safegrid_geodata::LonLat::new(x, y).unwrap());
            (p.lon(), p.lat())
        });
    }
    // Two faults besides: a unit without its name, another whose level is the file's own word.
    let mut faulty = gcj.clone();
    faulty["features"][5]["properties"].as_object_mut().unwrap().remove("name");
    faulty["features"][9]["properties"]["level"] = "城市".into();
    std::fs::write(file("gcj.geojson"), faulty.to_string()).unwrap();
    // Nothing stored: the shipped Shenzhen districts are the reference.
    let (ok, _, err) = run(&url, &["import", "--layer", "grids", "--file", &file("gcj.geojson")]);
    assert!(!ok, "{err}");
    let datum = err.find("better as GCJ-02").unwrap_or_else(|| panic!("{err}"));
    let sixth = err.find("feature 6").unwrap_or_else(|| panic!("{err}"));
    let tenth = err.find("feature 10").unwrap_or_else(|| panic!("{err}"));
    assert!(datum < sixth && sixth < tenth, "the datum first, then the features in order: {err}");
    assert!(err.contains("--crs gcj02") && err.contains("name") && err.contains("level"), "{err}");
    std::fs::write(file("gcj.geojson"), gcj.to_string()).unwrap();
    let (ok, _, err) = run(&url, &["import", "--layer", "grids", "--file", &file("gcj.geojson"), "--crs", "gcj02"]);
    assert!(ok, "{err}");
    run(&url, &["export", "--layer", "grids", "--out", &file("out.geojson")]);
    let out: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file("out.geojson")).unwrap()).unwrap();
    // Converted back to within a millimetre of the WGS-84 truth (GCJ-02's inverse is iterative).
    let flat = |v: &serde_json::Value| {
        let mut all = Vec::new();
        let mut stack = vec![v];
        while let Some(x) = stack.pop() {
            match x {
                serde_json::Value::Array(a) if a.len() == 2 && a[0].is_f64() => {
                    all.push((a[0].as_f64().unwrap(), a[1].as_f64().unwrap()));
                }
                serde_json::Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
        all
    };
    let worst = out["features"]
        .as_array()
        .unwrap()
        .iter()
        .zip(truth["features"].as_array().unwrap())
        .flat_map(|(a, b)| flat(&a["geometry"]["coordinates"]).into_iter().zip(flat(&b["geometry"]["coordinates"])))
        .map(|(a, b)| (a.0 - b.0).abs().max((a.1 - b.1).abs()))
        .fold(0.0, f64::max);
    assert!(worst < 1e-8, "{worst}°");
    // Stored and compared by code from now on: the same GCJ-02 file is refused again.
    let (ok, _, err) = run(&url, &["import", "--layer", "grids", "--file", &file("gcj.geojson")]);
    assert!(!ok && err.contains("better as GCJ-02"), "{err}");
}

crate::test!(position_history_imports_from_plt_gpx_and_csv_and_reads_back_as_trips);
/// A unit's history from the files people have — a GeoLife .plt, a GPX track with speed and
/// course, a CSV — stored through the same noise filter, refused whole beyond the retention, and
/// read back as separate trips (GeoJSON MultiLineString, GPX trkseg), not one line across days.
fn position_history_imports_from_plt_gpx_and_csv_and_reads_back_as_trips() {
    use crate::support::process::{http_text, serve};
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("city.db").display());
    let file = |name: &str| dir.path().join(name).display().to_string();
    crate::support::process::write_fixture_grids(std::path::Path::new(&file("grids.geojson")));
    assert!(run(&url, &["import", "--layer", "grids", "--file", &file("grids.geojson")]).0);
    std::fs::write(
        file("units.csv"),
        "lon,lat,kind,callsign,status,device_id\n114.02,22.55,patrol,巡-1,available,trk-1\n114.12,22.55,patrol,巡-2,available,trk-2\n",
    )
    .unwrap();
    let (ok, _, err) = run(&url, &["import", "--layer", "responders", "--file", &file("units.csv")]);
    assert!(ok, "{err}");
    // Trip one (a .plt, as GeoLife writes it) three days ago; trip two (GPX) two days ago.
    let now = chrono::Utc::now();
    let day1 = now - chrono::Duration::days(3);
    let mut plt = String::from(
        "Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n0,2,255,My Track,0,0,2,8421376\n0\n",
    );
    for i in 0..20 {
        let t = day1 + chrono::Duration::seconds(i * 5);
        let _ = writeln!(
            plt,
            "{},{},0,100,0,{},{}",
            22.55,
            114.02 + f64::from(i as i32) * 0.0001,
            t.format("%Y-%m-%d"),
            t.format("%H:%M:%S")
        );
    }
    std::fs::write(file("trip1.plt"), &plt).unwrap();
    let day2 = now - chrono::Duration::days(2);
    let mut gpx = String::from(
        r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1" xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v2"><trk><trkseg>"#,
    );
    for i in 0..10 {
        let t = day2 + chrono::Duration::seconds(i * 5);
        let _ = write!(
            gpx,
            r#"<trkpt lat="22.56" lon="{}"><time>{}</time><extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>2.2</gpxtpx:speed><gpxtpx:course>90</gpxtpx:course></gpxtpx:TrackPointExtension></extensions></trkpt>"#,
            114.02 + f64::from(i as i32) * 0.0001,
            t.to_rfc3339()
        );
    }
    gpx.push_str("</trkseg></trk></gpx>");
    std::fs::write(file("trip2.gpx"), &gpx).unwrap();

    // Whose: a .plt does not say; a device nobody carries is refused.
    let (ok, _, err) = run(&url, &["import", "--layer", "fixes", "--file", &file("trip1.plt")]);
    assert!(!ok && err.contains("--device"), "{err}");
    let (ok, _, err) = run(&url, &["import", "--layer", "fixes", "--file", &file("trip1.plt"), "--device", "nobody"]);
    assert!(!ok && err.contains("no responder or key person carries"), "{err}");
    let (ok, out, err) = run(&url, &["import", "--layer", "fixes", "--file", &file("trip1.plt"), "--device", "trk-1"]);
    assert!(ok && out.contains("imported 20 fixes"), "{out}{err}");
    let (ok, out, err) = run(&url, &["import", "--layer", "fixes", "--file", &file("trip2.gpx"), "--device", "trk-1"]);
    assert!(ok && out.contains("imported 10 fixes"), "{out}{err}");
    // A CSV naming its device per row.
    let t = (now - chrono::Duration::hours(1)).timestamp();
    std::fs::write(
        file("trk2.csv"),
        format!("device_id,lon,lat,time\ntrk-2,114.12,22.55,{t}\ntrk-2,114.121,22.55,{}\n", t + 10),
    )
    .unwrap();
    let (ok, out, err) = run(&url, &["import", "--layer", "fixes", "--file", &file("trk2.csv")]);
    assert!(ok && out.contains("imported 2 fixes of trk-2"), "{out}{err}");
    // Beyond the retention: refused whole, naming the option.
    let old = now - chrono::Duration::days(400);
    let stale = plt.replace(&day1.format("%Y-%m-%d").to_string(), &old.format("%Y-%m-%d").to_string());
    std::fs::write(file("old.plt"), stale).unwrap();
    let (ok, _, err) = run(&url, &["import", "--layer", "fixes", "--file", &file("old.plt"), "--device", "trk-1"]);
    assert!(!ok && err.contains("older than the 183 days") && err.contains("--retention-days"), "{err}");
    // A broken .plt line is named.
    std::fs::write(file("bad.plt"), plt.replacen("22.55,", "95.5,", 1)).unwrap();
    let (ok, _, err) = run(&url, &["import", "--layer", "fixes", "--file", &file("bad.plt"), "--device", "trk-1"]);
    assert!(!ok && err.contains("line 7") && err.contains("lat"), "{err}");

    let (_, token, _) = run(&url, &["token", "--role", "dispatcher", "--name", "调度"]);
    let token = token.trim();
    let (_, auditor, _) = run(&url, &["token", "--role", "auditor", "--name", "审计"]);
    let (mut server, addr) = serve(&url);
    // The import of whereabouts is in the audit log, naming the unit.
    let (_, log) = http_text(&addr, "/api/v1/audit_log?limit=50", auditor.trim());
    assert!(log.contains("import fixes of device trk-1 from") && log.contains("trip2.gpx"), "{log}");
    let since = (now - chrono::Duration::days(4)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, body) = http_text(&addr, &format!("/api/v1/responders/1/trace?since={since}"), token);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["geometry"]["type"], "MultiLineString", "{body}");
    let lines = v["geometry"]["coordinates"].as_array().unwrap();
    assert_eq!(lines.iter().map(|l| l.as_array().unwrap().len()).collect::<Vec<_>>(), [20, 10]);
    assert_eq!(v["properties"]["times"].as_array().unwrap().len(), 30);
    let (_, gpx_out) = http_text(&addr, &format!("/api/v1/responders/1/trace?since={since}&format=gpx"), token);
    assert_eq!(gpx_out.matches("<trkseg>").count(), 2, "{gpx_out}");
    assert_eq!(gpx_out.matches("<gpxtpx:speed>2.2</gpxtpx:speed>").count(), 10, "{gpx_out}");
    assert!(gpx_out.contains("<gpxtpx:course>90</gpxtpx:course>"));
    // One trip when the gap allowed is longer than the days between them.
    let (_, one) = http_text(&addr, &format!("/api/v1/responders/1/trace?since={since}&gap_s=604800"), token);
    assert!(one.contains("\"LineString\""), "{one}");
    server.kill().unwrap();
    let _ = server.wait();
}
