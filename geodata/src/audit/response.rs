//! Response coverage: how much of the territory, and how many of its households, lie within T
//! minutes of the nearest security post or available unit — and where one more post would reach
//! the most households that are not.
//!
//! With a road network, time is the road travel time (one Dijkstra from all sources at once,
//! bounded by T; a point more than 500 m from every road falls back to the straight line); without
//! one, the straight-line distance at an assumed speed, and the report says which. Ground is
//! sampled by H3 cells (resolution 10: 0.015 km²); uncovered cells are dissolved into polygons,
//! clipped to the grids, with the households in each.
//!
//! The suggestion: households not covered are grouped by H3 resolution-8 cell (0.74 km²); the
//! household-weighted centre of each of the 60 fullest groups is a candidate site, and the
//! candidate whose own T-minute reach takes in the most uncovered households wins.

use super::input::AuditFeature;
use super::measure::{human_area, pieces, placed};
use super::place::GridPlaces;
use super::workload::Dwelling;
use super::{Finding, Kind, Progress, Thresholds};
use crate::roads::{RoadGraph, Snap};
use crate::{LonLat, haversine_m, overlay};
use geo::MultiPolygon;
use h3o::geom::{ContainmentMode, SolventBuilder, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// How travel time is measured.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::response::{Reach, audit};
/// use safegrid_geodata::audit::workload::Dwelling;
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // One post at the western edge; 3 minutes at 20 km/h reach 1 km.
/// let post = LonLat::new(114.0505, 22.545)?;
/// let homes = [
///     Dwelling { at: LonLat::new(114.053, 22.545)?, households: 200, people: 520 },
///     Dwelling { at: LonLat::new(114.068, 22.546)?, households: 150, people: 400 },
/// ];
/// let result = audit(&grids, &[post], &homes, Reach::Distance { kmh: 20.0 }, 3.0, &Silent);
/// assert_eq!(result.method, "straight line at 20 km/h");
/// // A faster assumed speed reaches everything.
/// let faster = audit(&grids, &[post], &homes, Reach::Distance { kmh: 60.0 }, 3.0, &Silent);
/// assert_eq!(faster.households_covered, 350);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy)]
pub enum Reach<'a> {
    /// Along a road network.
    Road(&'a RoadGraph),
    /// In a straight line at this speed (km/h).
    Distance {
        /// Assumed speed.
        kmh: f64,
    },
}

/// Speed off the road network, and with no network at all: an urban patrol's straight-line
/// progress (its road speed over the detour factor of a city street grid, about 1.4).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::response::STRAIGHT_LINE_KMH;
/// // In the 15 minutes a response norm allows, 5 km in a straight line.
/// let reach_m = STRAIGHT_LINE_KMH / 3.6 * 15.0 * 60.0;
/// assert!((reach_m - 5_000.0).abs() < 1e-9);
/// ```
pub const STRAIGHT_LINE_KMH: f64 = 20.0;

/// A suggested site for one more post.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::response::{Reach, audit};
/// use safegrid_geodata::audit::workload::Dwelling;
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // One post at the western edge; 3 minutes at 20 km/h reach 1 km.
/// let post = LonLat::new(114.0505, 22.545)?;
/// let homes = [
///     Dwelling { at: LonLat::new(114.053, 22.545)?, households: 200, people: 520 },
///     Dwelling { at: LonLat::new(114.068, 22.546)?, households: 150, people: 400 },
/// ];
/// let result = audit(&grids, &[post], &homes, Reach::Distance { kmh: 20.0 }, 3.0, &Silent);
/// let s = result.suggestion.ok_or("everything is covered")?;
/// assert_eq!(s.households_gained, 150);
/// assert!((s.share_households_after - 1.0).abs() < 1e-12);
/// assert!(s.at[0] > 114.06); // in the east, by the households the post misses
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// Where, `[lon, lat]`.
    pub at: [f64; 2],
    /// Households not covered today that it would reach within T.
    pub households_gained: u64,
    /// The share of households covered with it.
    pub share_households_after: f64,
}

/// The result of a response-coverage audit.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::response::{Reach, audit};
/// use safegrid_geodata::audit::workload::Dwelling;
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // One post at the western edge; 3 minutes at 20 km/h reach 1 km.
/// let post = LonLat::new(114.0505, 22.545)?;
/// let homes = [
///     Dwelling { at: LonLat::new(114.053, 22.545)?, households: 200, people: 520 },
///     Dwelling { at: LonLat::new(114.068, 22.546)?, households: 150, people: 400 },
/// ];
/// let result = audit(&grids, &[post], &homes, Reach::Distance { kmh: 20.0 }, 3.0, &Silent);
/// assert_eq!((result.households, result.households_covered), (350, 200));
/// assert!((result.share_households - 200.0 / 350.0).abs() < 1e-12);
/// assert!(result.cells_covered > 0 && result.cells_covered < result.cells);
/// assert!(result.share_area > 0.3 && result.share_area < 0.7);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct ResponseAudit {
    /// T, minutes.
    pub minutes: f64,
    /// `road` or `straight line at N km/h`.
    pub method: String,
    /// Sources: posts and units counted.
    pub sources: usize,
    /// Ground cells sampled.
    pub cells: usize,
    /// Of those, within T.
    pub cells_covered: usize,
    /// Share of the territory within T.
    pub share_area: f64,
    /// Households.
    pub households: u64,
    /// Of those, within T.
    pub households_covered: u64,
    /// Share of households within T.
    pub share_households: f64,
    /// Where one more post would help most, if anything is uncovered.
    pub suggestion: Option<Suggestion>,
    /// Uncovered areas, with their households.
    pub findings: Vec<Finding>,
}

/// Points to be timed, snapped to the road network once: the suggestion times the same
/// uncovered households from up to 60 candidate sites.
struct Targets {
    points: Vec<LonLat>,
    /// Per point, where it meets the road network (empty without a network).
    snaps: Vec<Option<Snap>>,
}

impl Targets {
    fn new(points: Vec<LonLat>, reach: Reach<'_>) -> Self {
        let snaps = match reach {
            Reach::Road(g) => points.par_iter().map(|p| g.snap(*p)).collect(),
            Reach::Distance { .. } => Vec::new(),
        };
        Self { points, snaps }
    }

    /// The targets at `idx`, keeping their snaps.
    fn select(&self, idx: &[usize]) -> Self {
        Self {
            points: idx.iter().map(|&i| self.points[i]).collect(),
            snaps: if self.snaps.is_empty() { Vec::new() } else { idx.iter().map(|&i| self.snaps[i]).collect() },
        }
    }
}

/// Seconds in a straight line from the nearest of `from` at `kmh`.
fn beeline_s(p: LonLat, from: &[LonLat], kmh: f64) -> f64 {
    from.iter().map(|s| haversine_m(*s, p)).fold(f64::INFINITY, f64::min) / (kmh / 3.6)
}

/// Seconds from the nearest source to each target, by the chosen measure.
fn times(targets: &Targets, sources: &[LonLat], reach: Reach<'_>, limit_s: f64) -> Vec<f64> {
    match reach {
        Reach::Distance { kmh } => targets.points.par_iter().map(|p| beeline_s(*p, sources, kmh)).collect(),
        Reach::Road(g) => {
            let mut snaps = Vec::new();
            let mut off_network = Vec::new();
            for s in sources {
                match g.snap(*s) {
                    Some(x) => snaps.push(x),
                    None => off_network.push(*s),
                }
            }
            let node_ms = g.times_from(&snaps, limit_s);
            // Sources on a point's own segment may reach it without passing a node.
            let mut on_segment: HashMap<usize, Vec<Snap>> = HashMap::new();
            for s in &snaps {
                on_segment.entry(RoadGraph::segment_of(s)).or_default().push(*s);
            }
            targets
                .points
                .par_iter()
                .zip(&targets.snaps)
                .map(|(p, snap)| match snap {
                    Some(to) => {
                        let road = g.time_to(&node_ms, to).unwrap_or(f64::INFINITY);
                        let same = on_segment
                            .get(&RoadGraph::segment_of(to))
                            .into_iter()
                            .flatten()
                            .filter_map(|s| g.same_segment_s(s, to))
                            .fold(f64::INFINITY, f64::min);
                        // Sources more than 500 m from every road go in a straight line.
                        road.min(same).min(beeline_s(*p, &off_network, STRAIGHT_LINE_KMH))
                    }
                    None => beeline_s(*p, sources, STRAIGHT_LINE_KMH),
                })
                .collect()
        }
    }
}

/// Audits response coverage of `grids` from `sources` within `minutes`.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::response::{Reach, audit};
/// use safegrid_geodata::audit::workload::Dwelling;
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // One post at the western edge; 3 minutes at 20 km/h reach 1 km.
/// let post = LonLat::new(114.0505, 22.545)?;
/// let homes = [
///     Dwelling { at: LonLat::new(114.053, 22.545)?, households: 200, people: 520 },
///     Dwelling { at: LonLat::new(114.068, 22.546)?, households: 150, people: 400 },
/// ];
/// let result = audit(&grids, &[post], &homes, Reach::Distance { kmh: 20.0 }, 3.0, &Silent);
/// // The eastern part is beyond reach, with the 150 households there.
/// let unreachable = &result.findings[0];
/// assert_eq!(unreachable.kind, Kind::Unreachable);
/// assert_eq!(unreachable.figures.map(|f| f.households), Some(150));
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn audit(
    grids: &[&AuditFeature],
    sources: &[LonLat],
    households: &[Dwelling],
    reach: Reach<'_>,
    minutes: f64,
    progress: &dyn Progress,
) -> ResponseAudit {
    let limit_s = minutes * 60.0;
    let res = Resolution::Ten;
    progress.stage("ground cells", grids.len() as u64);
    let mut cells: Vec<CellIndex> = grids
        .par_iter()
        .flat_map_iter(|g| {
            let mut tiler = TilerBuilder::new(res).containment_mode(ContainmentMode::ContainsCentroid).build();
            for p in g.geometry.iter().flat_map(|m| m.0.iter()) {
                let _ = tiler.add(p.clone());
            }
            progress.advance(1);
            tiler.into_coverage().collect::<Vec<_>>()
        })
        .collect();
    cells.sort_unstable();
    cells.dedup();
    progress.stage("travel times", 2);
    let centres: Vec<LonLat> = cells
        .iter()
        .filter_map(|c| {
            let ll = LatLng::from(*c);
            LonLat::new(ll.lng(), ll.lat()).ok()
        })
        .collect();
    let cell_t = times(&Targets::new(centres, reach), sources, reach, limit_s);
    progress.advance(1);
    let homes = Targets::new(households.iter().map(|d| d.at).collect(), reach);
    let home_t = times(&homes, sources, reach, limit_s);
    progress.advance(1);

    let covered_cells = cell_t.iter().filter(|t| **t <= limit_s).count();
    let total: u64 = households.iter().map(|d| u64::from(d.households)).sum();
    let covered: u64 =
        households.iter().zip(&home_t).filter(|(_, t)| **t <= limit_s).map(|(d, _)| u64::from(d.households)).sum();

    // Uncovered ground as polygons, clipped to the grids, with the households in each.
    progress.stage("uncovered areas", 1);
    let t = Thresholds::default();
    let uncovered: Vec<CellIndex> = cells.iter().zip(&cell_t).filter(|(_, t)| **t > limit_s).map(|(c, _)| *c).collect();
    let mut findings = Vec::new();
    if !uncovered.is_empty() {
        let dissolved = SolventBuilder::new()
            .build()
            .dissolve(uncovered.iter().copied())
            .unwrap_or_else(|_| MultiPolygon(Vec::new()));
        let land = overlay::union(grids.iter().filter_map(|g| g.geometry.as_ref()).flat_map(|g| g.0.iter()));
        let areas = pieces(overlay::intersection(&dissolved, &land), &t);
        // Each uncovered household to its area, once.
        let as_features: Vec<AuditFeature> = areas
            .iter()
            .enumerate()
            .map(|(index, p)| AuditFeature {
                index,
                code: None,
                name: None,
                manager: None,
                geometry: Some(p.geometry.clone()),
            })
            .collect();
        let places = GridPlaces::new(&as_features.iter().collect::<Vec<_>>());
        let mut in_area = vec![0_u64; areas.len()];
        for (d, tt) in households.iter().zip(&home_t) {
            if *tt > limit_s
                && let Some(a) = places.locate(d.at)
            {
                in_area[a] += u64::from(d.households);
            }
        }
        for (p, hh) in areas.iter().zip(in_area) {
            let f = Finding::new(
                Kind::Unreachable,
                Vec::new(),
                Vec::new(),
                format!(
                    "{} with {hh} households lies beyond {minutes} min of every post and available unit",
                    human_area(p.area_m2)
                ),
            );
            let mut f = placed(f, &p.geometry, p.area_m2);
            f.figures = Some(super::workload::Figures { households: hh, people: 0, incidents: 0 });
            findings.push(f);
        }
        findings.sort_by(|a, b| b.figures.map_or(0, |f| f.households).cmp(&a.figures.map_or(0, |f| f.households)));
    }
    progress.advance(1);

    progress.stage("where one more post would help", 1);
    let suggestion = suggest(households, &homes, &home_t, limit_s, reach, total, covered);
    progress.advance(1);
    let method = match reach {
        Reach::Road(_) => format!("road (straight line at {STRAIGHT_LINE_KMH} km/h beyond 500 m of a road)"),
        Reach::Distance { kmh } => format!("straight line at {kmh} km/h"),
    };
    ResponseAudit {
        minutes,
        method,
        sources: sources.len(),
        cells: cells.len(),
        cells_covered: covered_cells,
        share_area: if cells.is_empty() { 0.0 } else { covered_cells as f64 / cells.len() as f64 },
        households: total,
        households_covered: covered,
        share_households: if total == 0 { 1.0 } else { covered as f64 / total as f64 },
        suggestion,
        findings,
    }
}

/// Candidate sites: the weighted centres of the fullest groups of uncovered households; the
/// one reaching the most of them wins.
fn suggest(
    households: &[Dwelling],
    homes: &Targets,
    home_t: &[f64],
    limit_s: f64,
    reach: Reach<'_>,
    total: u64,
    covered: u64,
) -> Option<Suggestion> {
    let out_idx: Vec<usize> = (0..households.len()).filter(|&i| home_t[i] > limit_s).collect();
    let out: Vec<&Dwelling> = out_idx.iter().map(|&i| &households[i]).collect();
    if out.is_empty() {
        return None;
    }
    let mut groups: HashMap<CellIndex, (f64, f64, u64)> = HashMap::new();
    for d in &out {
        let Ok(ll) = LatLng::new(d.at.lat(), d.at.lon()) else { continue };
        let g = groups.entry(ll.to_cell(Resolution::Eight)).or_default();
        let w = u64::from(d.households.max(1));
        g.0 += d.at.lon() * w as f64;
        g.1 += d.at.lat() * w as f64;
        g.2 += w;
    }
    let mut ranked: Vec<(f64, f64, u64)> = groups.into_values().collect();
    ranked.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.total_cmp(&b.0)));
    ranked.truncate(60);
    let out_targets = homes.select(&out_idx);
    let best = ranked
        .par_iter()
        .filter_map(|&(x, y, w)| {
            let at = LonLat::new(x / w as f64, y / w as f64).ok()?;
            let t = times(&out_targets, &[at], reach, limit_s);
            let gained: u64 =
                out.iter().zip(&t).filter(|(_, t)| **t <= limit_s).map(|(d, _)| u64::from(d.households)).sum();
            Some((gained, at))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.lon().total_cmp(&a.1.lon())))?;
    (best.0 > 0).then(|| Suggestion {
        at: [best.1.lon(), best.1.lat()],
        households_gained: best.0,
        share_households_after: if total == 0 { 1.0 } else { (covered + best.0) as f64 / total as f64 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Silent;

    fn grid(index: usize, x: f64) -> AuditFeature {
        crate::audit::fixtures::square_grid(index, x, 0.03)
    }

    #[test]
    fn by_straight_line_a_western_post_leaves_the_east_uncovered_and_a_post_there_is_suggested() {
        let (a, b) = (grid(0, 114.0), grid(1, 114.03));
        let post = LonLat::new(114.01, 22.515).unwrap();
        // 100 homes near the post, 300 in an eastern estate, 50 scattered in the middle.
        let mut hh = Vec::new();
        let at = |x: f64, y: f64| LonLat::new(x, y).unwrap();
        for i in 0..100 {
            hh.push(Dwelling {
                at: at(114.008 + f64::from(i % 10) * 0.0004, 22.513 + f64::from(i / 10) * 0.0004),
                households: 1,
                people: 3,
            });
        }
        for i in 0..300 {
            hh.push(Dwelling {
                at: at(114.05 + f64::from(i % 20) * 0.0003, 22.51 + f64::from(i / 20) * 0.0003),
                households: 1,
                people: 3,
            });
        }
        let r = audit(&[&a, &b], &[post], &hh, Reach::Distance { kmh: 20.0 }, 5.0, &Silent);
        // 5 min at 20 km/h: 1,667 m around the post.
        let brute = hh.iter().filter(|d| haversine_m(post, d.at) <= 20.0 / 3.6 * 300.0).count() as u64;
        assert_eq!(r.households_covered, brute);
        assert_eq!(r.households_covered, 100);
        assert!(r.share_area > 0.1 && r.share_area < 0.5, "{}", r.share_area);
        assert!(!r.findings.is_empty());
        assert_eq!(
            r.findings[0].figures.unwrap().households,
            300,
            "the eastern estate is the largest uncovered area's"
        );
        let s = r.suggestion.unwrap();
        assert_eq!(s.households_gained, 300);
        assert!((114.05..114.056).contains(&s.at[0]), "{:?}", s.at);
        assert!((s.share_households_after - 1.0).abs() < 1e-9);
    }
}
