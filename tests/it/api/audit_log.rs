//! The audit log: every read and write recorded, collapsed, chained, filtered, exported.

use super::*;

crate::test!(async every_read_of_key_personnel_appends_an_audit_row);
async fn every_read_of_key_personnel_appends_an_audit_row() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let r = f
        .call("POST", "/api/v1/key_personnel", a, Some(feature(point(114.02, 22.55), props_for(Layer::KeyPersonnel))))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    // Seen in the neighbour's grid, but assigned to the worker's: the worker still sees them.
    let mut moved = r.body.clone();
    moved["geometry"] = point(114.07, 22.55);
    assert_eq!(f.call("PUT", &format!("/api/v1/key_personnel/{id}"), a, Some(moved)).await.status, StatusCode::OK);
    assert!(f.read_rows().await.is_empty(), "writes are not reads");
    assert_eq!(f.audit_rows().await.len(), 2, "but they are audited, as writes");

    let reads: [(Role, String, &str, i64); 5] = [
        (Role::Dispatcher, "/api/v1/key_personnel?grid=440304".into(), "query", 1),
        (Role::Dispatcher, format!("/api/v1/key_personnel/{id}"), "get", 1),
        (Role::Auditor, "/api/v1/key_personnel/nearest?lon=114.07&lat=22.55&k=3".into(), "nearest", 1),
        (Role::GridWorker, format!("/api/v1/key_personnel/{id}"), "get", 1),
        (Role::Admin, "/api/v1/key_personnel?category=mental_health".into(), "query", 0),
    ];
    for (i, (role, uri, action, count)) in reads.iter().enumerate() {
        let r = f.call("GET", uri, Some(*role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
        let rows = f.read_rows().await;
        assert_eq!(rows.len(), i + 1, "one row per read");
        let row = &rows[0];
        assert_eq!((row.role.as_str(), row.action.as_str(), row.result_count), (role.name(), *action, *count));
        assert_eq!(row.actor, format!("{} user", role.name()));
        assert_eq!(row.request, format!("GET {uri}"));
    }
    // Reads of other layers are not audited; the auditor reads the log, nobody can change it.
    f.call("GET", "/api/v1/incidents", Some(Role::Dispatcher), None).await;
    assert_eq!(f.read_rows().await.len(), 5);
    let r = f.call("GET", "/api/v1/audit_log?limit=2", Some(Role::Auditor), None).await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 2);
    let before = r.body["next_before"].as_i64().unwrap();
    let r = f.call("GET", &format!("/api/v1/audit_log?before={before}"), Some(Role::Auditor), None).await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 5, "three reads and the two writes");
    for method in ["PUT", "DELETE", "POST"] {
        assert_problem(
            &f.call(method, "/api/v1/audit_log", Some(Role::Admin), Some(json!({}))).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
        );
    }
    assert_eq!(f.read_rows().await.len(), 5);
}

crate::test!(async writes_of_key_personnel_and_responders_leave_write_rows_naming_the_subject);
async fn writes_of_key_personnel_and_responders_leave_write_rows_naming_the_subject() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let r = f
        .call("POST", "/api/v1/key_personnel", a, Some(feature(point(114.02, 22.55), props_for(Layer::KeyPersonnel))))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let mut moved = r.body.clone();
    moved["geometry"] = point(114.03, 22.55);
    assert_eq!(f.call("PUT", &format!("/api/v1/key_personnel/{id}"), a, Some(moved)).await.status, StatusCode::OK);
    assert_eq!(f.call("DELETE", &format!("/api/v1/key_personnel/{id}"), a, None).await.status, StatusCode::NO_CONTENT);
    // Refused attempts leave a row too: a grid worker's key person outside its grid, a delete
    // of an id that is not there.
    let mut elsewhere = props_for(Layer::KeyPersonnel);
    elsewhere["assigned_grid"] = json!("440304002");
    let r = f
        .call("POST", "/api/v1/key_personnel", Some(Role::GridWorker), Some(feature(point(114.07, 22.55), elsewhere)))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(f.call("DELETE", "/api/v1/key_personnel/999999", a, None).await.status, StatusCode::NOT_FOUND);
    // A role that may not write key personnel at all is refused at the door, and recorded there.
    let r = f
        .call(
            "PUT",
            &format!("/api/v1/key_personnel/{id}"),
            Some(Role::Auditor),
            Some(feature(point(114.02, 22.55), props_for(Layer::KeyPersonnel))),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Responders hold someone's whereabouts: audited; incidents are not.
    let r = f
        .call(
            "POST",
            "/api/v1/responders",
            Some(Role::Dispatcher),
            Some(feature(point(114.02, 22.55), props_for(Layer::Responders))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let unit = r.body["id"].as_i64().unwrap();
    let r =
        f.call("POST", "/api/v1/incidents", a, Some(feature(point(114.02, 22.55), props_for(Layer::Incidents)))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let rows = f.audit_rows().await;
    // kind, action, outcome, layer, subjects, role, actor
    type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Vec<i64>, &'a str, &'a str);
    let got: Vec<Row<'_>> = rows
        .iter()
        .rev()
        .map(|r| {
            (
                r.kind.as_str(),
                r.action.as_str(),
                r.outcome.as_str(),
                r.layer.as_deref(),
                r.subjects.clone(),
                r.role.as_str(),
                r.actor.as_str(),
            )
        })
        .collect();
    let kp = Some("key_personnel");
    assert_eq!(
        got,
        [
            ("write", "create", "ok", kp, vec![id], "admin", "admin user"),
            ("write", "update", "ok", kp, vec![id], "admin", "admin user"),
            ("write", "delete", "ok", kp, vec![id], "admin", "admin user"),
            ("write", "create", "forbidden", kp, vec![], "grid_worker", "grid_worker user"),
            ("write", "delete", "not_found", kp, vec![999_999], "admin", "admin user"),
            ("write", "update", "forbidden", kp, vec![id], "auditor", "auditor user"),
            ("write", "create", "ok", Some("responders"), vec![unit], "dispatcher", "dispatcher user"),
        ]
    );
    assert_eq!(rows[2].request, "delete key_personnel/999999");
    assert_eq!(rows[1].request, format!("update key_personnel/{id}"));
    assert!(rows.iter().all(|r| r.repeats == 1 && r.hash.is_some()));
    // A done write is never collapsed: the same write twice is two rows.
    let mut same = f.call("GET", &format!("/api/v1/responders/{unit}"), a, None).await.body;
    same["geometry"] = point(114.021, 22.55);
    let rows = f.audit_rows().await; // the GET is a read of a responder, itself a row
    for _ in 0..2 {
        let r = f.call("PUT", &format!("/api/v1/responders/{unit}"), a, Some(same.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert_eq!(f.audit_rows().await.len(), rows.len() + 2);
    // A refusal changed nothing: repeated within the window it is counted, so that a script
    // retrying a forbidden write cannot flood the log (this one repeats the delete above).
    for _ in 0..3 {
        f.call("DELETE", "/api/v1/key_personnel/999999", a, None).await;
    }
    assert_eq!(f.audit_rows().await.len(), rows.len() + 2, "the repeats wait for their window");
    f.service.flush_audit().await;
    let after = f.audit_rows().await;
    assert_eq!(after.len(), rows.len() + 3);
    assert_eq!(
        (after[0].kind.as_str(), after[0].outcome.as_str(), after[0].request.as_str(), after[0].repeats),
        ("write", "not_found", "delete key_personnel/999999", 3)
    );
    let v = safegrid_services::audit_log::verify(f.store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, None);
    assert_eq!(v.check.chained, rows.len() as u64 + 3);
}

crate::test!(async a_write_whose_audit_row_cannot_be_stored_does_not_happen);
/// A write of an audited layer and its audit row are one transaction: when the row cannot be
/// appended, the write does not happen either (in the store or in memory), and the caller hears
/// so.
async fn a_write_whose_audit_row_cannot_be_stored_does_not_happen() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    let id = create_at(&f, Layer::KeyPersonnel, 114.02, 22.55, props_for(Layer::KeyPersonnel)).await;
    let before = f.store.load_items(Layer::KeyPersonnel).await.unwrap();
    // The audit log refuses rows of updates (a full disk, a broken constraint: any failure).
    let db = f.dir.path().join("test.db");
    let mut c =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_update_rows BEFORE INSERT ON audit_log WHEN NEW.action = 'update' AND NEW.outcome = 'ok'
         BEGIN SELECT RAISE(ABORT, 'no room'); END",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let mut moved = f.call("GET", &format!("/api/v1/key_personnel/{id}"), a, None).await.body;
    moved["geometry"] = point(114.03, 22.55);
    let r = f.call("PUT", &format!("/api/v1/key_personnel/{id}"), a, Some(moved.clone())).await;
    assert!(r.status.is_server_error(), "{} {}", r.status, r.text);
    assert_eq!(f.store.load_items(Layer::KeyPersonnel).await.unwrap(), before, "nothing stored");
    let live = f.service.layer(Layer::KeyPersonnel).get(id).map(|it| it.pos).unwrap();
    assert_eq!((live.lon(), live.lat()), (114.02, 22.55), "nothing changed in memory");
    // Once the log takes rows again, the same write goes through, with its row, on an intact chain.
    sqlx::query("DROP TRIGGER refuse_update_rows").execute(&mut c).await.unwrap();
    let r = f.call("PUT", &format!("/api/v1/key_personnel/{id}"), a, Some(moved)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rows = f.audit_rows().await;
    assert_eq!(rows.iter().filter(|r| r.action == "update" && r.outcome == "ok").count(), 1, "{rows:?}");
    let v = safegrid_services::audit_log::verify(f.store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, None);
}

crate::test!(async a_wall_polling_for_an_hour_writes_two_rows_a_window_and_every_read_is_counted);
async fn a_wall_polling_for_an_hour_writes_two_rows_a_window_and_every_read_is_counted() {
    let f = fixture().await;
    let mut ids = Vec::new();
    for lon in [114.02, 114.07] {
        let r = f
            .call(
                "POST",
                "/api/v1/key_personnel",
                Some(Role::Admin),
                Some(feature(point(lon, 22.55), props_for(Layer::KeyPersonnel))),
            )
            .await;
        ids.push(r.body["id"].as_i64().unwrap());
    }
    let ms = driven_clock(&f);
    // Every 3 s for an hour: 1,200 reads; the background flush runs every 6 s.
    let reads = 1200;
    for i in 0..reads {
        ms.store(i * 3000, std::sync::atomic::Ordering::SeqCst);
        if i % 2 == 0 {
            f.service.flush_ended_audit().await;
        }
        let r = f.call("GET", "/api/v1/key_personnel?grid=440304", Some(Role::Dispatcher), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if i == 30 {
            // Mid-window: the first read of the run is already durable.
            let rows = f.read_rows().await;
            assert!(rows.len() >= 2 && rows[0].repeats == 1, "{rows:?}");
        }
    }
    f.service.flush_audit().await; // graceful shutdown
    let rows = f.read_rows().await;
    assert!(rows.len() <= 2 * 60 + 1, "{} rows for an hour of polling", rows.len());
    assert_eq!(rows.iter().map(|r| r.repeats).sum::<i64>(), reads, "the counts add up to every read");
    // Per minute of the hour: at most the run's first read and one row of its repeats.
    let mut per_window: HashMap<i64, usize> = HashMap::new();
    for r in &rows {
        *per_window.entry(r.at.timestamp() / 60).or_default() += 1;
        assert_eq!(r.subjects, ids, "each row names whom the wall saw");
        assert_eq!(r.result_count, 2 * r.repeats);
        if r.repeats > 1 {
            let last = r.last_at.unwrap();
            assert!(last > r.at && last - r.at < chrono::Duration::seconds(60), "{r:?}");
        }
    }
    assert!(per_window.values().all(|n| *n <= 2), "{per_window:?}");
    let v = safegrid_services::audit_log::verify(f.store.as_ref(), None).await.unwrap();
    assert_eq!(v.broken, None);
}

crate::test!(async the_audit_log_filters_and_exports_exactly_the_matching_rows);
async fn the_audit_log_filters_and_exports_exactly_the_matching_rows() {
    let f = fixture().await;
    let ms = driven_clock(&f);
    let at = |s: i64| ms.store(s * 1000, std::sync::atomic::Ordering::SeqCst);
    // A caller whose name needs quoting in CSV.
    let odd = "王, \"五\"";
    f.service
        .add_token("odd-token", &Principal { name: odd.into(), role: Role::Dispatcher, grids: vec![] })
        .await
        .unwrap();
    at(0);
    let mut ids = Vec::new();
    for lon in [114.02, 114.07] {
        let r = f
            .call(
                "POST",
                "/api/v1/key_personnel",
                Some(Role::Admin),
                Some(feature(point(lon, 22.55), props_for(Layer::KeyPersonnel))),
            )
            .await;
        ids.push(r.body["id"].as_i64().unwrap());
    }
    at(100);
    f.call("GET", &format!("/api/v1/key_personnel/{}", ids[0]), Some(Role::Dispatcher), None).await;
    at(200);
    f.call("GET", "/api/v1/key_personnel?grid=440304", Some(Role::Auditor), None).await;
    at(300);
    let req = Request::builder()
        .uri(format!("/api/v1/key_personnel/{}", ids[1]))
        .header(header::AUTHORIZATION, "Bearer odd-token")
        .body(Body::empty())
        .unwrap();
    assert_eq!(f.send(req).await.status, StatusCode::OK);
    at(400);
    f.call("DELETE", &format!("/api/v1/key_personnel/{}", ids[1]), Some(Role::Admin), None).await;
    let all = f.audit_rows().await;
    assert_eq!(all.len(), 6);

    let t = |s: i64| {
        (chrono::DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z").unwrap().to_utc() + chrono::Duration::seconds(s))
            .to_rfc3339()
    };
    let enc = |s: &str| s.replace('+', "%2B").replace(' ', "%20").replace(',', "%2C").replace('"', "%22");
    type Case = (String, Box<dyn Fn(&safegrid_services::store::AuditRow) -> bool>);
    let cases: Vec<Case> = vec![
        ("actor=admin%20user".into(), Box::new(|r| r.actor == "admin user")),
        (format!("actor={}", enc(odd)), Box::new(move |r| r.actor == odd)),
        ("role=auditor".into(), Box::new(|r| r.role == "auditor")),
        ("layer=key_personnel".into(), Box::new(|r| r.layer.as_deref() == Some("key_personnel"))),
        ("layer=incidents".into(), Box::new(|_| false)),
        (
            format!("subject={}", ids[1]),
            Box::new({
                let id = ids[1];
                move |r| r.subjects.contains(&id)
            }),
        ),
        ("action=get".into(), Box::new(|r| r.action == "get")),
        ("kind=write".into(), Box::new(|r| r.kind == "write")),
        ("kind=read".into(), Box::new(|r| r.kind == "read")),
        (format!("since={}", enc(&t(150))), Box::new(|r| r.at.timestamp() % 3600 >= 150)),
        (format!("until={}", enc(&t(150))), Box::new(|r| r.at.timestamp() % 3600 < 150)),
        (
            format!("since={}&until={}&kind=read", enc(&t(100)), enc(&t(300))),
            Box::new(|r| {
                let s = r.at.timestamp() % 3600;
                r.kind == "read" && (100..300).contains(&s)
            }),
        ),
    ];
    for (q, keep) in &cases {
        let want: Vec<i64> = all.iter().filter(|r| keep(r)).map(|r| r.id).collect();
        let r = f.call("GET", &format!("/api/v1/audit_log?{q}"), Some(Role::Auditor), None).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
        assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let got: Vec<i64> = r.body["rows"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect();
        assert_eq!(got, want, "{q}");
        // The same rows as CSV.
        let r = f.call("GET", &format!("/api/v1/audit_log?{q}&format=csv"), Some(Role::Admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
        assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
        assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let mut csv = csv::Reader::from_reader(r.raw.as_slice());
        assert_eq!(
            csv.headers().unwrap(),
            &csv::StringRecord::from(safegrid_services::api::ops::AUDIT_CSV_HEADER.to_vec())
        );
        let recs: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
        let got: Vec<i64> = recs.iter().map(|x| x[0].parse().unwrap()).collect();
        assert_eq!(got, want, "{q} as CSV");
        for (rec, row) in recs.iter().zip(all.iter().filter(|r| keep(r))) {
            assert_eq!(
                (&rec[6], &rec[11], &rec[14]),
                (row.actor.as_str(), row.request.as_str(), row.hash.as_deref().unwrap())
            );
            let subjects: Vec<i64> = rec[10].split_whitespace().map(|s| s.parse().unwrap()).collect();
            assert_eq!(subjects, row.subjects);
        }
    }
    // RFC 4180: CRLF, and a field with a comma or quote quoted, its quotes doubled.
    let r = f.call("GET", "/api/v1/audit_log?format=csv&limit=1", Some(Role::Auditor), None).await;
    assert!(r.text.starts_with(
        "id,at,last_at,repeats,kind,outcome,actor,role,action,layer,subjects,request,result_count,prev_hash,hash\r\n"
    ));
    assert_eq!(r.headers.get("x-next-before").unwrap().to_str().unwrap(), all[0].id.to_string());
    let r = f.call("GET", &format!("/api/v1/audit_log?format=csv&actor={}", enc(odd)), Some(Role::Auditor), None).await;
    assert!(r.text.contains(",\"王, \"\"五\"\"\","), "{}", r.text);
    // Paging with filters.
    let r = f.call("GET", "/api/v1/audit_log?layer=key_personnel&limit=2", Some(Role::Auditor), None).await;
    let next = r.body["next_before"].as_i64().unwrap();
    let r =
        f.call("GET", &format!("/api/v1/audit_log?layer=key_personnel&before={next}"), Some(Role::Auditor), None).await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 4);

    // Bad filter values name the parameter; the answer is not cached either.
    for (q, field) in [
        ("role=chief", "role"),
        ("layer=people", "layer"),
        ("kind=delete", "kind"),
        ("subject=abc", "subject"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("format=xml", "format"),
        ("actor=", "actor"),
        ("limit=0", "limit"),
        ("owner=x", "owner"),
    ] {
        let r = f.call("GET", &format!("/api/v1/audit_log?{q}"), Some(Role::Auditor), None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, field);
        assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store", "{q}");
    }
    let r = f
        .call(
            "GET",
            &format!("/api/v1/audit_log?since={}&until={}", enc(&t(300)), enc(&t(100))),
            Some(Role::Auditor),
            None,
        )
        .await;
    assert_eq!(r.body["rows"], json!([]), "an empty interval has no rows");
}
