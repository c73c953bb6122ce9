//! Vector-tile layers built from the live state: the core behind `GET /tiles/…`, with no HTTP
//! in it (martin's split: the sources here, the server — parsing, cache keys, ETags, gzip,
//! audit rows, load bounds — in `api::tiles`).
//!
//! Each layer a tile can hold is a [`TileSource`]: the grid outlines ([`grids`]), incidents
//! counted per H3 cell ([`hexbins`]), and the five point layers ([`points`]). A source says
//! what its bytes depend on ([`TileSource::version`]), whether they differ by caller, whether
//! they show people whose every read is audited, and builds one tile's layer for one caller.
//! Tiles are built from the in-memory indexes, never from the store, so a write is in the very
//! next tile.

pub mod grids;
pub mod hexbins;
pub mod points;

use crate::access::Principal;
use crate::layer::Layer;
use crate::live::ItemQuery;
use crate::service::Service;
use safegrid_geodata::{BBox, LonLat};
use safegrid_tiles::TileId;
use safegrid_tiles::mvt;

/// Tile pixels a side.
pub const EXTENT: u32 = 4096;
/// Pixels drawn beyond the tile edge, so that lines and labels meet across tiles.
pub const BUFFER: u32 = 64;

/// One tile asked for by one caller, with the list filters the point layers take.
#[derive(Debug, Clone, Copy)]
pub struct TileRequest<'a> {
    /// Which tile.
    pub tile: TileId,
    /// Who asks: a scoped caller sees only items in its grids.
    pub who: &'a Principal,
    /// `since`, `until`, `type`, `status`, … of the request.
    pub filters: &'a ItemQuery,
}

/// One tile's layer, and how many items it shows (clusters count their members) — the count an
/// audited layer's row records.
#[derive(Debug)]
pub struct BuiltLayer {
    /// The layer, ready to encode.
    pub layer: mvt::Layer,
    /// Items shown.
    pub items: usize,
}

/// A layer of vector tiles.
pub trait TileSource: Send + Sync + std::fmt::Debug {
    /// Its name in tile paths, in the tile and in TileJSON.
    fn name(&self) -> &'static str;
    /// The TileJSON `fields` of its features.
    fn fields(&self) -> serde_json::Value;
    /// What the layer's bytes in `tile` depend on, as text: equal versions, equal bytes (for
    /// the same caller and filters).
    fn version(&self, service: &Service, tile: TileId) -> String;
    /// Whether every caller gets the same bytes (its cache key leaves the caller out).
    fn same_for_everyone(&self) -> bool {
        false
    }
    /// The layer whose every read is audited, if it shows one: such a layer is never cached
    /// and never answered with 304.
    fn audited(&self) -> Option<Layer> {
        None
    }
    /// Builds the layer of one tile for one caller.
    fn build(&self, service: &Service, req: &TileRequest<'_>) -> BuiltLayer;
}

static GRIDS: grids::Grids = grids::Grids;
static HEXBINS: hexbins::IncidentHexbins = hexbins::IncidentHexbins;
static POINTS: [points::Points; 5] = [
    points::Points(Layer::Incidents),
    points::Points(Layer::RentalHousing),
    points::Points(Layer::Posts),
    points::Points(Layer::Responders),
    points::Points(Layer::KeyPersonnel),
];

/// Every source, in the order the wall stacks them.
pub fn all() -> impl Iterator<Item = &'static dyn TileSource> {
    [&GRIDS as &dyn TileSource, &HEXBINS].into_iter().chain(POINTS.iter().map(|p| p as &dyn TileSource))
}

/// The source of that name.
#[must_use]
pub fn named(name: &str) -> Option<&'static dyn TileSource> {
    all().find(|s| s.name() == name)
}

/// The tile's bounds widened by the buffer, as a lon/lat box.
pub(crate) fn buffered_bbox(tile: TileId) -> Option<BBox> {
    let b = tile.bounds();
    let (dx, dy) = (
        (b.east - b.west) * f64::from(BUFFER) / f64::from(EXTENT),
        (b.north - b.south) * f64::from(BUFFER) / f64::from(EXTENT),
    );
    let min = LonLat::new((b.west - dx).max(-180.0), (b.south - dy).max(-90.0)).ok()?;
    let max = LonLat::new((b.east + dx).min(180.0), (b.north + dy).min(90.0)).ok()?;
    BBox::new(min, max)
}
