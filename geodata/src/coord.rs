//! Validated WGS-84 coordinates.
//!
//! Everything inside safegrid computes on [`LonLat`]: longitude first, then latitude, in degrees
//! on WGS-84 (CGCS2000 is treated as equal at metre level, see DESIGN.md). A value of this type
//! has been range- and NaN-checked once, at the edge, and is trusted from then on.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a longitude/latitude pair was refused.
///
/// # Examples
/// ```
/// use safegrid_geodata::{CoordError, LonLat};
/// let err = LonLat::new(114.0579, 95.0).unwrap_err();
/// assert!(matches!(err, CoordError::OutOfRange { field: "lat", .. }));
/// assert_eq!(err.to_string(), "lat must be between -90 and 90 degrees, got 95");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoordError {
    /// The value is NaN or infinite.
    #[error("{field} must be a finite number, got {value}")]
    NotFinite {
        /// The axis: `"lon"` or `"lat"`.
        field: &'static str,
        /// The value given (NaN or ±∞).
        value: f64,
    },
    /// The value lies outside the valid range for its axis.
    #[error("{field} must be between {min} and {max} degrees, got {value}")]
    OutOfRange {
        /// The axis: `"lon"` or `"lat"`.
        field: &'static str,
        /// The value given, in degrees.
        value: f64,
        /// The axis's lowest valid value in degrees (−180 or −90).
        min: f64,
        /// The axis's highest valid value in degrees (180 or 90).
        max: f64,
    },
}

impl CoordError {
    /// The name of the offending axis: `"lon"` or `"lat"`.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::LonLat;
    /// let err = LonLat::new(f64::NAN, 22.5431).unwrap_err();
    /// assert_eq!(err.field(), "lon");
    /// ```
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::NotFinite { field, .. } | Self::OutOfRange { field, .. } => field,
        }
    }

    /// The offending value.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::LonLat;
    /// // Latitude and longitude swapped: 114° is no latitude.
    /// let err = LonLat::new(22.5431, 114.0579).unwrap_err();
    /// assert_eq!((err.field(), err.value()), ("lat", 114.0579));
    /// ```
    #[must_use]
    pub fn value(&self) -> f64 {
        match self {
            Self::NotFinite { value, .. } | Self::OutOfRange { value, .. } => *value,
        }
    }
}

/// A WGS-84 position: longitude and latitude in degrees, in that order.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// let futian = LonLat::new(114.0579, 22.5431).unwrap();
/// assert_eq!(futian.lon(), 114.0579);
/// assert!(LonLat::new(114.0, 91.0).is_err());
/// assert!(LonLat::new(f64::NAN, 22.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "[f64; 2]", into = "[f64; 2]")]
pub struct LonLat {
    lon: f64,
    lat: f64,
}

impl LonLat {
    /// Checks both axes: finite, longitude in [-180, 180], latitude in [-90, 90].
    ///
    /// # Errors
    /// [`CoordError`] naming the axis and the value.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::LonLat;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dongguan = LonLat::new(113.7518, 23.0205)?;
    /// assert_eq!((dongguan.lon(), dongguan.lat()), (113.7518, 23.0205));
    /// assert!(LonLat::new(180.0, -90.0).is_ok()); // the bounds are inclusive
    /// assert!(LonLat::new(180.5, 22.5).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(lon: f64, lat: f64) -> Result<Self, CoordError> {
        check_axis("lon", lon, 180.0)?;
        check_axis("lat", lat, 90.0)?;
        Ok(Self { lon, lat })
    }

    /// Builds a point from the output of a computation on valid points (finite by construction),
    /// clamping it into range.
    pub(crate) fn clamped(lon: f64, lat: f64) -> Self {
        debug_assert!(lon.is_finite() && lat.is_finite());
        Self { lon: lon.clamp(-180.0, 180.0), lat: lat.clamp(-90.0, 90.0) }
    }

    /// Longitude in degrees east.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::LonLat;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert_eq!(LonLat::new(114.0579, 22.5431)?.lon(), 114.0579);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Latitude in degrees north.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::LonLat;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert_eq!(LonLat::new(114.0579, 22.5431)?.lat(), 22.5431);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// The point as a `geo` coordinate (x = lon, y = lat).
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::LonLat;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let c = LonLat::new(114.0579, 22.5431)?.to_coord();
    /// assert_eq!((c.x, c.y), (114.0579, 22.5431));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn to_coord(self) -> geo::Coord<f64> {
        geo::Coord { x: self.lon, y: self.lat }
    }
}

fn check_axis(field: &'static str, value: f64, limit: f64) -> Result<(), CoordError> {
    if !value.is_finite() {
        return Err(CoordError::NotFinite { field, value });
    }
    if !(-limit..=limit).contains(&value) {
        return Err(CoordError::OutOfRange { field, value, min: -limit, max: limit });
    }
    Ok(())
}

impl TryFrom<[f64; 2]> for LonLat {
    type Error = CoordError;
    fn try_from([lon, lat]: [f64; 2]) -> Result<Self, Self::Error> {
        Self::new(lon, lat)
    }
}

impl From<LonLat> for [f64; 2] {
    fn from(p: LonLat) -> Self {
        [p.lon, p.lat]
    }
}

impl fmt::Display for LonLat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6},{:.6}", self.lon, self.lat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_errors_name_the_axis() {
        assert!(LonLat::new(180.0, 90.0).is_ok());
        assert!(LonLat::new(-180.0, -90.0).is_ok());
        let err = LonLat::new(180.000_001, 0.0).unwrap_err();
        assert_eq!(err.field(), "lon");
        let err = LonLat::new(0.0, f64::INFINITY).unwrap_err();
        assert_eq!(err.field(), "lat");
        assert!(matches!(err, CoordError::NotFinite { .. }));
    }

    #[test]
    fn serde_uses_lon_lat_array_and_validates() {
        let p: LonLat = serde_json::from_str("[114.1, 22.5]").unwrap();
        assert_eq!((p.lon(), p.lat()), (114.1, 22.5));
        assert!(serde_json::from_str::<LonLat>("[22.5, 114.1]").is_err());
    }
}
