//! A TLS front for an HTTP double: terminates TLS with a test certificate on a loopback port and
//! passes the bytes on to the double (wiremock speaks plain HTTP only). The certificates are in
//! `tests/support/tls/` (regenerate them with its `make.sh`): a CA and server certificates it
//! signs, valid for localhost/127.0.0.1, expired, or for another name.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The CA that signs every server certificate here.
pub const CA: &str = include_str!("tls/ca.pem");
/// Valid for `localhost` and `127.0.0.1` until 2125.
pub const LOCALHOST: &str = include_str!("tls/localhost.pem");
/// For `localhost` and `127.0.0.1`, expired in 2021.
pub const EXPIRED: &str = include_str!("tls/expired.pem");
/// Valid, but for `other.example` only.
pub const OTHER_NAME: &str = include_str!("tls/other-name.pem");
const KEY: &str = include_str!("tls/server.key");

/// A running front; it stops with the test's runtime.
pub struct TlsFront {
    port: u16,
}

impl TlsFront {
    /// Serves `cert_pem` (with the test key) and forwards each connection to `backend`
    /// (`http://127.0.0.1:port`).
    pub async fn start(cert_pem: &str, backend: &str) -> TlsFront {
        dirsync::init_crypto();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("test certificate");
        let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).expect("test key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("TLS server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let backend = backend.trim_start_matches("http://").to_string();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    // A refused handshake is what the tests provoke: nothing to forward then.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(&backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront { port }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `https://localhost:<port>`.
    pub fn localhost_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}
