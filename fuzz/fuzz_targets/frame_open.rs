#![no_main]
//! `wa_crypto::SessionKeys::open` with fixed keys on any bytes, the frame parser in front of it,
//! and the node decoder behind it:
//! 1. the input as a sealed payload and as a whole server/client binary frame (real path: the
//!    MAC check stops nearly everything, and must never panic);
//! 2. the input through the fuzzing-only path that skips the MAC, so the CBC decryptor, the
//!    unpadding and the node decoder behind them run on every input;
//! 3. the input as a plaintext node: sealed, opened (must give it back) and decoded, so the node
//!    decoder sees fuzzer-shaped input through the full crypto path.

use libfuzzer_sys::fuzz_target;
use wa_crypto::SessionKeys;
use wa_frame::{Direction, Frame, Limits, WsMessage};

const ENC_KEY: [u8; 32] = [0xa0; 32];
const MAC_KEY: [u8; 32] = [0xb0; 32];
const IV: [u8; 16] = [0x10; 16];

fuzz_target!(|data: &[u8]| {
    let keys = SessionKeys::new(&ENC_KEY, &MAC_KEY);

    if let Ok(plain) = keys.open(data) {
        let _ = wa_binary::decode(&plain);
    }
    for direction in [Direction::ClientToServer, Direction::ServerToClient] {
        if let Ok(Frame::Binary { payload, .. }) =
            Frame::parse(WsMessage::Binary(data), direction, &Limits::default())
        {
            if let Ok(plain) = keys.open(&payload) {
                let _ = wa_binary::decode(&plain);
            }
        }
    }

    if let Ok(plain) = keys.open_unauthenticated_for_fuzzing(data) {
        if let Ok(node) = wa_binary::decode(&plain) {
            let _ = wa_binary::encode(&node, wa_binary::Policy::Server);
        }
    }

    let sealed = keys.seal(data, &IV);
    assert_eq!(sealed.len(), wa_crypto::sealed_len(data.len()));
    let opened = keys.open(&sealed).expect("a sealed frame opens");
    assert_eq!(opened, data);
    if let Ok(node) = wa_binary::decode(&opened) {
        let _ = wa_binary::encode(&node, wa_binary::Policy::Client);
    }
});
