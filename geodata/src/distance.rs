//! Great-circle distances in metres.

use crate::LonLat;

/// Mean Earth radius in metres (IUGG R1), the radius used by every distance in safegrid.
///
/// # Examples
/// ```
/// use safegrid_geodata::EARTH_RADIUS_M;
/// // One minute of arc along a great circle is about one nautical mile.
/// let one_minute = EARTH_RADIUS_M * (1.0_f64 / 60.0).to_radians();
/// assert!((one_minute - 1_853.2).abs() < 0.1);
/// ```
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Metres along one degree of latitude on the mean sphere.
///
/// # Examples
/// ```
/// use safegrid_geodata::{LonLat, haversine_m, distance::METRES_PER_DEGREE};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert!((METRES_PER_DEGREE - 111_195.08).abs() < 0.01);
/// // Due north, the haversine distance is the latitude difference times this constant.
/// let d = haversine_m(LonLat::new(114.0579, 22.5)?, LonLat::new(114.0579, 23.0)?);
/// assert!((d - 0.5 * METRES_PER_DEGREE).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub const METRES_PER_DEGREE: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Haversine distance between two points.
///
/// # Units
/// Returns metres on the mean sphere ([`EARTH_RADIUS_M`]); the error against the WGS-84
/// ellipsoid is below 0.5 %, which is far below GPS noise at city scale.
///
/// # Examples
/// ```
/// use safegrid_geodata::{LonLat, haversine_m};
/// let a = LonLat::new(114.0, 22.5).unwrap();
/// let b = LonLat::new(114.0, 22.6).unwrap();
/// assert!((haversine_m(a, b) - 11_119.5).abs() < 1.0);
/// ```
#[must_use]
pub fn haversine_m(a: LonLat, b: LonLat) -> f64 {
    let (lat1, lat2) = (a.lat().to_radians(), b.lat().to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon() - a.lon()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A local flat projection around `origin` in metres (x east, y north): equirectangular, exact
/// enough (< 0.1 %) within a few tens of kilometres, which is all a point-to-polygon distance
/// inside one city needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalMetres {
    lon0: f64,
    lat0: f64,
    kx: f64,
}

impl LocalMetres {
    pub(crate) fn around(origin: LonLat) -> Self {
        Self { lon0: origin.lon(), lat0: origin.lat(), kx: METRES_PER_DEGREE * origin.lat().to_radians().cos() }
    }

    pub(crate) fn project(&self, lon: f64, lat: f64) -> (f64, f64) {
        ((lon - self.lon0) * self.kx, (lat - self.lat0) * METRES_PER_DEGREE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_meridian_is_ten_thousand_kilometres() {
        let d = haversine_m(LonLat::new(0.0, 0.0).unwrap(), LonLat::new(0.0, 90.0).unwrap());
        assert!((d - 10_007_557.0).abs() < 10.0, "{d}");
    }

    #[test]
    fn antipodes_do_not_produce_nan() {
        let d = haversine_m(LonLat::new(0.0, 0.0).unwrap(), LonLat::new(180.0, 0.0).unwrap());
        assert!((d - std::f64::consts::PI * EARTH_RADIUS_M).abs() < 1e-3);
    }
}
