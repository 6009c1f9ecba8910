//! `wa demo --nodes N`: the story on a cluster of server nodes, child processes of this binary.

use std::path::Path;

use anyhow::bail;
use tokio::sync::mpsc;
use wa_server::DeliveredCode;

use super::Out;

/// The running nodes.
pub(crate) struct Cluster {
    ws: Vec<String>,
    phone: Vec<String>,
}

impl Cluster {
    /// Starts `nodes` nodes on `store` and `bus`.
    pub(crate) async fn start(
        _out: &Out,
        _root: &Path,
        _nodes: usize,
        _store: &str,
        _bus: &str,
    ) -> anyhow::Result<Cluster> {
        bail!("the cluster demo (--nodes) is not built yet")
    }

    /// The codes the nodes deliver.
    pub(crate) fn take_codes(&mut self) -> anyhow::Result<mpsc::Receiver<DeliveredCode>> {
        bail!("the cluster demo (--nodes) is not built yet")
    }

    /// The nodes' WebSocket and phone URLs.
    pub(crate) fn urls(&self) -> (Vec<String>, Vec<String>) {
        (self.ws.clone(), self.phone.clone())
    }

    /// Kills node `index` with SIGKILL; returns it.
    pub(crate) fn kill(&mut self, _out: &Out, index: usize) -> anyhow::Result<usize> {
        Ok(index)
    }

    /// Stops every node.
    pub(crate) async fn shutdown(self, _out: &Out) -> anyhow::Result<()> {
        Ok(())
    }
}
