// `#[derive(LabelValue)]`: snake_case by default, per-variant `rename`, every `rename_all`
// rule, raw identifiers; enums used as fields of a `LabelSet`.
use dwcp_telemetry::labels::ValueBuf;
use dwcp_telemetry::{LabelSet, LabelValue};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, LabelValue)]
enum Operation {
    Migrate,
    ScaleUp,
    HTTPRequest,
    Ipv4Lookup,
    #[label(rename = "scale-down")]
    ScaleDown,
    r#Type,
}

#[derive(LabelValue)]
#[label(rename_all = "kebab-case")]
enum Kebab {
    ScaleUp,
    #[label(rename = "Explicit_Wins")]
    Renamed,
}

#[derive(LabelValue)]
#[label(rename_all = "lowercase")]
enum Lower {
    ScaleUp,
}

#[derive(LabelValue)]
#[label(rename_all = "UPPERCASE")]
enum Upper {
    ScaleUp,
}

#[derive(LabelValue)]
#[label(rename_all = "SCREAMING_SNAKE_CASE")]
enum Screaming {
    ScaleUp,
}

#[derive(LabelValue)]
#[label(rename_all = "snake_case")]
enum Snake {
    ScaleUp,
}

#[derive(LabelValue)]
#[label(rename_all = "verbatim")]
enum Verbatim {
    ScaleUp,
}

#[derive(LabelValue)]
#[repr(u8)]
enum WithDiscriminants {
    Low = 1,
    High = 10,
}

/// An enum with no variants has no values (and no values to get wrong).
#[derive(LabelValue)]
#[allow(dead_code)]
enum Never {}

#[derive(LabelSet)]
struct Request {
    operation: Operation,
    style: Kebab,
}

fn value<V: LabelValue>(v: V) -> String {
    let mut buf = ValueBuf::new();
    v.label_value(&mut buf).to_owned()
}

fn main() {
    assert_eq!(value(Operation::Migrate), "migrate");
    assert_eq!(value(Operation::ScaleUp), "scale_up");
    assert_eq!(value(Operation::HTTPRequest), "http_request");
    assert_eq!(value(Operation::Ipv4Lookup), "ipv4_lookup");
    assert_eq!(value(Operation::ScaleDown), "scale-down");
    assert_eq!(value(Operation::r#Type), "type");
    assert_eq!(value(Kebab::ScaleUp), "scale-up");
    assert_eq!(value(Kebab::Renamed), "Explicit_Wins");
    assert_eq!(value(Lower::ScaleUp), "scaleup");
    assert_eq!(value(Upper::ScaleUp), "SCALEUP");
    assert_eq!(value(Screaming::ScaleUp), "SCALE_UP");
    assert_eq!(value(Snake::ScaleUp), "scale_up");
    assert_eq!(value(Verbatim::ScaleUp), "ScaleUp");
    assert_eq!(value(WithDiscriminants::Low), "low");
    assert_eq!(value(WithDiscriminants::High), "high");

    assert_eq!(Request::NAMES, ["operation", "style"]);
    let r = Request {
        operation: Operation::ScaleUp,
        style: Kebab::ScaleUp,
    };
    r.with_values(|v| assert_eq!(v, ["scale_up", "scale-up"]));
}
