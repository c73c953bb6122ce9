//! The road network on real OpenStreetMap extracts (`../shared/data/osm_monaco`,
//! `osm_shenzhen_longgang`): every ETA through the contraction hierarchy equals a plain
//! Dijkstra's on the same graph; one-ways make A→B differ from B→A; the on-disk cache gives
//! the same answers; points far from every road are not routed.

use crate::support;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::LonLat;
use safegrid_geodata::roads::{Mode, RoadGraph};

fn graph(test: &str, rel: &str, mode: Mode) -> Option<RoadGraph> {
    let path = support::shared_data(test, rel)?;
    Some(RoadGraph::from_pbf(&std::fs::read(path).unwrap(), mode).unwrap())
}

/// Random points in a box, snapped; 200 pairs compared with Dijkstra.
fn ch_matches_dijkstra(g: &RoadGraph, bbox: (f64, f64, f64, f64), seed: u64) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut calc = g.calculator();
    let mut routed = 0;
    let mut asymmetric = 0;
    for _ in 0..200 {
        let mut pt = || LonLat::new(rng.random_range(bbox.0..bbox.2), rng.random_range(bbox.1..bbox.3)).unwrap();
        let (a, b) = (pt(), pt());
        let (Some(sa), Some(sb)) = (g.snap(a), g.snap(b)) else { continue };
        let ch = g.route(&mut calc, &sa, &sb).map(|r| r.eta_s);
        let dj = g.dijkstra_eta_s(&sa, &sb);
        match (ch, dj) {
            (Some(x), Some(y)) => assert!((x - y).abs() < 1e-6, "{a:?} → {b:?}: hierarchy {x} s, Dijkstra {y} s"),
            (x, y) => assert_eq!(x, y, "{a:?} → {b:?}: reachable by one and not the other"),
        }
        if let (Some(x), Some(back)) = (ch, g.route(&mut calc, &sb, &sa).map(|r| r.eta_s))
            && (x - back).abs() > 1.0
        {
            asymmetric += 1;
        }
        routed += usize::from(ch.is_some());
    }
    assert!(asymmetric > 0 || g.mode() == Mode::Walk, "one-ways should make some trips differ by direction");
    routed
}

crate::test!(monaco_driving_times_through_the_hierarchy_equal_dijkstra, SharedData);
fn monaco_driving_times_through_the_hierarchy_equal_dijkstra() {
    let Some(g) = graph("monaco_driving", "osm_monaco/monaco.osm.pbf", Mode::Drive) else { return };
    assert!(g.segment_count() > 5_000, "{g:?}");
    let routed = ch_matches_dijkstra(&g, (7.409, 43.725, 7.439, 43.751), 1);
    assert!(routed > 150, "only {routed} of 200 pairs routed");
    // The cache round trip answers alike.
    let again = RoadGraph::from_bytes(&g.to_bytes()).unwrap();
    let (a, b) = (LonLat::new(7.4200, 43.7310).unwrap(), LonLat::new(7.4280, 43.7400).unwrap());
    let (mut c1, mut c2) = (g.calculator(), again.calculator());
    let r1 = g.route(&mut c1, &g.snap(a).unwrap(), &g.snap(b).unwrap()).unwrap();
    let r2 = again.route(&mut c2, &again.snap(a).unwrap(), &again.snap(b).unwrap()).unwrap();
    assert_eq!(r1, r2);
    // A plausible city trip: 1.3 km as the crow flies takes 2 to 10 minutes by car.
    assert!((120.0..600.0).contains(&r1.eta_s), "{r1:?}");
    assert!(r1.distance_m > 1_300.0, "{r1:?}");
    // Out at sea, nothing snaps.
    assert!(g.snap(LonLat::new(7.46, 43.70).unwrap()).is_none());
}

crate::test!(monaco_walking_and_longgang_driving_equal_dijkstra, SharedData);
fn monaco_walking_and_longgang_driving_equal_dijkstra() {
    if let Some(g) = graph("monaco_walking", "osm_monaco/monaco.osm.pbf", Mode::Walk) {
        assert!(ch_matches_dijkstra(&g, (7.409, 43.725, 7.439, 43.751), 2) > 150);
    }
    if let Some(g) = graph("longgang_driving", "osm_shenzhen_longgang/shenzhen_longgang.osm.pbf", Mode::Drive) {
        assert!(g.segment_count() > 1_000, "{g:?}");
        assert!(ch_matches_dijkstra(&g, (114.19, 22.675, 114.23, 22.70), 3) > 100);
    }
}

crate::test!(the_k_nearest_by_time_equal_a_brute_force_over_every_candidate, SharedData);
fn the_k_nearest_by_time_equal_a_brute_force_over_every_candidate() {
    let Some(g) = graph("monaco_nearest_by_time", "osm_monaco/monaco.osm.pbf", Mode::Drive) else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let snapped = |rng: &mut ChaCha8Rng| loop {
        let p = LonLat::new(rng.random_range(7.409..7.439), rng.random_range(43.725..43.751)).unwrap();
        if let Some(s) = g.snap(p) {
            return s;
        }
    };
    let candidates: Vec<_> = (0..200).map(|_| snapped(&mut rng)).collect();
    let mut calc = g.calculator();
    for _ in 0..50 {
        let to = snapped(&mut rng);
        let got = g.nearest_by_time(&to, &candidates, 5);
        // Every candidate routed on its own (the hierarchy, itself checked against Dijkstra above).
        let mut all: Vec<(usize, f64)> = candidates
            .iter()
            .enumerate()
            .filter_map(|(i, c)| g.route(&mut calc, c, &to).map(|r| (i, r.eta_s)))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1));
        assert_eq!(got.len(), 5);
        for (rank, ((gi, gt), (_, wt))) in got.iter().zip(&all).enumerate() {
            // Same times (to the millisecond the search counts in); the same unit unless tied.
            assert!((gt - wt).abs() < 0.002, "rank {rank}: {gt} s vs {wt} s");
            let truth = g.dijkstra_eta_s(&candidates[*gi], &to).unwrap();
            assert!((gt - truth).abs() < 0.002, "candidate {gi}: search says {gt} s, Dijkstra {truth} s");
        }
    }
}

crate::test!(response_times_from_all_posts_at_once_equal_the_best_single_post_route, SharedData);
/// Response coverage by road on Monaco: "within T minutes of the nearest post" from one bounded
/// multi-source search equals the minimum over posts of each post's own Dijkstra route.
fn response_times_from_all_posts_at_once_equal_the_best_single_post_route() {
    use geo::polygon;
    use safegrid_geodata::audit::response::{self, Reach};
    use safegrid_geodata::audit::workload::Dwelling;
    let Some(g) = graph("monaco response coverage", "osm_monaco/monaco.osm.pbf", Mode::Drive) else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let pt =
        |rng: &mut ChaCha8Rng| LonLat::new(rng.random_range(7.409..7.439), rng.random_range(43.725..43.751)).unwrap();
    let posts: Vec<LonLat> = (0..4).map(|_| pt(&mut rng)).collect();
    let homes: Vec<LonLat> = (0..300).map(|_| pt(&mut rng)).collect();
    let snaps: Vec<_> = posts.iter().filter_map(|p| g.snap(*p)).collect();
    assert_eq!(snaps.len(), 4);
    let limit_s = 120.0;
    let node_ms = g.times_from(&snaps, limit_s);
    let (mut checked, mut within) = (0, 0);
    for h in &homes {
        let Some(to) = g.snap(*h) else { continue };
        let same = snaps.iter().filter_map(|s| g.same_segment_s(s, &to)).fold(f64::INFINITY, f64::min);
        let many = g.time_to(&node_ms, &to).map(|t| t.min(same)).or((same < f64::INFINITY).then_some(same));
        let best = snaps.iter().filter_map(|s| g.dijkstra_eta_s(s, &to)).fold(f64::INFINITY, f64::min);
        // Within the limit both agree to the millisecond (the one-segment shortcut aside); beyond
        // it the bounded search may not know, and must not claim less than the limit.
        if best <= limit_s - 1.0 {
            within += 1;
            let many = many.unwrap();
            assert!((many - best).abs() < 0.002, "{h:?}: all-at-once {many} s, best single {best} s");
            if (many - best).abs() < 0.002 {
                checked += 1;
            }
        } else if let Some(m) = many {
            assert!(m >= limit_s - 1.0 || m >= best - 0.002, "{h:?}: {m} s but the best route takes {best} s");
        }
    }
    assert!(
        checked * 10 >= within * 9 && within > 20,
        "{checked} of {within} homes within the limit agreed to the millisecond"
    );

    // The audit on the same graph: its household count within T equals the brute force.
    let hh: Vec<Dwelling> = homes.iter().map(|h| Dwelling { at: *h, households: 1, people: 2 }).collect();
    let territory = safegrid_geodata::audit::input::AuditFeature {
        index: 0,
        code: Some("990000".into()),
        name: None,
        manager: None,
        geometry: Some(geo::MultiPolygon(vec![
            polygon![(x: 7.409, y: 43.725), (x: 7.439, y: 43.725), (x: 7.439, y: 43.751), (x: 7.409, y: 43.751)],
        ])),
    };
    let r = response::audit(&[&territory], &posts, &hh, Reach::Road(&g), 2.0, &safegrid_geodata::audit::Silent);
    let brute = homes
        .iter()
        .filter(|h| match g.snap(**h) {
            Some(to) => {
                snaps
                    .iter()
                    .filter_map(|s| g.time_to(&g.times_from(std::slice::from_ref(s), limit_s), &to))
                    .fold(f64::INFINITY, f64::min)
                    <= limit_s
            }
            None => false,
        })
        .count() as u64;
    assert_eq!(r.households_covered, brute);
    assert!(r.method.starts_with("road"));
}
