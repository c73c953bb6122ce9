//! Positions reported by trackers (the live-positions issue). So far: the [`Fix`] a report
//! decodes to, and the OsmAnd / Traccar Client protocol decoder ([`osmand`]). Ingest (durable,
//! acknowledged once stored), noise filtering, traces and geofences build on these.

pub mod osmand;

use chrono::{DateTime, Utc};
use safegrid_geodata::LonLat;
use std::collections::BTreeMap;

/// One position report from a tracker, as decoded — not yet attached to a unit or checked for
/// noise (jumps, duplicates, future times, poor accuracy).
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// The tracker's device id; a responder carries the id of its tracker.
    pub device_id: String,
    /// When the fix was taken (the device's clock), or received if it did not say.
    pub time: DateTime<Utc>,
    /// WGS-84 position.
    pub pos: LonLat,
    /// Ground speed, metres per second.
    pub speed_mps: Option<f64>,
    /// Course over ground, degrees clockwise from north, in [0, 360).
    pub bearing_deg: Option<f64>,
    /// Altitude, metres.
    pub altitude_m: Option<f64>,
    /// Horizontal accuracy, metres.
    pub accuracy_m: Option<f64>,
    /// Battery level, percent.
    pub battery_pct: Option<f64>,
    /// `false` when the device itself marked the fix invalid.
    pub valid: bool,
    /// Every other parameter the device sent, as text.
    pub attributes: BTreeMap<String, String>,
}
