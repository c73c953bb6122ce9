//! The workload audit: households, people and incidents per grid against the norm.
//!
//! The norm is the urban standard most cities publish for 网格化管理: 300–500 households and at
//! most 2,500 people a grid, so that one grid worker can visit every household. Cities set
//! their own figures, so all three are options.

use super::input::AuditFeature;
use super::place::GridPlaces;
use super::{Finding, Kind, Progress};
use crate::LonLat;
use rayon::prelude::*;
use serde::Serialize;

/// The norm a grid is held to.
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::workload::Norm;
/// let urban = Norm::default();
/// assert_eq!((urban.min_households, urban.max_households, urban.max_people), (300, 500, 2_500));
/// // A village norm with fewer, more scattered households.
/// let rural = Norm { min_households: 150, max_households: 300, ..Norm::default() };
/// assert!(rural.max_households <= urban.max_households);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Norm {
    /// Fewest households.
    pub min_households: u64,
    /// Most households.
    pub max_households: u64,
    /// Most people.
    pub max_people: u64,
}

impl Default for Norm {
    fn default() -> Self {
        Self { min_households: 300, max_households: 500, max_people: 2_500 }
    }
}

/// A place people live: a rental-housing record, a building, a household.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::workload::Dwelling;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A residential building in Futian with 96 households.
/// let building = Dwelling { at: LonLat::new(114.0579, 22.5431)?, households: 96, people: 251 };
/// assert!(building.people >= building.households);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dwelling {
    /// Where.
    pub at: LonLat,
    /// Households (户) there.
    pub households: u32,
    /// People living there.
    pub people: u32,
}

/// One grid's figures.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::workload::{Dwelling, Norm, audit};
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // Two residential buildings in the first grid, one in the second, one in the strip between.
/// let dwellings = [
///     Dwelling { at: LonLat::new(114.052, 22.545)?, households: 240, people: 610 },
///     Dwelling { at: LonLat::new(114.057, 22.542)?, households: 180, people: 450 },
///     Dwelling { at: LonLat::new(114.065, 22.548)?, households: 120, people: 2_900 },
///     Dwelling { at: LonLat::new(114.0605, 22.545)?, households: 12, people: 30 },
/// ];
/// let incidents = [LonLat::new(114.0579, 22.5431)?, LonLat::new(114.066, 22.541)?];
/// let result = audit(&grids, &dwellings, &incidents, Norm::default(), &Silent);
/// let first = result.grids[0].figures;
/// assert_eq!((first.households, first.people, first.incidents), (420, 1_060, 1));
/// assert_eq!(serde_json::to_value(first)?["households"], 420);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Figures {
    /// Households.
    pub households: u64,
    /// People.
    pub people: u64,
    /// Incidents.
    pub incidents: u64,
}

/// Figures for one grid.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::workload::{Dwelling, Norm, audit};
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // Two residential buildings in the first grid, one in the second, one in the strip between.
/// let dwellings = [
///     Dwelling { at: LonLat::new(114.052, 22.545)?, households: 240, people: 610 },
///     Dwelling { at: LonLat::new(114.057, 22.542)?, households: 180, people: 450 },
///     Dwelling { at: LonLat::new(114.065, 22.548)?, households: 120, people: 2_900 },
///     Dwelling { at: LonLat::new(114.0605, 22.545)?, households: 12, people: 30 },
/// ];
/// let incidents = [LonLat::new(114.0579, 22.5431)?, LonLat::new(114.066, 22.541)?];
/// let result = audit(&grids, &dwellings, &incidents, Norm::default(), &Silent);
/// let second = &result.grids[1];
/// assert_eq!((second.grid.as_str(), second.feature), ("440304002", 1));
/// assert_eq!(second.figures.people, 2_900);
/// // The figures are flattened into the grid's JSON object.
/// assert_eq!(serde_json::to_value(second)?["people"], 2_900);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct GridWorkload {
    /// The grid's label (code, else name).
    pub grid: String,
    /// Its feature index.
    pub feature: usize,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The result of a workload audit.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::workload::{Dwelling, Norm, audit};
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // Two residential buildings in the first grid, one in the second, one in the strip between.
/// let dwellings = [
///     Dwelling { at: LonLat::new(114.052, 22.545)?, households: 240, people: 610 },
///     Dwelling { at: LonLat::new(114.057, 22.542)?, households: 180, people: 450 },
///     Dwelling { at: LonLat::new(114.065, 22.548)?, households: 120, people: 2_900 },
///     Dwelling { at: LonLat::new(114.0605, 22.545)?, households: 12, people: 30 },
/// ];
/// let incidents = [LonLat::new(114.0579, 22.5431)?, LonLat::new(114.066, 22.541)?];
/// let result = audit(&grids, &dwellings, &incidents, Norm::default(), &Silent);
/// assert_eq!(result.grids.len(), 2);
/// assert_eq!(result.outside.households, 12); // the building in the strip
/// assert_eq!(result.norm, Norm::default());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadAudit {
    /// The norm applied.
    pub norm: Norm,
    /// Every grid's figures, in layer order.
    pub grids: Vec<GridWorkload>,
    /// What lies in no grid.
    pub outside: Figures,
    /// Grids outside the norm, with their figures.
    pub findings: Vec<Finding>,
}

/// Counts households, people and incidents per grid and lists the grids outside the norm.
///
/// `grids` are the units audited (those without children); a point on a shared border, or in
/// two overlapping grids, is counted once, in the first grid of the layer that holds it.
///
/// # Examples
/// ```
/// use safegrid_geodata::LonLat;
/// use safegrid_geodata::audit::input::{ReadOptions, read_layer};
/// use safegrid_geodata::audit::workload::{Dwelling, Norm, audit};
/// use safegrid_geodata::audit::{Kind, Silent};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = read_layer(r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"440304001","name":"园岭第1网格","manager":"李娜"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.05,22.54],[114.06,22.54],[114.06,22.55],[114.05,22.55],[114.05,22.54]]]}},
///   {"type":"Feature","properties":{"code":"440304002","name":"园岭第2网格"},
///    "geometry":{"type":"Polygon","coordinates":[[[114.061,22.54],[114.07,22.54],[114.07,22.55],[114.061,22.55],[114.061,22.54]]]}}
/// ]}"#, &ReadOptions::default())?;
/// let grids: Vec<_> = layer.features.iter().collect();
/// // Two residential buildings in the first grid, one in the second, one in the strip between.
/// let dwellings = [
///     Dwelling { at: LonLat::new(114.052, 22.545)?, households: 240, people: 610 },
///     Dwelling { at: LonLat::new(114.057, 22.542)?, households: 180, people: 450 },
///     Dwelling { at: LonLat::new(114.065, 22.548)?, households: 120, people: 2_900 },
///     Dwelling { at: LonLat::new(114.0605, 22.545)?, households: 12, people: 30 },
/// ];
/// let incidents = [LonLat::new(114.0579, 22.5431)?, LonLat::new(114.066, 22.541)?];
/// let result = audit(&grids, &dwellings, &incidents, Norm::default(), &Silent);
/// let kinds: Vec<(Kind, &str)> = result.findings.iter().map(|f| (f.kind, f.grids[0].as_str())).collect();
/// // 420 households are within the norm; the second grid has too few households and too many people.
/// assert_eq!(kinds, [(Kind::FewHouseholds, "440304002"), (Kind::ManyPeople, "440304002")]);
/// assert_eq!(result.findings[0].message, "440304002 has 120 households, fewer than the norm's 300");
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn audit(
    grids: &[&AuditFeature],
    dwellings: &[Dwelling],
    incidents: &[LonLat],
    norm: Norm,
    progress: &dyn Progress,
) -> WorkloadAudit {
    let places = GridPlaces::new(grids);
    let locate = |p: LonLat| places.locate(p);
    let n = grids.len();
    progress.stage("households per grid", dwellings.len() as u64);
    let per_chunk = |acc: Vec<Figures>, chunk: &[Dwelling]| {
        let mut acc = acc;
        for d in chunk {
            let slot = locate(d.at).unwrap_or(n);
            acc[slot].households += u64::from(d.households);
            acc[slot].people += u64::from(d.people);
        }
        progress.advance(chunk.len() as u64);
        acc
    };
    let merge = |mut a: Vec<Figures>, b: Vec<Figures>| {
        for (x, y) in a.iter_mut().zip(b) {
            x.households += y.households;
            x.people += y.people;
            x.incidents += y.incidents;
        }
        a
    };
    let mut figs = dwellings
        .par_chunks(4096)
        .fold(|| vec![Figures::default(); n + 1], per_chunk)
        .reduce(|| vec![Figures::default(); n + 1], merge);
    progress.stage("incidents per grid", incidents.len() as u64);
    let inc = incidents
        .par_chunks(4096)
        .fold(
            || vec![0_u64; n + 1],
            |mut acc, chunk| {
                for p in chunk {
                    acc[locate(*p).unwrap_or(n)] += 1;
                }
                progress.advance(chunk.len() as u64);
                acc
            },
        )
        .reduce(|| vec![0_u64; n + 1], |a, b| a.into_iter().zip(b).map(|(x, y)| x + y).collect());
    for (f, i) in figs.iter_mut().zip(inc) {
        f.incidents = i;
    }
    let outside = figs.pop().unwrap_or_default();

    let mut findings = Vec::new();
    let mut out = Vec::with_capacity(n);
    for (g, fig) in grids.iter().zip(figs) {
        let label = g.label();
        let mut flag = |kind: Kind, msg: String| {
            let mut f = Finding::new(kind, vec![label.clone()], vec![g.index], msg);
            f.figures = Some(fig);
            f.location = g.geometry.as_ref().and_then(super::measure::location);
            findings.push(f);
        };
        // Without household data only incidents are counted: no grid is judged on households.
        if !dwellings.is_empty() {
            if fig.households < norm.min_households {
                let msg =
                    format!("{label} has {} households, fewer than the norm's {}", fig.households, norm.min_households);
                flag(Kind::FewHouseholds, msg);
            } else if fig.households > norm.max_households {
                let msg =
                    format!("{label} has {} households, more than the norm's {}", fig.households, norm.max_households);
                flag(Kind::ManyHouseholds, msg);
            }
            if fig.people > norm.max_people {
                flag(
                    Kind::ManyPeople,
                    format!("{label} has {} people, more than the norm's {}", fig.people, norm.max_people),
                );
            }
        }
        out.push(GridWorkload { grid: label, feature: g.index, figures: fig });
    }
    WorkloadAudit { norm, grids: out, outside, findings }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Silent;

    fn grid(index: usize, x: f64) -> AuditFeature {
        crate::audit::fixtures::square_grid(index, x, 0.01)
    }

    #[test]
    fn figures_are_summed_per_grid_and_outliers_named_with_them() {
        let (a, b) = (grid(0, 114.0), grid(1, 114.01));
        let at = |x: f64| LonLat::new(x, 22.505).unwrap();
        let mut d = vec![Dwelling { at: at(114.005), households: 400, people: 1_000 }];
        d.extend((0..10).map(|_| Dwelling { at: at(114.015), households: 60, people: 300 }));
        // On the shared border: counted once, in the first grid.
        d.push(Dwelling { at: at(114.01), households: 1, people: 1 });
        d.push(Dwelling { at: at(115.0), households: 7, people: 9 });
        let w = audit(&[&a, &b], &d, &[at(114.001), at(114.002)], Norm::default(), &Silent);
        assert_eq!(w.grids[0].figures, Figures { households: 401, people: 1_001, incidents: 2 });
        assert_eq!(w.grids[1].figures, Figures { households: 600, people: 3_000, incidents: 0 });
        assert_eq!(w.outside, Figures { households: 7, people: 9, incidents: 0 });
        let kinds: Vec<_> = w.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [Kind::ManyHouseholds, Kind::ManyPeople]);
        assert!(w.findings[0].message.contains("600 households"));
        // Incidents alone: counted, and no grid judged on households it was not told about.
        let w = audit(&[&a, &b], &[], &[at(114.001)], Norm::default(), &Silent);
        assert_eq!(w.grids[0].figures.incidents, 1);
        assert!(w.findings.is_empty(), "{:#?}", w.findings);
    }
}
