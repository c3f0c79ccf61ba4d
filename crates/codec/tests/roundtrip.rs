//! Property tests of the codec as a whole: every packet a strategy can build survives
//! encode -> decode unchanged at its protocol level; decoding arbitrary or corrupted bytes
//! never panics; and a stream decodes to the same packets however it is split into reads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod strategies;

use bytes::BytesMut;
use halyard_codec::{DecodeOptions, Packet, ProtocolVersion, decode};
use proptest::prelude::*;
use strategies::{any_version, packet};

fn encode(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    p.encode(v, &mut buf)
        .expect("strategy built an encodable packet");
    buf
}

/// Decodes everything in `buf`, stopping at the first error or when more bytes are needed.
fn decode_all(buf: &mut BytesMut, v: ProtocolVersion) -> Vec<Packet> {
    let opts = DecodeOptions::new(v);
    let mut out = Vec::new();
    while let Ok(Some(p)) = decode(buf, &opts) {
        out.push(p);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_inverts_encode((v, p) in any_version().prop_flat_map(|v| (Just(v), packet(v)))) {
        let mut buf = encode(&p, v);
        prop_assert_eq!(p.encoded_len(v).unwrap(), buf.len());
        let decoded = decode(&mut buf, &DecodeOptions::new(v)).unwrap();
        prop_assert_eq!(decoded, Some(p));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for v in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = decode_all(&mut buf, v);
        }
    }

    /// Corrupting one byte of a valid packet either fails cleanly or yields a packet that
    /// itself round-trips.
    #[test]
    fn corrupted_packets_fail_cleanly_or_round_trip(
        (v, p) in any_version().prop_flat_map(|v| (Just(v), packet(v))),
        index in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut bytes = encode(&p, v).to_vec();
        let i = index.index(bytes.len());
        bytes[i] = value;
        let mut buf = BytesMut::from(&bytes[..]);
        if let Ok(Some(q)) = decode(&mut buf, &DecodeOptions::new(v)) {
            let mut again = encode(&q, v);
            prop_assert_eq!(decode(&mut again, &DecodeOptions::new(v)).unwrap(), Some(q));
        }
    }

    #[test]
    fn any_split_of_a_stream_decodes_the_same_packets(
        (v, packets) in any_version().prop_flat_map(|v| {
            (Just(v), proptest::collection::vec(packet(v), 1..8))
        }),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let mut stream = BytesMut::new();
        for p in &packets {
            p.encode(v, &mut stream).unwrap();
        }
        let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cut_points.push(stream.len());
        cut_points.sort_unstable();

        let opts = DecodeOptions::new(v);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut start = 0;
        for end in cut_points {
            buf.extend_from_slice(&stream[start..end]);
            start = end;
            while let Some(p) = decode(&mut buf, &opts).unwrap() {
                decoded.push(p);
            }
        }
        prop_assert_eq!(decoded, packets);
        prop_assert!(buf.is_empty());
    }
}
