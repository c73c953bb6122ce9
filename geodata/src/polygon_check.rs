//! Turning untrusted GeoJSON polygons into trusted `geo` geometry.
//!
//! `geo` closes rings silently and accepts any float, so the checks that matter to a user —
//! an unclosed ring, a ring of three points, a coordinate out of range, a ring that crosses
//! itself — must run on the raw GeoJSON, before conversion. Each fault names where it is.

use crate::{CoordError, LonLat};
use geo::{LineString, MultiPolygon, Polygon, Validation};
use std::fmt;

/// What is wrong with a polygonal geometry.
///
/// # Examples
/// ```
/// use safegrid_geodata::polygon_check::{GeometryFault, polygonal_from_geojson};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A bow-tie: the ring crosses itself.
/// let bow_tie: geojson::Geometry = serde_json::from_str(r#"{"type":"Polygon","coordinates":
///     [[[114.05,22.54],[114.06,22.55],[114.06,22.54],[114.05,22.55],[114.05,22.54]]]}"#)?;
/// let err = polygonal_from_geojson(&bow_tie).unwrap_err();
/// assert_eq!(err.fault, GeometryFault::SelfIntersection);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GeometryFault {
    /// Not a Polygon or MultiPolygon.
    #[error("expected a Polygon or MultiPolygon, got {found}")]
    WrongType {
        /// The GeoJSON type found instead.
        found: String,
    },
    /// A position with fewer than two numbers.
    #[error("a position needs at least [lon, lat], got {len} number(s)")]
    ShortPosition {
        /// How many numbers the position has (0 or 1).
        len: usize,
    },
    /// A coordinate outside WGS-84 ranges, or not finite.
    #[error("{0}")]
    Coordinate(CoordError),
    /// First and last positions of a ring differ (RFC 7946 §3.1.6 requires them equal).
    #[error("ring is not closed: first position {first:?} differs from last {last:?}")]
    UnclosedRing {
        /// The ring's first position, `[lon, lat]` in degrees.
        first: [f64; 2],
        /// The ring's last position, `[lon, lat]` in degrees.
        last: [f64; 2],
    },
    /// A ring needs four positions (three distinct and the closing one).
    #[error("ring has {count} positions; a linear ring needs at least 4")]
    TooFewPositions {
        /// How many positions the ring has, the closing one included.
        count: usize,
    },
    /// A polygon with no rings at all.
    #[error("polygon has no rings")]
    EmptyPolygon,
    /// A ring crosses or touches itself.
    #[error("ring intersects itself")]
    SelfIntersection,
    /// Rings of one polygon cross each other, or a hole lies outside its shell.
    #[error("{0}")]
    Rings(String),
}

/// A fault and where it is, as a path into the GeoJSON geometry (`coordinates[0][2]`).
///
/// # Examples
/// ```
/// use safegrid_geodata::polygon_check::{GeometryFault, polygonal_from_geojson};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The third position of the first ring has latitude and longitude swapped.
/// let swapped: geojson::Geometry = serde_json::from_str(r#"{"type":"Polygon","coordinates":
///     [[[114.05,22.54],[114.06,22.54],[22.55,114.06],[114.05,22.55],[114.05,22.54]]]}"#)?;
/// let err = polygonal_from_geojson(&swapped).unwrap_err();
/// assert_eq!(err.path, "coordinates[0][2]");
/// assert!(matches!(err.fault, GeometryFault::Coordinate(_)));
/// assert_eq!(err.to_string(), "lat must be between -90 and 90 degrees, got 114.06 at coordinates[0][2]");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GeometryError {
    /// Where: `coordinates`, then polygon, ring and position indexes.
    pub path: String,
    /// What.
    pub fault: GeometryFault,
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.fault, self.path)
    }
}

impl std::error::Error for GeometryError {}

fn err(path: String, fault: GeometryFault) -> GeometryError {
    GeometryError { path, fault }
}

/// Checks a GeoJSON Polygon or MultiPolygon and converts it to a `MultiPolygon`.
///
/// # Errors
/// The first [`GeometryError`] found, with its path.
///
/// # Examples
/// ```
/// use safegrid_geodata::polygon_check::polygonal_from_geojson;
/// let open: geojson::Geometry = serde_json::from_str(
///     r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#).unwrap();
/// let e = polygonal_from_geojson(&open).unwrap_err();
/// assert_eq!(e.path, "coordinates[0]");
/// ```
pub fn polygonal_from_geojson(g: &geojson::Geometry) -> Result<MultiPolygon<f64>, GeometryError> {
    use geojson::GeometryValue as V;
    match &g.value {
        V::Polygon { coordinates } => Ok(MultiPolygon(vec![polygon(coordinates, "coordinates")?])),
        V::MultiPolygon { coordinates } => {
            let polys = coordinates
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p, &format!("coordinates[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(MultiPolygon(polys))
        }
        other => Err(err("type".into(), GeometryFault::WrongType { found: other.type_name().into() })),
    }
}

fn polygon(rings: &[Vec<geojson::Position>], path: &str) -> Result<Polygon<f64>, GeometryError> {
    if rings.is_empty() {
        return Err(err(path.into(), GeometryFault::EmptyPolygon));
    }
    let mut out = Vec::with_capacity(rings.len());
    for (r, ring) in rings.iter().enumerate() {
        let rpath = format!("{path}[{r}]");
        out.push(ring_coords(ring, &rpath)?);
    }
    let mut rings = out.into_iter();
    let shell = rings.next().unwrap_or_else(|| LineString(Vec::new()));
    let poly = Polygon::new(shell, rings.collect());
    if let Some(problem) = poly.validation_errors().into_iter().next() {
        use geo::algorithm::validation::InvalidPolygon as P;
        let fault = match problem {
            P::SelfIntersection(_) => GeometryFault::SelfIntersection,
            other => GeometryFault::Rings(other.to_string()),
        };
        return Err(err(path.into(), fault));
    }
    Ok(poly)
}

fn ring_coords(ring: &[geojson::Position], path: &str) -> Result<LineString<f64>, GeometryError> {
    let mut coords = Vec::with_capacity(ring.len());
    for (i, pos) in ring.iter().enumerate() {
        let s = pos.as_slice();
        if s.len() < 2 {
            return Err(err(format!("{path}[{i}]"), GeometryFault::ShortPosition { len: s.len() }));
        }
        let p = LonLat::new(s[0], s[1]).map_err(|e| err(format!("{path}[{i}]"), GeometryFault::Coordinate(e)))?;
        coords.push(p.to_coord());
    }
    if coords.len() < 4 {
        return Err(err(path.into(), GeometryFault::TooFewPositions { count: coords.len() }));
    }
    let (first, last) = (coords[0], coords[coords.len() - 1]);
    if first != last {
        return Err(err(
            path.into(),
            GeometryFault::UnclosedRing { first: [first.x, first.y], last: [last.x, last.y] },
        ));
    }
    Ok(LineString(coords))
}

/// Converts a trusted `MultiPolygon` back to a GeoJSON geometry (RFC 7946: exterior rings
/// counter-clockwise, holes clockwise).
///
/// # Examples
/// ```
/// use safegrid_geodata::polygon_check::{multipolygon_to_geojson, polygonal_from_geojson};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A ring given clockwise comes out counter-clockwise.
/// let clockwise = MultiPolygon::new(vec![polygon![
///     (x: 114.05, y: 22.54), (x: 114.05, y: 22.55), (x: 114.06, y: 22.55), (x: 114.06, y: 22.54)]]);
/// let g = multipolygon_to_geojson(&clockwise);
/// let geojson::GeometryValue::MultiPolygon { coordinates } = &g.value else {
///     return Err("expected a MultiPolygon".into());
/// };
/// assert_eq!(coordinates[0][0][1].as_slice(), [114.06, 22.54]);
/// // What it writes, polygonal_from_geojson accepts.
/// assert_eq!(polygonal_from_geojson(&g)?.0[0].exterior().0.len(), 5);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn multipolygon_to_geojson(mp: &MultiPolygon<f64>) -> geojson::Geometry {
    use geo::orient::{Direction, Orient};
    let oriented = mp.orient(Direction::Default);
    geojson::Geometry::new(geojson::GeometryValue::from(&oriented))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> geojson::Geometry {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn a_valid_square_passes() {
        let g = parse(r#"{"type":"Polygon","coordinates":[[[114,22],[114.1,22],[114.1,22.1],[114,22.1],[114,22]]]}"#);
        let mp = polygonal_from_geojson(&g).unwrap();
        assert_eq!(mp.0.len(), 1);
    }

    #[test]
    fn a_bow_tie_is_reported_as_self_intersection() {
        let g = parse(r#"{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}"#);
        let e = polygonal_from_geojson(&g).unwrap_err();
        assert_eq!(e.fault, GeometryFault::SelfIntersection);
        assert_eq!(e.path, "coordinates");
    }

    #[test]
    fn out_of_range_coordinates_name_the_position() {
        let g = parse(
            r#"{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[0,0],[1,0],[1,95],[0,0]]]]}"#,
        );
        let e = polygonal_from_geojson(&g).unwrap_err();
        assert_eq!(e.path, "coordinates[1][0][2]");
        assert!(matches!(e.fault, GeometryFault::Coordinate(_)));
    }

    #[test]
    fn short_rings_and_points_are_refused() {
        let g = parse(r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}"#);
        assert!(matches!(polygonal_from_geojson(&g).unwrap_err().fault, GeometryFault::TooFewPositions { count: 3 }));
        let g = parse(r#"{"type":"Point","coordinates":[0,0]}"#);
        assert!(matches!(polygonal_from_geojson(&g).unwrap_err().fault, GeometryFault::WrongType { .. }));
    }
}
