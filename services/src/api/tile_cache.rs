//! A bounded cache of encoded tiles (whole tiles, gzipped tiles and single layers). Keys include
//! what an entry was built from — for point layers, the latest write around the tile — so a
//! write makes the old entries it affects unreachable at once: the cache can never serve a stale
//! tile. Least-recently-used entries are evicted once the byte budget is spent. `build_once`
//! builds a missing tile once however many requests want it.

use super::problem::ApiError;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A tile as built: its bytes, and gzipped.
#[derive(Debug, Clone)]
pub struct Built {
    /// The MVT bytes.
    pub raw: Bytes,
    /// The same, gzipped.
    pub gz: Bytes,
}

type Flight = Arc<tokio::sync::OnceCell<Result<Built, ApiError>>>;

/// Removes a finished or abandoned flight from the map (if it is still the one there).
struct Forget<'a> {
    cache: &'a TileCache,
    key: &'a str,
    flight: &'a Flight,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let mut f = self.cache.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if f.get(self.key).is_some_and(|x| Arc::ptr_eq(x, self.flight)) {
            f.remove(self.key);
        }
    }
}

/// The cache.
pub struct TileCache {
    inner: Mutex<Inner>,
    /// Builds in progress, by key (see [`TileCache::build_once`]).
    flights: Mutex<HashMap<String, Flight>>,
    /// Bounds the builds running at once.
    builders: tokio::sync::Semaphore,
    budget_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (u64, Bytes)>,
    bytes: usize,
    clock: u64,
}

impl TileCache {
    /// A cache holding at most `budget_bytes` of tiles.
    #[must_use]
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            flights: Mutex::new(HashMap::new()),
            builders: tokio::sync::Semaphore::new(
                2 * std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            ),
            budget_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The tile under `key`, if cached.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.clock += 1;
        let now = g.clock;
        let hit = g.entries.get_mut(key).map(|e| {
            e.0 = now;
            e.1.clone()
        });
        let counter = if hit.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Stores a tile, evicting the least recently used ones beyond the budget.
    pub fn put(&self, key: String, tile: Bytes) {
        if tile.len() > self.budget_bytes / 4 {
            return; // one huge tile must not flush everything else
        }
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.clock += 1;
        let now = g.clock;
        g.bytes += tile.len();
        if let Some(old) = g.entries.insert(key, (now, tile)) {
            g.bytes -= old.1.len();
        }
        if g.bytes > self.budget_bytes {
            // Evict the oldest down to 90 % of the budget in one sort, not one scan per put:
            // under steady writes most entries are dead versions, and the map holds many
            // small per-layer entries.
            let mut by_age: Vec<(u64, String)> = g.entries.iter().map(|(k, (t, _))| (*t, k.clone())).collect();
            by_age.sort_unstable();
            let target = self.budget_bytes / 10 * 9;
            for (_, k) in by_age {
                if g.bytes <= target {
                    break;
                }
                if let Some((_, b)) = g.entries.remove(&k) {
                    g.bytes -= b.len();
                }
            }
        }
    }

    /// Builds the tile under `key` once however many requests want it at the same time: the
    /// first runs `build` on a blocking thread (tile building is CPU work that would otherwise
    /// hold up the async workers, and with them every write and every cache hit), the others
    /// wait for its result. After a write invalidates a low-zoom tile, the whole wall asks for
    /// it at once; this makes that one build instead of one per request.
    ///
    /// # Errors
    /// `build`'s error, given to every request that waited for it; a 500 when the build thread
    /// panicked or the builders' semaphore was closed.
    pub async fn build_once<F>(&self, key: &str, build: F) -> Result<Built, ApiError>
    where
        F: FnOnce() -> Result<Built, ApiError> + Send + 'static,
    {
        let flight = {
            let mut f = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(f.entry(key.to_owned()).or_default())
        };
        // However this ends (done, or every waiter gone: MapLibre cancels tile requests as the
        // map pans), the flight is forgotten; later requests find the tile in the cache, or
        // build anew.
        let _forget = Forget { cache: self, key, flight: &flight };
        flight
            .get_or_init(|| async move {
                // At most a few builds at once: a cold walk of a thousand tiles must not start a
                // thousand threads on two cores.
                let Ok(_permit) = self.builders.acquire().await else { return Err(ApiError::internal()) };
                tokio::task::spawn_blocking(build).await.unwrap_or_else(|_| Err(ApiError::internal()))
            })
            .await
            .clone()
    }

    /// (hits, misses, bytes held), for `/metrics`.
    #[must_use]
    pub fn stats(&self) -> (u64, u64, usize) {
        let bytes = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).bytes;
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_tile_goes_first_and_the_budget_holds() {
        let c = TileCache::new(400);
        c.put("a".into(), Bytes::from(vec![0; 100]));
        c.put("b".into(), Bytes::from(vec![0; 100]));
        c.put("c".into(), Bytes::from(vec![0; 100]));
        assert!(c.get("a").is_some()); // a is now more recent than b
        c.put("d".into(), Bytes::from(vec![0; 100]));
        c.put("e".into(), Bytes::from(vec![0; 100]));
        assert!(c.get("b").is_none(), "b was least recently used");
        assert!(c.get("a").is_some() && c.get("e").is_some());
        assert!(c.stats().2 <= 400);
        c.put("huge".into(), Bytes::from(vec![0; 300]));
        assert!(c.get("huge").is_none(), "a tile above a quarter of the budget is not cached");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_for_one_missing_tile_build_it_once() {
        let cache = Arc::new(TileCache::new(1 << 20));
        let builds = Arc::new(AtomicU64::new(0));
        let mut waiting = Vec::new();
        for _ in 0..16 {
            let (cache, builds) = (Arc::clone(&cache), Arc::clone(&builds));
            waiting.push(tokio::spawn(async move {
                cache
                    .build_once("t", move || {
                        builds.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        Ok(Built { raw: Bytes::from_static(b"tile"), gz: Bytes::from_static(b"gz") })
                    })
                    .await
            }));
        }
        for w in waiting {
            assert_eq!(&w.await.unwrap().unwrap().raw[..], b"tile");
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "one build for sixteen requests");
        // The flight is forgotten once done: a later request (a newer version) builds again.
        cache.build_once("t", || Ok(Built { raw: Bytes::new(), gz: Bytes::new() })).await.unwrap();
        assert!(cache.flights.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_build_is_forgotten() {
        let cache = TileCache::new(1 << 20);
        let slow = cache.build_once("t", || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok(Built { raw: Bytes::new(), gz: Bytes::new() })
        });
        // The only requester goes away (a cancelled tile request) before the build ends.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), slow).await.is_err());
        assert!(cache.flights.lock().unwrap().is_empty(), "the flight outlived its last requester");
    }
}
