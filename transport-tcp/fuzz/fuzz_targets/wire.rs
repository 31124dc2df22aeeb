//! Feeds arbitrary bytes to the wire decoders, as a hostile peer would: the
//! handshake decoders of both sides (the client's hello, the server's
//! welcome), then the frame decoder (with the codec behind it) until the
//! input runs out. Any panic or oversized allocation is a bug.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use transport_tcp::wire::{Hello, Welcome, decode_frame, frame_message};

fuzz_target!(|data: &[u8]| {
    let _ = Hello::length(data);
    let _ = Hello::decode(data);
    let _ = Welcome::length(data);
    let _ = Welcome::decode(data);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decode_frame(&mut buf, 1 << 20) {
        let _ = frame_message(&frame);
    }
});
