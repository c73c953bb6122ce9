//! Audit reports: the geometry and workload audits of `safegrid_geodata::audit` put together,
//! and written as JSON, GeoJSON or a self-contained HTML page.
//!
//! - [`points`]: households and incidents read from CSV or GeoJSON files (the offline CLI).
//! - [`html`]: the report a supervisor opens without a server.
//! - [`cli`]: `safegrid audit`.
//! - [`gridding`]: `safegrid gridding` (communities and households in, grids out).

pub mod gridding;
pub mod html;
pub mod points;

use geojson::{Feature, FeatureCollection};
use safegrid_geodata::audit::geometry::GeometryAudit;
use safegrid_geodata::audit::input::{AuditLayer, CrsSource};
use safegrid_geodata::audit::layers::LayersAudit;
use safegrid_geodata::audit::patrol::PatrolAudit;
use safegrid_geodata::audit::response::ResponseAudit;
use safegrid_geodata::audit::workload::WorkloadAudit;
use safegrid_geodata::audit::{Finding, Severity, Summary, Thresholds};
use safegrid_geodata::polygon_check::multipolygon_to_geojson;
use serde::Serialize;

/// What was audited.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// A name for the layer (the file name, or `live grid layer`).
    pub name: String,
    /// Features read.
    pub features: usize,
    /// Coordinate system the file was read in.
    pub crs: &'static str,
    /// How that was decided.
    pub crs_source: CrsSource,
}

/// A whole audit report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When it was made (UTC, RFC 3339).
    pub generated_at: String,
    /// What was audited.
    pub layer: LayerInfo,
    /// Whether the layer passed: no finding of severity `error`.
    pub passed: bool,
    /// Counts and areas by kind.
    pub summary: Summary,
    /// Thresholds applied.
    pub thresholds: Thresholds,
    /// The geometry audit.
    pub geometry: GeometryAudit,
    /// The workload audit, when households or incidents were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadAudit>,
    /// The patrol coverage audit, when traces were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patrol: Option<PatrolAudit>,
    /// The comparison with a second layer, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<LayersAudit>,
    /// Response coverage, when posts or units were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseAudit>,
}

impl Report {
    /// A report of the geometry audit; the other audits are added with the `with_*` methods,
    /// each recounting the verdict.
    #[must_use]
    pub fn new(name: String, layer: &AuditLayer, thresholds: Thresholds, geometry: GeometryAudit) -> Self {
        Self {
            generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            layer: LayerInfo {
                name,
                features: layer.features.len(),
                crs: layer.crs.name(),
                crs_source: layer.crs_source,
            },
            passed: true,
            summary: Summary::default(),
            thresholds,
            geometry,
            workload: None,
            patrol: None,
            layers: None,
            response: None,
        }
        .recount()
    }

    /// Adds the workload audit.
    #[must_use]
    pub fn with_workload(mut self, workload: WorkloadAudit) -> Self {
        self.workload = Some(workload);
        self.recount()
    }

    /// Adds the patrol coverage audit.
    #[must_use]
    pub fn with_patrol(mut self, patrol: PatrolAudit) -> Self {
        self.patrol = Some(patrol);
        self.recount()
    }

    /// Adds the comparison with a second layer.
    #[must_use]
    pub fn with_layers(mut self, layers: LayersAudit) -> Self {
        self.layers = Some(layers);
        self.recount()
    }

    /// Adds response coverage.
    #[must_use]
    pub fn with_response(mut self, response: ResponseAudit) -> Self {
        self.response = Some(response);
        self.recount()
    }

    /// Summary and verdict from every finding present.
    fn recount(mut self) -> Self {
        let all: Vec<Finding> = self.findings().cloned().collect();
        self.summary = Summary::of(&all);
        self.passed = self.summary.errors == 0;
        self
    }

    /// Every finding, geometry first.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.geometry
            .findings
            .iter()
            .chain(self.workload.iter().flat_map(|w| w.findings.iter()))
            .chain(self.patrol.iter().flat_map(|p| p.findings.iter()))
            .chain(self.layers.iter().flat_map(|l| l.findings.iter()))
            .chain(self.response.iter().flat_map(|r| r.findings.iter()))
    }

    /// The findings as GeoJSON features: a finding's own polygon where it has one (a gap, an
    /// overlap, the part outside), else the grid it is about, else its point. Properties are the
    /// finding's fields without the geometry.
    #[must_use]
    pub fn to_geojson(&self, layer: &AuditLayer) -> FeatureCollection {
        let features = self
            .findings()
            .enumerate()
            .map(|(i, f)| {
                let geometry = f.geometry.clone().or_else(|| {
                    f.features
                        .first()
                        .and_then(|&fi| layer.features.get(fi))
                        .and_then(|g| g.geometry.as_ref())
                        .map(multipolygon_to_geojson)
                        .or_else(|| {
                            f.location.map(|[x, y]| geojson::Geometry::new(geojson::GeometryValue::new_point([x, y])))
                        })
                });
                let mut props = match serde_json::to_value(f) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                props.remove("geometry");
                Feature {
                    bbox: None,
                    geometry,
                    id: Some(geojson::feature::Id::Number(i.into())),
                    properties: Some(props),
                    foreign_members: None,
                }
            })
            .collect();
        let mut members = serde_json::Map::new();
        members.insert("passed".into(), self.passed.into());
        members.insert("summary".into(), serde_json::to_value(&self.summary).unwrap_or_default());
        FeatureCollection { bbox: None, features, foreign_members: Some(members) }
    }

    /// Worst severity per grid label, for colouring a map.
    #[must_use]
    pub fn status_by_grid(&self) -> std::collections::HashMap<String, Severity> {
        let mut out = std::collections::HashMap::new();
        for f in self.findings() {
            for g in &f.grids {
                let e = out.entry(g.clone()).or_insert(f.severity);
                *e = (*e).max(f.severity);
            }
        }
        out
    }
}
