//! The living demo (`safegrid demo`), run as its users run it: its simulated units answer a
//! dispatcher's dispatch like their own, patrols report in every district, and a `kill -9` in
//! the middle of a dispatch leaves nothing stuck after the restart.

use crate::support::process::{BIN, http};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `safegrid demo` on a store, listening on free ports; the child and the HTTP address.
fn demo(url: &str, tokens: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["--database-url", url, "--log-format", "json", "demo", "--listen", "127.0.0.1:0"])
        .args(["--osmand-listen", "127.0.0.1:0", "--tokens-out", tokens.to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn safegrid demo");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the demo exited before listening").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["fields"]["message"] == "listening" {
            break v["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// Polls `probe` until it returns something, or fails naming `what`.
fn wait_for<T>(what: &str, secs: u64, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

crate::test!(the_demo_fleet_works_a_dispatchers_dispatch_and_resumes_it_after_kill_9);
fn the_demo_fleet_works_a_dispatchers_dispatch_and_resumes_it_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let tokens_file = dir.path().join("tokens.json");
    let (mut server, addr) = demo(&url, &tokens_file);
    let tokens: Value = serde_json::from_str(&std::fs::read_to_string(&tokens_file).unwrap()).unwrap();
    let token = tokens["dispatcher"].as_str().unwrap().to_owned();

    // Units report live in Longgang and in the other districts.
    let live = wait_for("live units across the city", 30, || {
        let (_, body) = http(&addr, "GET", "/api/v1/positions/live?freshness=live", &token, None);
        let units = body["features"].as_array().cloned().unwrap_or_default();
        let districts: std::collections::BTreeSet<String> = units
            .iter()
            .filter_map(|u| u["properties"]["grid_code"].as_str().and_then(|g| g.get(..6)).map(str::to_owned))
            .collect();
        (districts.len() >= 9).then_some(units)
    });
    // A dispatcher sends a Futian patrol (straight lines, no road network there) to a place near it.
    let unit = live
        .iter()
        .find(|u| u["properties"]["callsign"].as_str().is_some_and(|c| c.starts_with("福田巡")))
        .expect("a Futian patrol reports");
    let unit_id = unit["id"].as_i64().unwrap();
    let at = unit["geometry"]["coordinates"].clone();
    let incident = json!({"type": "Feature",
        "geometry": {"type": "Point", "coordinates": [at[0].as_f64().unwrap() + 0.003, at[1].as_f64().unwrap()]},
        "properties": {"type": "theft", "priority": 2, "status": "open", "reported_at": chrono::Utc::now().to_rfc3339()}});
    let (status, incident) = http(&addr, "POST", "/api/v1/incidents", &token, Some(&incident));
    assert_eq!(status, 201, "{incident}");
    let body = json!({"incident_id": incident["id"], "units": [unit_id]});
    let (status, d) = http(&addr, "POST", "/api/v1/dispatches", &token, Some(&body));
    assert_eq!(status, 201, "{d}");
    let path = format!("/api/v1/dispatches/{}", d["id"]);
    let step = |addr: &str| http(addr, "GET", &path, &token, None).1["units"][unit_id.to_string()]["step"].clone();
    // The unit acknowledges and sets off, like a crew would.
    wait_for("the unit to acknowledge and set off", 30, || (step(&addr) == "en_route").then_some(()));

    // kill -9 on the way; the restarted demo resumes the dispatch: the unit arrives.
    server.kill().unwrap();
    server.wait().unwrap();
    let (mut server, addr) = demo(&url, &tokens_file);
    wait_for("the resumed unit on scene", 60, || (step(&addr) == "on_scene").then_some(()));
    let (_, inc) = http(&addr, "GET", &format!("/api/v1/incidents/{}", incident["id"]), &token, None);
    assert_eq!(inc["properties"]["status"], "on_scene", "{inc}");
    server.kill().unwrap();
    server.wait().unwrap();
}
