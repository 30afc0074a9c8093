//! A raw HTTP/1.1 server for what wiremock cannot do: an answer cut off mid-body. It reads each
//! request (head and `Content-Length` body), writes the bytes it was given and closes the
//! connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct RawServer {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl RawServer {
    /// Answers every request with `answer`, as is.
    pub async fn start(answer: &'static [u8]) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    if read_request(&mut tcp).await.is_some() {
                        count.fetch_add(1, Ordering::SeqCst);
                        let _ = tcp.write_all(answer).await;
                        let _ = tcp.flush().await;
                    }
                });
            }
        });
        RawServer { port, requests }
    }

    /// A 200 that announces 1000 bytes of JSON and sends 12 before closing.
    pub async fn cut_mid_body() -> RawServer {
        RawServer::start(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"partial\":1",
        )
        .await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Complete requests received.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request; `None` when the connection ends first.
async fn read_request(tcp: &mut tokio::net::TcpStream) -> Option<()> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = tcp.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = tcp.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    }
    Some(())
}
