//! The living demo: patrol units drive the demo's road network (Longgang) and report every
//! few seconds to the OsmAnd port over HTTP, exactly as a phone running Traccar Client does;
//! incidents arrive from time to time; the nearest unit by road is dispatched and runs the
//! lifecycle (acknowledged, en route, on scene, cleared) as it actually drives there.
//!
//! Only `safegrid demo` runs it (`--no-simulation` turns it off). Units, posts and incidents
//! it creates are ordinary data: the wall, the API and the audit log see them like any other.

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::roads::Mode;
use safegrid_geodata::{LonLat, haversine_m};
use safegrid_services::access::{Principal, Role};
use safegrid_services::dispatch::board::Step;
use safegrid_services::dispatch::desk::Desk;
use safegrid_services::dispatch::nearest::{NearestQuery, rank};
use safegrid_services::layer::{
    Incident, IncidentStatus, Layer, Post, PostKind, Props, Responder, ResponderKind, ResponderStatus,
};
use safegrid_services::roads::Roads;
use safegrid_services::service::Service;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Seconds between reports (Traccar Client's default interval is longer; a demo wants motion).
const REPORT_EVERY_S: u64 = 3;
/// Patrol speed, m/s (about 30 km/h).
const PATROL_MPS: f64 = 8.0;
/// Driving to an incident, m/s.
const RESPONSE_MPS: f64 = 12.0;
/// A new incident about this often, seconds.
const INCIDENT_EVERY_S: u64 = 40;
/// Time on scene before clearing, seconds.
const ON_SCENE_S: i64 = 60;
/// The simulated fleet.
const UNITS: usize = 16;
/// Where the demo's road network lies (the Longgang extract).
const AREA: (f64, f64, f64, f64) = (114.190, 22.676, 114.228, 22.700);

enum Task {
    Patrol,
    Responding { dispatch: i64, incident: i64 },
    OnScene { dispatch: i64, incident: i64, until: DateTime<Utc> },
}

struct SimUnit {
    id: i64,
    device: String,
    /// What its Traccar Client would send as the identifier: `DEVICE_ID:SECRET`.
    credential: String,
    pos: LonLat,
    /// The rest of the way, first point next.
    path: Vec<LonLat>,
    task: Task,
}

/// The `meta` key that says the demo fleet was created.
const SEEDED: &str = "demo_fleet_seeded";

fn system() -> Principal {
    Principal { name: "demo simulation".into(), role: Role::Admin, grids: vec![] }
}

/// Creates the demo fleet and Longgang's posts once.
///
/// # Errors
/// Store failures.
pub async fn seed(service: &Service, roads: &Roads) -> anyhow::Result<()> {
    if service.store().meta(SEEDED).await?.is_some() {
        return Ok(());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let who = system();
    // Device ids are random (never guessable from one another); the places stay reproducible.
    let mut ids = ChaCha8Rng::from_os_rng();
    for i in 0..UNITS {
        let pos = random_on_roads(roads, &mut rng);
        let props = Props::Responder(Responder {
            kind: if i % 4 == 0 { ResponderKind::Police } else { ResponderKind::Patrol },
            callsign: format!("龙巡-{:02}", i + 1),
            status: ResponderStatus::Available,
            capabilities: if i % 3 == 0 { vec!["first_aid".into()] } else { vec![] },
            home_post: None,
            device_id: Some(format!("demo-lg-{:08x}", ids.random::<u32>())),
        });
        service.create(&who, pos, props).await?;
    }
    for (i, name) in ["大运警务室", "龙城治安岗", "爱联平安站", "回龙埔警务站"].iter().enumerate()
    {
        let pos = random_on_roads(roads, &mut rng);
        let props = Props::Post(Post {
            kind: if i % 2 == 0 { PostKind::PoliceRoom } else { PostKind::SafetyStation },
            name: (*name).into(),
            phone: Some(format!("0755-8{:03}{:04}", 100 + i, 1000 + i)),
            radio_channel: Some(format!("LG-{:02}", i + 1)),
            opening_hours: Some(if i % 2 == 0 { "24h".into() } else { "07:00-23:00".into() }),
        });
        service.create(&who, pos, props).await?;
    }
    service.store().set_meta(SEEDED, &Utc::now().to_rfc3339()).await?;
    tracing::info!(units = UNITS, posts = 4, "demo fleet placed on Longgang's roads");
    Ok(())
}

fn random_on_roads(roads: &Roads, rng: &mut ChaCha8Rng) -> LonLat {
    loop {
        let Ok(p) = LonLat::new(rng.random_range(AREA.0..AREA.2), rng.random_range(AREA.1..AREA.3)) else { continue };
        if roads.drive.snap(p).is_some_and(|s| s.off_road_m < 30.0) {
            return p;
        }
    }
}

/// Runs the simulation for ever.
pub fn spawn(service: Arc<Service>, desk: Arc<Desk>, roads: Arc<Roads>, osmand: SocketAddr) {
    tokio::spawn(async move {
        let units: Vec<SimUnit> = service
            .layer(Layer::Responders)
            .iter()
            .filter_map(|it| match &it.props {
                Props::Responder(r) => r.device_id.as_ref().filter(|d| d.starts_with("demo-lg-")).map(|d| SimUnit {
                    id: it.id,
                    device: d.clone(),
                    credential: String::new(),
                    pos: it.pos,
                    path: Vec::new(),
                    task: Task::Patrol,
                }),
                _ => None,
            })
            .collect();
        // The fleet's trackers get fresh secrets on every start (rotated: the store keeps only
        // hashes, so there is nothing to read back); they prove themselves like any phone.
        let mut units = units;
        for u in &mut units {
            match service.mint_device_secret(&u.device).await {
                Ok(Some((_, secret))) => {
                    u.credential = safegrid_services::positions::devices::credential(&u.device, &secret);
                }
                Ok(None) => {
                    tracing::warn!(device = %u.device, "demo tracker carried by nobody; its reports will be refused");
                }
                Err(e) => {
                    tracing::warn!(device = %u.device, error = %e, "demo tracker secret not minted; its reports will be refused");
                }
            }
        }
        tracing::info!(units = units.len(), %osmand, "demo simulation running: units report over OsmAnd every {REPORT_EVERY_S} s");
        // The first incident waits until every unit has reported, so that one can be sent.
        let first = Utc::now() + chrono::Duration::seconds(2 * REPORT_EVERY_S as i64 + 1);
        let mut sim = Sim { service, desk, roads, osmand, units, rng: ChaCha8Rng::from_os_rng(), next_incident: first };
        let mut tick = tokio::time::interval(Duration::from_secs(REPORT_EVERY_S));
        loop {
            tick.tick().await;
            sim.step().await;
        }
    });
}

struct Sim {
    service: Arc<Service>,
    desk: Arc<Desk>,
    roads: Arc<Roads>,
    osmand: SocketAddr,
    units: Vec<SimUnit>,
    rng: ChaCha8Rng,
    next_incident: DateTime<Utc>,
}

impl Sim {
    async fn step(&mut self) {
        let now = Utc::now();
        if now >= self.next_incident {
            self.next_incident = now + chrono::Duration::seconds(INCIDENT_EVERY_S as i64);
            if let Err(e) = self.new_incident().await {
                tracing::warn!(error = %e, "demo incident not created");
            }
        }
        let who = system();
        for i in 0..self.units.len() {
            let speed = if matches!(self.units[i].task, Task::Responding { .. }) { RESPONSE_MPS } else { PATROL_MPS };
            let (bearing, moved) = advance(&mut self.units[i], speed * REPORT_EVERY_S as f64);
            let u = &mut self.units[i];
            match u.task {
                Task::Patrol if u.path.is_empty() => {
                    let to = random_on_roads(&self.roads, &mut self.rng);
                    u.path = route(&self.roads, u.pos, to);
                }
                Task::Responding { dispatch, incident } if u.path.is_empty() => {
                    let _ = self.desk.step(&who, dispatch, u.id, Step::OnScene).await;
                    u.task = Task::OnScene { dispatch, incident, until: now + chrono::Duration::seconds(ON_SCENE_S) };
                }
                Task::OnScene { dispatch, incident, until } if now >= until => {
                    let _ = self.desk.step(&who, dispatch, u.id, Step::Cleared).await;
                    close_incident(&self.service, incident).await;
                    u.task = Task::Patrol;
                }
                _ => {}
            }
            let speed_now = if moved > 0.0 { moved / REPORT_EVERY_S as f64 } else { 0.0 };
            report(self.osmand, &self.units[i], now, speed_now, bearing).await;
        }
    }

    async fn new_incident(&mut self) -> anyhow::Result<()> {
        let who = system();
        let at = random_on_roads(&self.roads, &mut self.rng);
        let kinds = ["theft", "fight", "traffic_accident", "noise", "fire_alarm", "missing_person"];
        let props = Props::Incident(Incident {
            incident_type: kinds[self.rng.random_range(0..kinds.len())].into(),
            priority: self.rng.random_range(1..=3),
            status: IncidentStatus::Open,
            reported_at: Utc::now(),
            address: Some("龙岗区 大运".into()),
            description: Some("demo simulation".into()),
        });
        let incident = self.service.create(&who, at, props).await?;
        let best = {
            let responders = self.service.layer(Layer::Responders);
            let live = self.service.live_units();
            let q = NearestQuery { k: 1, ..NearestQuery::default() };
            rank(at, responders.iter(), &live, Some(&self.roads), &q, Utc::now()).first().map(|r| r.item.id)
        };
        let Some(unit) = best else { return Ok(()) };
        let d = self.desk.create(&who, incident.id, &[unit], Some("demo: nearest unit by road".into())).await?;
        let _ = self.desk.step(&who, d.id, unit, Step::Acknowledged).await;
        let _ = self.desk.step(&who, d.id, unit, Step::EnRoute).await;
        if let Some(u) = self.units.iter_mut().find(|u| u.id == unit) {
            u.path = route(&self.roads, u.pos, at);
            u.task = Task::Responding { dispatch: d.id, incident: incident.id };
        }
        Ok(())
    }
}

/// Moves a unit `metres` along its path; returns (bearing, metres moved).
fn advance(u: &mut SimUnit, mut metres: f64) -> (f64, f64) {
    let start = u.pos;
    while metres > 0.0 && !u.path.is_empty() {
        let next = u.path[0];
        let d = haversine_m(u.pos, next);
        if d <= metres {
            metres -= d;
            u.pos = next;
            u.path.remove(0);
        } else {
            let f = metres / d;
            u.pos =
                LonLat::new(u.pos.lon() + (next.lon() - u.pos.lon()) * f, u.pos.lat() + (next.lat() - u.pos.lat()) * f)
                    .unwrap_or(u.pos);
            metres = 0.0;
        }
    }
    let (dx, dy) = ((u.pos.lon() - start.lon()) * start.lat().to_radians().cos(), u.pos.lat() - start.lat());
    ((dx.atan2(dy).to_degrees() + 360.0) % 360.0, haversine_m(start, u.pos))
}

fn route(roads: &Roads, from: LonLat, to: LonLat) -> Vec<LonLat> {
    let (Some(a), Some(b)) = (roads.drive.snap(from), roads.drive.snap(to)) else { return Vec::new() };
    roads.with_calculator(Mode::Drive, |g, calc| g.path(calc, &a, &b)).unwrap_or_default()
}

async fn close_incident(service: &Service, id: i64) {
    let Some(mut it) = service.layer(Layer::Incidents).get(id).cloned() else { return };
    if let Props::Incident(i) = &mut it.props {
        i.status = IncidentStatus::Closed;
    }
    if let Err(e) = service.update(&system(), id, it.pos, it.props).await {
        tracing::warn!(incident = id, error = %e, "demo incident not closed");
    }
}

/// Reports over HTTP as Traccar Client does: GET with id, lat, lon, timestamp, speed (knots),
/// bearing, accuracy and battery.
async fn report(osmand: SocketAddr, u: &SimUnit, now: DateTime<Utc>, speed_mps: f64, bearing: f64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = format!(
        "/?id={}&lat={:.6}&lon={:.6}&timestamp={}&speed={:.1}&bearing={:.0}&accuracy=6&batt=80",
        u.credential,
        u.pos.lat(),
        u.pos.lon(),
        now.timestamp(),
        speed_mps / (1852.0 / 3600.0),
        bearing
    );
    let send = async {
        let mut s = tokio::net::TcpStream::connect(osmand).await?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {osmand}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    match tokio::time::timeout(Duration::from_secs(5), send).await {
        Ok(Ok(buf)) if buf.starts_with(b"HTTP/1.1 200") => {}
        Ok(Ok(buf)) => {
            tracing::warn!(device = %u.device, answer = %String::from_utf8_lossy(&buf[..buf.len().min(80)]), "demo report refused");
        }
        Ok(Err(e)) => tracing::warn!(device = %u.device, error = %e, "demo report not sent"),
        Err(_) => tracing::warn!(device = %u.device, "demo report timed out"),
    }
}
