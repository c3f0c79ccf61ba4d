//! Every packet the decoder accepts must encode, and decode back to the same packet; its
//! encoding must decode to itself again byte for byte (encoding is canonical).
#![no_main]

use bytes::BytesMut;
use halyard_codec::{DecodeOptions, ProtocolVersion, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&control, data)) = input.split_first() else {
        return;
    };
    let v = match control % 3 {
        0 => ProtocolVersion::V3_1,
        1 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    };
    let opts = DecodeOptions::new(v);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decode(&mut buf, &opts) {
        let mut encoded = BytesMut::new();
        packet
            .encode(v, &mut encoded)
            .expect("a decoded packet must encode");
        assert_eq!(packet.encoded_len(v).ok(), Some(encoded.len()));
        let first = encoded.clone();
        let again = decode(&mut encoded, &opts)
            .expect("an encoded packet must decode")
            .expect("an encoded packet is complete");
        assert_eq!(again, packet);
        assert!(encoded.is_empty());
        let mut second = BytesMut::new();
        again.encode(v, &mut second).expect("encode");
        assert_eq!(first, second, "encoding is not canonical");
    }
});
