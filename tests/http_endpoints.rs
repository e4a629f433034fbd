//! The HTTP endpoints over real sockets: routing, negotiation, auth, limits, bad input.

mod prom_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use dwcp_telemetry::export::prometheus::http::OPEN_METRIC;
use dwcp_telemetry::export::prometheus::{render, BackgroundServer, Format, PrometheusServer};
use dwcp_telemetry::Registry;

use prom_support::{get, open_connections, parse_response, raw, request, wait_until};

fn registry() -> Registry {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let lat = reg
        .histogram("dwcp_request_duration_seconds", "Request latency")
        .dynamic_labels(["operation"])
        .register()
        .unwrap();
    let h = lat.with_labels_or_overflow(&["migrate"]);
    for ms in 1..=100u64 {
        h.record(ms * 1_000_000);
    }
    reg.counter("dwcp_requests_total", "Requests")
        .dynamic_labels(["operation", "status"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&["migrate", "ok"])
        .inc_by(200);
    reg.counter("dwcp_errors_total", "Errors")
        .dynamic_labels(["type"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&["timeout"])
        .inc_by(10);
    reg
}

/// `registry()` plus 4,000 counters with a 4 KiB help each: a text exposition of about 16 MB,
/// far larger than what loopback socket buffers absorb, so a client that stops reading keeps
/// its connection busy writing the response.
fn big_registry() -> Registry {
    let reg = registry();
    let help = "h".repeat(4096);
    for i in 0..4000 {
        reg.counter(format!("big_family_{i}_total"), help.as_str())
            .register()
            .unwrap()
            .handle()
            .inc();
    }
    reg
}

/// A server on `reg` for the tests of routing, formats and limits. Its head deadline is long,
/// so a client thread descheduled between connecting and writing its request (a busy CI
/// machine) is not cut off; the tests of the head deadline use [`serve_default`].
fn serve(reg: &Registry) -> BackgroundServer {
    PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .header_read_timeout(Duration::from_secs(30))
        .start_background()
        .unwrap()
}

/// A server on `reg` with the default limits: a 2 s head deadline (hyper's own, a backstop,
/// 1 s later).
fn serve_default(reg: &Registry) -> BackgroundServer {
    PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .start_background()
        .unwrap()
}

/// Wait until the server serving `reg` holds no connection (a finished request's connection
/// is closed by its client before the server has dropped it).
fn no_open_connections(reg: &Registry) {
    wait_until(
        "the server to drop every connection",
        Duration::from_secs(10),
        || open_connections(reg) == Some(0.0),
    );
}

/// What a scrape served in `format` on the only open connection: `reg` rendered here once that
/// connection is gone, with `dwcp_telemetry_http_connections_open` at 1 (the scrape's own
/// connection, open while the server rendered) instead of 0.
fn as_served_alone(reg: &Registry, format: Format) -> String {
    no_open_connections(reg);
    let text = render(reg, format);
    let now = format!("\n{OPEN_METRIC}{{version=\"3.0.0\"}} 0\n");
    assert!(text.contains(&now), "no {now:?} in:\n{text}");
    text.replacen(
        &now,
        &format!("\n{OPEN_METRIC}{{version=\"3.0.0\"}} 1\n"),
        1,
    )
}

#[test]
fn metrics_text_and_openmetrics() {
    let reg = registry();
    let server = serve(&reg);
    let addr = server.local_addr();
    no_open_connections(&reg);
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(r.body, as_served_alone(&reg, Format::Text));

    let prom_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    no_open_connections(&reg);
    let r = request(addr, "GET", "/metrics", &[("Accept", prom_accept)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(r.body, as_served_alone(&reg, Format::OpenMetrics));
    assert!(r.body.ends_with("# EOF\n"));

    let full = get(addr, "/metrics").body.len();
    let r = request(addr, "HEAD", "/metrics", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(full.to_string().as_str()));
    assert_eq!(r.body, "");
    server.shutdown();
}

#[test]
fn health_and_summary() {
    let reg = registry();
    let server = serve(&reg);
    let addr = server.local_addr();
    let r = get(addr, "/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], "3.0.0");
    assert!(v["uptime_seconds"].as_f64().unwrap() >= 0.0);

    let r = get(addr, "/metrics/summary");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let series = v["series"].as_array().unwrap();
    let lat = series
        .iter()
        .find(|s| s["name"] == "dwcp_request_duration_seconds")
        .unwrap();
    assert_eq!(lat["type"], "histogram");
    assert_eq!(lat["labels"]["operation"], "migrate");
    assert_eq!(lat["count"], 100);
    let snap = reg
        .existing_histogram("dwcp_request_duration_seconds")
        .unwrap()
        .with_labels_or_overflow(&["migrate"])
        .snapshot();
    assert_eq!(
        lat["p99"].as_f64().unwrap(),
        snap.quantile(0.99) as f64 / 1e9
    );
    assert_eq!(
        lat["p50"].as_f64().unwrap(),
        snap.quantile(0.5) as f64 / 1e9
    );
    assert_eq!(lat["max"].as_f64().unwrap(), snap.max() as f64 / 1e9);
    assert!(lat["rate"].as_f64().unwrap() > 0.0);
    let errors = &v["error_rates"][0];
    assert_eq!(errors["errors"], "dwcp_errors_total");
    assert_eq!(errors["requests"], "dwcp_requests_total");
    assert_eq!(errors["error_ratio"].as_f64(), Some(0.05)); // 10 / 200 in the first window

    // The next window sees only what was added since.
    reg.existing_counter("dwcp_requests_total")
        .unwrap()
        .with_labels_or_overflow(&["migrate", "ok"])
        .inc_by(40);
    reg.existing_counter("dwcp_errors_total")
        .unwrap()
        .with_labels_or_overflow(&["timeout"])
        .inc_by(10);
    // HEAD does not close the window.
    assert_eq!(request(addr, "HEAD", "/metrics/summary", &[]).status, 200);
    let v: serde_json::Value = serde_json::from_str(&get(addr, "/metrics/summary").body).unwrap();
    assert_eq!(v["error_rates"][0]["error_ratio"].as_f64(), Some(0.25));
    let v: serde_json::Value = serde_json::from_str(&get(addr, "/metrics/summary").body).unwrap();
    assert_eq!(v["error_rates"][0]["error_ratio"], serde_json::Value::Null); // no requests
    assert_eq!(v["error_rates"][0]["errors_per_second"].as_f64(), Some(0.0));
}

#[test]
fn routing_errors() {
    let reg = registry();
    let server = serve(&reg);
    let addr = server.local_addr();
    assert_eq!(get(addr, "/").status, 404);
    assert_eq!(get(addr, "/metrics/other").status, 404);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = request(addr, method, "/metrics", &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    let r = request(addr, "GET", "/metrics", &[("Content-Length", "5")]);
    // The server answers 413 without reading the body.
    assert_eq!(r.status, 413);
}

#[test]
fn bearer_token_auth() {
    let reg = registry();
    let server = PrometheusServer::builder(reg)
        .bind("127.0.0.1:0".parse().unwrap())
        .bearer_token("s3cret-token")
        .start_background()
        .unwrap();
    let addr = server.local_addr();
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"dwcp-telemetry\"")
    );
    for bad in [
        "Bearer s3cret-tokeN",
        "Bearer s3cret",
        "Basic czNjcmV0",
        "Bearer s3cret-token2",
    ] {
        assert_eq!(
            request(addr, "GET", "/metrics", &[("Authorization", bad)]).status,
            401
        );
    }
    let ok = request(
        addr,
        "GET",
        "/health",
        &[("Authorization", "Bearer s3cret-token")],
    );
    assert_eq!(ok.status, 200);
    assert!(PrometheusServer::builder(Registry::default())
        .bind("127.0.0.1:0".parse().unwrap())
        .bearer_token("bad token\n")
        .start_background()
        .is_err());
}

#[test]
fn oversized_headers_get_431() {
    let server = serve(&registry());
    let big = "x".repeat(64 * 1024);
    let r = request(server.local_addr(), "GET", "/metrics", &[("X-Big", &big)]);
    assert_eq!(r.status, 431);
    let many: Vec<(String, String)> = (0..100)
        .map(|i| (format!("X-H{i}"), "v".to_owned()))
        .collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = request(server.local_addr(), "GET", "/metrics", &refs);
    assert_eq!(r.status, 431);
}

fn is_clean_4xx_or_closed(bytes: &[u8]) -> bool {
    bytes.is_empty() || (bytes.starts_with(b"HTTP/1.1 4") && parse_response(bytes).status >= 400)
}

#[test]
fn garbage_requests_get_4xx_or_close() {
    let reg = registry();
    // The default 2 s head deadline: a case that never completes a head (blank lines only)
    // is closed by it.
    let server = serve_default(&reg);
    let addr = server.local_addr();
    let cases: [&[u8]; 7] = [
        b"\x00\x01\x02\xff\xfe garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\r\n\r\n\r\n\r\n",
    ];
    for case in cases {
        let started = Instant::now();
        let bytes = raw(addr, case).unwrap_or_default();
        assert!(
            is_clean_4xx_or_closed(&bytes),
            "{:?} -> {:?}",
            String::from_utf8_lossy(case),
            String::from_utf8_lossy(&bytes)
        );
        // Answered or closed by the head deadline at the latest, not left open until the
        // client's 10 s read timeout (allowing a busy machine).
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(8),
            "{:?} took {elapsed:?}",
            String::from_utf8_lossy(case)
        );
    }
    // Still serving afterwards.
    assert_eq!(get(addr, "/metrics").status, 200);
}

#[test]
fn slowloris_is_cut_off() {
    // The default 2 s head deadline.
    let server = serve_default(&registry());
    let addr = server.local_addr();
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // Never finish the head: the server must close (optionally with 408) by itself.
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf);
    let elapsed = started.elapsed();
    // Closed (EOF or reset), not still open at the client's read timeout...
    assert!(
        !matches!(&read, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "not closed after {elapsed:?}: {read:?}"
    );
    // ...by the head deadline (2 s, its backstop 3 s; room for a busy machine), not the 30 s
    // connection lifetime.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(
        is_clean_4xx_or_closed(&buf),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(get(addr, "/health").status, 200);
}

/// The value of `dwcp_telemetry_http_connections_rejected_total{reason}` on `/metrics`.
fn rejected(addr: SocketAddr, reason: &str) -> u64 {
    let body = get(addr, "/metrics").body;
    let label = format!("reason=\"{reason}\"");
    body.lines()
        .find(|l| {
            l.starts_with("dwcp_telemetry_http_connections_rejected_total{") && l.contains(&label)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no rejected counter for {reason} in:\n{body}"))
}

#[test]
fn connection_cap_evicts_a_connection_waiting_for_its_head() {
    let reg = registry();
    let server = PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .max_connections(1)
        .header_read_timeout(Duration::from_secs(60))
        .start_background()
        .unwrap();
    let addr = server.local_addr();
    // Hold the only slot with an unfinished request.
    let mut hog = TcpStream::connect(addr).unwrap();
    hog.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    wait_until(
        "the hog to hold the only slot",
        Duration::from_secs(10),
        || open_connections(&reg) == Some(1.0),
    );
    // The new request is served: the hog, still waiting for its head, makes room. Promptly:
    // not when a slot frees at the hog's 60 s head deadline or the 30 s connection lifetime
    // (nor a 503 after the 1 s wait for a slot); 5 s allows a busy machine.
    let started = Instant::now();
    assert_eq!(get(addr, "/health").status, 200);
    let served_in = started.elapsed();
    assert!(served_in < Duration::from_secs(5), "{served_in:?}");
    // The hog is closed (EOF or reset; it was evicted before the request was admitted), not
    // still open at this read timeout, far before its own deadline.
    hog.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let read = hog.read_to_end(&mut buf);
    assert!(
        !matches!(&read, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the hog was not closed: {read:?}"
    );
    assert!(rejected(addr, "evicted_idle") >= 1);
    assert_eq!(rejected(addr, "at_capacity"), 0);
}

#[test]
fn connection_cap_answers_503_when_every_connection_is_busy() {
    // A body far larger than what loopback socket buffers absorb, so a client that never
    // reads keeps its connection busy writing the response.
    let reg = big_registry();
    let server = PrometheusServer::builder(reg)
        .bind("127.0.0.1:0".parse().unwrap())
        .max_connections(1)
        .start_background()
        .unwrap();
    let addr = server.local_addr();
    let mut slow_reader = TcpStream::connect(addr).unwrap();
    slow_reader
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Wait for the response to start, then read no more.
    slow_reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut first = [0u8; 12];
    slow_reader.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // The slow reader's connection is busy (never evictable): the next one waits 1 s for a
    // slot, then gets 503 with Retry-After. Bounded: well before the busy connection's 10 s
    // write timeout would free the slot (and answer 200), with room for a busy machine.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let started = Instant::now();
        let r = get(addr, "/health");
        if r.status == 503 {
            assert_eq!(r.header("retry-after"), Some("1"));
            let waited = started.elapsed();
            assert!(waited < Duration::from_secs(6), "{waited:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never saw 503, last {}",
            r.status
        );
    }
    drop(slow_reader);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(addr, "/health").status != 200 {
        assert!(Instant::now() < deadline, "slot never freed");
    }
    assert!(rejected(addr, "at_capacity") >= 1);
}

#[test]
fn scrapes_do_not_stop_recorders() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    let reg = registry();
    let server = serve(&reg);
    let addr: SocketAddr = server.local_addr();
    let h = reg
        .histogram("hot_path_seconds", "h")
        .register()
        .unwrap()
        .handle();
    let stop = Arc::new(AtomicBool::new(false));
    // Scrapes finished, so the recorder can make sure some fall while it records (on a busy
    // machine the scrapers might otherwise not run until it is done).
    let scraped = Arc::new(AtomicU32::new(0));
    let scrapers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, scraped) = (stop.clone(), scraped.clone());
            std::thread::spawn(move || loop {
                assert_eq!(get(addr, "/metrics").status, 200);
                scraped.fetch_add(1, Ordering::Relaxed);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            })
        })
        .collect();
    for i in 0..2_000_000u64 {
        if i == 1_000_000 {
            // Halfway: wait for a scrape finished after this point.
            let seen = scraped.load(Ordering::Relaxed);
            wait_until("a scrape while recording", Duration::from_secs(60), || {
                scraped.load(Ordering::Relaxed) > seen
            });
        }
        h.record(1_000 + i % 1_000_000);
    }
    stop.store(true, Ordering::Relaxed);
    for t in scrapers {
        t.join().unwrap();
    }
    assert!(scraped.load(Ordering::Relaxed) > 0);
    assert_eq!(h.snapshot().count(), 2_000_000);
}

#[test]
fn async_start_and_shutdown() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = PrometheusServer::builder(registry())
            .bind("127.0.0.1:0".parse().unwrap())
            .start()
            .await
            .unwrap();
        let addr = server.local_addr();
        let r = tokio::task::spawn_blocking(move || get(addr, "/health"))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        server.shutdown().await;
        assert!(TcpStream::connect(addr).is_err());
    });
    // Binding an address in use is an error, not a panic.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = PrometheusServer::builder(registry())
        .bind(taken.local_addr().unwrap())
        .start_background()
        .unwrap_err();
    assert!(err.to_string().contains("cannot listen"), "{err}");
}

#[test]
fn a_client_that_stops_reading_is_closed_at_the_write_timeout() {
    // As above, a response far larger than the socket buffers, and a client that reads its
    // first bytes and then nothing: with a write timeout its connection is closed, the slot
    // frees, and the next client is served.
    let reg = big_registry();
    let server = PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .max_connections(1)
        .write_timeout(Duration::from_millis(500))
        .start_background()
        .unwrap();
    let addr = server.local_addr();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut first = [0u8; 12];
    stalled.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Bounded: the stalled connection goes after 0.5 s without progress; allow a loaded
    // machine 15 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if get(addr, "/health").status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled client kept the slot"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Read the counter from the registry, not through another 16 MB scrape (which a loaded
    // machine could itself stall past the 0.5 s write timeout).
    let stalled_count = reg
        .existing_counter("dwcp_telemetry_http_connections_rejected_total")
        .and_then(|f| f.try_with_labels(&["write_stalled"]).ok())
        .map(|c| c.get());
    assert_eq!(stalled_count, Some(1));
    drop(stalled);
}
