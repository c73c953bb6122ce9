//! Nearest responders by road ETA on a real city: 200 live units scattered over the network,
//! 1,000 places; times `dispatch::nearest::rank` (k = 5) per place and counts how often the
//! straight-line nearest unit is not the fastest by road. Also writes the same graph, units and
//! places as CSV for pgRouting (`tests/peer/dispatch_vs_pgrouting.sh`). Prints one JSON line.
//!
//! `cargo run --release --example dispatch_bench -- ../shared/data/osm_monaco/monaco.osm.pbf OUT_DIR`
#![allow(clippy::unwrap_used, reason = "a benchmark tool: failing loudly is the right answer")]

use chrono::Utc;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::LonLat;
use safegrid_services::dispatch::nearest::{EtaSource, NearestQuery, rank};
use safegrid_services::layer::{Item, Props, Responder, ResponderKind, ResponderStatus};
use safegrid_services::positions::live::{FreshnessConfig, LiveUnits};
use safegrid_services::positions::{Subject, TracePoint};
use safegrid_services::roads::Roads;
use std::io::Write;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (pbf, out) = (std::path::PathBuf::from(&args[1]), std::path::PathBuf::from(&args[2]));
    std::fs::create_dir_all(&out).unwrap();
    let cache = out.join("cache");
    let roads = Roads::open(&pbf, &cache).unwrap();
    let g = &roads.drive;
    // The network's extent, from its nodes.
    let (mut lo, mut hi) = ((f64::MAX, f64::MAX), (f64::MIN, f64::MIN));
    for (a, b, _, _) in g.segments() {
        for n in [a, b] {
            let p = g.node(n).unwrap();
            lo = (lo.0.min(p.lon()), lo.1.min(p.lat()));
            hi = (hi.0.max(p.lon()), hi.1.max(p.lat()));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let on_roads = |rng: &mut ChaCha8Rng| loop {
        let p = LonLat::new(rng.random_range(lo.0..hi.0), rng.random_range(lo.1..hi.1)).unwrap();
        if let Some(s) = g.snap(p).filter(|s| s.off_road_m < 50.0) {
            return (p, s);
        }
    };
    let now = Utc::now();
    let mut live = LiveUnits::new(FreshnessConfig::default());
    let mut units = Vec::new();
    let mut units_csv = String::from("unit_id,node\n");
    for id in 1..=200 {
        let (p, s) = on_roads(&mut rng);
        units.push(Item {
            id,
            pos: p,
            grid: None,
            props: Props::Responder(Responder {
                kind: ResponderKind::Patrol,
                callsign: format!("M-{id}"),
                status: ResponderStatus::Available,
                capabilities: vec![],
                home_post: None,
                device_id: Some(format!("m-{id}")),
            }),
            created_at: now,
            updated_at: now,
        });
        live.set(&TracePoint {
            subject: Subject::Responder,
            unit_id: id,
            time: now,
            pos: p,
            speed_mps: None,
            bearing_deg: None,
            altitude_m: None,
            accuracy_m: None,
            battery_pct: None,
            flags: 0,
            attributes: None,
            received: now,
        });
        units_csv.push_str(&format!("{id},{}\n", g.nearer_node(&s)));
    }
    let places: Vec<(LonLat, u32)> =
        (0..1_000).map(|_| on_roads(&mut rng)).map(|(p, s)| (p, g.nearer_node(&s))).collect();
    let q = NearestQuery { k: 5, ..NearestQuery::default() };

    // Warm the calculator pool, then time each place.
    let _ = rank(places[0].0, units.iter(), &live, Some(&roads), &q, now);
    let mut micros = Vec::with_capacity(places.len());
    let (mut differs, mut estimates) = (0, 0);
    for (p, _) in &places {
        let t = Instant::now();
        let ranked = rank(*p, units.iter(), &live, Some(&roads), &q, now);
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        let crow = units.iter().min_by(|a, b| {
            safegrid_geodata::haversine_m(a.pos, *p).total_cmp(&safegrid_geodata::haversine_m(b.pos, *p))
        });
        differs += usize::from(crow.map(|u| u.id) != ranked.first().map(|r| r.item.id));
        estimates += ranked.iter().filter(|r| r.source == EtaSource::Estimate).count();
    }
    micros.sort_by(f64::total_cmp);
    let pct = |p: f64| micros[((micros.len() - 1) as f64 * p).round() as usize];

    let mut edges = std::fs::File::create(out.join("edges.csv")).unwrap();
    writeln!(edges, "id,source,target,cost,reverse_cost").unwrap();
    for (i, (a, b, f, r)) in g.segments().enumerate() {
        let s = |ms: Option<u32>| ms.map_or(-1.0, |m| f64::from(m) / 1000.0);
        writeln!(edges, "{},{a},{b},{},{}", i + 1, s(f), s(r)).unwrap();
    }
    std::fs::write(out.join("units.csv"), units_csv).unwrap();
    let mut pl = String::from("qid,node\n");
    for (i, (_, n)) in places.iter().enumerate() {
        pl.push_str(&format!("{},{n}\n", i + 1));
    }
    std::fs::write(out.join("places.csv"), pl).unwrap();
    println!(
        "{}",
        serde_json::json!({
            "nodes": g.node_count(), "segments": g.segment_count(), "units": 200, "places": places.len(), "k": 5,
            "median_us": pct(0.5), "p99_us": pct(0.99), "mean_us": micros.iter().sum::<f64>() / micros.len() as f64,
            "straight_top1_differs": differs, "estimates_in_top5": estimates,
        })
    );
}
