//! The embedded store: one SQLite file, created on first run.
//!
//! WAL mode lets readers run beside the writer; `synchronous = FULL` makes a commit durable
//! before it returns, so an acknowledged write survives `kill -9` and power loss alike.

use super::rows::{
    RawFix, RawGridEvent, RawItem, audit_from_row, device_secret_from_row, high_water_key, props_json, token_from_row,
};
use super::{AuditFilter, AuditQuery, AuditRow, BulkInsert, Store, StoreError, TokenRecord};
use crate::layer::{Item, Layer};
use crate::records::{DispatchEvent, GridEvent, Subject, TracePoint, from_millis, to_millis};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use safegrid_geodata::grid::{GridLevel, Manager};
use safegrid_geodata::polygon_check::{multipolygon_to_geojson, polygonal_from_geojson};
use safegrid_geodata::{GridCode, GridUnit};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::path::Path;
use std::time::Duration;

/// SQLite allows 32,766 bound parameters per statement; ten columns per item row.
const ROWS_PER_INSERT: usize = 3_000;
/// Thirteen columns per fix.
const FIXES_PER_INSERT: usize = 2_500;
/// The columns of a fix row, in the order [`fix_from_row`] reads them.
const FIX_COLUMNS: &str = "subject, unit_id, t, lon, lat, speed_mps, bearing_deg, altitude_m, accuracy_m, battery_pct, \
                           flags, attributes, received";

fn fix_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<TracePoint, StoreError> {
    RawFix {
        subject: r.try_get(0)?,
        unit_id: r.try_get(1)?,
        time: from_millis(r.try_get(2)?),
        lon: r.try_get(3)?,
        lat: r.try_get(4)?,
        speed_mps: r.try_get(5)?,
        bearing_deg: r.try_get(6)?,
        altitude_m: r.try_get(7)?,
        accuracy_m: r.try_get(8)?,
        battery_pct: r.try_get(9)?,
        flags: r.try_get(10)?,
        attributes: r.try_get(11)?,
        received: from_millis(r.try_get(12)?),
    }
    .decode()
}

/// The embedded SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database file.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be created or migrated.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        private_files(path).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // 16 KiB pages (default 4): a third less time to write and checkpoint a bulk import,
            // measured with the sqlite3 shell on a million rows (BENCHMARKS.md). It applies when the
            // file is created; an existing file keeps its page size.
            .page_size(16_384)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // A 64 MiB page cache per connection (default 2 MiB), for bulk inserts that maintain
            // three B-trees per layer.
            .pragma("cache_size", "-65536");
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// The database holds whereabouts, key persons and the audit log: only the service's own user
/// may read it. A directory we create is 0700; the file is created 0600 before SQLite opens it
/// (SQLite gives its `-wal` and `-shm` files the database file's mode), and an existing file or
/// WAL left readable by others — by an older version, say — is tightened, with a warning.
fn private_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    if !path.exists() {
        // An empty file is an empty SQLite database.
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        let Ok(meta) = std::fs::metadata(file) else { continue };
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %file.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "database file readable by others; setting 0600");
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// A bulk insert: one transaction, multi-row INSERTs of [`ROWS_PER_INSERT`].
///
/// (Tried and dropped: one JSON array a chunk, unpacked by `json_each` — SQLite re-parses the
/// row for each `->>`, and the import got slower, 5.5 s of writing instead of 3.)
struct SqliteBulk {
    tx: sqlx::Transaction<'static, Sqlite>,
    layer: Layer,
    top: Option<i64>,
}

/// SQLite stores timestamps as RFC 3339 text, in sqlx's format (so that rows written here and
/// through `bind(DateTime)` read back alike). A bulk insert stamps every row with the same
/// instant, so each distinct instant is formatted once per chunk, not twice per row.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// An audit-log time as stored: fixed width (microseconds, `+00:00`), so that the text sorts as
/// the time does and the auditor's `since`/`until` compare as text (rows written before the
/// chain have sqlx's shorter form, which still sorts right except at equal instants).
fn audit_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// The audit-log columns, in the order [`audit_from_row`] reads them by name.
const AUDIT_COLUMNS: &str = "id, at, actor, role, action, request, result_count, layer, subjects, kind, outcome, \
                             repeats, last_at, prev_hash, hash";

#[async_trait]
impl BulkInsert for SqliteBulk {
    async fn write(&mut self, items: &[Item]) -> Result<(), StoreError> {
        for chunk in items.chunks(ROWS_PER_INSERT) {
            // Everything a row binds, computed before the statement borrows it.
            let mut props = Vec::with_capacity(chunk.len());
            let mut stamps: Vec<(DateTime<Utc>, String)> = Vec::new();
            for it in chunk {
                props.push(props_json(it)?);
                for t in [it.created_at, it.updated_at] {
                    if !stamps.iter().any(|(s, _)| *s == t) {
                        stamps.push((t, stamp(t)));
                    }
                }
            }
            let text = |t: DateTime<Utc>| stamps.iter().find(|(s, _)| *s == t).map_or("", |(_, text)| text.as_str());
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "INSERT INTO {} (id, lon, lat, grid_code, kind, status, observed_at, props, created_at, updated_at) ",
                self.layer.name()
            ));
            qb.push_values(chunk.iter().zip(&props), |mut b, (it, props)| {
                b.push_bind(it.id)
                    .push_bind(it.pos.lon())
                    .push_bind(it.pos.lat())
                    .push_bind(it.grid.as_ref().map(GridCode::as_str))
                    .push_bind(it.props.kind())
                    .push_bind(it.props.status())
                    .push_bind(it.props.observed_at())
                    .push_bind(props.as_str())
                    .push_bind(text(it.created_at))
                    .push_bind(text(it.updated_at));
            });
            qb.build().persistent(chunk.len() == ROWS_PER_INSERT).execute(&mut *self.tx).await?;
            self.top = self.top.max(chunk.iter().map(|i| i.id).max());
        }
        Ok(())
    }

    async fn update(&mut self, item: &Item) -> Result<bool, StoreError> {
        update_row(&mut *self.tx, item).await
    }

    async fn delete(&mut self, layer: Layer, id: i64) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = ?", layer.name());
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
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(?2 AS INTEGER))",
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

fn grid_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<GridUnit, StoreError> {
    let code: String = r.try_get("code")?;
    let corrupt = |reason: String| StoreError::Corrupt { table: "grid_units", key: code.clone(), reason };
    let geometry_text: String = r.try_get("geometry")?;
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

async fn insert_grid<'e, E: sqlx::Executor<'e, Database = Sqlite>>(e: E, u: &GridUnit) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR REPLACE INTO grid_units (code, name, level, parent_code, manager_name, manager_phone, geometry)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
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

async fn append_audit_row<'e, E: sqlx::Executor<'e, Database = Sqlite>>(
    e: E,
    row: &AuditRow,
) -> Result<i64, StoreError> {
    let subjects = serde_json::to_string(&row.subjects).unwrap_or_else(|_| "[]".into());
    let id = sqlx::query_scalar(
        "INSERT INTO audit_log (id, at, actor, role, action, request, result_count, layer, subjects, kind, outcome,
                                repeats, last_at, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind((row.id > 0).then_some(row.id))
    .bind(audit_time(row.at))
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
    .bind(row.last_at.map(audit_time))
    .bind(&row.prev_hash)
    .bind(&row.hash)
    .fetch_one(e)
    .await?;
    Ok(id)
}

async fn revoke_secret_row<'e, E: sqlx::Executor<'e, Database = Sqlite>>(
    e: E,
    device_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE device_secrets SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL")
        .bind(at)
        .bind(device_id)
        .execute(e)
        .await?;
    Ok(done.rows_affected() == 1)
}

async fn update_row<'e, E: sqlx::Executor<'e, Database = Sqlite>>(e: E, it: &Item) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE {} SET lon = ?, lat = ?, grid_code = ?, kind = ?, status = ?, observed_at = ?, props = ?, updated_at = ?
         WHERE id = ?",
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
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn load_grids(&self) -> Result<Vec<GridUnit>, StoreError> {
        let rows = sqlx::query("SELECT * FROM grid_units ORDER BY code").fetch_all(&self.pool).await?;
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
            let sql = format!("UPDATE {} SET grid_code = ? WHERE id = ?", it.layer().name());
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
        let sql =
            format!("SELECT id, lon, lat, grid_code, props, created_at, updated_at FROM {} ORDER BY id", layer.name());
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
        Ok(Box::new(SqliteBulk { tx: self.pool.begin().await?, layer, top: None }))
    }

    async fn max_id(&self, layer: Layer) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT max(COALESCE((SELECT MAX(id) FROM {}), 0),
                        COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0))",
            layer.name()
        );
        Ok(sqlx::query_scalar(&sql).bind(high_water_key(layer)).fetch_one(&self.pool).await?)
    }

    async fn append_audit(&self, row: &AuditRow) -> Result<i64, StoreError> {
        append_audit_row(&self.pool, row).await
    }

    async fn audit_search(&self, f: &AuditFilter, q: AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let mut b = QueryBuilder::<Sqlite>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id < "));
        b.push_bind(q.before_id.unwrap_or(i64::MAX));
        for (column, value) in
            [("actor", &f.actor), ("role", &f.role), ("layer", &f.layer), ("action", &f.action), ("kind", &f.kind)]
        {
            if let Some(v) = value {
                b.push(format!(" AND {column} = ")).push_bind(v.clone());
            }
        }
        if let Some(s) = f.subject {
            b.push(" AND EXISTS (SELECT 1 FROM json_each(audit_log.subjects) WHERE json_each.value = ")
                .push_bind(s)
                .push(")");
        }
        // Times are stored as fixed-width RFC 3339 text, which sorts as time.
        if let Some(t) = f.since {
            b.push(" AND COALESCE(last_at, at) >= ").push_bind(audit_time(t));
        }
        if let Some(t) = f.until {
            b.push(" AND at < ").push_bind(audit_time(t));
        }
        b.push(" ORDER BY id DESC LIMIT ").push_bind(q.limit);
        b.build().fetch_all(&self.pool).await?.iter().map(audit_from_row).collect()
    }

    async fn audit_rows_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?");
        sqlx::query(&sql).bind(after).bind(limit).fetch_all(&self.pool).await?.iter().map(audit_from_row).collect()
    }

    async fn put_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let scope = serde_json::to_string(&t.grids).unwrap_or_else(|_| "[]".into());
        sqlx::query("INSERT OR REPLACE INTO api_tokens (token_sha256, name, role, grid_scope, created_at) VALUES (?, ?, ?, ?, ?)")
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
        let rows =
            sqlx::query("SELECT token_sha256, name, role, grid_scope FROM api_tokens").fetch_all(&self.pool).await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn delete_token(&self, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE token_sha256 = ?").bind(hash).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_device_secret(&self, r: &super::DeviceSecretRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO device_secrets (device_id, secret_sha256, created_at, revoked_at) VALUES (?, ?, ?, NULL)",
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
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?").bind(key).fetch_optional(&self.pool).await?)
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_fixes(&self, fixes: &[TracePoint], events: &[GridEvent]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO geofence_events (id, t, subject, unit_id, kind, grid_code, lon, lat) ");
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(e.id)
                    .push_bind(to_millis(e.time))
                    .push_bind(i64::from(e.subject.code()))
                    .push_bind(e.unit_id)
                    .push_bind(e.kind.name())
                    .push_bind(e.grid_code.as_str())
                    .push_bind(e.pos.lon())
                    .push_bind(e.pos.lat());
            });
            qb.build().execute(&mut *tx).await?;
        }
        let mut inserted = 0;
        for chunk in fixes.chunks(FIXES_PER_INSERT) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("INSERT OR IGNORE INTO fixes ({FIX_COLUMNS}) "));
            qb.push_values(chunk, |mut b, f| {
                b.push_bind(i64::from(f.subject.code()))
                    .push_bind(f.unit_id)
                    .push_bind(to_millis(f.time))
                    .push_bind(f.pos.lon())
                    .push_bind(f.pos.lat())
                    .push_bind(f.speed_mps)
                    .push_bind(f.bearing_deg)
                    .push_bind(f.altitude_m)
                    .push_bind(f.accuracy_m)
                    .push_bind(f.battery_pct)
                    .push_bind(i64::from(f.flags))
                    .push_bind(f.attributes.as_deref())
                    .push_bind(to_millis(f.received));
            });
            let done = qb.build().persistent(chunk.len() == FIXES_PER_INSERT).execute(&mut *tx).await?;
            inserted += done.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn last_live_fixes(&self, subject: Subject, units: &[i64]) -> Result<Vec<TracePoint>, StoreError> {
        // One backward range scan of the primary key per unit: a few thousand units cost
        // milliseconds, where a GROUP BY would read the whole history.
        let sql = format!(
            "SELECT {FIX_COLUMNS} FROM fixes WHERE subject = ? AND unit_id = ? AND flags = 0 ORDER BY t DESC LIMIT 1"
        );
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::new();
        for &u in units {
            if let Some(r) =
                sqlx::query(&sql).bind(i64::from(subject.code())).bind(u).fetch_optional(&mut *conn).await?
            {
                out.push(fix_from_row(&r)?);
            }
        }
        Ok(out)
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
            "SELECT {FIX_COLUMNS} FROM fixes WHERE subject = ? AND unit_id = ? AND t >= ? AND t < ? ORDER BY t LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(subject.code()))
            .bind(unit)
            .bind(to_millis(from))
            .bind(to_millis(to))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(fix_from_row).collect()
    }

    async fn geofence_events(&self, after: i64, limit: usize) -> Result<Vec<GridEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, t, unit_id, kind, grid_code, lon, lat, subject FROM geofence_events WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                RawGridEvent {
                    id: r.try_get(0)?,
                    time: from_millis(r.try_get(1)?),
                    unit_id: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    grid_code: r.try_get(4)?,
                    lon: r.try_get(5)?,
                    lat: r.try_get(6)?,
                    subject: r.try_get(7)?,
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
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.id)
            .bind(e.dispatch_id)
            .bind(e.incident_id)
            .bind(e.unit_id)
            .bind(e.post_id)
            .bind(&e.kind)
            .bind(to_millis(e.at))
            .bind(&e.actor)
            .bind(e.detail.as_ref().map(serde_json::Value::to_string))
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
                let id: i64 = r.try_get(0)?;
                let detail: Option<String> = r.try_get(8)?;
                Ok(DispatchEvent {
                    id,
                    dispatch_id: r.try_get(1)?,
                    incident_id: r.try_get(2)?,
                    unit_id: r.try_get(3)?,
                    post_id: r.try_get(4)?,
                    kind: r.try_get(5)?,
                    at: from_millis(r.try_get(6)?),
                    actor: r.try_get(7)?,
                    detail: detail.map(|d| serde_json::from_str(&d)).transpose().map_err(|e| StoreError::Corrupt {
                        table: "dispatch_events",
                        key: id.to_string(),
                        reason: e.to_string(),
                    })?,
                })
            })
            .collect()
    }

    async fn max_geofence_event_id(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM geofence_events").fetch_one(&self.pool).await?)
    }

    async fn zone_alert_count(&self, subject: Subject, unit_id: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM geofence_events
             WHERE subject = ? AND unit_id = ? AND kind IN ('zone_breach', 'zone_return')",
        )
        .bind(i64::from(subject.code()))
        .bind(unit_id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn drop_fixes_before(&self, t: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM fixes WHERE t < ?").bind(to_millis(t)).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
