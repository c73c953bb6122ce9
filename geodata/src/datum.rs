//! Which datum a polygon layer was drawn in: WGS-84, as a file without a CRS claims, or one of
//! China's shifted map datums (GCJ-02, BD-09, 300–700 m off in Guangdong), judged by how well it
//! fits something known to be WGS-84 — as given, and once converted from each.
//!
//! A layer drawn on AMap or Baidu and saved without saying so is the commonest way a city's
//! grids end up a few hundred metres off. Audited as it stands it is a mess of gaps and strays;
//! imported, it misplaces every grid. Three things it can be compared with, by how sure the
//! answer is:
//!
//! - [`Reference::Pairs`]: the same units as stored (by code) — each pair should coincide;
//! - [`Reference::Whole`]: a territory the layer should cover exactly;
//! - [`Reference::Around`]: an outline the layer should lie within (a city's districts).
//!
//! The mismatch is an area share, so it does not depend on how many vertices either side has.

use crate::audit::measure::area_m2;
use crate::{Crs, LonLat, overlay};
use geo::{MapCoords, MultiPolygon};
use std::fmt;

/// What a layer is compared with (every geometry WGS-84).
#[derive(Debug, Clone, Copy)]
pub enum Reference<'a> {
    /// Pairs of (the layer's polygon, the same unit as known): mismatch = Σ area(a ⊕ b) / Σ area(b).
    Pairs(&'a [(&'a MultiPolygon<f64>, &'a MultiPolygon<f64>)]),
    /// A territory the layer's union should cover exactly: mismatch = area(layer ⊕ t) / area(t).
    Whole(&'a MultiPolygon<f64>, &'a MultiPolygon<f64>),
    /// An outline the layer should lie within: mismatch = area(layer − o) / area(layer).
    Around(&'a MultiPolygon<f64>, &'a MultiPolygon<f64>),
}

/// How well a layer fits its reference as given and read as each other datum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatumFit {
    /// Mismatch as given, % (see [`Reference`]).
    pub as_is_pct: f64,
    /// The datum that fits best (WGS-84 when none beats it).
    pub best: Crs,
    /// Mismatch read as `best` and converted, %.
    pub best_pct: f64,
}

/// A layer must fit at least this many times better read as another datum to be called shifted.
pub const SHIFT_RATIO: f64 = 2.0;
/// Below this mismatch (%) as given, a layer already fits: a real WGS-84 layer never gains from
/// a shift of hundreds of metres, and a small one is drawing error, not a datum.
pub const FITS_BELOW_PCT: f64 = 1.0;

impl DatumFit {
    /// How many times better the best datum fits than the layer as given (1 when it is WGS-84).
    #[must_use]
    pub fn times_better(&self) -> f64 {
        if self.best == Crs::Wgs84 { 1.0 } else { self.as_is_pct / self.best_pct.max(1e-9) }
    }

    /// The datum the layer was drawn in, when it is clearly not WGS-84.
    #[must_use]
    pub fn shifted(&self) -> Option<Crs> {
        (self.best != Crs::Wgs84 && self.as_is_pct >= FITS_BELOW_PCT && self.times_better() >= SHIFT_RATIO)
            .then_some(self.best)
    }
}

impl fmt::Display for DatumFit {
    /// "this layer fits 2.6× better as BD-09 (8.1% mismatch as given, 3.1% converted)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.best == Crs::Wgs84 {
            write!(f, "this layer fits best as WGS-84 ({:.2}% mismatch)", self.as_is_pct)
        } else {
            // Converted exactly (the layer was shifted by the very same formulas), the ratio runs
            // to millions: past a thousand it says nothing more.
            let times = self.times_better();
            let how = if times >= 1000.0 { "over 1000×".to_owned() } else { format!("{times:.1}×") };
            write!(
                f,
                "this layer fits {how} better as {} ({:.2}% mismatch as given, {:.2}% converted from {})",
                self.best.label(),
                self.as_is_pct,
                self.best_pct,
                self.best.label()
            )
        }
    }
}

/// Compares the layer (as given, and converted from GCJ-02 and from BD-09) with `reference`.
/// `None` when there is nothing to measure (a reference or layer of no area).
#[must_use]
pub fn fit(reference: Reference<'_>) -> Option<DatumFit> {
    let as_is = mismatch(reference, Crs::Wgs84)?;
    let mut out = DatumFit { as_is_pct: as_is, best: Crs::Wgs84, best_pct: as_is };
    for crs in [Crs::Gcj02, Crs::Bd09] {
        if let Some(m) = mismatch(reference, crs)
            && m < out.best_pct
        {
            out.best = crs;
            out.best_pct = m;
        }
    }
    Some(out)
}

/// The mismatch (%) of the layer read as `crs` and converted to WGS-84.
fn mismatch(reference: Reference<'_>, crs: Crs) -> Option<f64> {
    let read = |mp: &MultiPolygon<f64>| if crs == Crs::Wgs84 { mp.clone() } else { from(mp, crs) };
    let share = |num: f64, den: f64| (den > 0.0).then(|| num / den * 100.0);
    match reference {
        Reference::Pairs(pairs) => {
            let (mut num, mut den) = (0.0, 0.0);
            for (layer, known) in pairs {
                num += area_m2(&overlay::xor(&read(layer), known));
                den += area_m2(known);
            }
            share(num, den)
        }
        Reference::Whole(layer, territory) => {
            share(area_m2(&overlay::xor(&read(layer), territory)), area_m2(territory))
        }
        Reference::Around(layer, outline) => {
            let l = read(layer);
            share(area_m2(&overlay::difference(&l, outline)), area_m2(&l))
        }
    }
}

/// A polygon read as `crs` and converted to WGS-84, vertex by vertex.
#[must_use]
pub fn from(mp: &MultiPolygon<f64>, crs: Crs) -> MultiPolygon<f64> {
    mp.map_coords(|c| LonLat::new(c.x, c.y).map_or(c, |p| crs.to_wgs84(p).to_coord()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn square(x: f64, y: f64, s: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![polygon![(x: x, y: y), (x: x + s, y: y), (x: x + s, y: y + s), (x: x, y: y + s)]])
    }

    /// WGS-84 squares in Shenzhen, and the same squares as a BD-09 map would draw them.
    fn drawn_in(crs: Crs) -> Vec<MultiPolygon<f64>> {
        (0..4)
            .map(|i| {
                let wgs = square(114.0 + 0.02 * f64::from(i), 22.55, 0.02);
                wgs.map_coords(|c| LonLat::new(c.x, c.y).map_or(c, |p| crs.from_wgs84(p).to_coord()))
            })
            .collect()
    }

    #[test]
    fn a_layer_drawn_on_a_chinese_map_is_named_with_how_much_better_it_fits() {
        let truth: Vec<MultiPolygon<f64>> = drawn_in(Crs::Wgs84);
        let territory = overlay::union(truth.iter().flat_map(|m| m.0.iter()));
        for crs in [Crs::Gcj02, Crs::Bd09] {
            let drawn = drawn_in(crs);
            let union = overlay::union(drawn.iter().flat_map(|m| m.0.iter()));
            let pairs: Vec<_> = drawn.iter().zip(&truth).collect();
            for r in [Reference::Pairs(&pairs), Reference::Whole(&union, &territory)] {
                let f = fit(r).unwrap();
                assert_eq!(f.shifted(), Some(crs), "{f}");
                assert!(f.times_better() > 10.0 && f.best_pct < 0.5, "{f}");
                assert!(f.to_string().contains(&format!("better as {}", crs.label())), "{f}");
            }
        }
        // A WGS-84 layer is not moved, and one that merely lies within a larger outline.
        let pairs: Vec<_> = truth.iter().zip(&truth).collect();
        assert_eq!(fit(Reference::Pairs(&pairs)).unwrap().shifted(), None);
        let city = square(113.9, 22.4, 0.4);
        let inside = square(114.1, 22.5, 0.05);
        assert_eq!(fit(Reference::Around(&inside, &city)).unwrap().shifted(), None);
    }

    #[test]
    fn a_layer_at_the_edge_of_its_outline_sticks_out_only_as_given() {
        let city = square(114.0, 22.5, 0.3);
        let bd09 = |m: &MultiPolygon<f64>| {
            m.map_coords(|c| LonLat::new(c.x, c.y).map_or(c, |p| Crs::Bd09.from_wgs84(p).to_coord()))
        };
        // In Shenzhen BD-09 lies about 1.2 km east-north-east of WGS-84: a district on the
        // city's east edge, drawn in BD-09, sticks out to the east as given.
        let east = square(114.25, 22.6, 0.05);
        let f = fit(Reference::Around(&bd09(&east), &city)).unwrap();
        assert_eq!(f.shifted(), Some(Crs::Bd09), "{f}");
        // One in the middle cannot tell: nothing sticks out either way.
        let middle = square(114.1, 22.6, 0.05);
        let f = fit(Reference::Around(&bd09(&middle), &city)).unwrap();
        assert_eq!(f.shifted(), None, "{f}");
    }
}
