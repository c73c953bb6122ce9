//! Trackers prove who they are: a secret per device id, and the rate limits of the doors
//! trackers knock on.
//!
//! - A secret is 26 random characters of `[a-z2-7]` (130 bits), minted by `safegrid
//!   device-secret DEVICE_ID` or `POST /api/v1/devices/{device_id}/secret`, shown once; the
//!   store keeps its SHA-256 only ([`secret_hash`]). Minting again rotates (the old secret stops
//!   working at once); revoking leaves the device with none, and a device without a secret in
//!   force is refused.
//! - Traccar Client and OsmAnd have a single identifier field, so the secret travels inside it:
//!   `DEVICE_ID:SECRET` ([`split_credential`]). JSON fixes may instead carry `device_secret`.
//! - Every ingest door hands its fixes to [`crate::ingest::Ingest`], which checks each against
//!   [`DeviceSecrets`] (an in-memory map, loaded at start-up and kept in step by the service, so
//!   a check reads no store). An unknown device and a wrong or missing secret cost the same work
//!   (a dummy hash is compared) and get the same answer (`unauthenticated_device`).
//! - [`Buckets`]: token buckets per key, for the per-device and per-address limits
//!   ([`DoorLimits`]).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::Instant;

/// Between the device id and the secret in a tracker's identifier field. The *last* one counts:
/// secrets never hold a ':' (their alphabet is `[a-z2-7]`), while device ids may (a MAC address
/// `aa:bb:cc:dd:ee:ff`), so splitting at the last ':' is never ambiguous. ':' can be typed on
/// every phone keyboard, is not percent-encoded in a query string by Traccar Client, and is not
/// one of the characters Traccar Client or OsmAnd strip from the identifier.
pub const SEPARATOR: char = ':';

/// Characters of a secret: 26 × 5 bits = 130 bits.
pub const SECRET_LEN: usize = 26;

/// Longest secret accepted in a request (longer is refused like a wrong one, unhashed work
/// bounded).
pub const MAX_SECRET_LEN: usize = 128;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A device's secret as received: never printed by `Debug` (fixes are logged).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A new random secret (130 bits from the OS's generator).
#[must_use]
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; SECRET_LEN];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect()
}

/// What the store keeps of a secret: its SHA-256, hex.
#[must_use]
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `DEVICE_ID:SECRET` → (device id, secret); an identifier without ':' is a device id alone.
#[must_use]
pub fn split_credential(field: &str) -> (&str, Option<&str>) {
    match field.rsplit_once(SEPARATOR) {
        Some((id, secret)) => (id, Some(secret)),
        None => (field, None),
    }
}

/// The identifier to enter in Traccar Client or OsmAnd.
#[must_use]
pub fn credential(device_id: &str, secret: &str) -> String {
    format!("{device_id}{SEPARATOR}{secret}")
}

/// The secrets in force, by device id (SHA-256 digests), checked without a store read.
#[derive(Debug)]
pub struct DeviceSecrets {
    /// Orders mints, revocations and reloads (store, then memory) against one another.
    pub(crate) gate: tokio::sync::Mutex<()>,
    map: RwLock<HashMap<String, [u8; 32]>>,
    /// Compared when the device has no secret, so that an unknown id costs the same work.
    dummy: [u8; 32],
}

impl Default for DeviceSecrets {
    fn default() -> Self {
        Self::new(std::iter::empty::<(String, String)>())
    }
}

fn digest_of_hex(h: &str) -> Option<[u8; 32]> {
    let v = hex::decode(h).ok()?;
    v.try_into().ok()
}

/// Compares in time independent of where the digests differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let d = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(d) == 0
}

impl DeviceSecrets {
    /// From (device id, SHA-256 hex) pairs; a malformed hash is skipped (that device is refused).
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut dummy = [0u8; 32];
        dummy.copy_from_slice(&Sha256::digest(new_secret().as_bytes()));
        let s = Self { gate: tokio::sync::Mutex::new(()), map: RwLock::new(HashMap::new()), dummy };
        s.replace(pairs);
        s
    }

    /// Replaces every secret (a reload from the store).
    pub fn replace(&self, pairs: impl IntoIterator<Item = (String, String)>) {
        let map: HashMap<String, [u8; 32]> =
            pairs.into_iter().filter_map(|(d, h)| digest_of_hex(&h).map(|h| (d, h))).collect();
        *self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner) = map;
    }

    /// Puts (or rotates) one device's secret hash.
    pub fn set(&self, device_id: &str, hash_hex: &str) {
        if let Some(h) = digest_of_hex(hash_hex) {
            self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(device_id.to_owned(), h);
        }
    }

    /// Forgets a device's secret (revoked): its fixes are refused from now on.
    pub fn remove(&self, device_id: &str) {
        self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(device_id);
    }

    /// Devices with a secret in force.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether no device has a secret.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `secret` is the one in force for `device_id`. The same work whatever the case
    /// (unknown device, no secret sent, wrong secret): one SHA-256 and one full comparison.
    #[must_use]
    pub fn verify(&self, device_id: &str, secret: Option<&Secret>) -> bool {
        let given = secret.map_or("", |s| s.0.as_str());
        let given = if given.len() > MAX_SECRET_LEN { "" } else { given };
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&Sha256::digest(given.as_bytes()));
        let map = self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (want, known) = match map.get(device_id) {
            Some(h) => (h, true),
            None => (&self.dummy, false),
        };
        let matches = same(&digest, want);
        known & matches & secret.is_some() & !given.is_empty()
    }
}

/// Token buckets by key: `rate` tokens a second up to `burst`.
#[derive(Debug)]
pub struct Buckets<K> {
    rate: f64,
    burst: f64,
    by_key: Mutex<HashMap<K, (f64, Instant)>>,
    /// When full buckets were last forgotten: a sweep is O(keys), so it runs at most once a
    /// second however many keys a flood of made-up device ids adds.
    swept: Mutex<Option<Instant>>,
}

/// Most keys remembered before full (idle) buckets are forgotten.
const MAX_KEYS: usize = 100_000;

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Buckets of `burst` tokens refilled at `rate` a second.
    #[must_use]
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate: rate.max(1e-6),
            burst: burst.max(1.0),
            by_key: Mutex::new(HashMap::new()),
            swept: Mutex::new(None),
        }
    }

    fn with<R>(&self, key: &K, f: impl FnOnce(&mut f64) -> R) -> R {
        let now = Instant::now();
        let mut b = self.by_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if b.len() > MAX_KEYS && self.sweep_due(now) {
            // Forget keys whose bucket has refilled: they lose nothing.
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(key.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        f(tokens)
    }

    fn sweep_due(&self, now: Instant) -> bool {
        let mut last = self.swept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1));
        if due {
            *last = Some(now);
        }
        due
    }

    fn wait(&self, tokens: f64) -> u32 {
        (((1.0 - tokens) / self.rate).ceil() as u32).max(1)
    }

    /// Takes one token; `Err(seconds to wait)` when there is none.
    ///
    /// # Errors
    /// The seconds until a token is available.
    pub fn take(&self, key: &K) -> Result<(), u32> {
        self.with(key, |t| {
            if *t >= 1.0 {
                *t -= 1.0;
                Ok(())
            } else {
                Err(self.wait(*t))
            }
        })
    }

    /// Whether a token is available, without taking it.
    ///
    /// # Errors
    /// The seconds until a token is available.
    pub fn check(&self, key: &K) -> Result<(), u32> {
        self.with(key, |t| if *t >= 1.0 { Ok(()) } else { Err(self.wait(*t)) })
    }

    /// Takes a token even if that leaves the bucket in debt (a failure already happened).
    pub fn charge(&self, key: &K) {
        self.with(key, |t| *t = (*t - 1.0).max(-self.burst));
    }
}

/// The limits of the doors trackers report through (`safegrid serve --help`).
#[derive(Debug, Clone, Copy)]
pub struct LimitConfig {
    /// Sustained fixes a second per device on the OsmAnd path.
    pub device_rate: f64,
    /// Fixes a device may send at once (an offline buffer replayed).
    pub device_burst: f64,
    /// Sustained requests a second per client address on the OsmAnd path.
    pub address_rate: f64,
    /// Requests per client address at once.
    pub address_burst: f64,
    /// Failed authentications a minute per client address and device id before that pair is
    /// refused (429).
    pub failures_per_minute: f64,
}

impl Default for LimitConfig {
    /// 10 fixes/s per device, bursts of 300 (Traccar Client replays its offline buffer one fix
    /// per request, as fast as answers come: 300 at once, then 10 a second, is an hour's buffer
    /// at 5 s intervals in under 45 s); 200 requests/s per address, bursts of 2,000 (a private
    /// APN or carrier NAT puts a whole fleet behind one address); 20 failed authentications a
    /// minute per address and device (a misconfigured phone stays under it; a guesser is
    /// stopped; and neither locks out the other trackers behind the same address).
    fn default() -> Self {
        Self {
            device_rate: 10.0,
            device_burst: 300.0,
            address_rate: 200.0,
            address_burst: 2_000.0,
            failures_per_minute: 20.0,
        }
    }
}

/// The per-device and per-address buckets of the OsmAnd door.
#[derive(Debug)]
pub struct DoorLimits {
    /// Per device id (authenticated fixes only: a stranger cannot drain a device's bucket).
    pub device: Buckets<String>,
    /// Per client address ([`client_key`]), every request.
    pub address: Buckets<Option<IpAddr>>,
    /// Per client address ([`client_key`]) and device id, failed authentications. Keyed by
    /// both, so that one bad tracker (or a guesser) behind a carrier NAT locks out only itself,
    /// not the fleet that shares the address; the per-address bucket above bounds a guesser
    /// who varies the device id.
    pub failures: Buckets<(Option<IpAddr>, String)>,
}

/// The key a client address is limited by: an IPv4 address itself, an IPv6 address by its /64
/// (one subscriber's prefix: a phone takes a new address within it at will).
#[must_use]
pub fn client_key(addr: Option<IpAddr>) -> Option<IpAddr> {
    match addr? {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                Some(IpAddr::V4(v4))
            } else {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Some(IpAddr::V6(bits.into()))
            }
        }
        v4 @ IpAddr::V4(_) => Some(v4),
    }
}

impl DoorLimits {
    /// Buckets for `c`.
    #[must_use]
    pub fn new(c: LimitConfig) -> Self {
        let per_min = c.failures_per_minute.max(1.0);
        Self {
            device: Buckets::new(c.device_rate, c.device_burst),
            address: Buckets::new(c.address_rate, c.address_burst),
            failures: Buckets::new(per_min / 60.0, per_min),
        }
    }
}

impl Default for DoorLimits {
    fn default() -> Self {
        Self::new(LimitConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_long_and_free_of_the_separator() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), SECRET_LEN);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert!(!a.contains(SEPARATOR));
    }

    #[test]
    fn the_last_separator_splits_so_device_ids_may_hold_colons() {
        assert_eq!(split_credential("aa:bb:cc:s3cret"), ("aa:bb:cc", Some("s3cret")));
        assert_eq!(split_credential("dev-1"), ("dev-1", None));
        assert_eq!(split_credential("dev-1:"), ("dev-1", Some("")));
    }

    #[test]
    fn only_the_secret_in_force_verifies() {
        let s = new_secret();
        let d = DeviceSecrets::new([("dev-1".to_owned(), secret_hash(&s))]);
        let ok = |dev: &str, sec: Option<&str>| d.verify(dev, sec.map(|x| Secret(x.to_owned())).as_ref());
        assert!(ok("dev-1", Some(&s)));
        assert!(!ok("dev-1", Some("wrong")));
        assert!(!ok("dev-1", None));
        assert!(!ok("dev-2", Some(&s)));
        assert!(!ok("dev-2", Some("")));
        let s2 = new_secret();
        d.set("dev-1", &secret_hash(&s2));
        assert!(!ok("dev-1", Some(&s)));
        assert!(ok("dev-1", Some(&s2)));
        d.remove("dev-1");
        assert!(!ok("dev-1", Some(&s2)));
        assert!(!format!("{:?}", Secret(s2.clone())).contains(&s2));
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let b: Buckets<u8> = Buckets::new(1.0 / 3.0, 20.0);
        for _ in 0..20 {
            assert!(b.take(&1).is_ok());
        }
        let wait = b.take(&1).unwrap_err();
        assert!((1..=3).contains(&wait), "{wait}");
        assert!(b.take(&2).is_ok(), "another key has its own bucket");
        b.charge(&3);
        assert!(b.check(&3).is_ok());
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64_prefix() {
        let a: IpAddr = "2408:8256:3::1".parse().unwrap();
        let b: IpAddr = "2408:8256:3:0:ffff::9".parse().unwrap();
        let other: IpAddr = "2408:8256:3:1::1".parse().unwrap();
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_ne!(client_key(Some(a)), client_key(Some(other)));
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(Some(mapped)), Some(v4));
        assert_eq!(client_key(None), None);
    }
}
