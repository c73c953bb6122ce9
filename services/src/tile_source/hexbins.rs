//! Incidents counted per H3 cell, the resolution chosen by zoom (the wall's heat map below z12).

use super::{BUFFER, BuiltLayer, EXTENT, TileRequest, TileSource};
use crate::layer::Layer;
use crate::live::ItemQuery;
use crate::service::Service;
use safegrid_geodata::{BBox, LonLat};
use safegrid_tiles::TileId;
use safegrid_tiles::mvt::{self, Feature, Geometry, Value};
use safegrid_tiles::shape::{clip_ring, snap_ring};

/// The `incidents_h3` layer.
#[derive(Debug)]
pub struct IncidentHexbins;

impl TileSource for IncidentHexbins {
    fn name(&self) -> &'static str {
        "incidents_h3"
    }

    fn fields(&self) -> serde_json::Value {
        serde_json::json!({"h3": "String", "count": "Number"})
    }

    fn version(&self, service: &Service, tile: TileId) -> String {
        let incidents = service.layer(Layer::Incidents);
        let v = if hexbins_within_neighbours(tile) { incidents.version_around(tile) } else { incidents.version() };
        v.to_string()
    }

    fn build(&self, service: &Service, req: &TileRequest<'_>) -> BuiltLayer {
        let layer = hexbin_layer(service, req);
        BuiltLayer { items: layer.features.len(), layer }
    }
}

/// The H3 resolution whose cells are some 20–60 pixels across at a zoom (at Shenzhen's latitude).
fn hexbin_resolution(z: u8) -> h3o::Resolution {
    use h3o::Resolution as R;
    match z {
        0..=5 => R::Three,
        6 => R::Four,
        7..=8 => R::Five,
        9 => R::Six,
        10..=11 => R::Seven,
        12 => R::Eight,
        13..=14 => R::Nine,
        _ => R::Ten,
    }
}

/// How far beyond a tile (degrees of longitude, of latitude) the incidents its hexbins count
/// may lie: a cell touching the tile lies within a few edge lengths of it.
fn hexbin_reach(tile: TileId) -> (f64, f64) {
    let b = tile.bounds();
    // Three mean edge lengths: cells vary in size, and the mean understates the large ones.
    let reach_deg = 3.0 * hexbin_resolution(tile.z).edge_length_m() / safegrid_geodata::distance::METRES_PER_DEGREE;
    (reach_deg / b.north.abs().max(b.south.abs()).min(85.0).to_radians().cos(), reach_deg)
}

/// Whether every incident a hexbin tile counts lies in the tile or its eight neighbours, so
/// that the incidents' change stamps there ([`crate::live::LayerState::version_around`]) cover it.
/// True wherever cells are smaller than tiles — everywhere but near the poles.
fn hexbins_within_neighbours(tile: TileId) -> bool {
    let b = tile.bounds();
    let (lon_reach, lat_reach) = hexbin_reach(tile);
    // A margin for the neighbours' slightly different heights in Mercator.
    lon_reach < (b.east - b.west) * 0.9 && lat_reach < (b.north - b.south) * 0.9
}

/// Incidents counted per H3 cell. Every cell that touches the tile gets all its incidents, not
/// only those inside the tile, so a cell shows the same count in every tile it spans.
fn hexbin_layer(service: &Service, req: &TileRequest<'_>) -> mvt::Layer {
    let TileRequest { tile, who, filters } = *req;
    let res = hexbin_resolution(tile.z);
    let b = tile.bounds();
    let (lon_reach, reach_deg) = hexbin_reach(tile);
    let bbox = LonLat::new((b.west - lon_reach).max(-180.0), (b.south - reach_deg).max(-90.0))
        .ok()
        .zip(LonLat::new((b.east + lon_reach).min(180.0), (b.north + reach_deg).min(90.0)).ok())
        .and_then(|(lo, hi)| BBox::new(lo, hi));
    let mut layer = mvt::Layer { name: "incidents_h3".into(), extent: EXTENT, features: Vec::new() };
    let Some(bbox) = bbox else { return layer };
    let counts = {
        let state = service.layer(Layer::Incidents);
        let q = ItemQuery { bbox: Some(bbox), ..filters.clone() };
        if who.covers(None) && q.is_index_only() {
            // Positions straight from the point index, as for clusters (`point_layer`).
            let mut points = Vec::new();
            state.for_each_position_in(&q, |_, lon, lat| points.extend(LonLat::new(lon, lat).ok()));
            safegrid_geodata::h3::counts_per_cell(points, res)
        } else {
            let items = state.matching(&q, |it| who.covers_item(it));
            safegrid_geodata::h3::counts_per_cell(items.iter().map(|(it, _)| it.pos), res)
        }
    };
    let mut cells: Vec<_> = counts.into_iter().collect();
    cells.sort_unstable_by_key(|(c, _)| u64::from(*c));
    let (lo, hi) = (-f64::from(BUFFER), f64::from(EXTENT + BUFFER));
    for (cell, count) in cells {
        let hex = safegrid_geodata::h3::cell_polygon(cell);
        let px: Vec<[f64; 2]> =
            hex.exterior().0[..hex.exterior().0.len() - 1].iter().map(|c| tile.to_pixels(c.x, c.y, EXTENT)).collect();
        let Some(ring) = snap_ring(&clip_ring(&px, lo, hi)) else { continue };
        layer.features.push(Feature {
            id: Some(u64::from(cell)),
            geometry: Geometry::Polygons(vec![vec![ring]]),
            properties: vec![
                ("h3".to_owned(), Value::String(cell.to_string())),
                ("count".to_owned(), Value::UInt(count)),
            ],
        });
    }
    layer
}
