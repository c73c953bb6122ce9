//! Bulk import of a city's own files: point layers from GeoJSON and CSV ([`points`]), the grid
//! layer from GeoJSON ([`grids`]), and position history from GPX, GeoLife `.plt` and CSV
//! traces ([`traces`]).
//!
//! What every import promises a GIS officer:
//! - **all of a file's faults in one run**, up to `--max-errors`, each naming its row (a GeoJSON
//!   feature's number from 1 and its name or code; a CSV file's line) and field, so a file is
//!   fixed once, not once per fault;
//! - **nothing written** unless the whole file is good: rows stream into one open transaction,
//!   which only commits after the last row parsed;
//! - **the datum named** before anything else: a grid file that fits far better as GCJ-02 or
//!   BD-09 than as the WGS-84 it claims is refused unless its CRS is given (`--crs`), and any
//!   layer converts from any of the three;
//! - **columns mapped** (`--map time=reported_at`) or ignored (`--ignore-unknown`) rather than a
//!   file rewritten.

pub mod grids;
pub mod points;
pub mod traces;

use safegrid_geodata::Crs;
use std::fmt;

pub use points::{CHUNK_ROWS, Format, Sink, parse_csv, parse_geojson};

/// Faults listed when no limit is given.
pub const DEFAULT_MAX_ERRORS: usize = 20;

/// How a file is read.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The file's CRS; `None`: WGS-84 as the file claims, checked where it can be (grids).
    pub crs: Option<Crs>,
    /// Renames of the file's columns or properties (`time` → `reported_at`), applied first.
    pub map: Vec<(String, String)>,
    /// Drop columns and properties the layer does not take, instead of refusing them.
    pub ignore_unknown: bool,
    /// Most faults listed; the rest are counted.
    pub max_errors: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { crs: None, map: Vec::new(), ignore_unknown: false, max_errors: DEFAULT_MAX_ERRORS }
    }
}

impl ImportOptions {
    /// The CRS to convert from (WGS-84 when none was named).
    #[must_use]
    pub fn source_crs(&self) -> Crs {
        self.crs.unwrap_or(Crs::Wgs84)
    }

    /// These options with the CRS a GeoJSON file declares in its `crs` member, when the caller
    /// named none: the file's word is taken (`safegrid convert` writes one), and a CRS that is
    /// not one of the three refuses the file.
    ///
    /// # Errors
    /// [`ImportError::Format`] for a declared CRS safegrid does not read.
    pub fn with_declared(&self, file: &serde_json::Value) -> Result<Self, ImportError> {
        let name =
            file.get("crs").and_then(|c| c.get("properties")).and_then(|p| p.get("name")).and_then(|n| n.as_str());
        match (self.crs, name) {
            (None, Some(name)) => {
                let crs = Crs::declared(name).ok_or_else(|| {
                    ImportError::Format(format!(
                        "the file declares crs {name:?}; safegrid reads WGS-84 (CRS84, EPSG:4326, CGCS2000), GCJ-02 or BD-09: reproject it, or give --crs if the declaration is wrong"
                    ))
                })?;
                Ok(Self { crs: Some(crs), ..self.clone() })
            }
            _ => Ok(self.clone()),
        }
    }

    /// The name a column or property is read as, after `--map`.
    #[must_use]
    pub fn mapped<'a>(&'a self, name: &'a str) -> &'a str {
        self.map.iter().find(|(from, _)| from == name).map_or(name, |(_, to)| to.as_str())
    }
}

/// Parses `FROM=TO` (a `--map` argument).
///
/// # Errors
/// A message naming the argument when it has no `=` or an empty side.
pub fn parse_mapping(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
            Ok((from.trim().to_owned(), to.trim().to_owned()))
        }
        _ => Err(format!("{arg:?}: expected FROM=TO, e.g. time=reported_at")),
    }
}

/// Refuses one page of a paged download (`GET /api/v1/grids` answers 500 units at a time by
/// default): imported as a whole layer it would silently drop the rest.
///
/// # Errors
/// [`ImportError::Format`] saying how to get the whole layer.
pub fn refuse_a_page(v: &serde_json::Value, features: usize) -> Result<(), ImportError> {
    let matched =
        v.get("numberMatched").and_then(serde_json::Value::as_u64).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let next = v.get("next_cursor").is_some_and(|c| !c.is_null());
    if next || matched.is_some_and(|m| m > features) {
        let of = matched.map_or_else(String::new, |m| format!(" of {m}"));
        return Err(ImportError::Format(format!(
            "this file is one page ({features}{of} features) of a paged download: nothing was imported. \
             Download the whole layer with ?limit=all (GET /api/v1/grids?limit=all) or `safegrid export --layer grids`"
        )));
    }
    Ok(())
}

/// One fault of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFault {
    /// Where: `line 4` (CSV), `feature 3` (GeoJSON, from 1), `point 17` (a trace).
    pub row: Row,
    /// The row's name or code, when it has one, so the user finds it in their GIS.
    pub label: Option<String>,
    /// The field at fault (`lat`, `geometry.coordinates[0][3]`, a property name).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Where a row is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// A CSV line (the header is line 1) or a trace file's line.
    Line(usize),
    /// A GeoJSON feature, from 1.
    Feature(usize),
    /// A GPX track point, from 1.
    Point(usize),
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Feature(n) => write!(f, "feature {n}"),
            Self::Point(n) => write!(f, "point {n}"),
        }
    }
}

impl fmt::Display for RowFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.row)?;
        if let Some(l) = &self.label {
            write!(f, " ({l})")?;
        }
        write!(f, ", {}: {}", self.field, self.reason)
    }
}

/// Faults gathered over a file: the first `max` kept, the rest counted.
#[derive(Debug)]
pub(crate) struct Faults {
    max: usize,
    list: Vec<RowFault>,
    more: usize,
}

impl Faults {
    pub(crate) fn new(max: usize) -> Self {
        Self { max: max.max(1), list: Vec::new(), more: 0 }
    }

    pub(crate) fn push(&mut self, f: RowFault) {
        if self.list.len() < self.max { self.list.push(f) } else { self.more += 1 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok` without faults; else [`ImportError::Rows`], led by `first` when given (the datum).
    pub(crate) fn finish(self, first: Option<String>) -> Result<(), ImportError> {
        if self.list.is_empty() && first.is_none() {
            return Ok(());
        }
        Err(ImportError::Rows { first, faults: self.list, more: self.more })
    }
}

/// Why an import was refused. Nothing of the file was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not in a format read here, or not as a whole (a page of a download, a
    /// header without the columns a layer needs).
    #[error("{0}")]
    Format(String),
    /// Rows at fault, and before them a fault of the whole file (its datum) if it has one.
    #[error("{}", rows_text(first.as_deref(), faults, *more))]
    Rows {
        /// A fault of the whole file, said first.
        first: Option<String>,
        /// The faults, in file order, up to the limit.
        faults: Vec<RowFault>,
        /// Faults beyond the limit, counted.
        more: usize,
    },
    /// The units do not form a hierarchy, or do not fit under the one stored.
    #[error("{0}")]
    Hierarchy(String),
}

fn rows_text(first: Option<&str>, faults: &[RowFault], more: usize) -> String {
    let mut out = String::new();
    if let Some(f) = first {
        out.push_str(f);
    }
    if !faults.is_empty() {
        if !out.is_empty() {
            out.push_str("; and ");
        }
        let n = faults.len() + more;
        out.push_str(&format!("{n} {}:", if n == 1 { "fault" } else { "faults" }));
        for f in faults {
            out.push_str("\n  ");
            out.push_str(&f.to_string());
        }
        if more > 0 {
            out.push_str(&format!("\n  … and {more} more (--max-errors to list more)"));
        }
    }
    out
}

impl ImportError {
    /// The first row fault, if any (tests and callers that point at one).
    #[must_use]
    pub fn first_fault(&self) -> Option<&RowFault> {
        match self {
            Self::Rows { faults, .. } => faults.first(),
            _ => None,
        }
    }
}
