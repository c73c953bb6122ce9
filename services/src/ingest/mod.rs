//! Durable ingest with group commit. Every ingest route (OsmAnd, the JSON batch, MQTT) hands
//! its fixes to [`Ingest::submit`], which answers only once they are committed to the store.
//!
//! One writer task takes whatever requests are waiting (up to [`IngestConfig::group_fixes`]),
//! attaches each fix to its unit by device id, judges it ([`crate::positions::noise`]), stores the group in
//! one transaction, and only then moves the units' live positions and answers every request in
//! the group. One fsync thus serves many requests: while a commit runs, the next group gathers.
//!
//! The queue is bounded in fixes: when it is full, [`Ingest::submit`] refuses at once with
//! [`IngestError::Overloaded`] (the API answers 503 with `Retry-After`), so a flood is pushed
//! back to the trackers, who keep their fixes and retry, instead of growing memory here.

pub mod mqtt;

use crate::layer::{Layer, Props};
use crate::positions::devices::{DeviceSecrets, DoorLimits, LimitConfig};
use crate::positions::geofence::{GridEvent, crossing, held_grid, zone_alert};
use crate::positions::noise::{NoiseConfig, NoiseFilter, Scratch, TrackKey, Verdict};
use crate::positions::{Fix, Subject, TracePoint, flags, to_store_precision};
use crate::service::Service;
use chrono::{DateTime, Utc};
use safegrid_geodata::GridCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};

/// Queue and group sizes.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Noise thresholds.
    pub noise: NoiseConfig,
    /// Most fixes waiting for the writer before requests are refused with 503.
    pub queue_fixes: usize,
    /// Most fixes in one commit.
    pub group_fixes: usize,
    /// Geofence hysteresis, metres (see [`crate::positions::geofence`]).
    pub geofence_margin_m: f64,
    /// Rate limits of the OsmAnd door (per device, per client address, failed authentications).
    pub limits: LimitConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            noise: NoiseConfig::default(),
            queue_fixes: 200_000,
            group_fixes: 50_000,
            geofence_margin_m: crate::positions::geofence::DEFAULT_MARGIN_M,
            limits: LimitConfig::default(),
        }
    }
}

/// Why fixes were not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The queue is full: retry after this many seconds.
    #[error("the ingest queue is full; retry in {retry_after_s} s")]
    Overloaded {
        /// Seconds.
        retry_after_s: u32,
    },
    /// More fixes in one request than the queue holds.
    #[error("{got} fixes in one request; at most {max}")]
    TooLarge {
        /// Fixes sent.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// The store failed (logged with its detail); nothing of the request was acknowledged.
    #[error("the store failed; nothing was acknowledged")]
    StoreFailed,
    /// The writer has stopped (the service is shutting down).
    #[error("the ingest writer has stopped")]
    Stopped,
    /// A device or a client address is over its rate limit: retry after this many seconds.
    #[error("too many reports; retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds.
        retry_after_s: u32,
    },
}

/// The one reason given for a fix whose device did not prove itself: an unknown device id, a
/// missing, wrong or revoked secret all read the same, so that none can be told apart.
pub const UNAUTHENTICATED: &str = "unauthenticated_device";

/// A fix that was not stored, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Refused {
    /// Its position in the request.
    pub index: usize,
    /// Its device id.
    pub device_id: String,
    /// `unauthenticated_device`, `future`, `too_old` or `duplicate`.
    pub reason: &'static str,
}

/// The answer to a request: its fixes are in the store unless listed in `refused`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Receipt {
    /// Fixes stored that moved their unit's live position.
    pub live: usize,
    /// Fixes stored as history only (late, jump, inaccurate or invalid).
    pub history: usize,
    /// Fixes not stored (a duplicate is already stored).
    pub refused: Vec<Refused>,
}

/// Counts since start-up, by outcome (exported at `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    live: AtomicU64,
    late: AtomicU64,
    jump: AtomicU64,
    inaccurate: AtomicU64,
    invalid: AtomicU64,
    duplicate: AtomicU64,
    future: AtomicU64,
    too_old: AtomicU64,
    unauthenticated: AtomicU64,
    rate_limited: AtomicU64,
    malformed: AtomicU64,
    overloaded: AtomicU64,
    commits: AtomicU64,
    store_failures: AtomicU64,
}

impl Counters {
    /// (outcome, count) for every outcome, in a fixed order.
    #[must_use]
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("live", c(&self.live)),
            ("late", c(&self.late)),
            ("jump", c(&self.jump)),
            ("inaccurate", c(&self.inaccurate)),
            ("invalid", c(&self.invalid)),
            ("duplicate", c(&self.duplicate)),
            ("future", c(&self.future)),
            ("too_old", c(&self.too_old)),
            ("unauthenticated_device", c(&self.unauthenticated)),
            ("rate_limited", c(&self.rate_limited)),
            ("malformed", c(&self.malformed)),
            ("overloaded", c(&self.overloaded)),
        ]
    }

    /// Group commits and failed commits.
    #[must_use]
    pub fn commits(&self) -> (u64, u64) {
        (self.commits.load(Ordering::Relaxed), self.store_failures.load(Ordering::Relaxed))
    }

    /// Counts a request whose parameters could not be decoded.
    pub fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    fn add(a: &AtomicU64, n: usize) {
        if n > 0 {
            a.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// The one task that commits fixes: see the module's documentation.
pub struct IngestWriter {
    writer: Writer,
    rx: mpsc::UnboundedReceiver<Job>,
}

impl IngestWriter {
    /// Commits groups of fixes until every [`Ingest`] handle is dropped.
    pub async fn run(self) {
        self.writer.run(self.rx).await;
    }
}

struct Job {
    fixes: Vec<Fix>,
    /// Fixes whose device did not prove itself (empty: none), refused without a look at the unit.
    denied: Vec<bool>,
    reply: oneshot::Sender<Result<Receipt, IngestError>>,
    /// Held until the job is answered: the queue's bound.
    _permit: OwnedSemaphorePermit,
}

/// The ingest handle, shared by every route.
pub struct Ingest {
    tx: mpsc::UnboundedSender<Job>,
    events: broadcast::Sender<GridEvent>,
    permits: Arc<Semaphore>,
    capacity: usize,
    counters: Arc<Counters>,
    /// The devices' secrets (the service's, kept in step on mint and revoke).
    devices: Arc<DeviceSecrets>,
    /// Rate limits of the OsmAnd door.
    doors: DoorLimits,
    /// The noise filter's thresholds (a refusal's answer names them).
    noise: NoiseConfig,
}

impl Ingest {
    /// The ingest handle and its writer, which the caller runs ([`IngestWriter::run`]): until
    /// it runs, submitted fixes wait in the queue. The noise filter starts from the live fixes
    /// the service restored.
    #[must_use]
    pub fn new(service: Arc<Service>, config: IngestConfig) -> (Self, IngestWriter) {
        let devices = Arc::clone(service.device_secrets());
        let mut filter = NoiseFilter::new(config.noise);
        // Every responder's and monitored key person's last stored live fix: a first fix after
        // a restart that implies an impossible jump from it is history (flag `jump`), not live.
        for f in service.restored_fixes() {
            filter.seed((f.subject, f.unit_id), f.time, f.pos);
        }
        {
            // Units that moved since start-up (another ingest on the same service).
            let live = service.live_units();
            let responders = service.layer(Layer::Responders);
            for (unit, last) in live.iter() {
                if let Some(it) = responders.get(unit) {
                    filter.seed((Subject::Responder, unit), last.time, it.pos);
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        // Subscribers that fall this far behind miss events and resume from the store.
        let (events, _) = broadcast::channel(4_096);
        let writer = Writer {
            service,
            filter,
            counters: Arc::clone(&counters),
            group: config.group_fixes.max(1),
            margin_m: config.geofence_margin_m,
            events: events.clone(),
            last_event_id: None,
        };
        let capacity = config.queue_fixes.clamp(1, Semaphore::MAX_PERMITS);
        let ingest = Self {
            tx,
            events,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            counters,
            devices,
            doors: DoorLimits::new(config.limits),
            noise: config.noise,
        };
        (ingest, IngestWriter { writer, rx })
    }

    /// The noise filter's thresholds: the retention and clock tolerance a refusal names.
    #[must_use]
    pub fn noise(&self) -> &NoiseConfig {
        &self.noise
    }

    /// Queues fixes and waits until they are stored (or refused).
    ///
    /// # Errors
    /// [`IngestError::Overloaded`] at once when the queue is full; [`IngestError::TooLarge`];
    /// [`IngestError::StoreFailed`] when the commit failed (nothing of the request is acknowledged).
    pub async fn submit(&self, fixes: Vec<Fix>) -> Result<Receipt, IngestError> {
        self.enqueue(fixes)?.await
    }

    /// Queues fixes now and returns a future of their receipt: a caller that must keep the
    /// order of its messages (an MQTT subscription) queues them one after another without
    /// waiting for each commit.
    ///
    /// # Errors
    /// [`IngestError::Overloaded`] when the queue is full; [`IngestError::TooLarge`].
    pub fn enqueue(
        &self,
        fixes: Vec<Fix>,
    ) -> Result<impl Future<Output = Result<Receipt, IngestError>> + Send + 'static, IngestError> {
        let denied = self.authenticate(&fixes);
        self.enqueue_checked(fixes, denied)
    }

    /// Which fixes' devices did not prove themselves (empty: all did). The one place every door
    /// checks secrets; a request repeating one device and secret is hashed once for it.
    fn authenticate(&self, fixes: &[Fix]) -> Vec<bool> {
        let mut seen: HashMap<(&str, Option<&str>), bool> = HashMap::new();
        let denied: Vec<bool> = fixes
            .iter()
            .map(|f| {
                let key = (f.device_id.as_str(), f.secret.as_ref().map(|s| s.0.as_str()));
                !*seen.entry(key).or_insert_with(|| self.devices.verify(&f.device_id, f.secret.as_ref()))
            })
            .collect();
        if denied.iter().any(|d| *d) { denied } else { Vec::new() }
    }

    /// Stores a unit's history as its operator imports it (`safegrid import --layer fixes`):
    /// judged and stored like any fix, but without a device secret — whoever runs the import
    /// holds the database. Never reachable from the network.
    ///
    /// # Errors
    /// As [`Ingest::submit`].
    pub async fn submit_history(&self, fixes: Vec<Fix>) -> Result<Receipt, IngestError> {
        self.enqueue_checked(fixes, Vec::new())?.await
    }

    /// One tracker's own report (the OsmAnd door): the client address's limits, the device's
    /// secret, then the device's limit. Failed authentications count against the address and
    /// device id together, and a pair over its failures is refused before any secret is
    /// checked; the other trackers behind the same address are not.
    ///
    /// # Errors
    /// [`IngestError::RateLimited`], and those of [`Ingest::submit`].
    pub async fn submit_report(&self, fix: Fix, client: Option<IpAddr>) -> Result<Receipt, IngestError> {
        let limited = |retry_after_s| {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            IngestError::RateLimited { retry_after_s }
        };
        let client = crate::positions::devices::client_key(client);
        let pair = (client, fix.device_id.clone());
        self.doors.failures.check(&pair).map_err(limited)?;
        self.doors.address.take(&client).map_err(limited)?;
        let denied = self.authenticate(std::slice::from_ref(&fix));
        if denied.is_empty() {
            self.doors.device.take(&fix.device_id).map_err(limited)?;
        } else {
            self.doors.failures.charge(&pair);
        }
        self.enqueue_checked(vec![fix], denied)?.await
    }

    fn enqueue_checked(
        &self,
        fixes: Vec<Fix>,
        denied: Vec<bool>,
    ) -> Result<impl Future<Output = Result<Receipt, IngestError>> + Send + 'static, IngestError> {
        let (reply, answer) = oneshot::channel();
        if !denied.is_empty() && denied.iter().all(|d| *d) {
            // Nothing to store: answered at once, the same for every kind of stranger.
            let refused: Vec<Refused> = fixes
                .iter()
                .enumerate()
                .map(|(index, f)| Refused { index, device_id: f.device_id.clone(), reason: UNAUTHENTICATED })
                .collect();
            Counters::add(&self.counters.unauthenticated, refused.len());
            let _ = reply.send(Ok(Receipt { refused, ..Receipt::default() }));
        } else if fixes.is_empty() {
            let _ = reply.send(Ok(Receipt::default()));
        } else {
            if fixes.len() > self.capacity {
                return Err(IngestError::TooLarge { got: fixes.len(), max: self.capacity });
            }
            let n = u32::try_from(fixes.len()).unwrap_or(u32::MAX);
            let Ok(permit) = Arc::clone(&self.permits).try_acquire_many_owned(n) else {
                Counters::add(&self.counters.overloaded, fixes.len());
                return Err(IngestError::Overloaded { retry_after_s: 1 });
            };
            self.tx.send(Job { fixes, denied, reply, _permit: permit }).map_err(|_| IngestError::Stopped)?;
        }
        Ok(async move { answer.await.map_err(|_| IngestError::Stopped)? })
    }

    /// Grid crossings as they are committed.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<GridEvent> {
        self.events.subscribe()
    }

    /// The outcome counters.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Fixes waiting for the writer or being committed.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }
}

struct Writer {
    service: Arc<Service>,
    filter: NoiseFilter,
    counters: Arc<Counters>,
    group: usize,
    margin_m: f64,
    events: broadcast::Sender<GridEvent>,
    /// The last grid-crossing id stored; read from the store before the first group.
    last_event_id: Option<i64>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        while let Some(first) = rx.recv().await {
            if self.last_event_id.is_none() {
                // Seeded on the first group, not at start, so that starting needs no await.
                match self.service.store().max_geofence_event_id().await {
                    Ok(id) => self.last_event_id = Some(id),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the last geofence event id failed; fixes refused");
                        let _ = first.reply.send(Err(IngestError::StoreFailed));
                        continue;
                    }
                }
            }
            let mut n = first.fixes.len();
            let mut jobs = vec![first];
            while n < self.group {
                match rx.try_recv() {
                    Ok(j) => {
                        n += j.fixes.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(jobs, n).await;
        }
    }

    async fn commit_group(&mut self, jobs: Vec<Job>, n: usize) {
        let now = Utc::now();
        let mut rows: Vec<TracePoint> = Vec::with_capacity(n);
        let mut receipts: Vec<Receipt> = Vec::with_capacity(jobs.len());
        let mut scratch = Scratch::default();
        // The newest live fix of each unit in this group (verdicts keep a unit's live fixes in
        // time order, so the last one wins).
        let mut moves: HashMap<TrackKey, usize> = HashMap::new();
        // The grid each moving subject is held in (geofence hysteresis), and the crossings and
        // zone alerts.
        let grids = self.service.grids();
        let mut held: HashMap<TrackKey, Option<GridCode>> = HashMap::new();
        let mut events: Vec<GridEvent> = Vec::new();
        let mut next_id = self.last_event_id.unwrap_or_default();
        {
            let responders = self.service.layer(Layer::Responders);
            let persons = self.service.layer(Layer::KeyPersonnel);
            for job in &jobs {
                let mut r = Receipt::default();
                for (index, fix) in job.fixes.iter().enumerate() {
                    let refuse = |reason| Refused { index, device_id: fix.device_id.clone(), reason };
                    if job.denied.get(index).copied().unwrap_or(false) {
                        r.refused.push(refuse(UNAUTHENTICATED));
                        continue;
                    }
                    // A responder's tracker, or a key person's monitoring device. A device with
                    // a secret that nobody carries (any more) is refused like a stranger.
                    let key = if let Some(u) = responders.unit_of_device(&fix.device_id) {
                        (Subject::Responder, u)
                    } else if let Some(p) = persons.unit_of_device(&fix.device_id) {
                        (Subject::KeyPerson, p)
                    } else {
                        r.refused.push(refuse(UNAUTHENTICATED));
                        continue;
                    };
                    let mut fix_at_store_precision;
                    let fix = if fix.time == to_store_precision(fix.time) {
                        fix
                    } else {
                        fix_at_store_precision = fix.clone();
                        fix_at_store_precision.time = to_store_precision(fix.time);
                        &fix_at_store_precision
                    };
                    let f = match self.filter.judge(&mut scratch, key, fix, now) {
                        Verdict::Refused(why) => {
                            r.refused.push(refuse(why.name()));
                            continue;
                        }
                        Verdict::Live => {
                            moves.insert(key, rows.len());
                            r.live += 1;
                            let item =
                                if key.0 == Subject::Responder { responders.get(key.1) } else { persons.get(key.1) };
                            let cur = held.entry(key).or_insert_with(|| item.and_then(|it| it.grid.clone()));
                            let next = held_grid(&grids, cur.as_ref(), fix.pos, self.margin_m);
                            let mut id = || {
                                next_id += 1;
                                next_id
                            };
                            events.extend(crossing(key, cur.as_ref(), next.as_ref(), fix.time, fix.pos, &mut id));
                            // A key person's zone: an alert for the grid worker of their grid.
                            if let Some(Props::KeyPerson(k)) = item.map(|it| &it.props)
                                && let Some(kind) =
                                    k.zone.as_ref().and_then(|z| zone_alert(z, cur.as_ref(), next.as_ref()))
                            {
                                events.push(GridEvent {
                                    id: id(),
                                    time: fix.time,
                                    subject: key.0,
                                    unit_id: key.1,
                                    kind,
                                    grid_code: k.assigned_grid.clone(),
                                    pos: fix.pos,
                                });
                            }
                            *cur = next;
                            0
                        }
                        Verdict::History(f) => {
                            r.history += 1;
                            f
                        }
                    };
                    rows.push(trace_point(key, fix, f, now));
                }
                receipts.push(r);
            }
        }
        let stored = if rows.is_empty() { Ok(0) } else { self.service.store().insert_fixes(&rows, &events).await };
        match stored {
            Ok(inserted) => {
                self.filter.commit(scratch);
                self.last_event_id = Some(next_id);
                let mut latest: Vec<(TracePoint, Option<GridCode>)> =
                    moves.into_iter().map(|(key, i)| (rows[i].clone(), held.get(&key).cloned().flatten())).collect();
                latest.sort_by_key(|(p, _)| (p.subject, p.unit_id));
                self.service.apply_fixes(&latest, grids.version).await;
                for e in events {
                    // No subscriber is fine: the events are stored.
                    let _ = self.events.send(e);
                }
                self.count(&rows, &receipts, inserted);
                for (job, r) in jobs.into_iter().zip(receipts) {
                    let _ = job.reply.send(Ok(r));
                }
            }
            Err(e) => {
                // The commit may have landed although it reported failure (a connection lost
                // during COMMIT): read the event ids' high-water mark again before the next group.
                self.last_event_id = None;
                self.counters.store_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, fixes = rows.len(), requests = jobs.len(), "storing fixes failed; none acknowledged");
                for job in jobs {
                    let _ = job.reply.send(Err(IngestError::StoreFailed));
                }
            }
        }
    }

    fn count(&self, rows: &[TracePoint], receipts: &[Receipt], inserted: u64) {
        let c = &self.counters;
        c.commits.fetch_add(1, Ordering::Relaxed);
        let bit = |b: u8| rows.iter().filter(|p| p.flags & b != 0).count();
        Counters::add(&c.live, rows.iter().filter(|p| p.flags == 0).count());
        Counters::add(&c.late, bit(flags::LATE));
        Counters::add(&c.jump, bit(flags::JUMP));
        Counters::add(&c.inaccurate, bit(flags::INACCURATE));
        Counters::add(&c.invalid, bit(flags::INVALID));
        // Re-sent fixes older than the live one reach the store, which keeps the first copy.
        Counters::add(&c.duplicate, rows.len().saturating_sub(inserted as usize));
        for r in receipts.iter().flat_map(|r| &r.refused) {
            let a = match r.reason {
                UNAUTHENTICATED => &c.unauthenticated,
                "future" => &c.future,
                "too_old" => &c.too_old,
                _ => &c.duplicate,
            };
            a.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn trace_point((subject, unit): TrackKey, fix: &Fix, flags: u8, received: DateTime<Utc>) -> TracePoint {
    let narrow = |x: Option<f64>| x.map(|v| v as f32);
    TracePoint {
        subject,
        unit_id: unit,
        time: fix.time,
        pos: fix.pos,
        speed_mps: narrow(fix.speed_mps),
        bearing_deg: narrow(fix.bearing_deg),
        altitude_m: narrow(fix.altitude_m),
        accuracy_m: narrow(fix.accuracy_m),
        battery_pct: narrow(fix.battery_pct),
        flags,
        attributes: (!fix.attributes.is_empty()).then(|| serde_json::to_string(&fix.attributes).unwrap_or_default()),
        received: to_store_precision(received),
    }
}

/// Deletes history older than `max_age` once an hour (and once at start).
pub fn spawn_retention(service: Arc<Service>, max_age: chrono::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let cutoff = Utc::now() - max_age;
            match service.store().drop_fixes_before(cutoff).await {
                Ok(n) => tracing::info!(%cutoff, deleted = n, "position history trimmed"),
                Err(e) => tracing::warn!(error = %e, "trimming the position history failed; will retry in an hour"),
            }
        }
    });
}
