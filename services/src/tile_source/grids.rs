//! The grid layer: district (and street) outlines below zoom [`GRIDS_FROM_ZOOM`], the grids
//! themselves from it, clipped to the tile and simplified to half a pixel.

use super::{BUFFER, BuiltLayer, EXTENT, TileRequest, TileSource};
use crate::service::Service;
use geo::BoundingRect;
use safegrid_geodata::GridLevel;
use safegrid_tiles::TileId;
use safegrid_tiles::mvt::{self, Feature, Geometry, Value};
use safegrid_tiles::shape::{clip_ring, simplify_ring, snap_ring};

/// Below this zoom the grids layer shows districts (and streets); from it, the grids.
pub const GRIDS_FROM_ZOOM: u8 = 11;

/// The `grids` layer: the same for every caller (the policy decides who may read it at all).
#[derive(Debug)]
pub struct Grids;

impl TileSource for Grids {
    fn name(&self) -> &'static str {
        "grids"
    }

    fn fields(&self) -> serde_json::Value {
        serde_json::json!({"code": "String", "name": "String", "level": "String", "manager": "String"})
    }

    fn version(&self, service: &Service, _tile: TileId) -> String {
        service.grids().version.to_string()
    }

    fn same_for_everyone(&self) -> bool {
        true
    }

    fn build(&self, service: &Service, req: &TileRequest<'_>) -> BuiltLayer {
        let layer = grid_layer(&service.grids(), req.tile);
        BuiltLayer { items: layer.features.len(), layer }
    }
}

fn grid_layer(grids: &crate::live::GridState, tile: TileId) -> mvt::Layer {
    let show_grids = tile.z >= GRIDS_FROM_ZOOM;
    let b = tile.bounds();
    // Simplify to half a pixel: invisible, and it removes most vertices of a district outline.
    let tolerance = 0.5;
    let (lo, hi) = (-f64::from(BUFFER), f64::from(EXTENT + BUFFER));
    let mut features = Vec::new();
    for u in grids.hierarchy.units() {
        let wanted = if show_grids { u.level == GridLevel::Grid } else { u.level < GridLevel::Community };
        if !wanted {
            continue;
        }
        let Some(r) = u.geometry.bounding_rect() else { continue };
        if r.max().x < b.west || r.min().x > b.east || r.max().y < b.south || r.min().y > b.north {
            continue;
        }
        let mut polygons = Vec::new();
        for poly in &u.geometry.0 {
            let mut rings = Vec::new();
            for (i, ring) in std::iter::once(poly.exterior()).chain(poly.interiors()).enumerate() {
                let px: Vec<[f64; 2]> =
                    ring.0[..ring.0.len().saturating_sub(1)].iter().map(|c| tile.to_pixels(c.x, c.y, EXTENT)).collect();
                let clipped = clip_ring(&px, lo, hi);
                match snap_ring(&simplify_ring(&clipped, tolerance)) {
                    Some(r) => rings.push(r),
                    None if i == 0 => break, // the exterior vanished: so does the polygon
                    None => {}
                }
            }
            if !rings.is_empty() {
                polygons.push(rings);
            }
        }
        if polygons.is_empty() {
            continue;
        }
        let mut properties = vec![
            ("code".to_owned(), Value::String(u.code.to_string())),
            ("name".to_owned(), Value::String(u.name.clone())),
            ("level".to_owned(), Value::String(u.level.name().to_owned())),
        ];
        if let Some(m) = &u.manager {
            properties.push(("manager".to_owned(), Value::String(m.name.clone())));
        }
        // Codes are digits: the numeric code is a stable feature id.
        features.push(Feature { id: u.code.as_str().parse().ok(), geometry: Geometry::Polygons(polygons), properties });
    }
    mvt::Layer { name: "grids".into(), extent: EXTENT, features }
}
