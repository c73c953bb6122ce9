//! The k best units for a place, by road travel time.
//!
//! Candidates are the responders the caller may see that pass the filters (kind, capability;
//! available and live unless asked otherwise). Where the road network covers the place, each
//! candidate's ETA is its fastest drive there (contraction hierarchy, exact along roads); a
//! candidate off the network, or a place off it, gets an estimate from the straight line
//! ([`ESTIMATE_DETOUR`] × distance at [`ESTIMATE_MPS`]). Each answer says which (`road` or
//! `estimate`).
//!
//! On the network, one search runs backwards from the place and stops as soon as k units are
//! known to arrive first (`RoadGraph::nearest_by_time`); the winners' routes then come from
//! the contraction hierarchy for their lengths. A place far from the network ranks every unit
//! by estimate, nearest first.

use crate::layer::{Item, Props, ResponderStatus};
use crate::positions::live::{Freshness, LiveUnits};
use crate::roads::Roads;
use chrono::{DateTime, Utc};
use safegrid_geodata::roads::Mode;
use safegrid_geodata::{LonLat, haversine_m};

/// Road length over straight-line distance assumed by an estimate (typical of a city grid).
pub const ESTIMATE_DETOUR: f64 = 1.4;
/// Speed assumed by an estimate, m/s (30 km/h: urban driving with junctions).
pub const ESTIMATE_MPS: f64 = 30.0 / 3.6;

/// What to rank.
#[derive(Debug, Clone, Default)]
#[expect(clippy::struct_excessive_bools, reason = "independent switches, one per value of `include`")]
pub struct NearestQuery {
    /// How many.
    pub k: usize,
    /// Only this kind of responder.
    pub kind: Option<String>,
    /// Only responders with this capability.
    pub capability: Option<String>,
    /// Also units whose fix is stale.
    pub include_stale: bool,
    /// Also units whose fix is lost.
    pub include_lost: bool,
    /// Also units that never reported (standing where they were entered).
    pub include_untracked: bool,
    /// Also units that are not available (dispatched, on scene…).
    pub include_busy: bool,
}

/// How an ETA was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EtaSource {
    /// Along the road network.
    Road,
    /// From the straight line.
    Estimate,
}

/// One ranked unit.
#[derive(Debug, Clone)]
pub struct Ranked<'a> {
    /// The responder.
    pub item: &'a Item,
    /// Travel time, seconds.
    pub eta_s: f64,
    /// Along the road (road) or straight line × detour (estimate), metres.
    pub distance_m: f64,
    /// Straight-line distance, metres.
    pub straight_m: f64,
    /// How the ETA was found.
    pub source: EtaSource,
    /// How fresh its position is.
    pub freshness: Freshness,
    /// Seconds since its last fix, if it has one.
    pub age_s: Option<f64>,
}

fn estimate(straight_m: f64) -> (f64, f64) {
    let d = straight_m * ESTIMATE_DETOUR;
    (d / ESTIMATE_MPS, d)
}

/// Whether a responder is a candidate.
fn eligible(it: &Item, q: &NearestQuery, fresh: Freshness) -> bool {
    let Props::Responder(r) = &it.props else { return false };
    if q.kind.as_deref().is_some_and(|k| r.kind.name() != k) {
        return false;
    }
    if q.capability.as_ref().is_some_and(|c| !r.capabilities.contains(c)) {
        return false;
    }
    if !q.include_busy && r.status != ResponderStatus::Available {
        return false;
    }
    match fresh {
        Freshness::Live => true,
        Freshness::Stale => q.include_stale,
        Freshness::Lost => q.include_lost,
        Freshness::None => q.include_untracked,
    }
}

/// Ranks `candidates` (already limited to what the caller may see) for a place `at`.
pub fn rank<'a>(
    at: LonLat,
    candidates: impl Iterator<Item = &'a Item>,
    live: &LiveUnits,
    roads: Option<&Roads>,
    q: &NearestQuery,
    now: DateTime<Utc>,
) -> Vec<Ranked<'a>> {
    let mut pool: Vec<(&Item, f64, Freshness)> = candidates
        .filter_map(|it| {
            let fresh = live.freshness(it.id, now);
            eligible(it, q, fresh).then(|| (it, haversine_m(it.pos, at), fresh))
        })
        .collect();
    pool.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.id.cmp(&b.0.id)));
    let age = |it: &Item| live.get(it.id).map(|f| (now - f.time).num_milliseconds() as f64 / 1000.0);
    let make = |it: &'a Item, straight: f64, fresh, eta_s, distance_m, source| Ranked {
        item: it,
        eta_s,
        distance_m,
        straight_m: straight,
        source,
        freshness: fresh,
        age_s: age(it),
    };
    let mut out: Vec<Ranked<'a>> = Vec::with_capacity(q.k + 1);
    // Units on the network race on it; units off it are estimated; a place off it estimates all.
    let positions: Vec<LonLat> = pool.iter().map(|c| c.0.pos).collect();
    match roads.and_then(|r| r.race(Mode::Drive, at, &positions, q.k, estimate, true)) {
        Some(arrivals) => {
            for a in arrivals {
                let (it, straight, fresh) = pool[a.index];
                let source = if a.by_road { EtaSource::Road } else { EtaSource::Estimate };
                out.push(make(it, straight, fresh, a.eta_s, a.distance_m, source));
            }
        }
        None => {
            for (it, straight, fresh) in pool.into_iter().take(q.k) {
                let (eta, d) = estimate(straight);
                out.push(make(it, straight, fresh, eta, d, EtaSource::Estimate));
            }
        }
    }
    out
}
