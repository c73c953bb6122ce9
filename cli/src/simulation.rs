//! The living demo: patrol units report every few seconds to the OsmAnd port over HTTP, exactly
//! as a phone running Traccar Client does. In Longgang, where the demo has a road network, they
//! drive its streets; in every other district a few units patrol in straight lines between
//! random places of their district (their ETAs are estimates). Incidents arrive from time to
//! time, in Longgang or anywhere in the city, and the unit that would arrive first is sent.
//!
//! Every dispatch to a simulated unit — the simulation's own or a dispatcher's at the wall — is
//! worked the same way: acknowledged after a few seconds, driven to, on scene for a minute,
//! cleared (the desk then closes the incident). A dispatch the wall cancels sends the unit back
//! on patrol. After a restart, every dispatch a simulated unit was still on is resumed where it
//! stood, and the log says so.
//!
//! Only `safegrid demo` runs it (`--no-simulation` turns it off). Units, posts and incidents
//! it creates are ordinary data: the wall, the API and the audit log see them like any other.

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::roads::Mode;
use safegrid_geodata::{GridCode, GridLevel};
use safegrid_geodata::{LonLat, haversine_m};
use safegrid_services::access::{Principal, Role};
use safegrid_services::dispatch::board::{DispatchEvent, Step};
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
/// Seconds a unit takes to acknowledge a dispatch.
const ACK_AFTER_S: i64 = 5;
/// The simulated fleet on Longgang's roads.
const UNITS: usize = 16;
/// Simulated units in each other district, patrolling in straight lines.
const UNITS_PER_DISTRICT: usize = 6;
/// Where the demo's road network lies (the Longgang extract).
const AREA: (f64, f64, f64, f64) = (114.190, 22.676, 114.228, 22.700);
/// Device ids of the fleet on the roads, and of the straight-line patrols elsewhere.
const ROAD_DEVICES: &str = "demo-lg-";
const CITY_DEVICES: &str = "demo-sz-";

enum Task {
    Patrol,
    /// Sent; acknowledges at `at`.
    Sent {
        dispatch: i64,
        incident: i64,
        at: DateTime<Utc>,
    },
    Responding {
        dispatch: i64,
    },
    OnScene {
        dispatch: i64,
        until: DateTime<Utc>,
    },
}

impl Task {
    fn dispatch(&self) -> Option<i64> {
        match self {
            Self::Patrol => None,
            Self::Sent { dispatch, .. } | Self::Responding { dispatch } | Self::OnScene { dispatch, .. } => {
                Some(*dispatch)
            }
        }
    }
}

/// How a unit gets about: along the road network, or in straight lines within its district.
enum Movement {
    Roads,
    Straight { district: GridCode },
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
    movement: Movement,
}

/// The `meta` keys that say the demo fleet (Longgang's, then the other districts') was created.
const SEEDED: &str = "demo_fleet_seeded";
const SEEDED_CITY: &str = "demo_fleet_citywide_seeded";

fn system() -> Principal {
    Principal { name: "demo simulation".into(), role: Role::Admin, grids: vec![] }
}

/// Creates the demo fleet and Longgang's posts once.
///
/// # Errors
/// Store failures.
pub async fn seed(service: &Service, roads: &Roads) -> anyhow::Result<()> {
    seed_citywide(service).await?;
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
            device_id: Some(format!("{ROAD_DEVICES}{:08x}", ids.random::<u32>())),
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

/// Creates, once, a few straight-line patrol units in every district but Longgang (whose fleet
/// drives its roads), so that a click anywhere in the city finds units nearby.
async fn seed_citywide(service: &Service) -> anyhow::Result<()> {
    if service.store().meta(SEEDED_CITY).await?.is_some() {
        return Ok(());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(2027);
    let mut ids = ChaCha8Rng::from_os_rng();
    let who = system();
    let districts: Vec<(GridCode, String)> = service
        .grids()
        .hierarchy
        .units()
        .iter()
        .filter(|u| u.level == GridLevel::District && !in_road_area(&u.geometry))
        .map(|u| (u.code.clone(), u.name.trim_end_matches('区').to_owned()))
        .collect();
    let mut placed = 0;
    for (code, name) in &districts {
        for i in 0..UNITS_PER_DISTRICT {
            let Some(pos) = random_in_district(service, code, &mut rng) else { break };
            let props = Props::Responder(Responder {
                kind: if i % 3 == 0 { ResponderKind::Police } else { ResponderKind::Patrol },
                callsign: format!("{name}巡-{:02}", i + 1),
                status: ResponderStatus::Available,
                capabilities: if i % 2 == 0 { vec!["first_aid".into()] } else { vec![] },
                home_post: None,
                device_id: Some(format!("{CITY_DEVICES}{:08x}", ids.random::<u32>())),
            });
            service.create(&who, pos, props).await?;
            placed += 1;
        }
    }
    service.store().set_meta(SEEDED_CITY, &Utc::now().to_rfc3339()).await?;
    tracing::info!(units = placed, districts = districts.len(), "demo patrols placed in the other districts");
    Ok(())
}

/// Whether a district holds the road network's area (Longgang's fleet drives it).
fn in_road_area(geometry: &geo::MultiPolygon<f64>) -> bool {
    use geo::Contains;
    let (lon, lat) = (f64::midpoint(AREA.0, AREA.2), f64::midpoint(AREA.1, AREA.3));
    geometry.contains(&geo::Point::new(lon, lat))
}

/// A random place inside a district (within its grids), or `None` after many misses.
fn random_in_district(service: &Service, district: &GridCode, rng: &mut ChaCha8Rng) -> Option<LonLat> {
    use geo::BoundingRect;
    let grids = service.grids();
    let rect = grids.unit(district)?.geometry.bounding_rect()?;
    for _ in 0..200 {
        let p = LonLat::new(rng.random_range(rect.min().x..rect.max().x), rng.random_range(rect.min().y..rect.max().y))
            .ok()?;
        if grids.grid_of(p).is_some_and(|g| district.covers(&g)) {
            return Some(p);
        }
    }
    None
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
    // Subscribed before anything is read: no dispatch made meanwhile is missed.
    let events = desk.subscribe();
    tokio::spawn(async move {
        let units: Vec<SimUnit> = service
            .layer(Layer::Responders)
            .iter()
            .filter_map(|it| match &it.props {
                Props::Responder(r) => {
                    let device = r.device_id.as_ref()?;
                    let movement = if device.starts_with(ROAD_DEVICES) {
                        Movement::Roads
                    } else if device.starts_with(CITY_DEVICES) {
                        // The district: the top level of the unit's grid code.
                        let code = it.grid.as_ref()?.as_str().get(..6)?;
                        Movement::Straight { district: GridCode::parse(code).ok()? }
                    } else {
                        return None;
                    };
                    Some(SimUnit {
                        id: it.id,
                        device: device.clone(),
                        credential: String::new(),
                        pos: it.pos,
                        path: Vec::new(),
                        task: Task::Patrol,
                        movement,
                    })
                }
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
        let mut sim =
            Sim { service, desk, roads, osmand, units, events, rng: ChaCha8Rng::from_os_rng(), next_incident: first };
        sim.resume().await;
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
    events: tokio::sync::broadcast::Receiver<DispatchEvent>,
    rng: ChaCha8Rng,
    next_incident: DateTime<Utc>,
}

impl Sim {
    /// After a restart: every dispatch a simulated unit is still on goes on from where it stood.
    async fn resume(&mut self) {
        let open = match self.desk.list(true, usize::MAX).await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "demo simulation: the open dispatches could not be read; none resumed");
                return;
            }
        };
        let now = Utc::now();
        for d in open {
            for a in d.units.values() {
                let Some(i) = self.units.iter().position(|u| u.id == a.unit_id) else { continue };
                let target = self.service.layer(Layer::Incidents).get(d.incident_id).map(|it| it.pos);
                let task = match (a.step, target) {
                    (Step::Cleared, _) => continue,
                    (Step::Dispatched, _) => Task::Sent { dispatch: d.id, incident: d.incident_id, at: now },
                    (Step::OnScene, _) => {
                        Task::OnScene { dispatch: d.id, until: now + chrono::Duration::seconds(ON_SCENE_S) }
                    }
                    (_, Some(to)) => {
                        self.units[i].path = self.way(i, to);
                        Task::Responding { dispatch: d.id }
                    }
                    (_, None) => Task::OnScene { dispatch: d.id, until: now },
                };
                tracing::info!(
                    dispatch = d.id,
                    unit = a.unit_id,
                    step = a.step.name(),
                    "demo simulation restarted: resuming the dispatch this unit was on"
                );
                self.units[i].task = task;
            }
        }
    }

    /// Dispatches made since the last tick: a simulated unit sent acknowledges soon; one whose
    /// dispatch was closed by someone else (cancelled, cleared at the wall) goes back on patrol.
    fn take_events(&mut self, now: DateTime<Utc>) {
        use tokio::sync::broadcast::error::TryRecvError;
        loop {
            let e = match self.events.try_recv() {
                Ok(e) => e,
                Err(TryRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "demo simulation fell behind the dispatch desk");
                    continue;
                }
                Err(_) => return,
            };
            let mine = |u: &SimUnit| {
                e.unit_id == Some(u.id) || (e.unit_id.is_none() && u.task.dispatch() == Some(e.dispatch_id))
            };
            let Some(u) = self.units.iter_mut().find(|u| mine(u)) else { continue };
            match e.kind.as_str() {
                "dispatched" => {
                    let at = now + chrono::Duration::seconds(ACK_AFTER_S);
                    u.task = Task::Sent { dispatch: e.dispatch_id, incident: e.incident_id, at };
                }
                "cleared" | "closed" if u.task.dispatch() == Some(e.dispatch_id) => {
                    u.task = Task::Patrol;
                    u.path.clear();
                }
                _ => {}
            }
        }
    }

    async fn step(&mut self) {
        let now = Utc::now();
        self.take_events(now);
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
            match self.units[i].task {
                Task::Patrol if self.units[i].path.is_empty() => {
                    let to = self.patrol_target(i);
                    self.units[i].path = self.way(i, to);
                }
                Task::Sent { dispatch, incident, at } if now >= at => {
                    let id = self.units[i].id;
                    let _ = self.desk.step(&who, dispatch, id, Step::Acknowledged).await;
                    let _ = self.desk.step(&who, dispatch, id, Step::EnRoute).await;
                    let to = self.service.layer(Layer::Incidents).get(incident).map(|it| it.pos);
                    self.units[i].path = to.map(|to| self.way(i, to)).unwrap_or_default();
                    self.units[i].task = Task::Responding { dispatch };
                }
                Task::Responding { dispatch } if self.units[i].path.is_empty() => {
                    let _ = self.desk.step(&who, dispatch, self.units[i].id, Step::OnScene).await;
                    self.units[i].task = Task::OnScene { dispatch, until: now + chrono::Duration::seconds(ON_SCENE_S) };
                }
                Task::OnScene { dispatch, until } if now >= until => {
                    // The desk closes the incident with its last unit.
                    let _ = self.desk.step(&who, dispatch, self.units[i].id, Step::Cleared).await;
                    self.units[i].task = Task::Patrol;
                }
                _ => {}
            }
            let speed_now = if moved > 0.0 { moved / REPORT_EVERY_S as f64 } else { 0.0 };
            report(self.osmand, &self.units[i], now, speed_now, bearing).await;
        }
    }

    /// Where a unit on patrol heads next: a street of Longgang, or a place in its district.
    fn patrol_target(&mut self, i: usize) -> LonLat {
        match &self.units[i].movement {
            Movement::Roads => random_on_roads(&self.roads, &mut self.rng),
            Movement::Straight { district } => {
                let district = district.clone();
                random_in_district(&self.service, &district, &mut self.rng).unwrap_or(self.units[i].pos)
            }
        }
    }

    /// The way from a unit to a place: by road where both are on the network, else straight.
    fn way(&self, i: usize, to: LonLat) -> Vec<LonLat> {
        let u = &self.units[i];
        let by_road = match u.movement {
            Movement::Roads => route(&self.roads, u.pos, to),
            Movement::Straight { .. } => Vec::new(),
        };
        if by_road.is_empty() { vec![to] } else { by_road }
    }

    /// A new incident, in Longgang or (every other time) anywhere in the city, and the unit
    /// that would arrive first sent to it — worked like any dispatch (see [`Self::take_events`]).
    async fn new_incident(&mut self) -> anyhow::Result<()> {
        let who = system();
        let elsewhere = self.rng.random_bool(0.5).then(|| {
            let districts: Vec<GridCode> = self
                .units
                .iter()
                .filter_map(|u| match &u.movement {
                    Movement::Straight { district } => Some(district.clone()),
                    Movement::Roads => None,
                })
                .collect();
            districts.get(self.rng.random_range(0..districts.len().max(1))).cloned()
        });
        let at = match elsewhere.flatten() {
            Some(d) => random_in_district(&self.service, &d, &mut self.rng)
                .unwrap_or_else(|| random_on_roads(&self.roads, &mut self.rng)),
            None => random_on_roads(&self.roads, &mut self.rng),
        };
        let kinds = ["theft", "fight", "traffic_accident", "noise", "fire_alarm", "missing_person"];
        let address =
            self.service.grids().grid_of(at).and_then(|g| self.service.grids().unit(&g).map(|u| u.name.clone()));
        let props = Props::Incident(Incident {
            incident_type: kinds[self.rng.random_range(0..kinds.len())].into(),
            priority: self.rng.random_range(1..=3),
            status: IncidentStatus::Open,
            reported_at: Utc::now(),
            address: Some(address.unwrap_or_else(|| "龙岗区 大运".into())),
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
        self.desk.create(&who, incident.id, &[unit], Some("demo: the unit that would arrive first".into())).await?;
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
