//! An echo bot: links (or restores) and answers every text message with the same text.
//!
//! `cargo run -p wa-client --example echo_bot -- [URL] [STORE]`, e.g.
//! `cargo run -p wa-client --example echo_bot -- ws://127.0.0.1:8080/ws /tmp/bot.redb`
//! (link it with `wa phone link --number N 'QR TEXT'` when it prints a QR text). With a `STORE`
//! file the bot restores its session on the next start; without one it keeps nothing and writes
//! nothing.

use wa_client::{Client, ClientConfig, Event};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), wa_client::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned());
    let mut config = ClientConfig::new(url);
    config.store = args.next().map(Into::into);
    let (client, mut events) = Client::start(config)?;
    while let Some(event) = events.next().await {
        match event {
            Event::Qr { text, .. } => println!("link me: {text}"),
            Event::Connected { account } => println!("echoing as {}", account.wid),
            Event::Message { info, .. } if info.key.from_me != Some(true) => {
                let text = info.message.as_ref().and_then(|m| m.conversation.clone());
                if let (Some(chat), Some(text)) = (info.key.remote_jid.as_deref(), text) {
                    client
                        .mark_read(chat, info.key.id.as_deref().unwrap_or_default())
                        .await?;
                    client.send_text(chat, &text).await?;
                }
            }
            Event::Disconnected {
                reconnect_in: None,
                reason,
            } => {
                println!("stopped: {reason:?}");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}
