//! Measuring and placing the polygons an audit finds.
//!
//! # Units
//! Areas are geodesic square metres on the WGS-84 ellipsoid (Karney's algorithm, as PostGIS
//! `ST_Area(geography)`); coordinates are `[lon, lat]` degrees.

use super::Finding;
use geo::{BoundingRect, GeodesicArea, InteriorPoint, MultiPolygon, Polygon};

/// Geodesic area in m², whatever the rings' winding.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::measure::area_m2;
/// use geo::{MultiPolygon, polygon};
/// // 0.01° by 0.01° in Futian: about 1.03 km by 1.11 km.
/// let grid = MultiPolygon::new(vec![polygon![
///     (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)]]);
/// let a = area_m2(&grid);
/// assert!((a - 1_139_000.0).abs() < 1_000.0, "{a}");
/// ```
#[must_use]
pub fn area_m2(mp: &MultiPolygon<f64>) -> f64 {
    mp.0.iter().map(polygon_area_m2).sum()
}

/// Geodesic area of one polygon in m², whatever the rings' winding.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::measure::polygon_area_m2;
/// use geo::polygon;
/// let ccw = polygon![(x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)];
/// let cw = polygon![(x: 114.05, y: 22.54), (x: 114.05, y: 22.55), (x: 114.06, y: 22.55), (x: 114.06, y: 22.54)];
/// assert!((polygon_area_m2(&ccw) - polygon_area_m2(&cw)).abs() < 1e-6);
/// assert!(polygon_area_m2(&cw) < 2e6); // not the rest of the Earth
/// ```
///
/// `geodesic_area_unsigned` reads a clockwise exterior as enclosing the rest of the Earth (and
/// the polygon operations do not promise a winding), while the signed area only flips its sign:
/// its magnitude is right for any polygon smaller than a hemisphere.
#[must_use]
pub fn polygon_area_m2(p: &Polygon<f64>) -> f64 {
    p.geodesic_area_signed().abs()
}

/// A point inside the geometry (on it, for degenerate input).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::measure::location;
/// use geo::{Contains, MultiPolygon, Point, polygon};
/// // An L-shaped grid: its centroid would lie outside it.
/// let l_shape = MultiPolygon::new(vec![polygon![
///     (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.542),
///     (x: 114.052, y: 22.542), (x: 114.052, y: 22.55), (x: 114.05, y: 22.55)]]);
/// let [lon, lat] = location(&l_shape).ok_or("empty")?;
/// assert!(l_shape.contains(&Point::new(lon, lat)));
/// assert_eq!(location(&MultiPolygon::new(Vec::new())), None);
/// # Ok::<(), &str>(())
/// ```
#[must_use]
pub fn location(mp: &MultiPolygon<f64>) -> Option<[f64; 2]> {
    mp.interior_point().map(|p| [p.x(), p.y()])
}

/// `[west, south, east, north]`.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::measure::bbox;
/// use geo::{MultiPolygon, polygon};
/// let grid = MultiPolygon::new(vec![polygon![(x: 113.75, y: 23.02), (x: 113.76, y: 23.02), (x: 113.75, y: 23.03)]]);
/// assert_eq!(bbox(&grid), Some([113.75, 23.02, 113.76, 23.03]));
/// ```
#[must_use]
pub fn bbox(mp: &MultiPolygon<f64>) -> Option<[f64; 4]> {
    mp.bounding_rect().map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
}

/// Fills a finding's area, location, bbox and geometry from a polygon.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::measure::{area_m2, placed};
/// use safegrid_geodata::audit::{Finding, Kind};
/// use geo::{MultiPolygon, polygon};
/// let gap = MultiPolygon::new(vec![polygon![
///     (x: 114.05, y: 22.54), (x: 114.0501, y: 22.54), (x: 114.0501, y: 22.5401), (x: 114.05, y: 22.5401)]]);
/// let a = area_m2(&gap);
/// let f = placed(Finding::new(Kind::Gap, vec![], vec![], "a gap".into()), &gap, a);
/// assert_eq!(f.area_m2, Some(a));
/// assert_eq!(f.bbox, Some([114.05, 22.54, 114.0501, 22.5401]));
/// assert!(f.location.is_some() && f.geometry.is_some());
/// ```
#[must_use]
pub fn placed(mut f: Finding, mp: &MultiPolygon<f64>, area_m2: f64) -> Finding {
    f.area_m2 = Some(area_m2);
    f.location = location(mp);
    f.bbox = bbox(mp);
    f.geometry = Some(crate::polygon_check::multipolygon_to_geojson(mp));
    f
}

/// One separate piece of a result, measured.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::{Thresholds, measure::Piece};
/// use geo::polygon;
/// // A strip 0.00001° (about 1 m) wide along 0.01° (about 1 km) of border.
/// let strip = Piece::new(polygon![
///     (x: 114.06, y: 22.54), (x: 114.06001, y: 22.54), (x: 114.06001, y: 22.55), (x: 114.06, y: 22.55)]);
/// assert!((strip.width_m - 1.03).abs() < 0.01, "{}", strip.width_m);
/// assert!(strip.area_m2 > Thresholds::default().sliver_m2); // large, but…
/// assert!(!strip.is_sliver(&Thresholds::default())); // …1 m wide is not below 0.5 m
/// ```
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
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::measure::Piece;
    /// use geo::polygon;
    /// let p = Piece::new(polygon![
    ///     (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)]);
    /// // Twice the area over the perimeter: about half a side for a square.
    /// assert!((p.width_m - 535.0).abs() < 2.0, "{}", p.width_m);
    /// assert_eq!(p.geometry.0.len(), 1);
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::{Thresholds, measure::Piece};
    /// use geo::polygon;
    /// let t = Thresholds::default();
    /// // 6 cm wide along 1.1 km: 70 m², and narrow.
    /// let strip = Piece::new(polygon![
    ///     (x: 114.06, y: 22.54), (x: 114.0600006, y: 22.54), (x: 114.0600006, y: 22.55), (x: 114.06, y: 22.55)]);
    /// assert!(strip.is_sliver(&t));
    /// // A yard of about 20 m by 22 m: 456 m², 11 m "wide".
    /// let yard = Piece::new(polygon![
    ///     (x: 114.05, y: 22.54), (x: 114.0502, y: 22.54), (x: 114.0502, y: 22.5402), (x: 114.05, y: 22.5402)]);
    /// assert!(!yard.is_sliver(&t));
    /// ```
    #[must_use]
    pub fn is_sliver(&self, t: &super::Thresholds) -> bool {
        self.area_m2 < t.sliver_m2 || self.width_m < t.sliver_width_m
    }
}

/// Geodesic perimeter of a polygon (all rings), m.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::measure::perimeter_m;
/// use geo::polygon;
/// let grid = polygon![(x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)];
/// let p = perimeter_m(&grid);
/// // Two sides of about 1.03 km and two of about 1.11 km.
/// assert!((p - 4_276.0).abs() < 5.0, "{p}");
/// ```
#[must_use]
pub fn perimeter_m(p: &Polygon<f64>) -> f64 {
    use geo::line_measures::{Geodesic, Length};
    std::iter::once(p.exterior()).chain(p.interiors()).map(|r| Geodesic.length(r)).sum()
}

/// The separate pieces of a result, measured, dropping noise (below `noise_m2`, or narrower
/// than `noise_width_m`).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::{Thresholds, measure::pieces};
/// use geo::{MultiPolygon, polygon};
/// let result = MultiPolygon::new(vec![
///     // a gap of 0.0002° a side: about 20 m by 22 m
///     polygon![(x: 114.05, y: 22.54), (x: 114.0502, y: 22.54), (x: 114.0502, y: 22.5402), (x: 114.05, y: 22.5402)],
///     // a 0.1 mm wide strip: rounding noise of the polygon operations
///     polygon![(x: 114.06, y: 22.54), (x: 114.060000001, y: 22.54), (x: 114.060000001, y: 22.55), (x: 114.06, y: 22.55)],
/// ]);
/// let found = pieces(result, &Thresholds::default());
/// assert_eq!(found.len(), 1);
/// assert!((found[0].area_m2 - 456.0).abs() < 1.0, "{}", found[0].area_m2);
/// ```
#[must_use]
pub fn pieces(mp: MultiPolygon<f64>, t: &super::Thresholds) -> Vec<Piece> {
    mp.0.into_iter().map(Piece::new).filter(|p| p.area_m2 >= t.noise_m2 && p.width_m >= t.noise_width_m).collect()
}

/// Square metres in a m² figure, written for people (`1.2 km²`, `340 m²`).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::measure::human_area;
/// assert_eq!(human_area(1_234_567.0), "1.23 km²");
/// assert_eq!(human_area(340.4), "340 m²");
/// assert_eq!(human_area(0.256), "0.26 m²");
/// ```
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
