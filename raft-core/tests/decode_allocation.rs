//! Decoding bounds what it allocates: at most the input's own length plus
//! a fixed amount (`codec::DECODE_OVERHEAD_MAX`), whatever the input claims.
//! A hostile AppendEntries of a million empty entries or an InstallSnapshot
//! whose configuration lists two million empty servers is refused before
//! anything of their size is reserved (issue #13, item 6).
//!
//! This test binary counts every allocation (peak_alloc), so it holds this
//! one test alone.

use bytes::{BufMut, BytesMut};
use peak_alloc::PeakAlloc;
use raft_core::codec::{self, DecodeError};
use raft_core::*;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// The peak of what decoding `input` allocated beyond what was allocated
/// before, and the outcome.
fn decode_peak(input: bytes::Bytes) -> (usize, Result<Message, DecodeError>) {
    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let outcome = codec::decode_message(input);
    (ALLOCATOR.peak_usage().saturating_sub(before), outcome)
}

fn header(buf: &mut BytesMut) {
    buf.put_u32_le(1);
    buf.put_u32_le(1);
    buf.put_slice(b"a");
    buf.put_u32_le(1);
    buf.put_slice(b"b");
}

/// An AppendEntries claiming `count` entries, each as short as the layout allows.
fn empty_entries(count: u32) -> bytes::Bytes {
    let mut buf = BytesMut::with_capacity(64 + count as usize * 25);
    buf.put_u8(codec::FORMAT_VERSION);
    buf.put_u8(1);
    header(&mut buf);
    for _ in 0..4 {
        buf.put_u64_le(1);
    }
    buf.put_u32_le(count);
    for i in 0..count {
        buf.put_u64_le(u64::from(i) + 2);
        buf.put_u64_le(1);
        buf.put_u8(1);
        buf.put_u32_le(0);
        buf.put_u32_le(0);
    }
    buf.freeze()
}

/// An InstallSnapshot whose configuration claims `count` servers with empty names.
fn empty_servers(count: u32) -> bytes::Bytes {
    let mut buf = BytesMut::with_capacity(64 + count as usize * 9);
    buf.put_u8(codec::FORMAT_VERSION);
    buf.put_u8(7);
    header(&mut buf);
    buf.put_u32_le(SNAPSHOT_VERSION);
    for _ in 0..3 {
        buf.put_u64_le(1);
    }
    buf.put_u32_le(count);
    for _ in 0..count {
        buf.put_u8(1);
        buf.put_u32_le(0);
        buf.put_u32_le(0);
    }
    buf.put_u64_le(1);
    buf.put_u64_le(0);
    buf.freeze()
}

#[test]
fn decoding_allocates_at_most_the_input_plus_a_fixed_bound() {
    let cases: Vec<(&str, bytes::Bytes, bool)> = vec![
        ("1 M empty entries", empty_entries(1 << 20), false),
        ("2 M empty servers", empty_servers(2 << 20), false),
        ("the most entries a message may carry", empty_entries(codec::ENTRIES_MAX as u32), true),
        ("the most servers a configuration may list", empty_servers(codec::SERVERS_MAX as u32), true),
    ];
    for (what, input, decodes) in cases {
        let len = input.len();
        let (peak, outcome) = decode_peak(input);
        // Only the error is printed: a decoded message may be huge.
        let error = outcome.as_ref().err();
        assert_eq!(outcome.is_ok(), decodes, "{what}: {error:?}");
        if !decodes {
            assert!(matches!(error, Some(DecodeError::TooMany { .. })), "{what}: {error:?}");
        }
        assert!(
            peak <= len + codec::DECODE_OVERHEAD_MAX,
            "{what}: decoding {len} bytes allocated {peak} (bound: input + {})",
            codec::DECODE_OVERHEAD_MAX
        );
    }
}
