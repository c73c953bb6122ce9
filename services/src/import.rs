//! Bulk import from GeoJSON and CSV.
//!
//! Every row is parsed and checked before anything is written; then all rows go to the store in
//! one transaction. A file with one bad row therefore changes nothing, and the error names the
//! row (1-based feature index, or CSV line) and the field.

use crate::layer::{Layer, Props};
use safegrid_geodata::{Crs, LonLat};
use serde_json::{Map, Value};
use std::io::Read;

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The file is not GeoJSON / CSV at all.
    #[error("{0}")]
    Format(String),
    /// One row is wrong.
    #[error("row {row}, field {field}: {reason}")]
    Row { row: usize, field: String, reason: String },
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A GeoJSON FeatureCollection of Points.
    Geojson,
    /// CSV with a header; `lon` and `lat` columns, the others named as the layer's properties.
    Csv,
}

impl Format {
    /// Guesses from a file name: `.csv` is CSV, anything else GeoJSON.
    #[must_use]
    pub fn from_path(path: &str) -> Self {
        if path.to_ascii_lowercase().ends_with(".csv") { Self::Csv } else { Self::Geojson }
    }
}

const SERVER_OWNED: [&str; 5] = ["id", "grid_code", "created_at", "updated_at", "distance_m"];

fn row_err(row: usize, field: impl Into<String>, reason: impl Into<String>) -> ImportError {
    ImportError::Row { row, field: field.into(), reason: reason.into() }
}

fn props_of(layer: Layer, row: usize, mut obj: Map<String, Value>) -> Result<Props, ImportError> {
    for k in SERVER_OWNED {
        obj.remove(k);
    }
    Props::parse(layer, Value::Object(obj)).map_err(|e| row_err(row, e.field, e.reason))
}

fn position(row: usize, lon: f64, lat: f64, crs: Crs) -> Result<LonLat, ImportError> {
    let p = LonLat::new(lon, lat).map_err(|e| row_err(row, e.field(), e.to_string()))?;
    Ok(crs.to_wgs84(p))
}

/// Parses a GeoJSON FeatureCollection of Points. `tick` is called once per row (progress).
///
/// # Errors
/// [`ImportError`] naming the first bad feature (1-based) and field.
pub fn parse_geojson(text: &str, layer: Layer, crs: Crs, tick: &dyn Fn()) -> Result<Vec<(LonLat, Props)>, ImportError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ImportError::Format(format!("not JSON: {e}")))?;
    let features = match v.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => v.get("features").and_then(Value::as_array).cloned().unwrap_or_default(),
        _ => return Err(ImportError::Format("expected a GeoJSON FeatureCollection".into())),
    };
    let mut out = Vec::with_capacity(features.len());
    for (i, f) in features.into_iter().enumerate() {
        let row = i + 1;
        let Value::Object(mut f) = f else { return Err(row_err(row, "feature", "expected an object")) };
        let g = f.remove("geometry").unwrap_or(Value::Null);
        if g.get("type").and_then(Value::as_str) != Some("Point") {
            return Err(row_err(row, "geometry.type", "expected a Point"));
        }
        let c = g
            .get("coordinates")
            .and_then(Value::as_array)
            .ok_or_else(|| row_err(row, "geometry.coordinates", "expected [lon, lat]"))?;
        let num = |j: usize| {
            c.get(j)
                .and_then(Value::as_f64)
                .ok_or_else(|| row_err(row, format!("geometry.coordinates[{j}]"), "expected a number"))
        };
        let pos = position(row, num(0)?, num(1)?, crs)?;
        let props = match f.remove("properties") {
            Some(Value::Object(m)) => m,
            Some(Value::Null) | None => Map::new(),
            Some(_) => return Err(row_err(row, "properties", "expected an object")),
        };
        out.push((pos, props_of(layer, row, props)?));
        tick();
    }
    Ok(out)
}

/// Parses CSV with a header row: `lon`, `lat` and property columns. Empty cells are absent
/// properties; lists (capabilities) are `;`-separated. Rows are numbered by file line.
///
/// # Errors
/// [`ImportError`] naming the first bad line and column.
pub fn parse_csv(
    input: impl Read,
    layer: Layer,
    crs: Crs,
    tick: &dyn Fn(),
) -> Result<Vec<(LonLat, Props)>, ImportError> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
    let headers = rdr.headers().map_err(|e| ImportError::Format(format!("bad CSV header: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(lon_col), Some(lat_col)) =
        (col("lon").or(col("lng")).or(col("longitude")), col("lat").or(col("latitude")))
    else {
        return Err(ImportError::Format("the CSV header needs lon and lat columns".into()));
    };
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2; // line 1 is the header
        let rec = rec.map_err(|e| row_err(line, "row", e.to_string()))?;
        let num = |c: usize, name: &str| -> Result<f64, ImportError> {
            let v = rec.get(c).unwrap_or("");
            v.parse().map_err(|_| row_err(line, name, format!("expected a number, got {v:?}")))
        };
        let pos = position(line, num(lon_col, "lon")?, num(lat_col, "lat")?, crs)?;
        let mut props = Map::new();
        for (c, h) in headers.iter().enumerate() {
            if c == lon_col || c == lat_col {
                continue;
            }
            match rec.get(c) {
                Some(v) if !v.is_empty() => {
                    props.insert(h.to_owned(), csv_value(v));
                }
                _ => {}
            }
        }
        out.push((pos, props_of(layer, line, props)?));
        tick();
    }
    Ok(out)
}

/// CSV cells are text; booleans are the one non-text, non-number type a property can have and
/// the typed properties accept numbers given as text.
fn csv_value(v: &str) -> Value {
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_convert_from_gcj02_and_errors_name_line_and_field() {
        let csv =
            "lon,lat,kind,name,phone\n114.06,22.54,police_room,福田警务室,075512345678\n114.07,22.55,police_room,,\n";
        let e = parse_csv(csv.as_bytes(), Layer::Posts, Crs::Gcj02, &|| {}).unwrap_err();
        match e {
            ImportError::Row { row, field, .. } => assert_eq!((row, field.as_str()), (3, "name")),
            other => panic!("{other}"),
        }
        let ok =
            parse_csv(&csv.as_bytes()[..csv.find("\n114.07").unwrap() + 1], Layer::Posts, Crs::Gcj02, &|| {}).unwrap();
        let p = ok[0].0;
        assert!((p.lon() - 114.06).abs() > 1e-3, "GCJ-02 input must be converted");
    }

    #[test]
    fn geojson_rows_must_be_points_in_range() {
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.0,22.5]},"properties":{"kind":"police_room","name":"a"}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.0,122.5]},"properties":{"kind":"police_room","name":"b"}}]}"#;
        let e = parse_geojson(text, Layer::Posts, Crs::Wgs84, &|| {}).unwrap_err();
        match e {
            ImportError::Row { row, field, .. } => assert_eq!((row, field.as_str()), (2, "lat")),
            other => panic!("{other}"),
        }
    }
}
