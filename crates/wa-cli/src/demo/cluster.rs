//! `wa demo --nodes N --store postgres://... --bus nats://...`: the story on a cluster of server
//! nodes, each a child process of this binary (`wa server`) sharing a PostgreSQL schema, a NATS
//! cluster name and a media directory made for this run. One node is killed with SIGKILL mid-story
//! (its clients and phones move to the other nodes: their fallback URLs). At the end the nodes
//! stop (SIGTERM), the schema is dumped (`pg_dump`, when installed, for the plaintext scan) and
//! dropped.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use wa_server::DeliveredCode;

use super::{Out, STEP};

/// Lines of a node's standard error kept for an error message.
const KEPT_LINES: usize = 20;

/// One node: its process and where it listens.
struct Node {
    name: String,
    child: Option<Child>,
    pid: u32,
    ws: String,
    phone: String,
    /// The last lines it wrote on standard error.
    log: Arc<Mutex<VecDeque<String>>>,
}

/// The running nodes.
pub(crate) struct Cluster {
    nodes: Vec<Node>,
    codes: Option<mpsc::Receiver<DeliveredCode>>,
    store: String,
    schema: String,
    /// Whether the schema still has to be dropped.
    schema_made: bool,
    /// Where the schema's dump goes (for the scan).
    dump: PathBuf,
}

/// `host:port` of a `scheme://[user@]host:port[/...]` URL.
fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

/// Whether something accepts connections at `host:port` (within a second).
fn answers(host_port: &str) -> bool {
    host_port
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}

/// A name no other run uses: `<prefix><pid><nanoseconds>` in hex (a lowercase identifier).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{:x}_{:x}", std::process::id(), nanos)
}

impl Cluster {
    /// Starts `nodes` nodes (one after the other: the first makes the schema) on `store` and
    /// `bus`, with their data under `<root>/nodes` and their media in `<root>/nodes/media`.
    pub(crate) async fn start(
        out: &Out,
        root: &Path,
        nodes: usize,
        store: &str,
        bus: &str,
    ) -> anyhow::Result<Cluster> {
        if !(2..=9).contains(&nodes) {
            bail!("--nodes takes 2 to 9 nodes, not {nodes}");
        }
        let (pg, nats) = (host_port(store, 5432), host_port(bus, 4222));
        let (pg_up, nats_up) = tokio::task::spawn_blocking({
            let (pg, nats) = (pg.clone(), nats.clone());
            move || (answers(&pg), answers(&nats))
        })
        .await
        .context("probing PostgreSQL and NATS")?;
        if !pg_up || !nats_up {
            let mut missing = Vec::new();
            if !pg_up {
                missing.push(format!("PostgreSQL at {pg}"));
            }
            if !nats_up {
                missing.push(format!("NATS at {nats}"));
            }
            bail!(
                "the cluster demo needs {}, which do(es) not answer",
                missing.join(" and ")
            );
        }
        let exe = std::env::current_exe().context("finding this program")?;
        let base = root.join("nodes");
        let media = base.join("media");
        std::fs::create_dir_all(&media).with_context(|| format!("creating {}", media.display()))?;
        let schema = unique("wa_demo_");
        let cluster_name = unique("demo").replace('_', "x");
        let (codes_tx, codes) = mpsc::channel(64);
        let mut cluster = Cluster {
            nodes: Vec::new(),
            codes: Some(codes),
            store: store.to_owned(),
            schema: schema.clone(),
            schema_made: true,
            dump: base.join(format!("{schema}.sql")),
        };
        out.say(
            format_args!(
                "A cluster of {nodes} nodes: PostgreSQL {pg} (schema {schema}, made for this run), \
                 NATS {nats} (cluster {cluster_name}), shared media in {}.",
                media.display()
            ),
            json!({"event": "cluster", "nodes": nodes, "schema": schema, "cluster": cluster_name,
                   "media": media}),
        )?;
        for index in 0..nodes {
            let name = format!("node-{index}");
            let dir = base.join(&name);
            let mut command = Command::new(&exe);
            command
                .arg("server")
                .args(["--listen", "127.0.0.1:0", "--data-dir"])
                .arg(&dir)
                .args(["--store", store, "--schema", &schema, "--bus", bus])
                .args([
                    "--cluster",
                    &cluster_name,
                    "--node-id",
                    &name,
                    "--media-dir",
                ])
                .arg(&media)
                .env("NO_COLOR", "1")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let node = spawn(command, name, codes_tx.clone()).await?;
            let (shown, pid, ws, phone) = (
                node.name.clone(),
                node.pid,
                node.ws.clone(),
                node.phone.clone(),
            );
            // Kept first: the cluster stops it whatever happens next.
            cluster.nodes.push(node);
            out.say(
                format_args!("[{shown}] `wa server` (pid {pid}) listens on {ws}"),
                json!({"event": "node", "index": index, "name": shown, "pid": pid,
                       "ws": ws, "phone": phone}),
            )?;
        }
        Ok(cluster)
    }

    /// The codes the nodes deliver (once).
    pub(crate) fn take_codes(&mut self) -> anyhow::Result<mpsc::Receiver<DeliveredCode>> {
        self.codes
            .take()
            .context("the cluster's codes were taken already")
    }

    /// The nodes' WebSocket and phone URLs.
    pub(crate) fn urls(&self) -> (Vec<String>, Vec<String>) {
        (
            self.nodes.iter().map(|n| n.ws.clone()).collect(),
            self.nodes.iter().map(|n| n.phone.clone()).collect(),
        )
    }

    /// Kills node `index` with SIGKILL; returns it.
    pub(crate) fn kill(&mut self, out: &Out, index: usize) -> anyhow::Result<usize> {
        let node = self
            .nodes
            .get_mut(index)
            .with_context(|| format!("there is no node {index}"))?;
        if let Some(mut child) = node.child.take() {
            child
                .kill()
                .with_context(|| format!("killing {}", node.name))?;
            let status = child
                .wait()
                .with_context(|| format!("waiting for {}", node.name))?;
            out.say(
                format_args!(
                    "\n[{}] killed with SIGKILL (pid {}, {status}): its clients and phones move \
                     to the other nodes",
                    node.name, node.pid
                ),
                json!({"event": "node_killed", "index": index, "name": node.name, "pid": node.pid}),
            )?;
        }
        Ok(index)
    }

    /// Stops every node (SIGTERM, then SIGKILL after [`STEP`]), dumps the schema for the scan
    /// (with `pg_dump`, when installed) and drops it.
    pub(crate) async fn shutdown(mut self, out: &Out) -> anyhow::Result<()> {
        let mut stopped = Vec::new();
        for node in &mut self.nodes {
            if let Some(child) = node.child.take() {
                stopped.push((node.name.clone(), stop(child).await));
            }
        }
        let dumped = dump(&self.store, &self.schema, &self.dump).await;
        let (url, schema) = (self.store.clone(), self.schema.clone());
        let dropped = tokio::task::spawn_blocking(move || {
            wa_server::store::PgStore::drop_schema(&url, &schema)
        })
        .await
        .context("dropping the schema")?;
        self.schema_made = false;
        for (name, status) in stopped {
            let status = status.with_context(|| format!("stopping {name}"))?;
            out.say(
                format_args!("[{name}] stopped ({status})"),
                json!({"event": "node_stopped", "name": name, "status": status}),
            )?;
        }
        match dumped {
            Ok(()) => out.say(
                format_args!(
                    "[cluster] schema {} dumped to {} for the scan",
                    self.schema,
                    self.dump.display()
                ),
                json!({"event": "schema_dumped", "file": self.dump}),
            )?,
            Err(e) => out.say(
                format_args!(
                    "[cluster] schema {} not dumped ({e:#}): the scan covers the files only",
                    self.schema
                ),
                json!({"event": "schema_not_dumped", "why": format!("{e:#}")}),
            )?,
        }
        dropped.with_context(|| format!("dropping schema {}", self.schema))?;
        out.say(
            format_args!("[cluster] schema {} dropped", self.schema),
            json!({"event": "schema_dropped", "schema": self.schema}),
        )
    }
}

impl Drop for Cluster {
    /// On a failure: no node outlives the demo, and the schema goes.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if self.schema_made {
            let (url, schema) = (self.store.clone(), self.schema.clone());
            // The blocking client must not run on an async runtime's thread.
            let _ =
                std::thread::spawn(move || wa_server::store::PgStore::drop_schema(&url, &schema))
                    .join();
        }
    }
}

/// Starts a node and waits for its `listening` line; its standard error is read for codes.
async fn spawn(
    mut command: Command,
    name: String,
    codes: mpsc::Sender<DeliveredCode>,
) -> anyhow::Result<Node> {
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let pid = child.id();
    let log = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stderr) = child.stderr.take() {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("verification code for +")
                    && let Some((number, code)) = rest.split_once(": ")
                {
                    let _ = codes.blocking_send(DeliveredCode {
                        number: number.to_owned(),
                        code: code.trim().to_owned(),
                    });
                    continue;
                }
                if let Ok(mut log) = log.lock() {
                    if log.len() == KEPT_LINES {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            }
        });
    }
    let (listening_tx, listening) = oneshot::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = listening_tx.send(first);
            // The rest (nothing, normally) is read so that the node never blocks on it.
            for _ in lines {}
        });
    }
    let mut node = Node {
        name,
        child: Some(child),
        pid,
        ws: String::new(),
        phone: String::new(),
        log,
    };
    let line = match tokio::time::timeout(STEP, listening).await {
        Ok(Ok(Some(line))) => line,
        Ok(_) => return Err(node.failed("it stopped before listening")),
        Err(_) => {
            return Err(node.failed(&format!("it did not listen within {} s", STEP.as_secs())));
        }
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["listening", ws, phone, ..] => {
            node.ws = (*ws).to_owned();
            node.phone = (*phone).to_owned();
            Ok(node)
        }
        _ => Err(node.failed(&format!("it said {line:?} instead of `listening ...`"))),
    }
}

impl Node {
    /// Why the node failed, with what it wrote last; the node is killed.
    fn failed(&mut self, why: &str) -> anyhow::Error {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = self
            .log
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n  "))
            .unwrap_or_default();
        anyhow!("{} did not start: {why}\n  {log}", self.name)
    }
}

/// SIGTERM, then SIGKILL if it has not stopped within [`STEP`]; its exit status.
async fn stop(mut child: Child) -> anyhow::Result<String> {
    let pid = child.id().to_string();
    let term = Command::new("kill")
        .args(["-TERM", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !term.is_ok_and(|s| s.success()) {
        child.kill().context("killing the node")?;
    }
    let waited = tokio::time::timeout(
        STEP,
        tokio::task::spawn_blocking(move || child.wait().map(|s| s.to_string())),
    )
    .await;
    match waited {
        Ok(Ok(status)) => status.context("waiting for the node"),
        Ok(Err(e)) => Err(anyhow!("waiting for the node: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            Ok("killed: it did not stop on SIGTERM".to_owned())
        }
    }
}

/// `pg_dump` of the schema's data into `file`.
async fn dump(store: &str, schema: &str, file: &Path) -> anyhow::Result<()> {
    let mut command = pg_dump_command(store, schema, file);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("running pg_dump")?
        .context("running pg_dump (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "pg_dump: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn pg_dump_command(store: &str, schema: &str, file: &Path) -> Command {
    let mut command = Command::new("pg_dump");
    command
        .arg("--dbname")
        .arg(store)
        .args(["--schema", schema, "--data-only", "--no-owner", "--file"])
        .arg(file)
        .stdin(Stdio::null());
    command
}
