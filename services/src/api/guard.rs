//! The one door every route passes through, before its handler runs:
//!
//! 1. **who** — the bearer token resolved to a [`Principal`] (no header: the public; an unknown
//!    token: 401, never a silent downgrade);
//! 2. **may they** — the route's actions looked up in [`crate::policy`] and decided for the
//!    caller's role (a route without a row is refused for everyone: deny by default);
//! 3. **is there room** — an in-flight limit per load [`Class`], so that a flood of expensive
//!    requests is answered 503 + `Retry-After` at once instead of slowing health checks,
//!    `locate` and the citizens' lookup down with it.
//!
//! The decided caller travels to the handler in the request's extensions ([`super::caller`]).
//! Answers of actions that carry personal data get `Cache-Control: no-store`.

use super::AppState;
use super::problem::ApiError;
use crate::access::Principal;
use crate::metrics::Sample;
use crate::policy::{self, Class, Decision};
use axum::RequestPartsExt;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// In-flight limits per load class.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Static files, `locate`, the public lookup.
    pub cheap: usize,
    /// Item reads and writes, tiles, dispatch steps, tracker reports.
    pub normal: usize,
    /// Audits, gridding, road races, city-wide calls.
    pub heavy: usize,
    /// Open server-sent event streams.
    pub stream: usize,
    /// Expensive work of each kind at once (one audit computation, one gridding…); past it the
    /// request is refused rather than queued behind seconds of CPU.
    pub work: usize,
}

impl Default for Limits {
    /// Sized for a 2-core node: a cheap request takes microseconds, so a thousand in flight
    /// means the machine is drowning; a heavy one takes a core for seconds.
    fn default() -> Self {
        Self { cheap: 1024, normal: 128, heavy: 8, stream: 512, work: 1 }
    }
}

struct Gate {
    sem: Arc<Semaphore>,
    limit: usize,
    refused: AtomicU64,
}

impl Gate {
    fn new(limit: usize) -> Self {
        Self { sem: Arc::new(Semaphore::new(limit)), limit, refused: AtomicU64::new(0) }
    }

    fn try_enter(&self) -> Option<OwnedSemaphorePermit> {
        let p = Arc::clone(&self.sem).try_acquire_owned().ok();
        if p.is_none() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    fn in_flight(&self) -> usize {
        self.limit - self.sem.available_permits()
    }
}

/// Kinds of expensive work, each bounded on its own (see [`Limits::work`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// An audit's computation (geometry, workload, patrol, response, layers) or gridding.
    Audit,
    /// A cold tile build (a cached tile costs nothing).
    TileBuild,
    /// A road race (nearest units by road, a city-wide call).
    RoadRace,
}

impl Work {
    const ALL: [Work; 3] = [Work::Audit, Work::TileBuild, Work::RoadRace];

    fn name(self) -> &'static str {
        match self {
            Self::Audit => "audit",
            Self::TileBuild => "tile_build",
            Self::RoadRace => "road_race",
        }
    }

    /// Seconds a refused client should wait: about one such job's length.
    fn retry_after_s(self) -> u32 {
        match self {
            Self::Audit => 30,
            Self::TileBuild | Self::RoadRace => 1,
        }
    }
}

/// The in-flight gates of every class and kind of work, with their refusal counters.
pub struct Shedder {
    classes: [Gate; 5],
    work: [Gate; 3],
}

impl Shedder {
    /// Gates with these limits. Cold tile builds and road races take milliseconds, not
    /// seconds: they get many permits per core (a wall's first view asks for dozens of tiles).
    #[must_use]
    pub fn new(l: Limits) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self {
            // Probes are counted but never refused: the limit is only a gauge.
            classes: [
                Gate::new(Semaphore::MAX_PERMITS),
                Gate::new(l.cheap),
                Gate::new(l.normal),
                Gate::new(l.heavy),
                Gate::new(l.stream),
            ],
            work: [Gate::new(l.work), Gate::new(32 * cores), Gate::new(8 * cores)],
        }
    }

    fn class(&self, c: Class) -> &Gate {
        &self.classes[Class::ALL.iter().position(|x| *x == c).unwrap_or(0)]
    }

    fn gate(&self, w: Work) -> &Gate {
        &self.work[Work::ALL.iter().position(|x| *x == w).unwrap_or(0)]
    }

    /// A permit for one piece of expensive work, or a 503 with `Retry-After` past the bound.
    ///
    /// # Errors
    /// [`ApiError`] 503 when as many are running as allowed.
    pub fn start(&self, w: Work) -> Result<OwnedSemaphorePermit, ApiError> {
        self.gate(w).try_enter().ok_or_else(|| {
            let mut e = ApiError::unavailable(w.retry_after_s());
            e.set_detail(format!(
                "as many {} jobs are running as this server allows ({}); retry after the delay",
                w.name().replace('_', " "),
                self.gate(w).limit
            ));
            e
        })
    }

    /// `/metrics` series: limits, in flight and refusals per class and per kind of work.
    #[must_use]
    pub fn series(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        let f = |n: usize| n as f64;
        for (c, g) in Class::ALL.iter().zip(&self.classes) {
            let l = format!("{{class=\"{}\"}}", c.name());
            out.push(Sample::gauge(
                "safegrid_inflight_limit",
                "In-flight request limit per route class.",
                l.clone(),
                f(g.limit),
            ));
            out.push(Sample::gauge(
                "safegrid_inflight",
                "Requests in flight per route class.",
                l.clone(),
                f(g.in_flight()),
            ));
            out.push(Sample::counter(
                "safegrid_shed_total",
                "Requests refused 503 because their route class was full.",
                l,
                g.refused.load(Ordering::Relaxed) as f64,
            ));
        }
        for (w, g) in Work::ALL.iter().zip(&self.work) {
            let l = format!("{{work=\"{}\"}}", w.name());
            out.push(Sample::gauge(
                "safegrid_work_limit",
                "Concurrent expensive jobs allowed per kind.",
                l.clone(),
                f(g.limit),
            ));
            out.push(Sample::gauge(
                "safegrid_work_running",
                "Expensive jobs running per kind.",
                l.clone(),
                f(g.in_flight()),
            ));
            out.push(Sample::counter(
                "safegrid_work_refused_total",
                "Expensive jobs refused 503 because as many were running as allowed.",
                l,
                g.refused.load(Ordering::Relaxed) as f64,
            ));
        }
        out
    }
}

/// Runs seconds of CPU (an audit, a gridding) in a pool of threads of lower scheduling priority
/// (nice 10): on a node of two cores a running audit then takes what cheap routes leave over,
/// instead of both cores from `locate` and the citizens' lookup. The audits parallelise with
/// rayon, and rayon work started inside this pool stays in it — in rayon's global pool it ran
/// at full priority on every core (measured: cheap routes at two thirds of idle).
///
/// # Errors
/// [`ApiError::internal`] when the job panicked or no pool could be started.
pub async fn run_heavy<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    heavy_pool().ok_or_else(ApiError::internal)?.spawn(move || {
        let _ = tx.send(job());
    });
    rx.await.map_err(|_| ApiError::internal())
}

fn heavy_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("safegrid-heavy-{i}"))
            .start_handler(|_| {
                if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
                    tracing::debug!(error = %e, "could not lower an audit thread's priority");
                }
            })
            .build()
            .map_err(|e| tracing::error!(error = %e, "no thread pool for audits"))
            .ok()
    })
    .as_ref()
}

/// The route-layer middleware: decides, sheds, then runs the handler.
pub async fn enforce(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match admit(&st, req).await {
        Ok((req, permit, personal, class)) => {
            let mut resp = next.run(req).await;
            if personal {
                resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            if class == Class::Stream {
                // A stream's permit lives as long as its body: the limit counts open streams.
                let (parts, body) = resp.into_parts();
                let stream = futures_util::StreamExt::map(body.into_data_stream(), move |chunk| {
                    let _held = &permit;
                    chunk
                });
                Response::from_parts(parts, axum::body::Body::from_stream(stream))
            } else {
                drop(permit);
                resp
            }
        }
        Err(e) => e.into_response(),
    }
}

/// A write of a layer whose writes are audited (key personnel, responders), refused here by
/// role, leaves a row as the service's own refusals do (see `service/audit_trail.rs`).
async fn refused_write(
    st: &AppState,
    who: &Principal,
    layer: crate::layer::Layer,
    method: &str,
    params: &[(String, String)],
) {
    use crate::audit_log::{AuditEntry, AuditKind, Outcome};
    let action = match method {
        "POST" => "create",
        "PUT" => "update",
        "DELETE" => "delete",
        _ => "write",
    };
    let id: Option<i64> = params.iter().find(|(k, _)| k == "id").and_then(|(_, v)| v.parse().ok());
    let request = match id {
        Some(id) => format!("{action} {layer}/{id}"),
        None => format!("{action} {layer}"),
    };
    let entry = AuditEntry {
        action,
        request: &request,
        layer: Some(layer),
        subjects: id.into_iter().collect(),
        result_count: 0,
        kind: AuditKind::Write,
        outcome: Outcome::Forbidden,
    };
    if let Err(e) = st.service.audit_entry(who, entry).await {
        tracing::error!(error = %e, %request, actor = %who.name, "a refused write could not be recorded in the audit log");
    }
}

async fn admit(st: &AppState, req: Request) -> Result<(Request, OwnedSemaphorePermit, bool, Class), ApiError> {
    let (mut parts, body) = req.into_parts();
    let path = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let Some(route) = policy::route_of(parts.method.as_str(), &path) else {
        tracing::error!(method = %parts.method, route = %path, "a route has no access rule; refused");
        return Err(ApiError::forbidden("this route has no access rule; refused for everyone"));
    };
    let params: Vec<(String, String)> = parts
        .extract::<RawPathParams>()
        .await
        .map(|p| p.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    let actions = policy::actions(route, |k| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
    let who = match super::caller::bearer(&parts.headers)? {
        None => Principal::public(),
        Some(token) => {
            st.service.authenticate(token).ok_or_else(|| ApiError::unauthorized("the bearer token is not valid"))?
        }
    };
    match policy::decide(who.role, &actions) {
        Decision::Allow(_) => {}
        Decision::NeedsToken(a) => {
            return Err(ApiError::unauthorized(format!("to {}, send a bearer token", policy::describe(a))));
        }
        Decision::Refused(a) => {
            if let policy::Action::WriteLayer(layer) = a
                && policy::rule_of(a).audit == policy::Audit::Writes
            {
                refused_write(st, &who, layer, parts.method.as_str(), &params).await;
            }
            return Err(ApiError::forbidden(format!("role {} may not {}", who.role, policy::describe(a))));
        }
    }
    let class = policy::class_of(route, &actions);
    let permit = st.shed.class(class).try_enter().ok_or_else(|| {
        let mut e = ApiError::unavailable(if class == Class::Heavy { 5 } else { 1 });
        e.set_detail(format!(
            "the server is at its limit of {} {} requests in flight; retry after the delay",
            st.shed.class(class).limit,
            class.name()
        ));
        e
    })?;
    parts.extensions.insert(who);
    Ok((Request::from_parts(parts, body), permit, policy::personal(route, &actions), class))
}
