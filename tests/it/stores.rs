//! One behaviour, two stores: the same suite runs on the embedded SQLite store and on PostGIS.

use crate::support;

use chrono::{SubsecRound, TimeZone, Utc};
use safegrid_geodata::{GridCode, LonLat};
use safegrid_services::access::Role;
use safegrid_services::layer::{Item, Layer, Props};
use safegrid_services::store::{AuditQuery, AuditRow, DeviceSecretRecord, ItemWrite, Store, TokenRecord, WriteRecord};
use serde_json::json;
use std::sync::Arc;

fn item(id: i64, lon: f64, lat: f64) -> Item {
    let t = Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap();
    Item {
        id,
        pos: LonLat::new(lon, lat).unwrap(),
        grid: Some(GridCode::parse("440304001").unwrap()),
        props: Props::parse(
            Layer::Incidents,
            json!({"type": "theft", "priority": 2, "status": "open", "reported_at": "2026-11-20T07:59:00Z", "description": "电动车被盗"}),
        )
        .unwrap(),
        created_at: t,
        updated_at: t,
    }
}

async fn suite(store: Arc<dyn Store>, raw_sql: impl AsyncFn(&str) -> Result<(), String>) {
    // Grids round-trip exactly.
    let grids = support::fixture_grids();
    store.write_grids(grids.units(), true, &[]).await.unwrap();
    let back = store.load_grids().await.unwrap();
    assert_eq!(back.len(), grids.len());
    for (a, b) in grids.units().iter().zip(&back) {
        assert_eq!((&a.code, &a.name, a.level, &a.manager), (&b.code, &b.name, b.level, &b.manager));
        assert_eq!(a.geometry, b.geometry, "{} geometry changed in the store", a.code);
    }
    store.write_grids(&grids.units()[..1], true, &[]).await.unwrap();
    assert_eq!(store.load_grids().await.unwrap().len(), 1, "replace removes what is not given");
    store.write_grids(&grids.units()[1..2], false, &[]).await.unwrap();
    assert_eq!(store.load_grids().await.unwrap().len(), 2, "an upsert keeps the others");

    // Items: insert, load, update, delete.
    let items: Vec<Item> = (1..=5).map(|i| item(i, 114.0 + f64::from(i as i32) * 0.01, 22.55)).collect();
    store.insert_items(Layer::Incidents, &items).await.unwrap();
    assert_eq!(store.load_items(Layer::Incidents).await.unwrap(), items);
    assert_eq!(store.max_id(Layer::Incidents).await.unwrap(), 5);
    assert_eq!(store.max_id(Layer::Posts).await.unwrap(), 0);
    let mut changed = items[2].clone();
    changed.pos = LonLat::new(114.123_456_789, 22.5).unwrap();
    changed.grid = None;
    assert!(store.update_item(&changed).await.unwrap());
    assert!(!store.update_item(&item(99, 114.0, 22.5)).await.unwrap());
    assert!(store.delete_item(Layer::Incidents, 5).await.unwrap());
    assert!(!store.delete_item(Layer::Incidents, 5).await.unwrap());
    assert_eq!(store.max_id(Layer::Incidents).await.unwrap(), 5, "a deleted id is never reused");
    // Items that move to another grid with a grid change are stored in the same transaction.
    let mut moved = items[0].clone();
    moved.grid = Some(GridCode::parse("440304002").unwrap());
    store.write_grids(&[], false, std::slice::from_ref(&moved)).await.unwrap();
    let now = store.load_items(Layer::Incidents).await.unwrap();
    assert_eq!(now.len(), 4);
    assert_eq!(now.iter().find(|i| i.id == 3).unwrap(), &changed);
    assert_eq!(now.iter().find(|i| i.id == 1).unwrap(), &moved);

    // A batch with one bad row (a duplicate id) writes nothing.
    let batch = vec![item(10, 114.0, 22.5), item(11, 114.0, 22.5), item(2, 114.0, 22.5)];
    assert!(store.insert_items(Layer::Incidents, &batch).await.is_err());
    assert_eq!(store.load_items(Layer::Incidents).await.unwrap().len(), 4, "all or none");

    // A large batch crosses the statement chunking.
    let many: Vec<Item> = (100..12_100).map(|i| item(i, 114.0 + (i % 1000) as f64 * 1e-4, 22.5)).collect();
    store.insert_items(Layer::Incidents, &many).await.unwrap();
    assert_eq!(store.load_items(Layer::Incidents).await.unwrap().len(), 4 + 12_000);

    // The audit log is append-only, even to someone with SQL access.
    let row = AuditRow {
        id: 0,
        at: Utc::now(),
        actor: "甲".into(),
        role: "dispatcher".into(),
        action: "get".into(),
        request: "GET /api/v1/key_personnel/1".into(),
        result_count: 1,
        layer: None,
        subjects: vec![],
        kind: "read".into(),
        outcome: "ok".into(),
        repeats: 1,
        last_at: None,
        prev_hash: None,
        hash: None,
    };
    let a = store.append_audit(&row).await.unwrap();
    let b = store.append_audit(&row).await.unwrap();
    assert!(b > a);
    let rows = store.audit_rows(AuditQuery { before_id: None, limit: 10 }).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [b, a]);

    assert_eq!(rows[0].actor, "甲");
    assert!(raw_sql("UPDATE audit_log SET actor = 'x'").await.is_err(), "audit rows cannot be changed");
    assert!(raw_sql("DELETE FROM audit_log").await.is_err(), "audit rows cannot be deleted");
    let replace = if store.backend() == "sqlite" {
        format!(
            "INSERT OR REPLACE INTO audit_log (id, at, actor, role, action, request, result_count) VALUES ({a}, '2026-01-01T00:00:00Z', 'x', 'x', 'x', 'x', 0)"
        )
    } else {
        format!(
            "INSERT INTO audit_log (id, at, actor, role, action, request, result_count) VALUES ({}, now(), 'x', 'x', 'x', 'x', 0)",
            b + 1
        )
    };
    assert!(raw_sql(&replace).await.is_err(), "audit rows cannot be replaced or pre-empted: {replace}");
    assert_eq!(store.audit_rows(AuditQuery { before_id: None, limit: 10 }).await.unwrap().len(), 2);

    // An item write and what records it are one transaction: a row that cannot be appended
    // (its id is taken) takes the write down with it, and a write that finds nothing stores no
    // row and revokes nothing.
    let stored = store.load_items(Layer::Incidents).await.unwrap();
    let secret = |d: &str| DeviceSecretRecord { device_id: d.into(), hash: "ab".repeat(32), created_at: Utc::now() };
    store.put_device_secret(&secret("trk-1")).await.unwrap();
    let clash = AuditRow { id: b, ..row.clone() };
    let with_clash = WriteRecord { audit: Some(&clash), revoke_device: Some(("trk-1", Utc::now())) };
    let fresh = item(20_000, 114.05, 22.55);
    let mut moved = stored[0].clone();
    moved.pos = LonLat::new(114.09, 22.59).unwrap();
    for write in [ItemWrite::Insert(&fresh), ItemWrite::Update(&moved), ItemWrite::Delete(Layer::Incidents, moved.id)] {
        assert!(store.write_item(write, with_clash).await.is_err(), "{write:?}");
        assert_eq!(store.load_items(Layer::Incidents).await.unwrap(), stored, "{write:?} stored nothing");
        assert_eq!(store.device_secrets().await.unwrap().len(), 1, "{write:?} revoked nothing");
    }
    assert_eq!(store.max_id(Layer::Incidents).await.unwrap(), 12_099, "nor raised the high-water id");
    let next = AuditRow { id: b + 1, ..row.clone() };
    let gone = item(99_999, 114.0, 22.5);
    let none = WriteRecord { audit: Some(&next), revoke_device: Some(("trk-1", Utc::now())) };
    assert!(!store.write_item(ItemWrite::Delete(Layer::Incidents, gone.id), none).await.unwrap());
    assert!(!store.write_item(ItemWrite::Update(&gone), none).await.unwrap());
    assert_eq!(store.audit_head().await.unwrap().unwrap().id, b, "no row for a write that found nothing");
    assert_eq!(store.device_secrets().await.unwrap().len(), 1);
    assert!(store.write_item(ItemWrite::Update(&moved), none).await.unwrap());
    assert_eq!(store.audit_head().await.unwrap().unwrap().id, b + 1, "the row came with the write");
    assert!(store.device_secrets().await.unwrap().is_empty(), "and the revocation");
    assert_eq!(store.load_items(Layer::Incidents).await.unwrap().iter().find(|i| i.id == moved.id), Some(&moved));

    // Tokens and settings.
    let t = TokenRecord {
        hash: "ab".repeat(32),
        name: "w".into(),
        role: Role::GridWorker,
        grids: vec![GridCode::parse("440304001").unwrap()],
    };
    store.put_token(&t).await.unwrap();
    assert_eq!(store.tokens().await.unwrap(), vec![t.clone()]);
    assert!(store.delete_token(&t.hash).await.unwrap());
    assert!(!store.delete_token(&t.hash).await.unwrap());
    assert!(store.tokens().await.unwrap().is_empty());
    // Trackers' secrets: hashes only; minting again rotates, revoking leaves none in force.
    let at = chrono::DateTime::from_timestamp(1_795_334_400, 0).unwrap();
    let secret = |h: &str| safegrid_services::store::DeviceSecretRecord {
        device_id: "dev-a:1".into(),
        hash: h.repeat(32),
        created_at: at,
    };
    store.put_device_secret(&secret("cd")).await.unwrap();
    store.put_device_secret(&secret("ef")).await.unwrap();
    assert_eq!(store.device_secrets().await.unwrap(), vec![secret("ef")]);
    assert!(store.revoke_device_secret("dev-a:1", at).await.unwrap());
    assert!(!store.revoke_device_secret("dev-a:1", at).await.unwrap(), "revoked once");
    assert!(store.device_secrets().await.unwrap().is_empty());
    store.put_device_secret(&secret("01")).await.unwrap();
    assert_eq!(store.device_secrets().await.unwrap(), vec![secret("01")], "minted again after a revocation");
    assert!(store.revoke_device_secret("dev-a:1", at).await.unwrap());
    assert_eq!(store.meta("k").await.unwrap(), None);
    store.set_meta("k", "v1").await.unwrap();
    store.set_meta("k", "v2").await.unwrap();
    assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v2"));

    // Position history and grid crossings: stored together, read back exactly; a re-sent fix
    // is kept once; a responder and a key person with the same id are separate histories.
    use safegrid_services::positions::geofence::{EventKind, GridEvent};
    use safegrid_services::positions::{Subject, TracePoint};
    let t = |ms: i64| chrono::DateTime::from_timestamp_millis(1_795_334_400_000 + ms).unwrap();
    let fix = |subject, ms: i64, lon: f64, flags: u8| TracePoint {
        subject,
        unit_id: 7,
        time: t(ms),
        pos: LonLat::new(lon, 22.55).unwrap(),
        speed_mps: Some(3.5),
        bearing_deg: None,
        altitude_m: Some(12.0),
        accuracy_m: Some(6.0),
        battery_pct: None,
        flags,
        attributes: (ms == 0).then(|| r#"{"sat":"9"}"#.to_owned()),
        received: t(ms + 250),
    };
    let fixes = vec![
        fix(Subject::Responder, 0, 114.049, 0),
        fix(Subject::Responder, 1_000, 114.0495, 2),
        fix(Subject::Responder, 2_000, 114.051, 0),
        fix(Subject::KeyPerson, 1_000, 114.02, 0),
    ];
    let crossing = |id: i64, kind, code: &str| GridEvent {
        id,
        time: t(2_000),
        subject: Subject::Responder,
        unit_id: 7,
        kind,
        grid_code: GridCode::parse(code).unwrap(),
        pos: LonLat::new(114.051, 22.55).unwrap(),
    };
    let events = vec![crossing(1, EventKind::Exit, "440304001"), crossing(2, EventKind::Enter, "440304002")];
    assert_eq!(store.insert_fixes(&fixes, &events).await.unwrap(), 4);
    assert_eq!(store.insert_fixes(&fixes[..1], &[]).await.unwrap(), 0, "a re-sent fix is stored once");
    let (from, to) = (t(-1), t(10_000));
    // Attributes are a JSON object; PostGIS keeps them as JSONB, which spaces them its own way.
    let same_json = |mut v: Vec<TracePoint>| {
        for p in &mut v {
            p.attributes =
                p.attributes.take().map(|a| serde_json::from_str::<serde_json::Value>(&a).unwrap().to_string());
        }
        v
    };
    assert_eq!(same_json(store.trace(Subject::Responder, 7, from, to, 100).await.unwrap()), fixes[..3].to_vec());
    assert_eq!(store.trace(Subject::KeyPerson, 7, from, to, 100).await.unwrap(), fixes[3..].to_vec());
    assert_eq!(store.last_live_fixes(Subject::Responder, &[7, 8]).await.unwrap(), vec![fixes[2].clone()]);
    assert_eq!(store.geofence_events(0, 10).await.unwrap(), events);
    assert_eq!(store.geofence_events(1, 10).await.unwrap(), events[1..].to_vec());
    assert_eq!(store.max_geofence_event_id().await.unwrap(), 2);
    // Zone alerts are counted per person; grid crossings are not alerts.
    let alert =
        |id: i64, kind| GridEvent { subject: Subject::KeyPerson, kind, ..crossing(id, EventKind::Exit, "440304001") };
    let alerts = [alert(3, EventKind::ZoneBreach), alert(4, EventKind::ZoneReturn), alert(5, EventKind::Exit)];
    store.insert_fixes(&[], &alerts).await.unwrap();
    assert_eq!(store.zone_alert_count(Subject::KeyPerson, 7).await.unwrap(), 2);
    assert_eq!(store.zone_alert_count(Subject::Responder, 7).await.unwrap(), 0);
    assert_eq!(store.zone_alert_count(Subject::KeyPerson, 8).await.unwrap(), 0);
    // A failed group writes neither its fixes nor its events.
    let later = vec![fix(Subject::Responder, 3_000, 114.052, 0)];
    assert!(store.insert_fixes(&later, &events[..1]).await.is_err(), "a reused event id fails the group");
    assert_eq!(store.trace(Subject::Responder, 7, from, to, 100).await.unwrap().len(), 3);
    // Retention.
    store.drop_fixes_before(t(1_500)).await.unwrap();
    assert_eq!(store.trace(Subject::Responder, 7, from, to, 100).await.unwrap(), fixes[2..3].to_vec());

    // The dispatch log: written whole, read back in order, never rewritten.
    use safegrid_services::dispatch::board::DispatchEvent;
    let at = chrono::DateTime::from_timestamp_millis(1_795_334_400_123).unwrap();
    let events: Vec<DispatchEvent> = (1..=3)
        .map(|i| DispatchEvent {
            id: i,
            dispatch_id: 1,
            incident_id: 7,
            unit_id: (i > 1).then_some(40 + i),
            post_id: None,
            kind: if i == 1 { "created".into() } else { "dispatched".into() },
            at,
            actor: "值班员".into(),
            detail: (i == 1).then(|| serde_json::json!({"deadlines": {"ack_s": 60, "arrive_s": 300}})),
        })
        .collect();
    store.append_dispatch_events(&events).await.unwrap();
    assert_eq!(store.dispatch_events().await.unwrap(), events);
    assert!(raw_sql("UPDATE dispatch_events SET kind = 'x'").await.is_err(), "the dispatch log is append-only");
    assert!(raw_sql("DELETE FROM dispatch_events").await.is_err(), "the dispatch log is append-only");
    // A failed batch writes none of its rows.
    let dup = vec![DispatchEvent { id: 4, ..events[0].clone() }, events[0].clone()];
    assert!(store.append_dispatch_events(&dup).await.is_err());
    assert_eq!(store.dispatch_events().await.unwrap().len(), 3);
    store.ping().await.unwrap();
}

crate::test!(async the_sqlite_store_passes_the_store_suite);
async fn the_sqlite_store_passes_the_store_suite() {
    let (store, _dir, url) = support::sqlite_store().await;
    let raw = async |sql: &str| -> Result<(), String> {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.map_err(|e| e.to_string())?;
        sqlx::query(sql).execute(&mut c).await.map(|_| ()).map_err(|e| e.to_string())
    };
    suite(store, raw).await;
}

crate::test!(async the_postgis_store_passes_the_store_suite, PostGis);
async fn the_postgis_store_passes_the_store_suite() {
    let Some((store, url)) = support::pg_store("the_postgis_store_passes_the_store_suite").await else { return };
    let raw = async |sql: &str| -> Result<(), String> {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.map_err(|e| e.to_string())?;
        sqlx::query(sql).execute(&mut c).await.map(|_| ()).map_err(|e| e.to_string())
    };
    suite(store, raw).await;
}

/// The audit log's hash chain on a real store: rows written before the chain are counted apart;
/// the service's appends link up across a restart; a row altered or deleted directly in the
/// database (its trigger dropped first, as an intruder with the owner's rights would) is named
/// by the same check `safegrid audit-log verify` runs; a cut-off tail is caught with the head
/// noted outside; a filter by one subject id works.
async fn audit_chain_suite(store: Arc<dyn Store>, url: &str, raw_sql: impl AsyncFn(&str) -> Result<(), String>) {
    // `safegrid audit-log verify`, the real binary: exit code and what it printed.
    let cli = |extra: &[&str]| {
        let mut args = vec!["audit-log", "verify"];
        args.extend_from_slice(extra);
        let out = support::process::safegrid(url, &args);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    use safegrid_services::access::Principal;
    use safegrid_services::audit_log::{AuditEntry, AuditKind, Break, verify};
    use safegrid_services::service::Service;
    use safegrid_services::store::AuditFilter;
    let old = AuditRow {
        id: 0,
        at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        actor: "旧".into(),
        role: "dispatcher".into(),
        action: "get".into(),
        request: "GET /api/v1/key_personnel/1".into(),
        result_count: 1,
        layer: None,
        subjects: vec![],
        kind: "read".into(),
        outcome: "ok".into(),
        repeats: 1,
        last_at: None,
        prev_hash: None,
        hash: None,
    };
    store.append_audit(&old).await.unwrap();
    store.append_audit(&old).await.unwrap();
    // As a database upgraded from before the chain holds them: migration 0007 recorded that the
    // chain begins after those rows. The record is guarded like the log.
    let (unguard_start, guard_start) = if store.backend() == "sqlite" {
        (
            vec!["DROP TRIGGER meta_audit_chain_start_no_update", "DROP TRIGGER meta_audit_chain_start_no_delete"],
            vec![
                "CREATE TRIGGER meta_audit_chain_start_no_update BEFORE UPDATE ON meta WHEN OLD.key = 'audit_chain_start' BEGIN SELECT RAISE(ABORT, 'fixed'); END",
                "CREATE TRIGGER meta_audit_chain_start_no_delete BEFORE DELETE ON meta WHEN OLD.key = 'audit_chain_start' BEGIN SELECT RAISE(ABORT, 'fixed'); END",
            ],
        )
    } else {
        (
            vec!["ALTER TABLE meta DISABLE TRIGGER meta_audit_chain_start_fixed"],
            vec!["ALTER TABLE meta ENABLE TRIGGER meta_audit_chain_start_fixed"],
        )
    };
    assert_eq!(
        verify(store.as_ref(), None).await.unwrap().broken,
        Some(Break::Unsealed { id: 1 }),
        "rows without a hash after the chain began"
    );
    assert!(
        raw_sql("UPDATE meta SET value = '3' WHERE key = 'audit_chain_start'").await.is_err(),
        "the chain start is fixed"
    );
    assert!(raw_sql("DELETE FROM meta WHERE key = 'audit_chain_start'").await.is_err(), "the chain start is fixed");
    assert!(store.set_meta("audit_chain_start", "3").await.is_err(), "nor replaced (SQLite's INSERT OR REPLACE)");
    for sql in &unguard_start {
        raw_sql(sql).await.unwrap();
    }
    raw_sql("UPDATE meta SET value = '3' WHERE key = 'audit_chain_start'").await.unwrap();
    for sql in &guard_start {
        raw_sql(sql).await.unwrap();
    }
    store.write_grids(support::fixture_grids().units(), true, &[]).await.unwrap();
    let who = Principal { name: "值班员, \"甲\"".into(), role: Role::Dispatcher, grids: vec![] };
    // Times with nanoseconds: stored and hashed at microseconds, identically on both stores.
    let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap() + chrono::Duration::nanoseconds(123_456_789);
    let append = async |service: &Service, i: i64| {
        let request = format!("GET /api/v1/key_personnel/{}", 1000 + i);
        let entry = AuditEntry {
            action: if i % 2 == 0 { "get" } else { "update" },
            request: &request,
            layer: Some(Layer::KeyPersonnel),
            subjects: vec![1000 + i, 7],
            result_count: 1,
            kind: if i % 2 == 0 { AuditKind::Read } else { AuditKind::Write },
            ..AuditEntry::default()
        };
        service.audit_entry(&who, entry).await.unwrap();
    };
    {
        let service = Service::open(store.clone()).await.unwrap();
        service.set_audit_clock(Arc::new(move || t0 + chrono::Duration::seconds(1)));
        for i in 0..4 {
            append(&service, i).await;
        }
    }
    // Reopened: the chain goes on from the head in the store.
    let service = Service::open(store.clone()).await.unwrap();
    service.set_audit_clock(Arc::new(move || t0 + chrono::Duration::seconds(2)));
    for i in 4..6 {
        append(&service, i).await;
    }
    let v = verify(store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, None);
    assert_eq!((v.check.unchained, v.check.chained, v.check.last_id), (2, 6, Some(8)));
    let head = v.check.head.clone().unwrap();
    assert_eq!(service.audit_head().await, (8, head.clone()));
    let (code, said) = cli(&[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("6 chained rows checked, 2 before the chain") && said.contains(&head), "{said}");
    let rows = store.audit_rows(AuditQuery { before_id: None, limit: 100 }).await.unwrap();
    assert_eq!(rows[0].at, (t0 + chrono::Duration::seconds(2)).trunc_subsecs(6), "times round-trip at microseconds");
    assert_eq!(rows[0].actor, who.name);
    // One subject id finds exactly its rows; the other filters combine with it.
    let by = async |f: AuditFilter| -> Vec<i64> {
        store.audit_search(&f, AuditQuery { before_id: None, limit: 100 }).await.unwrap().iter().map(|r| r.id).collect()
    };
    assert_eq!(by(AuditFilter { subject: Some(1003), ..AuditFilter::default() }).await, [6]);
    assert_eq!(by(AuditFilter { subject: Some(7), ..AuditFilter::default() }).await, [8, 7, 6, 5, 4, 3]);
    assert_eq!(by(AuditFilter { subject: Some(100), ..AuditFilter::default() }).await, Vec::<i64>::new());
    assert_eq!(
        by(AuditFilter { kind: Some("write".into()), subject: Some(7), ..AuditFilter::default() }).await,
        [8, 6, 4]
    );
    assert_eq!(
        by(AuditFilter { since: Some(t0 + chrono::Duration::milliseconds(1500)), ..AuditFilter::default() }).await,
        [8, 7]
    );
    assert_eq!(
        by(AuditFilter {
            actor: Some(who.name.clone()),
            until: Some(t0 + chrono::Duration::milliseconds(1500)),
            ..AuditFilter::default()
        })
        .await,
        [6, 5, 4, 3]
    );

    // Altered directly in the database, the trigger out of the way.
    let (unguard, guard) = if store.backend() == "sqlite" {
        (
            vec!["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
            vec![
                "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
                "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
            ],
        )
    } else {
        (
            vec!["ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"],
            vec!["ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change"],
        )
    };
    for sql in &unguard {
        raw_sql(sql).await.unwrap();
    }
    raw_sql("UPDATE audit_log SET actor = 'someone else' WHERE id = 5").await.unwrap();
    let v = verify(store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, Some(Break::Altered { id: 5 }));
    assert_eq!(v.broken.unwrap().to_string(), "row 5 was altered: its content does not match its hash");
    let (code, said) = cli(&[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("row 5 was altered"), "{said}");
    // A subject taken out of the list is an alteration too.
    raw_sql(&format!("UPDATE audit_log SET actor = '{}' WHERE id = 5", who.name.replace('\'', "''"))).await.unwrap();
    assert_eq!(verify(store.as_ref(), None).await.unwrap().broken, None, "put back, it verifies again");
    let one = if store.backend() == "sqlite" { "'[1001]'" } else { "'[1001]'::jsonb" };
    raw_sql(&format!("UPDATE audit_log SET subjects = {one} WHERE id = 4")).await.unwrap();
    assert_eq!(verify(store.as_ref(), None).await.unwrap().broken, Some(Break::Altered { id: 4 }));
    raw_sql(&format!("UPDATE audit_log SET subjects = {} WHERE id = 4", one.replace("[1001]", "[7, 1001]")))
        .await
        .unwrap();
    assert_eq!(verify(store.as_ref(), None).await.unwrap().broken, None);

    // A deleted row.
    raw_sql("DELETE FROM audit_log WHERE id = 6").await.unwrap();
    let v = verify(store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, Some(Break::Missing { after: 5, next: 7 }));
    assert_eq!(v.check.chained, 3, "rows 3 to 5 checked before it");
    let (code, said) = cli(&[]);
    assert_eq!((code, said.contains("row 6 is missing (deleted)")), (Some(1), true), "{said}");
    // The tail cut off: only the head noted outside the database tells.
    raw_sql("DELETE FROM audit_log WHERE id >= 6").await.unwrap();
    assert_eq!(verify(store.as_ref(), None).await.unwrap().broken, None);
    assert!(matches!(
        verify(store.as_ref(), Some(head.clone())).await.unwrap().broken,
        Some(Break::HeadMissing { last_id: Some(5), .. })
    ));
    assert_eq!(cli(&[]).0, Some(0));
    let (code, said) = cli(&["--expect-head", &head]);
    assert_eq!((code, said.contains("cut off")), (Some(1), true), "{said}");
    // Every hash erased does not pass as a log from before the chain: the recorded start says
    // where sealed rows begin. Nor does erasing that record.
    raw_sql("UPDATE audit_log SET hash = NULL, prev_hash = NULL").await.unwrap();
    assert_eq!(verify(store.as_ref(), None).await.unwrap().broken, Some(Break::Unsealed { id: 3 }));
    for sql in &unguard_start {
        raw_sql(sql).await.unwrap();
    }
    raw_sql("DELETE FROM meta WHERE key = 'audit_chain_start'").await.unwrap();
    assert_eq!(verify(store.as_ref(), None).await.unwrap().broken, Some(Break::StartMissing));
    let (code, said) = cli(&[]);
    assert_eq!((code, said.contains("where the chain begins")), (Some(1), true), "{said}");
    for sql in &guard {
        raw_sql(sql).await.unwrap();
    }
    assert!(raw_sql("UPDATE audit_log SET actor = 'x'").await.is_err(), "the guard is back");
}

crate::test!(async the_sqlite_audit_log_chain_catches_altered_and_deleted_rows);
async fn the_sqlite_audit_log_chain_catches_altered_and_deleted_rows() {
    let (store, _dir, url) = support::sqlite_store().await;
    let raw = async |sql: &str| -> Result<(), String> {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.map_err(|e| e.to_string())?;
        sqlx::query(sql).execute(&mut c).await.map(|_| ()).map_err(|e| e.to_string())
    };
    audit_chain_suite(store, &url, raw).await;
}

crate::test!(async the_postgis_audit_log_chain_catches_altered_and_deleted_rows, PostGis);
async fn the_postgis_audit_log_chain_catches_altered_and_deleted_rows() {
    let Some((store, url)) = support::pg_store("the_postgis_audit_log_chain_catches_altered_and_deleted_rows").await
    else {
        return;
    };
    let raw = async |sql: &str| -> Result<(), String> {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.map_err(|e| e.to_string())?;
        sqlx::query(sql).execute(&mut c).await.map(|_| ()).map_err(|e| e.to_string())
    };
    audit_chain_suite(store, &url, raw).await;
}

crate::test!(async postgis_tables_are_real_geometry_with_gist_indexes, PostGis);
async fn postgis_tables_are_real_geometry_with_gist_indexes() {
    let Some((store, url)) = support::pg_store("postgis_tables_are_real_geometry_with_gist_indexes").await else {
        return;
    };
    store.write_grids(support::fixture_grids().units(), true, &[]).await.unwrap();
    store.insert_items(Layer::Incidents, &[item(1, 114.02, 22.55)]).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let cols: Vec<(String, String, i32)> =
        sqlx::query_as("SELECT f_table_name::text, type::text, srid FROM geometry_columns ORDER BY f_table_name::text")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(cols.contains(&("grid_units".into(), "MULTIPOLYGON".into(), 4326)), "{cols:?}");
    for l in Layer::ALL {
        assert!(cols.contains(&(l.name().into(), "POINT".into(), 4326)), "{l}: {cols:?}");
    }
    let gist: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%USING gist (geom)%'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(gist, 6);
    // PostGIS itself agrees with where the service put the incident.
    let code: String = sqlx::query_scalar(
        "SELECT g.code FROM grid_units g JOIN incidents i ON ST_Contains(g.geom, i.geom) WHERE g.level = 'grid'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(code, "440304001");
}

/// `postgres://user[:password]@host[:port]/db` as libpq keywords: GDAL appends its own
/// `application_name=…` to the connection string, which only the keyword form tolerates.
fn libpq_keywords(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('?').next().unwrap_or(rest);
    let (auth, host_db) = rest.rsplit_once('@').map_or(("", rest), |(a, h)| (a, h));
    let (host_port, db) = host_db.split_once('/').unwrap_or((host_db, ""));
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "5432"));
    let (user, password) = auth.split_once(':').map_or((auth, None), |(u, p)| (u, Some(p)));
    let mut s = format!("host={host} port={port} dbname={db}");
    if !user.is_empty() {
        s.push_str(&format!(" user={user}"));
    }
    if let Some(p) = password {
        s.push_str(&format!(" password={p}"));
    }
    s
}

crate::test!(async gdal_ogrinfo_reads_every_postgis_table_as_a_layer, PostGis);
async fn gdal_ogrinfo_reads_every_postgis_table_as_a_layer() {
    let test = "gdal_ogrinfo_reads_every_postgis_table_as_a_layer";
    let Some((store, url)) = support::pg_store(test).await else { return };
    if std::process::Command::new("ogrinfo").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "{test}: CI installs gdal-bin, but ogrinfo is missing");
        eprintln!("{test}: skipped — ogrinfo (Debian gdal-bin) is not installed");
        return;
    }
    store.write_grids(support::fixture_grids().units(), true, &[]).await.unwrap();
    store
        .insert_items(
            Layer::Posts,
            &[item(1, 114.02, 22.55)].map(|mut i| {
                i.props = Props::parse(Layer::Posts, json!({"kind": "police_room", "name": "百花警务室"})).unwrap();
                i
            }),
        )
        .await
        .unwrap();
    let pg = format!("PG:{}", libpq_keywords(&url));
    let out = std::process::Command::new("ogrinfo").args(["-ro", "-so", &pg]).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}{}", String::from_utf8_lossy(&out.stderr));
    assert!(listing.contains("grid_units (Multi Polygon)"), "{listing}");
    for l in Layer::ALL {
        assert!(listing.contains(&format!("{} (Point)", l.name())), "{l}: {listing}");
    }
    let out = std::process::Command::new("ogrinfo").args(["-ro", "-so", &pg, "grid_units"]).output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("Feature Count: 5"), "{summary}");
    assert!(summary.contains("Extent: (114.000000, 22.500000) - (114.200000, 22.600000)"), "{summary}");
    let out = std::process::Command::new("ogrinfo").args(["-ro", &pg, "posts"]).output().unwrap();
    let posts = String::from_utf8_lossy(&out.stdout);
    assert!(posts.contains("POINT (114.02 22.55)") && posts.contains("百花警务室"), "{posts}");
}
