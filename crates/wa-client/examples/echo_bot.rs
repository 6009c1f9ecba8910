//! An echo bot: links (or restores from its store) and answers every text with the same text.
//!
//! `cargo run -p wa-client --example echo_bot -- ws://127.0.0.1:8080/ws [STORE]`
//!
//! The store defaults to `wa-echo-bot.redb` in the system's temporary directory (its key file
//! beside it), so running the example writes nothing into the source tree. Link it with a
//! phone when it prints a QR text.

use wa_client::{Client, ClientConfig, Event};
use wa_session::Event as SessionEvent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), wa_client::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned());
    let store = args
        .next()
        .map_or_else(|| std::env::temp_dir().join("wa-echo-bot.redb"), Into::into);
    let (client, mut events) = Client::start(ClientConfig::new(url).with_store(store)).await?;
    while let Some(event) = events.next().await {
        match event {
            Event::Session(SessionEvent::Qr { text, .. }) => println!("link me: {text}"),
            Event::Session(SessionEvent::Connected { account }) => {
                println!("echoing as {:?}", account.wid);
            }
            Event::Session(SessionEvent::Message { info, .. })
                if info.key.from_me != Some(true) =>
            {
                let text = info
                    .message
                    .as_ref()
                    .and_then(|m| m.text())
                    .map(str::to_owned);
                let chat = info.key.remote_jid.as_deref().and_then(|j| j.parse().ok());
                let participant = info.key.participant.as_deref().and_then(|j| j.parse().ok());
                if let (Some(chat), Some(id), Some(text)) = (chat, info.key.id.as_deref(), text) {
                    client.mark_read(&chat, id, participant.as_ref()).await?;
                    client.send_text(&chat, &text).await?;
                }
            }
            Event::HistoryImported(imported) => println!("history: {imported:?}"),
            Event::Session(SessionEvent::Disconnected {
                reconnect_in: None,
                reason,
            }) => {
                println!("stopped: {reason:?}");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}
