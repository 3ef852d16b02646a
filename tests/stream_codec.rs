//! The stream codecs against etcd 3.4.23's own vectors
//! (`tests/data/streams/vectors.json`, made by etcd's `messageEncoder`,
//! `messageDecoder`, `msgAppV2Encoder` and `msgAppV2Decoder`; never edited).
//!
//! Every sequence is encoded byte for byte from a fresh encoder and decoded
//! back from a fresh decoder, whatever the chunking; every decode case ends
//! as etcd's did, except that where etcd panics we return an error.

mod support;

use bytes::{Bytes, BytesMut};
use rafthttp_pipeline::raftpb::Message;
use rafthttp_pipeline::{
    StreamDecodeError, StreamDecoder, StreamEncoder, StreamType, READ_BYTES_LIMIT,
};
use serde_json::Value;
use support::messages::{hex, unhex};
use support::raftpb_json::{field, message_from_json, str_of, u64_of};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/streams/vectors.json"
);

/// Chunk sizes every stream is fed in: byte by byte, odd sizes that split
/// every field, and whole.
const CHUNKINGS: &[usize] = &[1, 3, 7, 8, 9, 17, usize::MAX];

/// Decode cases whose etcd outcome we change on purpose. etcd panics on all
/// but the first (its issue #12850); the first is gogoproto's own text for
/// a malformed body, where ours is prost's. Columns: case name, what we
/// return instead.
const DELIBERATE: &[(&str, Accepts)] = &[
    ("message_garbage_body", |e| {
        matches!(e, StreamDecodeError::Message(_))
    }),
    ("msgappv2_app_garbage", |e| {
        matches!(e, StreamDecodeError::Message(_))
    }),
    ("msgappv2_entry_garbage", |e| {
        matches!(e, StreamDecodeError::Entry(_))
    }),
    ("msgappv2_entry_count_all_ones", |e| {
        matches!(e, StreamDecodeError::LimitExceeded { .. })
    }),
    ("msgappv2_app_size_2pow63", |e| {
        matches!(e, StreamDecodeError::LimitExceeded { .. })
    }),
];

/// Whether an error is the one we return instead of etcd's outcome.
type Accepts = fn(&StreamDecodeError) -> bool;

fn vectors() -> Value {
    let text = std::fs::read_to_string(VECTORS).expect("read vectors.json");
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn items<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    field(v, key).as_array().expect("an array")
}

fn stream_type(v: &Value) -> StreamType {
    match str_of(v, "codec") {
        "message" => StreamType::Message,
        "msgappv2" => StreamType::MsgAppV2,
        other => panic!("unknown codec {other}"),
    }
}

fn ids(v: &Value) -> (u64, u64) {
    let id = |key| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    (id("decoder_local_id"), id("decoder_remote_id"))
}

fn state(v: &Value) -> (u64, u64) {
    (u64_of(v, "term"), u64_of(v, "index"))
}

/// What a decoder made of some bytes: the messages, the decoder's state
/// after each, and the error that ended it (the body's end if none).
struct Decoded {
    messages: Vec<Message>,
    states: Vec<Option<(u64, u64)>>,
    end: StreamDecodeError,
}

fn decode(mut decoder: StreamDecoder, bytes: &[u8], chunk: usize) -> Decoded {
    let mut out = Decoded {
        messages: Vec::new(),
        states: Vec::new(),
        end: StreamDecodeError::Eof,
    };
    for piece in bytes.chunks(chunk.min(bytes.len()).max(1)) {
        decoder.push(Bytes::copy_from_slice(piece));
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => {
                    out.messages.push(m);
                    out.states.push(decoder.app_state());
                }
                Ok(None) => break,
                Err(e) => {
                    out.end = e;
                    return out;
                }
            }
        }
    }
    out.end = decoder.ended();
    out
}

#[test]
fn sequences_encode_byte_for_byte() {
    let v = vectors();
    for seq in items(&v, "sequences") {
        let name = str_of(seq, "name");
        let mut encoder = StreamEncoder::new(stream_type(seq));
        let mut stream = BytesMut::new();
        for (i, step) in items(seq, "steps").iter().enumerate() {
            let mut frame = BytesMut::new();
            encoder.encode(&message_from_json(field(step, "message")), &mut frame);
            assert_eq!(hex(&frame), str_of(step, "frame_hex"), "{name} step {i}");
            if let Some(want) = step.get("encoder_state_after") {
                assert_eq!(encoder.app_state(), Some(state(want)), "{name} step {i}");
            }
            stream.extend_from_slice(&frame);
        }
        assert_eq!(hex(&stream), str_of(seq, "stream_hex"), "{name}");
    }
}

#[test]
fn sequences_decode_to_etcds_messages_whatever_the_chunking() {
    let v = vectors();
    for seq in items(&v, "sequences") {
        let name = str_of(seq, "name");
        let (local, remote) = ids(seq);
        let steps = items(seq, "steps");
        let want: Vec<Message> = steps
            .iter()
            .map(|s| message_from_json(field(s, "decoded")))
            .collect();
        let bytes = unhex(str_of(seq, "stream_hex"));
        for &chunk in CHUNKINGS {
            let decoder = StreamDecoder::new(stream_type(seq), local, remote, READ_BYTES_LIMIT);
            let got = decode(decoder, &bytes, chunk);
            assert_eq!(got.messages, want, "{name}, chunks of {chunk}");
            assert_eq!(got.end, StreamDecodeError::Eof, "{name}, chunks of {chunk}");
            for (i, step) in steps.iter().enumerate() {
                if let Some(s) = step.get("decoder_state_after") {
                    assert_eq!(got.states[i], Some(state(s)), "{name} step {i}");
                }
            }
        }
    }
}

/// etcd's TestMessage and the `*_readBytesLimit` cases lower the limit to
/// 1000; the rest use the real one.
fn limit_of(case: &Value) -> u64 {
    let name = str_of(case, "name");
    if name.contains("at_readBytesLimit") || name.contains("TestMessage") {
        1000
    } else {
        READ_BYTES_LIMIT
    }
}

#[test]
fn decode_cases_end_as_etcds_or_as_a_clean_error_where_etcd_panics() {
    let v = vectors();
    let cases = items(&v, "decode_cases");
    let mut deliberate_seen = 0;
    for case in cases {
        let name = str_of(case, "name");
        let (local, remote) = ids(case);
        let bytes = unhex(str_of(case, "input_hex"));
        let want: Vec<Message> = items(case, "decoded")
            .iter()
            .map(message_from_json)
            .collect();
        for &chunk in CHUNKINGS {
            let decoder = StreamDecoder::new(stream_type(case), local, remote, limit_of(case));
            let got = decode(decoder, &bytes, chunk);
            assert_eq!(got.messages, want, "{name}, chunks of {chunk}");
            let deliberate = DELIBERATE.iter().find(|(n, _)| *n == name);
            match (str_of(case, "outcome"), deliberate) {
                (_, Some((_, accepts))) => {
                    assert!(accepts(&got.end), "{name}: got {:?}", got.end)
                }
                ("ok", None) => assert_eq!(got.end, StreamDecodeError::Eof, "{name}"),
                ("error", None) => {
                    assert_eq!(got.end.to_string(), str_of(case, "error"), "{name}")
                }
                (outcome, None) => panic!("{name}: etcd's {outcome} has no answer here"),
            }
        }
        deliberate_seen += usize::from(DELIBERATE.iter().any(|(n, _)| *n == name));
    }
    assert_eq!(
        deliberate_seen,
        DELIBERATE.len(),
        "every deliberate case exists"
    );
    assert_eq!(cases.len(), 19);
}

/// Inputs etcd's decoders crash on, and a few more: each is a clean error
/// or a wait for more bytes, never a panic or an allocation of the
/// announced size.
#[test]
fn hostile_inputs_are_errors_never_panics() {
    let mut inputs: Vec<Vec<u8>> = vec![
        [&[2u8][..], &u64::MAX.to_be_bytes()].concat(),
        [&[1u8][..], &1u64.to_be_bytes(), &u64::MAX.to_be_bytes()].concat(),
        [&[1u8][..], &(1u64 << 40).to_be_bytes()].concat(),
        (0..=255u8).collect(),
        vec![0xff; 64],
    ];
    // Every single-byte change of a valid msgappv2 stream.
    let v = vectors();
    let seq = &items(&v, "sequences")[1];
    let valid = unhex(str_of(seq, "stream_hex"));
    for i in 0..valid.len() {
        let mut bytes = valid.clone();
        bytes[i] ^= 0xa5;
        inputs.push(bytes);
    }
    for bytes in &inputs {
        for kind in StreamType::ALL {
            let got = decode(StreamDecoder::new(kind, 2, 1, READ_BYTES_LIMIT), bytes, 5);
            assert!(got.messages.len() <= bytes.len());
        }
    }
}
