// Unit and empty structs have no labels; raw identifiers are unescaped; `rename` wins.
use dwcp_telemetry::LabelSet;

#[derive(LabelSet)]
struct Unit;

#[derive(LabelSet)]
struct Empty {}

#[derive(LabelSet)]
struct Raw {
    r#type: &'static str,
    #[label(rename = "match")]
    r#match: &'static str,
    #[label(rename = "shard_id")]
    shard: u32,
    /// Doc comments and other attributes are fine.
    #[allow(dead_code)]
    _private: u8,
}

fn main() {
    assert!(Unit::NAMES.is_empty());
    assert_eq!(Unit.with_values(|v| v.len()), 0);
    assert!(Empty::NAMES.is_empty());
    assert_eq!(Empty {}.with_values(|v| v.len()), 0);
    assert_eq!(Raw::NAMES, ["type", "match", "shard_id", "_private"]);
    let raw = Raw {
        r#type: "t",
        r#match: "m",
        shard: 9,
        _private: 1,
    };
    raw.with_values(|v| assert_eq!(v, ["t", "m", "9", "1"]));
}
