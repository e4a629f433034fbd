//! Process resource metrics read from `/proc/self` at scrape time (Linux).
//!
//! [`install`] registers a collect hook ([`Registry::on_collect`]) that, at the start of
//! every collection, reads `/proc/self/status` and `/proc/self/stat` and sets
//! `dwcp_memory_usage_bytes{type="heap"|"stack"|"rss"}` (heap: `RssAnon`, stack: `VmStk`, rss: `VmRSS`), `dwcp_goroutines` (the OS thread
//! count) and `dwcp_cpu_usage_seconds` (user + system CPU time). On other systems, or when
//! `/proc` cannot be read, the gauges keep their last values (0 at first).

use super::manager::{Manager, Memory, MemoryType};
use crate::{Gauge, Registry};

/// What one read of `/proc/self` found; `None` where a field was missing or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// `RssAnon` in bytes: resident anonymous memory, i.e. the heap (and touched thread
    /// stacks) actually in RAM; `VmData` (the virtual data segment) on kernels before 4.5.
    pub heap_bytes: Option<f64>,
    /// `VmStk` in bytes (the main thread's stack).
    pub stack_bytes: Option<f64>,
    /// `VmRSS` in bytes.
    pub rss_bytes: Option<f64>,
    /// `Threads`.
    pub threads: Option<f64>,
    /// `utime + stime` of `/proc/self/stat`, in seconds.
    pub cpu_seconds: Option<f64>,
}

/// Clock ticks per second of `/proc/<pid>/stat` times: the kernel's `USER_HZ`, which Linux
/// fixes at 100 on every architecture for this interface.
pub const USER_HZ: f64 = 100.0;

impl ProcessSample {
    /// Reads `/proc/self/status` and `/proc/self/stat` (all `None` off Linux).
    pub fn read() -> ProcessSample {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        ProcessSample::parse(&status, &stat)
    }

    /// Parses the text of `/proc/<pid>/status` and `/proc/<pid>/stat`. Malformed text gives
    /// `None` fields, never a panic.
    pub fn parse(status: &str, stat: &str) -> ProcessSample {
        let kb = |key: &str| -> Option<f64> {
            status.lines().find_map(|l| {
                let rest = l.strip_prefix(key)?.strip_prefix(':')?;
                let mut parts = rest.split_whitespace();
                let n: f64 = parts.next()?.parse().ok()?;
                match parts.next() {
                    Some("kB") => Some(n * 1024.0),
                    None => Some(n),
                    Some(_) => None,
                }
            })
        };
        // The command name (field 2) is in parentheses and may hold spaces or ')': split
        // after the last ')'. Then field 3 is the state; utime and stime are fields 14, 15.
        let cpu_seconds = stat.rfind(')').and_then(|i| {
            let fields: Vec<&str> = stat[i + 1..].split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / USER_HZ)
        });
        ProcessSample {
            heap_bytes: kb("RssAnon").or_else(|| kb("VmData")),
            stack_bytes: kb("VmStk"),
            rss_bytes: kb("VmRSS"),
            threads: kb("Threads"),
            cpu_seconds,
        }
    }
}

/// The gauges a refresh sets.
#[derive(Debug, Clone)]
pub struct ResourceGauges {
    heap: Gauge,
    stack: Gauge,
    rss: Gauge,
    threads: Gauge,
    cpu: Gauge,
}

impl ResourceGauges {
    /// Binds the manager's resource gauges.
    pub fn new(m: &Manager) -> ResourceGauges {
        let mem = |t| m.memory_usage_bytes.get(&Memory { r#type: t });
        ResourceGauges {
            heap: mem(MemoryType::Heap),
            stack: mem(MemoryType::Stack),
            rss: mem(MemoryType::Rss),
            threads: m.goroutines.handle(),
            cpu: m.cpu_usage_seconds.handle(),
        }
    }

    /// Sets every gauge `sample` has a value for.
    pub fn apply(&self, sample: &ProcessSample) {
        let pairs = [
            (&self.heap, sample.heap_bytes),
            (&self.stack, sample.stack_bytes),
            (&self.rss, sample.rss_bytes),
            (&self.threads, sample.threads),
            (&self.cpu, sample.cpu_seconds),
        ];
        for (g, v) in pairs {
            if let Some(v) = v {
                g.set(v);
            }
        }
    }

    /// Reads `/proc/self` and sets the gauges.
    pub fn refresh(&self) {
        self.apply(&ProcessSample::read());
    }
}

/// Refreshes the manager's resource gauges from `/proc/self` at the start of every
/// collection of `registry` (a [`Registry::on_collect`] hook), and once now.
pub fn install(registry: &Registry, manager: &Manager) {
    let gauges = ResourceGauges::new(manager);
    gauges.refresh();
    registry.on_collect(move || gauges.refresh());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_text() {
        let status =
            "Name:\tx\nVmStk:\t     132 kB\nVmData:\t    2048 kB\nVmRSS:\t 10 kB\nRssAnon:\t 6 kB\nThreads:\t7\n";
        let stat = "4242 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 7 0";
        let s = ProcessSample::parse(status, stat);
        assert_eq!(s.heap_bytes, Some(6.0 * 1024.0));
        // Without RssAnon (kernels before 4.5): VmData.
        let old = ProcessSample::parse("VmData:\t    2048 kB\n", stat);
        assert_eq!(old.heap_bytes, Some(2048.0 * 1024.0));
        assert_eq!(s.stack_bytes, Some(132.0 * 1024.0));
        assert_eq!(s.rss_bytes, Some(10.0 * 1024.0));
        assert_eq!(s.threads, Some(7.0));
        assert_eq!(s.cpu_seconds, Some(4.0));
    }

    #[test]
    fn malformed_text_gives_none() {
        let s = ProcessSample::parse("VmData: lots kB\nThreads:\n", "no paren here");
        assert_eq!(s, ProcessSample::default());
        let s = ProcessSample::parse("VmData: 5 MB\n", "1 (x) S 1");
        assert_eq!(s, ProcessSample::default());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let s = ProcessSample::read();
        assert!(s.rss_bytes.unwrap() > 0.0);
        assert!(s.heap_bytes.unwrap() > 0.0);
        assert!(s.threads.unwrap() >= 1.0);
        assert!(s.cpu_seconds.unwrap() >= 0.0);
    }
}
