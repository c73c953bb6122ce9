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
