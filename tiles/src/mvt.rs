//! Mapbox Vector Tile 2.1 encoding and decoding (protobuf written by hand: the format has four
//! messages, and a generated codec would be larger than this module).
//!
//! Coordinates are integer tile coordinates (0..extent, y down). The encoder deduplicates keys
//! and values per layer, writes exterior rings clockwise and holes counter-clockwise in tile
//! space as the specification requires (§4.3.4.4), whatever orientation it is given. The decoder
//! checks everything a producer can get wrong and names it in [`DecodeError`]; it is what the
//! tests use to read tiles back.

use crate::pbf::{Field, Reader, put_bytes, put_key, put_packed, put_varint};
use std::cmp::Ordering;
use std::collections::HashMap;

/// A tile coordinate (x right, y down).
pub type Point = [i32; 2];

/// A property value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// Text.
    String(String),
    /// A double (single-precision values decode to this too).
    Double(f64),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A boolean.
    Bool(bool),
}

/// A feature's geometry, in tile coordinates.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    /// One or more points.
    Points(Vec<Point>),
    /// One or more line strings.
    Lines(Vec<Vec<Point>>),
    /// One or more polygons, each its exterior ring then its holes; rings are not closed (the
    /// first point is not repeated).
    Polygons(Vec<Vec<Vec<Point>>>),
}

/// One feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// Feature id, if any.
    pub id: Option<u64>,
    /// Geometry.
    pub geometry: Geometry,
    /// Properties, in order.
    pub properties: Vec<(String, Value)>,
}

/// One layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Layer name, unique within a tile.
    pub name: String,
    /// Tile extent (4096 by convention).
    pub extent: u32,
    /// Features.
    pub features: Vec<Feature>,
}

pub use crate::pbf::DecodeError;

// ---------------------------------------------------------------------------------------------
// Encoding

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

fn command(id: u32, count: usize) -> u32 {
    (id & 0x7) | ((count as u32) << 3)
}

/// Twice the signed area in tile space (y down): positive for a clockwise ring on screen.
fn ring_area2(ring: &[Point]) -> i64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            i64::from(a[0]) * i64::from(b[1]) - i64::from(b[0]) * i64::from(a[1])
        })
        .sum()
}

struct Cursor {
    at: Point,
    cmds: Vec<u32>,
}

impl Cursor {
    fn move_to(&mut self, p: Point) {
        self.cmds.push(command(1, 1));
        self.delta(p);
    }
    fn line_to(&mut self, pts: &[Point]) {
        if pts.is_empty() {
            return;
        }
        self.cmds.push(command(2, pts.len()));
        for p in pts {
            self.delta(*p);
        }
    }
    fn delta(&mut self, p: Point) {
        self.cmds.push(zigzag(p[0].wrapping_sub(self.at[0])));
        self.cmds.push(zigzag(p[1].wrapping_sub(self.at[1])));
        self.at = p;
    }
}

/// Drops a repeated closing point: MVT closes rings with a command, not a point.
fn open_ring(ring: &[Point]) -> &[Point] {
    match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    }
}

fn encode_geometry(g: &Geometry) -> (u32, Vec<u32>) {
    let mut c = Cursor { at: [0, 0], cmds: Vec::new() };
    match g {
        Geometry::Points(pts) => {
            c.cmds.push(command(1, pts.len()));
            for p in pts {
                c.delta(*p);
            }
            (1, c.cmds)
        }
        Geometry::Lines(lines) => {
            for l in lines.iter().filter(|l| l.len() >= 2) {
                c.move_to(l[0]);
                c.line_to(&l[1..]);
            }
            (2, c.cmds)
        }
        Geometry::Polygons(polys) => {
            for poly in polys {
                for (i, ring) in poly.iter().enumerate() {
                    let ring = open_ring(ring);
                    if ring.len() < 3 || ring_area2(ring) == 0 {
                        continue; // degenerate at this zoom: nothing to draw
                    }
                    // Exterior rings clockwise on screen (positive), holes the other way.
                    let want_positive = i == 0;
                    let mut r: Vec<Point> = ring.to_vec();
                    if (ring_area2(&r) > 0) != want_positive {
                        r.reverse();
                    }
                    c.move_to(r[0]);
                    c.line_to(&r[1..]);
                    c.cmds.push(command(7, 1));
                }
            }
            (3, c.cmds)
        }
    }
}

/// Hashable form of a value, for deduplication.
#[derive(PartialEq, Eq, Hash)]
enum ValueKey {
    S(String),
    D(u64),
    I(i64),
    U(u64),
    B(bool),
}

fn value_key(v: &Value) -> ValueKey {
    match v {
        Value::String(s) => ValueKey::S(s.clone()),
        Value::Double(d) => ValueKey::D(d.to_bits()),
        Value::Int(i) => ValueKey::I(*i),
        Value::UInt(u) => ValueKey::U(*u),
        Value::Bool(b) => ValueKey::B(*b),
    }
}

fn encode_value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        Value::String(s) => put_bytes(&mut out, 1, s.as_bytes()),
        Value::Double(d) => {
            put_key(&mut out, 3, 1);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Value::Int(i) => {
            // sint (zigzag) is smaller for negative numbers than int64's ten-byte form.
            put_key(&mut out, 6, 0);
            put_varint(&mut out, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::UInt(u) => {
            put_key(&mut out, 5, 0);
            put_varint(&mut out, *u);
        }
        Value::Bool(b) => {
            put_key(&mut out, 7, 0);
            put_varint(&mut out, u64::from(*b));
        }
    }
    out
}

/// Encodes layers as one tile.
///
/// # Examples
/// ```
/// use safegrid_tiles::mvt::{encode, decode, Feature, Geometry, Layer, Value};
/// let layer = Layer { name: "posts".into(), extent: 4096, features: vec![Feature {
///     id: Some(7), geometry: Geometry::Points(vec![[25, 17]]),
///     properties: vec![("name".into(), Value::String("百花警务室".into()))] }] };
/// let bytes = encode(&[layer.clone()]);
/// assert_eq!(decode(&bytes).unwrap(), vec![layer]);
/// ```
#[must_use]
pub fn encode(layers: &[Layer]) -> Vec<u8> {
    let mut tile = Vec::new();
    for layer in layers {
        let mut keys: Vec<&str> = Vec::new();
        let mut key_index: HashMap<&str, u32> = HashMap::new();
        let mut values: Vec<&Value> = Vec::new();
        let mut value_index: HashMap<ValueKey, u32> = HashMap::new();
        let mut body = Vec::new();
        put_key(&mut body, 15, 0);
        put_varint(&mut body, 2);
        put_bytes(&mut body, 1, layer.name.as_bytes());
        for f in &layer.features {
            let mut fb = Vec::new();
            if let Some(id) = f.id {
                put_key(&mut fb, 1, 0);
                put_varint(&mut fb, id);
            }
            let mut tags = Vec::with_capacity(f.properties.len() * 2);
            for (k, v) in &f.properties {
                let ki = *key_index.entry(k.as_str()).or_insert_with(|| {
                    keys.push(k.as_str());
                    (keys.len() - 1) as u32
                });
                let vi = *value_index.entry(value_key(v)).or_insert_with(|| {
                    values.push(v);
                    (values.len() - 1) as u32
                });
                tags.push(ki);
                tags.push(vi);
            }
            if !tags.is_empty() {
                put_packed(&mut fb, 2, &tags);
            }
            let (ty, cmds) = encode_geometry(&f.geometry);
            put_key(&mut fb, 3, 0);
            put_varint(&mut fb, u64::from(ty));
            put_packed(&mut fb, 4, &cmds);
            put_bytes(&mut body, 2, &fb);
        }
        for k in keys {
            put_bytes(&mut body, 3, k.as_bytes());
        }
        for v in values {
            put_bytes(&mut body, 4, &encode_value(v));
        }
        put_key(&mut body, 5, 0);
        put_varint(&mut body, u64::from(layer.extent));
        put_bytes(&mut tile, 3, &body);
    }
    tile
}

// ---------------------------------------------------------------------------------------------
// Decoding

fn packed(bytes: &[u8], what: &'static str) -> Result<Vec<u32>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while r.pos < bytes.len() {
        let v = r.varint(what)?;
        out.push(u32::try_from(v).map_err(|_| DecodeError::BadGeometry(format!("{what} value {v} exceeds 32 bits")))?);
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, DecodeError> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::Utf8)
}

fn wire_err(message: &'static str, field: u64, f: &Field<'_>, expected: u8) -> DecodeError {
    let wire = match f {
        Field::Varint(_) => 0,
        Field::Fixed64(_) => 1,
        Field::Bytes(_) => 2,
        Field::Fixed32(_) => 5,
    };
    DecodeError::WireType { message, field, wire, expected }
}

fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut out = None;
    while let Some((field, f)) = r.next("value")? {
        out = Some(match (field, f) {
            (1, Field::Bytes(b)) => Value::String(text(b)?),
            (2, Field::Fixed32(b)) => Value::Double(f64::from(f32::from_le_bytes(b))),
            (3, Field::Fixed64(b)) => Value::Double(f64::from_le_bytes(b)),
            (4, Field::Varint(v)) => Value::Int(v as i64),
            (5, Field::Varint(v)) => Value::UInt(v),
            (6, Field::Varint(v)) => Value::Int(((v >> 1) as i64) ^ -((v & 1) as i64)),
            (7, Field::Varint(v)) => Value::Bool(v != 0),
            (1..=7, f) => return Err(wire_err("value", field, &f, 0)),
            _ => continue, // unknown fields are skipped, as protobuf requires
        });
    }
    out.ok_or_else(|| DecodeError::BadTags("a value message holds no value".into()))
}

fn decode_geometry(ty: u64, cmds: &[u32]) -> Result<Geometry, DecodeError> {
    let bad = |m: String| DecodeError::BadGeometry(m);
    let mut at: Point = [0, 0];
    let mut i = 0;
    let mut paths: Vec<(Vec<Point>, bool)> = Vec::new(); // (points, closed)
    while i < cmds.len() {
        let (id, count) = (cmds[i] & 7, (cmds[i] >> 3) as usize);
        i += 1;
        match id {
            1 | 2 => {
                if count == 0 {
                    return Err(bad(format!("command {id} with count 0")));
                }
                if i + 2 * count > cmds.len() {
                    return Err(bad(format!("command {id} needs {count} points, the geometry ends first")));
                }
                for _ in 0..count {
                    at = [at[0].wrapping_add(unzigzag(cmds[i])), at[1].wrapping_add(unzigzag(cmds[i + 1]))];
                    i += 2;
                    if id == 1 {
                        paths.push((vec![at], false));
                    } else {
                        let last = paths.last_mut().ok_or_else(|| bad("LineTo before any MoveTo".into()))?;
                        if last.1 {
                            return Err(bad("LineTo after ClosePath without MoveTo".into()));
                        }
                        last.0.push(at);
                    }
                }
            }
            7 => {
                if count != 1 {
                    return Err(bad(format!("ClosePath with count {count}")));
                }
                let last = paths.last_mut().ok_or_else(|| bad("ClosePath before any MoveTo".into()))?;
                last.1 = true;
            }
            other => return Err(bad(format!("unknown command {other}"))),
        }
    }
    match ty {
        1 => {
            if paths.iter().any(|p| p.1) {
                return Err(bad("ClosePath in a point geometry".into()));
            }
            Ok(Geometry::Points(paths.into_iter().map(|p| p.0[0]).collect()))
        }
        2 => {
            if paths.iter().any(|p| p.1 || p.0.len() < 2) {
                return Err(bad("a line needs a MoveTo and at least one LineTo, and no ClosePath".into()));
            }
            Ok(Geometry::Lines(paths.into_iter().map(|p| p.0).collect()))
        }
        3 => {
            let mut polys: Vec<Vec<Vec<Point>>> = Vec::new();
            for (ring, closed) in paths {
                if !closed || ring.len() < 3 {
                    return Err(bad("a polygon ring needs three points and a ClosePath".into()));
                }
                match ring_area2(&ring).cmp(&0) {
                    Ordering::Greater => polys.push(vec![ring]),
                    Ordering::Less => {
                        let poly = polys.last_mut().ok_or_else(|| bad("a hole before any exterior ring".into()))?;
                        poly.push(ring);
                    }
                    Ordering::Equal => return Err(bad("a polygon ring with zero area".into())),
                }
            }
            Ok(Geometry::Polygons(polys))
        }
        other => Err(bad(format!("geometry type {other} (expected 1, 2 or 3)"))),
    }
}

/// Decodes a tile.
///
/// # Errors
/// [`DecodeError`] for anything the specification forbids.
pub fn decode(bytes: &[u8]) -> Result<Vec<Layer>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut layers = Vec::new();
    while let Some((field, f)) = r.next("tile")? {
        match (field, f) {
            (3, Field::Bytes(b)) => layers.push(decode_layer(b)?),
            (3, f) => return Err(wire_err("tile", 3, &f, 2)),
            _ => {}
        }
    }
    Ok(layers)
}

fn decode_layer(bytes: &[u8]) -> Result<Layer, DecodeError> {
    let mut r = Reader::new(bytes);
    // The version is required (the specification: "MUST"); the extent defaults to 4096.
    let (mut name, mut version, mut extent) = (None, None, 4096u64);
    let (mut raw_features, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
    while let Some((field, f)) = r.next("layer")? {
        match (field, f) {
            (1, Field::Bytes(b)) => name = Some(text(b)?),
            (2, Field::Bytes(b)) => raw_features.push(b),
            (3, Field::Bytes(b)) => keys.push(text(b)?),
            (4, Field::Bytes(b)) => values.push(decode_value(b)?),
            (5, Field::Varint(v)) => extent = v,
            (15, Field::Varint(v)) => version = Some(v),
            (1..=5 | 15, f) => return Err(wire_err("layer", field, &f, if matches!(field, 5 | 15) { 0 } else { 2 })),
            _ => {}
        }
    }
    let name = name.ok_or_else(|| DecodeError::BadLayer("without a name".into()))?;
    match version {
        Some(1 | 2) => {}
        Some(v) => return Err(DecodeError::BadLayer(format!("{name:?} has version {v}"))),
        None => return Err(DecodeError::BadLayer(format!("{name:?} has no version"))),
    }
    let extent = u32::try_from(extent).map_err(|_| DecodeError::BadLayer(format!("{name:?} extent {extent}")))?;
    let mut features = Vec::with_capacity(raw_features.len());
    for b in raw_features {
        // A feature of UNKNOWN geometry type is valid but has no geometry we can draw: skipped,
        // as the specification lets decoders do.
        if let Some(f) = decode_feature(b, &keys, &values)? {
            features.push(f);
        }
    }
    Ok(Layer { name, extent, features })
}

/// A feature, or `None` for one of UNKNOWN geometry type (0, also the default when absent).
fn decode_feature(bytes: &[u8], keys: &[String], values: &[Value]) -> Result<Option<Feature>, DecodeError> {
    let mut r = Reader::new(bytes);
    let (mut id, mut tags, mut ty, mut cmds) = (None, Vec::new(), 0u64, Vec::new());
    while let Some((field, f)) = r.next("feature")? {
        match (field, f) {
            (1, Field::Varint(v)) => id = Some(v),
            (2, Field::Bytes(b)) => tags = packed(b, "tags")?,
            (3, Field::Varint(v)) => ty = v,
            (4, Field::Bytes(b)) => cmds = packed(b, "geometry")?,
            (1..=4, f) => return Err(wire_err("feature", field, &f, if matches!(field, 1 | 3) { 0 } else { 2 })),
            _ => {}
        }
    }
    if tags.len() % 2 != 0 {
        return Err(DecodeError::BadTags(format!("{} tags: keys and values come in pairs", tags.len())));
    }
    let properties = tags
        .chunks(2)
        .map(|kv| {
            let k = keys.get(kv[0] as usize).ok_or_else(|| DecodeError::BadTags(format!("key index {}", kv[0])))?;
            let v = values.get(kv[1] as usize).ok_or_else(|| DecodeError::BadTags(format!("value index {}", kv[1])))?;
            Ok((k.clone(), v.clone()))
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    if ty == 0 {
        return Ok(None);
    }
    Ok(Some(Feature { id, geometry: decode_geometry(ty, &cmds)?, properties }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked examples of the specification (§4.3.5): a point at (25, 17) is `9 50 34`; a
    /// line through (2,2) (2,10) (10,10) is `9 4 4 18 0 16 16 0`; the polygon (3,6) (8,12)
    /// (20,34) is `9 6 12 18 10 12 24 44 15`.
    #[test]
    fn geometry_commands_match_the_specification_examples() {
        assert_eq!(encode_geometry(&Geometry::Points(vec![[25, 17]])).1, [9, 50, 34]);
        assert_eq!(
            encode_geometry(&Geometry::Lines(vec![vec![[2, 2], [2, 10], [10, 10]]])).1,
            [9, 4, 4, 18, 0, 16, 16, 0]
        );
        let poly = Geometry::Polygons(vec![vec![vec![[3, 6], [8, 12], [20, 34]]]]);
        assert_eq!(encode_geometry(&poly).1, [9, 6, 12, 18, 10, 12, 24, 44, 15]);
    }

    #[test]
    fn polygons_round_trip_with_rings_oriented_as_the_spec_requires() {
        // Exterior given counter-clockwise on screen and a hole given clockwise: both flipped.
        let exterior = vec![[0, 0], [0, 100], [100, 100], [100, 0]];
        let hole = vec![[20, 20], [80, 20], [80, 80], [20, 80]];
        let layer = Layer {
            name: "grids".into(),
            extent: 4096,
            features: vec![Feature {
                id: Some(440_304_001),
                geometry: Geometry::Polygons(vec![vec![exterior, hole]]),
                properties: vec![("code".into(), Value::String("440304001".into())), ("n".into(), Value::Int(-3))],
            }],
        };
        let back = decode(&encode(std::slice::from_ref(&layer))).unwrap();
        let Geometry::Polygons(p) = &back[0].features[0].geometry else { panic!() };
        assert_eq!(p.len(), 1, "the hole stays with its exterior");
        assert!(ring_area2(&p[0][0]) > 0 && ring_area2(&p[0][1]) < 0);
        assert_eq!(back[0].features[0].properties, layer.features[0].properties);
    }

    #[test]
    fn values_are_deduplicated_and_every_kind_round_trips() {
        let props = vec![
            ("s".into(), Value::String("福田".into())),
            ("d".into(), Value::Double(-1.5)),
            ("i".into(), Value::Int(i64::MIN)),
            ("u".into(), Value::UInt(u64::MAX)),
            ("b".into(), Value::Bool(true)),
        ];
        let f =
            |i| Feature { id: Some(i), geometry: Geometry::Points(vec![[1, 2], [3, 4]]), properties: props.clone() };
        let layer = Layer { name: "x".into(), extent: 512, features: vec![f(1), f(2)] };
        let bytes = encode(std::slice::from_ref(&layer));
        assert_eq!(decode(&bytes).unwrap(), vec![layer]);
        // Five keys and five values, each written once for the two features.
        assert_eq!(bytes.windows(6).filter(|w| *w == "福田".as_bytes()).count(), 1);
    }

    #[test]
    fn malformed_tiles_are_refused_with_a_reason() {
        let good = encode(&[Layer {
            name: "p".into(),
            extent: 4096,
            features: vec![Feature { id: None, geometry: Geometry::Points(vec![[1, 1]]), properties: vec![] }],
        }]);
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "truncated at {cut} was accepted");
        }
        // A LineTo with no MoveTo.
        assert!(matches!(decode_geometry(2, &[command(2, 1), 2, 2]), Err(DecodeError::BadGeometry(_))));
        // A command count running past the end (mvt-fixtures 051, 052, 058).
        assert!(matches!(decode_geometry(1, &[command(1, 3), 2, 2]), Err(DecodeError::BadGeometry(_))));
        assert!(matches!(decode_geometry(1, &[command(1, 2), 2, 2, 4]), Err(DecodeError::BadGeometry(_))));
        // Unknown geometry type.
        assert!(matches!(decode_geometry(9, &[command(1, 1), 2, 2]), Err(DecodeError::BadGeometry(_))));
    }
}
