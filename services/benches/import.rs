//! Bulk import into the embedded SQLite store, end to end through the service: grid location
//! of every row, one transaction, the live indexes updated.
//!
//! `cargo bench -p safegrid-services --bench import`
//!
//! Each sample imports 200,000 incidents into a fresh store file over the demo's ~3,200 grids.
//! The 1,000,000-row figure through `safegrid import` is measured by `tests/peer/import_1m.sh`.

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::LonLat;
use safegrid_services::layer::{Incident, IncidentStatus, Layer, Props};
use safegrid_services::service::Service;
use safegrid_services::store;
use std::time::{Duration, Instant};

const ROWS: usize = 200_000;

fn rows(n: usize) -> Vec<(LonLat, Props)> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let now = Utc::now();
    (0..n)
        .map(|i| {
            let p = LonLat::new(rng.random_range(113.8..114.5), rng.random_range(22.5..22.8)).expect("in range");
            let props = Props::Incident(Incident {
                incident_type: "theft".into(),
                priority: 1 + (i % 4) as u32,
                status: IncidentStatus::Closed,
                reported_at: now,
                address: Some("深南大道1号".into()),
                description: None,
            });
            (p, props)
        })
        .collect()
}

fn bench_import(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hierarchy = safegrid_services::demo::hierarchy(2026).expect("demo grids");
    let data = rows(ROWS);
    let mut g = c.benchmark_group("import");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("sqlite_200k_incidents", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("b.db").display());
                total += rt.block_on(async {
                    let service = Service::open(store::open(&url).await.expect("store")).await.expect("service");
                    service.replace_grids(hierarchy.clone()).await.expect("grids");
                    let batch = data.clone();
                    let start = Instant::now();
                    service.bulk_insert(Layer::Incidents, batch).await.expect("import");
                    start.elapsed()
                });
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, bench_import);
criterion_main!(benches);
