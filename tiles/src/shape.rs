//! Geometry in tile space: projecting WGS-84 into a tile's pixel grid, clipping polygons to the
//! tile (plus a buffer), simplifying them for the zoom, and snapping to integers.
//!
//! PostGIS's `ST_AsMVTGeom` only snaps to the grid; at low zoom that leaves thousands of
//! vertices per pixel. Here rings are first simplified (Douglas–Peucker with a tolerance in
//! pixels), then snapped, then stripped of repeated points and collapsed rings.

use crate::{MAX_LAT, TileId};
use std::f64::consts::PI;

/// A position in tile pixel space (0..extent, y down), not yet snapped.
pub type Px = [f64; 2];

impl TileId {
    /// Where a WGS-84 point falls in this tile's pixel space (0..extent; outside the tile it is
    /// below 0 or above extent).
    #[must_use]
    pub fn to_pixels(self, lon: f64, lat: f64, extent: u32) -> Px {
        let n = f64::from(1u32 << self.z);
        let lat = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
        let wx = (lon + 180.0) / 360.0 * n;
        let wy = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0 * n;
        let e = f64::from(extent);
        [(wx - f64::from(self.x)) * e, (wy - f64::from(self.y)) * e]
    }
}

/// Clips a closed ring (first point not repeated) to the square `[lo, hi]²`
/// (Sutherland–Hodgman: exact for a convex clip window; may leave edges along the window, which
/// renderers draw as nothing because they lie outside the visible tile).
#[must_use]
pub fn clip_ring(ring: &[Px], lo: f64, hi: f64) -> Vec<Px> {
    let mut out: Vec<Px> = ring.to_vec();
    // Each clip edge: which side is inside, and the intersection with the line.
    for edge in 0..4 {
        if out.is_empty() {
            break;
        }
        let input = std::mem::take(&mut out);
        let inside = |p: &Px| match edge {
            0 => p[0] >= lo,
            1 => p[0] <= hi,
            2 => p[1] >= lo,
            _ => p[1] <= hi,
        };
        let cross = |a: &Px, b: &Px| -> Px {
            let (axis, at) = match edge {
                0 => (0, lo),
                1 => (0, hi),
                2 => (1, lo),
                _ => (1, hi),
            };
            let t = (at - a[axis]) / (b[axis] - a[axis]);
            let mut p = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
            p[axis] = at;
            p
        };
        for i in 0..input.len() {
            let (cur, prev) = (&input[i], &input[(i + input.len() - 1) % input.len()]);
            match (inside(prev), inside(cur)) {
                (true, true) => out.push(*cur),
                (true, false) => out.push(cross(prev, cur)),
                (false, true) => {
                    out.push(cross(prev, cur));
                    out.push(*cur);
                }
                (false, false) => {}
            }
        }
    }
    out
}

/// Douglas–Peucker on a closed ring: keeps the vertices that stray more than `tolerance`
/// pixels from the simplified outline.
#[must_use]
pub fn simplify_ring(ring: &[Px], tolerance: f64) -> Vec<Px> {
    if ring.len() <= 4 || tolerance <= 0.0 {
        return ring.to_vec();
    }
    // Split the ring at its first point and the point farthest from it, and simplify both halves.
    let far = (1..ring.len())
        .max_by(|&a, &b| dist2(&ring[0], &ring[a]).total_cmp(&dist2(&ring[0], &ring[b])))
        .unwrap_or(ring.len() / 2);
    let mut keep = vec![false; ring.len() + 1];
    keep[0] = true;
    keep[far] = true;
    keep[ring.len()] = true;
    let closed: Vec<Px> = ring.iter().copied().chain(std::iter::once(ring[0])).collect();
    dp(&closed, 0, far, tolerance * tolerance, &mut keep);
    dp(&closed, far, ring.len(), tolerance * tolerance, &mut keep);
    (0..ring.len()).filter(|&i| keep[i]).map(|i| ring[i]).collect()
}

fn dist2(a: &Px, b: &Px) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

fn segment_dist2(p: &Px, a: &Px, b: &Px) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return dist2(p, a);
    }
    let t = (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0);
    dist2(p, &[a[0] + t * dx, a[1] + t * dy])
}

fn dp(pts: &[Px], first: usize, last: usize, tol2: f64, keep: &mut [bool]) {
    // An explicit stack: rings of tens of thousands of vertices must not recurse that deep.
    let mut stack = vec![(first, last)];
    while let Some((a, b)) = stack.pop() {
        if b <= a + 1 {
            continue;
        }
        let (mut worst, mut worst_d) = (a, 0.0);
        for i in a + 1..b {
            let d = segment_dist2(&pts[i], &pts[a], &pts[b]);
            if d > worst_d {
                worst = i;
                worst_d = d;
            }
        }
        if worst_d > tol2 {
            keep[worst] = true;
            stack.push((a, worst));
            stack.push((worst, b));
        }
    }
}

/// Snaps a ring to integer pixels, dropping repeated points; `None` when fewer than three
/// distinct points remain (the ring vanishes at this zoom).
#[must_use]
pub fn snap_ring(ring: &[Px]) -> Option<Vec<[i32; 2]>> {
    let mut out: Vec<[i32; 2]> = Vec::with_capacity(ring.len());
    for p in ring {
        let q = [p[0].round() as i32, p[1].round() as i32];
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    while out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    (out.len() >= 3).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_projects_inside_its_own_tile() {
        let (lon, lat) = (114.0579, 22.5431);
        for z in [4u8, 10, 14, 18] {
            let t = TileId::containing(lon, lat, z);
            let p = t.to_pixels(lon, lat, 4096);
            assert!((0.0..4096.0).contains(&p[0]) && (0.0..4096.0).contains(&p[1]), "z{z}: {p:?}");
        }
        // The tile's north-west corner is pixel (0, 0).
        let t = TileId::new(10, 837, 446).unwrap();
        let b = t.bounds();
        let p = t.to_pixels(b.west, b.north, 4096);
        assert!(p[0].abs() < 1e-6 && p[1].abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn clipping_keeps_exactly_the_part_inside_the_window() {
        let square = [[-100.0, -100.0], [200.0, -100.0], [200.0, 200.0], [-100.0, 200.0]];
        let clipped = clip_ring(&square, 0.0, 100.0);
        let area: f64 = (0..clipped.len())
            .map(|i| {
                let (a, b) = (clipped[i], clipped[(i + 1) % clipped.len()]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum::<f64>()
            / 2.0;
        assert!((area.abs() - 10_000.0).abs() < 1e-9, "{area}");
        assert!(clip_ring(&[[200.0, 200.0], [300.0, 200.0], [300.0, 300.0]], 0.0, 100.0).is_empty());
    }

    #[test]
    fn simplification_drops_vertices_within_tolerance_and_keeps_corners() {
        // A square with 400 nearly collinear points along each side.
        let mut ring = Vec::new();
        for i in 0..400 {
            ring.push([f64::from(i), if i % 2 == 0 { 0.0 } else { 0.2 }]);
        }
        for i in 0..400 {
            ring.push([400.0, f64::from(i)]);
        }
        for i in 0..400 {
            ring.push([400.0 - f64::from(i), 400.0]);
        }
        for i in 0..400 {
            ring.push([0.0, 400.0 - f64::from(i)]);
        }
        let s = simplify_ring(&ring, 0.5);
        assert!(s.len() <= 8, "{} vertices left", s.len());
        for corner in [[0.0, 0.0], [400.0, 0.0], [400.0, 400.0], [0.0, 400.0]] {
            assert!(s.iter().any(|p| dist2(p, &corner) < 1.0), "corner {corner:?} lost");
        }
        let snapped = snap_ring(&s).unwrap();
        assert!(snapped.len() >= 4);
        assert!(snap_ring(&[[0.1, 0.1], [0.2, 0.3], [0.4, 0.2]]).is_none(), "a sub-pixel ring vanishes");
    }
}
