//! A static grid of buckets over a frozen set of points: the bulk of a [`super::PointIndex`].
//!
//! The points' (east, north) frame coordinates are cut into square cells sized from the data
//! (a few points per cell, smaller cells where points crowd), and the points are stored
//! bucket by bucket in one vector, row after row (a counting sort), with one offset per cell.
//! A k-nearest query scans rings of cells outward from the query's cell and stops when the
//! next ring cannot hold anything nearer than the k-th best. Each row of a ring is one
//! contiguous run of memory, so a query touches a few dozen cache lines; the R-trees tried
//! before it (rstar's, then a Hilbert-packed one) touched about a hundred and were memory
//! bound at 1.7 µs for 5 nearest of 100,000 (BENCHMARKS.md).
//!
//! The grid cannot grow. Removing a point only clears its `live` flag; a moved or new point goes
//! to the small dynamic tree beside it, and the owner rebuilds both into a new grid once that
//! side grows (see `PointIndex::upsert`).

use super::{Entry, chord2};
use rstar::AABB;

/// Mean number of points per cell over the data's box, before crowding is corrected.
const POINTS_PER_CELL: f64 = 2.0;
/// Cells are halved while a point's cell holds more than this many points on average
/// (Σ n² / Σ n over cells): dense city centres get small cells, as long as the grid keeps to
/// [`MAX_CELLS_PER_POINT`] cells per point.
const CROWDING: f64 = 3.0;
/// A cap on the offsets' memory: 4 bytes a cell, so at most 16 bytes a point.
const MAX_CELLS_PER_POINT: usize = 4;

/// What a bucket keeps of a point: the exact unit vector and the payload.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub xyz: [f64; 3],
    pub id: u64,
    pub tag: u32,
    pub live: bool,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Buckets {
    /// The (east, north) of the grid's south-west corner.
    origin: [f64; 2],
    /// Cell side, in frame units (radians of arc, near the frame's centre).
    cell: f64,
    cols: usize,
    rows: usize,
    /// `starts[c]..starts[c + 1]` are cell c's slots; cells row by row from the south-west.
    starts: Vec<u32>,
    slots: Vec<Slot>,
    live: usize,
}

impl Buckets {
    /// Buckets the entries; returns the grid and, for each entry in input order, its slot.
    pub fn build(entries: &[Entry]) -> (Self, Vec<u32>) {
        let n = entries.len();
        if n == 0 {
            return (Self::default(), Vec::new());
        }
        let mut lo = [f64::MAX; 2];
        let mut hi = [f64::MIN; 2];
        for e in entries {
            for i in 0..2 {
                lo[i] = lo[i].min(e.en[i]);
                hi[i] = hi[i].max(e.en[i]);
            }
        }
        let (w, h) = (hi[0] - lo[0], hi[1] - lo[1]);
        // A line of points (or one point) has no area: size cells along its length.
        let area = if w > 0.0 && h > 0.0 { w * h } else { w.max(h).max(1e-12).powi(2) / n as f64 };
        let mut cell = (area * POINTS_PER_CELL / n as f64).sqrt();
        let max_cells = MAX_CELLS_PER_POINT * n + 64;
        let shape = |cell: f64| ((w / cell) as usize + 1, (h / cell) as usize + 1);
        // Coarsen first if the box is so elongated that even the first guess has too many cells.
        while shape(cell).0 * shape(cell).1 > max_cells {
            cell *= 2.0;
        }
        loop {
            let finer = shape(cell / 2.0);
            // Stop when finer cells would be too many, would not split anything (points that
            // coincide), or are not needed.
            if finer.0 * finer.1 > max_cells
                || finer == shape(cell)
                || crowding(entries, lo, cell, shape(cell)) <= CROWDING
            {
                break;
            }
            cell /= 2.0;
        }
        // A floor (about 6 mm on Earth) keeps coincident points from shrinking cells towards
        // zero, where a distant query's cell number would overflow.
        let cell = cell.max(1e-9);
        let (cols, rows) = shape(cell);
        let mut grid =
            Self { origin: lo, cell, cols, rows, starts: vec![0; cols * rows + 1], slots: Vec::new(), live: n };

        // Counting sort by cell.
        let cells: Vec<usize> = entries.iter().map(|e| grid.cell_of(e.en)).collect();
        for &c in &cells {
            grid.starts[c + 1] += 1;
        }
        for c in 0..cols * rows {
            grid.starts[c + 1] += grid.starts[c];
        }
        let mut next: Vec<u32> = grid.starts[..cols * rows].to_vec();
        let empty = Slot { xyz: [0.0; 3], id: 0, tag: 0, live: false };
        grid.slots = vec![empty; n];
        let mut slot_of = Vec::with_capacity(n);
        for (e, &c) in entries.iter().zip(&cells) {
            let at = next[c];
            next[c] += 1;
            grid.slots[at as usize] = Slot { xyz: e.xyz, id: e.id, tag: e.tag, live: true };
            slot_of.push(at);
        }
        (grid, slot_of)
    }

    /// The cell holding a point of the data (clamped, against rounding at the far edges).
    fn cell_of(&self, en: [f64; 2]) -> usize {
        let col = (((en[0] - self.origin[0]) / self.cell) as usize).min(self.cols - 1);
        let row = (((en[1] - self.origin[1]) / self.cell) as usize).min(self.rows - 1);
        row * self.cols + col
    }

    pub fn live(&self) -> usize {
        self.live
    }

    pub fn dead(&self) -> usize {
        self.slots.len() - self.live
    }

    /// Clears a slot's live flag.
    pub fn kill(&mut self, at: u32) {
        let s = &mut self.slots[at as usize];
        if s.live {
            s.live = false;
            self.live -= 1;
        }
    }

    /// Every live slot.
    pub fn live_slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.live)
    }

    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>() + self.starts.capacity() * size_of::<u32>()
    }

    /// The live slots of cells `col0..=col1` of `row` (one contiguous run).
    fn run(&self, row: usize, col0: usize, col1: usize) -> &[Slot] {
        let base = row * self.cols;
        &self.slots[self.starts[base + col0] as usize..self.starts[base + col1 + 1] as usize]
    }

    /// Offers the live slots nearest `q` to `best` (sorted, at most `k`), as in `knn_visit`.
    pub fn nearest(
        &self,
        q: &Entry,
        k: usize,
        best: &mut Vec<(f64, u64, u32)>,
        filter: &mut impl FnMut(u64, u32) -> bool,
    ) {
        if self.live == 0 {
            return;
        }
        // The query's cell in the unbounded lattice (it may lie outside the grid).
        let u = (q.en[0] - self.origin[0]) / self.cell;
        let v = (q.en[1] - self.origin[1]) / self.cell;
        let (cu, cv) = (u.floor(), v.floor());
        let (cx, cy) = (cu as i64, cv as i64);
        // Any point in ring r (cells at Chebyshev distance r from the query's cell) is at least
        // (r − 1 + edge) cells away, where edge is the query's distance to its own cell's sides.
        let edge = (u - cu).min(cu + 1.0 - u).min(v - cv).min(cv + 1.0 - v);
        let (cols, rows) = (self.cols as i64, self.rows as i64);
        let outside = |c: i64, n: i64| {
            if c < 0 {
                -c
            } else if c >= n {
                c - n + 1
            } else {
                0
            }
        };
        let first_ring = outside(cx, cols).max(outside(cy, rows));
        let last_ring = cx.max(cols - 1 - cx).max(cy).max(rows - 1 - cy);
        for r in first_ring..=last_ring {
            if best.len() == k && r > 0 {
                let bound = ((r - 1) as f64 + edge) * self.cell;
                if bound * bound >= best[k - 1].0 {
                    break;
                }
            }
            let (x0, x1) = ((cx - r).max(0), (cx + r).min(cols - 1));
            // The ring's bottom and top rows, whole.
            for y in [cy - r, cy + r] {
                if (0..rows).contains(&y) && x0 <= x1 {
                    offer(q, k, best, filter, self.run(y as usize, x0 as usize, x1 as usize));
                }
                if r == 0 {
                    break;
                }
            }
            // Its left and right columns, between them.
            for y in (cy - r + 1).max(0)..=(cy + r - 1).min(rows - 1) {
                for x in [cx - r, cx + r] {
                    if (0..cols).contains(&x) {
                        offer(q, k, best, filter, self.run(y as usize, x as usize, x as usize));
                    }
                }
            }
        }
    }

    /// Calls `f` for every live slot whose (east, north) may lie inside `env` (a superset: the
    /// caller re-checks each slot exactly).
    pub fn candidates_in(&self, env: &AABB<[f64; 2]>, f: &mut impl FnMut(&Slot)) {
        if self.slots.is_empty() {
            return;
        }
        let (lo, hi) = (env.lower(), env.upper());
        let index = |v: f64, o: f64, n: usize| ((v - o) / self.cell).floor().clamp(-1.0, n as f64) as i64;
        let (x0, x1) = (index(lo[0], self.origin[0], self.cols), index(hi[0], self.origin[0], self.cols));
        let (y0, y1) = (index(lo[1], self.origin[1], self.rows), index(hi[1], self.origin[1], self.rows));
        let (x0, x1) = (x0.max(0), x1.min(self.cols as i64 - 1));
        let (y0, y1) = (y0.max(0), y1.min(self.rows as i64 - 1));
        if x0 > x1 || y0 > y1 {
            return;
        }
        for y in y0..=y1 {
            self.run(y as usize, x0 as usize, x1 as usize).iter().filter(|s| s.live).for_each(&mut *f);
        }
    }
}

/// Offers a run of slots to the running k best.
fn offer(
    q: &Entry,
    k: usize,
    best: &mut Vec<(f64, u64, u32)>,
    filter: &mut impl FnMut(u64, u32) -> bool,
    run: &[Slot],
) {
    for s in run {
        if !s.live {
            continue;
        }
        let d2 = chord2(&s.xyz, &q.xyz);
        if (best.len() < k || d2 < best[k - 1].0) && filter(s.id, s.tag) {
            let at = best.partition_point(|b| b.0 <= d2);
            best.insert(at, (d2, s.id, s.tag));
            best.truncate(k);
        }
    }
}

/// The mean number of points sharing a point's cell, for cells of side `cell` from `origin`
/// on a `cols` × `rows` grid.
fn crowding(entries: &[Entry], origin: [f64; 2], cell: f64, (cols, rows): (usize, usize)) -> f64 {
    let mut counts = vec![0_u32; cols * rows];
    for e in entries {
        let col = (((e.en[0] - origin[0]) / cell) as usize).min(cols - 1);
        let row = (((e.en[1] - origin[1]) / cell) as usize).min(rows - 1);
        counts[row * cols + col] += 1;
    }
    counts.iter().map(|&c| f64::from(c) * f64::from(c)).sum::<f64>() / entries.len() as f64
}
