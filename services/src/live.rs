//! The live, in-memory state every read is served from: the grid hierarchy with its locator,
//! and for each layer its items, a point index and a grid index.

use crate::layer::{Item, Layer};
use chrono::{DateTime, Utc};
use safegrid_geodata::point_index::Hit;
use safegrid_geodata::{BBox, GridCode, GridHierarchy, GridLocator, GridUnit, LonLat, PointIndex};
use safegrid_tiles::TileId;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The grid hierarchy and its locator, rebuilt together whenever grids change.
#[derive(Debug, Default)]
pub struct GridState {
    /// Units, sorted by code.
    pub hierarchy: GridHierarchy,
    /// Point → leaf unit.
    pub locator: Option<GridLocator>,
    /// Changes whenever the grid layer does (tile ETags).
    pub version: u64,
}

/// Versions of grid states and layers come from one counter, so no two states share one.
static VERSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_version() -> u64 {
    VERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl GridState {
    /// Builds the state for a consistent hierarchy.
    #[must_use]
    pub fn new(hierarchy: GridHierarchy) -> Self {
        let locator = (!hierarchy.is_empty()).then(|| GridLocator::new(&hierarchy));
        Self { hierarchy, locator, version: next_version() }
    }

    /// The code of the leaf grid holding `p`, if any.
    #[must_use]
    pub fn grid_of(&self, p: LonLat) -> Option<GridCode> {
        let i = self.locator.as_ref()?.containing_unit(p)?;
        Some(self.hierarchy.unit(i).code.clone())
    }

    /// A unit by code.
    #[must_use]
    pub fn unit(&self, code: &GridCode) -> Option<&GridUnit> {
        self.hierarchy.get(code)
    }
}

/// Filters of an item query; all given filters must hold.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// Inside this box.
    pub bbox: Option<BBox>,
    /// Within this many metres of this point.
    pub near: Option<(LonLat, f64)>,
    /// In this unit or beneath it.
    pub grid: Option<GridCode>,
    /// Filter time at or after.
    pub since: Option<DateTime<Utc>>,
    /// Filter time before.
    pub until: Option<DateTime<Utc>>,
    /// `type` / `kind` / `category`.
    pub kind: Option<String>,
    /// Any of these statuses (`status=open,dispatched`).
    pub status: Option<Vec<String>>,
    /// Incident priority.
    pub priority: Option<u32>,
    /// Responder capability tag.
    pub capability: Option<String>,
}

impl ItemQuery {
    /// The status filter as a mask of a layer's status tags (bit i: [`Layer::statuses`]`[i]`);
    /// `None` without a filter. A status the layer does not have adds no bit, so a mask of 0
    /// matches nothing.
    #[must_use]
    pub fn status_mask(&self, layer: crate::layer::Layer) -> Option<u32> {
        let list = self.status.as_ref()?;
        Some(
            layer
                .statuses()
                .iter()
                .enumerate()
                .filter(|(_, s)| list.iter().any(|w| w == *s))
                .fold(0, |m, (i, _)| m | (1 << i)),
        )
    }

    /// Whether no filter but `bbox`, `status` and the time window is set: those the point index
    /// answers (see [`LayerState::for_each_position_in`]).
    #[must_use]
    pub fn is_index_only(&self) -> bool {
        let Self { since: _, until: _, kind, status: _, priority, capability, bbox: _, grid, near } = self;
        kind.is_none() && priority.is_none() && capability.is_none() && grid.is_none() && near.is_none()
    }

    /// Whether an item passes every filter but the radius, which the candidate search applies.
    #[must_use]
    pub fn matches(&self, it: &Item) -> bool {
        if let Some(g) = &self.grid
            && !it.grid.as_ref().is_some_and(|ig| g.covers(ig))
        {
            return false;
        }
        let t = it.filter_time();
        self.since.is_none_or(|s| t >= s)
            && self.until.is_none_or(|u| t < u)
            && self.kind.as_deref().is_none_or(|k| it.props.kind() == k)
            && self.status.as_ref().is_none_or(|list| list.iter().any(|s| it.props.status() == s))
            && self.priority.is_none_or(|p| it.props.priority() == Some(p))
            && self.capability.as_deref().is_none_or(|c| it.props.capabilities().iter().any(|x| x == c))
            && self.bbox.is_none_or(|b| b.contains(it.pos))
    }
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// Items in id order, with the distance from the query point for radius queries.
    pub items: Vec<(&'a Item, Option<f64>)>,
    /// Items matched in all pages.
    pub matched: usize,
    /// The cursor for the next page, if there is one.
    pub next_cursor: Option<i64>,
}

/// Files an item's id under its leaf grid code ("" for outside every grid), allocating the
/// code's key only the first time it is seen.
fn add_to_grid_index(by_grid: &mut BTreeMap<String, HashSet<i64>>, it: &Item) {
    let key = it.grid.as_ref().map_or("", GridCode::as_str);
    match by_grid.get_mut(key) {
        Some(ids) => {
            ids.insert(it.id);
        }
        None => {
            by_grid.insert(key.to_owned(), HashSet::from([it.id]));
        }
    }
}

/// New items grouped by id and by grid, ready for [`LayerState::merge`]: built without the
/// layer's lock, beside the store's commit. The ids must be new to the layer.
#[derive(Debug, Default)]
pub struct Batch {
    items: HashMap<i64, Item>,
    by_grid: BTreeMap<String, HashSet<i64>>,
}

impl Batch {
    /// Groups the items.
    #[must_use]
    pub fn new(items: Vec<Item>) -> Self {
        let mut by_grid: BTreeMap<String, HashSet<i64>> = BTreeMap::new();
        let mut map = HashMap::with_capacity(items.len());
        for it in items {
            add_to_grid_index(&mut by_grid, &it);
            map.insert(it.id, it);
        }
        Self { items: map, by_grid }
    }
}

/// Where a layer last changed, and when: for each map tile from z0 to [`Self::FINEST`] that
/// ever held a written point, the version of the last write there. A tile's content depends only
/// on the points inside its buffered bounds, which lie in the tile or its eight neighbours; so
/// the largest stamp among those nine cells changes whenever the tile's content may have —
/// and stays put when the city changes elsewhere. The tile cache keys on it instead of the
/// layer's version: a write then invalidates the few tiles around it, not every tile of the
/// layer (which under a steady stream of writes left the cache empty and the wall generating
/// every tile; `tests/peer/wall_tiles_load.sh`).
#[derive(Debug, Default)]
struct ChangeStamps {
    /// Anything older is covered: set by writes too large to stamp point by point.
    floor: u64,
    /// (zoom, x, y) → version of the last write inside that tile.
    cells: HashMap<(u8, u32, u32), u64>,
    /// (zoom, x, y) → version of the last write inside that tile's buffered bounds (with a
    /// safety factor), from [`Self::PRECISE_FROM`] on: what point tiles key on.
    near: HashMap<(u8, u32, u32), u64>,
}

impl ChangeStamps {
    /// Zooms above this share its stamps (a z16 tile looks at its z14 ancestor).
    const FINEST: u8 = 14;
    /// From this zoom on, a write stamps exactly the tiles whose buffered bounds hold it
    /// (usually one), so a point tile needs only its own stamp. Below, a tile spans enough
    /// latitude that Mercator's stretch makes the margin uncertain, and the 3 × 3 rule applies.
    const PRECISE_FROM: u8 = 7;
    /// The buffered bounds reach 64/4096 of a tile beyond it; stamps use twice that.
    const MARGIN: f64 = 2.0 * 64.0 / 4096.0;

    fn touch(&mut self, p: LonLat, version: u64) {
        let stamp = |map: &mut HashMap<(u8, u32, u32), u64>, key| {
            let v: &mut u64 = map.entry(key).or_default();
            *v = (*v).max(version);
        };
        // The tile holding p at each coarser zoom is its finest tile's ancestor.
        let t = TileId::containing(p.lon(), p.lat(), Self::FINEST);
        for z in 0..=Self::FINEST {
            let shift = Self::FINEST - z;
            stamp(&mut self.cells, (z, t.x >> shift, t.y >> shift));
        }
        // Fractional tile coordinates at the finest zoom; halved for each zoom above.
        let n = f64::from(1u32 << Self::FINEST);
        let lat = p.lat().clamp(-safegrid_tiles::MAX_LAT, safegrid_tiles::MAX_LAT).to_radians();
        let fx = (p.lon() + 180.0) / 360.0 * n;
        let fy = (1.0 - lat.tan().asinh() / std::f64::consts::PI) / 2.0 * n;
        for z in Self::PRECISE_FROM..=Self::FINEST {
            let scale = f64::from(1u32 << (Self::FINEST - z));
            let limit = (1i64 << z) - 1;
            let span = |f: f64| {
                let f = f / scale;
                let i = f.floor();
                let frac = f - i;
                let i = i as i64;
                let lo = if frac < Self::MARGIN { i - 1 } else { i };
                let hi = if frac > 1.0 - Self::MARGIN { i + 1 } else { i };
                lo.max(0)..=hi.min(limit)
            };
            for x in span(fx) {
                for y in span(fy) {
                    stamp(&mut self.near, (z, x as u32, y as u32));
                }
            }
        }
    }

    /// The latest write that could have changed a point tile (never below the floor).
    fn at(&self, tile: TileId) -> u64 {
        if tile.z < Self::PRECISE_FROM {
            return self.around(tile);
        }
        let z = tile.z.min(Self::FINEST);
        let shift = tile.z - z;
        self.near.get(&(z, tile.x >> shift, tile.y >> shift)).map_or(self.floor, |v| self.floor.max(*v))
    }

    /// The latest write inside the tile or its eight neighbours (never below the floor): for
    /// tiles whose content reaches further than a point tile's buffer, up to a tile (hexbins).
    fn around(&self, tile: TileId) -> u64 {
        let z = tile.z.min(Self::FINEST);
        let shift = tile.z - z;
        let (x, y) = (i64::from(tile.x >> shift), i64::from(tile.y >> shift));
        let mut latest = self.floor;
        for dx in -1..=1 {
            for dy in -1..=1 {
                let (Ok(cx), Ok(cy)) = (u32::try_from(x + dx), u32::try_from(y + dy)) else { continue };
                if let Some(v) = self.cells.get(&(z, cx, cy)) {
                    latest = latest.max(*v);
                }
            }
        }
        latest
    }
}

/// One layer's live state.
#[derive(Debug)]
pub struct LayerState {
    layer: Layer,
    items: HashMap<i64, Item>,
    index: PointIndex,
    /// Ids by leaf grid code ("" for outside every grid); sorted by code so that a unit's code
    /// prefix selects its whole subtree.
    by_grid: BTreeMap<String, HashSet<i64>>,
    /// Changes with every write (the event feed; hexbin tiles).
    version: u64,
    /// Where writes happened, for tiles (see [`Self::version_at`]).
    stamps: ChangeStamps,
    /// Items by the id of the device they carry (responders, key personnel; empty elsewhere).
    by_device: HashMap<String, i64>,
}

/// The tracker a responder carries, or the monitoring device a key person wears.
pub(crate) fn device_of(it: &Item) -> Option<&str> {
    match &it.props {
        crate::layer::Props::Responder(r) => r.device_id.as_deref(),
        crate::layer::Props::KeyPerson(k) => k.device_id.as_deref(),
        _ => None,
    }
}

impl LayerState {
    /// Builds the state from stored items.
    #[must_use]
    pub fn new(layer: Layer, items: Vec<Item>) -> Self {
        let index = PointIndex::bulk_load(items.iter().map(|i| (i.id as u64, i.pos, i.index_tag())));
        let mut state = Self {
            layer,
            items: HashMap::with_capacity(items.len()),
            index,
            by_grid: BTreeMap::new(),
            version: next_version(),
            stamps: ChangeStamps::default(),
            by_device: HashMap::new(),
        };
        state.stamps.floor = state.version;
        for it in items {
            state.index_grid(&it);
            state.index_device(&it);
            state.items.insert(it.id, it);
        }
        state
    }

    /// The layer.
    #[must_use]
    pub fn layer(&self) -> Layer {
        self.layer
    }

    /// The data version: different after any write.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The version of the last write that could change the tile's points (those within its
    /// buffered bounds): unchanged as long as nothing the tile shows has changed.
    #[must_use]
    pub fn version_at(&self, tile: TileId) -> u64 {
        self.stamps.at(tile)
    }

    /// The version of the last write in the tile or the eight around it: for tile content
    /// that reaches further than a point tile's buffer, up to one tile (hexbins).
    #[must_use]
    pub fn version_around(&self, tile: TileId) -> u64 {
        self.stamps.around(tile)
    }

    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no items.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// An item by id.
    #[must_use]
    pub fn get(&self, id: i64) -> Option<&Item> {
        self.items.get(&id)
    }

    /// Every item, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// Inserts or replaces an item.
    pub fn put(&mut self, item: Item) {
        self.version = next_version();
        // Both where it was and where it is now.
        if let Some(old) = self.items.get(&item.id) {
            self.stamps.touch(old.pos, self.version);
        }
        self.stamps.touch(item.pos, self.version);
        self.unindex_grid(item.id);
        self.unindex_device(item.id);
        self.index.upsert(item.id as u64, item.pos, item.index_tag());
        self.index_grid(&item);
        self.index_device(&item);
        self.items.insert(item.id, item);
    }

    /// Moves an item (a unit's new live fix): position and grid only, nothing cloned.
    /// False when there is no such item.
    pub fn relocate(&mut self, id: i64, pos: LonLat, grid: Option<GridCode>) -> bool {
        let Some(old) = self.items.get(&id) else { return false };
        let old_pos = old.pos;
        let tag = old.index_tag();
        self.version = next_version();
        self.stamps.touch(old_pos, self.version);
        self.stamps.touch(pos, self.version);
        self.unindex_grid(id);
        self.index.upsert(id as u64, pos, tag);
        if let Some(it) = self.items.get_mut(&id) {
            it.pos = pos;
            it.grid = grid;
        }
        if let Some(it) = self.items.get(&id) {
            add_to_grid_index(&mut self.by_grid, it);
        }
        true
    }

    /// The responder that carries tracker `device`.
    #[must_use]
    pub fn unit_of_device(&self, device: &str) -> Option<i64> {
        self.by_device.get(device).copied()
    }

    fn index_device(&mut self, it: &Item) {
        if let Some(d) = device_of(it) {
            self.by_device.insert(d.to_owned(), it.id);
        }
    }

    fn unindex_device(&mut self, id: i64) {
        let Some(d) = self.items.get(&id).and_then(device_of) else { return };
        if self.by_device.get(d) == Some(&id) {
            self.by_device.remove(d);
        }
    }

    /// Whether a batch is large enough next to the layer that rebuilding the point index in one
    /// bulk load beats inserting point by point.
    #[must_use]
    pub fn is_large_batch(&self, batch: usize) -> bool {
        batch >= 1_000 && batch >= self.items.len() / 4
    }

    /// The points of every item plus `batch`, for a point index built off the lock.
    #[must_use]
    pub fn points_with(&self, batch: &[Item]) -> Vec<(u64, LonLat, u32)> {
        self.items.values().chain(batch).map(|i| (i.id as u64, i.pos, i.index_tag())).collect()
    }

    /// Inserts many items point by point (a batch too small for [`Self::merge`] to pay).
    pub fn put_many(&mut self, items: Vec<Item>) {
        self.version = next_version();
        for it in items {
            self.put(it);
        }
    }

    /// Merges a large batch of new items, grouped off the lock by [`Batch::new`], with a point
    /// index over every item after the batch (see [`Self::points_with`]). The smaller side is
    /// moved into the larger, so the lock is held for the existing items' worth of work when a
    /// batch dwarfs the layer (a million-row import into a city of 150,000).
    pub fn merge(&mut self, batch: Batch, index: PointIndex) {
        self.version = next_version();
        // A batch this large touches most of the map anyway.
        self.stamps.floor = self.version;
        let Batch { mut items, by_grid } = batch;
        for it in items.values() {
            if let Some(d) = device_of(it) {
                self.by_device.insert(d.to_owned(), it.id);
            }
        }
        if items.len() > self.items.len() {
            std::mem::swap(&mut self.items, &mut items);
        }
        self.items.extend(items);
        for (code, mut ids) in by_grid {
            let entry = self.by_grid.entry(code).or_default();
            if ids.len() > entry.len() {
                std::mem::swap(entry, &mut ids);
            }
            entry.extend(ids);
        }
        self.index = index;
    }

    /// Removes an item.
    pub fn remove(&mut self, id: i64) -> Option<Item> {
        self.version = next_version();
        self.unindex_grid(id);
        self.unindex_device(id);
        let old = self.items.remove(&id)?;
        self.stamps.touch(old.pos, self.version);
        self.index.remove(id as u64);
        Some(old)
    }

    fn index_grid(&mut self, it: &Item) {
        add_to_grid_index(&mut self.by_grid, it);
    }

    fn unindex_grid(&mut self, id: i64) {
        let Some(old) = self.items.get(&id) else { return };
        let key = old.grid.as_ref().map_or("", GridCode::as_str);
        if let Some(ids) = self.by_grid.get_mut(key) {
            ids.remove(&id);
        }
    }

    /// Calls `f(id, lon, lat)` for every item inside `q`'s box that passes its status and time
    /// window (`q` must be [`ItemQuery::is_index_only`]), straight from the point index: the
    /// tags hold status and hour, so only items in the window's first or last hour are read.
    /// A city-wide tile's clusters then cost a scan of packed positions rather than a hash
    /// lookup per item.
    pub fn for_each_position_in(&self, q: &ItemQuery, mut f: impl FnMut(i64, f64, f64)) {
        use crate::layer::tag;
        debug_assert!(q.is_index_only());
        let Some(b) = q.bbox else { return };
        let mask = q.status_mask(self.layer);
        if mask == Some(0) {
            return; // only statuses the layer does not have: nothing matches
        }
        let (since, until) = (q.since.map(tag::hour_of), q.until.map(tag::hour_of));
        self.index.for_each_in_bbox(b, |id, t, xyz| {
            if mask.is_some_and(|m| m & (1 << tag::status(t)) == 0) {
                return;
            }
            let hour = tag::hour(t);
            if since.is_some_and(|s| hour < s) || until.is_some_and(|u| hour > u) {
                return;
            }
            // In a boundary hour (or clamped to the tags' range): the item decides.
            let exact = since.is_some_and(|s| hour == s) || until.is_some_and(|u| hour == u);
            if exact && !self.items.get(&(id as i64)).is_some_and(|it| q.matches(it)) {
                return;
            }
            let (lon, lat) = safegrid_geodata::point_index::unit_to_lonlat(xyz);
            f(id as i64, lon, lat);
        });
    }

    /// Every item passing `q` and `visible`, in no particular order, with its distance when `q`
    /// asks for a radius. Tiles use this directly: a clustered tile needs no order.
    pub fn matching(&self, q: &ItemQuery, visible: impl Fn(&Item) -> bool) -> Vec<(&Item, Option<f64>)> {
        let keep = |it: &Item| q.matches(it) && visible(it);
        if let Some((p, r)) = q.near {
            self.index
                .within_radius(p, r)
                .into_iter()
                .filter_map(|h| self.items.get(&(h.id as i64)).filter(|it| keep(it)).map(|it| (it, Some(h.distance_m))))
                .collect()
        } else if let Some(b) = q.bbox {
            self.index
                .in_bbox(b)
                .into_iter()
                .filter_map(|h| self.items.get(&(h.id as i64)).filter(|it| keep(it)))
                .map(|it| (it, None))
                .collect()
        } else if let Some(g) = &q.grid {
            // Codes are digits, and ':' sorts right after '9': the range holds every code with
            // this prefix.
            let (lo, hi) = (g.as_str().to_owned(), format!("{}:", g.as_str()));
            self.by_grid
                .range(lo..hi)
                .flat_map(|(_, ids)| ids.iter())
                .filter_map(|id| self.items.get(id).filter(|it| keep(it)))
                .map(|it| (it, None))
                .collect()
        } else {
            self.items.values().filter(|it| keep(it)).map(|it| (it, None)).collect()
        }
    }

    /// Items passing `q` and `visible`, a page of at most `limit` after `cursor`, in id order.
    pub fn query(&self, q: &ItemQuery, visible: impl Fn(&Item) -> bool, limit: usize, cursor: Option<i64>) -> Page<'_> {
        let mut hits = self.matching(q, visible);
        hits.sort_unstable_by_key(|(it, _)| it.id);
        let matched = hits.len();
        let start = cursor.map_or(0, |c| hits.partition_point(|(it, _)| it.id <= c));
        let end = (start + limit).min(hits.len());
        let next_cursor = (end < hits.len() && end > start).then(|| hits[end - 1].0.id);
        Page { items: hits[start..end].to_vec(), matched, next_cursor }
    }

    /// The `k` nearest items passing `q` and `visible`, nearest first, with their distance.
    pub fn nearest(&self, p: LonLat, k: usize, q: &ItemQuery, visible: impl Fn(&Item) -> bool) -> Vec<(&Item, f64)> {
        // The status filter is answered from the index's tag; the rest needs the item.
        let mask = q.status_mask(self.layer);
        if mask == Some(0) {
            return Vec::new(); // a status this layer never has matches nothing
        }
        let hits: Vec<Hit> = self.index.nearest(p, k, |id, tag| {
            mask.is_none_or(|m| m & (1 << crate::layer::tag::status(tag)) != 0)
                && self.items.get(&(id as i64)).is_some_and(|it| q.matches(it) && visible(it))
        });
        hits.into_iter().filter_map(|h| self.items.get(&(h.id as i64)).map(|it| (it, h.distance_m))).collect()
    }

    /// Approximate heap bytes of the point index (for the memory figure in `/metrics`).
    #[must_use]
    pub fn index_bytes(&self) -> usize {
        self.index.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Props;
    use serde_json::json;

    fn item(id: i64, lon: f64, status: &str) -> Item {
        let props = Props::parse(
            Layer::Incidents,
            json!({"type": "theft", "priority": 2, "status": status, "reported_at": "2026-11-20T08:00:00Z"}),
        )
        .unwrap();
        let t = Utc::now();
        Item { id, pos: LonLat::new(lon, 22.5).unwrap(), grid: None, props, created_at: t, updated_at: t }
    }

    fn grid_item(id: i64, lon: f64, lat: f64, grid: Option<&str>, status: &str) -> Item {
        let mut it = item(id, lon, status);
        it.pos = LonLat::new(lon, lat).unwrap();
        it.grid = grid.map(|g| GridCode::parse(g).unwrap());
        it
    }

    proptest::proptest! {
        /// The layer's query (box, radius and grid indexes, filters, paging) equals a linear scan.
        #[test]
        fn queries_equal_a_linear_scan(
            pts in proptest::collection::vec((113.9f64..114.2, 22.4f64..22.7, 0usize..4, proptest::bool::ANY), 0..200),
            bbox in (113.9f64..114.2, 22.4f64..22.7, 0.0f64..0.2, 0.0f64..0.2),
            radius in 10.0f64..20_000.0,
            grid_pick in 0usize..4,
            limit in 1usize..50,
        ) {
            let grids = [None, Some("440304001"), Some("440304002"), Some("440303001")];
            let items: Vec<Item> = pts
                .iter()
                .enumerate()
                .map(|(i, &(x, y, g, open))| grid_item(i as i64 + 1, x, y, grids[g], if open { "open" } else { "closed" }))
                .collect();
            let state = LayerState::new(Layer::Incidents, items.clone());
            let centre = LonLat::new(bbox.0, bbox.1).unwrap();
            let b = BBox::new(centre, LonLat::new(bbox.0 + bbox.2, bbox.1 + bbox.3).unwrap()).unwrap();
            let prefix = ["440304", "440304001", "440303", "440304002"][grid_pick];
            let queries = [
                ItemQuery { bbox: Some(b), ..ItemQuery::default() },
                ItemQuery { near: Some((centre, radius)), status: Some(vec!["open".into()]), ..ItemQuery::default() },
                ItemQuery { grid: Some(GridCode::parse(prefix).unwrap()), ..ItemQuery::default() },
                ItemQuery { grid: Some(GridCode::parse(prefix).unwrap()), bbox: Some(b), ..ItemQuery::default() },
            ];
            for q in &queries {
                let want: Vec<i64> = items
                    .iter()
                    .filter(|it| q.matches(it))
                    .filter(|it| q.near.is_none_or(|(c, r)| safegrid_geodata::haversine_m(c, it.pos) <= r))
                    .map(|it| it.id)
                    .collect();
                // Page through and collect.
                let mut got = Vec::new();
                let mut cursor = None;
                loop {
                    let page = state.query(q, |_| true, limit, cursor);
                    proptest::prop_assert_eq!(page.matched, want.len());
                    got.extend(page.items.iter().map(|(it, _)| it.id));
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                proptest::prop_assert_eq!(&got, &want);
            }
        }
    }

    proptest::proptest! {
        /// Whenever the points inside a tile's buffered bounds change (by a put, a move or a
        /// removal), its version changes; the oracle is a scan of the items before and after.
        #[test]
        fn a_tile_version_changes_whenever_what_it_shows_does(
            writes in proptest::collection::vec((0i64..40, 113.95f64..114.05, 22.45f64..22.55, 0u8..3), 1..60),
            z in 3u8..18,
        ) {
            let mut state = LayerState::new(Layer::Incidents, Vec::new());
            // Every tile over the area at zoom z.
            let (a, b) = (TileId::containing(113.95, 22.55, z), TileId::containing(114.05, 22.45, z));
            let tiles: Vec<TileId> = (a.x..=b.x).flat_map(|x| (a.y..=b.y).map(move |y| TileId::new(z, x, y).unwrap())).collect();
            let shown = |s: &LayerState, t: TileId| {
                let bb = t.bounds();
                let (mx, my) = ((bb.east - bb.west) / 64.0, (bb.north - bb.south) / 64.0);
                let mut v: Vec<(i64, u64, u64)> = s
                    .iter()
                    .filter(|i| {
                        let (x, y) = (i.pos.lon(), i.pos.lat());
                        x >= bb.west - mx && x <= bb.east + mx && y >= bb.south - my && y <= bb.north + my
                    })
                    .map(|i| (i.id, i.pos.lon().to_bits(), i.pos.lat().to_bits()))
                    .collect();
                v.sort_unstable();
                v
            };
            for (id, lon, lat, op) in writes {
                let before: Vec<_> = tiles.iter().map(|t| (shown(&state, *t), state.version_at(*t))).collect();
                match op {
                    0 | 1 => state.put(grid_item(id, lon, lat, None, "open")),
                    _ => { state.remove(id); }
                }
                for (t, (items, version)) in tiles.iter().zip(before) {
                    if shown(&state, *t) != items {
                        proptest::prop_assert_ne!(state.version_at(*t), version, "tile {} changed", t);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// The index-only path (status and hour in the tag) finds exactly the items the full
        /// filter does, for any time window, including edges inside an hour and times before
        /// the tags' epoch, and for any list of statuses (some the layer does not have).
        #[test]
        fn positions_from_the_index_match_the_full_filter(
            pts in proptest::collection::vec((113.9f64..114.2, 22.4f64..22.7, 0usize..3, -400i64..400), 0..150),
            bbox in (113.9f64..114.2, 22.4f64..22.7, 0.0f64..0.3, 0.0f64..0.3),
            since in proptest::option::of(-400i64..400),
            span in proptest::option::of(0i64..500),
            status in proptest::option::of(proptest::collection::vec(0usize..4, 1..3)),
        ) {
            // Minutes around 2026-11-20 08:00, and a few years before 2020 for the clamp.
            let base = DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").unwrap().with_timezone(&Utc);
            let at = |m: i64| if m < -350 { base - chrono::Duration::days(3_000) } else { base + chrono::Duration::minutes(m * 7) };
            let statuses = ["open", "closed", "dispatched", "nonsense"];
            let items: Vec<Item> = pts
                .iter()
                .enumerate()
                .map(|(i, &(x, y, st, m))| {
                    let status = ["open", "closed", "dispatched"][st];
                    let mut it = grid_item(i as i64 + 1, x, y, None, status);
                    let props = json!({"type": "theft", "priority": 2, "status": status, "reported_at": at(m).to_rfc3339()});
                    it.props = Props::parse(Layer::Incidents, props).unwrap();
                    it
                })
                .collect();
            let state = LayerState::new(Layer::Incidents, items.clone());
            let b = BBox::new(LonLat::new(bbox.0, bbox.1).unwrap(), LonLat::new(bbox.0 + bbox.2, bbox.1 + bbox.3).unwrap()).unwrap();
            let q = ItemQuery {
                bbox: Some(b),
                since: since.map(at),
                until: since.zip(span).map(|(s, d)| at(s + d)),
                status: status.map(|list| list.iter().map(|&s| statuses[s].to_owned()).collect()),
                ..ItemQuery::default()
            };
            proptest::prop_assert!(q.is_index_only());
            let mut got = Vec::new();
            state.for_each_position_in(&q, |id, _, _| got.push(id));
            got.sort_unstable();
            let want: Vec<i64> = items.iter().filter(|it| q.matches(it)).map(|it| it.id).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_write_leaves_the_versions_of_distant_tiles_alone() {
        let mut state = LayerState::new(Layer::Incidents, vec![item(1, 114.0, "open")]);
        let far = TileId::containing(114.3, 22.7, 14);
        let near = TileId::containing(114.0, 22.5, 14);
        let (far_before, near_before) = (state.version_at(far), state.version_at(near));
        state.put(item(2, 114.0, "open"));
        assert_eq!(state.version_at(far), far_before);
        assert_ne!(state.version_at(near), near_before);
        // A whole-layer change (a large merged batch) reaches every tile.
        let batch: Vec<Item> = (3..2_000).map(|i| item(i, 114.1, "open")).collect();
        let index = PointIndex::bulk_load(state.points_with(&batch));
        state.merge(Batch::new(batch), index);
        assert_ne!(state.version_at(far), far_before);
    }

    #[test]
    fn a_large_batch_rebuilds_the_index_and_answers_like_single_puts() {
        let start = || LayerState::new(Layer::Incidents, vec![item(1, 114.0, "open")]);
        let (mut one_by_one, mut batched, mut merged) = (start(), start(), start());
        let batch: Vec<Item> = (2..3_000)
            .map(|i| {
                let status = if i % 3 == 0 { "closed" } else { "open" };
                grid_item(i, 114.0 + i as f64 * 1e-4, 22.5, (i % 2 == 0).then_some("440304001"), status)
            })
            .collect();
        for it in batch.clone() {
            one_by_one.put(it);
        }
        batched.put_many(batch.clone());
        assert!(merged.is_large_batch(batch.len()));
        let index = PointIndex::bulk_load(merged.points_with(&batch));
        merged.merge(Batch::new(batch), index);
        let q = ItemQuery { status: Some(vec!["open".into()]), ..ItemQuery::default() };
        let p = LonLat::new(114.15, 22.5).unwrap();
        let ids = |s: &LayerState| s.nearest(p, 7, &q, |_| true).iter().map(|(i, _)| i.id).collect::<Vec<_>>();
        assert_eq!(ids(&batched), ids(&one_by_one));
        assert_eq!(ids(&merged), ids(&one_by_one));
        assert_eq!((batched.len(), merged.len()), (2_999, 2_999));
        // Grid and status filters see the merged items too.
        let in_grid = |s: &LayerState| {
            let q = ItemQuery { grid: Some(GridCode::parse("440304001").unwrap()), ..ItemQuery::default() };
            s.query(&q, |_| true, 10_000, None).matched
        };
        assert_eq!(in_grid(&merged), in_grid(&one_by_one));
        assert_eq!(in_grid(&batched), in_grid(&one_by_one));
        // Removing and moving still work on the rebuilt index.
        let first = ids(&merged)[0];
        merged.remove(first);
        assert!(!ids(&merged).contains(&first));
        merged.put(item(first, 114.15, "open"));
        assert_eq!(ids(&merged)[0], first);
    }
}
