//! `wa`: the command-line face of wa-rs.
//!
//! Exit status: 0 on success (and when the reader of standard output goes away, as in
//! `wa listen | head -1`), 1 when the input or an operation failed (one line on stderr says
//! what and where), 2 for a usage error (clap prints the help).

mod client;
mod common;
mod demo;
mod frame;
mod input;
mod ipc;
mod keys;
mod media;
mod node;
mod phone;
mod server;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator, for `wa server` as for `wa-server`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Link, chat, decode and decrypt with the legacy WhatsApp Web protocol.
#[derive(Debug, Parser)]
#[command(
    name = "wa",
    version,
    about,
    long_about = None,
    after_help = "Exit status: 0 on success; 1 when the input or an operation failed (one line on \
                  stderr says what and where); 2 for a usage error.\n\
                  Try `wa demo` to see the whole system run on this machine."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system on this machine: a server, two linked accounts, messages with
    /// ticks, an image encrypted end to end, and a group.
    Demo(demo::DemoArgs),
    /// Decode, encode and benchmark binary nodes ("binary XML").
    #[command(subcommand)]
    Node(node::Command),
    /// Derive the session keys of a login.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Decode and encode WebSocket frames.
    #[command(subcommand)]
    Frame(frame::Command),
    /// Encrypt and decrypt media files.
    #[command(subcommand)]
    Media(media::Command),
    /// Link this computer to an account by QR code (or restore the saved session).
    Login(client::LoginArgs),
    /// Print incoming messages, ticks, presence and history imports until Ctrl-C; meanwhile
    /// other `wa` commands on the same store go through it.
    Listen(client::ListenArgs),
    /// Send a text message.
    Send(client::SendArgs),
    /// Send a file as an image, video, audio or document message (encrypted end to end).
    SendMedia(client::SendMediaArgs),
    /// Decrypt the media of a received message (by its id) into a file.
    Download(client::DownloadArgs),
    /// List the chats in the local store.
    Chats(client::ChatsArgs),
    /// Print the last messages of a chat from the local store.
    History(client::HistoryArgs),
    /// Print the security code with a contact (compare it with theirs).
    Verify(client::VerifyArgs),
    /// Log out: the server unlinks this device and the store forgets the link.
    Logout(client::LogoutArgs),
    /// Run the reference server (the `wa-server` binary's options).
    #[command(after_help = server::AFTER_HELP)]
    Server(Box<server::Args>),
    /// Act as a phone: register a number, approve QR codes, send and receive messages.
    #[command(subcommand)]
    Phone(phone::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Node(cmd) => node::run(cmd),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Frame(cmd) => frame::run(cmd),
        Command::Media(cmd) => media::run(cmd),
        Command::Login(args) => client::login(args),
        Command::Listen(args) => client::listen(args),
        Command::Send(args) => client::send(args),
        Command::SendMedia(args) => client::send_media(args),
        Command::Download(args) => client::download(args),
        Command::Chats(args) => client::chats(args),
        Command::History(args) => client::history(args),
        Command::Verify(args) => client::verify(args),
        Command::Logout(args) => client::logout(args),
        Command::Server(args) => server::run(*args),
        Command::Phone(cmd) => phone::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `wa listen | head -1`: the reader went away, which is how such pipes end.
        Err(err) if common::is_output_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line.
            crate::common::note!("wa: {err:#}");
            ExitCode::FAILURE
        }
    }
}
