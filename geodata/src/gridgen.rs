//! Generating management grids by clipping H3 cells to district boundaries.
//!
//! Real grids follow streets and building blocks and come from each city's survey; a demo or a
//! first deployment needs a layer that covers every square metre of each district, without gaps
//! or overlaps, with grids of comparable size. H3 resolution 8 (≈ 0.74 km² a cell) gives about
//! 2,900 grids over Shenzhen's 2,146 km², close to the ~3,000 a city of that size runs. Cells cut
//! by a district border are clipped to it; a clipped piece smaller than a quarter of a cell is
//! merged into its largest neighbour in the same district, so no grid is a sliver.

use crate::grid::{GridCode, GridError, GridLevel, GridUnit};
use crate::h3::cell_polygon;
use crate::overlay;
use geo::{Area, MultiPolygon};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, Resolution};
use std::collections::HashMap;

/// Why grids could not be generated.
///
/// # Examples
/// ```
/// use safegrid_geodata::gridgen::{GridGenError, h3_grids};
/// use safegrid_geodata::{GridCode, GridLevel, GridUnit};
/// use geo::{MultiPolygon, polygon};
/// use h3o::Resolution;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // 0.04° by 0.04° (about 18 km²) at H3 resolution 10 (≈ 0.015 km² a cell) needs over 1,000 grids.
/// let district = GridUnit {
///     code: GridCode::parse("441900")?,
///     name: "东莞市".into(),
///     level: GridLevel::District,
///     manager: None,
///     geometry: MultiPolygon::new(vec![polygon![
///         (x: 113.73, y: 23.00), (x: 113.77, y: 23.00), (x: 113.77, y: 23.04), (x: 113.73, y: 23.04)]]),
/// };
/// let err = h3_grids(&[district], Resolution::Ten).unwrap_err();
/// assert_eq!(err, GridGenError::TooManyGrids { code: "441900".into() });
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GridGenError {
    /// A district polygon H3 cannot tile (invalid or degenerate).
    #[error("district {code}: H3 cannot tile its boundary: {reason}")]
    Tiling {
        /// The district's code.
        code: String,
        /// H3's reason.
        reason: String,
    },
    /// More grids than a code level holds.
    #[error("district {code} needs more than 999 grids at this resolution")]
    TooManyGrids {
        /// The district's code.
        code: String,
    },
    /// Code construction failed.
    #[error(transparent)]
    Code(#[from] GridError),
}

/// Pieces smaller than this share of a full cell are merged into a neighbour.
const SLIVER_SHARE: f64 = 0.25;

/// Generates the grids of each district, coded `district.code` + 001…999 in H3 cell order.
///
/// # Errors
/// [`GridGenError`] for a district that cannot be tiled or needs more than 999 grids.
///
/// # Examples
/// ```
/// use safegrid_geodata::gridgen::h3_grids;
/// use safegrid_geodata::{GridCode, GridLevel, GridUnit};
/// use geo::{Area, MultiPolygon, polygon};
/// use h3o::Resolution;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A 2 km by 2 km piece of Futian as a district.
/// let futian = GridUnit {
///     code: GridCode::parse("440304")?,
///     name: "福田区".into(),
///     level: GridLevel::District,
///     manager: None,
///     geometry: MultiPolygon::new(vec![polygon![
///         (x: 114.04, y: 22.53), (x: 114.06, y: 22.53), (x: 114.06, y: 22.55), (x: 114.04, y: 22.55)]]),
/// };
/// let grids = h3_grids(std::slice::from_ref(&futian), Resolution::Eight)?;
/// assert!(grids.len() > 1);
/// assert_eq!(grids[0].code.as_str(), "440304001");
/// assert_eq!(grids[0].name, "福田区第001网格");
/// assert!(grids.iter().all(|g| g.level == GridLevel::Grid && futian.code.covers(&g.code)));
/// // The grids cover the district, to the overlay's rounding.
/// let covered: f64 = grids.iter().map(|g| g.geometry.unsigned_area()).sum();
/// let ratio = covered / futian.geometry.unsigned_area();
/// assert!((ratio - 1.0).abs() < 1e-6, "{ratio}");
/// # Ok(())
/// # }
/// ```
pub fn h3_grids(districts: &[GridUnit], res: Resolution) -> Result<Vec<GridUnit>, GridGenError> {
    let mut out = Vec::new();
    for d in districts {
        out.extend(district_grids(d, res)?);
    }
    Ok(out)
}

fn district_grids(d: &GridUnit, res: Resolution) -> Result<Vec<GridUnit>, GridGenError> {
    let mut tiler = TilerBuilder::new(res).containment_mode(ContainmentMode::Covers).build();
    for poly in &d.geometry.0 {
        tiler
            .add(poly.clone())
            .map_err(|e| GridGenError::Tiling { code: d.code.to_string(), reason: e.to_string() })?;
    }
    let mut cells: Vec<_> = tiler.into_annotated_coverage().collect();
    cells.sort_by_key(|c| u64::from(c.cell));

    let mut pieces: Vec<(CellIndex, MultiPolygon<f64>, f64)> = Vec::with_capacity(cells.len());
    let mut full_area = 0.0_f64;
    for c in cells {
        let hex = cell_polygon(c.cell);
        let hex_area = hex.unsigned_area();
        full_area = full_area.max(hex_area);
        // Every cell is clipped, even those H3 calls fully contained: that test looks at the cell's
        // vertices, so a border notch between two vertices would leave the cell poking out of
        // its district (the audit found 408 such slivers in the demo before this).
        let piece = overlay::intersection(&d.geometry, &MultiPolygon(vec![hex]));
        let area = piece.unsigned_area();
        if area > 0.0 {
            pieces.push((c.cell, piece, area));
        }
    }

    // Merge slivers into their largest non-sliver neighbour within this district.
    let index_of: HashMap<CellIndex, usize> = pieces.iter().enumerate().map(|(i, p)| (p.0, i)).collect();
    let is_sliver = |a: f64| a < SLIVER_SHARE * full_area;
    let mut absorbed = vec![false; pieces.len()];
    for i in 0..pieces.len() {
        if !is_sliver(pieces[i].2) {
            continue;
        }
        let host = pieces[i]
            .0
            .grid_disk::<Vec<_>>(1)
            .into_iter()
            .filter_map(|n| index_of.get(&n).copied())
            .filter(|&j| j != i && !is_sliver(pieces[j].2))
            .max_by(|&a, &b| pieces[a].2.total_cmp(&pieces[b].2));
        if let Some(j) = host {
            let merged = overlay::union(pieces[j].1.0.iter().chain(&pieces[i].1.0));
            pieces[j].1 = merged;
            absorbed[i] = true;
        }
    }

    // Whatever of the district no piece covers — where its border wanders through a cell that
    // H3's coverage left out — goes to the first piece it touches, so the grids cover every
    // square metre of the district.
    let kept: Vec<usize> = (0..pieces.len()).filter(|&i| !absorbed[i]).collect();
    let covered = overlay::union(kept.iter().flat_map(|&i| pieces[i].1.0.iter()));
    for left in overlay::difference(&d.geometry, &covered).0 {
        let left = MultiPolygon(vec![left]);
        let host = kept.iter().copied().find(|&i| touches(&pieces[i].1, &left));
        if let Some(j) = host {
            pieces[j].1 = overlay::union(pieces[j].1.0.iter().chain(&left.0));
        }
    }

    let mut grids = Vec::new();
    for (i, (_, geometry, _)) in pieces.into_iter().enumerate() {
        if absorbed[i] {
            continue;
        }
        let seq = u32::try_from(grids.len() + 1).unwrap_or(u32::MAX);
        if seq > 999 {
            return Err(GridGenError::TooManyGrids { code: d.code.to_string() });
        }
        let code: GridCode = d.code.child(seq)?;
        grids.push(GridUnit {
            name: format!("{}第{seq:03}网格", d.name),
            code,
            level: GridLevel::Grid,
            manager: None,
            geometry,
        });
    }
    Ok(grids)
}

/// Whether two polygons share a point, or come within 1e-7° (1 cm) of it: the polygon
/// operations round coordinates, so a leftover may stop a hair short of its neighbour.
fn touches(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>) -> bool {
    use geo::{BoundingRect, Distance, Euclidean, Intersects};
    let (Some(ra), Some(rb)) = (a.bounding_rect(), b.bounding_rect()) else { return false };
    let near = ra.min().x <= rb.max().x + 1e-7
        && rb.min().x <= ra.max().x + 1e-7
        && ra.min().y <= rb.max().y + 1e-7
        && rb.min().y <= ra.max().y + 1e-7;
    near && (a.intersects(b) || Euclidean.distance(a, b) < 1e-7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{BooleanOps, polygon};

    #[test]
    fn grids_cover_a_district_exactly_without_slivers() {
        let square = polygon![(x: 114.0, y: 22.5), (x: 114.05, y: 22.5), (x: 114.05, y: 22.54), (x: 114.0, y: 22.54)];
        let d = GridUnit {
            code: GridCode::parse("440304").unwrap(),
            name: "福田区".into(),
            level: GridLevel::District,
            manager: None,
            geometry: MultiPolygon(vec![square.clone()]),
        };
        let grids = h3_grids(&[d], Resolution::Eight).unwrap();
        assert!(grids.len() >= 3);
        let total: f64 = grids.iter().map(|g| g.geometry.unsigned_area()).sum();
        let want = square.unsigned_area();
        // The overlay rounds to about 1e-9°; over a 5 km district that is a few parts in 1e9.
        assert!((total - want).abs() / want < 1e-8, "area {total} vs {want}");
        // No two grids overlap by more than rounding.
        for (i, a) in grids.iter().enumerate() {
            for b in &grids[i + 1..] {
                assert!(a.geometry.intersection(&b.geometry).unsigned_area() < want * 1e-9);
            }
        }
        assert_eq!(grids[0].code.as_str(), "440304001");
    }
}
