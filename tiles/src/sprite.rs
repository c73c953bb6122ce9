//! The map's icons as a MapLibre sprite: one PNG sheet and a JSON index of where each icon lies,
//! at 1× and 2× pixel ratios. The icons are drawn here from vector shapes (a round badge and a
//! white pictogram), so the sheet needs no image files or tools, is sharp at either ratio, and
//! a deployment can restyle it by editing [`ICONS`].

use ab_glyph_rasterizer::{Point, Rasterizer, point};
use std::fmt::Write as _;

/// Icon size at 1×, in px (square).
pub const ICON_PX: u32 = 22;

/// A closed outline in icon units (0..22, y down); several outlines of one shape combine by
/// the non-zero rule, so a hole is an outline wound the other way.
enum Outline {
    /// A circle: centre x, y, radius.
    Circle(f32, f32, f32),
    /// A polygon; its winding decides whether it fills or cuts (clockwise fills).
    Poly(&'static [(f32, f32)]),
    /// A polygon whose edges are quadratic curves: on-curve, control, on-curve, control, …
    Curvy(&'static [(f32, f32)]),
}

use Outline::{Circle, Curvy, Poly};

/// One icon: a badge colour and the white pictogram's outlines.
struct Icon {
    name: &'static str,
    badge: [u8; 3],
    glyph: &'static [Outline],
}

const SHIELD: &[Outline] =
    &[Curvy(&[(11.0, 4.5), (13.8, 6.0), (16.5, 6.2), (16.6, 12.5), (11.0, 17.8), (5.4, 12.5), (5.5, 6.2), (8.2, 6.0)])];
const HOUSE: &[Outline] = &[
    Poly(&[(11.0, 4.5), (17.5, 10.5), (15.5, 10.5), (15.5, 17.0), (6.5, 17.0), (6.5, 10.5), (4.5, 10.5)]),
    // The door, wound the other way: a hole.
    Poly(&[(12.2, 17.0), (12.2, 12.8), (9.8, 12.8), (9.8, 17.0)]),
];
const CAR: &[Outline] = &[
    Poly(&[(5.0, 11.0), (7.0, 7.0), (15.0, 7.0), (17.0, 11.0), (17.0, 15.0), (5.0, 15.0)]),
    Poly(&[(8.0, 10.5), (14.0, 10.5), (13.2, 8.5), (8.8, 8.5)]),
    Circle(7.8, 15.2, 1.7),
    Circle(14.2, 15.2, 1.7),
];
const BANG: &[Outline] = &[Poly(&[(10.0, 4.5), (12.0, 4.5), (11.6, 13.0), (10.4, 13.0)]), Circle(11.0, 16.0, 1.4)];
const PERSON: &[Outline] = &[
    Circle(11.0, 7.5, 2.8),
    Curvy(&[(5.5, 17.0), (5.5, 11.0), (11.0, 11.0), (16.5, 11.0), (16.5, 17.0), (11.0, 17.0)]),
];
const CROSS: &[Outline] = &[Poly(&[
    (9.5, 5.0),
    (12.5, 5.0),
    (12.5, 9.5),
    (17.0, 9.5),
    (17.0, 12.5),
    (12.5, 12.5),
    (12.5, 17.0),
    (9.5, 17.0),
    (9.5, 12.5),
    (5.0, 12.5),
    (5.0, 9.5),
    (9.5, 9.5),
])];
const BOOK: &[Outline] = &[
    Poly(&[(4.5, 7.0), (10.5, 8.0), (10.5, 16.5), (4.5, 15.5)]),
    Poly(&[(11.5, 8.0), (17.5, 7.0), (17.5, 15.5), (11.5, 16.5)]),
];
const FLAME: &[Outline] = &[Curvy(&[
    (11.0, 4.0),
    (17.0, 10.0),
    (15.5, 14.5),
    (13.5, 18.0),
    (11.0, 18.0),
    (8.5, 18.0),
    (6.5, 14.5),
    (5.5, 10.0),
    (11.0, 4.0),
])];
const DOT: &[Outline] = &[Circle(11.0, 11.0, 3.0)];

/// Every icon in the sheet, in order. Names are what styles use in `icon-image`.
const ICONS: &[Icon] = &[
    Icon { name: "post", badge: [0x1f, 0x6f, 0xd1], glyph: SHIELD },
    Icon { name: "responder", badge: [0x1e, 0x9e, 0x5a], glyph: CAR },
    Icon { name: "rental_housing", badge: [0x7c, 0x5c, 0xd6], glyph: HOUSE },
    Icon { name: "incident", badge: [0xe0, 0x3a, 0x3c], glyph: BANG },
    Icon { name: "key_personnel", badge: [0xd9, 0x46, 0xa6], glyph: PERSON },
    Icon { name: "poi-police", badge: [0x1f, 0x4e, 0x9a], glyph: SHIELD },
    Icon { name: "poi-fire_station", badge: [0xc2, 0x41, 0x1c], glyph: FLAME },
    Icon { name: "poi-hospital", badge: [0xb9, 0x1c, 0x1c], glyph: CROSS },
    Icon { name: "poi-clinic", badge: [0xb9, 0x1c, 0x1c], glyph: CROSS },
    Icon { name: "poi-school", badge: [0x8a, 0x6d, 0x1f], glyph: BOOK },
    Icon { name: "poi-kindergarten", badge: [0x8a, 0x6d, 0x1f], glyph: BOOK },
    Icon { name: "poi-university", badge: [0x8a, 0x6d, 0x1f], glyph: BOOK },
    Icon { name: "poi-college", badge: [0x8a, 0x6d, 0x1f], glyph: BOOK },
    Icon { name: "poi", badge: [0x47, 0x55, 0x69], glyph: DOT },
];

/// A sprite sheet at one pixel ratio.
pub struct Sprite {
    /// The sheet as PNG.
    pub png: Vec<u8>,
    /// `{"name": {"x":…, "y":…, "width":…, "height":…, "pixelRatio":…}, …}`.
    pub json: String,
}

/// The icon names in the sheet.
pub fn icon_names() -> impl Iterator<Item = &'static str> {
    ICONS.iter().map(|i| i.name)
}

/// Draws the sheet at pixel ratio 1 or 2 (icons in one row).
#[must_use]
pub fn sheet(ratio: u32) -> Sprite {
    let size = ICON_PX * ratio;
    let (w, h) = (size * ICONS.len() as u32, size);
    let mut rgba = vec![0u8; (w * h * 4) as usize];
    let mut json = String::from("{");
    for (n, icon) in ICONS.iter().enumerate() {
        let x0 = n as u32 * size;
        let badge = coverage(&[Circle(11.0, 11.0, 10.5)], ratio);
        let glyph = coverage(icon.glyph, ratio);
        for y in 0..size {
            for x in 0..size {
                let i = (y * size + x) as usize;
                // A white pictogram over the badge: both coverages composited as alpha.
                let (b, g) = (badge[i], glyph[i].min(badge[i]));
                let rgb = icon.badge.map(|c| f32::from(c) * (1.0 - g) + 255.0 * g);
                let px = ((y * w + x0 + x) * 4) as usize;
                for (k, c) in rgb.iter().enumerate() {
                    rgba[px + k] = c.round() as u8;
                }
                rgba[px + 3] = (b * 255.0).round() as u8;
            }
        }
        if n > 0 {
            json.push(',');
        }
        let _ =
            write!(json, r#""{}":{{"x":{x0},"y":0,"width":{size},"height":{size},"pixelRatio":{ratio}}}"#, icon.name);
    }
    json.push('}');
    Sprite { png: encode_png(&rgba, w, h), json }
}

/// Coverage (0..1) of a shape's outlines on a `22·ratio` square raster.
fn coverage(outlines: &[Outline], ratio: u32) -> Vec<f32> {
    let size = (ICON_PX * ratio) as usize;
    let s = ratio as f32;
    let p = |(x, y): (f32, f32)| point(x * s, y * s);
    let mut r = Rasterizer::new(size, size);
    for o in outlines {
        match o {
            Circle(cx, cy, rad) => {
                // Four cubic quarter arcs (control distance 0.5523·r), clockwise on screen.
                let k = 0.552_284_8 * rad;
                let (cx, cy, rad) = (*cx, *cy, *rad);
                let arcs = [
                    ((cx, cy - rad), (cx + k, cy - rad), (cx + rad, cy - k), (cx + rad, cy)),
                    ((cx + rad, cy), (cx + rad, cy + k), (cx + k, cy + rad), (cx, cy + rad)),
                    ((cx, cy + rad), (cx - k, cy + rad), (cx - rad, cy + k), (cx - rad, cy)),
                    ((cx - rad, cy), (cx - rad, cy - k), (cx - k, cy - rad), (cx, cy - rad)),
                ];
                for (a, b, c, d) in arcs {
                    r.draw_cubic(p(a), p(b), p(c), p(d));
                }
            }
            Poly(pts) => {
                for (i, a) in pts.iter().enumerate() {
                    r.draw_line(p(*a), p(pts[(i + 1) % pts.len()]));
                }
            }
            Curvy(pts) => {
                // Pairs of (on-curve, control); the last control leads back to the start.
                let on = |i: usize| p(pts[(2 * i) % pts.len()]);
                for i in 0..pts.len() / 2 {
                    let (a, c, b): (Point, Point, Point) = (on(i), p(pts[2 * i + 1]), on(i + 1));
                    r.draw_quad(a, c, b);
                }
            }
        }
    }
    let mut out = vec![0f32; size * size];
    r.for_each_pixel_2d(|x, y, a| out[y as usize * size + x as usize] = a.clamp(0.0, 1.0));
    out
}

fn encode_png(rgba: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    // Writing to a Vec cannot fail, and the header matches the buffer by construction.
    #[allow(clippy::unwrap_used, reason = "in-memory PNG of a buffer sized for it")]
    {
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(rgba).unwrap();
        writer.finish().unwrap();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        (info.width, info.height, buf)
    }

    #[test]
    fn every_icon_is_a_round_badge_with_a_white_pictogram_where_the_index_says() {
        for ratio in [1, 2] {
            let sprite = sheet(ratio);
            let (w, h, px) = decode_png(&sprite.png);
            let index: serde_json::Value = serde_json::from_str(&sprite.json).unwrap();
            let index = index.as_object().unwrap();
            assert_eq!(index.len(), ICONS.len());
            assert_eq!(h, ICON_PX * ratio);
            for name in icon_names() {
                let e = &index[name];
                let (x, y, s) = (
                    e["x"].as_u64().unwrap() as u32,
                    e["y"].as_u64().unwrap() as u32,
                    e["width"].as_u64().unwrap() as u32,
                );
                assert_eq!(e["pixelRatio"], ratio);
                assert!(x + s <= w && y + s <= h, "{name} lies inside the sheet");
                let at = |dx: u32, dy: u32| &px[(((y + dy) * w + x + dx) * 4) as usize..][..4];
                assert_eq!(at(0, 0)[3], 0, "{name}: the corner outside the badge is transparent");
                assert_eq!(at(s / 2, 2 * ratio)[3], 255, "{name}: the badge near its top edge is opaque");
                // Somewhere inside, the pictogram is (nearly) white.
                let white = (s / 4..3 * s / 4)
                    .flat_map(|dy| (s / 4..3 * s / 4).map(move |dx| (dx, dy)))
                    .any(|(dx, dy)| at(dx, dy)[..3].iter().all(|c| *c > 240));
                assert!(white, "{name}: no white pictogram at ratio {ratio}");
            }
        }
    }

    #[test]
    fn a_hole_wound_the_other_way_is_cut_out() {
        // The house's door is transparent to the badge colour: not white.
        let cov = coverage(HOUSE, 1);
        let door = cov[15 * ICON_PX as usize + 11];
        let wall = cov[15 * ICON_PX as usize + 8];
        assert!(door < 0.1 && wall > 0.9, "door {door}, wall {wall}");
    }
}
