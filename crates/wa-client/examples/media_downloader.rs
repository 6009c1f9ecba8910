//! A media downloader: saves the media of every incoming media message into a directory,
//! streaming, with MAC and hashes checked before the file appears.
//!
//! `cargo run -p wa-client --example media_downloader -- ws://127.0.0.1:8080/ws [STORE] [DIR]`
//!
//! The store defaults to `wa-media-downloader.redb` and the directory to
//! `wa-media-downloads`, both in the system's temporary directory, so running the example
//! writes nothing into the source tree.

use wa_client::{Client, ClientConfig, Event};
use wa_session::Event as SessionEvent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned());
    let temp = std::env::temp_dir();
    let store = args
        .next()
        .map_or_else(|| temp.join("wa-media-downloader.redb"), Into::into);
    let dir = args
        .next()
        .map_or_else(|| temp.join("wa-media-downloads"), std::path::PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let (client, mut events) = Client::start(ClientConfig::new(url).with_store(store)).await?;
    while let Some(event) = events.next().await {
        match event {
            Event::Session(SessionEvent::Qr { text, .. }) => println!("link me: {text}"),
            Event::Session(SessionEvent::Message { info, .. }) => {
                // Ids are `3EB0` and hex, but a peer chooses them: keep only safe characters.
                let name: String = info
                    .key
                    .id
                    .as_deref()
                    .unwrap_or("media")
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect();
                let path = dir.join(if name.is_empty() {
                    "media".to_owned()
                } else {
                    name
                });
                match client.download_media_to(&info, &path).await {
                    Ok(len) => println!("saved {} ({len} bytes)", path.display()),
                    Err(wa_client::Error::NoMedia(_)) => {}
                    Err(e) => eprintln!("could not download: {e}"),
                }
            }
            Event::Session(SessionEvent::Disconnected {
                reconnect_in: None, ..
            }) => break,
            _ => {}
        }
    }
    Ok(())
}
