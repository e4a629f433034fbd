//! OTLP exporter configuration from the standard `OTEL_*` variables, or built in code.
//!
//! Every parser here is a pure function over an env-lookup closure (`Fn(&str) ->
//! Option<String>`), so tests pass a table instead of mutating the process environment; the
//! `from_env` forms pass [`std::env::var`]. An empty value counts as unset (as the spec says).
//!
//! ```
//! use dwcp_telemetry::export::otlp::config::{ExporterConfig, Protocol, Signal};
//!
//! let env = |k: &str| match k {
//!     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318/base/".to_owned()),
//!     "OTEL_EXPORTER_OTLP_HEADERS" => Some("x-tenant=dwcp,authorization=Bearer%20t0k".to_owned()),
//!     _ => None,
//! };
//! let traces = ExporterConfig::from_lookup(Signal::Traces, env)?;
//! assert_eq!(traces.protocol(), Protocol::HttpProtobuf);
//! assert_eq!(traces.endpoint(), "http://collector:4318/base/v1/traces");
//! assert_eq!(traces.headers()[1], ("authorization".to_owned(), "Bearer t0k".to_owned()));
//! # Ok::<(), dwcp_telemetry::export::otlp::config::OtlpConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

/// The telemetry signal an exporter carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Trace spans (`/v1/traces`, `TraceService/Export`).
    Traces,
    /// Metrics (`/v1/metrics`, `MetricsService/Export`).
    Metrics,
}

impl Signal {
    /// `traces` or `metrics`: the self-metrics' `signal` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// `TRACES` or `METRICS`: the infix of the signal-specific variables.
    fn env_infix(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
        }
    }

    /// The HTTP path appended to the generic endpoint.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "v1/traces",
            Signal::Metrics => "v1/metrics",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// OTLP/gRPC (`grpc`), default port 4317.
    Grpc,
    /// OTLP/HTTP with binary protobuf bodies (`http/protobuf`), default port 4318. The spec's
    /// default.
    #[default]
    HttpProtobuf,
}

impl Protocol {
    /// The spec's default endpoint for this protocol.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318",
        }
    }

    /// The variable value naming this protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Request body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Uncompressed (the default).
    #[default]
    None,
    /// gzip (`Content-Encoding: gzip` / `grpc-encoding: gzip`).
    Gzip,
}

/// A configuration value that cannot be honoured. The message names the variable (or builder
/// setting), the value and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpConfigError {
    /// A variable's value is not one of the accepted forms.
    #[error("{var}={value:?} is invalid: {expected}")]
    Invalid {
        /// The variable or setting.
        var: String,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// `http/json` is a valid OTLP protocol that this exporter does not speak.
    #[error("{var}=\"http/json\" is not supported; use \"http/protobuf\" or \"grpc\"")]
    HttpJson {
        /// The variable or setting.
        var: String,
    },
    /// An `https` endpoint needs TLS, which this build does not include.
    #[error("{var}={value:?}: https endpoints need TLS, which dwcp-telemetry's OTLP exporter does not include; send to a local collector over http (loopback or a sidecar) and let it forward over TLS")]
    Tls {
        /// The variable or setting.
        var: String,
        /// The endpoint given.
        value: String,
    },
    /// The batch size exceeds the queue size.
    #[error("OTEL_BSP_MAX_EXPORT_BATCH_SIZE ({batch}) must not exceed OTEL_BSP_MAX_QUEUE_SIZE ({queue})")]
    BatchOverQueue {
        /// The batch size.
        batch: usize,
        /// The queue size.
        queue: usize,
    },
}

fn invalid(var: &str, value: &str, expected: &'static str) -> OtlpConfigError {
    OtlpConfigError::Invalid {
        var: var.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

/// Looks `name` up, treating an empty (or all-blank) value as unset.
fn get<F: Fn(&str) -> Option<String>>(lookup: &F, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The signal-specific variable if set, else the generic one: `(name, value)`.
fn signal_or_generic<F: Fn(&str) -> Option<String>>(
    lookup: &F,
    signal: Signal,
    suffix: &str,
) -> Option<(String, String)> {
    let specific = format!("OTEL_EXPORTER_OTLP_{}_{suffix}", signal.env_infix());
    if let Some(v) = get(lookup, &specific) {
        return Some((specific, v));
    }
    let generic = format!("OTEL_EXPORTER_OTLP_{suffix}");
    get(lookup, &generic).map(|v| (generic, v))
}

/// Parses a protocol name.
pub fn parse_protocol(var: &str, value: &str) -> Result<Protocol, OtlpConfigError> {
    match value {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Err(OtlpConfigError::HttpJson {
            var: var.to_owned(),
        }),
        _ => Err(invalid(
            var,
            value,
            "expected \"grpc\" or \"http/protobuf\"",
        )),
    }
}

/// Parses a compression name (`gzip` or `none`).
pub fn parse_compression(var: &str, value: &str) -> Result<Compression, OtlpConfigError> {
    match value {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err(invalid(var, value, "expected \"gzip\" or \"none\"")),
    }
}

/// Parses a non-negative integer number of milliseconds.
pub fn parse_millis(var: &str, value: &str) -> Result<Duration, OtlpConfigError> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(var, value, "expected a whole number of milliseconds"))
}

/// Parses a positive whole number of milliseconds (a timeout of 0 would fail every attempt).
pub fn parse_timeout_millis(var: &str, value: &str) -> Result<Duration, OtlpConfigError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
        _ => Err(invalid(
            var,
            value,
            "expected a positive whole number of milliseconds",
        )),
    }
}

fn parse_positive(var: &str, value: &str) -> Result<usize, OtlpConfigError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(var, value, "expected a positive whole number")),
    }
}

/// Decodes `%XX` escapes. `None` on a malformed escape or a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses a `key1=value1,key2=value2` list (the W3C baggage form used by
/// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES`): keys and values trimmed,
/// values percent-decoded. Empty entries (`a=1,,b=2`) are skipped. The error names the
/// first bad entry.
pub fn parse_key_values(var: &str, value: &str) -> Result<Vec<(String, String)>, OtlpConfigError> {
    let mut out = Vec::new();
    for entry in value.split(',') {
        if entry.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = entry.split_once('=') else {
            return Err(invalid(var, entry, "each entry must be key=value"));
        };
        let key = k.trim();
        if key.is_empty() {
            return Err(invalid(var, entry, "each entry needs a non-empty key"));
        }
        let Some(decoded_key) = percent_decode(key) else {
            return Err(invalid(var, entry, "malformed percent-encoding in the key"));
        };
        let Some(decoded) = percent_decode(v.trim()) else {
            return Err(invalid(
                var,
                entry,
                "malformed percent-encoding in the value (use %XX with two hex digits, UTF-8)",
            ));
        };
        out.push((decoded_key, decoded));
    }
    Ok(out)
}

/// Checks an endpoint URL: `http://host[:port][/path]`. Returns it unchanged.
fn check_endpoint(var: &str, value: &str) -> Result<(), OtlpConfigError> {
    let lower = value.to_ascii_lowercase();
    let rest = if let Some(rest) = lower.strip_prefix("http://") {
        rest
    } else if lower.starts_with("https://") {
        return Err(OtlpConfigError::Tls {
            var: var.to_owned(),
            value: value.to_owned(),
        });
    } else {
        return Err(invalid(
            var,
            value,
            "expected a URL such as http://collector:4318",
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(invalid(
            var,
            value,
            "expected a URL with a host, such as http://collector:4318",
        ));
    }
    if value.parse::<hyper::Uri>().is_err() {
        return Err(invalid(var, value, "not a valid URL"));
    }
    Ok(())
}

/// `true` when the URL has no path (or only `/`).
fn has_no_path(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        None => true,
        Some(i) => rest[i..].split(['?', '#']).next() == Some("/"),
    }
}

/// The spec's path rule for OTLP/HTTP: the generic endpoint is a base URL to which
/// `v1/traces` / `v1/metrics` is appended (with one `/` between); a signal-specific endpoint
/// is used as-is, except that an empty path becomes `/`.
pub fn http_signal_url(endpoint: &str, signal: Signal, signal_specific: bool) -> String {
    if signal_specific {
        if has_no_path(endpoint) && !endpoint.ends_with('/') {
            format!("{endpoint}/")
        } else {
            endpoint.to_owned()
        }
    } else if endpoint.ends_with('/') {
        format!("{endpoint}{}", signal.http_path())
    } else {
        format!("{endpoint}/{}", signal.http_path())
    }
}

/// Where and how one signal is exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExporterConfig {
    signal: Signal,
    protocol: Protocol,
    endpoint: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    compression: Compression,
}

/// The spec's default per-request timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`): 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl ExporterConfig {
    /// Reads `OTEL_EXPORTER_OTLP_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,COMPRESSION}` and their
    /// signal-specific forms (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, ...; the specific one wins)
    /// through `lookup`. Unset values take the spec's defaults (protocol `http/protobuf`,
    /// endpoint `http://localhost:4318` or, for gRPC, `http://localhost:4317`, 10 s timeout,
    /// no compression).
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(
        signal: Signal,
        lookup: F,
    ) -> Result<Self, OtlpConfigError> {
        let protocol = match signal_or_generic(&lookup, signal, "PROTOCOL") {
            Some((var, v)) => parse_protocol(&var, &v)?,
            None => Protocol::default(),
        };
        let specific_var = format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.env_infix());
        let endpoint = if let Some(v) = get(&lookup, &specific_var) {
            check_endpoint(&specific_var, &v)?;
            match protocol {
                Protocol::HttpProtobuf => http_signal_url(&v, signal, true),
                Protocol::Grpc => v,
            }
        } else {
            let (var, v) = match get(&lookup, "OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(v) => ("OTEL_EXPORTER_OTLP_ENDPOINT", v),
                None => ("default endpoint", protocol.default_endpoint().to_owned()),
            };
            check_endpoint(var, &v)?;
            match protocol {
                Protocol::HttpProtobuf => http_signal_url(&v, signal, false),
                Protocol::Grpc => v,
            }
        };
        let headers = match signal_or_generic(&lookup, signal, "HEADERS") {
            Some((var, v)) => {
                let h = parse_key_values(&var, &v)?;
                for (k, val) in &h {
                    check_header(&var, k, val)?;
                }
                h.into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect()
            }
            None => Vec::new(),
        };
        let timeout = match signal_or_generic(&lookup, signal, "TIMEOUT") {
            Some((var, v)) => parse_timeout_millis(&var, &v)?,
            None => DEFAULT_TIMEOUT,
        };
        let compression = match signal_or_generic(&lookup, signal, "COMPRESSION") {
            Some((var, v)) => parse_compression(&var, &v)?,
            None => Compression::None,
        };
        Ok(Self {
            signal,
            protocol,
            endpoint,
            headers,
            timeout,
            compression,
        })
    }

    /// [`ExporterConfig::from_lookup`] over the process environment.
    pub fn from_env(signal: Signal) -> Result<Self, OtlpConfigError> {
        Self::from_lookup(signal, |k| std::env::var(k).ok())
    }

    /// A builder starting from the spec's defaults (no environment read).
    pub fn builder(signal: Signal) -> ExporterConfigBuilder {
        ExporterConfigBuilder {
            signal,
            protocol: Protocol::default(),
            endpoint: None,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            compression: Compression::None,
        }
    }

    /// The signal.
    pub fn signal(&self) -> Signal {
        self.signal
    }
    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
    /// The URL requests go to: for HTTP the full URL including the signal path; for gRPC the
    /// server's base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    /// Extra request headers (gRPC metadata), keys lower-case.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    /// Per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// Body compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }
}

fn check_header(var: &str, key: &str, value: &str) -> Result<(), OtlpConfigError> {
    if hyper::header::HeaderName::from_bytes(key.as_bytes()).is_err() {
        return Err(invalid(var, key, "not a valid header name"));
    }
    if hyper::header::HeaderValue::from_str(value).is_err() {
        return Err(invalid(
            var,
            value,
            "not a valid header value (visible ASCII only)",
        ));
    }
    Ok(())
}

/// Builds an [`ExporterConfig`] in code.
///
/// ```
/// use std::time::Duration;
/// use dwcp_telemetry::export::otlp::config::{Compression, ExporterConfig, Protocol, Signal};
///
/// let cfg = ExporterConfig::builder(Signal::Metrics)
///     .protocol(Protocol::Grpc)
///     .endpoint("http://127.0.0.1:4317")
///     .header("x-tenant", "dwcp")
///     .timeout(Duration::from_secs(2))
///     .compression(Compression::Gzip)
///     .build()?;
/// assert_eq!(cfg.endpoint(), "http://127.0.0.1:4317");
/// # Ok::<(), dwcp_telemetry::export::otlp::config::OtlpConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "call .build()"]
pub struct ExporterConfigBuilder {
    signal: Signal,
    protocol: Protocol,
    endpoint: Option<(String, bool)>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    compression: Compression,
}

impl ExporterConfigBuilder {
    /// The protocol (default `http/protobuf`).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }
    /// A base endpoint, like `OTEL_EXPORTER_OTLP_ENDPOINT`: for HTTP, `v1/traces` or
    /// `v1/metrics` is appended.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some((url.into(), false));
        self
    }
    /// A full signal URL, like `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: used as-is.
    pub fn signal_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some((url.into(), true));
        self
    }
    /// Adds a request header (gRPC metadata).
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }
    /// Per-request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Body compression (default none).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
    /// Validates and builds.
    pub fn build(self) -> Result<ExporterConfig, OtlpConfigError> {
        let (url, specific) = self
            .endpoint
            .unwrap_or_else(|| (self.protocol.default_endpoint().to_owned(), false));
        check_endpoint("endpoint", &url)?;
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "0", "must be at least 1 millisecond"));
        }
        let endpoint = match self.protocol {
            Protocol::HttpProtobuf => http_signal_url(&url, self.signal, specific),
            Protocol::Grpc => url,
        };
        for (k, v) in &self.headers {
            check_header("header", k, v)?;
        }
        Ok(ExporterConfig {
            signal: self.signal,
            protocol: self.protocol,
            endpoint,
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            timeout: self.timeout,
            compression: self.compression,
        })
    }
}

/// `true` when an OTLP endpoint is configured for `signal` (`OTEL_EXPORTER_OTLP_ENDPOINT` or
/// the signal-specific one is set and non-empty): the one-call setups export only then.
pub fn endpoint_configured<F: Fn(&str) -> Option<String>>(signal: Signal, lookup: F) -> bool {
    get(&lookup, "OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || get(
            &lookup,
            &format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.env_infix()),
        )
        .is_some()
}

/// The batch span processor's settings (`OTEL_BSP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Longest wait before a non-full batch is sent (`OTEL_BSP_SCHEDULE_DELAY`, default 5 s).
    pub schedule_delay: Duration,
    /// Longest time one batch export may take, retries included
    /// (`OTEL_BSP_EXPORT_TIMEOUT`, default 30 s).
    pub export_timeout: Duration,
    /// Spans held while waiting to be exported; past it spans are dropped and counted
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue_size: usize,
    /// Most spans in one export request (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    pub max_export_batch_size: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            schedule_delay: Duration::from_secs(5),
            export_timeout: Duration::from_secs(30),
            max_queue_size: 2048,
            max_export_batch_size: 512,
        }
    }
}

impl BatchConfig {
    /// Reads `OTEL_BSP_{SCHEDULE_DELAY,EXPORT_TIMEOUT,MAX_QUEUE_SIZE,MAX_EXPORT_BATCH_SIZE}`
    /// (milliseconds and counts) through `lookup`.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(lookup: F) -> Result<Self, OtlpConfigError> {
        let mut c = Self::default();
        if let Some(v) = get(&lookup, "OTEL_BSP_SCHEDULE_DELAY") {
            c.schedule_delay = parse_millis("OTEL_BSP_SCHEDULE_DELAY", &v)?;
        }
        if let Some(v) = get(&lookup, "OTEL_BSP_EXPORT_TIMEOUT") {
            c.export_timeout = parse_timeout_millis("OTEL_BSP_EXPORT_TIMEOUT", &v)?;
        }
        if let Some(v) = get(&lookup, "OTEL_BSP_MAX_QUEUE_SIZE") {
            c.max_queue_size = parse_positive("OTEL_BSP_MAX_QUEUE_SIZE", &v)?;
        }
        if let Some(v) = get(&lookup, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            c.max_export_batch_size = parse_positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)?;
        }
        c.validate()?;
        Ok(c)
    }

    /// [`BatchConfig::from_lookup`] over the process environment.
    pub fn from_env() -> Result<Self, OtlpConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Checks sizes are positive and the batch fits the queue.
    pub fn validate(&self) -> Result<(), OtlpConfigError> {
        if self.max_queue_size == 0 {
            return Err(invalid("max_queue_size", "0", "must be at least 1"));
        }
        if self.max_export_batch_size == 0 {
            return Err(invalid("max_export_batch_size", "0", "must be at least 1"));
        }
        if self.export_timeout.is_zero() {
            return Err(invalid(
                "export_timeout",
                "0",
                "must be at least 1 millisecond",
            ));
        }
        if self.max_export_batch_size > self.max_queue_size {
            return Err(OtlpConfigError::BatchOverQueue {
                batch: self.max_export_batch_size,
                queue: self.max_queue_size,
            });
        }
        Ok(())
    }
}

/// Periodic metric push settings (`OTEL_METRIC_EXPORT_INTERVAL` / `_TIMEOUT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodicConfig {
    /// Time between pushes (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s).
    pub interval: Duration,
    /// Longest time one push may take, retries included (`OTEL_METRIC_EXPORT_TIMEOUT`,
    /// default 30 s).
    pub timeout: Duration,
}

impl Default for PeriodicConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

impl PeriodicConfig {
    /// Reads `OTEL_METRIC_EXPORT_INTERVAL` and `OTEL_METRIC_EXPORT_TIMEOUT` (milliseconds).
    /// An interval of 0 is refused.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(lookup: F) -> Result<Self, OtlpConfigError> {
        let mut c = Self::default();
        if let Some(v) = get(&lookup, "OTEL_METRIC_EXPORT_INTERVAL") {
            c.interval = parse_millis("OTEL_METRIC_EXPORT_INTERVAL", &v)?;
            if c.interval.is_zero() {
                return Err(invalid(
                    "OTEL_METRIC_EXPORT_INTERVAL",
                    &v,
                    "must be at least 1 millisecond",
                ));
            }
        }
        if let Some(v) = get(&lookup, "OTEL_METRIC_EXPORT_TIMEOUT") {
            c.timeout = parse_timeout_millis("OTEL_METRIC_EXPORT_TIMEOUT", &v)?;
        }
        Ok(c)
    }
}

/// The resource describing the exporting process: `service.name` and other attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceConfig {
    /// `service.name`: `OTEL_SERVICE_NAME`, else `service.name` from
    /// `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service:<executable name>`.
    pub service_name: String,
    /// Every other attribute, in order (from `OTEL_RESOURCE_ATTRIBUTES` and the builder).
    pub attributes: Vec<(String, String)>,
}

impl ResourceConfig {
    /// Reads `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` through `lookup`. A malformed
    /// `OTEL_RESOURCE_ATTRIBUTES` is discarded as a whole, as the spec says, and the reason is
    /// returned beside the resource (it is not fatal, and nothing panics).
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(
        lookup: F,
    ) -> (Self, Option<OtlpConfigError>) {
        let (mut attributes, problem) = match get(&lookup, "OTEL_RESOURCE_ATTRIBUTES") {
            Some(v) => match parse_key_values("OTEL_RESOURCE_ATTRIBUTES", &v) {
                Ok(a) => (a, None),
                Err(e) => (Vec::new(), Some(e)),
            },
            None => (Vec::new(), None),
        };
        let from_attrs = attributes
            .iter()
            .rposition(|(k, _)| k == "service.name")
            .map(|i| attributes.remove(i).1);
        attributes.retain(|(k, _)| k != "service.name");
        let service_name = get(&lookup, "OTEL_SERVICE_NAME")
            .or(from_attrs)
            .unwrap_or_else(default_service_name);
        (
            Self {
                service_name,
                attributes,
            },
            problem,
        )
    }

    /// [`ResourceConfig::from_lookup`] over the process environment.
    pub fn from_env() -> (Self, Option<OtlpConfigError>) {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// A resource with this service name and no other attributes.
    pub fn new(service_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            attributes: Vec::new(),
        }
    }

    /// Adds (or replaces) an attribute.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        let value = value.into();
        if key == "service.name" {
            self.service_name = value;
        } else if let Some(slot) = self.attributes.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.attributes.push((key, value));
        }
        self
    }

    /// Sets an attribute only if it is not there yet (for defaults such as
    /// `service.instance.id`).
    pub fn with_default_attribute(self, key: &str, value: impl Into<String>) -> Self {
        if key == "service.name" || self.attributes.iter().any(|(k, _)| k == key) {
            self
        } else {
            self.with_attribute(key, value)
        }
    }
}

/// The spec's default service name: `unknown_service:<executable name>`, or
/// `unknown_service` when the executable's name is unknown.
pub fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| format!("unknown_service:{n}"))
        .unwrap_or_else(|| "unknown_service".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn endpoint_path_rule_table() {
        use Signal::*;
        type Case<'a> = (Signal, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            (Traces, &[], "http://localhost:4318/v1/traces"),
            (Metrics, &[], "http://localhost:4318/v1/metrics"),
            (
                Traces,
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                "http://localhost:4317",
            ),
            (
                Traces,
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
                "http://c:4318/v1/traces",
            ),
            (
                Metrics,
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")],
                "http://c:4318/v1/metrics",
            ),
            (
                Traces,
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/otlp")],
                "http://c:4318/otlp/v1/traces",
            ),
            // Signal-specific: as-is, even without /v1/traces.
            (
                Traces,
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9999/custom"),
                ],
                "http://c:9999/custom",
            ),
            (
                Traces,
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9999")],
                "http://c:9999/",
            ),
            // The traces-specific endpoint does not apply to metrics.
            (
                Metrics,
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9999/custom"),
                ],
                "http://generic:4318/v1/metrics",
            ),
            (
                Metrics,
                &[
                    ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
                    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317"),
                ],
                "http://m:4317",
            ),
            // gRPC: the generic endpoint is used without a path appended.
            (
                Traces,
                &[
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ],
                "http://c:4317",
            ),
            // Empty counts as unset.
            (
                Traces,
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")],
                "http://localhost:4318/v1/traces",
            ),
        ];
        for (signal, vars, want) in cases {
            let cfg = ExporterConfig::from_lookup(*signal, env(vars)).unwrap();
            assert_eq!(cfg.endpoint(), *want, "{signal} {vars:?}");
        }
    }

    #[test]
    fn specific_overrides_generic() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "B=2, c = x%2Cy "),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
        ];
        let t = ExporterConfig::from_lookup(Signal::Traces, env(&vars)).unwrap();
        assert_eq!(t.protocol(), Protocol::HttpProtobuf);
        assert_eq!(t.timeout(), Duration::from_millis(700));
        assert_eq!(t.headers(), &[("a".to_owned(), "1".to_owned())]);
        assert_eq!(t.compression(), Compression::None);
        let m = ExporterConfig::from_lookup(Signal::Metrics, env(&vars)).unwrap();
        assert_eq!(m.protocol(), Protocol::Grpc);
        assert_eq!(m.endpoint(), "http://localhost:4317");
        assert_eq!(m.timeout(), Duration::from_millis(2500));
        assert_eq!(
            m.headers(),
            &[
                ("b".to_owned(), "2".to_owned()),
                ("c".to_owned(), "x,y".to_owned())
            ]
        );
        assert_eq!(m.compression(), Compression::Gzip);
    }

    #[test]
    fn traces_headers_replace_the_generic_ones() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        // The specific list replaces the generic one as a whole (no merge: the generic
        // `x-generic` is not sent, and its `x-tenant` does not survive beside the traces one).
        // Keys and values are trimmed, keys lower-cased, values percent-decoded, empty
        // entries skipped, and only the first `=` splits.
        let vars = [
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-generic=1,x-tenant=generic"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "  Authorization = Bearer%20t0k%2C%3D ,, X-Tenant=dwcp ,x-eq=a=b  ",
            ),
        ];
        let t = ExporterConfig::from_lookup(Signal::Traces, env(&vars)).unwrap();
        assert_eq!(
            t.headers(),
            h(&[
                ("authorization", "Bearer t0k,="),
                ("x-tenant", "dwcp"),
                ("x-eq", "a=b"),
            ])
        );
        // Metrics take the generic list: the traces-specific one is not theirs.
        let m = ExporterConfig::from_lookup(Signal::Metrics, env(&vars)).unwrap();
        assert_eq!(
            m.headers(),
            h(&[("x-generic", "1"), ("x-tenant", "generic")])
        );
        // A blank traces-specific value counts as unset: the generic list applies, decoded and
        // trimmed the same way.
        let t = ExporterConfig::from_lookup(
            Signal::Traces,
            env(&[
                ("OTEL_EXPORTER_OTLP_HEADERS", " x-a = 1%202 , X-B=%3d "),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "  "),
            ]),
        )
        .unwrap();
        assert_eq!(t.headers(), h(&[("x-a", "1 2"), ("x-b", "=")]));
        // Only the chosen list is parsed: a malformed generic value does not affect traces when
        // the specific one is set, and an error in the specific one names that variable.
        let vars = [
            ("OTEL_EXPORTER_OTLP_HEADERS", "broken"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-ok=1"),
        ];
        let t = ExporterConfig::from_lookup(Signal::Traces, env(&vars)).unwrap();
        assert_eq!(t.headers(), h(&[("x-ok", "1")]));
        assert_eq!(
            ExporterConfig::from_lookup(Signal::Metrics, env(&vars))
                .unwrap_err()
                .to_string(),
            "OTEL_EXPORTER_OTLP_HEADERS=\"broken\" is invalid: each entry must be key=value"
        );
        assert_eq!(
            ExporterConfig::from_lookup(
                Signal::Traces,
                env(&[
                    ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
                    ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=%zz"),
                ]),
            )
            .unwrap_err()
            .to_string(),
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS=\"a=%zz\" is invalid: malformed percent-encoding in the value (use %XX with two hex digits, UTF-8)"
        );
    }

    #[test]
    fn invalid_values_are_clear_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp", "OTEL_EXPORTER_OTLP_PROTOCOL=\"udp\" is invalid: expected \"grpc\" or \"http/protobuf\""),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=\"http/json\" is not supported; use \"http/protobuf\" or \"grpc\""),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "OTEL_EXPORTER_OTLP_TIMEOUT=\"10s\" is invalid: expected a positive whole number of milliseconds"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1", "OTEL_EXPORTER_OTLP_TIMEOUT=\"-1\" is invalid: expected a positive whole number of milliseconds"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "OTEL_EXPORTER_OTLP_TIMEOUT=\"0\" is invalid: expected a positive whole number of milliseconds"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "OTEL_EXPORTER_OTLP_COMPRESSION=\"zstd\" is invalid: expected \"gzip\" or \"none\""),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT=\"collector:4318\" is invalid: expected a URL such as http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://", "OTEL_EXPORTER_OTLP_ENDPOINT=\"http://\" is invalid: expected a URL with a host, such as http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "OTEL_EXPORTER_OTLP_HEADERS=\"novalue\" is invalid: each entry must be key=value"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz", "OTEL_EXPORTER_OTLP_HEADERS=\"a=%zz\" is invalid: malformed percent-encoding in the value (use %XX with two hex digits, UTF-8)"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=%0A", "OTEL_EXPORTER_OTLP_HEADERS=\"\\n\" is invalid: not a valid header value (visible ASCII only)"),
        ];
        for (var, value, msg) in cases {
            let err =
                ExporterConfig::from_lookup(Signal::Traces, env(&[(var, value)])).unwrap_err();
            assert_eq!(err.to_string(), *msg);
        }
        let err = ExporterConfig::from_lookup(
            Signal::Traces,
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318")]),
        )
        .unwrap_err();
        assert!(matches!(err, OtlpConfigError::Tls { .. }), "{err}");
    }

    #[test]
    fn batch_config() {
        assert_eq!(
            BatchConfig::from_lookup(env(&[])).unwrap(),
            BatchConfig::default()
        );
        let c = BatchConfig::from_lookup(env(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "1000"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16"),
        ]))
        .unwrap();
        assert_eq!(
            c,
            BatchConfig {
                schedule_delay: Duration::from_millis(250),
                export_timeout: Duration::from_secs(1),
                max_queue_size: 64,
                max_export_batch_size: 16,
            }
        );
        let e = BatchConfig::from_lookup(env(&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "OTEL_BSP_MAX_QUEUE_SIZE=\"0\" is invalid: expected a positive whole number"
        );
        let e = BatchConfig::from_lookup(env(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100")])).unwrap_err();
        assert_eq!(
            e,
            OtlpConfigError::BatchOverQueue {
                batch: 512,
                queue: 100
            }
        );
        let p =
            PeriodicConfig::from_lookup(env(&[("OTEL_METRIC_EXPORT_INTERVAL", "15000")])).unwrap();
        assert_eq!(p.interval, Duration::from_secs(15));
        assert!(PeriodicConfig::from_lookup(env(&[("OTEL_METRIC_EXPORT_INTERVAL", "0")])).is_err());
    }

    #[test]
    fn resource_attributes() {
        let (r, problem) = ResourceConfig::from_lookup(env(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod, dwcp.cluster=eu%2Cwest ,service.name=from-attrs,note=a%3Db%20c",
        )]));
        assert_eq!(problem, None);
        assert_eq!(r.service_name, "from-attrs");
        assert_eq!(
            r.attributes,
            vec![
                ("deployment.environment".to_owned(), "prod".to_owned()),
                ("dwcp.cluster".to_owned(), "eu,west".to_owned()),
                ("note".to_owned(), "a=b c".to_owned()),
            ]
        );
        let (r, _) = ResourceConfig::from_lookup(env(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "dwcp-manager"),
        ]));
        assert_eq!(r.service_name, "dwcp-manager");
        assert!(r.attributes.is_empty());
        // Malformed: discarded as a whole, reported, no panic.
        for bad in ["a=1,broken", "a=%E2%28", "=x", "a=%4"] {
            let (r, problem) =
                ResourceConfig::from_lookup(env(&[("OTEL_RESOURCE_ATTRIBUTES", bad)]));
            assert!(r.attributes.is_empty(), "{bad}");
            assert!(r.service_name.starts_with("unknown_service"), "{bad}");
            let problem = problem.expect(bad).to_string();
            assert!(
                problem.starts_with("OTEL_RESOURCE_ATTRIBUTES="),
                "{problem}"
            );
        }
        let (r, _) = ResourceConfig::from_lookup(env(&[]));
        assert_eq!(r.service_name, default_service_name());
        assert!(r.service_name.starts_with("unknown_service:"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2c").as_deref(), Some("a b,"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%g1"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn builder() {
        let c = ExporterConfig::builder(Signal::Traces).build().unwrap();
        assert_eq!(c.endpoint(), "http://localhost:4318/v1/traces");
        let c = ExporterConfig::builder(Signal::Traces)
            .signal_endpoint("http://127.0.0.1:1/x")
            .build()
            .unwrap();
        assert_eq!(c.endpoint(), "http://127.0.0.1:1/x");
        let e = ExporterConfig::builder(Signal::Traces)
            .header("bad header", "v")
            .build()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "header=\"bad header\" is invalid: not a valid header name"
        );
    }
}
