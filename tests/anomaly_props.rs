//! Property tests of the anomaly detector on hostile input: any configuration builds or is
//! rejected with an error, any sequence of `f64` (NaN, ±∞, ±f64::MAX, subnormals, huge
//! jumps) is absorbed without a panic, and the detector's bookkeeping stays consistent.

use dwcp_telemetry::anomaly::{
    DetectorConfig, DetectorState, Direction, RollingWindow, MAX_WINDOW,
};
use proptest::prelude::*;

/// Any `f64`, weighted towards the awkward ones.
fn hostile_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e3f64..1e3,
        1 => any::<f64>(),
        1 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(0.0),
            Just(-0.0),
            Just(1e300),
        ],
    ]
}

/// A configuration with every field drawn from valid and invalid values alike.
fn any_config() -> impl Strategy<Value = DetectorConfig> {
    let direction = prop_oneof![
        Just(Direction::Both),
        Just(Direction::Up),
        Just(Direction::Down)
    ];
    let opt = |s: BoxedStrategy<f64>| prop_oneof![Just(None), s.prop_map(Some)];
    (
        (
            0usize..300,
            hostile_f64(),
            hostile_f64(),
            hostile_f64(),
            direction,
        ),
        (
            0usize..300,
            0usize..50,
            prop_oneof![Just(None), (0usize..50).prop_map(Some)],
        ),
        (
            hostile_f64(),
            hostile_f64(),
            opt(hostile_f64().boxed()),
            hostile_f64(),
        ),
        (
            hostile_f64(),
            opt(hostile_f64().boxed()),
            opt(hostile_f64().boxed()),
        ),
        (
            0usize..40,
            0usize..500,
            prop_oneof![Just(None), (0usize..40).prop_map(Some)],
        ),
        (
            prop_oneof![Just(None), (0usize..300).prop_map(Some)],
            hostile_f64(),
        ),
    )
        .prop_map(
            |(
                (window, warning, critical, clear, direction),
                (min_samples, cooldown, max_incident),
                (min_scale, rel_floor, clip, smoothing),
                (surprise, bypass, record),
                (short, half_life, recompute),
                (season, season_weight),
            )| {
                DetectorConfig::new()
                    .with_window(window)
                    .with_warning(warning)
                    .with_critical(critical)
                    .with_clear(clear)
                    .with_direction(direction)
                    .with_min_samples(min_samples)
                    .with_cooldown(cooldown)
                    .with_max_incident(max_incident)
                    .with_min_scale(min_scale)
                    .with_relative_scale_floor(rel_floor)
                    .with_baseline_clip(clip)
                    .with_smoothing(smoothing)
                    .with_surprise(surprise, short, half_life)
                    .with_gate_bypass(bypass)
                    .with_record_factor(record)
                    .with_recompute_every(recompute)
                    .with_season(season)
                    .with_season_weight(season_weight)
            },
        )
}

/// A valid configuration near the defaults, small enough to warm up quickly.
fn valid_config() -> impl Strategy<Value = DetectorConfig> {
    (
        8usize..200,
        1.0f64..6.0,
        prop_oneof![
            Just(Direction::Both),
            Just(Direction::Up),
            Just(Direction::Down)
        ],
        0usize..40,
        prop_oneof![Just(None), (1.0f64..3.0).prop_map(Some)],
        prop_oneof![Just(None), (2usize..100).prop_map(Some)],
        0.05f64..=1.0,
        0.0f64..3.0,
    )
        .prop_map(
            |(window, warning, direction, cooldown, record, season, smoothing, surprise)| {
                DetectorConfig::new()
                    .with_window(window)
                    .with_warning(warning)
                    .with_critical(warning * 1.5)
                    .with_clear(warning / 3.0)
                    .with_direction(direction)
                    .with_min_samples((window / 4).max(2))
                    .with_cooldown(cooldown)
                    .with_max_incident(Some(cooldown.max(1)))
                    .with_smoothing(smoothing)
                    .with_surprise(surprise, 8, 500)
                    .with_record_factor(record)
                    .with_season(season)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// `build()` never panics: it returns a detector whose configuration passed
    /// `validate()`, or the error `validate()` gives.
    #[test]
    fn any_configuration_builds_or_is_rejected(cfg in any_config()) {
        let checked = cfg.validate();
        match cfg.clone().build() {
            Ok(d) => {
                prop_assert!(checked.is_ok());
                prop_assert!(d.config().window() >= 2 && d.config().window() <= MAX_WINDOW);
                prop_assert!(d.config().warning().is_finite() && d.config().warning() > 0.0);
            }
            Err(e) => {
                // Compared as text: a rejected NaN makes the errors unequal under `==`.
                let expected = checked.expect_err("build failed, so must validate");
                prop_assert_eq!(e.to_string(), expected.to_string());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    /// Any input sequence: no panic, counts add up, the record stays bounded, and at most one
    /// alert per incident.
    #[test]
    fn hostile_input_keeps_the_books_straight(
        cfg in valid_config(),
        xs in prop::collection::vec(hostile_f64(), 0..600),
    ) {
        let warning = cfg.warning();
        let min_samples = cfg.min_samples();
        let window = cfg.window();
        let mut d = cfg.build().unwrap();
        let (mut finite, mut invalid, mut alerts, mut scored) = (0u64, 0u64, 0u64, 0u64);
        for &x in &xs {
            let before = d.state();
            let alert = d.observe(x);
            if x.is_finite() {
                finite += 1;
            } else {
                invalid += 1;
                prop_assert!(alert.is_none());
                prop_assert!(!d.last_was_scored());
            }
            scored += u64::from(d.last_was_scored());
            if let Some(a) = alert {
                alerts += 1;
                // Never while warming up or cooling down. (During an incident, only as the
                // reminder after `max_incident` samples, once the cooldown is over.)
                prop_assert!(
                    before != DetectorState::Warming && before != DetectorState::CoolingDown,
                    "alert in state {:?}",
                    before
                );
                prop_assert_eq!(d.state(), DetectorState::Anomalous);
                prop_assert_eq!(a.value, x);
            }
            let s = d.snapshot();
            prop_assert!(s.n <= window);
            prop_assert!(s.record >= warning && s.record <= 1e12, "record {}", s.record);
        }
        let s = d.snapshot();
        prop_assert_eq!(s.observed, finite);
        prop_assert_eq!(s.invalid, invalid);
        prop_assert_eq!(s.alerts, alerts);
        prop_assert!(s.alerts + s.suppressed <= scored);
        prop_assert_eq!(s.n as u64, finite.min(window as u64));
        if finite < min_samples as u64 {
            prop_assert_eq!(scored, 0);
            prop_assert_eq!(s.state, DetectorState::Warming);
        }
    }

    /// The sliding mean and standard deviation match a two-pass computation over the values
    /// the ring holds.
    #[test]
    fn rolling_window_matches_two_pass(
        cap in 2usize..64,
        xs in prop::collection::vec(-1e6f64..1e6, 1..400),
    ) {
        let mut w = RollingWindow::new(cap, cap);
        for &x in &xs {
            w.push(x);
        }
        let held = &xs[xs.len().saturating_sub(cap)..];
        let n = held.len() as f64;
        let mean = held.iter().sum::<f64>() / n;
        // Rounding of a sliding update is relative to the largest value seen, not to the
        // (possibly tiny) spread of the values held now.
        let tol = 1e-6 * (1.0 + xs.iter().fold(0.0f64, |m, x| m.max(x.abs())));
        prop_assert_eq!(w.len(), held.len());
        prop_assert!((w.mean() - mean).abs() <= tol, "{} vs {}", w.mean(), mean);
        if held.len() >= 2 {
            let var = held.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
            let sd = var.sqrt();
            prop_assert!((w.sample_sd() - sd).abs() <= tol, "{} vs {}", w.sample_sd(), sd);
        }
    }
}
