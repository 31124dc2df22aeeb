//! Feeds arbitrary bytes to the wire decoders, as a hostile peer would:
//! the handshake decoder, then the frame decoder (with the codec behind it)
//! until the input runs out. Any panic or oversized allocation is a bug.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use transport_tcp::wire::{Hello, decode_frame, frame_message};

fuzz_target!(|data: &[u8]| {
    let _ = Hello::length(data);
    let _ = Hello::decode(data);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decode_frame(&mut buf, 1 << 20) {
        let _ = frame_message(&frame);
    }
});
