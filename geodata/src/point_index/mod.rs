//! A dynamic index of points by id: bounding box, radius and k-nearest queries; insert, move and
//! remove by id.
//!
//! Distances are chords between unit vectors on the sphere: the straight-line distance between
//! two points' (x, y, z) grows monotonically with their great-circle distance, so ordering by
//! chord is exactly the haversine order — at any latitude, across the antimeridian.
//!
//! The trees are two-dimensional: each unit vector is written in an orthonormal frame
//! (east, north, up) at the index's reference point, and the tree indexes the (east, north)
//! components. Dropping the third component can only shorten a distance, so a 2-D box distance
//! is a valid lower bound of the true chord and the searches stay exact; near the reference
//! point (a city) the bound is tight. A 2-D tree is smaller and prunes better than a 3-D tree of
//! points on a curved sheet (measured in BENCHMARKS.md). Each entry also carries a caller-defined
//! 32-bit `tag` (for example a status code), so that a filtered nearest query rejects candidates
//! without a hash lookup.

use crate::LonLat;
use crate::distance::EARTH_RADIUS_M;
use rstar::{AABB, ParentNode, PointDistance, RStarInsertionStrategy, RTree, RTreeNode, RTreeObject, RTreeParams};
use std::collections::HashMap;

mod buckets;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// (east, north) components in the index's frame: what the tree indexes.
    en: [f64; 2],
    /// The unit vector, for exact chords.
    xyz: [f64; 3],
    id: u64,
    tag: u32,
}

/// Identity is the id at a position; the tag is payload. This lets `remove` rebuild the entry
/// from the id map without keeping the tag there too (8 bytes a point less).
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.xyz == other.xyz
    }
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_point(self.en)
    }
}

/// The 2-D distance: a lower bound of the chord (see the module docs). Exact answers re-check
/// with [`chord2`].
impl PointDistance for Entry {
    fn distance_2(&self, p: &[f64; 2]) -> f64 {
        let (dx, dy) = (self.en[0] - p[0], self.en[1] - p[1]);
        dx * dx + dy * dy
    }
}

fn chord2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// East and north unit vectors at a reference point.
#[derive(Debug, Clone, Copy)]
struct Frame {
    east: [f64; 3],
    north: [f64; 3],
}

impl Frame {
    fn at(p: LonLat) -> Self {
        let (lon, lat) = (p.lon().to_radians(), p.lat().to_radians());
        Self { east: [-lon.sin(), lon.cos(), 0.0], north: [-lat.sin() * lon.cos(), -lat.sin() * lon.sin(), lat.cos()] }
    }

    fn project(&self, v: &[f64; 3]) -> [f64; 2] {
        let dot = |a: &[f64; 3]| a[0] * v[0] + a[1] * v[1] + a[2] * v[2];
        [dot(&self.east), dot(&self.north)]
    }

    fn entry(&self, p: LonLat, id: u64, tag: u32) -> Entry {
        let xyz = unit_vector(p);
        Entry { en: self.project(&xyz), xyz, id, tag }
    }
}

/// The point whose unit vector is the normalised mean of the points' (the centre of a city's
/// points); (0, 0) for none.
fn centre(points: impl Iterator<Item = LonLat>) -> LonLat {
    let mut sum = [0.0; 3];
    for p in points {
        let v = unit_vector(p);
        for i in 0..3 {
            sum[i] += v[i];
        }
    }
    let norm = (sum[0] * sum[0] + sum[1] * sum[1] + sum[2] * sum[2]).sqrt();
    if norm < 1e-12 {
        return LonLat::clamped(0.0, 0.0);
    }
    LonLat::clamped(sum[1].atan2(sum[0]).to_degrees(), (sum[2] / norm).asin().to_degrees())
}

fn unit_vector(p: LonLat) -> [f64; 3] {
    let (sin_lon, cos_lon) = p.lon().to_radians().sin_cos();
    let (sin_lat, cos_lat) = p.lat().to_radians().sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

/// The position of a unit vector (the inverse of the index's own projection, to rounding).
///
/// # Examples
/// ```
/// use safegrid_geodata::{BBox, LonLat, PointIndex, point_index::unit_to_lonlat};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let futian = LonLat::new(114.0579, 22.5431)?;
/// let index = PointIndex::bulk_load([(7, futian, 0)]);
/// let all = BBox::new(LonLat::new(113.7, 22.4)?, LonLat::new(114.6, 22.9)?).ok_or("empty box")?;
/// let mut found = Vec::new();
/// index.for_each_in_bbox(all, |id, _, xyz| found.push((id, unit_to_lonlat(xyz))));
/// let [(7, (lon, lat))] = found[..] else { return Err("expected point 7".into()) };
/// assert!((lon - 114.0579).abs() < 1e-12 && (lat - 22.5431).abs() < 1e-12);
/// // The north pole's unit vector:
/// assert_eq!(unit_to_lonlat(&[0.0, 0.0, 1.0]).1, 90.0);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn unit_to_lonlat(v: &[f64; 3]) -> (f64, f64) {
    (v[1].atan2(v[0]).to_degrees(), v[2].clamp(-1.0, 1.0).asin().to_degrees())
}

fn chord_to_metres(chord: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (chord / 2.0).min(1.0).asin()
}

fn metres_to_chord(m: f64) -> f64 {
    let angle = (m / EARTH_RADIUS_M).min(std::f64::consts::PI);
    2.0 * (angle / 2.0).sin()
}

/// Fan-out of the dynamic tree: rstar's default of 6. Measured here when this tree held every point (k = 5 of 100,000):
/// 1.66 µs at 6, 1.76 µs at 10; with the earlier 3-D tree, 2.8 µs at 6 and 3.9 µs at 16.
#[derive(Debug, Clone, Copy)]
struct Params;

impl RTreeParams for Params {
    const MIN_SIZE: usize = 3;
    const MAX_SIZE: usize = 6;
    const REINSERTION_COUNT: usize = 2;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// Children ordered on the stack: as many as a node holds.
const MAX_CHILDREN: usize = Params::MAX_SIZE;

fn knn_visit(
    node: &ParentNode<Entry>,
    q: &Entry,
    k: usize,
    best: &mut Vec<(f64, u64, u32)>,
    filter: &mut impl FnMut(u64, u32) -> bool,
) {
    let children = node.children();
    let q2 = [q.en[0], q.en[1]];
    // Children are ordered on the stack; a node wider than rstar's defaults would spill to the heap.
    let mut on_stack = [(0.0_f64, 0_usize); MAX_CHILDREN];
    let mut spilled;
    let order: &mut [(f64, usize)] = if children.len() <= MAX_CHILDREN {
        &mut on_stack[..children.len()]
    } else {
        spilled = vec![(0.0, 0); children.len()];
        &mut spilled
    };
    for (i, child) in children.iter().enumerate() {
        // Leaves get their exact chord; subtrees the 2-D lower bound.
        let d2 = match child {
            RTreeNode::Leaf(e) => chord2(&e.xyz, &q.xyz),
            RTreeNode::Parent(p) => p.envelope().distance_2(&q2),
        };
        order[i] = (d2, i);
    }
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    for &(d2, i) in order.iter() {
        if best.len() == k && d2 >= best[k - 1].0 {
            break;
        }
        match &children[i] {
            RTreeNode::Leaf(e) => {
                if filter(e.id, e.tag) {
                    let at = best.partition_point(|b| b.0 <= d2);
                    best.insert(at, (d2, e.id, e.tag));
                    best.truncate(k);
                }
            }
            RTreeNode::Parent(p) => knn_visit(p, q, k, best, filter),
        }
    }
}

/// A longitude/latitude box, west-south to east-north (no antimeridian wrap).
///
/// # Examples
/// ```
/// use safegrid_geodata::{BBox, LonLat};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Roughly Futian district.
/// let futian = BBox::new(LonLat::new(113.98, 22.50)?, LonLat::new(114.10, 22.59)?).ok_or("empty box")?;
/// assert!(futian.contains(LonLat::new(114.0579, 22.5431)?));
/// assert!(!futian.contains(LonLat::new(113.7518, 23.0205)?)); // Dongguan
/// assert_eq!(futian.min.lon(), 113.98);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// South-west corner.
    pub min: LonLat,
    /// North-east corner.
    pub max: LonLat,
}

impl BBox {
    /// A box from its corners; `None` when min exceeds max on either axis.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::{BBox, LonLat};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (sw, ne) = (LonLat::new(113.98, 22.50)?, LonLat::new(114.10, 22.59)?);
    /// assert!(BBox::new(sw, ne).is_some());
    /// assert_eq!(BBox::new(ne, sw), None); // corners swapped
    /// assert!(BBox::new(sw, sw).is_some()); // a single point is a box
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn new(min: LonLat, max: LonLat) -> Option<Self> {
        (min.lon() <= max.lon() && min.lat() <= max.lat()).then_some(Self { min, max })
    }

    /// Whether the box contains the point (edges included).
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::{BBox, LonLat};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (sw, ne) = (LonLat::new(113.98, 22.50)?, LonLat::new(114.10, 22.59)?);
    /// let futian = BBox::new(sw, ne).ok_or("empty box")?;
    /// assert!(futian.contains(LonLat::new(114.0579, 22.5431)?));
    /// assert!(futian.contains(ne)); // on a corner
    /// assert!(!futian.contains(LonLat::new(114.1170, 22.5320)?)); // Luohu, east of the box
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn contains(&self, p: LonLat) -> bool {
        (self.min.lon()..=self.max.lon()).contains(&p.lon()) && (self.min.lat()..=self.max.lat()).contains(&p.lat())
    }

    /// A 2-D envelope in `frame` holding the box's image: the exact 3-D envelope of the image
    /// (below), projected — a linear map takes its extremes over a box at the box's corners.
    fn frame_envelope(&self, frame: &Frame) -> AABB<[f64; 2]> {
        let b = self.unit_envelope();
        let (lo, hi) = (b.lower(), b.upper());
        let mut min = [f64::MAX; 2];
        let mut max = [f64::MIN; 2];
        for corner in 0..8 {
            let c = [
                if corner & 1 == 0 { lo[0] } else { hi[0] },
                if corner & 2 == 0 { lo[1] } else { hi[1] },
                if corner & 4 == 0 { lo[2] } else { hi[2] },
            ];
            let p = frame.project(&c);
            for i in 0..2 {
                min[i] = min[i].min(p[i]);
                max[i] = max[i].max(p[i]);
            }
        }
        AABB::from_corners(min, max)
    }

    /// The exact 3-D envelope of the box's image on the unit sphere: each coordinate is a
    /// product of a function of latitude and one of longitude, so its extremes are products of
    /// the factors' extremes.
    fn unit_envelope(&self) -> AABB<[f64; 3]> {
        let (lat0, lat1) = (self.min.lat().to_radians(), self.max.lat().to_radians());
        let (lon0, lon1) = (self.min.lon().to_radians(), self.max.lon().to_radians());
        let cos_lat = {
            let (a, b) = (lat0.cos(), lat1.cos());
            let hi = if lat0 <= 0.0 && lat1 >= 0.0 { 1.0 } else { a.max(b) };
            (a.min(b), hi)
        };
        let range_of = |f: fn(f64) -> f64, peaks: &[(f64, f64)]| {
            let (mut lo, mut hi) = (f(lon0).min(f(lon1)), f(lon0).max(f(lon1)));
            for &(at, v) in peaks {
                if (lon0..=lon1).contains(&at) {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            (lo, hi)
        };
        use std::f64::consts::{FRAC_PI_2, PI};
        let cos_lon = range_of(f64::cos, &[(0.0, 1.0), (PI, -1.0), (-PI, -1.0)]);
        let sin_lon = range_of(f64::sin, &[(FRAC_PI_2, 1.0), (-FRAC_PI_2, -1.0)]);
        let product = |(a0, a1): (f64, f64), (b0, b1): (f64, f64)| {
            let c = [a0 * b0, a0 * b1, a1 * b0, a1 * b1];
            (c.iter().copied().fold(f64::MAX, f64::min), c.iter().copied().fold(f64::MIN, f64::max))
        };
        let (x0, x1) = product(cos_lat, cos_lon);
        let (y0, y1) = product(cos_lat, sin_lon);
        // A small margin absorbs rounding in the trigonometry; candidates are re-checked exactly.
        let eps = 1e-12;
        AABB::from_corners([x0 - eps, y0 - eps, lat0.sin() - eps], [x1 + eps, y1 + eps, lat1.sin() + eps])
    }
}

/// A lon/lat box as tests on unit vectors, so that a box query needs no lookup of each
/// candidate's stored coordinates: latitude bounds are bounds on z = sin(lat), and the longitude
/// range is the wedge between two meridian half-planes. A point within rounding of an edge is
/// left undecided, and the caller checks it exactly.
struct UnitBox {
    z: (f64, f64),
    /// Unit directions of the west and east meridians in the equatorial plane.
    west: [f64; 2],
    east: [f64; 2],
    /// The range spans more than 180° (the wedge test inverts), or all 360°.
    wide: bool,
    all_lon: bool,
}

impl UnitBox {
    /// Closer than this to an edge (in unit-vector terms, ~6 µm on the ground): undecided.
    const EDGE: f64 = 1e-12;

    fn new(b: &BBox) -> Self {
        let dir = |lon: f64| {
            let (s, c) = lon.to_radians().sin_cos();
            [c, s]
        };
        let span = b.max.lon() - b.min.lon();
        Self {
            z: (b.min.lat().to_radians().sin(), b.max.lat().to_radians().sin()),
            west: dir(b.min.lon()),
            east: dir(b.max.lon()),
            wide: span > 180.0,
            all_lon: span >= 360.0,
        }
    }

    /// `Some(inside)` when clear, `None` within rounding of an edge.
    fn classify(&self, p: &[f64; 3]) -> Option<bool> {
        let (lo, hi) = (p[2] - self.z.0, self.z.1 - p[2]);
        if lo.abs() < Self::EDGE || hi.abs() < Self::EDGE {
            return None;
        }
        if lo < 0.0 || hi < 0.0 {
            return Some(false);
        }
        if self.all_lon {
            return Some(true);
        }
        // Left of the west meridian's direction and right of the east one's (counter-clockwise
        // seen from the north pole is eastward).
        let after_west = self.west[0] * p[1] - self.west[1] * p[0];
        let before_east = p[0] * self.east[1] - p[1] * self.east[0];
        if after_west.abs() < Self::EDGE || before_east.abs() < Self::EDGE {
            return None;
        }
        let (a, b) = (after_west > 0.0, before_east > 0.0);
        Some(if self.wide { a || b } else { a && b })
    }
}

/// A point found by a query, with its distance from the query point where one applies.
///
/// # Examples
/// ```
/// use safegrid_geodata::{Hit, LonLat, PointIndex, haversine_m};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let post = LonLat::new(114.0560, 22.5540)?;
/// let index = PointIndex::bulk_load([(42, post, 3)]);
/// let incident = LonLat::new(114.0579, 22.5431)?;
/// let [Hit { id, tag, distance_m }] = index.nearest(incident, 1, |_, _| true)[..] else {
///     return Err("expected one hit".into());
/// };
/// assert_eq!((id, tag), (42, 3));
/// assert!((distance_m - haversine_m(incident, post)).abs() < 1e-3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The point's id.
    pub id: u64,
    /// The point's tag.
    pub tag: u32,
    /// Great-circle distance from the query point, metres (0 for box queries).
    pub distance_m: f64,
}

/// Where an id's point lives.
#[derive(Debug, Clone, Copy)]
struct Place {
    p: LonLat,
    /// Its slot in the bucket grid, or [`IN_DELTA`].
    slot: u32,
}

const IN_DELTA: u32 = u32::MAX;

/// The dynamic side is folded into a new bucket grid once it holds more than this many points,
/// or more than [`DELTA_SHARE`] of the grid's, whichever is larger. A rebuild re-buckets every
/// point without trigonometry (a move among 100,000 points costs 4.6–8.3 µs with its share of
/// the rebuilds, BENCHMARKS.md); a large dynamic tree slows every query
/// (5 nearest of 100,000 clustered points: 0.65 µs with none, 2 µs with 10,000 points in it).
const DELTA_MIN: usize = if cfg!(test) { 8 } else { 1_024 };
/// See [`DELTA_MIN`].
const DELTA_SHARE: usize = 64;

/// The point index. Ids are the caller's; one position per id.
///
/// # Examples
/// ```
/// use safegrid_geodata::{LonLat, PointIndex};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// const FREE: u32 = 0;
/// const BUSY: u32 = 1;
/// // Patrol units: bulk-loaded at start, then moved as their positions arrive.
/// let mut units = PointIndex::bulk_load([
///     (1, LonLat::new(114.0579, 22.5431)?, FREE), // 市民中心
///     (2, LonLat::new(114.0560, 22.5540)?, BUSY), // 莲花山
///     (3, LonLat::new(114.1170, 22.5320)?, FREE), // 罗湖站
/// ]);
/// units.upsert(3, LonLat::new(114.0595, 22.5445)?, FREE); // unit 3 drove west
/// let incident = LonLat::new(114.0590, 22.5440)?;
/// let free: Vec<u64> = units.nearest(incident, 2, |_, tag| tag == FREE).iter().map(|h| h.id).collect();
/// assert_eq!(free, [3, 1]);
/// assert_eq!(units.within_radius(incident, 500.0).len(), 2);
/// # Ok(())
/// # }
/// ```
///
/// Two parts: a static grid of buckets ([`buckets::Buckets`]) that holds what was bulk-loaded
/// or last rebuilt, and a small rstar tree for points inserted or moved since. Queries search
/// both; writes go to the small tree (and clear the grid slot of a moved or removed point), and
/// the two are rebuilt into one grid when the small one grows (see [`DELTA_MIN`]).
#[derive(Debug, Clone)]
pub struct PointIndex {
    grid: buckets::Buckets,
    delta: RTree<Entry, Params>,
    by_id: HashMap<u64, Place>,
    /// Fixed while the index holds points; chosen at the data's centre by a bulk load or a
    /// rebuild, or at the first point inserted into an empty index.
    frame: Frame,
}

impl Default for PointIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl PointIndex {
    /// An empty index.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::{LonLat, PointIndex};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut index = PointIndex::new();
    /// assert!(index.is_empty());
    /// assert!(index.nearest(LonLat::new(114.0579, 22.5431)?, 5, |_, _| true).is_empty());
    /// index.upsert(1, LonLat::new(114.0579, 22.5431)?, 0);
    /// assert_eq!(index.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            grid: buckets::Buckets::default(),
            delta: RTree::new_with_params(),
            by_id: HashMap::new(),
            frame: Frame::at(LonLat::clamped(0.0, 0.0)),
        }
    }

    /// Builds an index in one pass (much faster than repeated inserts). Later duplicates of an
    /// id replace earlier ones.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::{LonLat, PointIndex};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let first = LonLat::new(114.0579, 22.5431)?;
    /// let later = LonLat::new(114.0560, 22.5540)?;
    /// let index = PointIndex::bulk_load([(1, first, 0), (2, first, 0), (1, later, 0)]);
    /// assert_eq!(index.len(), 2);
    /// assert_eq!(index.get(1), Some(later));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn bulk_load(points: impl IntoIterator<Item = (u64, LonLat, u32)>) -> Self {
        let mut latest: HashMap<u64, (LonLat, u32)> = HashMap::new();
        for (id, p, tag) in points {
            latest.insert(id, (p, tag));
        }
        Self::gridded_from(&latest.into_iter().map(|(id, (p, tag))| (id, p, tag)).collect::<Vec<_>>())
    }

    /// Buckets distinct points into a fresh index with its frame at their centre.
    fn gridded_from(points: &[(u64, LonLat, u32)]) -> Self {
        let frame = Frame::at(centre(points.iter().map(|v| v.1)));
        let entries: Vec<Entry> = points.iter().map(|&(id, p, tag)| frame.entry(p, id, tag)).collect();
        let (grid, slots) = buckets::Buckets::build(&entries);
        let by_id = points.iter().zip(slots).map(|(&(id, p, _), slot)| (id, Place { p, slot })).collect();
        Self { grid, delta: RTree::new_with_params(), by_id, frame }
    }

    /// Number of points.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{BBox, Hit, LonLat, PointIndex, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # const FREE: u32 = 0;
    /// # const BUSY: u32 = 1;
    /// # let civic_centre = LonLat::new(114.0579, 22.5431)?; // 市民中心, Futian
    /// # let lianhuashan = LonLat::new(114.0560, 22.5540)?; // 莲花山, 1.2 km north
    /// # let luohu = LonLat::new(114.1170, 22.5320)?; // 罗湖站, 6.2 km east
    /// # let dongguan = LonLat::new(113.7518, 23.0205)?; // 东莞, 60 km north-west
    /// # let units = PointIndex::bulk_load([
    /// #     (1, civic_centre, FREE), (2, lianhuashan, BUSY), (3, luohu, FREE), (4, dongguan, FREE)]);
    /// assert_eq!(units.len(), 4);
    /// let mut units = units;
    /// units.remove(4);
    /// assert_eq!(units.len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the index is empty.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::{LonLat, PointIndex};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut index = PointIndex::bulk_load([(1, LonLat::new(114.0579, 22.5431)?, 0)]);
    /// assert!(!index.is_empty());
    /// index.remove(1);
    /// assert!(index.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Position of an id.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{BBox, Hit, LonLat, PointIndex, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # const FREE: u32 = 0;
    /// # const BUSY: u32 = 1;
    /// # let civic_centre = LonLat::new(114.0579, 22.5431)?; // 市民中心, Futian
    /// # let lianhuashan = LonLat::new(114.0560, 22.5540)?; // 莲花山, 1.2 km north
    /// # let luohu = LonLat::new(114.1170, 22.5320)?; // 罗湖站, 6.2 km east
    /// # let dongguan = LonLat::new(113.7518, 23.0205)?; // 东莞, 60 km north-west
    /// # let units = PointIndex::bulk_load([
    /// #     (1, civic_centre, FREE), (2, lianhuashan, BUSY), (3, luohu, FREE), (4, dongguan, FREE)]);
    /// assert_eq!(units.get(3), Some(luohu));
    /// assert_eq!(units.get(99), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn get(&self, id: u64) -> Option<LonLat> {
        self.by_id.get(&id).map(|place| place.p)
    }

    /// Inserts a point, or moves it (and replaces its tag) if the id is present. Returns the
    /// previous position.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{BBox, Hit, LonLat, PointIndex, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # const FREE: u32 = 0;
    /// # const BUSY: u32 = 1;
    /// # let civic_centre = LonLat::new(114.0579, 22.5431)?; // 市民中心, Futian
    /// # let lianhuashan = LonLat::new(114.0560, 22.5540)?; // 莲花山, 1.2 km north
    /// # let luohu = LonLat::new(114.1170, 22.5320)?; // 罗湖站, 6.2 km east
    /// # let dongguan = LonLat::new(113.7518, 23.0205)?; // 东莞, 60 km north-west
    /// # let units = PointIndex::bulk_load([
    /// #     (1, civic_centre, FREE), (2, lianhuashan, BUSY), (3, luohu, FREE), (4, dongguan, FREE)]);
    /// let mut units = units;
    /// // Unit 2 finishes its job and moves; it was at Lianhuashan.
    /// assert_eq!(units.upsert(2, civic_centre, FREE), Some(lianhuashan));
    /// // A new unit comes on duty.
    /// assert_eq!(units.upsert(5, luohu, FREE), None);
    /// assert_eq!(units.len(), 5);
    /// assert_eq!(units.within_radius(civic_centre, 1.0).len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn upsert(&mut self, id: u64, p: LonLat, tag: u32) -> Option<LonLat> {
        let old = self.remove(id);
        if self.by_id.is_empty() {
            // Nothing to stay consistent with: centre the frame on the first point.
            *self = Self::new();
            self.frame = Frame::at(p);
        }
        self.delta.insert(self.frame.entry(p, id, tag));
        self.by_id.insert(id, Place { p, slot: IN_DELTA });
        if self.delta.size() > DELTA_MIN.max(self.grid.live() / DELTA_SHARE) {
            self.rebuild();
        }
        old
    }

    /// Removes a point; returns its position if it was present.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{BBox, Hit, LonLat, PointIndex, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # const FREE: u32 = 0;
    /// # const BUSY: u32 = 1;
    /// # let civic_centre = LonLat::new(114.0579, 22.5431)?; // 市民中心, Futian
    /// # let lianhuashan = LonLat::new(114.0560, 22.5540)?; // 莲花山, 1.2 km north
    /// # let luohu = LonLat::new(114.1170, 22.5320)?; // 罗湖站, 6.2 km east
    /// # let dongguan = LonLat::new(113.7518, 23.0205)?; // 东莞, 60 km north-west
    /// # let units = PointIndex::bulk_load([
    /// #     (1, civic_centre, FREE), (2, lianhuashan, BUSY), (3, luohu, FREE), (4, dongguan, FREE)]);
    /// let mut units = units;
    /// assert_eq!(units.remove(4), Some(dongguan));
    /// assert_eq!(units.remove(4), None);
    /// assert_eq!(units.get(4), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove(&mut self, id: u64) -> Option<LonLat> {
        let place = self.by_id.remove(&id)?;
        if place.slot == IN_DELTA {
            // The entry is rebuilt bit-for-bit from the stored position, so equality finds it.
            self.delta.remove(&self.frame.entry(place.p, id, 0));
        } else {
            self.grid.kill(place.slot);
            // Dead slots cost memory and query time; rebuild once they outnumber the live ones.
            if self.grid.dead() > DELTA_MIN.max(self.grid.live()) {
                self.rebuild();
            }
        }
        Some(place.p)
    }

    /// Folds the dynamic side and the grid's live slots into a new grid, in the same frame
    /// (so no trigonometry is redone).
    fn rebuild(&mut self) {
        let frame = self.frame;
        let entries: Vec<Entry> = self
            .grid
            .live_slots()
            .map(|s| Entry { en: frame.project(&s.xyz), xyz: s.xyz, id: s.id, tag: s.tag })
            .chain(self.delta.iter().copied())
            .collect();
        let ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
        let (grid, slots) = buckets::Buckets::build(&entries);
        for (id, slot) in ids.into_iter().zip(slots) {
            if let Some(place) = self.by_id.get_mut(&id) {
                place.slot = slot;
            }
        }
        self.grid = grid;
        self.delta = RTree::new_with_params();
    }

    /// The `k` nearest points that pass `filter(id, tag)`, nearest first.
    ///
    /// First a ring search of the bucket grid, then a depth-first branch-and-bound over the
    /// dynamic tree with the same running answer (children nearest first, a subtree skipped once
    /// it cannot beat the current k-th best). It allocates nothing but the answer,
    /// and calls `filter` only for points close enough to enter it.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{BBox, Hit, LonLat, PointIndex, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # const FREE: u32 = 0;
    /// # const BUSY: u32 = 1;
    /// # let civic_centre = LonLat::new(114.0579, 22.5431)?; // 市民中心, Futian
    /// # let lianhuashan = LonLat::new(114.0560, 22.5540)?; // 莲花山, 1.2 km north
    /// # let luohu = LonLat::new(114.1170, 22.5320)?; // 罗湖站, 6.2 km east
    /// # let dongguan = LonLat::new(113.7518, 23.0205)?; // 东莞, 60 km north-west
    /// # let units = PointIndex::bulk_load([
    /// #     (1, civic_centre, FREE), (2, lianhuashan, BUSY), (3, luohu, FREE), (4, dongguan, FREE)]);
    /// let incident = LonLat::new(114.0570, 22.5450)?;
    /// let nearest = units.nearest(incident, 2, |_, _| true);
    /// let ids: Vec<u64> = nearest.iter().map(|h| h.id).collect();
    /// assert_eq!(ids, [1, 2]);
    /// assert!((nearest[0].distance_m - haversine_m(incident, civic_centre)).abs() < 1e-3);
    /// // Only free units: the busy one at Lianhuashan is skipped.
    /// let free: Vec<u64> = units.nearest(incident, 2, |_, tag| tag == FREE).iter().map(|h| h.id).collect();
    /// assert_eq!(free, [1, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn nearest(&self, p: LonLat, k: usize, mut filter: impl FnMut(u64, u32) -> bool) -> Vec<Hit> {
        if k == 0 {
            return Vec::new();
        }
        let q = self.frame.entry(p, 0, 0);
        let mut best: Vec<(f64, u64, u32)> = Vec::with_capacity(k + 1);
        self.grid.nearest(&q, k, &mut best, &mut filter);
        if self.delta.size() > 0 {
            knn_visit(self.delta.root(), &q, k, &mut best, &mut filter);
        }
        best.into_iter().map(|(d2, id, tag)| Hit { id, tag, distance_m: chord_to_metres(d2.sqrt()) }).collect()
    }

    /// Every point within `radius_m` metres (great-circle) of `p`, nearest first.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{BBox, Hit, LonLat, PointIndex, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # const FREE: u32 = 0;
    /// # const BUSY: u32 = 1;
    /// # let civic_centre = LonLat::new(114.0579, 22.5431)?; // 市民中心, Futian
    /// # let lianhuashan = LonLat::new(114.0560, 22.5540)?; // 莲花山, 1.2 km north
    /// # let luohu = LonLat::new(114.1170, 22.5320)?; // 罗湖站, 6.2 km east
    /// # let dongguan = LonLat::new(113.7518, 23.0205)?; // 东莞, 60 km north-west
    /// # let units = PointIndex::bulk_load([
    /// #     (1, civic_centre, FREE), (2, lianhuashan, BUSY), (3, luohu, FREE), (4, dongguan, FREE)]);
    /// let within: Vec<u64> = units.within_radius(civic_centre, 2_000.0).iter().map(|h| h.id).collect();
    /// assert_eq!(within, [1, 2]); // Luohu is 6.2 km away
    /// let hits = units.within_radius(civic_centre, 10_000.0);
    /// assert_eq!(hits.len(), 3);
    /// assert!(hits.iter().all(|h| h.distance_m <= 10_000.0));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn within_radius(&self, p: LonLat, radius_m: f64) -> Vec<Hit> {
        let q = self.frame.entry(p, 0, 0);
        let c = metres_to_chord(radius_m.max(0.0));
        let hit = |id, tag, xyz: &[f64; 3]| Hit { id, tag, distance_m: chord_to_metres(chord2(xyz, &q.xyz).sqrt()) };
        // Both searches return supersets (their distance is a lower bound); the chord decides.
        let mut out: Vec<Hit> = Vec::new();
        let env = AABB::from_corners([q.en[0] - c, q.en[1] - c], [q.en[0] + c, q.en[1] + c]);
        self.grid.candidates_in(&env, &mut |s| out.push(hit(s.id, s.tag, &s.xyz)));
        out.extend(self.delta.locate_within_distance(q.en, c * c).map(|e| hit(e.id, e.tag, &e.xyz)));
        out.retain(|h| h.distance_m <= radius_m);
        out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id)));
        out
    }

    /// Every point inside a lon/lat box (edges included), in no particular order.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{BBox, Hit, LonLat, PointIndex, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # const FREE: u32 = 0;
    /// # const BUSY: u32 = 1;
    /// # let civic_centre = LonLat::new(114.0579, 22.5431)?; // 市民中心, Futian
    /// # let lianhuashan = LonLat::new(114.0560, 22.5540)?; // 莲花山, 1.2 km north
    /// # let luohu = LonLat::new(114.1170, 22.5320)?; // 罗湖站, 6.2 km east
    /// # let dongguan = LonLat::new(113.7518, 23.0205)?; // 东莞, 60 km north-west
    /// # let units = PointIndex::bulk_load([
    /// #     (1, civic_centre, FREE), (2, lianhuashan, BUSY), (3, luohu, FREE), (4, dongguan, FREE)]);
    /// let futian = BBox::new(LonLat::new(113.98, 22.50)?, LonLat::new(114.10, 22.59)?).ok_or("empty box")?;
    /// let mut ids: Vec<u64> = units.in_bbox(futian).iter().map(|h| h.id).collect();
    /// ids.sort_unstable();
    /// assert_eq!(ids, [1, 2]);
    /// // The box's edges count as inside.
    /// let just_luohu = BBox::new(luohu, luohu).ok_or("empty box")?;
    /// assert_eq!(units.in_bbox(just_luohu), [Hit { id: 3, tag: FREE, distance_m: 0.0 }]);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn in_bbox(&self, b: BBox) -> Vec<Hit> {
        let mut out = Vec::new();
        self.for_each_in_bbox(b, |id, tag, _| out.push(Hit { id, tag, distance_m: 0.0 }));
        out
    }

    /// Calls `f(id, tag, unit vector)` for every point inside a lon/lat box (edges included), in
    /// no particular order; [`unit_to_lonlat`] turns the vector back into a position. Most
    /// candidates are decided on their unit vector alone (see `UnitBox`), without a lookup.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{BBox, Hit, LonLat, PointIndex, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # const FREE: u32 = 0;
    /// # const BUSY: u32 = 1;
    /// # let civic_centre = LonLat::new(114.0579, 22.5431)?; // 市民中心, Futian
    /// # let lianhuashan = LonLat::new(114.0560, 22.5540)?; // 莲花山, 1.2 km north
    /// # let luohu = LonLat::new(114.1170, 22.5320)?; // 罗湖站, 6.2 km east
    /// # let dongguan = LonLat::new(113.7518, 23.0205)?; // 东莞, 60 km north-west
    /// # let units = PointIndex::bulk_load([
    /// #     (1, civic_centre, FREE), (2, lianhuashan, BUSY), (3, luohu, FREE), (4, dongguan, FREE)]);
    /// // Free units per box, without collecting the hits first.
    /// let shenzhen = BBox::new(LonLat::new(113.75, 22.40)?, LonLat::new(114.65, 22.87)?).ok_or("empty box")?;
    /// let mut free = 0;
    /// units.for_each_in_bbox(shenzhen, |_, tag, _| free += usize::from(tag == FREE));
    /// assert_eq!(free, 2); // Dongguan lies outside
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_each_in_bbox(&self, b: BBox, mut f: impl FnMut(u64, u32, &[f64; 3])) {
        let env = b.frame_envelope(&self.frame);
        let unit = UnitBox::new(&b);
        let inside = |id: u64, xyz: &[f64; 3]| match unit.classify(xyz) {
            Some(v) => v,
            None => self.by_id.get(&id).is_some_and(|place| b.contains(place.p)),
        };
        self.grid.candidates_in(&env, &mut |s| {
            if inside(s.id, &s.xyz) {
                f(s.id, s.tag, &s.xyz);
            }
        });
        for e in self.delta.locate_in_envelope_intersecting(&env) {
            if inside(e.id, &e.xyz) {
                f(e.id, e.tag, &e.xyz);
            }
        }
    }

    /// Approximate heap bytes held by the index (both trees and the id map), for the
    /// memory-per-point figure.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::{LonLat, PointIndex};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let points = (0..1_000_u32).map(|i| {
    ///     let p = LonLat::new(114.0 + f64::from(i % 40) * 0.001, 22.5 + f64::from(i / 40) * 0.001);
    ///     p.map(|p| (u64::from(i), p, 0))
    /// });
    /// let index = PointIndex::bulk_load(points.collect::<Result<Vec<_>, _>>()?);
    /// let per_point = index.heap_bytes() / index.len();
    /// assert!((16..1_000).contains(&per_point), "{per_point}");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        // rstar stores each leaf as an `RTreeNode<Entry>` enum sized for its largest variant
        // (a parent node), plus roughly one parent per (max children × fill) leaves.
        let node = std::mem::size_of::<RTreeNode<Entry>>();
        let delta = self.delta.size() * node * 8 / 7;
        let map = self.by_id.capacity() * (std::mem::size_of::<(u64, Place)>() + 1);
        self.grid.heap_bytes() + delta + map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haversine_m;
    use proptest::prelude::*;

    fn pts() -> impl Strategy<Value = Vec<(f64, f64, u32)>> {
        prop::collection::vec((113.7f64..114.6, 22.4f64..22.9, 0u32..4), 0..300)
    }

    fn index(points: &[(f64, f64, u32)]) -> PointIndex {
        PointIndex::bulk_load(
            points.iter().enumerate().map(|(i, &(x, y, t))| (i as u64, LonLat::new(x, y).unwrap(), t)),
        )
    }

    proptest! {
        /// The unit-vector box test agrees with the lon/lat one wherever it decides, anywhere
        /// on Earth, for narrow and wide boxes, and for points exactly on an edge.
        #[test]
        fn the_unit_box_test_agrees_with_lon_lat_containment(
            w in -180.0f64..180.0, span in 0.0f64..360.0, s in -90.0f64..90.0, h in 0.0f64..180.0,
            pts in proptest::collection::vec((-180.0f64..180.0, -90.0f64..90.0, 0u8..4), 1..50),
        ) {
            let e = (w + span).min(180.0);
            let n = (s + h).min(90.0);
            let b = BBox::new(LonLat::new(w, s).unwrap(), LonLat::new(e, n).unwrap()).unwrap();
            let unit = UnitBox::new(&b);
            for (lon, lat, edge) in pts {
                // Some points sit exactly on an edge.
                let (lon, lat) = match edge { 1 => (w, lat), 2 => (lon, n), 3 => (e, s), _ => (lon, lat) };
                let p = LonLat::new(lon, lat).unwrap();
                if let Some(inside) = unit.classify(&unit_vector(p)) {
                    prop_assert_eq!(inside, b.contains(p), "{:?} in {:?}", p, b);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn nearest_with_filter_equals_a_linear_scan(points in pts(), qx in 113.7f64..114.6, qy in 22.4f64..22.9, k in 0usize..8) {
            let idx = index(&points);
            let q = LonLat::new(qx, qy).unwrap();
            let got: Vec<f64> = idx.nearest(q, k, |_, tag| tag != 3).iter().map(|h| h.distance_m).collect();
            let mut all: Vec<f64> = points.iter().filter(|p| p.2 != 3)
                .map(|&(x, y, _)| haversine_m(q, LonLat::new(x, y).unwrap())).collect();
            all.sort_by(f64::total_cmp);
            all.truncate(k);
            prop_assert_eq!(got.len(), all.len());
            for (a, b) in got.iter().zip(&all) {
                prop_assert!((a - b).abs() < 1e-3, "{} vs {}", a, b);
            }
        }

        #[test]
        fn radius_equals_a_linear_scan(points in pts(), qx in 113.7f64..114.6, qy in 22.4f64..22.9, r in 0.0f64..20_000.0) {
            let idx = index(&points);
            let q = LonLat::new(qx, qy).unwrap();
            let mut got: Vec<u64> = idx.within_radius(q, r).iter().map(|h| h.id).collect();
            got.sort_unstable();
            let want: Vec<u64> = points.iter().enumerate()
                .filter(|(_, p)| haversine_m(q, LonLat::new(p.0, p.1).unwrap()) <= r - 1e-6)
                .map(|(i, _)| i as u64).collect();
            // Points within a micrometre of the circle may fall either way by rounding.
            for id in &want { prop_assert!(got.contains(id)); }
            for id in &got {
                let p = points[*id as usize];
                prop_assert!(haversine_m(q, LonLat::new(p.0, p.1).unwrap()) <= r + 1e-6);
            }
        }

        #[test]
        fn bbox_equals_a_linear_scan(points in pts(), x0 in 113.7f64..114.6, y0 in 22.4f64..22.9, w in 0.0f64..0.5, h in 0.0f64..0.3) {
            let idx = index(&points);
            let b = BBox::new(LonLat::new(x0, y0).unwrap(), LonLat::new((x0 + w).min(180.0), (y0 + h).min(90.0)).unwrap()).unwrap();
            let mut got: Vec<u64> = idx.in_bbox(b).iter().map(|h| h.id).collect();
            got.sort_unstable();
            let want: Vec<u64> = points.iter().enumerate()
                .filter(|(_, p)| b.contains(LonLat::new(p.0, p.1).unwrap())).map(|(i, _)| i as u64).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn moves_and_removes_keep_the_index_equal_to_its_contents(ops in prop::collection::vec((0u64..40, 113.7f64..114.6, 22.4f64..22.9, any::<bool>()), 0..200)) {
            let mut idx = PointIndex::new();
            let mut model: HashMap<u64, LonLat> = HashMap::new();
            for (id, x, y, remove) in ops {
                if remove {
                    prop_assert_eq!(idx.remove(id), model.remove(&id));
                } else {
                    let p = LonLat::new(x, y).unwrap();
                    idx.upsert(id, p, 0);
                    model.insert(id, p);
                }
            }
            prop_assert_eq!(idx.len(), model.len());
            let all = BBox::new(LonLat::new(-180.0, -90.0).unwrap(), LonLat::new(180.0, 90.0).unwrap()).unwrap();
            let mut got: Vec<u64> = idx.in_bbox(all).iter().map(|h| h.id).collect();
            got.sort_unstable();
            let mut want: Vec<u64> = model.keys().copied().collect();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }
    }

    proptest! {
        /// Writes after a bulk load land on the dynamic side, clear grid slots and trigger
        /// rebuilds (every 8 writes under test); queries must still equal a scan of the model.
        #[test]
        fn writes_after_a_bulk_load_keep_every_query_exact(
            start in pts(),
            ops in prop::collection::vec((0u64..400, 113.7f64..114.6, 22.4f64..22.9, 0u32..4, any::<bool>()), 0..200),
            qx in 113.7f64..114.6, qy in 22.4f64..22.9, k in 1usize..8, r in 0.0f64..20_000.0,
        ) {
            let mut idx = index(&start);
            let mut model: HashMap<u64, (LonLat, u32)> = start.iter().enumerate()
                .map(|(i, &(x, y, t))| (i as u64, (LonLat::new(x, y).unwrap(), t))).collect();
            for (id, x, y, tag, remove) in ops {
                if remove {
                    prop_assert_eq!(idx.remove(id), model.remove(&id).map(|v| v.0));
                } else {
                    let p = LonLat::new(x, y).unwrap();
                    prop_assert_eq!(idx.upsert(id, p, tag), model.insert(id, (p, tag)).map(|v| v.0));
                }
            }
            prop_assert_eq!(idx.len(), model.len());
            let q = LonLat::new(qx, qy).unwrap();
            let got: Vec<(f64, u32)> = idx.nearest(q, k, |_, tag| tag != 3).iter().map(|h| (h.distance_m, h.tag)).collect();
            let mut all: Vec<f64> = model.values().filter(|v| v.1 != 3).map(|v| haversine_m(q, v.0)).collect();
            all.sort_by(f64::total_cmp);
            all.truncate(k);
            prop_assert_eq!(got.len(), all.len());
            for ((a, tag), b) in got.iter().zip(&all) {
                prop_assert!((a - b).abs() < 1e-3, "{} vs {}", a, b);
                prop_assert!(*tag != 3);
            }
            let within: Vec<u64> = idx.within_radius(q, r).iter().map(|h| h.id).collect();
            for (id, v) in &model {
                let d = haversine_m(q, v.0);
                if d <= r - 1e-6 { prop_assert!(within.contains(id)); }
                if within.contains(id) { prop_assert!(d <= r + 1e-6); }
            }
            let b = BBox::new(LonLat::new(qx - 0.1, qy - 0.1).unwrap(), LonLat::new(qx + 0.1, qy + 0.1).unwrap()).unwrap();
            let mut got: Vec<u64> = idx.in_bbox(b).iter().map(|h| h.id).collect();
            got.sort_unstable();
            let mut want: Vec<u64> = model.iter().filter(|(_, v)| b.contains(v.0)).map(|(id, _)| *id).collect();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }
    }

    proptest! {
        /// Far from the index's reference point the 2-D bound is loose, but answers stay exact:
        /// points and queries anywhere on Earth, including across the antimeridian.
        #[test]
        fn nearest_is_exact_anywhere_on_earth(
            points in prop::collection::vec((-180.0f64..180.0, -89.0f64..89.0), 1..200),
            qx in -180.0f64..180.0, qy in -89.0f64..89.0, k in 1usize..6, grown in any::<bool>(),
        ) {
            let idx = if grown {
                let mut i = PointIndex::new();
                for (n, &(x, y)) in points.iter().enumerate() {
                    i.upsert(n as u64, LonLat::new(x, y).unwrap(), 0);
                }
                i
            } else {
                PointIndex::bulk_load(points.iter().enumerate().map(|(n, &(x, y))| (n as u64, LonLat::new(x, y).unwrap(), 0)))
            };
            let q = LonLat::new(qx, qy).unwrap();
            let got: Vec<f64> = idx.nearest(q, k, |_, _| true).iter().map(|h| h.distance_m).collect();
            let mut all: Vec<f64> = points.iter().map(|&(x, y)| haversine_m(q, LonLat::new(x, y).unwrap())).collect();
            all.sort_by(f64::total_cmp);
            all.truncate(k);
            prop_assert_eq!(got.len(), all.len());
            for (a, b) in got.iter().zip(&all) {
                prop_assert!((a - b).abs() < 1e-3 * b.max(1.0), "{} vs {}", a, b);
            }
            let r = all.last().copied().unwrap_or(0.0) * 1.5;
            let mut within: Vec<u64> = idx.within_radius(q, r).iter().map(|h| h.id).collect();
            within.sort_unstable();
            let want: Vec<u64> = points.iter().enumerate()
                .filter(|(_, p)| haversine_m(q, LonLat::new(p.0, p.1).unwrap()) <= r * (1.0 - 1e-9))
                .map(|(i, _)| i as u64).collect();
            for id in &want { prop_assert!(within.contains(id)); }
        }
    }

    #[test]
    fn coincident_points_and_points_on_a_line_are_indexed() {
        let same = LonLat::new(114.05, 22.55).unwrap();
        let idx = PointIndex::bulk_load((0..1_000).map(|i| (i, same, 0)));
        assert_eq!(idx.nearest(same, 3, |_, _| true).len(), 3);
        let line =
            PointIndex::bulk_load((0..1_000).map(|i| (i, LonLat::new(114.0 + i as f64 * 1e-4, 22.55).unwrap(), 0)));
        let hits = line.nearest(LonLat::new(114.05, 22.56).unwrap(), 1, |_, _| true);
        assert_eq!(hits[0].id, 500);
    }

    #[test]
    fn boxes_across_the_equator_and_prime_meridian_work() {
        let idx = index(&[(0.0, 0.0, 0), (-1.0, -1.0, 0), (1.0, 1.0, 0), (2.0, 0.0, 0)]);
        let b = BBox::new(LonLat::new(-1.5, -1.5).unwrap(), LonLat::new(1.5, 1.5).unwrap()).unwrap();
        assert_eq!(idx.in_bbox(b).len(), 3);
    }
}
