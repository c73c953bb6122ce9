//! The road network: an OpenStreetMap extract (`.osm.pbf`) turned into a directed graph
//! weighted by travel time, a contraction hierarchy over it (`fast_paths`), and snapping of
//! any point to the nearest road.
//!
//! - **Which ways**: driving takes `highway` = motorway … residential, service, living_street,
//!   unclassified, road and the `_link`s, minus `access`/`motor_vehicle` = no/private; walking
//!   takes every highway but motorways and trunks (and their links), plus footways, paths,
//!   steps and pedestrian areas' ways, minus `foot` = no.
//! - **Direction**: `oneway` = yes/true/1 (and motorways, roundabouts) one way, `-1` the other;
//!   walking ignores one-ways.
//! - **Speed**: `maxspeed` when it parses (km/h, or `mph`), capped by the class's urban speed
//!   (a posted 120 is not what a patrol car makes in a city); else the class's speed
//!   ([`drive_speed_kmh`]). Walking is 5 km/h everywhere.
//! - **Weights** are milliseconds (the hierarchy wants whole numbers, at least 1).
//! - **Snapping** projects a point onto the nearest road segment of the network's largest
//!   strongly connected part (an R-tree of segments in a local metric frame). A route leaves the start along the segment in the directions it
//!   allows, and reaches the end likewise, so an ETA is exact along roads; the distance off
//!   the road is added at [`ACCESS_MPS`].

use crate::LonLat;
use crate::distance::haversine_m;
pub use fast_paths::PathCalculator;
use fast_paths::{FastGraph, InputGraph};
use rstar::primitives::{GeomWithData, Line};
use rstar::{PointDistance, RTree};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Speed on foot from a point to the road it snaps to (and walking everywhere), m/s.
///
/// # Examples
/// ```
/// use safegrid_geodata::roads::ACCESS_MPS;
/// assert!((ACCESS_MPS * 3.6 - 5.0).abs() < 1e-12);
/// // 100 m from a courtyard to the street: 72 s on foot.
/// assert!((100.0 / ACCESS_MPS - 72.0).abs() < 1e-9);
/// ```
pub const ACCESS_MPS: f64 = 5.0 / 3.6;
/// Farthest a point may lie from every road and still be routed, metres.
///
/// # Examples
/// ```
/// # use safegrid_geodata::roads::{Mode, RoadGraph};
/// # use safegrid_geodata::{LonLat, haversine_m};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # // The demo's extract of Longgang (ODbL), compiled in.
/// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
/// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
/// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
/// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
/// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
/// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
/// use safegrid_geodata::roads::MAX_SNAP_M;
/// assert!(post.off_road_m <= MAX_SNAP_M);
/// // Futian lies far outside the Longgang extract: no road within 500 m.
/// assert!(roads.snap(LonLat::new(114.0579, 22.5431)?).is_none());
/// # Ok(())
/// # }
/// ```
pub const MAX_SNAP_M: f64 = 500.0;

/// Driving or walking.
///
/// # Examples
/// ```
/// use safegrid_geodata::roads::{Mode, RoadGraph};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
/// let walk = RoadGraph::from_pbf(pbf, Mode::Walk)?;
/// assert_eq!(walk.mode(), Mode::Walk);
/// // On foot, every road is walked at 5 km/h.
/// assert!((walk.max_mps() - 5.0 / 3.6).abs() < 1e-9);
/// assert_eq!(serde_json::to_string(&Mode::Drive)?, r#""Drive""#);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Patrol cars and motorbikes.
    Drive,
    /// On foot.
    Walk,
}

/// Why a road network could not be built or read.
///
/// # Examples
/// ```
/// use safegrid_geodata::roads::{Mode, RoadError, RoadGraph};
/// let stale = RoadGraph::from_bytes(b"not a cached graph");
/// assert!(matches!(stale, Err(RoadError::Cache(_))));
/// let nothing = RoadGraph::from_pbf(&[], Mode::Drive);
/// assert!(matches!(nothing, Err(RoadError::Empty(Mode::Drive))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoadError {
    /// The PBF could not be read.
    #[error("reading the OpenStreetMap extract: {0}")]
    Pbf(String),
    /// The OSM XML could not be read.
    #[error("reading the OpenStreetMap XML: {0}")]
    Xml(String),
    /// No way of the extract is usable in this mode.
    #[error("the extract has no {0:?} roads")]
    Empty(Mode),
    /// A cached hierarchy does not decode (another version wrote it, or it is damaged).
    #[error("the cached road graph does not decode: {0}")]
    Cache(String),
}

/// Urban driving speed of a `highway` class, km/h; `None` when cars do not use it.
///
/// # Examples
/// ```
/// use safegrid_geodata::roads::drive_speed_kmh;
/// assert_eq!(drive_speed_kmh("primary"), Some(50.0));
/// assert_eq!(drive_speed_kmh("residential"), Some(25.0));
/// assert_eq!(drive_speed_kmh("footway"), None);
/// ```
#[must_use]
#[expect(clippy::match_same_arms, reason = "a table: one row per class, in the order of the road hierarchy")]
pub fn drive_speed_kmh(highway: &str) -> Option<f64> {
    Some(match highway {
        "motorway" => 90.0,
        "trunk" => 70.0,
        "primary" => 50.0,
        "secondary" => 45.0,
        "tertiary" => 40.0,
        "motorway_link" | "trunk_link" => 45.0,
        "primary_link" | "secondary_link" | "tertiary_link" => 35.0,
        "unclassified" | "road" => 30.0,
        "residential" => 25.0,
        "service" => 15.0,
        "living_street" => 10.0,
        _ => return None,
    })
}

fn walkable(highway: &str) -> bool {
    !matches!(
        highway,
        "motorway"
            | "motorway_link"
            | "trunk"
            | "trunk_link"
            | "construction"
            | "proposed"
            | "raceway"
            | "bus_guideway"
    )
}

/// `maxspeed` in km/h: `50`, `30 mph`; `None` for anything else (`CN:urban`, `signals`…).
fn parse_maxspeed(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, factor) = match v.strip_suffix("mph") {
        Some(n) => (n.trim(), 1.609_344),
        None => (v.strip_suffix("km/h").unwrap_or(v).trim(), 1.0),
    };
    num.parse::<f64>().ok().filter(|x| *x > 0.0 && *x < 300.0).map(|x| x * factor)
}

/// One piece of road between two consecutive way nodes.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Segment {
    a: u32,
    b: u32,
    /// Travel time a → b, ms (`None`: not allowed).
    fwd_ms: Option<u32>,
    /// Travel time b → a, ms.
    bwd_ms: Option<u32>,
}

/// Where a point meets the road network.
///
/// # Examples
/// ```
/// # use safegrid_geodata::roads::{Mode, RoadGraph};
/// # use safegrid_geodata::{LonLat, haversine_m};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # // The demo's extract of Longgang (ODbL), compiled in.
/// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
/// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
/// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
/// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
/// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
/// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
/// // The post stands beside its road; the snap says how far.
/// assert!(post.off_road_m < 100.0, "{}", post.off_road_m);
/// assert_eq!(roads.snap(post_at), Some(post)); // the same point snaps the same way
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    segment: usize,
    /// Position along the segment, 0 at `a`, 1 at `b`.
    frac: f64,
    /// Distance from the point to the road, metres.
    pub off_road_m: f64,
}

/// A local flat frame (metres) around the network's centre, for the segment R-tree.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Frame {
    lon0: f64,
    lat0: f64,
    kx: f64,
    ky: f64,
}

impl Frame {
    fn around(lon0: f64, lat0: f64) -> Self {
        let ky = 111_132.954 - 559.822 * (2.0 * lat0.to_radians()).cos();
        Self { lon0, lat0, kx: 111_412.84 * lat0.to_radians().cos(), ky }
    }
    fn xy(&self, p: LonLat) -> [f64; 2] {
        [(p.lon() - self.lon0) * self.kx, (p.lat() - self.lat0) * self.ky]
    }
}

/// What is cached on disk: everything but the R-tree, which is rebuilt in milliseconds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    mode: Mode,
    nodes: Vec<(f64, f64)>,
    segments: Vec<Segment>,
    frame: Frame,
    max_mps: f64,
    ch: FastGraph,
}

/// A road network in one mode, with its contraction hierarchy.
///
/// # Examples
/// ```
/// use safegrid_geodata::roads::{Mode, RoadGraph};
/// use safegrid_geodata::LonLat;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The demo's extract of Longgang (ODbL), compiled in.
/// let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
/// let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
/// let post = roads.snap(LonLat::new(114.205, 22.69)?).ok_or("the post is off the network")?;
/// let incident = roads.snap(LonLat::new(114.22, 22.70)?).ok_or("the incident is off the network")?;
/// let mut calc = roads.calculator();
/// let route = roads.route(&mut calc, &post, &incident).ok_or("no route")?;
/// // A few minutes by car for about 2 km.
/// assert!(route.eta_s > 60.0 && route.eta_s < 900.0, "{}", route.eta_s);
/// # Ok(())
/// # }
/// ```
pub struct RoadGraph {
    mode: Mode,
    nodes: Vec<LonLat>,
    segments: Vec<Segment>,
    /// Out-edges per node (for the plain Dijkstra oracle): (to, ms).
    adjacency: Vec<Vec<(u32, u32)>>,
    /// In-edges per node (for the many-to-one search of [`Self::nearest_by_time`]): (from, ms).
    reverse: Vec<Vec<(u32, u32)>>,
    frame: Frame,
    tree: RTree<GeomWithData<Line<[f64; 2]>, u32>>,
    max_mps: f64,
    ch: FastGraph,
}

impl std::fmt::Debug for RoadGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoadGraph")
            .field("mode", &self.mode)
            .field("nodes", &self.nodes.len())
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

/// A route's time and length.
///
/// # Examples
/// ```
/// # use safegrid_geodata::roads::{Mode, RoadGraph};
/// # use safegrid_geodata::{LonLat, haversine_m};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # // The demo's extract of Longgang (ODbL), compiled in.
/// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
/// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
/// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
/// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
/// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
/// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
/// let route = roads.route(&mut roads.calculator(), &post, &incident).ok_or("no route")?;
/// // Roads are never shorter than the straight line, nor faster than the fastest road.
/// assert!(route.distance_m >= 0.99 * haversine_m(post_at, incident_at));
/// assert!(route.eta_s >= route.distance_m / roads.max_mps());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    /// Travel time, seconds, including the walk to and from the road.
    pub eta_s: f64,
    /// Length along roads plus the distances off them, metres.
    pub distance_m: f64,
}

/// A way usable in a mode: its node refs, forward allowed, backward allowed, speed m/s.
type RawWay = (Vec<i64>, bool, bool, f64);

/// Whether an extract is OSM XML rather than PBF: after an optional byte-order mark and white
/// space, an XML declaration or the `<osm` root. (A PBF starts with a 4-byte length.)
fn is_osm_xml(bytes: &[u8]) -> bool {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let b = b.trim_ascii_start();
    b.starts_with(b"<?xml") || b.starts_with(b"<osm")
}

impl RoadGraph {
    /// Builds the network of `mode` from a PBF extract and contracts it (seconds for a city
    /// district; cache the result with [`Self::to_bytes`]).
    ///
    /// # Errors
    /// [`RoadError`] when the PBF does not read or holds no usable road.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// let drive = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// let walk = RoadGraph::from_pbf(pbf, Mode::Walk)?;
    /// assert_eq!(drive.mode(), Mode::Drive);
    /// // Footways and paths make the walking network the larger one.
    /// assert!(walk.segment_count() > drive.segment_count());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_pbf(pbf: &[u8], mode: Mode) -> Result<Self, RoadError> {
        let mut coords: HashMap<i64, (f64, f64)> = HashMap::new();
        let mut ways: Vec<RawWay> = Vec::new();
        let reader = osmpbf::ElementReader::new(std::io::Cursor::new(pbf));
        reader
            .for_each(|el| match el {
                osmpbf::Element::Node(n) => {
                    coords.insert(n.id(), (n.lon(), n.lat()));
                }
                osmpbf::Element::DenseNode(n) => {
                    coords.insert(n.id(), (n.lon(), n.lat()));
                }
                osmpbf::Element::Way(w) => {
                    let tags: HashMap<&str, &str> = w.tags().collect();
                    if let Some(way) = usable(&tags, mode) {
                        ways.push((w.refs().collect(), way.0, way.1, way.2));
                    }
                }
                osmpbf::Element::Relation(_) => {}
            })
            .map_err(|e| RoadError::Pbf(e.to_string()))?;
        Self::build(&coords, &ways, mode)
    }

    /// Builds the network of `mode` from an extract in either of OpenStreetMap's formats: PBF,
    /// or XML (`.osm`, as JOSM, the Overpass API and `osmium cat -f osm` write it), told apart
    /// by their first bytes.
    ///
    /// # Errors
    /// As [`Self::from_pbf`], and [`RoadError::Xml`] for XML that does not read.
    pub fn from_extract(bytes: &[u8], mode: Mode) -> Result<Self, RoadError> {
        if is_osm_xml(bytes) { Self::from_osm_xml(bytes, mode) } else { Self::from_pbf(bytes, mode) }
    }

    /// Builds the network of `mode` from OSM XML: `<node id lat lon>`, `<way>` with its `<nd
    /// ref>` and `<tag k v>`; relations and metadata are not needed. Parsed as a stream of
    /// events over the bytes, with no document tree built (the bytes themselves are in memory,
    /// as a PBF's are).
    ///
    /// # Errors
    /// [`RoadError::Xml`] naming the byte offset of malformed XML or a node without a usable
    /// id or position; [`RoadError::Empty`] without usable roads.
    pub fn from_osm_xml(xml: &[u8], mode: Mode) -> Result<Self, RoadError> {
        use quick_xml::events::{BytesStart, Event};
        fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
            e.attributes().flatten().find(|a| a.key.as_ref() == name).and_then(|a| {
                let raw = std::str::from_utf8(&a.value).ok()?;
                quick_xml::escape::unescape(raw).ok().map(std::borrow::Cow::into_owned)
            })
        }
        let mut coords: HashMap<i64, (f64, f64)> = HashMap::new();
        let mut ways: Vec<RawWay> = Vec::new();
        let mut reader = quick_xml::Reader::from_reader(xml);
        let mut buf = Vec::new();
        // The way being read: its refs and tags, until its end tag.
        type OpenWay = (Vec<i64>, Vec<(String, String)>);
        let mut way: Option<OpenWay> = None;
        // Whether <osm> was opened and then closed: a file cut short reads to its end cleanly,
        // but never closes its root.
        let (mut opened, mut closed) = (false, false);
        loop {
            let at = reader.buffer_position();
            let bad = |what: &str| RoadError::Xml(format!("at byte {at}: {what}"));
            match reader.read_event_into(&mut buf).map_err(|e| bad(&e.to_string()))? {
                Event::Eof if !opened => return Err(bad("no <osm> element: not OpenStreetMap XML")),
                Event::Eof if !closed => return Err(bad("the file ends before </osm>: is it cut short?")),
                Event::Eof => break,
                Event::Start(e) if e.name().as_ref() == b"osm" => opened = true,
                Event::End(e) if e.name().as_ref() == b"osm" => closed = true,
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"node" => {
                    let num = |k: &[u8]| attr(&e, k).and_then(|v| v.trim().parse::<f64>().ok());
                    let id = attr(&e, b"id").and_then(|v| v.trim().parse::<i64>().ok());
                    match (id, num(b"lon"), num(b"lat")) {
                        (Some(id), Some(lon), Some(lat)) => {
                            coords.insert(id, (lon, lat));
                        }
                        // A deleted node in a change file has no position; it is no road's.
                        (Some(_), None, None) if attr(&e, b"visible").as_deref() == Some("false") => {}
                        _ => return Err(bad("a <node> needs a numeric id, lat and lon")),
                    }
                }
                Event::Start(e) if e.name().as_ref() == b"way" => way = Some((Vec::new(), Vec::new())),
                Event::Empty(e) if e.name().as_ref() == b"way" => {} // a way without nodes
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"nd" => {
                    if let Some((refs, _)) = way.as_mut() {
                        let r = attr(&e, b"ref").and_then(|v| v.trim().parse::<i64>().ok());
                        refs.push(r.ok_or_else(|| bad("an <nd> needs a numeric ref"))?);
                    }
                }
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"tag" => {
                    if let (Some((_, tags)), Some(k), Some(v)) = (way.as_mut(), attr(&e, b"k"), attr(&e, b"v")) {
                        tags.push((k, v));
                    }
                }
                Event::End(e) if e.name().as_ref() == b"way" => {
                    if let Some((refs, tags)) = way.take() {
                        let tags: HashMap<&str, &str> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        if let Some(w) = usable(&tags, mode) {
                            ways.push((refs, w.0, w.1, w.2));
                        }
                    }
                }
                _ => {}
            }
            buf.clear();
        }
        Self::build(&coords, &ways, mode)
    }

    /// The graph of these ways over these node positions, contracted.
    fn build(coords: &HashMap<i64, (f64, f64)>, ways: &[RawWay], mode: Mode) -> Result<Self, RoadError> {
        let mut index: HashMap<i64, u32> = HashMap::new();
        let mut nodes: Vec<LonLat> = Vec::new();
        let mut segments = Vec::new();
        let mut max_mps: f64 = ACCESS_MPS;
        for (refs, fwd, bwd, mps) in ways {
            max_mps = max_mps.max(*mps);
            let mut prev: Option<u32> = None;
            for r in refs {
                let Some(&(lon, lat)) = coords.get(r) else {
                    prev = None; // a node outside the extract: the way is cut there
                    continue;
                };
                let Ok(p) = LonLat::new(lon, lat) else { continue };
                let id = *index.entry(*r).or_insert_with(|| {
                    nodes.push(p);
                    (nodes.len() - 1) as u32
                });
                if let Some(a) = prev
                    && a != id
                {
                    let metres = haversine_m(nodes[a as usize], nodes[id as usize]);
                    let ms = ((metres / mps) * 1000.0).round().max(1.0) as u32;
                    segments.push(Segment { a, b: id, fwd_ms: fwd.then_some(ms), bwd_ms: bwd.then_some(ms) });
                }
                prev = Some(id);
            }
        }
        if segments.is_empty() {
            return Err(RoadError::Empty(mode));
        }
        let (sum_lon, sum_lat) = nodes.iter().fold((0.0, 0.0), |(x, y), p| (x + p.lon(), y + p.lat()));
        let frame = Frame::around(sum_lon / nodes.len() as f64, sum_lat / nodes.len() as f64);
        let mut input = InputGraph::new();
        for s in &segments {
            if let Some(ms) = s.fwd_ms {
                input.add_edge(s.a as usize, s.b as usize, ms as usize);
            }
            if let Some(ms) = s.bwd_ms {
                input.add_edge(s.b as usize, s.a as usize, ms as usize);
            }
        }
        // Nodes without a segment (a way cut to one node by the extract's edge) may lie beyond
        // the hierarchy's node count; they are never snapped to, as snapping finds segments.
        input.freeze();
        let ch = fast_paths::prepare(&input);
        Ok(Self::assemble(Stored {
            mode,
            nodes: nodes.iter().map(|p| (p.lon(), p.lat())).collect(),
            segments,
            frame,
            max_mps,
            ch,
        }))
    }

    fn assemble(s: Stored) -> Self {
        let nodes: Vec<LonLat> = s
            .nodes
            .iter()
            .map(|&(lon, lat)| {
                LonLat::new(lon, lat).unwrap_or_else(|_| LonLat::new(0.0, 0.0).expect("the origin is a valid position"))
            })
            .collect();
        let mut adjacency = vec![Vec::new(); nodes.len()];
        for seg in &s.segments {
            if let Some(ms) = seg.fwd_ms {
                adjacency[seg.a as usize].push((seg.b, ms));
            }
            if let Some(ms) = seg.bwd_ms {
                adjacency[seg.b as usize].push((seg.a, ms));
            }
        }
        let mut reverse = vec![Vec::new(); nodes.len()];
        for (a, outs) in adjacency.iter().enumerate() {
            for &(b, ms) in outs {
                reverse[b as usize].push((a as u32, ms));
            }
        }
        // Only roads of the largest strongly connected part are snapped to: from anywhere there
        // every other place there is reachable, so no query is lost in a one-way trap or on a
        // street the extract cut off (and no search explores the whole graph in vain).
        let main = largest_scc(&adjacency);
        let tree = RTree::bulk_load(
            s.segments
                .iter()
                .enumerate()
                .filter(|(_, seg)| main[seg.a as usize] && main[seg.b as usize])
                .map(|(i, seg)| {
                    let (a, b) = (s.frame.xy(nodes[seg.a as usize]), s.frame.xy(nodes[seg.b as usize]));
                    GeomWithData::new(Line::new(a, b), i as u32)
                })
                .collect(),
        );
        Self {
            mode: s.mode,
            nodes,
            segments: s.segments,
            adjacency,
            reverse,
            frame: s.frame,
            tree,
            max_mps: s.max_mps,
            ch: s.ch,
        }
    }

    /// The network as bytes, for the on-disk cache.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let bytes = roads.to_bytes();
    /// assert!(!bytes.is_empty());
    /// let cached = RoadGraph::from_bytes(&bytes)?;
    /// assert_eq!(cached.node_count(), roads.node_count());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let s = StoredRef {
            mode: self.mode,
            nodes: self.nodes.iter().map(|p| (p.lon(), p.lat())).collect(),
            segments: &self.segments,
            frame: self.frame,
            max_mps: self.max_mps,
            ch: &self.ch,
        };
        bincode::serialize(&s).unwrap_or_default()
    }

    /// A network from [`Self::to_bytes`].
    ///
    /// # Errors
    /// [`RoadError::Cache`].
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let cached = RoadGraph::from_bytes(&roads.to_bytes())?;
    /// // The cached network routes exactly as the one built from the extract.
    /// let eta = |g: &RoadGraph| g.route(&mut g.calculator(), &post, &incident).map(|r| r.eta_s);
    /// assert_eq!(eta(&cached), eta(&roads));
    /// assert!(RoadGraph::from_bytes(&roads.to_bytes()[..100]).is_err()); // cut short
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RoadError> {
        let s: Stored = bincode::deserialize(bytes).map_err(|e| RoadError::Cache(e.to_string()))?;
        let top = s.segments.iter().map(|g| g.a.max(g.b) as usize).max().unwrap_or(0);
        if s.ch.get_num_nodes() <= top || s.nodes.len() <= top {
            return Err(RoadError::Cache("node counts differ".into()));
        }
        Ok(Self::assemble(s))
    }

    /// Driving or walking.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// assert_eq!(roads.mode(), Mode::Drive);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Graph nodes (way nodes of the roads taken).
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// assert!(roads.node_count() > 1_000, "{}", roads.node_count());
    /// assert!(roads.node(u32::try_from(roads.node_count())?).is_none()); // nodes are 0..count
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Road segments.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// assert_eq!(roads.segments().count(), roads.segment_count());
    /// assert!(roads.segment_count() >= roads.node_count() - 1); // one connected network
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Fastest speed anywhere in the network, m/s: an ETA is never below distance / this.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// // No urban class is faster than a motorway's 90 km/h.
    /// assert!(roads.max_mps() > 0.0 && roads.max_mps() <= 90.0 / 3.6);
    /// let eta = roads.dijkstra_eta_s(&post, &incident).ok_or("no route")?;
    /// assert!(eta >= haversine_m(post_at, incident_at) / roads.max_mps() - 1.0);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn max_mps(&self) -> f64 {
        self.max_mps
    }

    /// Every segment as (node a, node b, ms a→b, ms b→a), for exporting the same graph to
    /// another router (the pgRouting comparison).
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// for (a, b, forward_ms, backward_ms) in roads.segments() {
    ///     assert!(roads.node(a).is_some() && roads.node(b).is_some());
    ///     assert!(forward_ms.is_some() || backward_ms.is_some()); // every segment can be driven
    /// }
    /// // Some streets are one-way.
    /// assert!(roads.segments().any(|(_, _, f, b)| f.is_none() || b.is_none()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn segments(&self) -> impl Iterator<Item = (u32, u32, Option<u32>, Option<u32>)> + '_ {
        self.segments.iter().map(|s| (s.a, s.b, s.fwd_ms, s.bwd_ms))
    }

    /// A node's position.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let node = roads.node(roads.nearer_node(&post)).ok_or("no such node")?;
    /// assert!(haversine_m(node, post_at) < 1_000.0); // a street corner near the post
    /// assert_eq!(roads.node(u32::MAX), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn node(&self, i: u32) -> Option<LonLat> {
        self.nodes.get(i as usize).copied()
    }

    /// The node of a snapped point's segment nearer to it (for routers without partial segments).
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let (a, b, _, _) = roads.segments().nth(RoadGraph::segment_of(&post)).ok_or("no segment")?;
    /// let near = roads.nearer_node(&post);
    /// assert!(near == a || near == b);
    /// let far = if near == a { b } else { a };
    /// let to = |n: u32| roads.node(n).map(|p| haversine_m(p, post_at)).unwrap_or(f64::INFINITY);
    /// assert!(to(near) <= to(far) + 1.0);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn nearer_node(&self, s: &Snap) -> u32 {
        let seg = self.segments[s.segment];
        if s.frac < 0.5 { seg.a } else { seg.b }
    }

    /// A reusable query state (one per thread).
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let mut calc = roads.calculator();
    /// // One calculator answers any number of queries, one at a time.
    /// let there = roads.route(&mut calc, &post, &incident).ok_or("no route")?;
    /// let back = roads.route(&mut calc, &incident, &post).ok_or("no route")?;
    /// assert!(there.eta_s > 0.0 && back.eta_s > 0.0);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn calculator(&self) -> PathCalculator {
        fast_paths::create_calculator(&self.ch)
    }

    /// Snaps a point to the nearest road within [`MAX_SNAP_M`].
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let snap = roads.snap(post_at).ok_or("off the network")?;
    /// assert!(snap.off_road_m < 100.0);
    /// // Dongguan is outside the extract.
    /// assert_eq!(roads.snap(LonLat::new(113.7518, 23.0205)?), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn snap(&self, p: LonLat) -> Option<Snap> {
        let q = self.frame.xy(p);
        let nearest = self.tree.nearest_neighbor(&q)?;
        let off = nearest.geom().distance_2(&q).sqrt();
        if off > MAX_SNAP_M {
            return None;
        }
        let (a, b) = (nearest.geom().from, nearest.geom().to);
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len2 = dx * dx + dy * dy;
        let frac = if len2 > 0.0 { (((q[0] - a[0]) * dx + (q[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
        Some(Snap { segment: nearest.data as usize, frac, off_road_m: off })
    }

    /// Where a route may leave a snapped point: (node, ms to reach it).
    fn exits(&self, s: &Snap) -> Vec<(usize, usize)> {
        let seg = self.segments[s.segment];
        let mut out = Vec::with_capacity(2);
        if let Some(ms) = seg.fwd_ms {
            out.push((seg.b as usize, ((1.0 - s.frac) * f64::from(ms)).round() as usize));
        }
        if let Some(ms) = seg.bwd_ms {
            out.push((seg.a as usize, (s.frac * f64::from(ms)).round() as usize));
        }
        out
    }

    /// Where a route may arrive at a snapped point: (node, ms from it).
    fn entries(&self, s: &Snap) -> Vec<(usize, usize)> {
        let seg = self.segments[s.segment];
        let mut out = Vec::with_capacity(2);
        if let Some(ms) = seg.fwd_ms {
            out.push((seg.a as usize, (s.frac * f64::from(ms)).round() as usize));
        }
        if let Some(ms) = seg.bwd_ms {
            out.push((seg.b as usize, ((1.0 - s.frac) * f64::from(ms)).round() as usize));
        }
        out
    }

    /// Along the shared segment, when both points lie on one and its direction allows.
    fn same_segment_ms(&self, from: &Snap, to: &Snap) -> Option<usize> {
        if from.segment != to.segment {
            return None;
        }
        let seg = self.segments[from.segment];
        let along = to.frac - from.frac;
        let fwd = seg.fwd_ms.filter(|_| along >= 0.0).map(|ms| (along * f64::from(ms)).round() as usize);
        let bwd = seg.bwd_ms.filter(|_| along <= 0.0).map(|ms| (-along * f64::from(ms)).round() as usize);
        fwd.into_iter().chain(bwd).min()
    }

    fn access_s(from: &Snap, to: &Snap) -> f64 {
        (from.off_road_m + to.off_road_m) / ACCESS_MPS
    }

    /// The fastest route between two snapped points, through the contraction hierarchy.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let route = roads.route(&mut roads.calculator(), &post, &incident).ok_or("no route")?;
    /// // The hierarchy agrees with a plain Dijkstra to the millisecond.
    /// let oracle = roads.dijkstra_eta_s(&post, &incident).ok_or("no route")?;
    /// assert!((route.eta_s - oracle).abs() < 0.002);
    /// assert!(route.distance_m > haversine_m(post_at, incident_at) * 0.99);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn route(&self, calc: &mut PathCalculator, from: &Snap, to: &Snap) -> Option<Route> {
        let direct = self.same_segment_ms(from, to);
        let (starts, ends) = (self.exits(from), self.entries(to));
        let via = if starts.is_empty() || ends.is_empty() {
            None
        } else {
            calc.calc_path_multiple_sources_and_targets(&self.ch, starts, ends)
        };
        let via_ms = via.as_ref().map(fast_paths::ShortestPath::get_weight);
        let (ms, metres) = match (direct, via_ms) {
            (Some(d), v) if v.is_none_or(|v| d <= v) => {
                let seg = self.segments[from.segment];
                let len = haversine_m(self.nodes[seg.a as usize], self.nodes[seg.b as usize]);
                (d, (to.frac - from.frac).abs() * len)
            }
            (_, Some(v)) => {
                let path = via.as_ref().map(|p| p.get_nodes().as_slice()).unwrap_or_default();
                let along: f64 = path.windows(2).map(|w| haversine_m(self.nodes[w[0]], self.nodes[w[1]])).sum();
                let ends = self.end_metres(from, path.first().copied(), true)
                    + self.end_metres(to, path.last().copied(), false);
                (v, along + ends)
            }
            _ => return None,
        };
        Some(Route {
            eta_s: ms as f64 / 1000.0 + Self::access_s(from, to),
            distance_m: metres + from.off_road_m + to.off_road_m,
        })
    }

    /// The fastest route's geometry: the start's point on its road, the nodes passed, the end's
    /// point on its road (for a simulated unit to drive along).
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let mut calc = roads.calculator();
    /// let path = roads.path(&mut calc, &post, &incident).ok_or("no route")?;
    /// let route = roads.route(&mut calc, &post, &incident).ok_or("no route")?;
    /// // The path is the route's road part: its length is the route's less the walks.
    /// let along: f64 = path.windows(2).map(|w| haversine_m(w[0], w[1])).sum();
    /// let walks = post.off_road_m + incident.off_road_m;
    /// assert!((along - (route.distance_m - walks)).abs() < 1.0, "{along} {}", route.distance_m);
    /// assert!(haversine_m(path[0], post_at) <= post.off_road_m + 0.01);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn path(&self, calc: &mut PathCalculator, from: &Snap, to: &Snap) -> Option<Vec<LonLat>> {
        let on_road = |s: &Snap| {
            let seg = self.segments[s.segment];
            let (a, b) = (self.nodes[seg.a as usize], self.nodes[seg.b as usize]);
            LonLat::new(a.lon() + (b.lon() - a.lon()) * s.frac, a.lat() + (b.lat() - a.lat()) * s.frac).ok()
        };
        let mut out = vec![on_road(from)?];
        if self.same_segment_ms(from, to).is_none() {
            let (starts, ends) = (self.exits(from), self.entries(to));
            if starts.is_empty() || ends.is_empty() {
                return None;
            }
            let p = calc.calc_path_multiple_sources_and_targets(&self.ch, starts, ends)?;
            out.extend(p.get_nodes().iter().map(|&n| self.nodes[n]));
        }
        out.push(on_road(to)?);
        Some(out)
    }

    /// Metres between a snapped point and the end node of its segment a route used.
    fn end_metres(&self, s: &Snap, node: Option<usize>, _leaving: bool) -> f64 {
        let seg = self.segments[s.segment];
        let len = haversine_m(self.nodes[seg.a as usize], self.nodes[seg.b as usize]);
        match node {
            Some(n) if n == seg.a as usize => s.frac * len,
            Some(n) if n == seg.b as usize => (1.0 - s.frac) * len,
            _ => 0.0,
        }
    }

    /// The `k` candidates that reach `to` soonest, soonest first: (index into `candidates`,
    /// travel time in seconds, walks to and from the road included). Candidates that cannot
    /// reach `to` are left out.
    ///
    /// One Dijkstra search backwards from `to`, stopped as soon as `k` candidates are known to
    /// arrive before anything the search has not yet reached: it settles the few streets
    /// around the place rather than routing each candidate (which the hierarchy does fast, but
    /// once per candidate).
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// // Three units: one far off, one at the post, one at the incident's corner.
    /// let far = roads.snap(LonLat::new(114.20, 22.685)?).ok_or("off the network")?;
    /// let units = [far, post, incident];
    /// let nearest = roads.nearest_by_time(&incident, &units, 2);
    /// assert_eq!(nearest.len(), 2);
    /// assert_eq!(nearest[0].0, 2); // already there
    /// assert!(nearest[0].1 <= nearest[1].1);
    /// // The same times a route gives.
    /// let eta = |u: usize| roads.dijkstra_eta_s(&units[u], &incident).unwrap_or(f64::INFINITY);
    /// assert!((nearest[1].1 - eta(nearest[1].0)).abs() < 0.01);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn nearest_by_time(&self, to: &Snap, candidates: &[Snap], k: usize) -> Vec<(usize, f64)> {
        use std::collections::BTreeSet;
        if k == 0 || candidates.is_empty() {
            return Vec::new();
        }
        let access_ms = |c: &Snap| ((c.off_road_m + to.off_road_m) / ACCESS_MPS * 1000.0).round() as usize;
        // Where each candidate joins the network: node → (candidate, ms from the candidate to it).
        let mut joins: HashMap<u32, Vec<(usize, usize)>> = HashMap::new();
        // Tentative road time per candidate (without the walks), and the ordered set of ETAs.
        let mut road: Vec<usize> = vec![usize::MAX; candidates.len()];
        let mut etas: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (i, c) in candidates.iter().enumerate() {
            for (n, w) in self.exits(c) {
                joins.entry(n as u32).or_default().push((i, w));
            }
            if let Some(ms) = self.same_segment_ms(c, to) {
                road[i] = ms;
                etas.insert((ms + access_ms(c), i));
            }
        }
        let mut dist: HashMap<u32, usize> = HashMap::new();
        let mut heap = BinaryHeap::new();
        for (n, w) in self.entries(to) {
            if dist.get(&(n as u32)).is_none_or(|d| w < *d) {
                dist.insert(n as u32, w);
                heap.push(Reverse((w, n as u32)));
            }
        }
        while let Some(Reverse((d, v))) = heap.pop() {
            if dist.get(&v).is_some_and(|best| d > *best) {
                continue;
            }
            // Every candidate whose ETA is at most d is final: anything still to come arrives
            // at d or later. Enough of them ends the search.
            if etas.iter().take(k).filter(|(eta, _)| *eta <= d).count() >= k {
                break;
            }
            if let Some(list) = joins.get(&v) {
                for &(i, w) in list {
                    let via = d + w;
                    if via < road[i] {
                        if road[i] != usize::MAX {
                            etas.remove(&(road[i] + access_ms(&candidates[i]), i));
                        }
                        road[i] = via;
                        etas.insert((via + access_ms(&candidates[i]), i));
                    }
                }
            }
            for &(u, ms) in &self.reverse[v as usize] {
                let nd = d + ms as usize;
                if dist.get(&u).is_none_or(|best| nd < *best) {
                    dist.insert(u, nd);
                    heap.push(Reverse((nd, u)));
                }
            }
        }
        etas.into_iter().take(k).map(|(ms, i)| (i, ms as f64 / 1000.0)).collect()
    }

    /// Travel time from the nearest of `sources` to every node: one Dijkstra seeded at all of
    /// them (each with its own walk to the road), stopped beyond `limit_s`. Milliseconds;
    /// `u32::MAX` for nodes beyond the limit or unreachable. With [`Self::time_to`], this is
    /// what "within T minutes of the nearest post" is computed from.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let within_5_min = roads.times_from(&[post], 300.0);
    /// assert_eq!(within_5_min.len(), roads.node_count());
    /// let reached = within_5_min.iter().filter(|&&ms| ms != u32::MAX).count();
    /// assert!(reached > 0 && reached < roads.node_count());
    /// assert!(within_5_min.iter().all(|&ms| ms == u32::MAX || ms <= 300_000));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn times_from(&self, sources: &[Snap], limit_s: f64) -> Vec<u32> {
        let limit = (limit_s * 1000.0).max(0.0) as usize;
        let mut dist = vec![usize::MAX; self.nodes.len()];
        let mut heap = BinaryHeap::new();
        for s in sources {
            let walk = (s.off_road_m / ACCESS_MPS * 1000.0).round() as usize;
            for (n, w) in self.exits(s) {
                if w + walk < dist[n] {
                    dist[n] = w + walk;
                    heap.push(Reverse((w + walk, n)));
                }
            }
        }
        while let Some(Reverse((d, n))) = heap.pop() {
            if d > dist[n] || d > limit {
                continue;
            }
            for &(m, w) in &self.adjacency[n] {
                let nd = d + w as usize;
                if nd < dist[m as usize] && nd <= limit {
                    dist[m as usize] = nd;
                    heap.push(Reverse((nd, m as usize)));
                }
            }
        }
        dist.into_iter().map(|d| u32::try_from(d).unwrap_or(u32::MAX)).collect()
    }

    /// Seconds from `from` to `to` along the one segment they share (in its allowed
    /// direction), walks included; `None` when they are on different segments.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// use safegrid_geodata::roads::ACCESS_MPS;
    /// // From a point to itself: only the walks to the road and back.
    /// let there_and_back = roads.same_segment_s(&post, &post).ok_or("a one-way segment")?;
    /// assert!((there_and_back - 2.0 * post.off_road_m / ACCESS_MPS).abs() < 1e-9);
    /// assert_eq!(roads.same_segment_s(&post, &incident), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn same_segment_s(&self, from: &Snap, to: &Snap) -> Option<f64> {
        self.same_segment_ms(from, to).map(|ms| ms as f64 / 1000.0 + Self::access_s(from, to))
    }

    /// The segment a point snapped to (to group points that share one).
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// assert_ne!(RoadGraph::segment_of(&post), RoadGraph::segment_of(&incident));
    /// assert!(RoadGraph::segment_of(&post) < roads.segment_count());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn segment_of(s: &Snap) -> usize {
        s.segment
    }

    /// Seconds to a snapped point from node times of [`Self::times_from`], including the walk
    /// from the road; `None` if no entry to its segment was reached.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let node_ms = roads.times_from(&[post], 900.0);
    /// let t = roads.time_to(&node_ms, &incident).ok_or("beyond 15 minutes")?;
    /// let oracle = roads.dijkstra_eta_s(&post, &incident).ok_or("no route")?;
    /// assert!((t - oracle).abs() < 0.01, "{t} {oracle}");
    /// // Within 10 seconds of the post, the incident is not reached.
    /// assert_eq!(roads.time_to(&roads.times_from(&[post], 10.0), &incident), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn time_to(&self, node_ms: &[u32], to: &Snap) -> Option<f64> {
        self.entries(to)
            .into_iter()
            .filter(|(n, _)| node_ms[*n] != u32::MAX)
            .map(|(n, w)| node_ms[n] as usize + w)
            .min()
            .map(|ms| ms as f64 / 1000.0 + to.off_road_m / ACCESS_MPS)
    }

    /// The same travel time by a plain Dijkstra over the uncontracted graph: the oracle the
    /// hierarchy is tested against. Seconds, including the walk to and from the road.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::roads::{Mode, RoadGraph};
    /// # use safegrid_geodata::{LonLat, haversine_m};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // The demo's extract of Longgang (ODbL), compiled in.
    /// # let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
    /// # let roads = RoadGraph::from_pbf(pbf, Mode::Drive)?;
    /// # // A police post and an incident in Longgang, 1.9 km apart in a straight line.
    /// # let (post_at, incident_at) = (LonLat::new(114.205, 22.69)?, LonLat::new(114.22, 22.70)?);
    /// # let post = roads.snap(post_at).ok_or("the post is off the network")?;
    /// # let incident = roads.snap(incident_at).ok_or("the incident is off the network")?;
    /// let oracle = roads.dijkstra_eta_s(&post, &incident).ok_or("no route")?;
    /// let route = roads.route(&mut roads.calculator(), &post, &incident).ok_or("no route")?;
    /// assert!((oracle - route.eta_s).abs() < 0.002);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn dijkstra_eta_s(&self, from: &Snap, to: &Snap) -> Option<f64> {
        let direct = self.same_segment_ms(from, to);
        let mut dist = vec![usize::MAX; self.nodes.len()];
        let mut heap = BinaryHeap::new();
        for (n, w) in self.exits(from) {
            if w < dist[n] {
                dist[n] = w;
                heap.push(Reverse((w, n)));
            }
        }
        while let Some(Reverse((d, n))) = heap.pop() {
            if d > dist[n] {
                continue;
            }
            for &(m, w) in &self.adjacency[n] {
                let nd = d + w as usize;
                if nd < dist[m as usize] {
                    dist[m as usize] = nd;
                    heap.push(Reverse((nd, m as usize)));
                }
            }
        }
        let via = self.entries(to).into_iter().filter(|(n, _)| dist[*n] != usize::MAX).map(|(n, w)| dist[n] + w).min();
        let ms = match (direct, via) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(ms as f64 / 1000.0 + Self::access_s(from, to))
    }
}

/// Which nodes belong to the largest strongly connected component (Kosaraju, iterative).
fn largest_scc(adjacency: &[Vec<(u32, u32)>]) -> Vec<bool> {
    let n = adjacency.len();
    let mut reverse: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (a, outs) in adjacency.iter().enumerate() {
        for &(b, _) in outs {
            reverse[b as usize].push(a as u32);
        }
    }
    // First pass: finishing order on the forward graph.
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![(start, 0usize)];
        while let Some((v, i)) = stack.last_mut() {
            if let Some(&(w, _)) = adjacency[*v].get(*i) {
                *i += 1;
                if !seen[w as usize] {
                    seen[w as usize] = true;
                    stack.push((w as usize, 0));
                }
            } else {
                order.push(*v);
                stack.pop();
            }
        }
    }
    // Second pass: components on the reverse graph, in reverse finishing order.
    let mut comp = vec![u32::MAX; n];
    let mut sizes: Vec<usize> = Vec::new();
    for &root in order.iter().rev() {
        if comp[root] != u32::MAX {
            continue;
        }
        let c = sizes.len() as u32;
        let mut size = 0;
        comp[root] = c;
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            size += 1;
            for &w in &reverse[v] {
                if comp[w as usize] == u32::MAX {
                    comp[w as usize] = c;
                    stack.push(w as usize);
                }
            }
        }
        sizes.push(size);
    }
    let best = sizes.iter().enumerate().max_by_key(|(_, s)| **s).map_or(u32::MAX, |(i, _)| i as u32);
    comp.into_iter().map(|c| c == best).collect()
}

/// Borrowing twin of [`Stored`] for serialising without copying the hierarchy.
#[derive(serde::Serialize)]
struct StoredRef<'a> {
    mode: Mode,
    nodes: Vec<(f64, f64)>,
    segments: &'a [Segment],
    frame: Frame,
    max_mps: f64,
    ch: &'a FastGraph,
}

/// Whether a way is usable in `mode`: (forward, backward, speed m/s).
fn usable(tags: &HashMap<&str, &str>, mode: Mode) -> Option<(bool, bool, f64)> {
    let highway = *tags.get("highway")?;
    let no = |k: &str| tags.get(k).is_some_and(|v| matches!(*v, "no" | "private"));
    match mode {
        Mode::Walk => {
            if !walkable(highway) || no("foot") || tags.get("area") == Some(&"yes") && highway != "pedestrian" {
                return None;
            }
            Some((true, true, ACCESS_MPS))
        }
        Mode::Drive => {
            let class_kmh = drive_speed_kmh(highway)?;
            if no("access") || no("motor_vehicle") || no("motorcar") || tags.get("area") == Some(&"yes") {
                return None;
            }
            let kmh = tags.get("maxspeed").and_then(|v| parse_maxspeed(v)).map_or(class_kmh, |m| m.min(class_kmh));
            let oneway = tags.get("oneway").copied();
            let implied =
                highway == "motorway" || tags.get("junction").is_some_and(|j| *j == "roundabout" || *j == "circular");
            let (fwd, bwd) = match oneway {
                Some("yes" | "true" | "1") => (true, false),
                Some("-1" | "reverse") => (false, true),
                Some("no" | "false" | "0") => (true, true),
                _ if implied => (true, false),
                _ => (true, true),
            };
            Some((fwd, bwd, kmh / 3.6))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's PBF written as OSM XML, as `osmium cat -f osm` would (nodes, then ways with
    /// their refs and escaped tags).
    fn demo_as_xml() -> String {
        use std::fmt::Write as _;
        let esc = |v: &str| v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
        let mut out =
            String::from("\u{feff}<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\" generator=\"test\">\n");
        osmpbf::ElementReader::new(std::io::Cursor::new(&pbf[..]))
            .for_each(|el| match el {
                osmpbf::Element::DenseNode(n) => {
                    let _ = writeln!(out, r#"  <node id="{}" lat="{}" lon="{}"/>"#, n.id(), n.lat(), n.lon());
                }
                osmpbf::Element::Node(n) => {
                    let _ = writeln!(out, r#"  <node id="{}" lat="{}" lon="{}"/>"#, n.id(), n.lat(), n.lon());
                }
                osmpbf::Element::Way(w) => {
                    let _ = writeln!(out, r#"  <way id="{}">"#, w.id());
                    for r in w.refs() {
                        let _ = writeln!(out, r#"    <nd ref="{r}"/>"#);
                    }
                    for (k, v) in w.tags() {
                        let _ = writeln!(out, r#"    <tag k="{}" v="{}"/>"#, esc(k), esc(v));
                    }
                    out.push_str("  </way>\n");
                }
                osmpbf::Element::Relation(_) => {}
            })
            .unwrap();
        out.push_str("</osm>\n");
        out
    }

    #[test]
    fn osm_xml_reads_to_the_same_network_as_the_pbf_it_was_written_from() {
        let pbf = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/longgang.osm.pbf"));
        let xml = demo_as_xml();
        assert!(is_osm_xml(xml.as_bytes()) && !is_osm_xml(pbf));
        let a = RoadGraph::from_pbf(pbf, Mode::Drive).unwrap();
        let b = RoadGraph::from_extract(xml.as_bytes(), Mode::Drive).unwrap();
        assert_eq!(a.node_count(), b.node_count());
        assert!(a.segments().eq(b.segments()), "the same segments, one-ways and times");
        let nodes = |g: &RoadGraph| (0..g.node_count() as u32).map(|i| g.node(i)).collect::<Vec<_>>();
        assert_eq!(nodes(&a), nodes(&b));
        // Broken XML is refused naming where it broke, not as a PBF "blob header".
        let cut = &xml[..xml.rfind("<nd").unwrap() + 6];
        // Cut inside a tag, or cleanly between two: either way an error, never a smaller network.
        let clean = &xml[..xml.rfind("  </way>").unwrap()];
        for cut in [cut, clean] {
            match RoadGraph::from_extract(cut.as_bytes(), Mode::Drive) {
                Err(RoadError::Xml(m)) => assert!(m.contains("at byte"), "{m}"),
                other => panic!("{:?}", other.map(|g| g.node_count())),
            }
        }
    }

    #[test]
    fn maxspeed_parses_kmh_and_mph_and_ignores_the_rest() {
        assert_eq!(parse_maxspeed("50"), Some(50.0));
        assert!((parse_maxspeed("30 mph").unwrap() - 48.28).abs() < 0.01);
        assert_eq!(parse_maxspeed("CN:urban"), None);
        assert_eq!(parse_maxspeed("signals"), None);
    }

    #[test]
    fn one_ways_and_roundabouts_are_one_way_for_cars_only() {
        let t = |pairs: &[(&'static str, &'static str)]| pairs.iter().copied().collect::<HashMap<_, _>>();
        assert_eq!(
            usable(&t(&[("highway", "primary"), ("oneway", "yes")]), Mode::Drive).map(|u| (u.0, u.1)),
            Some((true, false))
        );
        assert_eq!(
            usable(&t(&[("highway", "primary"), ("oneway", "-1")]), Mode::Drive).map(|u| (u.0, u.1)),
            Some((false, true))
        );
        assert_eq!(
            usable(&t(&[("highway", "tertiary"), ("junction", "roundabout")]), Mode::Drive).map(|u| (u.0, u.1)),
            Some((true, false))
        );
        assert_eq!(
            usable(&t(&[("highway", "primary"), ("oneway", "yes")]), Mode::Walk).map(|u| (u.0, u.1)),
            Some((true, true))
        );
        assert!(usable(&t(&[("highway", "footway")]), Mode::Drive).is_none());
        assert!(usable(&t(&[("highway", "residential"), ("access", "private")]), Mode::Drive).is_none());
        assert!(usable(&t(&[("highway", "motorway")]), Mode::Walk).is_none());
        // A posted limit above the class's urban speed is capped; a lower one is taken.
        assert!(
            (usable(&t(&[("highway", "primary"), ("maxspeed", "120")]), Mode::Drive).unwrap().2 - 50.0 / 3.6).abs()
                < 1e-9
        );
        assert!(
            (usable(&t(&[("highway", "primary"), ("maxspeed", "30")]), Mode::Drive).unwrap().2 - 30.0 / 3.6).abs()
                < 1e-9
        );
    }
}
