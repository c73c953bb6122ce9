//! A bounded cache of encoded tiles. Keys include the data versions of every layer a tile was
//! built from, so a write makes its old entries unreachable at once — the cache can never serve
//! a stale tile — and least-recently-used entries are evicted once the byte budget is spent.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The cache.
pub struct TileCache {
    inner: Mutex<Inner>,
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
        Self { inner: Mutex::new(Inner::default()), budget_bytes, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
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
        while g.bytes > self.budget_bytes {
            // A linear scan for the oldest: evictions are rare next to hits, and the map holds
            // at most a few thousand tiles.
            let Some(oldest) = g.entries.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| k.clone()) else { break };
            if let Some((_, b)) = g.entries.remove(&oldest) {
                g.bytes -= b.len();
            }
        }
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
}
