//! Glyph ranges for map labels: the signed-distance-field (SDF) glyph PBFs that MapLibre fetches
//! from a style's `glyphs` URL (`{fontstack}/{start}-{end}.pbf`, 256 code points each).
//!
//! A glyph is rasterised from the font's outline at 24 px with a 3 px buffer, and each pixel
//! holds its signed distance to the outline: 255 − 255·(d/8 + 0.25), so the outline itself reads
//! 191 (MapLibre's shader cuts at 192/256). The distance is the exact Euclidean distance
//! transform of the coverage (Felzenszwalb & Huttenlocher), with partly covered pixels placed on
//! the edge by their coverage, as MapLibre's own TinySDF does for glyphs it draws locally — so
//! served and local glyphs look alike. Pure Rust (ab_glyph reads TrueType/OpenType/TTC).

use crate::mvt::DecodeError;
use crate::pbf::{Field, Reader, put_bytes, put_key, put_varint};
use ab_glyph::{Font, FontRef, PxScale, point};

/// Font size glyphs are rendered at, in px (MapLibre's `ONE_EM`).
pub const FONT_SIZE: f32 = 24.0;
/// Empty pixels around each glyph's box.
pub const BUFFER: usize = 3;
/// Distance, in px, over which the field falls from fully inside to fully outside.
const RADIUS: f64 = 8.0;
/// Where the outline sits in the 0..1 range of the field.
const CUTOFF: f64 = 0.25;
/// Code points per range file.
pub const RANGE_SIZE: u32 = 256;

/// One glyph as the PBF carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glyph {
    /// Unicode code point.
    pub id: u32,
    /// SDF, `(width + 6) × (height + 6)` bytes, row by row; empty for blank glyphs (space).
    pub bitmap: Vec<u8>,
    /// Width of the glyph's box in px, without the buffer.
    pub width: u32,
    /// Height of the glyph's box in px, without the buffer.
    pub height: u32,
    /// From the pen position to the box's left edge.
    pub left: i32,
    /// From the top of the line (baseline + ascender) to the box's top edge; negative is down.
    pub top: i32,
    /// How far the pen moves.
    pub advance: u32,
}

/// One decoded range file.
#[derive(Debug, Clone, PartialEq)]
pub struct GlyphRange {
    /// Font stack name.
    pub stack: String,
    /// `"start-end"`.
    pub range: String,
    /// The glyphs the font has in the range.
    pub glyphs: Vec<Glyph>,
}

/// Why a font or a glyph file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GlyphError {
    /// The bytes are not a font ab_glyph can read, or the face index is not in the collection.
    #[error("not a usable TrueType/OpenType font (face {index}): {reason}")]
    Font {
        /// The face asked for within the font file (0 for a single font).
        index: u32,
        /// Why: ab_glyph's error, or what the face lacks.
        reason: String,
    },
    /// A range that does not start on a multiple of 256.
    #[error("glyph range must start at a multiple of 256, got {0}")]
    Range(u32),
    /// The bytes are not a glyph PBF.
    #[error("glyph PBF: {0}")]
    Decode(String),
}

/// The `start-end` label of the range starting at `start`.
#[must_use]
pub fn range_label(start: u32) -> String {
    format!("{start}-{}", start + RANGE_SIZE - 1)
}

/// A font face to render glyphs from.
pub struct FontFace<'a> {
    font: FontRef<'a>,
    /// ab_glyph's scale for a 24 px em (its scale is the ascent-to-descent height).
    scale: PxScale,
    /// Font units → px.
    px_per_unit: f32,
    /// The ascender in px: glyph tops are measured from there.
    ascender: i32,
}

impl<'a> FontFace<'a> {
    /// Reads face `index` of a font file (0 for a single font; a `.ttc` holds several).
    ///
    /// # Errors
    /// [`GlyphError::Font`] when ab_glyph cannot read the face or it declares no units per em.
    pub fn parse(data: &'a [u8], index: u32) -> Result<Self, GlyphError> {
        let font = FontRef::try_from_slice_and_index(data, index)
            .map_err(|e| GlyphError::Font { index, reason: e.to_string() })?;
        let upem = font.units_per_em().ok_or_else(|| GlyphError::Font { index, reason: "no units per em".into() })?;
        let px_per_unit = FONT_SIZE / upem;
        let scale = PxScale::from(FONT_SIZE * font.height_unscaled() / upem);
        let ascender = (font.ascent_unscaled() * px_per_unit).round() as i32;
        Ok(Self { font, scale, px_per_unit, ascender })
    }

    /// Whether the face has any glyph in the range starting at `start`.
    pub fn covers(&self, start: u32) -> bool {
        (start..start + RANGE_SIZE).filter_map(char::from_u32).any(|c| self.font.glyph_id(c).0 != 0)
    }

    /// Every glyph the face has in the range starting at `start`.
    ///
    /// # Errors
    /// [`GlyphError::Range`] when `start` is not a multiple of 256.
    pub fn render_range(&self, start: u32) -> Result<Vec<Glyph>, GlyphError> {
        if !start.is_multiple_of(RANGE_SIZE) {
            return Err(GlyphError::Range(start));
        }
        Ok((start..start + RANGE_SIZE).filter_map(char::from_u32).filter_map(|c| self.render(c)).collect())
    }

    /// One glyph, or `None` if the face lacks it.
    #[must_use]
    pub fn render(&self, c: char) -> Option<Glyph> {
        let id = self.font.glyph_id(c);
        if id.0 == 0 {
            return None;
        }
        let advance = (self.font.h_advance_unscaled(id) * self.px_per_unit).round().max(0.0) as u32;
        let blank = Glyph { id: u32::from(c), bitmap: Vec::new(), width: 0, height: 0, left: 0, top: 0, advance };
        let Some(outlined) = self.font.outline_glyph(id.with_scale_and_position(self.scale, point(0.0, 0.0))) else {
            return Some(blank);
        };
        let bounds = outlined.px_bounds();
        let (w, h) = (bounds.width() as usize, bounds.height() as usize);
        if w == 0 || h == 0 {
            return Some(blank);
        }
        let (gw, gh) = (w + 2 * BUFFER, h + 2 * BUFFER);
        let mut coverage = vec![0f32; gw * gh];
        outlined.draw(|x, y, c| {
            let (x, y) = (x as usize + BUFFER, y as usize + BUFFER);
            if x < gw && y < gh {
                coverage[y * gw + x] = c.clamp(0.0, 1.0);
            }
        });
        Some(Glyph {
            bitmap: sdf(&coverage, gw, gh),
            width: w as u32,
            height: h as u32,
            left: bounds.min.x as i32,
            // ab_glyph's y grows downwards from the baseline.
            top: -(bounds.min.y as i32) - self.ascender,
            ..blank
        })
    }
}

/// Far enough to count as "no edge in reach" for the distance transform.
const FAR: f64 = 1e20;

/// The SDF of a coverage raster (1 inside, 0 outside, in between on the edge).
fn sdf(coverage: &[f32], w: usize, h: usize) -> Vec<u8> {
    // Squared distance to the outside (for inside pixels) and to the inside (for outside ones).
    // A partly covered pixel sits on the edge, offset by how much of it is covered.
    let mut outer = vec![FAR; w * h];
    let mut inner = vec![0f64; w * h];
    for (i, &a) in coverage.iter().enumerate() {
        let a = f64::from(a);
        if a >= 1.0 {
            outer[i] = 0.0;
            inner[i] = FAR;
        } else if a > 0.0 {
            let d = 0.5 - a;
            outer[i] = if d > 0.0 { d * d } else { 0.0 };
            inner[i] = if d < 0.0 { d * d } else { 0.0 };
        }
    }
    edt(&mut outer, w, h);
    edt(&mut inner, w, h);
    outer
        .iter()
        .zip(&inner)
        .map(|(o, i)| {
            let d = o.sqrt() - i.sqrt();
            (255.0 - 255.0 * (d / RADIUS + CUTOFF)).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// In place: each cell becomes min over cells q of (|p − q|² + f(q)) — the squared Euclidean
/// distance transform, one axis at a time.
fn edt(grid: &mut [f64], w: usize, h: usize) {
    let n = w.max(h);
    let (mut f, mut d, mut v, mut z) = (vec![0.0; n], vec![0.0; n], vec![0usize; n], vec![0.0; n + 1]);
    for x in 0..w {
        for y in 0..h {
            f[y] = grid[y * w + x];
        }
        edt_1d(&f[..h], &mut d[..h], &mut v, &mut z);
        for y in 0..h {
            grid[y * w + x] = d[y];
        }
    }
    for y in 0..h {
        f[..w].copy_from_slice(&grid[y * w..(y + 1) * w]);
        edt_1d(&f[..w], &mut d[..w], &mut v, &mut z);
        grid[y * w..(y + 1) * w].copy_from_slice(&d[..w]);
    }
}

/// The lower envelope of the parabolas (q, f(q)), sampled at every p.
fn edt_1d(f: &[f64], d: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    if n == 0 {
        return;
    }
    let mut k = 0;
    v[0] = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        let (qf, sq) = (q as f64, q as f64 * q as f64);
        // z[0] is −∞ and every f is finite, so this stops at k = 0 at the latest.
        let s = loop {
            let r = v[k];
            let rf = r as f64;
            let s = ((f[q] + sq) - (f[r] + rf * rf)) / (2.0 * (qf - rf));
            if s > z[k] {
                break s;
            }
            k -= 1;
        };
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    let mut k = 0;
    for (p, out) in d.iter_mut().enumerate() {
        let pf = p as f64;
        while z[k + 1] < pf {
            k += 1;
        }
        let r = v[k] as f64;
        *out = (pf - r) * (pf - r) + f[v[k]];
    }
}

/// A glyph PBF: one font stack, one range.
#[must_use]
pub fn encode(stack: &str, start: u32, glyphs: &[Glyph]) -> Vec<u8> {
    let mut fontstack = Vec::new();
    put_bytes(&mut fontstack, 1, stack.as_bytes());
    put_bytes(&mut fontstack, 2, range_label(start).as_bytes());
    for g in glyphs {
        let mut m = Vec::with_capacity(g.bitmap.len() + 24);
        let varint = |m: &mut Vec<u8>, field: u32, v: u64| {
            put_key(m, field, 0);
            put_varint(m, v);
        };
        varint(&mut m, 1, u64::from(g.id));
        if !g.bitmap.is_empty() {
            put_bytes(&mut m, 2, &g.bitmap);
        }
        varint(&mut m, 3, u64::from(g.width));
        varint(&mut m, 4, u64::from(g.height));
        // left and top are sint32: zigzag.
        varint(&mut m, 5, u64::from(((g.left << 1) ^ (g.left >> 31)) as u32));
        varint(&mut m, 6, u64::from(((g.top << 1) ^ (g.top >> 31)) as u32));
        varint(&mut m, 7, u64::from(g.advance));
        put_bytes(&mut fontstack, 3, &m);
    }
    let mut out = Vec::with_capacity(fontstack.len() + 8);
    put_bytes(&mut out, 1, &fontstack);
    out
}

/// Reads a glyph PBF's first font stack (a served range holds one).
///
/// # Errors
/// [`GlyphError::Decode`] when the bytes are not a glyph PBF: broken protobuf framing, text that
/// is not UTF-8, a glyph whose bitmap does not match its size, or no font stack at all.
pub fn decode(bytes: &[u8]) -> Result<GlyphRange, GlyphError> {
    let bad = |e: DecodeError| GlyphError::Decode(e.to_string());
    let mut r = Reader::new(bytes);
    while let Some((field, f)) = r.next("glyphs").map_err(bad)? {
        if let (1, Field::Bytes(stack)) = (field, f) {
            return decode_stack(stack);
        }
    }
    Err(GlyphError::Decode("no font stack".into()))
}

fn decode_stack(bytes: &[u8]) -> Result<GlyphRange, GlyphError> {
    let bad = |e: DecodeError| GlyphError::Decode(e.to_string());
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| GlyphError::Decode("text is not UTF-8".into()));
    let mut out = GlyphRange { stack: String::new(), range: String::new(), glyphs: Vec::new() };
    let mut r = Reader::new(bytes);
    while let Some((field, f)) = r.next("fontstack").map_err(bad)? {
        match (field, f) {
            (1, Field::Bytes(b)) => out.stack = text(b)?,
            (2, Field::Bytes(b)) => out.range = text(b)?,
            (3, Field::Bytes(b)) => out.glyphs.push(decode_glyph(b)?),
            _ => {}
        }
    }
    Ok(out)
}

fn decode_glyph(bytes: &[u8]) -> Result<Glyph, GlyphError> {
    let bad = |e: DecodeError| GlyphError::Decode(e.to_string());
    let unzig = |v: u64| ((v >> 1) as i32) ^ -((v & 1) as i32);
    let mut g = Glyph { id: 0, bitmap: Vec::new(), width: 0, height: 0, left: 0, top: 0, advance: 0 };
    let mut r = Reader::new(bytes);
    while let Some((field, f)) = r.next("glyph").map_err(bad)? {
        match (field, f) {
            (1, Field::Varint(v)) => g.id = v as u32,
            (2, Field::Bytes(b)) => g.bitmap = b.to_vec(),
            (3, Field::Varint(v)) => g.width = v as u32,
            (4, Field::Varint(v)) => g.height = v as u32,
            (5, Field::Varint(v)) => g.left = unzig(v),
            (6, Field::Varint(v)) => g.top = unzig(v),
            (7, Field::Varint(v)) => g.advance = v as u32,
            _ => {}
        }
    }
    let want = if g.width == 0 || g.height == 0 {
        0
    } else {
        (g.width as usize + 2 * BUFFER) * (g.height as usize + 2 * BUFFER)
    };
    if g.bitmap.len() != want {
        return Err(GlyphError::Decode(format!(
            "glyph {} is {}×{} but its bitmap has {} bytes, not {want}",
            g.id,
            g.width,
            g.height,
            g.bitmap.len()
        )));
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The oracle: squared distance from each cell to the nearest cell with f = 0.
    fn brute(f: &[f64], w: usize, h: usize) -> Vec<f64> {
        (0..w * h)
            .map(|p| {
                let (px, py) = ((p % w) as f64, (p / w) as f64);
                (0..w * h)
                    .filter(|&q| f[q] == 0.0)
                    .map(|q| {
                        let (qx, qy) = ((q % w) as f64, (q / w) as f64);
                        (px - qx).powi(2) + (py - qy).powi(2)
                    })
                    .fold(FAR, f64::min)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn the_distance_transform_matches_a_brute_force_scan(
            w in 1usize..24, h in 1usize..24, seed in proptest::collection::vec(any::<bool>(), 576)
        ) {
            let f: Vec<f64> = (0..w * h).map(|i| if seed[i] { 0.0 } else { FAR }).collect();
            let mut fast = f.clone();
            edt(&mut fast, w, h);
            let slow = brute(&f, w, h);
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                // Cells with no zero anywhere stay "far"; exact otherwise.
                prop_assert!((a - b).abs() < 1e-6 || (*a >= FAR && *b >= FAR), "cell {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn a_filled_square_reads_inside_outside_and_edge_as_maplibre_expects() {
        // A 10×10 square in a 22×22 raster: centre deep inside, corners far outside, and the
        // edge at about 191.
        let (w, h) = (22, 22);
        let cov: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if (6..16).contains(&x) && (6..16).contains(&y) { 1.0 } else { 0.0 }
            })
            .collect();
        let s = sdf(&cov, w, h);
        assert_eq!(s[11 * w + 11], 255, "the middle is 5 px inside: clamped to 255");
        assert_eq!(s[0], 0, "a corner is far outside");
        // The last inside pixel of a row is 1 px from the outside, the first outside pixel 1 px
        // from the inside: the outline lies between them.
        assert!(s[11 * w + 15] > 191 && s[11 * w + 16] < 191, "{} {}", s[11 * w + 15], s[11 * w + 16]);
    }

    #[test]
    fn ranges_round_trip_through_the_pbf() {
        let glyphs = vec![
            Glyph { id: 32, bitmap: vec![], width: 0, height: 0, left: 0, top: 0, advance: 6 },
            Glyph {
                id: 65,
                bitmap: (0..(7 * 8) as u8).collect(),
                width: 1,
                height: 2,
                left: -1,
                top: -21,
                advance: 14,
            },
        ];
        let bytes = encode("Noto Sans Regular", 0, &glyphs);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.stack, "Noto Sans Regular");
        assert_eq!(back.range, "0-255");
        assert_eq!(back.glyphs, glyphs);
        assert!(matches!(decode(&bytes[..bytes.len() - 3]), Err(GlyphError::Decode(_))));
    }
}
