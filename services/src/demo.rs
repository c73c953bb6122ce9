//! The demo city: Shenzhen's ten real district outlines, about 3,000 generated management grids,
//! and a seeded, plausible population — denser where Shenzhen is denser.
//!
//! Everything is generated from a fixed seed, so two runs produce the same city. Nothing here
//! describes a real person or building.

use crate::layer::{
    Incident, IncidentStatus, KeyPerson, Layer, Post, PostKind, Props, RentalHousing, Responder, ResponderKind,
    ResponderStatus, SafetyRating,
};
use crate::live::GridState;
use chrono::{DateTime, Duration, Utc};
use h3o::Resolution;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safegrid_geodata::grid::{GridLevel, Manager};
use safegrid_geodata::polygon_check::polygonal_from_geojson;
use safegrid_geodata::{GridCode, GridHierarchy, GridUnit, LonLat};

/// The district outlines shipped in `geodata/data/` (BSD-3-Clause, see NOTICE.md there).
pub const SHENZHEN_DISTRICTS: &str = include_str!("../../geodata/data/shenzhen_districts.geojson");

/// The outline of Shenzhen's ten districts (their union, WGS-84), built once: what a grid layer
/// lying there is checked against when nothing else of the city is known (its datum).
///
/// # Panics
/// Never for the shipped file (a packaging error would be caught by the demo's tests).
#[must_use]
pub fn shenzhen_outline() -> &'static geo::MultiPolygon<f64> {
    static OUTLINE: std::sync::OnceLock<geo::MultiPolygon<f64>> = std::sync::OnceLock::new();
    OUTLINE.get_or_init(|| {
        let polys: Vec<geo::Polygon<f64>> = SHENZHEN_DISTRICTS
            .parse::<geojson::FeatureCollection>()
            .map(|fc| {
                fc.features
                    .iter()
                    .filter_map(|f| f.geometry.as_ref())
                    .filter_map(|g| polygonal_from_geojson(g).ok())
                    .flat_map(|m| m.0)
                    .collect()
            })
            .unwrap_or_default();
        safegrid_geodata::overlay::union(polys.iter())
    })
}

/// [`shenzhen_outline`] when a layer's box touches it.
#[must_use]
pub fn shenzhen_outline_near(bbox: &geo::Rect<f64>) -> Option<geo::MultiPolygon<f64>> {
    use geo::{BoundingRect, Intersects};
    let outline = shenzhen_outline();
    outline.bounding_rect().filter(|b| b.intersects(bbox)).map(|_| outline.clone())
}

/// GB/T 2260 codes of Shenzhen's districts. 大鹏新区 is a functional area with no code of its own
/// (it is administered under 龙岗); the demo gives it 440399, outside the range in use.
const DISTRICT_CODES: [(&str, &str, &str); 10] = [
    ("罗湖", "440303", "罗湖区"),
    ("福田", "440304", "福田区"),
    ("南山", "440305", "南山区"),
    ("宝安", "440306", "宝安区"),
    ("龙岗", "440307", "龙岗区"),
    ("盐田", "440308", "盐田区"),
    ("龙华", "440309", "龙华区"),
    ("坪山", "440310", "坪山区"),
    ("光明", "440311", "光明区"),
    ("大鹏", "440399", "大鹏新区"),
];

/// How many of each thing the demo city has.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Security posts, safety stations and police rooms.
    pub posts: usize,
    /// Responders of all kinds.
    pub responders: usize,
    /// Rental houses.
    pub rental_housing: usize,
    /// Incidents over the last 30 days.
    pub incidents: usize,
    /// Key personnel.
    pub key_personnel: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        Self { posts: 320, responders: 3_000, rental_housing: 100_000, incidents: 50_000, key_personnel: 1_000 }
    }
}

/// Why the demo city could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The shipped district file is unreadable (a packaging error).
    #[error("district outlines: {0}")]
    Districts(String),
    /// Grid generation failed.
    #[error(transparent)]
    Grids(#[from] safegrid_geodata::gridgen::GridGenError),
    /// The generated hierarchy is inconsistent.
    #[error(transparent)]
    Hierarchy(#[from] safegrid_geodata::grid::GridError),
}

const SURNAMES: [&str; 30] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高", "郑", "梁", "谢", "宋", "唐", "许", "邓", "冯", "韩", "曹",
];
const GIVEN: [&str; 40] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华",
    "慧", "建国", "志强", "晓东", "海燕", "文", "斌", "宇", "婷", "浩", "琳", "鹏", "欣", "俊", "雪", "平", "辉", "玲",
    "刚", "红", "新",
];
const STREETS: [&str; 16] = [
    "深南大道",
    "滨河路",
    "北环大道",
    "红荔路",
    "宝安大道",
    "龙岗大道",
    "布吉路",
    "梅观路",
    "沙河西路",
    "新洲路",
    "建设路",
    "人民路",
    "创业路",
    "工业大道",
    "民治大道",
    "东门路",
];

/// Population centres: (lon, lat, weight, spread in km). From the districts' known built-up
/// cores; a tenth of all points is spread evenly instead.
const CENTRES: [(f64, f64, f64, f64); 12] = [
    (114.055, 22.540, 10.0, 3.0), // 福田 CBD
    (114.120, 22.548, 9.0, 3.0),  // 罗湖 东门
    (113.945, 22.535, 8.0, 4.0),  // 南山 科技园
    (113.875, 22.580, 9.0, 5.0),  // 宝安 西乡
    (113.830, 22.730, 6.0, 5.0),  // 宝安 沙井
    (114.040, 22.630, 8.0, 4.0),  // 龙华 民治
    (114.120, 22.610, 8.0, 4.0),  // 龙岗 布吉
    (114.250, 22.720, 6.0, 5.0),  // 龙岗 中心城
    (113.935, 22.760, 3.0, 4.0),  // 光明
    (114.350, 22.700, 3.0, 4.0),  // 坪山
    (114.240, 22.570, 1.5, 2.0),  // 盐田
    (114.480, 22.590, 1.0, 4.0),  // 大鹏
];

fn name(rng: &mut ChaCha8Rng) -> String {
    format!("{}{}", SURNAMES.choose(rng).copied().unwrap_or("王"), GIVEN.choose(rng).copied().unwrap_or("伟"))
}

fn mobile(rng: &mut ChaCha8Rng) -> String {
    format!("13{:09}", rng.random_range(0..1_000_000_000u32))
}

/// The ten districts as top-level units.
///
/// # Errors
/// [`DemoError::Districts`] if the shipped file is damaged.
pub fn districts() -> Result<Vec<GridUnit>, DemoError> {
    let fc: geojson::FeatureCollection =
        SHENZHEN_DISTRICTS.parse().map_err(|e: geojson::Error| DemoError::Districts(e.to_string()))?;
    fc.features
        .iter()
        .map(|f| {
            let qh = f
                .property("qh")
                .and_then(|v| v.as_str())
                .ok_or_else(|| DemoError::Districts("feature without qh".into()))?;
            let (_, code, full) = DISTRICT_CODES
                .iter()
                .find(|(short, _, _)| *short == qh)
                .ok_or_else(|| DemoError::Districts(format!("unknown district {qh}")))?;
            let g = f.geometry.as_ref().ok_or_else(|| DemoError::Districts(format!("{qh} has no geometry")))?;
            Ok(GridUnit {
                code: GridCode::parse(code)?,
                name: (*full).to_owned(),
                level: GridLevel::District,
                manager: None,
                geometry: polygonal_from_geojson(g).map_err(|e| DemoError::Districts(format!("{qh}: {e}")))?,
            })
        })
        .collect()
}

/// Districts plus H3 resolution-8 grids clipped to them, each grid with a grid worker.
///
/// # Errors
/// [`DemoError`].
pub fn hierarchy(seed: u64) -> Result<GridHierarchy, DemoError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let districts = districts()?;
    let mut grids = safegrid_geodata::gridgen::h3_grids(&districts, Resolution::Eight)?;
    for g in &mut grids {
        g.manager = Some(Manager { name: name(&mut rng), phone: Some(mobile(&mut rng)) });
    }
    let mut units = districts;
    units.extend(grids);
    Ok(GridHierarchy::new(units)?)
}

/// Draws positions that fall in some grid, from the population model.
struct Sampler<'a> {
    grids: &'a GridState,
    rng: ChaCha8Rng,
    total_weight: f64,
    bbox: (f64, f64, f64, f64),
}

impl<'a> Sampler<'a> {
    fn new(grids: &'a GridState, seed: u64) -> Self {
        Self {
            grids,
            rng: ChaCha8Rng::seed_from_u64(seed),
            total_weight: CENTRES.iter().map(|c| c.2).sum(),
            bbox: (113.75, 22.40, 114.62, 22.86),
        }
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller.
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn point(&mut self) -> (LonLat, GridCode) {
        loop {
            let (lon, lat) = if self.rng.random_bool(0.1) {
                (self.rng.random_range(self.bbox.0..self.bbox.2), self.rng.random_range(self.bbox.1..self.bbox.3))
            } else {
                let mut pick = self.rng.random_range(0.0..self.total_weight);
                let mut c = CENTRES[0];
                for centre in CENTRES {
                    if pick < centre.2 {
                        c = centre;
                        break;
                    }
                    pick -= centre.2;
                }
                let km_lat = 1.0 / 111.2;
                let km_lon = km_lat / c.1.to_radians().cos();
                (c.0 + self.normal() * c.3 * km_lon, c.1 + self.normal() * c.3 * km_lat)
            };
            if let Ok(p) = LonLat::new(lon, lat)
                && let Some(g) = self.grids.grid_of(p)
            {
                return (p, g);
            }
        }
    }
}

/// The generated population, layer by layer, in insertion order (posts first: responders refer
/// to them by id 1…posts).
#[must_use]
pub fn population(
    grids: &GridState,
    sizes: Sizes,
    seed: u64,
    now: DateTime<Utc>,
) -> Vec<(Layer, Vec<(LonLat, Props)>)> {
    let mut s = Sampler::new(grids, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    // Device ids are random, not the seed's: an id must not be guessable from another (they
    // were sequential, and enumerable). 64 bits: no two of the demo's trackers share one.
    let mut device_ids = ChaCha8Rng::from_os_rng();
    let unit_name = |code: &GridCode| grids.unit(code).map(|u| u.name.clone()).unwrap_or_default();
    let manager_of = |code: &GridCode| grids.unit(code).and_then(|u| u.manager.as_ref()).map(|m| m.name.clone());

    let posts: Vec<(LonLat, Props)> = (0..sizes.posts)
        .map(|i| {
            let (p, g) = s.point();
            let kind = [PostKind::PoliceRoom, PostKind::SafetyStation, PostKind::SecurityPost][i % 3];
            let label = match kind {
                PostKind::PoliceRoom => "警务室",
                PostKind::SafetyStation => "平安易站",
                PostKind::SecurityPost => "安保点",
            };
            let props = Props::Post(Post {
                kind,
                name: format!("{}{label}", unit_name(&g)),
                phone: Some(format!("0755-8{:07}", rng.random_range(0..10_000_000u32))),
                radio_channel: Some(format!("CH-{:02}", 1 + i % 16)),
                opening_hours: Some(if kind == PostKind::SecurityPost { "08:00-22:00".into() } else { "24h".into() }),
            });
            (p, props)
        })
        .collect();

    let kinds = [
        (ResponderKind::Police, 0.20),
        (ResponderKind::Patrol, 0.30),
        (ResponderKind::SecurityGuard, 0.25),
        (ResponderKind::Volunteer, 0.10),
        (ResponderKind::GridWorker, 0.15),
    ];
    let statuses = [
        (ResponderStatus::Available, 0.62),
        (ResponderStatus::Dispatched, 0.04),
        (ResponderStatus::EnRoute, 0.06),
        (ResponderStatus::OnScene, 0.05),
        (ResponderStatus::Returning, 0.03),
        (ResponderStatus::OffDuty, 0.20),
    ];
    let caps = ["first_aid", "fire", "negotiation", "traffic", "drone", "k9", "english", "cantonese"];
    let responders: Vec<(LonLat, Props)> = (0..sizes.responders)
        .map(|i| {
            let (p, _) = s.point();
            let kind = kinds.choose_weighted(&mut rng, |k| k.1).map_or(ResponderKind::Patrol, |k| k.0);
            let status = statuses.choose_weighted(&mut rng, |k| k.1).map_or(ResponderStatus::Available, |k| k.0);
            let n = rng.random_range(0..3);
            let mut capabilities: Vec<String> = caps.choose_multiple(&mut rng, n).map(|c| (*c).to_owned()).collect();
            capabilities.sort();
            let prefix = match kind {
                ResponderKind::Police => "警",
                ResponderKind::Patrol => "巡",
                ResponderKind::SecurityGuard => "保",
                ResponderKind::Volunteer => "志",
                ResponderKind::GridWorker => "网",
            };
            let props = Props::Responder(Responder {
                kind,
                callsign: format!("{prefix}-{:04}", i + 1),
                status,
                capabilities,
                home_post: (sizes.posts > 0).then(|| rng.random_range(1..=sizes.posts as i64)),
                device_id: Some(format!("dev-{:016x}", device_ids.random::<u64>())),
            });
            (p, props)
        })
        .collect();

    let ratings = [(SafetyRating::A, 0.30), (SafetyRating::B, 0.45), (SafetyRating::C, 0.20), (SafetyRating::D, 0.05)];
    let housing: Vec<(LonLat, Props)> = (0..sizes.rental_housing)
        .map(|_| {
            let (p, _) = s.point();
            let units = rng.random_range(1..=40u32);
            let props = Props::RentalHousing(RentalHousing {
                address: format!(
                    "{}{}号",
                    STREETS.choose(&mut rng).copied().unwrap_or("深南大道"),
                    rng.random_range(1..=3000)
                ),
                units,
                tenant_count: rng.random_range(units / 2..=units * 3),
                landlord_contact: Some(mobile(&mut rng)),
                safety_rating: ratings.choose_weighted(&mut rng, |r| r.1).map_or(SafetyRating::B, |r| r.0),
                last_inspection: Some((now - Duration::days(rng.random_range(0..365))).date_naive()),
            });
            (p, props)
        })
        .collect();

    let types = [
        ("theft", 0.25),
        ("dispute", 0.20),
        ("traffic", 0.15),
        ("fraud", 0.10),
        ("noise", 0.10),
        ("fight", 0.08),
        ("fire", 0.02),
        ("missing_person", 0.02),
        ("other", 0.08),
    ];
    let incidents: Vec<(LonLat, Props)> = (0..sizes.incidents)
        .map(|_| {
            let (p, _) = s.point();
            let age = Duration::seconds(rng.random_range(0..30 * 86_400));
            let status = if age > Duration::hours(12) {
                if rng.random_bool(0.98) { IncidentStatus::Closed } else { IncidentStatus::Open }
            } else {
                *[IncidentStatus::Open, IncidentStatus::Dispatched, IncidentStatus::OnScene, IncidentStatus::Closed]
                    .choose(&mut rng)
                    .unwrap_or(&IncidentStatus::Open)
            };
            let props = Props::Incident(Incident {
                incident_type: types.choose_weighted(&mut rng, |t| t.1).map_or("other", |t| t.0).to_owned(),
                priority: [1, 2, 2, 3, 3, 3, 4, 4].choose(&mut rng).copied().unwrap_or(3),
                status,
                reported_at: now - age,
                address: Some(format!(
                    "{}{}号附近",
                    STREETS.choose(&mut rng).copied().unwrap_or("深南大道"),
                    rng.random_range(1..=3000)
                )),
                description: None,
            });
            (p, props)
        })
        .collect();

    let categories =
        ["community_correction", "drug_rehabilitation", "mental_health", "released_prisoner", "petitioner"];
    let key_personnel: Vec<(LonLat, Props)> = (0..sizes.key_personnel)
        .map(|_| {
            let (p, g) = s.point();
            let props = Props::KeyPerson(KeyPerson {
                category: categories.choose(&mut rng).copied().unwrap_or("petitioner").to_owned(),
                name: name(&mut rng),
                caretaker: manager_of(&g),
                assigned_grid: g,
                last_seen_at: Some(now - Duration::minutes(rng.random_range(0..7 * 24 * 60))),
                active: rng.random_bool(0.9),
                device_id: None,
                zone: None,
            });
            (p, props)
        })
        .collect();

    vec![
        (Layer::Posts, posts),
        (Layer::Responders, responders),
        (Layer::RentalHousing, housing),
        (Layer::Incidents, incidents),
        (Layer::KeyPersonnel, key_personnel),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_territory_has_ten_districts_with_real_codes() {
        let d = districts().unwrap();
        assert_eq!(d.len(), 10);
        assert!(d.iter().any(|u| u.code.as_str() == "440304" && u.name == "福田区"));
    }
}
