//! `safegrid gridding`: divides communities into grids of 300–500 households from files (the
//! library's `audit::gridding` does the work; this is the command around it).

use indicatif::ProgressBar;
use safegrid_geodata::audit::input::{ReadOptions, read_layer};
use safegrid_geodata::audit::workload::Dwelling;
use safegrid_geodata::gridding::{GriddingOptions, GriddingSummary, grid_communities};
use safegrid_geodata::{Crs, GridCode, GridLevel, GridUnit};
use safegrid_services::audit::gridding::{communities_from_text, options, to_feature_collection};
use safegrid_services::audit::points;
use std::path::PathBuf;

/// Divide communities into management grids of 300–500 households each — contiguous, compact,
/// covering each community with no gap or overlap — coded beneath the community (its code +
/// 001…, north-west first; with --previous, a grid mostly covering an old one keeps its code).
///
/// Writes one GeoJSON FeatureCollection: the communities, then their grids (households and
/// compactness as properties), ready for `safegrid audit` and `safegrid import --layer grids`
/// once a worker is assigned to each grid.
///
/// Example: safegrid gridding --communities communities.geojson --households housing.csv --out grids.geojson
#[derive(Debug, Clone, clap::Args)]
pub struct GriddingArgs {
    /// Communities: GeoJSON (Multi)Polygons with `code` (a valid unit code) and `name`.
    #[arg(long)]
    pub communities: PathBuf,
    /// Households: rental housing or household points (GeoJSON, or CSV with lon, lat and
    /// households|units).
    #[arg(long)]
    pub households: PathBuf,
    /// The current grids (in the --crs of the other files), whose codes are kept where a new grid
    /// mostly covers an old one.
    #[arg(long)]
    pub previous: Option<PathBuf>,
    /// Fewest households a grid.
    #[arg(long, default_value_t = 300)]
    pub min_households: u64,
    /// Most households a grid.
    #[arg(long, default_value_t = 500)]
    pub max_households: u64,
    /// H3 resolution of the building blocks (10: 15,000 m²; 11: 2,150 m²; 12: 307 m²).
    #[arg(long, default_value_t = 11)]
    pub res: u8,
    /// Coordinate system of the input files: wgs84, gcj02 or bd09.
    #[arg(long, default_value = "wgs84")]
    pub crs: String,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No spinner or summary on standard error.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `safegrid gridding`; returns the exit code (0 done, 2 unusable input).
#[must_use]
pub fn run(args: &GriddingArgs) -> i32 {
    match gridding(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("safegrid gridding: {e}");
            2
        }
    }
}

fn gridding(args: &GriddingArgs) -> anyhow::Result<()> {
    let crs: Crs = args.crs.parse()?;
    let opts = options(args.min_households, args.max_households, args.res).map_err(|e| anyhow::anyhow!("{e}"))?;
    let read = |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()));
    let communities = communities_from_text(&read(&args.communities)?, crs)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.communities.display()))?;
    let households: Vec<Dwelling> = points::dwellings(&args.households, crs)?;
    // The previous layer is read leniently (a grids-only file has no parents): every feature
    // with a valid code and geometry; only those directly under a community are matched.
    let previous: Vec<GridUnit> = match &args.previous {
        None => Vec::new(),
        Some(p) => {
            let layer = read_layer(&read(p)?, &ReadOptions { crs: Some(crs), ..ReadOptions::default() })
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            layer
                .features
                .into_iter()
                .filter_map(|f| {
                    let code = GridCode::parse(f.code.as_deref()?).ok()?;
                    Some(GridUnit {
                        name: f.name.unwrap_or_default(),
                        code,
                        level: GridLevel::Grid,
                        manager: None,
                        geometry: f.geometry?,
                    })
                })
                .collect()
        }
    };
    let spinner = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    spinner.set_message(format!("gridding {} communities, {} households", communities.len(), households.len()));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let t = std::time::Instant::now();
    let (grids, summary) = grid_communities(&communities, &households, opts, &previous)?;
    spinner.finish_and_clear();
    let body = to_feature_collection(&communities, &grids).to_string();
    match &args.out {
        Some(p) => std::fs::write(p, body).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => println!("{body}"),
    }
    if !args.quiet {
        eprintln!("{}", describe(&summary, opts, t.elapsed()));
    }
    Ok(())
}

fn describe(s: &GriddingSummary, o: GriddingOptions, took: std::time::Duration) -> String {
    format!(
        "{} grids in {:.1} s: {} within {}–{} households (range {}–{}), median compactness {:.2}, {} codes kept",
        s.grids,
        took.as_secs_f64(),
        s.within_norm,
        o.min_households,
        o.max_households,
        s.households_min,
        s.households_max,
        s.compactness_median,
        s.codes_kept
    )
}
