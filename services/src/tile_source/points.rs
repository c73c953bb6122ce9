//! The five point layers: each item with the properties a map draws and labels it by, or, past
//! [`CLUSTER_ABOVE`] points in a tile, clusters of [`CLUSTER_PX`] pixels with their counts.

use super::{BuiltLayer, EXTENT, TileRequest, TileSource, buffered_bbox};
use crate::layer::{Item, Layer, Props};
use crate::live::ItemQuery;
use crate::service::Service;
use safegrid_tiles::TileId;
use safegrid_tiles::mvt::{self, Feature, Geometry, Value};
use std::collections::HashMap;

/// Above this many points a point layer is clustered into cells of `CLUSTER_PX` pixels.
pub const CLUSTER_ABOVE: usize = 2_000;
/// A cluster cell's side, pixels.
pub const CLUSTER_PX: i32 = 64;

/// A point layer (incidents, rental housing, posts, responders, key personnel).
#[derive(Debug)]
pub struct Points(pub Layer);

impl TileSource for Points {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn fields(&self) -> serde_json::Value {
        use serde_json::json;
        match self.0 {
            Layer::Incidents => {
                json!({"type": "String", "priority": "Number", "status": "String", "reported_at": "String", "grid_code": "String", "point_count": "Number"})
            }
            Layer::RentalHousing => {
                json!({"safety_rating": "String", "units": "Number", "tenant_count": "Number", "grid_code": "String", "point_count": "Number"})
            }
            Layer::Posts => json!({"kind": "String", "name": "String", "grid_code": "String", "point_count": "Number"}),
            Layer::Responders => {
                json!({"kind": "String", "callsign": "String", "status": "String", "tracked": "Boolean", "grid_code": "String", "point_count": "Number"})
            }
            Layer::KeyPersonnel => {
                json!({"category": "String", "name": "String", "assigned_grid": "String", "grid_code": "String", "point_count": "Number"})
            }
        }
    }

    /// Where this tile is: writes elsewhere in the city leave its cached bytes valid.
    fn version(&self, service: &Service, tile: TileId) -> String {
        service.layer(self.0).version_at(tile).to_string()
    }

    fn audited(&self) -> Option<Layer> {
        self.0.is_sensitive().then_some(self.0)
    }

    fn build(&self, service: &Service, req: &TileRequest<'_>) -> BuiltLayer {
        let (layer, items) = point_layer(service, self.0, req);
        BuiltLayer { layer, items }
    }
}

/// The properties a map needs to draw and label an item: enough for a popup's first line, not
/// the whole record (the API gives that).
fn tile_properties(it: &Item) -> Vec<(String, Value)> {
    let s = |k: &str, v: &str| (k.to_owned(), Value::String(v.to_owned()));
    let mut p = match &it.props {
        Props::Incident(i) => vec![
            s("type", &i.incident_type),
            ("priority".to_owned(), Value::UInt(u64::from(i.priority))),
            s("status", i.status.name()),
            s("reported_at", &i.reported_at.to_rfc3339()),
        ],
        Props::RentalHousing(h) => vec![
            s("safety_rating", h.safety_rating.name()),
            ("units".to_owned(), Value::UInt(u64::from(h.units))),
            ("tenant_count".to_owned(), Value::UInt(u64::from(h.tenant_count))),
        ],
        Props::Post(post) => vec![s("kind", post.kind.name()), s("name", &post.name)],
        // `tracked`: a tracker reports the unit. An untracked one stands where it was entered,
        // and the wall must not draw it as if it were live.
        Props::Responder(r) => vec![
            s("kind", r.kind.name()),
            s("callsign", &r.callsign),
            s("status", r.status.name()),
            ("tracked".to_owned(), Value::Bool(r.device_id.is_some())),
        ],
        Props::KeyPerson(k) => {
            vec![s("category", &k.category), s("name", &k.name), s("assigned_grid", k.assigned_grid.as_str())]
        }
    };
    if let Some(g) = &it.grid {
        p.push(s("grid_code", g.as_str()));
    }
    p
}

/// A point layer; returns it and how many items it holds (clusters count their members).
fn point_layer(service: &Service, layer: Layer, req: &TileRequest<'_>) -> (mvt::Layer, usize) {
    let TileRequest { tile, who, filters } = *req;
    let Some(bbox) = buffered_bbox(tile) else {
        return (mvt::Layer { name: layer.name().into(), extent: EXTENT, features: vec![] }, 0);
    };
    let state = service.layer(layer);
    let px = |lon: f64, lat: f64| {
        let p = tile.to_pixels(lon, lat, EXTENT);
        [p[0].round() as i32, p[1].round() as i32]
    };
    // A caller who sees every grid, filtering by status and time at most: the point index alone
    // knows which points are in, and when they are too many to draw, their clusters need
    // nothing else.
    if who.covers(None) && filters.is_index_only() {
        let mut points = Vec::new();
        let q = ItemQuery { bbox: Some(bbox), ..filters.clone() };
        state.for_each_position_in(&q, |id, lon, lat| points.push((id, px(lon, lat))));
        let n = points.len();
        let features = if n > CLUSTER_ABOVE {
            clusters(&points.iter().map(|(_, p)| *p).collect::<Vec<_>>())
        } else {
            // Few enough to draw: each item with its properties, in id order.
            points.sort_unstable_by_key(|(id, _)| *id);
            points
                .iter()
                .filter_map(|(id, _)| state.get(*id))
                .map(|it| Feature {
                    id: u64::try_from(it.id).ok(),
                    geometry: Geometry::Points(vec![px(it.pos.lon(), it.pos.lat())]),
                    properties: tile_properties(it),
                })
                .collect()
        };
        return (mvt::Layer { name: layer.name().into(), extent: EXTENT, features }, n);
    }
    let q = ItemQuery { bbox: Some(bbox), ..filters.clone() };
    let mut items = state.matching(&q, |it| who.covers_item(it));
    let n = items.len();
    let to_px = |it: &Item| px(it.pos.lon(), it.pos.lat());
    let features = if n <= CLUSTER_ABOVE {
        // In id order, so that the same data always makes the same bytes (and ETag).
        items.sort_unstable_by_key(|(it, _)| it.id);
        items
            .iter()
            .map(|(it, _)| Feature {
                id: u64::try_from(it.id).ok(),
                geometry: Geometry::Points(vec![to_px(it)]),
                properties: tile_properties(it),
            })
            .collect()
    } else {
        clusters(&items.iter().map(|(it, _)| to_px(it)).collect::<Vec<_>>())
    };
    (mvt::Layer { name: layer.name().into(), extent: EXTENT, features }, n)
}

/// Too many points to draw one by one: one feature per `CLUSTER_PX` cell, at its members' mean
/// position, with their count.
fn clusters(points: &[[i32; 2]]) -> Vec<Feature> {
    let mut cells: HashMap<(i32, i32), (i64, i64, u64)> = HashMap::new();
    for p in points {
        let c = cells.entry((p[0].div_euclid(CLUSTER_PX), p[1].div_euclid(CLUSTER_PX))).or_default();
        c.0 += i64::from(p[0]);
        c.1 += i64::from(p[1]);
        c.2 += 1;
    }
    let mut cells: Vec<_> = cells.into_iter().collect();
    cells.sort_unstable_by_key(|(k, _)| *k);
    cells
        .into_iter()
        .map(|(_, (sx, sy, count))| {
            let c = count as i64;
            Feature {
                id: None,
                geometry: Geometry::Points(vec![[(sx / c) as i32, (sy / c) as i32]]),
                properties: vec![("point_count".to_owned(), Value::UInt(count))],
            }
        })
        .collect()
}
