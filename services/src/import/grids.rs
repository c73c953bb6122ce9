//! The grid layer from GeoJSON: every feature's faults at once, the file's datum checked before
//! anything else, any CRS converted.
//!
//! A unit's `code`, `name`, `level`, `manager` and `manager_phone` are read from the properties
//! of those names after `--map` (a DataV file's `adcode` is its code with `--map adcode=code`);
//! other properties are the file's own and are left alone.
//!
//! The datum: a file that says nothing of its CRS is taken as WGS-84 (GeoJSON's only CRS), and
//! checked against what the city already knows to be WGS-84 — the stored units of the same
//! codes, or else, for a layer lying in Shenzhen, the shipped district outlines. A file that fits
//! far better read as GCJ-02 or BD-09 is refused, saying how much better, unless `--crs` names
//! its CRS (`--crs wgs84` included, to import it as it is).

use super::{Faults, ImportError, ImportOptions, Row, RowFault};
use geo::{BoundingRect, Intersects, MultiPolygon};
use safegrid_geodata::datum::{self, DatumFit, Reference};
use safegrid_geodata::grid::{GridLevel, Manager};
use safegrid_geodata::polygon_check::polygonal_from_geojson;
use safegrid_geodata::{Crs, GridCode, GridHierarchy, GridUnit, overlay};
use serde_json::{Map, Value};

/// Units compared pairwise with the stored ones for the datum check: enough for a clear answer,
/// few enough to take well under a second on a province's layer.
const DATUM_SAMPLE: usize = 200;

/// Reads a grid file: its units, converted to WGS-84, once every feature is good and the datum
/// is settled. `stored` is the city's current layer (the datum's first reference); `outline`
/// gives a region's WGS-84 outline and its box when the layer lies there (Shenzhen's districts).
///
/// # Errors
/// [`ImportError::Format`] for a file that is not a FeatureCollection or is a page;
/// [`ImportError::Rows`] led by the datum refusal, if any, and naming every bad feature.
pub fn read(
    text: &str,
    opts: &ImportOptions,
    stored: &GridHierarchy,
    outline: &dyn Fn(&geo::Rect<f64>) -> Option<MultiPolygon<f64>>,
) -> Result<Vec<GridUnit>, ImportError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ImportError::Format(format!("not JSON: {e}")))?;
    if v.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(ImportError::Format("expected a GeoJSON FeatureCollection of grid units".into()));
    }
    let Some(features) = v.get("features").and_then(Value::as_array) else {
        return Err(ImportError::Format("the FeatureCollection has no features array".into()));
    };
    if features.is_empty() {
        // An empty file would replace the layer with nothing and un-grid every item.
        return Err(ImportError::Format("the file has no features: nothing was imported".into()));
    }
    super::refuse_a_page(&v, features.len())?;
    let declared = opts.with_declared(&v)?;
    let opts = &declared;
    let mut faults = Faults::new(opts.max_errors);
    let mut units = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        match unit(f, opts) {
            Ok(u) => units.push(u),
            Err(list) => {
                for (label, field, reason) in list {
                    faults.push(RowFault { row: Row::Feature(i + 1), label, field, reason });
                }
            }
        }
    }
    let first = match opts.crs {
        Some(crs) if crs != Crs::Wgs84 => {
            for u in &mut units {
                u.geometry = datum::from(&u.geometry, crs);
            }
            None
        }
        Some(_) => None,
        None => datum_check(&units, stored, outline).and_then(|fit| {
            fit.shifted().map(|crs| {
                format!(
                    "the file looks drawn in {}, not the WGS-84 it claims: {fit}. Nothing was imported; \
                     re-run with --crs {} to convert it, or --crs wgs84 to import it as it is",
                    crs.label(),
                    crs.name()
                )
            })
        }),
    };
    faults.finish(first)?;
    Ok(units)
}

/// How the file's units fit what is known of the same ground: the stored units of the same
/// codes, or else the region's outline around the file's top units. `None` when nothing is
/// known there.
fn datum_check(
    units: &[GridUnit],
    stored: &GridHierarchy,
    outline: &dyn Fn(&geo::Rect<f64>) -> Option<MultiPolygon<f64>>,
) -> Option<DatumFit> {
    let matched: Vec<(&MultiPolygon<f64>, &MultiPolygon<f64>)> =
        units.iter().filter_map(|u| stored.get(&u.code).map(|s| (&u.geometry, &s.geometry))).collect();
    if !matched.is_empty() {
        let step = matched.len().div_ceil(DATUM_SAMPLE);
        let sample: Vec<_> = matched.into_iter().step_by(step).collect();
        return datum::fit(Reference::Pairs(&sample));
    }
    // The file's top units (no parent in the file): one union of a few large polygons.
    let codes: std::collections::HashSet<&GridCode> = units.iter().map(|u| &u.code).collect();
    let top: Vec<&GridUnit> = units.iter().filter(|u| u.code.parent().is_none_or(|p| !codes.contains(&p))).collect();
    let layer = overlay::union(top.iter().flat_map(|u| u.geometry.0.iter()));
    let bbox = layer.bounding_rect()?;
    let region = outline(&bbox)?;
    if !region.intersects(&layer) {
        return None;
    }
    datum::fit(Reference::Around(&layer, &region))
}

type FeatureFaults = Vec<(Option<String>, String, String)>;

/// One feature as a unit, or all of its faults (label, field, reason).
fn unit(f: &Value, opts: &ImportOptions) -> Result<GridUnit, FeatureFaults> {
    let empty = Map::new();
    let raw = f.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let props: Map<String, Value> = raw.iter().map(|(k, v)| (opts.mapped(k).to_owned(), v.clone())).collect();
    let text = |key: &str| -> Option<String> {
        props.get(key).and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let label = text("name").or_else(|| text("code"));
    let mut out: FeatureFaults = Vec::new();
    let mut bad = |field: &str, reason: String| out.push((label.clone(), field.to_owned(), reason));
    let code = if let Some(c) = text("code") {
        GridCode::parse(&c).map_err(|e| bad("code", e.to_string())).ok()
    } else {
        let hint = ["adcode", "id", "gb", "code_"]
            .into_iter()
            .find(|k| raw.contains_key(*k))
            .map_or_else(String::new, |k| format!("; this file has {k:?}: --map {k}=code reads it as the code"));
        bad("code", format!("missing: every unit needs its grid code{hint}"));
        None
    };
    let name = text("name");
    if name.is_none() {
        bad("name", "missing: every unit needs a name (--map FROM=name reads another property)".into());
    }
    let level = text("level").and_then(|l| {
        let parsed = l.parse::<GridLevel>().ok();
        if parsed.is_none() {
            bad(
                "level",
                format!(
                    "{l:?} is not a grid level (district or town, street, community or village, grid); \
                     if it is the file's own property, --map level=source_level sets it aside and levels follow the codes"
                ),
            );
        }
        parsed
    });
    let manager = text("manager").map(|name| Manager { name, phone: text("manager_phone") });
    let geometry = match f.get("geometry") {
        None | Some(Value::Null) => {
            bad("geometry", "missing: a unit needs its boundary".into());
            None
        }
        Some(g) => match serde_json::from_value::<geojson::Geometry>(g.clone()) {
            Err(e) => {
                bad("geometry", e.to_string());
                None
            }
            Ok(g) => {
                polygonal_from_geojson(&g).map_err(|e| bad(&format!("geometry.{}", e.path), e.fault.to_string())).ok()
            }
        },
    };
    match (code, name, geometry) {
        (Some(code), Some(name), Some(geometry)) if out.is_empty() => {
            let level = level.unwrap_or_else(|| GridLevel::from_depth(code.depth()).unwrap_or(GridLevel::Grid));
            Ok(GridUnit { code, name, level, manager, geometry })
        }
        _ => Err(out),
    }
}

/// What a grid file does to the stored layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Its top units are districts: it is the whole layer, and replaces it.
    WholeLayer,
    /// Its top units sit under these stored units: it replaces or adds its own units there and
    /// leaves every other stored unit as it is.
    Under(Vec<GridCode>),
}

/// Where a file's units go: the whole layer, or under stored parents.
///
/// # Errors
/// [`ImportError::Hierarchy`] when a top unit's parent is neither in the file nor stored, or the
/// file mixes whole-layer and subtree units.
pub fn placement(units: &[GridUnit], stored: &GridHierarchy) -> Result<Placement, ImportError> {
    let codes: std::collections::HashSet<&GridCode> = units.iter().map(|u| &u.code).collect();
    let mut parents: Vec<GridCode> = Vec::new();
    let mut tops = 0;
    for u in units {
        match u.code.parent() {
            None => tops += 1,
            Some(p) if codes.contains(&p) => {}
            Some(p) => {
                if stored.get(&p).is_none() {
                    return Err(ImportError::Hierarchy(format!(
                        "unit {} ({}) has no parent {p} in the file or in the stored layer: import {p} first, or with it",
                        u.code, u.name
                    )));
                }
                if !parents.contains(&p) {
                    parents.push(p);
                }
            }
        }
    }
    match (tops, parents.is_empty()) {
        (_, true) => Ok(Placement::WholeLayer),
        (0, false) => {
            parents.sort();
            Ok(Placement::Under(parents))
        }
        _ => Err(ImportError::Hierarchy(format!(
            "the file holds {tops} top-level units and units under stored ones ({}): import the whole layer, or one part of it, at a time",
            parents.iter().map(GridCode::as_str).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The layer after the import: the file's units alone, or the stored layer with the file's
/// units in place (same codes replaced, new ones added).
///
/// # Errors
/// [`ImportError::Hierarchy`] when the result is not a hierarchy (a code twice, a level above
/// its parent's).
pub fn merged(
    units: Vec<GridUnit>,
    stored: &GridHierarchy,
    placement: &Placement,
) -> Result<GridHierarchy, ImportError> {
    let all = match placement {
        Placement::WholeLayer => units,
        Placement::Under(_) => {
            let codes: std::collections::HashSet<GridCode> = units.iter().map(|u| u.code.clone()).collect();
            stored.units().iter().filter(|u| !codes.contains(&u.code)).cloned().chain(units).collect()
        }
    };
    GridHierarchy::new(all).map_err(|e| ImportError::Hierarchy(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn fc(features: &[Value]) -> String {
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
    }

    fn square(code: &str, name: &str, x: f64, y: f64, s: f64, crs: Crs) -> Value {
        let ring: Vec<[f64; 2]> = [(x, y), (x + s, y), (x + s, y + s), (x, y + s), (x, y)]
            .into_iter()
            .map(|(a, b)| {
                let p = crs.from_wgs84(safegrid_geodata::LonLat::new(a, b).unwrap());
                [p.lon(), p.lat()]
            })
            .collect();
        serde_json::json!({"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}})
    }

    fn no_outline(_: &geo::Rect<f64>) -> Option<MultiPolygon<f64>> {
        None
    }

    fn layer(crs: Crs) -> String {
        fc(&[
            square("440304", "福田区", 114.00, 22.50, 0.10, crs),
            square("440304001", "第1网格", 114.00, 22.50, 0.05, crs),
            square("440304002", "第2网格", 114.05, 22.50, 0.05, crs),
        ])
    }

    #[test]
    fn a_gcj02_file_is_refused_against_the_stored_layer_and_converted_when_named() {
        let opts = ImportOptions::default();
        let stored =
            GridHierarchy::new(read(&layer(Crs::Wgs84), &opts, &GridHierarchy::default(), &no_outline).unwrap())
                .unwrap();
        let e = read(&layer(Crs::Gcj02), &opts, &stored, &no_outline).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("GCJ-02") && msg.contains("better as GCJ-02") && msg.contains("--crs gcj02"), "{msg}");
        let named = ImportOptions { crs: Some(Crs::Gcj02), ..ImportOptions::default() };
        let units = read(&layer(Crs::Gcj02), &named, &stored, &no_outline).unwrap();
        for (u, s) in units.iter().zip(stored.units()) {
            let moved = u.geometry.0[0]
                .exterior()
                .0
                .iter()
                .zip(&s.geometry.0[0].exterior().0)
                .map(|(a, b)| (a.x - b.x).abs().max((a.y - b.y).abs()))
                .fold(0.0, f64::max);
            assert!(moved < 1e-6, "{}: {moved}°", u.code);
        }
        // Named as it is: imported unconverted, no check.
        let asis = ImportOptions { crs: Some(Crs::Wgs84), ..ImportOptions::default() };
        assert!(read(&layer(Crs::Gcj02), &asis, &stored, &no_outline).is_ok());
    }

    #[test]
    fn a_bd09_layer_is_refused_against_an_outline_when_nothing_is_stored() {
        let city: MultiPolygon<f64> = MultiPolygon(vec![
            polygon![(x: 113.9, y: 22.5), (x: 114.10, y: 22.5), (x: 114.10, y: 22.7), (x: 113.9, y: 22.7)],
        ]);
        let outline = |b: &geo::Rect<f64>| b.intersects(&city).then(|| city.clone());
        let e = read(&layer(Crs::Bd09), &ImportOptions::default(), &GridHierarchy::default(), &outline).unwrap_err();
        assert!(e.to_string().contains("better as BD-09"), "{e}");
        assert!(read(&layer(Crs::Wgs84), &ImportOptions::default(), &GridHierarchy::default(), &outline).is_ok());
    }

    #[test]
    fn every_faulty_feature_is_named_from_one_with_the_way_out() {
        let mut bad_ring = square("440304002", "第2网格", 114.05, 22.50, 0.05, Crs::Wgs84);
        bad_ring["geometry"]["coordinates"][0] = serde_json::json!([[114.05, 22.5], [114.1, 22.5]]);
        let text = fc(&[
            serde_json::json!({"type": "Feature", "properties": {"adcode": 441_900, "name": "东莞市", "level": "city"},
                "geometry": {"type": "Polygon", "coordinates": [[[113.5, 22.7], [114.2, 22.7], [114.2, 23.1], [113.5, 22.7]]]}}),
            square("440304", "福田区", 114.00, 22.50, 0.10, Crs::Wgs84),
            bad_ring,
        ]);
        let e = read(&text, &ImportOptions::default(), &GridHierarchy::default(), &no_outline).unwrap_err();
        let ImportError::Rows { faults, first: None, .. } = &e else { panic!("{e}") };
        let got: Vec<(Row, Option<&str>, &str)> =
            faults.iter().map(|f| (f.row, f.label.as_deref(), f.field.as_str())).collect();
        assert_eq!(got[0], (Row::Feature(1), Some("东莞市"), "code"), "{e}");
        assert!(faults[0].reason.contains("--map adcode=code"), "{e}");
        assert_eq!(got[1], (Row::Feature(1), Some("东莞市"), "level"), "{e}");
        assert_eq!((got[2].0, got[2].1), (Row::Feature(3), Some("第2网格")), "{e}");
        assert!(got[2].2.starts_with("geometry.coordinates"), "{e}");
        // Mapped, the DataV city reads; its level set aside, it follows its code.
        let opts = ImportOptions {
            map: vec![("adcode".into(), "code".into()), ("level".into(), "datav_level".into())],
            ..ImportOptions::default()
        };
        let units = read(&fc(&[text_feature(&text, 0)]), &opts, &GridHierarchy::default(), &no_outline).unwrap();
        assert_eq!((units[0].code.as_str(), units[0].level), ("441900", GridLevel::District));
    }

    #[test]
    fn an_empty_file_is_refused_and_a_declared_datum_is_taken_at_its_word() {
        // Zero units would replace the layer with nothing.
        for empty in [r#"{"type":"FeatureCollection","features":[]}"#, r#"{"type":"FeatureCollection"}"#] {
            let e = read(empty, &ImportOptions::default(), &GridHierarchy::default(), &no_outline).unwrap_err();
            assert!(matches!(e, ImportError::Format(_)), "{e}");
        }
        let stored = GridHierarchy::new(
            read(&layer(Crs::Wgs84), &ImportOptions::default(), &GridHierarchy::default(), &no_outline).unwrap(),
        )
        .unwrap();
        // `safegrid convert --to gcj02` writes a crs member: read as GCJ-02 and converted.
        let mut v: Value = serde_json::from_str(&layer(Crs::Gcj02)).unwrap();
        v["crs"] = serde_json::json!({"type": "name", "properties": {"name": "GCJ-02"}});
        let units = read(&v.to_string(), &ImportOptions::default(), &stored, &no_outline).unwrap();
        let x = units[1].geometry.0[0].exterior().0[0].x;
        assert!((x - 114.0).abs() < 1e-6, "{x}");
        v["crs"]["properties"]["name"] = "EPSG:4547".into();
        let e = read(&v.to_string(), &ImportOptions::default(), &stored, &no_outline).unwrap_err();
        assert!(e.to_string().contains("EPSG:4547"), "{e}");
    }

    fn text_feature(text: &str, i: usize) -> Value {
        serde_json::from_str::<Value>(text).unwrap()["features"][i].clone()
    }

    #[test]
    fn a_page_of_a_download_is_refused_and_a_subtree_goes_under_its_stored_parent() {
        let mut page: Value = serde_json::from_str(&layer(Crs::Wgs84)).unwrap();
        page["next_cursor"] = "440304002".into();
        let e = read(&page.to_string(), &ImportOptions::default(), &GridHierarchy::default(), &no_outline).unwrap_err();
        assert!(e.to_string().contains("?limit=all"), "{e}");
        let stored = GridHierarchy::new(
            read(&layer(Crs::Wgs84), &ImportOptions::default(), &GridHierarchy::default(), &no_outline).unwrap(),
        )
        .unwrap();
        // The district's grids alone, one renamed and one new.
        let sub = fc(&[
            square("440304001", "园岭网格", 114.00, 22.50, 0.05, Crs::Wgs84),
            square("440304003", "新网格", 114.05, 22.50, 0.05, Crs::Wgs84),
        ]);
        let units = read(&sub, &ImportOptions::default(), &stored, &no_outline).unwrap();
        let p = placement(&units, &stored).unwrap();
        assert_eq!(p, Placement::Under(vec![GridCode::parse("440304").unwrap()]));
        let h = merged(units, &stored, &p).unwrap();
        let names: Vec<&str> = h.units().iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["福田区", "园岭网格", "第2网格", "新网格"]);
        // Under a parent nobody has: refused, naming it.
        let orphan = fc(&[square("440305001", "南山网格", 114.0, 22.5, 0.05, Crs::Wgs84)]);
        let units = read(&orphan, &ImportOptions::default(), &stored, &no_outline).unwrap();
        assert!(placement(&units, &stored).unwrap_err().to_string().contains("no parent 440305"));
    }
}
