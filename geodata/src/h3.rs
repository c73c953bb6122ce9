//! H3 helpers: the cell of a point, and counts per cell (for hexbin heatmaps and coverage).

use crate::LonLat;
use h3o::{CellIndex, LatLng, Resolution};
use std::collections::HashMap;

/// The H3 cell containing a point at a resolution.
///
/// # Examples
/// ```
/// use safegrid_geodata::{LonLat, h3::cell_at};
/// use h3o::Resolution;
/// let c = cell_at(LonLat::new(114.0579, 22.5431).unwrap(), Resolution::Eight);
/// assert_eq!(c.resolution(), Resolution::Eight);
/// ```
#[must_use]
pub fn cell_at(p: LonLat, res: Resolution) -> CellIndex {
    // LonLat is range-checked and finite, which is all LatLng::new checks.
    match LatLng::new(p.lat(), p.lon()) {
        Ok(ll) => ll.to_cell(res),
        Err(_) => unreachable!("LonLat is always a valid LatLng"),
    }
}

/// How many points fall in each cell.
///
/// # Examples
/// ```
/// use safegrid_geodata::{LonLat, h3::{cell_at, counts_per_cell}};
/// use h3o::Resolution;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let futian = LonLat::new(114.0579, 22.5431)?;
/// let nearby = LonLat::new(114.0580, 22.5432)?; // ~15 m away
/// let dongguan = LonLat::new(113.7518, 23.0205)?;
/// let counts = counts_per_cell([futian, nearby, dongguan], Resolution::Eight);
/// assert_eq!(counts[&cell_at(futian, Resolution::Eight)], 2);
/// assert_eq!(counts[&cell_at(dongguan, Resolution::Eight)], 1);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn counts_per_cell(points: impl IntoIterator<Item = LonLat>, res: Resolution) -> HashMap<CellIndex, u64> {
    let mut counts = HashMap::new();
    for p in points {
        *counts.entry(cell_at(p, res)).or_insert(0) += 1;
    }
    counts
}

/// The boundary of a cell as a closed polygon in degrees.
///
/// # Examples
/// ```
/// use safegrid_geodata::{LonLat, h3::{cell_at, cell_polygon}};
/// use geo::{Contains, Point};
/// use h3o::Resolution;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let p = LonLat::new(114.0579, 22.5431)?;
/// let hexagon = cell_polygon(cell_at(p, Resolution::Nine));
/// assert!(hexagon.exterior().is_closed());
/// assert_eq!(hexagon.exterior().0.len(), 7); // six corners, the first repeated
/// assert!(hexagon.contains(&Point::from(p.to_coord())));
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn cell_polygon(cell: CellIndex) -> geo::Polygon<f64> {
    let mut ring: geo::LineString<f64> = cell.boundary().into();
    ring.close();
    geo::Polygon::new(ring, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Contains;

    #[test]
    fn a_point_lies_in_its_own_cell_polygon_and_counts_add_up() {
        let pts: Vec<LonLat> = (0..100)
            .map(|i| LonLat::new(114.0 + f64::from(i) * 0.0011, 22.5 + f64::from(i % 7) * 0.0013).unwrap())
            .collect();
        for p in &pts {
            let c = cell_at(*p, Resolution::Nine);
            assert!(cell_polygon(c).contains(&geo::Point::from(p.to_coord())));
        }
        let counts = counts_per_cell(pts.iter().copied(), Resolution::Eight);
        assert_eq!(counts.values().sum::<u64>(), 100);
    }
}
