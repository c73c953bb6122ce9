//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, built from the same layer list
//! the router uses, so a new layer cannot be routed yet undocumented.

use crate::layer::Layer;
use serde_json::{Map, Value, json};

fn param(name: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": required, "description": description, "schema": schema})
}

fn problem_responses() -> Value {
    let problem = json!({"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    json!({"400": problem, "401": problem, "403": problem, "404": problem})
}

fn point_params() -> Vec<Value> {
    vec![
        param("lon", true, "Longitude, degrees", json!({"type": "number", "minimum": -180, "maximum": 180})),
        param("lat", true, "Latitude, degrees", json!({"type": "number", "minimum": -90, "maximum": 90})),
        param(
            "crs",
            false,
            "CRS of given and returned positions",
            json!({"type": "string", "enum": ["wgs84", "gcj02", "bd09"], "default": "wgs84"}),
        ),
    ]
}

fn filter_params() -> Vec<Value> {
    vec![
        param(
            "type",
            false,
            "Incident type / post, responder kind / key-personnel category (aliases: kind, category)",
            json!({"type": "string"}),
        ),
        param(
            "status",
            false,
            "Status (incidents: open, dispatched, on_scene, closed; responders: available, …)",
            json!({"type": "string"}),
        ),
        param("priority", false, "Incident priority 1–4", json!({"type": "integer", "minimum": 1, "maximum": 4})),
        param("capability", false, "Responder capability tag", json!({"type": "string"})),
        param("grid", false, "Grid unit code: the unit and everything beneath it", json!({"type": "string"})),
    ]
}

/// The whole document.
#[must_use]
pub fn document() -> Value {
    let mut paths = Map::new();
    let feature_ref = json!({"$ref": "#/components/schemas/Feature"});
    let fc = json!({"description": "GeoJSON FeatureCollection", "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}}});
    let one = json!({"description": "GeoJSON Feature", "content": {"application/geo+json": {"schema": feature_ref}}});
    for layer in Layer::ALL {
        let name = layer.name();
        let sensitive = if layer.is_sensitive() { " Every read is written to the audit log." } else { "" };
        let mut query = vec![
            param("bbox", false, "minLon,minLat,maxLon,maxLat", json!({"type": "string"})),
            param("lon", false, "With lat and radius_m: centre of a radius query", json!({"type": "number"})),
            param("lat", false, "With lon and radius_m", json!({"type": "number"})),
            param("radius_m", false, "Radius in metres (≤ 100,000)", json!({"type": "number"})),
            param("since", false, "Filter time ≥ (RFC 3339 or YYYY-MM-DD)", json!({"type": "string"})),
            param("until", false, "Filter time <", json!({"type": "string"})),
            param(
                "limit",
                false,
                "Page size",
                json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
            ),
            param("cursor", false, "next_cursor of the previous page", json!({"type": "integer"})),
        ];
        query.extend(filter_params());
        let mut near = point_params();
        near.push(param(
            "k",
            false,
            "How many",
            json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 5}),
        ));
        near.extend(filter_params());
        let body = json!({"required": true, "content": {"application/geo+json": {"schema": feature_ref}, "application/json": {"schema": feature_ref}}});
        let mut responses_list = problem_responses();
        responses_list["200"] = fc.clone();
        let mut responses_one = problem_responses();
        responses_one["200"] = one.clone();
        let mut responses_created = problem_responses();
        responses_created["201"] = one.clone();
        responses_created["413"] = json!({"description": "Body too large"});
        responses_created["422"] = json!({"description": "Invalid geometry"});
        let mut responses_deleted = problem_responses();
        responses_deleted["204"] = json!({"description": "Deleted"});
        paths.insert(format!("/api/v1/{name}"), json!({
            "get": {"tags": [name], "summary": format!("Query {name}.{sensitive}"), "parameters": query, "responses": responses_list},
            "post": {"tags": [name], "summary": format!("Create one {name} item from a GeoJSON Feature with a Point."), "requestBody": body, "responses": responses_created},
        }));
        let nearest_summary = if layer == Layer::Posts {
            "The k nearest posts. Needs no token: the public sees the nearest open posts (name, kind, phone, opening hours, open_now, walking distance and time along footpaths where the road network covers the place; lon, lat, k up to 10 and crs only; 60 lookups a minute per address, then 429)."
                .to_owned()
        } else {
            format!("The k nearest {name}, nearest first, each with distance_m.{sensitive}")
        };
        paths.insert(
            format!("/api/v1/{name}/nearest"),
            json!({
                "get": {"tags": [name], "summary": nearest_summary, "parameters": near, "responses": responses_list},
            }),
        );
        let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}});
        paths.insert(format!("/api/v1/{name}/{{id}}"), json!({
            "get": {"tags": [name], "summary": format!("One {name} item.{sensitive}"), "parameters": [id], "responses": responses_one},
            "put": {"tags": [name], "summary": "Replace position and properties.", "parameters": [id], "requestBody": body, "responses": responses_one},
            "delete": {"tags": [name], "summary": "Delete.", "parameters": [id], "responses": responses_deleted},
        }));
    }
    paths.insert("/api/v1/locate".into(), json!({
        "get": {"tags": ["grids"], "summary": "The grid holding a point, with its ancestors and managers; or the nearest grid when outside every grid.", "parameters": point_params(), "responses": {"200": {"description": "Location"}}},
    }));
    paths.insert("/api/v1/grids".into(), json!({
        "get": {"tags": ["grids"], "summary": "Grid units as GeoJSON.", "parameters": [
            param("level", false, "district, street, community or grid", json!({"type": "string"})),
            param("parent", false, "Only the children of this unit", json!({"type": "string"})),
            param("limit", false, "Page size", json!({"type": "integer", "minimum": 1, "maximum": 5000, "default": 500})),
            param("cursor", false, "next_cursor of the previous page", json!({"type": "string"})),
        ], "responses": {"200": fc}},
    }));
    let code = json!({"name": "code", "in": "path", "required": true, "schema": {"type": "string"}});
    paths.insert("/api/v1/grids/{code}".into(), json!({
        "get": {"tags": ["grids"], "summary": "One unit with its chain of ancestors.", "parameters": [code], "responses": {"200": one}},
        "put": {"tags": ["grids"], "summary": "Insert or replace one unit (admin); items whose grid changes are re-located in the same transaction.", "parameters": [code], "requestBody": {"content": {"application/geo+json": {"schema": feature_ref}}}, "responses": {"200": one, "422": {"description": "Invalid geometry"}}},
    }));
    paths.insert("/api/v1/audit_log".into(), json!({
        "get": {"tags": ["audit"], "summary": "The append-only audit log, newest first (admin, auditor).", "parameters": [
            param("limit", false, "Rows", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
            param("before", false, "Only rows with a smaller id", json!({"type": "integer"})),
        ], "responses": {"200": {"description": "Rows"}}},
    }));
    let audit_format = param(
        "format",
        false,
        "json (the whole report) or geojson (the findings as features, grid findings with the grid's outline)",
        json!({"type": "string", "enum": ["json", "geojson"], "default": "json"}),
    );
    paths.insert("/api/v1/audit/geometry".into(), json!({
        "get": {"tags": ["audit"], "summary": "Coverage audit of the live grid layer: gaps, overlaps, slivers (reported apart), grids outside their parent, codes, grids without a worker. Any role but gateway.", "parameters": [
            audit_format.clone(),
            param("sliver_m2", false, "Gaps and overlaps below this area are slivers", json!({"type": "number", "minimum": 0, "default": 100})),
            param("sliver_width_m", false, "Gaps and overlaps narrower than this on average are slivers", json!({"type": "number", "minimum": 0, "default": 0.5})),
        ], "responses": {"200": {"description": "Report: passed, summary, geometry.findings[] with kind, severity, grids, message, area_m2, location, bbox, geometry"}}},
    }));
    paths.insert("/api/v1/audit/workload".into(), json!({
        "get": {"tags": ["audit"], "summary": "The geometry audit plus households and people (rental housing) and incidents per grid against the norm; outliers listed with their figures.", "parameters": [
            audit_format,
            param("min_households", false, "Norm: fewest households a grid", json!({"type": "integer", "default": 300})),
            param("max_households", false, "Norm: most households a grid", json!({"type": "integer", "default": 500})),
            param("max_people", false, "Norm: most people a grid", json!({"type": "integer", "default": 2500})),
        ], "responses": {"200": {"description": "Report with workload.grids[] and workload.findings[]"}}},
    }));
    paths.insert("/api/v1/audit/patrol".into(), json!({
        "get": {"tags": ["audit"], "summary": "Patrol coverage of the live layer from the responders' traces: per grid the share of its H3 resolution-10 cells a patrol passed through, patrol hours and last patrol; grids unpatrolled in the last 24 h (errors) and below min_share (warnings). The read of traces is written to the audit log.", "parameters": [
            param("format", false, "json or geojson", json!({"type": "string", "enum": ["json", "geojson"]})),
            param("hours", false, "Window length", json!({"type": "integer", "minimum": 1, "maximum": 744, "default": 24})),
            param("until", false, "Window end (RFC 3339; default now)", json!({"type": "string", "format": "date-time"})),
            param("min_share", false, "List grids whose patrolled share is below this", json!({"type": "number", "minimum": 0, "maximum": 1, "default": 0.25})),
        ], "responses": {"200": {"description": "Report with patrol.grids[] and patrol.findings[]"}}},
    }));
    paths.insert("/api/v1/audit/layers".into(), json!({
        "post": {"tags": ["audit"], "summary": "Another grid layer of the territory (GeoJSON FeatureCollection in the body) compared with the live layer (三网合一): layers.pairs[] — which grids intersect which, with shares — and boundary_mismatch / coverage_mismatch findings where they disagree by more than tolerance_m.", "parameters": [
            param("format", false, "json or geojson", json!({"type": "string", "enum": ["json", "geojson"]})),
            param("tolerance_m", false, "Boundaries closer than this on average agree", json!({"type": "number", "minimum": 0, "default": 5})),
        ], "requestBody": {"content": {"application/geo+json": {"schema": {"type": "object"}}}}, "responses": {"200": {"description": "Report with layers"}}},
    }));
    paths.insert("/api/v1/audit/response".into(), json!({
        "get": {"tags": ["audit"], "summary": "Response coverage: share of the territory (H3 res-10 cells) and of the households (rental housing) within `minutes` of the nearest post or available responder — by road when a network is loaded, else straight line at 20 km/h; uncovered areas (unreachable findings with their households); the site where one more post would reach the most uncovered households.", "parameters": [
            param("format", false, "json or geojson", json!({"type": "string", "enum": ["json", "geojson"]})),
            param("minutes", false, "T", json!({"type": "number", "minimum": 1, "maximum": 60, "default": 5})),
        ], "responses": {"200": {"description": "Report with response"}}},
    }));
    paths.insert("/api/v1/gridding".into(), json!({
        "post": {"tags": ["audit"], "summary": "Automatic gridding (admin, auditor): communities in, grids of min–max households out (contiguous, compact, covering each community exactly, coded beneath it; a grid mostly covering a current grid keeps its code). Households from the live rental-housing layer. Nothing is stored.",
                 "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["communities"], "properties": {
                     "communities": {"type": "object", "description": "FeatureCollection of (Multi)Polygons with code and name"},
                     "min_households": {"type": "integer", "default": 300}, "max_households": {"type": "integer", "default": 500},
                     "res": {"type": "integer", "minimum": 9, "maximum": 13, "default": 11}}}}}},
                 "responses": {"200": {"description": "FeatureCollection: the communities, then the grids with households and compactness; summary"}}},
    }));
    let tile_params = json!([
        {"name": "layers", "in": "path", "required": true, "description": "grids, incidents_h3, incidents, rental_housing, posts, responders, key_personnel, or several joined by commas", "schema": {"type": "string"}},
        {"name": "z", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": 24}},
        {"name": "x", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}},
        {"name": "y", "in": "path", "required": true, "description": "row, followed by .mvt", "schema": {"type": "string"}},
    ]);
    paths.insert("/tiles/{layers}/{z}/{x}/{y}.mvt".into(), json!({
        "get": {"tags": ["tiles"], "summary": "A Mapbox Vector Tile built from the live state (never stale). Grids: districts below z11, grids from z11. Point layers are clustered (point_count) above 2,000 points a tile; incidents_h3 counts incidents per H3 cell. Point layers take the list filters (since, until, type, status, priority, capability, grid); `v` is ignored (a client's cache-buster). gzip on Accept-Encoding. ETag/If-None-Match; key-personnel tiles are audited and never 304.", "parameters": tile_params,
                "responses": {"200": {"description": "MVT", "content": {"application/vnd.mapbox-vector-tile": {}}}, "304": {"description": "Not modified"}}},
    }));
    paths.insert("/tiles/{layers}.json".into(), json!({
        "get": {"tags": ["tiles"], "summary": "TileJSON 3.0 for a layer or comma-joined layers.", "parameters": [{"name": "layers", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "TileJSON"}}},
    }));
    paths.insert("/api/v1/whoami".into(), json!({
        "get": {"tags": ["wall"], "summary": "The caller: name, role, grid scope, the layers it may read, and whether it may read the audit log.", "responses": {"200": {"description": "the caller"}}},
    }));
    paths.insert("/api/v1/stats".into(), json!({
        "get": {"tags": ["wall"], "summary": "The map wall's statistics within the caller's grid scope: unresolved incidents (open, dispatched, on scene) in total, by priority, by district and the ten grids with most; items per readable layer.", "responses": {"200": {"description": "statistics"}, "401": {"description": "no token"}}},
    }));
    paths.insert("/api/v1/events".into(), json!({
        "get": {"tags": ["wall"], "summary": "Server-sent events: a `versions` event with the data version of the grids and of each readable layer, at once and within half a second of every change. Versions only: refetch tiles or items to see what changed.", "responses": {"200": {"description": "text/event-stream", "content": {"text/event-stream": {}}}, "401": {"description": "no token"}}},
    }));
    paths.insert("/".into(), json!({
        "get": {"tags": ["wall"], "summary": "The dispatch-centre map wall (HTML; its files under /web/ are built into the binary).", "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}},
    }));
    // Live positions and dispatch.
    let ok = |d: &str| json!({"200": {"description": d}});
    let q = |name: &str, desc: &str| json!({"name": name, "in": "query", "description": desc, "schema": {"type": "string"}});
    paths.insert("/api/v1/osmand".into(), json!({
        "get": {"tags": ["positions"], "summary": "A tracker's report in the OsmAnd / Traccar Client protocol (also any path on the OsmAnd port, 5055 by default). No token: the device id is the credential. 200 once stored, or refused as noise (duplicate, future, too old); 400 naming the parameter, or for a device no responder carries; 503 + Retry-After when the queue is full.",
                "parameters": [q("id", "device id (or deviceid)"), q("lat", "latitude"), q("lon", "longitude"), q("location", "lat,lon instead of lat and lon"), q("timestamp", "unix seconds or milliseconds, or ISO-8601"), q("speed", "knots"), q("bearing", "degrees (or heading)"), q("altitude", "metres"), q("accuracy", "metres"), q("batt", "percent"), q("valid", "false marks a doubtful fix")],
                "responses": {"200": {"description": "stored"}, "400": {"description": "a parameter, or an unknown device"}, "503": {"description": "overloaded; Retry-After"}}},
        "post": {"tags": ["positions"], "summary": "The same as a form body (application/x-www-form-urlencoded) or with the parameters in the query string.", "responses": ok("stored")},
    }));
    paths.insert("/api/v1/positions".into(), json!({
        "post": {"tags": ["positions"], "summary": "A gateway's batch {\"fixes\": [{device_id, time, lon, lat, speed_mps, bearing_deg, altitude_m, accuracy_m, battery_pct, valid, attributes}]}, up to 10,000 fixes; roles admin, dispatcher, gateway. Answered once committed with received, stored, live, history and the refused fixes by index and reason. One bad fix refuses the batch, naming it (fixes[i].field).",
                 "responses": {"200": {"description": "receipt"}, "400": {"description": "a fix named"}, "503": {"description": "overloaded; Retry-After"}}},
    }));
    paths.insert("/api/v1/positions/live".into(), json!({
        "get": {"tags": ["positions"], "summary": "Every responder in scope with its latest fix, freshness (live, stale, lost, none), age and grid. Audited.", "parameters": [q("freshness", "comma list of live, stale, lost, none"), q("grid", "a grid code prefix"), q("crs", "wgs84, gcj02, bd09")], "responses": ok("GeoJSON FeatureCollection")},
    }));
    paths.insert("/api/v1/responders/{id}/trace".into(), json!({
        "get": {"tags": ["positions"], "summary": "A unit's position history between since and until (default: the last 24 h), as a GeoJSON LineString with times, GPX 1.1 or JSON points; simplify_m simplifies for display; flagged=true includes fixes kept as history only. Audited.", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}, q("since", "ISO-8601"), q("until", "ISO-8601"), q("format", "geojson, gpx or json"), q("simplify_m", "metres"), q("flagged", "true or false"), q("limit", "points, up to 100,000"), q("crs", "wgs84, gcj02, bd09")], "responses": ok("trace")},
    }));
    paths.insert("/api/v1/geofence/events".into(), json!({
        "get": {"tags": ["positions"], "summary": "Grid crossings (enter, exit; 20 m hysteresis) of responders and monitored key persons (subject), and key persons' zone alerts (zone_breach, zone_return, with the person's assigned grid), after an event id, in the caller's grids. Audited.", "parameters": [q("after", "event id"), q("limit", "up to 10,000")], "responses": ok("events and last_id")},
    }));
    paths.insert("/api/v1/geofence/stream".into(), json!({
        "get": {"tags": ["positions"], "summary": "The same as server-sent events (event: enter|exit, id: the event id); resume with Last-Event-ID or after=. Audited.", "responses": {"200": {"description": "text/event-stream", "content": {"text/event-stream": {}}}}},
    }));
    paths.insert("/api/v1/dispatch/nearest".into(), json!({
        "get": {"tags": ["dispatch"], "summary": "The k units that would arrive first, by road travel time where the road network covers the place (eta_source road) and by straight-line estimate elsewhere (estimate); available units with a live fix unless include says otherwise. Audited.", "parameters": [q("lon", "longitude"), q("lat", "latitude"), q("k", "1 to 50, default 5"), q("kind", "responder kind"), q("capability", "a capability tag"), q("include", "comma list of stale, lost, untracked, busy"), q("crs", "wgs84, gcj02, bd09")], "responses": ok("GeoJSON FeatureCollection with eta_s, eta_source, distance_m, straight_m, freshness, age_s, status, grid_code")},
    }));
    paths.insert("/api/v1/dispatches".into(), json!({
        "get": {"tags": ["dispatch"], "summary": "Dispatches, newest first (open=true: not closed).", "parameters": [q("open", "true or false"), q("limit", "up to 1,000")], "responses": ok("dispatches")},
        "post": {"tags": ["dispatch"], "summary": "Create a dispatch for an incident and send units: {incident_id, units, note}. Dispatchers and admins. 409 for a busy unit.", "responses": {"201": {"description": "the dispatch with its deadlines"}, "409": {"description": "a unit is busy"}}},
    }));
    paths.insert("/api/v1/dispatches/{id}".into(), json!({"get": {"tags": ["dispatch"], "summary": "A dispatch: units, their steps with times, alarms, notifications.", "responses": ok("the dispatch")}}));
    paths.insert("/api/v1/dispatches/{id}/units".into(), json!({"post": {"tags": ["dispatch"], "summary": "Send more units: {units}.", "responses": ok("the dispatch")}}));
    paths.insert("/api/v1/dispatches/{id}/units/{unit}".into(), json!({"post": {"tags": ["dispatch"], "summary": "A unit's next step: {step: acknowledged | en_route | on_scene | cleared}; steps only go forward (409). The dispatch closes when its last unit clears.", "responses": ok("the dispatch")}}));
    paths.insert("/api/v1/dispatches/{id}/city_wide".into(), json!({"post": {"tags": ["dispatch"], "summary": "全城响应: notify every unit (not off duty) and every post within {radius_m} of the incident or within {within_s} of travel.", "responses": ok("units and posts notified")}}));
    paths.insert("/api/v1/incidents/{id}/timeline".into(), json!({"get": {"tags": ["dispatch"], "summary": "An incident's dispatch log in order: created, each step, notifications, deadline alarms, closed.", "responses": ok("events")}}));
    paths.insert("/api/v1/dispatch/deadlines".into(), json!({
        "get": {"tags": ["dispatch"], "summary": "Acknowledge and arrival deadlines: default and by grid-code prefix (longest wins).", "responses": ok("deadlines")},
        "put": {"tags": ["dispatch"], "summary": "Replace the deadlines (admin): {default: {ack_s, arrive_s}, grids: {prefix: {ack_s, arrive_s}}}.", "responses": ok("deadlines")},
    }));
    paths.insert("/api/v1/openapi.json".into(), json!({"get": {"tags": ["ops"], "summary": "This document.", "responses": {"200": {"description": "OpenAPI 3.1"}}}}));
    paths.insert(
        "/healthz".into(),
        json!({"get": {"tags": ["ops"], "summary": "Liveness.", "responses": {"200": {"description": "ok"}}}}),
    );
    paths.insert("/readyz".into(), json!({"get": {"tags": ["ops"], "summary": "Readiness: the store answers.", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}}));
    paths.insert("/metrics".into(), json!({"get": {"tags": ["ops"], "summary": "Prometheus metrics (admin or auditor token).", "responses": {"200": {"description": "text format"}}}}));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "safegrid",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Grid management and situational awareness for public-safety command centres. Positions are WGS-84 unless crs= names GCJ-02 or BD-09. Errors are RFC 9457 problem+json.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "value": {}, "reason": {"type": "string"}}}},
                }},
                "Feature": {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
                    "type": {"const": "Feature"}, "id": {}, "geometry": {"type": "object"}, "properties": {"type": "object"},
                }},
                "FeatureCollection": {"type": "object", "properties": {
                    "type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}},
                    "numberMatched": {"type": "integer"}, "numberReturned": {"type": "integer"}, "next_cursor": {},
                }},
            },
        },
    })
}
