//! The OsmAnd / Traccar Client HTTP protocol: what an off-the-shelf tracker app on a patrol
//! phone sends, decoded into a [`Fix`]. The parameters arrive in a GET query or a form POST body
//! (`application/x-www-form-urlencoded`); both decode to the same pairs.
//!
//! | parameter | meaning |
//! |---|---|
//! | `id` or `deviceid` | the tracker's device id and its secret, `DEVICE_ID:SECRET` (required; see [`super::devices`]) |
//! | `lat` and `lon`, or `location=lat,lon` | WGS-84 position (required) |
//! | `timestamp` | unix seconds or milliseconds, or ISO-8601 (`2026-11-22T08:00:00Z`, with an offset, or `2026-11-22 08:00:00` as UTC); absent: the time of receipt |
//! | `speed` | knots (stored as m/s) |
//! | `bearing` or `heading` | degrees clockwise from north |
//! | `altitude` | metres |
//! | `accuracy` | metres (horizontal) |
//! | `batt` | battery, percent |
//! | `valid` | `false`/`0` marks a fix the device itself doubts |
//!
//! Every other parameter is kept as a text attribute. A value that is present but unusable is
//! refused naming the parameter, the value and the reason — never dropped or guessed.
//!
//! Traccar Client 9 and later POST a JSON body instead (`Content-Type: application/json`), the
//! shape of its background-location library, which Traccar's own server reads too:
//!
//! ```json
//! {"device_id": "DEVICE_ID:SECRET",
//!  "location": {"timestamp": "2026-11-22T08:00:00.000Z",
//!               "coords": {"latitude": 22.69, "longitude": 114.21, "accuracy": 5,
//!                          "speed": 3.2, "heading": 271, "altitude": 40},
//!               "is_moving": true, "odometer": 1234, "event": "motionchange",
//!               "battery": {"level": 0.87, "is_charging": false},
//!               "activity": {"type": "on_foot"}, "extras": {}}}
//! ```
//!
//! [`decode_json`] reads it into the same parameters (speed there is in metres per second, a
//! battery level a fraction, and -1 means "not known" for speed and heading), so it is judged by
//! the same rules, and a refusal names the JSON path (`location.coords.latitude`).

use super::Fix;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use safegrid_geodata::LonLat;
use std::collections::BTreeMap;

/// Knots → metres per second.
const MPS_PER_KNOT: f64 = 1852.0 / 3600.0;
/// Longest device id accepted (Traccar's are IMEIs or short names).
const MAX_ID_LEN: usize = 64;
/// Unix times below this are seconds, above milliseconds (Traccar's rule: 2^31 seconds is 2038).
const SECONDS_BELOW: f64 = 2_147_483_648.0;

/// Why a request is not a usable fix: the parameter, the value sent, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}={value:?}: {reason}")]
pub struct OsmAndError {
    /// The parameter at fault.
    pub field: String,
    /// What was sent (empty when the parameter is missing).
    pub value: String,
    /// Why it cannot be used.
    pub reason: String,
}

fn err(field: &str, value: &str, reason: impl Into<String>) -> OsmAndError {
    OsmAndError { field: field.to_owned(), value: value.to_owned(), reason: reason.into() }
}

/// Decodes the parameters of one OsmAnd request; `received` stands in for a missing timestamp.
///
/// # Errors
/// An [`OsmAndError`] naming the first parameter at fault: one given twice with different
/// values, a missing or malformed device id or position, a position outside WGS-84, an
/// unreadable timestamp, or a speed, bearing, altitude, accuracy or battery level out of range.
pub fn decode(params: &[(String, String)], received: DateTime<Utc>) -> Result<Fix, OsmAndError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in params {
        if let Some(first) = seen.insert(k.as_str(), v.as_str())
            && first != v
        {
            return Err(err(k, v, format!("given twice, also as {first:?}")));
        }
    }
    let get = |k: &str| seen.get(k).copied();
    let number = |k: &str| -> Result<Option<f64>, OsmAndError> {
        get(k)
            .map(|v| match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(err(k, v, "expected a number")),
            })
            .transpose()
    };

    let device_id = match (get("id"), get("deviceid")) {
        (Some(a), Some(b)) if a != b => return Err(err("deviceid", b, format!("differs from id {a:?}"))),
        (Some(v), _) => ("id", v),
        (None, Some(v)) => ("deviceid", v),
        (None, None) => return Err(err("id", "", "the device id (id or deviceid) is required")),
    };
    // `DEVICE_ID:SECRET`: the tracker's only identifier field carries its secret too.
    let (id_field, credential) = (device_id.0, device_id.1.trim());
    let (id, secret) = super::devices::split_credential(credential);
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(err(id_field, id, format!("a device id is 1 to {MAX_ID_LEN} printable characters")));
    }

    let (lat, lon) = match (get("lat"), get("lon"), get("location")) {
        (Some(_), Some(_), Some(loc)) => return Err(err("location", loc, "give location or lat and lon, not both")),
        (_, _, Some(loc)) => {
            let (a, b) = loc.split_once(',').ok_or_else(|| err("location", loc, "expected lat,lon"))?;
            let parse = |s: &str| s.trim().parse::<f64>().ok().filter(|x| x.is_finite());
            match (parse(a), parse(b)) {
                (Some(lat), Some(lon)) => (("location", lat), ("location", lon)),
                _ => return Err(err("location", loc, "expected lat,lon as two numbers")),
            }
        }
        (Some(_), Some(_), None) => {
            let lat = number("lat")?.unwrap_or_default();
            let lon = number("lon")?.unwrap_or_default();
            (("lat", lat), ("lon", lon))
        }
        (lat, _, None) => {
            let missing = if lat.is_none() { "lat" } else { "lon" };
            return Err(err(missing, "", "the position (lat and lon, or location) is required"));
        }
    };
    let pos = LonLat::new(lon.1, lat.1).map_err(|e| {
        let (field, value) = if lat.1.abs() > 90.0 || lat.1.is_nan() { (lat.0, lat.1) } else { (lon.0, lon.1) };
        err(field, &value.to_string(), e.to_string())
    })?;

    let time = match get("timestamp") {
        None => received,
        Some(v) => parse_time(v).ok_or_else(|| {
            err("timestamp", v, "expected unix seconds or milliseconds, or an ISO-8601 date and time")
        })?,
    };

    let in_range = |k: &str, lo: f64, hi: f64, what: &str| -> Result<Option<f64>, OsmAndError> {
        match number(k)? {
            Some(x) if !(lo..=hi).contains(&x) => {
                Err(err(k, get(k).unwrap_or(""), format!("{what} from {lo} to {hi}")))
            }
            other => Ok(other),
        }
    };
    let speed_mps = in_range("speed", 0.0, 1000.0, "knots")?.map(|k| k * MPS_PER_KNOT);
    let bearing_deg = match (get("bearing"), get("heading")) {
        (Some(_), Some(h)) if number("bearing")? != number("heading")? => {
            return Err(err("heading", h, "differs from bearing"));
        }
        (Some(_), _) => in_range("bearing", 0.0, 360.0, "degrees")?,
        (None, Some(_)) => in_range("heading", 0.0, 360.0, "degrees")?,
        (None, None) => None,
    }
    .map(|b| b % 360.0);
    let altitude_m = in_range("altitude", -500.0, 20_000.0, "metres")?;
    let accuracy_m = in_range("accuracy", 0.0, 1_000_000.0, "metres")?;
    let battery_pct = in_range("batt", 0.0, 100.0, "percent")?;
    let valid = match get("valid") {
        None => true,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(err("valid", v, "expected true, false, 1 or 0")),
        },
    };

    const KNOWN: &[&str] = &[
        "id",
        "deviceid",
        "lat",
        "lon",
        "location",
        "timestamp",
        "speed",
        "bearing",
        "heading",
        "altitude",
        "accuracy",
        "batt",
        "valid",
    ];
    let attributes =
        seen.iter().filter(|(k, _)| !KNOWN.contains(k)).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Ok(Fix {
        device_id: id.to_owned(),
        secret: secret.map(|s| super::devices::Secret(s.to_owned())),
        time,
        pos,
        speed_mps,
        bearing_deg,
        altitude_m,
        accuracy_m,
        battery_pct,
        valid,
        attributes,
    })
}

/// Unix seconds or milliseconds (fractions allowed), RFC 3339 / ISO-8601 with an offset, or a
/// date and time without one (taken as UTC, as Traccar does).
pub(crate) fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(x) = v.parse::<f64>() {
        if !x.is_finite() || x < 0.0 {
            return None;
        }
        let ms = if x < SECONDS_BELOW { x * 1000.0 } else { x };
        return Utc.timestamp_millis_opt(ms.round() as i64).single();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(v, fmt) {
            return Some(t.with_timezone(&Utc));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(v, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

/// Decodes Traccar Client's JSON body (see the module's documentation).
///
/// # Errors
/// As [`decode`], naming the JSON path; and a body that is not that JSON object.
pub fn decode_json(body: &[u8], received: DateTime<Utc>) -> Result<Fix, OsmAndError> {
    use serde_json::Value;
    let root: Value = serde_json::from_slice(body).map_err(|e| err("body", "", format!("not JSON: {e}")))?;
    let Value::Object(root) = root else {
        return Err(err("body", "", "expected a JSON object with device_id and location"));
    };
    let location = match root.get("location") {
        Some(Value::Object(l)) => l,
        Some(Value::Array(_)) => {
            return Err(err("location", "[…]", "one location per request, as Traccar Client sends it"));
        }
        Some(other) => return Err(err("location", &other.to_string(), "expected an object")),
        None => return Err(err("location", "", "the location is required")),
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // (parameter of the query form, JSON path, value): decode() judges them; its refusals are
    // renamed to the JSON path.
    let mut params: Vec<(String, String)> = Vec::new();
    let mut paths: Vec<(&'static str, String)> = Vec::new();
    let mut put = |param: &'static str, path: String, value: String| {
        params.push((param.to_owned(), value));
        paths.push((param, path));
    };
    match root.get("device_id") {
        Some(v @ (Value::String(_) | Value::Number(_))) => put("id", "device_id".into(), text(v)),
        Some(other) => return Err(err("device_id", &other.to_string(), "expected a string")),
        None => return Err(err("device_id", "", "the device id is required")),
    }
    if let Some(t) = location.get("timestamp") {
        put("timestamp", "location.timestamp".into(), text(t));
    }
    let Some(Value::Object(coords)) = location.get("coords") else {
        return Err(err("location.coords", "", "the position (coords.latitude, coords.longitude) is required"));
    };
    for (key, param) in [("latitude", "lat"), ("longitude", "lon"), ("accuracy", "accuracy"), ("altitude", "altitude")]
    {
        match coords.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => put(param, format!("location.coords.{key}"), text(v)),
        }
    }
    // Speed (m/s), heading and battery level: exactly -1 is the library's "not known"; other
    // values are judged in the JSON's own units, so a refusal names what was sent.
    fn known(v: Option<&serde_json::Value>) -> Option<&serde_json::Value> {
        v.filter(|v| !v.is_null() && v.as_f64() != Some(-1.0))
    }
    if let Some(v) = known(coords.get("speed")) {
        let mps = v.as_f64().ok_or_else(|| err("location.coords.speed", &text(v), "expected a number"))?;
        if !(0.0..=1000.0 * MPS_PER_KNOT).contains(&mps) {
            return Err(err("location.coords.speed", &text(v), "m/s from 0 to 514 (-1: not known)"));
        }
        put("speed", "location.coords.speed".into(), (mps / MPS_PER_KNOT).to_string());
    }
    if let Some(v) = known(coords.get("heading")) {
        put("bearing", "location.coords.heading".into(), text(v));
    }
    if let Some(Value::Object(b)) = location.get("battery") {
        if let Some(v) = known(b.get("level")) {
            let level = v.as_f64().ok_or_else(|| err("location.battery.level", &text(v), "expected a number"))?;
            if !(0.0..=1.0).contains(&level) {
                return Err(err("location.battery.level", &text(v), "a fraction from 0 to 1 (-1: not known)"));
            }
            put("batt", "location.battery.level".into(), (level * 100.0).to_string());
        }
        if let Some(v) = b.get("is_charging") {
            put("charge", "location.battery.is_charging".into(), text(v));
        }
    }
    if let Some(v) = location.get("is_moving") {
        put("motion", "location.is_moving".into(), text(v));
    }
    if let Some(Value::Object(a)) = location.get("activity")
        && let Some(v) = a.get("type")
    {
        put("activity", "location.activity.type".into(), text(v));
    }
    for key in ["odometer", "event", "mock"] {
        if let Some(v) = location.get(key).filter(|v| !v.is_null()) {
            put(key, format!("location.{key}"), text(v));
        }
    }
    decode(&params, received).map_err(|mut e| {
        if let Some((_, path)) = paths.iter().find(|(p, _)| *p == e.field) {
            e.field.clone_from(path);
        } else if e.field == "lat" || e.field == "lon" {
            e.field = format!("location.coords.{}", if e.field == "lat" { "latitude" } else { "longitude" });
        }
        e
    })
}

/// The pairs of a query string or form body.
#[must_use]
pub fn pairs(encoded: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(encoded.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
    }

    fn ok(q: &str) -> Fix {
        decode(&pairs(q), now()).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn refused(q: &str) -> OsmAndError {
        decode(&pairs(q), now()).expect_err(q)
    }

    #[test]
    fn the_device_id_comes_from_id_or_deviceid() {
        assert_eq!(ok("id=862170010000001&lat=22.69&lon=114.21").device_id, "862170010000001");
        assert_eq!(ok("deviceid=patrol-07&lat=22.69&lon=114.21").device_id, "patrol-07");
        assert_eq!(ok("id=a&deviceid=a&lat=22.69&lon=114.21").device_id, "a");
        assert_eq!(refused("lat=22.69&lon=114.21").field, "id");
        assert_eq!(refused("id=a&deviceid=b&lat=22.69&lon=114.21").field, "deviceid");
        assert_eq!(refused("id=&lat=22.69&lon=114.21").field, "id");
        assert_eq!(refused(&format!("id={}&lat=1&lon=1", "x".repeat(65))).field, "id");
        let f = ok("id=aa:bb:cc:s3cret&lat=22.69&lon=114.21");
        assert_eq!((f.device_id.as_str(), f.secret.map(|s| s.0)), ("aa:bb:cc", Some("s3cret".to_owned())));
        assert_eq!(ok("id=u&lat=1&lon=1").secret, None);
        // A refusal names the device id, never the secret.
        let e = refused(&format!("id={}:topsecret&lat=1&lon=1", "x".repeat(65)));
        assert!(!e.value.contains("topsecret"), "{e}");
    }

    #[test]
    fn the_position_comes_from_lat_and_lon_or_location() {
        let a = ok("id=u&lat=22.6913&lon=114.2107");
        let b = ok("id=u&location=22.6913,114.2107");
        let c = ok("id=u&location=22.6913%2C114.2107");
        for f in [&a, &b, &c] {
            assert_eq!((f.pos.lon(), f.pos.lat()), (114.2107, 22.6913));
        }
        assert_eq!(refused("id=u&lat=22.69").field, "lon");
        assert_eq!(refused("id=u&lon=114.2").field, "lat");
        assert_eq!(refused("id=u&lat=91&lon=114").field, "lat");
        assert_eq!(refused("id=u&lat=22&lon=181").field, "lon");
        assert_eq!(refused("id=u&lat=abc&lon=114").field, "lat");
        assert_eq!(refused("id=u&lat=NaN&lon=114").field, "lat");
        assert_eq!(refused("id=u&location=22.69").field, "location");
        assert_eq!(refused("id=u&location=22.69,x").field, "location");
        assert_eq!(refused("id=u&location=1,2&lat=1&lon=2").field, "location");
    }

    #[test]
    fn timestamps_in_seconds_milliseconds_and_iso_8601_mean_the_same_instant() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 7, 59, 30).unwrap();
        for q in [
            "timestamp=1795334370",
            "timestamp=1795334370000",
            "timestamp=1795334370.0",
            "timestamp=2026-11-22T07:59:30Z",
            "timestamp=2026-11-22T15:59:30%2B08:00",
            "timestamp=2026-11-22T07:59:30.000Z",
            "timestamp=2026-11-22%2007:59:30",
            "timestamp=2026-11-22T07:59:30",
        ] {
            assert_eq!(ok(&format!("id=u&lat=22.69&lon=114.21&{q}")).time, t, "{q}");
        }
        // Milliseconds keep their fraction of a second.
        let f = ok("id=u&lat=22.69&lon=114.21&timestamp=1795334370250");
        assert_eq!(f.time.timestamp_subsec_millis(), 250);
        // No timestamp: the time of receipt.
        assert_eq!(ok("id=u&lat=22.69&lon=114.21").time, now());
        for bad in ["yesterday", "-5", "2026-13-01T00:00:00Z", "inf"] {
            assert_eq!(refused(&format!("id=u&lat=1&lon=1&timestamp={bad}")).field, "timestamp", "{bad}");
        }
    }

    #[test]
    fn motion_altitude_accuracy_and_battery_are_read_in_their_units() {
        let f = ok("id=u&lat=22.69&lon=114.21&speed=10&bearing=271.5&altitude=44.2&accuracy=6&batt=87&valid=true");
        assert!((f.speed_mps.unwrap() - 5.1444).abs() < 1e-3, "10 knots = 5.144 m/s");
        assert_eq!(f.bearing_deg, Some(271.5));
        assert_eq!(f.altitude_m, Some(44.2));
        assert_eq!(f.accuracy_m, Some(6.0));
        assert_eq!(f.battery_pct, Some(87.0));
        assert!(f.valid);
        assert_eq!(ok("id=u&lat=1&lon=1&heading=90").bearing_deg, Some(90.0));
        assert_eq!(ok("id=u&lat=1&lon=1&heading=360").bearing_deg, Some(0.0));
        assert!(!ok("id=u&lat=1&lon=1&valid=0").valid);
        let bare = ok("id=u&lat=1&lon=1");
        assert_eq!(
            (bare.speed_mps, bare.bearing_deg, bare.altitude_m, bare.accuracy_m, bare.battery_pct),
            (None, None, None, None, None)
        );
        for (q, field) in [
            ("speed=-1", "speed"),
            ("speed=fast", "speed"),
            ("bearing=400", "bearing"),
            ("bearing=10&heading=20", "heading"),
            ("batt=120", "batt"),
            ("accuracy=-3", "accuracy"),
            ("altitude=99999", "altitude"),
            ("valid=maybe", "valid"),
        ] {
            assert_eq!(refused(&format!("id=u&lat=1&lon=1&{q}")).field, field, "{q}");
        }
    }

    /// The body Traccar Client 9 sends (its documented shape), and what it means.
    #[test]
    fn traccar_clients_json_body_is_one_fix() {
        let body = br#"{"location": {"timestamp": "2026-11-22T07:59:30.250Z",
            "coords": {"latitude": 22.6913, "longitude": 114.2107, "accuracy": 4.5, "speed": 5.0,
                       "heading": 271.5, "altitude": 44.2},
            "is_moving": true, "odometer": 1234.5, "event": "motionchange",
            "battery": {"level": 0.87, "is_charging": false}, "activity": {"type": "on_foot"},
            "extras": {}}, "device_id": "patrol-07:s3cret"}"#;
        let f = decode_json(body, now()).unwrap();
        assert_eq!((f.device_id.as_str(), f.secret.map(|s| s.0)), ("patrol-07", Some("s3cret".to_owned())));
        assert_eq!((f.pos.lon(), f.pos.lat()), (114.2107, 22.6913));
        assert_eq!(
            f.time,
            Utc.with_ymd_and_hms(2026, 11, 22, 7, 59, 30).unwrap() + chrono::Duration::milliseconds(250)
        );
        assert!((f.speed_mps.unwrap() - 5.0).abs() < 1e-9, "speed is m/s in JSON");
        assert_eq!((f.bearing_deg, f.altitude_m, f.accuracy_m), (Some(271.5), Some(44.2), Some(4.5)));
        assert!((f.battery_pct.unwrap() - 87.0).abs() < 1e-9);
        assert_eq!(f.attributes.get("charge").map(String::as_str), Some("false"));
        assert_eq!(f.attributes.get("motion").map(String::as_str), Some("true"));
        assert_eq!(f.attributes.get("activity").map(String::as_str), Some("on_foot"));
        // -1 is "not known" for speed and heading.
        let unknown = br#"{"device_id": "u", "location": {"timestamp": "2026-11-22T07:59:30Z",
            "coords": {"latitude": 22.69, "longitude": 114.21, "speed": -1, "heading": -1}}}"#;
        let f = decode_json(unknown, now()).unwrap();
        assert_eq!((f.speed_mps, f.bearing_deg), (None, None));
    }

    #[test]
    fn a_bad_json_fix_is_refused_naming_its_path() {
        let refused = |b: &str| decode_json(b.as_bytes(), now()).expect_err(b).field;
        assert_eq!(refused(r#"{"location": {"coords": {"latitude": 1, "longitude": 1}}}"#), "device_id");
        assert_eq!(refused(r#"{"device_id": "u"}"#), "location");
        assert_eq!(refused(r#"{"device_id": "u", "location": {}}"#), "location.coords");
        assert_eq!(
            refused(r#"{"device_id": "u", "location": {"coords": {"latitude": 95, "longitude": 1}}}"#),
            "location.coords.latitude"
        );
        assert_eq!(
            refused(r#"{"device_id": "u", "location": {"coords": {"latitude": 1}}}"#),
            "location.coords.longitude"
        );
        assert_eq!(
            refused(
                r#"{"device_id": "u", "location": {"timestamp": "soon", "coords": {"latitude": 1, "longitude": 1}}}"#
            ),
            "location.timestamp"
        );
        assert_eq!(refused("[1]"), "body");
        assert_eq!(refused("{"), "body");
        // Judged in the JSON's own units, and only exactly -1 means "not known".
        let e = decode_json(
            br#"{"device_id": "u", "location": {"coords": {"latitude": 1, "longitude": 1, "speed": 600}}}"#,
            now(),
        )
        .unwrap_err();
        assert_eq!((e.field.as_str(), e.value.as_str()), ("location.coords.speed", "600"), "{e}");
        assert!(e.reason.contains("m/s"), "{e}");
        let e = decode_json(br#"{"device_id": "u", "location": {"coords": {"latitude": 1, "longitude": 1}, "battery": {"level": 1.5}}}"#, now()).unwrap_err();
        assert_eq!((e.field.as_str(), e.value.as_str()), ("location.battery.level", "1.5"), "{e}");
        assert_eq!(
            refused(r#"{"device_id": "u", "location": {"coords": {"latitude": 1, "longitude": 1, "heading": -90}}}"#),
            "location.coords.heading"
        );
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "the text \"1\" parses to exactly 1.0")]
    fn other_parameters_are_kept_and_a_key_given_twice_must_agree() {
        let f = ok("id=u&lat=1&lon=1&hdop=0.9&charge=true&driverUniqueId=zhang-wei&wifi=aa:bb");
        assert_eq!(f.attributes.get("hdop").map(String::as_str), Some("0.9"));
        assert_eq!(f.attributes.get("charge").map(String::as_str), Some("true"));
        assert_eq!(f.attributes.get("driverUniqueId").map(String::as_str), Some("zhang-wei"));
        assert_eq!(f.attributes.len(), 4, "known parameters are not attributes: {:?}", f.attributes);
        assert_eq!(ok("id=u&lat=1&lat=1&lon=1").pos.lat(), 1.0);
        let e = refused("id=u&lat=1&lat=2&lon=1");
        assert_eq!((e.field.as_str(), e.value.as_str()), ("lat", "2"));
    }
}
