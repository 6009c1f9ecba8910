//! Decodes binary node files and re-encodes them, `N` times each, reporting whether the bytes
//! came back identical: `cargo run --release -p wa-binary --example roundtrip -- N FILE...`.

use wa_binary::{Encoder, Policy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args.next().ok_or("usage: roundtrip N FILE...")?.parse()?;
    let files: Vec<Vec<u8>> = args.map(std::fs::read).collect::<Result<_, _>>()?;
    let encoder = Encoder::new(Policy::Server);
    let decoder = wa_binary::Decoder::new();
    let mut arena = wa_binary::Arena::new();
    let mut out = Vec::new();
    let mut identical = 0;
    for _ in 0..iterations {
        for bytes in &files {
            let node = decoder.decode_in(bytes, &arena)?;
            out.clear();
            encoder.encode_into(&node, &mut out)?;
            identical += u64::from(out == *bytes);
            drop(node);
            arena.reset();
        }
    }
    println!(
        "{identical} of {} round trips identical",
        iterations * files.len() as u64
    );
    Ok(())
}
