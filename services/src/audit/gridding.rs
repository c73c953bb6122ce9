//! Gridding for the API and the `safegrid gridding` command (safegrid-cli): communities and
//! households in, grids out.

use safegrid_geodata::audit::input::{ReadOptions, read_layer};
use safegrid_geodata::grid::unit_to_feature;
use safegrid_geodata::gridding::{Community, GeneratedGrid, GriddingOptions};
use safegrid_geodata::{Crs, GridCode, GridLevel, GridUnit};

/// Reads communities from a GeoJSON text: every feature needs a valid code, a name and a
/// measurable geometry.
///
/// # Errors
/// The first feature at fault, named.
pub fn communities_from_text(text: &str, crs: Crs) -> Result<Vec<Community>, String> {
    let layer =
        read_layer(text, &ReadOptions { crs: Some(crs), ..ReadOptions::default() }).map_err(|e| e.to_string())?;
    if let Some(f) = layer.faults.iter().find(|f| f.severity == safegrid_geodata::audit::Severity::Error) {
        return Err(f.message.clone());
    }
    layer
        .features
        .into_iter()
        .map(|f| {
            let label = f.label();
            let code = f.code.as_deref().ok_or_else(|| format!("{label}: a community needs a code"))?;
            let code = GridCode::parse(code).map_err(|e| format!("{label}: {e}"))?;
            let geometry = f.geometry.ok_or_else(|| format!("{label}: no geometry"))?;
            Ok(Community { name: f.name.unwrap_or_else(|| code.to_string()), code, geometry })
        })
        .collect()
}

/// The output layer: communities, then grids with their figures.
#[must_use]
pub fn to_feature_collection(communities: &[Community], grids: &[GeneratedGrid]) -> geojson::FeatureCollection {
    let mut features: Vec<geojson::Feature> = communities
        .iter()
        .map(|c| {
            unit_to_feature(&GridUnit {
                code: c.code.clone(),
                name: c.name.clone(),
                level: GridLevel::Community,
                manager: None,
                geometry: c.geometry.clone(),
            })
        })
        .collect();
    for g in grids {
        let mut f = unit_to_feature(&g.unit);
        if let Some(p) = f.properties.as_mut() {
            p.insert("households".into(), g.households.into());
            p.insert("compactness".into(), ((g.compactness * 1000.0).round() / 1000.0).into());
        }
        features.push(f);
    }
    geojson::FeatureCollection { bbox: None, features, foreign_members: None }
}

/// Checks the options a caller gives (CLI or API).
///
/// # Errors
/// What is wrong, naming the option.
pub fn options(min: u64, max: u64, res: u8) -> Result<GriddingOptions, String> {
    if min == 0 || min > max {
        return Err(format!("min_households {min} must be at least 1 and at most max_households {max}"));
    }
    let res = h3o::Resolution::try_from(res)
        .ok()
        .filter(|r| (9..=13).contains(&u8::from(*r)))
        .ok_or_else(|| format!("res {res}: expected 9 to 13"))?;
    Ok(GriddingOptions { min_households: min, max_households: max, res })
}
