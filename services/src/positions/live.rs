//! The latest fix of every unit, and how fresh it is. The position itself lives in the
//! responders layer (so tiles, `nearest` and the wall see units where they are); this keeps
//! what the position alone does not say: when, how fast, how accurate, how much battery.

use super::TracePoint;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// Freshness thresholds (`--live-secs`, `--stale-secs`).
#[derive(Debug, Clone, Copy)]
pub struct FreshnessConfig {
    /// A fix younger than this is live (default 60 s).
    pub live: Duration,
    /// Younger than this but not live is stale (default 10 min); older is lost.
    pub stale: Duration,
}

impl Default for FreshnessConfig {
    fn default() -> Self {
        Self { live: Duration::seconds(60), stale: Duration::minutes(10) }
    }
}

/// How fresh a unit's position is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Reported within the live threshold.
    Live,
    /// Reported within the stale threshold.
    Stale,
    /// Not reported for longer.
    Lost,
    /// Never reported: the position is the one entered for it.
    None,
}

impl Freshness {
    /// The tier's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Stale => "stale",
            Self::Lost => "lost",
            Self::None => "none",
        }
    }

    /// Parses a tier name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Live, Self::Stale, Self::Lost, Self::None].into_iter().find(|f| f.name() == s)
    }
}

impl std::str::FromStr for Freshness {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or("expected a list of live, stale, lost, none")
    }
}

/// What is kept of a unit's live fix besides its position (24 bytes of payload).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LastFix {
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// Ground speed, m/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f32>,
    /// Course, degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearing_deg: Option<f32>,
    /// Horizontal accuracy, metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f32>,
    /// Battery, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f32>,
}

/// The latest fix per unit.
#[derive(Debug, Default)]
pub struct LiveUnits {
    config: FreshnessConfig,
    units: HashMap<i64, LastFix>,
}

impl LiveUnits {
    /// Empty, with these thresholds.
    #[must_use]
    pub fn new(config: FreshnessConfig) -> Self {
        Self { config, units: HashMap::new() }
    }

    /// Records a unit's new live fix.
    pub fn set(&mut self, p: &TracePoint) {
        self.units.insert(
            p.unit_id,
            LastFix {
                time: p.time,
                speed_mps: p.speed_mps,
                bearing_deg: p.bearing_deg,
                accuracy_m: p.accuracy_m,
                battery_pct: p.battery_pct,
            },
        );
    }

    /// Restores a unit's fix (when the thresholds change).
    pub fn insert(&mut self, unit: i64, f: LastFix) {
        self.units.insert(unit, f);
    }

    /// Forgets a unit.
    pub fn remove(&mut self, unit: i64) {
        self.units.remove(&unit);
    }

    /// A unit's live fix.
    #[must_use]
    pub fn get(&self, unit: i64) -> Option<&LastFix> {
        self.units.get(&unit)
    }

    /// Every unit with a fix.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &LastFix)> {
        self.units.iter().map(|(k, v)| (*k, v))
    }

    /// How many units have a fix.
    #[must_use]
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether no unit has a fix.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The freshness of a unit at `now`.
    #[must_use]
    pub fn freshness(&self, unit: i64, now: DateTime<Utc>) -> Freshness {
        match self.units.get(&unit) {
            None => Freshness::None,
            Some(f) if now - f.time < self.config.live => Freshness::Live,
            Some(f) if now - f.time < self.config.stale => Freshness::Stale,
            Some(_) => Freshness::Lost,
        }
    }

    /// The thresholds.
    #[must_use]
    pub fn config(&self) -> FreshnessConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safegrid_geodata::LonLat;

    #[test]
    fn tiers_follow_the_thresholds() {
        let mut l = LiveUnits::new(FreshnessConfig::default());
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        l.set(&TracePoint {
            subject: crate::positions::Subject::Responder,
            unit_id: 7,
            time: t0,
            pos: LonLat::new(114.0, 22.5).unwrap(),
            speed_mps: None,
            bearing_deg: None,
            altitude_m: None,
            accuracy_m: None,
            battery_pct: None,
            flags: 0,
            attributes: None,
            received: t0,
        });
        assert_eq!(l.freshness(7, t0 + Duration::seconds(59)), Freshness::Live);
        assert_eq!(l.freshness(7, t0 + Duration::seconds(60)), Freshness::Stale);
        assert_eq!(l.freshness(7, t0 + Duration::seconds(599)), Freshness::Stale);
        assert_eq!(l.freshness(7, t0 + Duration::seconds(600)), Freshness::Lost);
        assert_eq!(l.freshness(8, t0), Freshness::None);
    }
}
