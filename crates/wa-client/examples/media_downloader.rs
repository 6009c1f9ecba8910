//! A media downloader: saves the decrypted media of every incoming media message (MAC and
//! hashes checked before anything is written) into a directory.
//!
//! `cargo run -p wa-client --example media_downloader -- [URL] [DIR] [STORE]`, e.g.
//! `cargo run -p wa-client --example media_downloader -- ws://127.0.0.1:8080/ws /tmp/media`.
//! Without a `DIR` the files go to a new temporary directory (printed, and kept); with a `STORE`
//! file the session is restored on the next start, without one nothing else is written.

use wa_client::{Client, ClientConfig, Event};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned());
    let mut config = ClientConfig::new(url);
    let dir = match args.next() {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            std::path::PathBuf::from(dir)
        }
        None => tempfile::Builder::new()
            .prefix("wa-media-")
            .tempdir()?
            .keep(),
    };
    println!("saving media to {}", dir.display());
    config.store = args.next().map(Into::into);
    let (client, mut events) = Client::start(config)?;
    while let Some(event) = events.next().await {
        match event {
            Event::Qr { text, .. } => println!("link me: {text}"),
            Event::Message { info, .. } => match client.download_media(&info).await {
                Ok(bytes) => {
                    let name = info.key.id.clone().unwrap_or_else(|| "media".to_owned());
                    let path = dir.join(name);
                    std::fs::write(&path, &bytes)?;
                    println!("saved {} ({} bytes)", path.display(), bytes.len());
                }
                Err(wa_client::Error::NoMedia(_)) => {}
                Err(e) => eprintln!("could not download: {e}"),
            },
            Event::Disconnected {
                reconnect_in: None, ..
            } => break,
            _ => {}
        }
    }
    Ok(())
}
