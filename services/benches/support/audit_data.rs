//! The audit benchmark's city: the demo's ~3,200 Shenzhen grids with their ten districts, a
//! million households in them, and patrol traces of 2,000 units (5,000 fixes each, one every
//! 10 s: ten million fixes) driving about the city at 20–50 km/h. Seeded, so the Rust bench and
//! the PostGIS side-by-side see the same data. Shared by `benches/audit.rs` and
//! `examples/audit_bench.rs` (`#[path]`), not part of the library.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::audit::patrol::PatrolFix;
use safegrid_geodata::audit::workload::Dwelling;
use safegrid_geodata::{GridHierarchy, GridLocator, LonLat};

pub struct City {
    pub hierarchy: GridHierarchy,
    pub dwellings: Vec<Dwelling>,
    pub fixes: Vec<PatrolFix>,
    /// End of the traces (exclusive), Unix ms.
    pub until_ms: i64,
}

/// Shenzhen's box.
const WEST: f64 = 113.75;
const EAST: f64 = 114.65;
const SOUTH: f64 = 22.44;
const NORTH: f64 = 22.87;

pub fn city(households: usize, units: usize, fixes_per_unit: usize) -> City {
    let hierarchy = safegrid_services::demo::hierarchy(2026).expect("demo hierarchy");
    let locator = GridLocator::new(&hierarchy);
    let inside = |p: LonLat| locator.containing_unit(p).is_some();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let random_inside = |rng: &mut ChaCha8Rng| loop {
        let p = LonLat::new(rng.random_range(WEST..EAST), rng.random_range(SOUTH..NORTH)).expect("in range");
        if inside(p) {
            return p;
        }
    };
    let dwellings = (0..households)
        .map(|_| Dwelling { at: random_inside(&mut rng), households: 1, people: rng.random_range(1..=5) })
        .collect();
    let until_ms = 1_795_000_000_000; // 2026-11-17T…, fixed for repeatability
    let start_ms = until_ms - i64::try_from(fixes_per_unit).unwrap_or(0) * 10_000;
    let mut fixes = Vec::with_capacity(units * fixes_per_unit);
    for unit in 0..units {
        let mut p = random_inside(&mut rng);
        let mut heading: f64 = rng.random_range(0.0..std::f64::consts::TAU);
        for i in 0..fixes_per_unit {
            let speed = rng.random_range(5.5..14.0); // m/s
            heading += rng.random_range(-0.4..0.4);
            let (dx, dy) = (speed * 10.0 * heading.cos(), speed * 10.0 * heading.sin());
            let next = LonLat::new(p.lon() + dx / (111_320.0 * 0.92), p.lat() + dy / 110_570.0);
            // Turn back at the city's edge, as a patrol would.
            match next {
                Ok(n) if inside(n) => p = n,
                _ => heading += std::f64::consts::PI,
            }
            fixes.push(PatrolFix { unit: unit as i64, t_ms: start_ms + i as i64 * 10_000, at: p });
        }
    }
    City { hierarchy, dwellings, fixes, until_ms }
}
