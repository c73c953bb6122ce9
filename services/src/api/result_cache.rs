//! Answers of pure, expensive reads (the audits) kept per data version: the same question asked
//! again before anything it reads has changed is answered from memory instead of seconds of CPU.
//! The key holds every version the answer was built from, so a change is never served stale.

use axum::body::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;

/// A small most-recently-used list of answers (a handful of audit parameter sets are asked at a
/// time; each answer is up to a few MB).
pub struct ResultCache {
    entries: Mutex<VecDeque<(String, Bytes, &'static str)>>,
    capacity: usize,
}

impl ResultCache {
    /// An empty cache of at most `capacity` answers.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { entries: Mutex::new(VecDeque::new()), capacity }
    }

    /// The answer (body, content type) stored under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<(Bytes, &'static str)> {
        let mut g = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = g.iter().position(|(k, _, _)| k == key)?;
        let e = g.remove(i)?;
        let out = (e.1.clone(), e.2);
        g.push_front(e);
        Some(out)
    }

    /// Stores an answer, dropping the least recently used beyond the capacity.
    pub fn put(&self, key: String, body: Bytes, content_type: &'static str) {
        let mut g = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.retain(|(k, _, _)| *k != key);
        g.push_front((key, body, content_type));
        g.truncate(self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_answer_goes_first() {
        let c = ResultCache::new(2);
        c.put("a".into(), Bytes::from_static(b"1"), "x");
        c.put("b".into(), Bytes::from_static(b"2"), "x");
        assert!(c.get("a").is_some());
        c.put("c".into(), Bytes::from_static(b"3"), "x");
        assert!(c.get("b").is_none());
        assert_eq!(c.get("a").unwrap().0, Bytes::from_static(b"1"));
    }
}
