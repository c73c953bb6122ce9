//! The access policy: who may do what, in two tables a reviewer can read at once.
//!
//! - [`RULES`]: every [`Action`] × every [`Role`] → a [`Grant`] (refused, everything, or only
//!   what lies in the caller's grids), with the action's audit duty and whether its answers
//!   carry personal data (then `Cache-Control: no-store`).
//! - [`ROUTES`]: every route of the HTTP API (method and path pattern, as the router names it)
//!   → the action it performs and its load class ([`Class`]).
//!
//! The HTTP layer passes every request through [`decide`] once, before any handler runs; a
//! route without a row is refused for everyone (deny by default), and a test walks every route
//! of the OpenAPI document × every role against these tables. Handlers still narrow *which*
//! items a scoped caller sees (`Principal::covers_item`), because that depends on the data.

use crate::access::Role;
use crate::layer::Layer;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Static pages, health, the API description, the basemap, `whoami`: anyone.
    Anyone,
    /// The nearest open security posts: citizens see public fields only.
    NearestPosts,
    /// A tracker's own report (OsmAnd / Traccar Client), proven by the device's secret.
    DeviceReport,
    /// A gateway's batch of fixes.
    ReportPositions,
    /// The wall's statistics, data-version feed and TileJSON.
    ReadWall,
    /// The grid hierarchy, `locate` (grid managers' names and phones).
    ReadGrids,
    /// Change a grid unit.
    EditGrids,
    /// Read items of a layer.
    ReadLayer(Layer),
    /// Create, change or delete items of a layer.
    WriteLayer(Layer),
    /// Live positions, traces and grid crossings: where people are and were.
    ReadWhereabouts,
    /// The units that would arrive first by road (a road race; reads positions).
    NearestByRoad,
    /// Dispatches, their timelines and deadlines.
    ReadDispatches,
    /// Create dispatches, send units, step them, call city-wide.
    Dispatch,
    /// Change the dispatch deadlines.
    EditDeadlines,
    /// The geometry audit of the live grid layer.
    AuditGeometry,
    /// Households, people and incidents per grid, city-wide.
    AuditWorkload,
    /// Patrol coverage from everyone's traces.
    AuditPatrol,
    /// Response coverage from every post's and unit's place.
    AuditResponse,
    /// Another layer compared with the live one.
    AuditLayers,
    /// New grids from the registered housing.
    Gridding,
    /// The audit log.
    ReadAuditLog,
    /// Prometheus metrics.
    ReadMetrics,
    /// Mint, rotate or revoke a tracker's secret.
    ManageDevices,
}

/// What a role is granted for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Refused.
    Deny,
    /// Allowed for everything.
    All,
    /// Allowed for what lies in the caller's grids only.
    OwnGrids,
}

/// Which acts of an action are written to the audit log (by the handler or the service, which
/// know the subjects; the policy test checks that an allowed call leaves a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    /// Not audited.
    No,
    /// Every answer is recorded before it leaves.
    Reads,
    /// Every change (and refused attempt) is recorded.
    Writes,
}

/// The load class of a route: each has its own in-flight limit, so that cheap routes keep
/// answering while expensive ones are saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Liveness and readiness: never shed (an orchestrator would restart a busy server).
    Probe,
    /// Static files, `locate`, the public lookup: microseconds each, nothing durable.
    Cheap,
    /// Item reads and writes, tiles, dispatch steps.
    Normal,
    /// Seconds of CPU each: audits, gridding, road races, city-wide calls.
    Heavy,
    /// Long-lived server-sent event streams.
    Stream,
}

impl Class {
    /// All classes.
    pub const ALL: [Class; 5] = [Class::Probe, Class::Cheap, Class::Normal, Class::Heavy, Class::Stream];

    /// The class's name in metrics.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Probe => "probe",
            Self::Cheap => "cheap",
            Self::Normal => "normal",
            Self::Heavy => "heavy",
            Self::Stream => "stream",
        }
    }
}

/// One row of [`RULES`].
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// Grants in the order of [`Role::ALL`]: admin, dispatcher, grid worker, auditor, gateway,
    /// public.
    pub grants: [Grant; 6],
    /// Its audit duty.
    pub audit: Audit,
    /// Whether answers carry personal data (names, phones, whereabouts) or the audit log:
    /// never stored by a cache.
    pub personal: bool,
}

use Grant::{All as A, Deny as N, OwnGrids as S};

const fn rule(action: Action, grants: [Grant; 6], audit: Audit, personal: bool) -> Rule {
    Rule { action, grants, audit, personal }
}

/// Every action × every role.
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    //                                                  admin disp grid audit gate public
    rule(Action::Anyone,                               [A, A, A, A, A, A], Audit::No, false),
    rule(Action::NearestPosts,                         [A, A, S, A, N, A], Audit::No, false),
    // Proven by the device's secret, not a bearer token (see positions::devices).
    rule(Action::DeviceReport,                         [A, A, A, A, A, A], Audit::No, false),
    rule(Action::ReportPositions,                      [A, N, N, N, A, N], Audit::No, false),
    rule(Action::ReadWall,                             [A, A, S, A, N, N], Audit::No, false),
    rule(Action::ReadGrids,                            [A, A, A, A, N, N], Audit::No, true),
    rule(Action::EditGrids,                            [A, N, N, N, N, N], Audit::No, false),
    rule(Action::ReadLayer(Layer::Incidents),          [A, A, S, A, N, N], Audit::No, true),
    rule(Action::ReadLayer(Layer::RentalHousing),      [A, A, S, A, N, N], Audit::No, true),
    rule(Action::ReadLayer(Layer::Posts),              [A, A, S, A, N, N], Audit::No, false),
    // A responder stands where its last fix put it: its reads are reads of whereabouts.
    rule(Action::ReadLayer(Layer::Responders),         [A, A, S, A, N, N], Audit::Reads, true),
    rule(Action::ReadLayer(Layer::KeyPersonnel),       [A, A, S, A, N, N], Audit::Reads, true),
    rule(Action::WriteLayer(Layer::Incidents),         [A, A, S, N, N, N], Audit::No, true),
    rule(Action::WriteLayer(Layer::RentalHousing),     [A, A, S, N, N, N], Audit::No, true),
    rule(Action::WriteLayer(Layer::Posts),             [A, A, S, N, N, N], Audit::No, false),
    rule(Action::WriteLayer(Layer::Responders),        [A, A, S, N, N, N], Audit::Writes, true),
    rule(Action::WriteLayer(Layer::KeyPersonnel),      [A, N, S, N, N, N], Audit::Writes, true),
    rule(Action::ReadWhereabouts,                      [A, A, S, A, N, N], Audit::Reads, true),
    rule(Action::NearestByRoad,                        [A, A, S, A, N, N], Audit::Reads, true),
    rule(Action::ReadDispatches,                       [A, A, S, A, N, N], Audit::No, true),
    rule(Action::Dispatch,                             [A, A, N, N, N, N], Audit::No, true),
    rule(Action::EditDeadlines,                        [A, N, N, N, N, N], Audit::No, false),
    // Grid geometry and codes only: what a worker reads with ReadGrids anyway.
    rule(Action::AuditGeometry,                        [A, A, A, A, N, N], Audit::No, true),
    // City-wide counts of households and people: not for a worker scoped to a few grids.
    rule(Action::AuditWorkload,                        [A, A, N, A, N, N], Audit::No, false),
    rule(Action::AuditPatrol,                          [A, A, N, A, N, N], Audit::Reads, true),
    rule(Action::AuditResponse,                        [A, A, N, A, N, N], Audit::Reads, true),
    rule(Action::AuditLayers,                          [A, A, N, A, N, N], Audit::No, false),
    rule(Action::Gridding,                             [A, N, N, A, N, N], Audit::No, false),
    rule(Action::ReadAuditLog,                         [A, N, N, A, N, N], Audit::No, true),
    rule(Action::ReadMetrics,                          [A, N, N, A, N, N], Audit::No, false),
    rule(Action::ManageDevices,                        [A, A, N, N, N, N], Audit::Writes, true),
];

/// How a route's action is found.
#[derive(Debug, Clone, Copy)]
pub enum Resolve {
    /// Always this action.
    Fixed(Action),
    /// Reads of the layer named by the `{layer}` path segment.
    ReadOf,
    /// Writes of the layer named by the `{layer}` path segment.
    WriteOf,
    /// `/{layer}/nearest`: the public lookup for posts, a read otherwise.
    NearestOf,
    /// A tile or TileJSON of the comma-separated layers in `{layers}` or `{file}`: a read of each.
    TilesOf,
}

/// One row of [`ROUTES`].
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern as the router writes it.
    pub path: &'static str,
    /// The action.
    pub resolve: Resolve,
    /// Its load class.
    pub class: Class,
}

const fn route(method: &'static str, path: &'static str, resolve: Resolve, class: Class) -> Route {
    Route { method, path, resolve, class }
}

use Resolve::Fixed as F;

/// Every route of the HTTP API.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    route("GET",    "/",                                       F(Action::Anyone),          Class::Cheap),
    route("GET",    "/web/{*path}",                            F(Action::Anyone),          Class::Cheap),
    route("GET",    "/healthz",                                F(Action::Anyone),          Class::Probe),
    route("GET",    "/readyz",                                 F(Action::Anyone),          Class::Probe),
    route("GET",    "/api/v1/openapi.json",                    F(Action::Anyone),          Class::Cheap),
    route("GET",    "/api/v1/whoami",                          F(Action::Anyone),          Class::Cheap),
    route("GET",    "/basemap/style.json",                     F(Action::Anyone),          Class::Cheap),
    route("GET",    "/basemap/tiles.json",                     F(Action::Anyone),          Class::Cheap),
    route("GET",    "/basemap/tiles/{z}/{x}/{y}",              F(Action::Anyone),          Class::Cheap),
    route("GET",    "/basemap/fonts/{stack}/{range}",          F(Action::Anyone),          Class::Cheap),
    route("GET",    "/basemap/{file}",                         F(Action::Anyone),          Class::Cheap),
    route("GET",    "/metrics",                                F(Action::ReadMetrics),     Class::Cheap),
    route("GET",    "/api/v1/stats",                           F(Action::ReadWall),        Class::Normal),
    route("GET",    "/api/v1/events",                          F(Action::ReadWall),        Class::Stream),
    route("GET",    "/api/v1/search",                          F(Action::ReadWall),        Class::Normal),
    route("GET",    "/api/v1/audit_log",                       F(Action::ReadAuditLog),    Class::Normal),
    route("GET",    "/api/v1/audit/geometry",                  F(Action::AuditGeometry),   Class::Heavy),
    route("GET",    "/api/v1/audit/workload",                  F(Action::AuditWorkload),   Class::Heavy),
    route("GET",    "/api/v1/audit/patrol",                    F(Action::AuditPatrol),     Class::Heavy),
    route("POST",   "/api/v1/audit/layers",                    F(Action::AuditLayers),     Class::Heavy),
    route("GET",    "/api/v1/audit/response",                  F(Action::AuditResponse),   Class::Heavy),
    route("POST",   "/api/v1/gridding",                        F(Action::Gridding),        Class::Heavy),
    route("GET",    "/api/v1/locate",                          F(Action::ReadGrids),       Class::Cheap),
    route("GET",    "/api/v1/grids",                           F(Action::ReadGrids),       Class::Normal),
    route("GET",    "/api/v1/grids/{code}",                    F(Action::ReadGrids),       Class::Normal),
    route("PUT",    "/api/v1/grids/{code}",                    F(Action::EditGrids),       Class::Heavy),
    route("GET",    "/api/v1/osmand",                          F(Action::DeviceReport),    Class::Normal),
    route("POST",   "/api/v1/osmand",                          F(Action::DeviceReport),    Class::Normal),
    route("POST",   "/api/v1/positions",                       F(Action::ReportPositions), Class::Normal),
    route("GET",    "/api/v1/positions/live",                  F(Action::ReadWhereabouts), Class::Normal),
    route("POST",   "/api/v1/devices/{device_id}/secret",      F(Action::ManageDevices),   Class::Normal),
    route("DELETE", "/api/v1/devices/{device_id}/secret",      F(Action::ManageDevices),   Class::Normal),
    route("GET",    "/api/v1/dispatch/nearest",                F(Action::NearestByRoad),   Class::Heavy),
    route("GET",    "/api/v1/dispatch/deadlines",              F(Action::ReadDispatches),  Class::Normal),
    route("PUT",    "/api/v1/dispatch/deadlines",              F(Action::EditDeadlines),   Class::Normal),
    route("GET",    "/api/v1/dispatch/queue",                  F(Action::ReadDispatches),  Class::Normal),
    route("GET",    "/api/v1/dispatches",                      F(Action::ReadDispatches),  Class::Normal),
    route("POST",   "/api/v1/dispatches",                      F(Action::Dispatch),        Class::Normal),
    route("GET",    "/api/v1/dispatches/{id}",                 F(Action::ReadDispatches),  Class::Normal),
    route("POST",   "/api/v1/dispatches/{id}/units",           F(Action::Dispatch),        Class::Normal),
    route("POST",   "/api/v1/dispatches/{id}/units/{unit}",    F(Action::Dispatch),        Class::Normal),
    route("POST",   "/api/v1/dispatches/{id}/city_wide",       F(Action::Dispatch),        Class::Heavy),
    route("POST",   "/api/v1/dispatches/{id}/cancel",          F(Action::Dispatch),        Class::Normal),
    route("GET",    "/api/v1/incidents/{id}/timeline",         F(Action::ReadDispatches),  Class::Normal),
    route("GET",    "/api/v1/geofence/events",                 F(Action::ReadWhereabouts), Class::Normal),
    route("GET",    "/api/v1/geofence/stream",                 F(Action::ReadWhereabouts), Class::Stream),
    route("GET",    "/api/v1/responders/{id}/trace",           F(Action::ReadWhereabouts), Class::Normal),
    route("GET",    "/api/v1/{layer}",                         Resolve::ReadOf,            Class::Normal),
    route("POST",   "/api/v1/{layer}",                         Resolve::WriteOf,           Class::Normal),
    route("GET",    "/api/v1/{layer}/nearest",                 Resolve::NearestOf,         Class::Cheap),
    route("GET",    "/api/v1/{layer}/{id}",                    Resolve::ReadOf,            Class::Normal),
    route("PUT",    "/api/v1/{layer}/{id}",                    Resolve::WriteOf,           Class::Normal),
    route("DELETE", "/api/v1/{layer}/{id}",                    Resolve::WriteOf,           Class::Normal),
    route("GET",    "/tiles/{file}",                           Resolve::TilesOf,           Class::Normal),
    route("GET",    "/tiles/{layers}/{z}/{x}/{y}",             Resolve::TilesOf,           Class::Normal),
];

/// The row of `action`.
///
/// # Panics
/// Never for an action of [`RULES`]; the test `every_action_has_one_rule` checks that all have
/// exactly one.
#[must_use]
pub fn rule_of(action: Action) -> &'static Rule {
    RULES.iter().find(|r| r.action == action).unwrap_or(&RULES[0])
}

/// What `role` is granted for `action`.
#[must_use]
pub fn grant(action: Action, role: Role) -> Grant {
    let i = Role::ALL.iter().position(|r| *r == role).unwrap_or(Role::ALL.len() - 1);
    RULES.iter().find(|r| r.action == action).map_or(Grant::Deny, |r| r.grants[i])
}

/// The route row of a request (`path` is the router's pattern, not the concrete path).
#[must_use]
pub fn route_of(method: &str, path: &str) -> Option<&'static Route> {
    // HEAD is answered by GET handlers.
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// The actions a request performs: one, or for a tile of several layers one for each. A layer
/// name the API does not know resolves to [`Action::ReadWall`] (any reading role), so that only
/// those learn from the handler's 404 that it does not exist.
#[must_use]
pub fn actions(route: &Route, param: impl Fn(&str) -> Option<String>) -> Vec<Action> {
    let layer = || param("layer").and_then(|l| l.parse::<Layer>().ok());
    match route.resolve {
        Resolve::Fixed(a) => vec![a],
        Resolve::ReadOf => vec![layer().map_or(Action::ReadWall, Action::ReadLayer)],
        Resolve::WriteOf => vec![layer().map_or(Action::ReadWall, Action::WriteLayer)],
        Resolve::NearestOf => vec![match layer() {
            Some(Layer::Posts) => Action::NearestPosts,
            Some(l) => Action::ReadLayer(l),
            None => Action::ReadWall,
        }],
        Resolve::TilesOf => {
            let names = param("layers").or_else(|| param("file")).unwrap_or_default();
            let names = names.strip_suffix(".json").unwrap_or(&names).to_owned();
            let mut out: Vec<Action> = names
                .split(',')
                .map(|n| match n {
                    "grids" => Action::ReadGrids,
                    "incidents_h3" => Action::ReadLayer(Layer::Incidents),
                    other => other.parse::<Layer>().map_or(Action::ReadWall, Action::ReadLayer),
                })
                .collect();
            out.push(Action::ReadWall);
            out
        }
    }
}

/// The load class of a request: the route's, except that `/{layer}/nearest` is cheap only as the
/// citizens' post lookup (any other layer's nearest may write an audit row, durably).
#[must_use]
pub fn class_of(route: &Route, actions: &[Action]) -> Class {
    match route.resolve {
        Resolve::NearestOf if actions != [Action::NearestPosts] => Class::Normal,
        _ => route.class,
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, with the narrowest grant among the actions.
    Allow(Grant),
    /// Refused: the caller has no token (401).
    NeedsToken(Action),
    /// Refused: the caller's role does not allow this action (403).
    Refused(Action),
}

/// Whether `role` may perform all of `actions`.
#[must_use]
pub fn decide(role: Role, actions: &[Action]) -> Decision {
    let mut narrowest = Grant::All;
    for &a in actions {
        match grant(a, role) {
            Grant::Deny if role == Role::Public => return Decision::NeedsToken(a),
            Grant::Deny => return Decision::Refused(a),
            Grant::OwnGrids => narrowest = Grant::OwnGrids,
            Grant::All => {}
        }
    }
    Decision::Allow(narrowest)
}

/// Whether the answers of `route` to `actions` carry personal data (then never cached). A tile
/// carries only a few attributes of each layer — a grid's manager's name but not the phone, an
/// incident's type but not its address — so tiles count as personal only when they show where
/// people are (units, key persons); grid tiles keep their ETag revalidation on the wall.
#[must_use]
pub fn personal(route: &Route, actions: &[Action]) -> bool {
    match route.resolve {
        Resolve::TilesOf => {
            actions.iter().any(|a| matches!(a, Action::ReadLayer(Layer::Responders | Layer::KeyPersonnel)))
        }
        _ => actions.iter().any(|&a| rule_of(a).personal),
    }
}

/// The action in words, for refusals.
#[must_use]
pub fn describe(action: Action) -> String {
    match action {
        Action::Anyone => "use this route".into(),
        Action::NearestPosts => "look up the nearest posts".into(),
        Action::DeviceReport => "report a tracker's position".into(),
        Action::ReportPositions => "report positions in batches".into(),
        Action::ReadWall => "read the wall's statistics, feed and tiles".into(),
        Action::ReadGrids => "read grids and their managers".into(),
        Action::EditGrids => "change grids".into(),
        Action::ReadLayer(l) => format!("read {l}"),
        Action::WriteLayer(l) => format!("change {l}"),
        Action::ReadWhereabouts => "read positions, traces or grid crossings".into(),
        Action::NearestByRoad => "rank units by road".into(),
        Action::ReadDispatches => "read dispatches".into(),
        Action::Dispatch => "dispatch".into(),
        Action::EditDeadlines => "change dispatch deadlines".into(),
        Action::AuditGeometry => "audit the grid layer".into(),
        Action::AuditWorkload => "run the city-wide workload audit".into(),
        Action::AuditPatrol => "run the patrol audit".into(),
        Action::AuditResponse => "run the response audit".into(),
        Action::AuditLayers => "compare grid layers".into(),
        Action::Gridding => "generate grids".into(),
        Action::ReadAuditLog => "read the audit log".into(),
        Action::ReadMetrics => "read metrics".into(),
        Action::ManageDevices => "manage tracker secrets".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_actions() -> Vec<Action> {
        let mut v = vec![
            Action::Anyone,
            Action::NearestPosts,
            Action::DeviceReport,
            Action::ReportPositions,
            Action::ReadWall,
            Action::ReadGrids,
            Action::EditGrids,
            Action::ReadWhereabouts,
            Action::NearestByRoad,
            Action::ReadDispatches,
            Action::Dispatch,
            Action::EditDeadlines,
            Action::AuditGeometry,
            Action::AuditWorkload,
            Action::AuditPatrol,
            Action::AuditResponse,
            Action::AuditLayers,
            Action::Gridding,
            Action::ReadAuditLog,
            Action::ReadMetrics,
            Action::ManageDevices,
        ];
        for l in Layer::ALL {
            v.push(Action::ReadLayer(l));
            v.push(Action::WriteLayer(l));
        }
        v
    }

    #[test]
    fn every_action_has_exactly_one_rule() {
        for a in all_actions() {
            assert_eq!(RULES.iter().filter(|r| r.action == a).count(), 1, "{a:?}");
        }
        assert_eq!(RULES.len(), all_actions().len());
    }

    #[test]
    fn routes_are_unique() {
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{} {} twice", r.method, r.path);
        }
    }

    #[test]
    fn a_grid_worker_is_only_ever_granted_its_own_grids_for_data() {
        for r in RULES {
            let g = r.grants[2];
            let data =
                !matches!(r.action, Action::Anyone | Action::DeviceReport | Action::ReadGrids | Action::AuditGeometry);
            if data {
                assert_ne!(g, Grant::All, "{:?} gives grid workers everything", r.action);
            }
        }
    }

    #[test]
    fn the_gateway_can_only_send_positions() {
        for r in RULES {
            let g = r.grants[4];
            let ok = matches!(r.action, Action::Anyone | Action::DeviceReport | Action::ReportPositions);
            assert_eq!(g != Grant::Deny, ok, "{:?}", r.action);
        }
    }

    #[test]
    fn the_public_reaches_only_public_actions() {
        for r in RULES {
            let ok = matches!(r.action, Action::Anyone | Action::DeviceReport | Action::NearestPosts);
            assert_eq!(r.grants[5] != Grant::Deny, ok, "{:?}", r.action);
        }
    }

    #[test]
    fn reading_key_personnel_or_whereabouts_is_audited_and_never_cached() {
        for a in [
            Action::ReadLayer(Layer::KeyPersonnel),
            Action::ReadLayer(Layer::Responders),
            Action::ReadWhereabouts,
            Action::NearestByRoad,
        ] {
            assert_eq!(rule_of(a).audit, Audit::Reads);
            assert!(rule_of(a).personal);
        }
        assert_eq!(rule_of(Action::WriteLayer(Layer::KeyPersonnel)).audit, Audit::Writes);
    }

    #[test]
    fn a_tile_needs_every_layer_it_shows() {
        let r = route_of("GET", "/tiles/{layers}/{z}/{x}/{y}").expect("tile route");
        let acts = actions(r, |k| (k == "layers").then(|| "grids,incidents_h3".to_owned()));
        assert_eq!(decide(Role::Gateway, &acts), Decision::Refused(Action::ReadGrids));
        assert_eq!(decide(Role::Dispatcher, &acts), Decision::Allow(Grant::All));
        assert_eq!(decide(Role::GridWorker, &acts), Decision::Allow(Grant::OwnGrids));
        assert_eq!(decide(Role::Public, &acts), Decision::NeedsToken(Action::ReadGrids));
    }

    #[test]
    fn posts_nearest_is_public_but_other_layers_are_not() {
        let r = route_of("GET", "/api/v1/{layer}/nearest").expect("nearest route");
        let posts = actions(r, |_| Some("posts".to_owned()));
        let keys = actions(r, |_| Some("key_personnel".to_owned()));
        assert_eq!(decide(Role::Public, &posts), Decision::Allow(Grant::All));
        assert_eq!(decide(Role::Public, &keys), Decision::NeedsToken(Action::ReadLayer(Layer::KeyPersonnel)));
        assert_eq!(decide(Role::Gateway, &posts), Decision::Refused(Action::NearestPosts));
    }
}
