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
///
/// Levels are ordered from the top down, and parse from their GeoJSON names (`town` and
/// `village` are accepted as synonyms).
///
/// # Examples
/// ```
/// use safegrid_geodata::GridLevel;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert!(GridLevel::District < GridLevel::Grid);
/// assert_eq!("village".parse::<GridLevel>()?, GridLevel::Community);
/// assert!("网格".parse::<GridLevel>().is_err());
/// # Ok(())
/// # }
/// ```
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
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridLevel;
    /// assert_eq!(GridLevel::Community.name(), "community");
    /// // A town (镇) in Dongguan is a top-level unit, named like a district.
    /// assert_eq!("town".parse::<GridLevel>().map(GridLevel::name), Ok("district"));
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridLevel;
    /// assert_eq!(GridLevel::from_depth(0), Some(GridLevel::District));
    /// assert_eq!(GridLevel::from_depth(4), None);
    /// ```
    #[must_use]
    pub fn from_depth(depth: usize) -> Option<Self> {
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
///
/// # Examples
/// ```
/// use safegrid_geodata::GridCode;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let futian: GridCode = "440304".parse()?; // 福田区
/// let grid = futian.child(1)?;
/// assert_eq!(grid.to_string(), "440304001");
/// assert!(futian.covers(&grid));
/// // In JSON a code is a plain string, checked when read.
/// assert_eq!(serde_json::to_string(&grid)?, r#""440304001""#);
/// assert!(serde_json::from_str::<GridCode>(r#""440304000""#).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GridCode(String);

impl GridCode {
    /// Length of the GB/T 2260 prefix.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let grid = GridCode::parse("440304001")?;
    /// assert_eq!(&grid.as_str()[..GridCode::PREFIX_LEN], "440304"); // 福田区
    /// # Ok(())
    /// # }
    /// ```
    pub const PREFIX_LEN: usize = 6;
    /// Digits added per level below the top.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let grid = GridCode::parse("440304001")?;
    /// assert_eq!(grid.as_str().len(), GridCode::PREFIX_LEN + grid.depth() * GridCode::LEVEL_DIGITS);
    /// # Ok(())
    /// # }
    /// ```
    pub const LEVEL_DIGITS: usize = 3;
    /// Deepest supported depth (district + three levels).
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // district → street → community → grid: 15 digits.
    /// let deepest = GridCode::parse("440304001002003")?;
    /// assert_eq!(deepest.depth(), GridCode::MAX_DEPTH);
    /// assert!(deepest.child(1).is_err());
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert_eq!(GridCode::parse("441900003")?.as_str(), "441900003");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Levels below the top: 0 for a district.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert_eq!(GridCode::parse("440304")?.depth(), 0);
    /// assert_eq!(GridCode::parse("440304001")?.depth(), 1);
    /// assert_eq!(GridCode::parse("440304008012005")?.depth(), 3);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn depth(&self) -> usize {
        (self.0.len() - Self::PREFIX_LEN) / Self::LEVEL_DIGITS
    }

    /// The parent's code, derived from this code; `None` at the top.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let grid = GridCode::parse("440304008012005")?;
    /// assert_eq!(grid.parent(), Some(GridCode::parse("440304008012")?));
    /// assert_eq!(GridCode::parse("440304")?.parent(), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn parent(&self) -> Option<Self> {
        (self.depth() > 0).then(|| Self(self.0[..self.0.len() - Self::LEVEL_DIGITS].to_owned()))
    }

    /// Whether `other` is this unit or lies beneath it.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let futian = GridCode::parse("440304")?;
    /// assert!(futian.covers(&GridCode::parse("440304001")?));
    /// assert!(futian.covers(&futian));
    /// assert!(!futian.covers(&GridCode::parse("440307001")?)); // 龙岗区
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn covers(&self, other: &GridCode) -> bool {
        other.0.starts_with(&self.0)
    }

    /// The code of the `seq`-th child (1-based).
    ///
    /// # Errors
    /// [`GridError::BadCode`] when `seq` is not in 1..=999 or the code is already at the deepest level.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::GridCode;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let futian = GridCode::parse("440304")?;
    /// assert_eq!(futian.child(12)?.as_str(), "440304012");
    /// assert!(futian.child(0).is_err());
    /// assert!(futian.child(1000).is_err());
    /// # Ok(())
    /// # }
    /// ```
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
///
/// # Examples
/// ```
/// use safegrid_geodata::Manager;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Manager { name: "李娜".into(), phone: None };
/// // An unpublished phone is left out of the JSON.
/// assert_eq!(serde_json::to_string(&worker)?, r#"{"name":"李娜"}"#);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manager {
    /// Full name.
    pub name: String,
    /// Contact phone, if published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// One unit of the hierarchy.
///
/// # Examples
/// ```
/// use safegrid_geodata::{GridCode, GridLevel, GridUnit, Manager};
/// use geo::{Area, MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let grid = GridUnit {
///     code: GridCode::parse("440304001")?,
///     name: "园岭第1网格".into(),
///     level: GridLevel::Grid,
///     manager: Some(Manager { name: "李娜".into(), phone: Some("0755-0000000".into()) }),
///     geometry: MultiPolygon::new(vec![polygon![
///         (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55)]]),
/// };
/// assert_eq!(grid.code.parent().map(String::from).as_deref(), Some("440304"));
/// assert!(grid.geometry.unsigned_area() > 0.0);
/// # Ok(())
/// # }
/// ```
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
///
/// # Examples
/// ```
/// use safegrid_geodata::grid::GridError;
/// use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
/// use geo::MultiPolygon;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let err = GridCode::parse("44O304").unwrap_err(); // a letter O, not a zero
/// assert!(matches!(err, GridError::BadCode { ref reason, .. } if reason == "a code has digits only"));
///
/// // A grid of 龙华区 (440309) without its district in the set.
/// let orphan = GridUnit {
///     code: GridCode::parse("440309001")?,
///     name: "观湖第1网格".into(),
///     level: GridLevel::Grid,
///     manager: None,
///     geometry: MultiPolygon::new(Vec::new()),
/// };
/// let err = GridHierarchy::new(vec![orphan]).unwrap_err();
/// assert_eq!(err.to_string(), "grid 440309001 has no parent unit 440309 in the hierarchy");
/// # Ok(())
/// # }
/// ```
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
///
/// # Examples
/// ```
/// use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
/// use geo::{MultiPolygon, polygon};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A unit whose geometry is the strip between two longitudes in Futian.
/// let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
///     let geometry = MultiPolygon::new(vec![polygon![
///         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
///     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
/// };
/// let futian = GridHierarchy::new(vec![
///     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
///     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
///     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
/// ])?;
/// assert_eq!(futian.len(), 3);
/// let grid = futian.get(&GridCode::parse("440304002")?).map(|u| u.name.as_str());
/// assert_eq!(grid, Some("园岭第2网格"));
/// assert_eq!(futian.leaves().count(), 2); // the district has children, so it is no leaf
/// # Ok(())
/// # }
/// ```
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
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::grid::GridError;
    /// use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// use geo::MultiPolygon;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let unit = |code: &str, level| -> Result<GridUnit, Box<dyn std::error::Error>> {
    ///     let geometry = MultiPolygon::new(Vec::new());
    ///     Ok(GridUnit { code: GridCode::parse(code)?, name: code.into(), level, manager: None, geometry })
    /// };
    /// // Given in any order, kept sorted by code.
    /// let h = GridHierarchy::new(vec![unit("440304001", GridLevel::Grid)?, unit("440304", GridLevel::District)?])?;
    /// assert_eq!(h.units()[0].code.as_str(), "440304");
    ///
    /// // The same code twice is refused.
    /// let twice = GridHierarchy::new(vec![unit("440304", GridLevel::District)?, unit("440304", GridLevel::District)?]);
    /// assert!(matches!(twice, Err(GridError::DuplicateCode { .. })));
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let codes: Vec<&str> = futian.units().iter().map(|u| u.code.as_str()).collect();
    /// assert_eq!(codes, ["440304", "440304001", "440304002"]);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn units(&self) -> &[GridUnit] {
        &self.units
    }

    /// Number of units.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// assert_eq!(futian.len(), 3);
    /// assert_eq!(GridHierarchy::default().len(), 0);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether there are no units.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// assert!(!futian.is_empty());
    /// assert!(GridHierarchy::new(Vec::new())?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Index of a unit by code.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let i = futian.index_of(&GridCode::parse("440304002")?);
    /// assert_eq!(i, Some(2)); // units are sorted by code
    /// assert_eq!(futian.index_of(&GridCode::parse("440304003")?), None);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn index_of(&self, code: &GridCode) -> Option<usize> {
        self.by_code.get(code).copied()
    }

    /// A unit by code.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let district = futian.get(&GridCode::parse("440304")?);
    /// assert_eq!(district.map(|u| u.level), Some(GridLevel::District));
    /// assert!(futian.get(&GridCode::parse("440307")?).is_none());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn get(&self, code: &GridCode) -> Option<&GridUnit> {
        self.index_of(code).map(|i| &self.units[i])
    }

    /// A unit by index.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let code = GridCode::parse("440304001")?;
    /// let i = futian.index_of(&code).ok_or("no such grid")?;
    /// assert_eq!(futian.unit(i).name, "园岭第1网格");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn unit(&self, index: usize) -> &GridUnit {
        &self.units[index]
    }

    /// The unit and its ancestors, top first (district … grid).
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let i = futian.index_of(&GridCode::parse("440304002")?).ok_or("no such grid")?;
    /// let names: Vec<&str> = futian.chain(i).iter().map(|u| u.name.as_str()).collect();
    /// assert_eq!(names, ["福田区", "园岭第2网格"]);
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let leaves: Vec<(usize, &str)> = futian.leaves().map(|(i, u)| (i, u.code.as_str())).collect();
    /// assert_eq!(leaves, [(1, "440304001"), (2, "440304002")]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn leaves(&self) -> impl Iterator<Item = (usize, &GridUnit)> {
        self.units.iter().enumerate().filter(|(i, _)| !self.has_children[*i])
    }

    /// Units directly beneath `code`.
    ///
    /// # Examples
    /// ```
    /// # use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit};
    /// # use geo::{MultiPolygon, polygon};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let unit = |code: &str, name: &str, level, x0: f64, x1: f64| -> Result<GridUnit, Box<dyn std::error::Error>> {
    /// #     let geometry = MultiPolygon::new(vec![polygon![
    /// #         (x: x0, y: 22.54), (x: x1, y: 22.54), (x: x1, y: 22.55), (x: x0, y: 22.55)]]);
    /// #     Ok(GridUnit { code: GridCode::parse(code)?, name: name.into(), level, manager: None, geometry })
    /// # };
    /// # let futian = GridHierarchy::new(vec![
    /// #     unit("440304", "福田区", GridLevel::District, 114.05, 114.07)?,
    /// #     unit("440304001", "园岭第1网格", GridLevel::Grid, 114.05, 114.06)?,
    /// #     unit("440304002", "园岭第2网格", GridLevel::Grid, 114.06, 114.07)?,
    /// # ])?;
    /// let district = GridCode::parse("440304")?;
    /// assert_eq!(futian.children(&district).count(), 2);
    /// assert_eq!(futian.children(&GridCode::parse("440304001")?).count(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn children<'a>(&'a self, code: &'a GridCode) -> impl Iterator<Item = &'a GridUnit> + 'a {
        self.units.iter().filter(move |u| u.code.parent().as_ref() == Some(code))
    }
}

/// Reads a grid unit from a GeoJSON feature: properties `code` (required), `name` (required),
/// `level` (default: implied by the code's depth), `manager` and `manager_phone` (optional).
///
/// # Errors
/// [`GridFeatureError`] naming the property or the geometry path at fault.
///
/// # Examples
/// ```
/// use safegrid_geodata::GridLevel;
/// use safegrid_geodata::grid::unit_from_feature;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let feature: geojson::Feature = serde_json::from_str(r#"{"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","level":"grid","manager":"李娜"},
///     "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}}"#)?;
/// let grid = unit_from_feature(&feature)?;
/// assert_eq!(grid.code.as_str(), "440304001");
/// assert_eq!(grid.level, GridLevel::Grid);
/// assert_eq!(grid.manager.map(|m| m.name).as_deref(), Some("李娜"));
///
/// // Without `level`, the level follows the code's depth: one level down is a street.
/// let mut no_level = feature.clone();
/// no_level.remove_property("level");
/// assert_eq!(unit_from_feature(&no_level)?.level, GridLevel::Street);
/// # Ok(())
/// # }
/// ```
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
///
/// The feature's id is the code, and a `parent` property gives the parent's code.
///
/// # Examples
/// ```
/// use safegrid_geodata::grid::{unit_from_feature, unit_to_feature};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let feature: geojson::Feature = serde_json::from_str(r#"{"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","level":"grid","manager":"李娜"},
///     "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}}"#)?;
/// let grid = unit_from_feature(&feature)?;
/// let out = unit_to_feature(&grid);
/// assert_eq!(out.property("parent").and_then(|v| v.as_str()), Some("440304"));
/// assert_eq!(out.property("level").and_then(|v| v.as_str()), Some("grid"));
/// assert_eq!(unit_from_feature(&out)?, grid); // a round trip
/// # Ok(())
/// # }
/// ```
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
///
/// # Examples
/// ```
/// use safegrid_geodata::grid::{GridFeatureError, unit_from_feature};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let nameless: geojson::Feature = serde_json::from_str(
///     r#"{"type":"Feature","properties":{"code":"440304001"},"geometry":null}"#)?;
/// let err = unit_from_feature(&nameless).unwrap_err();
/// assert_eq!(err, GridFeatureError::MissingProperty { property: "name" });
/// assert_eq!(err.to_string(), r#"missing property "name""#);
/// # Ok(())
/// # }
/// ```
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
///
/// # Examples
/// ```
/// use safegrid_geodata::grid::hierarchy_from_geojson;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let text = r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304","name":"福田区"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.07,22.54],[114.07,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","level":"grid"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}}
/// ]}"#;
/// let futian = hierarchy_from_geojson(text)?;
/// assert_eq!(futian.len(), 2);
/// assert_eq!(futian.leaves().count(), 1);
/// # Ok(())
/// # }
/// ```
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
///
/// # Examples
/// ```
/// use safegrid_geodata::grid::{GridLoadError, hierarchy_from_geojson};
/// // The second feature (index 1) has a code with a level sequence of 000.
/// let text = r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304","name":"福田区"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.07,22.54],[114.07,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304000","name":"?"},"geometry":null}
/// ]}"#;
/// let err = hierarchy_from_geojson(text).unwrap_err();
/// assert!(matches!(err, GridLoadError::Feature { index: 1, .. }));
/// assert!(matches!(hierarchy_from_geojson("[]"), Err(GridLoadError::Parse(_))));
/// ```
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
