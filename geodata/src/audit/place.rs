//! Which audited grid a point lies in, for counting households, incidents and patrol time.

use super::input::AuditFeature;
use crate::LonLat;
use crate::locate::{PointPosition, PreparedPolygon};
use geo::Coord;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

type Part = GeomWithData<Rectangle<[f64; 2]>, (usize, usize)>;

/// The grids' polygons prepared for point tests, behind an R-tree of their envelopes.
pub struct GridPlaces {
    prepared: Vec<PreparedPolygon>,
    tree: RTree<Part>,
}

impl GridPlaces {
    /// Prepares the grids (indexes into `grids` are what [`Self::locate`] answers).
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
