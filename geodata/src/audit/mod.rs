//! Grid coverage audits: what a supervisor checks on a grid layer before it is used.
//!
//! - [`input`]: a GeoJSON layer read leniently — every fault is collected and located instead of
//!   stopping at the first, and the coordinate system is checked.
//! - [`geometry`]: gaps, overlaps, slivers, invalid geometry, grids outside the territory or their
//!   parent, codes, grids with no worker.
//! - [`workload`]: households, people and incidents per grid against the norms.
//! - [`layers`]: two layers of one territory compared (三网合一): which grids intersect which,
//!   and where their boundaries disagree beyond a tolerance.
//! - [`response`]: the share of ground and households within T minutes of a post or unit (road
//!   ETA, or distance), the uncovered areas, and where one more post would help most.
//! - [`patrol`]: the share of each grid's ground patrols passed through, patrol hours, and the
//!   grids nobody patrolled lately.
//!
//! Everything is pure: the CLI (`safegrid audit`) runs it on files with no server or store, and
//! the API runs it on the live layer. Areas are geodesic (Karney, on WGS-84), the same measure
//! as PostGIS `ST_Area(geography)`, so the two can be compared directly.

pub mod faults;
pub mod geometry;
pub mod input;
pub mod layers;
pub mod measure;
pub mod patrol;
pub mod place;
pub mod response;
pub mod workload;

use serde::Serialize;

/// What kind of finding, in the order a report lists them.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::{Kind, Severity};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert!(Kind::Gap < Kind::Unstaffed); // geometry first, then codes and staffing
/// assert_eq!(Kind::GapSliver.severity(), Severity::Warning);
/// assert_eq!(serde_json::to_string(&Kind::OutsideParent)?, r#""outside_parent""#);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// A ring that crosses itself, is unclosed, too short, degenerate, or rings that cross.
    InvalidGeometry,
    /// Rings wound against RFC 7946 (exterior counter-clockwise). Read correctly; worth fixing.
    Winding,
    /// Part of the territory in no grid.
    Gap,
    /// Two grids covering the same ground.
    Overlap,
    /// A gap below the sliver threshold.
    GapSliver,
    /// An overlap below the sliver threshold.
    OverlapSliver,
    /// A grid partly or wholly outside the territory.
    OutsideTerritory,
    /// A unit partly or wholly outside its parent unit.
    OutsideParent,
    /// A feature with no code.
    CodeMissing,
    /// A code that is not a valid grid code.
    CodeMalformed,
    /// A code used by more than one feature.
    CodeDuplicate,
    /// A unit whose parent (derived from its code) is missing from a multi-level layer.
    CodeOrphan,
    /// A grid with no assigned grid worker.
    Unstaffed,
    /// Fewer households than the norm.
    FewHouseholds,
    /// More households than the norm.
    ManyHouseholds,
    /// More people than the norm.
    ManyPeople,
    /// No patrol entered the grid lately.
    Unpatrolled,
    /// Patrols passed through less of the grid than asked.
    LowPatrolCoverage,
    /// Ground two layers assign to grids that each mostly lie elsewhere (三网合一).
    BoundaryMismatch,
    /// Ground in one layer and in no grid of the other.
    CoverageMismatch,
    /// Ground beyond T minutes of every post and available unit.
    Unreachable,
}

impl Kind {
    /// Every kind, in report order.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::Kind;
    /// assert_eq!(Kind::ALL.first(), Some(&Kind::InvalidGeometry));
    /// assert!(Kind::ALL.is_sorted());
    /// ```
    pub const ALL: [Self; 21] = [
        Self::InvalidGeometry,
        Self::Winding,
        Self::Gap,
        Self::Overlap,
        Self::GapSliver,
        Self::OverlapSliver,
        Self::OutsideTerritory,
        Self::OutsideParent,
        Self::CodeMissing,
        Self::CodeMalformed,
        Self::CodeDuplicate,
        Self::CodeOrphan,
        Self::Unstaffed,
        Self::FewHouseholds,
        Self::ManyHouseholds,
        Self::ManyPeople,
        Self::Unpatrolled,
        Self::LowPatrolCoverage,
        Self::BoundaryMismatch,
        Self::CoverageMismatch,
        Self::Unreachable,
    ];

    /// Whether a finding of this kind fails the layer. Slivers and winding are reported but do
    /// not: a sliver below the threshold is a drawing artefact, and RFC 7946 tells readers to
    /// accept either winding.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::{Kind, Severity};
    /// assert_eq!(Kind::Overlap.severity(), Severity::Error);
    /// assert_eq!(Kind::Winding.severity(), Severity::Warning);
    /// let warnings = Kind::ALL.iter().filter(|k| k.severity() == Severity::Warning).count();
    /// assert_eq!(warnings, 4);
    /// ```
    #[must_use]
    pub fn severity(self) -> Severity {
        match self {
            Self::Winding | Self::GapSliver | Self::OverlapSliver | Self::LowPatrolCoverage => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The snake_case name used in JSON.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::Kind;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert_eq!(Kind::CodeDuplicate.name(), "code_duplicate");
    /// for kind in Kind::ALL {
    ///     assert_eq!(serde_json::to_value(kind)?, kind.name());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidGeometry => "invalid_geometry",
            Self::Winding => "winding",
            Self::Gap => "gap",
            Self::Overlap => "overlap",
            Self::GapSliver => "gap_sliver",
            Self::OverlapSliver => "overlap_sliver",
            Self::OutsideTerritory => "outside_territory",
            Self::OutsideParent => "outside_parent",
            Self::CodeMissing => "code_missing",
            Self::CodeMalformed => "code_malformed",
            Self::CodeDuplicate => "code_duplicate",
            Self::CodeOrphan => "code_orphan",
            Self::Unstaffed => "unstaffed",
            Self::FewHouseholds => "few_households",
            Self::ManyHouseholds => "many_households",
            Self::ManyPeople => "many_people",
            Self::Unpatrolled => "unpatrolled",
            Self::LowPatrolCoverage => "low_patrol_coverage",
            Self::BoundaryMismatch => "boundary_mismatch",
            Self::CoverageMismatch => "coverage_mismatch",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Whether a finding fails the layer.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::{Kind, Severity};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert!(Severity::Warning < Severity::Error);
/// assert_eq!(serde_json::to_string(&Kind::Gap.severity())?, r#""error""#);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported; the layer still passes.
    Warning,
    /// The layer does not pass.
    Error,
}

/// One thing the audit found, located.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::{Finding, Kind};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut f = Finding::new(Kind::Unstaffed, vec!["440304001".into()], vec![0], "440304001 has no grid worker assigned".into());
/// f.location = Some([114.0579, 22.5431]);
/// let json = serde_json::to_value(&f)?;
/// assert_eq!(json["kind"], "unstaffed");
/// assert_eq!(json["severity"], "error");
/// assert_eq!(json["location"][0], 114.0579);
/// assert!(json.get("area_m2").is_none()); // absent figures are left out
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What.
    pub kind: Kind,
    /// Whether it fails the layer.
    pub severity: Severity,
    /// The grids concerned, by code (or name, or `feature #i` when a feature has neither).
    pub grids: Vec<String>,
    /// Indexes of the features concerned in the input layer.
    pub features: Vec<usize>,
    /// A sentence a supervisor can act on.
    pub message: String,
    /// Area in m², for findings that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_m2: Option<f64>,
    /// A point on the finding, `[lon, lat]` (inside its polygon where it has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<[f64; 2]>,
    /// `[west, south, east, north]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    /// The finding's own polygon (a gap, an overlap, the part outside), where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geometry: Option<geojson::Geometry>,
    /// Where in the feature's GeoJSON a geometry fault is (`coordinates[0][1]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Figures behind a workload finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<workload::Figures>,
}

impl Finding {
    /// A finding with only kind, grids and message; the rest is filled by the caller.
    ///
    /// The severity is the kind's.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::{Finding, Kind, Severity};
    /// let f = Finding::new(
    ///     Kind::CodeDuplicate,
    ///     vec!["440304001".into(), "440304001".into()],
    ///     vec![3, 7],
    ///     "code 440304001 is used by 2 features (#3, #7)".into(),
    /// );
    /// assert_eq!(f.severity, Severity::Error);
    /// assert_eq!(f.features, [3, 7]);
    /// assert!(f.area_m2.is_none() && f.geometry.is_none());
    /// ```
    #[must_use]
    pub fn new(kind: Kind, grids: Vec<String>, features: Vec<usize>, message: String) -> Self {
        Self {
            kind,
            severity: kind.severity(),
            grids,
            features,
            message,
            area_m2: None,
            location: None,
            bbox: None,
            geometry: None,
            path: None,
            figures: None,
        }
    }
}

/// Thresholds of the geometry audit.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::Thresholds;
/// let t = Thresholds::default();
/// assert_eq!((t.sliver_m2, t.sliver_width_m), (100.0, 0.5));
/// // A city that tolerates larger digitising artefacts:
/// let lenient = Thresholds { sliver_m2: 500.0, ..Thresholds::default() };
/// assert!(lenient.noise_m2 < lenient.sliver_m2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Gaps and overlaps smaller than this (m²) are slivers, reported apart.
    pub sliver_m2: f64,
    /// Gaps and overlaps narrower than this on average (m) are slivers too, however long.
    pub sliver_width_m: f64,
    /// Pieces smaller than this (m²) are floating-point noise of the polygon operations on
    /// shared edges, and are not reported at all.
    pub noise_m2: f64,
    /// Pieces narrower than this on average (m) are noise too: two copies of one border
    /// rounded differently, whose area grows with the border's length.
    pub noise_width_m: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        // 100 m² is a 1 m strip along 100 m of boundary, a digitising artefact; half a metre
        // is below what a boundary survey resolves on the ground; 0.01 m² is far above the
        // noise the polygon operations leave on exactly shared edges (1e-6 m²) and far below
        // anything a surveyor draws.
        // 5 mm is fifty times the rounding of the polygon operations (1e-9°, 0.1 mm) and far
        // below what any survey resolves.
        Self { sliver_m2: 100.0, sliver_width_m: 0.5, noise_m2: 0.01, noise_width_m: 0.005 }
    }
}

/// Reports progress of a long audit (the CLI draws a bar; the API ignores it).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::Progress;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// Counts the steps done, over all stages.
/// #[derive(Default)]
/// struct Steps(AtomicU64);
///
/// impl Progress for Steps {
///     fn stage(&self, _name: &str, _total: u64) {}
///     fn advance(&self, n: u64) {
///         self.0.fetch_add(n, Ordering::Relaxed);
///     }
/// }
///
/// let steps = Steps::default();
/// let progress: &dyn Progress = &steps;
/// progress.stage("gaps", 2);
/// progress.advance(1);
/// progress.advance(1);
/// assert_eq!(steps.0.load(Ordering::Relaxed), 2);
/// ```
pub trait Progress: Sync {
    /// A new stage with `total` steps begins.
    fn stage(&self, name: &str, total: u64);
    /// `n` more steps of the current stage are done.
    fn advance(&self, n: u64);
}

/// Progress that goes nowhere.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::{Progress, Silent};
/// let progress: &dyn Progress = &Silent;
/// progress.stage("overlaps between grids", 10); // nothing is drawn
/// progress.advance(10);
/// assert_eq!(std::mem::size_of::<Silent>(), 0);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Counts and totals of findings by kind.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::{Finding, Kind, Summary};
/// let mut gap = Finding::new(Kind::Gap, vec![], vec![], "1200 m² of territory lies in no grid".into());
/// gap.area_m2 = Some(1_200.0);
/// let s = Summary::of(&[gap]);
/// assert_eq!(s.counts["gap"], 1);
/// assert_eq!(s.area_m2["gap"], 1_200.0);
/// assert_eq!((s.errors, s.warnings), (1, 0));
/// ```
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Findings per kind (kinds with none are listed with 0).
    pub counts: std::collections::BTreeMap<&'static str, usize>,
    /// Total area per kind where findings have an area.
    pub area_m2: std::collections::BTreeMap<&'static str, f64>,
    /// Findings that fail the layer.
    pub errors: usize,
    /// Findings that do not.
    pub warnings: usize,
}

impl Summary {
    /// Summarises findings.
    ///
    /// # Examples
    /// ```
    /// use safegrid_geodata::audit::{Finding, Kind, Summary};
    /// let findings = [
    ///     Finding::new(Kind::Unstaffed, vec!["440304001".into()], vec![0], "no worker".into()),
    ///     Finding::new(Kind::Unstaffed, vec!["440304002".into()], vec![1], "no worker".into()),
    ///     Finding::new(Kind::Winding, vec!["440304003".into()], vec![2], "wound clockwise".into()),
    /// ];
    /// let s = Summary::of(&findings);
    /// assert_eq!(s.counts["unstaffed"], 2);
    /// assert_eq!(s.counts["gap"], 0); // every kind is listed
    /// assert_eq!(s.counts.len(), Kind::ALL.len());
    /// assert_eq!((s.errors, s.warnings), (2, 1));
    /// ```
    #[must_use]
    pub fn of(findings: &[Finding]) -> Self {
        let mut s = Self::default();
        for k in Kind::ALL {
            s.counts.insert(k.name(), 0);
        }
        for f in findings {
            *s.counts.entry(f.kind.name()).or_default() += 1;
            if let Some(a) = f.area_m2 {
                *s.area_m2.entry(f.kind.name()).or_default() += a;
            }
            match f.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
            }
        }
        s
    }
}

/// Fixtures shared by the audits' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::input::AuditFeature;
    use geo::{MultiPolygon, polygon};

    /// Grid `44030400{index+1}`: a `size`° square with its south-west corner at (`x`, 22.5).
    pub(crate) fn square_grid(index: usize, x: f64, size: f64) -> AuditFeature {
        AuditFeature {
            index,
            code: Some(format!("44030400{}", index + 1)),
            name: None,
            manager: None,
            geometry: Some(MultiPolygon(vec![
                polygon![(x: x, y: 22.5), (x: x + size, y: 22.5), (x: x + size, y: 22.5 + size), (x: x, y: 22.5 + size)],
            ])),
        }
    }
}
