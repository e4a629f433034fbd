// `#[label(crate = path)]`: the generated impls name the given path instead of
// `::dwcp_telemetry`, for crates that re-export dwcp-telemetry.
use dwcp_telemetry::labels::ValueBuf;
use dwcp_telemetry::{LabelSet, LabelValue};

mod reexport {
    pub use dwcp_telemetry as telemetry;
}

#[derive(LabelValue)]
#[label(crate = crate::reexport::telemetry, rename_all = "kebab-case")]
enum Operation {
    ScaleUp,
}

#[derive(LabelSet)]
#[label(crate = crate::reexport::telemetry)]
struct ViaPath {
    operation: Operation,
}

#[derive(LabelSet)]
#[label(crate = "crate::reexport::telemetry")]
struct ViaString {
    shard: u8,
}

/// A stand-in crate with its own traits: proves the path is really used.
mod shim {
    pub mod labels {
        pub use dwcp_telemetry::labels::{LabelValue, ValueBuf};
        pub trait LabelSet {
            const NAMES: &'static [&'static str];
            fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R;
        }
    }
}

#[derive(LabelSet)]
#[label(crate = shim)]
struct ViaShim {
    component: &'static str,
}

fn main() {
    assert_eq!(<ViaPath as LabelSet>::NAMES, ["operation"]);
    ViaPath {
        operation: Operation::ScaleUp,
    }
    .with_values(|v| assert_eq!(v, ["scale-up"]));
    assert_eq!(<ViaString as LabelSet>::NAMES, ["shard"]);
    let mut buf = ValueBuf::new();
    assert_eq!(Operation::ScaleUp.label_value(&mut buf), "scale-up");

    assert_eq!(<ViaShim as shim::labels::LabelSet>::NAMES, ["component"]);
    let shim_values =
        shim::labels::LabelSet::with_values(&ViaShim { component: "amst" }, |v| v.len());
    assert_eq!(shim_values, 1);
}
