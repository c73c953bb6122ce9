//! The real binary, killed with SIGKILL after acknowledging writes, starts again with every
//! acknowledged write in place. Also drives `safegrid import` and `safegrid token`.

use serde_json::json;

use crate::support::process::{http, safegrid, serve, serve_tracking, write_fixture_grids};

crate::test!(acknowledged_writes_survive_kill_9_and_the_indexes_are_rebuilt);
fn acknowledged_writes_survive_kill_9_and_the_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let grids = dir.path().join("grids.geojson");
    write_fixture_grids(&grids);
    let out = safegrid(&url, &["import", "--layer", "grids", "--file", grids.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = safegrid(&url, &["token", "--role", "dispatcher", "--name", "值班员"]);
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let (mut server, addr) = serve(&url);
    let mut acked = Vec::new();
    for i in 0..40 {
        let f = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.001 + f64::from(i) * 0.004, 22.55]},
            "properties": {"type": "fight", "priority": 1, "status": "open", "reported_at": "2026-11-21T09:00:00Z"}});
        let (status, body) = http(&addr, "POST", "/api/v1/incidents", &token, Some(&f));
        assert_eq!(status, 201, "{body}");
        acked.push(body);
    }
    server.kill().unwrap(); // SIGKILL: no shutdown hook runs
    server.wait().unwrap();

    let (mut server, addr) = serve(&url);
    for want in &acked {
        let id = want["id"].as_i64().unwrap();
        let (status, got) = http(&addr, "GET", &format!("/api/v1/incidents/{id}"), &token, None);
        assert_eq!(status, 200);
        assert_eq!(&got, want, "incident {id} changed across the restart");
    }
    // The rebuilt indexes answer spatial queries, and new ids continue after the old ones.
    let (_, near) = http(&addr, "GET", "/api/v1/incidents/nearest?lon=114.001&lat=22.55&k=1", &token, None);
    assert_eq!(near["features"][0]["id"], acked[0]["id"]);
    let (_, west) = http(&addr, "GET", "/api/v1/incidents?grid=440304001", &token, None);
    assert_eq!(west["numberMatched"], 13);
    let f = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.02, 22.55]},
        "properties": {"type": "fire", "priority": 1, "status": "open", "reported_at": "2026-11-21T09:30:00Z"}});
    let (status, body) = http(&addr, "POST", "/api/v1/incidents", &token, Some(&f));
    assert_eq!((status, body["id"].as_i64()), (201, Some(41)));
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The status of a GET, or `None` when the server does not answer (it was killed).
fn status_of_get(addr: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split(' ').nth(1)?.parse().ok()
}

crate::test!(acknowledged_fixes_survive_kill_9_mid_stream);
/// Four trackers report over the OsmAnd port as fast as they can; the server is killed with
/// SIGKILL mid-stream. Every fix it had answered 200 must be in the trace after the restart.
fn acknowledged_fixes_survive_kill_9_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let out = safegrid(&url, &["token", "--role", "dispatcher", "--name", "值班员"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // As fast as they can: above the per-device limit a real tracker is held to.
    let (mut server, addr, osmand) = serve_tracking(&url, &["--device-burst", "1000000"]);
    let mut units = Vec::new();
    let mut idents = Vec::new();
    for k in 0..4 {
        let f = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.01, 22.51]},
            "properties": {"kind": "patrol", "callsign": format!("巡-{k}"), "status": "available", "device_id": format!("kill-{k}")}});
        let (status, body) = http(&addr, "POST", "/api/v1/responders", &token, Some(&f));
        assert_eq!(status, 201, "{body}");
        units.push(body["id"].as_i64().unwrap());
        let (status, minted) = http(&addr, "POST", &format!("/api/v1/devices/kill-{k}/secret"), &token, None);
        assert_eq!(status, 201, "{minted}");
        idents.push(minted["identifier"].as_str().unwrap().to_owned());
    }
    let base = chrono::Utc::now().timestamp() - 5_000;
    let senders: Vec<_> = (0..4)
        .map(|k| {
            let osmand = osmand.clone();
            let ident = idents[k].clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..4_000 {
                    let path = format!(
                        "/?id={ident}&lat=22.51&lon={:.6}&timestamp={}",
                        114.01 + f64::from(i) * 0.00001,
                        base + i64::from(i)
                    );
                    match status_of_get(&osmand, &path) {
                        Some(200) => acked.push(base + i64::from(i)),
                        _ => break, // the server is gone
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    server.kill().unwrap();
    server.wait().unwrap();
    let acked: Vec<Vec<i64>> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    eprintln!("acknowledged before the kill: {:?}", acked.iter().map(Vec::len).collect::<Vec<_>>());
    assert!(
        acked.iter().all(|a| a.len() > 10),
        "the trackers got going before the kill: {:?}",
        acked.iter().map(Vec::len).collect::<Vec<_>>()
    );

    let (mut server, addr, _) = serve_tracking(&url, &[]);
    for (k, unit) in units.iter().enumerate() {
        let since = chrono::DateTime::from_timestamp(base - 1, 0).unwrap().to_rfc3339().replace('+', "%2B");
        let (status, trace) = http(
            &addr,
            "GET",
            &format!("/api/v1/responders/{unit}/trace?format=json&limit=100000&since={since}"),
            &token,
            None,
        );
        assert_eq!(status, 200, "{trace}");
        let stored: std::collections::HashSet<i64> = trace["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| chrono::DateTime::parse_from_rfc3339(p["time"].as_str().unwrap()).unwrap().timestamp())
            .collect();
        let lost: Vec<&i64> = acked[k].iter().filter(|t| !stored.contains(t)).collect();
        assert!(lost.is_empty(), "tracker {k}: {} acknowledged fixes lost, first {:?}", lost.len(), lost.first());
        // The unit stands at its last acknowledged fix (or one after it that was stored unanswered).
        let (_, unit_now) = http(&addr, "GET", &format!("/api/v1/responders/{unit}"), &token, None);
        let lon = unit_now["geometry"]["coordinates"][0].as_f64().unwrap();
        let last_acked = acked[k].last().unwrap() - base;
        assert!(
            lon >= 114.01 + last_acked as f64 * 0.00001 - 1e-9,
            "unit {unit} at {lon}, behind its last acknowledged fix"
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The broker the MQTT test publishes to, or `None` (after saying so) when it is skipped.
fn mosquitto() -> Option<(String, u16)> {
    let (host, port) = ("127.0.0.1".to_owned(), 1883);
    if std::net::TcpStream::connect((host.as_str(), port)).is_ok() {
        return Some((host, port));
    }
    assert!(
        std::env::var("SAFEGRID_REQUIRE_MQTT").as_deref() != Ok("1"),
        "SAFEGRID_REQUIRE_MQTT=1 but no MQTT broker answers on 127.0.0.1:1883"
    );
    eprintln!("mqtt test skipped: no broker on 127.0.0.1:1883 (Debian: mosquitto)");
    None
}

/// Publishes fixes at QoS 1 and waits for the broker's acknowledgements.
fn publish(host: &str, port: u16, topic: &str, payloads: &[serde_json::Value]) {
    let id = format!("safegrid-test-pub-{}", std::process::id());
    let mut opts = rumqttc::MqttOptions::new(id, host, port);
    opts.set_keep_alive(std::time::Duration::from_secs(5));
    let (client, mut conn) = rumqttc::Client::new(opts, 64);
    for p in payloads {
        client.publish(topic, rumqttc::QoS::AtLeastOnce, false, p.to_string()).unwrap();
    }
    let mut acked = 0;
    for event in conn.iter() {
        if let rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_)) = event.unwrap() {
            acked += 1;
            if acked == payloads.len() {
                break;
            }
        }
    }
    client.disconnect().ok();
}

crate::test!(fixes_from_mqtt_are_stored_including_those_sent_while_down, Mqtt);
/// Fixes published to the broker are stored; fixes published while safegrid is down (killed
/// with SIGKILL) are delivered from its persistent session after the restart.
fn fixes_from_mqtt_are_stored_including_those_sent_while_down() {
    let Some((host, port)) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let token = String::from_utf8(safegrid(&url, &["token", "--role", "dispatcher", "--name", "d"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let run = format!("{}-{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    let topic_root = format!("safegrid-test/{run}");
    let args = [
        "--mqtt-url".to_owned(),
        format!("mqtt://{host}:{port}"),
        "--mqtt-topic".to_owned(),
        format!("{topic_root}/#"),
        "--mqtt-client-id".to_owned(),
        format!("safegrid-test-{run}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut server, addr, _) = serve_tracking(&url, &args);
    let f = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.01, 22.51]},
        "properties": {"kind": "patrol", "callsign": "巡-MQ", "status": "available", "device_id": "mq-1"}});
    let (status, body) = http(&addr, "POST", "/api/v1/responders", &token, Some(&f));
    assert_eq!(status, 201, "{body}");
    let unit = body["id"].as_i64().unwrap();
    // The device proves itself in the topic's last level: `…/mq-1:SECRET`.
    let (status, minted) = http(&addr, "POST", "/api/v1/devices/mq-1/secret", &token, None);
    assert_eq!(status, 201, "{minted}");
    let device_topic = format!("{topic_root}/{}", minted["identifier"].as_str().unwrap());
    let base = chrono::Utc::now().timestamp() - 600;
    let fixes = |from: i64, to: i64| -> Vec<serde_json::Value> {
        (from..to).map(|i| json!({"time": base + i, "lon": 114.01 + i as f64 * 0.00001, "lat": 22.51})).collect()
    };
    let stored = |addr: &str| -> usize {
        let (_, t) =
            http(addr, "GET", &format!("/api/v1/responders/{unit}/trace?format=json&flagged=true"), &token, None);
        t["points"].as_array().map_or(0, Vec::len)
    };
    let wait_for = |addr: &str, n: usize| {
        for _ in 0..100 {
            if stored(addr) >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("only {} of {n} fixes from MQTT stored", stored(addr));
    };
    // Wait until the subscription exists, then publish (the device id is the topic's last level).
    let auditor = String::from_utf8(safegrid(&url, &["token", "--role", "auditor", "--name", "a"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    wait_for_subscription(&host, port, &topic_root, &addr, &auditor);
    publish(&host, port, &device_topic, &fixes(0, 20));
    wait_for(&addr, 20);

    server.kill().unwrap();
    server.wait().unwrap();
    publish(&host, port, &device_topic, &fixes(20, 50));
    let (mut server, addr, _) = serve_tracking(&url, &args);
    wait_for(&addr, 50);
    assert_eq!(stored(&addr), 50);
    // In order: every fix moved the unit, none was taken for a late one.
    let (_, t) = http(&addr, "GET", &format!("/api/v1/responders/{unit}/trace?format=json"), &token, None);
    assert_eq!(t["points"].as_array().unwrap().len(), 50, "{t}");
    // Without the secret, or with a wrong one, nothing is stored (and the broker is answered).
    publish(&host, port, &format!("{topic_root}/mq-1"), &fixes(50, 53));
    publish(&host, port, &format!("{topic_root}/mq-1:wrongwrongwrong"), &fixes(53, 56));
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(stored(&addr), 50);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Waits until the server's subscription reaches the broker (a message to a topic nobody
/// subscribes to yet is dropped, not queued): probes from an unregistered device are published
/// until the server counts one as refused.
fn wait_for_subscription(host: &str, port: u16, topic_root: &str, addr: &str, auditor: &str) {
    let probe = json!({"time": chrono::Utc::now().timestamp() - 5, "lon": 114.0, "lat": 22.5});
    for _ in 0..50 {
        publish(host, port, &format!("{topic_root}/probe"), std::slice::from_ref(&probe));
        let text = raw_get(addr, "/metrics", auditor);
        if text
            .lines()
            .any(|l| l.starts_with("safegrid_fixes_total{outcome=\"unauthenticated_device\"} ") && !l.ends_with(" 0"))
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the server never subscribed to {topic_root}/#");
}

/// A GET's body as text.
fn raw_get(addr: &str, path: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

crate::test!(a_failed_import_leaves_the_store_exactly_as_it_was);
fn a_failed_import_leaves_the_store_exactly_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let grids = dir.path().join("grids.geojson");
    write_fixture_grids(&grids);
    assert!(safegrid(&url, &["import", "--layer", "grids", "--file", grids.to_str().unwrap()]).status.success());

    let good = dir.path().join("posts.csv");
    std::fs::write(&good, "lon,lat,kind,name,phone,opening_hours\n114.02,22.55,police_room,百花警务室,0755-1,24h\n114.07,22.55,safety_station,园岭平安易站,,08:00-22:00\n").unwrap();
    let out = safegrid(&url, &["import", "--layer", "posts", "--file", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 posts"));

    let bad = dir.path().join("more.csv");
    std::fs::write(
        &bad,
        "lon,lat,kind,name\n114.03,22.55,police_room,甲\n114.04,22.55,police_room,乙\n114.05,95.0,police_room,丙\n",
    )
    .unwrap();
    let out = safegrid(&url, &["import", "--layer", "posts", "--file", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4") && err.contains("lat") && err.contains("nothing was imported"), "{err}");

    // A bad row after several chunks have gone into the import's transaction (rows stream to
    // the store while the file is parsed): all of them are rolled back.
    let mut long = String::from("lon,lat,kind,name\n");
    for i in 0..(2 * safegrid_services::import::CHUNK_ROWS + 500) {
        long.push_str(&format!("114.0{},22.55,police_room,岗亭{i}\n", i % 10));
    }
    long.push_str("114.05,22.55,police_room,\n");
    std::fs::write(&bad, long).unwrap();
    let out = safegrid(&url, &["import", "--layer", "posts", "--file", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = 2 * safegrid_services::import::CHUNK_ROWS + 502;
    assert!(
        err.contains(&format!("line {line}")) && err.contains("name") && err.contains("nothing was imported"),
        "{err}"
    );

    // Ids continue after the last committed row: the rolled-back rows used none.
    std::fs::write(&bad, "lon,lat,kind,name\n114.06,22.55,police_room,丁\n").unwrap();
    assert!(safegrid(&url, &["import", "--layer", "posts", "--file", bad.to_str().unwrap()]).status.success());

    let out = safegrid(&url, &["token", "--role", "auditor", "--name", "审计"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (mut server, addr) = serve(&url);
    let (_, all) = http(&addr, "GET", "/api/v1/posts", &token, None);
    assert_eq!(all["numberMatched"], 3, "the failed imports wrote nothing");
    assert_eq!(all["features"][1]["properties"]["grid_code"], "440304002");
    assert_eq!(all["features"][2]["id"], 3);
    assert_eq!(all["features"][2]["properties"]["name"], "丁");
    server.kill().unwrap();
    server.wait().unwrap();
}

crate::test!(a_revoked_token_stops_working_on_a_running_server);
fn a_revoked_token_stops_working_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let out = safegrid(&url, &["token", "--role", "dispatcher", "--name", "夜班调度"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (mut server, addr) = serve(&url);
    assert_eq!(http(&addr, "GET", "/api/v1/incidents", &token, None).0, 200);

    let out = safegrid(&url, &["tokens"]);
    let listing = String::from_utf8(out.stdout).unwrap();
    let line = listing.lines().find(|l| l.contains("夜班调度")).expect("the token is listed");
    assert!(line.contains("dispatcher"));
    assert!(!listing.contains(&token), "the token itself is never shown again");
    let prefix = line.split_whitespace().next().unwrap();
    assert!(!safegrid(&url, &["revoke", "abc"]).status.success(), "too short a prefix is refused");
    let out = safegrid(&url, &["revoke", prefix]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let status = http(&addr, "GET", "/api/v1/incidents", &token, None).0;
        if status == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {status} 15 s after revocation");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The identifier `safegrid device-secret` prints for Traccar Client (its last line).
fn cli_identifier(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    text.lines().last().unwrap().trim().to_owned()
}

/// GETs `path` on the OsmAnd port until it answers `want` (a secret minted by the CLI reaches a
/// running server within its token reload interval, 1 s here).
fn until_status(osmand: &str, path: &str, want: u16) {
    for _ in 0..40 {
        if status_of_get(osmand, path) == Some(want) {
            return;
        }
        // Not faster: each refusal counts against this address's failures (20 a minute).
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("{path} never answered {want}");
}

crate::test!(a_first_fix_after_a_restart_that_jumps_from_the_stored_one_is_flagged_not_believed);
/// A first fix after a restart is judged against the unit's stored history: 13 km in 10 s is
/// stored as history flagged `jump`, and the unit (a responder, and a monitored key person)
/// stays where its last believed fix put it. Also: a secret minted and revoked with the CLI
/// beside a running server, and kept across the restart (its hash).
fn a_first_fix_after_a_restart_that_jumps_from_the_stored_one_is_flagged_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let out = safegrid(&url, &["token", "--role", "admin", "--name", "管理员"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (mut server, addr, osmand) = serve_tracking(&url, &[]);
    let unit = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.01, 22.51]},
        "properties": {"kind": "patrol", "callsign": "巡-J", "status": "available", "device_id": "jump-1"}});
    let (status, body) = http(&addr, "POST", "/api/v1/responders", &token, Some(&unit));
    assert_eq!(status, 201, "{body}");
    let r = body["id"].as_i64().unwrap();
    let person = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.03, 22.55]},
        "properties": {"category": "community_correction", "name": "孙八", "assigned_grid": "440304001", "device_id": "mon-9"}});
    let (status, body) = http(&addr, "POST", "/api/v1/key_personnel", &token, Some(&person));
    assert_eq!(status, 201, "{body}");
    let p = body["id"].as_i64().unwrap();
    // The responder's tracker from the CLI, the monitor's through the API.
    let unit_id = cli_identifier(&safegrid(&url, &["device-secret", "jump-1"]));
    assert!(unit_id.starts_with("jump-1:") && unit_id.len() >= "jump-1:".len() + 26, "{unit_id}");
    let (status, minted) = http(&addr, "POST", "/api/v1/devices/mon-9/secret", &token, None);
    assert_eq!(status, 201, "{minted}");
    let mon_id = minted["identifier"].as_str().unwrap().to_owned();

    let t0 = chrono::Utc::now().timestamp() - 300;
    until_status(&osmand, &format!("/?id={unit_id}&lat=22.52&lon=114.02&timestamp={t0}"), 200);
    assert_eq!(status_of_get(&osmand, &format!("/?id={mon_id}&lat=22.55&lon=114.035&timestamp={t0}")), Some(200));
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, addr, osmand) = serve_tracking(&url, &[]);
    let t1 = t0 + 10;
    assert_eq!(status_of_get(&osmand, &format!("/?id={unit_id}&lat=22.5&lon=113.9&timestamp={t1}")), Some(200));
    assert_eq!(status_of_get(&osmand, &format!("/?id={mon_id}&lat=22.5&lon=113.9&timestamp={t1}")), Some(200));
    let (_, now) = http(&addr, "GET", &format!("/api/v1/responders/{r}"), &token, None);
    assert_eq!(now["geometry"]["coordinates"], json!([114.02, 22.52]), "the responder was not moved 13 km");
    let (_, now) = http(&addr, "GET", &format!("/api/v1/key_personnel/{p}"), &token, None);
    assert_eq!(now["geometry"]["coordinates"], json!([114.035, 22.55]), "the key person was not moved 13 km");
    let (_, trace) =
        http(&addr, "GET", &format!("/api/v1/responders/{r}/trace?format=json&flagged=true"), &token, None);
    let pts = trace["points"].as_array().unwrap();
    assert_eq!(pts.len(), 2, "{trace}");
    assert_eq!(pts[1]["flags"], json!(["jump"]), "{trace}");

    // Revoked from the CLI: the running server refuses the tracker within its reload interval.
    let out = safegrid(&url, &["device-secret", "jump-1", "--revoke"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    until_status(&osmand, &format!("/?id={unit_id}&lat=22.52&lon=114.0201&timestamp={}", t1 + 5), 403);
    // The CLI mints only for a device someone carries.
    assert!(!safegrid(&url, &["device-secret", "nobody-has-it"]).status.success());
    server.kill().unwrap();
    server.wait().unwrap();
}

crate::test!(kill_9_loses_only_repeat_counts_and_the_audit_chain_runs_on_across_restarts);
/// The audit log across crashes: `kill -9` loses at most the counts of repeated reads still in
/// memory, never the fact of a read (the first of them is written before its data leaves); a
/// graceful stop (SIGTERM) writes the counts; the hash chain runs on across restarts, and
/// `safegrid audit-log verify` passes and names the head.
fn kill_9_loses_only_repeat_counts_and_the_audit_chain_runs_on_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("safegrid.db").display());
    let grids = dir.path().join("grids.geojson");
    write_fixture_grids(&grids);
    assert!(safegrid(&url, &["import", "--layer", "grids", "--file", grids.to_str().unwrap()]).status.success());
    let token = |role: &str, name: &str| {
        String::from_utf8(safegrid(&url, &["token", "--role", role, "--name", name]).stdout).unwrap().trim().to_owned()
    };
    let wall = token("dispatcher", "大屏");
    let auditor = token("auditor", "审计");
    let verify = || {
        let out = safegrid(&url, &["audit-log", "verify"]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let poll = |addr: &str| {
        for _ in 0..5 {
            assert_eq!(http(addr, "GET", "/api/v1/key_personnel", &wall, None).0, 200);
        }
    };

    let (mut server, addr) = serve(&url);
    poll(&addr);
    server.kill().unwrap(); // SIGKILL: the four repeats' count is lost, the read is not
    server.wait().unwrap();
    let (code, said) = verify();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("1 chained rows checked"), "{said}");

    let (mut server, addr) = serve(&url);
    poll(&addr);
    let term = std::process::Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(term.success());
    assert!(server.wait().unwrap().success(), "a graceful stop");
    let (code, said) = verify();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("3 chained rows checked"), "the first read and its four repeats: {said}");

    let (mut server, addr) = serve(&url);
    let (_, log) = http(&addr, "GET", "/api/v1/audit_log?actor=%E5%A4%A7%E5%B1%8F", &auditor, None);
    let repeats: Vec<i64> = log["rows"].as_array().unwrap().iter().map(|r| r["repeats"].as_i64().unwrap()).collect();
    assert_eq!(repeats, [4, 1, 1], "{log}");
    server.kill().unwrap();
    server.wait().unwrap();
}
