//! Durable storage behind one trait, with two real implementations through sqlx:
//! [`sqlite::SqliteStore`] (the embedded default: one file, WAL, zero set-up) and
//! [`postgres::PgStore`] (PostGIS: `geometry(…, 4326)` columns with GiST indexes, which GDAL's
//! `ogrinfo` reads as layers — tested). Both pass the same test suite (`tests/it/stores.rs`).
//!
//! The store is the source of truth; the service keeps live indexes in memory and rebuilds them
//! from here at start-up. A write returns only once it is committed.

pub mod postgres;
pub mod sqlite;

use crate::access::Role;
use crate::layer::{Item, Layer};
use crate::records::{DispatchEvent, GridEvent, Subject, TracePoint};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use safegrid_geodata::{GridCode, GridUnit};
use std::sync::Arc;

/// One item written by [`Store::write_item`].
#[derive(Debug, Clone, Copy)]
pub enum ItemWrite<'a> {
    /// A new item, with the id the service gave it.
    Insert(&'a Item),
    /// Replaces the stored item of the same layer and id.
    Update(&'a Item),
    /// Removes an item.
    Delete(Layer, i64),
}

impl ItemWrite<'_> {
    /// The layer written.
    #[must_use]
    pub fn layer(&self) -> Layer {
        match self {
            Self::Insert(it) | Self::Update(it) => it.layer(),
            Self::Delete(layer, _) => *layer,
        }
    }
}

/// What [`Store::write_item`] stores in the same transaction as the item.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteRecord<'a> {
    /// The write's audit row, already sealed into the chain.
    pub audit: Option<&'a AuditRow>,
    /// A tracker whose secret the write revokes, and when: its carrier was deleted or gave
    /// it up, so a fix signed with it must no longer move anyone.
    pub revoke_device: Option<(&'a str, DateTime<Utc>)>,
}

/// Errors of the storage layer. SQL text never reaches an API client: the HTTP layer maps
/// these to a generic 500 or 503 and logs the detail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed or refused.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not decode (written by another tool, or a bug).
    #[error("corrupt row in {table} ({key}): {reason}")]
    Corrupt {
        /// The table read.
        table: &'static str,
        /// The row's key, as text.
        key: String,
        /// What does not decode.
        reason: String,
    },
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

/// One row of the append-only audit log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRow {
    /// Sequence number (assigned by the store).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Token name of the caller.
    pub actor: String,
    /// Caller's role.
    pub role: String,
    /// What kind of read: `list`, `query`, `get`, `nearest`, `tile`…
    pub action: String,
    /// The request as asked (method, path and query string).
    pub request: String,
    /// How many items were returned (for a row of repeats: summed over them).
    pub result_count: i64,
    /// The layer concerned, when one.
    pub layer: Option<String>,
    /// The ids of the persons or units the act concerned (items returned, the item written).
    pub subjects: Vec<i64>,
    /// `read` or `write` ([`crate::audit_log::AuditKind`]).
    pub kind: String,
    /// `ok`, `forbidden`, `not_found`, `invalid` or `failed` ([`crate::audit_log::Outcome`]).
    pub outcome: String,
    /// How many identical acts the row stands for (1, or more for collapsed repeated reads).
    pub repeats: i64,
    /// For a row of collapsed reads: the last of them (`at` is the first).
    pub last_at: Option<DateTime<Utc>>,
    /// The hash of the row before it ([`crate::audit_log::GENESIS`] for the first chained row);
    /// None for rows written before the chain.
    pub prev_hash: Option<String>,
    /// SHA-256 over the row and `prev_hash` ([`crate::audit_log::row_hash`]); None before the chain.
    pub hash: Option<String>,
}

/// Audit-log filters (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Token name, exactly.
    pub actor: Option<String>,
    /// Role name.
    pub role: Option<String>,
    /// Layer name.
    pub layer: Option<String>,
    /// Rows whose subjects include this id.
    pub subject: Option<i64>,
    /// Action, exactly.
    pub action: Option<String>,
    /// `read` or `write`.
    pub kind: Option<String>,
    /// Rows that reach this time or later (`last_at`, else `at`, is at or after it).
    pub since: Option<DateTime<Utc>>,
    /// Rows that began before this time (`at` before it).
    pub until: Option<DateTime<Utc>>,
}

/// A stored API token (its hash, never the token).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// Who or what holds it.
    pub name: String,
    /// Role granted.
    pub role: Role,
    /// Grid scope (grid workers).
    pub grids: Vec<GridCode>,
}

/// A tracker's secret as stored: its SHA-256, never the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSecretRecord {
    /// The device id the secret proves.
    pub device_id: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// When it was minted.
    pub created_at: DateTime<Utc>,
}

/// Audit-log query: newest first, before an id, at most `limit` rows.
#[derive(Debug, Clone, Copy)]
pub struct AuditQuery {
    /// Only rows with a smaller id (paging backwards).
    pub before_id: Option<i64>,
    /// Maximum rows.
    pub limit: i64,
}

/// What every store does.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgis`.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Every grid unit.
    async fn load_grids(&self) -> Result<Vec<GridUnit>, StoreError>;
    /// Changes the grid layer in one transaction: removes every unit first when `replace_all`,
    /// inserts or replaces `units`, and stores the new grid codes of the items that `moved` to
    /// another grid as a result — so that no crash can leave items pointing at old grids.
    async fn write_grids(&self, units: &[GridUnit], replace_all: bool, moved: &[Item]) -> Result<(), StoreError>;

    /// Every item of a layer.
    async fn load_items(&self, layer: Layer) -> Result<Vec<Item>, StoreError>;
    /// Inserts items (all of one layer) in one transaction: all or none.
    async fn insert_items(&self, layer: Layer, items: &[Item]) -> Result<(), StoreError> {
        let mut bulk = self.begin_insert(layer).await?;
        bulk.write(items).await?;
        bulk.commit().await
    }
    /// Opens one transaction for a bulk insert into a layer, written in chunks as they come
    /// (an import streams its file through it).
    async fn begin_insert(&self, layer: Layer) -> Result<Box<dyn BulkInsert>, StoreError>;
    /// Writes one item together with what records it ([`WriteRecord`]: its audit row, a
    /// tracker secret it revokes) in one transaction, so that no write stands unrecorded and no
    /// record names a write that did not happen. `false`, and nothing written, when an update or
    /// a delete finds no such id.
    async fn write_item(&self, write: ItemWrite<'_>, with: WriteRecord<'_>) -> Result<bool, StoreError> {
        // The insert path of a bulk insert, so that one item raises the high-water id as a file
        // of them does; an update or a delete runs in the same kind of transaction.
        let mut tx = self.begin_insert(write.layer()).await?;
        let done = match write {
            ItemWrite::Insert(it) => {
                tx.write(std::slice::from_ref(it)).await?;
                true
            }
            ItemWrite::Update(it) => tx.update(it).await?,
            ItemWrite::Delete(layer, id) => tx.delete(layer, id).await?,
        };
        if !done {
            return Ok(false); // the transaction rolls back as it drops
        }
        if let Some(row) = with.audit {
            tx.append_audit(row).await?;
        }
        if let Some((device, at)) = with.revoke_device {
            tx.revoke_device_secret(device, at).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
    /// Replaces an item; false when the id does not exist.
    async fn update_item(&self, item: &Item) -> Result<bool, StoreError> {
        self.write_item(ItemWrite::Update(item), WriteRecord::default()).await
    }
    /// Deletes an item; false when the id does not exist.
    async fn delete_item(&self, layer: Layer, id: i64) -> Result<bool, StoreError> {
        self.write_item(ItemWrite::Delete(layer, id), WriteRecord::default()).await
    }
    /// The largest id ever used in a layer (0 when none), deleted items included, so that an
    /// id is never given to a second item (audit rows and clients refer to ids).
    async fn max_id(&self, layer: Layer) -> Result<i64, StoreError>;

    /// Appends to the audit log with the row's own id (the service assigns ids, one more than
    /// the last, so the chained log has no gaps; an id taken fails), or one the store assigns
    /// when `row.id` is 0; returns the row's id.
    async fn append_audit(&self, row: &AuditRow) -> Result<i64, StoreError>;
    /// Reads the audit log, newest first.
    async fn audit_rows(&self, q: AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_search(&AuditFilter::default(), q).await
    }
    /// Reads the rows that match a filter, newest first.
    async fn audit_search(&self, f: &AuditFilter, q: AuditQuery) -> Result<Vec<AuditRow>, StoreError>;
    /// Rows with an id above `after`, oldest first, at most `limit` (the chain check's walk).
    async fn audit_rows_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError>;
    /// The newest row (the head of the chain), if any.
    async fn audit_head(&self) -> Result<Option<AuditRow>, StoreError> {
        Ok(self.audit_rows(AuditQuery { before_id: None, limit: 1 }).await?.into_iter().next())
    }

    /// Stores a token.
    async fn put_token(&self, t: &TokenRecord) -> Result<(), StoreError>;
    /// Every token.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Deletes a token by its hash; false when there was none.
    async fn delete_token(&self, hash: &str) -> Result<bool, StoreError>;

    /// Stores a device's secret hash, replacing (rotating) any earlier one, revoked or not.
    async fn put_device_secret(&self, r: &DeviceSecretRecord) -> Result<(), StoreError>;
    /// Every device secret not revoked.
    async fn device_secrets(&self) -> Result<Vec<DeviceSecretRecord>, StoreError>;
    /// Revokes a device's secret; false when it had none in force.
    async fn revoke_device_secret(&self, device_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Reads a small setting.
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Writes a small setting.
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Appends fixes to the position history, and the grid crossings they caused, in one
    /// transaction, durably; skips fixes whose (unit, time) is already stored (a tracker
    /// re-sending after a lost answer). Returns how many fixes were new.
    async fn insert_fixes(&self, fixes: &[TracePoint], events: &[GridEvent]) -> Result<u64, StoreError>;
    /// Grid crossings with an id above `after`, oldest first, at most `limit`.
    async fn geofence_events(&self, after: i64, limit: usize) -> Result<Vec<GridEvent>, StoreError>;
    /// The largest grid-crossing id stored (0 when none).
    async fn max_geofence_event_id(&self) -> Result<i64, StoreError>;
    /// How many zone alerts (breach or return) name this subject.
    async fn zone_alert_count(&self, subject: Subject, unit_id: i64) -> Result<i64, StoreError>;
    /// The newest unflagged fix of each of these items that has one (restores the live state at
    /// start-up).
    async fn last_live_fixes(&self, subject: Subject, ids: &[i64]) -> Result<Vec<TracePoint>, StoreError>;
    /// An item's fixes in `[from, to)`, oldest first, at most `limit`.
    async fn trace(
        &self,
        subject: Subject,
        unit: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TracePoint>, StoreError>;
    /// Appends dispatch-lifecycle events in one transaction (ids assigned by the service).
    async fn append_dispatch_events(&self, events: &[DispatchEvent]) -> Result<(), StoreError>;
    /// Every dispatch-lifecycle event, in id order (folded into the live board at start-up).
    async fn dispatch_events(&self) -> Result<Vec<DispatchEvent>, StoreError>;

    /// Deletes fixes taken before `t` (retention); returns how many went, when the store knows.
    async fn drop_fixes_before(&self, t: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// A bulk insert in progress: one open transaction. Dropping it without [`BulkInsert::commit`]
/// rolls everything back, so a failed import leaves the store exactly as it was. The same open
/// transaction also carries a single item's write and what records it ([`Store::write_item`]).
#[async_trait]
pub trait BulkInsert: Send {
    /// Writes items of the layer the insert was begun for.
    async fn write(&mut self, items: &[Item]) -> Result<(), StoreError>;
    /// Replaces an item in this transaction; false when the id does not exist.
    async fn update(&mut self, item: &Item) -> Result<bool, StoreError>;
    /// Deletes an item in this transaction; false when the id does not exist.
    async fn delete(&mut self, layer: Layer, id: i64) -> Result<bool, StoreError>;
    /// Appends an audit row (with its own id) in this transaction.
    async fn append_audit(&mut self, row: &AuditRow) -> Result<(), StoreError>;
    /// Revokes a device's secret in this transaction.
    async fn revoke_device_secret(&mut self, device_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Raises the layer's high-water id to the largest written, and commits.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens the store a URL names, creating and migrating it as needed: `sqlite://PATH` (the file
/// is created on first run) or `postgres://…`.
///
/// # Errors
/// [`StoreError`] when the URL is unsupported or the database refuses.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        Ok(Arc::new(sqlite::SqliteStore::open(std::path::Path::new(path)).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Helpers shared by both implementations for the columns they have in common.
pub(crate) mod rows {
    use super::StoreError;
    use crate::layer::{Item, Layer, Props};
    use chrono::{DateTime, Utc};
    use safegrid_geodata::{GridCode, LonLat};

    /// The raw columns of an item row.
    pub(crate) struct RawItem {
        pub id: i64,
        pub lon: f64,
        pub lat: f64,
        pub grid_code: Option<String>,
        pub props: String,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }

    impl RawItem {
        pub(crate) fn decode(self, layer: Layer) -> Result<Item, StoreError> {
            let corrupt =
                |reason: String| StoreError::Corrupt { table: layer.name(), key: self.id.to_string(), reason };
            let pos = LonLat::new(self.lon, self.lat).map_err(|e| corrupt(e.to_string()))?;
            let grid =
                self.grid_code.as_deref().map(GridCode::parse).transpose().map_err(|e| corrupt(e.to_string()))?;
            let json: serde_json::Value = serde_json::from_str(&self.props).map_err(|e| corrupt(e.to_string()))?;
            let props = Props::parse(layer, json).map_err(|e| corrupt(e.to_string()))?;
            Ok(Item { id: self.id, pos, grid, props, created_at: self.created_at, updated_at: self.updated_at })
        }
    }

    /// The raw columns of a `geofence_events` row.
    pub(crate) struct RawGridEvent {
        pub id: i64,
        pub time: DateTime<Utc>,
        pub subject: i64,
        pub unit_id: i64,
        pub kind: String,
        pub grid_code: String,
        pub lon: f64,
        pub lat: f64,
    }

    impl RawGridEvent {
        pub(crate) fn decode(self) -> Result<crate::records::GridEvent, StoreError> {
            use crate::records::{EventKind, GridEvent, Subject};
            let corrupt =
                |reason: String| StoreError::Corrupt { table: "geofence_events", key: self.id.to_string(), reason };
            Ok(GridEvent {
                id: self.id,
                time: self.time,
                subject: Subject::from_code(self.subject)
                    .ok_or_else(|| corrupt(format!("subject {}", self.subject)))?,
                unit_id: self.unit_id,
                kind: EventKind::parse(&self.kind).ok_or_else(|| corrupt(format!("kind {:?}", self.kind)))?,
                grid_code: GridCode::parse(&self.grid_code).map_err(|e| corrupt(e.to_string()))?,
                pos: LonLat::new(self.lon, self.lat).map_err(|e| corrupt(e.to_string()))?,
            })
        }
    }

    /// An audit-log row, from either store: both read the same columns as the same Rust types
    /// (`subjects` as JSON text: PostgreSQL selects its jsonb `::text`).
    pub(crate) fn audit_from_row<R>(r: &R) -> Result<super::AuditRow, StoreError>
    where
        R: sqlx::Row,
        for<'a> &'a str: sqlx::ColumnIndex<R>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let id: i64 = r.try_get("id")?;
        let subjects: String = r.try_get("subjects")?;
        Ok(super::AuditRow {
            id,
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            role: r.try_get("role")?,
            action: r.try_get("action")?,
            request: r.try_get("request")?,
            result_count: r.try_get("result_count")?,
            layer: r.try_get("layer")?,
            subjects: serde_json::from_str(&subjects).map_err(|e| StoreError::Corrupt {
                table: "audit_log",
                key: id.to_string(),
                reason: format!("subjects: {e}"),
            })?,
            kind: r.try_get("kind")?,
            outcome: r.try_get("outcome")?,
            repeats: r.try_get("repeats")?,
            last_at: r.try_get("last_at")?,
            prev_hash: r.try_get("prev_hash")?,
            hash: r.try_get("hash")?,
        })
    }

    /// An API token's row, from either store (`grid_scope` as JSON text: PostgreSQL selects
    /// its jsonb `::text`).
    pub(crate) fn token_from_row<R>(r: &R) -> Result<super::TokenRecord, StoreError>
    where
        R: sqlx::Row,
        for<'a> &'a str: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let hash: String = r.try_get("token_sha256")?;
        let corrupt = |reason: String| StoreError::Corrupt { table: "api_tokens", key: hash.clone(), reason };
        let role: String = r.try_get("role")?;
        let scope: String = r.try_get("grid_scope")?;
        Ok(super::TokenRecord {
            role: role.parse().map_err(corrupt)?,
            grids: serde_json::from_str(&scope).map_err(|e| corrupt(e.to_string()))?,
            name: r.try_get("name")?,
            hash: hash.clone(),
        })
    }

    /// A tracker secret's row (one in force), from either store.
    pub(crate) fn device_secret_from_row<R>(r: &R) -> Result<super::DeviceSecretRecord, StoreError>
    where
        R: sqlx::Row,
        for<'a> &'a str: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(super::DeviceSecretRecord {
            device_id: r.try_get("device_id")?,
            hash: r.try_get("secret_sha256")?,
            created_at: r.try_get("created_at")?,
        })
    }

    /// The columns of a `fixes` row, as each store reads them (times and small integers are
    /// stored differently; what they mean, and their checks, are the same).
    pub(crate) struct RawFix {
        pub subject: i64,
        pub unit_id: i64,
        pub time: DateTime<Utc>,
        pub lon: f64,
        pub lat: f64,
        pub speed_mps: Option<f32>,
        pub bearing_deg: Option<f32>,
        pub altitude_m: Option<f32>,
        pub accuracy_m: Option<f32>,
        pub battery_pct: Option<f32>,
        pub flags: i64,
        pub attributes: Option<String>,
        pub received: DateTime<Utc>,
    }

    impl RawFix {
        pub(crate) fn decode(self) -> Result<crate::records::TracePoint, StoreError> {
            let (subject, unit_id, time, flags) = (self.subject, self.unit_id, self.time, self.flags);
            let corrupt = |reason: String| StoreError::Corrupt {
                table: "fixes",
                key: format!("{subject}/{unit_id}@{}", time.timestamp_millis()),
                reason,
            };
            Ok(crate::records::TracePoint {
                subject: crate::records::Subject::from_code(subject)
                    .ok_or_else(|| corrupt(format!("subject {subject}")))?,
                unit_id,
                time,
                pos: LonLat::new(self.lon, self.lat).map_err(|e| corrupt(e.to_string()))?,
                speed_mps: self.speed_mps,
                bearing_deg: self.bearing_deg,
                altitude_m: self.altitude_m,
                accuracy_m: self.accuracy_m,
                battery_pct: self.battery_pct,
                flags: u8::try_from(flags).map_err(|_| corrupt(format!("flags {flags} out of range")))?,
                attributes: self.attributes,
                received: self.received,
            })
        }
    }

    /// The `meta` key holding a layer's highest id ever inserted.
    pub(crate) fn high_water_key(layer: Layer) -> String {
        format!("last_id.{}", layer.name())
    }

    /// The props column as JSON text.
    pub(crate) fn props_json(item: &Item) -> Result<String, StoreError> {
        // Straight from the typed struct, with no intermediate map. Plain structs of strings and
        // numbers always serialise; the error path exists so that nothing is ever stored blank.
        serde_json::to_string(&item.props).map_err(|e| StoreError::Corrupt {
            table: item.layer().name(),
            key: item.id.to_string(),
            reason: e.to_string(),
        })
    }
}
