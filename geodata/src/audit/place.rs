//! Which audited grid a point lies in, for counting households, incidents and patrol time.

use super::input::AuditFeature;
use crate::LonLat;
use crate::locate::{PointPosition, PreparedPolygon};
use geo::Coord;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

type Part = GeomWithData<Rectangle<[f64; 2]>, (usize, usize)>;

/// The grids' polygons prepared for point tests, behind an R-tree of their envelopes.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::place::GridPlaces;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// let places = GridPlaces::new(&grids);
/// assert_eq!(places.locate(LonLat::new(114.065, 22.545)?), Some(1));
/// assert_eq!(places.locate(LonLat::new(114.0605, 22.545)?), None); // in the gap between them
/// # Ok(())
/// # }
/// ```
pub struct GridPlaces {
    prepared: Vec<PreparedPolygon>,
    tree: RTree<Part>,
}

impl GridPlaces {
    /// Prepares the grids (indexes into `grids` are what [`Self::locate`] answers).
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::LonLat;
    /// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
    /// use safegrid_geodata::audit::place::GridPlaces;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
    ///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
    ///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
    ///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
    ///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
    /// ]}"#, &ReadOptions::default())?;
    /// // Only the second grid: answers are indexes into this slice.
    /// let places = GridPlaces::new(&[&layer.features[1]]);
    /// assert_eq!(places.locate(LonLat::new(114.065, 22.545)?), Some(0));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn new(grids: &[&AuditFeature]) -> Self {
        let mut prepared = Vec::new();
        let mut parts = Vec::new();
        for (gi, g) in grids.iter().enumerate() {
            for poly in g.geometry.iter().flat_map(|m| m.0.iter()) {
                let pp = PreparedPolygon::new(poly);
                let (lo, hi) = pp.envelope();
                parts.push(Part::new(Rectangle::from_corners([lo.x, lo.y], [hi.x, hi.y]), (gi, prepared.len())));
                prepared.push(pp);
            }
        }
        Self { prepared, tree: RTree::bulk_load(parts) }
    }

    /// The grid holding `p` (on a shared border, or where grids overlap: the first in the
    /// layer), or `None` outside every grid.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::LonLat;
    /// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
    /// use safegrid_geodata::audit::place::GridPlaces;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
    ///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
    ///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
    ///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
    ///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
    /// ]}"#, &ReadOptions::default())?;
    /// let grids: Vec<_> = layer.features.iter().collect();
    /// let places = GridPlaces::new(&grids);
    /// assert_eq!(places.locate(LonLat::new(114.0579, 22.5431)?), Some(0));
    /// assert_eq!(places.locate(LonLat::new(114.06, 22.55)?), Some(0)); // on the first grid's corner
    /// assert_eq!(places.locate(LonLat::new(113.7518, 23.0205)?), None); // Dongguan
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn locate(&self, p: LonLat) -> Option<usize> {
        let c = Coord { x: p.lon(), y: p.lat() };
        self.tree
            .locate_all_at_point(&[c.x, c.y])
            .filter(|e| self.prepared[e.data.1].position(c) != PointPosition::Outside)
            .map(|e| e.data.0)
            .min()
    }
}
