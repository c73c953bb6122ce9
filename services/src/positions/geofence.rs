//! Grid geofences: when a unit moves from one grid into another, an `exit` and an `enter`
//! event are recorded (in the same transaction as the fix that caused them) and published.
//!
//! Hysteresis keeps GPS jitter on a border from flapping: a unit is held in its grid until a
//! fix lies at least `margin_m` beyond that grid's boundary, and a unit outside every grid
//! enters one only once a fix lies `margin_m` inside it. A phone scattering ±10 m across a
//! street that is also a grid border thus stays in one grid (tested with a jittering track).

use super::Subject;
use crate::layer::Zone;
use crate::live::GridState;
use chrono::{DateTime, Utc};
use safegrid_geodata::{GridCode, LonLat};

/// Default hysteresis margin, metres: about twice a phone's typical scatter in a city.
pub const DEFAULT_MARGIN_M: f64 = 20.0;

pub use crate::records::{EventKind, GridEvent};

/// The grid a unit at `pos` is held in, given the grid it was held in: the plain answer
/// ([`GridState::grid_of`]) unless the unit is within `margin_m` of the border it would cross.
#[must_use]
pub fn held_grid(grids: &GridState, current: Option<&GridCode>, pos: LonLat, margin_m: f64) -> Option<GridCode> {
    let plain = grids.grid_of(pos);
    if plain.as_ref() == current {
        return plain;
    }
    let Some(locator) = grids.locator.as_ref() else { return plain };
    let beyond = |code: &GridCode| {
        grids
            .hierarchy
            .index_of(code)
            .and_then(|i| locator.distance_to_unit_boundary_m(i, pos))
            .is_none_or(|d| d >= margin_m)
    };
    match (current, &plain) {
        // Leaving a grid: only once well past its border (a grid that no longer exists is left).
        (Some(cur), _) if !beyond(cur) => current.cloned(),
        // Entering from outside every grid: only once well inside.
        (None, Some(new)) if !beyond(new) => None,
        _ => plain,
    }
}

/// The events of a move from `from` to `to` (none when they are the same grid).
pub fn crossing(
    (subject, unit_id): (Subject, i64),
    from: Option<&GridCode>,
    to: Option<&GridCode>,
    time: DateTime<Utc>,
    pos: LonLat,
    mut next_id: impl FnMut() -> i64,
) -> Vec<GridEvent> {
    if from == to {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(2);
    let mut push = |kind, g: &GridCode| {
        out.push(GridEvent { id: next_id(), time, subject, unit_id, kind, grid_code: g.clone(), pos });
    };
    if let Some(g) = from {
        push(EventKind::Exit, g);
    }
    if let Some(g) = to {
        push(EventKind::Enter, g);
    }
    out
}

/// A key person's zone alert for a move from grid `from` to grid `to`: a breach when the move
/// breaks the zone, a return when it ends a breach, nothing otherwise.
#[must_use]
pub fn zone_alert(zone: &Zone, from: Option<&GridCode>, to: Option<&GridCode>) -> Option<EventKind> {
    match (zone.is_broken_in(from), zone.is_broken_in(to)) {
        (false, true) => Some(EventKind::ZoneBreach),
        (true, false) => Some(EventKind::ZoneReturn),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;
    use safegrid_geodata::grid::{GridLevel, GridUnit};
    use safegrid_geodata::{GridHierarchy, haversine_m};

    fn grids() -> GridState {
        let square = |x0: f64, x1: f64| {
            geo::MultiPolygon(vec![
                polygon![(x: x0, y: 22.50), (x: x1, y: 22.50), (x: x1, y: 22.60), (x: x0, y: 22.60)],
            ])
        };
        let unit = |code: &str, level, g| GridUnit {
            code: GridCode::parse(code).unwrap(),
            name: code.into(),
            level,
            manager: None,
            geometry: g,
        };
        GridState::new(
            GridHierarchy::new(vec![
                unit("440304", GridLevel::District, square(114.00, 114.10)),
                unit("440304001", GridLevel::Grid, square(114.00, 114.05)),
                unit("440304002", GridLevel::Grid, square(114.05, 114.10)),
            ])
            .unwrap(),
        )
    }

    /// A walk east along lat 22.55 that crosses the border at lon 114.05 once, with ±12 m of
    /// east-west jitter on every fix (deterministic, as a phone's scatter looks).
    fn jittering_walk() -> Vec<LonLat> {
        let metre = 1.0 / (111_320.0 * 22.55f64.to_radians().cos());
        (0..200)
            .map(|i| {
                let along = -100.0 + f64::from(i); // metres from the border, 1 m a fix
                let jitter = 12.0 * ((f64::from(i) * 2.39).sin());
                LonLat::new(114.05 + (along + jitter) * metre, 22.55).unwrap()
            })
            .collect()
    }

    #[test]
    fn jitter_on_a_border_crosses_once_with_hysteresis_and_flaps_without() {
        let g = grids();
        let walk = jittering_walk();
        let count = |margin: f64| {
            let mut held = g.grid_of(walk[0]);
            let mut events = Vec::new();
            let mut id = 0;
            for p in &walk {
                let next = held_grid(&g, held.as_ref(), *p, margin);
                events.extend(crossing(
                    (Subject::Responder, 1),
                    held.as_ref(),
                    next.as_ref(),
                    DateTime::UNIX_EPOCH,
                    *p,
                    || {
                        id += 1;
                        id
                    },
                ));
                held = next;
            }
            (events, held)
        };
        let (plain, _) = count(0.0);
        assert!(plain.len() > 6, "without hysteresis the jitter flaps: {} events", plain.len());
        let (events, held) = count(DEFAULT_MARGIN_M);
        let kinds: Vec<(EventKind, &str)> = events.iter().map(|e| (e.kind, e.grid_code.as_str())).collect();
        assert_eq!(kinds, [(EventKind::Exit, "440304001"), (EventKind::Enter, "440304002")]);
        assert_eq!(held.unwrap().as_str(), "440304002");
        // The switch came once the fix was 20 m past the border, not before.
        let at = events[0].pos;
        let border = LonLat::new(114.05, 22.55).unwrap();
        assert!(at.lon() > 114.05 && haversine_m(at, border) >= DEFAULT_MARGIN_M);
    }

    #[test]
    fn zones_alert_on_breach_and_on_return_only() {
        use crate::layer::ZoneMode;
        let g = |s: &str| GridCode::parse(s).unwrap();
        let (a, b, c) = (g("440304001"), g("440304002"), g("440303001"));
        let stay = Zone { mode: ZoneMode::StayInside, grids: vec![g("440304")] };
        assert_eq!(zone_alert(&stay, Some(&a), Some(&b)), None, "both grids lie in district 440304");
        assert_eq!(zone_alert(&stay, Some(&b), Some(&c)), Some(EventKind::ZoneBreach));
        assert_eq!(zone_alert(&stay, Some(&c), None), None, "still out");
        assert_eq!(zone_alert(&stay, None, Some(&a)), Some(EventKind::ZoneReturn));
        let keep_out = Zone { mode: ZoneMode::KeepOut, grids: vec![c.clone()] };
        assert_eq!(zone_alert(&keep_out, Some(&a), Some(&c)), Some(EventKind::ZoneBreach));
        assert_eq!(zone_alert(&keep_out, Some(&c), Some(&b)), Some(EventKind::ZoneReturn));
        assert_eq!(zone_alert(&keep_out, Some(&a), Some(&b)), None);
    }

    #[test]
    fn entering_the_territory_waits_for_the_margin_too() {
        let g = grids();
        let metre = 1.0 / 111_320.0;
        let just_in = LonLat::new(114.03, 22.50 + 5.0 * metre).unwrap();
        let well_in = LonLat::new(114.03, 22.50 + 30.0 * metre).unwrap();
        assert_eq!(held_grid(&g, None, just_in, DEFAULT_MARGIN_M), None);
        assert_eq!(held_grid(&g, None, well_in, DEFAULT_MARGIN_M).unwrap().as_str(), "440304001");
        // Leaving the territory: held until 20 m out.
        let cur = GridCode::parse("440304001").unwrap();
        let just_out = LonLat::new(114.03, 22.50 - 5.0 * metre).unwrap();
        let well_out = LonLat::new(114.03, 22.50 - 30.0 * metre).unwrap();
        assert_eq!(held_grid(&g, Some(&cur), just_out, DEFAULT_MARGIN_M), Some(cur.clone()));
        assert_eq!(held_grid(&g, Some(&cur), well_out, DEFAULT_MARGIN_M), None);
    }
}
