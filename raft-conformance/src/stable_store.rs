//! The [`StableStore`] conformance cases, run through [`stable_store_suite!`](crate::stable_store_suite).

use crate::Fixture;
use raft_core::stable::STABLE_KEY_MAX;
use raft_core::{StableStore, StoreError};

/// A key never set reads as `None`, as bytes and as a `u64`.
pub fn missing_key_is_none<S: StableStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    assert_eq!(store.get(b"CurrentTerm").expect("get"), None);
    assert_eq!(store.get_u64(b"CurrentTerm").expect("get_u64"), None);
}

/// Bytes can be set, read back, and overwritten; keys do not interfere.
pub fn set_get_overwrite<S: StableStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.set(b"a", b"first").expect("set");
    store.set(b"b", b"other").expect("set");
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"first"[..]));
    store.set(b"a", b"second, longer than the first").expect("overwrite");
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"second, longer than the first"[..]));
    store.set(b"a", b"3").expect("overwrite shorter");
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"3"[..]));
    assert_eq!(store.get(b"b").expect("get").as_deref(), Some(&b"other"[..]));
}

/// `u64` values round-trip, including 0 and `u64::MAX`, and can be overwritten.
pub fn u64_values_round_trip<S: StableStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    for (key, value) in [(&b"zero"[..], 0), (b"one", 1), (b"max", u64::MAX), (b"mid", 1 << 40)] {
        store.set_u64(key, value).expect("set_u64");
        assert_eq!(store.get_u64(key).expect("get_u64"), Some(value));
    }
    store.set_u64(b"max", 7).expect("overwrite");
    assert_eq!(store.get_u64(b"max").expect("get_u64"), Some(7));
    assert_eq!(store.get_u64(b"zero").expect("get_u64"), Some(0));
}

/// An empty key and an empty value are stored like any other.
pub fn empty_key_and_value<S: StableStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.set(b"", b"value of the empty key").expect("set empty key");
    store.set(b"empty", b"").expect("set empty value");
    assert_eq!(store.get(b"").expect("get").as_deref(), Some(&b"value of the empty key"[..]));
    assert_eq!(store.get(b"empty").expect("get").as_deref(), Some(&b""[..]));
}

/// A value that is not 8 bytes long is refused by `get_u64` as corrupt.
pub fn wrong_width_u64_is_corrupt<S: StableStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.set(b"term", b"abc").expect("set");
    let err = store.get_u64(b"term").expect_err("3 bytes are not a u64");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

/// Keys of up to `STABLE_KEY_MAX` bytes are stored; a longer one is
/// refused with `KeyTooLong` by `set` and `get` alike, on every store.
pub fn keys_up_to_the_maximum_are_stored_and_longer_ones_refused<S: StableStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let longest = vec![b'k'; STABLE_KEY_MAX];
    store.set(&longest, b"fits").expect("a key of the maximum length");
    assert_eq!(store.get(&longest).expect("get").as_deref(), Some(&b"fits"[..]));
    let longer = vec![b'k'; STABLE_KEY_MAX + 1];
    for result in [store.set(&longer, b"x").map(|_| None), store.get(&longer)] {
        match result {
            Err(StoreError::KeyTooLong { len, max }) => {
                assert_eq!((len, max), (STABLE_KEY_MAX + 1, STABLE_KEY_MAX))
            }
            other => panic!("a key of {} bytes: expected KeyTooLong, got {other:?}", STABLE_KEY_MAX + 1),
        }
    }
    assert_eq!(store.get(&longest).expect("get").as_deref(), Some(&b"fits"[..]));
}

/// Values survive close and reopen.
pub fn reopen_keeps_values<S: StableStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.set(b"bytes", b"kept").expect("set");
    store.set(b"", b"").expect("set");
    store.set_u64(b"CurrentTerm", u64::MAX).expect("set_u64");
    store.set_u64(b"zero", 0).expect("set_u64");
    let store = fixture.reopen(store);
    assert_eq!(store.get(b"bytes").expect("get").as_deref(), Some(&b"kept"[..]));
    assert_eq!(store.get(b"").expect("get").as_deref(), Some(&b""[..]));
    assert_eq!(store.get_u64(b"CurrentTerm").expect("get_u64"), Some(u64::MAX));
    assert_eq!(store.get_u64(b"zero").expect("get_u64"), Some(0));
    assert_eq!(store.get(b"never").expect("get"), None);
}
