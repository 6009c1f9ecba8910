//! `wa node`: binary nodes to JSON and back, and a throughput bench.
//!
//! The JSON form is the one of `testdata/nodes.json`:
//! `[tag, {attrs in wire order} | null, null | "string" | {"hex": "..."} | [children]]`.

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use wa_binary::{Encoder, Node, Policy};

use crate::input;

/// `wa node` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Decode one binary node (raw bytes, or hex text with --hex) and print its JSON form.
    Decode(DecodeArgs),
    /// Encode the JSON form of one node into bytes (raw, or hex with --hex).
    Encode(EncodeArgs),
    /// Decode (into a reused arena) and re-encode files in-process and print throughput, one
    /// line for decode and one for encode:
    /// `decode mb_per_s=… nodes_per_s=… bytes=… nodes=… iterations=… seconds=…`.
    /// Under `valgrind --tool=callgrind`, the instruction count of N iterations minus that of
    /// 0 iterations is the exact cost of N decodes and encodes.
    Bench(BenchArgs),
}

/// Arguments of `wa node decode`.
#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The input is hex text (white space ignored), not raw bytes.
    #[arg(long)]
    hex: bool,
    /// The input file; `-` or nothing for standard input.
    file: Option<PathBuf>,
}

/// Arguments of `wa node encode`.
#[derive(Debug, Args)]
pub(crate) struct EncodeArgs {
    /// Whose writer to reproduce.
    #[arg(long, value_enum, default_value_t = PolicyArg::Client)]
    policy: PolicyArg,
    /// Write hex text instead of raw bytes.
    #[arg(long)]
    hex: bool,
    /// The JSON file; `-` or nothing for standard input.
    file: Option<PathBuf>,
}

/// Arguments of `wa node bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// How many times to decode and encode every file (0 only loads them).
    #[arg(long, short = 'n', default_value_t = 1000)]
    iterations: u64,
    /// Whose writer to use for the encode half.
    #[arg(long, value_enum, default_value_t = PolicyArg::Server)]
    policy: PolicyArg,
    /// Files holding one binary node each.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// A writer policy on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PolicyArg {
    /// The official web client's writer.
    Client,
    /// The server's writer.
    Server,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::Client => Policy::Client,
            PolicyArg::Server => Policy::Server,
        }
    }
}

pub(crate) fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Decode(args) => decode(args),
        Command::Encode(args) => encode(args),
        Command::Bench(args) => bench(args),
    }
}

fn decode(args: DecodeArgs) -> anyhow::Result<()> {
    let bytes = input::read_bytes(args.file.as_deref(), args.hex)?;
    let node = wa_binary::decode(&bytes).context("invalid node")?;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &node)?;
    writeln!(stdout)?;
    Ok(())
}

fn encode(args: EncodeArgs) -> anyhow::Result<()> {
    let text = input::read_all(args.file.as_deref())?;
    let node: Node<'static> = serde_json::from_slice(&text).context("invalid node JSON")?;
    let bytes = wa_binary::encode(&node, args.policy.into()).context("cannot encode node")?;
    let mut stdout = std::io::stdout().lock();
    if args.hex {
        writeln!(stdout, "{}", hex::encode(bytes))?;
    } else {
        stdout.write_all(&bytes)?;
    }
    stdout.flush()?;
    Ok(())
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        inputs.push(bytes);
    }
    // Fixed work, the same for every iteration count: one decode to count nodes and to have
    // trees to encode.
    let mut trees = Vec::with_capacity(inputs.len());
    for (path, bytes) in args.files.iter().zip(&inputs) {
        let node =
            wa_binary::decode(bytes).with_context(|| format!("decoding {}", path.display()))?;
        trees.push(node);
    }
    let bytes_per_iter: usize = inputs.iter().map(Vec::len).sum();
    let nodes_per_iter: usize = trees.iter().map(Node::count).sum();

    // Decoding into an arena that is reset after each frame: what a throughput-minded caller
    // does, and no allocation per node.
    let decoder = wa_binary::Decoder::new();
    let mut arena = wa_binary::Arena::new();
    let start = Instant::now();
    for _ in 0..args.iterations {
        for bytes in &inputs {
            let node = decoder.decode_in(black_box(bytes), &arena);
            black_box(&node);
            drop(node);
            arena.reset();
        }
    }
    let decode_secs = start.elapsed().as_secs_f64();

    let encoder = Encoder::new(args.policy.into());
    let mut out = Vec::with_capacity(bytes_per_iter);
    let start = Instant::now();
    for _ in 0..args.iterations {
        for tree in &trees {
            out.clear();
            encoder
                .encode_into(black_box(tree), &mut out)
                .context("encoding")?;
            black_box(&out);
        }
    }
    let encode_secs = start.elapsed().as_secs_f64();

    let mut stdout = std::io::stdout().lock();
    for (name, secs) in [("decode", decode_secs), ("encode", encode_secs)] {
        let total_bytes = bytes_per_iter as f64 * args.iterations as f64;
        let total_nodes = nodes_per_iter as f64 * args.iterations as f64;
        let (mb_per_s, nodes_per_s) = if secs > 0.0 {
            (total_bytes / secs / 1e6, total_nodes / secs)
        } else {
            (0.0, 0.0)
        };
        writeln!(
            stdout,
            "{name} mb_per_s={mb_per_s:.1} nodes_per_s={nodes_per_s:.0} bytes={bytes_per_iter} \
             nodes={nodes_per_iter} iterations={} seconds={secs:.6}",
            args.iterations
        )?;
    }
    Ok(())
}
