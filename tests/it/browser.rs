//! The map wall in a real browser: Debian's Chromium driven through chromedriver (WebDriver,
//! spoken here over plain HTTP). It opens the wall of a running `safegrid serve`, signs in,
//! waits for the tiles, clicks a grid and expects its code; the page must log no error and
//! fetch nothing from any host but safegrid. A screenshot is saved under the test target's
//! temporary directory.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` the test says it is skipped — unless
//! `SAFEGRID_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs both), when that is a failure.

use crate::support::process::{http, safegrid, serve_with, write_fixture_grids};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A WebDriver session on a chromedriver child; both end when it drops.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut b = Self { driver, port, session: String::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.call("GET", "/status", None).is_none() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1600,1000",
            // WebGL without a GPU.
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            // No host but this one resolves: a request elsewhere fails, and the page reports it.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            // A browser that prefers Chinese, like the wall's users.
            "--lang=zh-CN",
            "--accept-lang=zh-CN,zh",
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args, "prefs": {"intl.accept_languages": "zh-CN,zh"}},
            // Chrome's network log: every request the page and its workers make.
            "goog:loggingPrefs": {"performance": "ALL"},
        }}});
        let v = b.call("POST", "/session", Some(&caps)).expect("new session");
        v["sessionId"].as_str().expect("a session id").clone_into(&mut b.session);
        b
    }

    /// One WebDriver command; `None` when chromedriver is not listening yet.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Option<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        // chromedriver keeps the connection open whatever the request says: read the head, then
        // exactly Content-Length bytes (or chunks up to the last).
        let mut resp = Vec::new();
        let mut buf = vec![0_u8; 65_536];
        let text = loop {
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            resp.extend_from_slice(&buf[..n]);
            let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
            let body = &resp[end + 4..];
            if head.contains("transfer-encoding: chunked") {
                if body.ends_with(b"0\r\n\r\n") {
                    break dechunk(&String::from_utf8_lossy(body));
                }
            } else {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    break String::from_utf8_lossy(&body[..len]).into_owned();
                }
            }
        };
        let v: Value = serde_json::from_str(&text).ok()?;
        Some(v["value"].clone())
    }

    fn cmd(&self, method: &str, what: &str, body: Value) -> Value {
        let path = format!("/session/{}/{what}", self.session);
        let body = (!body.is_null()).then_some(body);
        let v = self.call(method, &path, body.as_ref()).unwrap_or_else(|| panic!("{what}: no answer"));
        assert!(v.get("error").is_none(), "{what}: {v}");
        v
    }

    fn run(&self, script: &str, args: Value) -> Value {
        let mut body = json!({"script": script});
        body["args"] = args;
        self.cmd("POST", "execute/sync", body)
    }

    /// Every URL the browser requested since the last call, from the page and its workers alike
    /// (DevTools' Network.requestWillBeSent, through chromedriver's performance log).
    fn requested_urls(&self) -> Vec<String> {
        let log = self.cmd("POST", "se/log", json!({"type": "performance"}));
        log.as_array()
            .expect("the performance log")
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .filter_map(|m| m["message"]["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }

    /// Polls a script until it returns something truthy.
    fn wait_for(&self, what: &str, script: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.run(script, json!([]));
            if !(v.is_null() || v == false || v == "") {
                return v;
            }
            let errors = self.run("return window.sgErrors || []", json!([]));
            assert!(Instant::now() < deadline, "timed out waiting for {what}; page errors: {errors}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A real click (pointer down and up) at page coordinates.
    fn click_at(&self, x: f64, y: f64) {
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "origin": "viewport", "x": x.round() as i64, "y": y.round() as i64},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerUp", "button": 0},
            ],
        }]});
        self.cmd("POST", "actions", actions);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn browser_available() -> bool {
    let present = std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        let required = std::env::var("SAFEGRID_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(!required, "SAFEGRID_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing");
        eprintln!("browser test skipped: install Debian's chromium and chromium-driver to run it");
    }
    present
}

crate::test!(the_map_wall_loads_offline_shows_tiles_and_names_the_grid_clicked, Browser);
fn the_map_wall_loads_offline_shows_tiles_and_names_the_grid_clicked() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let grids = dir.path().join("grids.geojson");
    write_fixture_grids(&grids);
    assert!(safegrid(&url, &["import", "--layer", "grids", "--file", grids.to_str().unwrap()]).status.success());
    // Incidents in the east grid only, so that a click in the west grid meets no point.
    let csv = dir.path().join("incidents.csv");
    let mut rows = String::from("lon,lat,type,priority,status,reported_at\n");
    let now = chrono::Utc::now().to_rfc3339();
    for i in 0..40 {
        rows.push_str(&format!("114.0{},22.5{},theft,{},open,{now}\n", 6 + i % 4, 1 + i % 8, 1 + i % 4));
    }
    std::fs::write(&csv, rows).unwrap();
    assert!(safegrid(&url, &["import", "--layer", "incidents", "--file", csv.to_str().unwrap()]).status.success());
    let out = safegrid(&url, &["token", "--role", "dispatcher", "--name", "大屏值班"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = safegrid(&url, &["token", "--role", "admin", "--name", "审计查看"]);
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = safegrid(&url, &["token", "--role", "public", "--name", "市民"]);
    let public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // The basemap the demo ships: OpenStreetMap around Longgang, served from its MBTiles.
    let basemap = concat!(env!("CARGO_MANIFEST_DIR"), "/../tiles/basemap/longgang.mbtiles");
    let (mut server, addr) = serve_with(&url, &["--basemap", basemap]);
    let origin = format!("http://{addr}");

    let b = Browser::start();
    // A public token cannot open the wall: the sign-in form says so and no tile is fetched.
    b.cmd("POST", "url", json!({"url": format!("{origin}/")}));
    b.run("sessionStorage.setItem('sg.token', arguments[0]); location.reload()", json!([public]));
    let said = b.wait_for("the sign-in refusal", "return document.getElementById('signin_error').textContent", 30);
    assert!(said.as_str().unwrap().contains("公众"), "{said}");
    let tiles = b.run(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('/tiles/')).length",
        json!([]),
    );
    assert_eq!(tiles, 0, "a public caller fetched tiles");

    b.run("sessionStorage.setItem('sg.token', arguments[0]); location.reload()", json!([token]));
    b.wait_for("the map to load its tiles", "return window.sgReady === true", 60);
    let fetched = b.run("return performance.getEntriesByType('resource').map(e => e.name)", json!([]));
    let fetched: Vec<&str> = fetched.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for u in &fetched {
        assert!(u.starts_with(&format!("{origin}/")), "the wall fetched from another host: {u}");
    }
    // Tiles are fetched by MapLibre's worker (not in the page's resource list): ask MapLibre
    // what it decoded. Any request to another host fails (see the resolver rule above) and the
    // wall logs map errors, which the error check below would catch.
    let grid_features = b.run("return sgMap.querySourceFeatures('grids', {sourceLayer: 'grids'}).length", json!([]));
    assert!(grid_features.as_u64().unwrap() >= 3, "grid tiles decoded: {grid_features}");
    // Grid codes are labelled (glyphs served by safegrid) from z13.
    b.run("sgMap.jumpTo({center: [114.04, 22.55], zoom: 14})", json!([]));
    b.wait_for("the map to settle at z14", "return sgMap.loaded() && !sgMap.isMoving()", 30);
    let labels = b.wait_for(
        "grid-code labels",
        "const c = sgMap.queryRenderedFeatures({layers: ['grids-label']}).map(f => f.properties.code).filter(c => c && c.length === 9); return c.length ? c : null",
        30,
    );
    assert!(labels.as_array().is_some_and(|l| !l.is_empty()), "grid codes drawn: {labels}");
    b.run("sgMap.jumpTo({center: [114.04, 22.55], zoom: 11})", json!([]));
    // Key personnel (each tile read audited) are not fetched while their switch is off.
    let audited = http(&addr, "GET", "/api/v1/audit_log", &admin, None).1;
    let kp_reads = audited["rows"]
        .as_array()
        .expect("the audit log answers")
        .iter()
        .filter(|r| r["request"].as_str().unwrap_or_default().contains("key_personnel"))
        .count();
    assert_eq!(kp_reads, 0, "key-personnel tiles were read: {audited}");
    let incident_features =
        b.run("return sgMap.querySourceFeatures('incidents', {sourceLayer: 'incidents'}).length", json!([]));
    assert!(incident_features.as_u64().unwrap() > 0, "incident tiles decoded: {incident_features}");
    // Chinese is the default for a browser that prefers it.
    assert_eq!(b.run("return document.documentElement.lang", json!([])), "zh-CN");

    // A patrol unit reports through OsmAnd: the wall draws it live, coloured by freshness.
    let unit = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.03, 22.57]},
        "properties": {"kind": "patrol", "callsign": "巡-大屏", "status": "available", "device_id": "wall-1"}});
    assert_eq!(http(&addr, "POST", "/api/v1/responders", &token, Some(&unit)).0, 201);
    // Its tracker proves itself with the secret a dispatcher minted (`id=DEVICE_ID:SECRET`).
    let (status, minted) = http(&addr, "POST", "/api/v1/devices/wall-1/secret", &token, None);
    assert_eq!(status, 201, "{minted}");
    let ident = minted["identifier"].as_str().unwrap().to_owned();
    let fix = format!("/api/v1/osmand?id={ident}&lat=22.57&lon=114.03&timestamp={}", chrono::Utc::now().timestamp());
    assert_eq!(http(&addr, "GET", &fix, "", None).0, 200);
    b.wait_for("the live unit on the wall", "return window.sgLiveCount >= 1", 20);
    let colour = b.wait_for(
        "the live unit drawn",
        "const f = sgMap.queryRenderedFeatures({layers: ['live-units']})[0]; return f ? f.properties.freshness : null",
        20,
    );
    assert_eq!(colour, "live");

    // A click in the west grid, away from every point, asks which grid this is.
    let at = b.run("const p = sgMap.project([114.02, 22.55]); return [p.x, p.y]", json!([]));
    b.click_at(at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
    let code = b.wait_for(
        "the clicked grid's code",
        "const e = document.querySelector('.maplibregl-popup .grid-code'); return e && e.textContent",
        20,
    );
    assert_eq!(code, "440304001");
    let popup = b.run("return document.querySelector('.maplibregl-popup').textContent", json!([]));
    assert!(popup.as_str().unwrap().contains("张伟"), "the grid's manager is shown: {popup}");
    // …and which units would get there first (no road network on this server: estimates).
    let suggested = b.wait_for(
        "the suggested units",
        "const e = document.querySelector('.maplibregl-popup table.suggested'); return e && e.textContent",
        20,
    );
    assert!(suggested.as_str().unwrap().contains("巡-大屏"), "the live unit is suggested: {suggested}");

    // A dispatch with a one-second acknowledgement deadline: the panel shows it, its alarm,
    // and a button that moves the unit on.
    let deadlines = json!({"default": {"ack_s": 1, "arrive_s": 600}});
    assert_eq!(http(&addr, "PUT", "/api/v1/dispatch/deadlines", &admin, Some(&deadlines)).0, 200);
    let inc = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.025, 22.565]},
        "properties": {"type": "fight", "priority": 1, "status": "open", "reported_at": chrono::Utc::now().to_rfc3339()}});
    let (_, inc) = http(&addr, "POST", "/api/v1/incidents", &token, Some(&inc));
    let unit_id = http(&addr, "GET", "/api/v1/positions/live", &token, None).1["features"][0]["id"].clone();
    let (status, d) =
        http(&addr, "POST", "/api/v1/dispatches", &token, Some(&json!({"incident_id": inc["id"], "units": [unit_id]})));
    assert_eq!(status, 201, "{d}");
    let panel = b.wait_for(
        "the dispatch and its alarm on the panel",
        "const t = document.getElementById('dispatches').textContent; return t.includes('超时未确认') ? t : null",
        30,
    );
    assert!(panel.as_str().unwrap().contains("巡-大屏"), "{panel}");
    b.run("document.querySelector('#dispatches button[data-step]').click()", json!([]));
    b.wait_for(
        "the unit acknowledged from the wall",
        "return document.getElementById('dispatches').textContent.includes('已确认')",
        20,
    );
    let (_, after) = http(&addr, "GET", &format!("/api/v1/dispatches/{}", d["id"]), &token, None);
    assert_eq!(after["units"][unit_id.to_string()]["step"], "acknowledged", "{after}");

    // A new incident reaches the open wall without a reload: the statistics panel counts it.
    let before = b.run("return Number(document.getElementById('open_total').textContent)", json!([]));
    let created = http(
        &addr,
        "POST",
        "/api/v1/incidents",
        &token,
        Some(&json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.16, 22.55]},
            "properties": {"type": "fire", "priority": 1, "status": "open", "reported_at": chrono::Utc::now().to_rfc3339()}})),
    );
    assert_eq!(created.0, 201, "{}", created.1);
    let want = before.as_f64().unwrap() + 1.0;
    b.wait_for(
        "the statistics to count the new incident",
        &format!("return Number(document.getElementById('open_total').textContent) === {want}"),
        20,
    );

    // Switching key personnel on fetches their tiles, and each read is audited.
    b.run("document.querySelector('input[data-layer=key_personnel]').click()", json!([]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = http(&addr, "GET", "/api/v1/audit_log", &admin, None).1;
        let rows = rows["rows"].as_array().expect("the audit log answers").clone();
        if rows.iter().any(|r| r["action"] == "tile" && r["actor"] == "大屏值班") {
            break;
        }
        if Instant::now() > deadline {
            let seen = b.run(
                "return {visibility: sgMap.getLayoutProperty('key_personnel', 'visibility'), loaded: sgMap.isSourceLoaded('key_personnel'), errors: window.sgErrors, zoom: sgMap.getZoom()}",
                json!([]),
            );
            panic!("no audited key-personnel tile read after switching the layer on; the map: {seen}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    let shot = |name: &str| {
        let png = b.cmd("GET", "screenshot", Value::Null);
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, base64_decode(png.as_str().unwrap())).unwrap();
        eprintln!("screenshot: {}", path.display());
    };
    shot("map-wall.png");

    // Over Longgang the basemap draws: roads from safegrid's MBTiles, named with its glyphs
    // (Latin) and the browser's CJK font, and its police station with a sprite icon.
    b.run("sgMap.jumpTo({center: [114.212, 22.692], zoom: 15.5})", json!([]));
    b.wait_for("the basemap to settle", "return sgMap.loaded() && !sgMap.isMoving() && sgMap.areTilesLoaded()", 30);
    let roads = b.wait_for("basemap roads", "return sgMap.queryRenderedFeatures({layers: ['bm-road']}).length", 30);
    assert!(roads.as_u64().unwrap() > 10, "roads drawn: {roads}");
    let names = b.wait_for(
        "road names",
        "const n = sgMap.queryRenderedFeatures({layers: ['bm-road-name']}).map(f => f.properties.name).filter(Boolean); return n.length ? n : null",
        30,
    );
    assert!(names.as_array().is_some_and(|n| !n.is_empty()), "road names drawn: {names}");
    shot("map-wall-basemap.png");

    // The audit overlay: the fixture layer passes; the wall says so and colours the grids.
    b.run("document.getElementById('audit').click()", json!([]));
    let audit = b.wait_for("the audit overlay", "return window.sgAudit || null", 30);
    assert_eq!(audit["passed"], true, "{audit}");
    let summary = b.run("return document.getElementById('audit-summary').textContent", json!([]));
    assert!(summary.as_str().unwrap().contains("审计通过"), "{summary}");
    assert_eq!(b.run("return sgMap.getPaintProperty('grids-fill', 'fill-color')", json!([])), json!("#16a34a"));
    assert_eq!(b.run("return sgMap.getLayoutProperty('audit-fill', 'visibility')", json!([])), json!("visible"));

    // Nothing came from anywhere else. The page's own requests (the library, style, glyphs,
    // sprite, API) are in Chrome's network log; tiles are fetched by MapLibre's worker, which
    // that log does not see, but every URL MapLibre loads passes through the wall's
    // transformRequest first, which notes its origin. Other hosts do not even resolve (see the
    // resolver rule) and a failed load is a logged map error, so this also proves the wall
    // needs none.
    let urls = b.requested_urls();
    for wanted in ["/basemap/style.json", "/basemap/tiles.json", "/basemap/fonts/", "/basemap/sprite"] {
        assert!(urls.iter().any(|u| u.contains(wanted)), "no request for {wanted}; requests: {urls:?}");
    }
    for u in &urls {
        let local = u.starts_with(&format!("{origin}/")) || u.starts_with("data:") || u.starts_with("blob:");
        assert!(local, "the wall requested another host: {u}");
    }
    let origins = b.run("return [...window.sgRequestedOrigins]", json!([]));
    assert_eq!(origins, json!([origin]), "MapLibre loaded from other hosts");

    let errors = b.run("return window.sgErrors", json!([]));
    assert_eq!(errors, json!([]), "the page logged errors");
    drop(b);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A token made with `safegrid token`.
fn token(url: &str, role: &str, name: &str) -> String {
    let out = safegrid(url, &["token", "--role", role, "--name", name]);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An incident at (lon, lat), reported `minutes_ago`; returns its id.
fn report(addr: &str, token: &str, at: (f64, f64), priority: u32, status: &str, minutes_ago: i64) -> i64 {
    let reported = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let f = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [at.0, at.1]},
        "properties": {"type": "theft", "priority": priority, "status": status, "reported_at": reported.to_rfc3339(),
                       "address": format!("测试路{minutes_ago}号")}});
    let (code, body) = http(addr, "POST", "/api/v1/incidents", token, Some(&f));
    assert_eq!(code, 201, "{body}");
    body["id"].as_i64().unwrap()
}

crate::test!(the_wall_queues_waiting_incidents_draws_their_state_and_raises_a_p1_alarm, Browser);
fn the_wall_queues_waiting_incidents_draws_their_state_and_raises_a_p1_alarm() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let grids = dir.path().join("grids.geojson");
    write_fixture_grids(&grids);
    assert!(safegrid(&url, &["import", "--layer", "grids", "--file", grids.to_str().unwrap()]).status.success());
    let dispatcher = token(&url, "dispatcher", "夜班调度");
    let (mut server, addr) = serve_with(&url, &[]);
    let origin = format!("http://{addr}");
    // Waiting: two P2s and a P3, reported at different times; one closed P3; a tracked unit.
    let closed = report(&addr, &dispatcher, (114.030, 22.560), 3, "closed", 300);
    let older_p2 = report(&addr, &dispatcher, (114.020, 22.550), 2, "open", 120);
    let newer_p2 = report(&addr, &dispatcher, (114.021, 22.551), 2, "open", 30);
    let p3 = report(&addr, &dispatcher, (114.022, 22.552), 3, "open", 240);
    let unit = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.025, 22.555]},
        "properties": {"kind": "patrol", "callsign": "巡-夜", "status": "available", "device_id": "night-1"}});
    assert_eq!(http(&addr, "POST", "/api/v1/responders", &dispatcher, Some(&unit)).0, 201);
    let (_, minted) = http(&addr, "POST", "/api/v1/devices/night-1/secret", &dispatcher, None);
    let ident = minted["identifier"].as_str().unwrap().to_owned();
    let fix = format!("/api/v1/osmand?id={ident}&lat=22.555&lon=114.025&timestamp={}", chrono::Utc::now().timestamp());
    assert_eq!(http(&addr, "GET", &fix, "", None).0, 200);

    let b = Browser::start();
    b.cmd("POST", "url", json!({"url": format!("{origin}/")}));
    b.run("sessionStorage.setItem('sg.token', arguments[0]); location.reload()", json!([dispatcher]));
    b.wait_for("the map to load its tiles", "return window.sgReady === true", 60);

    // The queue: most urgent first, then the longest waiting; the closed one is not in it.
    let order = b.wait_for(
        "the queue",
        "const l = [...document.querySelectorAll('#queue li')].map(e => Number(e.dataset.incident)); return l.length ? l : null",
        30,
    );
    assert_eq!(order, json!([older_p2, newer_p2, p3]));
    let first = b.run("return document.querySelector('#queue li').textContent", json!([]));
    assert!(first.as_str().unwrap().contains("P2") && first.as_str().unwrap().contains("2 小时"), "{first}");

    // States: the closed incident is not drawn until the switch brings it back, and then as closed.
    b.run("sgMap.jumpTo({center: [114.025, 22.555], zoom: 15})", json!([]));
    b.wait_for("the map to settle at z15", "return sgMap.loaded() && !sgMap.isMoving() && sgMap.areTilesLoaded()", 30);
    let drawn = "return sgMap.queryRenderedFeatures({layers: ['incidents']}).filter(f => !f.properties.point_count).map(f => [f.id, f.properties.status])";
    let before = b.wait_for(
        "the open incidents drawn",
        &format!("const d = (() => {{ {drawn} }})(); return d.length >= 3 ? d : null"),
        30,
    );
    assert!(before.as_array().unwrap().iter().all(|f| f[0] != closed && f[1] != "closed"), "{before}");
    let colour = b.run("return JSON.stringify(sgMap.getPaintProperty('incidents', 'circle-color'))", json!([]));
    assert!(colour.as_str().unwrap().contains("\"closed\",\"#5b6b80\""), "closed incidents are grey: {colour}");
    b.run("document.getElementById('show-closed').click()", json!([]));
    let after = b.wait_for(
        "the closed incident drawn",
        &format!("const d = (() => {{ {drawn} }})(); const c = d.find(f => f[0] === {closed}); return c ? c[1] : null"),
        30,
    );
    assert_eq!(after, "closed");
    b.wait_for(
        "the statistics counting the closed one",
        "const e = document.querySelector('#by_state [data-state=closed] b'); return e && e.textContent === '1'",
        20,
    );

    // A click on the queue's first row flies there and offers the unit; dispatching from it
    // takes the incident out of the queue.
    b.run("document.querySelector('#queue li').click()", json!([]));
    b.wait_for(
        "the suggested unit",
        "const e = document.querySelector('.maplibregl-popup table.suggested'); return e && e.textContent.includes('巡-夜')",
        30,
    );
    b.run("document.querySelector('.maplibregl-popup button[data-dispatch]').click()", json!([]));
    b.wait_for(
        "the dispatched incident to leave the queue",
        &format!(
            "return ![...document.querySelectorAll('#queue li')].some(e => Number(e.dataset.incident) === {older_p2})"
        ),
        30,
    );
    let (_, inc) = http(&addr, "GET", &format!("/api/v1/incidents/{older_p2}"), &dispatcher, None);
    assert_eq!(inc["properties"]["status"], "dispatched", "{inc}");

    // A new P1 raises the alarm; it stays until acknowledged.
    let p1 = report(&addr, &dispatcher, (114.023, 22.553), 1, "open", 0);
    let alarm = b.wait_for(
        "the P1 alarm",
        "const a = document.getElementById('alarm'); return a && !a.hidden ? a.textContent : null",
        30,
    );
    assert!(alarm.as_str().unwrap().contains(&format!("#{p1}")), "{alarm}");
    assert_eq!(b.run("return Number(document.querySelector('#queue li').dataset.incident)", json!([])), p1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(b.run("return document.getElementById('alarm').hidden", json!([])), false, "the alarm went by itself");
    b.run("document.getElementById('alarm-ack').click()", json!([]));
    b.wait_for("the alarm acknowledged", "return document.getElementById('alarm').hidden", 10);

    // The unit board: the tracked unit live, the untracked one said to be untracked; a search
    // narrows it; following a unit centres the map on it.
    let untracked = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.04, 22.56]},
        "properties": {"kind": "police", "callsign": "警-步巡", "status": "available"}});
    assert_eq!(http(&addr, "POST", "/api/v1/responders", &dispatcher, Some(&untracked)).0, 201);
    let row = |callsign: &str| {
        format!(
            "const r = [...document.querySelectorAll('#board tr')].find(e => e.textContent.includes('{callsign}')); return r ? r.querySelector('.fresh').textContent : null"
        )
    };
    assert_eq!(b.wait_for("the tracked unit on the board", &row("巡-夜"), 20), "实时");
    assert_eq!(b.wait_for("the untracked unit on the board", &row("警-步巡"), 20), "未接入定位");
    // Only a tracked unit is drawn as live; the untracked one is not in the live layer.
    let live = b.run("return window.sgLiveCallsigns", json!([]));
    assert_eq!(live, json!(["巡-夜"]));
    b.run(
        "const i = document.getElementById('board-search'); i.value = '步巡'; i.dispatchEvent(new Event('input'))",
        json!([]),
    );
    b.wait_for(
        "the board narrowed",
        "const r = document.querySelectorAll('#board tr'); return r.length === 1 && r[0].textContent.includes('警-步巡')",
        10,
    );
    b.run(
        "const i = document.getElementById('board-search'); i.value = ''; i.dispatchEvent(new Event('input'))",
        json!([]),
    );
    b.run("sgMap.jumpTo({center: [114.2, 22.7], zoom: 12})", json!([]));
    b.wait_for("the follow button", "return document.querySelector('#board button.follow')", 10);
    b.run("document.querySelector('#board button.follow').click()", json!([]));
    b.wait_for(
        "the map on the followed unit",
        "const c = sgMap.getCenter(); return !sgMap.isMoving() && Math.abs(c.lng - 114.025) < 1e-3 && Math.abs(c.lat - 22.555) < 1e-3",
        20,
    );

    // Search: a grid by name fits the map to it; a callsign flies to the unit.
    let search = |q: &str| {
        b.run(
            "const i = document.getElementById('search'); i.value = arguments[0]; i.dispatchEvent(new Event('input'))",
            json!([q]),
        );
    };
    search("福田第002");
    b.wait_for("a grid found", "return document.querySelector('#search-results button[data-kind=grid]')", 10);
    b.run("document.querySelector('#search-results button[data-kind=grid]').click()", json!([]));
    b.wait_for(
        "the map on the grid found",
        "const c = sgMap.getCenter(); return !sgMap.isMoving() && c.lng > 114.05 && c.lng < 114.1",
        20,
    );
    search("步巡");
    b.wait_for("a unit found", "return document.querySelector('#search-results button[data-kind=unit]')", 10);
    b.run("document.querySelector('#search-results button[data-kind=unit]').click()", json!([]));
    b.wait_for(
        "the map on the unit found",
        "const c = sgMap.getCenter(); return !sgMap.isMoving() && Math.abs(c.lng - 114.04) < 1e-3 && Math.abs(c.lat - 22.56) < 1e-3",
        20,
    );

    // Nothing is polled: in a quiet spell the page asks for no positions, dispatches or
    // statistics (they come over the event stream).
    b.requested_urls();
    std::thread::sleep(Duration::from_secs(8));
    let polled: Vec<String> = b
        .requested_urls()
        .into_iter()
        .filter(|u| {
            ["/positions/live", "/api/v1/dispatches", "/api/v1/stats", "/dispatch/queue"].iter().any(|p| u.contains(p))
        })
        .collect();
    assert_eq!(polled, Vec::<String>::new(), "the wall polled");

    let errors = b.run("return window.sgErrors", json!([]));
    assert_eq!(errors, json!([]), "the page logged errors");
    drop(b);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Standard base64 (the screenshot), without a dependency for one call.
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = s.bytes().filter_map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c.iter().enumerate().fold(0u32, |n, (i, &d)| n | (u32::from(d) << (18 - 6 * i)));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(c.len().saturating_sub(1))
        })
        .collect()
}
