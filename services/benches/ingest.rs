//! Durable position ingest in process: four gateways each `Ingest::submit` a 5,000-fix batch at
//! once (each acknowledged after its group commit) into the embedded store, with no grids and
//! with the demo city's ~3,000 grids as geofences; and the memory a unit costs once it is live.
//!
//! Why four at once: a commit's cost is mostly the B-tree pages it touches (the history is
//! keyed by unit, so a batch over 2,000 units dirties ~2,000 pages), so one producer waiting on
//! each commit measures fsync and page writes, not ingest; concurrent requests share commits.
//!
//! `cargo bench -p safegrid-services --bench ingest`
//!
//! The same through HTTP, into SQLite and PostGIS and beside PostGIS row-per-fix, is
//! `tests/peer/ingest_vs_postgis.sh`.
#![expect(unsafe_code, reason = "a counting global allocator must implement the unsafe GlobalAlloc trait")]

use chrono::{Duration as Span, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use safegrid_geodata::LonLat;
use safegrid_services::ingest::{Ingest, IngestConfig};
use safegrid_services::layer::{Layer, Props, Responder, ResponderKind, ResponderStatus};
use safegrid_services::positions::Fix;
use safegrid_services::positions::devices::{Secret, secret_hash};
use safegrid_services::service::Service;
use safegrid_services::store;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

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

const UNITS: usize = 2_000;
const BATCH: usize = 5_000;
const GATEWAYS: usize = 4;

fn unit_pos(d: usize, step: i64) -> LonLat {
    LonLat::new(114.20 + (d % 50) as f64 * 0.002 + step as f64 * 0.00001, 22.68 + (d / 50) as f64 * 0.0005)
        .expect("in range")
}

/// A service over a fresh SQLite file with `units` tracked responders; the demo grids if asked.
async fn city(dir: &tempfile::TempDir, units: usize, grids: bool) -> Arc<Service> {
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let service = Service::open(store::open(&url).await.expect("store")).await.expect("service");
    if grids {
        service.replace_grids(safegrid_services::demo::hierarchy(2026).expect("demo grids")).await.expect("grids");
    }
    let rows = (0..units)
        .map(|d| {
            let props = Props::Responder(Responder {
                kind: ResponderKind::Patrol,
                callsign: format!("L-{d}"),
                status: ResponderStatus::Available,
                capabilities: vec![],
                home_post: None,
                device_id: Some(format!("load-{d}")),
            });
            (unit_pos(d, 0), props)
        })
        .collect();
    service.bulk_insert(Layer::Responders, rows).await.expect("units");
    // Every device proves itself, as in production: its secret's hash in force (in memory; the
    // check the ingest makes reads no store).
    for d in 0..units {
        service.device_secrets().set(&format!("load-{d}"), &secret_hash(&secret(d)));
    }
    Arc::new(service)
}

/// Device `d`'s secret.
fn secret(d: usize) -> String {
    format!("bench-secret-{d:06}-0123456789")
}

/// Batch `k` of a stream in which every device moves 1 m a second.
fn batch(k: usize, units: usize, t0: chrono::DateTime<Utc>) -> Vec<Fix> {
    (0..BATCH)
        .map(|i| {
            let n = k * BATCH + i;
            let (d, step) = (n % units, (n / units) as i64);
            Fix {
                device_id: format!("load-{d}"),
                secret: Some(Secret(secret(d))),
                time: t0 + Span::seconds(step),
                pos: unit_pos(d, step),
                speed_mps: Some(1.0),
                bearing_deg: Some(90.0),
                altitude_m: None,
                accuracy_m: Some(5.0),
                battery_pct: None,
                valid: true,
                attributes: BTreeMap::new(),
            }
        })
        .collect()
}

fn bench_ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements((BATCH * GATEWAYS) as u64));
    for (name, grids) in [("sqlite_4x5000_fixes", false), ("sqlite_4x5000_fixes_3000_fences", true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (service, ingest) = rt.block_on(async {
            let service = city(&dir, UNITS, grids).await;
            let (ingest, writer) = Ingest::new(Arc::clone(&service), IngestConfig::default());
            tokio::spawn(writer.run());
            (service, ingest)
        });
        // Far enough back that a whole run's fixes stay in the past.
        let t0 = Utc::now() - Span::days(30);
        let mut k = 0;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let rounds: Vec<Vec<Vec<Fix>>> = (0..iters as usize)
                    .map(|i| (0..GATEWAYS).map(|j| batch(k + i * GATEWAYS + j, UNITS, t0)).collect())
                    .collect();
                k += iters as usize * GATEWAYS;
                let start = Instant::now();
                rt.block_on(async {
                    for round in rounds {
                        let answers = futures_util::future::join_all(round.into_iter().map(|f| ingest.submit(f))).await;
                        for r in answers {
                            assert_eq!(r.expect("stored").live, BATCH);
                        }
                    }
                });
                start.elapsed()
            });
        });
        drop((service, ingest));
    }
    g.finish();
}

/// Heap bytes a unit costs once it has a live fix: its entry in the live-fix table and the
/// noise filter's memory of it (the responder item and its index entry exist either way).
fn memory_per_live_unit() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let units = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let service = city(&dir, units, false).await;
        let (ingest, writer) = Ingest::new(Arc::clone(&service), IngestConfig::default());
        tokio::spawn(writer.run());
        let t0 = Utc::now() - Span::days(1);
        // The first batch warms every cache and buffer the ingest keeps between groups.
        ingest.submit(batch(0, units, t0)).await.expect("stored");
        let before = LIVE.load(Ordering::SeqCst);
        for k in 1..(units / BATCH) {
            ingest.submit(batch(k, units, t0)).await.expect("stored");
        }
        let after = LIVE.load(Ordering::SeqCst);
        let live = units - BATCH;
        println!(
            "memory per live unit: {:.0} B ({} units became live; {} units with a fix in all)",
            (after - before) as f64 / live as f64,
            live,
            service.live_units().len()
        );
    });
}

fn benches(c: &mut Criterion) {
    memory_per_live_unit();
    bench_ingest(c);
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
