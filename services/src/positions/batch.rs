//! The JSON batch of fixes a gateway posts (`POST /api/v1/positions`): many fixes per request,
//! in SI units, each checked as strictly as an OsmAnd report. One bad fix refuses the whole
//! request, naming it (`fixes[12].lat`), so a gateway never has to guess what was kept.
//!
//! ```json
//! {"fixes": [{"device_id": "862100012345678:7hq2…", "time": "2026-11-22T08:00:00Z",
//!             "lon": 114.25, "lat": 22.72, "speed_mps": 8.3, "bearing_deg": 90,
//!             "accuracy_m": 6, "battery_pct": 71, "attributes": {"sat": "9"}}]}
//! ```
//! `device_id` carries the device's secret after its last ':' (or give it as `device_secret`);
//! a fix whose device does not prove itself is refused (`unauthenticated_device`).
//! `time` is ISO-8601 or unix seconds or milliseconds, like OsmAnd's `timestamp`, and is required:
//! a gateway forwards fixes taken earlier, so the time of receipt would be wrong.

use super::Fix;
use super::osmand::parse_time;
use safegrid_geodata::LonLat;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Most fixes in one request (about 1.5 MB of JSON).
pub const MAX_FIXES: usize = 10_000;

/// A refused batch: the field path, the value and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BatchError {
    /// `fixes[3].lat`, or `body`.
    pub field: String,
    /// The value as sent.
    pub value: Value,
    /// Why.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    fixes: Vec<RawFix>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFix {
    device_id: String,
    /// The device's secret; absent, it may follow the id as `DEVICE_ID:SECRET`.
    #[serde(default)]
    device_secret: Option<String>,
    time: Value,
    lon: f64,
    lat: f64,
    #[serde(default)]
    speed_mps: Option<f64>,
    #[serde(default)]
    bearing_deg: Option<f64>,
    #[serde(default)]
    altitude_m: Option<f64>,
    #[serde(default)]
    accuracy_m: Option<f64>,
    #[serde(default)]
    battery_pct: Option<f64>,
    #[serde(default = "yes")]
    valid: bool,
    #[serde(default)]
    attributes: BTreeMap<String, Value>,
}

fn yes() -> bool {
    true
}

/// Decodes and checks a batch body.
///
/// # Errors
/// [`BatchError`] naming the first fault.
pub fn decode(body: &[u8]) -> Result<Vec<Fix>, BatchError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Body = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        BatchError {
            // A body that is not an object (`[…]` reads as a struct's fields in order) is the body's fault.
            field: if path.starts_with("fixes") { path } else { "body".into() },
            value: Value::Null,
            reason: e.into_inner().to_string(),
        }
    })?;
    if parsed.fixes.len() > MAX_FIXES {
        return Err(BatchError {
            field: "fixes".into(),
            value: parsed.fixes.len().into(),
            reason: format!("at most {MAX_FIXES} fixes per request; split the batch"),
        });
    }
    parsed.fixes.into_iter().enumerate().map(|(i, f)| check(i, f)).collect()
}

/// Decodes one MQTT message: a batch (`{"fixes": […]}`), one fix in the batch's form (its
/// `device_id` may be left out: the topic's last level is used), or an OwnTracks `location`
/// message, whose device is the topic's levels after `owntracks/` (`alice/phone`).
///
/// # Errors
/// [`BatchError`] naming the first fault.
pub fn decode_message(topic: &str, payload: &[u8]) -> Result<Vec<Fix>, BatchError> {
    let body = |reason: String| BatchError { field: "payload".into(), value: Value::Null, reason };
    let mut v: Value = serde_json::from_slice(payload).map_err(|e| body(e.to_string()))?;
    let Some(obj) = v.as_object_mut() else { return Err(body("expected a JSON object".into())) };
    if obj.contains_key("fixes") {
        return decode(payload);
    }
    if obj.get("_type").and_then(Value::as_str) == Some("location") {
        return owntracks(topic, obj).map(|f| vec![f]);
    }
    if !obj.contains_key("device_id") {
        let device = topic.rsplit('/').next().unwrap_or_default();
        obj.insert("device_id".into(), device.into());
    }
    let raw: RawFix = serde_path_to_error::deserialize(v).map_err(|e| BatchError {
        field: e.path().to_string(),
        value: Value::Null,
        reason: e.into_inner().to_string(),
    })?;
    check(0, raw).map(|f| vec![f]).map_err(|e| BatchError { field: e.field.replacen("fixes[0].", "", 1), ..e })
}

/// An OwnTracks location: `lat`, `lon`, `tst` (unix seconds), `acc` (m), `alt` (m), `vel`
/// (km/h), `cog` (degrees), `batt` (%); other members are kept as attributes.
fn owntracks(topic: &str, obj: &serde_json::Map<String, Value>) -> Result<Fix, BatchError> {
    let device = topic.strip_prefix("owntracks/").unwrap_or(topic);
    let num = |k: &str| obj.get(k).and_then(Value::as_f64);
    let mut attributes = serde_json::Map::new();
    for (k, v) in obj {
        if !["_type", "device_secret", "lat", "lon", "tst", "acc", "alt", "vel", "cog", "batt"].contains(&k.as_str())
            && (v.is_string() || v.is_number() || v.is_boolean())
        {
            attributes.insert(k.clone(), v.clone());
        }
    }
    let raw = RawFix {
        device_id: device.to_owned(),
        device_secret: obj.get("device_secret").and_then(Value::as_str).map(str::to_owned),
        time: obj.get("tst").cloned().unwrap_or(Value::Null),
        lon: num("lon").ok_or_else(|| BatchError {
            field: "lon".into(),
            value: Value::Null,
            reason: "required".into(),
        })?,
        lat: num("lat").ok_or_else(|| BatchError {
            field: "lat".into(),
            value: Value::Null,
            reason: "required".into(),
        })?,
        speed_mps: num("vel").map(|kmh| kmh / 3.6),
        bearing_deg: num("cog"),
        altitude_m: num("alt"),
        accuracy_m: num("acc"),
        battery_pct: num("batt"),
        valid: true,
        attributes: attributes.into_iter().collect(),
    };
    check(0, raw).map_err(|e| BatchError { field: e.field.replacen("fixes[0].", "", 1), ..e })
}

fn check(i: usize, f: RawFix) -> Result<Fix, BatchError> {
    let fail = |field: &str, value: Value, reason: &str| BatchError {
        field: format!("fixes[{i}].{field}"),
        value,
        reason: reason.to_owned(),
    };
    // The secret in its own member, or after the id's last ':' (see positions::devices).
    let (id, secret) = match &f.device_secret {
        Some(s) => (f.device_id.trim(), Some(s.as_str())),
        None => super::devices::split_credential(f.device_id.trim()),
    };
    if id.is_empty() || id.len() > 64 || id.chars().any(char::is_control) {
        return Err(fail("device_id", id.into(), "a device id is 1 to 64 printable characters"));
    }
    let time = match &f.time {
        Value::Number(n) => n.as_f64().map(|x| x.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
    .and_then(|t| parse_time(&t))
    .ok_or_else(|| fail("time", f.time.clone(), "expected ISO-8601, or unix seconds or milliseconds"))?;
    let pos = LonLat::new(f.lon, f.lat).map_err(|e| {
        let (field, v) = if (-90.0..=90.0).contains(&f.lat) { ("lon", f.lon) } else { ("lat", f.lat) };
        fail(field, v.into(), &e.to_string())
    })?;
    let range = |field: &str, v: Option<f64>, lo: f64, hi: f64, unit: &str| match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(fail(field, x.into(), &format!("{unit} from {lo} to {hi}"))),
        _ => Ok(v),
    };
    let attributes = f
        .attributes
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(_) | Value::Bool(_) => Ok((k, v.to_string())),
            other => Err(fail(&format!("attributes.{k}"), other, "attributes are strings, numbers or booleans")),
        })
        .collect::<Result<_, _>>()?;
    Ok(Fix {
        device_id: id.to_owned(),
        secret: secret.map(|s| super::devices::Secret(s.to_owned())),
        time,
        pos,
        speed_mps: range("speed_mps", f.speed_mps, 0.0, 500.0, "m/s")?,
        bearing_deg: range("bearing_deg", f.bearing_deg, 0.0, 360.0, "degrees")?.map(|b| b % 360.0),
        altitude_m: range("altitude_m", f.altitude_m, -500.0, 20_000.0, "metres")?,
        accuracy_m: range("accuracy_m", f.accuracy_m, 0.0, 1_000_000.0, "metres")?,
        battery_pct: range("battery_pct", f.battery_pct, 0.0, 100.0, "percent")?,
        valid: f.valid,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_decodes_with_every_time_form() {
        let body = br#"{"fixes": [
            {"device_id": "a", "time": "2026-11-22T08:00:00Z", "lon": 114.25, "lat": 22.72, "speed_mps": 8.5,
             "bearing_deg": 360, "accuracy_m": 6, "battery_pct": 71, "attributes": {"sat": 9, "ign": true}},
            {"device_id": "b", "time": 1795334400, "lon": 114.0, "lat": 22.5},
            {"device_id": "c", "time": 1795334400123, "lon": 114.0, "lat": 22.5, "valid": false}
        ]}"#;
        let fixes = decode(body).unwrap();
        assert_eq!(fixes.len(), 3);
        assert_eq!(fixes[0].bearing_deg, Some(0.0));
        assert_eq!(fixes[0].attributes["sat"], "9");
        assert_eq!(fixes[0].attributes["ign"], "true");
        assert_eq!(fixes[1].time.timestamp(), 1_795_334_400);
        assert_eq!(fixes[2].time.timestamp_millis(), 1_795_334_400_123);
        assert!(!fixes[2].valid);
    }

    #[test]
    fn mqtt_messages_come_as_batches_single_fixes_or_owntracks() {
        let one =
            decode_message("safegrid/positions/dev-7", br#"{"time": 1795334400, "lon": 114.1, "lat": 22.6}"#).unwrap();
        assert_eq!(one[0].device_id, "dev-7");
        let mine =
            decode_message("safegrid/positions/dev-7:abc", br#"{"time": 1795334400, "lon": 114.1, "lat": 22.6}"#)
                .unwrap();
        assert_eq!((mine[0].device_id.as_str(), mine[0].secret.clone().map(|s| s.0)), ("dev-7", Some("abc".into())));
        let apart = decode(br#"{"fixes": [{"device_id": "aa:bb", "device_secret": "xyz", "time": 1795334400, "lon": 114, "lat": 22}]}"#)
            .unwrap();
        assert_eq!((apart[0].device_id.as_str(), apart[0].secret.clone().map(|s| s.0)), ("aa:bb", Some("xyz".into())));
        let own = decode_message(
            "owntracks/alice/phone",
            br#"{"_type": "location", "lat": 22.6, "lon": 114.1, "tst": 1795334400, "acc": 8, "vel": 36, "cog": 90, "batt": 55, "tid": "al"}"#,
        )
        .unwrap();
        assert_eq!(own[0].device_id, "alice/phone");
        assert!((own[0].speed_mps.unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(own[0].attributes["tid"], "al");
        let batch =
            decode_message("x", br#"{"fixes": [{"device_id": "a", "time": 1795334400, "lon": 114, "lat": 22}]}"#)
                .unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(decode_message("t/d", br#"{"time": 1795334400, "lon": 114, "lat": 95}"#).unwrap_err().field, "lat");
        assert_eq!(decode_message("t/d", b"not json").unwrap_err().field, "payload");
    }

    #[test]
    fn each_fault_names_its_fix_and_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{"fixes":[{"device_id":"a","time":1795334400,"lon":114,"lat":95}]}"#, "fixes[0].lat"),
            (r#"{"fixes":[{"device_id":"a","time":1795334400,"lon":200,"lat":22}]}"#, "fixes[0].lon"),
            (r#"{"fixes":[{"device_id":"a","time":"yesterday","lon":114,"lat":22}]}"#, "fixes[0].time"),
            (r#"{"fixes":[{"device_id":"","time":1795334400,"lon":114,"lat":22}]}"#, "fixes[0].device_id"),
            (
                r#"{"fixes":[{"device_id":"a","time":1795334400,"lon":114,"lat":22,"battery_pct":140}]}"#,
                "fixes[0].battery_pct",
            ),
            (r#"{"fixes":[{"device_id":"a","time":1795334400,"lon":114,"lat":22,"colour":"red"}]}"#, "fixes[0].colour"),
            (
                r#"{"fixes":[{"device_id":"a","time":1795334400,"lon":114,"lat":22},{"device_id":"a","lon":114,"lat":22}]}"#,
                "fixes[1]",
            ),
            (
                r#"{"fixes":[{"device_id":"a","time":1795334400,"lon":114,"lat":22,"attributes":{"x":[1]}}]}"#,
                "fixes[0].attributes.x",
            ),
            (r"[1,2]", "body"),
        ];
        for (body, field) in cases {
            let e = decode(body.as_bytes()).unwrap_err();
            assert_eq!(&e.field, field, "{body}: {e}");
        }
    }
}
