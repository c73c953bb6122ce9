//! Positions reported by trackers: decoded ([`osmand`], [`batch`]), checked for noise
//! ([`noise`]), kept as the latest fix per unit ([`live`]), and watched for grid crossings
//! ([`geofence`]). Storing them durably in groups, and only then acknowledging them, is
//! [`crate::ingest`]'s work, above the service these modules sit below.
//!
//! A fix belongs to a responder, or to a key person under electronic monitoring, through the
//! `device_id` the item carries (unique across both layers). Every fix must prove its device
//! with the device's secret ([`devices`]); a fix from a device nobody carries, or without the
//! secret in force, is refused and counted — one reason for both — never attached to a guess.

pub mod batch;
pub mod devices;
pub mod geofence;
pub mod live;
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

// The records a fix becomes once stored live below the store (`crate::records`); they are
// named here too, where the rest of the positions code looks for them.
pub use crate::records::{Subject, TracePoint, flags, from_millis, to_millis, to_store_precision};
