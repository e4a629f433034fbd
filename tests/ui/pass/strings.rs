// String-like label values: &'static str, borrowed &str, String, Cow<str>, Arc<str>.
use std::borrow::Cow;
use std::sync::Arc;

use dwcp_telemetry::LabelSet;

#[derive(Debug, LabelSet)]
struct Strings<'a> {
    component: &'static str,
    node: &'a str,
    region: String,
    zone: Cow<'a, str>,
    cluster: Arc<str>,
}

fn main() {
    assert_eq!(
        Strings::NAMES,
        ["component", "node", "region", "zone", "cluster"]
    );
    let node = String::from("node-1");
    let labels = Strings {
        component: "amst",
        node: &node,
        region: "eu-west".to_owned(),
        zone: Cow::Borrowed("a"),
        cluster: Arc::from("c1"),
    };
    let values = labels.with_values(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(values, ["amst", "node-1", "eu-west", "a", "c1"]);
}
