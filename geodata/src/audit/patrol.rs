//! Patrol coverage: for each grid and a time window, how much of its ground any patrol passed
//! through, how many patrol hours it had, and which grids no patrol entered lately.
//!
//! Ground is counted in H3 cells (resolution 10 by default: 0.015 km², about 66 m a side). A
//! grid's cells are those whose centre lies in it. A patrol passes through the cells of its
//! fixes and, between two fixes of one unit no more than `max_gap_s` apart, the cells on the
//! straight line between them (H3 `grid_path_cells`): at 30 km/h and a fix every 10 s a car
//! moves 83 m, more than a cell, so fixes alone would leave holes in a street it drove. Patrol
//! time is the time between such fixes, charged to the grid the earlier fix lies in (exactly,
//! by point in polygon — not by cell, which would blur borders by a cell's width).

use super::input::AuditFeature;
use super::place::GridPlaces;
use super::{Finding, Kind, Progress, Severity};
use crate::LonLat;
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// One position of a patrol unit.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::patrol::PatrolFix;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fix = PatrolFix { unit: 12, t_ms: 1_714_521_600_000, at: LonLat::new(114.0579, 22.5431)? };
/// let mut trace = vec![PatrolFix { t_ms: fix.t_ms + 10_000, ..fix }, fix];
/// trace.sort_by_key(|f| (f.unit, f.t_ms)); // the order the audit needs
/// assert_eq!(trace[0], fix);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatrolFix {
    /// Which unit (any id, dense or not).
    pub unit: i64,
    /// When, Unix milliseconds.
    pub t_ms: i64,
    /// Where.
    pub at: LonLat,
}

/// What the patrol audit looks at.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::patrol::PatrolOptions;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A week, with fixes up to 10 minutes apart still counted as one patrol.
/// let opts = PatrolOptions { max_gap_s: 600, ..PatrolOptions::last_hours(1_714_521_600_000, 7 * 24) };
/// assert_eq!(opts.until_ms - opts.from_ms, 7 * 24 * 3_600_000);
/// assert_eq!(serde_json::to_value(opts)?["res"], 10); // the resolution as a number
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PatrolOptions {
    /// Window start, Unix milliseconds (inclusive). Coverage and hours count fixes from here;
    /// recency looks back `recent_hours` from the end even if that is earlier.
    pub from_ms: i64,
    /// Window end, Unix milliseconds (exclusive).
    pub until_ms: i64,
    /// H3 resolution of the ground cells.
    #[serde(serialize_with = "res_number")]
    pub res: Resolution,
    /// Two fixes further apart in time than this are not one continuous patrol (seconds).
    pub max_gap_s: i64,
    /// A grid with no fix in this many hours before the window's end is unpatrolled.
    pub recent_hours: i64,
    /// Grids whose patrolled share is below this are listed (a warning); 0 lists none.
    pub min_share: f64,
}

#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's `serialize_with` passes the field by reference")]
fn res_number<S: serde::Serializer>(r: &Resolution, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(u8::from(*r))
}

impl PatrolOptions {
    /// The last `hours` before `until_ms`, resolution 10, 5-minute gaps, 24 h recency, 25%.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::patrol::PatrolOptions;
    /// use h3o::Resolution;
    /// let until = 1_714_521_600_000; // 2024-05-01 08:00 China time
    /// let opts = PatrolOptions::last_hours(until, 8);
    /// assert_eq!(opts.from_ms, until - 8 * 3_600_000);
    /// assert_eq!((opts.res, opts.max_gap_s, opts.recent_hours, opts.min_share), (Resolution::Ten, 300, 24, 0.25));
    /// ```
    #[must_use]
    pub fn last_hours(until_ms: i64, hours: i64) -> Self {
        Self {
            from_ms: until_ms.saturating_sub(hours.saturating_mul(3_600_000)),
            until_ms,
            res: Resolution::Ten,
            max_gap_s: 300,
            recent_hours: 24,
            // A quarter: a grid a patrol only crossed on one through road scores about that.
            min_share: 0.25,
        }
    }
}

/// One grid's patrol figures.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::patrol::{PatrolFix, PatrolOptions, audit};
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // 2024-05-01 08:00 China time; one car drives east across the first grid for 10 minutes,
/// // a fix every 10 s, and stops before the second.
/// let start_ms = 1_714_521_600_000;
/// let fixes = (0..=60)
///     .map(|i| Ok(PatrolFix { unit: 7, t_ms: start_ms + i * 10_000, at: LonLat::new(114.0505 + 0.00015 * i as f64, 22.545)? }))
///     .collect::<Result<Vec<_>, safegrid_geodata::CoordError>>()?;
/// let opts = PatrolOptions::last_hours(start_ms + 3_600_000, 24);
/// let result = audit(&grids, &fixes, opts, &Silent);
/// let first = &result.grids[0];
/// assert_eq!(first.grid, "440304001");
/// assert!(first.visited > 0 && first.visited < first.cells);
/// assert!((first.hours - 10.0 / 60.0).abs() < 1e-9); // ten minutes
/// assert_eq!(first.last_patrol.as_deref(), Some("2024-05-01 08:10 +08:00"));
/// assert_eq!(result.grids[1].last_patrol, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct GridPatrol {
    /// The grid.
    pub grid: String,
    /// Its feature index.
    pub feature: usize,
    /// Its ground cells.
    pub cells: u32,
    /// Of those, the cells a patrol passed through.
    pub visited: u32,
    /// `visited / cells`.
    pub share: f64,
    /// Patrol hours spent in it.
    pub hours: f64,
    /// Its latest fix in the window (RFC 3339, China time), if any.
    pub last_patrol: Option<String>,
}

/// The result of a patrol audit.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::patrol::{PatrolFix, PatrolOptions, audit};
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // 2024-05-01 08:00 China time; one car drives east across the first grid for 10 minutes,
/// // a fix every 10 s, and stops before the second.
/// let start_ms = 1_714_521_600_000;
/// let fixes = (0..=60)
///     .map(|i| Ok(PatrolFix { unit: 7, t_ms: start_ms + i * 10_000, at: LonLat::new(114.0505 + 0.00015 * i as f64, 22.545)? }))
///     .collect::<Result<Vec<_>, safegrid_geodata::CoordError>>()?;
/// let opts = PatrolOptions::last_hours(start_ms + 3_600_000, 24);
/// let result = audit(&grids, &fixes, opts, &Silent);
/// assert_eq!((result.fixes, result.units), (61, 1));
/// assert_eq!(result.grids.len(), 2);
/// assert_eq!(result.options, opts);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct PatrolAudit {
    /// What was looked at.
    pub options: PatrolOptions,
    /// Fixes in the window.
    pub fixes: u64,
    /// Units with a fix in the window.
    pub units: usize,
    /// Every grid's figures, in layer order.
    pub grids: Vec<GridPatrol>,
    /// Unpatrolled grids (errors) and grids below `min_share` (warnings).
    pub findings: Vec<Finding>,
}

/// China Standard Time, the time the command centres read.
fn cst(ms: i64) -> String {
    use chrono::{FixedOffset, TimeZone};
    let Some(tz) = FixedOffset::east_opt(8 * 3600) else { return ms.to_string() };
    tz.timestamp_millis_opt(ms).single().map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M %:z").to_string())
}

/// Audits patrol coverage. `fixes` must be sorted by unit, then time (the store and the CLI's
/// reader give them so); fixes outside the window are skipped.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::patrol::{PatrolFix, PatrolOptions, audit};
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // 2024-05-01 08:00 China time; one car drives east across the first grid for 10 minutes,
/// // a fix every 10 s, and stops before the second.
/// let start_ms = 1_714_521_600_000;
/// let fixes = (0..=60)
///     .map(|i| Ok(PatrolFix { unit: 7, t_ms: start_ms + i * 10_000, at: LonLat::new(114.0505 + 0.00015 * i as f64, 22.545)? }))
///     .collect::<Result<Vec<_>, safegrid_geodata::CoordError>>()?;
/// let opts = PatrolOptions::last_hours(start_ms + 3_600_000, 24);
/// let result = audit(&grids, &fixes, opts, &Silent);
/// // One straight drive covers a small share of the first grid; nobody entered the second.
/// let kinds: Vec<(Kind, &str)> = result.findings.iter().map(|f| (f.kind, f.grids[0].as_str())).collect();
/// assert_eq!(kinds, [(Kind::LowPatrolCoverage, "440304001"), (Kind::Unpatrolled, "440304002")]);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn audit(
    grids: &[&AuditFeature],
    fixes: &[PatrolFix],
    opts: PatrolOptions,
    progress: &dyn Progress,
) -> PatrolAudit {
    progress.stage("ground cells of each grid", grids.len() as u64);
    let per_grid: Vec<Vec<CellIndex>> = grids
        .par_iter()
        .map(|g| {
            let cells = ground_cells(g, opts.res);
            progress.advance(1);
            cells
        })
        .collect();
    // Each cell belongs to one grid: where grids overlap, the first.
    let mut cell_id: HashMap<CellIndex, u32> = HashMap::new();
    let mut cell_grid: Vec<u32> = Vec::new();
    let mut cells_of = vec![0_u32; grids.len()];
    for (gi, cells) in per_grid.iter().enumerate() {
        for &c in cells {
            if let std::collections::hash_map::Entry::Vacant(e) = cell_id.entry(c) {
                e.insert(u32::try_from(cell_grid.len()).unwrap_or(u32::MAX));
                cell_grid.push(u32::try_from(gi).unwrap_or(u32::MAX));
                cells_of[gi] += 1;
            }
        }
    }
    drop(per_grid);
    let visited: Vec<AtomicBool> = (0..cell_grid.len()).map(|_| AtomicBool::new(false)).collect();
    let patrol_ms: Vec<AtomicU64> = (0..grids.len()).map(|_| AtomicU64::new(0)).collect();
    let last_ms: Vec<AtomicI64> = (0..grids.len()).map(|_| AtomicI64::new(i64::MIN)).collect();
    let places = GridPlaces::new(grids);

    // One run per unit, in parallel.
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=fixes.len() {
        if i == fixes.len() || fixes[i].unit != fixes[start].unit {
            runs.push(start..i);
            start = i;
        }
    }
    // Recency may reach back further than the window: fixes from then on are read for it.
    let recent_from = opts.until_ms.saturating_sub(opts.recent_hours.saturating_mul(3_600_000));
    let scan_from = opts.from_ms.min(recent_from);
    progress.stage("patrol traces", fixes.len() as u64);
    // A cell passed through counts as a patrol of its grid at that time, like a fix in it: a
    // car crossing a grid's corner between two fixes did patrol it.
    let mark = |c: CellIndex, t_ms: i64| {
        if let Some(&id) = cell_id.get(&c) {
            visited[id as usize].store(true, Ordering::Relaxed);
            last_ms[cell_grid[id as usize] as usize].fetch_max(t_ms, Ordering::Relaxed);
        }
    };
    let counted: Vec<(u64, bool)> = runs
        .par_iter()
        .map(|r| {
            let mut prev: Option<(i64, CellIndex, Option<usize>)> = None;
            let mut n = 0_u64;
            for f in &fixes[r.clone()] {
                if f.t_ms < scan_from || f.t_ms >= opts.until_ms {
                    continue;
                }
                if f.t_ms < opts.from_ms {
                    // Before the window but within the recency span: it only says when the grid
                    // was last patrolled.
                    if let Some(g) = places.locate(f.at) {
                        last_ms[g].fetch_max(f.t_ms, Ordering::Relaxed);
                    }
                    prev = None;
                    continue;
                }
                n += 1;
                let cell = LatLng::new(f.at.lat(), f.at.lon()).map_or(None, |ll| Some(ll.to_cell(opts.res)));
                let Some(cell) = cell else { continue };
                mark(cell, f.t_ms);
                let grid = places.locate(f.at);
                if let Some(g) = grid {
                    last_ms[g].fetch_max(f.t_ms, Ordering::Relaxed);
                }
                if let Some((pt, pc, pg)) = prev {
                    let dt = f.t_ms - pt;
                    if dt >= 0 && dt <= opts.max_gap_s * 1000 {
                        if let Some(g) = pg {
                            patrol_ms[g].fetch_add(u64::try_from(dt).unwrap_or(0), Ordering::Relaxed);
                        }
                        // The line between two fixes of one drive; far jumps are not drawn.
                        if pc != cell
                            && pc.grid_distance(cell).is_ok_and(|d| d <= 40)
                            && let Ok(path) = pc.grid_path_cells(cell)
                        {
                            path.flatten().for_each(|c| mark(c, f.t_ms));
                        }
                    }
                }
                prev = Some((f.t_ms, cell, grid));
            }
            progress.advance(r.len() as u64);
            (n, n > 0)
        })
        .collect();

    let mut visited_of = vec![0_u32; grids.len()];
    for (id, v) in visited.iter().enumerate() {
        if v.load(Ordering::Relaxed) {
            visited_of[cell_grid[id] as usize] += 1;
        }
    }
    let mut out = Vec::with_capacity(grids.len());
    let mut findings = Vec::new();
    for (gi, g) in grids.iter().enumerate() {
        let label = g.label();
        let (cells, seen) = (cells_of[gi], visited_of[gi]);
        let share = if cells > 0 { f64::from(seen) / f64::from(cells) } else { 0.0 };
        let last = last_ms[gi].load(Ordering::Relaxed);
        let last = (last != i64::MIN).then_some(last);
        let hours = patrol_ms[gi].load(Ordering::Relaxed) as f64 / 3_600_000.0;
        let at = g.geometry.as_ref().and_then(super::measure::location);
        if last.is_none_or(|t| t < recent_from) {
            let since = last
                .map_or_else(|| "no patrol in the whole window".to_owned(), |t| format!("last patrolled {}", cst(t)));
            let mut f = Finding::new(
                Kind::Unpatrolled,
                vec![label.clone()],
                vec![g.index],
                format!("{label} had no patrol in the {} h before {} ({since})", opts.recent_hours, cst(opts.until_ms)),
            );
            f.location = at;
            findings.push(f);
        } else if share < opts.min_share {
            let mut f = Finding::new(
                Kind::LowPatrolCoverage,
                vec![label.clone()],
                vec![g.index],
                format!(
                    "patrols passed through {:.0}% of {label} ({seen} of {cells} H3 cells), less than {:.0}%",
                    share * 100.0,
                    opts.min_share * 100.0
                ),
            );
            f.severity = Severity::Warning;
            f.location = at;
            findings.push(f);
        }
        out.push(GridPatrol {
            grid: label,
            feature: g.index,
            cells,
            visited: seen,
            share,
            hours,
            last_patrol: last.map(cst),
        });
    }
    PatrolAudit {
        options: opts,
        fixes: counted.iter().map(|c| c.0).sum(),
        units: counted.iter().filter(|c| c.1).count(),
        grids: out,
        findings,
    }
}

/// The cells whose centre lies in the grid; a grid too small to hold a centre gets the cell of
/// a point inside it, so that it can still be patrolled.
fn ground_cells(g: &AuditFeature, res: Resolution) -> Vec<CellIndex> {
    let Some(mp) = &g.geometry else { return Vec::new() };
    let mut tiler = TilerBuilder::new(res).containment_mode(ContainmentMode::ContainsCentroid).build();
    for p in &mp.0 {
        // A polygon H3 cannot tile (degenerate) simply contributes no cells.
        let _ = tiler.add(p.clone());
    }
    let mut cells: Vec<CellIndex> = tiler.into_coverage().collect();
    if cells.is_empty()
        && let Some([x, y]) = super::measure::location(mp)
        && let Ok(ll) = LatLng::new(y, x)
    {
        cells.push(ll.to_cell(res));
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Silent;

    fn grid(index: usize, x: f64) -> AuditFeature {
        crate::audit::fixtures::square_grid(index, x, 0.01)
    }

    fn fix(unit: i64, s: i64, x: f64, y: f64) -> PatrolFix {
        PatrolFix { unit, t_ms: s * 1000, at: LonLat::new(x, y).unwrap() }
    }

    /// Brute force: every cell whose centre is in the grid and which some fix or some sampled
    /// point on a short leg falls in.
    #[test]
    fn a_drive_along_the_middle_covers_a_band_and_counts_its_time() {
        let (a, b) = (grid(0, 114.0), grid(1, 114.01));
        // Unit 1 drives west to east along 22.505 at ~40 km/h (a fix every 10 s, ~110 m).
        let fixes: Vec<PatrolFix> =
            (0..10).map(|i| fix(1, 1_000 + i * 10, 114.0 + 0.001 * i as f64 + 0.0005, 22.505)).collect();
        let opts = PatrolOptions { min_share: 0.5, ..PatrolOptions::last_hours(2_000_000, 1) };
        let p = audit(&[&a, &b], &fixes, opts, &Silent);
        let g = &p.grids[0];
        // A 1.03 km × 1.11 km grid at res 10 (cells 114 m across) holds about 80 cells; a line
        // across it touches about 9.
        assert!((60..=100).contains(&g.cells), "{}", g.cells);
        assert!((7..=14).contains(&g.visited), "{}", g.visited);
        assert!((g.hours - 90.0 / 3600.0).abs() < 1e-9, "9 legs of 10 s: {}", g.hours);
        assert_eq!(p.grids[1].visited, 0);
        // Grid 2 was never entered: unpatrolled. Grid 1 was, but only along one line.
        let kinds: Vec<_> = p.findings.iter().map(|f| (f.kind, f.grids[0].clone())).collect();
        assert_eq!(
            kinds,
            [(Kind::LowPatrolCoverage, "440304001".to_owned()), (Kind::Unpatrolled, "440304002".to_owned())]
        );
        // Every visited cell is one a fix or the straight line between two fixes lies in.
        let mut expect = std::collections::HashSet::new();
        for w in fixes.windows(2) {
            for k in 0..=100 {
                let t = f64::from(k) / 100.0;
                let x = w[0].at.lon() + (w[1].at.lon() - w[0].at.lon()) * t;
                expect.insert(LatLng::new(22.505, x).unwrap().to_cell(Resolution::Ten));
            }
        }
        let cells: std::collections::HashSet<_> = ground_cells(&a, Resolution::Ten).into_iter().collect();
        let want = expect.intersection(&cells).count() as u32;
        assert!(g.visited.abs_diff(want) <= 2, "visited {} vs sampled {want}", g.visited);
    }

    #[test]
    fn a_patrol_before_a_short_window_still_counts_as_recent() {
        let a = grid(0, 114.0);
        // Patrolled 3 h before the end; the window is the last hour, recency 24 h.
        let end = 10 * 3600 * 1000;
        let fixes = [fix(1, 7 * 3600, 114.001, 22.501), fix(1, 7 * 3600 + 10, 114.002, 22.501)];
        let p = audit(&[&a], &fixes, PatrolOptions { min_share: 0.0, ..PatrolOptions::last_hours(end, 1) }, &Silent);
        assert!(p.findings.is_empty(), "{:#?}", p.findings);
        assert_eq!((p.fixes, p.grids[0].visited, p.grids[0].hours), (0, 0, 0.0), "nothing in the window itself");
        assert!(p.grids[0].last_patrol.is_some());
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "no patrol time is exactly 0.0 hours")]
    fn a_long_gap_is_not_one_patrol_and_old_fixes_do_not_count_as_recent() {
        let a = grid(0, 114.0);
        // Two fixes 20 min apart: no patrol time, no line between them. Both 30 h before the end.
        let fixes = [fix(7, 0, 114.001, 22.501), fix(7, 1_200, 114.009, 22.509)];
        let p = audit(&[&a], &fixes, PatrolOptions::last_hours(30 * 3600 * 1000, 48), &Silent);
        assert_eq!(p.grids[0].hours, 0.0);
        assert_eq!(p.grids[0].visited, 2);
        assert_eq!(p.findings[0].kind, Kind::Unpatrolled);
        assert!(p.findings[0].message.contains("last patrolled 1970-01-01 08:20 +08:00"), "{}", p.findings[0].message);
    }
}
