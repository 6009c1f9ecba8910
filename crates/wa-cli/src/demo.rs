//! `wa demo`: the whole system on one machine, in under a minute.
//!
//! Starts the reference server in-process on a free loopback port with a temporary data
//! directory; creates two accounts (Alice and Bob, each a simulated phone) and links a web
//! client to each by QR code; sends messages both ways showing their ticks (sent → delivered →
//! read); sends an image the demo draws itself, encrypted end to end, and checks it on the
//! other side; and shows a group message fanning out to every member's devices.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use wa_client::{Client, ClientConfig, Event, Events, MediaKind};
use wa_server::phone::{Phone, PhoneEvent};
use wa_session::AckLevel;

use crate::client::{describe, render_qr, runtime};

/// Arguments of `wa demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// One JSON object a line (machine-readable events) instead of text for people.
    #[arg(long)]
    json: bool,
    /// Keep the data directory (printed at the start) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

/// How long any one step may take before the demo fails.
const STEP: Duration = Duration::from_secs(15);

struct Out {
    json: bool,
}

impl Out {
    /// A step for people, or an event for machines.
    fn say(&self, text: &str, event: serde_json::Value) {
        if self.json {
            println!("{event}");
        } else {
            println!("{text}");
        }
    }
}

/// One participant: a phone and a linked web client.
struct Person {
    name: &'static str,
    phone: Phone,
    web: Client,
    events: Events,
    wid: String,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("wa-demo-")
        .tempdir()
        .context("creating a data directory")?;
    let out = Out { json: args.json };
    let result = runtime()?.block_on(demo(&out, dir.path()));
    if args.keep {
        let kept = dir.keep();
        out.say(
            &format!("data kept in {}", kept.display()),
            serde_json::json!({"event": "kept", "dir": kept}),
        );
    }
    let summary = result?;
    let seconds = started.elapsed().as_secs_f64();
    out.say(
        &format!("\nAll good in {seconds:.1} s: {summary}"),
        serde_json::json!({"event": "done", "seconds": seconds, "summary": summary}),
    );
    Ok(())
}

async fn demo(out: &Out, dir: &std::path::Path) -> anyhow::Result<String> {
    let server = wa_server::Server::start(wa_server::Config::new(dir.join("server")))
        .await
        .context("starting the reference server")?;
    out.say(
        &format!("A reference server listens on {} (data in {}).", server.ws_url(), dir.display()),
        serde_json::json!({"event": "server", "ws": server.ws_url(), "media": server.media_url(), "data": dir}),
    );

    let mut alice = person(out, &server, dir, "Alice", "15550000001").await?;
    let mut bob = person(out, &server, dir, "Bob", "15550000002").await?;

    // Text both ways, with the ticks.
    let text = "Hi Bob! Sent from Alice's web client.";
    let id = text_with_ticks(out, &mut alice, &mut bob, text).await?;
    let reply = "Hello Alice, Bob here: got it.";
    text_with_ticks(out, &mut bob, &mut alice, reply).await?;
    let _ = id;

    // An image, drawn here, encrypted end to end.
    let image = draw_image(96, 64);
    let image_id = alice
        .web
        .send_media(
            &bob.wid,
            MediaKind::Image,
            &image,
            "image/bmp",
            Some("a gradient, drawn by the demo"),
        )
        .await
        .context("sending the image")?;
    out.say(
        &format!(
            "[Alice → Bob] image of {} bytes: encrypted, uploaded, sent ✓",
            image.len()
        ),
        serde_json::json!({"event": "image_sent", "id": image_id, "bytes": image.len()}),
    );
    let info = wait(
        &mut bob.events,
        "Bob's web client to get the image",
        |e| match e {
            Event::Message { info, .. } if info.key.id.as_deref() == Some(image_id.as_str()) => {
                Some(info.clone())
            }
            _ => None,
        },
    )
    .await?;
    let downloaded = bob
        .web
        .download_media(&info)
        .await
        .context("downloading the image")?;
    if downloaded != image {
        bail!("the image Bob decrypted differs from the one Alice sent");
    }
    out.say(
        &format!("[Bob] downloaded and decrypted the image: MAC and hashes check, {} bytes identical to Alice's", downloaded.len()),
        serde_json::json!({"event": "image_verified", "id": image_id, "bytes": downloaded.len()}),
    );

    // A group: Alice, Bob and Carol (a phone only); one message reaches every member's devices.
    let mut carol = Phone::connect(&server.phone_url(), "15550000003", "Carol")
        .await
        .context("Carol's phone")?;
    let created = alice
        .web
        .group_create("wa-rs demo", &[bob.wid.as_str(), carol.wid()])
        .await
        .context("creating the group")?;
    let gid = created
        .get("gid")
        .and_then(|g| g.as_str())
        .context("the server named no group")?
        .to_owned();
    out.say(
        &format!("[Alice] created the group {gid} with Bob and Carol"),
        serde_json::json!({"event": "group_created", "gid": gid}),
    );
    let group_text = "Hello group!";
    let group_id = alice
        .web
        .send_text(&gid, group_text)
        .await
        .context("sending to the group")?;
    let mut reached = Vec::new();
    wait(
        &mut bob.events,
        "Bob's web client to get the group message",
        |e| match e {
            Event::Message { info, .. } if info.key.id.as_deref() == Some(group_id.as_str()) => {
                Some(())
            }
            _ => None,
        },
    )
    .await?;
    reached.push("Bob's web client");
    wait_phone(
        &mut bob.phone,
        "Bob's phone to get the group message",
        &group_id,
    )
    .await?;
    reached.push("Bob's phone");
    wait_phone(
        &mut carol,
        "Carol's phone to get the group message",
        &group_id,
    )
    .await?;
    reached.push("Carol's phone");
    out.say(
        &format!(
            "[Alice → group] \"{group_text}\" reached {}",
            reached.join(", ")
        ),
        serde_json::json!({"event": "group_fanout", "id": group_id, "devices": reached}),
    );

    let summary = format!(
        "2 web clients linked by QR; 2 texts with sent → delivered → read ticks; a {} byte image \
         verified end to end; a group message fanned out to {} devices.",
        image.len(),
        reached.len()
    );
    alice.web.shutdown().await;
    bob.web.shutdown().await;
    server.shutdown().await;
    Ok(summary)
}

/// Creates an account with its phone, and links a web client to it by QR code.
async fn person(
    out: &Out,
    server: &wa_server::RunningServer,
    dir: &std::path::Path,
    name: &'static str,
    number: &str,
) -> anyhow::Result<Person> {
    let phone = Phone::connect(&server.phone_url(), number, name)
        .await
        .with_context(|| format!("{name}'s phone"))?;
    let mut config = ClientConfig::new(server.ws_url());
    config.store = Some(dir.join(format!("{}.redb", name.to_lowercase())));
    let (web, mut events) = Client::start(config)?;
    let qr = wait(&mut events, &format!("{name}'s QR code"), |e| match e {
        Event::Qr { text, .. } => Some(text.clone()),
        _ => None,
    })
    .await?;
    out.say(
        &format!(
            "\n[{name}] the web client shows a QR code:\n{}",
            render_qr(&qr)?
        ),
        serde_json::json!({"event": "qr", "who": name, "text": qr}),
    );
    phone
        .link(&qr)
        .await
        .with_context(|| format!("{name}'s phone approving the QR code"))?;
    let account = wait(
        &mut events,
        &format!("{name}'s web client to log in"),
        |e| match e {
            Event::Connected { account } => Some(account.clone()),
            _ => None,
        },
    )
    .await?;
    out.say(
        &format!(
            "[{name}] phone +{number} scanned it: the web client is linked as {}",
            account.wid
        ),
        serde_json::json!({"event": "linked", "who": name, "wid": account.wid}),
    );
    Ok(Person {
        name,
        phone,
        web,
        events,
        wid: account.wid,
    })
}

/// Sends a text from one web client to another and shows its three ticks.
async fn text_with_ticks(
    out: &Out,
    from: &mut Person,
    to: &mut Person,
    text: &str,
) -> anyhow::Result<String> {
    let arrow = format!("[{} → {}]", from.name, to.name);
    let id = from
        .web
        .send_text(&to.wid, text)
        .await
        .with_context(|| format!("{arrow} sending"))?;
    out.say(
        &format!("{arrow} \"{text}\" sent ✓"),
        serde_json::json!({"event": "ack", "id": id, "level": "sent"}),
    );
    wait_ack(&mut from.events, &id, AckLevel::Delivered).await?;
    out.say(
        &format!("{arrow} delivered ✓✓"),
        serde_json::json!({"event": "ack", "id": id, "level": "delivered"}),
    );
    let info = wait(
        &mut to.events,
        &format!("{}'s web client to get the message", to.name),
        |e| match e {
            Event::Message { info, .. } if info.key.id.as_deref() == Some(id.as_str()) => {
                Some(info.clone())
            }
            _ => None,
        },
    )
    .await?;
    let chat = info.key.remote_jid.clone().unwrap_or_default();
    out.say(
        &format!("[{}] {}: {}", to.name, chat, describe(info.message.as_ref())),
        serde_json::json!({"event": "message", "who": to.name, "chat": chat, "id": id, "text": describe(info.message.as_ref())}),
    );
    to.web.mark_read(&chat, &id).await?;
    wait_ack(&mut from.events, &id, AckLevel::Read).await?;
    out.say(
        &format!("{arrow} read ✓✓ (blue)"),
        serde_json::json!({"event": "ack", "id": id, "level": "read"}),
    );
    Ok(id)
}

async fn wait_ack(events: &mut Events, id: &str, level: AckLevel) -> anyhow::Result<()> {
    wait(events, &format!("ack {level:?} of {id}"), |e| match e {
        Event::Ack { ids, level: l, .. } if *l >= level && ids.iter().any(|i| i == id) => Some(()),
        _ => None,
    })
    .await
}

/// The first event `pick` accepts, within [`STEP`]; a final failure event is an error.
async fn wait<T>(
    events: &mut Events,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    let found = tokio::time::timeout(STEP, async {
        while let Some(event) = events.next().await {
            if let Some(found) = pick(&event) {
                return Ok(found);
            }
            match event {
                Event::LinkFailed(e) => bail!("linking failed: {e}"),
                Event::LoginFailed { error, .. } => bail!("login failed: {error}"),
                _ => {}
            }
        }
        bail!("the client stopped")
    })
    .await;
    found.with_context(|| format!("waited {} s for {what}", STEP.as_secs()))?
}

async fn wait_phone(phone: &mut Phone, what: &str, id: &str) -> anyhow::Result<()> {
    let found = tokio::time::timeout(STEP, async {
        while let Some(event) = phone.next_event().await {
            if let PhoneEvent::Message(m) = event
                && m.id == id
            {
                return true;
            }
        }
        false
    })
    .await;
    match found {
        Ok(true) => Ok(()),
        Ok(false) => bail!("the phone disconnected while waiting for {what}"),
        Err(_) => bail!("waited {} s for {what}", STEP.as_secs()),
    }
}

/// A 24-bit BMP of `width` × `height`: a colour gradient with a disc, drawn here so the demo
/// needs no file.
fn draw_image(width: u32, height: u32) -> Vec<u8> {
    let row = (width * 3).div_ceil(4) * 4;
    let pixels = row * height;
    let mut bmp = Vec::with_capacity(54 + pixels as usize);
    bmp.extend_from_slice(b"BM");
    bmp.extend_from_slice(&(54 + pixels).to_le_bytes());
    bmp.extend_from_slice(&[0, 0, 0, 0]);
    bmp.extend_from_slice(&54u32.to_le_bytes());
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&width.to_le_bytes());
    bmp.extend_from_slice(&height.to_le_bytes());
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    bmp.extend_from_slice(&[0; 4]);
    bmp.extend_from_slice(&pixels.to_le_bytes());
    bmp.extend_from_slice(&[0; 16]);
    let (cx, cy, r) = (
        i64::from(width / 2),
        i64::from(height / 2),
        i64::from(height / 3),
    );
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
            let inside = dx * dx + dy * dy <= r * r;
            let (b, g, red) = if inside {
                (250, 250, 250)
            } else {
                ((x * 255 / width) as u8, (y * 255 / height) as u8, 160)
            };
            bmp.extend_from_slice(&[b, g, red]);
        }
        bmp.resize(bmp.len() + (row - width * 3) as usize, 0);
    }
    bmp
}
