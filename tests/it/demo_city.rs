//! The demo city meets what the demo promises: real districts, 2,000–3,500 grids covering every
//! district without gaps or overlaps, and a population that lands in grids.

use geo::{Area, BooleanOps, BoundingRect, Intersects};
use safegrid_geodata::GridLevel;
use safegrid_services::demo;
use safegrid_services::live::GridState;

crate::test!(demo_grids_cover_every_district_without_gaps_or_overlaps);
fn demo_grids_cover_every_district_without_gaps_or_overlaps() {
    let h = demo::hierarchy(2026).unwrap();
    let grids: Vec<_> = h.units().iter().filter(|u| u.level == GridLevel::Grid).collect();
    assert!((2_000..=3_500).contains(&grids.len()), "{} grids", grids.len());
    for d in h.units().iter().filter(|u| u.level == GridLevel::District) {
        let children: Vec<_> = grids.iter().filter(|g| d.code.covers(&g.code)).collect();
        let sum: f64 = children.iter().map(|g| g.geometry.unsigned_area()).sum();
        let want = d.geometry.unsigned_area();
        // Planar degrees² to m² at Shenzhen's latitude: enough to state tolerances in m².
        let m2 = 111_195.0_f64.powi(2) * 22.6_f64.to_radians().cos();
        // Equal areas and no overlaps together mean no gaps. Clipping and merging in floating
        // point leave sub-square-metre noise along shared edges; anything larger is a real fault.
        let gap_m2 = (sum - want).abs() * m2;
        assert!(gap_m2 < 10.0, "{}: grid areas differ from the district by {gap_m2} m²", d.name);
        let rects: Vec<_> = children.iter().map(|g| g.geometry.bounding_rect().unwrap()).collect();
        let mut overlap = 0.0;
        for i in 0..children.len() {
            for j in i + 1..children.len() {
                if rects[i].intersects(&rects[j]) {
                    overlap += children[i].geometry.intersection(&children[j].geometry).unsigned_area();
                }
            }
        }
        assert!(overlap * m2 < 1.0, "{}: grids overlap by {} m²", d.name, overlap * m2);
        eprintln!("{}: {} grids, area mismatch {gap_m2:.3} m², overlap {:.3} m²", d.name, children.len(), overlap * m2);
    }
    assert!(grids.iter().all(|g| g.manager.is_some()), "every grid has a grid worker");
}

crate::test!(the_population_is_plausible_and_every_item_is_in_a_grid);
fn the_population_is_plausible_and_every_item_is_in_a_grid() {
    let h = demo::hierarchy(2026).unwrap();
    let state = GridState::new(h);
    let sizes =
        demo::Sizes { posts: 300, responders: 2_000, rental_housing: 20_000, incidents: 10_000, key_personnel: 500 };
    let pop = demo::population(&state, sizes, 7, chrono::Utc::now());
    let mut per_district = std::collections::HashMap::<String, usize>::new();
    for (_, rows) in &pop {
        for (p, _) in rows {
            let g = state.grid_of(*p).expect("every generated item lies in a grid");
            *per_district.entry(g.as_str()[..6].to_owned()).or_default() += 1;
        }
    }
    let total: usize = pop.iter().map(|(_, r)| r.len()).sum();
    assert_eq!(total, 32_800);
    // Denser where the city is denser: Futian (80 km²) holds far more per km² than Dapeng (300 km²).
    assert!(per_district["440304"] > 5 * per_district["440399"], "{per_district:?}");
}
