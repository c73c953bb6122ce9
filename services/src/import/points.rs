//! Point layers from GeoJSON and CSV.
//!
//! The parsers hand rows on in chunks of [`CHUNK_ROWS`] as they go, so that the store can write
//! one chunk while the next is parsed (see `service::Import`); everything goes into one
//! transaction that commits only after the last row parsed. Once a row is at fault nothing more
//! is handed on (the import will be refused), but parsing goes on to find every fault.

use super::{Faults, ImportError, ImportOptions, Row, RowFault};
use crate::layer::{Layer, Props};
use safegrid_geodata::{Crs, LonLat};
use serde::Deserializer;
use serde::de::value::MapDeserializer;
use serde::de::{IntoDeserializer, Visitor};
use serde_json::{Map, Value};
use std::io::Read;

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
        if self.stopped {
            return false;
        }
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

    /// Stops handing rows on: the file has a fault, so nothing of it will be written.
    fn halt(&mut self) {
        self.stopped = true;
        self.chunk.clear();
    }

    /// Hands on the last chunk; the number of rows parsed.
    fn finish(mut self) -> usize {
        self.flush();
        self.rows
    }
}

const SERVER_OWNED: [&str; 5] = ["id", "grid_code", "created_at", "updated_at", "distance_m"];

fn fault(row: Row, label: Option<String>, field: impl Into<String>, reason: impl Into<String>) -> RowFault {
    RowFault { row, label, field: field.into(), reason: reason.into() }
}

/// The name a user knows a row by, from its properties.
fn label_of<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
    ["name", "callsign", "address", "code"]
        .into_iter()
        .find_map(|k| get(k).filter(|v| !v.trim().is_empty()))
        .map(str::to_owned)
}

/// Renames (`--map`), drops server-owned fields, and drops or refuses fields the layer does not
/// take (`--ignore-unknown`). Returns the fields refused as unknown.
fn prepare(layer: Layer, opts: &ImportOptions, obj: Map<String, Value>) -> (Map<String, Value>, Vec<String>) {
    let mut out = Map::new();
    let mut unknown = Vec::new();
    for (k, v) in obj {
        let k = opts.mapped(&k).to_owned();
        if SERVER_OWNED.contains(&k.as_str()) {
            continue;
        }
        if !layer.properties().contains(&k.as_str()) {
            if !opts.ignore_unknown {
                unknown.push(k);
            }
            continue;
        }
        out.insert(k, v);
    }
    (out, unknown)
}

fn unknown_reason(layer: Layer) -> String {
    format!(
        "{layer} takes {}; rename it with --map FROM=TO or leave it out with --ignore-unknown",
        layer.properties().join(", ")
    )
}

fn position(lon: f64, lat: f64, crs: Crs) -> Result<LonLat, (String, String)> {
    let p = LonLat::new(lon, lat).map_err(|e| (e.field().to_owned(), e.to_string()))?;
    Ok(crs.to_wgs84(p))
}

/// Parses a GeoJSON FeatureCollection of Points into `sink`, in chunks. `tick` is called once
/// per row (progress). Returns the number of rows parsed.
///
/// # Errors
/// [`ImportError::Format`] for a file that is not a FeatureCollection; [`ImportError::Rows`]
/// naming every bad feature (from 1, with its name) and field, up to the limit.
pub fn parse_geojson(
    text: &str,
    layer: Layer,
    opts: &ImportOptions,
    tick: &dyn Fn(),
    sink: &mut Sink<'_>,
) -> Result<usize, ImportError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ImportError::Format(format!("not JSON: {e}")))?;
    let features = match v.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => v.get("features").and_then(Value::as_array).cloned().unwrap_or_default(),
        _ => return Err(ImportError::Format("expected a GeoJSON FeatureCollection".into())),
    };
    super::refuse_a_page(&v, features.len())?;
    let declared = opts.with_declared(&v)?;
    let opts = &declared;
    let crs = opts.source_crs();
    let mut out = Chunker::new(sink);
    let mut faults = Faults::new(opts.max_errors);
    for (i, f) in features.into_iter().enumerate() {
        let row = Row::Feature(i + 1);
        let Value::Object(mut f) = f else {
            faults.push(fault(row, None, "feature", "expected an object"));
            continue;
        };
        let props = match f.remove("properties") {
            Some(Value::Object(m)) => m,
            Some(Value::Null) | None => Map::new(),
            Some(_) => {
                faults.push(fault(row, None, "properties", "expected an object"));
                continue;
            }
        };
        let label = label_of(|k| props.get(k).and_then(Value::as_str));
        let mut bad = |field: String, reason: String| faults.push(fault(row, label.clone(), field, reason));
        let g = f.remove("geometry").unwrap_or(Value::Null);
        let pos = if g.get("type").and_then(Value::as_str) == Some("Point") {
            let c = g.get("coordinates").and_then(Value::as_array);
            let num = |j: usize| c.and_then(|c| c.get(j)).and_then(Value::as_f64);
            if let (Some(lon), Some(lat)) = (num(0), num(1)) {
                position(lon, lat, crs).map_err(|(f, r)| bad(f, r)).ok()
            } else {
                bad("geometry.coordinates".into(), "expected [lon, lat] as numbers".into());
                None
            }
        } else {
            bad("geometry.type".into(), "expected a Point".into());
            None
        };
        let (props, unknown) = prepare(layer, opts, props);
        for u in &unknown {
            bad(u.clone(), format!("not a property of {}", unknown_reason(layer)));
        }
        let parsed = Props::parse(layer, Value::Object(props)).map_err(|e| bad(e.field, e.reason)).ok();
        match (pos, parsed) {
            (Some(pos), Some(props)) if unknown.is_empty() && faults.is_empty() => {
                if !out.push((pos, props)) && faults.is_empty() {
                    break; // the writer failed: its error is the one to report
                }
            }
            _ => out.halt(),
        }
        tick();
    }
    let n = out.finish();
    faults.finish(None).map(|()| n)
}

/// Parses CSV with a header row (`lon`, `lat` and property columns) into `sink`, in chunks.
/// Empty cells are absent properties; lists (capabilities) are `;`-separated. Rows are named
/// by file line. Quoting is strict: a value may not run over a line break, which is how an
/// unterminated quote shows (it would otherwise swallow the rest of the file as one value).
/// Returns the number of rows parsed.
///
/// # Errors
/// [`ImportError::Format`] for a header without position columns or with columns the layer
/// does not take (each named); [`ImportError::Rows`] naming every bad line and column, up to
/// the limit.
pub fn parse_csv(
    input: impl Read,
    layer: Layer,
    opts: &ImportOptions,
    tick: &dyn Fn(),
    sink: &mut Sink<'_>,
) -> Result<usize, ImportError> {
    let crs = opts.source_crs();
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
    let raw = rdr.headers().map_err(|e| ImportError::Format(format!("bad CSV header: {e}")))?.clone();
    for (from, _) in &opts.map {
        if !raw.iter().any(|h| h == from) {
            return Err(ImportError::Format(format!(
                "--map {from}=…: the header has no column {from:?} (it has {})",
                raw.iter().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let headers: Vec<String> = raw.iter().map(|h| opts.mapped(h).to_owned()).collect();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(lon_col), Some(lat_col)) =
        (col("lon").or(col("lng")).or(col("longitude")), col("lat").or(col("latitude")))
    else {
        return Err(ImportError::Format(format!(
            "the CSV header needs lon and lat columns (it has {}; --map x=lon,y=lat renames)",
            raw.iter().collect::<Vec<_>>().join(", ")
        )));
    };
    // Which columns are properties: known ones are read, server-owned ones skipped, unknown
    // ones refused at the header (one answer for the whole file) unless ignored.
    let mut read_cols: Vec<bool> = vec![false; headers.len()];
    let mut unknown = Vec::new();
    for (c, h) in headers.iter().enumerate() {
        if c == lon_col || c == lat_col || SERVER_OWNED.contains(&h.as_str()) {
            continue;
        }
        if layer.properties().contains(&h.as_str()) {
            read_cols[c] = true;
        } else if !opts.ignore_unknown {
            unknown.push(raw.get(c).unwrap_or(h).to_owned());
        }
    }
    if !unknown.is_empty() {
        return Err(ImportError::Format(format!(
            "the CSV has columns {} does not take: {}; {}",
            layer,
            unknown.join(", "),
            unknown_reason(layer)
        )));
    }
    let mut out = Chunker::new(sink);
    let mut faults = Faults::new(opts.max_errors);
    let mut rec = csv::StringRecord::new();
    let mut line = 1;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map_or(line + 1, |p| p.line() as usize);
                faults.push(fault(Row::Line(at), None, "row", e.to_string()));
                out.halt();
                // A record of the wrong length is skipped and reading goes on; other errors end it.
                if matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    continue;
                }
                break;
            }
        }
        line = rec.position().map_or(line + 1, |p| p.line() as usize);
        let row = Row::Line(line);
        let cell = |name: &str| col(name).and_then(|c| rec.get(c));
        let label = label_of(cell);
        let mut bad = |field: &str, reason: String| faults.push(fault(row, label.clone(), field, reason));
        if let Some((c, v)) = rec.iter().enumerate().find(|(_, v)| v.contains(['\n', '\r'])) {
            let lines = v.lines().count();
            bad(
                headers.get(c).map_or("row", String::as_str),
                format!(
                    "the value runs over {lines} lines: an unterminated quote (\") at this line? A quoted value may not hold a line break"
                ),
            );
            out.halt();
            break; // the rest of the file is inside the quote
        }
        let num = |c: usize| rec.get(c).unwrap_or("").parse::<f64>().map_err(|_| rec.get(c).unwrap_or("").to_owned());
        let pos = match (num(lon_col), num(lat_col)) {
            (Ok(lon), Ok(lat)) => position(lon, lat, crs).map_err(|(f, r)| bad(&f, r)).ok(),
            (Err(v), _) => {
                bad("lon", format!("expected a number, got {v:?}"));
                None
            }
            (_, Err(v)) => {
                bad("lat", format!("expected a number, got {v:?}"));
                None
            }
        };
        // The property cells, read straight into the typed struct: no JSON object per row.
        let cells = headers
            .iter()
            .zip(rec.iter())
            .enumerate()
            .filter_map(|(c, (h, v))| (read_cols[c] && !v.is_empty()).then_some((h.as_str(), Cell(v))));
        let source = MapDeserializer::<_, serde::de::value::Error>::new(cells);
        let props = Props::parse_from(layer, source).map_err(|e| bad(&e.field, e.reason)).ok();
        match (pos, props) {
            (Some(pos), Some(props)) if faults.is_empty() => {
                if !out.push((pos, props)) && faults.is_empty() {
                    break;
                }
            }
            _ => out.halt(),
        }
        tick();
    }
    let n = out.finish();
    faults.finish(None).map(|()| n)
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

    fn with_crs(crs: Crs) -> ImportOptions {
        ImportOptions { crs: Some(crs), ..ImportOptions::default() }
    }

    fn csv(text: &str, layer: Layer, crs: Crs) -> Result<Vec<(LonLat, Props)>, ImportError> {
        csv_with(text, layer, &with_crs(crs))
    }

    fn csv_with(text: &str, layer: Layer, opts: &ImportOptions) -> Result<Vec<(LonLat, Props)>, ImportError> {
        let mut all = Vec::new();
        parse_csv(text.as_bytes(), layer, opts, &|| {}, &mut |chunk| {
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
        let e = csv(text, Layer::RentalHousing, Crs::Wgs84).unwrap_err();
        let f = e.first_fault().unwrap();
        assert_eq!((f.row, f.field.as_str()), (Row::Line(2), "tenant_count"), "{e}");
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
        let n = parse_csv(text.as_bytes(), Layer::Posts, &ImportOptions::default(), &|| {}, &mut |chunk| {
            sizes.push(chunk.len());
            true
        })
        .unwrap();
        assert_eq!((n, sizes), (2 * CHUNK_ROWS + 5, vec![CHUNK_ROWS, CHUNK_ROWS, 5]));
        let mut calls = 0;
        let n = parse_csv(text.as_bytes(), Layer::Posts, &ImportOptions::default(), &|| {}, &mut |_| {
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
        let f = e.first_fault().unwrap();
        assert_eq!((f.row, f.field.as_str()), (Row::Line(3), "name"), "{e}");
        let ok = csv(&text[..=text.find("\n114.07").unwrap()], Layer::Posts, Crs::Gcj02).unwrap();
        let p = ok[0].0;
        assert!((p.lon() - 114.06).abs() > 1e-3, "GCJ-02 input must be converted");
    }

    #[test]
    fn geojson_rows_must_be_points_in_range() {
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.0,22.5]},"properties":{"kind":"police_room","name":"a"}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.0,122.5]},"properties":{"kind":"police_room","name":"b"}}]}"#;
        let e = parse_geojson(text, Layer::Posts, &ImportOptions::default(), &|| {}, &mut |_| true).unwrap_err();
        let f = e.first_fault().unwrap();
        assert_eq!((f.row, f.label.as_deref(), f.field.as_str()), (Row::Feature(2), Some("b"), "lat"), "{e}");
    }

    /// What a police incident CSV from elsewhere looks like: its own column names, a column
    /// this layer has no use for, several bad rows, and a quote left open.
    #[test]
    fn a_foreign_csv_is_mapped_its_faults_all_listed_and_an_open_quote_refused_at_its_line() {
        let text = "x,y,time,type,priority,status,officer\n\
                    114.0,22.5,2026-11-01T08:00:00Z,theft,2,open,Smith\n\
                    114.0,22.5,yesterday,theft,2,open,Jones\n\
                    114.0,95.0,2026-11-01T09:00:00Z,theft,9,open,Brown\n";
        // Unmapped: one answer for the header, naming each column and the way out.
        let e = csv(text, Layer::Incidents, Crs::Wgs84).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("lon and lat") && msg.contains("--map"), "{msg}");
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        let opts = ImportOptions {
            map: map(&[("x", "lon"), ("y", "lat"), ("time", "reported_at")]),
            ..ImportOptions::default()
        };
        let e = csv_with(text, Layer::Incidents, &opts).unwrap_err();
        assert!(e.to_string().contains("officer") && e.to_string().contains("--ignore-unknown"), "{e}");
        let opts = ImportOptions { ignore_unknown: true, ..opts };
        let e = csv_with(text, Layer::Incidents, &opts).unwrap_err();
        let ImportError::Rows { faults, .. } = &e else { panic!("{e}") };
        let got: Vec<(Row, &str)> = faults.iter().map(|f| (f.row, f.field.as_str())).collect();
        assert_eq!(got, [(Row::Line(3), "reported_at"), (Row::Line(4), "lat"), (Row::Line(4), "priority")], "{e}");
        // The good rows alone import.
        let good = text.lines().take(2).collect::<Vec<_>>().join("\n") + "\n";
        assert_eq!(csv_with(&good, Layer::Incidents, &opts).unwrap().len(), 1);
        // An unterminated quote: refused at the line it opens, not read as one long name.
        let text = "lon,lat,kind,name\n114.0,22.5,police_room,\"福田\n114.1,22.5,police_room,罗湖\n";
        let e = csv(text, Layer::Posts, Crs::Wgs84).unwrap_err();
        let f = e.first_fault().unwrap();
        assert_eq!((f.row, f.field.as_str()), (Row::Line(2), "name"), "{e}");
        assert!(f.reason.contains("unterminated quote"), "{e}");
        // The limit: the first faults listed, the rest counted.
        let mut many = String::from("lon,lat,kind,name\n");
        for _ in 0..30 {
            many.push_str("114.0,22.5,castle,x\n");
        }
        let opts = ImportOptions { max_errors: 5, ..ImportOptions::default() };
        match csv_with(&many, Layer::Posts, &opts).unwrap_err() {
            ImportError::Rows { faults, more, .. } => assert_eq!((faults.len(), more), (5, 25)),
            other => panic!("{other}"),
        }
    }
}
