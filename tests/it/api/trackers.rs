//! Tracker secrets, their limits, and the database file's modes.

use super::*;

crate::test!(async an_osmand_fix_without_the_devices_secret_moves_nothing_and_strangers_all_get_one_answer);
/// The defect found by the attacker's test: an OsmAnd fix moved a unit 52 km with no
/// credential, and the answer told a known device id from an unknown one.
#[expect(clippy::float_cmp, reason = "counters are whole numbers, exact in f64")]
async fn an_osmand_fix_without_the_devices_secret_moves_nothing_and_strangers_all_get_one_answer() {
    let f = fixture().await;
    let a = tracked_unit(&f, "dev-000001", 114.01, 22.51).await;
    tracked_unit(&f, "dev-000002", 114.02, 22.52).await;
    // Minted by a dispatcher: 201, shown once, never cached.
    let r = mint(&f, Role::Dispatcher, "dev-000001").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 26, "at least 128 bits");
    let ident = r.body["identifier"].as_str().unwrap().to_owned();
    assert_eq!(ident, format!("dev-000001:{secret}"));
    // The secret is stored hashed, never in the clear.
    let db = f.store.device_secrets().await.unwrap();
    assert_eq!(db.len(), 1);
    assert_ne!(db[0].hash, secret);
    assert_eq!(db[0].hash, safegrid_services::positions::devices::secret_hash(&secret));

    let t = unix_now() - 60;
    let r = f.call("GET", &format!("/api/v1/osmand?id={ident}&lat=22.515&lon=114.015&timestamp={t}"), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let place = |f: &Fixture| f.service.layer(Layer::Responders).get(a).map(|it| it.pos).unwrap();
    let before = place(&f);
    assert_eq!((before.lon(), before.lat()), (114.015, 22.515));
    let nearest = || async {
        let r =
            f.call("GET", "/api/v1/dispatch/nearest?lon=114.015&lat=22.515&k=2", Some(Role::Dispatcher), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.text
    };
    let nearest_before = nearest().await;
    // Where each unit stands and its last fix (not its age, which grows as the test runs).
    let live = || async {
        let r = f.call("GET", "/api/v1/positions/live", Some(Role::Dispatcher), None).await;
        r.body["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["id"].clone(), u["geometry"].clone(), u["properties"]["fix"].clone()))
            .collect::<Vec<_>>()
    };
    let live_before = live().await;

    // No secret, a wrong one, the other device's, an unknown device with or without one, the
    // secret with the wrong device: one status, one body, and nothing moves.
    let attempts = [
        "dev-000001".to_owned(),
        "dev-000001:wrongwrongwrongwrongwrongw".to_owned(),
        "dev-000001:".to_owned(),
        format!("dev-000002:{secret}"),
        "dev-000003".to_owned(),
        "dev-999999:wrongwrongwrongwrongwrongw".to_owned(),
    ];
    let mut answers = Vec::new();
    for (i, id) in attempts.iter().enumerate() {
        let q = format!("/api/v1/osmand?id={id}&lat=22.5&lon=113.9&timestamp={}", t + 10 + i as i64);
        let r = f.call("GET", &q, None, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{id}: {}", r.text);
        assert_eq!(r.content_type, "application/problem+json");
        assert!(!r.text.contains(&secret) && !r.text.contains("dev-0"), "the answer names nothing: {}", r.text);
        answers.push((r.status, r.content_type.clone(), r.text.clone()));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    assert_eq!(metric(&f, "unauthenticated_device").await, attempts.len() as f64);
    assert_eq!(place(&f), before, "the unit did not move");
    assert_eq!(nearest().await, nearest_before, "dispatch/nearest still sends the same units");
    assert_eq!(live().await, live_before, "shown live where it was");
    let all = chrono::DateTime::from_timestamp(0, 0).unwrap();
    let stored =
        f.store.trace(safegrid_services::positions::Subject::Responder, a, all, chrono::Utc::now(), 10).await.unwrap();
    assert_eq!(stored.len(), 1, "only the authenticated fix is stored");

    // The batch API refuses each unauthenticated fix, with one reason, never echoing a secret.
    let fix = |dev: &str, dt: i64| json!({"device_id": dev, "time": t + 100 + dt, "lon": 113.9, "lat": 22.5});
    let body = json!({"fixes": [
        fix("dev-000001", 0),
        fix("dev-000001:nottheone", 1),
        {"device_id": "dev-000001", "device_secret": "nottheone", "time": t + 102, "lon": 113.9, "lat": 22.5},
        fix("dev-000003:whatever", 3),
        fix(&ident, 4),
    ]});
    let r = f.call("POST", "/api/v1/positions", Some(Role::Gateway), Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let refused = r.body["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 4, "{}", r.text);
    for (i, x) in refused.iter().enumerate() {
        assert_eq!(x["index"], i);
        assert_eq!(x["reason"], "unauthenticated_device");
        assert!(!x["device_id"].as_str().unwrap().contains(':'), "{x}");
    }
    assert_eq!(r.body["stored"], 1, "the authenticated fix (a jump: history) is stored");
    assert_eq!(place(&f), before);

    // Revoked: refused at once in this process, with the same answer.
    let r = f.call("DELETE", "/api/v1/devices/dev-000001/secret", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = f
        .call("GET", &format!("/api/v1/osmand?id={ident}&lat=22.516&lon=114.016&timestamp={}", t + 200), None, None)
        .await;
    assert_eq!((r.status, r.text.clone()), (answers[0].0, answers[0].2.clone()));
    assert_eq!(place(&f), before);
    assert!(f.store.device_secrets().await.unwrap().is_empty(), "revoked in the store too");

    // Rotated: a new secret works and the one before it does not.
    let first = mint(&f, Role::Admin, "dev-000002").await.body["identifier"].as_str().unwrap().to_owned();
    let second = mint(&f, Role::Admin, "dev-000002").await.body["identifier"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let r = f
        .call("GET", &format!("/api/v1/osmand?id={first}&lat=22.521&lon=114.021&timestamp={}", t + 50), None, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = f
        .call("GET", &format!("/api/v1/osmand?id={second}&lat=22.521&lon=114.021&timestamp={}", t + 51), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

crate::test!(async tracker_secrets_are_managed_by_admins_and_dispatchers_for_carried_devices_only);
async fn tracker_secrets_are_managed_by_admins_and_dispatchers_for_carried_devices_only() {
    let f = fixture().await;
    tracked_unit(&f, "car-1", 114.01, 22.51).await;
    let person =
        json!({"category": "community_correction", "name": "钱七", "assigned_grid": "440304001", "device_id": "mon-1"});
    create_at(&f, Layer::KeyPersonnel, 114.03, 22.55, person).await;
    for role in [Role::GridWorker, Role::Auditor, Role::Gateway] {
        let r = mint(&f, role, "car-1").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}: {}", r.text);
        let r = f.call("DELETE", "/api/v1/devices/car-1/secret", Some(role), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}: {}", r.text);
    }
    assert_eq!(f.call("POST", "/api/v1/devices/car-1/secret", None, None).await.status, StatusCode::UNAUTHORIZED);
    // A key person's monitor is an admin's to manage.
    assert_eq!(mint(&f, Role::Dispatcher, "mon-1").await.status, StatusCode::FORBIDDEN);
    let r = f.call("DELETE", "/api/v1/devices/mon-1/secret", Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(mint(&f, Role::Admin, "mon-1").await.status, StatusCode::CREATED);
    // A device nobody carries has no secret to mint; an admin may still revoke whatever
    // secret it has (one minted from the command line, say), a dispatcher may not.
    let r = mint(&f, Role::Admin, "nobody-carries-this").await;
    assert_problem(&r, StatusCode::NOT_FOUND, "device_id");
    let r = f.call("DELETE", "/api/v1/devices/nobody-carries-this/secret", Some(Role::Dispatcher), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "device_id");
    let r = f.call("DELETE", "/api/v1/devices/nobody-carries-this/secret", Some(Role::Admin), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "device_id"); // nothing to revoke yet
    // A secret left in force (minted from the command line, say, its carrier since gone).
    let record = safegrid_services::store::DeviceSecretRecord {
        device_id: "nobody-carries-this".into(),
        hash: safegrid_services::positions::devices::secret_hash(&test_secret("nobody-carries-this")),
        created_at: chrono::Utc::now(),
    };
    f.store.put_device_secret(&record).await.unwrap();
    f.service.reload_device_secrets().await.unwrap();
    assert!(in_force(&f, &cred("nobody-carries-this")));
    let r = f.call("DELETE", "/api/v1/devices/nobody-carries-this/secret", Some(Role::Admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = osmand_from(
        &f,
        "192.0.2.50:1",
        &format!("id={}&lat=22.5&lon=114&timestamp={}", cred("nobody-carries-this"), unix_now()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "revoked: {}", r.text);
    // (An uncarried device is refused anyway: the secret itself must be gone.)
    assert!(!in_force(&f, &cred("nobody-carries-this")), "revoked in memory");
    assert_eq!(mint(&f, Role::Dispatcher, "car-1").await.status, StatusCode::CREATED);
    // The four acts are in the audit log, the secret nowhere in it.
    let rows = f.audit_rows().await;
    let acts: Vec<&str> = rows.iter().map(|r| r.action.as_str()).filter(|a| a.starts_with("device_secret")).collect();
    assert_eq!(acts.len(), 4, "{acts:?}");
}

crate::test!(async a_trackers_secret_dies_with_its_carrier_or_when_the_carrier_gives_it_up);
/// A secret does not outlive its carrier: deleting the unit, or giving its tracker up, revokes
/// it in the same transaction — in memory and in the store.
async fn a_trackers_secret_dies_with_its_carrier_or_when_the_carrier_gives_it_up() {
    let f = fixture().await;
    let a = tracked_unit(&f, "car-7", 114.01, 22.51).await;
    let b = tracked_unit(&f, "car-8", 114.02, 22.52).await;
    let ident_a = mint(&f, Role::Dispatcher, "car-7").await.body["identifier"].as_str().unwrap().to_owned();
    let ident_b = mint(&f, Role::Dispatcher, "car-8").await.body["identifier"].as_str().unwrap().to_owned();
    let t = unix_now() - 100;
    let report = |ident: &str, dt: i64| format!("id={ident}&lat=22.511&lon=114.011&timestamp={}", t + dt);
    assert_eq!(osmand_from(&f, "192.0.2.60:1", &report(&ident_a, 0)).await.status, StatusCode::OK);
    // The dispatcher moves car-7's tracker elsewhere: car-7 carries "car-7-new" now.
    let mut unit = f.call("GET", &format!("/api/v1/responders/{a}"), Some(Role::Dispatcher), None).await.body;
    unit["properties"]["device_id"] = json!("car-7-new");
    let r = f.call("PUT", &format!("/api/v1/responders/{a}"), Some(Role::Dispatcher), Some(unit)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(osmand_from(&f, "192.0.2.60:1", &report(&ident_a, 10)).await.status, StatusCode::FORBIDDEN);
    // car-8 is deleted.
    let r = f.call("DELETE", &format!("/api/v1/responders/{b}"), Some(Role::Dispatcher), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(osmand_from(&f, "192.0.2.61:1", &report(&ident_b, 20)).await.status, StatusCode::FORBIDDEN);
    // A device nobody carries is refused whatever its secret, so the refusals above alone would
    // not show the secrets gone: neither is in force in memory, nor in the store (a restart
    // would not revive them).
    assert!(!in_force(&f, &ident_a) && !in_force(&f, &ident_b));
    assert!(f.store.device_secrets().await.unwrap().is_empty());
}

/// Whether the secret in a tracker identifier (`DEVICE_ID:SECRET`) is the one in force.
fn in_force(f: &Fixture, ident: &str) -> bool {
    use safegrid_services::positions::devices::{Secret, split_credential};
    let (device, secret) = split_credential(ident);
    f.service.device_secrets().verify(device, secret.map(|s| Secret(s.to_owned())).as_ref())
}

crate::test!(async guessing_secrets_from_one_address_is_stopped_with_429_and_retry_after_without_locking_out_its_neighbours);
async fn guessing_secrets_from_one_address_is_stopped_with_429_and_retry_after_without_locking_out_its_neighbours() {
    let f = fixture().await;
    tracked_unit(&f, "g-1", 114.01, 22.51).await;
    let t = unix_now() - 500;
    // 20 failed authentications a minute per address and device id are answered; the next is refused
    // unchecked, even with the right secret, and says when to come back.
    for i in 0..20 {
        let r =
            osmand_from(&f, "198.51.100.7:40000", &format!("id=g-1:guess{i:04}&lat=22.5&lon=114&timestamp={}", t + i))
                .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "attempt {i}: {}", r.text);
    }
    let r = osmand_from(
        &f,
        "198.51.100.7:40001",
        &format!("id={}&lat=22.511&lon=114.011&timestamp={}", cred("g-1"), t + 30),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json");
    let wait: u64 = r.headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(metric(&f, "rate_limited").await >= 1.0);
    // Another address is not held back, and the device is not locked out by a stranger.
    let r =
        osmand_from(&f, "203.0.113.9:5000", &format!("id={}&lat=22.511&lon=114.011&timestamp={}", cred("g-1"), t + 31))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Nor is another tracker behind the same address (a carrier NAT): only the pair is held.
    tracked_unit(&f, "g-2", 114.02, 22.52).await;
    let r = osmand_from(
        &f,
        "198.51.100.7:40002",
        &format!("id={}&lat=22.521&lon=114.021&timestamp={}", cred("g-2"), t + 32),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // An IPv6 phone is one subscriber across its /64: a new address does not reset its count.
    for i in 0..20 {
        let addr = format!("[2408:8256:3::{:x}]:4000", i + 1);
        let r = osmand_from(&f, &addr, &format!("id=g-2:guess{i:04}&lat=22.5&lon=114&timestamp={}", t + 40 + i)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "attempt {i}: {}", r.text);
    }
    let r =
        osmand_from(&f, "[2408:8256:3:0:ffff::1]:4000", &format!("id=g-2:guess&lat=22.5&lon=114&timestamp={}", t + 70))
            .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}

crate::test!(async one_device_is_held_to_its_rate_but_its_offline_buffer_replays);
async fn one_device_is_held_to_its_rate_but_its_offline_buffer_replays() {
    let f = fixture().await;
    tracked_unit(&f, "fast-1", 114.01, 22.51).await;
    let t = unix_now() - 5_000;
    // The bucket refills so slowly here that the test does not depend on how fast this machine
    // commits: only the burst of 300 (an offline buffer replayed at once) goes through.
    let config = safegrid_services::ingest::IngestConfig {
        limits: safegrid_services::positions::devices::LimitConfig { device_rate: 1e-6, ..Default::default() },
        ..Default::default()
    };
    let (slow, background) = AppState::with_ingest(f.service.clone(), config);
    background.start();
    let slow = app(slow);
    let mut limited = None;
    for i in 0..400 {
        let q = format!(
            "id={}&lat=22.51&lon={:.6}&timestamp={}",
            cred("fast-1"),
            114.01 + f64::from(i) * 0.00001,
            t + i64::from(i)
        );
        let mut req = Request::builder().method("GET").uri(format!("/api/v1/osmand?{q}")).body(Body::empty()).unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo("192.0.2.1:1".parse::<std::net::SocketAddr>().unwrap()));
        let resp = slow.clone().oneshot(req).await.unwrap();
        let r = Reply {
            status: resp.status(),
            content_type: String::new(),
            headers: resp.headers().clone(),
            body: Value::Null,
            text: String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned(),
            raw: Vec::new(),
        };
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers.get(header::RETRY_AFTER).is_some());
            limited = Some(i);
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{i}: {}", r.text);
    }
    let at = limited.expect("the device's bucket ran dry");
    assert_eq!(at, 300, "limited after {at} fixes: the burst is 300");
}

crate::test!(async the_database_and_its_directory_are_readable_by_their_owner_only);
async fn the_database_and_its_directory_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city").join("safegrid.db");
    let url = format!("sqlite://{}", path.display());
    let store = safegrid_services::store::open(&url).await.unwrap();
    store.set_meta("written", "yes").await.unwrap();
    assert_eq!(mode(&dir.path().join("city")), 0o700);
    assert_eq!(mode(&path), 0o600);
    for suffix in ["-wal", "-shm"] {
        let side = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        assert!(side.exists(), "{suffix} exists while the store is open");
        assert_eq!(mode(&side), 0o600, "{suffix}");
    }
    drop(store);
    // A file left readable by others (by an older version) is tightened on the next start.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = safegrid_services::store::open(&url).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(store.meta("written").await.unwrap().as_deref(), Some("yes"), "the data is still there");
}
