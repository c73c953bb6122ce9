//! # safegrid-tiles — tile maths
//!
//! XYZ tile addressing on Web Mercator (EPSG:3857), as used by MapLibre, OSM and MVT: tile
//! `z/x/y` ↔ its longitude/latitude bounds, and the tile holding a point; and [`mvt`], Mapbox
//! Vector Tile encoding and decoding. Clipping, simplification, clustering and the tile cache
//! build on these (see the map-wall issue).
#![cfg_attr(test, allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed"))]

pub mod glyphs;
pub mod mvt;
mod pbf;
pub mod shape;
pub mod sprite;

use std::f64::consts::PI;
use std::fmt;

/// Highest zoom safegrid serves; at z24 a tile is ~2 m wide at the equator.
pub const MAX_ZOOM: u8 = 24;

/// Web Mercator's latitude limit: the square world's top and bottom edges.
pub const MAX_LAT: f64 = 85.051_128_779_806_59;

/// A tile address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Zoom level, 0 = the whole world in one tile.
    pub z: u8,
    /// Column, 0 at longitude -180, growing east.
    pub x: u32,
    /// Row, 0 at the north edge, growing south (XYZ, not TMS).
    pub y: u32,
}

/// Why a tile address is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    /// Zoom above [`MAX_ZOOM`].
    #[error("zoom {z} is above the maximum {MAX_ZOOM}")]
    Zoom {
        /// The zoom asked for.
        z: u8,
    },
    /// Column or row outside 0..2^z.
    #[error("{axis} = {value} is outside 0..{limit} at zoom {z}")]
    OutOfRange {
        /// Which coordinate: `"x"` or `"y"`.
        axis: &'static str,
        /// The column or row asked for.
        value: u32,
        /// 2^z, the first value past the last tile at this zoom.
        limit: u64,
        /// The zoom.
        z: u8,
    },
}

impl TileId {
    /// Checks the address.
    ///
    /// # Errors
    /// [`TileError`] naming the axis.
    ///
    /// # Examples
    /// ```
    /// use safegrid_tiles::TileId;
    /// assert!(TileId::new(2, 3, 3).is_ok());
    /// assert!(TileId::new(2, 4, 0).is_err());
    /// ```
    pub fn new(z: u8, x: u32, y: u32) -> Result<Self, TileError> {
        if z > MAX_ZOOM {
            return Err(TileError::Zoom { z });
        }
        let n = 1u64 << z;
        for (axis, value) in [("x", x), ("y", y)] {
            if u64::from(value) >= n {
                return Err(TileError::OutOfRange { axis, value, limit: n, z });
            }
        }
        Ok(Self { z, x, y })
    }

    /// The tile holding a WGS-84 point at zoom `z` (latitudes beyond ±85.05° clamp to the edge).
    #[must_use]
    pub fn containing(lon: f64, lat: f64, z: u8) -> Self {
        let z = z.min(MAX_ZOOM);
        let n = f64::from(1u32 << z);
        let lat = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
        let x = ((lon + 180.0) / 360.0 * n).floor();
        let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0 * n).floor();
        let max = n - 1.0;
        Self { z, x: x.clamp(0.0, max) as u32, y: y.clamp(0.0, max) as u32 }
    }

    /// Bounds as (west, south, east, north) in degrees.
    #[must_use]
    pub fn bounds(self) -> Bounds {
        let n = f64::from(1u32 << self.z);
        let lon = |x: f64| x / n * 360.0 - 180.0;
        let lat = |y: f64| (PI * (1.0 - 2.0 * y / n)).sinh().atan().to_degrees();
        let (x, y) = (f64::from(self.x), f64::from(self.y));
        Bounds { west: lon(x), south: lat(y + 1.0), east: lon(x + 1.0), north: lat(y) }
    }

    /// Bounds in Web-Mercator metres (EPSG:3857) as (min x, min y, max x, max y).
    #[must_use]
    pub fn mercator_bounds(self) -> [f64; 4] {
        const HALF: f64 = 20_037_508.342_789_244;
        let size = 2.0 * HALF / f64::from(1u32 << self.z);
        let x0 = -HALF + f64::from(self.x) * size;
        let y1 = HALF - f64::from(self.y) * size;
        [x0, y1 - size, x0 + size, y1]
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

/// A longitude/latitude box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Western longitude.
    pub west: f64,
    /// Southern latitude.
    pub south: f64,
    /// Eastern longitude.
    pub east: f64,
    /// Northern latitude.
    pub north: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn zoom_zero_is_the_whole_mercator_world() {
        let b = TileId::new(0, 0, 0).unwrap().bounds();
        assert!(close(b.west, -180.0) && close(b.east, 180.0));
        assert!(close(b.north, MAX_LAT) && close(b.south, -MAX_LAT));
    }

    /// Known values: OSM wiki "Slippy map tilenames" and mercantile's test suite.
    #[test]
    fn tiles_match_published_values() {
        // mercantile: tile(20.6852, 40.1222, 9) == Tile(285, 193, 9)
        assert_eq!(TileId::containing(20.685_2, 40.122_2, 9), TileId { z: 9, x: 285, y: 193 });
        // mercantile: bounds(486, 332, 10) == (-9.140625, 53.12040528310657, -8.7890625, 53.33087298301705)
        let b = TileId::new(10, 486, 332).unwrap().bounds();
        assert!(close(b.west, -9.140_625) && close(b.east, -8.789_062_5));
        assert!(close(b.south, 53.120_405_283_106_57) && close(b.north, 53.330_872_983_017_05));
        // mercantile: xy_bounds(1, 1, 1) == (0, -20037508.34, 20037508.34, 0)
        let m = TileId::new(1, 1, 1).unwrap().mercator_bounds();
        assert!(m[0].abs() < 1e-6 && (m[1] + 20_037_508.342_789_244).abs() < 1e-6 && m[3].abs() < 1e-6);
    }

    #[test]
    fn a_point_lies_in_the_bounds_of_its_tile_at_every_zoom() {
        let (lon, lat) = (114.057_9, 22.543_1); // 福田
        for z in 0..=MAX_ZOOM {
            let t = TileId::containing(lon, lat, z);
            let b = t.bounds();
            assert!(b.west <= lon && lon < b.east && b.south < lat && lat <= b.north, "{t}");
        }
    }

    #[test]
    fn out_of_range_addresses_are_named() {
        assert_eq!(TileId::new(25, 0, 0), Err(TileError::Zoom { z: 25 }));
        assert!(matches!(TileId::new(3, 0, 8), Err(TileError::OutOfRange { axis: "y", .. })));
    }
}
