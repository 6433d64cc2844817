//! What `spawn` refuses.

use event_config::edge::Protocol;
use firmware_sim::readers::Endpoint;

use crate::common::*;

#[tokio::test]
async fn endpoints_that_do_not_suit_the_protocol_are_refused() {
    let clock = manual(t0());
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (Protocol::Ultra, Endpoint::Serial { link: tty_link(&dir, "ultra") }),
        (Protocol::Llrp, Endpoint::Connect("127.0.0.1:9".to_owned())),
        (Protocol::Mylaps, Endpoint::Listen(localhost())),
        (Protocol::Chronotrack, Endpoint::Serial { link: tty_link(&dir, "ct") }),
    ];
    for (protocol, endpoint) in cases {
        let err =
            firmware_sim::readers::spawn(spec("r1", protocol, endpoint.clone(), reader_clock(0, 0.0)), clock.clone())
                .await
                .expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{protocol:?} {endpoint:?}");
        assert!(err.to_string().starts_with(&format!("a {} reader (r1) cannot", protocol.as_str())), "{err}");
    }
    assert!(!tty_link(&dir, "ultra").exists(), "no pty was opened");
}
