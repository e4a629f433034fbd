//! Named health checks with timeouts, aggregated into one status for `/health`.
//!
//! Aggregation: **unhealthy** when a critical check is unhealthy (failed or timed out);
//! else **degraded** when any check is degraded, or a non-critical one is unhealthy; else
//! **healthy**. With no checks registered the status is healthy.
//!
//! Metrics per check run: `dwcp_health_check_total{status, version}` and
//! `dwcp_health_check_duration_seconds{status, version}` with `status="success"` (healthy
//! or degraded) or `"failure"` (unhealthy, timed out); and per check
//! `dwcp_component_status{component, status, version}`, 1 for the component's current
//! status (`healthy`, `degraded`, `unhealthy`) and 0 for the other two.

use super::catalog_help;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

#[cfg(feature = "prometheus")]
use crate::export::json;
use crate::{Counter, Gauge, Histogram, LabelSet, RegistrationError, Registry};

/// A status: of one check, or the aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Working, with a problem worth a look (a non-critical dependency is down).
    Degraded,
    /// Not working.
    Unhealthy,
}

impl HealthStatus {
    /// `healthy`, `degraded` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// What a check returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// The component works.
    Healthy,
    /// It works, with a problem (the message says which).
    Degraded(String),
    /// It does not work (the message says why).
    Unhealthy(String),
}

impl CheckResult {
    fn status(&self) -> HealthStatus {
        match self {
            CheckResult::Healthy => HealthStatus::Healthy,
            CheckResult::Degraded(_) => HealthStatus::Degraded,
            CheckResult::Unhealthy(_) => HealthStatus::Unhealthy,
        }
    }

    fn message(&self) -> Option<&str> {
        match self {
            CheckResult::Healthy => None,
            CheckResult::Degraded(m) | CheckResult::Unhealthy(m) => Some(m),
        }
    }
}

impl<E: fmt::Display> From<Result<(), E>> for CheckResult {
    fn from(r: Result<(), E>) -> Self {
        match r {
            Ok(()) => CheckResult::Healthy,
            Err(e) => CheckResult::Unhealthy(e.to_string()),
        }
    }
}

/// Alias kept for readers of the seeds, where a check's status is its result.
pub type CheckStatus = HealthStatus;

type SyncCheck = Arc<dyn Fn() -> CheckResult + Send + Sync>;
type AsyncCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = CheckResult> + Send>> + Send + Sync>;

#[derive(Clone)]
enum Body {
    Sync(SyncCheck, Arc<Mutex<Option<Run>>>),
    Async(AsyncCheck),
}

#[derive(LabelSet)]
#[label(crate = crate)]
struct RunLabels {
    status: &'static str,
}

#[derive(LabelSet)]
#[label(crate = crate)]
struct ComponentLabels {
    component: String,
    status: &'static str,
}

#[derive(Clone)]
struct Check {
    name: Arc<str>,
    critical: bool,
    timeout: Duration,
    body: Body,
    status: [Gauge; 3],
}

/// One component's part of a [`HealthReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentReport {
    /// The check's name (the `component` label).
    pub name: String,
    /// Its status.
    pub status: HealthStatus,
    /// Whether it is critical.
    pub critical: bool,
    /// Why it is not healthy.
    pub message: Option<String>,
    /// How long the check took (its timeout when it timed out).
    pub duration: Duration,
}

/// The result of running every check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The aggregate (see the module docs for the rule).
    pub status: HealthStatus,
    /// Each check, in registration order.
    pub components: Vec<ComponentReport>,
}

impl HealthReport {
    /// The aggregate of `components` (the rule in the module docs).
    pub fn aggregate(components: &[ComponentReport]) -> HealthStatus {
        let mut status = HealthStatus::Healthy;
        for c in components {
            let s = match (c.status, c.critical) {
                (HealthStatus::Unhealthy, true) => HealthStatus::Unhealthy,
                (HealthStatus::Healthy, _) => HealthStatus::Healthy,
                _ => HealthStatus::Degraded,
            };
            status = status.max(s);
        }
        status
    }

    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    /// The `/health` document: `{"status":"degraded","version":"3.0.0","uptime_seconds":…,
    /// "components":[{"name":"cache","status":"unhealthy","critical":false,
    /// "duration_seconds":0.002,"message":"connection refused"}, …]}`.
    pub fn to_json(&self, registry: &Registry) -> String {
        let mut out = String::with_capacity(128 + 96 * self.components.len());
        out.push('{');
        json::key(&mut out, "status", true);
        json::string(&mut out, self.status.as_str());
        json::key(&mut out, "version", false);
        json::string(&mut out, registry.version());
        json::key(&mut out, "uptime_seconds", false);
        json::number(&mut out, registry.started().elapsed().as_secs_f64());
        json::key(&mut out, "components", false);
        out.push('[');
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            json::key(&mut out, "name", true);
            json::string(&mut out, &c.name);
            json::key(&mut out, "status", false);
            json::string(&mut out, c.status.as_str());
            json::key(&mut out, "critical", false);
            out.push_str(if c.critical { "true" } else { "false" });
            json::key(&mut out, "duration_seconds", false);
            json::number(&mut out, c.duration.as_secs_f64());
            if let Some(m) = &c.message {
                json::key(&mut out, "message", false);
                json::string(&mut out, m);
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

struct Shared {
    registry: Registry,
    checks: Mutex<Vec<Check>>,
    last: Mutex<Option<HealthReport>>,
    runs: [(Counter, Histogram); 2],
    family: crate::GaugeFamily<ComponentLabels>,
}

/// A set of named health checks. Cheap to clone (clones share the checks).
///
/// ```
/// use dwcp_telemetry::resilience::{CheckResult, HealthChecker, HealthStatus};
/// use dwcp_telemetry::Registry;
/// use std::time::Duration;
///
/// let registry = Registry::builder().version("3.0.0").build()?;
/// let health = HealthChecker::new(&registry)?;
/// health.add_check("database", true, Duration::from_secs(1), || CheckResult::Healthy);
/// health.add_check("cache", false, Duration::from_secs(1), || {
///     CheckResult::Unhealthy("connection refused".into())
/// });
/// let report = health.check_blocking();
/// assert_eq!(report.status, HealthStatus::Degraded); // only a non-critical check failed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HealthChecker {
    shared: Arc<Shared>,
}

impl fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.checks().iter().map(|c| c.name.to_string()).collect();
        f.debug_struct("HealthChecker")
            .field("checks", &names)
            .finish()
    }
}

impl HealthChecker {
    /// A checker whose metrics are registered on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, RegistrationError> {
        let total = registry
            .counter(
                "dwcp_health_check_total",
                catalog_help("dwcp_health_check_total"),
            )
            .labels::<RunLabels>()
            .register()?;
        let duration = registry
            .histogram(
                "dwcp_health_check_duration_seconds",
                catalog_help("dwcp_health_check_duration_seconds"),
            )
            .labels::<RunLabels>()
            .register()?;
        let family = registry
            .gauge(
                "dwcp_component_status",
                catalog_help("dwcp_component_status"),
            )
            .labels::<ComponentLabels>()
            .register()?;
        let run = |status| {
            let l = RunLabels { status };
            (total.get(&l), duration.get(&l))
        };
        Ok(HealthChecker {
            shared: Arc::new(Shared {
                registry: registry.clone(),
                checks: Mutex::new(Vec::new()),
                last: Mutex::new(None),
                runs: [run("success"), run("failure")],
                family,
            }),
        })
    }

    fn checks(&self) -> Vec<Check> {
        self.shared
            .checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn add(&self, name: &str, critical: bool, timeout: Duration, body: Body) {
        let gauge = |status| {
            self.shared.family.get(&ComponentLabels {
                component: name.to_owned(),
                status: HealthStatus::as_str(status),
            })
        };
        let check = Check {
            name: name.into(),
            critical,
            timeout,
            body,
            status: [
                gauge(HealthStatus::Healthy),
                gauge(HealthStatus::Degraded),
                gauge(HealthStatus::Unhealthy),
            ],
        };
        let mut checks = self.shared.checks.lock().unwrap_or_else(|p| p.into_inner());
        match checks.iter_mut().find(|c| *c.name == *name) {
            Some(c) => *c = check,
            None => checks.push(check),
        }
    }

    /// Register (or replace) a synchronous check. It runs on its own thread so that its
    /// `timeout` holds. A round that starts while the check is still running from another
    /// round (two probes at once) waits for that run, within the run's deadline, instead of
    /// starting it twice; a check still running past its timeout is reported unhealthy
    /// without being started again.
    pub fn add_check(
        &self,
        name: &str,
        critical: bool,
        timeout: Duration,
        check: impl Fn() -> CheckResult + Send + Sync + 'static,
    ) {
        self.add(
            name,
            critical,
            timeout,
            Body::Sync(Arc::new(check), Arc::new(Mutex::new(None))),
        );
    }

    /// Register (or replace) an asynchronous check: `check()` makes the future, polled by
    /// whoever runs [`HealthChecker::check`] (on `/health`, the server's tokio runtime).
    pub fn add_async_check<F>(
        &self,
        name: &str,
        critical: bool,
        timeout: Duration,
        check: impl Fn() -> F + Send + Sync + 'static,
    ) where
        F: Future<Output = CheckResult> + Send + 'static,
    {
        let make: AsyncCheck = Arc::new(move || Box::pin(check()));
        self.add(name, critical, timeout, Body::Async(make));
    }

    /// The last report, if any round ran.
    pub fn last_report(&self) -> Option<HealthReport> {
        self.shared
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Run every check at once (each within its timeout), update the metrics and return
    /// the report.
    pub async fn check(&self) -> HealthReport {
        let checks = self.checks();
        let results = Round::new(&checks).await;
        self.finish(&checks, results)
    }

    /// [`HealthChecker::check`] for code that is not async: blocks the calling thread (async
    /// checks are polled on it, outside any runtime).
    pub fn check_blocking(&self) -> HealthReport {
        block_on(self.check())
    }

    fn finish(&self, checks: &[Check], results: Vec<(CheckResult, Duration)>) -> HealthReport {
        let mut components = Vec::with_capacity(checks.len());
        for (c, (r, d)) in checks.iter().zip(results) {
            let status = r.status();
            let (count, hist) = &self.shared.runs[(status == HealthStatus::Unhealthy) as usize];
            count.inc();
            hist.record_duration(d);
            for (i, g) in c.status.iter().enumerate() {
                g.set(if i == status as usize { 1.0 } else { 0.0 });
            }
            components.push(ComponentReport {
                name: c.name.to_string(),
                status,
                critical: c.critical,
                message: r.message().map(str::to_owned),
                duration: d,
            });
        }
        let report = HealthReport {
            status: HealthReport::aggregate(&components),
            components,
        };
        *self.shared.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
        report
    }

    /// Rounds waiting for the run in progress of sync check `name` (0 when none runs).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn rounds_waiting(&self, name: &str) -> usize {
        let checks = self.shared.checks.lock().unwrap_or_else(|p| p.into_inner());
        checks
            .iter()
            .find(|c| *c.name == *name)
            .and_then(|c| match &c.body {
                Body::Sync(_, running) => running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .map(|run| {
                        run.slot
                            .waiters
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .len()
                    }),
                Body::Async(_) => None,
            })
            .unwrap_or(0)
    }

    /// The registry the metrics are on.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }
}

/// Where a sync check's thread leaves its result, and the rounds waiting for it.
#[derive(Default)]
struct Slot {
    result: Mutex<Option<(CheckResult, Duration)>>,
    waiters: Mutex<Vec<Arc<RoundWaker>>>,
}

/// A sync check's run in progress. A round that starts while it runs (two probes at once, or
/// a probe during a periodic round) waits for the same run instead of starting another, within
/// the run's own deadline; only a run already past its timeout is reported as stuck.
struct Run {
    slot: Arc<Slot>,
    started: Instant,
}

enum Pending {
    Thread(Arc<Slot>),
    Future(Pin<Box<dyn Future<Output = CheckResult> + Send>>, Instant),
    Done,
}

/// The waker of the task running a round, shared with check threads and the timer.
#[derive(Default)]
struct RoundWaker {
    waker: Mutex<Option<Waker>>,
    finished: Mutex<bool>,
    wake_timer: Condvar,
}

impl RoundWaker {
    fn wake(&self) {
        if let Some(w) = self
            .waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            w.wake_by_ref();
        }
    }
}

/// Every check of one round, run concurrently, each against its own deadline.
struct Round {
    pending: Vec<Pending>,
    deadlines: Vec<Instant>,
    timeouts: Vec<Duration>,
    results: Vec<Option<(CheckResult, Duration)>>,
    shared: Arc<RoundWaker>,
}

impl Round {
    fn new(checks: &[Check]) -> Round {
        let now = Instant::now();
        let shared = Arc::new(RoundWaker::default());
        let mut pending = Vec::with_capacity(checks.len());
        let mut results = vec![None; checks.len()];
        let mut deadlines: Vec<Instant> = checks.iter().map(|c| now + c.timeout).collect();
        for (i, c) in checks.iter().enumerate() {
            pending.push(match &c.body {
                Body::Async(make) => Pending::Future(make(), now),
                Body::Sync(f, running) => {
                    let mut current = running.lock().unwrap_or_else(|p| p.into_inner());
                    match &*current {
                        Some(run) if now < run.started + c.timeout => {
                            // Join the run in progress, within its own deadline.
                            run.slot
                                .waiters
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(shared.clone());
                            deadlines[i] = run.started + c.timeout;
                            Pending::Thread(run.slot.clone())
                        }
                        Some(_) => {
                            results[i] = Some((
                                CheckResult::Unhealthy(format!(
                                    "still running after its {:?} timeout in an earlier round",
                                    c.timeout
                                )),
                                Duration::ZERO,
                            ));
                            Pending::Done
                        }
                        None => {
                            let slot = Arc::new(Slot {
                                result: Mutex::new(None),
                                waiters: Mutex::new(vec![shared.clone()]),
                            });
                            let (f, s, r) = (f.clone(), slot.clone(), running.clone());
                            let spawned = std::thread::Builder::new()
                                .name("dwcp-health-check".into())
                                .spawn(move || {
                                    let start = Instant::now();
                                    let out = std::panic::catch_unwind(
                                        std::panic::AssertUnwindSafe(|| f()),
                                    )
                                    .unwrap_or_else(|_| {
                                        CheckResult::Unhealthy("the check panicked".into())
                                    });
                                    *s.result.lock().unwrap_or_else(|p| p.into_inner()) =
                                        Some((out, start.elapsed()));
                                    // Done: later rounds start a new run. (A round joins only
                                    // under this lock, so every waiter is in the list below.)
                                    {
                                        let mut cur = r.lock().unwrap_or_else(|p| p.into_inner());
                                        if cur
                                            .as_ref()
                                            .is_some_and(|run| Arc::ptr_eq(&run.slot, &s))
                                        {
                                            *cur = None;
                                        }
                                    }
                                    for w in
                                        s.waiters.lock().unwrap_or_else(|p| p.into_inner()).iter()
                                    {
                                        w.wake();
                                    }
                                });
                            match spawned {
                                Ok(_) => {
                                    *current = Some(Run {
                                        slot: slot.clone(),
                                        started: now,
                                    });
                                    Pending::Thread(slot)
                                }
                                Err(e) => {
                                    results[i] = Some((
                                        CheckResult::Unhealthy(format!(
                                            "cannot start the check: {e}"
                                        )),
                                        Duration::ZERO,
                                    ));
                                    Pending::Done
                                }
                            }
                        }
                    }
                }
            });
        }
        let timeouts = checks.iter().map(|c| c.timeout).collect();
        // One timer thread per round wakes the task at each deadline, and ends early when
        // the round does.
        let mut wake_at = deadlines.clone();
        wake_at.sort();
        let timer = shared.clone();
        if !checks.is_empty() {
            let _ = std::thread::Builder::new()
                .name("dwcp-health-timer".into())
                .spawn(move || {
                    for at in wake_at {
                        let mut finished = timer.finished.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if *finished {
                                return;
                            }
                            let left = at.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                break;
                            }
                            finished = timer
                                .wake_timer
                                .wait_timeout(finished, left)
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                        drop(finished);
                        timer.wake();
                    }
                });
        }
        Round {
            pending,
            deadlines,
            timeouts,
            results,
            shared,
        }
    }
}

impl Future for Round {
    type Output = Vec<(CheckResult, Duration)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        *this.shared.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        let now = Instant::now();
        let mut open = 0;
        for (i, p) in this.pending.iter_mut().enumerate() {
            let got = match p {
                Pending::Done => continue,
                Pending::Thread(slot) => slot
                    .result
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
                Pending::Future(f, start) => match f.as_mut().poll(cx) {
                    Poll::Ready(r) => Some((r, start.elapsed())),
                    Poll::Pending => None,
                },
            };
            let got = got.or_else(|| {
                (now >= this.deadlines[i]).then(|| {
                    (
                        CheckResult::Unhealthy(format!("timed out after {:?}", this.timeouts[i])),
                        this.timeouts[i],
                    )
                })
            });
            match got {
                Some(r) => {
                    this.results[i] = Some(r);
                    *p = Pending::Done;
                }
                None => open += 1,
            }
        }
        if open > 0 {
            return Poll::Pending;
        }
        *this
            .shared
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = true;
        this.shared.wake_timer.notify_all();
        Poll::Ready(
            this.results
                .iter_mut()
                .map(|r| {
                    r.take()
                        .unwrap_or((CheckResult::Unhealthy("no result".into()), Duration::ZERO))
                })
                .collect(),
        )
    }
}

impl Drop for Round {
    fn drop(&mut self) {
        *self
            .shared
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.wake_timer.notify_all();
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drive `fut` to completion on this thread.
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
