//! Property tests of the value → bucket mapping.

use dwcp_telemetry::histogram::{AtomicHistogram, Layout, ONE_HOUR_NS};
use proptest::prelude::*;

fn layout() -> impl Strategy<Value = Layout> {
    (
        1u8..=5,
        prop_oneof![Just(ONE_HOUR_NS), Just(u64::MAX), 1_000_000u64..=u64::MAX],
    )
        .prop_map(|(s, m)| Layout::new(s, m).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn value_lies_inside_its_slot(l in layout(), v in any::<u64>()) {
        let v = v % l.max_value().saturating_add(1).max(1);
        let i = l.index_of(v);
        prop_assert!(i < l.len());
        prop_assert!(l.lowest_of(i) <= v && v <= l.highest_of(i));
        prop_assert_eq!(l.index_of(l.lowest_of(i)), i);
        prop_assert_eq!(l.index_of(l.highest_of(i)), i);
    }

    #[test]
    fn slot_width_is_within_precision(l in layout(), v in any::<u64>()) {
        let v = v % l.max_value().saturating_add(1).max(1);
        let i = l.index_of(v);
        let width = l.width_of(i);
        prop_assert_eq!(l.highest_of(i) - l.lowest_of(i) + 1, width);
        // Relative width never exceeds 10^-sigfig (exact below sub_bucket_count).
        let bound = (l.lowest_of(i) as f64) * 10f64.powi(-i32::from(l.sigfig()));
        prop_assert!(width == 1 || (width as f64) <= bound, "width {} at {}", width, l.lowest_of(i));
    }

    #[test]
    fn mapping_is_monotonic(l in layout(), a in any::<u64>(), b in any::<u64>()) {
        let m = l.max_value().saturating_add(1).max(1);
        let (a, b) = ((a % m).min(b % m), (a % m).max(b % m));
        prop_assert!(l.index_of(a) <= l.index_of(b));
    }

    #[test]
    fn agrees_with_hdrhistogram(sigfig in 1u8..=5, v in 0u64..=ONE_HOUR_NS) {
        let l = Layout::new(sigfig, ONE_HOUR_NS).unwrap();
        let h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, ONE_HOUR_NS, sigfig).unwrap();
        let i = l.index_of(v);
        prop_assert_eq!(l.lowest_of(i), h.lowest_equivalent(v));
        prop_assert_eq!(l.highest_of(i), h.highest_equivalent(v));
    }

    #[test]
    fn recording_random_values_converts_exactly(values in proptest::collection::vec(0u64..=ONE_HOUR_NS, 0..300)) {
        let ours = AtomicHistogram::new(Layout::default());
        let mut theirs = hdrhistogram::Histogram::<u64>::new_with_bounds(1, ONE_HOUR_NS, 2).unwrap();
        for &v in &values {
            ours.record(v);
            theirs.record(v).unwrap();
        }
        prop_assert_eq!(ours.snapshot().to_hdrhistogram().unwrap(), theirs);
    }
}
