//! Vector tiles, the wall's feed and files, and the basemap.

use super::*;

crate::test!(async a_written_item_is_in_the_very_next_tile_and_etags_follow_the_data);
async fn a_written_item_is_in_the_very_next_tile_and_etags_follow_the_data() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let t = TileId::containing(114.02, 22.55, 14);
    let (status, headers, body) = f.tile(&tile_path("incidents", t), d, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.mapbox-vector-tile");
    assert!(mvt::decode(&body).unwrap()[0].features.is_empty());
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let (status, _, _) = f.tile(&tile_path("incidents", t), d, Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED, "unchanged data: 304");

    let r =
        f.call("POST", "/api/v1/incidents", d, Some(feature(point(114.02, 22.55), props_for(Layer::Incidents)))).await;
    let id = r.body["id"].as_u64().unwrap();
    let (status, headers, body) = f.tile(&tile_path("incidents", t), d, Some(&etag)).await;
    assert_eq!(status, StatusCode::OK, "the write changes the ETag");
    assert_ne!(headers[header::ETAG].to_str().unwrap(), etag);
    let layers = mvt::decode(&body).unwrap();
    let feat = &layers[0].features[0];
    assert_eq!(feat.id, Some(id));
    let want = t.to_pixels(114.02, 22.55, 4096);
    let TileGeometry::Points(p) = &feat.geometry else { panic!() };
    assert!((f64::from(p[0][0]) - want[0]).abs() <= 0.5 && (f64::from(p[0][1]) - want[1]).abs() <= 0.5);
    assert!(feat.properties.contains(&("grid_code".into(), TileValue::String("440304001".into()))));
}

crate::test!(async the_grids_layer_shows_districts_when_far_and_grids_when_near);
async fn the_grids_layer_shows_districts_when_far_and_grids_when_near() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let codes = |body: &[u8]| -> Vec<String> {
        let layers = mvt::decode(body).unwrap();
        let mut c: Vec<String> = layers[0]
            .features
            .iter()
            .map(|f| match &f.properties[0].1 {
                TileValue::String(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        c.sort();
        c
    };
    let near = TileId::containing(114.05, 22.55, 12);
    let (_, _, body) = f.tile(&tile_path("grids", near), d, None).await;
    assert_eq!(codes(&body), ["440304001", "440304002"]);
    let far = TileId::containing(114.1, 22.55, 8);
    let (_, _, body) = f.tile(&tile_path("grids,posts", far), d, None).await;
    assert_eq!(codes(&body), ["440303", "440304"]);
    let layers = mvt::decode(&body).unwrap();
    assert_eq!(layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["grids", "posts"]);
    // Every polygon decodes with a clockwise exterior (the decoder refuses anything else).
    for feat in &layers[0].features {
        assert!(matches!(&feat.geometry, TileGeometry::Polygons(p) if !p.is_empty()));
    }
}

crate::test!(async dense_point_layers_are_clustered_with_counts_at_low_zoom);
async fn dense_point_layers_are_clustered_with_counts_at_low_zoom() {
    let f = fixture().await;
    let rows: Vec<_> = (0..3_000)
        .map(|i| {
            let props =
                safegrid_services::layer::Props::parse(Layer::RentalHousing, props_for(Layer::RentalHousing)).unwrap();
            (LonLat::new(114.0 + f64::from(i % 100) * 0.001, 22.5 + f64::from(i / 100) * 0.002).unwrap(), props)
        })
        .collect();
    f.service.bulk_insert(Layer::RentalHousing, rows).await.unwrap();
    let t = TileId::containing(114.05, 22.53, 10);
    let (_, _, body) = f.tile(&tile_path("rental_housing", t), Some(Role::Auditor), None).await;
    let layer = &mvt::decode(&body).unwrap()[0];
    assert!(layer.features.len() < 3_000, "clustered: {} features", layer.features.len());
    let total: u64 = layer
        .features
        .iter()
        .map(|f| match f.properties.iter().find(|(k, _)| k == "point_count") {
            Some((_, TileValue::UInt(n))) => *n,
            _ => panic!("a cluster without point_count"),
        })
        .sum();
    assert_eq!(total, 3_000, "every point is counted once");
}

crate::test!(async key_personnel_tiles_are_scoped_audited_and_refused_to_the_public);
async fn key_personnel_tiles_are_scoped_audited_and_refused_to_the_public() {
    let f = fixture().await;
    let a = Some(Role::Admin);
    f.call("POST", "/api/v1/key_personnel", a, Some(feature(point(114.02, 22.55), props_for(Layer::KeyPersonnel))))
        .await;
    let mut elsewhere = props_for(Layer::KeyPersonnel);
    elsewhere["assigned_grid"] = "440304002".into();
    f.call("POST", "/api/v1/key_personnel", a, Some(feature(point(114.07, 22.55), elsewhere))).await;
    let t = TileId::containing(114.05, 22.55, 11);
    let path = tile_path("key_personnel", t);
    let (status, _, _) = f.tile(&path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, body) = f.tile(&path, Some(Role::Dispatcher), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::ETAG).is_none(), "sensitive tiles are never answered from a client cache");
    assert_eq!(mvt::decode(&body).unwrap()[0].features.len(), 2);
    let (_, _, body) = f.tile(&path, Some(Role::GridWorker), None).await;
    assert_eq!(mvt::decode(&body).unwrap()[0].features.len(), 1, "a grid worker sees its grid only");
    let rows = f.read_rows().await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].action.as_str(), rows[0].role.as_str(), rows[0].result_count), ("tile", "grid_worker", 1));
    assert_eq!((rows[1].action.as_str(), rows[1].result_count), ("tile", 2));
}

crate::test!(async bad_tile_requests_name_what_is_wrong_and_tilejson_describes_the_layers);
async fn bad_tile_requests_name_what_is_wrong_and_tilejson_describes_the_layers() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    for (path, status, field) in [
        ("/tiles/incidents/25/0/0.mvt", StatusCode::BAD_REQUEST, "z"),
        ("/tiles/incidents/2/4/0.mvt", StatusCode::BAD_REQUEST, "x"),
        ("/tiles/incidents/2/0/0.png", StatusCode::NOT_FOUND, "y"),
        ("/tiles/bicycles/2/0/0.mvt", StatusCode::NOT_FOUND, "layers"),
        ("/tiles/posts,posts/2/0/0.mvt", StatusCode::BAD_REQUEST, "layers"),
    ] {
        assert_problem(&f.call("GET", path, d, None).await, status, field);
    }
    let r = f.call("GET", "/tiles/grids,incidents.json", d, None).await;
    assert_eq!(r.body["tilejson"], "3.0.0");
    assert_eq!(r.body["tiles"][0], "http://127.0.0.1:8080/tiles/grids,incidents/{z}/{x}/{y}.mvt");
    assert_eq!(r.body["vector_layers"][1]["id"], "incidents");
}

crate::test!(async gdal_reads_our_tiles_with_their_layers_features_and_properties);
async fn gdal_reads_our_tiles_with_their_layers_features_and_properties() {
    let test = "gdal_reads_our_tiles_with_their_layers_features_and_properties";
    if std::process::Command::new("ogrinfo").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "{test}: CI installs gdal-bin, but ogrinfo is missing");
        eprintln!("{test}: skipped — ogrinfo (Debian gdal-bin) is not installed");
        return;
    }
    let f = fixture().await;
    let a = Some(Role::Admin);
    f.call("POST", "/api/v1/posts", a, Some(feature(point(114.02, 22.55), props_for(Layer::Posts)))).await;
    let t = TileId::containing(114.02, 22.55, 12);
    let (_, _, body) = f.tile(&tile_path("grids,posts", t), a, None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tile.mvt");
    std::fs::write(&file, &body).unwrap();
    let out = std::process::Command::new("ogrinfo").args(["-ro", "-al"]).arg(&file).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}{}", String::from_utf8_lossy(&out.stderr));
    assert!(listing.contains("Layer name: grids") && listing.contains("Layer name: posts"), "{listing}");
    assert!(
        listing.contains("code (String) = 440304001") && listing.contains("name (String) = 百花警务室"),
        "{listing}"
    );
    assert!(listing.contains("POLYGON ((") && listing.contains("POINT ("), "{listing}");
}

crate::test!(async hexbins_count_each_incident_once_and_tiles_take_the_list_filters);
async fn hexbins_count_each_incident_once_and_tiles_take_the_list_filters() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    for i in 0..40u32 {
        let mut p = incident(
            if i % 4 == 0 { "open" } else { "closed" },
            1 + i % 4,
            &format!("2026-11-{:02}T10:00:00Z", 1 + i % 20),
        );
        if i % 10 == 0 {
            p["type"] = "fire".into();
        }
        let r =
            f.call("POST", "/api/v1/incidents", d, Some(feature(point(114.01 + f64::from(i) * 0.002, 22.55), p))).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let t = TileId::containing(114.05, 22.55, 10);
    let count_sum = |body: &[u8]| -> u64 {
        mvt::decode(body).unwrap()[0]
            .features
            .iter()
            .map(|f| match f.properties.iter().find(|(k, _)| k == "count") {
                Some((_, TileValue::UInt(n))) => *n,
                _ => panic!("a hexbin without a count"),
            })
            .sum()
    };
    let (_, _, body) = f.tile(&tile_path("incidents_h3", t), d, None).await;
    assert_eq!(count_sum(&body), 40);
    let (_, _, body) = f.tile(&format!("{}?status=open", tile_path("incidents_h3", t)), d, None).await;
    assert_eq!(count_sum(&body), 10);
    let (_, _, body) =
        f.tile(&format!("{}?type=fire&since=2026-11-01&until=2026-11-11", tile_path("incidents", t)), d, None).await;
    // Fires are i = 0, 10, 20, 30, reported on the 1st, 11th, 1st, 11th: two before the 11th.
    assert_eq!(mvt::decode(&body).unwrap()[0].features.len(), 2);
    let (status, _, _) = f.tile(&format!("{}?colour=red", tile_path("incidents", t)), d, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

crate::test!(async tiles_are_gzipped_when_the_client_accepts_it);
async fn tiles_are_gzipped_when_the_client_accepts_it() {
    use std::io::Read;
    let f = fixture().await;
    let req = Request::get(tile_path("grids", TileId::containing(114.05, 22.55, 12)))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Admin]))
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(mvt::decode(&plain).unwrap()[0].features.len(), 2);
}

crate::test!(async the_tile_cache_answers_repeats_and_never_serves_a_stale_tile);
async fn the_tile_cache_answers_repeats_and_never_serves_a_stale_tile() {
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let t = TileId::containing(114.02, 22.55, 13);
    let path = tile_path("grids,posts", t);
    let (_, _, first) = f.tile(&path, d, None).await;
    let (_, _, again) = f.tile(&path, d, None).await;
    assert_eq!(first, again);
    let metrics = f.call("GET", "/metrics", Some(Role::Admin), None).await.text;
    assert!(metrics.contains("safegrid_tile_cache_requests_total{result=\"hit\"} 1"), "{metrics}");
    f.call("POST", "/api/v1/posts", d, Some(feature(point(114.02, 22.55), props_for(Layer::Posts)))).await;
    let (_, _, after) = f.tile(&path, d, None).await;
    let layers = mvt::decode(&after).unwrap();
    assert_eq!(layers[1].features.len(), 1, "the new post is in the next tile, cache or not");

    // A write invalidates the tiles around it, not the whole layer: a tile across the city
    // keeps its ETag (and its cache entry), the one under the write does not.
    let far = tile_path("grids,posts", TileId::containing(114.15, 22.55, 13));
    let etag = async |path: &str| {
        let r = f.call("GET", path, d, None).await;
        (r.status, r.headers[header::ETAG].to_str().unwrap().to_owned())
    };
    let (far_before, near_before) = (etag(&far).await, etag(&path).await);
    f.call("POST", "/api/v1/posts", d, Some(feature(point(114.021, 22.551), props_for(Layer::Posts)))).await;
    assert_eq!(etag(&far).await, far_before, "a write elsewhere changed a distant tile's ETag");
    assert_ne!(etag(&path).await, near_before);
}

crate::test!(async the_wall_learns_who_it_is_counts_within_scope_and_hears_of_changes);
async fn the_wall_learns_who_it_is_counts_within_scope_and_hears_of_changes() {
    let f = fixture().await;
    for (lon, prio, status) in
        [(114.02, 1, "open"), (114.03, 2, "dispatched"), (114.07, 1, "open"), (114.15, 3, "closed")]
    {
        let r = f
            .call(
                "POST",
                "/api/v1/incidents",
                Some(Role::Admin),
                Some(feature(point(lon, 22.55), incident(status, prio, "2026-11-20T08:00:00Z"))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let me = f.call("GET", "/api/v1/whoami", Some(Role::GridWorker), None).await;
    assert_eq!(me.body["role"], "grid_worker");
    assert_eq!(me.body["grids"], json!(["440304001"]));
    assert!(me.body["layers"].as_array().unwrap().contains(&json!("key_personnel")));
    let public = f.call("GET", "/api/v1/whoami", None, None).await;
    assert_eq!((public.body["role"].clone(), public.body["layers"].clone()), (json!("public"), json!([])));

    // The dispatcher sees the whole city; the grid worker only its grid. Closed ones don't count.
    let all = f.call("GET", "/api/v1/stats", Some(Role::Dispatcher), None).await;
    let open = &all.body["open_incidents"];
    assert_eq!(open["total"], 3);
    assert_eq!(open["by_priority"], json!({"1": 2, "2": 1, "3": 0, "4": 0}));
    assert_eq!(open["by_district"], json!([{"code": "440304", "name": "福田区", "open": 3}]));
    assert_eq!(open["top_grids"][0], json!({"code": "440304001", "name": "福田第001网格", "open": 2}));
    assert_eq!(all.body["counts"]["incidents"], 4);
    let mine = f.call("GET", "/api/v1/stats", Some(Role::GridWorker), None).await;
    assert_eq!(mine.body["open_incidents"]["total"], 2);
    assert_eq!(mine.body["counts"]["incidents"], 2);
    assert_eq!(f.call("GET", "/api/v1/stats", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.call("GET", "/api/v1/events", None, None).await.status, StatusCode::UNAUTHORIZED);

    // The event feed: versions at once, and new ones after a write.
    let req = Request::builder()
        .uri("/api/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Dispatcher]))
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    let mut next_event = async || -> Value {
        let mut text = String::new();
        loop {
            let frame =
                tokio::time::timeout(std::time::Duration::from_secs(5), body.frame()).await.unwrap().unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data:"))
                && text.contains("\n\n")
            {
                return serde_json::from_str(line.trim()).unwrap();
            }
        }
    };
    let first = next_event().await;
    assert!(first["incidents"].is_string() && first["grids"].is_string(), "{first}");
    let r = f
        .call(
            "POST",
            "/api/v1/incidents",
            Some(Role::Admin),
            Some(feature(point(114.04, 22.55), incident("open", 1, "2026-11-21T08:00:00Z"))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let second = next_event().await;
    assert_ne!(second["incidents"], first["incidents"]);
    assert_eq!(second["posts"], first["posts"]);

    // Revoking the token ends the open feed: it is re-checked on every turn, not only at
    // connection.
    let hash = safegrid_services::access::token_hash(&f.tokens[&Role::Dispatcher]);
    assert!(f.store.delete_token(&hash).await.unwrap());
    f.service.reload_tokens().await.unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match body.frame().await {
                None => return,
                Some(Ok(_)) => {} // a keep-alive or an event written before the check
                Some(Err(e)) => panic!("{e}"),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the feed went on after its token was revoked");
}

crate::test!(async the_map_wall_and_its_vendored_library_are_served_from_the_binary);
async fn the_map_wall_and_its_vendored_library_are_served_from_the_binary() {
    let f = fixture().await;
    let page = f.call("GET", "/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.text.contains("/web/app.js"));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    for path in [
        "/web/app.js",
        "/web/vendor/maplibre-gl/maplibre-gl.mjs",
        "/web/vendor/maplibre-gl/maplibre-gl-worker.mjs",
        "/web/vendor/maplibre-gl/LICENSE.txt",
    ] {
        let r = f.call("GET", path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let etag = r.headers[header::ETAG].clone();
        let again =
            f.send(Request::builder().uri(path).header(header::IF_NONE_MATCH, etag).body(Body::empty()).unwrap()).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
    }
    assert_problem(&f.call("GET", "/web/nothing.js", None, None).await, StatusCode::NOT_FOUND, "path");
    // Every module the wall imports, from its entry on, is served (a file missing from the
    // binary's table would leave the wall blank).
    let mut todo = vec!["/web/app.js".to_owned()];
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = f.call("GET", &path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.content_type.starts_with("text/javascript"), "{path}: {}", r.content_type);
        for line in r.text.lines().filter(|l| l.trim_start().starts_with("import ")) {
            let from = line.rsplit_once(" from ").map_or(line, |(_, f)| f);
            let target = from.trim().trim_end_matches(';').trim_matches(|c| c == '\'' || c == '"');
            assert!(target.starts_with("/web/"), "{path} imports {target} from elsewhere");
            todo.push(target.to_owned());
        }
    }
    assert!(seen.len() >= 10, "the wall's modules: {seen:?}");
}

crate::test!(async the_basemap_style_tiles_glyphs_and_sprite_are_served_without_a_token);
async fn the_basemap_style_tiles_glyphs_and_sprite_are_served_without_a_token() {
    use safegrid_services::basemap::{Basemap, FONT_STACK};
    use safegrid_tiles::glyphs;
    use std::io::Read;
    let mut f = fixture().await;
    let plain = fixture().await;
    f.app = app(AppState::started(f.service.clone()).with_basemap(Basemap::demo().await.unwrap()));
    let get = |uri: &str, host: &str, extra: Option<(header::HeaderName, &str)>| {
        let mut req = Request::get(uri).header(header::HOST, host);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.body(Body::empty()).unwrap()
    };

    // The style names this server as the client reached it, and every layer's source exists.
    let style = f.send(get("/basemap/style.json", "wall.example:8080", None)).await;
    assert_eq!(style.status, StatusCode::OK);
    let s = &style.body;
    assert_eq!(s["version"], 8);
    assert_eq!(s["glyphs"], "http://wall.example:8080/basemap/fonts/{fontstack}/{range}.pbf");
    assert_eq!(s["sprite"], "http://wall.example:8080/basemap/sprite");
    assert_eq!(s["sources"]["basemap"]["url"], "http://wall.example:8080/basemap/tiles.json");
    assert!(s["sources"]["basemap"]["attribution"].as_str().unwrap().contains("OpenStreetMap"));
    let layers = s["layers"].as_array().unwrap();
    let mut ids = std::collections::HashSet::new();
    for l in layers {
        assert!(ids.insert(l["id"].as_str().unwrap()), "duplicate layer {}", l["id"]);
        if let Some(src) = l["source"].as_str() {
            assert!(s["sources"].get(src).is_some(), "{} draws from missing source {src}", l["id"]);
        }
        if let Some(font) = l["layout"].get("text-font") {
            assert_eq!(font, &json!([FONT_STACK]), "{}", l["id"]);
        }
    }
    assert!(ids.contains("bm-road") && ids.contains("bm-poi"));
    // Without a basemap the style still carries glyphs and sprite, and no basemap source.
    let bare = plain.send(get("/basemap/style.json", "h", None)).await;
    assert_eq!(bare.body["layers"].as_array().unwrap().len(), 1);
    assert!(bare.body["sources"].get("basemap").is_none());
    assert_problem(&plain.send(get("/basemap/tiles.json", "h", None)).await, StatusCode::NOT_FOUND, "basemap");

    // TileJSON and a tile over Longgang: gzipped as stored when accepted, plain otherwise, with
    // an ETag that revalidates; 204 where the file has no tile.
    let tj = f.send(get("/basemap/tiles.json", "h:1", None)).await;
    assert_eq!(tj.body["tilejson"], "3.0.0");
    assert_eq!(tj.body["tiles"][0], "http://h:1/basemap/tiles/{z}/{x}/{y}.mvt");
    let t = TileId::containing(114.21, 22.69, 14);
    let path = format!("/basemap/tiles/{}/{}/{}.mvt", t.z, t.x, t.y);
    let gz = f.send(get(&path, "h", Some((header::ACCEPT_ENCODING, "gzip")))).await;
    assert_eq!(gz.status, StatusCode::OK);
    assert_eq!(gz.headers[header::CONTENT_ENCODING], "gzip");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz.raw[..]).read_to_end(&mut unzipped).unwrap();
    let raw = f.send(get(&path, "h", None)).await;
    assert!(raw.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(raw.raw, unzipped);
    let tile = mvt::decode(&raw.raw).unwrap();
    assert!(tile.iter().any(|l| l.name == "road" && !l.features.is_empty()));
    let etag = raw.headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(f.send(get(&path, "h", Some((header::IF_NONE_MATCH, &etag)))).await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(f.send(get("/basemap/tiles/14/0/0.mvt", "h", None)).await.status, StatusCode::NO_CONTENT);
    assert_problem(&f.send(get("/basemap/tiles/99/0/0.mvt", "h", None)).await, StatusCode::BAD_REQUEST, "z");

    // Glyph ranges: the compiled-in Latin range, an empty one for what nobody has, and a named
    // problem for a malformed range.
    let latin = f.send(get("/basemap/fonts/Noto%20Sans%20CJK%20SC%20Regular/0-255.pbf", "h", None)).await;
    assert_eq!(latin.status, StatusCode::OK);
    let range = glyphs::decode(&latin.raw).unwrap();
    assert!(range.glyphs.iter().any(|g| g.id == u32::from('7') && g.width > 0));
    let han = f.send(get("/basemap/fonts/Noto%20Sans%20CJK%20SC%20Regular/19968-20223.pbf", "h", None)).await;
    assert!(glyphs::decode(&han.raw).unwrap().glyphs.is_empty());
    for bad in ["1-256.pbf", "0-511.pbf", "0-255", "a-b.pbf"] {
        assert_problem(
            &f.send(get(&format!("/basemap/fonts/x/{bad}"), "h", None)).await,
            StatusCode::BAD_REQUEST,
            "range",
        );
    }

    // The sprite: an index whose icons lie inside a PNG twice as large at @2x.
    let one = f.send(get("/basemap/sprite.json", "h", None)).await;
    let two = f.send(get("/basemap/sprite@2x.json", "h", None)).await;
    assert_eq!(one.body["post"]["pixelRatio"], 1);
    assert_eq!(two.body["post"]["width"].as_u64().unwrap(), 2 * one.body["post"]["width"].as_u64().unwrap());
    let png = f.send(get("/basemap/sprite@2x.png", "h", None)).await;
    assert_eq!(png.content_type, "image/png");
    assert!(png.raw.starts_with(b"\x89PNG"));
    assert_problem(&f.send(get("/basemap/sprite@3x.png", "h", None)).await, StatusCode::NOT_FOUND, "path");
}

crate::test!(async a_cached_tile_always_equals_one_built_afresh_after_writes_nearby_and_far);
async fn a_cached_tile_always_equals_one_built_afresh_after_writes_nearby_and_far() {
    // The oracle is a tile built by a second app over the same service with an empty cache.
    // Every tile around the writes, at every zoom the wall uses and for hexbins, clusters and
    // points, must match it byte for byte after each write: the cache keys (change stamps
    // around each tile) may never let a stale tile through.
    let f = fixture().await;
    let d = Some(Role::Dispatcher);
    let layer_sets = ["incidents_h3", "incidents", "grids,incidents,rental_housing"];
    let writes = [(114.03, 22.55), (114.0999, 22.5501), (114.15, 22.58), (114.03, 22.55)];
    let around = |z: u8| {
        let c = TileId::containing(114.06, 22.55, z);
        let mut v = Vec::new();
        for dx in -2i64..=2 {
            for dy in -2i64..=2 {
                if let Ok(t) = TileId::new(z, (i64::from(c.x) + dx) as u32, (i64::from(c.y) + dy) as u32) {
                    v.push(t);
                }
            }
        }
        v
    };
    // Warm the cache first, so that every later comparison goes through it.
    let check = async |f: &Fixture, fresh: &Router| {
        for z in [6, 8, 10, 11, 12, 14] {
            for t in around(z) {
                for layers in layer_sets {
                    let path = tile_path(layers, t);
                    let (_, _, cached) = f.tile(&path, d, None).await;
                    let req = Request::get(&path)
                        .header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[&Role::Dispatcher]))
                        .body(Body::empty())
                        .unwrap();
                    let resp = fresh.clone().oneshot(req).await.unwrap();
                    let built = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
                    assert_eq!(cached, built, "stale {path}");
                }
            }
        }
    };
    check(&f, &app(AppState::started(f.service.clone()))).await;
    for (i, (lon, lat)) in writes.into_iter().enumerate() {
        let r = f
            .call(
                "POST",
                "/api/v1/incidents",
                d,
                Some(feature(point(lon, lat), incident("open", 1, "2026-11-21T08:00:00Z"))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        if i == 3 {
            // And a removal.
            let id = r.body["id"].as_i64().unwrap();
            assert_eq!(
                f.call("DELETE", &format!("/api/v1/incidents/{id}"), Some(Role::Admin), None).await.status,
                StatusCode::NO_CONTENT
            );
        }
        check(&f, &app(AppState::started(f.service.clone()))).await;
    }
}
