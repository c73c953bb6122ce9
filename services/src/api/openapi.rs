//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, built from the same layer list
//! the router uses, so a new layer cannot be routed yet undocumented.
//!
//! Every operation lists every status its handler, the door (`api::guard`: token, access
//! policy, load gates) and the body reader can answer, errors as RFC 9457 problems
//! (`components.responses`). Routes that need no bearer token say so with `security: []`
//! (or `[{}, {"bearer": []}]` where a token changes the answer). Parameters carry the
//! constraints the handlers enforce, so generated requests (schemathesis, in `.ci/run`) mean
//! something; constraints between parameters (a box's min ≤ max, `since` < `until`) are named
//! in the descriptions.

use crate::layer::{IncidentStatus, Layer, PostKind, ResponderKind, ResponderStatus, SafetyRating, ZoneMode};
use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// A bearer token of a role the access policy allows (401 without one, 403 for another role).
    Bearer,
    /// No token needed (a token given must still be valid: 401).
    None,
    /// Anyone; a token widens the answer.
    Optional,
}

/// A query parameter.
fn param(name: &str, required: bool, description: &str, schema: Value) -> Value {
    let mut p = json!({"name": name, "in": "query", "required": required, "description": description});
    p["schema"] = schema;
    p
}

/// A path parameter.
fn path(name: &str, description: &str, schema: Value) -> Value {
    let mut p = json!({"name": name, "in": "path", "required": true, "description": description});
    p["schema"] = schema;
    p
}

fn reference(to: &str) -> Value {
    json!({"$ref": to})
}

fn schema(name: &str) -> Value {
    reference(&format!("#/components/schemas/{name}"))
}

/// The name of an error status's shared response in `components.responses`.
fn error_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "UnprocessableEntity",
        429 => "TooManyRequests",
        _ => "ServiceUnavailable",
    }
}

/// Statuses every operation behind the door can answer: 401 for a token that is not valid,
/// 503 + `Retry-After` when its load class is saturated (or the store does not answer).
const DOOR: [u16; 2] = [401, 503];

/// One operation: `ok` holds the success responses, `errors` the error statuses beyond the
/// door's (401, 403 for a bearer route, 503).
fn op(
    tag: &str,
    summary: &str,
    auth: Auth,
    params: Vec<Value>,
    body: Option<Value>,
    ok: Value,
    errors: &[u16],
) -> Value {
    let mut responses = match ok {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut statuses: Vec<u16> = errors.iter().copied().chain(DOOR).collect();
    if auth == Auth::Bearer {
        statuses.push(403);
    }
    statuses.sort_unstable();
    statuses.dedup();
    for s in statuses {
        responses.insert(s.to_string(), reference(&format!("#/components/responses/{}", error_name(s))));
    }
    let mut o = json!({"tags": [tag], "summary": summary, "responses": responses});
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    if let Some(b) = body {
        o["requestBody"] = b;
    }
    match auth {
        Auth::Bearer => {}
        Auth::None => o["security"] = json!([]),
        Auth::Optional => o["security"] = json!([{}, {"bearer": []}]),
    }
    o
}

/// A success response with one media type.
fn content(description: &str, media: &str, body: Value) -> Value {
    let mut r = json!({"description": description, "headers": nosniff(), "content": {media: {}}});
    r["content"][media]["schema"] = body;
    r
}

/// A success response with several media types.
fn contents(description: &str, media: &[(&str, Value)]) -> Value {
    let mut c = Map::new();
    for (m, s) in media {
        c.insert((*m).to_owned(), json!({"schema": s}));
    }
    json!({"description": description, "headers": nosniff(), "content": c})
}

/// A success response whose body is not described (an empty answer, binary files).
fn bare(description: &str) -> Value {
    json!({"description": description, "headers": nosniff()})
}

/// Every answer carries `X-Content-Type-Options: nosniff`.
fn nosniff() -> Value {
    json!({"X-Content-Type-Options": {"$ref": "#/components/headers/X-Content-Type-Options"}})
}

/// A JSON request body.
fn json_body(s: Value) -> Value {
    let mut b = json!({"required": true, "content": {"application/json": {}}});
    b["content"]["application/json"]["schema"] = s;
    b
}

/// A GeoJSON request body (also accepted as `application/json`).
fn geojson_body(s: &Value) -> Value {
    json!({"required": true, "content": {"application/geo+json": {"schema": s}, "application/json": {"schema": s}}})
}

fn crs_param() -> Value {
    param(
        "crs",
        false,
        "CRS of the positions sent and returned: WGS-84 (default), GCJ-02 (AMap, Tencent) or BD-09 (Baidu); case-insensitive, with the aliases listed",
        json!({"type": "string", "enum": ["wgs84", "wgs-84", "epsg:4326", "cgcs2000", "gcj02", "gcj-02", "bd09", "bd-09", "bd09ll"], "default": "wgs84"}),
    )
}

fn lon_param(required: bool, description: &str) -> Value {
    param("lon", required, description, json!({"type": "number", "minimum": -180, "maximum": 180}))
}

fn lat_param(required: bool, description: &str) -> Value {
    param("lat", required, description, json!({"type": "number", "minimum": -90, "maximum": 90}))
}

fn point_params() -> Vec<Value> {
    vec![lon_param(true, "Longitude, degrees"), lat_param(true, "Latitude, degrees"), crs_param()]
}

fn time_param(name: &str, description: &str) -> Value {
    param(name, false, description, schema("Time"))
}

fn grid_param(name: &str, description: &str) -> Value {
    param(name, false, description, schema("GridCode"))
}

fn bounded(name: &str, description: &str, min: u64, max: u64, default: u64) -> Value {
    param(name, false, description, json!({"type": "integer", "minimum": min, "maximum": max, "default": default}))
}

fn format_param(values: &[&str], description: &str) -> Value {
    param("format", false, description, json!({"type": "string", "enum": values, "default": values[0]}))
}

/// A comma-separated list of these names, as a pattern.
fn list_of(names: &[&str]) -> Value {
    let one = format!("({})", names.join("|"));
    json!({"type": "string", "pattern": format!("^({one}(,{one})*)?$"), "description": "empty: none"})
}

/// The `type`/`kind`/`category`, status, priority, capability and grid filters of a layer: a
/// value no item of the layer can hold is refused (400), so each is described exactly.
fn filter_params(layer: Layer) -> Vec<Value> {
    // A closed list where the layer has one; incident types and key-person categories are the
    // city's own words, and any text is a filter.
    let kinds: Value = match layer.kinds() {
        Some(names) => json!({"enum": names}),
        None => json!({"type": "string"}),
    };
    let mut v = vec![param(
        "type",
        false,
        "Incident type / post or responder kind / key-personnel category (the aliases kind and category are also read)",
        kinds,
    )];
    if layer != Layer::Posts {
        v.push(param(
            "status",
            false,
            "Status, or several joined by commas (any of them): incidents' status, rental housing's safety rating, responders' status; key personnel: active or inactive",
            list_of(layer.statuses()),
        ));
    }
    if layer == Layer::Incidents {
        v.push(param(
            "priority",
            false,
            "Incident priority, 1 (most urgent) to 4",
            json!({"type": "integer", "minimum": 1, "maximum": 4}),
        ));
    }
    if layer == Layer::Responders {
        v.push(param("capability", false, "A capability tag the responder has", json!({"type": "string"})));
    }
    v.push(grid_param("grid", "A grid unit code: the unit and everything beneath it"));
    v
}

/// Properties of a layer's items as sent (`deny_unknown_fields`; the server-owned `id`,
/// `grid_code`, `created_at`, `updated_at` and `distance_m` are ignored, so a client may send
/// back what it received).
fn props_schema(layer: Layer) -> Value {
    let text = json!({"type": "string", "pattern": "\\S"});
    let opt_text = json!({"type": ["string", "null"]});
    let whole = |max: u64| {
        json!({"anyOf": [
            {"type": "integer", "minimum": 0, "maximum": max},
            {"type": "string", "pattern": "^\\s*\\+?[0-9]{1,9}\\s*$", "description": "a whole number as text (CSV)"},
        ]})
    };
    let (required, mut properties): (Vec<&str>, Value) = match layer {
        Layer::Incidents => (
            vec!["type", "priority", "status"],
            json!({
                "type": {"type": "string", "pattern": "\\S", "description": "e.g. theft, fire, dispute"},
                "priority": {"anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": 4},
                    {"type": "string", "pattern": "^\\s*\\+?0{0,3}[1-4]\\s*$", "description": "a priority as text (CSV)"},
                ]},
                "status": {"enum": IncidentStatus::NAMES},
                "reported_at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}], "description": "absent or null: stamped with the time the POST arrived; a PUT without it keeps the item's"},
                "address": opt_text,
                "description": opt_text,
            }),
        ),
        Layer::RentalHousing => (
            vec!["address", "units", "tenant_count", "safety_rating"],
            json!({
                "address": text,
                "units": whole(u64::from(u32::MAX)),
                "tenant_count": whole(u64::from(u32::MAX)),
                "landlord_contact": opt_text,
                "safety_rating": {"enum": SafetyRating::NAMES},
                "last_inspection": {"type": ["string", "null"], "format": "date"},
            }),
        ),
        Layer::Posts => (
            vec!["kind", "name"],
            json!({
                "kind": {"enum": PostKind::NAMES},
                "name": text,
                "phone": opt_text,
                "radio_channel": opt_text,
                "opening_hours": {"type": ["string", "null"], "description": "24h, or HH:MM-HH:MM in China time (may pass midnight)"},
            }),
        ),
        Layer::Responders => (
            vec!["kind", "callsign", "status"],
            json!({
                "kind": {"enum": ResponderKind::NAMES},
                "callsign": text,
                "status": {"enum": ResponderStatus::NAMES},
                "capabilities": {"anyOf": [
                    {"type": "array", "items": {"type": "string"}},
                    {"type": "string", "description": "items separated by ; (CSV)"},
                ]},
                "home_post": {"anyOf": [
                    {"type": "null"},
                    {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
                    {"type": "string", "pattern": "^\\s*([+-]?[0-9]{1,18})?\\s*$", "description": "a post id as text (CSV); empty for none"},
                ]},
                "device_id": {"type": ["string", "null"], "description": "the tracker this responder carries; one item per device (409 naming properties.device_id when another carries it)"},
            }),
        ),
        Layer::KeyPersonnel => (
            vec!["category", "name", "assigned_grid"],
            json!({
                "category": {"type": "string"},
                "name": text,
                "assigned_grid": schema("GridCode"),
                "caretaker": opt_text,
                "last_seen_at": {"type": ["string", "null"], "format": "date-time"},
                "active": {"type": "boolean", "default": true},
                "device_id": {"type": ["string", "null"], "description": "an electronic monitor's id; one item per device (409 when another carries it)"},
                "zone": {"anyOf": [{"type": "null"}, {
                    "type": "object", "additionalProperties": false, "required": ["mode", "grids"],
                    "properties": {
                        "mode": {"enum": ZoneMode::NAMES},
                        "grids": {"type": "array", "minItems": 1, "items": schema("GridCode")},
                    },
                }]},
            }),
        ),
    };
    for owned in ["id", "grid_code", "created_at", "updated_at", "distance_m"] {
        properties[owned] = json!({"description": "server-owned: ignored"});
    }
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

/// A layer's item as answered.
fn item_schema(layer: Layer) -> Value {
    let mut props = props_schema(layer);
    let Some(p) = props.as_object_mut() else { return props };
    p.remove("additionalProperties");
    let mut required: Vec<Value> = p.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
    required.extend(["grid_code", "created_at", "updated_at"].map(Value::from));
    if layer == Layer::Incidents {
        // Optional in a request (stamped on arrival), always present in an answer.
        required.push("reported_at".into());
    }
    p.insert("required".into(), Value::Array(required));
    if let Some(Value::Object(pp)) = p.get_mut("properties") {
        pp.insert("grid_code".into(), json!({"anyOf": [{"type": "null"}, schema("GridCode")], "description": "the grid holding the item; null outside every grid"}));
        pp.insert("created_at".into(), json!({"type": "string", "format": "date-time"}));
        pp.insert("updated_at".into(), json!({"type": "string", "format": "date-time"}));
        pp.insert(
            "distance_m".into(),
            json!({"type": "number", "minimum": 0, "description": "nearest and radius queries"}),
        );
    }
    json!({"type": "object", "required": ["type", "id", "geometry", "properties"], "properties": {
        "type": {"const": "Feature"},
        "id": {"type": "integer", "minimum": 1},
        "geometry": schema("Point"),
        "properties": props,
    }})
}

fn grid_unit_summary() -> Value {
    json!({"type": "object", "required": ["code", "name", "level"], "properties": {
        "code": schema("GridCode"), "name": {"type": "string"},
        "level": {"enum": ["district", "street", "community", "grid"]},
        "manager": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "phone": {"type": ["string", "null"]}}}]},
    }})
}

/// An audit report: JSON, or its findings as GeoJSON.
fn report(description: &str) -> Value {
    contents(
        description,
        &[
            (
                "application/json",
                json!({"type": "object", "required": ["passed"], "properties": {"passed": {"type": "boolean"}}}),
            ),
            ("application/geo+json", schema("FeatureCollection")),
        ],
    )
}

fn components() -> Value {
    let problem = |status: u16, description: &str, retry: bool| {
        let mut headers = nosniff();
        if retry {
            headers["Retry-After"] = reference("#/components/headers/Retry-After");
        }
        json!({"description": description, "headers": headers, "content": {"application/problem+json": {"schema": {
            "allOf": [schema("Problem"), {"properties": {"status": {"const": status}}}],
        }}}})
    };
    let mut schemas = json!({
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details; `errors` names each offending input",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "pattern": "^/problems/[a-z-]+$", "description": "/problems/invalid-input, /problems/not-found, …"},
                "title": {"type": "string", "minLength": 1},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "errors": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["field", "value", "reason"],
                    "properties": {
                        "field": {"type": "string", "description": "query parameter, path segment, header or JSON path (properties.priority, geometry.coordinates[1], fixes[3].lat)"},
                        "value": {"description": "the value as received (null when absent)"},
                        "reason": {"type": "string"},
                    },
                }},
            },
        },
        "GridCode": {
            "type": "string",
            "description": "A 6-digit GB/T 2260 prefix (not starting 00) and up to three levels of 3 digits (001–999): 440304, 440304001",
            "pattern": "^(0[1-9]|[1-9][0-9])[0-9]{4}(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2}){0,3}$",
        },
        "Time": {
            "description": "An RFC 3339 time, or a date (midnight UTC)",
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
        },
        "Point": {
            "type": "object", "required": ["type", "coordinates"],
            "properties": {
                "type": {"const": "Point"},
                "coordinates": {"type": "array", "minItems": 2, "prefixItems": [
                    {"type": "number", "minimum": -180, "maximum": 180},
                    {"type": "number", "minimum": -90, "maximum": 90},
                ]},
            },
        },
        "Feature": {
            "type": "object", "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"const": "Feature"},
                "geometry": {"type": ["object", "null"], "required": ["type"], "properties": {"type": {"enum": ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"]}}},
                "properties": {"type": ["object", "null"]},
            },
        },
        "FeatureCollection": {
            "type": "object", "required": ["type", "features"],
            "properties": {
                "type": {"const": "FeatureCollection"},
                "features": {"type": "array", "items": schema("Feature")},
            },
        },
        "PolygonCoordinates": {
            "type": "array", "minItems": 1, "description": "rings: the outer first, then holes",
            "items": {"type": "array", "minItems": 4, "items": {"type": "array", "minItems": 2, "maxItems": 3, "prefixItems": [
                {"type": "number", "minimum": -180, "maximum": 180}, {"type": "number", "minimum": -90, "maximum": 90}, {"type": "number"},
            ]}},
        },
        "LenientFeature": {
            "type": "object", "required": ["type", "geometry"],
            "description": "A unit of a layer read as an audit reads a file: faults in its geometry, code or name are reported, not refused (a layer with no measurable geometry is refused, 400)",
            "properties": {
                "type": {"const": "Feature"},
                "geometry": {"type": "object", "required": ["type", "coordinates"], "properties": {"type": {"enum": ["Polygon", "MultiPolygon"]}}},
                "properties": {"type": ["object", "null"], "properties": {"code": {"description": "its grid code"}, "name": {}}},
            },
        },
        "Community": {
            "type": "object", "required": ["type", "geometry", "properties"],
            "description": "A community to divide: a polygon with its code",
            "properties": {
                "type": {"const": "Feature"},
                "geometry": {"type": "object", "required": ["type", "coordinates"], "properties": {"type": {"enum": ["Polygon", "MultiPolygon"]}}},
                "properties": {"type": "object", "required": ["code"], "properties": {"code": schema("GridCode"), "name": {}}},
            },
        },
        "GridUnitInput": {
            "type": "object", "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"const": "Feature"},
                "geometry": {"oneOf": [
                    {"type": "object", "required": ["type", "coordinates"], "properties": {"type": {"const": "Polygon"}, "coordinates": schema("PolygonCoordinates")}},
                    {"type": "object", "required": ["type", "coordinates"], "properties": {"type": {"const": "MultiPolygon"}, "coordinates": {"type": "array", "minItems": 1, "items": schema("PolygonCoordinates")}}},
                ], "description": "closed rings that do not cross themselves (422 naming the fault otherwise)"},
                "properties": {"type": "object", "required": ["code", "name"], "properties": {
                    "code": schema("GridCode"), "name": {"anyOf": [{"type": "string", "pattern": "\\S"}, {"type": "number"}]},
                    "level": {"enum": ["district", "town", "street", "community", "village", "grid"], "description": "by default from the code's length"},
                    "manager": {"description": "the grid worker's name (text; blank or absent: none)"}, "manager_phone": {},
                }},
            },
        },
        "Dispatch": {
            "type": "object", "required": ["id", "incident_id", "units"],
            "properties": {
                "id": {"type": "integer"}, "incident_id": {"type": "integer"},
                "grid_code": {"anyOf": [{"type": "null"}, schema("GridCode")]},
                "created_at": {"type": "string", "format": "date-time"},
                "created_by": {"type": "string"},
                "closed_at": {"type": ["string", "null"], "format": "date-time"},
                "cancelled": {"type": "string", "description": "why it was cancelled (absent unless it was)"},
                "units": {"type": "object", "description": "by unit id", "additionalProperties": {
                    "type": "object", "required": ["unit_id", "step", "times"],
                    "properties": {"unit_id": {"type": "integer"}, "step": {"enum": ["dispatched", "acknowledged", "en_route", "on_scene", "cleared"]}, "times": {"type": "object"}, "alarms": {"type": "array"}},
                }},
                "notified": {"type": "array", "items": {"type": "object"}},
            },
        },
    });
    for layer in Layer::ALL {
        let name = layer.name();
        schemas[format!("{name}_properties")] = props_schema(layer);
        schemas[format!("{name}_input")] = json!({
            "type": "object", "required": ["type", "geometry", "properties"],
            "description": "A GeoJSON Feature with a Point; members other than these are ignored",
            "properties": {
                "type": {"const": "Feature"},
                "geometry": schema("Point"),
                "properties": schema(&format!("{name}_properties")),
            },
        });
        schemas[format!("{name}_item")] = item_schema(layer);
        schemas[format!("{name}_collection")] = json!({
            "type": "object", "required": ["type", "features", "numberReturned"],
            "properties": {
                "type": {"const": "FeatureCollection"},
                "features": {"type": "array", "items": schema(&format!("{name}_item"))},
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
                "next_cursor": {"type": "integer", "description": "pass as cursor for the next page; absent on the last"},
            },
        });
    }
    json!({
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "`safegrid token --role ROLE --name NAME` mints one; roles admin, dispatcher, grid_worker, auditor, gateway"}},
        "headers": {
            "Retry-After": {"required": true, "description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}},
            "X-Content-Type-Options": {"required": true, "schema": {"const": "nosniff"}},
        },
        "responses": {
            "BadRequest": problem(400, "A parameter, header or body field is wrong (named in errors), or the body is not JSON", false),
            "Unauthorized": problem(401, "No bearer token where one is needed, or one that is not valid", false),
            "Forbidden": problem(403, "The caller's role or grid scope does not allow this; a tracker whose device did not prove itself (unknown device or wrong secret: one answer)", false),
            "NotFound": problem(404, "No such item, unit or file — or one outside the caller's grids (never a 403 that would confirm it exists)", false),
            "MethodNotAllowed": problem(405, "The path does not take this method (Allow lists those it takes)", false),
            "Conflict": problem(409, "The request conflicts with the current state: a busy unit, a step backwards, a grid layer that cannot be audited", false),
            "PayloadTooLarge": problem(413, "The body is larger than the route accepts", false),
            "UnsupportedMediaType": problem(415, "The body is not declared as JSON", false),
            "UnprocessableEntity": problem(422, "Well-formed JSON, but not a valid geometry (named in errors)", false),
            "TooManyRequests": problem(429, "Too many requests from this address or device; Retry-After says when to try again", true),
            "ServiceUnavailable": problem(503, "Load shed (the route's in-flight limit or the bound on this kind of work is reached), the ingest queue is full, or the store is not answering; nothing was done — retry after Retry-After", true),
        },
        "schemas": schemas,
    })
}

/// The whole document.
#[must_use]
#[allow(clippy::too_many_lines, reason = "one entry per route, read top to bottom")]
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut add = |p: &str, method: &str, o: Value| {
        let entry = paths.entry(p.to_owned()).or_insert_with(|| json!({}));
        entry[method] = o;
    };
    let id =
        |what: &str| path("id", what, json!({"type": "integer", "minimum": 1, "maximum": i64::MAX, "examples": [1]}));
    for layer in Layer::ALL {
        let name = layer.name();
        let sensitive = if layer.is_sensitive() { " Every read is written to the audit log." } else { "" };
        let item = schema(&format!("{name}_item"));
        let collection = schema(&format!("{name}_collection"));
        let input = schema(&format!("{name}_input"));
        let mut query = vec![
            param(
                "bbox",
                false,
                "minLon,minLat,maxLon,maxLat (min ≤ max; boxes across the antimeridian are not supported)",
                json!({
                    "type": "array", "minItems": 4, "maxItems": 4,
                    "prefixItems": [
                        {"type": "number", "minimum": -180, "maximum": 180}, {"type": "number", "minimum": -90, "maximum": 90},
                        {"type": "number", "minimum": -180, "maximum": 180}, {"type": "number", "minimum": -90, "maximum": 90},
                    ],
                    "items": {"type": "number"},
                }),
            ),
            lon_param(false, "With lat and radius_m (all three or none): centre of a radius query"),
            lat_param(false, "With lon and radius_m"),
            param(
                "radius_m",
                false,
                "With lon and lat: radius in metres",
                json!({"type": "number", "exclusiveMinimum": 0, "maximum": 100_000}),
            ),
            time_param("since", "Observed (reported, inspected, last seen; else updated) at or after"),
            time_param("until", "… and before"),
            bounded("limit", "Page size", 1, 1000, 100),
            param(
                "cursor",
                false,
                "next_cursor of the previous page",
                json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
            ),
            crs_param(),
        ];
        if let Some(Value::Object(b)) = query.first_mut() {
            b.insert("style".into(), "form".into());
            b.insert("explode".into(), false.into());
        }
        query.extend(filter_params(layer));
        let list_errors: &[u16] = &[400];
        add(
            &format!("/api/v1/{name}"),
            "get",
            op(
                name,
                &format!("Query {name}, paginated, in the caller's grids.{sensitive}"),
                Auth::Bearer,
                query,
                None,
                json!({"200": content("A page of items", "application/geo+json", collection.clone())}),
                list_errors,
            ),
        );
        add(
            &format!("/api/v1/{name}"),
            "post",
            op(
                name,
                &format!(
                    "Create one {name} item from a GeoJSON Feature with a Point; answered with the item and its Location."
                ),
                Auth::Bearer,
                vec![crs_param()],
                Some(geojson_body(&input)),
                json!({"201": {"description": "Created", "headers": {
                "Location": {"required": true, "schema": {"type": "string", "pattern": format!("^/api/v1/{name}/[0-9]+$")}},
                "X-Content-Type-Options": {"$ref": "#/components/headers/X-Content-Type-Options"},
            }, "content": {"application/geo+json": {"schema": item.clone()}}}}),
                &[400, 409, 413, 415, 422],
            ),
        );
        let (near_summary, near_auth, mut near, near_errors): (String, Auth, Vec<Value>, &[u16]) = if layer
            == Layer::Posts
        {
            (
                "The k nearest posts. Needs no token: the public sees the nearest open posts (name, kind, phone, opening hours, open_now, walking distance and time along footpaths where the road network covers the place; lon, lat, k up to 10 and crs only; 60 lookups a minute per address, then 429). With a token: the k nearest posts of the caller's grids with distance_m, and the filters.".to_owned(),
                Auth::Optional,
                point_params(),
                &[400, 403, 429],
            )
        } else {
            (
                format!("The k nearest {name} in the caller's grids, nearest first, each with distance_m.{sensitive}"),
                Auth::Bearer,
                point_params(),
                &[400],
            )
        };
        near.push(bounded(
            "k",
            if layer == Layer::Posts { "How many (the public: at most 10, default 3)" } else { "How many" },
            1,
            100,
            5,
        ));
        near.extend(filter_params(layer));
        let near_ok = if layer == Layer::Posts {
            json!({"200": contents("Nearest first", &[("application/geo+json", json!({"anyOf": [collection.clone(), schema("public_posts")]}))])})
        } else {
            json!({"200": content("Nearest first", "application/geo+json", collection.clone())})
        };
        add(
            &format!("/api/v1/{name}/nearest"),
            "get",
            op(name, &near_summary, near_auth, near, None, near_ok, near_errors),
        );
        let item_path = format!("/api/v1/{name}/{{id}}");
        add(
            &item_path,
            "get",
            op(
                name,
                &format!("One {name} item (404 outside the caller's grids).{sensitive}"),
                Auth::Bearer,
                vec![id("Item id"), crs_param()],
                None,
                json!({"200": content("The item", "application/geo+json", item.clone())}),
                &[400, 404],
            ),
        );
        add(
            &item_path,
            "put",
            op(
                name,
                "Replace position and properties.",
                Auth::Bearer,
                vec![id("Item id"), crs_param()],
                Some(geojson_body(&input)),
                json!({"200": content("The item as stored", "application/geo+json", item.clone())}),
                &[400, 404, 409, 413, 415, 422],
            ),
        );
        add(
            &item_path,
            "delete",
            op(
                name,
                "Delete. An item a dispatch or an alert refers to (an incident that has had a dispatch, a unit ever sent, a key person with zone alerts) is kept, so that its history stays readable: 409 naming what refers to it.",
                Auth::Bearer,
                vec![id("Item id")],
                None,
                json!({"204": bare("Deleted")}),
                &[400, 404, 409],
            ),
        );
    }
    add(
        "/api/v1/locate",
        "get",
        op(
            "grids",
            "The grid holding a point, with its ancestors and managers; or the nearest grid when outside every grid.",
            Auth::Bearer,
            point_params(),
            None,
            json!({"200": content("Where the point is", "application/json", json!({
                "type": "object", "required": ["inside"],
                "properties": {
                    "inside": {"type": "boolean"},
                    "lon": {"type": "number"}, "lat": {"type": "number"},
                    "grid": grid_unit_summary(),
                    "chain": {"type": "array", "items": grid_unit_summary(), "description": "district first"},
                    "reason": {"type": "string"},
                    "nearest": {"type": "object", "required": ["grid", "distance_m"], "properties": {"grid": grid_unit_summary(), "distance_m": {"type": "number", "minimum": 0}}},
                },
            }))}),
            &[400],
        ),
    );
    add(
        "/api/v1/grids",
        "get",
        op(
            "grids",
            "Grid units as GeoJSON, in code order.",
            Auth::Bearer,
            vec![
                param(
                    "level",
                    false,
                    "Only units of this level (town and village are read as district and community)",
                    json!({"type": "string", "enum": ["district", "town", "street", "community", "village", "grid"]}),
                ),
                grid_param("parent", "Only the children of this unit"),
                param(
                    "limit",
                    false,
                    "Page size, 1 to 5000 (500 by default), or all: every matching unit (a whole layer to save; `safegrid import --layer grids` reads it back)",
                    json!({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 5000, "default": 500}, {"const": "all"}]}),
                ),
                grid_param("cursor", "next_cursor of the previous page"),
            ],
            None,
            json!({"200": content("A page of units", "application/geo+json", json!({
                "allOf": [schema("FeatureCollection")],
                "required": ["numberReturned", "numberMatched", "totalUnits"],
                "properties": {"numberReturned": {"type": "integer", "minimum": 0}, "numberMatched": {"type": "integer", "minimum": 0, "description": "units matching level and parent, on every page"}, "totalUnits": {"type": "integer", "minimum": 0}, "next_cursor": schema("GridCode")},
            }))}),
            &[400],
        ),
    );
    let code = path("code", "Grid unit code", json!({"allOf": [schema("GridCode")], "examples": ["440304001"]}));
    add(
        "/api/v1/grids/{code}",
        "get",
        op(
            "grids",
            "One unit with its chain of ancestors.",
            Auth::Bearer,
            vec![code.clone()],
            None,
            json!({"200": content("The unit", "application/geo+json", schema("Feature"))}),
            &[400, 404],
        ),
    );
    add(
        "/api/v1/grids/{code}",
        "put",
        op(
            "grids",
            "Insert or replace one unit (admin); items whose grid changes are re-located in the same transaction.",
            Auth::Bearer,
            vec![code],
            Some(geojson_body(&schema("GridUnitInput"))),
            json!({"200": content("The unit as stored", "application/geo+json", schema("Feature"))}),
            &[400, 413, 415, 422],
        ),
    );
    let text_filter =
        |name: &str, what: &str| param(name, false, what, json!({"type": "string", "minLength": 1, "maxLength": 200}));
    let audit_row = json!({"type": "object", "required": ["id", "at", "actor", "role", "action", "request", "result_count", "subjects", "kind", "outcome", "repeats"],
    "properties": {
        "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
        "last_at": {"type": ["string", "null"], "format": "date-time"},
        "actor": {"type": "string"}, "role": {"type": "string"}, "action": {"type": "string"}, "request": {"type": "string"},
        "result_count": {"type": "integer"}, "layer": {"type": ["string", "null"]},
        "subjects": {"type": "array", "items": {"type": "integer"}},
        "kind": {"type": "string", "enum": ["read", "write"]},
        "outcome": {"type": "string", "enum": ["ok", "forbidden", "not_found", "invalid", "conflict", "failed"]},
        "repeats": {"type": "integer", "minimum": 1},
        "prev_hash": {"type": ["string", "null"]}, "hash": {"type": ["string", "null"]},
    }});
    add(
        "/api/v1/audit_log",
        "get",
        op(
            "audit",
            "The append-only, hash-chained audit log, newest first (admin, auditor); filters combine. Identical reads by one caller within a window are one row with a count (repeats, at … last_at). format=csv: RFC 4180 with a header row, the next page's cursor in X-Next-Before.",
            Auth::Bearer,
            vec![
                bounded("limit", "Rows (with format=csv: up to 100000, default 10000)", 1, 1000, 100),
                param(
                    "before",
                    false,
                    "Only rows with a smaller id (next_before of the previous page)",
                    json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
                ),
                text_filter("actor", "Token name, exactly"),
                param(
                    "role",
                    false,
                    "Caller's role",
                    json!({"type": "string", "enum": ["admin", "dispatcher", "grid_worker", "auditor", "gateway", "public"]}),
                ),
                param(
                    "layer",
                    false,
                    "Layer concerned",
                    json!({"type": "string", "enum": ["incidents", "rental_housing", "posts", "responders", "key_personnel"]}),
                ),
                param(
                    "subject",
                    false,
                    "Rows concerning this person's or unit's id",
                    json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
                ),
                text_filter(
                    "action",
                    "Action, exactly (query, get, nearest, tile, live, trace, create, update, delete…)",
                ),
                param("kind", false, "read or write", json!({"type": "string", "enum": ["read", "write"]})),
                time_param("since", "Rows reaching this time or later (RFC 3339, or a date: midnight UTC)"),
                time_param("until", "Rows begun before this time (RFC 3339, or a date)"),
                format_param(&["json", "csv"], "json, or csv (text/csv, a header row)"),
            ],
            None,
            json!({"200": contents("Rows", &[
                ("application/json", json!({
                    "type": "object", "required": ["rows", "next_before"],
                    "properties": {"rows": {"type": "array", "items": audit_row}, "next_before": {"type": ["integer", "null"]}},
                })),
                ("text/csv", json!({"type": "string"})),
            ])}),
            &[400],
        ),
    );
    let report_format = || {
        format_param(
            &["json", "geojson"],
            "json (the whole report) or geojson (the findings as features, grid findings with the grid's outline)",
        )
    };
    let audits: &[u16] = &[400, 409];
    add(
        "/api/v1/audit/geometry",
        "get",
        op(
            "audit",
            "Coverage audit of the live grid layer: gaps, overlaps, slivers (reported apart), grids outside their parent, codes, grids without a worker. One audit computes at a time (503 + Retry-After past it); answers are cached per data version.",
            Auth::Bearer,
            vec![
                report_format(),
                param(
                    "sliver_m2",
                    false,
                    "Gaps and overlaps below this area are slivers",
                    json!({"type": "number", "minimum": 0, "default": 100}),
                ),
                param(
                    "sliver_width_m",
                    false,
                    "Gaps and overlaps narrower than this on average are slivers",
                    json!({"type": "number", "minimum": 0, "default": 0.5}),
                ),
            ],
            None,
            json!({"200": report("Report: passed, summary, geometry.findings[] with kind, severity, grids, message, area_m2, location, bbox, geometry")}),
            audits,
        ),
    );
    add(
        "/api/v1/audit/workload",
        "get",
        op(
            "audit",
            "The geometry audit plus households and people (rental housing) and incidents per grid against the norm; outliers listed with their figures.",
            Auth::Bearer,
            vec![
                report_format(),
                param(
                    "min_households",
                    false,
                    "Norm: fewest households a grid (≤ max_households)",
                    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 300}),
                ),
                param(
                    "max_households",
                    false,
                    "Norm: most households a grid",
                    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 500}),
                ),
                param(
                    "max_people",
                    false,
                    "Norm: most people a grid",
                    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 2500}),
                ),
            ],
            None,
            json!({"200": report("Report with workload.grids[] and workload.findings[]")}),
            audits,
        ),
    );
    add(
        "/api/v1/audit/patrol",
        "get",
        op(
            "audit",
            "Patrol coverage of the live layer from the responders' traces: per grid the share of its H3 resolution-10 cells a patrol passed through, patrol hours and last patrol; grids unpatrolled in the last 24 h (errors) and below min_share (warnings). The read of traces is written to the audit log.",
            Auth::Bearer,
            vec![
                report_format(),
                bounded("hours", "Window length", 1, 744, 24),
                time_param("until", "Window end (default now)"),
                param(
                    "min_share",
                    false,
                    "List grids whose patrolled share is below this",
                    json!({"type": "number", "minimum": 0, "maximum": 1, "default": 0.25}),
                ),
            ],
            None,
            json!({"200": report("Report with patrol.grids[] and patrol.findings[]")}),
            audits,
        ),
    );
    add(
        "/api/v1/audit/layers",
        "post",
        op(
            "audit",
            "Another grid layer of the territory (GeoJSON FeatureCollection in the body) compared with the live layer (三网合一): layers.pairs[] — which grids intersect which, with shares — and boundary_mismatch / coverage_mismatch findings where they disagree by more than tolerance_m. The posted layer is read as an audit reads a file: its faults are reported, not refused.",
            Auth::Bearer,
            vec![
                report_format(),
                param(
                    "tolerance_m",
                    false,
                    "Boundaries closer than this on average agree",
                    json!({"type": "number", "minimum": 0, "default": 5}),
                ),
            ],
            Some(
                json!({"required": true, "content": {"application/geo+json": {"schema": {"type": "object", "required": ["type", "features"], "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array", "minItems": 1, "items": schema("LenientFeature")}}}}}}),
            ),
            json!({"200": report("Report with layers")}),
            &[400, 409, 413],
        ),
    );
    add(
        "/api/v1/audit/response",
        "get",
        op(
            "audit",
            "Response coverage: share of the territory (H3 res-10 cells) and of the households (rental housing) within `minutes` of the nearest post or available responder — by road when a network is loaded, else straight line at 20 km/h; uncovered areas (unreachable findings with their households); the site where one more post would reach the most uncovered households. Audited.",
            Auth::Bearer,
            vec![
                report_format(),
                param("minutes", false, "T", json!({"type": "number", "minimum": 1, "maximum": 60, "default": 5})),
            ],
            None,
            json!({"200": report("Report with response")}),
            audits,
        ),
    );
    add(
        "/api/v1/gridding",
        "post",
        op(
            "audit",
            "Automatic gridding (admin, auditor): communities in, grids of min–max households out (contiguous, compact, covering each community exactly, coded beneath it; a grid mostly covering a current grid keeps its code). Households from the live rental-housing layer. Nothing is stored.",
            Auth::Bearer,
            vec![],
            Some(json_body(json!({"type": "object", "required": ["communities"], "properties": {
            "communities": {"type": "object", "required": ["type", "features"], "description": "FeatureCollection of (Multi)Polygons with code and name", "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array", "minItems": 1, "items": schema("Community")}}},
            "min_households": {"type": "integer", "minimum": 1, "maximum": u64::MAX, "default": 300, "description": "≤ max_households"},
            "max_households": {"type": "integer", "minimum": 1, "maximum": u64::MAX, "default": 500},
            "res": {"type": "integer", "minimum": 9, "maximum": 13, "default": 11}}}))),
            json!({"200": content("The communities, then the grids with households and compactness; summary", "application/geo+json", schema("FeatureCollection"))}),
            &[400, 409, 413],
        ),
    );
    // Any of these, or several joined by commas, each named once (400 when named twice); the
    // enum lists each alone and the map wall's combinations.
    let tile_layers = || {
        path(
            "layers",
            "grids, incidents_h3, incidents, rental_housing, posts, responders, key_personnel, or several joined by commas, each once (e.g. grids,incidents)",
            json!({
                "type": "string",
                "enum": ["grids", "incidents_h3", "incidents", "rental_housing", "posts", "responders", "key_personnel",
                         "grids,incidents", "grids,incidents_h3", "grids,posts,responders", "incidents,rental_housing,posts,responders,key_personnel"],
            }),
        )
    };
    let tile_params = vec![
        tile_layers(),
        path("z", "zoom", json!({"type": "integer", "minimum": 0, "maximum": 24})),
        path("x", "column, below 2^z", json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})),
        path("y", "row, below 2^z", json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})),
        time_param("since", "Point layers: observed at or after"),
        time_param("until", "Point layers: … and before"),
        param("type", false, "Point layers: type / kind / category", json!({"type": "string"})),
        param(
            "status",
            false,
            "Point layers: status, or several joined by commas (any of them; each one some point layer has)",
            list_of(&{
                let mut all: Vec<&str> = Layer::ALL.iter().flat_map(|l| l.statuses().iter().copied()).collect();
                all.sort_unstable();
                all.dedup();
                all
            }),
        ),
        param("priority", false, "Incidents: priority, 1 to 4", json!({"type": "integer", "minimum": 1, "maximum": 4})),
        param("capability", false, "Responders: capability tag", json!({"type": "string"})),
        grid_param("grid", "Point layers: in this unit"),
        param("v", false, "Ignored: a client's cache-buster", json!({"type": "string"})),
    ];
    add(
        "/tiles/{layers}/{z}/{x}/{y}.mvt",
        "get",
        op(
            "tiles",
            "A Mapbox Vector Tile built from the live state (never stale). Grids: districts below z11, grids from z11. Point layers are clustered (point_count) above 2,000 points a tile; incidents_h3 counts incidents per H3 cell. gzip on Accept-Encoding. ETag/If-None-Match; key-personnel tiles are audited and never 304.",
            Auth::Bearer,
            tile_params,
            None,
            json!({
                "200": contents("MVT", &[("application/vnd.mapbox-vector-tile", json!({"type": "string", "format": "binary"}))]),
                "304": bare("Not modified"),
            }),
            &[400, 404],
        ),
    );
    add(
        "/tiles/{layers}.json",
        "get",
        op(
            "tiles",
            "TileJSON 3.0 for a layer or comma-joined layers.",
            Auth::Bearer,
            vec![tile_layers()],
            None,
            json!({"200": content("TileJSON", "application/json", json!({"type": "object", "required": ["tilejson", "tiles", "vector_layers", "minzoom", "maxzoom"], "properties": {
                "tilejson": {"const": "3.0.0"}, "tiles": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "vector_layers": {"type": "array", "items": {"type": "object", "required": ["id", "fields"]}},
                "minzoom": {"type": "integer"}, "maxzoom": {"type": "integer"},
                "bounds": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
            }}))}),
            &[400, 404],
        ),
    );
    add(
        "/api/v1/whoami",
        "get",
        op(
            "wall",
            "The caller: name, role, grid scope, the layers it may read, and whether it may read the audit log. Without a token: the public.",
            Auth::Optional,
            vec![],
            None,
            json!({"200": content("The caller", "application/json", json!({"type": "object", "required": ["name", "role", "grids", "layers", "may_read_audit"], "properties": {
                "name": {"type": "string"}, "role": {"enum": ["admin", "dispatcher", "grid_worker", "auditor", "gateway", "public"]},
                "grids": {"type": "array", "items": schema("GridCode")}, "layers": {"type": "array", "items": {"enum": Layer::ALL.map(Layer::name)}},
                "may_read_audit": {"type": "boolean"}, "may_dispatch": {"type": "boolean"},
                "may_read_dispatches": {"type": "boolean"}, "may_read_whereabouts": {"type": "boolean"},
                "may_read_wall": {"type": "boolean"},
            }}))}),
            &[],
        ),
    );
    add(
        "/api/v1/stats",
        "get",
        op(
            "wall",
            "The map wall's statistics within the caller's grid scope: incidents reported in the window by status; those of the asked statuses (unresolved — open, dispatched, on scene — by default) in total, by priority, by district and the ten grids with most; items per readable layer.",
            Auth::Bearer,
            vec![
                param(
                    "since",
                    false,
                    "Incidents reported at or after (RFC 3339 or YYYY-MM-DD)",
                    json!({"type": "string", "format": "date-time"}),
                ),
                param("until", false, "Incidents reported before", json!({"type": "string", "format": "date-time"})),
                param(
                    "status",
                    false,
                    "Incident statuses counted, joined by commas",
                    json!({"type": "string", "examples": ["open,dispatched,on_scene"]}),
                ),
            ],
            None,
            json!({"200": content("Statistics", "application/json", json!({"type": "object", "required": ["incidents_by_status", "open_incidents", "counts"], "properties": {
                "incidents_by_status": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                "open_incidents": {"type": "object", "required": ["statuses", "total", "by_priority", "by_district", "top_grids"]},
                "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
            }}))}),
            &[400],
        ),
    );
    add(
        "/api/v1/search",
        "get",
        op(
            "wall",
            "The wall's search: an incident by number, a unit by callsign, a grid by code or name, a post by name, a place by an address safegrid holds, a street or place of the basemap by its OSM name; each with where it is (a grid with its box). Only what the role may read, in its grids; units found are audited.",
            Auth::Bearer,
            vec![
                param(
                    "q",
                    true,
                    "The text (1 to 100 characters)",
                    json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"}),
                ),
                bounded("limit", "How many results", 1, 50, 20),
            ],
            None,
            json!({"200": content("Results", "application/json", json!({"type": "object", "required": ["q", "results"], "properties": {
                "q": {"type": "string"},
                "results": {"type": "array", "items": {"type": "object", "required": ["kind", "label", "lon", "lat"], "properties": {
                    "kind": {"enum": ["incident", "unit", "grid", "post", "address", "street"]},
                    "label": {"type": "string"}, "lon": {"type": "number"}, "lat": {"type": "number"},
                }}},
            }}))}),
            &[400],
        ),
    );
    add(
        "/api/v1/events",
        "get",
        op(
            "wall",
            "Server-sent events: a `versions` event with the data version of the grids and of each readable layer, at once and within half a second of every change (versions only: refetch tiles or items to see what changed). With with=units (roles that may read whereabouts): a `units` event {full, units, moves, removed, at}: every responder in the caller's grids at first (full: true), then the lines that changed in `units`, units that only moved in `moves` as [id, lon, lat, fix time in ms], and the ids gone in `removed`; audited as live_stream. With with=dispatches: a `dispatches` event {open: [Dispatch]}, then a `dispatch` event (a Dispatch) for each that changes. Gzipped (flushed per event) when the client accepts it. A reconnect starts with the snapshots again. The stream ends when the token is revoked.",
            Auth::Bearer,
            vec![param(
                "with",
                false,
                "What else to stream, joined by commas: units, dispatches",
                json!({"type": "string", "examples": ["units,dispatches"]}),
            )],
            None,
            json!({"200": contents("An endless event stream", &[("text/event-stream", json!({"type": "string"}))])}),
            &[400, 403],
        ),
    );
    add(
        "/",
        "get",
        op(
            "wall",
            "The dispatch-centre map wall (HTML; its files under /web/ are built into the binary).",
            Auth::None,
            vec![],
            None,
            json!({"200": contents("HTML", &[("text/html", json!({"type": "string"}))]), "304": bare("Not modified (If-None-Match)")}),
            &[],
        ),
    );
    add(
        "/web/{path}",
        "get",
        op(
            "wall",
            "A file of the map wall (scripts, styles, MapLibre GL JS), with a Content-Security-Policy.",
            Auth::None,
            vec![path(
                "path",
                "file path under /web/",
                json!({"type": "string", "enum": super::web::paths().collect::<Vec<_>>()}),
            )],
            None,
            json!({"200": contents("The file", &[("text/html", json!({"type": "string"})), ("text/javascript", json!({"type": "string"})), ("text/css", json!({"type": "string"})), ("text/plain", json!({"type": "string"}))]), "304": bare("Not modified (If-None-Match)")}),
            &[404],
        ),
    );
    // The offline basemap.
    let basemap_missing: &[u16] = &[404];
    add(
        "/basemap/style.json",
        "get",
        op(
            "basemap",
            "The wall's dark MapLibre style (with or without a basemap).",
            Auth::None,
            vec![],
            None,
            json!({"200": content("MapLibre style", "application/json", json!({"type": "object", "required": ["version", "sources", "layers"]})), "304": bare("Not modified")}),
            &[],
        ),
    );
    add(
        "/basemap/tiles.json",
        "get",
        op(
            "basemap",
            "TileJSON of the basemap (404 when the server runs without one).",
            Auth::None,
            vec![],
            None,
            json!({"200": content("TileJSON", "application/json", json!({"type": "object", "required": ["tiles"]})), "304": bare("Not modified")}),
            basemap_missing,
        ),
    );
    add(
        "/basemap/tiles/{z}/{x}/{y}.mvt",
        "get",
        op(
            "basemap",
            "A basemap tile from the MBTiles file; 204 where the file has none.",
            Auth::None,
            vec![
                path("z", "zoom", json!({"type": "integer", "minimum": 0, "maximum": 24})),
                path("x", "column, below 2^z", json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})),
                path("y", "row, below 2^z (XYZ)", json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})),
            ],
            None,
            json!({
                "200": contents("MVT (gzip when asked and stored so)", &[("application/vnd.mapbox-vector-tile", json!({"type": "string", "format": "binary"}))]),
                "204": bare("No tile here"), "304": bare("Not modified"),
            }),
            &[400, 404],
        ),
    );
    add(
        "/basemap/fonts/{stack}/{range}.pbf",
        "get",
        op(
            "basemap",
            "A glyph range (SDF PBF) of a font stack: compiled-in ranges, or those of --glyphs; empty for a range no font covers.",
            Auth::None,
            vec![
                path("stack", "font stack, e.g. Noto Sans Regular", json!({"type": "string", "minLength": 1})),
                path(
                    "range",
                    "START-END: 256 code points from a multiple of 256 (0-255, 256-511, … 1113856-1114111)",
                    json!({"type": "string", "pattern": "^[0-9]{1,7}-[0-9]{1,7}$"}),
                ),
            ],
            None,
            json!({"200": contents("Glyphs", &[("application/x-protobuf", json!({"type": "string", "format": "binary"}))]), "304": bare("Not modified")}),
            &[400],
        ),
    );
    add(
        "/basemap/{file}",
        "get",
        op(
            "basemap",
            "The basemap's icons: sprite.json, sprite.png, sprite@2x.json, sprite@2x.png.",
            Auth::None,
            vec![path(
                "file",
                "sprite file",
                json!({"type": "string", "enum": ["sprite.json", "sprite.png", "sprite@2x.json", "sprite@2x.png"]}),
            )],
            None,
            json!({"200": contents("Sprite index or sheet", &[("application/json", json!({"type": "object"})), ("image/png", json!({"type": "string", "format": "binary"}))]), "304": bare("Not modified")}),
            &[404],
        ),
    );
    // Live positions and dispatch.
    // The id is DEVICE:SECRET (printable, the device part at most 64 characters); the schema
    // asks for the characters trackers use, and the server answers anything else 400 or 401.
    let osmand_fields = json!({
        "id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}(:[A-Za-z0-9._~-]+)?$", "description": "DEVICE:SECRET, the tracker app's device identifier (deviceid is also read)"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90, "description": "latitude (or location=lat,lon in place of lat and lon)"},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "timestamp": {"description": "Unix seconds or milliseconds, or ISO-8601 (default: now)", "anyOf": [
            {"type": "string", "pattern": "^[0-9]{1,15}(\\.[0-9]{1,3})?$"}, {"type": "string", "format": "date-time"},
        ]},
        "speed": {"type": "number", "minimum": 0, "maximum": 1000, "description": "knots"},
        "bearing": {"type": "number", "minimum": 0, "maximum": 360, "description": "degrees (or heading)"},
        "altitude": {"type": "number", "minimum": -500, "maximum": 20_000, "description": "metres"},
        "accuracy": {"type": "number", "minimum": 0, "maximum": 1_000_000, "description": "metres"},
        "batt": {"type": "number", "minimum": 0, "maximum": 100, "description": "percent"},
        "valid": {"type": "boolean", "description": "false marks a doubtful fix (also 1 or 0)"},
    });
    let osmand_params: Vec<Value> = osmand_fields
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, s)| {
                    let required = ["id", "lat", "lon"].contains(&k.as_str());
                    param(k, required, s["description"].as_str().unwrap_or(k), s.clone())
                })
                .collect()
        })
        .unwrap_or_default();
    let osmand_ok =
        json!({"200": bare("Stored (empty body), or a repeat of the stored fix: text/plain `refused: duplicate`")});
    let osmand_summary = "A tracker's report in the OsmAnd / Traccar Client protocol (also any path on the OsmAnd port, 5055 by default). No bearer token: the device proves itself with its secret, sent as id=DEVICE:SECRET; an unknown device and a missing or wrong secret get the same 403. 200 once stored; 400 naming the parameter, or timestamp for a fix older than the history keeps or ahead of the server's clock (not stored); 429 past the per-device and per-address limits; 503 + Retry-After when the queue is full.";
    add(
        "/api/v1/osmand",
        "get",
        op(
            "positions",
            osmand_summary,
            Auth::None,
            osmand_params.clone(),
            None,
            osmand_ok.clone(),
            &[400, 401, 403, 429],
        ),
    );
    add(
        "/api/v1/osmand",
        "post",
        op(
            "positions",
            "The same, the parameters as a form body (application/x-www-form-urlencoded) or in the query string; or Traccar Client 9's JSON body (speed in m/s, battery level a fraction, -1 for an unknown speed or heading; a refusal names the JSON path).",
            Auth::None,
            vec![],
            Some(json!({"required": true, "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["id", "lat", "lon"], "properties": osmand_fields,
                    "additionalProperties": {"type": "string", "description": "other fields are kept as the fix's attributes (each once)"}}},
                "application/json": {"schema": {"type": "object", "required": ["device_id", "location"], "properties": {
                    "device_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}(:[A-Za-z0-9._~-]+)?$", "description": "DEVICE_ID:SECRET"},
                    "location": {"type": "object", "required": ["coords"], "properties": {
                        "timestamp": {"type": "string", "format": "date-time"},
                        "coords": {"type": "object", "required": ["latitude", "longitude"], "properties": {
                            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                            "accuracy": {"type": "number", "minimum": 0, "maximum": 1_000_000},
                            "speed": {"anyOf": [{"const": -1}, {"type": "number", "minimum": 0, "maximum": 514}], "description": "m/s; -1: not known"},
                            "heading": {"anyOf": [{"const": -1}, {"type": "number", "minimum": 0, "maximum": 360}], "description": "degrees; -1: not known"},
                            "altitude": {"type": "number", "minimum": -500, "maximum": 20000},
                        }},
                        "battery": {"type": "object", "properties": {"level": {"anyOf": [{"const": -1}, {"type": "number", "minimum": 0, "maximum": 1}]}, "is_charging": {"type": "boolean"}}},
                        "is_moving": {"type": "boolean"}, "odometer": {"type": "number"}, "event": {"type": "string"},
                        "activity": {"type": "object", "properties": {"type": {"type": "string"}}},
                    }},
                }}},
            }})),
            osmand_ok,
            &[400, 401, 403, 413, 429],
        ),
    );
    add(
        "/api/v1/positions",
        "post",
        op(
            "positions",
            "A gateway's batch {\"fixes\": [{device_id, time, lon, lat, speed_mps, bearing_deg, altitude_m, accuracy_m, battery_pct, valid, attributes}]}, up to 10,000 fixes (gateway, admin). Answered once committed with received, stored, live, history and the refused fixes by index and reason. One bad fix refuses the batch, naming it (fixes[i].field).",
            Auth::Bearer,
            vec![],
            Some(json_body(
                json!({"type": "object", "additionalProperties": false, "required": ["fixes"], "properties": {"fixes": {"type": "array", "maxItems": 10_000, "items": {
                    "type": "object", "additionalProperties": false, "required": ["device_id", "time", "lon", "lat"],
                    "properties": {
                        "device_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}(:[A-Za-z0-9._~-]+)?$", "description": "DEVICE, or DEVICE:SECRET without device_secret"},
                        "device_secret": {"type": ["string", "null"]},
                        "time": {"anyOf": [
                            {"type": "string", "format": "date-time"},
                            {"type": "number", "minimum": 0, "maximum": 8_210_266_876_799_999_u64, "description": "unix seconds (below 2^31) or milliseconds, up to the year 262142"},
                            {"type": "string", "pattern": "^[0-9]{1,15}(\\.[0-9]{1,3})?$"},
                        ]},
                        "lon": {"type": "number", "minimum": -180, "maximum": 180}, "lat": {"type": "number", "minimum": -90, "maximum": 90},
                        "speed_mps": {"type": ["number", "null"], "minimum": 0, "maximum": 500}, "bearing_deg": {"type": ["number", "null"], "minimum": 0, "maximum": 360},
                        "altitude_m": {"type": ["number", "null"], "minimum": -500, "maximum": 20_000}, "accuracy_m": {"type": ["number", "null"], "minimum": 0, "maximum": 1_000_000},
                        "battery_pct": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
                        "valid": {"type": "boolean", "default": true},
                        "attributes": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                    },
                }}}}),
            )),
            json!({"200": content("Receipt", "application/json", json!({"type": "object", "required": ["received", "stored", "live", "history", "refused"], "properties": {
                "received": {"type": "integer", "minimum": 0}, "stored": {"type": "integer", "minimum": 0}, "live": {"type": "integer", "minimum": 0}, "history": {"type": "integer", "minimum": 0},
                "refused": {"type": "array", "items": {"type": "object", "required": ["index", "reason"]}},
            }}))}),
            &[400, 413, 415],
        ),
    );
    let device = || {
        path(
            "device_id",
            "The device id a responder or key person carries (1 to 64 printable characters)",
            json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "examples": ["seed-device-1"]}),
        )
    };
    add(
        "/api/v1/devices/{device_id}/secret",
        "post",
        op(
            "positions",
            "Mint a tracker's secret, or rotate it (the old one stops working at once); shown this once, with the identifier to enter in Traccar Client or OsmAnd (DEVICE_ID:SECRET). Admins; dispatchers for responders' trackers. 404 for a device no one carries. Audited.",
            Auth::Bearer,
            vec![device()],
            None,
            json!({"201": content("The secret", "application/json", json!({"type": "object", "required": ["device_id", "carrier", "secret", "identifier"], "properties": {
                "device_id": {"type": "string"}, "secret": {"type": "string", "minLength": 1}, "identifier": {"type": "string"},
                "carrier": {"type": "object", "required": ["subject", "id"], "properties": {"id": {"type": "integer"}}},
            }}))}),
            &[400, 404],
        ),
    );
    add(
        "/api/v1/devices/{device_id}/secret",
        "delete",
        op(
            "positions",
            "Revoke a tracker's secret: its fixes are refused from then on. Audited.",
            Auth::Bearer,
            vec![device()],
            None,
            json!({"204": bare("Revoked (or there was none)")}),
            &[400, 404],
        ),
    );
    let freshness = ["live", "stale", "lost", "none"];
    add(
        "/api/v1/positions/live",
        "get",
        op(
            "positions",
            "Every responder in scope with its latest fix, freshness (live, stale, lost, none), age and grid. Audited.",
            Auth::Bearer,
            vec![
                param(
                    "freshness",
                    false,
                    "Only these",
                    json!({"type": "array", "items": {"enum": freshness}, "minItems": 1}),
                ),
                grid_param("grid", "Only within this unit"),
                crs_param(),
            ],
            None,
            json!({"200": content("GeoJSON FeatureCollection", "application/geo+json", json!({"allOf": [schema("FeatureCollection")], "required": ["generated_at"], "properties": {
                "generated_at": {"type": "string", "format": "date-time"},
                "features": {"type": "array", "items": {"type": "object", "required": ["id", "properties"], "properties": {"properties": {"type": "object", "required": ["callsign", "kind", "status", "freshness"], "properties": {"freshness": {"enum": freshness}}}}}},
            }}))}),
            &[400],
        ),
    );
    if let Some(Value::Object(p)) =
        paths.get_mut("/api/v1/positions/live").and_then(|v| v["get"]["parameters"].get_mut(0))
    {
        p.insert("style".into(), "form".into());
        p.insert("explode".into(), false.into());
    }
    let mut add = |p: &str, method: &str, o: Value| {
        let entry = paths.entry(p.to_owned()).or_insert_with(|| json!({}));
        entry[method] = o;
    };
    add(
        "/api/v1/responders/{id}/trace",
        "get",
        op(
            "positions",
            "A unit's position history between since and until (default: the 24 h before until; since < until), split into trips where it reported nothing for over gap_s: a GeoJSON Feature (a LineString for one trip, a MultiLineString for several, with a time per position), GPX 1.1 (a trkseg per trip, speed and course in Garmin's TrackPointExtension) or JSON points; simplify_m simplifies each trip for display; flagged=true includes fixes kept as history only. Audited.",
            Auth::Bearer,
            vec![
                id("Responder id"),
                time_param("since", "From"),
                time_param("until", "To (default now)"),
                format_param(&["geojson", "gpx", "json"], "geojson, gpx or json"),
                param(
                    "simplify_m",
                    false,
                    "Douglas–Peucker tolerance, metres",
                    json!({"type": "number", "minimum": 0, "maximum": 10_000}),
                ),
                param("flagged", false, "Include flagged fixes", json!({"type": "boolean"})),
                bounded("limit", "Points", 1, 100_000, 20_000),
                bounded("gap_s", "Seconds without a fix that end a trip", 1, 604_800, 600),
                crs_param(),
            ],
            None,
            json!({"200": contents("The trace", &[
                ("application/geo+json", schema("Feature")),
                ("application/gpx+xml", json!({"type": "string"})),
                ("application/json", json!({"type": "object", "required": ["unit_id", "points"], "properties": {"unit_id": {"type": "integer"}, "points": {"type": "array", "items": {"type": "object", "required": ["time", "lon", "lat"]}}}})),
            ])}),
            &[400, 404],
        ),
    );
    add(
        "/api/v1/geofence/events",
        "get",
        op(
            "positions",
            "Grid crossings (enter, exit; 20 m hysteresis) of responders and monitored key persons (subject), and key persons' zone alerts (zone_breach, zone_return, with the person's assigned grid), after an event id, in the caller's grids. Audited.",
            Auth::Bearer,
            vec![
                param("after", false, "Event id", json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})),
                bounded("limit", "Events", 1, 10_000, 1000),
            ],
            None,
            json!({"200": content("Events", "application/json", json!({"type": "object", "required": ["events", "last_id"], "properties": {"events": {"type": "array", "items": {"type": "object", "required": ["id"]}}, "last_id": {"type": "integer"}}}))}),
            &[400],
        ),
    );
    add(
        "/api/v1/geofence/stream",
        "get",
        op(
            "positions",
            "The same as server-sent events (event: enter|exit|zone_breach|zone_return, id: the event id); resume with Last-Event-ID or after=. Audited.",
            Auth::Bearer,
            vec![
                param("after", false, "Event id", json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})),
                json!({"name": "Last-Event-ID", "in": "header", "required": false, "schema": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}}),
            ],
            None,
            json!({"200": contents("An endless event stream", &[("text/event-stream", json!({"type": "string"}))])}),
            &[400],
        ),
    );
    add(
        "/api/v1/dispatch/nearest",
        "get",
        op(
            "dispatch",
            "The k units that would arrive first, by road travel time where the road network covers the place (eta_source road) and by straight-line estimate elsewhere (estimate); available units with a live fix unless include says otherwise. Road races are bounded (503 + Retry-After past it). Audited.",
            Auth::Bearer,
            vec![
                lon_param(true, "Longitude"),
                lat_param(true, "Latitude"),
                bounded("k", "How many", 1, 50, 5),
                param("kind", false, "Responder kind", json!({"enum": ResponderKind::NAMES})),
                param("capability", false, "A capability tag", json!({"type": "string"})),
                param(
                    "include",
                    false,
                    "Also these units",
                    json!({"type": "array", "items": {"enum": ["stale", "lost", "untracked", "busy"]}}),
                ),
                crs_param(),
            ],
            None,
            json!({"200": content("Fastest first", "application/geo+json", json!({"allOf": [schema("FeatureCollection")], "properties": {
                "features": {"type": "array", "items": {"type": "object", "required": ["id", "properties"], "properties": {"properties": {"type": "object", "required": ["eta_s", "eta_source", "distance_m", "freshness"], "properties": {"eta_source": {"enum": ["road", "estimate"]}}}}}},
                "road_network": {"type": ["object", "null"]},
            }}))}),
            &[400],
        ),
    );
    if let Some(Value::Array(ps)) = paths.get_mut("/api/v1/dispatch/nearest").map(|v| &mut v["get"]["parameters"]) {
        for p in ps.iter_mut().filter(|p| p["name"] == "include") {
            p["style"] = "form".into();
            p["explode"] = false.into();
        }
    }
    let mut add = |p: &str, method: &str, o: Value| {
        let entry = paths.entry(p.to_owned()).or_insert_with(|| json!({}));
        entry[method] = o;
    };
    let dispatch_one = || json!({"200": content("The dispatch", "application/json", schema("Dispatch"))});
    let units =
        json!({"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1, "maximum": i64::MAX}});
    add(
        "/api/v1/dispatches",
        "get",
        op(
            "dispatch",
            "Dispatches, newest first (open=true: not closed), in the caller's grids.",
            Auth::Bearer,
            vec![
                param("open", false, "Only those not closed", json!({"type": "boolean", "default": false})),
                bounded("limit", "How many", 1, 1000, 100),
            ],
            None,
            json!({"200": content("Dispatches", "application/json", json!({"type": "object", "required": ["dispatches"], "properties": {"dispatches": {"type": "array", "items": schema("Dispatch")}}}))}),
            &[400],
        ),
    );
    add(
        "/api/v1/dispatches",
        "post",
        op(
            "dispatch",
            "Create a dispatch for an incident and send units: {incident_id, units, note}. Dispatchers and admins. 404 for an unknown incident or unit, 409 for a busy unit.",
            Auth::Bearer,
            vec![],
            Some(json_body(
                json!({"type": "object", "additionalProperties": false, "required": ["incident_id", "units"], "properties": {
                    "incident_id": {"type": "integer", "minimum": 1, "maximum": i64::MAX}, "units": units.clone(), "note": {"type": ["string", "null"]},
                }}),
            )),
            json!({"201": content("The dispatch with its deadlines", "application/json", schema("Dispatch"))}),
            &[400, 404, 409, 413, 415],
        ),
    );
    let dispatch_id =
        || path("id", "Dispatch id", json!({"type": "integer", "minimum": 1, "maximum": i64::MAX, "examples": [1]}));
    add(
        "/api/v1/dispatches/{id}",
        "get",
        op(
            "dispatch",
            "A dispatch: units, their steps with times, alarms, notifications.",
            Auth::Bearer,
            vec![dispatch_id()],
            None,
            dispatch_one(),
            &[400, 404],
        ),
    );
    add(
        "/api/v1/dispatches/{id}/units",
        "post",
        op(
            "dispatch",
            "Send more units: {units}.",
            Auth::Bearer,
            vec![dispatch_id()],
            Some(json_body(
                json!({"type": "object", "additionalProperties": false, "required": ["units"], "properties": {"units": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": i64::MAX}}}}),
            )),
            dispatch_one(),
            &[400, 404, 409, 413, 415],
        ),
    );
    add(
        "/api/v1/dispatches/{id}/units/{unit}",
        "post",
        op(
            "dispatch",
            "A unit's next step: {step: acknowledged | en_route | on_scene | cleared}; steps only go forward (409). The dispatch closes when its last unit clears.",
            Auth::Bearer,
            vec![
                dispatch_id(),
                path(
                    "unit",
                    "Responder id",
                    json!({"type": "integer", "minimum": 1, "maximum": i64::MAX, "examples": [2]}),
                ),
            ],
            Some(json_body(
                json!({"type": "object", "additionalProperties": false, "required": ["step"], "properties": {"step": {"enum": ["acknowledged", "en_route", "on_scene", "cleared"]}}}),
            )),
            dispatch_one(),
            &[400, 404, 409, 413, 415],
        ),
    );
    add(
        "/api/v1/dispatches/{id}/city_wide",
        "post",
        op(
            "dispatch",
            "全城响应: notify every unit (not off duty) and every post within {radius_m} of the incident or within {within_s} of travel (one of the two).",
            Auth::Bearer,
            vec![dispatch_id()],
            Some(json_body(json!({"type": "object", "additionalProperties": false,
            "properties": {"radius_m": {"type": ["number", "null"]}, "within_s": {"type": ["number", "null"]}},
            "oneOf": [
                {"required": ["radius_m"], "properties": {"radius_m": {"type": "number", "exclusiveMinimum": 0, "maximum": 50_000}, "within_s": {"type": "null"}}},
                {"required": ["within_s"], "properties": {"within_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 7_200}, "radius_m": {"type": "null"}}},
            ]}))),
            json!({"200": content("Units and posts notified", "application/json", json!({"type": "object"}))}),
            &[400, 404, 409, 413, 415],
        ),
    );
    add(
        "/api/v1/dispatch/queue",
        "get",
        op(
            "dispatch",
            "The queue: open incidents no unit has been sent to, in the caller's grids, most urgent first (priority, then the longest waiting), each with waiting_s.",
            Auth::Bearer,
            vec![bounded("limit", "How many", 1, 500, 50), crs_param()],
            None,
            json!({"200": content("Waiting incidents", "application/geo+json", json!({
                "type": "object", "required": ["type", "features", "numberReturned", "numberMatched"],
                "properties": {
                    "type": {"const": "FeatureCollection"},
                    "features": {"type": "array", "items": schema("incidents_item")},
                    "numberReturned": {"type": "integer"}, "numberMatched": {"type": "integer"},
                    "generated_at": {"type": "string", "format": "date-time"},
                },
            }))}),
            &[400],
        ),
    );
    add(
        "/api/v1/dispatches/{id}/cancel",
        "post",
        op(
            "dispatch",
            "Cancel an open dispatch: every unit still on it is cleared with the reason, the dispatch closes, and the incident returns to the queue (open) — or closes, with close_incident — unless another dispatch is still on it.",
            Auth::Bearer,
            vec![dispatch_id()],
            Some(json_body(json!({"type": "object", "additionalProperties": false, "required": ["reason"],
                "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"},
                               "close_incident": {"type": "boolean", "default": false}}}))),
            dispatch_one(),
            &[400, 404, 409, 413, 415],
        ),
    );
    add(
        "/api/v1/incidents/{id}/timeline",
        "get",
        op(
            "dispatch",
            "An incident's dispatch log in order: created, each step, notifications, deadline alarms, closed.",
            Auth::Bearer,
            vec![id("Incident id")],
            None,
            json!({"200": content("Events", "application/json", json!({"type": "object", "required": ["incident_id", "created_at", "events"], "properties": {"incident_id": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}, "events": {"type": "array", "items": {"type": "object"}}}}))}),
            &[400, 404],
        ),
    );
    let deadline = json!({"type": "object", "required": ["ack_s", "arrive_s"], "description": "ack_s ≤ arrive_s",
        "properties": {"ack_s": {"type": "integer", "minimum": 1, "maximum": 4_294_967_295_u64}, "arrive_s": {"type": "integer", "minimum": 1, "maximum": 4_294_967_295_u64}}});
    let deadlines = json!({"type": "object", "required": ["default", "grids"], "properties": {"default": deadline, "grids": {"type": "object", "description": "by grid-code prefix", "additionalProperties": deadline}}});
    let mut deadlines_in = deadlines.clone();
    deadlines_in["additionalProperties"] = false.into();
    deadlines_in["required"] = json!([]);
    add(
        "/api/v1/dispatch/deadlines",
        "get",
        op(
            "dispatch",
            "Acknowledge and arrival deadlines: default and by grid-code prefix (longest wins).",
            Auth::Bearer,
            vec![],
            None,
            json!({"200": content("Deadlines", "application/json", deadlines.clone())}),
            &[],
        ),
    );
    add(
        "/api/v1/dispatch/deadlines",
        "put",
        op(
            "dispatch",
            "Replace the deadlines (admin): {default: {ack_s, arrive_s}, grids: {prefix: {ack_s, arrive_s}}}.",
            Auth::Bearer,
            vec![],
            Some(json_body(deadlines_in)),
            json!({"200": content("Deadlines", "application/json", deadlines)}),
            &[400, 413, 415],
        ),
    );
    add(
        "/api/v1/openapi.json",
        "get",
        op(
            "ops",
            "This document.",
            Auth::None,
            vec![],
            None,
            json!({"200": content("OpenAPI 3.1", "application/json", json!({"type": "object", "required": ["openapi", "info", "paths"]}))}),
            &[],
        ),
    );
    add(
        "/healthz",
        "get",
        op(
            "ops",
            "Liveness.",
            Auth::None,
            vec![],
            None,
            json!({"200": content("Up", "application/json", json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}))}),
            &[],
        ),
    );
    add(
        "/readyz",
        "get",
        op(
            "ops",
            "Readiness: the store answers (503 when it does not).",
            Auth::None,
            vec![],
            None,
            json!({"200": content("Ready", "application/json", json!({"type": "object", "required": ["status", "store"], "properties": {"status": {"const": "ready"}, "store": {"enum": ["sqlite", "postgres"]}}}))}),
            &[],
        ),
    );
    add(
        "/metrics",
        "get",
        op(
            "ops",
            "Prometheus metrics (admin or auditor token): requests, items, caches, fixes, load-shedding limits and refusals.",
            Auth::Bearer,
            vec![],
            None,
            json!({"200": contents("Prometheus text format 0.0.4", &[("text/plain", json!({"type": "string"}))])}),
            &[],
        ),
    );
    let mut schemas_and_more = components();
    schemas_and_more["schemas"]["public_posts"] = json!({
        "type": "object", "required": ["type", "features"], "description": "What the public sees",
        "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": {
            "type": "object", "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"const": "Feature"}, "geometry": schema("Point"),
                "properties": {"type": "object", "required": ["kind", "name", "open_now", "distance_m", "walk_s", "walk_source"], "properties": {
                    "kind": {"enum": PostKind::NAMES}, "name": {"type": "string"}, "phone": {"type": ["string", "null"]},
                    "opening_hours": {"type": ["string", "null"]}, "open_now": {"type": ["boolean", "null"]},
                    "distance_m": {"type": "number", "minimum": 0}, "walk_s": {"type": "number", "minimum": 0},
                    "walk_source": {"enum": ["road", "estimate"]},
                }},
            },
        }}},
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "safegrid",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Grid management and situational awareness for public-safety command centres. Positions are WGS-84 unless crs= names GCJ-02 or BD-09. Errors are RFC 9457 problem+json naming the field, the value and the reason. Every route passes one door: a bearer token (401 without one where it is needed, or for one that is not valid), the access policy (403 for a role it does not allow), and an in-flight limit per load class (503 + Retry-After past it). A path answers 405 (with Allow) for a method it does not take; unknown parameters are refused (400), not ignored.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": schemas_and_more,
    })
}
