//! The phone socket's busiest frames, as a server sees them: reading a relay and a receipt,
//! writing a message push, an ack and a relay's answer.
//!
//! `cargo bench -p wa-wire --bench phone`

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "a benchmark of frames it builds itself")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wa_wire::msg::{
    AckNotice, ContentKind, Incoming, OlmPayload, OlmType, Receipt, ReceiptKind, Relay, RelayTarget,
};
use wa_wire::phone::{PhoneEvent, PhoneRequest, Stored};

/// 300 bytes of ciphertext, as `examples/load` in wa-server sends.
fn olm() -> OlmPayload {
    OlmPayload {
        kind: OlmType::Normal,
        body: vec![0x42; 300],
    }
}

fn frames(c: &mut Criterion) {
    let alice = "15554000001@c.us".parse().unwrap();
    let bob = "15554000002@c.us".parse().unwrap();
    let bobs_phone = "15554000002:0@c.us".parse().unwrap();
    let relay = PhoneRequest::Relay {
        id: 1_001,
        relay: Relay {
            to: bob,
            id: "L1-1000".to_owned(),
            kind: ContentKind::Text,
            group: None,
            targets: vec![RelayTarget {
                device: bobs_phone,
                olm: Some(olm()),
            }],
        },
    }
    .to_text();
    let receipt = PhoneRequest::Receipt {
        id: 1_002,
        receipt: Receipt {
            kind: ReceiptKind::Delivered,
            chat: "15554000001@c.us".parse().unwrap(),
            id: "L0-1000".to_owned(),
            participant: None,
        },
    }
    .to_text();
    let push = PhoneEvent::Message {
        message: Incoming {
            from: "15554000001:0@c.us".parse().unwrap(),
            chat: alice,
            id: "L0-1000".to_owned(),
            t: 1_764_460_800,
            kind: ContentKind::Text,
            group: None,
            olm: Some(olm()),
        },
    };
    let ack = PhoneEvent::Ack {
        ack: AckNotice {
            id: "L0-1000".to_owned(),
            level: 2,
            sender: "15554000001@c.us".parse().unwrap(),
            chat: "15554000002@c.us".parse().unwrap(),
            participant: None,
            t: 1_764_460_800,
        },
    };
    let mut g = c.benchmark_group("phone");
    g.bench_function("read relay", |b| {
        b.iter(|| PhoneRequest::from_text(black_box(&relay)).unwrap())
    });
    g.bench_function("read receipt", |b| {
        b.iter(|| PhoneRequest::from_text(black_box(&receipt)).unwrap())
    });
    g.bench_function("write message push", |b| {
        b.iter(|| black_box(&push).to_text())
    });
    g.bench_function("write ack event", |b| b.iter(|| black_box(&ack).to_text()));
    g.bench_function("write stored answer", |b| {
        b.iter(|| PhoneEvent::result_text(black_box(1_001), &Stored { t: 1_764_460_800 }))
    });
    g.bench_function("write stored answer through a value", |b| {
        b.iter(|| PhoneEvent::result(black_box(1_001), &Stored { t: 1_764_460_800 }).to_text())
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
