//! Point → grid location.
//!
//! An R-tree over the envelopes of every polygon part of every leaf unit finds candidates; an
//! exact point-in-polygon test decides. Each part is "prepared": its edges are bucketed into
//! horizontal bands so that a test looks only at the few edges crossing the point's band —
//! a 600-vertex town boundary costs about as much as a 7-vertex hexagon.
//!
//! # The border rule
//! A point on a border shared by two grids must belong to exactly one of them. The rule:
//! 1. grids whose interior contains the point win over grids whose boundary it lies on;
//! 2. among several winners (a shared border, or overlapping grids in imperfect real data),
//!    the grid with the smallest code wins.
//!
//! Boundary tests use exact orientation predicates, so "on the border" means exactly on it.
//! A point in no grid is reported as outside, with the nearest grid and its distance.

use crate::LonLat;
use crate::distance::{LocalMetres, METRES_PER_DEGREE};
use crate::grid::GridHierarchy;
use geo::kernels::RobustKernel;
use geo::{Coord, Kernel, Orientation, Polygon};
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};
use std::cmp::Reverse;

/// Where a point lies relative to a polygon.
///
/// # Examples
/// ```
/// use safegrid_geodata::locate::{PointPosition, PreparedPolygon};
/// use geo::{coord, polygon};
/// let grid = PreparedPolygon::new(&polygon![
///     (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)]);
/// let where_is = |x, y| grid.position(coord! { x: x, y: y });
/// assert_eq!(where_is(114.055, 22.545), PointPosition::Inside);
/// assert_eq!(where_is(114.06, 22.545), PointPosition::OnBoundary);
/// assert_eq!(where_is(114.07, 22.545), PointPosition::Outside);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointPosition {
    /// Strictly inside.
    Inside,
    /// Exactly on an edge or vertex.
    OnBoundary,
    /// Outside.
    Outside,
}

/// A polygon prepared for repeated point-in-polygon tests.
///
/// # Examples
/// ```
/// use safegrid_geodata::locate::{PointPosition, PreparedPolygon};
/// use geo::{coord, polygon};
/// // A grid in Futian with a courtyard cut out of it.
/// let grid = polygon![
///     exterior: [(x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)],
///     interiors: [[(x: 114.054, y: 22.544), (x: 114.056, y: 22.544), (x: 114.056, y: 22.546), (x: 114.054, y: 22.546)]],
/// ];
/// let prepared = PreparedPolygon::new(&grid);
/// assert_eq!(prepared.position(coord! { x: 114.052, y: 22.545 }), PointPosition::Inside);
/// assert_eq!(prepared.position(coord! { x: 114.055, y: 22.545 }), PointPosition::Outside); // in the hole
/// ```
#[derive(Debug, Clone)]
pub struct PreparedPolygon {
    min: Coord<f64>,
    max: Coord<f64>,
    band_height: f64,
    edges: Vec<(Coord<f64>, Coord<f64>)>,
    band_offsets: Vec<u32>,
    band_edges: Vec<u32>,
}

impl PreparedPolygon {
    /// Prepares a polygon (all rings: holes count as outside by the even-odd rule).
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::locate::{PointPosition, PreparedPolygon};
    /// use geo::{coord, polygon};
    /// let triangle = PreparedPolygon::new(&polygon![
    ///     (x: 113.75, y: 23.02), (x: 113.76, y: 23.02), (x: 113.75, y: 23.03)]);
    /// assert_eq!(triangle.position(coord! { x: 113.752, y: 23.022 }), PointPosition::Inside);
    /// assert_eq!(triangle.position(coord! { x: 113.758, y: 23.028 }), PointPosition::Outside);
    /// ```
    #[must_use]
    pub fn new(poly: &Polygon<f64>) -> Self {
        let mut edges = Vec::new();
        for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
            for w in ring.0.windows(2) {
                if w[0] != w[1] {
                    edges.push((w[0], w[1]));
                }
            }
        }
        let (mut min, mut max) = (Coord { x: f64::MAX, y: f64::MAX }, Coord { x: f64::MIN, y: f64::MIN });
        for (a, _) in &edges {
            min.x = min.x.min(a.x);
            min.y = min.y.min(a.y);
            max.x = max.x.max(a.x);
            max.y = max.y.max(a.y);
        }
        // About four edges per band: measured as the knee between build memory and test speed.
        let bands = (edges.len() / 4).clamp(1, 1024);
        let band_height = ((max.y - min.y) / bands as f64).max(f64::MIN_POSITIVE);
        let band_of = |y: f64| (((y - min.y) / band_height) as usize).min(bands - 1);
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); bands];
        for (i, (a, b)) in edges.iter().enumerate() {
            let (lo, hi) = (band_of(a.y.min(b.y)), band_of(a.y.max(b.y)));
            for list in &mut lists[lo..=hi] {
                list.push(i as u32);
            }
        }
        let mut band_offsets = Vec::with_capacity(bands + 1);
        let mut band_edges = Vec::new();
        band_offsets.push(0);
        for l in lists {
            band_edges.extend(l);
            band_offsets.push(band_edges.len() as u32);
        }
        Self { min, max, band_height, edges, band_offsets, band_edges }
    }

    /// Envelope as (min, max).
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::locate::PreparedPolygon;
    /// use geo::{coord, polygon};
    /// let triangle = PreparedPolygon::new(&polygon![
    ///     (x: 113.75, y: 23.02), (x: 113.76, y: 23.02), (x: 113.75, y: 23.03)]);
    /// assert_eq!(triangle.envelope(), (coord! { x: 113.75, y: 23.02 }, coord! { x: 113.76, y: 23.03 }));
    /// ```
    #[must_use]
    pub fn envelope(&self) -> (Coord<f64>, Coord<f64>) {
        (self.min, self.max)
    }

    /// Classifies a point: inside, exactly on the boundary, or outside.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::locate::{PointPosition, PreparedPolygon};
    /// use geo::{coord, polygon};
    /// let grid = PreparedPolygon::new(&polygon![
    ///     (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)]);
    /// assert_eq!(grid.position(coord! { x: 114.0579, y: 22.5431 }), PointPosition::Inside);
    /// assert_eq!(grid.position(coord! { x: 114.05, y: 22.55 }), PointPosition::OnBoundary); // a corner
    /// assert_eq!(grid.position(coord! { x: 114.0579, y: 22.5501 }), PointPosition::Outside);
    /// ```
    #[must_use]
    pub fn position(&self, p: Coord<f64>) -> PointPosition {
        if p.x < self.min.x || p.x > self.max.x || p.y < self.min.y || p.y > self.max.y {
            return PointPosition::Outside;
        }
        let bands = self.band_offsets.len() - 1;
        let band = (((p.y - self.min.y) / self.band_height) as usize).min(bands - 1);
        let (s, e) = (self.band_offsets[band] as usize, self.band_offsets[band + 1] as usize);
        let mut inside = false;
        for &ei in &self.band_edges[s..e] {
            let (a, b) = self.edges[ei as usize];
            // Only edges whose y-span contains p.y can either hold p or cross its ray.
            if (a.y > p.y && b.y > p.y) || (a.y < p.y && b.y < p.y) {
                continue;
            }
            let o = RobustKernel::orient2d(a, b, p);
            if o == Orientation::Collinear && p.x >= a.x.min(b.x) && p.x <= a.x.max(b.x) {
                return PointPosition::OnBoundary;
            }
            // Half-open crossing rule: an edge counts when it spans p.y with one end strictly
            // above, and crosses the ray going east from p.
            let upward_left = a.y <= p.y && b.y > p.y && o == Orientation::CounterClockwise;
            let downward_right = b.y <= p.y && a.y > p.y && o == Orientation::Clockwise;
            if upward_left || downward_right {
                inside = !inside;
            }
        }
        if inside { PointPosition::Inside } else { PointPosition::Outside }
    }

    /// Distance in metres from `p` to the nearest edge, in a flat projection around `p`.
    ///
    /// The distance is the same inside and outside the polygon.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::{LonLat, locate::PreparedPolygon};
    /// use geo::polygon;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let grid = PreparedPolygon::new(&polygon![
    ///     (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)]);
    /// // 0.002° of longitude east of the western edge, at 22.545°N: about 205 m.
    /// let d = grid.edge_distance_m(LonLat::new(114.052, 22.545)?);
    /// assert!((d - 205.4).abs() < 0.5, "{d}");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn edge_distance_m(&self, p: LonLat) -> f64 {
        let proj = LocalMetres::around(p);
        let mut best = f64::INFINITY;
        for (a, b) in &self.edges {
            let (ax, ay) = proj.project(a.x, a.y);
            let (bx, by) = proj.project(b.x, b.y);
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = dx * dx + dy * dy;
            let t = if len2 > 0.0 { ((-ax * dx - ay * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
            let (cx, cy) = (ax + t * dx, ay + t * dy);
            best = best.min((cx * cx + cy * cy).sqrt());
        }
        best
    }
}

/// Where a point was located.
///
/// # Examples
/// ```
/// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridLocator, GridUnit, Location, LonLat};
/// # use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let unit = |code: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
/// #     let geometry = MultiPolygon::new(vec![polygon![
/// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
/// #     Ok(GridUnit { code: GridCode::parse(code)?, name: code.into(), level, manager: None, geometry })
/// # };
/// # // 福田区 with two grids side by side, sharing the meridian 114.06°E.
/// # let futian = GridHierarchy::new(vec![
/// #     unit("440304", GridLevel::District, 114.05, 114.07)?,
/// #     unit("440304001", GridLevel::Grid, 114.05, 114.06)?,
/// #     unit("440304002", GridLevel::Grid, 114.06, 114.07)?,
/// # ])?;
/// let locator = GridLocator::new(&futian);
/// let describe = |p: LonLat| match locator.locate(p) {
///     Location::In { unit } => format!("in {}", futian.unit(unit).code),
///     Location::Outside { nearest, distance_m } => {
///         format!("{:.0} m outside {}", distance_m, futian.unit(nearest).code)
///     }
///     Location::NoGrids => "no grids".to_owned(),
/// };
/// assert_eq!(describe(LonLat::new(114.0579, 22.5431)?), "in 440304001");
/// assert_eq!(describe(LonLat::new(114.0650, 22.5590)?), "1001 m outside 440304002");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Location {
    /// In the leaf unit with this index in the [`GridHierarchy`].
    In {
        /// The unit's index in the hierarchy.
        unit: usize,
    },
    /// In no unit; the nearest leaf unit and the distance to its boundary.
    Outside {
        /// The nearest leaf unit's index in the hierarchy.
        nearest: usize,
        /// Metres from the point to that unit's nearest edge (flat projection around the point).
        distance_m: f64,
    },
    /// The hierarchy is empty.
    NoGrids,
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Point → leaf-unit locator for one [`GridHierarchy`].
///
/// Built once per hierarchy; only leaf units (those without children) are indexed.
///
/// # Examples
/// ```
/// use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridLocator, GridUnit, Location, LonLat};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let unit = |code: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
///     let geometry = MultiPolygon::new(vec![polygon![
///         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
///     Ok(GridUnit { code: GridCode::parse(code)?, name: code.into(), level, manager: None, geometry })
/// };
/// // 福田区 with two grids side by side, sharing the meridian 114.06°E.
/// let futian = GridHierarchy::new(vec![
///     unit("440304", GridLevel::District, 114.05, 114.07)?,
///     unit("440304001", GridLevel::Grid, 114.05, 114.06)?,
///     unit("440304002", GridLevel::Grid, 114.06, 114.07)?,
/// ])?;
/// let locator = GridLocator::new(&futian);
/// let Location::In { unit } = locator.locate(LonLat::new(114.0650, 22.5450)?) else {
///     return Err("not located".into());
/// };
/// assert_eq!(futian.unit(unit).code.as_str(), "440304002");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GridLocator {
    tree: RTree<Entry>,
    parts: Vec<PreparedPolygon>,
    unit_of_part: Vec<usize>,
}

impl GridLocator {
    /// Indexes every polygon part of every leaf unit.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridLocator, GridUnit, Location, LonLat};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: code.into(), level, manager: None, geometry })
    /// # };
    /// # // 福田区 with two grids side by side, sharing the meridian 114.06°E.
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let locator = GridLocator::new(&futian);
    /// // The district has children, so only its two grids are indexed.
    /// assert_eq!(locator.part_count(), 2);
    /// assert_eq!(GridLocator::new(&GridHierarchy::default()).locate(LonLat::new(114.06, 22.54)?), Location::NoGrids);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn new(h: &GridHierarchy) -> Self {
        let mut parts = Vec::new();
        let mut unit_of_part = Vec::new();
        for (i, u) in h.leaves() {
            for poly in &u.geometry.0 {
                parts.push(PreparedPolygon::new(poly));
                unit_of_part.push(i);
            }
        }
        let entries = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (lo, hi) = p.envelope();
                GeomWithData::new(Rectangle::from_corners([lo.x, lo.y], [hi.x, hi.y]), i as u32)
            })
            .collect();
        Self { tree: RTree::bulk_load(entries), parts, unit_of_part }
    }

    /// Number of indexed polygon parts.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridLocator, GridUnit};
    /// use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // One grid of two islands.
    /// let islands = MultiPolygon::new(vec![
    ///     polygon![(x: 113.90, y: 22.48), (x: 113.91, y: 22.48), (x: 113.91, y: 22.49)],
    ///     polygon![(x: 113.92, y: 22.48), (x: 113.93, y: 22.48), (x: 113.93, y: 22.49)],
    /// ]);
    /// let grid = GridUnit {
    ///     code: GridCode::parse("440305")?, name: "南山区".into(), level: GridLevel::District,
    ///     manager: None, geometry: islands,
    /// };
    /// assert_eq!(GridLocator::new(&GridHierarchy::new(vec![grid])?).part_count(), 2);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// Locates a point by the border rule in the module docs.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridLocator, GridUnit, Location, LonLat};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: code.into(), level, manager: None, geometry })
    /// # };
    /// # // 福田区 with two grids side by side, sharing the meridian 114.06°E.
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let locator = GridLocator::new(&futian);
    /// // On the shared border: the smaller code wins.
    /// let on_border = locator.locate(LonLat::new(114.06, 22.545)?);
    /// assert_eq!(on_border, Location::In { unit: futian.index_of(&GridCode::parse("440304001")?).ok_or("?")? });
    /// // North of both grids: outside, with the nearest one.
    /// let Location::Outside { nearest, distance_m } = locator.locate(LonLat::new(114.0650, 22.5590)?) else {
    ///     return Err("expected outside".into());
    /// };
    /// assert_eq!(futian.unit(nearest).code.as_str(), "440304002");
    /// assert!((distance_m - 1000.8).abs() < 1.0, "{distance_m}");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn locate(&self, p: LonLat) -> Location {
        if let Some(unit) = self.containing_unit(p) {
            return Location::In { unit };
        }
        match self.nearest_unit(p) {
            Some((nearest, distance_m)) => Location::Outside { nearest, distance_m },
            None => Location::NoGrids,
        }
    }

    /// The leaf unit holding `p`, if any; cheaper than [`Self::locate`] when the nearest unit
    /// outside is not wanted.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridLocator, GridUnit, Location, LonLat};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: code.into(), level, manager: None, geometry })
    /// # };
    /// # // 福田区 with two grids side by side, sharing the meridian 114.06°E.
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let locator = GridLocator::new(&futian);
    /// let unit = locator.containing_unit(LonLat::new(114.0579, 22.5431)?);
    /// assert_eq!(unit.map(|i| futian.unit(i).code.as_str()), Some("440304001"));
    /// assert_eq!(locator.containing_unit(LonLat::new(113.7518, 23.0205)?), None); // Dongguan
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn containing_unit(&self, p: LonLat) -> Option<usize> {
        let c = p.to_coord();
        // Units are sorted by code, so "smallest code" is "smallest unit index".
        let mut best: Option<(bool, Reverse<usize>)> = None;
        for e in self.tree.locate_all_at_point(&[c.x, c.y]) {
            let part = e.data as usize;
            let inside = match self.parts[part].position(c) {
                PointPosition::Inside => true,
                PointPosition::OnBoundary => false,
                PointPosition::Outside => continue,
            };
            let key = (inside, Reverse(self.unit_of_part[part]));
            if best.is_none_or(|b| key > b) {
                best = Some(key);
            }
        }
        best.map(|(_, Reverse(u))| u)
    }

    /// Distance in metres from `p` to the boundary of leaf unit `unit` (an index in the
    /// [`GridHierarchy`]), inside or out; `None` when it is not a leaf. Geofence hysteresis asks
    /// how far a unit has gone past a grid's border.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridLocator, GridUnit, Location, LonLat};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: code.into(), level, manager: None, geometry })
    /// # };
    /// # // 福田区 with two grids side by side, sharing the meridian 114.06°E.
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let locator = GridLocator::new(&futian);
    /// let grid = futian.index_of(&GridCode::parse("440304001")?).ok_or("no such grid")?;
    /// // 0.001° of latitude north of the grid's northern edge: about 111 m past it.
    /// let d = locator.distance_to_unit_boundary_m(grid, LonLat::new(114.055, 22.551)?);
    /// assert!(d.is_some_and(|m| (m - 111.2).abs() < 0.1));
    /// // The district is not a leaf.
    /// let district = futian.index_of(&GridCode::parse("440304")?).ok_or("no such district")?;
    /// assert_eq!(locator.distance_to_unit_boundary_m(district, LonLat::new(114.055, 22.551)?), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn distance_to_unit_boundary_m(&self, unit: usize, p: LonLat) -> Option<f64> {
        // Parts are pushed unit by unit in index order, so a unit's parts are one run.
        let lo = self.unit_of_part.partition_point(|&u| u < unit);
        let hi = self.unit_of_part.partition_point(|&u| u <= unit);
        (lo < hi).then(|| self.parts[lo..hi].iter().map(|part| part.edge_distance_m(p)).fold(f64::INFINITY, f64::min))
    }

    fn nearest_unit(&self, p: LonLat) -> Option<(usize, f64)> {
        // Envelope distances are in degrees; a degree of longitude shrinks with latitude, so the
        // lower bound in metres uses the cosine of the highest latitude a candidate can reach.
        let lat_bound = (p.lat().abs() + 5.0).min(89.0).to_radians().cos();
        let mut best: Option<(usize, f64)> = None;
        for (e, d2) in self.tree.nearest_neighbor_iter_with_distance_2(&[p.lon(), p.lat()]) {
            let lower_m = d2.sqrt() * METRES_PER_DEGREE * lat_bound;
            if best.is_some_and(|(_, b)| lower_m > b) {
                break;
            }
            let part = e.data as usize;
            let d = self.parts[part].edge_distance_m(p);
            if best.is_none_or(|(_, b)| d < b) {
                best = Some((self.unit_of_part[part], d));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{GridCode, GridLevel, GridUnit};
    use geo::{MultiPolygon, polygon};
    use proptest::prelude::*;

    fn square(x: f64, y: f64, s: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![polygon![(x: x, y: y), (x: x + s, y: y), (x: x + s, y: y + s), (x: x, y: y + s)]])
    }

    /// A 10 × 10 checkerboard of 0.01° grids under one district.
    fn board() -> GridHierarchy {
        let mut units = vec![GridUnit {
            code: GridCode::parse("440304").unwrap(),
            name: "d".into(),
            level: GridLevel::District,
            manager: None,
            geometry: square(114.0, 22.5, 0.1),
        }];
        for i in 0..10 {
            for j in 0..10 {
                units.push(GridUnit {
                    code: GridCode::parse(&format!("440304{:03}", i * 10 + j + 1)).unwrap(),
                    name: format!("g{i}{j}"),
                    level: GridLevel::Grid,
                    manager: None,
                    geometry: square(114.0 + f64::from(i) * 0.01, 22.5 + f64::from(j) * 0.01, 0.01),
                });
            }
        }
        GridHierarchy::new(units).unwrap()
    }

    fn brute_force(h: &GridHierarchy, p: LonLat) -> Option<usize> {
        let mut hits: Vec<(bool, usize)> = Vec::new();
        for (i, u) in h.leaves() {
            for poly in &u.geometry.0 {
                match PreparedPolygon::new(poly).position(p.to_coord()) {
                    PointPosition::Inside => hits.push((true, i)),
                    PointPosition::OnBoundary => hits.push((false, i)),
                    PointPosition::Outside => {}
                }
            }
        }
        let any_inside = hits.iter().any(|h| h.0);
        hits.into_iter().filter(|h| h.0 == any_inside).map(|h| h.1).min()
    }

    #[test]
    fn point_on_shared_border_belongs_to_exactly_one_grid_the_smallest_code() {
        let h = board();
        let loc = GridLocator::new(&h);
        // Exactly on the vertical border between column 2 and 3: 114.03 is a shared x.
        let x = 114.0 + 3.0 * 0.01;
        let p = LonLat::new(x, 22.555).unwrap();
        let Location::In { unit } = loc.locate(p) else { panic!("not located") };
        // Both neighbours report the point on their boundary…
        let on: Vec<_> = h
            .leaves()
            .filter(|(_, u)| PreparedPolygon::new(&u.geometry.0[0]).position(p.to_coord()) == PointPosition::OnBoundary)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(on.len(), 2);
        // …and the rule gives it to the smaller code.
        assert_eq!(unit, on[0]);
    }

    #[test]
    fn a_shared_corner_of_four_grids_also_has_one_owner() {
        let h = board();
        let loc = GridLocator::new(&h);
        let c = h.unit(h.index_of(&GridCode::parse("440304045").unwrap()).unwrap()).geometry.0[0].exterior().0[0];
        let Location::In { unit } = loc.locate(LonLat::new(c.x, c.y).unwrap()) else { panic!() };
        assert_eq!(Some(unit), brute_force(&h, LonLat::new(c.x, c.y).unwrap()));
    }

    #[test]
    fn a_point_outside_every_grid_reports_the_nearest_and_its_distance() {
        let h = board();
        let loc = GridLocator::new(&h);
        // 0.01° of latitude south of the board's south-west corner ≈ 1,112 m.
        let Location::Outside { nearest, distance_m } = loc.locate(LonLat::new(114.005, 22.49).unwrap()) else {
            panic!()
        };
        assert_eq!(h.unit(nearest).code.as_str(), "440304001");
        assert!((distance_m - 1_111.95).abs() < 1.0, "{distance_m}");
    }

    #[test]
    fn holes_are_outside() {
        let poly = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)],
            interiors: [[(x: 4.0, y: 4.0), (x: 6.0, y: 4.0), (x: 6.0, y: 6.0), (x: 4.0, y: 6.0)]],
        );
        let p = PreparedPolygon::new(&poly);
        assert_eq!(p.position(Coord { x: 5.0, y: 5.0 }), PointPosition::Outside);
        assert_eq!(p.position(Coord { x: 2.0, y: 5.0 }), PointPosition::Inside);
        assert_eq!(p.position(Coord { x: 4.0, y: 5.0 }), PointPosition::OnBoundary);
    }

    proptest! {
        #[test]
        fn locator_agrees_with_a_brute_force_scan(x in 113.99f64..114.11, y in 22.49f64..22.61, snap in 0u8..4) {
            // Snap some points onto the 0.01° lattice so that borders and corners are exercised.
            let (x, y) = match snap {
                0 => ((x * 100.0).round() / 100.0, y),
                1 => (x, (y * 100.0).round() / 100.0),
                2 => ((x * 100.0).round() / 100.0, (y * 100.0).round() / 100.0),
                _ => (x, y),
            };
            let h = board();
            let loc = GridLocator::new(&h);
            let p = LonLat::new(x, y).unwrap();
            prop_assert_eq!(loc.containing_unit(p), brute_force(&h, p));
        }

        #[test]
        fn prepared_polygon_agrees_with_geo_on_a_real_shape(x in 0.0f64..1.0, y in 0.0f64..1.0) {
            use geo::{CoordinatePosition, coordinate_position::CoordPos};
            let poly = polygon![(x: 0.1, y: 0.1), (x: 0.9, y: 0.2), (x: 0.5, y: 0.45), (x: 0.95, y: 0.9), (x: 0.2, y: 0.7), (x: 0.35, y: 0.4)];
            let ours = PreparedPolygon::new(&poly).position(Coord { x, y });
            let theirs = match poly.coordinate_position(&Coord { x, y }) {
                CoordPos::Inside => PointPosition::Inside,
                CoordPos::OnBoundary => PointPosition::OnBoundary,
                CoordPos::Outside => PointPosition::Outside,
            };
            prop_assert_eq!(ours, theirs);
        }
    }
}
