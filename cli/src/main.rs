//! `safegrid` — the command-line entry point. Parses configuration, opens the store and runs one
//! command; everything else lives in the library.

mod audit_cmd;
mod gridding_cmd;
mod import_cmd;
mod simulation;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use safegrid_geodata::GridCode;
use safegrid_services::access::{Principal, Role, new_token};
use safegrid_services::api::{AppState, app, osmand_app};
use safegrid_services::basemap::Basemap;
use safegrid_services::demo;
use safegrid_services::ingest::mqtt::MqttConfig;
use safegrid_services::ingest::{IngestConfig, spawn_retention};
use safegrid_services::positions::devices::LimitConfig;
use safegrid_services::positions::live::FreshnessConfig;
use safegrid_services::positions::noise::NoiseConfig;
use safegrid_services::roads::Roads;
use safegrid_services::service::Service;
use safegrid_services::store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const DEFAULT_DB: &str = "sqlite://safegrid-data/safegrid.db";

/// safegrid: grid management and situational awareness for public-safety command centres.
///
/// Divides a territory into management grids (网格), indexes incidents, rental housing, security
/// posts, responders and key personnel, and serves them over an HTTP API.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Where data lives: sqlite://PATH (embedded, created on first run) or postgres://… (PostGIS).
    #[arg(long, env = "SAFEGRID_DATABASE_URL", default_value = DEFAULT_DB, global = true)]
    database_url: String,
    /// Log format on stderr. Levels come from RUST_LOG (default: info).
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The map wall's basemap.
#[derive(clap::Args)]
struct MapArgs {
    /// Basemap: a vector MBTiles file (build one for your city with tiles/basemap/build.sh).
    /// The demo uses its compiled-in Longgang basemap unless this is given.
    #[arg(long)]
    basemap: Option<PathBuf>,
    /// Serve the wall without a basemap (grids on a plain background).
    #[arg(long, conflicts_with = "basemap")]
    no_basemap: bool,
    /// Glyph ranges built with `safegrid glyphs`, served before the compiled-in ones; with it,
    /// Chinese labels are drawn from these instead of the wall machine's own CJK font.
    #[arg(long)]
    glyphs: Option<PathBuf>,
}

/// The audit log while serving.
#[derive(clap::Args)]
struct AuditLogArgs {
    /// Identical reads (same token, role, action and request) within this many seconds of the
    /// first are written as one row with a count when the window ends (0: a row per read). The
    /// first read is always written before its data leaves.
    #[arg(long, default_value_t = 60)]
    audit_window_secs: u64,
}

/// What the server takes on: how much at once before it answers 503 / 429, and from which
/// web origins a browser may call it.
#[derive(clap::Args)]
struct LimitArgs {
    /// Requests in flight at once on cheap routes (health, locate, the public lookup, trackers).
    #[arg(long, default_value_t = 1024)]
    max_inflight_cheap: usize,
    /// Requests in flight at once on ordinary routes (items, tiles, dispatch steps).
    #[arg(long, default_value_t = 128)]
    max_inflight_normal: usize,
    /// Requests in flight at once on heavy routes (audits, gridding, road races, city-wide calls).
    #[arg(long, default_value_t = 8)]
    max_inflight_heavy: usize,
    /// Open event streams (the wall's feed, the geofence stream).
    #[arg(long, default_value_t = 512)]
    max_streams: usize,
    /// Audit computations (and griddings) at once; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = 1)]
    max_audits: usize,
    /// Citizens' nearest-post lookups a minute per client address (then 429). Raise it when the
    /// server sits behind a proxy or a carrier NAT that puts many phones behind one address.
    #[arg(long, default_value_t = 60.0)]
    public_rate_per_minute: f64,
    /// A web origin (`https://portal.example.gov.cn`, scheme, host and port as the browser sends
    /// them) whose pages may call the API (CORS); repeat for more. None by default: the map wall
    /// is served from the same origin and needs none.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
}

impl LimitArgs {
    fn limits(&self) -> Result<safegrid_services::api::guard::Limits> {
        let l = safegrid_services::api::guard::Limits {
            cheap: self.max_inflight_cheap,
            normal: self.max_inflight_normal,
            heavy: self.max_inflight_heavy,
            stream: self.max_streams,
            work: self.max_audits,
        };
        if [l.cheap, l.normal, l.heavy, l.stream, l.work].contains(&0) {
            bail!("--max-inflight-*, --max-streams and --max-audits must be at least 1");
        }
        if !(self.public_rate_per_minute.is_finite() && self.public_rate_per_minute > 0.0) {
            bail!("--public-rate-per-minute must be positive");
        }
        Ok(l)
    }

    /// The `--cors-origin` values, each an origin exactly as a browser's `Origin` header says it.
    fn cors_origins(&self) -> Result<Vec<axum::http::HeaderValue>> {
        self.cors_origins
            .iter()
            .map(|o| {
                // Browsers send the origin lower-case and without a default port; it is compared
                // byte for byte, so anything else would never match.
                let ok = (o.starts_with("https://") || o.starts_with("http://"))
                    && !o.ends_with('/')
                    && o.split("://").nth(1).is_some_and(|h| !h.is_empty() && !h.contains('/'))
                    && *o == o.to_ascii_lowercase()
                    && !(o.starts_with("https://") && o.ends_with(":443"))
                    && !(o.starts_with("http://") && o.ends_with(":80"));
                if !ok {
                    bail!(
                        "--cors-origin {o:?}: expected scheme://host[:port] as a browser sends it — lower case, no path, no default port — e.g. https://portal.example.gov.cn"
                    );
                }
                axum::http::HeaderValue::from_str(o).with_context(|| format!("--cors-origin {o:?}"))
            })
            .collect()
    }
}

/// `safegrid audit-log …`
#[derive(Subcommand)]
enum AuditLogCommand {
    /// Walk the whole audit log in id order and check its hash chain: each row's hash must match
    /// its content and the hash of the row before it, and ids must follow on without gaps.
    ///
    /// Exit code 0: intact — prints the rows checked and the head hash; note the head outside
    /// the database (a ticket, a signed mail, another machine) and pass it later with
    /// --expect-head, so that rows cut off the end are detected too. Exit code 1: broken — names
    /// the first altered or deleted row. Exit code 2: the log could not be read. Rows written
    /// before the chain existed (before migration 0005) carry no hash and are reported as
    /// "before the chain", unprotected.
    ///
    /// Example: safegrid audit-log verify --database-url postgres://safegrid@db/safegrid --expect-head 3f9a…
    Verify {
        /// A head hash printed by an earlier verify: it must still be in the log.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
}

/// `safegrid audit-log verify`: exit code 0 intact, 1 broken, 2 unreadable.
async fn verify_audit_log(url: &str, expect_head: Option<String>) -> i32 {
    if let Some(h) = &expect_head
        && (h.trim().len() != 64 || !h.trim().bytes().all(|b| b.is_ascii_hexdigit()))
    {
        eprintln!("error: --expect-head {h:?} is not a head hash (64 hex digits, as verify prints it)");
        return 2;
    }
    // Verifying must not create an empty database where none was.
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))
        && !Path::new(path).exists()
    {
        eprintln!("error: no database at {path}");
        return 2;
    }
    let store = match store::open(url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: opening the store at {url}: {e}");
            return 2;
        }
    };
    let verdict = match safegrid_services::audit_log::verify(store.as_ref(), expect_head).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: reading the audit log: {e}");
            return 2;
        }
    };
    let c = &verdict.check;
    let before =
        if c.unchained > 0 { format!(", {} before the chain (not protected)", c.unchained) } else { String::new() };
    match &verdict.broken {
        None => {
            println!("audit log intact: {} chained rows checked{before}", c.chained);
            match &c.head {
                Some(h) => println!(
                    "head: {h} (row {}); the chain begins at row {}\nnote both outside the database (the start record can be dropped by whoever can drop the log's triggers); check later with --expect-head {h}",
                    c.last_id.unwrap_or(0),
                    c.start().unwrap_or(1)
                ),
                None => println!("head: none (no chained rows yet)"),
            }
            0
        }
        Some(b) => {
            println!("audit log BROKEN: {b}");
            println!("({} chained rows intact before it{before})", c.chained);
            1
        }
    }
}

/// Live positions: the OsmAnd port, noise thresholds, freshness, retention.
#[derive(clap::Args)]
struct PositionArgs {
    /// Where tracker apps (OsmAnd, Traccar Client) report: GET or POST with id, lat, lon,
    /// timestamp… on any path. The same protocol is also at /api/v1/osmand on --listen.
    #[arg(long, default_value = "127.0.0.1:5055")]
    osmand_listen: String,
    /// Do not open the OsmAnd port (trackers can still use /api/v1/osmand).
    #[arg(long, conflicts_with = "osmand_listen")]
    no_osmand: bool,
    /// Fastest plausible speed between two fixes, km/h; a faster jump is kept as history only.
    #[arg(long, default_value_t = 250.0)]
    max_speed_kmh: f64,
    /// Worst accuracy (metres) that may move a unit's live position.
    #[arg(long, default_value_t = 100.0)]
    max_accuracy_m: f64,
    /// Days of position history kept (older fixes are refused and deleted hourly).
    #[arg(long, default_value_t = 183)]
    retention_days: u32,
    /// A unit that reported within this many seconds is live…
    #[arg(long, default_value_t = 60)]
    live_secs: u32,
    /// …within this many stale, and lost beyond.
    #[arg(long, default_value_t = 600)]
    stale_secs: u32,
    /// Most fixes waiting to be stored; beyond it ingest answers 503 with Retry-After.
    #[arg(long, default_value_t = 200_000)]
    ingest_queue: usize,
    /// Also take fixes from this MQTT broker (`mqtt://host[:port]`); messages are acknowledged
    /// to the broker only once stored.
    #[arg(long)]
    mqtt_url: Option<String>,
    /// Topic filter to subscribe to (QoS 1). Payload: a fix or a batch as JSON (see
    /// POST /api/v1/positions; a fix without device_id takes the topic's last level), or an
    /// OwnTracks location (device = the topic after owntracks/).
    #[arg(long, default_value = "safegrid/positions/#")]
    mqtt_topic: String,
    /// MQTT client id; the broker keeps unacknowledged messages in this id's session.
    #[arg(long, default_value = "safegrid")]
    mqtt_client_id: String,
    /// Sustained fixes a second one device may report over OsmAnd (beyond: 429 + Retry-After).
    #[arg(long, default_value_t = 10.0)]
    device_rate: f64,
    /// Fixes one device may report at once over OsmAnd (Traccar Client replaying its buffer).
    #[arg(long, default_value_t = 300.0)]
    device_burst: f64,
    /// Sustained OsmAnd requests a second from one client address (a private APN or carrier
    /// NAT puts a fleet behind one address).
    #[arg(long, default_value_t = 200.0)]
    osmand_address_rate: f64,
    /// OsmAnd requests at once from one client address.
    #[arg(long, default_value_t = 2000.0)]
    osmand_address_burst: f64,
    /// Failed authentications a minute of one device id from one client address (an IPv6
    /// client by its /64) before that pair is refused (429) without a check; other devices
    /// behind the same address are not.
    #[arg(long, default_value_t = 20.0)]
    osmand_failures_per_minute: f64,
}

/// The road network for travel times.
#[derive(clap::Args)]
struct RoadArgs {
    /// An OpenStreetMap extract of the territory, PBF (.osm.pbf) or XML (.osm): responders are
    /// ranked by driving time on it, posts by walking time. The demo uses its compiled-in
    /// Longgang extract.
    #[arg(long)]
    roads: Option<PathBuf>,
    /// Rank by straight-line estimates only, with no road network.
    #[arg(long, conflicts_with = "roads")]
    no_roads: bool,
    /// Where the contracted road graphs are cached (built on the first start after a new
    /// extract, a few seconds for a district, minutes for a whole city).
    #[arg(long, default_value_os_t = std::env::temp_dir().join("safegrid-roads"))]
    roads_cache: PathBuf,
}

impl RoadArgs {
    /// Loads the network, off the async threads (contraction is CPU work).
    async fn open(&self, demo: bool) -> Result<Option<Arc<Roads>>> {
        if self.no_roads {
            tracing::info!("no road network: ETAs are straight-line estimates");
            return Ok(None);
        }
        let (file, cache) = (self.roads.clone(), self.roads_cache.clone());
        if file.is_none() && !demo {
            tracing::info!("no road network (--roads FILE.osm.pbf or .osm): ETAs are straight-line estimates");
            return Ok(None);
        }
        let roads = tokio::task::spawn_blocking(move || match file {
            Some(f) => Roads::open(&f, &cache),
            None => Roads::demo(&cache),
        })
        .await??;
        Ok(Some(Arc::new(roads)))
    }
}

impl PositionArgs {
    fn ingest(&self) -> Result<IngestConfig> {
        if !(self.max_speed_kmh > 0.0 && self.max_accuracy_m > 0.0) {
            bail!("--max-speed-kmh and --max-accuracy-m must be positive");
        }
        if self.live_secs == 0 || self.stale_secs <= self.live_secs {
            bail!("--stale-secs must be greater than --live-secs, and both positive");
        }
        if self.retention_days == 0 {
            bail!("--retention-days must be at least 1");
        }
        let limits = [
            self.device_rate,
            self.device_burst,
            self.osmand_address_rate,
            self.osmand_address_burst,
            self.osmand_failures_per_minute,
        ];
        if !limits.iter().all(|x| x.is_finite() && *x > 0.0) {
            bail!("--device-rate, --device-burst and the --osmand-* limits must be positive");
        }
        Ok(IngestConfig {
            noise: NoiseConfig {
                max_speed_mps: self.max_speed_kmh / 3.6,
                max_accuracy_m: self.max_accuracy_m,
                max_age: chrono::Duration::days(i64::from(self.retention_days)),
                ..NoiseConfig::default()
            },
            queue_fixes: self.ingest_queue.max(1),
            limits: LimitConfig {
                device_rate: self.device_rate,
                device_burst: self.device_burst,
                address_rate: self.osmand_address_rate,
                address_burst: self.osmand_address_burst,
                failures_per_minute: self.osmand_failures_per_minute,
            },
            ..IngestConfig::default()
        })
    }

    fn freshness(&self) -> FreshnessConfig {
        FreshnessConfig {
            live: chrono::Duration::seconds(i64::from(self.live_secs)),
            stale: chrono::Duration::seconds(i64::from(self.stale_secs)),
        }
    }
}

impl MapArgs {
    /// The basemap to serve; `demo` picks the compiled-in one when no file is named.
    async fn open(&self, demo: bool) -> Result<Basemap> {
        let b = match &self.basemap {
            _ if self.no_basemap => Basemap::none(),
            Some(path) => Basemap::open(path).await?,
            None if demo => Basemap::demo().await?,
            None => Basemap::none(),
        };
        let b = match &self.glyphs {
            Some(dir) => b.with_glyph_dir(dir.clone())?,
            None => b,
        };
        if let Some(t) = &b.tiles {
            tracing::info!(name = %t.metadata.name, zooms = %format!("{}-{}", t.metadata.minzoom, t.metadata.maxzoom), "basemap");
        } else {
            tracing::info!("no basemap: the wall draws grids on a plain background");
        }
        Ok(b)
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API over the data in the store.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// How often tokens are re-read from the store, so `safegrid revoke` takes effect.
        #[arg(long, default_value_t = 10)]
        token_reload_secs: u64,
        #[command(flatten)]
        map: MapArgs,
        #[command(flatten)]
        positions: PositionArgs,
        #[command(flatten)]
        roads: RoadArgs,
        #[command(flatten)]
        audit_log: AuditLogArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Build (first run) or reopen the Shenzhen demo city and serve it. Prints a token per role.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Also write the tokens as JSON {"admin": "…", "dispatcher": "…", …} to this file.
        #[arg(long)]
        tokens_out: Option<PathBuf>,
        /// Build the city and exit without serving (for scripts and CI).
        #[arg(long)]
        no_serve: bool,
        /// Do not simulate the patrol fleet, incidents and dispatches on Longgang's roads.
        #[arg(long)]
        no_simulation: bool,
        #[command(flatten)]
        map: MapArgs,
        #[command(flatten)]
        positions: PositionArgs,
        #[command(flatten)]
        roads: RoadArgs,
        #[command(flatten)]
        audit_log: AuditLogArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Import a city's own file into a layer: grids, a point layer, or position history. All of
    /// it or nothing, with every fault listed at once.
    ///
    /// Grids: a FeatureCollection of (Multi)Polygons with code, name and optional level,
    /// manager, manager_phone. A file whose top units are districts replaces the layer; one whose
    /// top units sit under stored units (a district's grids) goes in under them, leaving the rest.
    /// Items are re-located either way. Point layers: a FeatureCollection of Points, or CSV with
    /// lon and lat columns; property names as in the API. Import while the server is stopped, or
    /// restart it afterwards.
    Import(import_cmd::ImportArgs),
    /// Write a whole layer to a file (or stdout) in the form `import` reads back: a grid layer
    /// re-imports to the identical layer.
    Export(import_cmd::ExportArgs),
    /// Convert a GeoJSON file between WGS-84, GCJ-02 (AMap, Tencent) and BD-09 (Baidu), which
    /// common GIS tools do not know: every position of every geometry, the rest as it was.
    Convert(import_cmd::ConvertArgs),
    /// Create an API token and print it (it is stored hashed and cannot be shown again).
    Token {
        /// Role: admin, dispatcher, grid_worker, auditor or public.
        #[arg(long)]
        role: String,
        /// Who holds it (written to the audit log with every sensitive read).
        #[arg(long)]
        name: String,
        /// For grid workers: a grid unit code they are responsible for (repeatable).
        #[arg(long = "grid")]
        grids: Vec<String>,
    },
    /// Build the SDF glyph ranges map labels need from a TrueType/OpenType font, as
    /// DIR/NAME/{start}-{end}.pbf; serve them with `--glyphs DIR`.
    ///
    /// Example, every range of Noto Sans CJK SC (Debian: fonts-noto-cjk; face 2 of the .ttc is SC),
    /// so that wall machines need no CJK font of their own:
    ///   safegrid glyphs --font /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc --face 2
    ///     --name "Noto Sans CJK SC Regular" --out glyphs
    Glyphs {
        /// Font file (.ttf, .otf or .ttc).
        #[arg(long)]
        font: PathBuf,
        /// Face index within a font collection (.ttc).
        #[arg(long, default_value_t = 0)]
        face: u32,
        /// Font stack name the style's text-font uses (the directory written under --out).
        #[arg(long)]
        name: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Ranges by their first code point (0,256,8192…); default: every range the font covers.
        #[arg(long, value_delimiter = ',')]
        ranges: Vec<u32>,
    },
    /// Audit a grid layer from GeoJSON files, offline: gaps, overlaps, slivers, invalid
    /// geometry, grids outside the territory or their parent, codes, staffing; with more files,
    /// workload, patrol coverage, response coverage, and a second layer compared (三网合一).
    /// Exit code 0: passed; 1: findings; 2: the input could not be audited.
    ///
    /// Example: safegrid audit --grids grids.geojson --territory city.geojson --format html --out audit.html
    Audit(audit_cmd::AuditArgs),
    /// Divide communities into grids of 300–500 households, contiguous, compact, covering each
    /// community exactly, with stable codes; offline, from GeoJSON/CSV files. Writes the
    /// communities and their grids as one GeoJSON layer, ready for `safegrid audit`.
    ///
    /// Example: safegrid gridding --communities communities.geojson --households housing.csv --out grids.geojson
    Gridding(gridding_cmd::GriddingArgs),
    /// List API tokens: the start of each token's hash (what `revoke` takes), holder, role, grids.
    Tokens,
    /// Mint (or rotate) a tracker's secret and print it once, with the identifier to enter in
    /// Traccar Client or OsmAnd (DEVICE_ID:SECRET); or revoke it. A secret is minted only for a
    /// device some responder or key person carries; any device's secret can be revoked. A running server takes it up within --token-reload-secs.
    DeviceSecret {
        /// The device id (a responder's or key person's `device_id`).
        device_id: String,
        /// Revoke the device's secret instead: its fixes are refused from then on.
        #[arg(long)]
        revoke: bool,
    },
    /// The audit log: check that no row was altered, deleted or cut off.
    #[command(subcommand)]
    AuditLog(AuditLogCommand),
    /// Revoke an API token by the start of its hash (see `safegrid tokens`). A running server
    /// stops accepting it within its --token-reload-secs.
    Revoke {
        /// At least 8 hex digits of the token's hash.
        hash_prefix: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the command; an error is the user's to read, so it is printed as its chain of causes,
/// never with a backtrace (anyhow captures one when `RUST_BACKTRACE` is set, for developers; a
/// panic still prints its own).
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        // Offline: no store is opened, and the exit code carries the verdict.
        Command::Audit(args) => std::process::exit(audit_cmd::run(&args)),
        Command::Gridding(args) => std::process::exit(gridding_cmd::run(&args)),
        Command::Serve { listen, token_reload_secs, map, positions, roads, audit_log, limits } => {
            let basemap = map.open(false).await?;
            let roads = roads.open(false).await?;
            let service = open(&cli.database_url).await?;
            service.set_audit_window(std::time::Duration::from_secs(audit_log.audit_window_secs));
            reload_tokens_every(&service, token_reload_secs);
            serve(service, basemap, roads, &listen, &positions, &limits, None).await
        }
        Command::Glyphs { font, face, name, out, ranges } => build_glyphs(&font, face, &name, &out, &ranges),
        Command::Demo { listen, tokens_out, no_serve, no_simulation, map, positions, roads, audit_log, limits } => {
            let basemap = map.open(true).await?;
            let service = open(&cli.database_url).await?;
            service.set_audit_window(std::time::Duration::from_secs(audit_log.audit_window_secs));
            seed_demo(&service).await?;
            let tokens = demo_tokens(&service, &cli.database_url, tokens_out.as_deref()).await?;
            if no_serve {
                return Ok(());
            }
            reload_tokens_every(&service, 10);
            let roads = roads.open(true).await?;
            let simulate = match &roads {
                Some(r) if !no_simulation => {
                    simulation::seed(&service, r).await?;
                    true
                }
                _ => false,
            };
            serve(service, basemap, roads, &listen, &positions, &limits, Some(DemoRun { tokens, simulate })).await
        }
        Command::Import(args) => {
            let service = open(&cli.database_url).await?;
            import_cmd::run(&service, &args).await
        }
        Command::Convert(args) => import_cmd::convert(&args),
        Command::Export(args) => {
            let service = open(&cli.database_url).await?;
            import_cmd::export(&service, &args).await
        }
        Command::Token { role, name, grids } => {
            let service = open(&cli.database_url).await?;
            let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!("--role: {e}"))?;
            let grids = grids.iter().map(|g| GridCode::parse(g)).collect::<Result<Vec<_>, _>>().context("--grid")?;
            if role == Role::GridWorker && grids.is_empty() {
                bail!("a grid_worker token needs at least one --grid CODE");
            }
            let token = new_token();
            service.add_token(&token, &Principal { name, role, grids }).await?;
            println!("{token}");
            Ok(())
        }
        Command::DeviceSecret { device_id, revoke } => {
            let service = open(&cli.database_url).await?;
            // A secret is revoked whoever carries the device, or nobody.
            if revoke {
                if service.revoke_device_secret(&device_id).await? {
                    println!("revoked the secret of {device_id}; its fixes are refused from now on");
                } else {
                    println!("{device_id} had no secret in force");
                }
                return Ok(());
            }
            let Some((_, secret)) = service.mint_device_secret(&device_id).await? else {
                bail!("no responder or key person carries device {device_id:?}; set it as their device_id first");
            };
            println!("secret of {device_id} (shown this once; any earlier one no longer works):");
            println!("  {secret}");
            println!("In Traccar Client or OsmAnd, set the device identifier to:");
            println!("  {}", safegrid_services::positions::devices::credential(&device_id, &secret));
            Ok(())
        }
        Command::Tokens => {
            let store = store::open(&cli.database_url).await?;
            let mut tokens = store.tokens().await?;
            tokens.sort_by(|a, b| (a.role.name(), &a.name).cmp(&(b.role.name(), &b.name)));
            for t in tokens {
                let grids: Vec<&str> = t.grids.iter().map(GridCode::as_str).collect();
                println!("{}  {:<12} {}  {}", &t.hash[..12], t.role.name(), t.name, grids.join(","));
            }
            Ok(())
        }
        Command::AuditLog(AuditLogCommand::Verify { expect_head }) => {
            std::process::exit(verify_audit_log(&cli.database_url, expect_head).await)
        }
        Command::Revoke { hash_prefix } => {
            let prefix = hash_prefix.to_ascii_lowercase();
            if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("give at least 8 hex digits of the hash, as `safegrid tokens` prints them");
            }
            let store = store::open(&cli.database_url).await?;
            let matches: Vec<_> = store.tokens().await?.into_iter().filter(|t| t.hash.starts_with(&prefix)).collect();
            match matches.as_slice() {
                [] => bail!("no token's hash starts with {prefix}"),
                [t] => {
                    store.delete_token(&t.hash).await?;
                    println!("revoked {} ({}, {})", &t.hash[..12], t.role.name(), t.name);
                    Ok(())
                }
                many => bail!("{} tokens' hashes start with {prefix}: give more digits", many.len()),
            }
        }
    }
}

/// `safegrid glyphs`: renders each range on its own, with a progress bar (a CJK font has ~250).
fn build_glyphs(font: &Path, face: u32, name: &str, out: &Path, ranges: &[u32]) -> Result<()> {
    use safegrid_tiles::glyphs::{self, FontFace, RANGE_SIZE};
    if name.is_empty() || name.contains(['/', '\\', ',']) || name.starts_with('.') {
        bail!("--name {name:?}: a font stack name may not be empty or hold '/', '\\' or ','");
    }
    let data = std::fs::read(font).with_context(|| format!("reading {}", font.display()))?;
    let face = FontFace::parse(&data, face)?;
    let ranges: Vec<u32> = if ranges.is_empty() {
        (0..0x11_0000 / RANGE_SIZE).map(|r| r * RANGE_SIZE).filter(|s| face.covers(*s)).collect()
    } else {
        ranges.to_vec()
    };
    let dir = out.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bar = ProgressBar::new(ranges.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} ranges {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut total = 0;
    for start in ranges {
        let rendered = face.render_range(start)?;
        total += rendered.len();
        let path = dir.join(format!("{}.pbf", glyphs::range_label(start)));
        std::fs::write(&path, glyphs::encode(name, start, &rendered))
            .with_context(|| format!("writing {}", path.display()))?;
        bar.inc(1);
    }
    bar.finish_with_message(format!("{total} glyphs in {}", dir.display()));
    Ok(())
}

/// Re-reads tokens in the background so revocations reach a running server.
fn reload_tokens_every(service: &Arc<Service>, secs: u64) {
    let service = Arc::clone(service);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(secs.max(1)));
        tick.tick().await; // the first tick is immediate; the tokens were just loaded
        loop {
            tick.tick().await;
            if let Err(e) = service.reload_tokens().await {
                tracing::warn!(error = %e, "could not re-read tokens; keeping the ones in memory");
            }
            // Trackers' secrets minted or revoked by `safegrid device-secret` meanwhile.
            if let Err(e) = service.reload_device_secrets().await {
                tracing::warn!(error = %e, "could not re-read device secrets; keeping the ones in memory");
            }
        }
    });
}

pub(crate) async fn open(url: &str) -> Result<Arc<Service>> {
    let started = Instant::now();
    let store = store::open(url).await.with_context(|| format!("opening the store at {url}"))?;
    let service = Service::open(store).await.context("loading the live state from the store")?;
    let counts: Vec<String> = service.counts().iter().map(|(l, n)| format!("{l}={n}")).collect();
    tracing::info!(
        backend = service.store().backend(),
        grids = service.grids().hierarchy.len(),
        items = %counts.join(" "),
        millis = started.elapsed().as_millis() as u64,
        "live state loaded"
    );
    Ok(Arc::new(service))
}

/// What `demo` adds to `serve`: the banner with the tokens it minted, and the simulation.
struct DemoRun {
    tokens: DemoTokens,
    simulate: bool,
}

async fn serve(
    service: Arc<Service>,
    basemap: Basemap,
    roads: Option<Arc<Roads>>,
    listen: &str,
    positions: &PositionArgs,
    limits: &LimitArgs,
    demo: Option<DemoRun>,
) -> Result<()> {
    let simulate = demo.as_ref().is_some_and(|d| d.simulate);
    let ingest = positions.ingest()?;
    let shed = limits.limits()?;
    let cors_origins = limits.cors_origins()?;
    service.set_freshness(positions.freshness());
    // Repeats of collapsed reads are written when their window ends, and at shutdown.
    service.spawn_audit_flusher(std::time::Duration::from_secs(5));
    let audit = Arc::clone(&service);
    spawn_retention(Arc::clone(&service), ingest.noise.max_age);
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let mqtt = match &positions.mqtt_url {
        Some(url) => Some(
            MqttConfig::from_url(url, &positions.mqtt_topic, &positions.mqtt_client_id)
                .map_err(|e| anyhow::anyhow!("--mqtt-url: {e}"))?,
        ),
        None => None,
    };
    let (state, background) = AppState::with_ingest(service, ingest);
    let state =
        state.with_basemap(basemap).with_roads(roads).with_limits(shed).with_public_rate(limits.public_rate_per_minute);
    let state = state.with_cors_origins(cors_origins);
    // The ingest writer and the dispatch alarms: serving is what starts them.
    background.start();
    if let Some(config) = mqtt {
        safegrid_services::ingest::mqtt::spawn(Arc::clone(&state.ingest), config);
    }
    if simulate && positions.no_osmand {
        tracing::warn!("the demo simulation reports over the OsmAnd port, which --no-osmand closes: not simulating");
    }
    if !positions.no_osmand {
        let at = &positions.osmand_listen;
        let osmand = tokio::net::TcpListener::bind(at)
            .await
            .with_context(|| format!("binding the OsmAnd port {at} (--osmand-listen ADDR, or --no-osmand)"))?;
        let osmand_addr = osmand.local_addr()?;
        tracing::info!(addr = %osmand_addr, "OsmAnd trackers report here");
        if simulate && let Some(roads) = &state.roads {
            simulation::spawn(Arc::clone(&state.service), Arc::clone(&state.desk), Arc::clone(roads), osmand_addr);
        }
        // With the peer address: the OsmAnd door is rate-limited per client address.
        let router = osmand_app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(osmand, router).await {
                tracing::error!(error = %e, "the OsmAnd listener stopped");
            }
        });
    }
    tracing::info!(%addr, "listening");
    if let Some(DemoRun { tokens, .. }) = &demo {
        print_banner(&format!("http://{addr}"), tokens);
    }
    // With the peer address: the public lookup is rate-limited per client.
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service).with_graceful_shutdown(shutdown()).await;
    // Whatever ended the serving: the counts of repeated reads still in memory are written.
    let rows = audit.flush_audit().await;
    tracing::info!(rows, "audit log flushed");
    served?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// The demo's banner. Tokens are printed only on the start that minted them (a terminal's
/// scroll-back and a service's journal are no place for credentials on every restart); later
/// starts say where they are kept.
fn print_banner(url: &str, demo: &DemoTokens) {
    println!("\nsafegrid demo — Shenzhen, serving at {url}\n");
    let t = |r: &str| {
        if demo.created {
            demo.tokens.get(r).cloned().unwrap_or_default()
        } else {
            format!("$SAFEGRID_{}", r.to_uppercase())
        }
    };
    if demo.created {
        println!("Tokens (Authorization: Bearer …), shown this once; kept in {} (0600):", demo.file.display());
        for (role, token) in &demo.tokens {
            println!("  {role:<12} {token}");
        }
    } else {
        println!("Tokens: as printed on the first start, kept in {} (0600).", demo.file.display());
        // python3, not jq: a fresh Debian machine has the one and not the other.
        println!(
            "  export SAFEGRID_DISPATCHER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"dispatcher\"])' {})",
            demo.file.display()
        );
    }
    println!("\nTry:");
    println!("  curl -H \"Authorization: Bearer {}\" '{url}/api/v1/locate?lon=114.0579&lat=22.5431'", t("dispatcher"));
    println!(
        "  curl -H \"Authorization: Bearer {}\" '{url}/api/v1/responders/nearest?lon=114.0579&lat=22.5431&k=5&status=available'",
        t("dispatcher")
    );
    println!("  curl '{url}/api/v1/posts/nearest?lon=114.0579&lat=22.5431&k=3'");
    println!(
        "  curl -H \"Authorization: Bearer {}\" '{url}/api/v1/dispatch/nearest?lon=114.21&lat=22.688&k=3'   # Longgang, by road",
        t("dispatcher")
    );
    println!("\nAPI description: {url}/api/v1/openapi.json   Metrics: {url}/metrics\n");
}

const DEMO_SEED: u64 = 2026;

async fn seed_demo(service: &Service) -> Result<()> {
    if service.store().meta("demo_seeded").await?.is_some() {
        tracing::info!("demo city already built; reusing it");
        return Ok(());
    }
    let started = Instant::now();
    let spinner = ProgressBar::new_spinner().with_message("generating ~3,000 grids over Shenzhen's 10 districts");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let hierarchy = tokio::task::spawn_blocking(|| demo::hierarchy(DEMO_SEED)).await??;
    spinner.set_message("storing grids");
    service.replace_grids(hierarchy).await?;
    spinner.finish_and_clear();
    let grids = service.grids();
    let population = tokio::task::spawn_blocking(move || {
        demo::population(&grids, demo::Sizes::default(), DEMO_SEED, chrono::Utc::now())
    })
    .await?;
    let total: usize = population.iter().map(|(_, rows)| rows.len()).sum();
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for (layer, rows) in population {
        bar.set_message(layer.name());
        let n = rows.len() as u64;
        service.bulk_insert(layer, rows).await?;
        bar.inc(n);
    }
    bar.finish_and_clear();
    service.store().set_meta("demo_seeded", &chrono::Utc::now().to_rfc3339()).await?;
    tracing::info!(
        millis = started.elapsed().as_millis() as u64,
        grids = service.grids().hierarchy.len(),
        items = total,
        "demo city built"
    );
    Ok(())
}

/// The demo's tokens: reused from `<data dir>/demo-tokens.json` when they still authenticate,
/// minted (and stored hashed) otherwise.
async fn demo_tokens(service: &Service, url: &str, out: Option<&Path>) -> Result<DemoTokens> {
    let dir = url
        .strip_prefix("sqlite://")
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("safegrid-data"));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("demo-tokens.json");
    let existing: Option<BTreeMap<String, String>> =
        std::fs::read_to_string(&file).ok().and_then(|t| serde_json::from_str(&t).ok());
    let (tokens, created) = match existing {
        // Reused only when there is one for every role (a file from before a role existed is
        // remade) and each still authenticates.
        Some(t)
            if Role::ALL.iter().all(|r| t.contains_key(r.name()))
                && t.values().all(|tok| service.authenticate(tok).is_some()) =>
        {
            (t, false)
        }
        _ => {
            let grid_worker_scope: Vec<GridCode> =
                ["440304001", "440304002", "440304003"].iter().filter_map(|c| GridCode::parse(c).ok()).collect();
            let worker_name = service
                .grids()
                .unit(&grid_worker_scope[0])
                .and_then(|u| u.manager.as_ref())
                .map_or_else(|| "grid worker".to_owned(), |m| m.name.clone());
            let mut t = BTreeMap::new();
            for (role, name, grids) in [
                (Role::Admin, "demo admin".to_owned(), vec![]),
                (Role::Dispatcher, "demo dispatcher".to_owned(), vec![]),
                (Role::GridWorker, worker_name, grid_worker_scope.clone()),
                (Role::Auditor, "demo auditor".to_owned(), vec![]),
                (Role::Gateway, "demo gateway".to_owned(), vec![]),
                (Role::Public, "demo public".to_owned(), vec![]),
            ] {
                let token = new_token();
                service.add_token(&token, &Principal { name, role, grids }).await?;
                t.insert(role.name().to_owned(), token);
            }
            write_private(&file, &serde_json::to_string_pretty(&t)?)?;
            (t, true)
        }
    };
    if let Some(out) = out {
        write_private(out, &serde_json::to_string_pretty(&tokens)?)?;
    }
    Ok(DemoTokens { tokens, created, file })
}

/// The demo's tokens, whether this start minted them, and the file that keeps them.
struct DemoTokens {
    tokens: BTreeMap<String, String>,
    created: bool,
    file: PathBuf,
}

/// Writes a file readable by its owner only: it holds bearer tokens.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // Created 0600, never readable by others even for an instant; an older file is tightened.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
