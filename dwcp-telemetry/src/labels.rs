//! Typed label sets: a struct whose fields are a metric's label values.
//!
//! Derive [`LabelSet`](macro@crate::LabelSet) on a struct and [`LabelValue`](macro@crate::LabelValue) on
//! enums of fixed values; a family registered with `.labels::<L>()` then takes only `&L`:
//! a wrong label name, a missing label or a value of the wrong type does not compile.
//!
//! ```
//! use dwcp_telemetry::{LabelSet, LabelValue, Registry};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, LabelValue)]
//! enum Operation {
//!     Migrate,
//!     #[label(rename = "scale-up")]
//!     ScaleUp,
//! }
//!
//! #[derive(Debug, LabelSet)]
//! struct Request {
//!     operation: Operation,
//!     component: &'static str,
//!     shard: u16,
//! }
//!
//! let registry = Registry::builder().version("3.0.0").build()?;
//! let latency = registry
//!     .histogram("dwcp_request_duration_seconds", "Request latency")
//!     .labels::<Request>()
//!     .register()?;
//! let h = latency.get(&Request { operation: Operation::ScaleUp, component: "amst", shard: 7 });
//! h.record(1_000_000);
//! assert_eq!(latency.descriptor().label_names(), ["operation", "component", "shard"]);
//! let series = &registry.collect()[0].series[0];
//! assert_eq!(&series.label_values[..], ["scale-up", "amst", "7"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::sync::Arc;

/// A set of label values with names fixed at compile time. Derive it with
/// `#[derive(LabelSet)]`; implement it by hand only when a derive cannot express it.
///
/// The derive turns each named field into a label, in declaration order; the field's name is
/// the label name unless `#[label(rename = "...")]` says otherwise, and its type must
/// implement [`LabelValue`]. A `&'static str` field takes literals; for values built at run
/// time use `String` (or an enum deriving `LabelValue`, which allocates nothing).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a typed label set",
    note = "derive it with `#[derive(dwcp_telemetry::LabelSet)]` on a struct whose fields are the labels",
    note = "a family registered with `.dynamic_labels([..])` takes values with `try_with_labels(&[..])` or `with_labels_or_overflow(&[..])`, not `get`"
)]
pub trait LabelSet {
    /// The label names, in the order [`LabelSet::with_values`] gives the values.
    const NAMES: &'static [&'static str];

    /// Calls `f` with the label values in [`LabelSet::NAMES`] order. Implementations format
    /// numbers into stack buffers ([`ValueBuf`]), so binding allocates nothing.
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R;
}

impl LabelSet for () {
    const NAMES: &'static [&'static str] = &[];
    #[inline]
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        f(&[])
    }
}

/// The label type of a family whose label names are only known at run time
/// (`MetricBuilder::dynamic_labels`). Its families take `&[&str]` through
/// `try_with_labels` / `with_labels_or_overflow` instead of a typed `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicLabels {}

/// A value usable as a label value: string types, integers, `bool`, and enums deriving
/// [`LabelValue`](macro@crate::LabelValue) (each variant a static string).
pub trait LabelValue {
    /// The value as text. Types that need formatting write into `buf` (on the stack).
    fn label_value<'a>(&'a self, buf: &'a mut ValueBuf) -> &'a str;
}

/// A stack buffer long enough for any integer's decimal text (`i128::MIN` is 40 bytes).
#[derive(Debug, Clone, Copy)]
pub struct ValueBuf {
    bytes: [u8; 40],
}

impl Default for ValueBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl ValueBuf {
    /// An empty buffer.
    #[inline]
    pub const fn new() -> Self {
        ValueBuf { bytes: [0; 40] }
    }

    /// Writes `magnitude` in decimal, with a leading `-` if `negative`, and returns the text.
    #[inline]
    pub fn format(&mut self, negative: bool, mut magnitude: u128) -> &str {
        let mut i = self.bytes.len();
        loop {
            i -= 1;
            self.bytes[i] = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        if negative {
            i -= 1;
            self.bytes[i] = b'-';
        }
        // Only ASCII digits and '-' were written from `i` on, so this never fails.
        std::str::from_utf8(&self.bytes[i..]).unwrap_or("")
    }
}

impl LabelValue for &str {
    #[inline]
    fn label_value<'a>(&'a self, _: &'a mut ValueBuf) -> &'a str {
        self
    }
}

impl LabelValue for String {
    #[inline]
    fn label_value<'a>(&'a self, _: &'a mut ValueBuf) -> &'a str {
        self
    }
}

impl LabelValue for Cow<'_, str> {
    #[inline]
    fn label_value<'a>(&'a self, _: &'a mut ValueBuf) -> &'a str {
        self
    }
}

impl LabelValue for Arc<str> {
    #[inline]
    fn label_value<'a>(&'a self, _: &'a mut ValueBuf) -> &'a str {
        self
    }
}

impl LabelValue for bool {
    #[inline]
    fn label_value<'a>(&'a self, _: &'a mut ValueBuf) -> &'a str {
        if *self {
            "true"
        } else {
            "false"
        }
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl LabelValue for $t {
            #[inline]
            fn label_value<'a>(&'a self, buf: &'a mut ValueBuf) -> &'a str {
                buf.format(false, *self as u128)
            }
        }
    )*};
}
macro_rules! signed {
    ($($t:ty),*) => {$(
        impl LabelValue for $t {
            #[inline]
            fn label_value<'a>(&'a self, buf: &'a mut ValueBuf) -> &'a str {
                buf.format(*self < 0, (*self as i128).unsigned_abs())
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, u128, usize);
signed!(i8, i16, i32, i64, i128, isize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_format_exactly() {
        let mut b = ValueBuf::new();
        assert_eq!(0u8.label_value(&mut b), "0");
        assert_eq!(u128::MAX.label_value(&mut b), u128::MAX.to_string());
        assert_eq!(i128::MIN.label_value(&mut b), i128::MIN.to_string());
        assert_eq!((-7i32).label_value(&mut b), "-7");
        assert_eq!(true.label_value(&mut b), "true");
        assert_eq!("x".label_value(&mut b), "x");
    }
}
