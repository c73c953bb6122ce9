//! A short, stable hash (FNV-1a) for ETags and content names: the same bytes give the same
//! name on every build and machine, which `std`'s randomly seeded hasher does not promise.

/// The 64-bit FNV-1a hash of `bytes`.
pub(crate) fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
