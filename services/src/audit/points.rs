//! Households and incidents for an offline audit, from CSV or GeoJSON.
//!
//! Households: a rental-housing export (properties `units` and `tenant_count`, as safegrid's
//! own layer), or any points with `households` and `people`; a point with neither is one
//! household of unknown size. CSV: columns `lon`, `lat` and optionally `households`/`units` and
//! `people`/`tenant_count`. Incidents: any points. Patrol traces: CSV with a time column (`t`,
//! `time`, `datetime`, `timestamp`: RFC 3339, Unix seconds, or `YYYY-MM-DD HH:MM:SS` read as
//! China time), `lon`/`lat`, and a unit column (`unit`, `uid`, `device`, `device_id`) — without
//! one, the file is one unit's; or GPX tracks and GeoLife `.plt` files, one unit each (named by
//! the file; WGS-84 by those formats' definitions). Other coordinates are converted from `crs`.

use safegrid_geodata::audit::patrol::PatrolFix;
use safegrid_geodata::audit::workload::Dwelling;
use safegrid_geodata::trace_file::TraceFormat;
use safegrid_geodata::{Crs, LonLat};
use std::path::Path;

/// Why a points file could not be read; names the file and the row or feature.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {what}")]
pub struct PointsError {
    /// The file.
    pub file: String,
    /// What is wrong, and where.
    pub what: String,
}

struct Row {
    at: LonLat,
    households: Option<u32>,
    people: Option<u32>,
}

/// Reads dwellings.
///
/// # Errors
/// [`PointsError`] naming the row or feature at fault.
pub fn dwellings(path: &Path, crs: Crs) -> Result<Vec<Dwelling>, PointsError> {
    Ok(rows(path, crs)?
        .into_iter()
        .map(|r| Dwelling { at: r.at, households: r.households.unwrap_or(1), people: r.people.unwrap_or(0) })
        .collect())
}

/// Reads incident positions.
///
/// # Errors
/// [`PointsError`] naming the row or feature at fault.
pub fn positions(path: &Path, crs: Crs) -> Result<Vec<LonLat>, PointsError> {
    Ok(rows(path, crs)?.into_iter().map(|r| r.at).collect())
}

/// Reads patrol fixes from trace files, sorted by unit and time (units numbered in order of
/// appearance; a GPX, `.plt` or unit-less CSV file is one unit, named by the file).
///
/// # Errors
/// [`PointsError`] naming the file and the line at fault, or a format not read.
pub fn traces(paths: &[&Path], crs: Crs) -> Result<Vec<PatrolFix>, PointsError> {
    let mut ids: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut fixes = Vec::new();
    for path in paths {
        let file = path.display().to_string();
        let fail = |what: String| PointsError { file: file.clone(), what };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        match TraceFormat::from_path(&file) {
            Some(TraceFormat::Csv) => fixes.extend(trace_rows(&text, crs, &file, &mut ids).map_err(fail)?),
            Some(format) => {
                let points =
                    safegrid_geodata::trace_file::read(&text, format, crs, 20).map_err(|e| fail(e.to_string()))?;
                let next = i64::try_from(ids.len()).unwrap_or(i64::MAX);
                let unit = *ids.entry(file.clone()).or_insert(next);
                fixes.extend(points.into_iter().map(|p| PatrolFix {
                    unit,
                    t_ms: p.time.timestamp_millis(),
                    at: p.pos,
                }));
            }
            None => {
                return Err(fail(
                    "patrol traces are read from CSV (.csv), GPX (.gpx) or GeoLife (.plt) files; this one is none of them".into(),
                ));
            }
        }
    }
    fixes.sort_by_key(|f| (f.unit, f.t_ms));
    Ok(fixes)
}

fn trace_rows(
    text: &str,
    crs: Crs,
    file: &str,
    ids: &mut std::collections::HashMap<String, i64>,
) -> Result<Vec<PatrolFix>, String> {
    let mut r = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |names: &[&str]| headers.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)));
    // Without a unit column the file is one unit's trace.
    let unit = col(&["unit", "uid", "device", "device_id", "unit_id"]);
    let time = col(&["t", "time", "datetime", "timestamp"]).ok_or("no time column (t, time, datetime or timestamp)")?;
    let lon = col(&["lon", "lng", "longitude", "x"]).ok_or("no lon column (lon, lng, longitude or x)")?;
    let lat = col(&["lat", "latitude", "y"]).ok_or("no lat column (lat, latitude or y)")?;
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let cell = |c: usize| rec.get(c).unwrap_or("");
        let num = |c: usize, name: &str| {
            cell(c).parse::<f64>().map_err(|_| format!("line {line}: {name} {:?} is not a number", cell(c)))
        };
        let p = LonLat::new(num(lon, "lon")?, num(lat, "lat")?).map_err(|e| format!("line {line}: {e}"))?;
        let t_ms =
            safegrid_geodata::trace_file::parse_time(cell(time)).map(|t| t.timestamp_millis()).ok_or_else(|| {
                format!("line {line}: time {:?} is not RFC 3339, Unix seconds or YYYY-MM-DD HH:MM:SS", cell(time))
            })?;
        let next = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        let name = unit.map_or_else(|| file.to_owned(), |c| format!("{file}:{}", cell(c)));
        let unit = *ids.entry(name).or_insert(next);
        out.push(PatrolFix { unit, t_ms, at: crs.to_wgs84(p) });
    }
    Ok(out)
}

fn rows(path: &Path, crs: Crs) -> Result<Vec<Row>, PointsError> {
    let file = path.display().to_string();
    let fail = |what: String| PointsError { file: file.clone(), what };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let out = if is_csv { csv_rows(&text, crs) } else { geojson_rows(&text, crs) };
    out.map_err(fail)
}

fn count(v: Option<&str>, what: &str, at: &str) -> Result<Option<u32>, String> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<u32>().map(Some).map_err(|_| format!("{at}: {what} {s:?} is not a whole number ≥ 0")),
    }
}

fn csv_rows(text: &str, crs: Crs) -> Result<Vec<Row>, String> {
    let mut r = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |names: &[&str]| headers.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)));
    let lon = col(&["lon", "lng", "longitude", "x"]).ok_or("no lon column (lon, lng, longitude or x)")?;
    let lat = col(&["lat", "latitude", "y"]).ok_or("no lat column (lat, latitude or y)")?;
    let hh = col(&["households", "units"]);
    let ppl = col(&["people", "tenant_count", "population"]);
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let at = format!("line {line}");
        let num = |c: usize, name: &str| -> Result<f64, String> {
            rec.get(c)
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| format!("{at}: {name} {:?} is not a number", rec.get(c).unwrap_or("")))
        };
        let p = LonLat::new(num(lon, "lon")?, num(lat, "lat")?).map_err(|e| format!("{at}: {e}"))?;
        out.push(Row {
            at: crs.to_wgs84(p),
            households: count(hh.and_then(|c| rec.get(c)), "households", &at)?,
            people: count(ppl.and_then(|c| rec.get(c)), "people", &at)?,
        });
    }
    Ok(out)
}

fn geojson_rows(text: &str, crs: Crs) -> Result<Vec<Row>, String> {
    let gj: geojson::GeoJson = text.parse().map_err(|e: geojson::Error| format!("not GeoJSON: {e}"))?;
    let fc = geojson::FeatureCollection::try_from(gj).map_err(|e| format!("not a FeatureCollection: {e}"))?;
    let mut out = Vec::with_capacity(fc.features.len());
    for (i, f) in fc.features.iter().enumerate() {
        let at = format!("feature {i}");
        let Some(geojson::GeometryValue::Point { coordinates: c }) = f.geometry.as_ref().map(|g| &g.value) else {
            return Err(format!("{at}: expected a Point geometry"));
        };
        if c.len() < 2 {
            return Err(format!("{at}: a position needs [lon, lat]"));
        }
        let p = LonLat::new(c[0], c[1]).map_err(|e| format!("{at}: {e}"))?;
        let prop = |names: &[&str]| -> Option<String> {
            let props = f.properties.as_ref()?;
            names.iter().find_map(|n| props.get(*n)).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        out.push(Row {
            at: crs.to_wgs84(p),
            households: count(prop(&["households", "units"]).as_deref(), "households", &at)?,
            people: count(prop(&["people", "tenant_count", "population"]).as_deref(), "people", &at)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_are_found_by_their_usual_names_and_bad_rows_named() {
        let rows = csv_rows("lng,lat,units,tenant_count\n114.0,22.5,12,30\n114.1,22.6,,\n", Crs::Wgs84).unwrap();
        assert_eq!((rows[0].households, rows[0].people), (Some(12), Some(30)));
        assert_eq!((rows[1].households, rows[1].people), (None, None));
        let e = csv_rows("lon,lat,households\n114.0,22.5,-3\n", Crs::Wgs84).err().unwrap();
        assert!(e.contains("line 2") && e.contains("households"), "{e}");
    }

    #[test]
    fn traces_read_geolife_rows_rfc3339_and_unix_times() {
        let rows = |text: &str| trace_rows(text, Crs::Wgs84, "t.csv", &mut std::collections::HashMap::new());
        let t = rows("lat,lng,datetime,uid\n39.98,116.31,2008-10-23 05:53:05,001\n").unwrap();
        assert_eq!(t[0].t_ms, 1_224_712_385_000, "05:53:05 China time is 21:53:05 UTC the day before");
        let t = rows("unit,t,lon,lat\nA,2026-11-22T08:00:00Z,114,22.5\nB,1700000000,114,22.5\n").unwrap();
        assert_eq!((t[0].unit, t[1].unit, t[1].t_ms), (0, 1, 1_700_000_000_000));
        let e = rows("unit,t,lon,lat\nA,yesterday,114,22.5\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("yesterday"), "{e}");
        // Without a unit column the file is one unit's trace.
        let t = rows("t,lon,lat\n1700000000,114,22.5\n1700000010,114,22.5\n").unwrap();
        assert_eq!((t[0].unit, t[1].unit), (0, 0));
    }

    #[test]
    fn geojson_points_carry_rental_housing_properties() {
        let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"units":5,"tenant_count":11},"geometry":{"type":"Point","coordinates":[114,22.5]}}]}"#;
        let rows = geojson_rows(text, Crs::Wgs84).unwrap();
        assert_eq!((rows[0].households, rows[0].people), (Some(5), Some(11)));
    }
}
