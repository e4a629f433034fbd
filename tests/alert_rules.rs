//! The anomaly alerting rules shipped in `docs/rules/` are valid Prometheus rules, and fire
//! (and stay quiet) as documented: `promtool check rules` and `promtool test rules`, the real
//! tool from Debian's `prometheus` package.

mod prom_support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/rules")
}

/// Runs `promtool <args…>` in `dir`; returns (exit code, stdout + stderr).
fn promtool(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn anomaly_rules_are_valid() {
    if !prom_support::have("promtool") {
        return;
    }
    let (code, out) = promtool(&rules_dir(), &["check", "rules", "dwcp-anomaly.rules.yml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS: 3 rules found"), "{out}");
}

#[test]
fn anomaly_rules_fire_as_documented() {
    if !prom_support::have("promtool") {
        return;
    }
    let (code, out) = promtool(
        &rules_dir(),
        &["test", "rules", "dwcp-anomaly.rules.test.yml"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn a_wrong_expectation_fails() {
    // The unit test above can fail: with instance a's detection removed, the alert expected
    // at 4m does not fire and promtool reports it.
    if !prom_support::have("promtool") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("dwcp-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        rules_dir().join("dwcp-anomaly.rules.yml"),
        dir.join("dwcp-anomaly.rules.yml"),
    )
    .unwrap();
    let tests = std::fs::read_to_string(rules_dir().join("dwcp-anomaly.rules.test.yml")).unwrap();
    let broken = tests.replacen("values: '0 0 0 1x20'", "values: '0x23'", 1);
    assert_ne!(broken, tests, "the mutation must apply");
    std::fs::write(dir.join("broken.test.yml"), broken).unwrap();
    let (code, out) = promtool(&dir, &["test", "rules", "broken.test.yml"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("DWCPLatencyAnomaly"), "{out}");
}
