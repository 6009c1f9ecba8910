//! Olm and Megolm throughput on 1 KiB messages, over established sessions.
//!
//! `cargo bench -p wa-e2e --bench e2e`

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a benchmark that fails should stop loudly"
)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use wa_binary::Jid;
use wa_e2e::{GroupKey, Machine};

const MESSAGE: [u8; 1024] = [0x5a; 1024];

fn jid(text: &str) -> Jid {
    text.parse().unwrap()
}

/// `from` and `to` with a confirmed session (one message each way).
fn establish(from: &mut Machine, to: &mut Machine) {
    let to_jid = to.own_device().clone();
    let otk = to.generate_one_time_keys(1)[0].key;
    to.mark_keys_as_published();
    let ct = from
        .encrypt(&to_jid, &to.identity_keys(), Some(&otk), b"hi")
        .unwrap();
    to.decrypt(from.own_device(), &from.identity_keys().curve25519, &ct)
        .unwrap();
    let reply = to
        .encrypt(from.own_device(), &from.identity_keys(), None, b"hi")
        .unwrap();
    from.decrypt(&to_jid, &to.identity_keys().curve25519, &reply)
        .unwrap();
}

fn olm(c: &mut Criterion) {
    let mut alice = Machine::new(jid("15551234567@c.us"));
    let alice_curve = alice.identity_keys().curve25519;
    // Encrypting without delivering moves the sender far ahead of the receiver, so the
    // encryption benchmarks use their own six devices and the decryption ones theirs.
    let make = |base: u8| -> Vec<Machine> {
        (0..6u8)
            .map(|d| Machine::new(jid(&format!("447700900123:{}@c.us", base + d))))
            .collect()
    };
    let mut sinks = make(1);
    let mut devices = make(11);
    for d in sinks.iter_mut().chain(devices.iter_mut()) {
        establish(&mut alice, d);
    }
    let targets_of = |ms: &[Machine]| -> Vec<_> {
        ms.iter()
            .map(|d| (d.own_device().clone(), d.identity_keys()))
            .collect()
    };
    let sink_targets = targets_of(&sinks);
    let targets = targets_of(&devices);
    let alice_jid = alice.own_device().clone();

    let mut group = c.benchmark_group("olm");
    group.throughput(Throughput::Bytes(MESSAGE.len() as u64));
    group.bench_function("encrypt 1 KiB, 1 device", |b| {
        let (device, keys) = &sink_targets[0];
        b.iter(|| {
            black_box(
                alice
                    .encrypt(device, keys, None, black_box(&MESSAGE))
                    .unwrap(),
            )
        })
    });
    group.bench_function("decrypt 1 KiB, 1 device", |b| {
        let (device, keys) = targets[0].clone();
        let receiver = &mut devices[0];
        b.iter_batched(
            || alice.encrypt(&device, &keys, None, &MESSAGE).unwrap(),
            |ct| black_box(receiver.decrypt(&alice_jid, &alice_curve, &ct).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Bytes(6 * MESSAGE.len() as u64));
    group.bench_function("encrypt 1 KiB, 6 devices", |b| {
        b.iter(|| {
            for (device, keys) in &sink_targets {
                black_box(
                    alice
                        .encrypt(device, keys, None, black_box(&MESSAGE))
                        .unwrap(),
                );
            }
        })
    });
    group.bench_function("decrypt 1 KiB, 6 devices", |b| {
        b.iter_batched(
            || {
                targets
                    .iter()
                    .map(|(device, keys)| alice.encrypt(device, keys, None, &MESSAGE).unwrap())
                    .collect::<Vec<_>>()
            },
            |cts| {
                for (d, ct) in devices.iter_mut().zip(&cts) {
                    black_box(d.decrypt(&alice_jid, &alice_curve, ct).unwrap());
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn megolm(c: &mut Criterion) {
    let room = jid("15551234567-1600000000@g.us");
    let mut alice = Machine::new(jid("15551234567@c.us"));
    let mut bob = Machine::new(jid("447700900123:3@c.us"));
    let alice_jid = alice.own_device().clone();
    alice.group_encrypt(&room, b"start");
    let key: GroupKey = alice.group_key(&room).unwrap();
    bob.add_group_key(&alice_jid, &key).unwrap();

    let mut group = c.benchmark_group("megolm");
    group.throughput(Throughput::Bytes(MESSAGE.len() as u64));
    group.bench_function("encrypt 1 KiB", |b| {
        b.iter(|| black_box(alice.group_encrypt(&room, black_box(&MESSAGE))))
    });
    group.bench_function("decrypt 1 KiB", |b| {
        b.iter_batched(
            || alice.group_encrypt(&room, &MESSAGE),
            |ct| black_box(bob.group_decrypt(&room, &alice_jid, &ct).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, olm, megolm);
criterion_main!(benches);
