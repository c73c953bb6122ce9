//! The production store: PostgreSQL with PostGIS.
//!
//! Points are `geometry(Point, 4326)` and grids `geometry(MultiPolygon, 4326)`, each with a GiST
//! index, so GIS tools read the tables as they are. Bulk inserts go through `UNNEST` of column
//! arrays: one statement per 10,000 rows instead of one per row.

use super::rows::{
    RawFix, RawGridEvent, RawItem, audit_from_row, device_secret_from_row, high_water_key, props_json, token_from_row,
};
use super::{AuditFilter, AuditQuery, AuditRow, BulkInsert, Store, StoreError, TokenRecord};
use crate::layer::{Item, Layer};
use crate::records::{DispatchEvent, GridEvent, Subject, TracePoint};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use safegrid_geodata::grid::{GridLevel, Manager};
use safegrid_geodata::polygon_check::{multipolygon_to_geojson, polygonal_from_geojson};
use safegrid_geodata::{GridCode, GridUnit};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

const ROWS_PER_INSERT: usize = 10_000;

/// The columns of a fix row, in the order [`fix_from_row`] reads them.
const FIX_COLUMNS: &str = "subject, unit_id, t, ST_X(geom), ST_Y(geom), speed_mps, bearing_deg, altitude_m, \
                           accuracy_m, battery_pct, flags, attributes::text, received";

fn fix_from_row(r: &sqlx::postgres::PgRow) -> Result<TracePoint, StoreError> {
    RawFix {
        subject: i64::from(r.try_get::<i16, _>(0)?),
        unit_id: r.try_get(1)?,
        time: r.try_get(2)?,
        lon: r.try_get(3)?,
        lat: r.try_get(4)?,
        speed_mps: r.try_get(5)?,
        bearing_deg: r.try_get(6)?,
        altitude_m: r.try_get(7)?,
        accuracy_m: r.try_get(8)?,
        battery_pct: r.try_get(9)?,
        flags: i64::from(r.try_get::<i16, _>(10)?),
        attributes: r.try_get(11)?,
        received: r.try_get(12)?,
    }
    .decode()
}

/// The name of a day's partition of `fixes`.
fn fix_partition(day: NaiveDate) -> String {
    format!("fixes_{}", day.format("%Y%m%d"))
}

impl PgStore {
    /// Creates the day partitions `fixes` needs for these times. One writer task inserts fixes,
    /// so creation does not race within a process; `IF NOT EXISTS` covers a restart.
    async fn ensure_fix_partitions(&self, fixes: &[TracePoint]) -> Result<(), StoreError> {
        let needed: Vec<NaiveDate> = {
            let known = self.fix_days.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut days: Vec<NaiveDate> =
                fixes.iter().map(|f| f.time.date_naive()).filter(|d| !known.contains(d)).collect();
            days.sort_unstable();
            days.dedup();
            days
        };
        for day in needed {
            let next = day.succ_opt().unwrap_or(day);
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF fixes FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')",
                fix_partition(day)
            );
            sqlx::query(&sql).execute(&self.pool).await?;
            self.fix_days.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(day);
        }
        Ok(())
    }
}

/// The PostGIS store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Days whose `fixes` partition is known to exist (created here or found at start-up).
    fix_days: Arc<Mutex<HashSet<NaiveDate>>>,
}

impl PgStore {
    /// Connects and migrates (creating the `postgis` extension if it is missing).
    ///
    /// # Errors
    /// [`StoreError`] when the server refuses or PostGIS is not installed on it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new().max_connections(8).connect_with(opts).await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self { pool, fix_days: Arc::default() })
    }

    /// The pool, for tests and benchmarks that compare with PostGIS queries.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn grid_from_row(r: &sqlx::postgres::PgRow) -> Result<GridUnit, StoreError> {
    let code: String = r.try_get("code")?;
    let corrupt = |reason: String| StoreError::Corrupt { table: "grid_units", key: code.clone(), reason };
    let geometry_text: String = r.try_get("geojson")?;
    let g: geojson::Geometry = geometry_text.parse::<geojson::Geometry>().map_err(|e| corrupt(e.to_string()))?;
    let level: String = r.try_get("level")?;
    let manager_name: Option<String> = r.try_get("manager_name")?;
    Ok(GridUnit {
        code: GridCode::parse(&code).map_err(|e| corrupt(e.to_string()))?,
        name: r.try_get("name")?,
        level: level.parse::<GridLevel>().map_err(|e| corrupt(e.to_string()))?,
        manager: manager_name.map(|name| Manager { name, phone: r.try_get("manager_phone").ok().flatten() }),
        geometry: polygonal_from_geojson(&g).map_err(|e| corrupt(e.to_string()))?,
    })
}

async fn insert_grid<'e, E: sqlx::Executor<'e, Database = Postgres>>(e: E, u: &GridUnit) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grid_units (code, name, level, parent_code, manager_name, manager_phone, geom)
         VALUES ($1, $2, $3, $4, $5, $6, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($7), 4326)))
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
           parent_code = EXCLUDED.parent_code, manager_name = EXCLUDED.manager_name,
           manager_phone = EXCLUDED.manager_phone, geom = EXCLUDED.geom",
    )
    .bind(u.code.as_str())
    .bind(&u.name)
    .bind(u.level.name())
    .bind(u.code.parent().map(String::from))
    .bind(u.manager.as_ref().map(|m| m.name.clone()))
    .bind(u.manager.as_ref().and_then(|m| m.phone.clone()))
    .bind(multipolygon_to_geojson(&u.geometry).to_string())
    .execute(e)
    .await?;
    Ok(())
}

/// A bulk insert: one transaction, `UNNEST` inserts of [`ROWS_PER_INSERT`] rows.
struct PgBulk {
    tx: sqlx::Transaction<'static, Postgres>,
    layer: Layer,
    top: Option<i64>,
}

#[async_trait]
impl BulkInsert for PgBulk {
    async fn write(&mut self, items: &[Item]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (id, geom, grid_code, kind, status, observed_at, props, created_at, updated_at)
             SELECT id, ST_SetSRID(ST_MakePoint(lon, lat), 4326), grid_code, kind, status, observed_at,
                    props::jsonb, created_at, updated_at
             FROM UNNEST($1::int8[], $2::float8[], $3::float8[], $4::text[], $5::text[], $6::text[],
                         $7::timestamptz[], $8::text[], $9::timestamptz[], $10::timestamptz[])
               AS u(id, lon, lat, grid_code, kind, status, observed_at, props, created_at, updated_at)",
            self.layer.name()
        );
        for chunk in items.chunks(ROWS_PER_INSERT) {
            sqlx::query(&sql)
                .bind(chunk.iter().map(|i| i.id).collect::<Vec<_>>())
                .bind(chunk.iter().map(|i| i.pos.lon()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|i| i.pos.lat()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|i| i.grid.as_ref().map(|g| g.as_str().to_owned())).collect::<Vec<_>>())
                .bind(chunk.iter().map(|i| i.props.kind().to_owned()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|i| i.props.status().to_owned()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|i| i.props.observed_at()).collect::<Vec<_>>())
                .bind(chunk.iter().map(props_json).collect::<Result<Vec<_>, _>>()?)
                .bind(chunk.iter().map(|i| i.created_at).collect::<Vec<_>>())
                .bind(chunk.iter().map(|i| i.updated_at).collect::<Vec<_>>())
                .execute(&mut *self.tx)
                .await?;
            self.top = self.top.max(chunk.iter().map(|i| i.id).max());
        }
        Ok(())
    }

    async fn update(&mut self, item: &Item) -> Result<bool, StoreError> {
        update_row(&mut *self.tx, item).await
    }

    async fn delete(&mut self, layer: Layer, id: i64) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", layer.name());
        Ok(sqlx::query(&sql).bind(id).execute(&mut *self.tx).await?.rows_affected() == 1)
    }

    async fn append_audit(&mut self, row: &AuditRow) -> Result<(), StoreError> {
        append_audit_row(&mut *self.tx, row).await.map(|_| ())
    }

    async fn revoke_device_secret(&mut self, device_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        revoke_secret_row(&mut *self.tx, device_id, at).await.map(|_| ())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        if let Some(top) = self.top {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value::int8, EXCLUDED.value::int8)::text",
            )
            .bind(high_water_key(self.layer))
            .bind(top.to_string())
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

async fn append_audit_row<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    e: E,
    row: &AuditRow,
) -> Result<i64, StoreError> {
    let subjects = serde_json::to_value(&row.subjects).unwrap_or_else(|_| serde_json::json!([]));
    // The service assigns ids (gap-free chain); the identity column gives one only to a row
    // written without (row.id 0).
    let sql = if row.id > 0 {
        "INSERT INTO audit_log (id, at, actor, role, action, request, result_count, layer, subjects, kind, outcome,
                                repeats, last_at, prev_hash, hash)
         OVERRIDING SYSTEM VALUE
         VALUES ($15, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
    } else {
        "INSERT INTO audit_log (at, actor, role, action, request, result_count, layer, subjects, kind, outcome,
                                repeats, last_at, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
    };
    let mut query = sqlx::query_scalar(sql)
        .bind(row.at)
        .bind(&row.actor)
        .bind(&row.role)
        .bind(&row.action)
        .bind(&row.request)
        .bind(row.result_count)
        .bind(&row.layer)
        .bind(subjects)
        .bind(&row.kind)
        .bind(&row.outcome)
        .bind(row.repeats)
        .bind(row.last_at)
        .bind(&row.prev_hash)
        .bind(&row.hash);
    if row.id > 0 {
        query = query.bind(row.id);
    }
    Ok(query.fetch_one(e).await?)
}

async fn revoke_secret_row<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    e: E,
    device_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE device_secrets SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
        .bind(at)
        .bind(device_id)
        .execute(e)
        .await?;
    Ok(done.rows_affected() == 1)
}

async fn update_row<'e, E: sqlx::Executor<'e, Database = Postgres>>(e: E, it: &Item) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE {} SET geom = ST_SetSRID(ST_MakePoint($1, $2), 4326), grid_code = $3, kind = $4, status = $5,
           observed_at = $6, props = $7::jsonb, updated_at = $8
         WHERE id = $9",
        it.layer().name()
    );
    let done = sqlx::query(&sql)
        .bind(it.pos.lon())
        .bind(it.pos.lat())
        .bind(it.grid.as_ref().map(|g| g.as_str().to_owned()))
        .bind(it.props.kind())
        .bind(it.props.status())
        .bind(it.props.observed_at())
        .bind(props_json(it)?)
        .bind(it.updated_at)
        .bind(it.id)
        .execute(e)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn load_grids(&self) -> Result<Vec<GridUnit>, StoreError> {
        let rows = sqlx::query(
            "SELECT code, name, level, manager_name, manager_phone, ST_AsGeoJSON(geom, 15) AS geojson
             FROM grid_units ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grid_from_row).collect()
    }

    async fn write_grids(&self, units: &[GridUnit], replace_all: bool, moved: &[Item]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if replace_all {
            sqlx::query("DELETE FROM grid_units").execute(&mut *tx).await?;
        }
        for u in units {
            insert_grid(&mut *tx, u).await?;
        }
        for it in moved {
            let sql = format!("UPDATE {} SET grid_code = $1 WHERE id = $2", it.layer().name());
            sqlx::query(&sql)
                .bind(it.grid.as_ref().map(|g| g.as_str().to_owned()))
                .bind(it.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn load_items(&self, layer: Layer) -> Result<Vec<Item>, StoreError> {
        let sql = format!(
            "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat, grid_code, props::text AS props, created_at, updated_at
             FROM {} ORDER BY id",
            layer.name()
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|r| {
                RawItem {
                    id: r.try_get("id")?,
                    lon: r.try_get("lon")?,
                    lat: r.try_get("lat")?,
                    grid_code: r.try_get("grid_code")?,
                    props: r.try_get("props")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                }
                .decode(layer)
            })
            .collect()
    }

    async fn begin_insert(&self, layer: Layer) -> Result<Box<dyn BulkInsert>, StoreError> {
        Ok(Box::new(PgBulk { tx: self.pool.begin().await?, layer, top: None }))
    }

    async fn max_id(&self, layer: Layer) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT GREATEST(COALESCE((SELECT MAX(id) FROM {}), 0),
                             COALESCE((SELECT value::int8 FROM meta WHERE key = $1), 0))::int8",
            layer.name()
        );
        Ok(sqlx::query_scalar(&sql).bind(high_water_key(layer)).fetch_one(&self.pool).await?)
    }

    async fn append_audit(&self, row: &AuditRow) -> Result<i64, StoreError> {
        append_audit_row(&self.pool, row).await
    }

    async fn audit_search(&self, f: &AuditFilter, q: AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let mut b = sqlx::QueryBuilder::<Postgres>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id < "));
        b.push_bind(q.before_id.unwrap_or(i64::MAX));
        for (column, value) in
            [("actor", &f.actor), ("role", &f.role), ("layer", &f.layer), ("action", &f.action), ("kind", &f.kind)]
        {
            if let Some(v) = value {
                b.push(format!(" AND {column} = ")).push_bind(v.clone());
            }
        }
        if let Some(s) = f.subject {
            b.push(" AND subjects @> jsonb_build_array(").push_bind(s).push("::int8)");
        }
        if let Some(t) = f.since {
            b.push(" AND COALESCE(last_at, at) >= ").push_bind(t);
        }
        if let Some(t) = f.until {
            b.push(" AND at < ").push_bind(t);
        }
        b.push(" ORDER BY id DESC LIMIT ").push_bind(q.limit);
        b.build().fetch_all(&self.pool).await?.iter().map(audit_from_row).collect()
    }

    async fn audit_rows_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2");
        sqlx::query(&sql).bind(after).bind(limit).fetch_all(&self.pool).await?.iter().map(audit_from_row).collect()
    }

    async fn put_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let scope = serde_json::to_string(&t.grids).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO api_tokens (token_sha256, name, role, grid_scope, created_at) VALUES ($1, $2, $3, $4::jsonb, $5)
             ON CONFLICT (token_sha256) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role, grid_scope = EXCLUDED.grid_scope",
        )
        .bind(&t.hash)
        .bind(&t.name)
        .bind(t.role.name())
        .bind(scope)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query("SELECT token_sha256, name, role, grid_scope::text AS grid_scope FROM api_tokens")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn delete_token(&self, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE token_sha256 = $1").bind(hash).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_device_secret(&self, r: &super::DeviceSecretRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_secrets (device_id, secret_sha256, created_at, revoked_at) VALUES ($1, $2, $3, NULL)
             ON CONFLICT (device_id) DO UPDATE SET secret_sha256 = EXCLUDED.secret_sha256,
                 created_at = EXCLUDED.created_at, revoked_at = NULL",
        )
        .bind(&r.device_id)
        .bind(&r.hash)
        .bind(r.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn device_secrets(&self) -> Result<Vec<super::DeviceSecretRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT device_id, secret_sha256, created_at FROM device_secrets WHERE revoked_at IS NULL")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(device_secret_from_row).collect()
    }

    async fn revoke_device_secret(&self, device_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        revoke_secret_row(&self.pool, device_id, at).await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1").bind(key).fetch_optional(&self.pool).await?)
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_fixes(&self, fixes: &[TracePoint], events: &[GridEvent]) -> Result<u64, StoreError> {
        self.ensure_fix_partitions(fixes).await?;
        let mut tx = self.pool.begin().await?;
        if !events.is_empty() {
            sqlx::query(
                "INSERT INTO geofence_events (id, t, subject, unit_id, kind, grid_code, geom)
                 SELECT id, t, subject, unit_id, kind, grid_code, ST_SetSRID(ST_MakePoint(lon, lat), 4326)
                 FROM UNNEST($1::int8[], $2::timestamptz[], $3::int8[], $4::text[], $5::text[], $6::float8[], $7::float8[],
                             $8::int2[])
                   AS u(id, t, unit_id, kind, grid_code, lon, lat, subject)",
            )
            .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.time).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.unit_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.kind.name()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.grid_code.as_str()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.pos.lon()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.pos.lat()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| i16::from(e.subject.code())).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        let mut inserted = 0;
        for chunk in fixes.chunks(ROWS_PER_INSERT) {
            let done = sqlx::query(
                "INSERT INTO fixes (subject, unit_id, t, geom, speed_mps, bearing_deg, altitude_m, accuracy_m,
                                    battery_pct, flags, attributes, received)
                 SELECT subject, unit_id, t, ST_SetSRID(ST_MakePoint(lon, lat), 4326), speed, bearing, altitude,
                        accuracy, battery, flags, attributes::jsonb, received
                 FROM UNNEST($1::int8[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float4[], $6::float4[],
                             $7::float4[], $8::float4[], $9::float4[], $10::int2[], $11::text[], $12::timestamptz[],
                             $13::int2[])
                   AS u(unit_id, t, lon, lat, speed, bearing, altitude, accuracy, battery, flags, attributes, received,
                        subject)
                 ON CONFLICT (subject, unit_id, t) DO NOTHING",
            )
            .bind(chunk.iter().map(|f| f.unit_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.time).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.pos.lon()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.pos.lat()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.speed_mps).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.bearing_deg).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.altitude_m).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.accuracy_m).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.battery_pct).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| i16::from(f.flags)).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.attributes.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| f.received).collect::<Vec<_>>())
            .bind(chunk.iter().map(|f| i16::from(f.subject.code())).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
            inserted += done.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn last_live_fixes(&self, subject: Subject, units: &[i64]) -> Result<Vec<TracePoint>, StoreError> {
        let sql = format!(
            "SELECT {FIX_COLUMNS} FROM UNNEST($1::int8[]) AS u(id)
             CROSS JOIN LATERAL (SELECT * FROM fixes WHERE subject = $2 AND unit_id = u.id AND flags = 0
                                 ORDER BY t DESC LIMIT 1) f"
        );
        let rows = sqlx::query(&sql).bind(units).bind(i16::from(subject.code())).fetch_all(&self.pool).await?;
        rows.iter().map(fix_from_row).collect()
    }

    async fn trace(
        &self,
        subject: Subject,
        unit: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TracePoint>, StoreError> {
        let sql = format!(
            "SELECT {FIX_COLUMNS} FROM fixes WHERE unit_id = $1 AND t >= $2 AND t < $3 AND subject = $5 ORDER BY t LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(unit)
            .bind(from)
            .bind(to)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i16::from(subject.code()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(fix_from_row).collect()
    }

    async fn geofence_events(&self, after: i64, limit: usize) -> Result<Vec<GridEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, t, unit_id, kind, grid_code, ST_X(geom), ST_Y(geom), subject FROM geofence_events
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                RawGridEvent {
                    id: r.try_get(0)?,
                    time: r.try_get(1)?,
                    unit_id: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    grid_code: r.try_get(4)?,
                    lon: r.try_get(5)?,
                    lat: r.try_get(6)?,
                    subject: i64::from(r.try_get::<i16, _>(7)?),
                }
                .decode()
            })
            .collect()
    }

    async fn append_dispatch_events(&self, events: &[DispatchEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for e in events {
            sqlx::query(
                "INSERT INTO dispatch_events (id, dispatch_id, incident_id, unit_id, post_id, kind, at, actor, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(e.id)
            .bind(e.dispatch_id)
            .bind(e.incident_id)
            .bind(e.unit_id)
            .bind(e.post_id)
            .bind(&e.kind)
            .bind(e.at)
            .bind(&e.actor)
            .bind(&e.detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dispatch_events(&self) -> Result<Vec<DispatchEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, dispatch_id, incident_id, unit_id, post_id, kind, at, actor, detail FROM dispatch_events ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DispatchEvent {
                    id: r.try_get(0)?,
                    dispatch_id: r.try_get(1)?,
                    incident_id: r.try_get(2)?,
                    unit_id: r.try_get(3)?,
                    post_id: r.try_get(4)?,
                    kind: r.try_get(5)?,
                    at: r.try_get(6)?,
                    actor: r.try_get(7)?,
                    detail: r.try_get(8)?,
                })
            })
            .collect()
    }

    async fn max_geofence_event_id(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(id), 0)::int8 FROM geofence_events").fetch_one(&self.pool).await?)
    }

    async fn zone_alert_count(&self, subject: Subject, unit_id: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*)::int8 FROM geofence_events
             WHERE subject = $1 AND unit_id = $2 AND kind IN ('zone_breach', 'zone_return')",
        )
        .bind(i16::from(subject.code()))
        .bind(unit_id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn drop_fixes_before(&self, t: DateTime<Utc>) -> Result<u64, StoreError> {
        // Whole days go by dropping their partition (no dead rows, no vacuum); the rest of the
        // boundary day by DELETE.
        let parts: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'fixes'::regclass",
        )
        .fetch_all(&self.pool)
        .await?;
        let cutoff = t.date_naive();
        for name in parts {
            let Some(day) = name.strip_prefix("fixes_").and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            else {
                continue;
            };
            if day < cutoff {
                sqlx::query(&format!("DROP TABLE IF EXISTS {name}")).execute(&self.pool).await?;
                self.fix_days.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&day);
            }
        }
        let done = sqlx::query("DELETE FROM fixes WHERE t < $1").bind(t).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

/// The audit-log columns.
const AUDIT_COLUMNS: &str = "id, at, actor, role, action, request, result_count, layer, subjects::text AS subjects, kind, outcome, \
                             repeats, last_at, prev_hash, hash";
