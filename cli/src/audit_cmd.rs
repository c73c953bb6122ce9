//! `safegrid audit`: audit a grid layer from files, with no server or store.

use indicatif::{ProgressBar, ProgressStyle};
use safegrid_geodata::Crs;
use safegrid_geodata::audit::geometry::{self, AuditError};
use safegrid_geodata::audit::input::{ReadOptions, read_layer};
use safegrid_geodata::audit::layers;
use safegrid_geodata::audit::patrol::{self, PatrolOptions};
use safegrid_geodata::audit::response::{self, Reach};
use safegrid_geodata::audit::workload::{self, Norm};
use safegrid_geodata::audit::{Progress, Silent, Thresholds};
use safegrid_services::audit::{Report, html, points};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

/// Exit code: the layer passed.
pub const PASSED: i32 = 0;
/// Exit code: the audit ran and found faults.
pub const FINDINGS: i32 = 1;
/// Exit code: the input could not be audited (unreadable, not GeoJSON, wrong datum, bad option).
pub const UNUSABLE: i32 = 2;

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The whole report as JSON.
    Json,
    /// The findings as a GeoJSON FeatureCollection (open it in QGIS next to the layer).
    Geojson,
    /// One self-contained HTML page with a map and charts, for opening without a server.
    Html,
}

/// Audit a grid layer: gaps, overlaps, slivers, invalid geometry, grids outside the territory
/// or their parent, codes, grids without a worker; with --households, workload; with --traces,
/// patrol coverage; with --against, a second layer compared (三网合一); with --posts, response
/// coverage within --minutes (by road with --roads).
///
/// Reads plain GeoJSON files and needs no server or store. Exit code: 0 the layer passed, 1 the
/// audit found faults, 2 the input could not be audited.
///
/// Example: safegrid audit --grids grids.geojson --territory city.geojson --format html --out audit.html
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// The grid layer: a GeoJSON FeatureCollection of (Multi)Polygons with a code (and, for the
    /// staffing check, a manager) property. It may also hold the parent units (districts,
    /// streets, communities); units with children are checked as parents.
    #[arg(long)]
    pub grids: PathBuf,
    /// The territory the grids must cover exactly (GeoJSON polygons; their union is used).
    /// Without it: the layer's top-level units, or else only holes enclosed by the grids.
    #[arg(long)]
    pub territory: Option<PathBuf>,
    /// Households for the workload audit: rental housing or household points (GeoJSON or CSV with
    /// lon, lat, households|units, people|tenant_count).
    #[arg(long)]
    pub households: Option<PathBuf>,
    /// Incidents to count per grid (GeoJSON points or CSV with lon, lat).
    #[arg(long)]
    pub incidents: Option<PathBuf>,
    /// A second grid layer of the same territory (say the river-chief grids) to compare with
    /// --grids (三网合一): which grids intersect which, and where boundaries disagree.
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// Boundaries of the two layers closer than this on average (metres) agree.
    #[arg(long, default_value_t = 5.0)]
    pub tolerance_m: f64,
    /// Security posts and available units for the response-coverage audit (GeoJSON points or
    /// CSV with lon, lat): which ground and households lie within --minutes of the nearest.
    #[arg(long)]
    pub posts: Option<PathBuf>,
    /// T for the response-coverage audit, minutes.
    #[arg(long, default_value_t = 5.0)]
    pub minutes: f64,
    /// An OpenStreetMap extract (.osm.pbf, or .osm XML) of the territory: response times by road, driving.
    /// Without it, straight-line distance at 20 km/h.
    #[arg(long)]
    pub roads: Option<PathBuf>,
    /// Patrol traces for the patrol coverage audit (repeat for more files): CSV with time (t,
    /// time, datetime: RFC 3339, Unix seconds, or YYYY-MM-DD HH:MM:SS read as China time), lon,
    /// lat and a unit (unit, uid, device) column — without one the file is one unit's — or GPX
    /// and GeoLife .plt files, one unit each.
    #[arg(long)]
    pub traces: Vec<PathBuf>,
    /// End of the patrol window (RFC 3339; default: the latest fix in --traces).
    #[arg(long)]
    pub until: Option<String>,
    /// Length of the patrol window, hours.
    #[arg(long, default_value_t = 24)]
    pub window_hours: i64,
    /// A grid with no patrol fix in this many hours before the window's end is unpatrolled.
    #[arg(long, default_value_t = 24)]
    pub recent_hours: i64,
    /// Grids whose share of ground patrols passed through (H3 resolution-10 cells) is below this
    /// are listed as warnings (0 to 1; 0 lists none).
    #[arg(long, default_value_t = 0.25)]
    pub min_patrol_share: f64,
    /// Report format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: OutputFormat,
    /// Where to write the report (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Coordinate system of the grid file (and of the point and trace files): wgs84, gcj02 or
    /// bd09, converted to WGS-84. Without it, the grid file is read as WGS-84 unless it declares
    /// otherwise (the other files are read in the grid file's system), and a layer that fits far
    /// better as GCJ-02 or BD-09 — against the territory, or Shenzhen's shipped districts when it
    /// lies there — is refused (exit 2), saying how much better.
    #[arg(long)]
    pub crs: Option<String>,
    /// Coordinate system of the territory file, on its own (the territory often comes from
    /// elsewhere than the grids): wgs84, gcj02 or bd09. Default: WGS-84 unless the file declares
    /// otherwise.
    #[arg(long)]
    pub territory_crs: Option<String>,
    /// Gaps and overlaps smaller than this many m² are reported as slivers (warnings).
    #[arg(long, default_value_t = Thresholds::default().sliver_m2)]
    pub sliver_m2: f64,
    /// Gaps and overlaps narrower than this many metres on average (twice the area over the
    /// perimeter) are slivers too, however long: two drawings of one boundary line.
    #[arg(long, default_value_t = Thresholds::default().sliver_width_m)]
    pub sliver_width_m: f64,
    /// Property holding the grid code. When no feature has it, a DataV-style `adcode` is read
    /// instead (and the report says so).
    #[arg(long, default_value = "code")]
    pub code_property: String,
    /// Property holding the grid name.
    #[arg(long, default_value = "name")]
    pub name_property: String,
    /// Property holding the grid worker; grids without one are reported as unstaffed.
    #[arg(long, default_value = "manager")]
    pub manager_property: String,
    /// Workload norm: fewest households a grid.
    #[arg(long, default_value_t = Norm::default().min_households)]
    pub min_households: u64,
    /// Workload norm: most households a grid.
    #[arg(long, default_value_t = Norm::default().max_households)]
    pub max_households: u64,
    /// Workload norm: most people a grid.
    #[arg(long, default_value_t = Norm::default().max_people)]
    pub max_people: u64,
    /// No progress bar and no summary on standard error.
    #[arg(long)]
    pub quiet: bool,
}

/// Progress on a terminal: a bar.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn stage(&self, name: &str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(name.to_owned());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

/// Progress when standard error is not a terminal (a log, a CI job, a pipe): a line as each
/// stage starts and ends, and every ten seconds within a long one, so a long audit shows it is
/// working and where.
struct LogLines {
    started: std::time::Instant,
    state: std::sync::Mutex<LogState>,
}

struct LogState {
    stage: String,
    total: u64,
    done: u64,
    stage_started: std::time::Instant,
    last_line: std::time::Instant,
}

impl LogLines {
    fn new() -> Self {
        let now = std::time::Instant::now();
        let state = LogState { stage: String::new(), total: 0, done: 0, stage_started: now, last_line: now };
        Self { started: now, state: std::sync::Mutex::new(state) }
    }

    fn finish_stage(&self, s: &LogState) {
        if !s.stage.is_empty() {
            eprintln!(
                "safegrid audit: {} done in {:.1} s ({:.1} s in all)",
                s.stage,
                s.stage_started.elapsed().as_secs_f64(),
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Progress for LogLines {
    fn stage(&self, name: &str, total: u64) {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.finish_stage(&s);
        let now = std::time::Instant::now();
        *s = LogState { stage: name.to_owned(), total, done: 0, stage_started: now, last_line: now };
        eprintln!("safegrid audit: {name} ({total} steps)");
    }

    fn advance(&self, n: u64) {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.done += n;
        if s.last_line.elapsed() >= std::time::Duration::from_secs(10) {
            s.last_line = std::time::Instant::now();
            eprintln!(
                "safegrid audit: {} {}/{} after {:.0} s",
                s.stage,
                s.done,
                s.total,
                s.stage_started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Drop for LogLines {
    fn drop(&mut self) {
        let s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.finish_stage(&s);
    }
}

/// Runs the audit and returns the process exit code. Errors go to standard error as one line
/// that names the file and what is wrong.
#[must_use]
pub fn run(args: &AuditArgs) -> i32 {
    match audit(args) {
        Ok(report) => {
            if report.passed {
                PASSED
            } else {
                FINDINGS
            }
        }
        Err(e) => {
            eprintln!("safegrid audit: {e}");
            UNUSABLE
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn audit(args: &AuditArgs) -> anyhow::Result<Report> {
    let crs = args.crs.as_deref().map(str::parse::<Crs>).transpose()?;
    for (name, v) in [
        ("--sliver-m2", args.sliver_m2),
        ("--sliver-width-m", args.sliver_width_m),
        ("--tolerance-m", args.tolerance_m),
    ] {
        if !(v >= 0.0 && v.is_finite()) {
            anyhow::bail!("{name} must be a number ≥ 0, got {v}");
        }
    }
    if !(args.minutes >= 1.0 && args.minutes <= 60.0) {
        anyhow::bail!("--minutes must be between 1 and 60, got {}", args.minutes);
    }
    if !(1..=24 * 366).contains(&args.window_hours) || !(1..=24 * 366).contains(&args.recent_hours) {
        anyhow::bail!("--window-hours and --recent-hours must be between 1 and 8784 (a year)");
    }
    if !(0.0..=1.0).contains(&args.min_patrol_share) {
        anyhow::bail!("--min-patrol-share must be between 0 and 1, got {}", args.min_patrol_share);
    }
    if args.min_households > args.max_households {
        anyhow::bail!("--min-households {} is above --max-households {}", args.min_households, args.max_households);
    }
    let bar = if args.quiet || !std::io::stderr().is_terminal() { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:30} [{bar:30}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let progress_box: Box<dyn Progress> = if args.quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bar(bar.clone()))
    } else {
        Box::new(LogLines::new())
    };
    let progress = progress_box.as_ref();

    progress.stage("reading the layer", 1);
    let mut opts = ReadOptions {
        code_property: args.code_property.clone(),
        name_property: args.name_property.clone(),
        manager_property: args.manager_property.clone(),
        crs,
    };
    let text = read(&args.grids)?;
    let mut layer = read_layer(&text, &opts).map_err(|e| anyhow::anyhow!("{}: {e}", args.grids.display()))?;
    // A DataV or district-data file carries its GB/T 2260 code as `adcode`: offered when the
    // layer has no code property at all, and said so.
    if layer.features.iter().all(|f| f.code.is_none()) && text.contains("\"adcode\"") {
        opts.code_property = "adcode".into();
        layer = read_layer(&text, &opts).map_err(|e| anyhow::anyhow!("{}: {e}", args.grids.display()))?;
        if !args.quiet {
            eprintln!(
                "safegrid audit: no feature has a {:?} property; reading \"adcode\" as the code (--code-property to choose another)",
                args.code_property
            );
        }
    }
    let territory_crs = args
        .territory_crs
        .as_deref()
        .map(str::parse::<Crs>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--territory-crs: {e}"))?;
    let territory = match &args.territory {
        None => None,
        Some(path) => {
            let t = read_layer(&read(path)?, &ReadOptions { crs: territory_crs, ..ReadOptions::default() })
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if let Some(f) = t.faults.iter().find(|f| f.severity == safegrid_geodata::audit::Severity::Error) {
                anyhow::bail!("{}: the territory itself is faulty: {}", path.display(), f.message);
            }
            Some(geo::MultiPolygon(t.features.into_iter().filter_map(|f| f.geometry).flat_map(|g| g.0).collect()))
        }
    };
    progress.advance(1);
    // Nothing to compare with but Shenzhen's districts: the layer is checked against them when
    // it lies there and nobody named its CRS.
    if territory.is_none() && layer.crs_source != safegrid_geodata::audit::input::CrsSource::Caller {
        progress.stage("datum check against Shenzhen's districts", 1);
        if let Some(fit) = shenzhen_fit(&layer)
            && let Some(crs) = fit.shifted()
        {
            anyhow::bail!(
                "{}: the grids look like {} coordinates, not WGS-84: {fit} (compared with Shenzhen's district outlines). Re-run with --crs {} to convert them, or --crs wgs84 to audit them as they are",
                args.grids.display(),
                crs.label(),
                crs.name()
            );
        }
        progress.advance(1);
    }

    let thresholds =
        Thresholds { sliver_m2: args.sliver_m2, sliver_width_m: args.sliver_width_m, ..Thresholds::default() };
    let geometry = geometry::audit(&layer, territory.as_ref(), thresholds, progress).map_err(|e| match e {
        AuditError::LooksShifted { .. } => anyhow::anyhow!("{}: {e}", args.grids.display()),
        other => anyhow::anyhow!("{}: {other}", args.grids.display()),
    })?;

    let workload = if args.households.is_some() || args.incidents.is_some() {
        let c = crs.unwrap_or(layer.crs);
        let dwellings = args.households.as_deref().map(|p| points::dwellings(p, c)).transpose()?.unwrap_or_default();
        let incidents = args.incidents.as_deref().map(|p| points::positions(p, c)).transpose()?.unwrap_or_default();
        let grids: Vec<_> = geometry.grid_features.iter().map(|&i| &layer.features[i]).collect();
        let norm = Norm {
            min_households: args.min_households,
            max_households: args.max_households,
            max_people: args.max_people,
        };
        Some(workload::audit(&grids, &dwellings, &incidents, norm, progress))
    } else {
        None
    };
    let patrol = match args.traces.as_slice() {
        [] => None,
        paths => {
            let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            let fixes = points::traces(&paths, crs.unwrap_or(layer.crs))?;
            let until_ms = match &args.until {
                Some(u) => chrono::DateTime::parse_from_rfc3339(u)
                    .map_err(|e| {
                        anyhow::anyhow!("--until {u:?}: {e} (expected RFC 3339, e.g. 2026-11-22T08:00:00+08:00)")
                    })?
                    .timestamp_millis(),
                // The latest fix, plus a millisecond: the window's end is exclusive.
                None => fixes.iter().map(|f| f.t_ms).max().ok_or_else(|| anyhow::anyhow!("--traces: no fixes"))? + 1,
            };
            let opts = PatrolOptions {
                recent_hours: args.recent_hours,
                min_share: args.min_patrol_share,
                ..PatrolOptions::last_hours(until_ms, args.window_hours)
            };
            let grids: Vec<_> = geometry.grid_features.iter().map(|&i| &layer.features[i]).collect();
            Some(patrol::audit(&grids, &fixes, opts, progress))
        }
    };
    let response = match &args.posts {
        None => None,
        Some(path) => {
            let sources = points::positions(path, crs.unwrap_or(layer.crs))?;
            let dwellings = match &args.households {
                Some(h) => points::dwellings(h, crs.unwrap_or(layer.crs))?,
                None => Vec::new(),
            };
            let graph = match &args.roads {
                None => None,
                Some(pbf) => {
                    progress.stage("building the road network", 1);
                    let bytes = std::fs::read(pbf).map_err(|e| anyhow::anyhow!("{}: {e}", pbf.display()))?;
                    let g =
                        safegrid_geodata::roads::RoadGraph::from_extract(&bytes, safegrid_geodata::roads::Mode::Drive)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", pbf.display()))?;
                    progress.advance(1);
                    Some(g)
                }
            };
            let reach = graph.as_ref().map_or(Reach::Distance { kmh: response::STRAIGHT_LINE_KMH }, Reach::Road);
            let grids: Vec<_> = geometry.grid_features.iter().map(|&i| &layer.features[i]).collect();
            Some(response::audit(&grids, &sources, &dwellings, reach, args.minutes, progress))
        }
    };
    let layers = match &args.against {
        None => None,
        Some(path) => {
            let other = read_layer(&read(path)?, &ReadOptions { crs, ..opts.clone() })
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let g2 = geometry::audit(&other, None, thresholds, &Silent)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let a: Vec<_> = geometry.grid_features.iter().map(|&i| &layer.features[i]).collect();
            let b: Vec<_> = g2.grid_features.iter().map(|&i| &other.features[i]).collect();
            let name =
                |p: &Path| p.file_stem().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
            Some(layers::audit((&name(&args.grids), &a), (&name(path), &b), args.tolerance_m, progress))
        }
    };
    bar.finish_and_clear();
    drop(progress_box);

    let name =
        args.grids.file_name().map_or_else(|| args.grids.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut report = Report::new(name, &layer, thresholds, geometry);
    if let Some(w) = workload {
        report = report.with_workload(w);
    }
    if let Some(p) = patrol {
        report = report.with_patrol(p);
    }
    if let Some(l) = layers {
        report = report.with_layers(l);
    }
    if let Some(r) = response {
        report = report.with_response(r);
    }
    let body = match args.format {
        OutputFormat::Json => serde_json::to_string_pretty(&report)?,
        OutputFormat::Geojson => serde_json::to_string(&report.to_geojson(&layer))?,
        OutputFormat::Html => html::render(&report, &layer),
    };
    match &args.out {
        Some(path) => std::fs::write(path, body).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => println!("{body}"),
    }
    if !args.quiet {
        eprintln!("{}", one_line(&report));
    }
    Ok(report)
}

/// How the layer fits Shenzhen's district outlines, when it lies there: its top-level units
/// (those whose parent code is not in the layer), as given and read as GCJ-02 and BD-09.
fn shenzhen_fit(layer: &safegrid_geodata::audit::input::AuditLayer) -> Option<safegrid_geodata::datum::DatumFit> {
    use geo::BoundingRect;
    use safegrid_geodata::GridCode;
    let codes: std::collections::HashSet<&str> = layer.features.iter().filter_map(|f| f.code.as_deref()).collect();
    let is_top = |code: Option<&str>| {
        code.and_then(|c| GridCode::parse(c).ok()).and_then(|c| c.parent()).is_none_or(|p| !codes.contains(p.as_str()))
    };
    let top = layer.features.iter().filter(|f| is_top(f.code.as_deref())).filter_map(|f| f.geometry.as_ref());
    let union = safegrid_geodata::overlay::union(top.flat_map(|g| g.0.iter()));
    let outline = safegrid_services::demo::shenzhen_outline_near(&union.bounding_rect()?)?;
    safegrid_geodata::datum::fit(safegrid_geodata::datum::Reference::Around(&union, &outline))
}

/// `PASSED`/`FAILED` and the counts that matter, for the terminal.
fn one_line(r: &Report) -> String {
    let parts: Vec<String> =
        r.summary.counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let what = if parts.is_empty() { "no findings".to_owned() } else { parts.join(", ") };
    format!("{}: {verdict} — {} grids, {what}", r.layer.name, r.geometry.grids)
}
