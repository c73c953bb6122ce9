//! The audit report as one self-contained HTML page: a supervisor opens it from a USB stick or
//! an e-mail, with no server and no network. Everything is inline — styles, the map (SVG, grids
//! coloured by their worst finding, findings drawn over them and numbered), the charts (SVG
//! bars) and a few lines of script to zoom the map onto a finding chosen in the table.
//!
//! Headings are bilingual (中文 / English); messages are the report's own English sentences.

use super::Report;
use geo::{BoundingRect, MultiPolygon, Simplify};
use safegrid_geodata::audit::input::AuditLayer;
use safegrid_geodata::audit::{Finding, Kind, Severity};
use std::fmt::Write;

/// The Chinese name of a kind, for headings and the legend.
fn zh(kind: Kind) -> &'static str {
    match kind {
        Kind::InvalidGeometry => "几何无效",
        Kind::Winding => "环方向不规范",
        Kind::Gap => "缝隙（未覆盖）",
        Kind::Overlap => "重叠",
        Kind::GapSliver => "细小缝隙",
        Kind::OverlapSliver => "细小重叠",
        Kind::OutsideTerritory => "超出辖区",
        Kind::OutsideParent => "超出上级单元",
        Kind::CodeMissing => "缺少编码",
        Kind::CodeMalformed => "编码格式错误",
        Kind::CodeDuplicate => "编码重复",
        Kind::CodeOrphan => "上级单元缺失",
        Kind::Unstaffed => "未配网格员",
        Kind::FewHouseholds => "户数低于标准",
        Kind::ManyHouseholds => "户数高于标准",
        Kind::ManyPeople => "人口高于标准",
        Kind::Unpatrolled => "近期无巡逻",
        Kind::LowPatrolCoverage => "巡逻覆盖率低",
        Kind::BoundaryMismatch => "两网边界不一致",
        Kind::CoverageMismatch => "两网覆盖范围不一致",
        Kind::Unreachable => "超出响应时间",
        _ => "其他",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Equirectangular projection of the layer's box onto a 1000-unit-wide SVG, north up.
struct Frame {
    west: f64,
    north: f64,
    k_x: f64,
    k_y: f64,
    height: f64,
    eps_deg: f64,
}

const WIDTH: f64 = 1000.0;

impl Frame {
    fn new(b: [f64; 4]) -> Self {
        let [w, s, e, n] = b;
        let cos = f64::midpoint(s, n).to_radians().cos();
        let span_x = ((e - w) * cos).max(1e-9);
        let k = WIDTH / span_x;
        let height = ((n - s) * k).max(1.0);
        Self { west: w, north: n, k_x: k * cos, k_y: k, height, eps_deg: 0.6 / k }
    }

    fn xy(&self, lon: f64, lat: f64) -> (f64, f64) {
        ((lon - self.west) * self.k_x, (self.north - lat) * self.k_y)
    }

    /// An SVG path for a multipolygon, simplified to about half a unit (invisible at 1×).
    fn path(&self, mp: &MultiPolygon<f64>) -> String {
        let simple = mp.simplify(self.eps_deg);
        let mut d = String::new();
        for (orig, poly) in mp.0.iter().zip(&simple.0) {
            let use_poly = if poly.exterior().0.len() >= 4 { poly } else { orig };
            for ring in std::iter::once(use_poly.exterior()).chain(use_poly.interiors()) {
                for (i, c) in ring.0.iter().enumerate() {
                    let (x, y) = self.xy(c.x, c.y);
                    let _ = write!(d, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
                }
                d.push('Z');
            }
        }
        d
    }
}

fn colour(s: Option<Severity>) -> &'static str {
    match s {
        None => "#2e7d32",
        Some(Severity::Warning) => "#f9a825",
        Some(Severity::Error) => "#c62828",
    }
}

/// Renders the report.
#[must_use]
pub fn render(r: &Report, layer: &AuditLayer) -> String {
    let findings: Vec<&Finding> = r.findings().collect();
    let status = r.status_by_grid();
    let bounds = layer
        .features
        .iter()
        .filter_map(|f| f.geometry.as_ref().and_then(BoundingRect::bounding_rect))
        .fold(None::<[f64; 4]>, |acc, b| {
            let n = [b.min().x, b.min().y, b.max().x, b.max().y];
            Some(acc.map_or(n, |a| [a[0].min(n[0]), a[1].min(n[1]), a[2].max(n[2]), a[3].max(n[3])]))
        })
        .unwrap_or([0.0, 0.0, 1.0, 1.0]);
    // Findings beyond the layer (a territory's gap, say) must be on the map too.
    let bounds = findings
        .iter()
        .filter_map(|f| f.bbox)
        .fold(bounds, |a, n| [a[0].min(n[0]), a[1].min(n[1]), a[2].max(n[2]), a[3].max(n[3])]);
    let frame = Frame::new(bounds);

    let mut h = String::with_capacity(1 << 20);
    let verdict = if r.passed { ("通过 PASSED", "pass") } else { ("未通过 FAILED", "fail") };
    let _ = write!(
        h,
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>网格审计 Grid audit — {name}</title><style>{CSS}</style></head><body>
<header><h1>网格覆盖审计 Grid coverage audit</h1><p class="verdict {vc}">{vt}</p>
<p>图层 Layer <b>{name}</b> · {features} features · {grids} grids, {parents} parent units · CRS {crs} · 生成 generated {at}</p></header>"#,
        name = esc(&r.layer.name),
        vc = verdict.1,
        vt = verdict.0,
        features = r.layer.features,
        grids = r.geometry.grids,
        parents = r.geometry.parents,
        crs = r.layer.crs,
        at = esc(&r.generated_at),
    );

    // Key figures.
    let covered =
        if r.geometry.territory_m2 > 0.0 { r.geometry.covered_m2 / r.geometry.territory_m2 * 100.0 } else { 0.0 };
    let territory = match &r.geometry.territory {
        safegrid_geodata::audit::geometry::TerritorySource::Given => "given 指定".to_owned(),
        safegrid_geodata::audit::geometry::TerritorySource::TopLevelUnits { count } => {
            format!("{count} top-level units 顶层单元")
        }
        safegrid_geodata::audit::geometry::TerritorySource::LayerOutline => {
            "outline of the grids 网格外轮廓".to_owned()
        }
    };
    let _ = write!(
        h,
        r#"<section class="cards"><div><b>{errors}</b>errors 错误</div><div><b>{warnings}</b>warnings 警告</div><div><b>{km2:.2} km²</b>territory 辖区 ({territory})</div><div><b>{covered:.3}%</b>covered 覆盖</div><div><b>{gaps}</b>gap m² 缝隙面积</div><div><b>{overlaps}</b>overlap m² 重叠面积</div></section>"#,
        errors = r.summary.errors,
        warnings = r.summary.warnings,
        km2 = r.geometry.territory_m2 / 1e6,
        gaps = format_m2(r.summary.area_m2.get("gap").copied().unwrap_or(0.0)),
        overlaps = format_m2(r.summary.area_m2.get("overlap").copied().unwrap_or(0.0)),
    );

    // Findings per kind.
    h.push_str(r#"<section><h2>问题分类 Findings by kind</h2><svg class="bars" viewBox="0 0 1000 "#);
    let kinds: Vec<(Kind, usize)> =
        Kind::ALL.iter().map(|k| (*k, r.summary.counts.get(k.name()).copied().unwrap_or(0))).collect();
    let max = kinds.iter().map(|k| k.1).max().unwrap_or(0).max(1);
    let _ = write!(h, r#"{}">"#, kinds.len() * 22);
    for (i, (k, n)) in kinds.iter().enumerate() {
        let y = i * 22;
        let w = (*n as f64 / max as f64) * 600.0;
        let c = colour((*n > 0).then(|| k.severity()));
        let _ = write!(
            h,
            r#"<text x="0" y="{ty}">{zh} {en}</text><rect x="300" y="{y}" width="{w:.1}" height="16" fill="{c}"/><text x="{tx:.1}" y="{ty}">{n}</text>"#,
            ty = y + 13,
            zh = zh(*k),
            en = k.name(),
            tx = 306.0 + w,
        );
    }
    h.push_str("</svg></section>");

    // The map.
    let _ = write!(
        h,
        r#"<section><h2>地图 Map</h2><p class="legend"><i style="background:{ok}"></i>no finding 无问题 <i style="background:{warn}"></i>warning 警告 <i style="background:{err}"></i>error 错误 <i class="gap"></i>gap 缝隙 <i class="ovl"></i>overlap / outside 重叠/超出 — scroll to zoom, drag to pan, click a finding in the table to go there 滚轮缩放、拖动平移、点击表格定位</p>
<svg id="map" viewBox="0 0 {w} {hgt:.0}" data-home="0 0 {w} {hgt:.0}"><g id="grids">"#,
        ok = colour(None),
        warn = colour(Some(Severity::Warning)),
        err = colour(Some(Severity::Error)),
        w = WIDTH,
        hgt = frame.height,
    );
    for f in &layer.features {
        let Some(g) = &f.geometry else { continue };
        let label = f.label();
        let c = colour(status.get(&label).copied());
        let _ = write!(
            h,
            r#"<path d="{}" fill="{c}" fill-opacity=".35"><title>{}</title></path>"#,
            frame.path(g),
            esc(&label)
        );
    }
    h.push_str(r#"</g><g id="findings">"#);
    for (i, f) in findings.iter().enumerate() {
        let Some(mp) = f.geometry.as_ref().and_then(|g| geo::MultiPolygon::<f64>::try_from(g.value.clone()).ok())
        else {
            continue;
        };
        let class = if matches!(f.kind, Kind::Gap | Kind::GapSliver) { "gap" } else { "ovl" };
        let _ = write!(
            h,
            r#"<path class="{class}" d="{}"><title>#{} {}</title></path>"#,
            frame.path(&mp),
            i + 1,
            esc(&f.message)
        );
    }
    for (i, f) in findings.iter().enumerate() {
        let Some([x, y]) = f.location else { continue };
        let (px, py) = frame.xy(x, y);
        let _ = write!(
            h,
            r##"<a href="#f{n}"><circle cx="{px:.1}" cy="{py:.1}" r="6" class="pin {sev}"/><text x="{px:.1}" y="{ty:.1}" class="pinlabel">{n}</text></a>"##,
            n = i + 1,
            sev = if f.severity == Severity::Error { "e" } else { "w" },
            ty = py + 3.0,
        );
    }
    h.push_str("</g></svg></section>");

    // Workload.
    if let Some(w) = &r.workload {
        let _ = write!(
            h,
            r"<section><h2>工作量 Workload</h2><p>Norm 标准: {}–{} households 户 and at most {} people 人 a grid. Outside any grid 网格外: {} households, {} people, {} incidents.</p>",
            w.norm.min_households,
            w.norm.max_households,
            w.norm.max_people,
            w.outside.households,
            w.outside.people,
            w.outside.incidents
        );
        h.push_str(&histogram(
            w.grids.iter().map(|g| g.figures.households),
            w.norm.min_households,
            w.norm.max_households,
            "households per grid 每格户数 (shaded: the norm 标准范围)",
        ));
        h.push_str("</section>");
    }

    // Patrol coverage.
    if let Some(p) = &r.patrol {
        let patrolled = p.grids.iter().filter(|g| g.last_patrol.is_some()).count();
        let unpatrolled = p.findings.iter().filter(|f| f.kind == Kind::Unpatrolled).count();
        let _ = write!(
            h,
            r"<section><h2>巡逻覆盖 Patrol coverage</h2><p>{fixes} fixes 定位点 from {units} units 巡逻单元 · {patrolled} of {n} grids patrolled in the window 窗口内有巡逻 · <b>{unpatrolled}</b> with no patrol in the last {recent} h 近{recent}小时无巡逻 · H3 resolution {res} cells 网格单元</p>",
            fixes = p.fixes,
            units = p.units,
            n = p.grids.len(),
            recent = p.options.recent_hours,
            res = u8::from(p.options.res),
        );
        let shares = p.grids.iter().map(|g| (g.share * 100.0).round() as u64);
        h.push_str(&histogram(
            shares,
            (p.options.min_share * 100.0).round() as u64,
            100,
            "share of each grid's ground patrolled, % 每格巡逻覆盖率 (shaded: at or above the threshold 达标)",
        ));
        h.push_str("</section>");
    }

    // Response coverage.
    if let Some(x) = &r.response {
        let suggestion = x.suggestion.as_ref().map_or_else(
            || {
                if x.cells_covered == x.cells && x.households_covered == x.households {
                    "everything is covered 全部覆盖".to_owned()
                } else if x.households == 0 {
                    "no household data to place one more post 无住户数据".to_owned()
                } else {
                    "no single site reaches the uncovered households 无单点可覆盖".to_owned()
                }
            },
            |s| {
                format!(
                    "one more post at {:.5}, {:.5} would reach {} more households, {:.1}% in all 建议新增岗亭位置",
                    s.at[0],
                    s.at[1],
                    s.households_gained,
                    s.share_households_after * 100.0
                )
            },
        );
        let _ = write!(
            h,
            r"<section><h2>响应覆盖 Response coverage</h2><p>Within {m} min 分钟内 ({method}) of {n} posts and units 岗亭与可用警力: <b>{area:.1}%</b> of the ground 面积 · <b>{hh:.1}%</b> of {total} households 户 · {s}</p></section>",
            m = x.minutes,
            method = esc(&x.method),
            n = x.sources,
            area = x.share_area * 100.0,
            hh = x.share_households * 100.0,
            total = x.households,
            s = esc(&suggestion),
        );
    }

    // Two layers compared.
    if let Some(l) = &r.layers {
        let mismatches = l.findings.iter().filter(|f| f.kind == Kind::BoundaryMismatch).count();
        let _ = write!(
            h,
            r"<section><h2>多网比对 Layers compared (三网合一)</h2><p>{a} × {b}: {pairs} intersecting pairs 相交网格对 · {nested} of the second layer's grids nest in one grid of the first 嵌套 · <b>{mismatches}</b> boundary disagreements wider than {tol} m 边界偏差</p></section>",
            a = esc(&l.a),
            b = esc(&l.b),
            pairs = l.pairs.len(),
            nested = l.nested_b,
            tol = l.tolerance_m,
        );
    }

    // The findings table.
    h.push_str(r"<section><h2>问题清单 Findings</h2><table><thead><tr><th>#</th><th>类型 Kind</th><th>网格 Grids</th><th>面积 Area</th><th>说明 Message</th><th>位置 Location</th></tr></thead><tbody>");
    for (i, f) in findings.iter().enumerate() {
        let loc = f.location.map_or(String::new(), |[x, y]| format!("{x:.6}, {y:.6}"));
        let bbox = f.bbox.or_else(|| f.location.map(|[x, y]| [x, y, x, y])).map_or(String::new(), |b| {
            let (x0, y0) = frame.xy(b[0], b[3]);
            let (x1, y1) = frame.xy(b[2], b[1]);
            format!("{x0:.1} {y0:.1} {x1:.1} {y1:.1}")
        });
        let _ = write!(
            h,
            r#"<tr id="f{n}" class="{sev}" data-box="{bbox}"><td>{n}</td><td>{zh}<br><small>{en}</small></td><td>{grids}</td><td>{area}</td><td>{msg}</td><td>{loc}</td></tr>"#,
            n = i + 1,
            sev = if f.severity == Severity::Error { "e" } else { "w" },
            zh = zh(f.kind),
            en = f.kind.name(),
            grids = esc(&f.grids.join(", ")),
            area = f.area_m2.map_or(String::new(), format_m2),
            msg = esc(&f.message),
        );
    }
    if findings.is_empty() {
        h.push_str(r#"<tr><td colspan="6">无问题 No findings</td></tr>"#);
    }
    let _ = write!(h, "</tbody></table></section><script>{SCRIPT}</script></body></html>");
    h
}

fn format_m2(a: f64) -> String {
    if a >= 10.0 { format!("{a:.0}") } else { format!("{a:.2}") }
}

/// A histogram of a per-grid figure with the acceptable band `lo..=hi` shaded.
fn histogram(values: impl Iterator<Item = u64>, lo: u64, hi: u64, caption: &str) -> String {
    let v: Vec<u64> = values.collect();
    let top = v.iter().copied().max().unwrap_or(0).max(hi.saturating_add(hi / 5)).max(1);
    let bins = 40_u64;
    let width = top.div_ceil(bins).max(1);
    let mut counts = vec![0_usize; bins as usize + 1];
    for x in &v {
        counts[((x / width) as usize).min(bins as usize)] += 1;
    }
    let peak = counts.iter().copied().max().unwrap_or(0).max(1);
    let scale = |x: u64| 40.0 + (x as f64 / (width * (bins + 1)) as f64) * 940.0;
    let mut s = String::from(r#"<svg class="hist" viewBox="0 0 1000 230">"#);
    let _ = write!(
        s,
        r#"<rect x="{:.1}" y="0" width="{:.1}" height="200" class="norm"/>"#,
        scale(lo),
        scale(hi) - scale(lo)
    );
    for (i, c) in counts.iter().enumerate() {
        let hgt = *c as f64 / peak as f64 * 190.0;
        let x = scale(i as u64 * width);
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{hgt:.1}"><title>{}–{}: {c} grids</title></rect>"#,
            200.0 - hgt,
            940.0 / (bins + 1) as f64 - 1.0,
            i as u64 * width,
            (i as u64 + 1) * width - 1
        );
    }
    for t in [0, lo, hi, top] {
        let _ = write!(s, r#"<text x="{:.1}" y="218">{t}</text>"#, scale(t));
    }
    let _ = write!(s, r#"<text x="500" y="230" text-anchor="middle">{}</text></svg>"#, esc(caption));
    s
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0 auto;max-width:1200px;padding:0 16px;color:#1b1b1b}
h1{font-size:22px;margin:16px 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #ddd}
.verdict{display:inline-block;font-weight:700;padding:4px 12px;border-radius:4px;color:#fff}.pass{background:#2e7d32}.fail{background:#c62828}
.cards{display:flex;flex-wrap:wrap;gap:8px}.cards div{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:130px}.cards b{display:block;font-size:18px}
svg{width:100%;background:#fafafa;border:1px solid #ddd}#map{height:70vh;cursor:grab}
svg text{font-size:12px}.bars text{dominant-baseline:auto}
path.gap{fill:#1565c0;fill-opacity:.8;stroke:#0d47a1;stroke-width:.6;vector-effect:non-scaling-stroke}
path.ovl{fill:#6a1b9a;fill-opacity:.8;stroke:#4a148c;stroke-width:.6;vector-effect:non-scaling-stroke}
#grids path{stroke:#555;stroke-width:.4;vector-effect:non-scaling-stroke}
.pin{stroke:#fff;stroke-width:1;vector-effect:non-scaling-stroke}.pin.e{fill:#c62828}.pin.w{fill:#f9a825}.pinlabel{font-size:7px;fill:#fff;text-anchor:middle;pointer-events:none}
.legend i{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:middle}.legend i.gap{background:#1565c0}.legend i.ovl{background:#6a1b9a}
.hist rect{fill:#455a64}.hist rect.norm{fill:#c8e6c9}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
tr.e td:first-child{border-left:4px solid #c62828}tr.w td:first-child{border-left:4px solid #f9a825}tbody tr{cursor:pointer}tbody tr:hover{background:#f3f3f3}tr:target{background:#fff3e0}
small{color:#666}
"#;

const SCRIPT: &str = r"
(function(){var m=document.getElementById('map');if(!m)return;var vb=m.getAttribute('viewBox').split(' ').map(Number);
function set(){m.setAttribute('viewBox',vb.join(' '));}
m.addEventListener('wheel',function(e){e.preventDefault();var r=m.getBoundingClientRect();var f=e.deltaY<0?0.8:1.25;
var px=vb[0]+(e.clientX-r.left)/r.width*vb[2],py=vb[1]+(e.clientY-r.top)/r.height*vb[3];
vb=[px-(px-vb[0])*f,py-(py-vb[1])*f,vb[2]*f,vb[3]*f];set();},{passive:false});
var drag=null;m.addEventListener('mousedown',function(e){drag=[e.clientX,e.clientY];});
window.addEventListener('mouseup',function(){drag=null;});
window.addEventListener('mousemove',function(e){if(!drag)return;var r=m.getBoundingClientRect();
vb[0]-=(e.clientX-drag[0])/r.width*vb[2];vb[1]-=(e.clientY-drag[1])/r.height*vb[3];drag=[e.clientX,e.clientY];set();});
m.addEventListener('dblclick',function(){vb=m.dataset.home.split(' ').map(Number);set();});
document.querySelectorAll('tbody tr[data-box]').forEach(function(tr){tr.addEventListener('click',function(){
var b=tr.dataset.box.split(' ').map(Number);if(b.length<4||isNaN(b[0]))return;var w=Math.max(b[2]-b[0],20),h=Math.max(b[3]-b[1],20),p=Math.max(w,h);
vb=[(b[0]+b[2])/2-p,(b[1]+b[3])/2-p,2*p,2*p];set();m.scrollIntoView({behavior:'smooth',block:'center'});});});})();
";
