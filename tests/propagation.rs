//! W3C Trace Context propagation: the spec's examples, invalid headers (rejected, never a
//! panic), inject/extract round trips through map carriers, and property tests of both
//! parsers.

use std::collections::{BTreeMap, HashMap};

use dwcp_telemetry::propagation::{
    extract, inject, SpanContext, SpanId, TraceContextError, TraceFlags, TraceId, TraceParent,
    TraceState, TRACEPARENT, TRACESTATE,
};
use proptest::prelude::*;

const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const NOT_SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

fn tp(s: &str) -> Result<TraceParent, TraceContextError> {
    s.parse()
}

fn ts(s: &str) -> Result<TraceState, TraceContextError> {
    s.parse()
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// traceparent: the spec's examples.

#[test]
fn spec_example_sampled() {
    let p = tp(SAMPLED).unwrap();
    assert_eq!(p.version(), 0);
    assert_eq!(p.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(p.span_id().to_string(), "00f067aa0ba902b7");
    assert_eq!(p.flags(), TraceFlags::SAMPLED);
    assert!(p.flags().is_sampled());
    assert_eq!(p.to_string(), SAMPLED);
    assert_eq!(
        p.trace_id().to_bytes(),
        [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36
        ]
    );
    assert_eq!(
        p.span_id().to_bytes(),
        [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
    );
}

#[test]
fn spec_example_not_sampled() {
    let p = tp(NOT_SAMPLED).unwrap();
    assert!(!p.flags().is_sampled());
    assert_eq!(p.flags(), TraceFlags::NOT_SAMPLED);
    assert_eq!(p.to_string(), NOT_SAMPLED);
}

#[test]
fn ids_and_flags_parse_and_display_as_lowercase_hex() {
    let t: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
    let s: SpanId = "00f067aa0ba902b7".parse().unwrap();
    let f: TraceFlags = "01".parse().unwrap();
    assert_eq!(TraceParent::new(t, s, f).to_string(), SAMPLED);
    assert_eq!(
        format!("{t:?}"),
        "TraceId(4bf92f3577b34da6a3ce929d0e0e4736)"
    );
    assert_eq!(
        "00000000000000000000000000000000".parse::<TraceId>(),
        Err(TraceContextError::ZeroTraceId)
    );
    assert_eq!(
        "0000000000000000".parse::<SpanId>(),
        Err(TraceContextError::ZeroSpanId)
    );
    assert!("4BF92F3577B34DA6A3CE929D0E0E4736"
        .parse::<TraceId>()
        .is_err());
    assert!("00f067aa0ba902b".parse::<SpanId>().is_err());
    assert!("1".parse::<TraceFlags>().is_err());
    assert!(TraceId::from_bytes([0; 16]).is_none());
    assert!(SpanId::from_bytes([0; 8]).is_none());
    assert_eq!(TraceFlags::new(0xff).known(), TraceFlags::SAMPLED);
    assert!(!TraceFlags::new(0xff).with_sampled(false).is_sampled());
}

#[test]
fn optional_whitespace_around_traceparent_is_ignored() {
    assert_eq!(
        tp(&format!(" \t{SAMPLED}\t ")).unwrap(),
        tp(SAMPLED).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// traceparent: invalid headers.

#[test]
fn invalid_traceparents_are_rejected() {
    use TraceContextError as E;
    let cases: &[(&str, &str)] = &[
        ("empty", ""),
        ("whitespace only", "  \t "),
        (
            "too short",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
        ),
        (
            "trace id too short",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ),
        (
            "too long for version 00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
        ),
        (
            "extra trailing field for version 00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
        ),
        (
            "uppercase trace id",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ),
        (
            "uppercase span id",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        ),
        (
            "uppercase flags",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        ),
        (
            "uppercase future version",
            "CC-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "version ff",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "all-zero trace id",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ),
        (
            "all-zero span id",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ),
        (
            "non-hex trace id",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ),
        (
            "non-hex span id",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ),
        (
            "non-hex flags",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        ),
        (
            "non-hex version",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "missing dashes",
            "004bf92f3577b34da6a3ce929d0e0e473600f067aa0ba902b701",
        ),
        (
            "dashes replaced",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        ),
        (
            "dash moved",
            "00-4bf92f3577b34da6a3ce929d0e0e47-3600f067aa0ba902b7-01",
        ),
        (
            "future version without dash after field 4",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ),
        (
            "future version too short",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ),
        (
            "non-ASCII",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ),
        ("single char", "0"),
        ("multi-byte single char", "é"),
    ];
    for (why, s) in cases {
        assert!(tp(s).is_err(), "{why}: {s:?} was accepted");
    }
    // The errors say what was wrong.
    assert_eq!(tp(""), Err(E::EmptyTraceParent));
    assert_eq!(
        tp("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        Err(E::InvalidVersion)
    );
    assert_eq!(
        tp("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        Err(E::ZeroTraceId)
    );
    assert_eq!(
        tp("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
        Err(E::ZeroSpanId)
    );
    assert_eq!(
        tp("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        Err(E::UppercaseHex { field: "trace-id" })
    );
    assert_eq!(
        tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01"),
        Err(E::InvalidHex { field: "parent-id" })
    );
    assert_eq!(
        tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"),
        Err(E::InvalidLength {
            field: "traceparent",
            expected: 55,
            found: 57
        })
    );
    assert_eq!(
        tp("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01"),
        Err(E::MissingDelimiter { position: 2 })
    );
    assert_eq!(
        tp("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"),
        Err(E::MissingDelimiter { position: 55 })
    );
    // Messages are readable.
    assert_eq!(
        E::UppercaseHex { field: "trace-id" }.to_string(),
        "trace-id contains uppercase hex digits; only lowercase (0-9, a-f) is allowed"
    );
}

#[test]
fn future_version_is_parsed_leniently() {
    let p =
        tp("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like")
            .unwrap();
    assert_eq!(p.version(), 0xcc);
    assert_eq!(p.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(p.span_id().to_string(), "00f067aa0ba902b7");
    assert!(p.flags().is_sampled());
    // Exactly 55 characters is fine too; the future fields are not kept.
    let exact = tp("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    assert_eq!(exact, p);
    assert_eq!(
        p.to_string(),
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    // Re-injected, it is sent as version 00.
    let cx = SpanContext::from_headers(&p.to_string(), None).unwrap();
    assert_eq!(cx.traceparent().to_string(), SAMPLED);
}

// ---------------------------------------------------------------------------------------------
// tracestate.

#[test]
fn spec_tracestate_round_trips() {
    let s = ts("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s.get("rojo"), Some("00f067aa0ba902b7"));
    assert_eq!(s.get("congo"), Some("t61rcWkgMzE"));
    assert_eq!(s.get("missing"), None);
    assert_eq!(s.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_eq!(
        s.iter().collect::<Vec<_>>(),
        [("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]
    );
}

#[test]
fn multi_tenant_keys() {
    let s = ts("fw529a3039@dt=5c6a1c6c_a8d4,rojo@x=1,0tenant@sys_-*/=ok").unwrap();
    assert_eq!(s.get("fw529a3039@dt"), Some("5c6a1c6c_a8d4"));
    assert_eq!(s.get("rojo@x"), Some("1"));
    assert_eq!(s.get("0tenant@sys_-*/"), Some("ok"));
    assert_eq!(
        s.to_string(),
        "fw529a3039@dt=5c6a1c6c_a8d4,rojo@x=1,0tenant@sys_-*/=ok"
    );
    // Limits: tenant ≤ 241, system ≤ 14 characters, system starts with a letter.
    let tenant = "t".repeat(241);
    assert!(ts(&format!("{tenant}@dt=1")).is_ok());
    assert!(ts(&format!("{tenant}x@dt=1")).is_err());
    assert!(ts("t@abcdefghijklmn=1").is_ok());
    assert!(ts("t@abcdefghijklmno=1").is_err());
    assert!(ts("t@0dt=1").is_err());
    assert!(ts("@dt=1").is_err());
    assert!(ts("t@=1").is_err());
    assert!(ts("a@b@c=1").is_err());
}

#[test]
fn empty_members_and_whitespace_are_skipped() {
    let s = ts(" , rojo=1 ,,\t,congo=2\t, ").unwrap();
    assert_eq!(s.to_string(), "rojo=1,congo=2");
    assert!(ts("").unwrap().is_empty());
    assert!(ts(" ,, ").unwrap().is_empty());
    // A value may start with (but not end with) a space; only OWS around members is trimmed.
    assert_eq!(ts("a= b").unwrap().get("a"), Some(" b"));
}

#[test]
fn simple_key_and_value_limits() {
    let key = format!("a{}", "b".repeat(255));
    let value = "v".repeat(256);
    assert!(ts(&format!("{key}={value}")).is_ok());
    assert!(ts(&format!("{key}b=1")).is_err(), "key of 257 characters");
    assert!(
        ts(&format!("a={value}v")).is_err(),
        "value of 257 characters"
    );
    assert!(ts("a=").is_err(), "empty value");
    assert!(ts("a=~ !\"#$%&'()*+-./09:;<>?@AZ[\\]^_`az{|}").is_ok());
}

#[test]
fn invalid_tracestates_are_rejected() {
    use TraceContextError as E;
    assert_eq!(
        ts("rojo=1,congo=2,rojo=3"),
        Err(E::DuplicateKey { key: "rojo".into() })
    );
    let members = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}=v{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(ts(&members(32)).unwrap().len(), 32);
    assert_eq!(ts(&members(33)), Err(E::TooManyMembers { count: 33 }));
    for (why, s) in [
        ("uppercase key", "Rojo=1"),
        ("key starts with a digit", "1rojo=1"),
        ("key with a dot", "ro.jo=1"),
        ("key with a space", "ro jo=1"),
        ("space before =", "rojo =1"),
        ("empty key", "=1"),
        ("non-ASCII key", "röjo=1"),
    ] {
        assert!(
            matches!(ts(s), Err(E::InvalidKey { member: 0 })),
            "{why}: {s:?}"
        );
    }
    assert_eq!(ts("rojo=1,congo=a=b"), Err(E::InvalidValue { member: 1 }));
    assert_eq!(
        ts("rojo=1,congo=\u{7f}"),
        Err(E::InvalidValue { member: 1 })
    );
    assert_eq!(ts("rojo=1,congo=é"), Err(E::InvalidValue { member: 1 }));
    assert_eq!(ts("rojo=1,congo=a\tb"), Err(E::InvalidValue { member: 1 }));
    assert_eq!(ts("rojo"), Err(E::MissingEquals { member: 0 }));
}

#[test]
fn insert_moves_to_front_and_remove() {
    let mut s = ts("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").unwrap();
    s.insert("congo", "updated").unwrap();
    assert_eq!(s.to_string(), "congo=updated,rojo=00f067aa0ba902b7");
    s.insert("new@vendor", "x").unwrap();
    assert_eq!(
        s.to_string(),
        "new@vendor=x,congo=updated,rojo=00f067aa0ba902b7"
    );
    assert_eq!(s.remove("congo"), Some("updated".to_owned()));
    assert_eq!(s.remove("congo"), None);
    assert_eq!(s.to_string(), "new@vendor=x,rojo=00f067aa0ba902b7");

    // Invalid entries are refused and change nothing.
    let before = s.clone();
    assert_eq!(
        s.insert("Bad", "x"),
        Err(TraceContextError::InvalidKey { member: 0 })
    );
    assert_eq!(
        s.insert("ok", "a=b"),
        Err(TraceContextError::InvalidValue { member: 0 })
    );
    assert_eq!(
        s.insert("ok", "trailing "),
        Err(TraceContextError::InvalidValue { member: 0 })
    );
    assert_eq!(s, before);

    // A 33rd entry pushes the last one out.
    let mut full = TraceState::new();
    for i in 0..32 {
        full.insert(&format!("k{i}"), "v").unwrap();
    }
    full.insert("newest", "v").unwrap();
    assert_eq!(full.len(), 32);
    assert_eq!(full.iter().next(), Some(("newest", "v")));
    assert_eq!(
        full.get("k0"),
        None,
        "the oldest (rightmost) entry was dropped"
    );
}

#[test]
fn truncation_drops_large_entries_first_then_from_the_end() {
    let mut s = TraceState::new();
    for i in (0..10).rev() {
        s.insert(&format!("k{i}"), &"v".repeat(40)).unwrap(); // 43 bytes each
    }
    s.insert("big", &"b".repeat(200)).unwrap();
    s.insert("first", "1").unwrap();
    assert!(s.header_len() > TraceState::MAX_HEADER_LEN);
    let mut t = s.clone();
    t.truncate(TraceState::MAX_HEADER_LEN);
    assert!(t.header_len() <= TraceState::MAX_HEADER_LEN);
    assert_eq!(t.get("big"), None, "the large entry goes first");
    assert_eq!(t.get("first"), Some("1"));
    assert!(t.get("k0").is_some() && t.get("k9").is_some(), "{t}");

    let mut u = TraceState::new();
    for i in (0..20).rev() {
        u.insert(&format!("k{i:02}"), &"v".repeat(40)).unwrap(); // 44 bytes each
    }
    u.truncate(100);
    assert_eq!(u.to_string(), format!("k00={0},k01={0}", "v".repeat(40)));
    u.truncate(0);
    assert!(u.is_empty());

    // inject applies the cap.
    let mut cx = SpanContext::new_root(true);
    cx.state = s;
    let mut carrier = HashMap::new();
    inject(&cx, &mut carrier);
    assert!(carrier[TRACESTATE].len() <= TraceState::MAX_HEADER_LEN);
    assert!(carrier[TRACESTATE].starts_with("first=1,k0="));
}

// ---------------------------------------------------------------------------------------------
// Inject / extract.

#[test]
fn inject_then_extract_round_trips_through_a_hash_map() {
    for sampled in [true, false] {
        let mut cx = SpanContext::new_root(sampled);
        cx.state.insert("congo", "t61rcWkgMzE").unwrap();
        cx.state.insert("rojo", "00f067aa0ba902b7").unwrap();
        let mut carrier: HashMap<String, String> = HashMap::new();
        inject(&cx, &mut carrier);
        assert_eq!(carrier.len(), 2);
        assert_eq!(carrier[TRACEPARENT], cx.traceparent().to_string());
        assert_eq!(
            carrier[TRACESTATE],
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
        let back = extract(&carrier).unwrap().unwrap();
        assert!(back.remote);
        assert_eq!(
            back,
            SpanContext {
                remote: true,
                ..cx.clone()
            }
        );
        assert_eq!(back.trace_id, cx.trace_id);
        assert_eq!(back.span_id, cx.span_id);
        assert_eq!(back.flags, cx.flags);
        assert_eq!(back.flags.is_sampled(), sampled);
        assert_eq!(back.state, cx.state);
    }
}

#[test]
fn round_trip_through_a_btree_map_and_the_spec_headers() {
    let carrier: BTreeMap<String, String> = [
        (TRACEPARENT.to_owned(), SAMPLED.to_owned()),
        (
            TRACESTATE.to_owned(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let cx = extract(&carrier).unwrap().unwrap();
    let mut out = BTreeMap::new();
    inject(&cx, &mut out);
    assert_eq!(out, carrier);
}

#[test]
fn extraction_is_case_insensitive_and_prefers_the_exact_key() {
    let carrier = map(&[
        ("TraceParent", SAMPLED),
        ("TRACESTATE", "rojo=00f067aa0ba902b7"),
    ]);
    let cx = extract(&carrier).unwrap().unwrap();
    assert_eq!(cx.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(cx.state.get("rojo"), Some("00f067aa0ba902b7"));

    let both = map(&[("TRACEPARENT", "garbage"), ("traceparent", NOT_SAMPLED)]);
    assert!(!extract(&both).unwrap().unwrap().flags.is_sampled());

    // Injecting replaces differently-cased keys, so no stale header survives.
    let mut carrier = carrier;
    let fresh = SpanContext::new_root(false);
    inject(&fresh, &mut carrier);
    assert_eq!(carrier.len(), 1, "{carrier:?}");
    assert_eq!(extract(&carrier).unwrap().unwrap().trace_id, fresh.trace_id);
}

#[test]
fn extract_follows_the_spec_on_invalid_headers() {
    // No traceparent: nothing to continue (a tracestate alone is ignored).
    assert_eq!(extract(&map(&[])), Ok(None));
    assert_eq!(extract(&map(&[("tracestate", "rojo=1")])), Ok(None));
    // An invalid traceparent is an error; its tracestate is ignored.
    assert_eq!(
        extract(&map(&[
            (
                "traceparent",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            ),
            ("tracestate", "rojo=1")
        ])),
        Err(TraceContextError::InvalidVersion)
    );
    assert!(extract(&map(&[("traceparent", "")])).is_err());
    // An invalid tracestate with a valid traceparent: keep the context, drop the state.
    for bad in [
        "rojo=1,rojo=2",
        "Rojo=1",
        "rojo=a=b",
        &(0..33)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(","),
    ] {
        let cx = extract(&map(&[("traceparent", SAMPLED), ("tracestate", bad)]))
            .unwrap()
            .unwrap();
        assert!(cx.state.is_empty(), "{bad:?} was kept");
        assert_eq!(cx.span_id.to_string(), "00f067aa0ba902b7");
    }
}

#[test]
fn inject_sends_version_00_known_flags_and_no_empty_tracestate() {
    let cx = SpanContext::new(
        "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap(),
        "00f067aa0ba902b7".parse().unwrap(),
        TraceFlags::new(0xff),
    );
    let mut carrier = map(&[("tracestate", "stale=1")]);
    inject(&cx, &mut carrier);
    assert_eq!(carrier, map(&[("traceparent", SAMPLED)]));
}

#[test]
fn child_keeps_the_trace_and_gets_a_new_span() {
    let root = SpanContext::new_root(true);
    assert!(root.flags.is_sampled() && !root.remote);
    assert!(!SpanContext::new_root(false).flags.is_sampled());
    let mut carrier = HashMap::new();
    inject(&root, &mut carrier);
    let remote = extract(&carrier).unwrap().unwrap();
    let child = remote.child();
    assert_eq!(child.trace_id, root.trace_id);
    assert_ne!(child.span_id, root.span_id);
    assert_eq!(child.flags, root.flags);
    assert_eq!(child.state, root.state);
    assert!(!child.remote);
}

#[test]
fn generated_ids_are_distinct_and_never_zero() {
    let mut traces = std::collections::HashSet::new();
    let mut spans = std::collections::HashSet::new();
    for _ in 0..10_000 {
        let cx = SpanContext::new_root(true);
        assert_ne!(cx.trace_id.to_bytes(), [0; 16]);
        assert_ne!(cx.span_id.to_bytes(), [0; 8]);
        assert!(traces.insert(cx.trace_id));
        assert!(spans.insert(cx.span_id));
    }
    // Other threads draw from their own, differently seeded, generators.
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (0..1_000).map(|_| TraceId::random()).collect::<Vec<_>>()))
        .collect();
    for h in handles {
        for id in h.join().unwrap() {
            assert!(traces.insert(id), "duplicate trace id across threads");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests: arbitrary input never panics; whatever parses re-serialises to itself.

fn traceparent_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F-]{0,60}",
        "(00|[0-9a-f]{2})-[0-9a-fA-Z]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.{0,8})?.{0,2}",
        (
            prop_oneof![Just(0u8), any::<u8>()],
            any::<[u8; 16]>(),
            any::<[u8; 8]>(),
            any::<u8>(),
            "(-[a-z]{0,5})?"
        )
            .prop_map(|(v, t, s, f, tail)| {
                let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
                format!("{}-{}-{}-{}{tail}", hex(&[v]), hex(&t), hex(&s), hex(&[f]))
            }),
    ]
}

fn tracestate_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~\t]{0,80}",
        "([ \t]*[a-z0-9@_*/-]{0,6}=[ -~]{0,6}[ \t]*,?){0,40}",
        proptest::collection::vec(
            (
                "[a-z][a-z0-9_*/-]{0,5}(@[a-z]{1,3})?",
                "[!-+./0-<>-~-][ !-+./0-<>-~-]{0,5}[!-+./0-<>-~-]"
            ),
            0..36
        )
        .prop_map(|kv| kv
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn traceparent_parser_never_panics_and_round_trips(s in traceparent_like()) {
        if let Ok(p) = s.parse::<TraceParent>() {
            let text = p.to_string();
            prop_assert_eq!(text.len(), 55);
            prop_assert_eq!(text.parse::<TraceParent>(), Ok(p));
            prop_assert_ne!(p.version(), 0xff);
            // A header sent on is always a valid version-00 header.
            let cx = SpanContext::from_headers(&s, None).unwrap();
            let sent = cx.traceparent().to_string();
            prop_assert!(sent.starts_with("00-"));
            prop_assert_eq!(sent.parse::<TraceParent>().map(|q| q.trace_id()), Ok(p.trace_id()));
        }
    }

    #[test]
    fn tracestate_parser_never_panics_and_round_trips(s in tracestate_like()) {
        if let Ok(state) = s.parse::<TraceState>() {
            prop_assert!(state.len() <= TraceState::MAX_MEMBERS);
            let text = state.to_string();
            prop_assert_eq!(text.len(), state.header_len());
            let again = text.parse::<TraceState>();
            prop_assert_eq!(again.as_ref(), Ok(&state));
            let mut truncated = state.clone();
            truncated.truncate(TraceState::MAX_HEADER_LEN);
            prop_assert!(truncated.header_len() <= TraceState::MAX_HEADER_LEN);
            prop_assert_eq!(truncated.to_string().parse::<TraceState>(), Ok(truncated));
        }
    }

    #[test]
    fn extract_never_panics(tp in traceparent_like(), st in tracestate_like(), upper in any::<bool>()) {
        let (kp, ks) = if upper { ("TRACEPARENT", "TraceState") } else { (TRACEPARENT, TRACESTATE) };
        let carrier = map(&[(kp, tp.as_str()), (ks, st.as_str())]);
        if let Ok(Some(cx)) = extract(&carrier) {
            let mut out = HashMap::new();
            inject(&cx, &mut out);
            let back = extract(&out).unwrap().unwrap();
            prop_assert_eq!(back.trace_id, cx.trace_id);
            prop_assert_eq!(back.span_id, cx.span_id);
            prop_assert_eq!(back.flags, cx.flags.known());
        }
    }

    #[test]
    fn insert_keeps_the_state_valid(ops in proptest::collection::vec(("[a-z@0-9_]{0,8}", "[ -~]{0,8}", any::<bool>()), 0..60)) {
        let mut state = TraceState::new();
        for (k, v, remove) in &ops {
            if *remove {
                let had = state.get(k).map(str::to_owned);
                prop_assert_eq!(state.remove(k), had);
            } else if state.insert(k, v).is_ok() {
                prop_assert_eq!(state.iter().next(), Some((k.as_str(), v.as_str())));
            }
            prop_assert!(state.len() <= TraceState::MAX_MEMBERS);
            prop_assert_eq!(state.to_string().parse::<TraceState>(), Ok(state.clone()));
        }
    }
}

/// The generators above must reach the parsers' accepting paths, not only their errors.
#[test]
fn property_generators_produce_valid_headers() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut tp_ok, mut tp_future, mut ts_ok, mut ts_nonempty) = (0, 0, 0, 0usize);
    for _ in 0..2_000 {
        let s = traceparent_like().new_tree(&mut runner).unwrap().current();
        if let Ok(p) = s.parse::<TraceParent>() {
            tp_ok += 1;
            tp_future += usize::from(p.version() != 0);
        }
        let s = tracestate_like().new_tree(&mut runner).unwrap().current();
        if let Ok(state) = s.parse::<TraceState>() {
            ts_ok += 1;
            ts_nonempty += usize::from(state.len() > 1);
        }
    }
    eprintln!("traceparent ok {tp_ok} (future {tp_future}), tracestate ok {ts_ok} (>1 member {ts_nonempty})");
    assert!(tp_ok > 300 && tp_future > 100, "{tp_ok} {tp_future}");
    assert!(tp_ok - tp_future > 100, "version 00: {}", tp_ok - tp_future);
    assert!(ts_ok > 200 && ts_nonempty > 100, "{ts_ok} {ts_nonempty}");
}
