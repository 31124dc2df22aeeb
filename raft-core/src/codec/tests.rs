//! Property tests: every message round-trips, and any damaged input decodes to
//! an error without panicking or allocating beyond its own size.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes_strategy(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn name_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9.:é-]{0,12}"
}

fn header_strategy() -> impl Strategy<Value = RpcHeader> {
    (any::<u32>(), name_strategy(), name_strategy()).prop_map(|(v, id, addr)| RpcHeader {
        protocol_version: v,
        id: ServerId(id),
        addr: ServerAddress(addr),
    })
}

fn kind_strategy() -> impl Strategy<Value = LogKind> {
    prop::sample::select(LogKind::ALL.to_vec())
}

fn log_strategy() -> impl Strategy<Value = Log> {
    (any::<u64>(), any::<u64>(), kind_strategy(), bytes_strategy(64), bytes_strategy(16))
        .prop_map(|(index, term, kind, data, extensions)| Log { index, term, kind, data, extensions })
}

fn configuration_strategy() -> impl Strategy<Value = Configuration> {
    vec((any::<bool>(), name_strategy(), name_strategy()), 0..6).prop_map(|servers| Configuration {
        servers: servers
            .into_iter()
            .map(|(voter, id, address)| Server {
                suffrage: if voter { Suffrage::Voter } else { Suffrage::Nonvoter },
                id: ServerId(id),
                address: ServerAddress(address),
            })
            .collect(),
    })
}

fn message_strategy() -> impl Strategy<Value = Message> {
    let h = header_strategy;
    prop_oneof![
        (h(), any::<u64>(), any::<u64>(), any::<u64>(), vec(log_strategy(), 0..8), any::<u64>()).prop_map(
            |(header, term, prev_log_index, prev_log_term, entries, leader_commit)| {
                Message::AppendEntriesRequest(AppendEntriesRequest {
                    header,
                    term,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                })
            }
        ),
        (h(), any::<u64>(), any::<u64>(), any::<bool>(), any::<bool>(), any::<u64>(), any::<u64>()).prop_map(
            |(header, term, last_log, success, no_retry_backoff, conflict_term, conflict_index)| {
                Message::AppendEntriesResponse(AppendEntriesResponse {
                    header,
                    term,
                    last_log,
                    success,
                    no_retry_backoff,
                    conflict_term,
                    conflict_index,
                })
            }
        ),
        (h(), any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
            |(header, term, last_log_index, last_log_term, leadership_transfer)| {
                Message::RequestVoteRequest(RequestVoteRequest {
                    header,
                    term,
                    last_log_index,
                    last_log_term,
                    leadership_transfer,
                })
            }
        ),
        (h(), any::<u64>(), any::<bool>()).prop_map(|(header, term, granted)| {
            Message::RequestVoteResponse(RequestVoteResponse { header, term, granted })
        }),
        (h(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(header, term, last_log_index, last_log_term)| {
                Message::PreVoteRequest(PreVoteRequest { header, term, last_log_index, last_log_term })
            }
        ),
        (h(), any::<u64>(), any::<bool>()).prop_map(|(header, term, granted)| {
            Message::PreVoteResponse(PreVoteResponse { header, term, granted })
        }),
        (
            h(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            configuration_strategy(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(
                |(header, snapshot_version, term, last_log_index, last_log_term, configuration, ci, size)| {
                    Message::InstallSnapshotRequest(InstallSnapshotRequest {
                        header,
                        snapshot_version,
                        term,
                        last_log_index,
                        last_log_term,
                        configuration,
                        configuration_index: ci,
                        size,
                    })
                }
            ),
        (h(), any::<u64>(), any::<bool>()).prop_map(|(header, term, success)| {
            Message::InstallSnapshotResponse(InstallSnapshotResponse { header, term, success })
        }),
        (h(), any::<u64>())
            .prop_map(|(header, term)| Message::TimeoutNowRequest(TimeoutNowRequest { header, term })),
        (h(), any::<u64>())
            .prop_map(|(header, term)| Message::TimeoutNowResponse(TimeoutNowResponse { header, term })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips(message in message_strategy()) {
        let encoded = message_to_bytes(&message);
        prop_assert_eq!(decode_message(encoded).ok(), Some(message));
    }

    #[test]
    fn every_log_round_trips(log in log_strategy()) {
        let encoded = log_to_bytes(&log);
        prop_assert_eq!(encoded.len(), encoded_log_len(&log));
        prop_assert_eq!(decode_log(encoded).ok(), Some(log));
    }

    #[test]
    fn configurations_round_trip(configuration in configuration_strategy()) {
        let encoded = configuration_to_bytes(&configuration);
        prop_assert_eq!(decode_configuration(encoded).ok(), Some(configuration));
    }

    #[test]
    fn snapshot_metas_round_trip(
        id in name_strategy(),
        numbers in any::<(u64, u64, u64, u64, u32)>(),
        configuration in configuration_strategy(),
    ) {
        let meta = SnapshotMeta {
            id,
            index: numbers.0,
            term: numbers.1,
            configuration,
            configuration_index: numbers.2,
            size: numbers.3,
            version: numbers.4,
        };
        let mut buf = BytesMut::new();
        encode_snapshot_meta(&meta, &mut buf);
        prop_assert_eq!(decode_snapshot_meta(buf.freeze()).ok(), Some(meta));
    }

    #[test]
    fn checksummed_logs_round_trip_and_catch_flips(log in log_strategy(), at in any::<prop::sample::Index>(), bits in 1u8..) {
        let mut stored = encode_log_with_crc(&log);
        prop_assert_eq!(decode_log_with_crc(&stored).ok(), Some(log));
        let at = at.index(stored.len());
        stored[at] ^= bits;
        prop_assert!(decode_log_with_crc(&stored).is_err(), "a flipped byte at {} went unnoticed", at);
    }

    #[test]
    fn every_truncation_is_an_error(message in message_strategy(), cut in any::<prop::sample::Index>()) {
        let encoded = message_to_bytes(&message);
        let len = cut.index(encoded.len());
        prop_assert!(decode_message(encoded.slice(..len)).is_err());
    }

    #[test]
    fn every_truncated_log_is_an_error(log in log_strategy(), cut in any::<prop::sample::Index>()) {
        let encoded = log_to_bytes(&log);
        let len = cut.index(encoded.len());
        prop_assert!(decode_log(encoded.slice(..len)).is_err());
    }

    #[test]
    fn random_bytes_never_panic(input in vec(any::<u8>(), 0..512)) {
        let _ = decode_message(Bytes::from(input.clone()));
        let _ = decode_log(Bytes::from(input.clone()));
        let _ = decode_configuration(Bytes::from(input.clone()));
        let _ = decode_snapshot_meta(Bytes::from(input));
    }

    #[test]
    fn flipped_bytes_never_panic(message in message_strategy(), at in any::<prop::sample::Index>(), bits in 1u8..) {
        let mut encoded = message_to_bytes(&message).to_vec();
        let at = at.index(encoded.len());
        encoded[at] ^= bits;
        let _ = decode_message(Bytes::from(encoded));
    }

    #[test]
    fn trailing_bytes_are_refused(message in message_strategy(), extra in vec(any::<u8>(), 1..8)) {
        let mut encoded = message_to_bytes(&message).to_vec();
        encoded.extend_from_slice(&extra);
        prop_assert_eq!(
            decode_message(Bytes::from(encoded)),
            Err(DecodeError::TrailingBytes { count: extra.len() })
        );
    }
}

#[test]
fn a_huge_entry_count_is_refused_before_allocating() {
    let mut buf = BytesMut::new();
    buf.put_u8(FORMAT_VERSION);
    buf.put_u8(TAG_APPEND_REQ);
    put_header(&mut buf, &RpcHeader::default());
    for _ in 0..4 {
        buf.put_u64_le(1);
    }
    let header = buf.clone();
    buf.put_u32_le(u32::MAX);
    let err = decode_message(buf.freeze()).expect_err("count exceeds the cap");
    assert!(matches!(err, DecodeError::TooMany { field: "entries", max: ENTRIES_MAX, .. }), "{err:?}");
    // Under the cap but more than the input could hold: refused as well.
    let mut buf = header;
    buf.put_u32_le(ENTRIES_MAX as u32);
    let err = decode_message(buf.freeze()).expect_err("count exceeds the input");
    assert!(matches!(err, DecodeError::Truncated { field: "entries", .. }), "{err:?}");
}

#[test]
fn a_huge_byte_length_is_refused_before_allocating() {
    let mut buf = BytesMut::new();
    buf.put_u8(FORMAT_VERSION);
    buf.put_u64_le(1);
    buf.put_u64_le(1);
    buf.put_u8(1);
    buf.put_u32_le(u32::MAX);
    let err = decode_log(buf.freeze()).expect_err("length exceeds the input");
    assert!(matches!(err, DecodeError::Truncated { field: "log.data", .. }), "{err:?}");
}

#[test]
fn another_format_version_is_refused() {
    let mut encoded = message_to_bytes(&Message::TimeoutNowRequest(TimeoutNowRequest::default())).to_vec();
    encoded[0] = 9;
    assert_eq!(
        decode_message(Bytes::from(encoded)),
        Err(DecodeError::UnsupportedVersion { found: 9, expected: FORMAT_VERSION })
    );
}

#[test]
fn the_layout_is_the_documented_one() {
    // docs/codec.md gives this exact encoding of a TimeoutNow request.
    let message = Message::TimeoutNowRequest(TimeoutNowRequest {
        header: RpcHeader { protocol_version: 1, id: ServerId::new("a"), addr: ServerAddress::new("b") },
        term: 2,
    });
    let expected: &[u8] = &[
        1, 9, // version, tag
        1, 0, 0, 0, // protocol_version
        1, 0, 0, 0, b'a', // id
        1, 0, 0, 0, b'b', // addr
        2, 0, 0, 0, 0, 0, 0, 0, // term
    ];
    assert_eq!(&message_to_bytes(&message)[..], expected);
}

#[test]
fn decoded_payloads_share_the_input_buffer() {
    let log = Log::command(3, 1, vec![7u8; 1024]);
    let encoded = log_to_bytes(&log);
    let decoded = decode_log(encoded.clone()).expect("valid");
    let range = encoded.as_ptr_range();
    assert!(range.contains(&decoded.data.as_ptr()), "data is a slice of the input, not a copy");
}
