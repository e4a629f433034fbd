//! Helpers for the Prometheus tests: a tiny blocking HTTP client, promtool, a real
//! `prometheus` server run as a child process (killed on drop), waiting on a condition with a
//! deadline, and a hostile-string strategy. Included with `mod prom_support;`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dwcp_telemetry::export::prometheus::http::OPEN_METRIC;
use dwcp_telemetry::Registry;

/// Poll `f` every few milliseconds until it returns true; panic naming `what` if it is still
/// false after `within`. For waiting on a state instead of sleeping a guessed time.
#[track_caller]
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        if started.elapsed() > within {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `dwcp_telemetry_http_connections_open` in `registry` (the one given to the server builder):
/// the connections the server holds now. `None` before a server registered it.
pub fn open_connections(registry: &Registry) -> Option<f64> {
    registry
        .existing_gauge(OPEN_METRIC)
        .map(|f| f.handle().get())
}

/// Strings of up to 7 characters that stress escaping: quotes, backslashes, line feeds, tabs,
/// braces, commas, `=`, spaces, `#`, multi-byte UTF-8 and plain letters. `with_cr`: also
/// `'\r'` (a CR is stored as a line feed, so a model that needs one series per generated
/// label set leaves it out).
pub fn hostile_string(with_cr: bool) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let mut special = vec![
        '"', '\\', '\n', '\t', '{', '}', ',', '=', ' ', '#', 'é', '日', '✓',
    ];
    if with_cr {
        special.push('\r');
    }
    // Each special character as likely as the whole a–z range, as with one `Just` apiece.
    let weight = special.len() as u32;
    proptest::collection::vec(
        prop_oneof![
            weight => proptest::sample::select(special),
            1 => proptest::char::range('a', 'z'),
        ],
        0..8,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// Whether `bin` runs. If not: panic when `DWCP_REQUIRE_PROMETHEUS=1`, else print why and
/// return false so the test can return early.
pub fn have(bin: &str) -> bool {
    let ok = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let msg = format!(
            "`{bin}` not found on PATH: install Debian's `prometheus` package (bash scripts/setup.sh)"
        );
        if std::env::var("DWCP_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
            panic!("{msg} (DWCP_REQUIRE_PROMETHEUS=1, so this is a failure)");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ok
}

/// Run `program args` with `text` on its stdin; returns (exit code, stdout, stderr).
pub fn run_with_stdin(program: &str, args: &[&str], text: &str) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let owned = text.to_owned();
    // Write from another thread so a large text cannot deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(owned.as_bytes());
    });
    let out = child.wait_with_output().expect("child output");
    writer.join().expect("writer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `promtool check metrics` on `text` (stdin); returns (exit code, stdout + stderr).
pub fn promtool_check(text: &str) -> (i32, String) {
    let (code, mut all, err) = run_with_stdin("promtool", &["check", "metrics"], text);
    all.push_str(&err);
    (code, all)
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send raw bytes, read until the server closes (requests carry `Connection: close`).
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(buf)
}

pub fn parse_response(bytes: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `method path` with extra headers, `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let bytes = raw(addr, req.as_bytes()).expect("request");
    parse_response(&bytes)
}

pub fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[])
}

/// Percent-encode a query parameter.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A real Prometheus server on loopback scraping `targets` every second; killed on drop.
pub struct PrometheusProcess {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl PrometheusProcess {
    pub fn start(job: &str, target: SocketAddr) -> PrometheusProcess {
        Self::start_with_args(job, target, &[])
    }

    /// Like [`PrometheusProcess::start`], with extra command-line flags (e.g.
    /// `--enable-feature=native-histograms`).
    pub fn start_with_args(job: &str, target: SocketAddr, args: &[&str]) -> PrometheusProcess {
        let dir = std::env::temp_dir().join(format!(
            "dwcp-prom-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ free_port() as u128
        ));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: '{job}'\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-lifecycle")
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let p = PrometheusProcess { child, addr, dir };
        p.wait_until(Duration::from_secs(60), "prometheus ready", || {
            let r = raw(
                p.addr,
                format!(
                    "GET /-/ready HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    p.addr
                )
                .as_bytes(),
            )
            .ok()?;
            (parse_response(&r).status == 200).then_some(())
        });
        p
    }

    /// Like [`PrometheusProcess::start`], but also loads `rules` (file name, contents), written
    /// next to the config, and evaluates them every `eval_interval` (e.g. `"1s"`).
    pub fn start_with_rules(
        job: &str,
        target: SocketAddr,
        rules: &[(&str, &str)],
        eval_interval: &str,
    ) -> PrometheusProcess {
        let dir = std::env::temp_dir().join(format!(
            "dwcp-prom-rules-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        let mut files = String::new();
        for (name, text) in rules {
            std::fs::write(dir.join(name), text).expect("rule file");
            files.push_str(&format!("  - '{}'\n", dir.join(name).display()));
        }
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: {eval_interval}\n\
             rule_files:\n{files}\
             scrape_configs:\n  - job_name: '{job}'\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let p = PrometheusProcess { child, addr, dir };
        p.wait_until(Duration::from_secs(60), "prometheus ready", || {
            let req = format!(
                "GET /-/ready HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                p.addr
            );
            let r = raw(p.addr, req.as_bytes()).ok()?;
            (parse_response(&r).status == 200).then_some(())
        });
        p
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Poll `f` until it returns `Some`, or panic with the server log after `timeout`.
    pub fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; prometheus log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/api/v1/query` → the raw JSON.
    pub fn query(&self, promql: &str) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}", urlencode(promql));
        let r = get(self.addr, &path);
        serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null)
    }

    /// The single vector/scalar value of `promql`, if the result has exactly one sample.
    pub fn query_value(&self, promql: &str) -> Option<f64> {
        let v = self.query(promql);
        let result = v.get("data")?.get("result")?;
        let value = match result.as_array() {
            Some(a) if a.len() == 1 => a[0].get("value")?,
            Some(_) => return None,
            None => result, // scalar
        };
        value.get(1)?.as_str()?.parse().ok()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// The main example (`examples/dwcp_manager.rs`) run as a process.

/// `cargo test` builds the examples next to the test binaries' directory. `None` (with a
/// printed reason) when it was not built; in CI (`DWCP_CI`) that is a failure.
pub fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.join("examples");
    let bin = dir.join(format!("dwcp_manager{}", std::env::consts::EXE_SUFFIX));
    if bin.exists() {
        Some(bin)
    } else {
        assert!(
            std::env::var_os("DWCP_CI").is_none(),
            "{} was not built, and DWCP_CI forbids skipping",
            bin.display()
        );
        eprintln!(
            "SKIPPED: {} not built (run `cargo test` without --test, or `cargo build --example dwcp_manager`)",
            bin.display()
        );
        None
    }
}

/// A running main example: killed on drop.
pub struct Running {
    pub child: Child,
    pub lines: std::sync::mpsc::Receiver<String>,
    pub addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the main example on ephemeral ports (its consensus endpoint too) with `--every 0.5`
/// and `extra` flags, and waits (up to 30 s) for the manager's address it prints.
pub fn start_example(bin: &Path, extra: &[&str]) -> Running {
    start_example_with_env(bin, extra, &[])
}

/// [`start_example`] with extra environment variables.
pub fn start_example_with_env(bin: &Path, extra: &[&str], env: &[(&str, &str)]) -> Running {
    use std::io::BufRead;
    let mut child = Command::new(bin)
        .envs(env.iter().copied())
        .args(["--listen", "127.0.0.1:0", "--every", "0.5"])
        .args(["--consensus-listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn example");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The address is on the "serving http://…" line; lines before it are set-up notes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the example prints its address");
        if let Some(rest) = line.split("http://").nth(1) {
            break rest
                .split('/')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no address in {line:?}"));
        }
    };
    Running { child, lines, addr }
}

/// `promtool check metrics` on `text`: no errors, and lint complaints only about names the
/// catalog keeps from the seeds and documents as deviations (a `MetricDef` with a note, e.g.
/// `dwcp_latency_milliseconds`, `probft_byzantine_nodes_total`). Returns the flagged names.
#[track_caller]
pub fn assert_promtool_only_documented(text: &str) -> std::collections::BTreeSet<String> {
    let (code, out) = promtool_check(text);
    let flagged: std::collections::BTreeSet<String> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_once(' ').map_or(l, |(n, _)| n).to_owned())
        .collect();
    let undocumented: Vec<&String> = flagged
        .iter()
        .filter(|n| dwcp_telemetry::catalog::find(n).map_or(true, |d| d.note.is_empty()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "promtool flags names that are not documented seed deviations: {undocumented:?}\n{out}"
    );
    // 0: clean; 3: lint findings only (1 would be a parse error).
    assert_eq!(code, if flagged.is_empty() { 0 } else { 3 }, "{out}");
    flagged
}
