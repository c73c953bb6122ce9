//! The offline basemap: vector tiles read from an MBTiles file (built by tilemaker from
//! OpenStreetMap with `tiles/basemap/`), plus the glyph ranges and sprite its labels and icons
//! need — everything a command centre's closed network needs to draw a map, from this server.
//!
//! The demo ships one for Shenzhen's Longgang (龙岗) extract, compiled into the binary; a
//! deployment builds its own for its city (`tiles/basemap/README.md`) and passes `--basemap`.
//! Glyphs: Latin, punctuation and symbol ranges of Noto Sans CJK SC are compiled in; Chinese
//! characters are drawn by the browser from a local CJK font (MapLibre's
//! `localIdeographFontFamily`), unless `--glyphs DIR` supplies ranges built with
//! `safegrid glyphs` — then every range comes from the server.

use safegrid_tiles::{glyphs, sprite};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The font stack compiled in, as styles name it.
pub const FONT_STACK: &str = "Noto Sans CJK SC Regular";

/// The compiled-in glyph ranges (built with `safegrid glyphs` from Noto Sans CJK SC, OFL 1.1;
/// see `web-map/fonts/README.md`): Latin with pinyin tone marks, punctuation, letter-like
/// symbols (℃, №), arrows, maths and geometric shapes.
const EMBEDDED_GLYPHS: &[(u32, &[u8])] = &[
    (0, include_bytes!("../../web-map/fonts/Noto Sans CJK SC Regular/0-255.pbf")),
    (256, include_bytes!("../../web-map/fonts/Noto Sans CJK SC Regular/256-511.pbf")),
    (8192, include_bytes!("../../web-map/fonts/Noto Sans CJK SC Regular/8192-8447.pbf")),
    (8448, include_bytes!("../../web-map/fonts/Noto Sans CJK SC Regular/8448-8703.pbf")),
    (8704, include_bytes!("../../web-map/fonts/Noto Sans CJK SC Regular/8704-8959.pbf")),
    (9472, include_bytes!("../../web-map/fonts/Noto Sans CJK SC Regular/9472-9727.pbf")),
];

/// The demo's basemap: OpenStreetMap around Longgang, Shenzhen (ODbL; `tiles/basemap/NOTICE.md`).
const DEMO_MBTILES: &[u8] = include_bytes!("../../tiles/basemap/longgang.mbtiles");

/// Why a basemap cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BasemapError {
    /// The file cannot be opened or read as MBTiles.
    #[error("basemap {path}: {reason}")]
    Open {
        /// The MBTiles file.
        path: PathBuf,
        /// Why it cannot be opened or read (the SQLite or I/O error).
        reason: String,
    },
    /// The MBTiles holds raster tiles, or says nothing of its format.
    #[error("basemap {path}: format is {format:?}; safegrid serves vector (pbf) MBTiles")]
    NotVector {
        /// The MBTiles file.
        path: PathBuf,
        /// The `format` its metadata names (empty when it names none).
        format: String,
    },
    /// A glyph directory that cannot serve the style's font.
    #[error("glyph directory {dir}: {reason}")]
    Glyphs {
        /// The glyph directory.
        dir: PathBuf,
        /// What it lacks.
        reason: String,
    },
}

/// What the MBTiles `metadata` table says, as TileJSON and the style need it.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// Tileset name.
    pub name: String,
    /// Attribution text (OpenStreetMap's, for an OSM basemap).
    pub attribution: String,
    /// Zoom range of the stored tiles; MapLibre over-zooms beyond the maximum.
    pub minzoom: u8,
    /// See `minzoom`.
    pub maxzoom: u8,
    /// West, south, east, north; `None` when the file does not say (or says 0,0,0,0).
    pub bounds: Option<[f64; 4]>,
    /// The layers and their fields (TileJSON `vector_layers`).
    pub vector_layers: Value,
}

/// A read-only MBTiles file.
pub struct MbTiles {
    pool: SqlitePool,
    /// What it holds.
    pub metadata: Metadata,
    path: PathBuf,
}

impl MbTiles {
    /// Opens a file read-only and reads its metadata.
    ///
    /// # Errors
    /// [`BasemapError::Open`] when the file is missing or is not an MBTiles SQLite database;
    /// [`BasemapError::NotVector`] when its metadata's `format` is not `pbf`.
    pub async fn open(path: &Path) -> Result<Self, BasemapError> {
        let err = |e: &dyn std::fmt::Display| BasemapError::Open { path: path.to_owned(), reason: e.to_string() };
        if !path.is_file() {
            return Err(err(&"no such file"));
        }
        let opts = SqliteConnectOptions::new().filename(path).read_only(true).immutable(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await.map_err(|e| err(&e))?;
        let rows = sqlx::query("SELECT name, value FROM metadata").fetch_all(&pool).await.map_err(|e| err(&e))?;
        let get = |key: &str| {
            rows.iter().find(|r| r.get::<String, _>(0) == key).map(|r| r.get::<String, _>(1)).unwrap_or_default()
        };
        let format = get("format");
        if format != "pbf" {
            return Err(BasemapError::NotVector { path: path.to_owned(), format });
        }
        let zoom = |key: &str, default: u8| get(key).parse().unwrap_or(default);
        let bounds = parse_bounds(&get("bounds"));
        let json: Value = serde_json::from_str(&get("json")).unwrap_or(Value::Null);
        let metadata = Metadata {
            name: get("name"),
            attribution: get("attribution"),
            minzoom: zoom("minzoom", 0),
            maxzoom: zoom("maxzoom", 14),
            bounds,
            vector_layers: json.get("vector_layers").cloned().unwrap_or_else(|| Value::Array(vec![])),
        };
        Ok(Self { pool, metadata, path: path.to_owned() })
    }

    /// The bytes of tile z/x/y as stored (tilemaker gzips them; [`is_gzip`] tells); `None`
    /// where there is none.
    ///
    /// # Errors
    /// [`BasemapError::Open`] when the query fails.
    pub async fn tile(&self, z: u8, x: u32, y: u32) -> Result<Option<Vec<u8>>, BasemapError> {
        // MBTiles rows are TMS: y counts from the south.
        let tms_y = (1u32 << z) - 1 - y;
        sqlx::query_scalar("SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?")
            .bind(i64::from(z))
            .bind(i64::from(x))
            .bind(i64::from(tms_y))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| BasemapError::Open { path: self.path.clone(), reason: e.to_string() })
    }
}

/// A named street (or place) of the basemap, for the wall's search.
#[derive(Debug, Clone)]
pub struct Street {
    /// Its name as OSM has it (Chinese), and the English one when there is one.
    pub name: String,
    /// `name:en`.
    pub name_en: Option<String>,
    /// A point on it (the middle vertex of its first piece).
    pub at: safegrid_geodata::LonLat,
}

/// The zoom whose tiles the street names are read from: tilemaker's deepest, where every
/// labelled road is.
const STREET_ZOOM: i64 = 14;

impl MbTiles {
    /// The named roads (`road_name`) and places (`place`) of the z14 tiles, each name once.
    /// The tiles are read here and decoded on a blocking thread: a city's basemap holds
    /// thousands of them.
    ///
    /// # Errors
    /// [`BasemapError::Open`] when the tiles cannot be read. A tile that does not decode is
    /// skipped (and logged): the search loses its names, the map shows what it can.
    pub async fn streets(&self) -> Result<Vec<Street>, BasemapError> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT tile_column, tile_row, tile_data FROM tiles WHERE zoom_level = ?")
            .bind(STREET_ZOOM)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| BasemapError::Open { path: self.path.clone(), reason: e.to_string() })?;
        let tiles: Vec<(i64, i64, Vec<u8>)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        tokio::task::spawn_blocking(move || decode_streets(tiles))
            .await
            .map_err(|e| BasemapError::Open { path: self.path.clone(), reason: e.to_string() })
    }
}

/// The named roads and places of z14 tiles given as (column, TMS row, bytes).
fn decode_streets(tiles: Vec<(i64, i64, Vec<u8>)>) -> Vec<Street> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (x, tms_y, data) in tiles {
        let raw = if is_gzip(&data) {
            let mut raw = Vec::new();
            if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut raw).is_err() {
                continue;
            }
            raw
        } else {
            data
        };
        let Ok(layers) = safegrid_tiles::mvt::decode(&raw) else {
            tracing::warn!(x, tms_y, "a basemap tile does not decode; its street names are not searchable");
            continue;
        };
        let (Ok(x), Ok(y)) = (u32::try_from(x), u32::try_from((1_i64 << STREET_ZOOM) - 1 - tms_y)) else {
            continue;
        };
        let Ok(tile) = safegrid_tiles::TileId::new(STREET_ZOOM as u8, x, y) else { continue };
        let b = tile.bounds();
        for layer in layers.iter().filter(|l| l.name == "road_name" || l.name == "place") {
            let extent = f64::from(layer.extent.max(1));
            for f in &layer.features {
                let text = |key: &str| {
                    f.properties.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
                        safegrid_tiles::mvt::Value::String(s) if !s.is_empty() => Some(s.clone()),
                        _ => None,
                    })
                };
                let Some(name) = text("name") else { continue };
                let vertex = match &f.geometry {
                    safegrid_tiles::mvt::Geometry::Points(p) => p.first().copied(),
                    safegrid_tiles::mvt::Geometry::Lines(l) => l.first().and_then(|l| l.get(l.len() / 2)).copied(),
                    safegrid_tiles::mvt::Geometry::Polygons(_) => None,
                };
                let Some([px, py]) = vertex else { continue };
                let lon = b.west + (b.east - b.west) * f64::from(px) / extent;
                let lat = b.north - (b.north - b.south) * f64::from(py) / extent;
                let Ok(at) = safegrid_geodata::LonLat::new(lon, lat) else { continue };
                if seen.insert(name.clone()) {
                    out.push(Street { name, name_en: text("name_en"), at });
                }
            }
        }
    }
    out
}

/// Whether stored tile bytes are gzipped (checked per tile: a file may mix both).
#[must_use]
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

fn parse_bounds(text: &str) -> Option<[f64; 4]> {
    let v: Vec<f64> = text.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let b: [f64; 4] = v.try_into().ok()?;
    (b[0] < b[2] && b[1] < b[3]).then_some(b)
}

/// Tiles (if any), glyphs and sprites.
pub struct Basemap {
    /// The vector tiles; `None` draws the wall on a plain background.
    pub tiles: Option<MbTiles>,
    /// A directory of `{stack}/{start}-{end}.pbf` built with `safegrid glyphs`, searched before
    /// the compiled-in ranges. With it, the wall asks the server for CJK glyphs too.
    pub glyph_dir: Option<PathBuf>,
    /// The basemap's named streets and places (the wall's search), read on the first search
    /// rather than at start-up.
    streets: tokio::sync::OnceCell<Vec<Street>>,
}

impl Basemap {
    /// No tiles: glyphs and sprites only.
    #[must_use]
    pub fn none() -> Self {
        Self { tiles: None, glyph_dir: None, streets: tokio::sync::OnceCell::new() }
    }

    /// The basemap of an MBTiles file.
    ///
    /// # Errors
    /// As [`MbTiles::open`].
    pub async fn open(path: &Path) -> Result<Self, BasemapError> {
        Ok(Self { tiles: Some(MbTiles::open(path).await?), glyph_dir: None, streets: tokio::sync::OnceCell::new() })
    }

    /// The named streets and places of the tiles (none without tiles), read once, on first use.
    /// A basemap whose tiles cannot be read searches no streets, and says so in the log.
    pub async fn streets(&self) -> &[Street] {
        self.streets
            .get_or_init(|| async {
                let Some(tiles) = &self.tiles else { return Vec::new() };
                match tiles.streets().await {
                    Ok(streets) => {
                        tracing::info!(streets = streets.len(), "basemap street names read for the search");
                        streets
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "basemap street names unreadable: the search finds no street");
                        Vec::new()
                    }
                }
            })
            .await
    }

    /// The demo's compiled-in Longgang basemap (written to the temporary directory, since SQLite
    /// reads files).
    ///
    /// # Errors
    /// [`BasemapError::Open`] when the file cannot be written to the temporary directory or
    /// opened there.
    pub async fn demo() -> Result<Self, BasemapError> {
        let hash = crate::fnv::fnv(DEMO_MBTILES.iter().copied());
        let path = std::env::temp_dir().join(format!("safegrid-basemap-{hash:016x}.mbtiles"));
        // The directory is shared: serve what was compiled in, not whatever lies there.
        let current = std::fs::read(&path).is_ok_and(|b| b == DEMO_MBTILES);
        if !current {
            // Written beside and renamed, so a concurrent start never opens half a file; the
            // part file is created new, never written through a file or link already there.
            let tmp = path.with_extension(format!("{}.part", std::process::id()));
            let io = |e: std::io::Error| BasemapError::Open { path: path.clone(), reason: e.to_string() };
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io)?;
            std::io::Write::write_all(&mut f, DEMO_MBTILES).map_err(io)?;
            drop(f);
            std::fs::rename(&tmp, &path).map_err(io)?;
        }
        Self::open(&path).await
    }

    /// Adds a glyph directory. It must hold the style's font stack with the Chinese ranges:
    /// with it the wall stops drawing Chinese from its local font, so a directory built under
    /// another name, or with only some ranges, would leave Chinese labels blank.
    ///
    /// # Errors
    /// [`BasemapError::Glyphs`] when `dir` is not a directory or lacks the style's font stack
    /// with the first CJK range.
    pub fn with_glyph_dir(mut self, dir: PathBuf) -> Result<Self, BasemapError> {
        if !dir.is_dir() {
            return Err(BasemapError::Glyphs { dir, reason: "not a directory".into() });
        }
        let probe = dir.join(FONT_STACK).join(format!("{}.pbf", glyphs::range_label(0x4e00)));
        if !probe.is_file() {
            let reason = format!(
                "no {} (build every range with `safegrid glyphs --name \"{FONT_STACK}\" --out DIR`, without --ranges)",
                probe.display()
            );
            return Err(BasemapError::Glyphs { dir, reason });
        }
        self.glyph_dir = Some(dir);
        Ok(self)
    }

    /// The glyph PBF for `stacks` (MapLibre joins a layer's `text-font` list with commas) and
    /// the range starting at `start`: the first stack found in the glyph directory, else the
    /// compiled-in font. A range nobody has is an empty, valid PBF — its characters are simply
    /// not drawn, which is quieter than the error a 404 raises in every viewer.
    pub fn glyph_range(&self, stacks: &str, start: u32) -> Vec<u8> {
        let label = glyphs::range_label(start);
        if let Some(dir) = &self.glyph_dir {
            for stack in stacks.split(',').map(str::trim) {
                // The stack names a directory: no separators or parent steps from a URL.
                if stack.is_empty() || stack.contains(['/', '\\']) || stack.starts_with('.') {
                    continue;
                }
                if let Ok(bytes) = std::fs::read(dir.join(stack).join(format!("{label}.pbf"))) {
                    return bytes;
                }
            }
        }
        match EMBEDDED_GLYPHS.iter().find(|(s, _)| *s == start) {
            Some((_, bytes)) => bytes.to_vec(),
            None => glyphs::encode(stacks.split(',').next().unwrap_or(FONT_STACK), start, &[]),
        }
    }

    /// Whether Chinese glyphs come from the server (a glyph directory) rather than the
    /// browser's local CJK font.
    #[must_use]
    pub fn server_ideographs(&self) -> bool {
        self.glyph_dir.is_some()
    }
}

/// The sprite sheet at ratio 1 or 2, drawn once.
pub fn sprite(ratio: u32) -> &'static sprite::Sprite {
    static ONE: OnceLock<sprite::Sprite> = OnceLock::new();
    static TWO: OnceLock<sprite::Sprite> = OnceLock::new();
    if ratio >= 2 { TWO.get_or_init(|| sprite::sheet(2)) } else { ONE.get_or_init(|| sprite::sheet(1)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_glyphs_hold_latin_digits_and_pinyin() {
        let b = Basemap::none();
        let latin = glyphs::decode(&b.glyph_range(FONT_STACK, 0)).unwrap();
        assert_eq!(latin.range, "0-255");
        let has = |r: &glyphs::GlyphRange, c: char| r.glyphs.iter().find(|g| g.id == u32::from(c)).cloned();
        for c in "0123456789ABCxyz-()".chars() {
            let g = has(&latin, c).unwrap_or_else(|| panic!("{c} missing"));
            assert!(g.width > 0 && g.advance > 0 && !g.bitmap.is_empty(), "{c}: {g:?}");
            // The outline is in there: some pixels inside (≥ 192), some outside.
            assert!(g.bitmap.iter().any(|v| *v >= 192) && g.bitmap.iter().any(|v| *v < 100), "{c}");
        }
        let space = has(&latin, ' ').unwrap();
        assert!(space.advance > 0 && space.bitmap.is_empty());
        let pinyin = glyphs::decode(&b.glyph_range(FONT_STACK, 256)).unwrap();
        assert!(has(&pinyin, 'ǎ').is_some() && has(&pinyin, 'ā').is_some());
        // A range nobody has is empty but valid.
        let none = glyphs::decode(&b.glyph_range("Nobody Regular", 0x4e00)).unwrap();
        assert!(none.glyphs.is_empty());
        assert_eq!(none.range, "19968-20223");
    }

    #[test]
    fn a_glyph_directory_must_hold_the_chinese_ranges_of_the_style_font() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Basemap::none().with_glyph_dir(dir.path().join("nope")), Err(BasemapError::Glyphs { .. })));
        // Built under another name, or without the CJK ranges: refused, with what to do.
        let err = Basemap::none().with_glyph_dir(dir.path().to_owned()).err().unwrap().to_string();
        assert!(err.contains("safegrid glyphs"), "{err}");
        let stack = dir.path().join(FONT_STACK);
        std::fs::create_dir_all(&stack).unwrap();
        let han = glyphs::encode(FONT_STACK, 0x4e00, &[]);
        std::fs::write(stack.join("19968-20223.pbf"), &han).unwrap();
        let b = Basemap::none().with_glyph_dir(dir.path().to_owned()).unwrap();
        assert!(b.server_ideographs());
        assert_eq!(b.glyph_range(FONT_STACK, 0x4e00), han);
        // Ranges the directory lacks still come from the compiled-in font.
        assert_eq!(b.glyph_range(FONT_STACK, 0), EMBEDDED_GLYPHS[0].1);
        // A stack name cannot leave the directory.
        assert!(glyphs::decode(&b.glyph_range("../Noto Sans CJK SC Regular", 0x4e00)).unwrap().glyphs.is_empty());
    }

    #[tokio::test]
    async fn the_demo_basemap_opens_as_vector_tiles_with_osm_attribution() {
        let b = Basemap::demo().await.unwrap();
        let t = b.tiles.as_ref().unwrap();
        assert!(t.metadata.attribution.contains("OpenStreetMap"));
        let [w, s, e, n] = t.metadata.bounds.unwrap();
        assert!(w < 114.2 && e > 114.2 && s < 22.69 && n > 22.69, "Longgang lies inside");
        // The z14 tile over 大运 holds roads.
        let tile = safegrid_tiles::TileId::containing(114.21, 22.69, 14);
        let bytes = t.tile(tile.z, tile.x, tile.y).await.unwrap().expect("a z14 tile over Longgang");
        assert!(is_gzip(&bytes), "tilemaker gzips its tiles");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw).unwrap();
        let layers = safegrid_tiles::mvt::decode(&raw).unwrap();
        assert!(
            layers.iter().any(|l| l.name == "road" && !l.features.is_empty()),
            "{:?}",
            layers.iter().map(|l| &l.name).collect::<Vec<_>>()
        );
        assert!(t.tile(14, 0, 0).await.unwrap().is_none());
    }
}
