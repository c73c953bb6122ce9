//! The multi-layer audit (三网合一): two grid layers of one territory — say the comprehensive
//! governance grids and the river-chief grids — compared.
//!
//! - **Crosswalk**: every pair of grids (one from each layer) that share ground, with the area
//!   and the share of each grid it is.
//! - **Boundary disagreements**: ground that is a *minor* part of both its grids — of a grid in
//!   layer A that mostly lies in another B grid, and of a B grid that mostly lies in another A
//!   grid. Where one layer nests in the other (every B grid inside one A grid) there is none;
//!   where a boundary of one runs beside the other's, the strip between them is one, reported
//!   when on average wider than the tolerance (narrower strips are the same line drawn twice).
//! - **Coverage disagreements**: ground in one layer and in no grid of the other, wider than the
//!   tolerance.

use super::input::AuditFeature;
use super::measure::{Piece, area_m2, human_area, pieces, placed};
use super::{Finding, Kind, Progress, Thresholds};
use crate::overlay;
use geo::{BoundingRect, MultiPolygon};
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};
use serde::Serialize;
use std::collections::HashMap;

/// Two grids, one of each layer, that share ground.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::layers::audit;
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The governance grids (two grids with a 0.001° strip between them) and one river-chief
/// // grid that covers all of that ground.
/// let governance = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let river = read_layer(r#"{"type":"Feature","properties":{"code":"440304101","name":"福田河段"},
///   "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.07,22.54],[114.07,22.55],[114.05,22.55],[114.05,22.54]]]}}"#,
///   &ReadOptions::default())?;
/// let (a, b): (Vec<_>, Vec<_>) = (governance.features.iter().collect(), river.features.iter().collect());
/// let result = audit(("governance", &a), ("river", &b), 5.0, &Silent);
/// let first = &result.pairs[0];
/// assert_eq!((first.a.as_str(), first.b.as_str()), ("440304001", "440304101"));
/// assert!((first.share_of_a - 1.0).abs() < 1e-6); // all of the governance grid…
/// assert!((first.share_of_b - 0.5).abs() < 0.01); // …is half of the river grid
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// The grid of layer A.
    pub a: String,
    /// The grid of layer B.
    pub b: String,
    /// Shared area, m².
    pub area_m2: f64,
    /// The shared area as a share of the A grid.
    pub share_of_a: f64,
    /// ... and of the B grid.
    pub share_of_b: f64,
}

/// The result of comparing two layers.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::layers::audit;
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The governance grids (two grids with a 0.001° strip between them) and one river-chief
/// // grid that covers all of that ground.
/// let governance = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let river = read_layer(r#"{"type":"Feature","properties":{"code":"440304101","name":"福田河段"},
///   "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.07,22.54],[114.07,22.55],[114.05,22.55],[114.05,22.54]]]}}"#,
///   &ReadOptions::default())?;
/// let (a, b): (Vec<_>, Vec<_>) = (governance.features.iter().collect(), river.features.iter().collect());
/// let result = audit(("governance", &a), ("river", &b), 5.0, &Silent);
/// assert_eq!(result.pairs.len(), 2);
/// // No boundary disagrees (the governance grids nest in the river grid), so it counts as nested.
/// assert_eq!(result.nested_b, 1);
/// assert_eq!((result.a.as_str(), result.b.as_str(), result.tolerance_m), ("governance", "river", 5.0));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct LayersAudit {
    /// Layer A's name.
    pub a: String,
    /// Layer B's name.
    pub b: String,
    /// Boundaries narrower than this on average agree, m.
    pub tolerance_m: f64,
    /// Every pair sharing ground (beyond noise), A then B order.
    pub pairs: Vec<Pair>,
    /// B grids that lie within one A grid (to the tolerance): nested.
    pub nested_b: usize,
    /// Boundary and coverage disagreements.
    pub findings: Vec<Finding>,
}

type Env = GeomWithData<Rectangle<[f64; 2]>, usize>;

fn geom(f: &AuditFeature) -> Option<&MultiPolygon<f64>> {
    f.geometry.as_ref()
}

/// Compares grid layers `a` and `b` (the grids of each: units without children).
///
/// `tolerance_m` is the mean width (m) below which two boundaries count as one line drawn twice.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::layers::audit;
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The governance grids (two grids with a 0.001° strip between them) and one river-chief
/// // grid that covers all of that ground.
/// let governance = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let river = read_layer(r#"{"type":"Feature","properties":{"code":"440304101","name":"福田河段"},
///   "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.07,22.54],[114.07,22.55],[114.05,22.55],[114.05,22.54]]]}}"#,
///   &ReadOptions::default())?;
/// let (a, b): (Vec<_>, Vec<_>) = (governance.features.iter().collect(), river.features.iter().collect());
/// let result = audit(("governance", &a), ("river", &b), 5.0, &Silent);
/// // The strip between the governance grids is river ground in no governance grid.
/// let kinds: Vec<Kind> = result.findings.iter().map(|f| f.kind).collect();
/// assert_eq!(kinds, [Kind::CoverageMismatch]);
/// assert!(result.findings[0].message.contains("in the river layer but in no grid of the governance layer"));
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn audit(
    (a_name, a): (&str, &[&AuditFeature]),
    (b_name, b): (&str, &[&AuditFeature]),
    tolerance_m: f64,
    progress: &dyn Progress,
) -> LayersAudit {
    let t = Thresholds::default();
    let tree: RTree<Env> = RTree::bulk_load(
        b.iter()
            .enumerate()
            .filter_map(|(j, g)| {
                geom(g)
                    .and_then(BoundingRect::bounding_rect)
                    .map(|r| Env::new(Rectangle::from_corners(r.min().into(), r.max().into()), j))
            })
            .collect(),
    );
    let mut candidates = Vec::new();
    for (i, g) in a.iter().enumerate() {
        let Some(r) = geom(g).and_then(BoundingRect::bounding_rect) else { continue };
        candidates.extend(
            tree.locate_in_envelope_intersecting(&rstar::AABB::from_corners(r.min().into(), r.max().into()))
                .map(|e| (i, e.data)),
        );
    }
    progress.stage("grids of one layer against the other", candidates.len() as u64);
    let area_a: Vec<f64> = a.iter().map(|g| geom(g).map_or(0.0, area_m2)).collect();
    let area_b: Vec<f64> = b.iter().map(|g| geom(g).map_or(0.0, area_m2)).collect();
    let shared: Vec<(usize, usize, Vec<Piece>)> = candidates
        .par_iter()
        .filter_map(|&(i, j)| {
            let (Some(ga), Some(gb)) = (geom(a[i]), geom(b[j])) else { return None };
            let p = pieces(overlay::intersection(ga, gb), &t);
            progress.advance(1);
            (!p.is_empty()).then_some((i, j, p))
        })
        .collect();

    // Each grid's main partner: the one it shares most ground with.
    let mut main_of_a: HashMap<usize, (usize, f64)> = HashMap::new();
    let mut main_of_b: HashMap<usize, (usize, f64)> = HashMap::new();
    let mut pairs = Vec::with_capacity(shared.len());
    for (i, j, p) in &shared {
        let s: f64 = p.iter().map(|x| x.area_m2).sum();
        if main_of_a.get(i).is_none_or(|m| s > m.1) {
            main_of_a.insert(*i, (*j, s));
        }
        if main_of_b.get(j).is_none_or(|m| s > m.1) {
            main_of_b.insert(*j, (*i, s));
        }
        pairs.push(Pair {
            a: a[*i].label(),
            b: b[*j].label(),
            area_m2: s,
            share_of_a: if area_a[*i] > 0.0 { s / area_a[*i] } else { 0.0 },
            share_of_b: if area_b[*j] > 0.0 { s / area_b[*j] } else { 0.0 },
        });
    }

    let mut findings = Vec::new();
    let mut straddling_b = vec![false; b.len()];
    for (i, j, p) in &shared {
        let minor_for_a = main_of_a.get(i).is_some_and(|m| m.0 != *j);
        let minor_for_b = main_of_b.get(j).is_some_and(|m| m.0 != *i);
        let wide: Vec<&Piece> = p.iter().filter(|x| x.width_m >= tolerance_m).collect();
        if wide.is_empty() || !(minor_for_a && minor_for_b) {
            continue;
        }
        straddling_b[*j] = true;
        let mp = MultiPolygon(wide.iter().flat_map(|x| x.geometry.0.clone()).collect());
        let area: f64 = wide.iter().map(|x| x.area_m2).sum();
        let width = wide.iter().map(|x| x.width_m).fold(0.0, f64::max);
        let (la, lb) = (a[*i].label(), b[*j].label());
        let f = Finding::new(
            Kind::BoundaryMismatch,
            vec![la.clone(), lb.clone()],
            vec![a[*i].index, b[*j].index],
            format!(
                "{a_name} {la} and {b_name} {lb} share {} that each assigns elsewhere: their boundaries differ here by up to {width:.0} m",
                human_area(area)
            ),
        );
        findings.push(placed(f, &mp, area));
    }

    progress.stage("ground in one layer only", 2);
    let ua = overlay::union(a.iter().filter_map(|g| geom(g)).flat_map(|g| g.0.iter()));
    let ub = overlay::union(b.iter().filter_map(|g| geom(g)).flat_map(|g| g.0.iter()));
    for (only, other, name, other_name) in [(&ua, &ub, a_name, b_name), (&ub, &ua, b_name, a_name)] {
        for p in pieces(overlay::difference(only, other), &t).into_iter().filter(|p| p.width_m >= tolerance_m) {
            let f = Finding::new(
                Kind::CoverageMismatch,
                Vec::new(),
                Vec::new(),
                format!("{} is in the {name} layer but in no grid of the {other_name} layer", human_area(p.area_m2)),
            );
            findings.push(placed(f, &p.geometry, p.area_m2));
        }
        progress.advance(1);
    }
    let nested_b = (0..b.len()).filter(|&j| !straddling_b[j] && main_of_b.contains_key(&j)).count();
    pairs.sort_by(|x, y| x.a.cmp(&y.a).then(x.b.cmp(&y.b)));
    LayersAudit { a: a_name.to_owned(), b: b_name.to_owned(), tolerance_m, pairs, nested_b, findings }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Silent;
    use geo::polygon;

    fn sq(index: usize, code: &str, x0: f64, x1: f64) -> AuditFeature {
        AuditFeature {
            index,
            code: Some(code.into()),
            name: None,
            manager: None,
            geometry: Some(MultiPolygon(vec![
                polygon![(x: x0, y: 22.5), (x: x1, y: 22.5), (x: x1, y: 22.51), (x: x0, y: 22.51)],
            ])),
        }
    }

    #[test]
    fn a_nested_layer_agrees_and_a_moved_boundary_is_found_where_it_moved() {
        // A: two grids split at 114.01. B: four, nested (split at 114.005, 114.01, 114.015).
        let a = [sq(0, "A1", 114.0, 114.01), sq(1, "A2", 114.01, 114.02)];
        let b = [
            sq(0, "B1", 114.0, 114.005),
            sq(1, "B2", 114.005, 114.01),
            sq(2, "B3", 114.01, 114.015),
            sq(3, "B4", 114.015, 114.02),
        ];
        let (ar, br): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
        let r = audit(("综治", &ar), ("河长", &br), 5.0, &Silent);
        assert!(r.findings.is_empty(), "{:#?}", r.findings);
        assert_eq!(r.pairs.len(), 4);
        assert_eq!(r.nested_b, 4);
        assert!(r.pairs.iter().all(|p| (p.share_of_b - 1.0).abs() < 1e-6 && (p.share_of_a - 0.5).abs() < 1e-6));

        // B's middle boundary drawn 0.0003° (31 m) east of A's: a 31 m strip that A gives to A1
        // and B to B3.
        let b = [
            sq(0, "B1", 114.0, 114.005),
            sq(1, "B2", 114.005, 114.0103),
            sq(2, "B3", 114.0103, 114.015),
            sq(3, "B4", 114.015, 114.02),
        ];
        let br: Vec<_> = b.iter().collect();
        let r = audit(("综治", &ar), ("河长", &br), 5.0, &Silent);
        assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
        let f = &r.findings[0];
        assert_eq!((f.kind, f.grids.clone()), (Kind::BoundaryMismatch, vec!["A2".to_owned(), "B2".to_owned()]));
        let [x, _] = f.location.unwrap();
        assert!((114.01..114.0103).contains(&x), "{x}");
        // The strip's mean width (twice its area over its perimeter) is just under its 31 m.
        assert!(f.message.contains("30 m"), "{}", f.message);
        // 2 m apart is within a 5 m tolerance.
        let b = [sq(0, "B1", 114.0, 114.005), sq(1, "B2", 114.005, 114.01002), sq(2, "B3", 114.01002, 114.02)];
        let br: Vec<_> = b.iter().collect();
        assert!(audit(("综治", &ar), ("河长", &br), 5.0, &Silent).findings.is_empty());
    }

    #[test]
    fn ground_in_one_layer_only_is_reported() {
        let a = [sq(0, "A1", 114.0, 114.02)];
        let b = [sq(0, "B1", 114.0, 114.015)];
        let (ar, br): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
        let r = audit(("A", &ar), ("B", &br), 5.0, &Silent);
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].kind, Kind::CoverageMismatch);
        assert!(r.findings[0].message.contains("in the A layer but in no grid of the B layer"));
    }
}
