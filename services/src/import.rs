//! Bulk import from GeoJSON and CSV.
//!
//! The parsers hand rows on in chunks of [`CHUNK_ROWS`] as they go, so that the store can write
//! one chunk while the next is parsed (see `service::Import`); everything goes into one
//! transaction that commits only after the last row parsed. A file with one bad row therefore
//! changes nothing, and the error names the row (1-based feature index, or CSV line) and the
//! field.

use crate::layer::{Layer, Props};
use safegrid_geodata::{Crs, LonLat};
use serde::Deserializer;
use serde::de::value::MapDeserializer;
use serde::de::{IntoDeserializer, Visitor};
use serde_json::{Map, Value};
use std::io::Read;

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not GeoJSON / CSV at all.
    #[error("{0}")]
    Format(String),
    /// One row is wrong.
    #[error("row {row}, field {field}: {reason}")]
    Row {
        /// Which row, from 1: the feature's number in GeoJSON; the line in CSV, the header
        /// being line 1.
        row: usize,
        /// The field at fault (`lat`, `geometry.coordinates[0]`, a property name).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Rows per chunk handed on: large enough that per-chunk costs vanish, small enough that the
/// writer starts early and a chunk's rows stay in cache.
pub const CHUNK_ROWS: usize = 10_000;

/// Where parsed rows go: a chunk at a time; returns false to stop parsing (the writer failed).
pub type Sink<'a> = dyn FnMut(Vec<(LonLat, Props)>) -> bool + 'a;

/// Collects rows into chunks for a [`Sink`].
struct Chunker<'s, 'a> {
    sink: &'s mut Sink<'a>,
    chunk: Vec<(LonLat, Props)>,
    rows: usize,
    stopped: bool,
}

impl<'s, 'a> Chunker<'s, 'a> {
    fn new(sink: &'s mut Sink<'a>) -> Self {
        Self { sink, chunk: Vec::with_capacity(CHUNK_ROWS), rows: 0, stopped: false }
    }

    /// Adds a row; false once the sink has asked to stop.
    fn push(&mut self, row: (LonLat, Props)) -> bool {
        self.chunk.push(row);
        self.rows += 1;
        if self.chunk.len() == CHUNK_ROWS {
            self.flush();
        }
        !self.stopped
    }

    fn flush(&mut self) {
        if !self.chunk.is_empty() && !self.stopped {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_ROWS));
            self.stopped = !(self.sink)(full);
        }
    }

    /// Hands on the last chunk; the number of rows parsed.
    fn finish(mut self) -> usize {
        self.flush();
        self.rows
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

/// Parses a GeoJSON FeatureCollection of Points into `sink`, in chunks. `tick` is called once
/// per row (progress). Returns the number of rows parsed.
///
/// # Errors
/// [`ImportError`] naming the first bad feature (1-based) and field.
pub fn parse_geojson(
    text: &str,
    layer: Layer,
    crs: Crs,
    tick: &dyn Fn(),
    sink: &mut Sink<'_>,
) -> Result<usize, ImportError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ImportError::Format(format!("not JSON: {e}")))?;
    let features = match v.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => v.get("features").and_then(Value::as_array).cloned().unwrap_or_default(),
        _ => return Err(ImportError::Format("expected a GeoJSON FeatureCollection".into())),
    };
    let mut out = Chunker::new(sink);
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
        if !out.push((pos, props_of(layer, row, props)?)) {
            break;
        }
        tick();
    }
    Ok(out.finish())
}

/// Parses CSV with a header row (`lon`, `lat` and property columns) into `sink`, in chunks.
/// Empty cells are absent properties; lists (capabilities) are `;`-separated. Rows are
/// numbered by file line. Returns the number of rows parsed.
///
/// # Errors
/// [`ImportError`] naming the first bad line and column.
pub fn parse_csv(
    input: impl Read,
    layer: Layer,
    crs: Crs,
    tick: &dyn Fn(),
    sink: &mut Sink<'_>,
) -> Result<usize, ImportError> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
    let headers = rdr.headers().map_err(|e| ImportError::Format(format!("bad CSV header: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(lon_col), Some(lat_col)) =
        (col("lon").or(col("lng")).or(col("longitude")), col("lat").or(col("latitude")))
    else {
        return Err(ImportError::Format("the CSV header needs lon and lat columns".into()));
    };
    let mut out = Chunker::new(sink);
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2; // line 1 is the header
        let rec = rec.map_err(|e| row_err(line, "row", e.to_string()))?;
        let num = |c: usize, name: &str| -> Result<f64, ImportError> {
            let v = rec.get(c).unwrap_or("");
            v.parse().map_err(|_| row_err(line, name, format!("expected a number, got {v:?}")))
        };
        let pos = position(line, num(lon_col, "lon")?, num(lat_col, "lat")?, crs)?;
        // The property cells, read straight into the typed struct: no JSON object per row.
        let cells = headers.iter().zip(rec.iter()).enumerate().filter_map(|(c, (h, v))| {
            (c != lon_col && c != lat_col && !v.is_empty() && !SERVER_OWNED.contains(&h)).then_some((h, Cell(v)))
        });
        let source = MapDeserializer::<_, serde::de::value::Error>::new(cells);
        let props = Props::parse_from(layer, source).map_err(|e| row_err(line, e.field, e.reason))?;
        if !out.push((pos, props)) {
            break;
        }
        tick();
    }
    Ok(out.finish())
}

/// A CSV cell as serde sees it. Cells are text; booleans are the one non-text, non-number type
/// a property can have, and the typed properties accept numbers given as text.
struct Cell<'a>(&'a str);

impl IntoDeserializer<'_, serde::de::value::Error> for Cell<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Cell<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            s => visitor.visit_str(s),
        }
    }

    /// A present cell is `Some`: empty cells never get here (they are absent properties).
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    /// Unit variants by name, like `closed` for a status.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.into_deserializer().deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str, layer: Layer, crs: Crs) -> Result<Vec<(LonLat, Props)>, ImportError> {
        let mut all = Vec::new();
        parse_csv(text.as_bytes(), layer, crs, &|| {}, &mut |chunk| {
            all.extend(chunk);
            true
        })?;
        Ok(all)
    }

    #[test]
    fn csv_cells_read_as_lists_booleans_dates_enums_and_numbers() {
        let text = "lon,lat,kind,callsign,status,capabilities,home_post\n\
                    114.0,22.5,patrol,巡逻1,available,first_aid;drone,7\n";
        let rows = csv(text, Layer::Responders, Crs::Wgs84).unwrap();
        let want = Props::parse(
            Layer::Responders,
            serde_json::json!({"kind": "patrol", "callsign": "巡逻1", "status": "available",
                               "capabilities": ["first_aid", "drone"], "home_post": 7}),
        )
        .unwrap();
        assert_eq!(rows[0].1, want);
        let text = "lon,lat,category,name,assigned_grid,active\n114.0,22.5,petition,张三,440304001,false\n";
        let rows = csv(text, Layer::KeyPersonnel, Crs::Wgs84).unwrap();
        let Props::KeyPerson(k) = &rows[0].1 else { panic!("{:?}", rows[0].1) };
        assert!(!k.active);
        let text = "lon,lat,address,units,tenant_count,safety_rating,last_inspection\n114.0,22.5,a,3,x,b,2026-10-01\n";
        match csv(text, Layer::RentalHousing, Crs::Wgs84).unwrap_err() {
            ImportError::Row { row, field, .. } => assert_eq!((row, field.as_str()), (2, "tenant_count")),
            other => panic!("{other}"),
        }
        // A server-owned column is ignored, as in GeoJSON properties.
        let text = "lon,lat,kind,name,id\n114.0,22.5,police_room,p,99\n";
        assert_eq!(csv(text, Layer::Posts, Crs::Wgs84).unwrap().len(), 1);
    }

    #[test]
    fn rows_come_in_chunks_and_a_stopped_sink_stops_the_parser() {
        let mut text = String::from("lon,lat,kind,name\n");
        for i in 0..(2 * CHUNK_ROWS + 5) {
            text.push_str(&format!("114.0,22.5,police_room,p{i}\n"));
        }
        let mut sizes = Vec::new();
        let n = parse_csv(text.as_bytes(), Layer::Posts, Crs::Wgs84, &|| {}, &mut |chunk| {
            sizes.push(chunk.len());
            true
        })
        .unwrap();
        assert_eq!((n, sizes), (2 * CHUNK_ROWS + 5, vec![CHUNK_ROWS, CHUNK_ROWS, 5]));
        let mut calls = 0;
        let n = parse_csv(text.as_bytes(), Layer::Posts, Crs::Wgs84, &|| {}, &mut |_| {
            calls += 1;
            false
        })
        .unwrap();
        assert_eq!((calls, n), (1, CHUNK_ROWS));
    }

    #[test]
    fn csv_rows_convert_from_gcj02_and_errors_name_line_and_field() {
        let text =
            "lon,lat,kind,name,phone\n114.06,22.54,police_room,福田警务室,075512345678\n114.07,22.55,police_room,,\n";
        let e = csv(text, Layer::Posts, Crs::Gcj02).unwrap_err();
        match e {
            ImportError::Row { row, field, .. } => assert_eq!((row, field.as_str()), (3, "name")),
            other => panic!("{other}"),
        }
        let ok = csv(&text[..=text.find("\n114.07").unwrap()], Layer::Posts, Crs::Gcj02).unwrap();
        let p = ok[0].0;
        assert!((p.lon() - 114.06).abs() > 1e-3, "GCJ-02 input must be converted");
    }

    #[test]
    fn geojson_rows_must_be_points_in_range() {
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.0,22.5]},"properties":{"kind":"police_room","name":"a"}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.0,122.5]},"properties":{"kind":"police_room","name":"b"}}]}"#;
        let e = parse_geojson(text, Layer::Posts, Crs::Wgs84, &|| {}, &mut |_| true).unwrap_err();
        match e {
            ImportError::Row { row, field, .. } => assert_eq!((row, field.as_str()), (2, "lat")),
            other => panic!("{other}"),
        }
    }
}
