//! Point → grid and nearest-neighbour speed, and memory per indexed point.
//!
//! `cargo bench -p safegrid-geodata --bench spatial`
//!
//! - `locate/shenzhen_grids`: ~3,200 grids generated like the demo's (H3 res 8 clipped to the
//!   ten shipped Shenzhen districts), random points over the city's bounding box.
//! - `locate/dongguan_towns`: the 33 real town polygons from ../shared/data (skipped if absent).
//! - `nearest/k5_status_filter_100k`: 5 nearest of 100,000 points with a status filter that
//!   passes 62 % of them (the demo's share of available responders).
//! - `nearest/k5_status_filter_100k_clustered`: the same over clustered points (30 Gaussian
//!   clusters and an even fifth), queries drawn the same way; `…_after_10k_moves` after 10,000
//!   random moves, part of which sit in the index's dynamic tree.
//! - `write/move_one_of_100k`: one move, with its share of the grid rebuilds moves trigger.
//! - memory per point is measured with a counting allocator and printed before the timings.

#![expect(unsafe_code, reason = "a counting global allocator must implement the unsafe GlobalAlloc trait")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::grid::{GridLevel, unit_from_feature};
use safegrid_geodata::polygon_check::polygonal_from_geojson;
use safegrid_geodata::{GridCode, GridHierarchy, GridLocator, GridUnit, LonLat, PointIndex};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const DISTRICTS: &str = include_str!("../data/shenzhen_districts.geojson");

fn shenzhen_grids() -> GridHierarchy {
    let fc: geojson::FeatureCollection = DISTRICTS.parse().expect("shipped districts");
    let districts: Vec<GridUnit> = fc
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| GridUnit {
            code: GridCode::parse(&format!("4403{:02}", i + 3)).expect("code"),
            name: format!("d{i}"),
            level: GridLevel::District,
            manager: None,
            geometry: polygonal_from_geojson(f.geometry.as_ref().expect("geometry")).expect("valid"),
        })
        .collect();
    let mut units = safegrid_geodata::gridgen::h3_grids(&districts, h3o::Resolution::Eight).expect("grids");
    units.extend(districts);
    GridHierarchy::new(units).expect("hierarchy")
}

fn dongguan_towns() -> Option<GridHierarchy> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/dongguan_towns/dongguan_towns.geojson");
    let text = std::fs::read_to_string(path).ok()?;
    let fc: geojson::FeatureCollection = text.parse().ok()?;
    let units = fc
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut f = f.clone();
            let p = f.properties.get_or_insert_with(Default::default);
            p.insert("code".into(), format!("4419{:02}", i + 1).into());
            unit_from_feature(&f).expect("town")
        })
        .collect();
    GridHierarchy::new(units).ok()
}

fn points(n: usize, seed: u64, bbox: (f64, f64, f64, f64)) -> Vec<LonLat> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| LonLat::new(rng.random_range(bbox.0..bbox.2), rng.random_range(bbox.1..bbox.3)).expect("in range"))
        .collect()
}

fn bench_locate(c: &mut Criterion) {
    let mut g = c.benchmark_group("locate");
    g.throughput(Throughput::Elements(1));
    let h = shenzhen_grids();
    let loc = GridLocator::new(&h);
    eprintln!("shenzhen: {} units, {} indexed polygon parts", h.len(), loc.part_count());
    let pts = points(65_536, 1, (113.75, 22.40, 114.62, 22.86));
    let mut i = 0;
    g.bench_function("shenzhen_grids", |b| {
        b.iter(|| {
            i = (i + 1) & 65_535;
            black_box(loc.containing_unit(pts[i]))
        });
    });
    if let Some(h) = dongguan_towns() {
        let loc = GridLocator::new(&h);
        let pts = points(65_536, 2, (113.52, 22.66, 114.25, 23.14));
        let mut i = 0;
        g.bench_function("dongguan_towns", |b| {
            b.iter(|| {
                i = (i + 1) & 65_535;
                black_box(loc.containing_unit(pts[i]))
            });
        });
    } else {
        eprintln!("locate/dongguan_towns skipped: ../shared/data/dongguan_towns is absent");
    }
    g.finish();
}

fn status_tags(n: usize) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    (0..n).map(|_| if rng.random_bool(0.62) { 0 } else { rng.random_range(1..7) }).collect()
}

fn bench_nearest(c: &mut Criterion) {
    let n = 100_000;
    let pts = points(n, 3, (113.75, 22.40, 114.62, 22.86));
    let tags = status_tags(n);

    let before = LIVE.load(Ordering::Relaxed);
    let idx = PointIndex::bulk_load(pts.iter().zip(&tags).enumerate().map(|(i, (p, t))| (i as u64, *p, *t)));
    let bulk_bytes = LIVE.load(Ordering::Relaxed) - before;
    let before = LIVE.load(Ordering::Relaxed);
    let mut grown = PointIndex::new();
    for (i, (p, t)) in pts.iter().zip(&tags).enumerate() {
        grown.upsert(i as u64, *p, *t);
    }
    let grown_bytes = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "memory per indexed point ({n} points): bulk-loaded {:.0} B, inserted one by one {:.0} B",
        bulk_bytes as f64 / n as f64,
        grown_bytes as f64 / n as f64
    );
    drop(grown);

    let queries = points(65_536, 5, (113.85, 22.50, 114.40, 22.80));
    let mut g = c.benchmark_group("nearest");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("k5_status_filter_100k", |b| {
        b.iter(|| {
            i = (i + 1) & 65_535;
            black_box(idx.nearest(queries[i], 5, |_, tag| tag == 0))
        });
    });
    let mut i = 0;
    g.bench_function("k5_no_filter_100k", |b| {
        b.iter(|| {
            i = (i + 1) & 65_535;
            black_box(idx.nearest(queries[i], 5, |_, _| true))
        });
    });
    // Where a city is denser: 30 Gaussian clusters (σ 1.5 km) plus a fifth spread evenly, and
    // queries drawn the same way (incidents happen where people are).
    let clustered = clustered_points(n, 6);
    let idx = PointIndex::bulk_load(clustered.iter().zip(&tags).enumerate().map(|(i, (p, t))| (i as u64, *p, *t)));
    let queries = clustered_points(65_536, 7);
    let mut i = 0;
    g.bench_function("k5_status_filter_100k_clustered", |b| {
        b.iter(|| {
            i = (i + 1) & 65_535;
            black_box(idx.nearest(queries[i], 5, |_, tag| tag == 0))
        });
    });
    // After 10,000 moves, part of the index is in its dynamic tree (below the rebuild point).
    let mut moved = idx.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for p in clustered_points(10_000, 9) {
        let id = rng.random_range(0..n as u64);
        moved.upsert(id, p, tags[id as usize]);
    }
    let mut i = 0;
    g.bench_function("k5_status_filter_100k_clustered_after_10k_moves", |b| {
        b.iter(|| {
            i = (i + 1) & 65_535;
            black_box(moved.nearest(queries[i], 5, |_, tag| tag == 0))
        });
    });
    g.finish();

    // A move, including its share of the rebuilds it triggers.
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    let targets = clustered_points(65_536, 10);
    let mut i = 0;
    g.bench_function("move_one_of_100k", |b| {
        b.iter(|| {
            i = (i + 1) & 65_535;
            let id = (i as u64 * 7_919) % n as u64;
            black_box(moved.upsert(id, targets[i], tags[id as usize]))
        });
    });
    g.finish();
}

fn clustered_points(n: usize, seed: u64) -> Vec<LonLat> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centres = ChaCha8Rng::seed_from_u64(99);
    let centres: Vec<(f64, f64)> =
        (0..30).map(|_| (centres.random_range(113.80..114.50), centres.random_range(22.50..22.80))).collect();
    let sigma = 1_500.0 / safegrid_geodata::distance::METRES_PER_DEGREE;
    (0..n)
        .map(|_| {
            if rng.random_bool(0.2) {
                return LonLat::new(rng.random_range(113.75..114.62), rng.random_range(22.40..22.86))
                    .expect("in range");
            }
            let (x, y) = centres[rng.random_range(0..centres.len())];
            // Box–Muller.
            let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
            let r = (-2.0 * u1.ln()).sqrt() * sigma;
            let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
            LonLat::new(x + r * c / 22.6_f64.to_radians().cos(), y + r * s).expect("in range")
        })
        .collect()
}

criterion_group!(benches, bench_locate, bench_nearest);
criterion_main!(benches);
