//! # safegrid-geodata — the spatial core
//!
//! Pure and synchronous: no I/O, no async, no HTTP. Everything here takes values and returns
//! values, so it is tested with plain unit and property tests and benchmarked with criterion.
//!
//! - [`coord`]: validated WGS-84 [`LonLat`].
//! - [`distance`]: haversine metres.
//! - [`crs`]: WGS-84 ⇄ GCJ-02 ⇄ BD-09 at the edge.
//! - [`datum`]: which of those a polygon layer was drawn in, by how it fits a WGS-84 reference.
//! - [`grid`]: the district → street → community → grid hierarchy and its codes.
//! - [`polygon_check`]: untrusted GeoJSON polygons → trusted geometry, with located faults.
//! - [`locate`]: point → grid, with the border rule.
//! - [`point_index`]: dynamic point index (box, radius, k-nearest with filter).
//! - [`h3`]: H3 cells and counts.
//! - [`gridgen`]: grids generated from H3 cells clipped to districts.
//! - [`gridding`]: automatic gridding of communities into grids of 300–500 households.
//! - [`overlay`]: polygon union, difference, intersection at a fixed snap radius.
//! - [`trace_file`]: position traces from GPX, GeoLife `.plt` and CSV files.
//! - [`audit`]: coverage audits of a grid layer (gaps, overlaps, codes, staffing, workload).
#![cfg_attr(test, allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed"))]

pub mod audit;
pub mod coord;
pub mod crs;
pub mod datum;
pub mod distance;
pub mod grid;
pub mod gridding;
pub mod gridgen;
pub mod h3;
pub mod locate;
pub mod overlay;
pub mod point_index;
pub mod polygon_check;
pub mod roads;
pub mod trace_file;

pub use coord::{CoordError, LonLat};
pub use crs::Crs;
pub use distance::{EARTH_RADIUS_M, haversine_m};
pub use grid::{GridCode, GridHierarchy, GridLevel, GridUnit, Manager};
pub use locate::{GridLocator, Location};
pub use point_index::{BBox, Hit, PointIndex};
