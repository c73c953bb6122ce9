//! A grid layer read for an audit.
//!
//! Import refuses a file at its first fault ([`crate::polygon_check`]); an audit must instead
//! report every fault, say where each is, and still measure what it can. So each ring is
//! checked here on the raw GeoJSON: an unclosed ring is reported and closed, a ring wound
//! against RFC 7946 is reported and turned, a ring that crosses itself is reported with the
//! crossing point and kept (the polygon operations still give its area a meaning). A ring that
//! cannot be measured at all — fewer than three distinct points, a coordinate out of range —
//! leaves out only itself: a hole is then measured as filled, a shell takes its polygon with it,
//! and the report names the ring's path and says which. Only a feature with no readable polygon
//! (or not a polygon at all) is left out of the area checks.
//!
//! Coordinates must be WGS-84. A file may declare GCJ-02 or BD-09 (or the caller may), and is
//! then converted with a note; a `crs` member naming anything else makes the file unusable. A
//! layer that fits its territory far better once shifted from GCJ-02 or BD-09 is refused by
//! [`super::geometry`], never audited as it stands.

use super::faults::first_crossing;
use super::{Finding, Kind};
use crate::{Crs, LonLat};
use geo::orient::{Direction, Orient};
use geo::{Coord, LineString, MultiPolygon, Polygon, Validation, Winding};
use serde::Serialize;

/// How to read a layer's properties and coordinates.
///
/// # Examples
/// ```
/// use safegrid_geodata::Crs;
/// use safegrid_geodata::audit::input::{CrsSource, ReadOptions, read_layer};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A layer exported from a street office's system, with its own property names, drawn on AMap.
/// let text = r#"{"type":"Feature","properties":{"WGBM":"440304001","WGY":"李娜"},
///   "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}}"#;
/// let opts = ReadOptions {
///     code_property: "WGBM".into(),
///     manager_property: "WGY".into(),
///     crs: Some(Crs::Gcj02),
///     ..ReadOptions::default()
/// };
/// let layer = read_layer(text, &opts)?;
/// assert_eq!(layer.features[0].code.as_deref(), Some("440304001"));
/// assert_eq!(layer.features[0].manager.as_deref(), Some("李娜"));
/// assert_eq!((layer.crs, layer.crs_source), (Crs::Gcj02, CrsSource::Caller));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Property holding the grid code.
    pub code_property: String,
    /// Property holding the display name.
    pub name_property: String,
    /// Property holding the grid worker (网格员); empty or absent means unstaffed.
    pub manager_property: String,
    /// The coordinate system the caller says the file uses; `None`: WGS-84 unless the file
    /// declares otherwise.
    pub crs: Option<Crs>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            code_property: "code".into(),
            name_property: "name".into(),
            manager_property: "manager".into(),
            crs: None,
        }
    }
}

/// One feature of the layer.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let second = &layer.features[1];
/// assert_eq!(second.index, 1);
/// assert_eq!(second.name.as_deref(), Some("园岭第2网格"));
/// assert_eq!(second.manager, None); // unstaffed
/// assert!(second.geometry.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuditFeature {
    /// Position in the file's `features` array.
    pub index: usize,
    /// The code as written (trimmed), if any.
    pub code: Option<String>,
    /// The display name, if any.
    pub name: Option<String>,
    /// The grid worker, if any.
    pub manager: Option<String>,
    /// The geometry in WGS-84, oriented per RFC 7946; `None` when it cannot be measured.
    pub geometry: Option<MultiPolygon<f64>>,
}

impl AuditFeature {
    /// How reports name the feature: its code, else its name, else its position.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::input::AuditFeature;
    /// let mut f = AuditFeature { index: 4, code: None, name: Some("百花社区".into()), manager: None, geometry: None };
    /// assert_eq!(f.label(), "百花社区");
    /// f.name = None;
    /// assert_eq!(f.label(), "feature #4");
    /// f.code = Some("440304001".into());
    /// assert_eq!(f.label(), "440304001");
    /// ```
    #[must_use]
    pub fn label(&self) -> String {
        self.code.clone().or_else(|| self.name.clone()).unwrap_or_else(|| format!("feature #{}", self.index))
    }
}

/// A layer read for an audit, with the geometry faults found while reading.
///
/// # Examples
/// ```
/// use safegrid_geodata::Crs;
/// use safegrid_geodata::audit::Kind;
/// use safegrid_geodata::audit::input::{CrsSource, ReadOptions, read_layer};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // One grid whose ring runs clockwise.
/// let text = r#"{"type":"Feature","properties":{"code":"440304001"},
///   "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.05,22.55],[114.06,22.55],[114.06,22.54],[114.05,22.54]]]}}"#;
/// let layer = read_layer(text, &ReadOptions::default())?;
/// assert_eq!(layer.features.len(), 1);
/// assert_eq!(layer.faults[0].kind, Kind::Winding);
/// assert_eq!((layer.crs, layer.crs_source), (Crs::Wgs84, CrsSource::Default));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuditLayer {
    /// Every feature, in file order.
    pub features: Vec<AuditFeature>,
    /// Invalid-geometry and winding findings, located.
    pub faults: Vec<Finding>,
    /// The coordinate system the file was read in (and converted from, if not WGS-84).
    pub crs: Crs,
    /// How the coordinate system was decided.
    pub crs_source: CrsSource,
}

impl AuditLayer {
    /// A layer from units already checked on their way in (the live grid layer): WGS-84, no
    /// faults to report; feature `i` is `units[i]`.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::input::AuditLayer;
    /// use safegrid_geodata::{GridCode, GridLevel, GridUnit, Manager};
    /// use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let grid = GridUnit {
    ///     code: GridCode::parse("440304001")?,
    ///     name: "园岭第1网格".into(),
    ///     level: GridLevel::Grid,
    ///     manager: Some(Manager { name: "李娜".into(), phone: None }),
    ///     geometry: MultiPolygon::new(vec![polygon![
    ///         (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)]]),
    /// };
    /// let layer = AuditLayer::from_units(&[grid]);
    /// assert!(layer.faults.is_empty());
    /// assert_eq!(layer.features[0].label(), "440304001");
    /// assert_eq!(layer.features[0].manager.as_deref(), Some("李娜"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn from_units(units: &[crate::GridUnit]) -> Self {
        use geo::orient::{Direction, Orient};
        let features = units
            .iter()
            .enumerate()
            .map(|(index, u)| AuditFeature {
                index,
                code: Some(u.code.to_string()),
                name: Some(u.name.clone()),
                manager: u.manager.as_ref().map(|m| m.name.clone()),
                geometry: Some(u.geometry.orient(Direction::Default)),
            })
            .collect();
        Self { features, faults: Vec::new(), crs: Crs::Wgs84, crs_source: CrsSource::Default }
    }
}

/// How the layer's coordinate system was decided.
///
/// # Examples
/// ```
/// use safegrid_geodata::Crs;
/// use safegrid_geodata::audit::input::{CrsSource, ReadOptions, read_layer};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A file that declares GCJ-02 in a GeoJSON 2008 `crs` member.
/// let text = r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"GCJ-02"}},
///   "features":[{"type":"Feature","properties":{"code":"440304001"},
///   "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}}]}"#;
/// let layer = read_layer(text, &ReadOptions::default())?;
/// assert_eq!((layer.crs, layer.crs_source), (Crs::Gcj02, CrsSource::File));
/// // The caller's word wins over the file's.
/// let layer = read_layer(text, &ReadOptions { crs: Some(Crs::Wgs84), ..ReadOptions::default() })?;
/// assert_eq!((layer.crs, layer.crs_source), (Crs::Wgs84, CrsSource::Caller));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrsSource {
    /// Nothing said otherwise.
    Default,
    /// The file's `crs` member.
    File,
    /// The caller.
    Caller,
}

/// Why a file cannot be audited at all (the CLI's exit code 2).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::input::{LayerError, ReadOptions, read_layer};
/// let opts = ReadOptions::default();
/// let empty = read_layer(r#"{"type":"FeatureCollection","features":[]}"#, &opts);
/// assert_eq!(empty.unwrap_err(), LayerError::Empty);
/// let bare = read_layer(r#"{"type":"Point","coordinates":[114.0579,22.5431]}"#, &opts);
/// assert_eq!(bare.unwrap_err(), LayerError::NotFeatures("Geometry"));
/// let projected = read_layer(r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"EPSG:4547"}},"features":[
///   {"type":"Feature","properties":{},"geometry":null}]}"#, &opts);
/// assert_eq!(projected.unwrap_err(), LayerError::UnknownCrs("EPSG:4547".into()));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// Not JSON, or not GeoJSON.
    #[error("not GeoJSON: {0}")]
    Parse(String),
    /// GeoJSON, but not a FeatureCollection (or a single Feature).
    #[error("expected a GeoJSON FeatureCollection, got a bare {0}")]
    NotFeatures(&'static str),
    /// No features.
    #[error("the file has no features")]
    Empty,
    /// A `crs` member naming a system safegrid does not read.
    #[error(
        "the file declares crs {0:?}; safegrid reads WGS-84 (CRS84, EPSG:4326 or CGCS2000 EPSG:4490), GCJ-02 or BD-09 — reproject it, or pass --crs if the declaration is wrong"
    )]
    UnknownCrs(String),
}

/// Reads a GeoJSON FeatureCollection (or one Feature) as a layer to audit.
///
/// # Errors
/// [`LayerError`] when the text is not a usable layer at all; every fault of a single feature is
/// instead a finding in [`AuditLayer::faults`].
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::input::{read_layer, ReadOptions};
/// let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature",
///   "properties":{"code":"440304001","name":"A"},
///   "geometry":{"type":"Polygon","coordinates":[[[114,22.5],[114.01,22.5],[114.01,22.51],[114,22.51]]]}}]}"#;
/// let layer = read_layer(text, &ReadOptions::default()).unwrap();
/// assert_eq!(layer.faults[0].path.as_deref(), Some("coordinates[0]"));
/// assert!(layer.faults[0].message.contains("not closed"));
/// assert!(layer.features[0].geometry.is_some(), "closed and measured all the same");
/// ```
pub fn read_layer(text: &str, opts: &ReadOptions) -> Result<AuditLayer, LayerError> {
    let gj: geojson::GeoJson = text.parse().map_err(|e: geojson::Error| LayerError::Parse(e.to_string()))?;
    let (features, declared) = match gj {
        geojson::GeoJson::FeatureCollection(fc) => {
            let declared = fc.foreign_members.as_ref().and_then(|m| m.get("crs")).map(crs_name);
            (fc.features, declared)
        }
        geojson::GeoJson::Feature(f) => (vec![f], None),
        geojson::GeoJson::Geometry(_) => return Err(LayerError::NotFeatures("Geometry")),
    };
    if features.is_empty() {
        return Err(LayerError::Empty);
    }
    let (crs, crs_source) = match (opts.crs, declared.flatten()) {
        (Some(c), _) => (c, CrsSource::Caller),
        (None, Some(name)) => (Crs::declared(&name).ok_or(LayerError::UnknownCrs(name))?, CrsSource::File),
        (None, None) => (Crs::Wgs84, CrsSource::Default),
    };
    let mut faults = Vec::new();
    let mut out = Vec::with_capacity(features.len());
    for (index, f) in features.iter().enumerate() {
        let prop = |key: &str| -> Option<String> {
            f.properties.as_ref().and_then(|p| p.get(key)).and_then(|v| match v {
                serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let mut feature = AuditFeature {
            index,
            code: prop(&opts.code_property),
            name: prop(&opts.name_property),
            manager: prop(&opts.manager_property),
            geometry: None,
        };
        let label = feature.label();
        let mut report = |kind: Kind, path: String, message: String, at: Option<Coord<f64>>| {
            let mut finding =
                Finding::new(kind, vec![label.clone()], vec![index], format!("{label}: {message} at {path}"));
            finding.path = Some(path);
            finding.location = at.map(|c| [c.x, c.y]);
            faults.push(finding);
        };
        feature.geometry = match &f.geometry {
            None => {
                report(Kind::InvalidGeometry, "geometry".into(), "the feature has no geometry".into(), None);
                None
            }
            Some(g) => read_geometry(g, crs, &mut report),
        };
        out.push(feature);
    }
    Ok(AuditLayer { features: out, faults, crs, crs_source })
}

/// The name in a GeoJSON 2008 `crs` member (`{"type":"name","properties":{"name":…}}`).
fn crs_name(v: &serde_json::Value) -> Option<String> {
    v.get("properties").and_then(|p| p.get("name")).and_then(|n| n.as_str()).map(str::to_owned)
}

type Report<'a> = dyn FnMut(Kind, String, String, Option<Coord<f64>>) + 'a;

fn read_geometry(g: &geojson::Geometry, crs: Crs, report: &mut Report<'_>) -> Option<MultiPolygon<f64>> {
    use geojson::GeometryValue as V;
    let polys: Vec<(String, &Vec<Vec<geojson::Position>>)> = match &g.value {
        V::Polygon { coordinates } => vec![("coordinates".into(), coordinates)],
        V::MultiPolygon { coordinates } => {
            coordinates.iter().enumerate().map(|(i, p)| (format!("coordinates[{i}]"), p)).collect()
        }
        other => {
            report(
                Kind::InvalidGeometry,
                "type".into(),
                format!("a grid is a Polygon or MultiPolygon, not a {}", other.type_name()),
                None,
            );
            return None;
        }
    };
    let mut out = Vec::with_capacity(polys.len());
    let mut wound_wrong: Option<(String, Coord<f64>)> = None;
    for (path, rings) in polys {
        if rings.is_empty() {
            report(Kind::InvalidGeometry, path, "a polygon with no rings; left out of the area checks".into(), None);
            continue;
        }
        // An unreadable ring leaves out only itself: a hole that cannot be read is measured as
        // filled, and only a shell that cannot be read takes its polygon with it. (Leaving out
        // the whole feature for one bad hole would report a phantom gap the size of the grid.)
        let mut shell: Option<LineString<f64>> = None;
        let mut holes = Vec::new();
        for (r, ring) in rings.iter().enumerate() {
            let rpath = format!("{path}[{r}]");
            let consequence = if r == 0 {
                "the polygon is left out of the area checks"
            } else {
                "this hole alone is left out (measured as filled); the rest of the polygon is measured"
            };
            let Some(ls) = read_ring(ring, &rpath, crs, consequence, report) else {
                if r == 0 {
                    break;
                }
                continue;
            };
            let ccw = ls.is_ccw();
            if (r == 0) != ccw && wound_wrong.is_none() {
                wound_wrong = Some((rpath, ls.0[0]));
            }
            if r == 0 { shell = Some(ls) } else { holes.push(ls) }
        }
        let Some(shell) = shell else { continue };
        let poly = Polygon::new(shell, holes);
        validate(&poly, &path, report);
        out.push(poly);
    }
    if let Some((path, at)) = wound_wrong {
        report(
            Kind::Winding,
            path,
            "rings wound against RFC 7946 (exteriors counter-clockwise, holes clockwise); read correctly".into(),
            Some(at),
        );
    }
    (!out.is_empty()).then(|| MultiPolygon(out).orient(Direction::Default))
}

/// A ring's coordinates, converted to WGS-84 and closed; `None` if it cannot be measured, said
/// with `consequence` (what is left out for it).
fn read_ring(
    ring: &[geojson::Position],
    path: &str,
    crs: Crs,
    consequence: &str,
    report: &mut Report<'_>,
) -> Option<LineString<f64>> {
    let mut coords: Vec<Coord<f64>> = Vec::with_capacity(ring.len() + 1);
    for (i, pos) in ring.iter().enumerate() {
        let s = pos.as_slice();
        if s.len() < 2 {
            report(
                Kind::InvalidGeometry,
                format!("{path}[{i}]"),
                format!("a position needs [lon, lat], got {} number(s); {consequence}", s.len()),
                None,
            );
            return None;
        }
        match LonLat::new(s[0], s[1]) {
            Ok(p) => coords.push(crs.to_wgs84(p).to_coord()),
            Err(e) => {
                report(Kind::InvalidGeometry, format!("{path}[{i}]"), format!("{e}; {consequence}"), None);
                return None;
            }
        }
    }
    let Some(&first) = coords.first() else {
        report(Kind::InvalidGeometry, path.into(), format!("an empty ring; {consequence}"), None);
        return None;
    };
    let mut distinct = coords.clone();
    distinct.dedup();
    if distinct.len() > 1 && distinct.first() == distinct.last() {
        distinct.pop();
    }
    if distinct.len() < 3 {
        let msg = if coords.len() < 4 {
            format!(
                "the ring has {} position(s); a linear ring needs at least 4 (three distinct and the closing one); {consequence}",
                coords.len()
            )
        } else {
            format!("a degenerate ring of {} distinct point(s); a ring needs 3; {consequence}", distinct.len())
        };
        report(Kind::InvalidGeometry, path.into(), msg, Some(first));
        return None;
    }
    let last = coords[coords.len() - 1];
    if first != last {
        report(
            Kind::InvalidGeometry,
            path.into(),
            format!(
                "the ring is not closed: it starts at [{}, {}] and ends at [{}, {}] (RFC 7946 §3.1.6); closed for measuring",
                first.x, first.y, last.x, last.y
            ),
            Some(last),
        );
        coords.push(first);
    }
    let ls = LineString(coords);
    if collinear(&distinct) {
        report(
            Kind::InvalidGeometry,
            path.into(),
            format!("a degenerate ring: all its points lie on one line; {consequence}"),
            Some(first),
        );
        return None;
    }
    Some(ls)
}

/// Whether every point lies on the line through the first two (a ring with no area). A bow tie
/// also has zero signed area, but is not degenerate: it is reported as crossing itself.
fn collinear(distinct: &[Coord<f64>]) -> bool {
    use geo::kernels::{Kernel, Orientation, RobustKernel};
    let (a, b) = (distinct[0], distinct[1]);
    distinct[2..].iter().all(|&c| RobustKernel::orient2d(a, b, c) == Orientation::Collinear)
}

/// Reports rings that cross themselves or each other, and holes outside their shell, with the
/// place of the fault.
fn validate(poly: &Polygon<f64>, path: &str, report: &mut Report<'_>) {
    use geo::algorithm::validation::{InvalidPolygon as P, RingRole};
    let ring = |role: &RingRole| match role {
        RingRole::Exterior => (0, poly.exterior()),
        RingRole::Interior(i) => (i + 1, &poly.interiors()[*i]),
    };
    let Some(problem) = poly.validation_errors().into_iter().next() else { return };
    match &problem {
        P::SelfIntersection(role) => {
            let (r, ls) = ring(role);
            let c = first_crossing(&[ls]);
            let msg = match c {
                Some(c) => format!("the ring crosses itself (segments {} and {})", c.a.1, c.b.1),
                None => "the ring crosses itself".into(),
            };
            report(Kind::InvalidGeometry, format!("{path}[{r}]"), msg, c.map(|c| c.at));
        }
        P::IntersectingRingsOnALine(a, b) | P::IntersectingRingsOnAnArea(a, b) => {
            let ((ra, la), (rb, lb)) = (ring(a), ring(b));
            let c = first_crossing(&[la, lb]);
            report(
                Kind::InvalidGeometry,
                format!("{path}[{rb}]"),
                format!("rings {ra} and {rb} cross"),
                c.map(|c| c.at),
            );
        }
        P::InteriorRingNotContainedInExteriorRing(role) => {
            let (r, ls) = ring(role);
            report(
                Kind::InvalidGeometry,
                format!("{path}[{r}]"),
                "a hole outside its polygon's exterior ring".into(),
                ls.0.first().copied(),
            );
        }
        other => report(Kind::InvalidGeometry, path.into(), other.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A town with one unreadable hole (two positions) is measured without that hole, not left
    /// out whole (which reported it as a gap the size of the town).
    #[test]
    fn an_unreadable_hole_leaves_out_only_itself() {
        let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"441900003"},
          "geometry":{"type":"MultiPolygon","coordinates":[
            [[[113.7,22.9],[113.8,22.9],[113.8,23.0],[113.7,23.0],[113.7,22.9]],[[113.75,22.95],[113.76,22.95]]],
            [[[113.9,22.9],[113.91,22.9]]]]}}]}"#;
        let layer = read_layer(text, &ReadOptions::default()).unwrap();
        let g = layer.features[0].geometry.as_ref().expect("measured all the same");
        assert_eq!((g.0.len(), g.0[0].interiors().len()), (1, 0), "the shell kept, the hole and the bad part dropped");
        let paths: Vec<&str> = layer.faults.iter().filter_map(|f| f.path.as_deref()).collect();
        assert!(paths.contains(&"coordinates[0][1]") && paths.contains(&"coordinates[1][0]"), "{paths:?}");
        let hole = layer.faults.iter().find(|f| f.path.as_deref() == Some("coordinates[0][1]")).unwrap();
        assert!(hole.message.contains("this hole alone is left out"), "{}", hole.message);
    }

    fn layer(geometry: &str) -> AuditLayer {
        let text = format!(
            r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{"code":"440304001"}},"geometry":{geometry}}}]}}"#
        );
        read_layer(&text, &ReadOptions::default()).unwrap()
    }

    #[test]
    fn a_bow_tie_is_located_at_its_crossing_and_still_measured() {
        let l =
            layer(r#"{"type":"Polygon","coordinates":[[[114,22],[114.02,22.02],[114.02,22],[114,22.02],[114,22]]]}"#);
        let f = &l.faults[0];
        assert_eq!(f.kind, Kind::InvalidGeometry, "{:#?}", l.faults);
        assert_eq!(f.path.as_deref(), Some("coordinates[0]"));
        let at = f.location.unwrap();
        assert!((at[0] - 114.01).abs() < 1e-9 && (at[1] - 22.01).abs() < 1e-9, "{at:?}");
        assert!(l.features[0].geometry.is_some());
    }

    #[test]
    fn three_positions_and_two_point_rings_cannot_be_measured() {
        let l = layer(r#"{"type":"Polygon","coordinates":[[[114,22],[114.02,22.02],[114,22]]]}"#);
        assert!(l.faults[0].message.contains("needs at least 4"), "{}", l.faults[0].message);
        assert!(l.features[0].geometry.is_none());
        let l = layer(r#"{"type":"Polygon","coordinates":[[[114,22],[114.02,22.02],[114.02,22]]]}"#);
        assert!(l.faults[0].message.contains("not closed"), "{}", l.faults[0].message);
        assert!(l.features[0].geometry.is_some(), "three distinct points, closed for measuring");
    }

    #[test]
    fn clockwise_exteriors_are_a_warning_and_are_turned() {
        let l =
            layer(r#"{"type":"Polygon","coordinates":[[[114,22],[114,22.01],[114.01,22.01],[114.01,22],[114,22]]]}"#);
        assert_eq!(l.faults.len(), 1);
        assert_eq!(l.faults[0].kind, Kind::Winding);
        assert!(l.features[0].geometry.as_ref().unwrap().0[0].exterior().is_ccw());
    }

    #[test]
    fn a_declared_crs_is_converted_or_refused() {
        let fc = |crs: &str| {
            format!(
                r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"{crs}"}}}},"features":[{{"type":"Feature","properties":{{}},"geometry":{{"type":"Polygon","coordinates":[[[114,22],[114.01,22],[114.01,22.01],[114,22]]]}}}}]}}"#
            )
        };
        let l = read_layer(&fc("urn:ogc:def:crs:OGC:1.3:CRS84"), &ReadOptions::default()).unwrap();
        assert_eq!(l.crs, Crs::Wgs84);
        let l = read_layer(&fc("GCJ-02"), &ReadOptions::default()).unwrap();
        assert_eq!((l.crs, l.crs_source), (Crs::Gcj02, CrsSource::File));
        let x = l.features[0].geometry.as_ref().unwrap().0[0].exterior().0[0].x;
        assert!((x - 114.0).abs() > 1e-3, "converted: {x}");
        let e = read_layer(&fc("urn:ogc:def:crs:EPSG::3857"), &ReadOptions::default()).unwrap_err();
        assert!(matches!(e, LayerError::UnknownCrs(_)));
    }
}
