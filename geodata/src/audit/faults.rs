//! Where a ring goes wrong: the point at which it crosses itself or another ring.
//!
//! `geo`'s validation says *that* a ring self-intersects; a supervisor fixing the layer in QGIS
//! needs *where*. Segments go into an R-tree of their envelopes, so a ring of n segments costs
//! O(n log n), not O(n²).

use geo::line_intersection::{LineIntersection, line_intersection};
use geo::{Coord, Line, LineString};
use rstar::{AABB, RTree, RTreeObject};

struct Seg {
    ring: usize,
    index: usize,
    line: Line<f64>,
}

impl RTreeObject for Seg {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners([self.line.start.x, self.line.start.y], [self.line.end.x, self.line.end.y])
    }
}

/// A crossing: where, and which segments (ring index, segment index from the ring's start).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::faults::{Crossing, first_crossing};
/// use geo::line_string;
/// // A bow-tie: segment 0 (bottom-left to top-right) crosses segment 2 (bottom-right to top-left).
/// let bow_tie = line_string![
///     (x: 114.05, y: 22.54), (x: 114.06, y: 22.55), (x: 114.06, y: 22.54), (x: 114.05, y: 22.55), (x: 114.05, y: 22.54)];
/// let c: Option<Crossing> = first_crossing(&[&bow_tie]);
/// let c = c.ok_or("no crossing")?;
/// assert_eq!((c.a, c.b), ((0, 0), (0, 2)));
/// assert!((c.at.x - 114.055).abs() < 1e-12 && (c.at.y - 22.545).abs() < 1e-12);
/// # Ok::<(), &str>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    /// The crossing point (the first shared point for collinear overlaps).
    pub at: Coord<f64>,
    /// First segment: ring, segment.
    pub a: (usize, usize),
    /// Second segment: ring, segment.
    pub b: (usize, usize),
}

fn segments(ring_index: usize, ring: &LineString<f64>) -> impl Iterator<Item = Seg> + '_ {
    ring.lines().enumerate().filter(|(_, l)| l.start != l.end).map(move |(index, line)| Seg {
        ring: ring_index,
        index,
        line,
    })
}

/// The first point where two segments of the given rings meet other than at the vertex two
/// consecutive segments of one ring share. Rings are closed (first = last position).
///
/// # Examples
/// ```
/// use safegrid_geodata::audit::faults::first_crossing;
/// use geo::line_string;
/// let grid = line_string![
///     (x: 114.05, y: 22.54), (x: 114.06, y: 22.54), (x: 114.06, y: 22.55), (x: 114.05, y: 22.55), (x: 114.05, y: 22.54)];
/// assert_eq!(first_crossing(&[&grid]), None);
/// // A hole that pokes out through the grid's eastern edge: ring 0 segment 1 meets ring 1.
/// let hole = line_string![
///     (x: 114.055, y: 22.544), (x: 114.058, y: 22.544), (x: 114.062, y: 22.546), (x: 114.055, y: 22.546), (x: 114.055, y: 22.544)];
/// let c = first_crossing(&[&grid, &hole]).ok_or("no crossing")?;
/// assert_eq!(c.a, (0, 1));
/// assert_eq!(c.b.0, 1);
/// assert_eq!(c.at.x, 114.06);
/// # Ok::<(), &str>(())
/// ```
#[must_use]
pub fn first_crossing(rings: &[&LineString<f64>]) -> Option<Crossing> {
    // Repeated vertices removed first, so that the segments on either side of one are adjacent
    // (segment numbers count the ring's distinct positions).
    let rings: Vec<LineString<f64>> = rings
        .iter()
        .map(|r| {
            let mut c = r.0.clone();
            c.dedup();
            LineString(c)
        })
        .collect();
    let segs: Vec<Seg> = rings.iter().enumerate().flat_map(|(r, ring)| segments(r, ring)).collect();
    let ring_len: Vec<usize> = rings.iter().map(|r| r.0.len().saturating_sub(1)).collect();
    let tree = RTree::bulk_load(segs);
    let mut best: Option<Crossing> = None;
    for s in &tree {
        for t in tree.locate_in_envelope_intersecting(&s.envelope()) {
            if (t.ring, t.index) <= (s.ring, s.index) {
                continue;
            }
            let Some(hit) = line_intersection(s.line, t.line) else { continue };
            let at = match hit {
                LineIntersection::SinglePoint { intersection, .. } => {
                    if s.ring == t.ring
                        && adjacent(s.index, t.index, ring_len[s.ring])
                        && shares_end(&s.line, &t.line, intersection)
                    {
                        continue;
                    }
                    intersection
                }
                LineIntersection::Collinear { intersection } => intersection.start,
            };
            let c = Crossing { at, a: (s.ring, s.index), b: (t.ring, t.index) };
            // Deterministic answer whatever the tree's order: the earliest segment pair.
            if best.is_none_or(|b| (c.a, c.b) < (b.a, b.b)) {
                best = Some(c);
            }
        }
    }
    best
}

fn adjacent(i: usize, j: usize, n: usize) -> bool {
    i.abs_diff(j) == 1 || (n > 1 && ((i == 0 && j == n - 1) || (j == 0 && i == n - 1)))
}

fn shares_end(a: &Line<f64>, b: &Line<f64>, p: Coord<f64>) -> bool {
    (p == a.start || p == a.end) && (p == b.start || p == b.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::line_string;

    #[test]
    fn a_bow_tie_crosses_at_its_waist() {
        let r = line_string![(x: 0.0, y: 0.0), (x: 2.0, y: 2.0), (x: 2.0, y: 0.0), (x: 0.0, y: 2.0), (x: 0.0, y: 0.0)];
        let c = first_crossing(&[&r]).unwrap();
        assert_eq!(c.at, Coord { x: 1.0, y: 1.0 });
        assert_eq!((c.a, c.b), ((0, 0), (0, 2)));
    }

    #[test]
    fn a_repeated_vertex_is_not_a_crossing() {
        let r = line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0), (x: 0.0, y: 0.0)];
        assert_eq!(first_crossing(&[&r]), None);
    }

    #[test]
    fn a_simple_square_does_not_cross() {
        let r = line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0), (x: 0.0, y: 0.0)];
        assert_eq!(first_crossing(&[&r]), None);
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "the crossing of two axis-parallel edges is exact")]
    fn a_hole_poking_out_of_its_shell_is_located() {
        let shell =
            line_string![(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0), (x: 0.0, y: 4.0), (x: 0.0, y: 0.0)];
        let hole =
            line_string![(x: 1.0, y: 1.0), (x: 5.0, y: 1.0), (x: 5.0, y: 2.0), (x: 1.0, y: 2.0), (x: 1.0, y: 1.0)];
        let c = first_crossing(&[&shell, &hole]).unwrap();
        assert_eq!(c.at.x, 4.0);
        assert_eq!((c.a.0, c.b.0), (0, 1));
    }

    #[test]
    fn a_ring_touching_itself_at_a_vertex_is_a_crossing() {
        // A figure eight pinched at (1, 1): vertices 2 and 5 coincide.
        let r = line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 2.0, y: 1.0), (x: 2.0, y: 2.0),
            (x: 1.0, y: 1.0), (x: 0.0, y: 1.0), (x: 0.0, y: 0.0)];
        let c = first_crossing(&[&r]).unwrap();
        assert_eq!(c.at, Coord { x: 1.0, y: 1.0 });
    }
}
