//! The `wa-server` binary run as a process of its own, for the measuring examples
//! (`idle_rss`, `hostile`, `load`: the server's CPU time and RSS are then its own): its
//! `listening` line read, and the registration codes it prints on standard error.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "shared by the examples; each uses a part of it"
)]

use std::ffi::OsStr;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// A running `wa-server` process.
pub struct Spawned {
    pub child: Child,
    /// Where its WebSockets, media and status pages listen.
    pub addr: SocketAddr,
    pub ws_url: String,
    pub phone_url: String,
    /// Its `/status` listener (the `--status-listen` one when given).
    pub status: SocketAddr,
    /// `(number, code)` from the lines it prints on standard error.
    pub codes: mpsc::Receiver<(String, String)>,
}

/// Starts `bin` with `args` and `RUST_LOG=log`, and returns once it listens. Its other lines
/// of standard error are copied to ours (prefixed `server: `) when `echo`.
pub fn spawn<I, S>(bin: &Path, args: I, log: &str, echo: bool) -> Spawned
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(bin)
        .args(args)
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, codes) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some((number, code)) = line
                .strip_prefix("verification code for +")
                .and_then(|rest| rest.split_once(": "))
            {
                let _ = tx.send((number.to_owned(), code.to_owned()));
            } else if echo {
                eprintln!("server: {line}");
            }
        }
    });
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // `listening <ws url> <phone url> <media url> <status url> <node id>`
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"listening"), "{line}");
    let ws_url = words[1].to_owned();
    Spawned {
        child,
        addr: ws_url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .parse()
            .unwrap(),
        ws_url,
        phone_url: words[2].to_owned(),
        status: words[4]
            .trim_start_matches("http://")
            .trim_end_matches("/status")
            .parse()
            .unwrap(),
        codes,
    }
}

impl Spawned {
    /// SIGKILL, and the exit collected.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A run that panics (a refused relay in a load run) leaves no server behind.
impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}
