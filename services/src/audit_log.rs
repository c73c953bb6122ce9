//! The audit log's pure logic: what a row says, the hash chain that seals it, the check that
//! walks it, and the window that collapses repeated identical reads. No I/O: the service
//! (`service/audit_trail.rs`) appends and the `safegrid audit-log verify` command reads through
//! the store.
//!
//! **The chain.** Each row appended since migration 0005 carries `prev_hash` (the `hash` of the
//! row before it, or [`GENESIS`] for the first chained row) and `hash` = SHA-256, hex, of
//! [`canonical`]: a JSON array of a version tag, `prev_hash` and every field of the row, the id
//! included, in a fixed order. JSON makes the encoding unambiguous (strings are quoted and
//! escaped, so no field can run into the next); timestamps are written as
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds), the precision PostgreSQL's `timestamptz`
//! keeps, and every time is truncated to it before it is stored, so both stores give back
//! exactly what was hashed. Ids are assigned by the service, one more than the last, so the
//! chained part of the log has no gaps: a gap is a deleted row.
//!
//! Rows written before the chain existed have no hashes; [`ChainCheck`] counts them as "before
//! the chain" (they cannot be sealed after the fact: the table refuses every UPDATE). Where the
//! chain begins is recorded once in `meta` ([`CHAIN_START_KEY`], migration 0007, fixed by a
//! trigger), so a row from there on without a hash is a break, and erasing every hash does not
//! pass as an old log.
//!
//! **Collapsing reads.** A wall polling the same list every few seconds would write thousands of
//! identical rows a day. [`Collapser`]: the first of a run of identical reads (same actor, role,
//! action, layer, request text and outcome) is appended durably before its data leaves; identical reads
//! within the window after it are only counted in memory, and when the window ends one row
//! records how many there were (`repeats`) and from when to when (`at`, `last_at`). Done writes
//! are never collapsed; refused ones are, like reads (a refusal changed nothing, and a script
//! retrying a forbidden write must not be able to flood the log). A crash (`kill -9`) can therefore lose at most one window's repeat *counts*
//! per run — never the fact that the caller read it, which the first row already holds.

use crate::store::AuditRow;
use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The `prev_hash` of the first chained row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Tag of the canonical encoding; a new encoding gets a new tag.
const VERSION: &str = "safegrid-audit-v1";

/// The default window within which identical reads collapse into one row.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Open runs kept in memory before every one is written out early (a bound on memory under a
/// flood of distinct requests).
const MAX_OPEN_RUNS: usize = 50_000;

/// A read or a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuditKind {
    /// Data left the service.
    #[default]
    Read,
    /// Data was (or was to be) changed.
    Write,
}

impl AuditKind {
    /// `read` or `write`, as stored.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// How the act ended, stored in the `outcome` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Outcome {
    /// Done (for a read: the data was about to leave).
    #[default]
    Ok,
    /// Refused: outside the caller's role or grids.
    Forbidden,
    /// No such item (or one outside the caller's grids, which is answered the same way).
    NotFound,
    /// The input was not acceptable.
    Invalid,
    /// It contradicts what is stored (a device another item carries…).
    Conflict,
    /// The store failed; nothing changed.
    Failed,
}

impl Outcome {
    /// `ok`, `forbidden`, `not_found`, `invalid`, `conflict` or `failed`, as stored.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Invalid => "invalid",
            Self::Conflict => "conflict",
            Self::Failed => "failed",
        }
    }
}

/// What a caller asks to be recorded ([`crate::service::Service::audit_entry`]).
#[derive(Debug, Clone, Default)]
pub struct AuditEntry<'a> {
    /// What kind of act: `query`, `get`, `nearest`, `tile`, `trace`, `live`, `create`…
    pub action: &'a str,
    /// The request as asked (method, path and query string), or what was written.
    pub request: &'a str,
    /// The layer concerned, when one.
    pub layer: Option<crate::layer::Layer>,
    /// The ids of the persons or units concerned (items returned, the item written).
    pub subjects: Vec<i64>,
    /// How many items were returned.
    pub result_count: usize,
    /// A read (the default) or a write.
    pub kind: AuditKind,
    /// How it ended (default ok).
    pub outcome: Outcome,
}

/// A time as stored and hashed: truncated to whole microseconds.
#[must_use]
pub fn stamp(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The fixed RFC 3339 form of a time in the canonical encoding (and in the SQLite store, where
/// it also sorts as text).
#[must_use]
pub fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The bytes a row's hash is taken over: a JSON array of the version tag, `prev` and every
/// field of the row but its own `prev_hash` and `hash`.
#[must_use]
pub fn canonical(prev: &str, row: &AuditRow) -> String {
    serde_json::json!([
        VERSION,
        prev,
        row.id,
        time_text(row.at),
        row.actor,
        row.role,
        row.action,
        row.request,
        row.result_count,
        row.layer,
        row.subjects,
        row.kind,
        row.outcome,
        row.repeats,
        row.last_at.map(time_text),
    ])
    .to_string()
}

/// SHA-256, hex, of [`canonical`].
#[must_use]
pub fn row_hash(prev: &str, row: &AuditRow) -> String {
    hex::encode(Sha256::digest(canonical(prev, row).as_bytes()))
}

/// Links a row (its id already set) to the one before it: sets `prev_hash` and `hash`.
pub fn seal(row: &mut AuditRow, prev: &str) {
    row.at = stamp(row.at);
    row.last_at = row.last_at.map(stamp);
    row.prev_hash = Some(prev.to_owned());
    row.hash = Some(row_hash(prev, row));
}

/// The first broken link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The row's content no longer matches its hash: it was altered.
    Altered {
        /// The altered row's id.
        id: i64,
    },
    /// Ids jump: the rows in between were deleted.
    Missing {
        /// The id of the last row before the gap.
        after: i64,
        /// The id of the first row after it.
        next: i64,
    },
    /// The row's `prev_hash` is not the hash of the row before it: a row before it was deleted
    /// (and the ids made to follow on), replaced, or its hash rewritten.
    Relinked {
        /// The id of the row whose `prev_hash` does not match.
        id: i64,
    },
    /// A row without a hash after the chain began: written behind the service's back, or its
    /// hash erased.
    Unsealed {
        /// The unsealed row's id.
        id: i64,
    },
    /// The head noted outside the database is not in the log: its tail was cut off.
    HeadMissing {
        /// The head given (a row hash, lowercase hex).
        expected: String,
        /// The id of the log's last row; `None` when the log is empty.
        last_id: Option<i64>,
    },
    /// The record of where the chain begins (migration 0007) is gone or unreadable: without it
    /// erased hashes would pass as rows from before the chain.
    StartMissing,
}

/// The `meta` key holding the id of the chain's first row.
pub const CHAIN_START_KEY: &str = "audit_chain_start";

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Altered { id } => write!(f, "row {id} was altered: its content does not match its hash"),
            Self::Missing { after, next } if *next == after + 2 => {
                write!(f, "row {} is missing (deleted): row {next} follows row {after}", after + 1)
            }
            Self::Missing { after, next } => {
                write!(f, "rows {} to {} are missing (deleted): row {next} follows row {after}", after + 1, next - 1)
            }
            Self::Relinked { id } => write!(
                f,
                "row {id} does not link to the row before it (prev_hash mismatch): a row before it was deleted or replaced"
            ),
            Self::Unsealed { id } => write!(f, "row {id} has no hash although the chain began before it"),
            Self::HeadMissing { expected, last_id } => match last_id {
                Some(id) => write!(
                    f,
                    "the expected head {expected} is not in the log (last row {id}): rows were cut off the end"
                ),
                None => write!(f, "the expected head {expected} is not in the log, which is empty: rows were cut off"),
            },
            Self::StartMissing => {
                write!(f, "the record of where the chain begins ({CHAIN_START_KEY} in meta) is missing or altered")
            }
        }
    }
}

impl Break {
    /// The row the break was found at, when there is one.
    #[must_use]
    pub fn row_id(&self) -> Option<i64> {
        match self {
            Self::Altered { id } | Self::Relinked { id } | Self::Unsealed { id } => Some(*id),
            Self::Missing { next, .. } => Some(*next),
            Self::HeadMissing { .. } | Self::StartMissing => None,
        }
    }
}

/// Walks the log in id order, one row at a time ([`ChainCheck::push`]), and stops at the first
/// broken link.
#[derive(Debug, Default)]
pub struct ChainCheck {
    /// Rows before the chain began (no hash; not protected).
    pub unchained: u64,
    /// Chained rows checked.
    pub chained: u64,
    /// The last row's id.
    pub last_id: Option<i64>,
    /// The hash of the last chained row: the head to note outside the database.
    pub head: Option<String>,
    expected_seen: bool,
    expected: Option<String>,
    /// The id the chain begins at: a row from it on must be sealed.
    start: Option<i64>,
}

impl ChainCheck {
    /// A check; `expected_head` is a head noted earlier, which must be found in the log.
    #[must_use]
    pub fn new(expected_head: Option<String>) -> Self {
        Self { expected: expected_head.map(|h| h.trim().to_ascii_lowercase()), ..Self::default() }
    }

    /// The row the chain begins at, when known (from the store's record).
    #[must_use]
    pub fn start(&self) -> Option<i64> {
        self.start
    }

    /// The same check, knowing that the chain begins at row `start`.
    #[must_use]
    pub fn starting_at(mut self, start: i64) -> Self {
        self.start = Some(start);
        self
    }

    /// Checks the next row (rows must come in increasing id order).
    ///
    /// # Errors
    /// The first [`Break`] found.
    pub fn push(&mut self, row: &AuditRow) -> Result<(), Break> {
        match (&row.hash, &self.head) {
            // Before the chain: nothing to check.
            (None, None) if self.start.is_none_or(|s| row.id < s) => self.unchained += 1,
            // A row without a hash once the chain began: the start says so, or a sealed row came
            // before it.
            (None, _) => return Err(Break::Unsealed { id: row.id }),
            (Some(hash), head) => {
                if let Some(last) = self.last_id
                    && row.id != last + 1
                {
                    return Err(Break::Missing { after: last, next: row.id });
                }
                let prev = row.prev_hash.as_deref().unwrap_or("");
                if prev != head.as_deref().unwrap_or(GENESIS) {
                    return Err(Break::Relinked { id: row.id });
                }
                if row_hash(prev, row) != *hash {
                    return Err(Break::Altered { id: row.id });
                }
                if self.expected.as_deref() == Some(hash.as_str()) {
                    self.expected_seen = true;
                }
                self.chained += 1;
                self.head = Some(hash.clone());
            }
        }
        self.last_id = Some(row.id);
        Ok(())
    }

    /// After the last row: was the expected head met?
    ///
    /// # Errors
    /// [`Break::HeadMissing`].
    pub fn finish(&self) -> Result<(), Break> {
        match &self.expected {
            Some(h) if !self.expected_seen => Err(Break::HeadMissing { expected: h.clone(), last_id: self.last_id }),
            _ => Ok(()),
        }
    }
}

/// The result of walking the whole log: the counts and head, and the first break if any.
#[derive(Debug)]
pub struct Verdict {
    /// Rows checked, the head.
    pub check: ChainCheck,
    /// The first broken link.
    pub broken: Option<Break>,
}

/// Walks the whole log in id order through the store (the one piece of I/O here), pages of
/// 10,000 rows, and stops at the first broken link (`safegrid audit-log verify`).
///
/// # Errors
/// When the store fails.
pub async fn verify(
    store: &dyn crate::store::Store,
    expected_head: Option<String>,
) -> Result<Verdict, crate::store::StoreError> {
    let check = ChainCheck::new(expected_head);
    let start = store.meta(CHAIN_START_KEY).await?.and_then(|v| v.parse::<i64>().ok());
    let Some(start) = start else { return Ok(Verdict { check, broken: Some(Break::StartMissing) }) };
    let mut check = check.starting_at(start);
    let mut after = i64::MIN;
    loop {
        let rows = store.audit_rows_after(after, 10_000).await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for r in &rows {
            if let Err(b) = check.push(r) {
                return Ok(Verdict { check, broken: Some(b) });
            }
        }
    }
    let broken = check.finish().err();
    Ok(Verdict { check, broken })
}

/// What makes reads identical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadKey {
    /// Token name.
    pub actor: String,
    /// Role name.
    pub role: String,
    /// Action.
    pub action: String,
    /// Layer, when one.
    pub layer: Option<String>,
    /// Request text.
    pub request: String,
    /// A read, or a refused write (only refusals of writes collapse; a done write never does).
    pub kind: AuditKind,
    /// Done, or why refused.
    pub outcome: Outcome,
}

/// Identical reads counted since a run's first (durably written) read.
#[derive(Debug, Clone)]
struct Run {
    /// When the run's first read was written: the window runs from here.
    opened: DateTime<Utc>,
    /// Repeats so far (not counting the first read).
    repeats: i64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    results: i64,
    subjects: BTreeSet<i64>,
    /// The subjects the run's first row recorded, durably: a read that returns anyone else is
    /// not a repeat (it is written at once, so no kill can lose whom the caller saw).
    seen: BTreeSet<i64>,
}

/// Repeats to be written as one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeats {
    /// Whose, what.
    pub key: ReadKey,
    /// How many reads the row stands for.
    pub count: i64,
    /// The first and last of them.
    pub first: DateTime<Utc>,
    /// The last.
    pub last: DateTime<Utc>,
    /// Items returned, summed over them.
    pub results: i64,
    /// Every subject any of them returned.
    pub subjects: Vec<i64>,
}

impl Repeats {
    /// The row that records them (id and hashes are set when it is appended).
    #[must_use]
    pub fn row(&self) -> AuditRow {
        AuditRow {
            id: 0,
            at: self.first,
            actor: self.key.actor.clone(),
            role: self.key.role.clone(),
            action: self.key.action.clone(),
            request: self.key.request.clone(),
            result_count: self.results,
            layer: self.key.layer.clone(),
            subjects: self.subjects.clone(),
            kind: self.key.kind.name().into(),
            outcome: self.key.outcome.name().into(),
            repeats: self.count,
            last_at: Some(self.last),
            prev_hash: None,
            hash: None,
        }
    }
}

/// What to do with a read.
#[derive(Debug, PartialEq)]
pub enum ReadVerdict {
    /// A repeat within the window: counted, nothing to write now.
    Counted,
    /// The first of a run: write its row now, before the data leaves (and first the repeats of
    /// the run it ends, if any), then [`Collapser::opened`].
    First {
        /// The repeats of the same key's previous run, which this read ends (its window is
        /// over, or this read returns someone the run's first row did not name); `None` when
        /// there was no run or it had no repeats.
        ended: Option<Repeats>,
    },
}

/// The runs of identical reads now open (see the module docs). Pure: the caller passes the time.
#[derive(Debug)]
pub struct Collapser {
    window: Duration,
    runs: HashMap<ReadKey, Run>,
}

impl Default for Collapser {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW)
    }
}

impl Collapser {
    /// Collapses identical reads within `window` (zero: never).
    #[must_use]
    pub fn new(window: Duration) -> Self {
        Self { window, runs: HashMap::new() }
    }

    /// The window.
    #[must_use]
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Changes the window (open runs keep running until the new one ends).
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    fn open_at(&self, run: &Run, now: DateTime<Utc>) -> bool {
        chrono::Duration::from_std(self.window).is_ok_and(|w| now < run.opened + w)
    }

    /// A read at `now`.
    pub fn read(&mut self, key: &ReadKey, subjects: &[i64], results: i64, now: DateTime<Utc>) -> ReadVerdict {
        if let Some(run) = self.runs.get(key)
            && self.open_at(run, now)
            && subjects.iter().all(|s| run.seen.contains(s))
            && let Some(run) = self.runs.get_mut(key)
        {
            run.repeats += 1;
            run.first.get_or_insert(now);
            run.last = Some(now);
            run.results = run.results.saturating_add(results);
            run.subjects.extend(subjects.iter().copied());
            return ReadVerdict::Counted;
        }
        let ended = self.runs.remove(key).and_then(|run| Self::repeats(key.clone(), run));
        ReadVerdict::First { ended }
    }

    /// The first read of a run was written at `at`, naming `subjects`: identical reads that
    /// return no one else are counted from now on. A run opened meanwhile by an identical read
    /// (two at once) is kept.
    pub fn opened(&mut self, key: ReadKey, at: DateTime<Utc>, subjects: &[i64]) {
        if self.window.is_zero() {
            return;
        }
        self.runs.entry(key).or_insert_with(|| Run {
            opened: at,
            repeats: 0,
            first: None,
            last: None,
            results: 0,
            subjects: BTreeSet::new(),
            seen: subjects.iter().copied().collect(),
        });
    }

    /// Too many runs open (a flood of distinct requests): write them all out now.
    #[must_use]
    pub fn crowded(&self) -> bool {
        self.runs.len() >= MAX_OPEN_RUNS
    }

    /// Closes the runs whose window has ended by `now`; returns those with repeats to write.
    pub fn ended(&mut self, now: DateTime<Utc>) -> Vec<Repeats> {
        let done: Vec<ReadKey> =
            self.runs.iter().filter(|(_, run)| !self.open_at(run, now)).map(|(k, _)| k.clone()).collect();
        let mut out = Vec::new();
        for key in done {
            if let Some(run) = self.runs.remove(&key)
                && let Some(r) = Self::repeats(key, run)
            {
                out.push(r);
            }
        }
        out.sort_by_key(|r| r.first);
        out
    }

    /// Closes every run (shutdown); returns those with repeats to write.
    pub fn drain(&mut self) -> Vec<Repeats> {
        let mut out: Vec<Repeats> = self.runs.drain().filter_map(|(k, run)| Self::repeats(k, run)).collect();
        out.sort_by_key(|r| r.first);
        out
    }

    /// Puts repeats back (their row could not be written): they are written with the next flush.
    pub fn restore(&mut self, r: Repeats) {
        let run = self.runs.entry(r.key.clone()).or_insert_with(|| Run {
            opened: r.first,
            repeats: 0,
            first: None,
            last: None,
            results: 0,
            subjects: BTreeSet::new(),
            // Every subject of these repeats was named by the run's first row.
            seen: r.subjects.iter().copied().collect(),
        });
        run.repeats += r.count;
        run.first = Some(run.first.map_or(r.first, |f| f.min(r.first)));
        run.last = Some(run.last.map_or(r.last, |l| l.max(r.last)));
        run.results = run.results.saturating_add(r.results);
        run.subjects.extend(r.subjects);
    }

    fn repeats(key: ReadKey, run: Run) -> Option<Repeats> {
        (run.repeats > 0).then(|| Repeats {
            key,
            count: run.repeats,
            first: run.first.unwrap_or(run.opened),
            last: run.last.unwrap_or(run.opened),
            results: run.results,
            subjects: run.subjects.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(id: i64) -> AuditRow {
        AuditRow {
            id,
            at: Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap() + chrono::Duration::nanoseconds(123_456_789),
            actor: "wall \"A\"".into(),
            role: "dispatcher".into(),
            action: "query".into(),
            request: "GET /api/v1/key_personnel".into(),
            result_count: 2,
            layer: Some("key_personnel".into()),
            subjects: vec![1003, 1004],
            kind: "read".into(),
            outcome: "ok".into(),
            repeats: 1,
            last_at: None,
            prev_hash: None,
            hash: None,
        }
    }

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|id| {
                let mut r = row(id);
                seal(&mut r, &prev);
                prev = r.hash.clone().unwrap();
                r
            })
            .collect()
    }

    fn check(rows: &[AuditRow], head: Option<&str>) -> Result<ChainCheck, Break> {
        let mut c = ChainCheck::new(head.map(str::to_owned));
        for r in rows {
            c.push(r)?;
        }
        c.finish()?;
        Ok(c)
    }

    #[test]
    fn times_are_truncated_to_microseconds_and_written_in_one_form() {
        let r = chain(1).remove(0);
        assert_eq!(time_text(r.at), "2026-12-03T10:00:00.123456Z");
        assert_eq!(time_text(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()), "2026-01-01T00:00:00.000000Z");
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        let mut a = row(1);
        let mut b = row(1);
        a.actor = "ab".into();
        a.role = "c".into();
        b.actor = "a".into();
        b.role = "bc".into();
        assert_ne!(row_hash(GENESIS, &a), row_hash(GENESIS, &b));
        // Every field counts, the id and the previous hash included.
        let base = row_hash(GENESIS, &row(1));
        assert_ne!(base, row_hash(GENESIS, &row(2)));
        assert_ne!(base, row_hash("1", &row(1)));
        let mut c = row(1);
        c.subjects = vec![1003];
        assert_ne!(base, row_hash(GENESIS, &c));
        c = row(1);
        c.repeats = 2;
        assert_ne!(base, row_hash(GENESIS, &c));
        c = row(1);
        c.last_at = Some(c.at);
        assert_ne!(base, row_hash(GENESIS, &c));
    }

    #[test]
    fn an_intact_chain_passes_and_names_its_head() {
        let rows = chain(5);
        let c = check(&rows, None).unwrap();
        assert_eq!((c.chained, c.unchained, c.last_id), (5, 0, Some(5)));
        assert_eq!(c.head, rows[4].hash);
        // A head noted earlier is still found after more rows are appended.
        assert!(check(&rows, rows[2].hash.as_deref()).is_ok());
    }

    #[test]
    fn rows_before_the_chain_are_counted_not_checked() {
        let mut old = row(1);
        old.id = 1;
        let mut old2 = row(2);
        old2.id = 2;
        let mut rows = vec![old, old2];
        let mut prev = GENESIS.to_owned();
        for id in 3..=4 {
            let mut r = row(id);
            seal(&mut r, &prev);
            prev = r.hash.clone().unwrap();
            rows.push(r);
        }
        let c = check(&rows, None).unwrap();
        assert_eq!((c.unchained, c.chained), (2, 2));
    }

    #[test]
    fn an_altered_row_is_named() {
        let mut rows = chain(5);
        rows[2].actor = "someone else".into();
        assert_eq!(check(&rows, None).unwrap_err(), Break::Altered { id: 3 });
        let mut rows = chain(5);
        rows[3].at += chrono::Duration::microseconds(1);
        assert_eq!(check(&rows, None).unwrap_err(), Break::Altered { id: 4 });
    }

    #[test]
    fn a_deleted_row_is_found() {
        let mut rows = chain(5);
        rows.remove(2);
        let e = check(&rows, None).unwrap_err();
        assert_eq!(e, Break::Missing { after: 2, next: 4 });
        assert_eq!(e.to_string(), "row 3 is missing (deleted): row 4 follows row 2");
        // Deleted, then the ids made to follow on: the link breaks.
        let mut rows = chain(5);
        rows.remove(2);
        for r in &mut rows[2..] {
            r.id -= 1;
        }
        assert_eq!(check(&rows, None).unwrap_err(), Break::Relinked { id: 3 });
        // The first row deleted.
        let rows = chain(3);
        assert_eq!(check(&rows[1..], None).unwrap_err(), Break::Relinked { id: 2 });
        // A row re-hashed after being altered breaks the next link.
        let mut rows = chain(4);
        rows[1].actor = "x".into();
        let prev = rows[1].prev_hash.clone().unwrap();
        seal(&mut rows[1], &prev);
        assert_eq!(check(&rows, None).unwrap_err(), Break::Relinked { id: 3 });
    }

    #[test]
    fn a_cut_off_tail_is_found_with_the_head_noted_outside() {
        let rows = chain(5);
        let head = rows[4].hash.clone().unwrap();
        assert!(check(&rows, Some(&head)).is_ok());
        assert!(matches!(check(&rows[..3], Some(&head)).unwrap_err(), Break::HeadMissing { last_id: Some(3), .. }));
        assert!(matches!(check(&[], Some(&head)).unwrap_err(), Break::HeadMissing { last_id: None, .. }));
    }

    #[test]
    fn an_unsealed_row_inside_the_chain_is_named() {
        let mut rows = chain(3);
        let mut extra = row(4);
        extra.hash = None;
        rows.push(extra);
        assert_eq!(check(&rows, None).unwrap_err(), Break::Unsealed { id: 4 });
    }

    #[test]
    fn erased_hashes_are_a_break_once_the_chain_start_is_known() {
        let mut rows = chain(3);
        for r in &mut rows {
            r.hash = None;
            r.prev_hash = None;
        }
        let mut c = ChainCheck::new(None);
        assert!(rows.iter().all(|r| c.push(r).is_ok()), "without the start, they read as before the chain");
        let mut c = ChainCheck::new(None).starting_at(1);
        assert_eq!(c.push(&rows[0]).unwrap_err(), Break::Unsealed { id: 1 });
        let mut c = ChainCheck::new(None).starting_at(3);
        assert!(c.push(&rows[0]).is_ok() && c.push(&rows[1]).is_ok());
        assert_eq!(c.push(&rows[2]).unwrap_err(), Break::Unsealed { id: 3 });
    }

    fn key(request: &str) -> ReadKey {
        ReadKey {
            actor: "wall".into(),
            role: "dispatcher".into(),
            action: "query".into(),
            layer: Some("key_personnel".into()),
            request: request.into(),
            kind: AuditKind::Read,
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn identical_reads_within_the_window_collapse_and_add_up() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap();
        let mut c = Collapser::new(Duration::from_secs(60));
        let k = key("GET /api/v1/key_personnel");
        let (mut firsts, mut repeat_rows) = (0, Vec::new());
        // A wall polling every 3 s for an hour.
        for i in 0..1200 {
            let now = t0 + chrono::Duration::seconds(3 * i);
            repeat_rows.extend(c.ended(now));
            match c.read(&k, &[1003, 7], 2, now) {
                ReadVerdict::Counted => {}
                ReadVerdict::First { ended } => {
                    repeat_rows.extend(ended);
                    firsts += 1;
                    c.opened(k.clone(), now, &[1003, 7]);
                }
            }
        }
        repeat_rows.extend(c.drain());
        assert_eq!(firsts, 60, "one first row per minute");
        assert_eq!(repeat_rows.len(), 60, "and one row of repeats");
        assert_eq!(firsts + repeat_rows.iter().map(|r| r.count).sum::<i64>(), 1200, "every read counted");
        let r = &repeat_rows[0];
        assert_eq!(
            (r.count, r.first, r.last),
            (19, t0 + chrono::Duration::seconds(3), t0 + chrono::Duration::seconds(57))
        );
        assert_eq!(r.subjects, vec![7, 1003]);
        assert_eq!(r.results, 38);
        let row = r.row();
        assert_eq!((row.repeats, row.last_at, row.kind.as_str()), (19, Some(r.last), "read"));
    }

    #[test]
    fn different_reads_do_not_collapse_and_a_zero_window_collapses_nothing() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap();
        let mut c = Collapser::new(Duration::from_secs(60));
        for (i, req) in ["a", "b", "a"].iter().enumerate() {
            let v = c.read(&key(req), &[], 1, t0);
            if i < 2 {
                assert_eq!(v, ReadVerdict::First { ended: None });
                c.opened(key(req), t0, &[]);
            } else {
                assert_eq!(v, ReadVerdict::Counted);
            }
        }
        let mut z = Collapser::new(Duration::ZERO);
        for _ in 0..3 {
            assert!(matches!(z.read(&key("a"), &[], 1, t0), ReadVerdict::First { ended: None }));
            z.opened(key("a"), t0, &[]);
        }
    }

    #[test]
    fn repeats_not_written_are_kept_for_the_next_flush() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap();
        let mut c = Collapser::new(Duration::from_secs(60));
        c.opened(key("a"), t0, &[7]);
        for s in 1..=4 {
            c.read(&key("a"), &[7], 1, t0 + chrono::Duration::seconds(s));
        }
        let out = c.ended(t0 + chrono::Duration::seconds(61));
        assert_eq!(out.len(), 1);
        c.restore(out[0].clone());
        let again = c.drain();
        assert_eq!(again, out);
    }

    #[test]
    fn a_repeat_that_returns_someone_new_is_written_at_once() {
        let t0 = Utc::now();
        let k = ReadKey {
            actor: "d".into(),
            role: "dispatcher".into(),
            action: "query".into(),
            layer: Some("key_personnel".into()),
            request: "GET /api/v1/key_personnel".into(),
            kind: AuditKind::Read,
            outcome: Outcome::Ok,
        };
        let mut c = Collapser::new(Duration::from_secs(60));
        assert_eq!(c.read(&k, &[1, 2], 2, t0), ReadVerdict::First { ended: None });
        c.opened(k.clone(), t0, &[1, 2]);
        let t1 = t0 + chrono::Duration::seconds(3);
        assert_eq!(c.read(&k, &[2], 1, t1), ReadVerdict::Counted, "no one new: counted");
        // Key person 3 enters the polled area: a new first row, the run so far written before it.
        let t2 = t0 + chrono::Duration::seconds(6);
        match c.read(&k, &[2, 3], 2, t2) {
            ReadVerdict::First { ended: Some(r) } => assert_eq!(r.count, 1),
            other => panic!("{other:?}"),
        }
    }
}
