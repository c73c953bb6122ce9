//! Automatic gridding of a 50 km² community layer with 100,000 households (target: under 10 s).
//!
//! The layer: a 7.1 km square of Shenzhen divided into communities by H3 resolution-7 cells
//! clipped to it (about 5 km² each, irregular where clipped); households: 60% in 300 dense
//! blocks (σ 80 m, as tower estates), 40% spread evenly. Seeded.
//!
//! `cargo bench -p safegrid-geodata --bench gridding`
#![allow(clippy::unwrap_used, reason = "a benchmark: a failure should stop it loudly")]

use criterion::{Criterion, criterion_group, criterion_main};
use geo::{MultiPolygon, polygon};
use h3o::Resolution;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::audit::workload::Dwelling;
use safegrid_geodata::gridding::{Community, GriddingOptions, grid_communities};
use safegrid_geodata::gridgen::h3_grids;
use safegrid_geodata::{GridCode, GridLevel, GridUnit, LonLat};

fn layer() -> (Vec<Community>, Vec<Dwelling>) {
    let (x0, y0) = (113.95, 22.52);
    let (w, h) = (0.0692, 0.0642); // 7.1 km × 7.1 km at 22.5°N: 50.4 km²
    let square =
        MultiPolygon(vec![polygon![(x: x0, y: y0), (x: x0 + w, y: y0), (x: x0 + w, y: y0 + h), (x: x0, y: y0 + h)]]);
    let district = GridUnit {
        code: GridCode::parse("440305").unwrap(),
        name: "南山区".into(),
        level: GridLevel::District,
        manager: None,
        geometry: square,
    };
    let communities: Vec<Community> = h3_grids(&[district], Resolution::Seven)
        .unwrap()
        .into_iter()
        .map(|u| Community { code: u.code, name: u.name, geometry: u.geometry })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(50);
    let blocks: Vec<(f64, f64)> =
        (0..300).map(|_| (x0 + rng.random_range(0.0..w), y0 + rng.random_range(0.0..h))).collect();
    // Box–Muller: a normal offset with σ = 80 m.
    let sigma = 80.0 / 111_000.0;
    let normal = |rng: &mut ChaCha8Rng| {
        let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
        sigma * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let mut households = Vec::with_capacity(100_000);
    while households.len() < 100_000 {
        let (x, y) = if rng.random_bool(0.6) {
            let (bx, by) = blocks[rng.random_range(0..blocks.len())];
            (bx + normal(&mut rng), by + normal(&mut rng))
        } else {
            (x0 + rng.random_range(0.0..w), y0 + rng.random_range(0.0..h))
        };
        if (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y) {
            households.push(Dwelling { at: LonLat::new(x, y).unwrap(), households: 1, people: 3 });
        }
    }
    (communities, households)
}

fn bench(c: &mut Criterion) {
    let (communities, households) = layer();
    let (grids, s) = grid_communities(&communities, &households, GriddingOptions::default(), &[]).unwrap();
    eprintln!(
        "{} communities, {} households → {} grids, {} within 300–500 (range {}–{}), median compactness {:.2}",
        communities.len(),
        households.len(),
        grids.len(),
        s.within_norm,
        s.households_min,
        s.households_max,
        s.compactness_median
    );
    let mut g = c.benchmark_group("gridding");
    g.sample_size(10);
    g.bench_function("50 km², 100k households", |b| {
        b.iter(|| grid_communities(&communities, &households, GriddingOptions::default(), &[]).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
