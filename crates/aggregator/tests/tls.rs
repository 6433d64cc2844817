//! TLS (rustls) on the aggregator's listener: HTTPS and WSS with a generated certificate; a
//! client that does not speak TLS is dropped and counted, and the server goes on.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aggregator::race::RaceSetup;
use aggregator::tls::{TlsListener, TlsPeer, server_config};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_with_a_certificate_and_plain_clients_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    // A key file that is not a key is refused with the file named.
    let bad = server_config(&cert_path, &cert_path).unwrap_err().to_string();
    assert!(bad.contains("cert.pem") && bad.contains("private key"), "{bad}");

    let d = support::demo(&dir.path().join("agg.sqlite"), &race_sim::Scenario::clean(5, vec![5, 5]));
    let handle = aggregator::race::start(d.state.clone(), RaceSetup { corrections: vec![], ..d.setup() });
    let state = d.state;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener::new(tcp, server_config(&cert_path, &key_path).unwrap()).unwrap();
    let failed = listener.failed_handshakes.clone();
    let app = aggregator::router(state, handle);
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<TlsPeer>()).await.unwrap();
    });

    // A client speaking plain HTTP to the TLS port gets nothing and is counted.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain.write_all(b"GET /api/v1/event HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf).await;
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"), "plain HTTP must not be served");

    // HTTPS with the certificate as the only root.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let resp = client.get(format!("https://localhost:{port}/api/v1/event")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ev: timing_wire::live::EventView = resp.json().await.unwrap();
    assert_eq!(ev.races.len(), 2);
    assert_eq!(failed.load(Ordering::Relaxed), 1, "the plain client's failed handshake is counted");

    // WSS: the live feed through the same listener.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("wss://localhost:{port}/api/v1/live"), tls).await.unwrap();
    ws.send(Message::text(r#"{"op":"subscribe","v":1,"topic":{"kind":"arrivals","point":"finish"}}"#)).await.unwrap();
    // The snapshot comes (a tick may come first).
    loop {
        let msg = ws.next().await.unwrap().unwrap();
        let text = msg.to_text().unwrap().to_string();
        if text.contains("\"type\":\"tick\"") {
            continue;
        }
        assert!(text.contains("\"type\":\"arrivals\"") && text.contains("\"snapshot\":true"), "{text}");
        break;
    }
}
