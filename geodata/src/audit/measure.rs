//! Measuring and placing the polygons an audit finds.
//!
//! # Units
//! Areas are geodesic square metres on the WGS-84 ellipsoid (Karney's algorithm, as PostGIS
//! `ST_Area(geography)`); coordinates are `[lon, lat]` degrees.

use super::Finding;
use geo::{BoundingRect, GeodesicArea, InteriorPoint, MultiPolygon, Polygon};

/// Geodesic area in m², whatever the rings' winding.
#[must_use]
pub fn area_m2(mp: &MultiPolygon<f64>) -> f64 {
    mp.0.iter().map(polygon_area_m2).sum()
}

/// Geodesic area of one polygon in m², whatever the rings' winding.
///
/// `geodesic_area_unsigned` reads a clockwise exterior as enclosing the rest of the Earth (and
/// the polygon operations do not promise a winding), while the signed area only flips its sign:
/// its magnitude is right for any polygon smaller than a hemisphere.
#[must_use]
pub fn polygon_area_m2(p: &Polygon<f64>) -> f64 {
    p.geodesic_area_signed().abs()
}

/// A point inside the geometry (on it, for degenerate input).
#[must_use]
pub fn location(mp: &MultiPolygon<f64>) -> Option<[f64; 2]> {
    mp.interior_point().map(|p| [p.x(), p.y()])
}

/// `[west, south, east, north]`.
#[must_use]
pub fn bbox(mp: &MultiPolygon<f64>) -> Option<[f64; 4]> {
    mp.bounding_rect().map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
}

/// Fills a finding's area, location, bbox and geometry from a polygon.
#[must_use]
pub fn placed(mut f: Finding, mp: &MultiPolygon<f64>, area_m2: f64) -> Finding {
    f.area_m2 = Some(area_m2);
    f.location = location(mp);
    f.bbox = bbox(mp);
    f.geometry = Some(crate::polygon_check::multipolygon_to_geojson(mp));
    f
}

/// One separate piece of a result, measured.
#[derive(Debug, Clone)]
pub struct Piece {
    /// The piece.
    pub geometry: MultiPolygon<f64>,
    /// Its area, m².
    pub area_m2: f64,
    /// Its mean width, m: twice the area over the perimeter (a strip's width; a square's half side).
    pub width_m: f64,
}

impl Piece {
    /// Measures a polygon.
    #[must_use]
    pub fn new(p: Polygon<f64>) -> Self {
        let area_m2 = polygon_area_m2(&p);
        let perimeter = perimeter_m(&p);
        let width_m = if perimeter > 0.0 { 2.0 * area_m2 / perimeter } else { 0.0 };
        Self { geometry: MultiPolygon(vec![p]), area_m2, width_m }
    }

    /// Whether the piece is a sliver: smaller than `sliver_m2`, or on average narrower than
    /// `sliver_width_m` however long (a 6 cm strip along a 6 km border is an artefact of two
    /// drawings of one line, not land left uncovered).
    #[must_use]
    pub fn is_sliver(&self, t: &super::Thresholds) -> bool {
        self.area_m2 < t.sliver_m2 || self.width_m < t.sliver_width_m
    }
}

/// Geodesic perimeter of a polygon (all rings), m.
#[must_use]
pub fn perimeter_m(p: &Polygon<f64>) -> f64 {
    use geo::line_measures::{Geodesic, Length};
    std::iter::once(p.exterior()).chain(p.interiors()).map(|r| Geodesic.length(r)).sum()
}

/// The separate pieces of a result, measured, dropping noise (below `noise_m2`, or narrower
/// than `noise_width_m`).
#[must_use]
pub fn pieces(mp: MultiPolygon<f64>, t: &super::Thresholds) -> Vec<Piece> {
    mp.0.into_iter().map(Piece::new).filter(|p| p.area_m2 >= t.noise_m2 && p.width_m >= t.noise_width_m).collect()
}

/// Square metres in a m² figure, written for people (`1.2 km²`, `340 m²`).
#[must_use]
pub fn human_area(m2: f64) -> String {
    if m2 >= 1e6 {
        format!("{:.2} km²", m2 / 1e6)
    } else if m2 >= 10.0 {
        format!("{m2:.0} m²")
    } else {
        format!("{m2:.2} m²")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    #[test]
    fn a_hundredth_of_a_degree_square_at_the_equator_is_about_123_hectares() {
        let p: Polygon<f64> = polygon![(x: 0.0, y: 0.0), (x: 0.01, y: 0.0), (x: 0.01, y: 0.01), (x: 0.0, y: 0.01)];
        let a = polygon_area_m2(&p);
        // 1113.2 m × 1105.7 m on the ellipsoid.
        assert!((a - 1_230_900.0).abs() < 2_000.0, "{a}");
        assert_eq!(human_area(a), "1.23 km²");
        let cw: Polygon<f64> = polygon![(x: 0.0, y: 0.0), (x: 0.0, y: 0.01), (x: 0.01, y: 0.01), (x: 0.01, y: 0.0)];
        assert!((polygon_area_m2(&cw) - a).abs() < 1e-6, "winding does not matter");
    }
}
