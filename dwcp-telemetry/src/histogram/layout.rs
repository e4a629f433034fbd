//! Value ⇄ bucket-index mapping: the HDR log-linear layout.
//!
//! The layout is the one `hdrhistogram` uses with a lowest discernible value of 1, so an index
//! here is exactly the index the `hdrhistogram` crate would give, and a snapshot converts into
//! an [`hdrhistogram::Histogram<u64>`] with identical counts.
//!
//! With `d` significant digits, `sub_bucket_count = 2^ceil(log2(2·10^d))`. Values below
//! `sub_bucket_count` are counted exactly; above it, each power-of-two range holds
//! `sub_bucket_count / 2` linear slots, so the relative width of any slot is at most
//! `1 / (sub_bucket_count / 2)` (≤ 10^-d).
//!
//! Storage is split into equally sized *regions* of `sub_bucket_count / 2` slots. Region `r`
//! holds indices `[r·half, (r+1)·half)`; region 0 and 1 together are the exact low range, and
//! every later region is one power of two. Regions are what the atomic histogram allocates
//! lazily.

use crate::error::ConfigError;

/// One hour in nanoseconds: the default highest trackable value.
pub const ONE_HOUR_NS: u64 = 3_600_000_000_000;

/// Default significant digits: 2 (relative error ≤ 1/128 ≈ 0.78 %), which keeps a
/// 10 µs – 10 ms latency series under 16 KiB.
pub const DEFAULT_SIGFIG: u8 = 2;

/// The bucket layout of a histogram: precision and trackable range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    // The fields `AtomicHistogram::record` reads come first, in one 16-byte run:
    // `max_value`, `sub_bucket_mask` and `sub_bucket_half_count_magnitude`.
    max_value: u64,
    /// `sub_bucket_count - 1`, stored so the hot path does not rebuild it from the magnitude.
    sub_bucket_mask: u64,
    sub_bucket_half_count_magnitude: u32,
    leading_zero_count_base: u32,
    sub_bucket_count_magnitude: u32,
    bucket_count: u32,
    sigfig: u8,
}

/// The index of the highest set bit of `x` (`x.ilog2()`), `x` non-zero (0 gives 0).
///
/// x86-64 without `lzcnt` finds it with `bsr`, which leaves its destination unchanged for a
/// zero source, and so waits for the destination register's previous value even when the
/// source is not zero. Left to the compiler, that register may be one the caller last wrote
/// with something slow: on the recording hot path of `#[instrument_dwcp]` it was the high
/// half of the clock conversion's `mul`, which made the slot a record increments wait for the
/// clock read, the very dependency the late record exists to avoid (10 ns a call on the AMD
/// EPYC hosts of `docs/PERFORMANCE.md`). Scanning the source into itself leaves only the
/// dependency on `x`.
#[inline(always)]
pub(crate) fn msb(x: u64) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(target_feature = "lzcnt")))]
    {
        let mut r = x;
        // SAFETY: `bsr` reads and writes one general-purpose register and the flags (which
        // the asm does not claim to preserve); it touches no memory and no stack. For `x == 0`
        // it leaves the register as it was, 0.
        unsafe {
            core::arch::asm!("bsr {0}, {0}", inout(reg) r, options(pure, nomem, nostack));
        }
        r as u32
    }
    #[cfg(not(all(target_arch = "x86_64", not(target_feature = "lzcnt"))))]
    {
        x.checked_ilog2().unwrap_or(0)
    }
}

/// The largest number of regions any layout has (sigfig 1 tracking up to `u64::MAX` has 61),
/// rounded up to a power of two, so a region index can be masked instead of bounds-checked.
pub(crate) const MAX_REGIONS: usize = 64;

impl Default for Layout {
    fn default() -> Self {
        match Layout::new(DEFAULT_SIGFIG, ONE_HOUR_NS) {
            Ok(l) => l,
            // The default arguments are valid constants; this arm is unreachable but keeps the
            // library free of panics.
            Err(_) => Layout {
                sigfig: 2,
                max_value: ONE_HOUR_NS,
                sub_bucket_mask: 255,
                sub_bucket_count_magnitude: 8,
                sub_bucket_half_count_magnitude: 7,
                leading_zero_count_base: 56,
                bucket_count: 35,
            },
        }
    }
}

impl Layout {
    /// A layout with `sigfig` significant digits (1 to 5) that tracks values up to at least
    /// `max_value` (which must be at least `2 · sub_bucket_count`).
    pub fn new(sigfig: u8, max_value: u64) -> Result<Self, ConfigError> {
        if !(1..=5).contains(&sigfig) {
            return Err(ConfigError::Precision(sigfig));
        }
        let largest_single_unit = 2 * 10u64.pow(u32::from(sigfig));
        let sub_bucket_count_magnitude = 64 - (largest_single_unit - 1).leading_zeros();
        let sub_bucket_count = 1u64 << sub_bucket_count_magnitude;
        if max_value < 2 * sub_bucket_count {
            return Err(ConfigError::MaxValue {
                max_value,
                minimum: 2 * sub_bucket_count,
            });
        }
        // How many power-of-two buckets until `max_value` is trackable (hdrhistogram's rule).
        let mut smallest_untrackable = sub_bucket_count;
        let mut bucket_count = 1u32;
        while smallest_untrackable <= max_value {
            if smallest_untrackable > u64::MAX / 2 {
                bucket_count += 1;
                break;
            }
            smallest_untrackable <<= 1;
            bucket_count += 1;
        }
        Ok(Layout {
            sigfig,
            max_value,
            sub_bucket_mask: sub_bucket_count - 1,
            sub_bucket_count_magnitude,
            sub_bucket_half_count_magnitude: sub_bucket_count_magnitude - 1,
            leading_zero_count_base: 64 - sub_bucket_count_magnitude,
            bucket_count,
        })
    }

    /// Significant decimal digits of precision.
    #[inline]
    pub fn sigfig(&self) -> u8 {
        self.sigfig
    }

    /// The largest value recorded as itself; larger values are clamped to it.
    #[inline]
    pub fn max_value(&self) -> u64 {
        self.max_value
    }

    /// Slots per region (`sub_bucket_count / 2`).
    #[inline]
    pub fn region_len(&self) -> usize {
        1usize << self.sub_bucket_half_count_magnitude
    }

    /// log2 of [`Layout::region_len`].
    #[inline]
    pub(crate) fn region_shift(&self) -> u32 {
        self.sub_bucket_half_count_magnitude
    }

    /// Number of regions (`bucket_count + 1`).
    #[inline]
    pub fn regions(&self) -> usize {
        self.bucket_count as usize + 1
    }

    /// Total number of slots (`regions · region_len`).
    #[inline]
    pub fn len(&self) -> usize {
        self.regions() << self.sub_bucket_half_count_magnitude
    }

    /// Always false: a layout has at least two regions.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Slot index of `value`. `value` must be ≤ [`Layout::max_value`] (callers clamp first);
    /// larger values still map inside the array as long as they are below the next power of two.
    #[inline(always)]
    pub fn index_of(&self, value: u64) -> usize {
        let bucket = self.leading_zero_count_base - (value | self.sub_bucket_mask).leading_zeros();
        let sub_bucket = value >> bucket;
        // (bucket + 1) · half + sub_bucket − half  ==  bucket · half + sub_bucket
        ((bucket as usize) << self.sub_bucket_half_count_magnitude) + sub_bucket as usize
    }

    /// `(index_of(value) / region_len, index_of(value) % region_len)`, computed without
    /// forming the index: since `index = bucket · region_len + sub_bucket`, the region is
    /// `bucket + sub_bucket / region_len` and the slot is `sub_bucket % region_len`. This is
    /// the recording hot path's mapping; the region is below [`MAX_REGIONS`] for every layout.
    ///
    /// `bucket` is `msb(value | sub_bucket_mask) - half` (equal to `index_of`'s
    /// `leading_zero_count_base - leading_zeros`), the bit scan done by [`msb`].
    #[inline(always)]
    pub(crate) fn region_and_slot(&self, value: u64) -> (usize, usize) {
        let half = self.sub_bucket_half_count_magnitude;
        let bucket = msb(value | self.sub_bucket_mask).wrapping_sub(half);
        let sub_bucket = value >> (bucket & 63);
        // `sub_bucket_mask >> 1 == region_len - 1`: one shift of a field already loaded.
        let slot_mask = self.sub_bucket_mask >> 1;
        (
            bucket as usize + (sub_bucket >> half) as usize,
            (sub_bucket & slot_mask) as usize,
        )
    }

    /// The lowest value that maps to slot `index`.
    #[inline]
    pub fn lowest_of(&self, index: usize) -> u64 {
        let half = self.region_len();
        let mut bucket = (index >> self.sub_bucket_half_count_magnitude) as i64 - 1;
        let mut sub_bucket = (index & (half - 1)) + half;
        if bucket < 0 {
            sub_bucket -= half;
            bucket = 0;
        }
        (sub_bucket as u64) << bucket
    }

    /// The width of slot `index` (how many integer values share it).
    #[inline]
    pub fn width_of(&self, index: usize) -> u64 {
        let region = index >> self.sub_bucket_half_count_magnitude;
        if region <= 1 {
            1
        } else {
            1u64 << (region - 1)
        }
    }

    /// The highest value that maps to slot `index`.
    #[inline]
    pub fn highest_of(&self, index: usize) -> u64 {
        self.lowest_of(index) + (self.width_of(index) - 1)
    }

    /// The midpoint of slot `index`, the value used for sums and means estimated from buckets.
    #[inline]
    pub fn midpoint_of(&self, index: usize) -> u64 {
        self.lowest_of(index) + self.width_of(index) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msb_is_the_highest_set_bit() {
        assert_eq!(msb(0), 0);
        for shift in 0..64 {
            let top = 1u64 << shift;
            // The highest bit alone, with every lower bit set, and with a few lower bits set.
            for x in [top, top | (top - 1), top | (top >> 1), top | 1] {
                assert_eq!(msb(x), shift, "x = {x:#x}");
                assert_eq!(msb(x), x.ilog2(), "x = {x:#x}");
            }
        }
        assert_eq!(msb(u64::MAX), 63);
    }

    #[test]
    fn default_layout_shape() {
        let l = Layout::default();
        assert_eq!(l.sigfig(), 2);
        assert_eq!(l.region_len(), 128);
        assert_eq!(l.regions(), 36);
        assert_eq!(l.len(), 4608);
        assert_eq!(l.index_of(0), 0);
        assert_eq!(l.index_of(255), 255);
        assert_eq!(l.index_of(256), 256);
        assert_eq!(l.index_of(257), 256);
        assert_eq!(l.index_of(258), 257);
        assert!(l.index_of(ONE_HOUR_NS) < l.len());
    }

    #[test]
    fn region_and_slot_agree_with_index_of() {
        for sigfig in 1..=5u8 {
            for max in [ONE_HOUR_NS, u64::MAX] {
                let l = Layout::new(sigfig, max).unwrap();
                assert!(l.regions() <= MAX_REGIONS, "sigfig {sigfig} max {max}");
                let mut v = 0u64;
                loop {
                    let i = l.index_of(v);
                    let (r, s) = l.region_and_slot(v);
                    assert_eq!(
                        (r, s),
                        (i / l.region_len(), i % l.region_len()),
                        "v={v} sigfig={sigfig}"
                    );
                    assert!(r < l.regions());
                    if v >= max / 2 {
                        break;
                    }
                    v += v / 4 + 1;
                }
                let (r, _) = l.region_and_slot(max);
                assert!(r < l.regions());
            }
        }
    }

    #[test]
    fn invalid_layouts_are_errors() {
        assert_eq!(Layout::new(0, ONE_HOUR_NS), Err(ConfigError::Precision(0)));
        assert_eq!(Layout::new(6, ONE_HOUR_NS), Err(ConfigError::Precision(6)));
        assert_eq!(
            Layout::new(2, 10),
            Err(ConfigError::MaxValue {
                max_value: 10,
                minimum: 512
            })
        );
    }

    #[test]
    fn max_u64_is_trackable_without_overflow() {
        let l = Layout::new(3, u64::MAX).unwrap();
        let i = l.index_of(u64::MAX);
        assert!(i < l.len());
        assert!(l.highest_of(i) == u64::MAX);
    }

    #[test]
    fn matches_hdrhistogram_equivalence_ranges() {
        for sigfig in 1..=5u8 {
            let l = Layout::new(sigfig, ONE_HOUR_NS).unwrap();
            let h =
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, ONE_HOUR_NS, sigfig).unwrap();
            assert_eq!(h.distinct_values(), l.len(), "sigfig {sigfig}");
            let mut v = 0u64;
            while v <= ONE_HOUR_NS {
                let i = l.index_of(v);
                assert_eq!(
                    l.lowest_of(i),
                    h.lowest_equivalent(v),
                    "v={v} sigfig={sigfig}"
                );
                assert_eq!(
                    l.highest_of(i),
                    h.highest_equivalent(v),
                    "v={v} sigfig={sigfig}"
                );
                v = v * 3 / 2 + 1;
            }
        }
    }
}
