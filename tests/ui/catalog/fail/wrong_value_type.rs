// v3 components are a closed set: a string is not a `V3Component`.
use dwcp_telemetry::catalog::v3::{self, Component};
use dwcp_telemetry::Registry;

fn main() {
    let reg = Registry::builder().build().unwrap();
    let v = v3::register(&reg).unwrap();
    v.component_errors_total.get(&Component { component: "amst" }).inc();
}
