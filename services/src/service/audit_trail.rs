//! The service's side of the audit log: every append goes through here, one at a time, so the
//! hash chain never forks (the last id and hash are kept in memory, read from the store at
//! start-up); identical reads collapse per window ([`crate::audit_log::Collapser`]); and writes
//! of the layers the policy marks [`crate::policy::Audit::Writes`] (key personnel, responders)
//! are recorded by [`Service::create`], [`Service::update`] and [`Service::delete`], refused
//! attempts included — so every door (HTTP, the CLI, a future one) is covered.
//!
//! No read goes unrecorded: the first of a run of identical reads is appended durably before the
//! data leaves; only the *count* of the repeats that follow within the window waits in memory,
//! written when the window ends (the background flush, [`Service::spawn_audit_flusher`]) or at
//! a graceful shutdown ([`Service::flush_audit`]). A `kill -9` can lose at most one window's
//! repeat counts, never the fact of a read.

use super::{Service, ServiceError};
use crate::access::Principal;
use crate::audit_log::{self, AuditEntry, AuditKind, Collapser, GENESIS, Outcome, ReadKey, ReadVerdict, Repeats};
use crate::layer::{Item, Layer, Props};
use crate::policy::{Action, Audit, rule_of};
use crate::store::{AuditRow, ItemWrite, Store, StoreError, WriteRecord};
use chrono::{DateTime, Utc};
use safegrid_geodata::LonLat;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// Where the audit log's times come from (injectable, so a test can drive an hour in a second).
pub type AuditClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The last row appended: the next gets its id + 1 and links to its hash.
struct Head {
    last_id: i64,
    hash: String,
    /// An append failed: re-read the head from the store before the next (another process may
    /// have appended, or the row may have landed after all).
    stale: bool,
}

async fn read_head(store: &dyn Store) -> Result<Head, StoreError> {
    Ok(match store.audit_head().await? {
        None => Head { last_id: 0, hash: GENESIS.into(), stale: false },
        // The newest row predates the chain: the chain starts after it.
        Some(r) => Head { last_id: r.id, hash: r.hash.unwrap_or_else(|| GENESIS.into()), stale: false },
    })
}

/// The chain's head, the open runs of identical reads and the clock.
pub(super) struct Trail {
    head: tokio::sync::Mutex<Head>,
    runs: Mutex<Collapser>,
    clock: RwLock<AuditClock>,
}

impl Trail {
    /// Reads the chain's head from the store.
    pub(super) async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        Ok(Self {
            head: tokio::sync::Mutex::new(read_head(store).await?),
            runs: Mutex::new(Collapser::default()),
            clock: RwLock::new(Arc::new(Utc::now)),
        })
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, Collapser> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        let clock = self.clock.read().unwrap_or_else(PoisonError::into_inner).clone();
        audit_log::stamp(clock())
    }

    /// Seals and appends one row.
    async fn append(&self, store: &dyn Store, row: AuditRow) -> Result<(), StoreError> {
        self.append_as(store, row, Put::Alone).await.map(|_| ())
    }

    /// Seals `row` as the chain's next link and stores it as `put` says; the head moves only
    /// when the row was stored. `false`: `put`'s item write found no such item, and nothing was
    /// stored. After a failed attempt the head is re-read: if it is this row, the attempt did
    /// commit (only its answer was lost) and is not repeated; otherwise (another process
    /// appended, say) it is tried again, up to three times. Each attempt is one transaction.
    async fn append_as(&self, store: &dyn Store, mut row: AuditRow, put: Put<'_>) -> Result<bool, StoreError> {
        let mut head = self.head.lock().await;
        let mut tries = 0;
        loop {
            if head.stale {
                *head = read_head(store).await?;
            }
            row.id = head.last_id + 1;
            audit_log::seal(&mut row, &head.hash);
            let stored = match put {
                Put::Alone => store.append_audit(&row).await.map(|_| true),
                Put::WithItem(write, revoke_device) => {
                    store.write_item(write, WriteRecord { audit: Some(&row), revoke_device }).await
                }
            };
            match stored {
                Ok(true) => {
                    head.last_id = row.id;
                    head.hash = row.hash.clone().unwrap_or_default();
                    return Ok(true);
                }
                Ok(false) => return Ok(false),
                Err(e) => {
                    // The commit may have landed although its answer was lost (a connection
                    // dropped after COMMIT): then the store's head is this very row, and the act
                    // is done — doing it again would repeat it.
                    head.stale = true; // until the head is read back
                    *head = read_head(store).await?;
                    if head.last_id == row.id && row.hash.as_deref() == Some(head.hash.as_str()) {
                        return Ok(true);
                    }
                    tries += 1;
                    if tries >= 3 {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, id = row.id, "audit row not appended; trying again after the chain's head");
                }
            }
        }
    }
}

/// How [`Trail::append_as`] stores a row.
#[derive(Clone, Copy)]
enum Put<'a> {
    /// On its own (a read, a refusal).
    Alone,
    /// In the transaction of the item write it records, with the secret that write revokes.
    WithItem(ItemWrite<'a>, Option<(&'a str, DateTime<Utc>)>),
}

fn outcome_of<T>(r: &Result<T, ServiceError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(ServiceError::Forbidden(_)) => Outcome::Forbidden,
        Err(ServiceError::NotFound { .. }) => Outcome::NotFound,
        Err(ServiceError::Invalid { .. }) => Outcome::Invalid,
        Err(ServiceError::Conflict { .. }) => Outcome::Conflict,
        Err(_) => Outcome::Failed,
    }
}

impl Service {
    /// Appends an audit row for a read of sensitive data (no layer or subjects named; prefer
    /// [`Service::audit_entry`]). Callers must not return the data if this fails.
    ///
    /// # Errors
    /// [`ServiceError::Store`].
    pub async fn audit(&self, who: &Principal, action: &str, request: &str, count: usize) -> Result<(), ServiceError> {
        self.audit_entry(who, AuditEntry { action, request, result_count: count, ..AuditEntry::default() }).await
    }

    /// Records an act in the audit log. A done write, or the first of a run of identical reads
    /// or refusals, is appended durably before this returns; an identical one by the same
    /// caller within the window after that first is only counted, and written as one row of
    /// repeats when the window ends. Callers must not return the data if this fails.
    ///
    /// # Errors
    /// [`ServiceError::Store`].
    pub async fn audit_entry(&self, who: &Principal, e: AuditEntry<'_>) -> Result<(), ServiceError> {
        // A done write is never collapsed; reads and refusals (which changed nothing) are.
        let done_write = e.kind == AuditKind::Write && e.outcome == Outcome::Ok;
        let (kind, outcome) = (e.kind, e.outcome);
        let row = self.audit_row(who, e);
        if done_write {
            self.audit.append(self.store.as_ref(), row).await?;
            return Ok(());
        }
        let (now, results) = (row.at, row.result_count);
        let key = ReadKey {
            actor: row.actor.clone(),
            role: row.role.clone(),
            action: row.action.clone(),
            layer: row.layer.clone(),
            request: row.request.clone(),
            kind,
            outcome,
        };
        let (verdict, crowded) = {
            let mut runs = self.audit.runs();
            let v = runs.read(&key, &row.subjects, results, now);
            (v, runs.crowded())
        };
        let ReadVerdict::First { ended } = verdict else { return Ok(()) };
        if let Some(r) = ended {
            self.append_repeats(vec![r]).await;
        }
        if crowded {
            let all = self.audit.runs().drain();
            self.append_repeats(all).await;
        }
        let seen = row.subjects.clone();
        self.audit.append(self.store.as_ref(), row).await?;
        self.audit.runs().opened(key, now, &seen);
        Ok(())
    }

    /// The row an act is recorded as, stamped now (not yet sealed into the chain).
    fn audit_row(&self, who: &Principal, e: AuditEntry<'_>) -> AuditRow {
        let now = self.audit.now();
        let mut subjects = e.subjects;
        subjects.sort_unstable();
        subjects.dedup();
        let results = i64::try_from(e.result_count).unwrap_or(i64::MAX);
        AuditRow {
            id: 0,
            at: now,
            actor: who.name.clone(),
            role: who.role.name().into(),
            action: e.action.into(),
            request: e.request.into(),
            result_count: results,
            layer: e.layer.map(|l| l.name().to_owned()),
            subjects,
            kind: e.kind.name().into(),
            outcome: e.outcome.name().into(),
            repeats: 1,
            last_at: None,
            prev_hash: None,
            hash: None,
        }
    }

    /// Appends rows of repeats; those that fail are kept for the next flush (and logged).
    async fn append_repeats(&self, runs: Vec<Repeats>) -> usize {
        let mut written = 0;
        let mut failed = Vec::new();
        for r in runs {
            if failed.is_empty() {
                match self.audit.append(self.store.as_ref(), r.row()).await {
                    Ok(()) => written += 1,
                    Err(e) => {
                        tracing::error!(error = %e, actor = %r.key.actor, repeats = r.count, "audit row of repeated reads not appended; kept for the next flush");
                        failed.push(r);
                    }
                }
            } else {
                failed.push(r);
            }
        }
        let mut runs = self.audit.runs();
        for r in failed {
            runs.restore(r);
        }
        written
    }

    /// Writes the repeats of the runs whose window has ended (the background flush); returns
    /// how many rows were appended.
    pub async fn flush_ended_audit(&self) -> usize {
        let now = self.audit.now();
        let ended = self.audit.runs().ended(now);
        self.append_repeats(ended).await
    }

    /// Writes the repeats of every open run now, ended or not (graceful shutdown); returns how
    /// many rows were appended.
    pub async fn flush_audit(&self) -> usize {
        let all = self.audit.runs().drain();
        self.append_repeats(all).await
    }

    /// Flushes ended runs every `every` in the background (the serve loop starts it).
    pub fn spawn_audit_flusher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let service = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            loop {
                tick.tick().await;
                let Some(s) = service.upgrade() else { return };
                s.flush_ended_audit().await;
            }
        })
    }

    /// Sets the window within which identical reads collapse (default 60 s; zero: never).
    pub fn set_audit_window(&self, window: Duration) {
        self.audit.runs().set_window(window);
    }

    /// Sets where the audit log's times come from (tests drive a simulated clock).
    pub fn set_audit_clock(&self, clock: AuditClock) {
        *self.audit.clock.write().unwrap_or_else(PoisonError::into_inner) = clock;
    }

    /// The id and hash of the last row this service appended or found at start-up.
    pub async fn audit_head(&self) -> (i64, String) {
        let head = self.audit.head.lock().await;
        (head.last_id, head.hash.clone())
    }

    /// Stores an item write, and — for a layer whose writes are audited — its audit row, and
    /// the revocation of the tracker secret it ends, all in one transaction: no write stands
    /// unrecorded and no row names a write that did not happen. `false`: no such item (nothing
    /// written). Callers hold the layer's write gate.
    pub(super) async fn store_write(
        &self,
        who: &Principal,
        action: &str,
        write: ItemWrite<'_>,
        revoke: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let layer = write.layer();
        let id = match write {
            ItemWrite::Insert(it) | ItemWrite::Update(it) => it.id,
            ItemWrite::Delete(_, id) => id,
        };
        // Mints and revocations of secrets are ordered against this one (store, then memory).
        let _devices = match revoke {
            Some(_) => Some(self.device_secrets.gate.lock().await),
            None => None,
        };
        let revoke_device = revoke.map(|d| (d, Utc::now()));
        let done = if rule_of(Action::WriteLayer(layer)).audit == Audit::Writes {
            let request = format!("{action} {layer}/{id}");
            let row = self.audit_row(who, write_entry(action, &request, layer, Some(id), Outcome::Ok));
            self.audit.append_as(self.store.as_ref(), row, Put::WithItem(write, revoke_device)).await?
        } else {
            self.store.write_item(write, WriteRecord { audit: None, revoke_device }).await?
        };
        if done && let Some(device) = revoke {
            self.device_secrets.remove(device);
            tracing::info!(device, %layer, id, "tracker secret revoked: its carrier gave it up");
        }
        Ok(done)
    }

    /// Records a write of an audited layer that was refused or failed (a done one is recorded
    /// in its own transaction by [`Service::store_write`]).
    async fn audit_refused<T>(
        &self,
        who: &Principal,
        layer: Layer,
        action: &str,
        id: Option<i64>,
        result: &Result<T, ServiceError>,
    ) -> Result<(), ServiceError> {
        if result.is_ok() || rule_of(Action::WriteLayer(layer)).audit != Audit::Writes {
            return Ok(());
        }
        let request = match id {
            Some(id) => format!("{action} {layer}/{id}"),
            None => format!("{action} {layer}"),
        };
        self.audit_entry(who, write_entry(action, &request, layer, id, outcome_of(result))).await.inspect_err(|e| {
            tracing::error!(error = %e, %request, actor = %who.name, "a refused write could not be recorded in the audit log");
        })
    }

    /// Creates an item; its grid is computed from its position. A write of key personnel or
    /// responders is recorded in the audit log in the same transaction, a refused one too.
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] outside the caller's role or scope; [`ServiceError::Store`]
    /// (then nothing was written, and no row says it was).
    pub async fn create(&self, who: &Principal, pos: LonLat, props: Props) -> Result<Item, ServiceError> {
        let layer = props.layer();
        let r = self.create_item(who, pos, props).await;
        self.audit_refused(who, layer, "create", None, &r).await?;
        r
    }

    /// Replaces an item's position and properties; audited as [`Service::create`]. A tracker
    /// the item no longer carries loses its secret in the same transaction.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`], [`ServiceError::Forbidden`] (for the old or the new place),
    /// [`ServiceError::Store`].
    pub async fn update(&self, who: &Principal, id: i64, pos: LonLat, props: Props) -> Result<Item, ServiceError> {
        let layer = props.layer();
        let r = self.update_item(who, id, pos, props).await;
        self.audit_refused(who, layer, "update", Some(id), &r).await?;
        r
    }

    /// Deletes an item; audited as [`Service::create`]. The tracker it carried loses its secret
    /// in the same transaction.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`], [`ServiceError::Forbidden`], [`ServiceError::Store`].
    pub async fn delete(&self, who: &Principal, layer: Layer, id: i64) -> Result<Item, ServiceError> {
        let r = self.delete_item(who, layer, id).await;
        self.audit_refused(who, layer, "delete", Some(id), &r).await?;
        r
    }
}

/// The row of a write of `layer`.
fn write_entry<'a>(
    action: &'a str,
    request: &'a str,
    layer: Layer,
    id: Option<i64>,
    outcome: Outcome,
) -> AuditEntry<'a> {
    AuditEntry {
        action,
        request,
        layer: Some(layer),
        subjects: id.into_iter().collect(),
        result_count: usize::from(outcome == Outcome::Ok),
        kind: AuditKind::Write,
        outcome,
    }
}
