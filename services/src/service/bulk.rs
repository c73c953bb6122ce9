//! Bulk inserts that stream: rows are located and written chunk by chunk inside one store
//! transaction, so that an import's parsing (on its own thread) overlaps the database's work,
//! and nothing is visible — in the store or in memory — until the whole file has committed.
//!
//! ```text
//!   parser thread:  parse chunk → RowLocator::items (ids, grid codes) ──channel──┐
//!   async task:                               Import::write → store transaction ◄┘
//!                   … then Import::commit: commit ‖ point index rebuild, then live state
//! ```

use super::{Service, ServiceError, read, write};
use crate::layer::{Item, Layer, Props};
use crate::live::{Batch, GridState};
use crate::store::BulkInsert;
use chrono::{DateTime, Utc};
use safegrid_geodata::{LonLat, PointIndex};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Turns parsed rows into items: assigns the ids an [`Import`] reserved, in order, and locates
/// each row's grid. It owns what it needs, so it can run on the parser's thread.
#[derive(Debug)]
pub struct RowLocator {
    grids: Arc<GridState>,
    next_id: i64,
    now: DateTime<Utc>,
    /// Time spent locating, for the import's log line.
    spent: Duration,
}

impl RowLocator {
    /// The next rows as items, ids continuing from the previous call.
    pub fn items(&mut self, rows: Vec<(LonLat, Props)>) -> Vec<Item> {
        let started = Instant::now();
        let first = self.next_id;
        self.next_id += rows.len() as i64;
        let out = rows
            .into_iter()
            .zip(first..)
            .map(|((pos, props), id)| Item {
                id,
                pos,
                grid: self.grids.grid_of(pos),
                props,
                created_at: self.now,
                updated_at: self.now,
            })
            .collect();
        self.spent += started.elapsed();
        out
    }

    /// Time spent in [`Self::items`] so far.
    #[must_use]
    pub fn time_spent(&self) -> Duration {
        self.spent
    }
}

/// A bulk insert into one layer, in progress. It holds the layer's write gate, so single writes
/// to the layer wait for it (reads do not). Dropping it without [`Import::commit`] rolls the
/// store back and leaves memory untouched.
pub struct Import<'a> {
    service: &'a Service,
    layer: Layer,
    _gate: tokio::sync::MutexGuard<'a, ()>,
    bulk: Box<dyn BulkInsert>,
    grids: Arc<GridState>,
    first_id: i64,
    now: DateTime<Utc>,
    items: Vec<Item>,
    started: Instant,
    store_time: Duration,
    /// Trackers carried by this import's rows: a tracker belongs to one responder.
    devices: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Import<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import").field("layer", &self.layer).field("rows", &self.items.len()).finish_non_exhaustive()
    }
}

impl Service {
    /// Starts a bulk insert into `layer`: takes the layer's write gate and opens a store
    /// transaction. Rows go in through [`Import::locator`] and [`Import::write`].
    ///
    /// # Errors
    /// [`ServiceError::Store`] when the transaction cannot be opened.
    pub async fn begin_import(&self, layer: Layer) -> Result<Import<'_>, ServiceError> {
        let slot = &self.layers[layer.index()];
        let gate = slot.gate.lock().await;
        let bulk = self.store.begin_insert(layer).await?;
        Ok(Import {
            service: self,
            layer,
            _gate: gate,
            bulk,
            grids: self.grids(),
            first_id: slot.last_id.load(Ordering::SeqCst) + 1,
            now: Utc::now(),
            items: Vec::new(),
            started: Instant::now(),
            store_time: Duration::ZERO,
            devices: std::collections::HashSet::new(),
        })
    }

    /// Inserts new items in one transaction: all or none. Ids are assigned in order.
    ///
    /// # Errors
    /// [`ServiceError::Store`]; nothing is written on error.
    pub async fn bulk_insert(&self, layer: Layer, rows: Vec<(LonLat, Props)>) -> Result<Vec<i64>, ServiceError> {
        let mut import = self.begin_import(layer).await?;
        let items = import.locator().items(rows);
        import.write(items).await?;
        import.commit().await
    }
}

impl Import<'_> {
    /// A locator for this import's rows: ids continue after the layer's last, and grid codes
    /// come from the grids as they were when the import began (grid changes wait for it).
    /// Make one per import: every locator hands out the same ids.
    #[must_use]
    pub fn locator(&self) -> RowLocator {
        RowLocator { grids: self.grids.clone(), next_id: self.first_id, now: self.now, spent: Duration::ZERO }
    }

    /// Writes the next items (from this import's [`RowLocator`], in order) into the
    /// transaction. They become visible only at [`Self::commit`].
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for items out of order, [`ServiceError::Store`].
    pub async fn write(&mut self, items: Vec<Item>) -> Result<(), ServiceError> {
        let expected = self.first_id + self.items.len() as i64;
        if let Some(first) = items.first().filter(|i| i.id != expected || i.layer() != self.layer) {
            return Err(ServiceError::Invalid {
                field: "id".into(),
                value: first.id.into(),
                reason: format!("bulk rows must come in order from this import's locator (expected id {expected})"),
            });
        }
        {
            let state = read(&self.service.layers[self.layer.index()].state);
            for it in &items {
                let Some(d) = crate::live::device_of(it) else { continue };
                let row = it.id - self.first_id + 1;
                let taken = state.unit_of_device(d).map(|u| format!("responder {u} already carries it"));
                let twice = (!self.devices.insert(d.to_owned())).then(|| "an earlier row carries it too".to_owned());
                if let Some(why) = taken.or(twice) {
                    return Err(ServiceError::Invalid {
                        field: "device_id".into(),
                        value: d.into(),
                        reason: format!("row {row} of the data: {why}; a tracker belongs to one responder"),
                    });
                }
            }
        }
        let started = Instant::now();
        self.bulk.write(&items).await?;
        self.store_time += started.elapsed();
        self.items.extend(items);
        Ok(())
    }

    /// Commits, then makes the rows visible in memory. Returns their ids.
    ///
    /// # Errors
    /// [`ServiceError::Store`] when the commit fails (then nothing was written), or — only after
    /// a bug made preparing the rows for memory fail — when reloading the layer does (then the
    /// rows are stored, and a restart shows them).
    pub async fn commit(self) -> Result<Vec<i64>, ServiceError> {
        let Self { service, layer, _gate, bulk, items, started, store_time, .. } = self;
        let slot = &service.layers[layer.index()];
        let streamed = started.elapsed();
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        // A large batch is made ready for memory beside the commit, on the other core: a freshly
        // bulk-loaded point index over the whole layer, and the batch grouped by id and grid.
        // Both are used only if the commit succeeds.
        let points = {
            let state = read(&slot.state);
            state.is_large_batch(items.len()).then(|| state.points_with(&items))
        };
        let (small, prepared) = match points {
            Some(points) => {
                let index = tokio::task::spawn_blocking(move || PointIndex::bulk_load(points));
                let batch = tokio::task::spawn_blocking(move || Batch::new(items));
                (Vec::new(), Some((index, batch)))
            }
            None => (items, None),
        };
        bulk.commit().await?;
        let committed = started.elapsed();
        if let Some(&last) = ids.last() {
            slot.last_id.store(last, Ordering::SeqCst);
        }
        // The rows are committed now, so memory must take them whatever happens. The jobs fail
        // only by panicking (a bug); the items are lost with the batch job then, and the log
        // says to restart, which reloads them from the store.
        match prepared {
            None => write(&slot.state).put_many(small),
            Some((index, batch)) => match (index.await, batch.await) {
                (Ok(index), Ok(batch)) => write(&slot.state).merge(batch, index),
                (index, batch) => {
                    // A job panicked (a bug): the batch may be gone with it. Rebuild the layer
                    // from the store, which holds every committed row, while the gate is held.
                    tracing::error!(
                        index_failed = index.is_err(),
                        batch_failed = batch.is_err(),
                        "preparing committed rows for memory failed; reloading the layer from the store"
                    );
                    let items = service.store.load_items(layer).await?;
                    *write(&slot.state) = crate::live::LayerState::new(layer, items);
                }
            },
        }
        tracing::info!(
            %layer,
            rows = ids.len(),
            stream_ms = streamed.as_millis() as u64,
            store_write_ms = store_time.as_millis() as u64,
            commit_ms = committed.saturating_sub(streamed).as_millis() as u64,
            live_state_ms = started.elapsed().saturating_sub(committed).as_millis() as u64,
            "bulk insert committed"
        );
        Ok(ids)
    }
}
