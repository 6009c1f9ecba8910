//! Test support: `wa` as a process. A `wa server` on a free loopback port in a temporary
//! directory (its `listening ...` line read from standard output, the registration codes from
//! standard error), phones registered with `wa phone register`, and bounded waits for the
//! lines processes print (no sleeps).

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test support: a panic is a failed test; each test binary uses a part of it"
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `wa` binary.
pub const WA: &str = env!("CARGO_BIN_EXE_wa");

/// The longest a test waits for one thing.
pub const WAIT: Duration = Duration::from_secs(30);

/// A child process (a thread waits for its exit), killed when dropped.
pub struct Running {
    pub pid: u32,
    exit: mpsc::Receiver<ExitStatus>,
    status: Option<ExitStatus>,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.status.is_none() && self.exit.try_recv().is_err() {
            signal(self.pid, "KILL");
            let _ = self.exit.recv_timeout(WAIT);
        }
    }
}

/// Sends a signal to a process.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

impl Running {
    /// Starts `cmd`.
    pub fn spawn(cmd: &mut Command) -> Running {
        let mut child = cmd.spawn().unwrap();
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let pid = child.id();
        let (tx, exit) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(status);
            }
        });
        Running {
            pid,
            exit,
            status: None,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Waits (at most `limit`) for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let status = self
            .exit
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("process {} did not exit in time", self.pid));
        self.status = Some(status);
        status
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        signal(self.pid, "TERM");
    }
}

/// The lines a stream prints, as they come (a thread reads them).
pub fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    closing_lines(stream).0
}

/// [`lines`], and a signal sent once the stream is closed: after the line receiver is dropped,
/// the thread closes the stream on the next line it reads. A process writing to a pipe sees
/// it closed only at its next write after that; the signal says when that is.
pub fn closing_lines(
    stream: impl std::io::Read + Send + 'static,
) -> (mpsc::Receiver<String>, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    let (closed_tx, closed) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = line.trim_end_matches(['\n', '\r']).to_owned();
            if tx.send(text).is_err() {
                break;
            }
        }
        drop(reader);
        let _ = closed_tx.send(());
    });
    (rx, closed)
}

/// Waits for the first line `f` accepts; the ones before are dropped (but kept in `seen`).
pub fn wait_line(rx: &mpsc::Receiver<String>, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if f(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line for {what}; saw {seen:#?}"),
        }
    }
}

/// A `wa server` with its data, and the stores, in a temporary directory.
pub struct Server {
    pub process: Running,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its standard error, line by line (registration codes among them).
    pub stderr: mpsc::Receiver<String>,
    pub dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut process = Running::spawn(
            Command::new(WA)
                .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(dir.path().join("server"))
                .env("RUST_LOG", "warn")
                .env_remove("WA_SERVER_STORE")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let stdout = lines(process.stdout.take().unwrap());
        let stderr = lines(process.stderr.take().unwrap());
        let line = wait_line(&stdout, "the server's listening line", |l| {
            l.starts_with("listening ")
        });
        let ws = line.split_whitespace().nth(1).unwrap();
        let host = ws
            .strip_prefix("ws://")
            .and_then(|r| r.strip_suffix("/ws"))
            .unwrap_or_else(|| panic!("{line}"));
        Server {
            process,
            url: format!("http://{host}"),
            stderr,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `wa` command with this server and the web client store `store`.
    pub fn wa(&self, store: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(WA);
        cmd.args(args)
            .env("WA_SERVER", &self.url)
            .env("WA_STORE", self.path(store))
            .env_remove("WA_STORE_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// A `wa phone` command with this server and the phone store `store`.
    pub fn phone(&self, store: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(WA);
        cmd.arg("phone")
            .args(args)
            .env("WA_SERVER", &self.url)
            .env("WA_PHONE_STORE", self.path(store))
            .env_remove("WA_PHONE_STORE_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Registers a phone: the code the server prints goes to the command's standard input.
    pub fn register(&self, store: &str, number: &str, name: &str) {
        let mut cmd = self.phone(store, &["register", "--number", number, "--name", name]);
        let mut process = Running::spawn(cmd.stdin(Stdio::piped()));
        let mut stdin = process.stdin.take().unwrap();
        let prefix = format!("verification code for +{number}: ");
        let line = wait_line(&self.stderr, "the registration code", |l| {
            l.starts_with(&prefix)
        });
        let code = line.strip_prefix(&prefix).unwrap().trim().to_owned();
        writeln!(stdin, "{code}").unwrap();
        drop(stdin);
        let status = process.wait(WAIT);
        let out = finish(process);
        assert!(status.success(), "register {number}: {out:?}");
    }
}

/// What a finished process printed.
pub fn finish(mut process: Running) -> (String, String) {
    use std::io::Read as _;
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = process.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = process.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    (out, err)
}

/// Runs a command to the end (bounded); its status and output.
pub fn run(mut cmd: Command) -> (bool, String, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let id = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output: Output = match rx.recv_timeout(WAIT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            signal(id, "KILL");
            panic!("{cmd:?} did not finish in time");
        }
    };
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs a command that must succeed; its standard output.
pub fn ok(cmd: Command) -> String {
    let what = format!("{cmd:?}");
    let (ok, out, err) = run(cmd);
    assert!(ok, "{what} failed:\n{out}\n{err}");
    out
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Whether `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}
