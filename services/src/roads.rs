//! The road networks the service routes on: driving (responders to an incident) and walking
//! (citizens to a security post), built from one OpenStreetMap extract (`--roads FILE.osm.pbf`)
//! and cached on disk, so that only the first start after a new extract contracts the graphs.
//!
//! The demo compiles in the Longgang extract (`geodata/data/longgang.osm.pbf`, ODbL).

use safegrid_geodata::roads::{Mode, PathCalculator, RoadError, RoadGraph};
use safegrid_geodata::{LonLat, haversine_m};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The demo's road network: OpenStreetMap around Longgang, Shenzhen (`geodata/data/NOTICE.md`).
pub const DEMO_PBF: &[u8] = include_bytes!("../../geodata/data/longgang.osm.pbf");

/// Attribution owed wherever road-based answers are shown.
pub const ATTRIBUTION: &str = "© OpenStreetMap contributors (ODbL)";

/// Bumped whenever the cached layout or the graph rules change, so old caches are rebuilt.
const CACHE_VERSION: u32 = 1;

/// Why the road network could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RoadsError {
    /// The extract could not be read.
    #[error("reading {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The extract is not a usable road network.
    #[error(transparent)]
    Graph(#[from] RoadError),
}

/// Driving and walking networks of one extract, with a pool of query states.
pub struct Roads {
    /// Cars and motorbikes.
    pub drive: RoadGraph,
    /// On foot.
    pub walk: RoadGraph,
    /// What was loaded (file name or "demo").
    pub source: String,
    drive_calcs: Mutex<Vec<PathCalculator>>,
    walk_calcs: Mutex<Vec<PathCalculator>>,
}

impl std::fmt::Debug for Roads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roads")
            .field("source", &self.source)
            .field("drive", &self.drive)
            .field("walk", &self.walk)
            .finish_non_exhaustive()
    }
}

impl Roads {
    /// Loads an extract, from the cache in `cache_dir` when it holds this extract's graphs.
    ///
    /// # Errors
    /// [`RoadsError`] when the file cannot be read or holds no roads.
    pub fn open(pbf: &Path, cache_dir: &Path) -> Result<Self, RoadsError> {
        let bytes = std::fs::read(pbf).map_err(|e| RoadsError::Read { path: pbf.to_owned(), reason: e.to_string() })?;
        Self::from_extract_bytes(&bytes, &pbf.display().to_string(), cache_dir)
    }

    /// The demo's compiled-in Longgang extract.
    ///
    /// # Errors
    /// [`RoadsError`] (a build without the file would not compile).
    pub fn demo(cache_dir: &Path) -> Result<Self, RoadsError> {
        Self::from_extract_bytes(DEMO_PBF, "demo (Longgang, OpenStreetMap)", cache_dir)
    }

    fn from_extract_bytes(bytes: &[u8], source: &str, cache_dir: &Path) -> Result<Self, RoadsError> {
        let key = hex::encode(&Sha256::digest(bytes)[..12]);
        let graph = |mode: Mode| -> Result<RoadGraph, RoadsError> {
            let name =
                format!("roads-v{CACHE_VERSION}-{key}-{}.bin", if mode == Mode::Drive { "drive" } else { "walk" });
            let path = cache_dir.join(name);
            if let Ok(cached) = std::fs::read(&path) {
                match RoadGraph::from_bytes(&cached) {
                    Ok(g) => return Ok(g),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "road cache unusable; rebuilding it"),
                }
            }
            let started = Instant::now();
            let g = RoadGraph::from_extract(bytes, mode)?;
            tracing::info!(
                ?mode,
                nodes = g.node_count(),
                segments = g.segment_count(),
                millis = started.elapsed().as_millis() as u64,
                "road graph contracted"
            );
            if let Err(e) = write_atomically(&path, &g.to_bytes()) {
                tracing::warn!(path = %path.display(), error = %e, "could not cache the road graph; it will be rebuilt next start");
            }
            Ok(g)
        };
        let (drive, walk) = (graph(Mode::Drive)?, graph(Mode::Walk)?);
        tracing::info!(
            source,
            drive_segments = drive.segment_count(),
            walk_segments = walk.segment_count(),
            "road network ready"
        );
        Ok(Self {
            drive,
            walk,
            source: source.to_owned(),
            drive_calcs: Mutex::new(Vec::new()),
            walk_calcs: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with a query state for the `mode` network, reused across requests (each holds
    /// arrays the size of the graph; allocating one per request would cost more than the query).
    pub fn with_calculator<T>(&self, mode: Mode, f: impl FnOnce(&RoadGraph, &mut PathCalculator) -> T) -> T {
        let (graph, pool) = match mode {
            Mode::Drive => (&self.drive, &self.drive_calcs),
            Mode::Walk => (&self.walk, &self.walk_calcs),
        };
        let taken = pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut calc = taken.unwrap_or_else(|| graph.calculator());
        let out = f(graph, &mut calc);
        pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(calc);
        out
    }
}

/// One contender's arrival in [`Roads::race`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Its index in the contenders given.
    pub index: usize,
    /// Travel time, seconds.
    pub eta_s: f64,
    /// Along its route (by road), or as the estimate says.
    pub distance_m: f64,
    /// Along the network (`false`: estimated, the contender being off it).
    pub by_road: bool,
}

impl Roads {
    /// Which of `from` reach `to` soonest in `mode`, soonest first, at most `k`: along the network
    /// for contenders on it (one backward search, `RoadGraph::nearest_by_time`), by
    /// `estimate(straight-line metres) → (seconds, metres)` for those off it. `None` when `to`
    /// itself is off the network (the caller then estimates everyone). With `lengths`, the
    /// winners' times and lengths come from their routes through the hierarchy; without, a
    /// road arrival's length is its straight line.
    pub fn race(
        &self,
        mode: Mode,
        to: LonLat,
        from: &[LonLat],
        k: usize,
        estimate: impl Fn(f64) -> (f64, f64),
        lengths: bool,
    ) -> Option<Vec<Arrival>> {
        let g = match mode {
            Mode::Drive => &self.drive,
            Mode::Walk => &self.walk,
        };
        let target = g.snap(to)?;
        let mut out = Vec::new();
        let mut on = Vec::new();
        for (index, p) in from.iter().enumerate() {
            if let Some(s) = g.snap(*p) {
                on.push((index, s));
            } else {
                let (eta_s, distance_m) = estimate(haversine_m(*p, to));
                out.push(Arrival { index, eta_s, distance_m, by_road: false });
            }
        }
        let snaps: Vec<_> = on.iter().map(|(_, s)| *s).collect();
        let winners = g.nearest_by_time(&target, &snaps, k);
        self.with_calculator(mode, |g, calc| {
            for (j, eta_s) in winners {
                let (index, s) = on[j];
                let straight = haversine_m(from[index], to);
                let routed = if lengths { g.route(calc, &s, &target) } else { None };
                let (eta_s, distance_m) = routed.map_or((eta_s, straight), |r| (r.eta_s, r.distance_m));
                out.push(Arrival { index, eta_s, distance_m, by_road: true });
            }
        });
        out.sort_by(|a, b| a.eta_s.total_cmp(&b.eta_s).then(a.index.cmp(&b.index)));
        out.truncate(k);
        Some(out)
    }
}

/// Writes beside and renames, so a concurrent start never reads half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("{}.part", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
