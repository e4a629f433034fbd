// Generic label sets: the derive bounds the field types that use type parameters.
use dwcp_telemetry::labels::ValueBuf;
use dwcp_telemetry::{LabelSet, LabelValue};

#[derive(Clone, Copy, LabelValue)]
enum Operation {
    ScaleUp,
}

#[derive(LabelSet)]
struct Request<'a, K, S = u16>
where
    K: Copy,
{
    kind: K,
    shard: S,
    node: &'a str,
}

#[derive(LabelSet)]
struct Borrowed<'a, T: ?Sized> {
    value: &'a T,
}

#[derive(LabelSet)]
struct Fixed<const N: usize> {
    #[label(rename = "size")]
    n: usize,
}

/// Type parameters named like the generated method's internals do not clash.
#[derive(LabelSet)]
struct Shadowing<R, F> {
    r: R,
    f: F,
}

fn names<L: LabelSet>(_: &L) -> &'static [&'static str] {
    L::NAMES
}

fn values<L: LabelSet>(l: &L) -> Vec<String> {
    l.with_values(|v| v.iter().map(|s| s.to_string()).collect())
}

fn main() {
    let a = Request {
        kind: Operation::ScaleUp,
        shard: 3u16,
        node: "n1",
    };
    assert_eq!(names(&a), ["kind", "shard", "node"]);
    assert_eq!(values(&a), ["scale_up", "3", "n1"]);

    let b: Request<'_, bool, String> = Request {
        kind: true,
        shard: "s".into(),
        node: "n2",
    };
    assert_eq!(values(&b), ["true", "s", "n2"]);

    let c = Borrowed::<str> { value: "v" };
    assert_eq!(values(&c), ["v"]);

    let d = Fixed::<4> { n: 4 };
    assert_eq!(names(&d), ["size"]);

    let e = Shadowing { r: 1u8, f: "f" };
    assert_eq!(values(&e), ["1", "f"]);

    let mut buf = ValueBuf::new();
    assert_eq!(Operation::ScaleUp.label_value(&mut buf), "scale_up");
}
