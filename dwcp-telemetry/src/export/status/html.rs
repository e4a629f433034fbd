//! The status page's HTML: one document, inline style, one inline script, server-side SVG.
//! Every string that comes from a label, a name or an event goes through [`esc`].

use std::fmt::Write as _;

use super::{OperationRow, StatusSnapshot, DISTRIBUTION_BINS};
use crate::registry::Unit;

/// HTML-escapes text for element content and double-quoted attribute values: `& < > " '`,
/// and every control character (C0, DEL and C1) as a numeric reference. Runs of plain text
/// are copied whole.
pub(crate) fn esc(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let (mut i, mut plain) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        let (width, code) = match b {
            b'&' | b'<' | b'>' | b'"' | b'\'' | 0x00..=0x1f | 0x7f => (1, u32::from(b)),
            // U+0080..U+009F, the C1 controls, are 0xC2 0x80..0x9F in UTF-8.
            0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => (2, u32::from(bytes[i + 1])),
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[plain..i]);
        match code {
            0x26 => out.push_str("&amp;"),
            0x3c => out.push_str("&lt;"),
            0x3e => out.push_str("&gt;"),
            0x22 => out.push_str("&quot;"),
            0x27 => out.push_str("&#39;"),
            _ => {
                out.push_str("&#");
                put_u(out, u64::from(code));
                out.push(';');
            }
        }
        i += width;
        plain = i;
    }
    out.push_str(&s[plain..]);
}

/// Appends `n` in decimal, without the formatting machinery.
fn put_u(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[at..] {
        out.push(char::from(d));
    }
}

const STYLE: &str = "\
:root{--go:#1a7f37;--caution:#b58a00;--nogo:#c62828;--muted:#6b7280;--line:#e5e7eb}\
*{box-sizing:border-box}\
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111;background:#fafafa}\
header{display:flex;flex-wrap:wrap;gap:12px;align-items:center;padding:12px 16px;background:#fff;border-bottom:1px solid var(--line)}\
header h1{font-size:18px;margin:0;flex:1 1 auto}\
.meta{color:var(--muted);font-size:12px}\
main{padding:8px 16px;max-width:1400px;margin:0 auto}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:0 12px}\
section{background:#fff;border:1px solid var(--line);border-radius:6px;margin:12px 0;padding:8px 12px}\
h2{font-size:15px;margin:4px 0 8px}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);white-space:nowrap;vertical-align:middle}\
td:first-child{max-width:38vw;overflow:hidden;text-overflow:ellipsis}\
th{font-weight:600;font-size:12px;color:var(--muted)}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:700}\
.GO,.closed,.healthy,.ok{background:var(--go)}\
.CAUTION,.half_open,.degraded{background:var(--caution)}\
.NO-GO,.open,.unhealthy,.critical,.error{background:var(--nogo)}\
.unknown,.warning{background:var(--muted)}\
#decision{font-size:20px;padding:6px 18px}\
.labels{color:var(--muted);font-size:12px}\
.empty{color:var(--muted)}\
svg.dist{display:block}\
svg.dist path{fill:#4f6bed}\
svg.dist line{stroke:var(--nogo);stroke-width:1}\
@media (max-width:600px){body{font-size:13px}main{padding:4px 6px}section{padding:6px}th,td{padding:3px 4px}}";

/// Re-fetches the fragment every 5 s and swaps it in; keeps the old content on any failure.
const SCRIPT: &str = "\
(function(){var m=document.getElementById('content');\
function tick(){fetch('/status?fragment=1',{credentials:'same-origin',cache:'no-store'})\
.then(function(r){if(!r.ok)throw new Error(r.status);return r.text();})\
.then(function(t){m.innerHTML=t;document.body.dataset.refreshed=String(Date.now());})\
.catch(function(){document.body.dataset.stale='1';});}\
setInterval(tick,5000);})();";

/// The whole page.
pub(crate) fn page(s: &StatusSnapshot, nonce: &str) -> String {
    let body = fragment(s);
    let mut o = String::with_capacity(body.len() + 4096);
    o.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    o.push_str("<title>DWCP status</title><style>");
    o.push_str(STYLE);
    o.push_str("</style></head><body><header><h1>DWCP service status</h1>");
    o.push_str("<span class=\"meta\">refreshes every 5 s · <a href=\"/status.json\">status.json</a> · <a href=\"/metrics\">metrics</a></span></header>");
    o.push_str("<main id=\"content\">");
    o.push_str(&body);
    o.push_str("</main><script nonce=\"");
    esc(&mut o, nonce);
    o.push_str("\">");
    o.push_str(SCRIPT);
    o.push_str("</script></body></html>");
    o
}

/// Appends `v` in `unit` for a person (`1.25 ms`); the text needs no escaping (digits, `.`,
/// `-`, unit letters, `–` for a non-finite value).
fn put_value(o: &mut String, v: f64, unit: Unit) {
    if !v.is_finite() {
        o.push('–');
        return;
    }
    let _ = match unit {
        Unit::Seconds => {
            let a = v.abs();
            if a == 0.0 {
                o.write_str("0")
            } else if a < 1e-6 {
                write!(o, "{:.0} ns", v * 1e9)
            } else if a < 1e-3 {
                write!(o, "{:.1} µs", v * 1e6)
            } else if a < 1.0 {
                write!(o, "{:.2} ms", v * 1e3)
            } else {
                write!(o, "{v:.3} s")
            }
        }
        Unit::Bytes => write!(o, "{v:.0} B"),
        _ => write!(o, "{v:.4}"),
    };
}

/// `30s`, `5m`, `1h`, `7d` as seconds, for ordering windows (unknown forms sort last).
fn window_seconds(w: &str) -> f64 {
    let (n, unit) = w.split_at(
        w.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(w.len()),
    );
    let n: f64 = n.parse().unwrap_or(f64::INFINITY);
    n * match unit {
        "ms" => 1e-3,
        "s" | "" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "w" => 604800.0,
        _ => f64::INFINITY,
    }
}

fn fmt_ratio(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{:.2}%", v * 100.0),
        _ => "–".into(),
    }
}

fn fmt_pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.1}%"),
        _ => "–".into(),
    }
}

fn ago(at_unix: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(at_unix);
    let d = (now - at_unix).max(0.0);
    if d < 60.0 {
        format!("{d:.0} s ago")
    } else if d < 3600.0 {
        format!("{:.0} min ago", d / 60.0)
    } else {
        format!("{:.1} h ago", d / 3600.0)
    }
}

fn badge(o: &mut String, class: &str, text: &str, id: Option<&str>) {
    o.push_str("<span class=\"badge ");
    esc(o, class);
    o.push('"');
    if let Some(id) = id {
        o.push_str(" id=\"");
        esc(o, id);
        o.push('"');
    }
    o.push_str(" data-value=\"");
    esc(o, text);
    o.push_str("\">");
    esc(o, text);
    o.push_str("</span>");
}

/// `k=v, k=v` as plain text (the caller escapes it once).
fn labels(o: &mut String, l: &[(String, String)]) {
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            o.push_str(", ");
        }
        o.push_str(k);
        o.push('=');
        o.push_str(v);
    }
}

/// A log-x bar chart of the distribution, with a red line at p99: one path for all the bars,
/// integer coordinates (144 px wide in all, 28 px tall at most), no float formatting.
fn svg(o: &mut String, r: &OperationRow) {
    const H: u64 = 28;
    let bins = &r.distribution;
    if bins.is_empty() {
        o.push_str("<span class=\"empty\">no data</span>");
        return;
    }
    // 144 px wide in all: 6 to 144 px a bar.
    let bar = 144 / bins.len().clamp(1, DISTRIBUTION_BINS) as u64;
    let w = bar * bins.len() as u64;
    let peak = bins.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    o.push_str("<svg class=\"dist\" width=\"");
    put_u(o, w);
    o.push_str("\" height=\"28\" viewBox=\"0 0 ");
    put_u(o, w);
    o.push_str(" 28\" role=\"img\"><title>");
    put_u(o, r.count);
    o.push_str(" values, ");
    put_value(o, bins[0].0, r.unit);
    o.push_str(" to ");
    put_value(o, r.max, r.unit);
    o.push_str(" (log scale); red line: p99</title><path d=\"");
    let mut p99_x = None;
    for (i, &(upper, count)) in (0u64..).zip(bins) {
        if p99_x.is_none() && upper >= r.quantiles[2] {
            p99_x = Some(i * bar + bar / 2);
        }
        if count == 0 {
            continue;
        }
        let h = (((count as f64 / peak).sqrt() * (H - 2) as f64).round() as u64).max(1);
        // From the bar's bottom-left corner: up, right, down.
        o.push('M');
        put_u(o, i * bar);
        o.push_str(" 28v-");
        put_u(o, h);
        o.push('h');
        put_u(o, bar.saturating_sub(1).max(1));
        o.push('v');
        put_u(o, h);
        o.push('z');
    }
    o.push_str("\"/>");
    if let Some(x) = p99_x {
        o.push_str("<line x1=\"");
        put_u(o, x);
        o.push_str("\" x2=\"");
        put_u(o, x);
        o.push_str("\" y1=\"0\" y2=\"28\"/>");
    }
    o.push_str("</svg>");
}

/// The page's content (also served alone for the refresh script).
pub(crate) fn fragment(s: &StatusSnapshot) -> String {
    let mut o = String::with_capacity(8192 + s.operations.len() * 1200);
    // Overview.
    o.push_str("<section id=\"overview\"><h2>Overview</h2><p>Decision: ");
    match s.sla.decision {
        Some(d) => badge(&mut o, d, d, Some("decision")),
        None => o.push_str(
            "<span id=\"decision\" class=\"empty\" data-value=\"\">no SLA exported</span>",
        ),
    }
    o.push_str(" <span class=\"meta\">version ");
    esc(&mut o, &s.version);
    let _ = write!(
        o,
        " · up {:.0} s · rates over the last {:.1} s</span></p></section>",
        s.uptime_seconds, s.window_seconds
    );

    // SLA, health and breakers side by side on a wide screen.
    o.push_str("<div class=\"grid\">");
    o.push_str("<section id=\"sla\"><h2>SLA</h2>");
    if let Some(b) = s.sla.error_budget_remaining {
        o.push_str("<p>Error budget remaining: <b id=\"error-budget\">");
        esc(&mut o, &fmt_ratio(Some(b)));
        o.push_str("</b></p>");
    }
    if s.sla.rows.is_empty() {
        o.push_str("<p class=\"empty\">No SLA compliance exported.</p>");
    } else {
        // One row per SLI, one column per window (shortest first).
        let mut windows: Vec<&str> = s.sla.rows.iter().map(|r| r.window.as_str()).collect();
        windows.sort_by(|a, b| {
            window_seconds(a)
                .total_cmp(&window_seconds(b))
                .then(a.cmp(b))
        });
        windows.dedup();
        let mut slis: Vec<&str> = s.sla.rows.iter().map(|r| r.sli.as_str()).collect();
        slis.sort_unstable();
        slis.dedup();
        o.push_str("<div class=\"scroll\"><table><tr><th>SLI</th>");
        for w in &windows {
            o.push_str("<th>");
            esc(&mut o, w);
            o.push_str("</th>");
        }
        o.push_str("</tr>");
        for sli in &slis {
            o.push_str("<tr><td>");
            esc(&mut o, sli);
            o.push_str("</td>");
            for w in &windows {
                o.push_str("<td data-sli=\"");
                esc(&mut o, sli);
                o.push_str("\" data-window=\"");
                esc(&mut o, w);
                o.push_str("\">");
                match s.sla.rows.iter().find(|r| r.sli == *sli && r.window == *w) {
                    // Compliance exported as 1 (met) or 0 (missed) reads as a word.
                    Some(r) if r.compliance == 1.0 => badge(&mut o, "ok", "met", None),
                    Some(r) if r.compliance == 0.0 => badge(&mut o, "error", "missed", None),
                    Some(r) => esc(&mut o, &format!("{:.4}", r.compliance)),
                    None => o.push('–'),
                }
                o.push_str("</td>");
            }
            o.push_str("</tr>");
        }
        o.push_str("</table></div>");
    }
    o.push_str("</section>");

    // Health.
    o.push_str("<section id=\"health\"><h2>Health</h2>");
    if s.health.is_empty() {
        o.push_str("<p class=\"empty\">No component status exported.</p>");
    } else {
        o.push_str("<div class=\"scroll\"><table><tr><th>component</th><th>status</th></tr>");
        for c in &s.health {
            o.push_str("<tr data-component=\"");
            esc(&mut o, &c.component);
            o.push_str("\"><td>");
            esc(&mut o, &c.component);
            o.push_str("</td><td>");
            badge(&mut o, &c.status, &c.status, None);
            o.push_str("</td></tr>");
        }
        o.push_str("</table></div>");
    }
    o.push_str("</section>");

    // Breakers.
    o.push_str("<section id=\"breakers\"><h2>Circuit breakers</h2>");
    if s.breakers.is_empty() {
        o.push_str("<p class=\"empty\">No circuit breakers.</p>");
    } else {
        o.push_str("<div class=\"scroll\"><table><tr><th>circuit</th><th>state</th><th>failure rate</th><th>slow-call rate</th><th>trips</th><th>resets</th></tr>");
        for b in &s.breakers {
            o.push_str("<tr data-circuit=\"");
            esc(&mut o, &b.circuit);
            o.push_str("\" data-state=\"");
            esc(&mut o, b.state);
            o.push_str("\"><td>");
            esc(&mut o, &b.circuit);
            o.push_str("</td><td>");
            badge(&mut o, b.state, b.state, None);
            let _ = write!(
                o,
                "</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                fmt_pct(b.failure_rate),
                fmt_pct(b.slow_call_rate),
                b.trips,
                b.resets
            );
        }
        o.push_str("</table></div>");
    }
    if !s.transitions.is_empty() {
        o.push_str("<h2>Recent transitions</h2><div class=\"scroll\"><table><tr><th>when</th><th>circuit</th><th>from</th><th>to</th></tr>");
        for t in &s.transitions {
            o.push_str("<tr><td>");
            esc(&mut o, &ago(t.at_unix));
            o.push_str("</td><td>");
            esc(&mut o, &t.circuit);
            o.push_str("</td><td>");
            esc(&mut o, &t.from);
            o.push_str("</td><td>");
            esc(&mut o, &t.to);
            o.push_str("</td></tr>");
        }
        o.push_str("</table></div>");
    }
    o.push_str("</section></div>");

    // Operations.
    o.push_str("<section id=\"operations\"><h2>Operations</h2>");
    if s.operations.is_empty() {
        o.push_str("<p class=\"empty\">No histograms recorded yet.</p>");
    } else {
        o.push_str("<div class=\"scroll\"><table><tr><th>metric</th><th>rate/s</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>distribution</th></tr>");
        let mut l = String::new();
        for r in &s.operations {
            o.push_str("<tr data-metric=\"");
            esc(&mut o, &r.metric);
            o.push_str("\" data-labels=\"");
            l.clear();
            labels(&mut l, &r.labels);
            esc(&mut o, &l);
            o.push_str("\"><td>");
            esc(&mut o, &r.metric);
            o.push_str("<br><span class=\"labels\">");
            esc(&mut o, &l);
            let _ = write!(
                o,
                "</span></td><td class=\"num\">{:.2}</td><td class=\"num\">{}</td>",
                r.rate,
                fmt_ratio(r.error_ratio)
            );
            for (q, name) in r.quantiles.iter().zip(["p50", "p90", "p99", "p999"]) {
                let _ = write!(o, "<td class=\"num\" data-q=\"{name}\" data-v=\"{q}\">");
                put_value(&mut o, *q, r.unit);
                o.push_str("</td>");
            }
            let _ = write!(o, "<td class=\"num\" data-q=\"max\" data-v=\"{}\">", r.max);
            put_value(&mut o, r.max, r.unit);
            o.push_str("</td><td>");
            svg(&mut o, r);
            o.push_str("</td></tr>");
        }
        o.push_str("</table></div>");
        if s.operations_omitted > 0 {
            let _ = write!(
                o,
                "<p class=\"empty\">{} quieter series not shown (see /status.json or /metrics).</p>",
                s.operations_omitted
            );
        }
    }
    o.push_str("</section>");

    // Anomalies.
    o.push_str("<section id=\"anomalies\"><h2>Recent anomalies</h2>");
    if s.anomalies.is_empty() {
        o.push_str("<p class=\"empty\">None detected.</p>");
    } else {
        o.push_str("<div class=\"scroll\"><table><tr><th>when</th><th>metric</th><th>severity</th><th>z</th><th>value</th></tr>");
        for a in &s.anomalies {
            o.push_str("<tr><td>");
            esc(&mut o, &ago(a.at_unix));
            o.push_str("</td><td>");
            esc(&mut o, &a.metric);
            o.push_str("</td><td>");
            badge(&mut o, a.severity, a.severity, None);
            let _ = write!(
                o,
                "</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.4}</td></tr>",
                a.z, a.value
            );
        }
        o.push_str("</table></div>");
    }
    o.push_str("</section>");

    // Spans.
    o.push_str("<section id=\"spans\"><h2>Recent sampled spans</h2>");
    if s.spans.is_empty() {
        o.push_str(
            "<p class=\"empty\">No sampled spans (tracing off, or nothing sampled yet).</p>",
        );
    } else {
        o.push_str("<div class=\"scroll\"><table><tr><th>operation</th><th>when</th><th>duration</th><th>status</th><th>trace</th></tr>");
        for op in &s.spans {
            for sp in op.spans.iter().rev() {
                o.push_str("<tr><td>");
                esc(&mut o, &op.operation);
                o.push_str("</td><td>");
                esc(&mut o, &ago(sp.start_unix));
                o.push_str("</td><td class=\"num\">");
                put_value(&mut o, sp.duration_seconds, Unit::Seconds);
                o.push_str("</td><td>");
                badge(
                    &mut o,
                    if sp.error { "error" } else { "ok" },
                    &sp.status,
                    None,
                );
                o.push_str("</td><td><code>");
                esc(&mut o, &sp.trace_id);
                o.push_str("</code></td></tr>");
            }
        }
        o.push_str("</table></div>");
    }
    o.push_str("</section>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_row_escapes_its_labels_once_and_draws_one_path() {
        let s = StatusSnapshot {
            version: "3.0.0".into(),
            uptime_seconds: 1.0,
            window_seconds: 1.0,
            operations: vec![OperationRow {
                metric: "lat<x>".into(),
                labels: vec![("op".into(), "a&<b>\"".into())],
                unit: Unit::Seconds,
                rate: 2.0,
                error_ratio: Some(0.25),
                count: 3,
                quantiles: [0.001, 0.002, 0.002, 0.002],
                max: 0.002,
                distribution: vec![(0.001, 1), (0.0015, 0), (0.002, 2)],
            }],
            operations_omitted: 0,
            breakers: Vec::new(),
            health: Vec::new(),
            sla: Default::default(),
            anomalies: Vec::new(),
            transitions: Vec::new(),
            spans: Vec::new(),
        };
        let f = fragment(&s);
        assert!(f.contains(
            "<tr data-metric=\"lat&lt;x&gt;\" data-labels=\"op=a&amp;&lt;b&gt;&quot;\"><td>lat&lt;x&gt;<br><span class=\"labels\">op=a&amp;&lt;b&gt;&quot;</span>"
        ), "{f}");
        assert!(f.contains("<td class=\"num\">25.00%</td>"), "{f}");
        assert!(
            f.contains("<td class=\"num\" data-q=\"p99\" data-v=\"0.002\">2.00 ms</td>"),
            "{f}"
        );
        // Three bins, 48 px each; the middle one is empty; the tallest is 26 px, the other
        // sqrt(1/2) of it; the p99 line in the third bin's middle.
        assert!(f.contains(
            "<svg class=\"dist\" width=\"144\" height=\"28\" viewBox=\"0 0 144 28\" role=\"img\"><title>3 values, 1.00 ms to 2.00 ms (log scale); red line: p99</title><path d=\"M0 28v-18h47v18zM96 28v-26h47v26z\"/><line x1=\"120\" x2=\"120\" y1=\"0\" y2=\"28\"/></svg>"
        ), "{f}");
    }

    #[test]
    fn escapes_c1_controls_and_keeps_other_text() {
        let mut o = String::new();
        esc(&mut o, "é\u{85}日\u{9f}\u{a0}x\u{7f}");
        assert_eq!(o, "é&#133;日&#159;\u{a0}x&#127;");
        let mut n = String::new();
        put_u(&mut n, 0);
        put_u(&mut n, 18_446_744_073_709_551_615);
        assert_eq!(n, "018446744073709551615");
    }

    #[test]
    fn escapes_everything_that_could_become_markup() {
        let mut o = String::new();
        esc(&mut o, "<script>alert(\"x\")</script>'&\n\r\u{7}");
        assert_eq!(
            o,
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;&#10;&#13;&#7;"
        );
    }
}
