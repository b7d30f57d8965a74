use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

use super::*;

#[test]
fn urls_parse_into_scheme_host_port_and_credentials() {
    let p = parse("socks5://alice:s3cret@Proxy.example.com:1080").unwrap();
    assert_eq!(
        (p.scheme(), p.host(), p.port(), p.has_credentials()),
        (Scheme::Socks5, "proxy.example.com", 1080, true)
    );
    assert_eq!(p.url(), "socks5://alice:s3cret@proxy.example.com:1080");
    assert_eq!(p.shown(), "socks5://proxy.example.com:1080");
    let h = parse("HTTP://10.0.0.7:3128/").unwrap();
    assert_eq!(
        (h.scheme(), h.url()),
        (Scheme::Http, "http://10.0.0.7:3128".into())
    );
    assert!(!h.has_credentials());
}

#[test]
fn anything_else_is_refused_with_its_reason() {
    let cases = [
        ("https://p:1", ProxyError::Scheme),
        ("socks4://p:1", ProxyError::Scheme),
        ("p:1", ProxyError::Scheme),
        ("", ProxyError::Scheme),
        ("http://p", ProxyError::Port),
        ("http://p:0", ProxyError::Port),
        ("http://p:65536", ProxyError::Port),
        ("http://p:+80", ProxyError::Port),
        ("http://:80", ProxyError::Host),
        ("http://[::1]:80", ProxyError::Host),
        ("http://bad_host:80", ProxyError::Host),
        ("http://-a.b:80", ProxyError::Host),
        ("http://p:80/path", ProxyError::Shape),
        ("http://p:80?x=1", ProxyError::Shape),
        ("http://p :80", ProxyError::Shape),
        ("http://user@p:80", ProxyError::Credentials),
        ("http://:pw@p:80", ProxyError::Credentials),
        ("http://u:@p:80", ProxyError::Credentials),
        ("http://a@b:pw@p:80", ProxyError::Credentials),
    ];
    for (url, want) in cases {
        assert_eq!(parse(url), Err(want.clone()), "{url}");
    }
    let long_user = format!("socks5://{}:pw@p:1", "u".repeat(256));
    assert_eq!(parse(&long_user), Err(ProxyError::Credentials));
}

#[test]
fn printing_never_shows_credentials() {
    let p = parse("http://alice:hunter2@proxy.local:8080").unwrap();
    for shown in [format!("{p:?}"), format!("{p}"), p.shown()] {
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("proxy.local:8080"), "{shown}");
    }
    assert!(p.to_ureq().is_ok());
}

#[test]
fn handshake_messages_are_the_rfc_bytes() {
    let p = parse("socks5://u:pw@h:1").unwrap();
    assert_eq!(socks5_greeting(&p), [5, 2, 0, 2]);
    assert_eq!(socks5_greeting(&parse("socks5://h:1").unwrap()), [5, 1, 0]);
    assert_eq!(socks5_auth("u", "pw"), [1, 1, b'u', 2, b'p', b'w']);
    assert_eq!(
        socks5_connect("api.bybit.com", 443).unwrap(),
        [&[5, 1, 0, 3, 13][..], b"api.bybit.com", &[1, 187]].concat()
    );
    assert_eq!(
        socks5_connect("1.2.3.4", 80).unwrap(),
        [5, 1, 0, 1, 1, 2, 3, 4, 0, 80]
    );
    let h = parse("http://u:pw@h:1").unwrap();
    assert_eq!(
        connect_request(&h, "api.bybit.com", 443),
        "CONNECT api.bybit.com:443 HTTP/1.1\r\nHost: api.bybit.com:443\r\n\
         Proxy-Authorization: Basic dTpwdw==\r\n\r\n"
    );
}

/// A one-connection proxy on loopback running `serve`; its URL prefix host:port.
fn one_shot(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        serve(s);
    });
    addr.to_string()
}

fn read_n(s: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).unwrap();
    b
}

#[test]
fn connect_tunnels_after_a_2xx_and_keeps_what_follows() {
    let at = one_shot(|mut s| {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.extend(read_n(&mut s, 1));
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with("CONNECT ex.test:443 HTTP/1.1\r\n"),
            "{head}"
        );
        // The answer and the tunnel's first bytes in one write.
        s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\nhello")
            .unwrap();
    });
    let p = parse(&format!("http://{at}")).unwrap();
    let mut s = dial(Some(&p), "ex.test", 443, Duration::from_secs(5)).unwrap();
    assert_eq!(read_n(&mut s, 5), b"hello");
}

#[test]
fn a_refused_connect_is_an_error_naming_the_proxy_without_credentials() {
    let at = one_shot(|mut s| {
        let _ = read_n(&mut s, 10);
        s.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .unwrap();
    });
    let p = parse(&format!("http://bob:pw1@{at}")).unwrap();
    let e = dial(Some(&p), "ex.test", 443, Duration::from_secs(5)).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("407") && msg.contains(&at), "{msg}");
    assert!(!msg.contains("pw1"), "{msg}");
}

#[test]
fn socks5_authenticates_and_connects_by_domain_name() {
    let at = one_shot(|mut s| {
        assert_eq!(read_n(&mut s, 4), [5, 2, 0, 2]);
        s.write_all(&[5, 2]).unwrap();
        assert_eq!(
            read_n(&mut s, 9),
            [1, 3, b'b', b'o', b'b', 3, b'p', b'w', b'1']
        );
        s.write_all(&[1, 0]).unwrap();
        let want = [&[5, 1, 0, 3, 7][..], b"ex.test", &[0x01, 0xBB]].concat();
        assert_eq!(read_n(&mut s, want.len()), want);
        // Bound to a domain name: its length, the name, the port; then data.
        s.write_all(&[5, 0, 0, 3, 2, b'h', b'x', 0, 1, b'o', b'k'])
            .unwrap();
    });
    let p = parse(&format!("socks5://bob:pw1@{at}")).unwrap();
    let mut s = dial(Some(&p), "ex.test", 443, Duration::from_secs(5)).unwrap();
    assert_eq!(read_n(&mut s, 2), b"ok");
}

#[test]
fn socks5_failures_say_why() {
    let at = one_shot(|mut s| {
        let _ = read_n(&mut s, 3);
        s.write_all(&[5, 0]).unwrap();
        let _ = read_n(&mut s, 10);
        s.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
    });
    let p = parse(&format!("socks5://{at}")).unwrap();
    let e = dial(Some(&p), "1.2.3.4", 80, Duration::from_secs(5)).unwrap_err();
    assert!(e.to_string().contains("connection refused"), "{e}");
    let at = one_shot(|mut s| {
        let _ = read_n(&mut s, 3);
        s.write_all(&[5, 0xFF]).unwrap();
    });
    let p = parse(&format!("socks5://{at}")).unwrap();
    let e = dial(Some(&p), "ex.test", 80, Duration::from_secs(5)).unwrap_err();
    assert!(e.to_string().contains("none of our methods"), "{e}");
}

#[test]
fn a_silent_proxy_times_out_within_the_bound() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let at = one_shot(move |_s| {
        // Hold the connection open, say nothing, until the test is over.
        let _ = rx.recv();
    });
    let p = parse(&format!("socks5://{at}")).unwrap();
    let t0 = Instant::now();
    let e = dial(Some(&p), "ex.test", 80, Duration::from_millis(300)).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
        "{e:?}"
    );
    drop(tx);
}

#[test]
fn without_a_proxy_it_connects_directly() {
    let at = one_shot(|mut s| s.write_all(b"hi").unwrap());
    let (host, port) = at.rsplit_once(':').unwrap();
    let mut s = dial(None, host, port.parse().unwrap(), Duration::from_secs(5)).unwrap();
    assert_eq!(read_n(&mut s, 2), b"hi");
}

#[test]
fn a_sealed_proxy_opens_for_its_owner_only() {
    let key = SecretKey::derive(b"test");
    // Texts long enough that random ciphertext never contains them by chance
    // (a two-letter password did, once in about fifty runs).
    let p = parse("socks5://proxy-user:proxy-password-42@proxy-host.example:1080").unwrap();
    let sealed = p.seal(&key, 7);
    assert!(
        !sealed.contains("proxy-password-42") && !sealed.contains("proxy-host.example"),
        "{sealed}"
    );
    assert_eq!(open(&key, 7, &sealed), Ok(p));
    assert_eq!(open(&key, 8, &sealed), Err(ProxyError::Unreadable));
    assert_eq!(
        open(&SecretKey::derive(b"other"), 7, &sealed),
        Err(ProxyError::Unreadable)
    );
}
