//! The scrape survives a slowloris: 1,000 idle or trickling connections from the same host
//! (loopback) must not keep a normal `GET /metrics` from a prompt `200` (the spec: within 1 s;
//! the tests allow a busy CI machine [`NOT_STARVED`]); what the server closes to get there is
//! counted in `dwcp_telemetry_http_connections_rejected_total{reason}`.
//!
//! Everything runs on 127.0.0.1, every loop is bounded in count and time, and the tests run
//! one at a time (a lock) so their timings do not disturb each other on a 2-core CI machine.

mod prom_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dwcp_telemetry::export::prometheus::{BackgroundServer, PrometheusServer};
use dwcp_telemetry::Registry;

use prom_support::{open_connections, parse_response, raw, wait_until};

/// The spec: a scrape is answered within this (on a quiet machine it takes milliseconds, even
/// under the attacks below: the tests print the latencies).
const SCRAPE_SPEC: Duration = Duration::from_secs(1);
/// What the tests assert of each scrape: served promptly, not starved. The spec with room for
/// a debug build on a fresh, busy 2-core CI machine, where a scrape can take over 1 s without
/// any bug. A starved scrape waits far longer than this: until a 60 s head deadline or the
/// 30 s connection lifetime frees a slot when eviction is all that helps, for the 2 s head
/// deadline to free 64 slots at a time through a backlog of ~1,000 connections (about 30 s),
/// or until the 10 s read timeout of the test's client (which then sees no `200`).
const NOT_STARVED: Duration = Duration::from_secs(5);
/// The attack: connections held open from the same host.
const ATTACK_CONNECTIONS: usize = 1_000;
/// Of which this many trickle a header byte every 100 ms.
const TRICKLERS: usize = 50;
/// A metric every scrape must show.
const KNOWN: &str =
    "dwcp_requests_total{version=\"3.0.0\",operation=\"migrate\",status=\"ok\"} 200";
const REJECTED: &str = "dwcp_telemetry_http_connections_rejected_total";

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn registry() -> Registry {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    reg.counter("dwcp_requests_total", "Requests")
        .dynamic_labels(["operation", "status"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&["migrate", "ok"])
        .inc_by(200);
    reg
}

/// A scrape as Prometheus does it: connect, `GET`, read the whole answer (`Connection: close`).
/// Returns the status, the body and the time from connect to the last byte.
fn timed_get(addr: SocketAddr, path: &str) -> (u16, String, Duration) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let started = Instant::now();
    let result = raw(addr, request.as_bytes());
    let elapsed = started.elapsed();
    match result {
        Ok(bytes) => {
            let r = parse_response(&bytes);
            (r.status, r.body, elapsed)
        }
        Err(e) => (0, format!("io error: {e}"), elapsed),
    }
}

/// The value of `dwcp_telemetry_http_connections_rejected_total{reason}` in an exposition.
fn rejected(body: &str, reason: &str) -> u64 {
    let label = format!("reason=\"{reason}\"");
    body.lines()
        .find(|l| l.starts_with(REJECTED) && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no {REJECTED}{{{label}}} in:\n{body}"))
}

/// The soft limit on open files, from /proc (Linux); `None` elsewhere.
fn fd_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    // "unlimited" has no number: plenty.
    Some(soft.parse().unwrap_or(u64::MAX))
}

/// How many connections the attack can hold: 1,000, or fewer if the fd soft limit is too low
/// (this process holds both ends; the server needs about 80 and the harness some more).
fn attack_size() -> usize {
    let Some(limit) = fd_soft_limit() else {
        return ATTACK_CONNECTIONS;
    };
    let needed = ATTACK_CONNECTIONS as u64 + 200;
    if limit >= needed {
        return ATTACK_CONNECTIONS;
    }
    let n = limit.saturating_sub(200).max(100) as usize;
    eprintln!(
        "fd soft limit {limit} < {needed}: holding {n} connections instead of \
         {ATTACK_CONNECTIONS} (raise it with `ulimit -n 2048`; no crate in Cargo.lock is a \
         dependency here that could call setrlimit)"
    );
    n
}

/// Sockets of this process whose local port is `port`: the server's side of its connections
/// plus its listener (the test's client sockets have other local ports). `None` off Linux.
fn server_fds(port: u16) -> Option<usize> {
    let mut inodes = std::collections::HashSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(table) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = cols.get(1) else { continue };
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                if let Some(inode) = cols.get(9) {
                    inodes.insert(format!("socket:[{inode}]"));
                }
            }
        }
    }
    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        fds.filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|target| inodes.contains(target.to_string_lossy().as_ref()))
            .count(),
    )
}

/// Resident memory of this process in KiB (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Open `n` connections and leave them idle: a third send nothing, the rest part of a head.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..n {
        assert!(
            Instant::now() < deadline,
            "opening {n} connections took over 60 s"
        );
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        if i % 3 != 0 {
            // Already evicted ones may refuse the write: that is the point.
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
        }
        held.push(s);
    }
    held
}

/// Connections that trickle a header byte every 100 ms, from one thread, until `stop` or
/// `max` has passed. Returns the thread; it yields how many bytes went out.
fn trickle(
    addr: SocketAddr,
    n: usize,
    stop: Arc<AtomicBool>,
    max: Duration,
) -> std::thread::JoinHandle<u64> {
    let mut conns: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < max {
            for s in &mut conns {
                if s.write_all(b"a").is_ok() {
                    sent += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        sent
    })
}

fn serve(builder_timeout: Option<Duration>) -> (Registry, BackgroundServer) {
    let reg = registry();
    let mut b = PrometheusServer::builder(reg.clone()).bind("127.0.0.1:0".parse().unwrap());
    if let Some(t) = builder_timeout {
        b = b.header_read_timeout(t);
    }
    (reg, b.start_background().unwrap())
}

/// 1,000 idle connections and 50 tricklers, then 5 scrapes: all `200` with the known metric,
/// none starved ([`NOT_STARVED`]). `head_timeout`: `None` for the default; a long one shows
/// eviction alone keeps the scrape alive.
fn scrape_under_attack(head_timeout: Option<Duration>) {
    let _one = one_at_a_time();
    let (_reg, server) = serve(head_timeout);
    let addr = server.local_addr();
    let n = attack_size();
    let rss_before = rss_kib();

    let opened = Instant::now();
    let idle = open_idle(addr, n.saturating_sub(TRICKLERS));
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = trickle(addr, TRICKLERS, stop.clone(), Duration::from_secs(30));
    eprintln!(
        "held {} idle + {TRICKLERS} trickling connections (opened in {:?})",
        idle.len(),
        opened.elapsed()
    );

    let mut latencies = Vec::new();
    for i in 0..5 {
        let (status, body, elapsed) = timed_get(addr, "/metrics");
        assert_eq!(
            status, 200,
            "scrape {i}: {status} after {elapsed:?}: {body}"
        );
        assert!(body.contains(KNOWN), "scrape {i} lacks {KNOWN}:\n{body}");
        assert!(
            elapsed < NOT_STARVED,
            "scrape {i} took {elapsed:?}: starved (spec {SCRAPE_SPEC:?}, allowed {NOT_STARVED:?})"
        );
        latencies.push(elapsed);
        std::thread::sleep(Duration::from_millis(150));
    }

    let held_by_server = server_fds(addr.port());
    let rss_after = rss_kib();
    let (status, body, _) = timed_get(addr, "/metrics");
    assert_eq!(status, 200);
    let evicted = rejected(&body, "evicted_idle");
    stop.store(true, Ordering::Relaxed);
    let trickled = trickler.join().unwrap();
    eprintln!(
        "scrape latencies {latencies:?} (spec {SCRAPE_SPEC:?}); server sockets (listener included) {held_by_server:?}; \
         evicted_idle {evicted}, at_capacity {}, head_timeout {}; trickled {trickled} bytes; \
         RSS {rss_before:?} -> {rss_after:?} KiB (client and server in one process)",
        rejected(&body, "at_capacity"),
        rejected(&body, "head_timeout"),
    );
    assert!(evicted > 0, "nothing evicted:\n{body}");
    if let Some(fds) = held_by_server {
        // 64 connections + the listener + one being admitted + up to 8 being answered 503.
        assert!(fds <= 64 + 1 + 1 + 8, "the server holds {fds} sockets");
    }
    drop(idle);
    server.shutdown();
}

#[test]
fn scrapes_survive_1000_idle_and_trickling_connections() {
    scrape_under_attack(None);
}

#[test]
fn eviction_alone_keeps_the_scrape_alive_with_a_long_head_timeout() {
    scrape_under_attack(Some(Duration::from_secs(60)));
}

#[test]
fn trickled_head_is_cut_at_the_deadline_and_counted() {
    let _one = one_at_a_time();
    // Long enough that 20 trickled bytes fall inside it; the server's backstop (hyper's own
    // head timeout) is 1 s later, and closing there would not be counted as `head_timeout`.
    const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
    let (_reg, server) = serve(Some(HEAD_TIMEOUT));
    let addr = server.local_addr();
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // A byte every 100 ms must not extend the deadline.
    let mut trickled = 0u32;
    let closed_after = loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never closed (trickled {trickled} bytes)"
        );
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if s.write_all(b"a").is_err() {
                    break started.elapsed();
                }
                trickled += 1;
            }
            Err(_) => break started.elapsed(),
        }
    };
    eprintln!("trickling connection closed after {closed_after:?} ({trickled} bytes trickled)");
    // Not before the deadline (counted from the server's accept, after `started`)...
    assert!(
        closed_after >= HEAD_TIMEOUT - Duration::from_millis(50),
        "closed after {closed_after:?}, before the {HEAD_TIMEOUT:?} deadline"
    );
    // ...and by the deadline itself: this one connection is counted as a head timeout, which
    // only the server's deadline does (not the backstop 1 s later, not the 30 s connection
    // lifetime). The time seen here can lag on a busy machine; the bound only rules out a
    // connection left open until one of those.
    assert!(closed_after < Duration::from_secs(15), "{closed_after:?}");
    let (status, body, _) = timed_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(rejected(&body, "head_timeout"), 1, "{body}");
    server.shutdown();
}

/// Read one response with a `Content-Length` from a keep-alive connection.
fn read_response(s: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    return Err(ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let r = parse_response(&buf[..end + 4 + len]);
            return Ok((r.status, r.body));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn keep_alive_get(s: &mut TcpStream, path: &str) -> std::io::Result<(u16, String)> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())?;
    read_response(s)
}

/// Closed by the peer: EOF or reset within `within`.
fn is_closed(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

#[test]
fn keep_alive_connection_between_requests_is_evictable() {
    let _one = one_at_a_time();
    let reg = registry();
    let server = PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .max_connections(2)
        .header_read_timeout(Duration::from_secs(60))
        .start_background()
        .unwrap();
    let addr = server.local_addr();

    // A: a keep-alive scraper, now between requests.
    let mut a = TcpStream::connect(addr).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (status, body) = keep_alive_get(&mut a, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains(KNOWN));
    // B: connected later, has sent nothing yet. A's wait for its next head started when the
    // server flushed its response, before this client read it, so B, connecting after that
    // read, is already the later one; wait only until the server holds both.
    let mut b = TcpStream::connect(addr).unwrap();
    wait_until(
        "the server to hold A and B",
        Duration::from_secs(10),
        || open_connections(&reg) == Some(2.0),
    );

    // C finds both slots taken: A has waited longest for a head, so A makes room (at once:
    // not at A's 60 s head deadline).
    let (status, body, elapsed) = timed_get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(elapsed < NOT_STARVED, "{elapsed:?}");
    assert!(
        is_closed(&mut a, Duration::from_secs(5)),
        "the idle keep-alive connection was not evicted"
    );
    assert!(
        !is_closed(&mut b, Duration::from_millis(200)),
        "the newer connection was evicted instead"
    );
    drop(b);
    let (status, body, _) = timed_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(rejected(&body, "evicted_idle") >= 1, "{body}");
    assert_eq!(rejected(&body, "at_capacity"), 0, "{body}");
    server.shutdown();
}

#[test]
fn hundred_keep_alive_scrapers_do_not_starve_a_separate_scraper() {
    let _one = one_at_a_time();
    let (_reg, server) = serve(None);
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let reconnects = Arc::new(AtomicU64::new(0));
    let scrapers: Vec<_> = (0..100)
        .map(|_| {
            let (stop, served, reconnects) = (stop.clone(), served.clone(), reconnects.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut conn: Option<TcpStream> = None;
                // Bounded: until told to stop, or 30 s.
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
                    if conn.is_none() {
                        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                            Ok(s) => {
                                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                                conn = Some(s);
                            }
                            Err(_) => {
                                std::thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                        }
                    }
                    let Some(s) = conn.as_mut() else { continue };
                    match keep_alive_get(s, "/metrics") {
                        Ok((200, _)) => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        // Evicted between requests (or refused): reconnect, as clients do.
                        _ => {
                            conn = None;
                            reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    // Let the keep-alive scrapers fill the server.
    let warm = Instant::now();
    while served.load(Ordering::Relaxed) < 200 && warm.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for i in 0..10 {
        let (status, body, elapsed) = timed_get(addr, "/metrics");
        if status != 200 || !body.contains(KNOWN) || elapsed >= NOT_STARVED {
            failures.push(format!("scrape {i}: {status} after {elapsed:?}"));
        }
        latencies.push(elapsed);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in scrapers {
        t.join().unwrap();
    }
    eprintln!(
        "separate scraper latencies {latencies:?} (spec {SCRAPE_SPEC:?}); keep-alive scrapes {}, reconnects {}",
        served.load(Ordering::Relaxed),
        reconnects.load(Ordering::Relaxed)
    );
    assert!(failures.is_empty(), "{failures:?}");
    server.shutdown();
}

#[test]
fn reconnecting_flood_does_not_starve_scrapes() {
    let _one = one_at_a_time();
    let (reg, server) = serve(None);
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    // Two threads open connections as fast as they can, send part of a head, and keep the
    // newest 400 each (an attacker that reconnects whatever the server closes).
    let flood: Vec<_> = (0..2)
        .map(|_| {
            let (stop, opened) = (stop.clone(), opened.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut ring = std::collections::VecDeque::new();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
                    if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
                        ring.push_back(s);
                        opened.fetch_add(1, Ordering::Relaxed);
                    }
                    if ring.len() > 400 {
                        ring.pop_front();
                    }
                }
            })
        })
        .collect();
    // Scrape once the flood is at full strength: it has opened as many connections as its two
    // rings hold (so from now on it drops and replaces its oldest), and the server is at its
    // cap of 64 (63 between an evicted connection's removal and its replacement's admission).
    wait_until(
        "the flood to fill its rings and the server",
        Duration::from_secs(10),
        || {
            opened.load(Ordering::Relaxed) >= 2 * 400
                && open_connections(&reg).is_some_and(|n| n >= 63.0)
        },
    );
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for i in 0..5 {
        let (status, body, elapsed) = timed_get(addr, "/metrics");
        if status != 200 || !body.contains(KNOWN) || elapsed >= NOT_STARVED {
            failures.push(format!("scrape {i}: {status} after {elapsed:?}"));
        }
        latencies.push(elapsed);
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        t.join().unwrap();
    }
    eprintln!(
        "under a reconnecting flood ({} connections opened): scrape latencies {latencies:?} \
         (spec {SCRAPE_SPEC:?})",
        opened.load(Ordering::Relaxed)
    );
    assert!(failures.is_empty(), "{failures:?}");
    server.shutdown();
}
