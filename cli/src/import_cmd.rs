//! `safegrid import` and `safegrid export`: a city's own files in and out of the store.
//!
//! Imports read the whole file before anything is committed and list every fault at once (up
//! to `--max-errors`); exports write what `import` reads back.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use safegrid_geodata::Crs;
use safegrid_geodata::grid::unit_to_feature;
use safegrid_geodata::trace_file::TraceFormat;
use safegrid_services::access::{Principal, Role};
use safegrid_services::import::grids::{self as grid_import, Placement};
use safegrid_services::import::{self, Format, ImportOptions};
use safegrid_services::ingest::{Ingest, IngestConfig};
use safegrid_services::layer::Layer;
use safegrid_services::positions::Subject;
use safegrid_services::positions::noise::NoiseConfig;
use safegrid_services::service::Service;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// `import --format`: the library's formats, named on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FileFormat {
    /// A GeoJSON FeatureCollection.
    Geojson,
    /// CSV with a header; `lon` and `lat` columns, the others named as the layer's properties
    /// (a trace: a time column too).
    Csv,
    /// GPX track points (fixes only).
    Gpx,
    /// A GeoLife trajectory (fixes only).
    Plt,
}

impl FileFormat {
    /// The format of a point layer's file.
    fn points(self) -> Result<Format> {
        match self {
            Self::Geojson => Ok(Format::Geojson),
            Self::Csv => Ok(Format::Csv),
            Self::Gpx | Self::Plt => bail!("--format gpx and plt are traces: import them with --layer fixes"),
        }
    }

    /// The format of a trace file.
    fn trace(self) -> Result<TraceFormat> {
        match self {
            Self::Csv => Ok(TraceFormat::Csv),
            Self::Gpx => Ok(TraceFormat::Gpx),
            Self::Plt => Ok(TraceFormat::Plt),
            Self::Geojson => bail!("a trace is read from GPX, a GeoLife .plt or CSV, not GeoJSON"),
        }
    }
}

/// `safegrid import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Target: grids, incidents, rental_housing, posts, responders or key_personnel; or fixes,
    /// a unit's position history from a trace (GPX, GeoLife .plt, or CSV with lon, lat, time).
    #[arg(long)]
    pub layer: String,
    /// Input file.
    #[arg(long)]
    pub file: PathBuf,
    /// File format (default: from the extension, .csv or GeoJSON).
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// CRS of the file's coordinates: wgs84, gcj02 or bd09, converted to WGS-84 on import (grids
    /// included). Without it the file is taken as WGS-84, and a grid file that fits far better
    /// as GCJ-02 or BD-09 — against the stored grids, or Shenzhen's districts — is refused, saying
    /// so; give --crs wgs84 to import such a file as it is.
    #[arg(long)]
    pub crs: Option<String>,
    /// Read a column or property under another name: --map time=reported_at, --map
    /// adcode=code (repeatable; applied before anything else).
    #[arg(long = "map", value_name = "FROM=TO", value_parser = import::parse_mapping)]
    pub map: Vec<(String, String)>,
    /// Leave out columns and properties the layer does not take, instead of refusing the file.
    #[arg(long)]
    pub ignore_unknown: bool,
    /// Faults listed before the rest are only counted.
    #[arg(long, default_value_t = import::DEFAULT_MAX_ERRORS)]
    pub max_errors: usize,
    /// Fixes: the tracker whose history it is (a device id a responder or key person carries),
    /// unless each CSV row names one in a device_id column.
    #[arg(long)]
    pub device: Option<String>,
    /// Fixes: days of history the server keeps (its --retention-days); a file with older fixes
    /// is refused whole, since the server would delete them within the hour.
    #[arg(long, default_value_t = 183)]
    pub retention_days: u32,
}

/// `safegrid export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The layer: grids, incidents, rental_housing, posts, responders or key_personnel.
    #[arg(long)]
    pub layer: String,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `safegrid convert`.
#[derive(clap::Args)]
pub struct ConvertArgs {
    /// The GeoJSON file to convert.
    #[arg(long)]
    pub file: PathBuf,
    /// Its coordinate system: wgs84, gcj02 or bd09.
    #[arg(long)]
    pub from: String,
    /// The coordinate system to write: wgs84, gcj02 or bd09.
    #[arg(long)]
    pub to: String,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `safegrid convert`: every position of every geometry, the rest of the file as it was.
///
/// # Errors
/// An unknown CRS, an unreadable file or one that is not JSON, an unwritable output.
pub fn convert(args: &ConvertArgs) -> Result<()> {
    let parse = |name: &str, v: &str| v.parse::<Crs>().map_err(|e| anyhow::anyhow!("--{name}: {e}"));
    let (from, to) = (parse("from", &args.from)?, parse("to", &args.to)?);
    let path = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {path}"))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{path}: not JSON"))?;
    let (converted, left) = safegrid_geodata::crs::convert_geojson(&mut v, from, to);
    let out = serde_json::to_string(&v)?;
    if let Some(p) = &args.out {
        std::fs::write(p, out).with_context(|| format!("writing {}", p.display()))?;
    } else {
        println!("{out}");
    }
    eprintln!("converted {converted} positions from {} to {}", from.label(), to.label());
    if left > 0 {
        eprintln!("left {left} positions out of range as they were");
    }
    Ok(())
}

/// An import's input, opened before the parser thread starts so that a missing file fails early.
enum Input {
    Text(String),
    File(std::fs::File),
}

impl ImportArgs {
    fn options(&self) -> Result<ImportOptions> {
        let crs = self.crs.as_deref().map(str::parse::<Crs>).transpose().map_err(|e| anyhow::anyhow!("--crs: {e}"))?;
        if self.max_errors == 0 {
            bail!("--max-errors must be at least 1");
        }
        Ok(ImportOptions {
            crs,
            map: self.map.clone(),
            ignore_unknown: self.ignore_unknown,
            max_errors: self.max_errors,
        })
    }
}

/// Runs `safegrid import`.
///
/// # Errors
/// The file's faults (all of them, up to the limit), or the store's; nothing is written then.
pub async fn run(service: &Arc<Service>, args: &ImportArgs) -> Result<()> {
    let opts = args.options()?;
    let path = args.file.display().to_string();
    let nothing = || format!("{path}: nothing was imported");
    match args.layer.as_str() {
        "grids" => return import_grids(service, &args.file, &opts).await.with_context(nothing),
        // Says itself what was stored if storing fails part way.
        "fixes" => return import_fixes(service, args, &opts).await,
        _ => {}
    }
    let layer: Layer = args.layer.parse().map_err(|e| anyhow::anyhow!("--layer: {e} (or grids, or fixes)"))?;
    let format = match args.format {
        Some(f) => f.points()?,
        None => Format::from_path(&path),
    };
    import_points(service, layer, &args.file, format, &opts).await
}

/// A unit's position history: every fix judged by the same noise filter as a live report
/// (older than the unit's live fix: kept as history, flagged late), stored, and the import
/// written to the audit log (whereabouts).
async fn import_fixes(service: &Arc<Service>, args: &ImportArgs, opts: &ImportOptions) -> Result<()> {
    let started = Instant::now();
    let path = args.file.display().to_string();
    let nothing = || format!("{path}: nothing was imported");
    let (mut fixes, units, retention) = read_fixes(service, args, opts).with_context(nothing)?;
    // Whereabouts: the audit log names each unit before any of its fixes is stored.
    for (device, (subject, id)) in &units {
        let layer = if *subject == Subject::Responder { Layer::Responders } else { Layer::KeyPersonnel };
        let n = fixes.iter().filter(|f| &f.device_id == device).count();
        let request = format!("import fixes of device {device} from {path} ({n} fixes)");
        let entry = safegrid_services::audit_log::AuditEntry {
            action: "import",
            request: &request,
            layer: Some(layer),
            subjects: vec![*id],
            result_count: n,
            kind: safegrid_services::audit_log::AuditKind::Write,
            ..Default::default()
        };
        service
            .audit_entry(&operator(), entry)
            .await
            .context("recording the import in the audit log")
            .with_context(nothing)?;
    }
    // In time order, so that jumps are judged between neighbours, as they happened.
    fixes.sort_by_key(|f| f.time);
    let config =
        IngestConfig { noise: NoiseConfig { max_age: retention, ..NoiseConfig::default() }, ..IngestConfig::default() };
    let (ingest, writer) = Ingest::new(Arc::clone(service), config);
    let writing = tokio::spawn(writer.run());
    let (mut live, mut history) = (0, 0);
    let mut refused: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    // Committed a chunk at a time (the ingest queue's bound): a failure part way says how far
    // it got, and the file can be imported again (a stored fix comes back a duplicate).
    for (i, chunk) in fixes.chunks(CHUNK_FIXES).enumerate() {
        let r = ingest.submit_history(chunk.to_vec()).await.map_err(|e| {
            anyhow::anyhow!(
                "{path}: storing the fixes failed after {} of {} were stored ({e:?}); importing the file again stores the rest",
                i * CHUNK_FIXES,
                fixes.len()
            )
        })?;
        live += r.live;
        history += r.history;
        for x in r.refused {
            *refused.entry(x.reason).or_default() += 1;
        }
    }
    drop(ingest);
    writing.await.context("the ingest writer failed")?;
    let refused_text: Vec<String> = refused.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "imported {} fixes of {} from {path} in {:.1} s: {live} moved the live position, {history} kept as history{}",
        live + history,
        units.keys().cloned().collect::<Vec<_>>().join(", "),
        started.elapsed().as_secs_f64(),
        if refused_text.is_empty() { String::new() } else { format!(", refused: {}", refused_text.join(", ")) }
    );
    Ok(())
}

/// Fixes stored per commit of a history import.
const CHUNK_FIXES: usize = 10_000;

/// Who carries a device: the subject and its id.
type Carriers = std::collections::BTreeMap<String, (Subject, i64)>;

/// The file's fixes, their carriers, and the retention they were checked against: everything
/// that can refuse the file, before anything is written.
fn read_fixes(
    service: &Service,
    args: &ImportArgs,
    opts: &ImportOptions,
) -> Result<(Vec<safegrid_services::positions::Fix>, Carriers, chrono::Duration)> {
    let path = args.file.display().to_string();
    let format = match args.format {
        Some(f) => f.trace()?,
        None => TraceFormat::from_path(&path)
            .with_context(|| format!("{path}: a trace is .gpx, .plt or .csv (or say which with --format)"))?,
    };
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {path}"))?;
    let fixes = import::traces::read(&text, format, args.device.as_deref(), opts)?;
    if fixes.is_empty() {
        bail!("the file holds no track point");
    }
    let retention = chrono::Duration::days(i64::from(args.retention_days.max(1)));
    import::traces::check_window(&fixes, retention, chrono::Utc::now())?;
    let mut units = Carriers::new();
    for f in &fixes {
        if !units.contains_key(&f.device_id) {
            let carrier = service.carrier_of(&f.device_id).with_context(|| {
                format!("no responder or key person carries device {:?}: set it as their device_id first", f.device_id)
            })?;
            units.insert(f.device_id.clone(), carrier);
        }
    }
    Ok((fixes, units, retention))
}

/// The grid layer, whole or a subtree under stored units.
async fn import_grids(service: &Service, file: &Path, opts: &ImportOptions) -> Result<()> {
    let started = Instant::now();
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let stored = service.grids().hierarchy.clone();
    // Nothing stored to compare with: Shenzhen's shipped district outlines, when the file lies there.
    let units = grid_import::read(&text, opts, &stored, &safegrid_services::demo::shenzhen_outline_near)?;
    let placement = grid_import::placement(&units, &stored)?;
    let n = units.len();
    let merged = grid_import::merged(units, &stored, &placement)?;
    service.replace_grids(merged).await?;
    let secs = started.elapsed().as_secs_f64();
    match placement {
        Placement::WholeLayer => {
            println!("imported {n} grid units from {} in {secs:.1} s (the whole layer)", file.display());
        }
        Placement::Under(parents) => {
            let under: Vec<&str> = parents.iter().map(safegrid_geodata::GridCode::as_str).collect();
            println!(
                "imported {n} grid units from {} in {secs:.1} s under {} (stored units not in the file are kept)",
                file.display(),
                under.join(", ")
            );
        }
    }
    Ok(())
}

/// A point layer: parsed and located on a blocking thread, written chunk by chunk into one
/// transaction meanwhile, committed after the last row.
async fn import_points(
    service: &Service,
    layer: Layer,
    file: &Path,
    format: Format,
    opts: &ImportOptions,
) -> Result<()> {
    let started = Instant::now();
    let path = file.display().to_string();
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} rows ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message("checking and writing");
    let nothing = || format!("{path}: nothing was imported");
    // Text formats are read whole (GeoJSON) or streamed (CSV) on a blocking thread that parses,
    // checks and locates; this task writes each chunk into one open transaction meanwhile.
    let input = match format {
        Format::Geojson => Input::Text(std::fs::read_to_string(file).with_context(|| format!("reading {path}"))?),
        Format::Csv => Input::File(std::fs::File::open(file).with_context(|| format!("reading {path}"))?),
    };
    let mut import = service.begin_import(layer).await.with_context(nothing)?;
    let mut locator = import.locator();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<safegrid_services::layer::Item>>(2);
    let ticker = bar.clone();
    let parse_opts = opts.clone();
    let parser = tokio::task::spawn_blocking(move || {
        let tick = || ticker.inc(1);
        let mut sink = |rows| tx.blocking_send(locator.items(rows)).is_ok();
        let parsed = match input {
            Input::Text(text) => import::parse_geojson(&text, layer, &parse_opts, &tick, &mut sink),
            Input::File(f) => import::parse_csv(std::io::BufReader::new(f), layer, &parse_opts, &tick, &mut sink),
        };
        parsed.map(|rows| (rows, locator.time_spent()))
    });
    let mut written = Ok(());
    while let Some(items) = rx.recv().await {
        written = import.write(items).await;
        if written.is_err() {
            break;
        }
    }
    // Dropping the receiver stops a parser that is still going (after a failed write).
    drop(rx);
    let parsed = parser.await.context("the parser thread failed")?;
    bar.finish_and_clear();
    // Either failure drops `import`, which rolls the transaction back.
    let (n, locate_time) = parsed.with_context(nothing)?;
    written.with_context(nothing)?;
    tracing::info!(
        rows = n,
        parse_and_locate_ms = started.elapsed().as_millis() as u64,
        locate_ms = locate_time.as_millis() as u64,
        "{path} parsed, checked and written; committing"
    );
    let ids = import.commit().await.with_context(nothing)?;
    // Key personnel and responders: the import is a write like any other, and is audited as one
    // (by the operator's login name; whoever runs it holds the database).
    if safegrid_services::policy::rule_of(safegrid_services::policy::Action::WriteLayer(layer)).audit
        == safegrid_services::policy::Audit::Writes
    {
        let request = format!(
            "import {layer} from {path} (ids {}–{})",
            ids.first().copied().unwrap_or(0),
            ids.last().copied().unwrap_or(0)
        );
        let entry = safegrid_services::audit_log::AuditEntry {
            action: "import",
            request: &request,
            layer: Some(layer),
            // Named one by one up to a thousand; beyond, the id range in the request says it.
            subjects: if ids.len() <= 1000 { ids.clone() } else { Vec::new() },
            result_count: n,
            kind: safegrid_services::audit_log::AuditKind::Write,
            ..Default::default()
        };
        service.audit_entry(&operator(), entry).await.context("recording the import in the audit log")?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {n} {layer} from {path} (ids {}–{}) in {secs:.1} s, {:.0} rows/s",
        ids.first().copied().unwrap_or(0),
        ids.last().copied().unwrap_or(0),
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Whoever runs the command: they hold the database, so they act as an administrator, and the
/// audit log names them by their login.
fn operator() -> Principal {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Principal { name: format!("safegrid command ({user})"), role: Role::Admin, grids: vec![] }
}

/// Runs `safegrid export`: the whole layer, in the form `import` reads.
///
/// # Errors
/// An unknown layer, an unwritable output, or the store (for the audit row of a sensitive layer).
pub async fn export(service: &Service, args: &ExportArgs) -> Result<()> {
    let features: Vec<serde_json::Value> = if args.layer == "grids" {
        let grids = service.grids();
        grids.hierarchy.units().iter().map(|u| serde_json::to_value(unit_to_feature(u)).unwrap_or_default()).collect()
    } else {
        let layer: Layer = args.layer.parse().map_err(|e| anyhow::anyhow!("--layer: {e} (or grids)"))?;
        let items: Vec<_> = service.layer(layer).iter().cloned().collect();
        if layer.is_sensitive() {
            // Whereabouts and key persons leave the store only with a row in the audit log.
            let request =
                format!("export {layer} to {}", args.out.as_ref().map_or("stdout".into(), |p| p.display().to_string()));
            let entry = safegrid_services::audit_log::AuditEntry {
                action: "export",
                request: &request,
                layer: Some(layer),
                subjects: items.iter().map(|it| it.id).collect(),
                result_count: items.len(),
                ..Default::default()
            };
            service.audit_entry(&operator(), entry).await.context("recording the export in the audit log")?;
        }
        items
            .iter()
            .map(|it| {
                serde_json::json!({"type": "Feature", "id": it.id,
                    "geometry": {"type": "Point", "coordinates": [it.pos.lon(), it.pos.lat()]},
                    "properties": it.props.to_json()})
            })
            .collect()
    };
    let n = features.len();
    let body = serde_json::json!({"type": "FeatureCollection", "features": features});
    let text = serde_json::to_string(&body)?;
    if let Some(p) = &args.out {
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
    }
    eprintln!("exported {n} {} features", args.layer);
    Ok(())
}
