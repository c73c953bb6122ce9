//! Typed query extraction that answers in problem+json: a handler declares its query as a
//! struct (`#[serde(deny_unknown_fields)]`) and takes `AppQuery<ThatStruct>`; a parameter that
//! is unknown, repeated, missing or unparsable is refused with `400`, naming the parameter, the
//! value and the reason (a misspelt `bbx=` would otherwise silently return everything).
//!
//! Values arrive as text. Numbers, booleans and enums parse from it directly; any other type
//! with a `FromStr` is read with `#[serde(default, deserialize_with = "query::parsed")]` (a type
//! with a `Default`, such as the CRS) or [`opt_parsed`] (an optional one), so its own error message becomes the reason. Checks
//! that span several parameters (a point in the caller's CRS, a box, a radius that needs a
//! centre) are functions here that the handler calls on the parsed struct.

use super::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use safegrid_geodata::{BBox, Crs, LonLat};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt::{self, Display};
use std::str::FromStr;

/// The query string, parsed into `T`: see the module's documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        from_query(parts.uri.query()).map(AppQuery)
    }
}

/// Parses a query string into `T`.
///
/// # Errors
/// `400` naming the first parameter that is repeated, unknown, missing or unparsable.
pub fn from_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(seen, _)| seen == k) {
            return Err(ApiError::invalid(k.as_str(), v.as_str(), "given more than once"));
        }
    }
    T::deserialize(Pairs(&pairs)).map_err(|e| {
        let field = e.field.unwrap_or_else(|| "query".to_owned());
        // Serde names an unknown or missing parameter but not its value: it is in the query.
        let value = e.value.or_else(|| pairs.iter().find(|(k, _)| *k == field).map(|(_, v)| v.clone()));
        ApiError::invalid(field, value.map_or(serde_json::Value::Null, serde_json::Value::from), e.reason)
    })
}

/// Why a query did not parse; becomes an [`ApiError`] in [`from_query`].
#[derive(Debug)]
pub struct QueryError {
    field: Option<String>,
    value: Option<String>,
    reason: String,
}

impl QueryError {
    fn reason(reason: impl Into<String>) -> Self {
        Self { field: None, value: None, reason: reason.into() }
    }
}

impl Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for QueryError {}

impl de::Error for QueryError {
    fn custom<M: Display>(msg: M) -> Self {
        Self::reason(msg.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self {
            field: Some(field.to_owned()),
            value: None,
            reason: format!("unknown parameter; this route accepts {}", expected.join(", ")),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self { field: Some(field.to_owned()), value: None, reason: "required".to_owned() }
    }
}

/// The whole query as a map of parameter names to text.
struct Pairs<'a>(&'a [(String, String)]);

impl<'de> Deserializer<'de> for Pairs<'de> {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_map(PairsAccess { pairs: self.0.iter(), value: None })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct PairsAccess<'a> {
    pairs: std::slice::Iter<'a, (String, String)>,
    value: Option<&'a (String, String)>,
}

impl<'de> MapAccess<'de> for PairsAccess<'de> {
    type Error = QueryError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, QueryError> {
        let Some(pair) = self.pairs.next() else { return Ok(None) };
        self.value = Some(pair);
        seed.deserialize(de::value::BorrowedStrDeserializer::new(&pair.0)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, QueryError> {
        let (name, raw) = self.value.take().ok_or_else(|| QueryError::reason("a value without its name"))?;
        seed.deserialize(Text(raw)).map_err(|mut e| {
            e.field.get_or_insert_with(|| name.clone());
            e.value.get_or_insert_with(|| raw.clone());
            e
        })
    }
}

/// One parameter's text, read as whatever the field's type asks for.
struct Text<'a>(&'a str);

impl Text<'_> {
    fn number<T: FromStr>(&self, what: &str) -> Result<T, QueryError> {
        self.0.trim().parse().map_err(|_| QueryError::reason(format!("expected {what}")))
    }
}

impl<'de> Deserializer<'de> for Text<'de> {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(QueryError::reason("expected true or false")),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_i64(self.number("a whole number")?)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_i32(self.number("a whole number")?)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_u64(self.number("a whole number, 0 or more")?)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_u32(self.number("a whole number, 0 or more")?)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_u8(self.number("a whole number from 0 to 255")?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_f64(self.number("a number")?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        // A parameter that is present has a value, even an empty one.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        let text = de::value::BorrowedStrDeserializer::<QueryError>::new(self.0);
        text.deserialize_enum(name, variants, visitor)
            .map_err(|_| QueryError::reason(format!("expected one of {}", variants.join(", "))))
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i128 u16 u128 f32 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// Reads a field through its `FromStr`, the parse error's message as the reason.
///
/// # Errors
/// When the text does not parse.
pub fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = <&str>::deserialize(d)?;
    text.parse().map_err(de::Error::custom)
}

/// [`parsed`] for an optional field (with `#[serde(default)]`).
///
/// # Errors
/// When the text does not parse.
pub fn opt_parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    parsed(d).map(Some)
}

/// A time, optional: RFC 3339 (`2026-11-01T08:00:00+08:00`) or a date (`2026-11-01`,
/// midnight UTC).
///
/// # Errors
/// When the text is neither.
pub fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = <&str>::deserialize(d)?;
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| de::Error::custom("expected an RFC 3339 time or a YYYY-MM-DD date"))
}

/// A comma-separated list, each part through its `FromStr` (`include=stale,busy`).
///
/// # Errors
/// When a part does not parse.
pub fn opt_list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = <&str>::deserialize(d)?;
    let parts: Result<Vec<T>, _> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(de::Error::custom))
        .collect();
    parts.map(Some)
}

/// Names joined by commas, exactly (`status=open,dispatched`): no spaces, no empty name; an
/// empty value is an empty list (the wall showing no state asks for none).
///
/// # Errors
/// When a name is empty or padded.
pub fn opt_names<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let text = <&str>::deserialize(d)?;
    if text.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let parts: Vec<&str> = text.split(',').collect();
    if parts.iter().any(|p| p.is_empty() || p.trim() != *p) {
        return Err(de::Error::custom("names joined by commas, with no spaces and no empty name"));
    }
    Ok(Some(parts.into_iter().map(str::to_owned).collect()))
}

/// A whole number from `MIN` to `MAX` (`limit`, `k`); the handler supplies the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: usize, const MAX: usize>(usize);

impl<const MIN: usize, const MAX: usize> Bounded<MIN, MAX> {
    /// The number.
    #[must_use]
    pub fn get(self) -> usize {
        self.0
    }

    /// The number given, or `default`.
    #[must_use]
    pub fn or(given: Option<Self>, default: usize) -> usize {
        given.map_or(default, Self::get)
    }
}

impl<'de, const MIN: usize, const MAX: usize> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <&str>::deserialize(d)?;
        let n: usize = text
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("expected a whole number from {MIN} to {MAX}")))?;
        if (MIN..=MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(de::Error::custom(format!("must be from {MIN} to {MAX}")))
        }
    }
}

/// `lon` and `lat` as the caller gave them in `crs`, range-checked, in WGS-84.
///
/// # Errors
/// `400` naming `lon` or `lat`.
pub fn point(lon: f64, lat: f64, crs: Crs) -> Result<LonLat, ApiError> {
    let p = LonLat::new(lon, lat).map_err(|e| ApiError::invalid(e.field(), e.value(), e.to_string()))?;
    Ok(crs.to_wgs84(p))
}

/// `bbox=minLon,minLat,maxLon,maxLat` (OGC API order) as given, before its CRS is known.
#[derive(Debug, Clone, Copy)]
pub struct BoxParam {
    min: LonLat,
    max: LonLat,
}

impl FromStr for BoxParam {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        const SHAPE: &str = "expected four numbers: minLon,minLat,maxLon,maxLat";
        let nums: Vec<f64> =
            v.split(',').map(|s| s.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| SHAPE)?;
        let [a, b, c, d] = nums[..] else { return Err(SHAPE.to_owned()) };
        let min = LonLat::new(a, b).map_err(|e| e.to_string())?;
        let max = LonLat::new(c, d).map_err(|e| e.to_string())?;
        if a > c || b > d {
            return Err("minimum exceeds maximum (boxes across the antimeridian are not supported)".to_owned());
        }
        Ok(Self { min, max })
    }
}

impl BoxParam {
    /// The box in WGS-84, its corners converted from `crs`.
    ///
    /// # Errors
    /// `400` naming `bbox` for a box that conversion turns inside out (only a box smaller than
    /// the datum shift could be).
    pub fn in_wgs84(self, crs: Crs) -> Result<BBox, ApiError> {
        BBox::new(crs.to_wgs84(self.min), crs.to_wgs84(self.max)).ok_or_else(|| {
            let given = format!("{},{},{},{}", self.min.lon(), self.min.lat(), self.max.lon(), self.max.lat());
            ApiError::invalid("bbox", given, "minimum exceeds maximum once converted to WGS-84")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        lon: f64,
        lat: f64,
        #[serde(default)]
        k: Option<Bounded<1, 10>>,
        #[serde(default, deserialize_with = "parsed")]
        crs: Crs,
        #[serde(default, deserialize_with = "opt_time")]
        since: Option<DateTime<Utc>>,
        #[serde(default)]
        open: Option<bool>,
        #[serde(default, deserialize_with = "opt_parsed")]
        bbox: Option<BoxParam>,
        #[serde(default)]
        name: Option<String>,
    }

    fn field_of(q: &str) -> (String, serde_json::Value, String) {
        let e = from_query::<Q>(Some(q)).unwrap_err();
        let b = e.body();
        let x = &b["errors"][0];
        (x["field"].as_str().unwrap().to_owned(), x["value"].clone(), x["reason"].as_str().unwrap().to_owned())
    }

    #[test]
    fn a_good_query_parses_with_percent_and_plus_decoded() {
        let q: Q = from_query(Some(
            "lon=114&lat=22.5&k=3&crs=gcj02&since=2026-11-01&open=true&name=%E7%A6%8F+x&bbox=113.9,22.5,114.1,22.6",
        ))
        .unwrap();
        let b = q.bbox.unwrap().in_wgs84(Crs::Wgs84).unwrap();
        assert_eq!((b.min.lon(), b.max.lat()), (113.9, 22.6));
        assert_eq!((q.lon, q.lat, q.k.map(Bounded::get), q.open), (114.0, 22.5, Some(3), Some(true)));
        assert_eq!(q.crs, Crs::Gcj02);
        assert_eq!(q.since.unwrap().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(q.name.as_deref(), Some("福 x"));
    }

    #[test]
    fn unknown_repeated_missing_and_bad_parameters_are_named_with_their_value() {
        let (f, v, r) = field_of("lon=1&lat=2&bbx=1");
        assert_eq!((f.as_str(), v, r.starts_with("unknown parameter")), ("bbx", "1".into(), true));
        assert_eq!(field_of("lon=1&lat=2&k=1&k=2").0, "k");
        assert_eq!(field_of("lat=2").0, "lon");
        let (f, v, r) = field_of("lon=abc&lat=2");
        assert_eq!((f.as_str(), v, r.as_str()), ("lon", "abc".into(), "expected a number"));
        let (f, _, r) = field_of("lon=1&lat=2&k=11");
        assert_eq!((f.as_str(), r.as_str()), ("k", "must be from 1 to 10"));
        assert_eq!(field_of("lon=1&lat=2&crs=mars").0, "crs");
        assert_eq!(field_of("lon=1&lat=2&since=yesterday").0, "since");
        assert_eq!(field_of("lon=1&lat=2&open=yes").0, "open");
        assert_eq!(field_of("lon=1&lat=2&bbox=1,2,3").0, "bbox");
        assert_eq!(field_of("lon=1&lat=2&bbox=3,2,1,4").0, "bbox");
    }
}
