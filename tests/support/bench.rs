//! Shared by the criterion benches: the single-thread stopwatch (thread CPU time).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The clock of the single-thread loops. By default it is the thread's CPU time
/// (`CLOCK_THREAD_CPUTIME_ID`), so time the thread spends descheduled by other work on a
/// shared machine is not counted; `DWCP_BENCH_WALL=1` switches to wall-clock time. Two-thread
/// cases always use wall-clock time (a descheduled thread would otherwise hide contention).
#[derive(Clone, Copy)]
pub struct Stopwatch {
    cpu: bool,
}

impl Stopwatch {
    pub fn from_env() -> Self {
        let wall = std::env::var_os("DWCP_BENCH_WALL").is_some_and(|v| v != "0");
        Stopwatch {
            cpu: !wall && thread_cpu::now().is_some(),
        }
    }

    pub fn label(self) -> &'static str {
        if self.cpu {
            "thread CPU time (CLOCK_THREAD_CPUTIME_ID)"
        } else {
            "wall-clock time"
        }
    }

    #[inline(always)]
    pub fn start(self) -> (Instant, Duration) {
        let cpu = if self.cpu {
            thread_cpu::now().unwrap_or_default()
        } else {
            Duration::ZERO
        };
        (Instant::now(), cpu)
    }

    #[inline(always)]
    pub fn elapsed(self, (wall, cpu): (Instant, Duration)) -> Duration {
        match self.cpu.then(thread_cpu::now).flatten() {
            Some(now) => now.saturating_sub(cpu),
            None => wall.elapsed(),
        }
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub mod thread_cpu {
    use std::time::Duration;

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }

    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    /// CPU time consumed by the calling thread.
    pub fn now() -> Option<Duration> {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clock_gettime` is the C library's (glibc/musl, always linked by std on
        // Linux); on 64-bit Linux `struct timespec` is two 64-bit integers, matching
        // `Timespec`, and the pointer is to a live local for the duration of the call.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        let nanos = u32::try_from(ts.tv_nsec).ok()?;
        (rc == 0).then(|| Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), nanos))
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub mod thread_cpu {
    pub fn now() -> Option<std::time::Duration> {
        None
    }
}

/// Where criterion writes its results: `CRITERION_HOME`, else `<CARGO_TARGET_DIR>/criterion`,
/// else `<target>/criterion` found from the bench binary's path.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // The bench binary lives in <target>/<profile>/deps/.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|t| t.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median (ns per iteration) of `group/id`, if this run (started at `since`) wrote it.
pub fn median_ns(dir: &Path, group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let file = dir.join(group).join(id).join("new").join("estimates.json");
    let modified = std::fs::metadata(&file).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let median = &text[text.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// Samples in the benches' input tables (a power of two: index with `i & (N - 1)`).
pub const N: usize = 4096;

/// The `le` bounds given to the bucketed peers: 10 µs · 2^k, k = 0..16 (10 µs – 328 ms).
pub fn peer_buckets() -> Vec<f64> {
    (0..16).map(|k| 1e-5 * f64::from(1u32 << k)).collect()
}

/// The input table ([`crate::latency_table`]), in nanoseconds (`u64`) and in seconds (`f64`).
pub struct Inputs {
    pub ns: Box<[u64; N]>,
    pub secs: Box<[f64; N]>,
}

impl Inputs {
    pub fn new() -> Self {
        let table = crate::latency_table(N);
        let mut ns = Box::new([0u64; N]);
        ns.copy_from_slice(&table);
        let mut secs = Box::new([0f64; N]);
        for (s, &v) in secs.iter_mut().zip(table.iter()) {
            *s = v as f64 / 1e9;
        }
        Inputs { ns, secs }
    }
}

impl Default for Inputs {
    fn default() -> Self {
        Self::new()
    }
}
