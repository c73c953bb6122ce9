//! Query-string parsing with precise errors. Parameters arrive as text; each is parsed by a
//! function that names the parameter, the value and the reason when it fails, and unknown
//! parameters are refused (a misspelt `bbx=` would otherwise silently return everything).

use super::problem::ApiError;
use chrono::{DateTime, NaiveDate, Utc};
use safegrid_geodata::{BBox, Crs, GridCode, LonLat};
use std::collections::HashMap;
use std::str::FromStr;

/// The raw query string as a map, with the names a route accepts.
pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    /// Parses a query string; refuses repeated and unknown parameters.
    ///
    /// # Errors
    /// [`ApiError::invalid`] naming the parameter.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded(query.unwrap_or("")) {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::invalid(
                    k.clone(),
                    v,
                    format!("unknown parameter; this route accepts {}", allowed.join(", ")),
                ));
            }
            if map.contains_key(&k) {
                return Err(ApiError::invalid(k.clone(), v, "given more than once"));
            }
            map.insert(k, v);
        }
        Ok(Self { map })
    }

    /// The raw text of a parameter.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A required parameter, parsed.
    ///
    /// # Errors
    /// When absent or unparsable.
    pub fn required<T: FromStr>(&self, name: &str, what: &str) -> Result<T, ApiError> {
        let v = self
            .get(name)
            .ok_or_else(|| ApiError::invalid(name, serde_json::Value::Null, format!("required: {what}")))?;
        v.trim().parse().map_err(|_| ApiError::invalid(name, v, format!("expected {what}")))
    }

    /// An optional parameter, parsed.
    ///
    /// # Errors
    /// When present but unparsable.
    pub fn optional<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| ApiError::invalid(name, v, format!("expected {what}"))),
        }
    }

    /// An optional whole number within bounds.
    ///
    /// # Errors
    /// When unparsable or out of bounds.
    pub fn bounded(&self, name: &str, default: usize, min: usize, max: usize) -> Result<usize, ApiError> {
        let n: usize = self.optional(name, &format!("a whole number from {min} to {max}"))?.unwrap_or(default);
        if !(min..=max).contains(&n) {
            return Err(ApiError::invalid(name, n, format!("must be from {min} to {max}")));
        }
        Ok(n)
    }

    /// The CRS the caller speaks (`crs=`), WGS-84 by default.
    ///
    /// # Errors
    /// For an unknown CRS name.
    pub fn crs(&self) -> Result<Crs, ApiError> {
        match self.get("crs") {
            None => Ok(Crs::Wgs84),
            Some(v) => {
                v.parse().map_err(|e: safegrid_geodata::crs::UnknownCrs| ApiError::invalid("crs", v, e.to_string()))
            }
        }
    }

    /// `lon` and `lat`, range-checked, converted from the named CRS to WGS-84.
    ///
    /// # Errors
    /// Naming `lon` or `lat`.
    pub fn point(&self, crs: Crs) -> Result<LonLat, ApiError> {
        let lon: f64 = self.required("lon", "a longitude in degrees")?;
        let lat: f64 = self.required("lat", "a latitude in degrees")?;
        let p = LonLat::new(lon, lat).map_err(|e| ApiError::invalid(e.field(), e.value(), e.to_string()))?;
        Ok(crs.to_wgs84(p))
    }

    /// `bbox=minLon,minLat,maxLon,maxLat` (OGC API order), converted from the named CRS.
    ///
    /// # Errors
    /// Naming `bbox`.
    pub fn bbox(&self, crs: Crs) -> Result<Option<BBox>, ApiError> {
        let Some(v) = self.get("bbox") else { return Ok(None) };
        let bad = |reason: &str| ApiError::invalid("bbox", v, reason.to_owned());
        let nums: Vec<f64> = v
            .split(',')
            .map(|s| s.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad("expected four numbers: minLon,minLat,maxLon,maxLat"))?;
        let [a, b, c, d] = nums[..] else { return Err(bad("expected four numbers: minLon,minLat,maxLon,maxLat")) };
        let min = LonLat::new(a, b).map_err(|e| bad(&e.to_string()))?;
        let max = LonLat::new(c, d).map_err(|e| bad(&e.to_string()))?;
        BBox::new(crs.to_wgs84(min), crs.to_wgs84(max))
            .map(Some)
            .ok_or_else(|| bad("minimum exceeds maximum (boxes across the antimeridian are not supported)"))
    }

    /// A grid code parameter.
    ///
    /// # Errors
    /// Naming the parameter.
    pub fn grid(&self, name: &str) -> Result<Option<GridCode>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => GridCode::parse(v).map(Some).map_err(|e| ApiError::invalid(name, v, e.to_string())),
        }
    }

    /// A time: RFC 3339 (`2026-11-01T08:00:00+08:00`) or a date (`2026-11-01`, midnight UTC).
    ///
    /// # Errors
    /// Naming the parameter.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(Some(t.with_timezone(&Utc)));
        }
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Some(t.and_utc()))
            .ok_or_else(|| ApiError::invalid(name, v, "expected an RFC 3339 time or a YYYY-MM-DD date"))
    }
}

fn form_urlencoded(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_plus_decode() {
        assert_eq!(
            form_urlencoded("a=1%2C2&b=x+y&c=%E7%A6%8F"),
            vec![("a".into(), "1,2".into()), ("b".into(), "x y".into()), ("c".into(), "福".into())]
        );
        assert_eq!(form_urlencoded("a=%4"), vec![("a".into(), "%4".into())]);
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let e = Params::parse(Some("bbx=1"), &["bbox"]).err().unwrap();
        assert_eq!(e.body()["errors"][0]["field"], "bbx");
        let e = Params::parse(Some("k=1&k=2"), &["k"]).err().unwrap();
        assert_eq!(e.body()["errors"][0]["field"], "k");
    }
}
