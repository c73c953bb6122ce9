//! The citizens' lookup: `GET /api/v1/posts/nearest?lon=…&lat=…[&k=…&crs=…]` without a token.
//!
//! It answers the nearest security posts that are open now (or whose hours are not known),
//! with name, kind, phone, opening hours, distance and walking time (along footpaths and
//! streets where the road network covers the place, `walk_source: road`; else estimated from
//! the straight line). It accepts only those parameters and shows only those fields: never a
//! post's radio channel or grid, never a responder, a person or an id, and a filter that would
//! probe other data is refused by name. Each client address may ask [`RATE_PER_MINUTE`] times a
//! minute (bursts of [`BURST`]); beyond that the answer is 429 with `Retry-After`.

use super::AppState;
use super::problem::ApiError;
use super::query::{self, Bounded};
use crate::layer::{Item, Layer, Props};
use crate::roads::Roads;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveTime, Timelike, Utc};
use safegrid_geodata::roads::{ACCESS_MPS, Mode};
use safegrid_geodata::{Crs, LonLat, haversine_m};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Sustained lookups a minute per client address. Generous: carrier-grade NAT puts many
/// phones behind one address.
pub const RATE_PER_MINUTE: f64 = 60.0;
/// Lookups a client may make at once before the rate applies.
pub const BURST: f64 = 20.0;
/// Walking detour over the straight line assumed by an estimate.
const WALK_DETOUR: f64 = 1.3;
/// Posts considered for the walking race (the nearest by straight line).
const POOL: usize = 50;

/// Token buckets per client address.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<Option<IpAddr>, (f64, Instant)>>,
    per_minute: f64,
    burst: f64,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(RATE_PER_MINUTE, BURST)
    }
}

impl RateLimiter {
    /// Buckets refilling at `per_minute` that hold at most `burst`.
    #[must_use]
    pub fn new(per_minute: f64, burst: f64) -> Self {
        Self { buckets: Mutex::default(), per_minute, burst }
    }

    /// Takes one token for `client`; `Err(seconds)` to wait when there is none.
    ///
    /// # Errors
    /// The whole seconds (at least 1) until `client`'s bucket holds a token again.
    pub fn take(&self, client: Option<IpAddr>) -> Result<(), u32> {
        let now = Instant::now();
        let (rate, burst) = (self.per_minute / 60.0, self.burst);
        let mut b = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if b.len() > 100_000 {
            // Forget clients whose bucket has refilled: they lose nothing.
            b.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(client).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - *tokens) / rate).ceil() as u32).max(1))
        }
    }
}

/// Whether `hours` (`24h`, `HH:MM-HH:MM`, possibly past midnight) holds `t`; `None` when the
/// hours are missing or unreadable.
fn open_at(hours: Option<&str>, t: NaiveTime) -> Option<bool> {
    let h = hours?.trim();
    if h.eq_ignore_ascii_case("24h") || h == "24/7" {
        return Some(true);
    }
    let (a, b) = h.split_once('-')?;
    let parse = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").ok();
    let (from, to) = (parse(a)?, parse(b)?);
    Some(if from <= to { from <= t && t < to } else { t >= from || t < to })
}

/// What a citizen's lookup may ask: where, how many, in which coordinates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicQuery {
    lon: f64,
    lat: f64,
    #[serde(default)]
    k: Option<Bounded<1, 10>>,
    #[serde(default, deserialize_with = "query::parsed")]
    crs: Crs,
}

/// `GET /api/v1/posts/nearest` for a caller without a token.
///
/// # Errors
/// 429 + `Retry-After` past the per-address limit; 400 for any parameter but lon, lat, k
/// and crs, or a malformed one.
pub fn nearest_posts(st: &AppState, query: Option<&str>, client: Option<IpAddr>) -> Result<Response, ApiError> {
    if let Err(wait) = st.public_rate.take(client) {
        return Err(ApiError::rate_limited(wait, format!("too many lookups from this address; try again in {wait} s")));
    }
    let p: PublicQuery = query::from_query(query).map_err(|mut e| {
        e.set_detail("the public lookup takes lon, lat, k and crs only; other data needs a token");
        e
    })?;
    let at = query::point(p.lon, p.lat, p.crs)?;
    let (crs, k) = (p.crs, Bounded::or(p.k, 3));
    // Opening hours are local: China Standard Time, UTC+8 all year.
    let local = (Utc::now() + chrono::Duration::hours(8)).time();
    let local = NaiveTime::from_hms_opt(local.hour(), local.minute(), 0).unwrap_or(local);
    let features: Vec<Value> = {
        let posts = st.service.layer(Layer::Posts);
        let mut open: Vec<(&Item, f64, Option<bool>)> = posts
            .iter()
            .filter_map(|it| {
                let Props::Post(post) = &it.props else { return None };
                let now_open = open_at(post.opening_hours.as_deref(), local);
                (now_open != Some(false)).then(|| (it, haversine_m(it.pos, at), now_open))
            })
            .collect();
        open.sort_by(|a, b| a.1.total_cmp(&b.1));
        open.truncate(POOL.max(k));
        walking_race(st.roads.as_deref(), at, &open, k)
            .into_iter()
            .map(|(i, walk_s, distance_m, road)| public_feature(open[i].0, crs, open[i].2, walk_s, distance_m, road))
            .collect()
    };
    let mut r =
        super::items::geojson_response(StatusCode::OK, &json!({"type": "FeatureCollection", "features": features}));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r.into_response())
}

/// The `k` posts soonest reached on foot: (index, seconds, metres, along roads?).
fn walking_race(
    roads: Option<&Roads>,
    at: LonLat,
    posts: &[(&Item, f64, Option<bool>)],
    k: usize,
) -> Vec<(usize, f64, f64, bool)> {
    let estimate = |straight: f64| {
        let d = straight * WALK_DETOUR;
        (d / ACCESS_MPS, d)
    };
    // Walking is symmetric (one-ways do not bind pedestrians): posts race to the citizen.
    let positions: Vec<LonLat> = posts.iter().map(|p| p.0.pos).collect();
    match roads.and_then(|r| r.race(Mode::Walk, at, &positions, k, estimate, true)) {
        Some(arrivals) => arrivals.into_iter().map(|a| (a.index, a.eta_s, a.distance_m, a.by_road)).collect(),
        None => (0..posts.len().min(k))
            .map(|i| {
                let (secs, metres) = estimate(posts[i].1);
                (i, secs, metres, false)
            })
            .collect(),
    }
}

/// What a citizen sees of a post: where it is, what it is, how to reach it, whether it is open.
fn public_feature(it: &Item, crs: Crs, open_now: Option<bool>, walk_s: f64, distance_m: f64, road: bool) -> Value {
    let Props::Post(post) = &it.props else { return Value::Null };
    let p = crs.from_wgs84(it.pos);
    json!({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [p.lon(), p.lat()]},
        "properties": {
            "kind": post.kind.name(),
            "name": post.name,
            "phone": post.phone,
            "opening_hours": post.opening_hours,
            "open_now": open_now,
            "distance_m": distance_m.round(),
            "walk_s": walk_s.round(),
            "walk_source": if road { "road" } else { "estimate" },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_hours_are_read_as_local_time_including_past_midnight() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(open_at(Some("24h"), t(3, 0)), Some(true));
        assert_eq!(open_at(Some("08:00-22:00"), t(7, 59)), Some(false));
        assert_eq!(open_at(Some("08:00-22:00"), t(8, 0)), Some(true));
        assert_eq!(open_at(Some("08:00-22:00"), t(22, 0)), Some(false));
        assert_eq!(open_at(Some("20:00-06:00"), t(2, 0)), Some(true));
        assert_eq!(open_at(Some("20:00-06:00"), t(12, 0)), Some(false));
        assert_eq!(open_at(Some("weekdays"), t(12, 0)), None);
        assert_eq!(open_at(None, t(12, 0)), None);
    }

    #[test]
    fn a_client_gets_its_burst_then_the_rate() {
        let r = RateLimiter::default();
        let ip: Option<IpAddr> = "10.0.0.1".parse().ok();
        for _ in 0..BURST as usize {
            assert!(r.take(ip).is_ok());
        }
        assert!(r.take(ip).is_err());
        // Another address is not affected.
        assert!(r.take("10.0.0.2".parse().ok()).is_ok());
    }
}
