//! The grid hierarchy: district/town → street → community → grid (网格).
//!
//! # Codes
//! A unit's code is its parent's code followed by a three-digit sequence number (001–999); a
//! top-level unit's code is the six-digit GB/T 2260 administrative-division code of its district
//! or town (e.g. 440304 福田区). So a grid directly under a district is 9 digits, and a grid
//! under district → street → community is 15 digits. Two consequences the rest of the system
//! relies on: the parent of a unit is derivable from its code, and "unit A contains unit B" is
//! "B's code starts with A's code" — which is how grid-scoped access is checked.
//!
//! A deployment may skip levels (the demo goes district → grid), so the level is stored
//! explicitly and only has to be deeper than the parent's.

use geo::MultiPolygon;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// The level of a unit in the hierarchy, from the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GridLevel {
    /// District (区) or town (镇/街道 in a city without districts, such as Dongguan).
    District,
    /// Street (街道).
    Street,
    /// Community or village (社区/村).
    Community,
    /// Management grid (网格), the unit a grid worker is responsible for.
    Grid,
}

impl GridLevel {
    /// The lower-case name used in GeoJSON and the API.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::District => "district",
            Self::Street => "street",
            Self::Community => "community",
            Self::Grid => "grid",
        }
    }

    /// The level implied by a code's depth when none is given.
    fn from_depth(depth: usize) -> Option<Self> {
        [Self::District, Self::Street, Self::Community, Self::Grid].get(depth).copied()
    }
}

impl FromStr for GridLevel {
    type Err = GridError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "district" | "town" => Ok(Self::District),
            "street" => Ok(Self::Street),
            "community" | "village" => Ok(Self::Community),
            "grid" => Ok(Self::Grid),
            _ => Err(GridError::BadLevel { value: s.to_owned() }),
        }
    }
}

/// A validated grid-unit code (see the module docs for the format).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GridCode(String);

impl GridCode {
    /// Length of the GB/T 2260 prefix.
    pub const PREFIX_LEN: usize = 6;
    /// Digits added per level below the top.
    pub const LEVEL_DIGITS: usize = 3;
    /// Deepest supported depth (district + three levels).
    pub const MAX_DEPTH: usize = 3;

    /// Parses and checks a code.
    ///
    /// # Errors
    /// [`GridError::BadCode`] with the value and the reason.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// let g = GridCode::parse("440304001").unwrap();
    /// assert_eq!(g.parent().unwrap().as_str(), "440304");
    /// assert!(GridCode::parse("44030").is_err());
    /// assert!(GridCode::parse("440304000").is_err()); // sequence numbers start at 001
    /// ```
    pub fn parse(s: &str) -> Result<Self, GridError> {
        let bad = |reason: &str| GridError::BadCode { value: s.to_owned(), reason: reason.to_owned() };
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a code has digits only"));
        }
        if s.len() < Self::PREFIX_LEN || !(s.len() - Self::PREFIX_LEN).is_multiple_of(Self::LEVEL_DIGITS) {
            return Err(bad("a code is a 6-digit GB/T 2260 prefix followed by 3 digits per level"));
        }
        if (s.len() - Self::PREFIX_LEN) / Self::LEVEL_DIGITS > Self::MAX_DEPTH {
            return Err(bad("a code has at most 3 levels below the district"));
        }
        if s[..2] == *"00" {
            return Err(bad("the GB/T 2260 prefix starts with a province number 11–82"));
        }
        let mut rest = &s[Self::PREFIX_LEN..];
        while !rest.is_empty() {
            if &rest[..Self::LEVEL_DIGITS] == "000" {
                return Err(bad("level sequence numbers run from 001 to 999"));
            }
            rest = &rest[Self::LEVEL_DIGITS..];
        }
        Ok(Self(s.to_owned()))
    }

    /// The code as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Levels below the top: 0 for a district.
    #[must_use]
    pub fn depth(&self) -> usize {
        (self.0.len() - Self::PREFIX_LEN) / Self::LEVEL_DIGITS
    }

    /// The parent's code, derived from this code; `None` at the top.
    #[must_use]
    pub fn parent(&self) -> Option<Self> {
        (self.depth() > 0).then(|| Self(self.0[..self.0.len() - Self::LEVEL_DIGITS].to_owned()))
    }

    /// Whether `other` is this unit or lies beneath it.
    #[must_use]
    pub fn covers(&self, other: &GridCode) -> bool {
        other.0.starts_with(&self.0)
    }

    /// The code of the `seq`-th child (1-based).
    ///
    /// # Errors
    /// [`GridError::BadCode`] when `seq` is not in 1..=999 or the code is already at the deepest level.
    pub fn child(&self, seq: u32) -> Result<Self, GridError> {
        Self::parse(&format!("{}{seq:03}", self.0))
    }
}

impl fmt::Display for GridCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for GridCode {
    type Error = GridError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<GridCode> for String {
    fn from(c: GridCode) -> Self {
        c.0
    }
}

impl FromStr for GridCode {
    type Err = GridError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The person responsible for a unit (for a grid: its grid worker, 网格员).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manager {
    /// Full name.
    pub name: String,
    /// Contact phone, if published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// One unit of the hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct GridUnit {
    /// Unique code; also gives the parent.
    pub code: GridCode,
    /// Display name (e.g. 福田区, 园岭街道, 百花社区第3网格).
    pub name: String,
    /// Level in the hierarchy.
    pub level: GridLevel,
    /// Assigned manager, if any.
    pub manager: Option<Manager>,
    /// Boundary in WGS-84.
    pub geometry: MultiPolygon<f64>,
}

/// Errors in grid codes or in the shape of a hierarchy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GridError {
    /// Malformed code.
    #[error("bad grid code {value:?}: {reason}")]
    BadCode {
        /// The text given as a code.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Unknown level name.
    #[error("bad grid level {value:?}: expected district, street, community or grid")]
    BadLevel {
        /// The text given as a level.
        value: String,
    },
    /// Two units with one code.
    #[error("grid code {code} appears more than once")]
    DuplicateCode {
        /// The code given to more than one unit.
        code: String,
    },
    /// A unit whose parent (derived from its code) is not in the set.
    #[error("grid {code} has no parent unit {parent} in the hierarchy")]
    MissingParent {
        /// The unit's code.
        code: String,
        /// The parent's code, derived from the unit's (its prefix one level up).
        parent: String,
    },
    /// A unit not deeper than its parent.
    #[error("grid {code} is a {level} but its parent {parent} is a {parent_level}")]
    LevelOrder {
        /// The unit's code.
        code: String,
        /// The unit's level name (`district`, `street`, `community` or `grid`).
        level: &'static str,
        /// The parent's code.
        parent: String,
        /// The parent's level name, which is not above `level`.
        parent_level: &'static str,
    },
}

/// A complete, consistent set of units.
#[derive(Debug, Clone, Default)]
pub struct GridHierarchy {
    units: Vec<GridUnit>,
    by_code: HashMap<GridCode, usize>,
    has_children: Vec<bool>,
}

impl GridHierarchy {
    /// Checks codes, parents and levels, and builds the hierarchy. Units are kept sorted by code.
    ///
    /// # Errors
    /// The first [`GridError`] found.
    pub fn new(mut units: Vec<GridUnit>) -> Result<Self, GridError> {
        units.sort_by(|a, b| a.code.cmp(&b.code));
        let mut by_code = HashMap::with_capacity(units.len());
        for (i, u) in units.iter().enumerate() {
            if by_code.insert(u.code.clone(), i).is_some() {
                return Err(GridError::DuplicateCode { code: u.code.to_string() });
            }
        }
        let mut has_children = vec![false; units.len()];
        for u in &units {
            let Some(parent) = u.code.parent() else { continue };
            let Some(&pi) = by_code.get(&parent) else {
                return Err(GridError::MissingParent { code: u.code.to_string(), parent: parent.to_string() });
            };
            let p = &units[pi];
            if p.level >= u.level {
                return Err(GridError::LevelOrder {
                    code: u.code.to_string(),
                    level: u.level.name(),
                    parent: p.code.to_string(),
                    parent_level: p.level.name(),
                });
            }
            has_children[pi] = true;
        }
        Ok(Self { units, by_code, has_children })
    }

    /// All units, sorted by code.
    #[must_use]
    pub fn units(&self) -> &[GridUnit] {
        &self.units
    }

    /// Number of units.
    #[must_use]
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether there are no units.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Index of a unit by code.
    #[must_use]
    pub fn index_of(&self, code: &GridCode) -> Option<usize> {
        self.by_code.get(code).copied()
    }

    /// A unit by code.
    #[must_use]
    pub fn get(&self, code: &GridCode) -> Option<&GridUnit> {
        self.index_of(code).map(|i| &self.units[i])
    }

    /// A unit by index.
    #[must_use]
    pub fn unit(&self, index: usize) -> &GridUnit {
        &self.units[index]
    }

    /// The unit and its ancestors, top first (district … grid).
    #[must_use]
    pub fn chain(&self, index: usize) -> Vec<&GridUnit> {
        let mut out = vec![&self.units[index]];
        let mut code = self.units[index].code.parent();
        while let Some(c) = code {
            match self.get(&c) {
                Some(u) => out.push(u),
                None => break,
            }
            code = c.parent();
        }
        out.reverse();
        out
    }

    /// Units with no children: the ones a point is located in.
    pub fn leaves(&self) -> impl Iterator<Item = (usize, &GridUnit)> {
        self.units.iter().enumerate().filter(|(i, _)| !self.has_children[*i])
    }

    /// Units directly beneath `code`.
    pub fn children<'a>(&'a self, code: &'a GridCode) -> impl Iterator<Item = &'a GridUnit> + 'a {
        self.units.iter().filter(move |u| u.code.parent().as_ref() == Some(code))
    }
}

/// Reads a grid unit from a GeoJSON feature: properties `code` (required), `name` (required),
/// `level` (default: implied by the code's depth), `manager` and `manager_phone` (optional).
///
/// # Errors
/// [`GridFeatureError`] naming the property or the geometry path at fault.
pub fn unit_from_feature(f: &geojson::Feature) -> Result<GridUnit, GridFeatureError> {
    let props = f.properties.as_ref();
    let text = |key: &'static str| -> Option<String> {
        props.and_then(|p| p.get(key)).and_then(|v| match v {
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let code_text = text("code").ok_or(GridFeatureError::MissingProperty { property: "code" })?;
    let code = GridCode::parse(&code_text).map_err(GridFeatureError::Grid)?;
    let name = text("name").ok_or(GridFeatureError::MissingProperty { property: "name" })?;
    let level = match text("level") {
        Some(l) => l.parse().map_err(GridFeatureError::Grid)?,
        None => GridLevel::from_depth(code.depth()).unwrap_or(GridLevel::Grid),
    };
    let manager = text("manager").map(|name| Manager { name, phone: text("manager_phone") });
    let geometry = f.geometry.as_ref().ok_or(GridFeatureError::MissingProperty { property: "geometry" })?;
    let geometry = crate::polygon_check::polygonal_from_geojson(geometry).map_err(GridFeatureError::Geometry)?;
    Ok(GridUnit { code, name, level, manager, geometry })
}

/// Writes a unit as a GeoJSON feature with the same properties [`unit_from_feature`] reads.
#[must_use]
pub fn unit_to_feature(u: &GridUnit) -> geojson::Feature {
    let mut props = serde_json::Map::new();
    props.insert("code".into(), u.code.as_str().into());
    props.insert("name".into(), u.name.clone().into());
    props.insert("level".into(), u.level.name().into());
    if let Some(p) = u.code.parent() {
        props.insert("parent".into(), p.as_str().into());
    }
    if let Some(m) = &u.manager {
        props.insert("manager".into(), m.name.clone().into());
        if let Some(phone) = &m.phone {
            props.insert("manager_phone".into(), phone.clone().into());
        }
    }
    geojson::Feature {
        bbox: None,
        geometry: Some(crate::polygon_check::multipolygon_to_geojson(&u.geometry)),
        id: Some(geojson::feature::Id::String(u.code.to_string())),
        properties: Some(props),
        foreign_members: None,
    }
}

/// Why a GeoJSON feature is not a grid unit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GridFeatureError {
    /// A required property (or the geometry) is absent or empty.
    #[error("missing property {property:?}")]
    MissingProperty {
        /// The property's name, or `"geometry"`.
        property: &'static str,
    },
    /// Bad code or level.
    #[error(transparent)]
    Grid(GridError),
    /// Bad geometry.
    #[error("bad geometry: {0}")]
    Geometry(crate::polygon_check::GeometryError),
}

/// Reads every feature of a GeoJSON FeatureCollection as a unit and builds the hierarchy.
///
/// # Errors
/// The feature index and its fault, or the hierarchy fault.
pub fn hierarchy_from_geojson(text: &str) -> Result<GridHierarchy, GridLoadError> {
    let fc: geojson::FeatureCollection = text
        .parse::<geojson::GeoJson>()
        .map_err(|e| GridLoadError::Parse(e.to_string()))
        .and_then(|g| geojson::FeatureCollection::try_from(g).map_err(|e| GridLoadError::Parse(e.to_string())))?;
    let units = fc
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| unit_from_feature(f).map_err(|error| GridLoadError::Feature { index: i, error }))
        .collect::<Result<Vec<_>, _>>()?;
    GridHierarchy::new(units).map_err(GridLoadError::Hierarchy)
}

/// Why a GeoJSON grid file could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GridLoadError {
    /// Not a GeoJSON FeatureCollection.
    #[error("not a GeoJSON FeatureCollection: {0}")]
    Parse(String),
    /// One feature is not a valid unit.
    #[error("feature {index}: {error}")]
    Feature {
        /// The feature's position in the collection, from 0.
        index: usize,
        /// What is wrong with that feature.
        error: GridFeatureError,
    },
    /// The units do not form a hierarchy.
    #[error(transparent)]
    Hierarchy(GridError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Polygon, polygon};

    fn square(x: f64, y: f64, s: f64) -> MultiPolygon<f64> {
        let p: Polygon<f64> = polygon![(x: x, y: y), (x: x + s, y: y), (x: x + s, y: y + s), (x: x, y: y + s)];
        MultiPolygon(vec![p])
    }

    fn unit(code: &str, level: GridLevel) -> GridUnit {
        GridUnit {
            code: GridCode::parse(code).unwrap(),
            name: code.into(),
            level,
            manager: None,
            geometry: square(0.0, 0.0, 1.0),
        }
    }

    #[test]
    fn codes_check_format_and_derive_parents() {
        assert!(GridCode::parse("440304").is_ok());
        assert!(GridCode::parse("440304001002003").is_ok());
        assert!(GridCode::parse("440304001002003004").is_err());
        assert!(GridCode::parse("4403040012").is_err());
        assert!(GridCode::parse("44030a").is_err());
        let g = GridCode::parse("440304001002").unwrap();
        assert_eq!(g.depth(), 2);
        assert!(GridCode::parse("440304").unwrap().covers(&g));
        assert!(!GridCode::parse("440305").unwrap().covers(&g));
        assert_eq!(g.child(7).unwrap().as_str(), "440304001002007");
        assert!(g.child(1000).is_err());
    }

    #[test]
    fn hierarchy_refuses_orphans_duplicates_and_inverted_levels() {
        let err = GridHierarchy::new(vec![unit("440304001", GridLevel::Grid)]).unwrap_err();
        assert!(matches!(err, GridError::MissingParent { .. }));
        let err = GridHierarchy::new(vec![unit("440304", GridLevel::District), unit("440304", GridLevel::District)])
            .unwrap_err();
        assert!(matches!(err, GridError::DuplicateCode { .. }));
        let err = GridHierarchy::new(vec![unit("440304", GridLevel::Grid), unit("440304001", GridLevel::Street)])
            .unwrap_err();
        assert!(matches!(err, GridError::LevelOrder { .. }));
    }

    #[test]
    fn a_deployment_may_skip_levels_and_chains_run_top_down() {
        let h =
            GridHierarchy::new(vec![unit("440304001", GridLevel::Grid), unit("440304", GridLevel::District)]).unwrap();
        let leaf = h.index_of(&GridCode::parse("440304001").unwrap()).unwrap();
        let chain: Vec<_> = h.chain(leaf).iter().map(|u| u.code.to_string()).collect();
        assert_eq!(chain, ["440304", "440304001"]);
        assert_eq!(h.leaves().count(), 1);
    }

    #[test]
    fn features_round_trip_through_geojson() {
        let mut u = unit("440304", GridLevel::District);
        u.manager = Some(Manager { name: "张三".into(), phone: Some("13800000000".into()) });
        let f = unit_to_feature(&u);
        let back = unit_from_feature(&f).unwrap();
        assert_eq!(back.code, u.code);
        assert_eq!(back.manager, u.manager);
        assert_eq!(back.level, GridLevel::District);
    }
}
