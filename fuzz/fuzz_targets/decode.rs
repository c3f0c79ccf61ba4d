//! Decoding arbitrary bytes, split into arbitrary reads, at every protocol level and with a
//! small maximum packet size: the decoder must never panic, must never consume bytes while
//! asking for more, and must decode the same packets however the stream is split.
#![no_main]

use bytes::BytesMut;
use halyard_codec::{DecodeOptions, Packet, ProtocolVersion, decode};
use libfuzzer_sys::fuzz_target;

fn version(b: u8) -> ProtocolVersion {
    match b % 3 {
        0 => ProtocolVersion::V3_1,
        1 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    }
}

/// Decodes `data` fed `chunk` bytes at a time; returns the packets and whether it ended on an
/// error.
fn run(data: &[u8], opts: &DecodeOptions, chunk: usize) -> (Vec<Packet>, bool) {
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match decode(&mut buf, opts) {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    break;
                }
                Err(_) => return (packets, true),
            }
        }
    }
    (packets, false)
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, data)) = input.split_first() else {
        return;
    };
    let max = if control & 0x80 != 0 { 64 } else { u32::MAX };
    let opts = DecodeOptions::new(version(control)).with_max_packet_size(max);
    let whole = run(data, &opts, data.len());
    let split = run(data, &opts, usize::from(control & 0x0F) + 1);
    assert_eq!(whole, split, "split reads decoded differently");
});
