//! Positions reported by trackers: decoded ([`osmand`], [`batch`]), checked for noise
//! ([`noise`]), stored durably in groups and only then acknowledged ([`ingest`]), kept as
//! the latest fix per unit ([`live`]), and watched for grid crossings ([`geofence`]).
//!
//! A fix belongs to a responder, or to a key person under electronic monitoring, through the
//! `device_id` the item carries (unique across both layers). Every fix must prove its device
//! with the device's secret ([`devices`]); a fix from a device nobody carries, or without the
//! secret in force, is refused and counted — one reason for both — never attached to a guess.

pub mod batch;
pub mod devices;
pub mod geofence;
pub mod ingest;
pub mod live;
pub mod mqtt;
pub mod noise;
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
    /// The secret that proves the fix comes from that device ([`devices`]); never logged.
    pub secret: Option<devices::Secret>,
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

/// Why a stored fix did not move the unit's live position (bits of [`TracePoint::flags`]).
pub mod flags {
    /// Older than the unit's live fix: history only.
    pub const LATE: u8 = 1;
    /// An impossible jump from the live fix (faster than the configured maximum speed).
    pub const JUMP: u8 = 2;
    /// Worse than the accuracy threshold.
    pub const INACCURATE: u8 = 4;
    /// The device marked it invalid.
    pub const INVALID: u8 = 8;

    /// The names of the bits set, for APIs and exports.
    #[must_use]
    pub fn names(f: u8) -> Vec<&'static str> {
        [(LATE, "late"), (JUMP, "jump"), (INACCURATE, "inaccurate"), (INVALID, "invalid")]
            .into_iter()
            .filter(|(b, _)| f & b != 0)
            .map(|(_, n)| n)
            .collect()
    }
}

/// Who a tracker belongs to: a responder, or a key person under electronic monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// An item of the responders layer.
    Responder,
    /// An item of the key-personnel layer.
    KeyPerson,
}

impl Subject {
    /// The stored code (`subject` columns).
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Responder => 0,
            Self::KeyPerson => 1,
        }
    }

    /// The subject of a stored code.
    #[must_use]
    pub fn from_code(c: i64) -> Option<Self> {
        match c {
            0 => Some(Self::Responder),
            1 => Some(Self::KeyPerson),
            _ => None,
        }
    }

    /// The layer its items live in.
    #[must_use]
    pub fn layer(self) -> crate::layer::Layer {
        match self {
            Self::Responder => crate::layer::Layer::Responders,
            Self::KeyPerson => crate::layer::Layer::KeyPersonnel,
        }
    }
}

/// A fix as stored: attached to a responder or a key person, with the noise checks' flags.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePoint {
    /// Whose fix.
    pub subject: Subject,
    /// The item's id in the subject's layer.
    pub unit_id: i64,
    /// When the fix was taken (millisecond precision: what the store keeps).
    pub time: DateTime<Utc>,
    /// Position.
    pub pos: LonLat,
    /// Ground speed, m/s.
    pub speed_mps: Option<f32>,
    /// Course, degrees.
    pub bearing_deg: Option<f32>,
    /// Altitude, metres.
    pub altitude_m: Option<f32>,
    /// Horizontal accuracy, metres.
    pub accuracy_m: Option<f32>,
    /// Battery, percent.
    pub battery_pct: Option<f32>,
    /// See [`flags`]; 0 for a fix that became the live position.
    pub flags: u8,
    /// The tracker's other parameters as a JSON object, if it sent any.
    pub attributes: Option<String>,
    /// When safegrid received it.
    pub received: DateTime<Utc>,
}

/// Milliseconds since the epoch: the precision the store keeps.
#[must_use]
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of a stored millisecond count (clamped into chrono's range).
#[must_use]
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Truncates an instant to whole milliseconds, so that what is compared in memory is what the
/// store keeps.
#[must_use]
pub fn to_store_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    from_millis(to_millis(t))
}
