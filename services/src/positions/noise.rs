//! Noise checks on a unit's fixes: what a phone's GPS and clock get wrong, sorted into fixes
//! that are refused (never stored), fixes kept as history only (flagged, the live position
//! stays), and fixes that become the live position.
//!
//! | case | outcome |
//! |---|---|
//! | time later than now + `future_tolerance` (a wrong phone clock) | refused: `future` |
//! | time earlier than now − `max_age` (older than the history keeps) | refused: `too_old` |
//! | same time as the unit's live fix (a tracker re-sending) | refused: `duplicate` (already stored) |
//! | the device marked it invalid | history, flag `invalid` |
//! | accuracy worse than `max_accuracy_m` | history, flag `inaccurate` |
//! | older than the live fix (arrived out of order) | history, flag `late` |
//! | faster than `max_speed_mps` from the live fix | history, flag `jump` |
//! | otherwise | the new live position |
//!
//! A jump is judged against the live fix, so one glitch does not drag the unit away. If the
//! glitch was the live fix instead (a unit that first reported from a wrong place), the real
//! fixes that follow agree with one another: after [`REANCHOR_AFTER`] consecutive jumps that are
//! plausible from each other, the newest becomes live.
//!
//! Judging is split from committing: the ingest judges a whole group against a scratch copy of
//! the tracks it touches ([`Scratch`]) and keeps the copy only once the group is stored, so a
//! failed commit leaves the filter as it was.

use chrono::{DateTime, Duration, Utc};
use safegrid_geodata::LonLat;
use safegrid_geodata::distance::haversine_m;
use std::collections::HashMap;

use super::{Fix, Subject, flags};

/// Whose track: responders and key persons have separate id spaces.
pub type TrackKey = (Subject, i64);

/// Consecutive mutually plausible jumps after which the newest becomes live.
pub const REANCHOR_AFTER: u32 = 3;

/// Thresholds, set on the command line (`safegrid serve --help`).
#[derive(Debug, Clone, Copy)]
pub struct NoiseConfig {
    /// Fastest plausible ground speed between two fixes, m/s (default 70 ≈ 250 km/h).
    pub max_speed_mps: f64,
    /// Worst horizontal accuracy that may move the live position, metres.
    pub max_accuracy_m: f64,
    /// How far ahead of the server's clock a fix may be (phones drift).
    pub future_tolerance: Duration,
    /// Oldest fix accepted (the history's retention).
    pub max_age: Duration,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        Self {
            max_speed_mps: 70.0,
            max_accuracy_m: 100.0,
            future_tolerance: Duration::seconds(120),
            max_age: Duration::days(183),
        }
    }
}

/// Why a fix was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Taken in the future by the server's clock.
    Future,
    /// Older than the history keeps.
    TooOld,
    /// The live fix again.
    Duplicate,
}

impl Refusal {
    /// The reason's name (metrics label, API answer).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Future => "future",
            Self::TooOld => "too_old",
            Self::Duplicate => "duplicate",
        }
    }
}

/// What happens to a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stored and the unit's new live position.
    Live,
    /// Stored as history only, with these [`flags`].
    History(u8),
    /// Not stored.
    Refused(Refusal),
}

/// A position at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Anchor {
    time: DateTime<Utc>,
    pos: LonLat,
}

/// What the filter remembers of a unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    live: Option<Anchor>,
    /// The newest of a run of jumps that agree with one another, and the run's length.
    pending: Option<(Anchor, u32)>,
}

/// The remembered tracks of every unit.
#[derive(Debug, Default)]
pub struct NoiseFilter {
    config: NoiseConfig,
    tracks: HashMap<TrackKey, Track>,
}

/// The tracks a group of fixes changed, kept apart until the group is stored.
#[derive(Debug, Default)]
pub struct Scratch(HashMap<TrackKey, Track>);

impl NoiseFilter {
    /// A filter with no history.
    #[must_use]
    pub fn new(config: NoiseConfig) -> Self {
        Self { config, tracks: HashMap::new() }
    }

    /// The thresholds.
    #[must_use]
    pub fn config(&self) -> &NoiseConfig {
        &self.config
    }

    /// Remembers a unit's live fix (restored from the store at start-up).
    pub fn seed(&mut self, unit: TrackKey, time: DateTime<Utc>, pos: LonLat) {
        self.tracks.insert(unit, Track { live: Some(Anchor { time, pos }), pending: None });
    }

    /// Judges `fix` of `unit`, recording its effect in `scratch` (not in the filter).
    pub fn judge(&self, scratch: &mut Scratch, unit: TrackKey, fix: &Fix, now: DateTime<Utc>) -> Verdict {
        let c = &self.config;
        if fix.time > now + c.future_tolerance {
            return Verdict::Refused(Refusal::Future);
        }
        if fix.time < now - c.max_age {
            return Verdict::Refused(Refusal::TooOld);
        }
        let track = scratch.0.entry(unit).or_insert_with(|| self.tracks.get(&unit).cloned().unwrap_or_default());
        let here = Anchor { time: fix.time, pos: fix.pos };
        if track.live.is_some_and(|l| l.time == fix.time) {
            return Verdict::Refused(Refusal::Duplicate);
        }
        let mut f = 0;
        if !fix.valid {
            f |= flags::INVALID;
        }
        if fix.accuracy_m.is_some_and(|a| a > c.max_accuracy_m) {
            f |= flags::INACCURATE;
        }
        if track.live.is_some_and(|l| fix.time < l.time) {
            f |= flags::LATE;
        }
        if f != 0 {
            return Verdict::History(f);
        }
        if let Some(live) = track.live
            && !plausible(live, here, c.max_speed_mps)
        {
            let run = match track.pending {
                Some((p, n)) if p.time < here.time && plausible(p, here, c.max_speed_mps) => n + 1,
                _ => 1,
            };
            if run < REANCHOR_AFTER {
                track.pending = Some((here, run));
                return Verdict::History(flags::JUMP);
            }
        }
        *track = Track { live: Some(here), pending: None };
        Verdict::Live
    }

    /// Keeps what a stored group changed.
    pub fn commit(&mut self, scratch: Scratch) {
        self.tracks.extend(scratch.0);
    }

    /// Forgets a unit (deleted, or its tracker moved to another unit).
    pub fn forget(&mut self, unit: TrackKey) {
        self.tracks.remove(&unit);
    }
}

/// Could a unit get from `a` to `b` in the time between them without exceeding `max_mps`?
/// Fixes within a second of each other are allowed 30 m of scatter whatever the speed.
fn plausible(a: Anchor, b: Anchor, max_mps: f64) -> bool {
    let secs = (b.time - a.time).num_milliseconds().unsigned_abs() as f64 / 1000.0;
    haversine_m(a.pos, b.pos) <= max_mps * secs + 30.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fix(secs: i64, lon: f64, lat: f64) -> Fix {
        Fix {
            device_id: "d".into(),
            secret: None,
            time: DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
            pos: LonLat::new(lon, lat).unwrap(),
            speed_mps: None,
            bearing_deg: None,
            altitude_m: None,
            accuracy_m: Some(5.0),
            battery_pct: None,
            valid: true,
            attributes: BTreeMap::new(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + 1_000, 0).unwrap()
    }

    /// Judges and commits one fix at a time.
    fn run(f: &mut NoiseFilter, fixes: &[Fix]) -> Vec<Verdict> {
        fixes
            .iter()
            .map(|x| {
                let mut s = Scratch::default();
                let v = f.judge(&mut s, (Subject::Responder, 1), x, now());
                f.commit(s);
                v
            })
            .collect()
    }

    #[test]
    fn each_kind_of_noise_gets_its_verdict() {
        let mut f = NoiseFilter::new(NoiseConfig::default());
        let mut bad_accuracy = fix(20, 114.0001, 22.5);
        bad_accuracy.accuracy_m = Some(500.0);
        let mut invalid = fix(30, 114.0001, 22.5);
        invalid.valid = false;
        let v = run(
            &mut f,
            &[
                fix(0, 114.0, 22.5),
                fix(10, 114.0005, 22.5),         // 51 m in 10 s: live
                fix(10, 114.0009, 22.5),         // same time again: duplicate
                fix(5, 114.0002, 22.5),          // before the live fix: late
                bad_accuracy,                    // 500 m accuracy
                invalid,                         // the device says so
                fix(40, 114.5, 22.5),            // 51 km in 30 s: jump
                fix(1_000 + 600, 114.0, 22.5),   // 10 minutes ahead of the server
                fix(-200 * 86_400, 114.0, 22.5), // beyond retention
                fix(50, 114.001, 22.5),          // back to normal, 51 m from the live fix
            ],
        );
        assert_eq!(
            v,
            [
                Verdict::Live,
                Verdict::Live,
                Verdict::Refused(Refusal::Duplicate),
                Verdict::History(flags::LATE),
                Verdict::History(flags::INACCURATE),
                Verdict::History(flags::INVALID),
                Verdict::History(flags::JUMP),
                Verdict::Refused(Refusal::Future),
                Verdict::Refused(Refusal::TooOld),
                Verdict::Live,
            ]
        );
    }

    #[test]
    fn a_wrong_first_fix_is_left_behind_after_consistent_jumps() {
        let mut f = NoiseFilter::new(NoiseConfig::default());
        // The first fix is 50 km off; the unit really walks near 114.0.
        let mut fixes = vec![fix(0, 114.5, 22.5)];
        fixes.extend((1..=4).map(|i| fix(i * 5, 114.0 + f64::from(i as i32) * 0.0001, 22.5)));
        let v = run(&mut f, &fixes);
        assert_eq!(
            v,
            [
                Verdict::Live,
                Verdict::History(flags::JUMP),
                Verdict::History(flags::JUMP),
                Verdict::Live, // the third consistent one re-anchors
                Verdict::Live,
            ]
        );
    }

    #[test]
    fn scattered_glitches_never_re_anchor() {
        let mut f = NoiseFilter::new(NoiseConfig::default());
        let v = run(
            &mut f,
            &[
                fix(0, 114.0, 22.5),
                fix(5, 114.5, 22.5),  // glitch east
                fix(10, 113.5, 22.5), // glitch west: not plausible from the east one
                fix(15, 114.5, 22.9), // glitch north-east
                fix(20, 114.0001, 22.5),
            ],
        );
        assert_eq!(v[1..4], [Verdict::History(flags::JUMP); 3]);
        assert_eq!(v[4], Verdict::Live);
    }

    #[test]
    fn an_uncommitted_group_changes_nothing() {
        let f = NoiseFilter::new(NoiseConfig::default());
        let mut s = Scratch::default();
        assert_eq!(f.judge(&mut s, (Subject::Responder, 1), &fix(0, 114.0, 22.5), now()), Verdict::Live);
        assert_eq!(
            f.judge(&mut s, (Subject::Responder, 1), &fix(0, 114.0, 22.5), now()),
            Verdict::Refused(Refusal::Duplicate)
        );
        drop(s);
        let mut s = Scratch::default();
        assert_eq!(f.judge(&mut s, (Subject::Responder, 1), &fix(0, 114.0, 22.5), now()), Verdict::Live);
    }
}
