//! The wall's live feed, `GET /api/v1/events` (server-sent events): what changed, pushed, so
//! that an open wall polls nothing.
//!
//! - `versions`: the data version of the grids and of each readable layer, at once and within
//!   half a second of a change. Versions only: the wall refetches tiles, the queue and the
//!   statistics through the routes that check its role.
//! - `units` (with `?with=units`, for roles that may read whereabouts): every responder in the
//!   caller's grids — position, status, how fresh its fix is, its dispatch, its radio channel —
//!   at once (`full: true`), then only those that changed, and the ids of those gone. A unit
//!   that only moved is sent as `[id, lon, lat, fix time in ms]` in `moves` (3,000 units
//!   reporting every 5 s are 600 moves a second: each must be small); any other change (status,
//!   freshness, dispatch, grid, an edit) sends its whole line in `units`. Positions say where
//!   people are: a unit is named in the audit log (`live_stream`) before its position first
//!   leaves on this stream (every unit of the snapshot at once), the units pushed since are
//!   named once a minute, and the last of them when the stream ends.
//! - `dispatches` (with `?with=dispatches`, for roles that may read them): the open
//!   dispatches in the caller's grids at once, then each dispatch that changes (`dispatch`).
//!
//! A wall that reconnects (after a network cut) gets the snapshots again: it catches up
//! without a reload. The stream is gzipped for a client that accepts it, flushed after every
//! event. The token is checked again on every turn: a revoked token (or one whose
//! role or grids changed) ends the stream; the wall reconnects, is refused, and signs out.

use super::AppState;
use super::caller::Caller;
use super::problem::ApiError;
use super::query::AppQuery;
use crate::access::Principal;
use crate::audit_log::AuditEntry;
use crate::dispatch::board::{Dispatch, DispatchEvent};
use crate::layer::{Layer, Props};
use crate::policy::{self, Action, Grant};
use crate::positions::live::Freshness;
use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How often the feed looks for changes: the wall shows a write within about this long.
const FEED_PERIOD: Duration = Duration::from_millis(500);
/// How often the units pushed are written to the audit log.
const AUDIT_EVERY: Duration = Duration::from_secs(60);
/// Open dispatches sent in the first snapshot, newest first.
const OPEN_DISPATCHES: usize = 500;

/// One server-sent event: its name and its JSON.
struct Out {
    event: &'static str,
    data: String,
}

impl Out {
    fn new(event: &'static str, data: &Value) -> Self {
        Self { event, data: data.to_string() }
    }

    /// The event as the wire carries it (JSON holds no raw newline, so one `data:` line).
    fn to_text(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.event, self.data)
    }
}

/// A comment line: keeps idle proxies from closing a quiet stream.
const KEEP_ALIVE: &str = ":\n\n";
/// How long the stream may be silent before a keep-alive.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// What a feed carries besides versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Units,
    Dispatches,
}

impl std::str::FromStr for Part {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "units" => Ok(Self::Units),
            "dispatches" => Ok(Self::Dispatches),
            _ => Err("expected a list of units, dispatches"),
        }
    }
}

/// `?with=units,dispatches`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    #[serde(default, deserialize_with = "super::query::opt_list")]
    with: Option<Vec<Part>>,
}

/// The versions the wall watches: the grid layer and each readable layer.
fn versions(st: &AppState, who: &Principal) -> Value {
    let mut v = serde_json::Map::new();
    v.insert("grids".into(), st.service.grids().version.to_string().into());
    for layer in super::wall::readable(who) {
        v.insert(layer.name().into(), st.service.layer(layer).version().to_string().into());
    }
    Value::Object(v)
}

/// What a unit's line on the wall depends on: when any of it changes, the unit is pushed —
/// as a move (`[id, lon, lat, fix time]`) when only its position and fix changed, which is
/// nearly always, else whole.
#[derive(Debug, Clone, PartialEq)]
struct UnitKey {
    at: (u64, u64),
    fix_ms: Option<i64>,
    status: &'static str,
    freshness: Freshness,
    dispatch: Option<i64>,
    updated_ms: i64,
}

impl UnitKey {
    /// Whether only the position and the fix differ.
    fn only_moved(&self, now: &Self) -> bool {
        (self.status, self.freshness, self.dispatch, self.updated_ms)
            == (now.status, now.freshness, now.dispatch, now.updated_ms)
    }
}

/// What was last sent of a unit.
struct Sent {
    key: UnitKey,
    grid: Option<String>,
    /// The turn that last saw the unit: one not seen in this turn is gone.
    turn: u64,
}

/// One feed's memory of what it sent.
struct Feed {
    st: AppState,
    who: Principal,
    token: String,
    request: String,
    versions: Option<Value>,
    /// Units: what was sent of each (None until the snapshot), and whom to name in the next
    /// audit row.
    units: Option<HashMap<i64, Sent>>,
    want_units: bool,
    turn: u64,
    pushed: BTreeSet<i64>,
    /// Units named in a row of this stream already.
    named: HashSet<i64>,
    last_audit: Instant,
    /// Dispatches: the desk's events (followed to know each unit's open dispatch), and
    /// whether the caller asked for them too.
    dispatches: Option<broadcast::Receiver<DispatchEvent>>,
    want_dispatches: bool,
    sent_dispatches: bool,
    busy: HashMap<i64, i64>,
    pending: VecDeque<Out>,
    /// When the stream last sent anything.
    last_sent: Instant,
}

impl Feed {
    /// The next text to send (an event, or a keep-alive), waiting for one; `None` ends the
    /// stream.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                self.last_sent = Instant::now();
                return Some(e.to_text());
            }
            if self.last_sent.elapsed() >= KEEP_ALIVE_EVERY {
                self.last_sent = Instant::now();
                return Some(KEEP_ALIVE.to_owned());
            }
            if self.st.service.authenticate(&self.token).as_ref() != Some(&self.who) {
                tracing::info!(holder = %self.who.name, "event feed closed: the token was revoked or changed");
                return None;
            }
            // Dispatches first: a unit's line names its dispatch.
            if self.dispatches.is_some() && self.turn_dispatches().await.is_err() {
                return None;
            }
            let now = versions(&self.st, &self.who);
            if self.versions.as_ref() != Some(&now) {
                self.pending.push_back(Out::new("versions", &now));
                self.versions = Some(now);
            }
            if self.want_units && self.turn_units().await.is_err() {
                return None;
            }
            if self.pending.is_empty() {
                tokio::time::sleep(FEED_PERIOD).await;
            }
        }
    }

    fn note_busy(&mut self, d: &Dispatch) {
        for (unit, a) in &d.units {
            let on = d.closed_at.is_none() && a.step != crate::dispatch::board::Step::Cleared;
            if on {
                self.busy.insert(*unit, d.id);
            } else if self.busy.get(unit) == Some(&d.id) {
                self.busy.remove(unit);
            }
        }
    }

    /// The open dispatches at first, then each one an event changed.
    async fn turn_dispatches(&mut self) -> Result<(), ()> {
        let desk = std::sync::Arc::clone(&self.st.desk);
        let mut changed: BTreeSet<i64> = BTreeSet::new();
        let mut resend = !self.sent_dispatches;
        if let Some(rx) = self.dispatches.as_mut() {
            loop {
                match rx.try_recv() {
                    Ok(e) => {
                        changed.insert(e.dispatch_id);
                    }
                    Err(broadcast::error::TryRecvError::Lagged(_)) => resend = true,
                    Err(_) => break,
                }
            }
        }
        if resend {
            let open = desk.list(true, OPEN_DISPATCHES).await.map_err(|e| {
                tracing::warn!(error = %e, "event feed: the dispatches could not be read");
            })?;
            let open: Vec<Dispatch> = open.into_iter().filter(|d| super::dispatches::visible(&self.who, d)).collect();
            self.busy.clear();
            for d in &open {
                self.note_busy(d);
            }
            if self.want_dispatches {
                self.pending.push_back(Out::new("dispatches", &json!({"open": open})));
            }
            self.sent_dispatches = true;
            return Ok(());
        }
        for id in changed {
            let Ok(Some(d)) = desk.get(id).await else { continue };
            if !super::dispatches::visible(&self.who, &d) {
                continue;
            }
            self.note_busy(&d);
            if self.want_dispatches {
                self.pending.push_back(Out::new("dispatch", &json!(d)));
            }
        }
        Ok(())
    }

    /// Every unit at first, then those whose line changed; audited.
    async fn turn_units(&mut self) -> Result<(), ()> {
        let now = Utc::now();
        let full = self.units.is_none();
        self.turn += 1;
        let turn = self.turn;
        let (mut lines, mut moves) = (Vec::new(), Vec::new());
        {
            let live = self.st.service.live_units();
            let responders = self.st.service.layer(Layer::Responders);
            let posts = self.st.service.layer(Layer::Posts);
            let sent = self.units.get_or_insert_with(HashMap::new);
            for it in responders.iter().filter(|it| self.who.covers_item(it)) {
                let Props::Responder(r) = &it.props else { continue };
                let fix = live.get(it.id);
                let key = UnitKey {
                    at: (it.pos.lon().to_bits(), it.pos.lat().to_bits()),
                    fix_ms: fix.map(|f| f.time.timestamp_millis()),
                    status: r.status.name(),
                    freshness: live.freshness(it.id, now),
                    dispatch: self.busy.get(&it.id).copied(),
                    updated_ms: it.updated_at.timestamp_millis(),
                };
                let grid = it.grid.as_ref().map(safegrid_geodata::GridCode::as_str);
                let (lon, lat) = ((it.pos.lon() * 1e6).round() / 1e6, (it.pos.lat() * 1e6).round() / 1e6);
                match sent.get_mut(&it.id) {
                    Some(s) if s.key == key && s.grid.as_deref() == grid => s.turn = turn,
                    Some(s) if s.key.only_moved(&key) && s.grid.as_deref() == grid => {
                        moves.push(json!([it.id, lon, lat, key.fix_ms]));
                        s.key = key;
                        s.turn = turn;
                    }
                    _ => {
                        let radio = r.home_post.and_then(|p| match posts.get(p).map(|p| &p.props) {
                            Some(Props::Post(post)) => post.radio_channel.clone(),
                            _ => None,
                        });
                        lines.push(json!({
                            "id": it.id,
                            "callsign": r.callsign,
                            "kind": r.kind.name(),
                            "status": r.status.name(),
                            "tracked": r.device_id.is_some(),
                            "freshness": key.freshness.name(),
                            "lon": lon,
                            "lat": lat,
                            "fix_at": fix.map(|f| f.time),
                            "speed_mps": fix.and_then(|f| f.speed_mps),
                            "grid_code": grid,
                            "dispatch": key.dispatch,
                            "radio": radio,
                        }));
                        sent.insert(it.id, Sent { key, grid: grid.map(str::to_owned), turn });
                    }
                }
            }
        }
        let mut removed = Vec::new();
        if let Some(sent) = self.units.as_mut() {
            sent.retain(|id, s| {
                let keep = s.turn == turn;
                if !keep {
                    removed.push(*id);
                }
                keep
            });
        }
        if full || !lines.is_empty() || !moves.is_empty() || !removed.is_empty() {
            let mut unnamed = false;
            for id in
                lines.iter().chain(&moves).filter_map(|l| l.get("id").or_else(|| l.get(0))).filter_map(Value::as_i64)
            {
                self.pushed.insert(id);
                unnamed |= self.named.insert(id);
            }
            let n = lines.len() + moves.len();
            let data = json!({"full": full, "units": lines, "moves": moves, "removed": removed, "at": now});
            // A unit this stream has not yet named in a row (all of them in the snapshot) is
            // named before its position leaves; later pushes of the same units once a minute.
            if unnamed {
                self.audit(n).await?;
            }
            self.pending.push_back(Out::new("units", &data));
        }
        if !full && self.last_audit.elapsed() >= AUDIT_EVERY && !self.pushed.is_empty() {
            let n = self.pushed.len();
            self.audit(n).await?;
        }
        Ok(())
    }

    /// Writes the units pushed since the last row; the stream ends if the log cannot be written
    /// (nothing that says where a person is leaves unlogged).
    async fn audit(&mut self, count: usize) -> Result<(), ()> {
        let subjects: Vec<i64> = std::mem::take(&mut self.pushed).into_iter().collect();
        let entry = AuditEntry {
            action: "live_stream",
            request: &self.request,
            layer: Some(Layer::Responders),
            subjects,
            result_count: count,
            ..AuditEntry::default()
        };
        self.last_audit = Instant::now();
        self.st.service.audit_entry(&self.who, entry).await.map_err(|e| {
            tracing::warn!(error = %e, "event feed closed: its audit row could not be written");
        })
    }
}

impl Drop for Feed {
    /// A stream that ends (the wall went away, the token was revoked) names the units it
    /// pushed since its last row, so that no position that left goes unlogged.
    fn drop(&mut self) {
        if self.pushed.is_empty() {
            return;
        }
        let (service, who, request) = (std::sync::Arc::clone(&self.st.service), self.who.clone(), self.request.clone());
        let subjects: Vec<i64> = std::mem::take(&mut self.pushed).into_iter().collect();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let entry = AuditEntry {
                action: "live_stream",
                request: &request,
                layer: Some(Layer::Responders),
                result_count: subjects.len(),
                subjects,
                ..AuditEntry::default()
            };
            if let Err(e) = service.audit_entry(&who, entry).await {
                tracing::warn!(error = %e, "the last audit row of an event feed could not be written");
            }
        });
    }
}

/// `GET /api/v1/events[?with=units,dispatches]`: see the module's documentation.
///
/// # Errors
/// 400 for an unknown or malformed parameter; 401 for an Authorization header that is not
/// `Bearer <token>`; 403 for a part the caller's role may not read.
async fn events(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(q): AppQuery<FeedQuery>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let parts = q.with.unwrap_or_default();
    let want_units = parts.contains(&Part::Units);
    let want_dispatches = parts.contains(&Part::Dispatches);
    for (wanted, action, what) in
        [(want_units, Action::ReadWhereabouts, "units"), (want_dispatches, Action::ReadDispatches, "dispatches")]
    {
        if wanted && policy::grant(action, who.role) == Grant::Deny {
            return Err(ApiError::forbidden(format!("role {} may not read {what}", who.role)));
        }
    }
    let token = super::caller::bearer(&headers)?.unwrap_or_default().to_owned();
    // Units name their open dispatch, for those who may read dispatches.
    let follow = want_dispatches || (want_units && policy::grant(Action::ReadDispatches, who.role) != Grant::Deny);
    let feed = Feed {
        dispatches: follow.then(|| st.desk.subscribe()),
        want_dispatches,
        st,
        who,
        token,
        request: format!("GET {}", uri.0),
        versions: None,
        units: None,
        want_units,
        turn: 0,
        pushed: BTreeSet::new(),
        named: HashSet::new(),
        last_audit: Instant::now(),
        sent_dispatches: false,
        busy: HashMap::new(),
        pending: VecDeque::new(),
        last_sent: Instant::now(),
    };
    // Gzip when the client takes it (browsers do), flushed after every event so nothing waits
    // in the compressor: moves of thousands of units compress about fourfold.
    let gzip = super::tiles::accepts_gzip(&headers);
    let encoder = gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let stream = futures_util::stream::unfold((feed, encoder), |(mut feed, mut encoder)| async move {
        let text = feed.next().await?;
        let bytes = match encoder.as_mut() {
            None => bytes::Bytes::from(text),
            Some(z) => {
                use std::io::Write as _;
                if z.write_all(text.as_bytes()).and_then(|()| z.flush()).is_err() {
                    return None;
                }
                bytes::Bytes::from(std::mem::take(z.get_mut()))
            }
        };
        Some((Ok::<_, Infallible>(bytes), (feed, encoder)))
    });
    let mut r = axum::body::Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    // Positions of people: never kept by a cache on the way.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(r)
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events", get(events))
}
