//! `wa phone`: the primary device of an account, against a `wa server`: approve a web
//! client's QR code, send messages, listen, manage linked clients.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use wa_server::phone::{Phone, PhoneEvent, PhoneOptions};

/// Who the phone is and where its server is.
#[derive(Debug, Args)]
pub(crate) struct Who {
    /// The server: `ws://host:port` or `http://host:port`.
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    server: String,
    /// The phone number, digits only (the account is created on first use).
    #[arg(long)]
    number: String,
    /// The display name others see.
    #[arg(long, default_value = "wa phone")]
    name: String,
    /// A secret that guards the account: set when it is created, required afterwards.
    #[arg(long)]
    secret: Option<String>,
}

/// `wa phone` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Approve the QR code a web client shows: it becomes linked to this account.
    Link {
        #[command(flatten)]
        who: Who,
        /// The QR code's text, `ref,public key,client id`.
        qr: String,
    },
    /// Send a text message to a user (number or `n@c.us`) or a group (`...@g.us`).
    Send {
        #[command(flatten)]
        who: Who,
        /// The recipient.
        #[arg(long)]
        to: String,
        /// The text.
        text: String,
        /// Wait until a device of the recipient has it (two ticks), at most this many seconds.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// Print incoming messages, ticks, presence and group changes until Ctrl-C.
    Listen {
        #[command(flatten)]
        who: Who,
        /// Mark incoming messages read (their senders see blue ticks).
        #[arg(long)]
        read: bool,
        /// Stop after this many messages.
        #[arg(long, value_name = "N")]
        count: Option<usize>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the linked web clients.
    Devices {
        #[command(flatten)]
        who: Who,
    },
    /// Unlink a web client: it is disconnected and its saved session stops working.
    Unlink {
        #[command(flatten)]
        who: Who,
        /// Its client id (see `wa phone devices`).
        client_id: String,
    },
}

/// Runs a `wa phone` subcommand.
pub(crate) fn run(cmd: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match cmd {
            Command::Link { who, qr } => {
                let phone = connect(&who).await?;
                let linked = phone.link(&qr).await.context("approving the QR code")?;
                println!(
                    "linked {} ({}) to {}",
                    linked.client_id,
                    linked.browser,
                    phone.wid()
                );
                Ok(())
            }
            Command::Send {
                who,
                to,
                text,
                wait,
            } => {
                let mut phone = connect(&who).await?;
                let id = phone
                    .send_text(&to, &text)
                    .await
                    .with_context(|| format!("sending to {to}"))?;
                println!("sent {id} (stored by the server ✓)");
                if let Some(secs) = wait {
                    wait_delivered(&mut phone, &id, Duration::from_secs(secs)).await?;
                    println!("delivered {id} ✓✓");
                }
                Ok(())
            }
            Command::Listen {
                who,
                read,
                count,
                json,
            } => listen(&who, read, count, json).await,
            Command::Devices { who } => {
                let phone = connect(&who).await?;
                let devices = phone.devices().await.context("listing devices")?;
                if devices.is_empty() {
                    println!("no linked web clients");
                }
                for d in devices {
                    println!("{}  {}  linked at {}", d.client_id, d.browser, d.linked_at);
                }
                Ok(())
            }
            Command::Unlink { who, client_id } => {
                let phone = connect(&who).await?;
                phone
                    .unlink(&client_id)
                    .await
                    .with_context(|| format!("unlinking {client_id}"))?;
                println!("unlinked {client_id}");
                Ok(())
            }
        }
    })
}

async fn connect(who: &Who) -> anyhow::Result<Phone> {
    let mut options = PhoneOptions::new(&who.server, &who.number, &who.name);
    options.secret.clone_from(&who.secret);
    let phone = Phone::connect_with(options).await.with_context(|| {
        format!(
            "connecting as the phone of {} to {}",
            who.number, who.server
        )
    })?;
    if phone.created() {
        eprintln!("account {} created", phone.wid());
    }
    Ok(phone)
}

async fn wait_delivered(phone: &mut Phone, id: &str, limit: Duration) -> anyhow::Result<()> {
    let delivered = tokio::time::timeout(limit, async {
        while let Some(event) = phone.next_event().await {
            if let PhoneEvent::Ack {
                id: acked, level, ..
            } = &event
                && acked == id
                && *level >= 2
            {
                return true;
            }
        }
        false
    })
    .await;
    match delivered {
        Ok(true) => Ok(()),
        Ok(false) => bail!("the connection closed before {id} was delivered"),
        Err(_) => bail!("{id} was not delivered within {} s", limit.as_secs()),
    }
}

async fn listen(who: &Who, read: bool, count: Option<usize>, json: bool) -> anyhow::Result<()> {
    let mut phone = connect(who).await?;
    if !json {
        eprintln!("listening as {} (Ctrl-C stops)", phone.wid());
    }
    let mut messages = 0usize;
    loop {
        let event = tokio::select! {
            event = phone.next_event() => event,
            stop = tokio::signal::ctrl_c() => {
                stop.context("waiting for Ctrl-C")?;
                return Ok(());
            }
        };
        let Some(event) = event else {
            bail!("the server closed the connection");
        };
        match &event {
            PhoneEvent::Message(m) => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "message", "id": m.id, "chat": m.chat,
                            "sender": m.sender, "from_me": m.from_me, "text": m.text, "t": m.timestamp})
                    );
                } else {
                    let text = m.text.as_deref().unwrap_or("(not a text message)");
                    let from = if m.from_me { "me" } else { m.sender.as_str() };
                    println!("[{}] {from}: {text}", m.chat);
                }
                if read && !m.from_me {
                    phone
                        .read(&m.chat, &m.id)
                        .await
                        .context("marking a message read")?;
                }
                messages += 1;
                if count.is_some_and(|n| messages >= n) {
                    return Ok(());
                }
            }
            PhoneEvent::Ack {
                id,
                level,
                from,
                to,
            } => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "ack", "id": id, "level": level, "from": from, "to": to})
                    );
                } else {
                    let ticks = match level {
                        1 => "sent ✓",
                        2 => "delivered ✓✓",
                        3 => "read ✓✓ (blue)",
                        _ => "ack",
                    };
                    println!("{id}: {ticks}");
                }
            }
            PhoneEvent::Presence { jid, kind, chat } => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "presence", "jid": jid, "type": kind, "chat": chat})
                    );
                } else {
                    println!("{jid} is {kind}");
                }
            }
            PhoneEvent::Group {
                jid,
                op,
                author,
                participants,
                subject,
            } => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "group", "jid": jid, "op": op, "author": author,
                            "participants": participants, "subject": subject})
                    );
                } else {
                    println!(
                        "group {jid}: {author} {op} {}{}",
                        participants.join(", "),
                        subject
                            .as_deref()
                            .map(|s| format!(" \"{s}\""))
                            .unwrap_or_default()
                    );
                }
            }
            PhoneEvent::Disconnected { replaced } => {
                if *replaced {
                    bail!("another connection took over as this phone");
                }
                bail!("the server closed the connection");
            }
            _ => {}
        }
    }
}
