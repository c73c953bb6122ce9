//! The geometry audit of a grid layer: does every square metre of the territory lie in exactly
//! one grid, inside its parent, and is every grid coded and staffed?
//!
//! A layer may hold one level (grids only) or several (districts and their grids, as the demo
//! exports them). Units with children are *parents*; the others are the *grids* audited for
//! gaps and overlaps. The territory is, in order of preference: the one the caller gives; the
//! union of the layer's top-level units; or the outline of the grids themselves, in which case
//! the gaps found are the holes the grids enclose.
//!
//! Overlaps are found pairwise (an R-tree of envelopes proposes pairs, the exact intersection
//! decides), gaps as territory − ⋃grids, parts outside as ⋃grids − territory, each part then
//! attributed to the grids it lies in. All polygon operations are `geo`'s (i_overlay); areas are
//! geodesic (see [`super::measure`]).

use super::input::{AuditFeature, AuditLayer, CrsSource};
use super::measure::{area_m2, human_area, pieces, placed};
use super::{Finding, Kind, Progress, Severity, Thresholds};
use crate::GridCode;
use crate::overlay;
use geo::{BoundingRect, Intersects, MultiPolygon, Point, Polygon, Rect};
use rayon::prelude::*;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Where the territory came from.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::geometry::{TerritorySource, audit};
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::{Kind, Silent, Thresholds};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Two grids of Futian with a 0.001° (about 100 m) strip between them; the second is unstaffed.
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// // The territory: both grids and the strip.
/// let territory = MultiPolygon::new(vec![polygon![
///     (x: 114.05, y: 22.54), (x: 114.07, y: 22.54), (x: 114.07, y: 22.55), (x: 114.05, y: 22.55)]]);
/// let given = audit(&layer, Some(&territory), Thresholds::default(), &Silent)?;
/// assert_eq!(given.territory, TerritorySource::Given);
/// // Without one, the grids' outline is the territory, and the strip is outside it.
/// let outline = audit(&layer, None, Thresholds::default(), &Silent)?;
/// assert_eq!(outline.territory, TerritorySource::LayerOutline);
/// assert!(outline.findings.iter().all(|f| f.kind != Kind::Gap));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum TerritorySource {
    /// Given by the caller (`--territory`).
    Given,
    /// The union of the layer's top-level units.
    TopLevelUnits {
        /// How many.
        count: usize,
    },
    /// The outline of the grids themselves (no territory known): only enclosed holes are gaps,
    /// and nothing can lie outside.
    LayerOutline,
}

/// The result of a geometry audit.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::geometry::{TerritorySource, audit};
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::{Kind, Silent, Thresholds};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Two grids of Futian with a 0.001° (about 100 m) strip between them; the second is unstaffed.
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// // The territory: both grids and the strip.
/// let territory = MultiPolygon::new(vec![polygon![
///     (x: 114.05, y: 22.54), (x: 114.07, y: 22.54), (x: 114.07, y: 22.55), (x: 114.05, y: 22.55)]]);
/// let result = audit(&layer, Some(&territory), Thresholds::default(), &Silent)?;
/// assert_eq!((result.grids, result.parents, result.unmeasured), (2, 0, 0));
/// assert!(result.covered_m2 < result.territory_m2);
/// let kinds: Vec<Kind> = result.findings.iter().map(|f| f.kind).collect();
/// assert_eq!(kinds, [Kind::Gap, Kind::Unstaffed]);
/// assert_eq!(result.grid_features, [0, 1]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct GeometryAudit {
    /// Where the territory came from.
    pub territory: TerritorySource,
    /// Territory area, m².
    pub territory_m2: f64,
    /// Area covered by at least one grid, m².
    pub covered_m2: f64,
    /// Grids audited for gaps and overlaps (units without children).
    pub grids: usize,
    /// Units with children in the layer.
    pub parents: usize,
    /// Grids left out of area checks because their geometry cannot be measured.
    pub unmeasured: usize,
    /// Every finding, in [`Kind`] order, then by place in the file.
    pub findings: Vec<Finding>,
    /// Feature indexes of the grids audited, in file order (for the workload audit).
    #[serde(skip)]
    pub grid_features: Vec<usize>,
}

/// Why the audit refused to run (the CLI's exit code 2).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::geometry::{AuditError, audit};
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::{Silent, Thresholds};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // One grid with no geometry: nothing to measure.
/// let layer = read_layer(r#"{"type":"Feature","properties":{"code":"440304001"},"geometry":null}"#, &ReadOptions::default())?;
/// let err = audit(&layer, None, Thresholds::default(), &Silent).unwrap_err();
/// assert_eq!(err, AuditError::NothingToMeasure);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The layer fits its territory far better once shifted from a Chinese map datum.
    #[error(
        "the grids look like {} coordinates, not WGS-84: {fit}. Re-run with --crs {} to convert them, or --crs wgs84 to audit them as they are",
        fit.best.label(),
        fit.best.name()
    )]
    LooksShifted {
        /// How the layer fits the territory as given and as the datum that fits.
        fit: crate::datum::DatumFit,
    },
    /// No grid can be measured.
    #[error("no feature has a geometry that can be measured")]
    NothingToMeasure,
}

/// Audits a layer's geometry, codes and staffing.
///
/// # Errors
/// [`AuditError`] when the layer cannot be audited as given.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::geometry::{TerritorySource, audit};
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::{Kind, Silent, Thresholds};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Two grids of Futian with a 0.001° (about 100 m) strip between them; the second is unstaffed.
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// // The territory: both grids and the strip.
/// let territory = MultiPolygon::new(vec![polygon![
///     (x: 114.05, y: 22.54), (x: 114.07, y: 22.54), (x: 114.07, y: 22.55), (x: 114.05, y: 22.55)]]);
/// let result = audit(&layer, Some(&territory), Thresholds::default(), &Silent)?;
/// let gap = &result.findings[0];
/// assert_eq!(gap.kind, Kind::Gap);
/// assert_eq!(gap.grids, ["440304001", "440304002"]); // the grids on either side
/// // 0.001° by 0.01°: about 103 m by 1.1 km.
/// assert!(gap.area_m2.is_some_and(|a| (a - 113_900.0).abs() < 500.0));
/// assert_eq!(result.findings[1].message, "440304002 has no grid worker assigned");
/// # Ok(())
/// # }
/// ```
pub fn audit(
    layer: &AuditLayer,
    territory: Option<&MultiPolygon<f64>>,
    t: Thresholds,
    progress: &dyn Progress,
) -> Result<GeometryAudit, AuditError> {
    let mut findings: Vec<Finding> = layer.faults.clone();
    let feats = &layer.features;
    let codes = Codes::read(feats, &mut findings);

    let grids: Vec<&AuditFeature> =
        feats.iter().filter(|f| f.geometry.is_some() && !codes.is_parent(f.index)).collect();
    let unmeasured = feats.iter().filter(|f| f.geometry.is_none() && !codes.is_parent(f.index)).count();
    if grids.is_empty() {
        return Err(AuditError::NothingToMeasure);
    }
    for g in feats.iter().filter(|f| !codes.is_parent(f.index)) {
        if g.manager.is_none() {
            let label = g.label();
            findings.push(Finding::new(
                Kind::Unstaffed,
                vec![label.clone()],
                vec![g.index],
                format!("{label} has no grid worker assigned"),
            ));
        }
    }

    let tree = envelope_tree(grids.iter().map(|g| geom(g)));
    findings.extend(overlaps(&grids, &tree, t, progress));

    progress.stage("union of grids", 1);
    let union = union_of(grids.iter().flat_map(|g| geom(g).0.iter()));
    progress.advance(1);

    let top: Vec<&AuditFeature> =
        feats.iter().filter(|f| f.geometry.is_some() && codes.is_parent(f.index) && codes.is_top(f.index)).collect();
    let (terr, source) = match territory {
        Some(t) => (union_of(t.0.iter()), TerritorySource::Given),
        None if !top.is_empty() => {
            (union_of(top.iter().flat_map(|f| geom(f).0.iter())), TerritorySource::TopLevelUnits { count: top.len() })
        }
        None => (
            MultiPolygon(union.0.iter().map(|p| Polygon::new(p.exterior().clone(), vec![])).collect()),
            TerritorySource::LayerOutline,
        ),
    };
    // A declared WGS-84 is checked too (tools write CRS84 whatever they hold); only the caller's
    // word settles the datum.
    if source == TerritorySource::Given && layer.crs_source != CrsSource::Caller {
        check_datum(&union, &terr)?;
    }

    progress.stage("gaps", 1);
    let gaps = overlay::difference(&terr, &union);
    for p in pieces(gaps, &t) {
        let (piece, a, sliver) = (&p.geometry, p.area_m2, p.is_sliver(&t));
        let kind = if sliver { Kind::GapSliver } else { Kind::Gap };
        let around = touching(piece, &grids, &tree, 8);
        let within = top.iter().filter(|u| piece_in(piece, geom(u))).map(|u| full_label(u)).collect::<Vec<_>>();
        let place = if within.is_empty() { String::new() } else { format!(" in {}", within.join(", ")) };
        let next = if around.is_empty() {
            String::new()
        } else {
            format!(", next to {}", around.iter().map(|&i| grids[i].label()).collect::<Vec<_>>().join(", "))
        };
        let msg = format!("{} of territory{place} lies in no grid{next}", human_area(a));
        let f = Finding::new(
            kind,
            around.iter().map(|&i| grids[i].label()).collect(),
            around.iter().map(|&i| grids[i].index).collect(),
            msg,
        );
        findings.push(placed(f, piece, a));
    }
    progress.advance(1);

    if source == TerritorySource::Given {
        progress.stage("grids outside the territory", grids.len() as u64);
        findings.extend(outside_of(&grids, &terr, t, progress, |g, a, share| {
            let wholly = share > 0.999;
            let how = if wholly { "wholly".to_owned() } else { format!("{:.1}% ({})", share * 100.0, human_area(a)) };
            (Kind::OutsideTerritory, format!("{} lies {how} outside the territory", g.label()))
        }));
    }

    if let TerritorySource::TopLevelUnits { .. } = source {
        // Grids with no ancestor in the layer are checked against the territory directly (the
        // others are checked against their parents below).
        let strays: Vec<&AuditFeature> = grids.iter().copied().filter(|g| codes.is_top(g.index)).collect();
        if !strays.is_empty() {
            progress.stage("grids outside the top-level units", strays.len() as u64);
            findings.extend(outside_of(&strays, &terr, t, progress, |g, a, share| {
                let how = if share > 0.999 {
                    "wholly".to_owned()
                } else {
                    format!("{:.1}% ({})", share * 100.0, human_area(a))
                };
                (Kind::OutsideTerritory, format!("{} lies {how} outside the layer's top-level units", g.label()))
            }));
        }
    }
    findings.extend(outside_parents(feats, &codes, t, progress));

    findings.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.features.cmp(&b.features)));
    Ok(GeometryAudit {
        territory: source,
        territory_m2: area_m2(&terr),
        covered_m2: area_m2(&union),
        grids: grids.len(),
        parents: feats.iter().filter(|f| codes.is_parent(f.index)).count(),
        unmeasured,
        findings,
        grid_features: grids.iter().map(|g| g.index).collect(),
    })
}

static EMPTY: MultiPolygon<f64> = MultiPolygon(Vec::new());

/// A feature's geometry; empty when it cannot be measured.
fn geom(f: &AuditFeature) -> &MultiPolygon<f64> {
    f.geometry.as_ref().unwrap_or(&EMPTY)
}

/// The union of polygons (see [`overlay`] for why not `geo::unary_union`).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::geometry::union_of;
/// use geo::polygon;
/// let west = polygon![(x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)];
/// let east = polygon![(x: 114.06, y: 22.54), (x: 114.07, y: 22.54), (x: 114.07, y: 22.55), (x: 114.06, y: 22.55)];
/// let community = union_of([&west, &east]);
/// assert_eq!(community.0.len(), 1);
/// assert!(community.0[0].interiors().is_empty());
/// ```
#[must_use]
pub fn union_of<'a>(polys: impl IntoIterator<Item = &'a Polygon<f64>>) -> MultiPolygon<f64> {
    overlay::union(polys)
}

type Env = GeomWithData<Rectangle<[f64; 2]>, usize>;

fn envelope_tree<'a>(geoms: impl Iterator<Item = &'a MultiPolygon<f64>>) -> RTree<Env> {
    let items = geoms
        .enumerate()
        .filter_map(|(i, g)| {
            g.bounding_rect().map(|r| Env::new(Rectangle::from_corners(r.min().into(), r.max().into()), i))
        })
        .collect();
    RTree::bulk_load(items)
}

fn aabb(r: Rect<f64>) -> AABB<[f64; 2]> {
    AABB::from_corners(r.min().into(), r.max().into())
}

/// Every pair of grids that share area, with the shared polygon.
fn overlaps(grids: &[&AuditFeature], tree: &RTree<Env>, t: Thresholds, progress: &dyn Progress) -> Vec<Finding> {
    let mut pairs = Vec::new();
    for (i, g) in grids.iter().enumerate() {
        let Some(r) = g.geometry.as_ref().and_then(BoundingRect::bounding_rect) else { continue };
        pairs.extend(tree.locate_in_envelope_intersecting(&aabb(r)).map(|e| e.data).filter(|&j| j > i).map(|j| (i, j)));
    }
    progress.stage("overlaps between grids", pairs.len() as u64);
    let found: Vec<Finding> = pairs
        .par_iter()
        .filter_map(|&(i, j)| {
            let shared = overlay::intersection(geom(grids[i]), geom(grids[j]));
            progress.advance(1);
            let parts = pieces(shared, &t);
            if parts.is_empty() {
                return None;
            }
            let a: f64 = parts.iter().map(|p| p.area_m2).sum();
            let sliver = parts.iter().all(|p| p.is_sliver(&t));
            let mp = MultiPolygon(parts.into_iter().flat_map(|p| p.geometry.0).collect());
            let kind = if sliver { Kind::OverlapSliver } else { Kind::Overlap };
            let (x, y) = (grids[i].label(), grids[j].label());
            let f = Finding::new(
                kind,
                vec![x.clone(), y.clone()],
                vec![grids[i].index, grids[j].index],
                format!("{x} and {y} overlap by {}", human_area(a)),
            );
            Some(placed(f, &mp, a))
        })
        .collect();
    found
}

/// Up to `max` grids touching a piece, nearest first by envelope.
fn touching(piece: &MultiPolygon<f64>, grids: &[&AuditFeature], tree: &RTree<Env>, max: usize) -> Vec<usize> {
    use geo::{Distance, Euclidean};
    let Some(r) = piece.bounding_rect() else { return Vec::new() };
    // The polygon operations snap coordinates, so a gap's edge may stop a hair short of the grid
    // it follows: "touching" allows 1e-7° (about 1 cm).
    const TOUCH_DEG: f64 = 1e-7;
    let search = AABB::from_corners(
        [r.min().x - TOUCH_DEG, r.min().y - TOUCH_DEG],
        [r.max().x + TOUCH_DEG, r.max().y + TOUCH_DEG],
    );
    let mut out: Vec<usize> = tree
        .locate_in_envelope_intersecting(&search)
        .map(|e| e.data)
        .filter(|&i| {
            grids[i].geometry.as_ref().is_some_and(|g| g.intersects(piece) || Euclidean.distance(g, piece) < TOUCH_DEG)
        })
        .collect();
    out.sort_unstable();
    out.truncate(max);
    out
}

/// Code and name together (`440304 福田区`) where a unit has both.
fn full_label(f: &AuditFeature) -> String {
    match (&f.code, &f.name) {
        (Some(c), Some(n)) if c != n => format!("{c} {n}"),
        _ => f.label(),
    }
}

fn piece_in(piece: &MultiPolygon<f64>, unit: &MultiPolygon<f64>) -> bool {
    super::measure::location(piece).is_some_and(|[x, y]| unit.intersects(&Point::new(x, y)))
}

/// The part of each feature outside `container`: one finding per feature that reaches out,
/// below the sliver threshold as a warning. Each feature is cut, in parallel, against the
/// container clipped to the feature's box (one linear pass over the container, then a small
/// overlay), never one long piece of everything outside against every grid it touches: that
/// ran for minutes on the 33 Dongguan towns against their simplified outline.
fn outside_of(
    features: &[&AuditFeature],
    container: &MultiPolygon<f64>,
    t: Thresholds,
    progress: &dyn Progress,
    describe: impl Fn(&AuditFeature, f64, f64) -> (Kind, String) + Sync,
) -> Vec<Finding> {
    let found: Vec<Option<Finding>> = features
        .par_iter()
        .map(|g| {
            let out = outside_one(g, container, t, &describe);
            progress.advance(1);
            out
        })
        .collect();
    found.into_iter().flatten().collect()
}

fn outside_one(
    g: &AuditFeature,
    container: &MultiPolygon<f64>,
    t: Thresholds,
    describe: &impl Fn(&AuditFeature, f64, f64) -> (Kind, String),
) -> Option<Finding> {
    let geometry = g.geometry.as_ref()?;
    let r = geometry.bounding_rect()?;
    // The container near the feature: a box a little larger than the feature's, so that no edge
    // of the cut lies on the feature's own boundary.
    let pad = (r.width().max(r.height()) * 0.01).max(1e-6);
    let window = Rect::new((r.min().x - pad, r.min().y - pad), (r.max().x + pad, r.max().y + pad)).to_polygon();
    let near = overlay::intersection(container, &MultiPolygon(vec![window]));
    let parts = pieces(overlay::difference(geometry, &near), &t);
    if parts.is_empty() {
        return None;
    }
    let sliver = parts.iter().all(|p| p.is_sliver(&t));
    let mp = MultiPolygon(parts.into_iter().flat_map(|p| p.geometry.0).collect());
    let a = area_m2(&mp);
    let whole = area_m2(geometry);
    let share = if whole > 0.0 { (a / whole).min(1.0) } else { 1.0 };
    let (kind, msg) = describe(g, a, share);
    let mut f = placed(Finding::new(kind, vec![g.label()], vec![g.index], msg), &mp, a);
    if sliver {
        f.severity = Severity::Warning;
        f.message.push_str(" (a sliver)");
    }
    Some(f)
}

/// Units that reach outside their parent: each child cut against its parent.
fn outside_parents(feats: &[AuditFeature], codes: &Codes, t: Thresholds, progress: &dyn Progress) -> Vec<Finding> {
    let mut children: Vec<(&AuditFeature, &AuditFeature)> = Vec::new();
    for f in feats.iter().filter(|f| f.geometry.is_some()) {
        if let Some(p) = codes.parent_of(f.index).filter(|&p| feats[p].geometry.is_some()) {
            children.push((f, &feats[p]));
        }
    }
    progress.stage("units outside their parent", children.len() as u64);
    let found: Vec<Option<Finding>> = children
        .into_par_iter()
        .map(|(kid, parent)| {
            let out = outside_one(kid, geom(parent), t, &|g: &AuditFeature, a: f64, share: f64| {
                let how = if share > 0.999 {
                    "wholly".to_owned()
                } else {
                    format!("{:.1}% ({})", share * 100.0, human_area(a))
                };
                (Kind::OutsideParent, format!("{} lies {how} outside its parent {}", g.label(), parent.label()))
            });
            progress.advance(1);
            out
        })
        .collect();
    found.into_iter().flatten().collect()
}

/// Codes of the layer: which are valid, which units are parents, and each unit's parent.
struct Codes {
    parent_of: HashMap<usize, usize>,
    parents: HashSet<usize>,
    has_ancestor: HashSet<usize>,
}

impl Codes {
    fn read(feats: &[AuditFeature], findings: &mut Vec<Finding>) -> Self {
        let mut valid: HashMap<GridCode, Vec<usize>> = HashMap::new();
        for f in feats {
            let label = f.label();
            match &f.code {
                None => findings.push(Finding::new(
                    Kind::CodeMissing,
                    vec![label.clone()],
                    vec![f.index],
                    format!("{label} has no code"),
                )),
                Some(c) => match GridCode::parse(c) {
                    Ok(code) => valid.entry(code).or_default().push(f.index),
                    Err(e) => {
                        findings.push(Finding::new(Kind::CodeMalformed, vec![label], vec![f.index], e.to_string()));
                    }
                },
            }
        }
        let mut dups: Vec<(&GridCode, &Vec<usize>)> = valid.iter().filter(|(_, v)| v.len() > 1).collect();
        dups.sort();
        for (code, idx) in dups {
            findings.push(Finding::new(
                Kind::CodeDuplicate,
                vec![code.to_string(); idx.len()],
                idx.clone(),
                format!(
                    "code {code} is used by {} features (#{})",
                    idx.len(),
                    idx.iter().map(ToString::to_string).collect::<Vec<_>>().join(", #")
                ),
            ));
        }
        let first = |c: &GridCode| valid.get(c).and_then(|v| v.first().copied());
        // Each unit's parent is its nearest ancestor present in the layer (a layer may skip
        // levels); a unit is a parent when it is anyone's ancestor.
        let mut parent_of = HashMap::new();
        let mut has_ancestor = HashSet::new();
        let mut ancestors: HashSet<GridCode> = HashSet::new();
        for (code, idx) in &valid {
            let mut up = code.parent();
            while let Some(p) = up {
                if let Some(pi) = first(&p) {
                    for &i in idx {
                        has_ancestor.insert(i);
                        parent_of.entry(i).or_insert(pi);
                    }
                }
                up = p.parent();
                ancestors.insert(p);
            }
        }
        let parents: HashSet<usize> = valid.keys().filter(|c| ancestors.contains(*c)).filter_map(first).collect();
        if !parents.is_empty() {
            // Below the layer's top level, every unit's own parent must be there (a stray grid
            // with no ancestor at all is an orphan too).
            let top_depth = parents
                .iter()
                .filter_map(|&i| feats[i].code.as_deref())
                .filter_map(|c| GridCode::parse(c).ok())
                .map(|c| c.depth())
                .min()
                .unwrap_or(0);
            let mut orphans: Vec<(&GridCode, &Vec<usize>)> = valid
                .iter()
                .filter(|(c, _)| c.depth() > top_depth && c.parent().is_some_and(|p| !valid.contains_key(&p)))
                .collect();
            orphans.sort();
            for (code, idx) in orphans {
                let p = code.parent().map(|p| p.to_string()).unwrap_or_default();
                findings.push(Finding::new(
                    Kind::CodeOrphan,
                    vec![code.to_string()],
                    idx.clone(),
                    format!("{code}'s parent {p} is not in the layer"),
                ));
            }
        }
        Self { parent_of, parents, has_ancestor }
    }

    fn is_parent(&self, i: usize) -> bool {
        self.parents.contains(&i)
    }

    fn is_top(&self, i: usize) -> bool {
        !self.has_ancestor.contains(&i)
    }

    fn parent_of(&self, i: usize) -> Option<usize> {
        self.parent_of.get(&i).copied()
    }
}

/// Refuses a layer that matches the territory far better once read as GCJ-02 or BD-09: auditing
/// it as it stands would report a 300–700 m shifted mess of gaps and strays, and importing it
/// would misplace every grid.
fn check_datum(union: &MultiPolygon<f64>, terr: &MultiPolygon<f64>) -> Result<(), AuditError> {
    match crate::datum::fit(crate::datum::Reference::Whole(union, terr)) {
        Some(fit) if fit.shifted().is_some() => Err(AuditError::LooksShifted { fit }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Silent;
    use crate::audit::input::{ReadOptions, read_layer};
    use crate::{Crs, LonLat};
    use geo::polygon;

    fn sq(code: &str, x: f64, y: f64, w: f64, h: f64, manager: bool) -> String {
        let m = if manager { r#","manager":"王五""# } else { "" };
        format!(
            r#"{{"type":"Feature","properties":{{"code":"{code}"{m}}},"geometry":{{"type":"Polygon","coordinates":[[[{x},{y}],[{},{y}],[{},{}],[{x},{}],[{x},{y}]]]}}}}"#,
            x + w,
            x + w,
            y + h,
            y + h
        )
    }

    fn run(features: &[String], territory: Option<&MultiPolygon<f64>>) -> GeometryAudit {
        let text = format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(","));
        let layer = read_layer(&text, &ReadOptions::default()).unwrap();
        audit(&layer, territory, Thresholds::default(), &Silent).unwrap()
    }

    fn kinds(a: &GeometryAudit) -> Vec<Kind> {
        a.findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_clean_district_with_two_grids_passes() {
        let a = run(
            &[
                sq("440304", 114.0, 22.5, 0.02, 0.01, true),
                sq("440304001", 114.0, 22.5, 0.01, 0.01, true),
                sq("440304002", 114.01, 22.5, 0.01, 0.01, true),
            ],
            None,
        );
        assert_eq!(kinds(&a), Vec::<Kind>::new(), "{:#?}", a.findings);
        assert_eq!(a.territory, TerritorySource::TopLevelUnits { count: 1 });
        assert_eq!((a.grids, a.parents), (2, 1));
        assert!((a.covered_m2 - a.territory_m2).abs() < 1e-3);
    }

    #[test]
    fn a_gap_an_overlap_a_stray_and_an_unstaffed_grid_are_each_found_where_they_are() {
        let a = run(
            &[
                sq("440304", 114.0, 22.5, 0.03, 0.01, true),
                sq("440304001", 114.0, 22.5, 0.0105, 0.01, true), // 0.0005° into grid 2
                sq("440304002", 114.01, 22.5, 0.01, 0.01, false), // no worker
                // grid 3 starts 0.001° late (a gap) and reaches 0.002° past the district.
                sq("440304003", 114.021, 22.5, 0.011, 0.01, true),
            ],
            None,
        );
        let k = kinds(&a);
        assert_eq!(k, vec![Kind::Gap, Kind::Overlap, Kind::OutsideParent, Kind::Unstaffed], "{:#?}", a.findings);
        let gap = &a.findings[0];
        let [x, _] = gap.location.unwrap();
        assert!((114.020..114.021).contains(&x), "gap at {x}");
        assert_eq!(gap.grids, ["440304002", "440304003"]);
        let overlap = &a.findings[1];
        assert_eq!(overlap.grids, ["440304001", "440304002"]);
        // 0.0005° × 0.01° at 22.5°N ≈ 51.4 m × 1107 m.
        assert!((overlap.area_m2.unwrap() - 56_900.0).abs() < 600.0, "{:?}", overlap.area_m2);
        assert!(a.findings[2].message.contains("outside its parent 440304"));
    }

    #[test]
    fn slivers_are_reported_apart_and_do_not_fail() {
        // A 1e-5° (≈1 m) overlap strip 0.0005° (≈55 m) long: about 57 m².
        let a = run(
            &[sq("440304001", 114.0, 22.5, 0.01001, 0.0005, true), sq("440304002", 114.01, 22.5, 0.01, 0.0005, true)],
            None,
        );
        assert_eq!(kinds(&a), vec![Kind::OverlapSliver]);
        assert_eq!(a.findings[0].severity, Severity::Warning);
    }

    #[test]
    fn without_any_territory_the_holes_the_grids_enclose_are_gaps() {
        // A ring of four grids around an empty middle.
        let a = run(
            &[
                sq("440304001", 114.0, 22.5, 0.03, 0.01, true),
                sq("440304002", 114.0, 22.52, 0.03, 0.01, true),
                sq("440304003", 114.0, 22.51, 0.01, 0.01, true),
                sq("440304004", 114.02, 22.51, 0.01, 0.01, true),
            ],
            None,
        );
        assert_eq!(a.territory, TerritorySource::LayerOutline);
        assert_eq!(kinds(&a), vec![Kind::Gap]);
        assert_eq!(a.findings[0].grids.len(), 4);
    }

    #[test]
    fn a_stray_grid_with_no_ancestor_is_an_orphan_outside_the_districts() {
        let a = run(
            &[
                sq("440304", 114.0, 22.5, 0.01, 0.01, true),
                sq("440304001", 114.0, 22.5, 0.01, 0.01, true),
                sq("440305001", 114.1, 22.5, 0.01, 0.01, true),
            ],
            None,
        );
        assert_eq!(kinds(&a), vec![Kind::OutsideTerritory, Kind::CodeOrphan], "{:#?}", a.findings);
        assert!(a.findings[0].message.contains("440305001 lies wholly outside"));
    }

    #[test]
    fn codes_missing_malformed_duplicated_and_orphaned_are_named() {
        let a = run(
            &[
                sq("440304", 114.0, 22.5, 0.04, 0.01, true),
                sq("440304001", 114.0, 22.5, 0.01, 0.01, true),
                sq("440304001", 114.01, 22.5, 0.01, 0.01, true),
                sq("44030400X", 114.02, 22.5, 0.01, 0.01, true),
                sq("440304009001", 114.03, 22.5, 0.01, 0.01, true),
            ],
            None,
        );
        let k = kinds(&a);
        assert!(
            k.contains(&Kind::CodeMalformed) && k.contains(&Kind::CodeDuplicate) && k.contains(&Kind::CodeOrphan),
            "{k:?}"
        );
        let orphan = a.findings.iter().find(|f| f.kind == Kind::CodeOrphan).unwrap();
        assert!(orphan.message.contains("440304009"), "{}", orphan.message);
    }

    #[test]
    fn a_layer_drawn_in_gcj02_is_refused_against_a_wgs84_territory() {
        let territory = MultiPolygon(vec![
            polygon![(x: 114.0, y: 22.5), (x: 114.02, y: 22.5), (x: 114.02, y: 22.52), (x: 114.0, y: 22.52)],
        ]);
        let gcj = |x: f64, y: f64| Crs::Gcj02.from_wgs84(LonLat::new(x, y).unwrap());
        let (a, b) = (gcj(114.0, 22.5), gcj(114.02, 22.52));
        let f = sq("440304001", a.lon(), a.lat(), b.lon() - a.lon(), b.lat() - a.lat(), true);
        let text = format!(r#"{{"type":"FeatureCollection","features":[{f}]}}"#);
        let layer = read_layer(&text, &ReadOptions::default()).unwrap();
        let e = audit(&layer, Some(&territory), Thresholds::default(), &Silent).unwrap_err();
        assert!(matches!(e, AuditError::LooksShifted { fit } if fit.best == Crs::Gcj02), "{e}");
        let layer = read_layer(&text, &ReadOptions { crs: Some(Crs::Gcj02), ..ReadOptions::default() }).unwrap();
        let ok = audit(&layer, Some(&territory), Thresholds::default(), &Silent).unwrap();
        // GCJ-02's shift bends straight edges by a few metres over 2 km; what is left after
        // converting the corners is that, not a misplaced grid.
        let off: f64 = ok.findings.iter().filter_map(|f| f.area_m2).sum();
        assert!(off < 0.01 * ok.territory_m2, "converted, the grid fits: {:#?}", ok.findings);
    }
}
