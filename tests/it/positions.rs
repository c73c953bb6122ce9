//! Position ingest against real data: the GeoLife fixes (217,653 real GPS fixes of two people,
//! `../shared/data/geolife_sample`, tests only) replayed through the batch API, on SQLite and on
//! PostGIS. Every acknowledged fix must be in the store afterwards, exactly; a re-sent batch
//! must change nothing; a restart must put each unit at its last live fix; retention must cut
//! exactly at its time.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use http_body_util::BodyExt;
use safegrid_geodata::LonLat;
use safegrid_services::access::{Principal, Role};
use safegrid_services::api::{AppState, app};
use safegrid_services::layer::{Layer, Props};
use safegrid_services::service::Service;
use safegrid_services::store::Store;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;
use tower::ServiceExt;

/// One GeoLife row, re-timed.
struct Row {
    device: String,
    time: DateTime<Utc>,
    lon: f64,
    lat: f64,
}

/// The GeoLife sample, shifted so that its last fix was an hour ago (a replay: the intervals
/// are the device's, the dates today's, inside the retention window).
fn geolife(test: &str) -> Option<Vec<Row>> {
    let path = support::shared_data(test, "geolife_sample/geolife_sample.txt.gz")?;
    let file = std::fs::File::open(path).unwrap();
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut rows: Vec<Row> = reader
        .lines()
        .skip(1)
        .map(|l| {
            let l = l.unwrap();
            let f: Vec<&str> = l.split(',').collect();
            Row {
                device: format!("geolife-{}", f[3]),
                time: NaiveDateTime::parse_from_str(f[2], "%Y-%m-%d %H:%M:%S").unwrap().and_utc(),
                lat: f[0].parse().unwrap(),
                lon: f[1].parse().unwrap(),
            }
        })
        .collect();
    let last = rows.iter().map(|r| r.time).max().unwrap();
    let shift = (Utc::now() - Duration::hours(1)) - last;
    for r in &mut rows {
        r.time += shift;
    }
    Some(rows)
}

async fn post(app: &axum::Router, body: &Value) -> Value {
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/positions")
        .header(header::AUTHORIZATION, "Bearer gw-token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap()
}

/// A batch of the rows, each fix carrying its device's secret (`ID:SECRET`).
fn batch(rows: &[Row], secrets: &HashMap<String, String>) -> Value {
    let fixes: Vec<Value> = rows
        .iter()
        .map(|r| json!({"device_id": format!("{}:{}", r.device, secrets[&r.device]), "time": r.time.to_rfc3339(), "lon": r.lon, "lat": r.lat}))
        .collect();
    json!({ "fixes": fixes })
}

async fn replay(test: &str, store: Arc<dyn Store>) {
    let Some(rows) = geolife(test) else { return };
    let service = Arc::new(Service::open(store.clone()).await.unwrap());
    let admin = Principal { name: "admin".into(), role: Role::Admin, grids: vec![] };
    service
        .add_token("gw-token", &Principal { name: "gateway".into(), role: Role::Gateway, grids: vec![] })
        .await
        .unwrap();
    let mut units = HashMap::new();
    let mut secrets = HashMap::new();
    for uid in ["001", "005"] {
        let props = Props::parse(
            Layer::Responders,
            json!({"kind": "patrol", "callsign": format!("GeoLife {uid}"), "status": "available", "device_id": format!("geolife-{uid}")}),
        )
        .unwrap();
        let it = service.create(&admin, LonLat::new(116.3, 39.98).unwrap(), props).await.unwrap();
        units.insert(format!("geolife-{uid}"), it.id);
        let device = format!("geolife-{uid}");
        secrets.insert(device.clone(), service.mint_device_secret(&device).await.unwrap().unwrap().1);
    }
    let app = app(AppState::started(service.clone()));

    // Every fix acknowledged as stored, by (unit, milliseconds).
    let mut acked: HashMap<(i64, i64), (f64, f64)> = HashMap::new();
    let (mut live, mut history) = (0, 0);
    for chunk in rows.chunks(5_000) {
        let r = post(&app, &batch(chunk, &secrets)).await;
        let refused: Vec<usize> =
            r["refused"].as_array().unwrap().iter().map(|x| x["index"].as_u64().unwrap() as usize).collect();
        assert!(refused.is_empty(), "the GeoLife sample has no duplicates or future fixes: {r}");
        for row in chunk {
            acked.insert((units[&row.device], row.time.timestamp_millis()), (row.lon, row.lat));
        }
        live += r["live"].as_u64().unwrap();
        history += r["history"].as_u64().unwrap();
    }
    assert_eq!(acked.len(), rows.len());
    assert_eq!((live + history) as usize, rows.len());
    // Real phones do jump: some fixes were flagged, most moved the unit.
    assert!(live as usize > rows.len() * 9 / 10, "live {live} of {}", rows.len());

    let far_past = DateTime::from_timestamp(0, 0).unwrap();
    let far_future = Utc::now() + Duration::days(1);
    let stored_now = |store: Arc<dyn Store>| {
        let units = units.clone();
        async move {
            let mut all = HashMap::new();
            for &u in units.values() {
                for p in store
                    .trace(safegrid_services::positions::Subject::Responder, u, far_past, far_future, 1_000_000)
                    .await
                    .unwrap()
                {
                    all.insert((u, p.time.timestamp_millis()), (p.pos.lon(), p.pos.lat(), p.flags));
                }
            }
            all
        }
    };
    let stored = stored_now(store.clone()).await;
    assert_eq!(stored.len(), acked.len(), "stored rows = acknowledged fixes");
    for (k, (lon, lat)) in &acked {
        let (slon, slat, _) = stored.get(k).unwrap_or_else(|| panic!("acknowledged fix {k:?} is not in the store"));
        assert_eq!((slon, slat), (lon, lat), "fix {k:?} stored elsewhere");
    }

    // A gateway that lost an answer and re-sends: acknowledged again, stored once.
    let r = post(&app, &batch(&rows[..5_000], &secrets)).await;
    assert_eq!(r["stored"], 5_000);
    assert_eq!(stored_now(store.clone()).await.len(), acked.len());

    // A restart puts each unit at its last live fix.
    drop(app);
    let reopened = Service::open(store.clone()).await.unwrap();
    // The devices' secrets are read back (hashes only) and still prove them.
    for (device, secret) in &secrets {
        let s = safegrid_services::positions::devices::Secret(secret.clone());
        assert!(reopened.device_secrets().verify(device, Some(&s)), "{device}");
        assert!(!reopened.device_secrets().verify(device, None), "{device}");
    }
    for &u in units.values() {
        let last_live =
            stored.iter().filter(|((unit, _), (_, _, f))| *unit == u && *f == 0).max_by_key(|((_, t), _)| *t).unwrap();
        let it = reopened.layer(Layer::Responders).get(u).unwrap().clone();
        assert_eq!((it.pos.lon(), it.pos.lat()), (last_live.1.0, last_live.1.1));
        assert_eq!(reopened.live_units().get(u).unwrap().time.timestamp_millis(), last_live.0.1);
    }

    // Retention cuts at its time: nothing older stays, nothing newer goes.
    let mut times: Vec<i64> = acked.keys().map(|(_, t)| *t).collect();
    times.sort_unstable();
    let cutoff = DateTime::from_timestamp_millis(times[times.len() / 2]).unwrap();
    store.drop_fixes_before(cutoff).await.unwrap();
    let after = stored_now(store).await;
    let expected = acked.keys().filter(|(_, t)| *t >= cutoff.timestamp_millis()).count();
    assert_eq!(after.len(), expected);
    assert!(after.keys().all(|(_, t)| *t >= cutoff.timestamp_millis()));
}

crate::test!(multi_thread geolife_replay_into_sqlite_keeps_every_acknowledged_fix, SharedData);
async fn geolife_replay_into_sqlite_keeps_every_acknowledged_fix() {
    let (store, _dir, _) = support::sqlite_store().await;
    replay("geolife_replay_into_sqlite", store).await;
}

crate::test!(multi_thread geolife_replay_into_postgis_keeps_every_acknowledged_fix, PostGis, SharedData);
async fn geolife_replay_into_postgis_keeps_every_acknowledged_fix() {
    let Some((store, _)) = support::pg_store("geolife_replay_into_postgis").await else { return };
    replay("geolife_replay_into_postgis", store).await;
}
