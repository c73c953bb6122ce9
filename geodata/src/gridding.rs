//! Automatic gridding: divide communities into management grids of 300–500 households each,
//! contiguous and compact, covering each community exactly, with stable codes.
//!
//! # How
//! 1. Each community is covered with small H3 cells (resolution 11 by default: 2,150 m², about
//!    25 m a side — a building or two), and each household is counted in its cell.
//! 2. The number of grids k is the one that keeps every grid nearest the norm (400 households
//!    for 300–500). The cells are split in two by recursive bisection: sorted along the
//!    household-weighted principal axis of the part (and across it), cut where the first side
//!    holds its share of households (k₁/k), the axis whose cut crosses fewer cell edges wins (a
//!    shorter border: compact grids). Cells a cut leaves cut off from their side go to the other
//!    side, so every grid is one connected piece.
//! 3. Each grid's cells are dissolved into a polygon (cells of neighbouring grids share their
//!    edges exactly) and clipped to the community, so the grids cover it with no gap or overlap.
//! 4. Codes: community code + 001…, in reading order (north to south in bands of about a grid's
//!    width, west to east), so the same input always gives the same codes; with a previous
//!    layer, a grid that mostly covers a previous grid keeps that grid's code, and new grids
//!    take numbers after the highest in use.

use crate::audit::input::AuditFeature;
use crate::audit::measure::{area_m2, perimeter_m};
use crate::audit::place::GridPlaces;
use crate::audit::workload::Dwelling;
use crate::grid::{GridCode, GridError, GridLevel, GridUnit};
use crate::overlay;
use geo::{Centroid, MultiPolygon};
use h3o::geom::{ContainmentMode, SolventBuilder, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// What a grid should hold, and how fine the building blocks are.
///
/// # Examples
/// ```
/// use safegrid_geodata::gridding::GriddingOptions;
/// use h3o::Resolution;
/// let norm = GriddingOptions::default();
/// assert_eq!((norm.min_households, norm.max_households, norm.res), (300, 500, Resolution::Eleven));
/// // Villages with fewer households a grid, built from coarser cells.
/// let village = GriddingOptions { min_households: 100, max_households: 200, res: Resolution::Ten };
/// assert!(village.max_households < norm.min_households);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GriddingOptions {
    /// Fewest households a grid.
    pub min_households: u64,
    /// Most households a grid.
    pub max_households: u64,
    /// H3 resolution of the cells grids are built from.
    pub res: Resolution,
}

impl Default for GriddingOptions {
    fn default() -> Self {
        Self { min_households: 300, max_households: 500, res: Resolution::Eleven }
    }
}

/// A community (社区) to divide.
///
/// # Examples
/// ```
/// use safegrid_geodata::gridding::{Community, GriddingOptions, grid_communities};
/// use safegrid_geodata::audit::workload::Dwelling;
/// use safegrid_geodata::{GridCode, LonLat};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A community of about 500 m by 550 m in Futian, with 30 buildings of 30 households each.
/// let baihua = Community {
///     code: GridCode::parse("440304001002")?,
///     name: "百花社区".into(),
///     geometry: MultiPolygon::new(vec![polygon![
///         (x: 114.080, y: 22.550), (x: 114.085, y: 22.550), (x: 114.085, y: 22.555), (x: 114.080, y: 22.555)]]),
/// };
/// let buildings = (0..30)
///     .map(|i| {
///         let at = LonLat::new(114.0805 + 0.0008 * f64::from(i % 6), 22.5505 + 0.0009 * f64::from(i / 6))?;
///         Ok(Dwelling { at, households: 30, people: 80 })
///     })
///     .collect::<Result<Vec<_>, safegrid_geodata::CoordError>>()?;
/// let (grids, summary) = grid_communities(&[baihua.clone()], &buildings, GriddingOptions::default(), &[])?;
/// assert!(grids.iter().all(|g| baihua.code.covers(&g.unit.code)));
/// assert!(grids.iter().all(|g| g.unit.name.starts_with("百花社区第")));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Community {
    /// Its code; grids are coded beneath it.
    pub code: GridCode,
    /// Its name; grids are named after it.
    pub name: String,
    /// Its boundary.
    pub geometry: MultiPolygon<f64>,
}

/// A grid the gridding produced.
///
/// # Examples
/// ```
/// use safegrid_geodata::gridding::{Community, GriddingOptions, grid_communities};
/// use safegrid_geodata::audit::workload::Dwelling;
/// use safegrid_geodata::{GridCode, LonLat};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A community of about 500 m by 550 m in Futian, with 30 buildings of 30 households each.
/// let baihua = Community {
///     code: GridCode::parse("440304001002")?,
///     name: "百花社区".into(),
///     geometry: MultiPolygon::new(vec![polygon![
///         (x: 114.080, y: 22.550), (x: 114.085, y: 22.550), (x: 114.085, y: 22.555), (x: 114.080, y: 22.555)]]),
/// };
/// let buildings = (0..30)
///     .map(|i| {
///         let at = LonLat::new(114.0805 + 0.0008 * f64::from(i % 6), 22.5505 + 0.0009 * f64::from(i / 6))?;
///         Ok(Dwelling { at, households: 30, people: 80 })
///     })
///     .collect::<Result<Vec<_>, safegrid_geodata::CoordError>>()?;
/// let (grids, summary) = grid_communities(&[baihua.clone()], &buildings, GriddingOptions::default(), &[])?;
/// let first = &grids[0];
/// assert_eq!(first.unit.code.as_str(), "440304001002001");
/// assert_eq!(first.unit.name, "百花社区第001网格");
/// assert!(first.unit.manager.is_none());
/// assert!((300..=500).contains(&first.households));
/// assert!(first.compactness > 0.5 && first.compactness <= 1.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GeneratedGrid {
    /// The grid (no manager yet: the street office assigns one).
    pub unit: GridUnit,
    /// Households in it.
    pub households: u64,
    /// Polsby–Popper compactness, 4πA/P²: 1 for a circle, 0.83 for a hexagon, 0.79 a square.
    pub compactness: f64,
}

/// Why a community could not be gridded.
///
/// # Examples
/// ```
/// use safegrid_geodata::gridding::{Community, GriddingError, GriddingOptions, grid_communities};
/// use safegrid_geodata::GridCode;
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let community = Community {
///     code: GridCode::parse("440304001002")?,
///     name: "百花社区".into(),
///     geometry: MultiPolygon::new(vec![polygon![
///         (x: 114.080, y: 22.550), (x: 114.085, y: 22.550), (x: 114.085, y: 22.555), (x: 114.080, y: 22.555)]]),
/// };
/// let twice = [community.clone(), community];
/// let err = grid_communities(&twice, &[], GriddingOptions::default(), &[]).unwrap_err();
/// assert_eq!(err, GriddingError::DuplicateCommunity { code: "440304001002".into() });
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GriddingError {
    /// H3 cannot cover the community's boundary.
    #[error("community {code}: H3 cannot cover its boundary: {reason}")]
    Tiling {
        /// The community's code.
        code: String,
        /// H3's reason.
        reason: String,
    },
    /// More grids than a code level holds.
    #[error("community {code} needs more than 999 grids")]
    TooManyGrids {
        /// The community's code.
        code: String,
    },
    /// Code construction failed.
    #[error(transparent)]
    Code(#[from] GridError),
    /// Two communities with one code would give their grids the same codes.
    #[error("community code {code} is used twice")]
    DuplicateCommunity {
        /// The code the communities share.
        code: String,
    },
}

/// Summary figures of a gridding.
///
/// # Examples
/// ```
/// use safegrid_geodata::gridding::{Community, GriddingOptions, grid_communities};
/// use safegrid_geodata::audit::workload::Dwelling;
/// use safegrid_geodata::{GridCode, LonLat};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A community of about 500 m by 550 m in Futian, with 30 buildings of 30 households each.
/// let baihua = Community {
///     code: GridCode::parse("440304001002")?,
///     name: "百花社区".into(),
///     geometry: MultiPolygon::new(vec![polygon![
///         (x: 114.080, y: 22.550), (x: 114.085, y: 22.550), (x: 114.085, y: 22.555), (x: 114.080, y: 22.555)]]),
/// };
/// let buildings = (0..30)
///     .map(|i| {
///         let at = LonLat::new(114.0805 + 0.0008 * f64::from(i % 6), 22.5505 + 0.0009 * f64::from(i / 6))?;
///         Ok(Dwelling { at, households: 30, people: 80 })
///     })
///     .collect::<Result<Vec<_>, safegrid_geodata::CoordError>>()?;
/// let (grids, summary) = grid_communities(&[baihua.clone()], &buildings, GriddingOptions::default(), &[])?;
/// // 900 households: two grids of about 450.
/// assert_eq!(summary.grids, 2);
/// assert_eq!(summary.within_norm, 2);
/// assert_eq!(summary.households_min + summary.households_max, 900);
/// assert_eq!(summary.codes_kept, 0); // no previous layer
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct GriddingSummary {
    /// Grids made.
    pub grids: usize,
    /// Grids within the norm.
    pub within_norm: usize,
    /// Fewest and most households in a grid.
    pub households_min: u64,
    /// Most households in a grid.
    pub households_max: u64,
    /// Median compactness.
    pub compactness_median: f64,
    /// Grids that kept a previous grid's code.
    pub codes_kept: usize,
}

/// Grids every community, in parallel. Households outside every community are ignored.
///
/// # Errors
/// [`GriddingError`] for the first community that cannot be gridded.
///
/// # Examples
/// ```
/// use safegrid_geodata::gridding::{Community, GriddingOptions, grid_communities};
/// use safegrid_geodata::audit::workload::Dwelling;
/// use safegrid_geodata::{GridCode, LonLat};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A community of about 500 m by 550 m in Futian, with 30 buildings of 30 households each.
/// let baihua = Community {
///     code: GridCode::parse("440304001002")?,
///     name: "百花社区".into(),
///     geometry: MultiPolygon::new(vec![polygon![
///         (x: 114.080, y: 22.550), (x: 114.085, y: 22.550), (x: 114.085, y: 22.555), (x: 114.080, y: 22.555)]]),
/// };
/// let buildings = (0..30)
///     .map(|i| {
///         let at = LonLat::new(114.0805 + 0.0008 * f64::from(i % 6), 22.5505 + 0.0009 * f64::from(i / 6))?;
///         Ok(Dwelling { at, households: 30, people: 80 })
///     })
///     .collect::<Result<Vec<_>, safegrid_geodata::CoordError>>()?;
/// let (grids, summary) = grid_communities(&[baihua.clone()], &buildings, GriddingOptions::default(), &[])?;
/// assert_eq!(grids.len(), 2);
/// assert_eq!(grids.iter().map(|g| g.households).sum::<u64>(), 900);
///
/// // Gridded again with the first result as the previous layer, every grid keeps its code.
/// let previous: Vec<_> = grids.iter().map(|g| g.unit.clone()).collect();
/// let (again, summary) = grid_communities(&[baihua], &buildings, GriddingOptions::default(), &previous)?;
/// assert_eq!(summary.codes_kept, 2);
/// assert_eq!(again[1].unit.code, grids[1].unit.code);
/// # Ok(())
/// # }
/// ```
pub fn grid_communities(
    communities: &[Community],
    households: &[Dwelling],
    opts: GriddingOptions,
    previous: &[GridUnit],
) -> Result<(Vec<GeneratedGrid>, GriddingSummary), GriddingError> {
    let mut seen = HashSet::new();
    if let Some(c) = communities.iter().find(|c| !seen.insert(&c.code)) {
        return Err(GriddingError::DuplicateCommunity { code: c.code.to_string() });
    }
    // Each household to its community (first on a shared border), then per community.
    let feats: Vec<AuditFeature> = communities
        .iter()
        .enumerate()
        .map(|(index, c)| AuditFeature {
            index,
            code: Some(c.code.to_string()),
            name: None,
            manager: None,
            geometry: Some(c.geometry.clone()),
        })
        .collect();
    let refs: Vec<&AuditFeature> = feats.iter().collect();
    let places = GridPlaces::new(&refs);
    let owner: Vec<Option<usize>> = households.par_iter().map(|d| places.locate(d.at)).collect();
    let mut per: Vec<Vec<&Dwelling>> = vec![Vec::new(); communities.len()];
    for (d, o) in households.iter().zip(owner) {
        if let Some(c) = o {
            per[c].push(d);
        }
    }
    let results: Vec<Result<Vec<GeneratedGrid>, GriddingError>> =
        communities.par_iter().zip(per.par_iter()).map(|(c, hh)| grid_one(c, hh, opts, previous)).collect();
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    let mut comp: Vec<f64> = out.iter().map(|g| g.compactness).collect();
    comp.sort_by(f64::total_cmp);
    let previous_codes: HashSet<&GridCode> = previous.iter().map(|u| &u.code).collect();
    let summary = GriddingSummary {
        grids: out.len(),
        within_norm: out.iter().filter(|g| (opts.min_households..=opts.max_households).contains(&g.households)).count(),
        households_min: out.iter().map(|g| g.households).min().unwrap_or(0),
        households_max: out.iter().map(|g| g.households).max().unwrap_or(0),
        compactness_median: comp.get(comp.len() / 2).copied().unwrap_or(0.0),
        codes_kept: out.iter().filter(|g| previous_codes.contains(&g.unit.code)).count(),
    };
    Ok((out, summary))
}

/// The number of grids for `h` households: the k whose grids come nearest the norm.
fn grid_count(h: u64, opts: GriddingOptions) -> usize {
    if h == 0 {
        return 1;
    }
    let target = (opts.min_households + opts.max_households) as f64 / 2.0;
    let lo = h.div_ceil(opts.max_households.max(1)).max(1);
    let hi = (h / opts.min_households.max(1)).max(1);
    let k = ((h as f64 / target).round() as u64).max(1);
    if lo <= hi { k.clamp(lo, hi) as usize } else { k as usize }
}

struct Cells {
    ids: Vec<CellIndex>,
    weight: Vec<u64>,
    xy: Vec<(f64, f64)>,
    adj: Vec<Vec<u32>>,
}

fn grid_one(
    c: &Community,
    households: &[&Dwelling],
    opts: GriddingOptions,
    previous: &[GridUnit],
) -> Result<Vec<GeneratedGrid>, GriddingError> {
    let cells = community_cells(c, households, opts.res)?;
    let n = cells.ids.len();
    // Connected parts (islands) are gridded apart: a grid must be one piece.
    let mut groups = Vec::new();
    let all: Vec<u32> = (0..n as u32).collect();
    let parts = components(&cells, &all);
    for part in parts {
        let h: u64 = part.iter().map(|&i| cells.weight[i as usize]).sum();
        bisect(&cells, part, grid_count(h, opts), &mut groups);
    }

    // Polygons: dissolved cells clipped to the community; a group left with nothing is dropped.
    let solvent = SolventBuilder::new().build();
    let mut built: Vec<(MultiPolygon<f64>, u64)> = Vec::new();
    for g in groups {
        let dissolved = solvent
            .dissolve(g.iter().map(|&i| cells.ids[i as usize]))
            .map_err(|e| GriddingError::Tiling { code: c.code.to_string(), reason: e.to_string() })?;
        let clipped = overlay::intersection(&c.geometry, &dissolved);
        let a = area_m2(&clipped);
        if a > 0.01 {
            built.push((clipped, g.iter().map(|&i| cells.weight[i as usize]).sum()));
        }
    }

    let codes = assign_codes(c, &built, previous)?;
    let mut made: Vec<GeneratedGrid> = built
        .into_iter()
        .zip(codes)
        .map(|((geometry, households), (code, seq))| {
            let a = area_m2(&geometry);
            let p: f64 = geometry.0.iter().map(perimeter_m).sum();
            let compactness = if p > 0.0 { 4.0 * std::f64::consts::PI * a / (p * p) } else { 0.0 };
            GeneratedGrid {
                unit: GridUnit {
                    name: format!("{}第{seq:03}网格", c.name),
                    code,
                    level: GridLevel::Grid,
                    manager: None,
                    geometry,
                },
                households,
                compactness,
            }
        })
        .collect();
    made.sort_by(|a, b| a.unit.code.cmp(&b.unit.code));
    Ok(made)
}

fn community_cells(c: &Community, households: &[&Dwelling], res: Resolution) -> Result<Cells, GriddingError> {
    let mut tiler = TilerBuilder::new(res).containment_mode(ContainmentMode::Covers).build();
    for p in &c.geometry.0 {
        tiler.add(p.clone()).map_err(|e| GriddingError::Tiling { code: c.code.to_string(), reason: e.to_string() })?;
    }
    let mut cells: Vec<CellIndex> = tiler.into_coverage().collect();
    cells.sort_unstable();
    cells.dedup();
    let index: HashMap<CellIndex, u32> = cells.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
    let mut weight = vec![0_u64; cells.len()];
    for d in households {
        if let Ok(ll) = LatLng::new(d.at.lat(), d.at.lon())
            && let Some(&i) = index.get(&ll.to_cell(res))
        {
            weight[i as usize] += u64::from(d.households);
        }
    }
    // A local flat frame in metres around the community: enough for axes and cut lengths.
    let (lon0, lat0) = c.geometry.centroid().map_or((0.0, 0.0), |p| (p.x(), p.y()));
    let kx = 111_320.0 * lat0.to_radians().cos();
    let xy = cells
        .iter()
        .map(|&cell| {
            let ll = LatLng::from(cell);
            ((ll.lng() - lon0) * kx, (ll.lat() - lat0) * 110_574.0)
        })
        .collect();
    let adj = cells
        .iter()
        .map(|&cell| {
            cell.grid_disk::<Vec<_>>(1)
                .into_iter()
                .filter(|n| *n != cell)
                .filter_map(|n| index.get(&n).copied())
                .collect()
        })
        .collect();
    Ok(Cells { ids: cells, weight, xy, adj })
}

/// Connected components of `set` in the cell graph, largest first.
fn components(cells: &Cells, set: &[u32]) -> Vec<Vec<u32>> {
    let inside: HashSet<u32> = set.iter().copied().collect();
    let mut seen: HashSet<u32> = HashSet::with_capacity(set.len());
    let mut out = Vec::new();
    for &s in set {
        if !seen.insert(s) {
            continue;
        }
        let mut comp = vec![s];
        let mut i = 0;
        while i < comp.len() {
            for &n in &cells.adj[comp[i] as usize] {
                if inside.contains(&n) && seen.insert(n) {
                    comp.push(n);
                }
            }
            i += 1;
        }
        out.push(comp);
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.len()));
    out
}

/// Splits `part` (connected) into `k` connected groups of nearly equal households.
fn bisect(cells: &Cells, part: Vec<u32>, k: usize, out: &mut Vec<Vec<u32>>) {
    if k <= 1 || part.len() < 2 {
        out.push(part);
        return;
    }
    let k1 = k / 2;
    let h: u64 = part.iter().map(|&i| cells.weight[i as usize]).sum();
    // Households carry the weight; a little area weight lets empty ground be split evenly too.
    let w = |i: u32| cells.weight[i as usize] as f64 + 1e-3;
    let target = if h == 0 { part.len() as f64 * 1e-3 * k1 as f64 / k as f64 } else { h as f64 * k1 as f64 / k as f64 };
    let (mx, my, wsum) = part.iter().fold((0.0, 0.0, 0.0), |(x, y, s), &i| {
        let (px, py) = cells.xy[i as usize];
        (x + px * w(i), y + py * w(i), s + w(i))
    });
    let (mx, my) = (mx / wsum, my / wsum);
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for &i in &part {
        let (dx, dy) = (cells.xy[i as usize].0 - mx, cells.xy[i as usize].1 - my);
        sxx += w(i) * dx * dx;
        syy += w(i) * dy * dy;
        sxy += w(i) * dx * dy;
    }
    let theta = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let mut best: Option<(usize, Vec<u32>, Vec<u32>)> = None;
    for angle in [theta, theta + std::f64::consts::FRAC_PI_2] {
        let (cx, cy) = (angle.cos(), angle.sin());
        let mut order = part.clone();
        order.sort_by(|&a, &b| {
            let pa = cells.xy[a as usize].0 * cx + cells.xy[a as usize].1 * cy;
            let pb = cells.xy[b as usize].0 * cx + cells.xy[b as usize].1 * cy;
            pa.total_cmp(&pb).then(a.cmp(&b))
        });
        let mut acc = 0.0;
        let mut split = order.len() - 1;
        for (j, &i) in order.iter().enumerate() {
            let before = acc;
            acc += if h == 0 { 1e-3 } else { cells.weight[i as usize] as f64 };
            if acc >= target {
                // Cut before or after this cell, whichever lands nearer the target.
                split = if (target - before).abs() < (acc - target).abs() { j } else { j + 1 };
                break;
            }
        }
        let split = split.clamp(1, order.len() - 1);
        let (a, b) = order.split_at(split);
        let (a, b) = make_contiguous(cells, a.to_vec(), b.to_vec());
        if a.is_empty() || b.is_empty() {
            continue;
        }
        let other: HashSet<u32> = b.iter().copied().collect();
        let cut = a.iter().flat_map(|&i| cells.adj[i as usize].iter()).filter(|n| other.contains(n)).count();
        if best.as_ref().is_none_or(|(c, _, _)| cut < *c) {
            best = Some((cut, a, b));
        }
    }
    match best {
        Some((_, a, b)) => {
            bisect(cells, a, k1, out);
            bisect(cells, b, k - k1, out);
        }
        None => out.push(part),
    }
}

/// Moves the pieces a cut left apart from the rest of their side to the other side.
fn make_contiguous(cells: &Cells, a: Vec<u32>, b: Vec<u32>) -> (Vec<u32>, Vec<u32>) {
    let (mut a, mut b) = (a, b);
    for _ in 0..4 {
        let ca = components(cells, &a);
        let cb = components(cells, &b);
        if ca.len() <= 1 && cb.len() <= 1 {
            break;
        }
        if ca.len() > 1 {
            let mut it = ca.into_iter();
            a = it.next().unwrap_or_default();
            for extra in it {
                b.extend(extra);
            }
            continue;
        }
        let mut it = cb.into_iter();
        b = it.next().unwrap_or_default();
        for extra in it {
            a.extend(extra);
        }
    }
    (a, b)
}

/// Codes in reading order, or kept from the previous layer where a grid mostly covers one.
fn assign_codes(
    c: &Community,
    built: &[(MultiPolygon<f64>, u64)],
    previous: &[GridUnit],
) -> Result<Vec<(GridCode, u32)>, GriddingError> {
    let centres: Vec<(f64, f64)> =
        built.iter().map(|(g, _)| g.centroid().map_or((0.0, 0.0), |p| (p.x(), p.y()))).collect();
    // Bands about a grid's width: the square root of the mean grid area, in degrees of latitude.
    let mean_area: f64 = built.iter().map(|(g, _)| area_m2(g)).sum::<f64>() / built.len().max(1) as f64;
    let band = (mean_area.sqrt() / 110_574.0).max(1e-6);
    let mut order: Vec<usize> = (0..built.len()).collect();
    order.sort_by(|&i, &j| {
        let (bi, bj) = ((-centres[i].1 / band).floor(), (-centres[j].1 / band).floor());
        bi.total_cmp(&bj).then(centres[i].0.total_cmp(&centres[j].0))
    });

    let mine: Vec<&GridUnit> = previous.iter().filter(|u| u.code.parent().as_ref() == Some(&c.code)).collect();
    let mut kept: HashMap<usize, GridCode> = HashMap::new();
    if !mine.is_empty() {
        let mut pairs = Vec::new();
        for (i, (g, _)) in built.iter().enumerate() {
            let ga = area_m2(g);
            for (j, p) in mine.iter().enumerate() {
                let shared = area_m2(&overlay::intersection(g, &p.geometry));
                // "Mostly": more than half of either.
                if shared > 0.5 * ga.min(area_m2(&p.geometry)) {
                    pairs.push((shared, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut used = HashSet::new();
        for (_, i, j) in pairs {
            if !kept.contains_key(&i) && used.insert(j) {
                kept.insert(i, mine[j].code.clone());
            }
        }
    }
    let seq_of =
        |code: &GridCode| code.as_str()[code.as_str().len() - GridCode::LEVEL_DIGITS..].parse::<u32>().unwrap_or(0);
    let mut next = mine.iter().map(|u| seq_of(&u.code)).max().unwrap_or(0);
    let mut codes = vec![None; built.len()];
    for &i in &order {
        let code = if let Some(code) = kept.get(&i) {
            code.clone()
        } else {
            next += 1;
            if next > 999 {
                return Err(GriddingError::TooManyGrids { code: c.code.to_string() });
            }
            c.code.child(next)?
        };
        let seq = seq_of(&code);
        codes[i] = Some((code, seq));
    }
    // `order` holds every index once, so every slot is filled.
    Ok(codes.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LonLat;
    use crate::audit::input::AuditLayer;
    use crate::audit::{Kind, Severity, Silent, Thresholds, geometry};
    use geo::polygon;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn community(code: &str, x: f64, y: f64, w: f64, h: f64) -> Community {
        Community {
            code: GridCode::parse(code).unwrap(),
            name: "百花社区".into(),
            geometry: MultiPolygon(vec![
                polygon![(x: x, y: y), (x: x + w, y: y), (x: x + w, y: y + h), (x: x, y: y + h)],
            ]),
        }
    }

    fn scatter(n: usize, x: f64, y: f64, w: f64, h: f64, seed: u64) -> Vec<Dwelling> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| Dwelling {
                at: LonLat::new(x + rng.random_range(0.0..w), y + rng.random_range(0.0..h)).unwrap(),
                households: 1,
                people: 3,
            })
            .collect()
    }

    #[test]
    fn a_community_of_4000_households_becomes_ten_compact_grids_that_pass_the_audit() {
        let c = community("440304001", 114.05, 22.53, 0.02, 0.018);
        let hh = scatter(4_000, 114.05, 22.53, 0.02, 0.018, 1);
        let (grids, summary) =
            grid_communities(std::slice::from_ref(&c), &hh, GriddingOptions::default(), &[]).unwrap();
        assert_eq!(grids.len(), 10);
        assert_eq!(summary.within_norm, 10, "{summary:?} {:?}", grids.iter().map(|g| g.households).collect::<Vec<_>>());
        assert_eq!(grids.iter().map(|g| g.households).sum::<u64>(), 4_000);
        for g in &grids {
            assert_eq!(g.unit.geometry.0.len(), 1, "{} is one piece", g.unit.code);
            assert!(g.compactness > 0.4, "{} compactness {}", g.unit.code, g.compactness);
        }
        assert_eq!(grids[0].unit.code.as_str(), "440304001001", "numbered from the north-west");
        // The layer (community + grids) passes the geometry audit: no gap, overlap or stray.
        let mut units: Vec<GridUnit> = vec![GridUnit {
            code: c.code.clone(),
            name: c.name.clone(),
            level: GridLevel::Community,
            manager: None,
            geometry: c.geometry.clone(),
        }];
        units.extend(grids.iter().map(|g| g.unit.clone()));
        let a = geometry::audit(&AuditLayer::from_units(&units), None, Thresholds::default(), &Silent).unwrap();
        let errors: Vec<_> =
            a.findings.iter().filter(|f| f.severity == Severity::Error && f.kind != Kind::Unstaffed).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        // Equal up to the geodesic reading of edges: splitting a 2 km east-west edge into short
        // ones (as the grids' borders do) moves it by its 4 cm poleward bulge, some 50 m².
        assert!(
            (a.covered_m2 - a.territory_m2).abs() < 2e-5 * a.territory_m2,
            "{} vs {}",
            a.covered_m2,
            a.territory_m2
        );
    }

    #[test]
    fn the_same_input_gives_the_same_codes_and_a_previous_layer_keeps_them() {
        let c = community("440304001", 114.05, 22.53, 0.02, 0.018);
        let hh = scatter(4_000, 114.05, 22.53, 0.02, 0.018, 2);
        let (a, _) = grid_communities(std::slice::from_ref(&c), &hh, GriddingOptions::default(), &[]).unwrap();
        let (b, _) = grid_communities(std::slice::from_ref(&c), &hh, GriddingOptions::default(), &[]).unwrap();
        let codes = |g: &[GeneratedGrid]| g.iter().map(|x| (x.unit.code.to_string(), x.households)).collect::<Vec<_>>();
        assert_eq!(codes(&a), codes(&b));
        // 300 more households in the south-east: grids move a little; those that mostly cover an
        // old grid keep its code, and any new one is numbered after the highest old code.
        let mut more = hh.clone();
        more.extend(scatter(300, 114.06, 22.53, 0.01, 0.005, 3));
        let previous: Vec<GridUnit> = a.iter().map(|g| g.unit.clone()).collect();
        let (c2, summary) =
            grid_communities(std::slice::from_ref(&c), &more, GriddingOptions::default(), &previous).unwrap();
        assert!(summary.codes_kept >= 6, "{summary:?}");
        for g in c2.iter().filter(|g| !previous.iter().any(|p| p.code == g.unit.code)) {
            assert!(g.unit.code.as_str() > "440304001010", "{}", g.unit.code);
        }
    }

    #[test]
    fn islands_are_gridded_apart_and_a_community_with_few_households_is_one_grid() {
        let mut c = community("440304002", 114.0, 22.5, 0.01, 0.01);
        c.geometry
            .0
            .push(polygon![(x: 114.02, y: 22.5), (x: 114.03, y: 22.5), (x: 114.03, y: 22.51), (x: 114.02, y: 22.51)]);
        let mut hh = scatter(400, 114.0, 22.5, 0.01, 0.01, 4);
        hh.extend(scatter(420, 114.02, 22.5, 0.01, 0.01, 5));
        let (grids, _) = grid_communities(std::slice::from_ref(&c), &hh, GriddingOptions::default(), &[]).unwrap();
        assert_eq!(grids.len(), 2);
        assert!(grids.iter().all(|g| g.unit.geometry.0.len() == 1));
        let small = community("440304003", 114.1, 22.5, 0.005, 0.005);
        let (grids, _) =
            grid_communities(&[small], &scatter(120, 114.1, 22.5, 0.005, 0.005, 6), GriddingOptions::default(), &[])
                .unwrap();
        assert_eq!((grids.len(), grids[0].households), (1, 120));
    }
}
