//! The full coverage audit at city scale — ~3,200 grids, 1,000,000 households, 10,000,000 patrol
//! fixes — timed in process, and the same data written out for PostGIS
//! (`tests/peer/audit_vs_postgis.sh` loads it and times the equivalent queries).
//!
//! `cargo run --release -p safegrid-services --example audit_bench -- --out DIR [--runs 3]
//!  [--households 1000000] [--units 2000] [--fixes-per-unit 5000]`
//!
//! Timed: reading the grid layer's GeoJSON, the geometry audit (gaps, overlaps, slivers,
//! outside parent, codes, staffing), the workload audit and the patrol audit, each run from the
//! same in-memory households and fixes. Not timed: generating the data and writing the files
//! (PostGIS's loading is not timed either). Prints one line per run and the medians.
#![allow(clippy::unwrap_used, reason = "a benchmark driver: a failure should stop it loudly")]

#[path = "../benches/support/audit_data.rs"]
mod audit_data;

use safegrid_geodata::audit::input::{ReadOptions, read_layer};
use safegrid_geodata::audit::patrol::{self, PatrolOptions};
use safegrid_geodata::audit::workload::{self, Norm};
use safegrid_geodata::audit::{Silent, Thresholds, geometry};
use safegrid_geodata::grid::unit_to_feature;
use std::io::Write;
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_owned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let out = std::path::PathBuf::from(arg("--out", "target/audit-bench"));
    let runs: usize = arg("--runs", "3").parse().unwrap();
    let households: usize = arg("--households", "1000000").parse().unwrap();
    let units: usize = arg("--units", "2000").parse().unwrap();
    let per_unit: usize = arg("--fixes-per-unit", "5000").parse().unwrap();
    std::fs::create_dir_all(&out).unwrap();

    eprintln!("generating {households} households and {units} × {per_unit} fixes…");
    let city = audit_data::city(households, units, per_unit);
    let fc = geojson::FeatureCollection {
        bbox: None,
        features: city.hierarchy.units().iter().map(unit_to_feature).collect(),
        foreign_members: None,
    };
    let layer_text = fc.to_string();
    std::fs::write(out.join("grids.geojson"), &layer_text).unwrap();
    let mut w = std::io::BufWriter::new(std::fs::File::create(out.join("households.csv")).unwrap());
    for d in &city.dwellings {
        writeln!(w, "{:.7},{:.7},{},{}", d.at.lon(), d.at.lat(), d.households, d.people).unwrap();
    }
    drop(w);
    let mut w = std::io::BufWriter::new(std::fs::File::create(out.join("traces.csv")).unwrap());
    for f in &city.fixes {
        writeln!(w, "{},{},{:.7},{:.7}", f.unit, f.t_ms, f.at.lon(), f.at.lat()).unwrap();
    }
    drop(w);
    eprintln!("wrote {}", out.display());

    let mut totals = Vec::new();
    let mut stages: [Vec<f64>; 4] = Default::default();
    for run in 1..=runs {
        let t0 = Instant::now();
        let layer = read_layer(&layer_text, &ReadOptions::default()).unwrap();
        let t1 = Instant::now();
        let g = geometry::audit(&layer, None, Thresholds::default(), &Silent).unwrap();
        let t2 = Instant::now();
        let grids: Vec<_> = g.grid_features.iter().map(|&i| &layer.features[i]).collect();
        let wl = workload::audit(&grids, &city.dwellings, &[], Norm::default(), &Silent);
        let t3 = Instant::now();
        let p = patrol::audit(&grids, &city.fixes, PatrolOptions::last_hours(city.until_ms, 24), &Silent);
        let t4 = Instant::now();
        let s = [t1 - t0, t2 - t1, t3 - t2, t4 - t3].map(|d| d.as_secs_f64());
        for (v, x) in stages.iter_mut().zip(s) {
            v.push(x);
        }
        totals.push((t4 - t0).as_secs_f64());
        println!(
            "run {run}: total {:.2} s = read {:.2} + geometry {:.2} + workload {:.2} + patrol {:.2} ({} grids, {} findings, {} households placed, {} fixes, {} grids patrolled)",
            (t4 - t0).as_secs_f64(),
            s[0],
            s[1],
            s[2],
            s[3],
            g.grids,
            g.findings.len(),
            wl.grids.iter().map(|x| x.figures.households).sum::<u64>(),
            p.fixes,
            p.grids.iter().filter(|x| x.last_patrol.is_some()).count(),
        );
    }
    let [r, g, w, p] = stages.map(median);
    println!("median total {:.2} s (read {r:.2}, geometry {g:.2}, workload {w:.2}, patrol {p:.2})", median(totals));
}
