//! Tests of the relay client against SMTP sinks on loopback.

use super::*;
use tokio::io::AsyncReadExt;

#[test]
fn dots_are_stuffed() {
    assert_eq!(stuffed(b".a\r\nb\r\n..c\r\n"), b"..a\r\nb\r\n...c\r\n.\r\n");
    assert_eq!(stuffed(b"x"), b"x\r\n.\r\n");
}

#[tokio::test]
async fn multi_line_replies_are_joined() {
    let mut r = BufReader::new(&b"250-mx.b.test\r\n250-STARTTLS\r\n250 SIZE 10\r\n"[..]);
    let resp = read_reply(&mut r).await.unwrap().unwrap();
    assert_eq!(resp.code, 250);
    assert!(resp.text.contains("STARTTLS"));
}

/// A reply line past the bound, or endless continuation lines, end the attempt instead of
/// filling memory; bytes that are not UTF-8 are shown, not fatal.
#[tokio::test]
async fn oversized_replies_are_refused_and_odd_bytes_tolerated() {
    let long = [b"250-".to_vec(), vec![b'x'; 2 * MAX_REPLY_LINE]].concat();
    let e = read_reply(&mut BufReader::new(&long[..]))
        .await
        .unwrap_err();
    assert!(e.temporary && e.text.contains("longer than"), "{}", e.text);
    let endless = b"250-x\r\n".repeat(MAX_REPLY / 7 + 10);
    let e = read_reply(&mut BufReader::new(&endless[..]))
        .await
        .unwrap_err();
    assert!(e.text.contains("longer than"), "{}", e.text);
    let latin1 = b"250 consegnato \xe8 ok\r\n";
    let resp = read_reply(&mut BufReader::new(&latin1[..]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.code, 250);
}

/// What an SMTP sink offers and what it saw.
#[derive(Default)]
struct SinkLog {
    /// Connections accepted.
    conns: usize,
    /// Messages taken: accepted recipients and bytes.
    messages: Vec<(Vec<String>, Vec<u8>)>,
    /// Transactions whose MAIL arrived with DATA or BDAT already behind it (one write).
    grouped: usize,
    /// Lone-dot messages (a transaction abandoned after a pipelined 354).
    empty: usize,
    /// Every MAIL command, as sent.
    mails: Vec<String>,
}

type Log = Arc<Mutex<SinkLog>>;

/// A plain SMTP sink on loopback. It offers PIPELINING and CHUNKING as asked, refuses
/// recipients whose local part starts with `no`, answers DATA with 354 even when no
/// recipient was accepted (as a pipelining server may), and closes a connection after
/// `per_conn` messages (0: never).
async fn sink_with(pipelining: bool, chunking: bool, per_conn: usize) -> (String, Log) {
    sink_slow(pipelining, chunking, per_conn, Duration::ZERO, false).await
}

/// The same, answering MAIL only after `slow` when the message came with it (as a server
/// that answers a chunked group once it has committed the message), and with `broken_tls`
/// offering STARTTLS, then answering the TLS handshake with nonsense.
async fn sink_slow(
    pipelining: bool,
    chunking: bool,
    per_conn: usize,
    slow: Duration,
    broken_tls: bool,
) -> (String, Log) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let log: Log = Arc::default();
    let shared = log.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            shared.lock().unwrap().conns += 1;
            let log = shared.clone();
            tokio::spawn(async move {
                let mut io = BufReader::new(s);
                io.get_mut().write_all(b"220 sink\r\n").await.unwrap();
                let mut done = 0;
                let mut rcpts: Vec<String> = Vec::new();
                let mut line = String::new();
                while io.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let cmd = line.to_ascii_uppercase();
                    let original = std::mem::take(&mut line);
                    let answer: Vec<u8> = if cmd.starts_with("EHLO") {
                        let mut a = String::from("250-sink\r\n");
                        if pipelining {
                            a.push_str("250-PIPELINING\r\n");
                        }
                        if chunking {
                            a.push_str("250-CHUNKING\r\n");
                        }
                        if broken_tls {
                            a.push_str("250-STARTTLS\r\n");
                        }
                        a.push_str("250 8BITMIME\r\n");
                        a.into_bytes()
                    } else if cmd.starts_with("MAIL") {
                        let behind = String::from_utf8_lossy(io.buffer()).to_ascii_uppercase();
                        if behind.contains("DATA\r\n") || behind.contains("BDAT ") {
                            log.lock().unwrap().grouped += 1;
                        }
                        if behind.contains("BDAT ") {
                            tokio::time::sleep(slow).await;
                        }
                        log.lock()
                            .unwrap()
                            .mails
                            .push(original.trim_end().to_string());
                        rcpts.clear();
                        b"250 ok\r\n".to_vec()
                    } else if cmd.starts_with("RCPT") {
                        let to = original[8..].trim().trim_matches(['<', '>']).to_string();
                        if to.starts_with("no") {
                            b"550 no such user\r\n".to_vec()
                        } else {
                            rcpts.push(to);
                            b"250 ok\r\n".to_vec()
                        }
                    } else if cmd.starts_with("DATA") {
                        io.get_mut().write_all(b"354 go\r\n").await.unwrap();
                        let mut data = Vec::new();
                        loop {
                            let mut l = Vec::new();
                            io.read_until(b'\n', &mut l).await.unwrap();
                            if l == b".\r\n" {
                                break;
                            }
                            data.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
                        }
                        let mut log = log.lock().unwrap();
                        if rcpts.is_empty() {
                            log.empty += 1;
                            b"554 no valid recipients\r\n".to_vec()
                        } else {
                            done += 1;
                            log.messages.push((std::mem::take(&mut rcpts), data));
                            b"250 ok\r\n".to_vec()
                        }
                    } else if cmd.starts_with("BDAT") {
                        let mut words = cmd.split_whitespace().skip(1);
                        let n: usize = words.next().unwrap().parse().unwrap();
                        let last = words.next() == Some("LAST");
                        let mut data = vec![0; n];
                        io.read_exact(&mut data).await.unwrap();
                        assert!(last, "the relay sends one chunk");
                        if rcpts.is_empty() {
                            b"503 no valid recipients\r\n".to_vec()
                        } else {
                            done += 1;
                            log.lock()
                                .unwrap()
                                .messages
                                .push((std::mem::take(&mut rcpts), data));
                            b"250 ok\r\n".to_vec()
                        }
                    } else if cmd.starts_with("STARTTLS") {
                        let _ = io.get_mut().write_all(b"220 go ahead\r\n").await;
                        let _ = io.get_mut().write_all(b"this is not TLS\r\n").await;
                        return;
                    } else if cmd.starts_with("QUIT") {
                        return;
                    } else {
                        b"250 ok\r\n".to_vec()
                    };
                    io.get_mut().write_all(&answer).await.unwrap();
                    if per_conn > 0 && done == per_conn {
                        return;
                    }
                }
            });
        }
    });
    (addr, log)
}

/// A sink that offers neither PIPELINING nor CHUNKING.
async fn sink(per_conn: usize) -> (String, Log) {
    sink_with(false, false, per_conn).await
}

fn relay(addr: &str) -> Relay {
    relay_with_timeout(addr, Duration::from_secs(5))
}

fn relay_with_timeout(addr: &str, timeout: Duration) -> Relay {
    Relay::new(RelayConfig {
        helo: "a.test".into(),
        routes: [("c.test".to_string(), addr.to_string())].into(),
        resolver: None,
        mx_port: 25,
        tls: crate::tls::client_config(false, &[]).unwrap(),
        opportunistic_tls: crate::tls::client_config(false, &[]).unwrap(),
        timeout,
        source: None,
    })
}

fn delivery(rcpt: &[String]) -> Delivery<'_> {
    Delivery {
        domain: "c.test",
        mail_from: "a@a.test",
        rcpt_to: rcpt,
        message: b"Subject: x\r\n\r\nx\r\n",
        require_tls: false,
    }
}

/// RFC 7435: toward an ordinary domain a failed TLS handshake is followed by a plain
/// session; toward a PEC domain it is a temporary failure (pec.md §8.2).
#[tokio::test]
async fn a_failed_handshake_falls_back_to_plain_only_outside_pec() {
    let (addr, log) = sink_slow(true, true, 0, Duration::ZERO, true).await;
    let r = relay(&addr);
    let rcpt = vec!["x@c.test".to_string()];
    let o = r.deliver(delivery(&rcpt)).await.unwrap();
    assert_eq!(o, vec![RcptOutcome::Accepted]);
    assert_eq!(
        log.lock().unwrap().conns,
        2,
        "the handshake, then the plain session"
    );
    let mut pec = delivery(&rcpt);
    pec.require_tls = true;
    let e = r.deliver(pec).await.unwrap_err();
    assert!(
        e.temporary && e.text.contains("TLS handshake"),
        "{}",
        e.text
    );
    assert_eq!(
        log.lock().unwrap().messages.len(),
        1,
        "nothing in clear toward a PEC domain, not even on the pooled plain connection"
    );
}

/// RFC 6152 §3: a message with 8-bit bytes is announced with BODY=8BITMIME to a server that
/// offers it (the sink does), and goes unchanged; a 7-bit one is not announced.
#[tokio::test]
async fn eight_bit_messages_are_announced() {
    for offers in [false, true] {
        let (addr, log) = sink_with(offers, offers, 0).await;
        let r = relay(&addr);
        let rcpt = vec!["x@c.test".to_string()];
        let eight = "Subject: caffè\r\n\r\nperché\r\n".as_bytes();
        for message in [eight, b"Subject: x\r\n\r\nx\r\n".as_slice()] {
            let d = Delivery {
                message,
                ..delivery(&rcpt)
            };
            assert_eq!(r.deliver(d).await.unwrap(), vec![RcptOutcome::Accepted]);
        }
        let log = log.lock().unwrap();
        assert_eq!(log.mails.len(), 2);
        assert!(log.mails[0].ends_with(" BODY=8BITMIME"), "{:?}", log.mails);
        assert!(!log.mails[1].contains("BODY="), "{:?}", log.mails);
        assert_eq!(log.messages[0].1, eight);
    }
}

#[tokio::test]
async fn one_connection_carries_many_transactions() {
    let (addr, log) = sink(0).await;
    let r = relay(&addr);
    let rcpt = vec!["x@c.test".to_string()];
    for _ in 0..5 {
        let o = r.deliver(delivery(&rcpt)).await.unwrap();
        assert_eq!(o, vec![RcptOutcome::Accepted]);
    }
    assert_eq!(log.lock().unwrap().conns, 1);
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_peer_is_replaced() {
    for offers in [false, true] {
        let (addr, log) = sink_with(offers, offers, 1).await;
        let r = relay(&addr);
        let rcpt = vec!["x@c.test".to_string()];
        for _ in 0..3 {
            let o = r.deliver(delivery(&rcpt)).await.unwrap();
            assert_eq!(o, vec![RcptOutcome::Accepted]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = log.lock().unwrap();
        assert_eq!((log.conns, log.messages.len()), (3, 3), "chunking {offers}");
    }
}

#[tokio::test]
async fn with_pipelining_and_chunking_a_transaction_is_one_write() {
    let (addr, log) = sink_with(true, true, 0).await;
    let r = relay(&addr);
    let rcpt = vec![
        "x@c.test".to_string(),
        "no@c.test".to_string(),
        "y@c.test".to_string(),
    ];
    let mut d = delivery(&rcpt);
    // A line that starts with a dot travels as is: BDAT carries no dot-stuffing.
    d.message = b"Subject: x\r\n\r\n.riga\r\n";
    for _ in 0..3 {
        let o = r.deliver(d).await.unwrap();
        assert_eq!(o[0], RcptOutcome::Accepted);
        assert!(
            matches!(&o[1], RcptOutcome::Permanent(t) if t.starts_with("550")),
            "{o:?}"
        );
        assert_eq!(o[2], RcptOutcome::Accepted);
    }
    let log = log.lock().unwrap();
    assert_eq!((log.conns, log.grouped, log.messages.len()), (1, 3, 3));
    assert_eq!(log.messages[0].0, ["x@c.test", "y@c.test"]);
    assert_eq!(log.messages[0].1, d.message);
}

#[tokio::test]
async fn with_pipelining_mail_rcpt_and_data_go_together() {
    let (addr, log) = sink_with(true, false, 0).await;
    let r = relay(&addr);
    let rcpt = vec!["x@c.test".to_string()];
    let mut d = delivery(&rcpt);
    d.message = b"Subject: x\r\n\r\n.riga\r\n";
    r.deliver(d).await.unwrap();
    let log = log.lock().unwrap();
    assert_eq!((log.conns, log.grouped), (1, 1));
    assert_eq!(log.messages[0].1, d.message);
}

#[tokio::test]
async fn a_pipelined_transaction_without_recipients_is_abandoned_cleanly() {
    for chunking in [false, true] {
        let (addr, log) = sink_with(true, chunking, 0).await;
        let r = relay(&addr);
        let nobody = vec!["no1@c.test".to_string(), "no2@c.test".to_string()];
        let o = r.deliver(delivery(&nobody)).await.unwrap();
        assert!(
            o.iter().all(|o| matches!(o, RcptOutcome::Permanent(_))),
            "{o:?}"
        );
        // The connection is still in step: the next transaction reuses it.
        let rcpt = vec!["x@c.test".to_string()];
        assert_eq!(
            r.deliver(delivery(&rcpt)).await.unwrap(),
            vec![RcptOutcome::Accepted]
        );
        let log = log.lock().unwrap();
        assert_eq!(
            (log.conns, log.messages.len()),
            (1, 1),
            "chunking {chunking}"
        );
        // After a 354 to the pipelined DATA, the owed message was a lone dot.
        assert_eq!(log.empty, usize::from(!chunking));
    }
}

#[tokio::test]
async fn a_chunked_group_answered_after_the_commit_is_not_sent_twice() {
    // The peer answers MAIL only once the message is committed, later than a command answer
    // is waited for (4 × 50 ms) but within the wait for a final answer (10 × 50 ms).
    let (addr, log) = sink_slow(true, true, 0, Duration::from_millis(300), false).await;
    let r = relay_with_timeout(&addr, Duration::from_millis(50));
    let rcpt = vec!["x@c.test".to_string()];
    assert_eq!(
        r.deliver(delivery(&rcpt)).await.unwrap(),
        vec![RcptOutcome::Accepted]
    );
    let log = log.lock().unwrap();
    assert_eq!((log.conns, log.messages.len()), (1, 1));
}

/// A dnsmasq on `127.0.0.60` answering for `c.test` (MX `mx.c.test` at 127.0.0.1),
/// `nomail.test` (null MX) and nothing else under `test` (NXDOMAIN). `None` when dnsmasq
/// is not installed outside CI; under `CI=true` its absence fails the test.
fn dnsmasq() -> Option<(std::process::Child, SocketAddr)> {
    let ip = "127.0.0.60";
    let port = std::net::UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            &format!("--port={port}"),
            &format!("--listen-address={ip}"),
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--local=/test/",
            "--mx-host=c.test,mx.c.test,10",
            "--host-record=mx.c.test,127.0.0.1",
            "--mx-host=nomail.test,.",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(c) => Some((c, SocketAddr::new(ip.parse().unwrap(), port))),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("dnsmasq is needed for the MX lookup test (Debian package dnsmasq-base): {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: dnsmasq not available ({e}); install dnsmasq-base");
            None
        }
    }
}

/// The MX path (RFC 5321 §5.1) through a real DNS server: a domain's MX is found and
/// used; a null MX (RFC 7505) and a domain that does not exist fail for good at once
/// instead of being retried for a day.
#[tokio::test]
async fn mx_lookup_finds_the_server_and_refuses_null_mx_and_nxdomain() {
    let Some((mut dns, resolver)) = dnsmasq() else {
        return;
    };
    let (addr, log) = sink(0).await;
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let r = Relay::new(RelayConfig {
        helo: "a.test".into(),
        routes: HashMap::new(),
        resolver: Some(resolver),
        mx_port: port,
        tls: crate::tls::client_config(false, &[]).unwrap(),
        opportunistic_tls: crate::tls::client_config(false, &[]).unwrap(),
        timeout: Duration::from_secs(5),
        source: None,
    });
    let rcpt = vec!["x@c.test".to_string()];
    // dnsmasq may take a moment to listen.
    let mut outcome = None;
    for _ in 0..50 {
        match r.deliver(delivery(&rcpt)).await {
            Ok(o) => {
                outcome = Some(o);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(outcome, Some(vec![RcptOutcome::Accepted]));
    assert_eq!(log.lock().unwrap().messages.len(), 1);
    for (domain, expected) in [("nomail.test", "null MX"), ("none.test", "NXDOMAIN")] {
        let rcpt = vec![format!("x@{domain}")];
        let mut d = delivery(&rcpt);
        d.domain = domain;
        let e = r.deliver(d).await.unwrap_err();
        assert!(
            !e.temporary && e.text.contains(expected),
            "{domain}: {}",
            e.text
        );
    }
    let _ = dns.kill();
    let _ = dns.wait();
}
