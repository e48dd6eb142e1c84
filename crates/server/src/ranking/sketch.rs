//! A latency sketch: a log-linear histogram of durations in microseconds (as HDR histograms
//! do), with eight buckets per power of two, so any quantile it reports is within 12.5 % of
//! the true one, whatever the number of samples. Its size is bounded by the number of
//! buckets ([`BUCKETS`]), not by the samples.

use std::time::Duration;

/// Sub-buckets per power of two.
const SUB_BUCKET_BITS: u32 = 3;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;

/// Durations at or above 2^40 µs (12.7 days) land in the last bucket.
const MAX_EXPONENT: u32 = 40;

/// How many buckets a sketch can have.
pub(crate) const BUCKETS: usize = (SUB_BUCKETS as usize) * 2
    + ((MAX_EXPONENT - SUB_BUCKET_BITS - 1) as usize) * SUB_BUCKETS as usize;

/// Why stored bytes are not a sketch.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SketchError {
    #[error("a latency sketch of {0} bytes is not a whole number of 10-byte entries")]
    Length(usize),
    #[error("a latency sketch names bucket {0}, past the last ({last})", last = BUCKETS - 1)]
    Bucket(usize),
}

/// Counts per bucket, sparse and ordered by bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sketch {
    counts: std::collections::BTreeMap<u16, u64>,
    total: u64,
}

fn bucket_of(micros: u64) -> usize {
    if micros < 2 * SUB_BUCKETS {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    if exponent >= MAX_EXPONENT {
        return BUCKETS - 1;
    }
    let shift = exponent - SUB_BUCKET_BITS;
    let sub = (micros >> shift) - SUB_BUCKETS;
    (2 * SUB_BUCKETS + (u64::from(exponent - SUB_BUCKET_BITS - 1)) * SUB_BUCKETS + sub) as usize
}

/// The midpoint of a bucket's range, in microseconds.
fn value_of(bucket: usize) -> f64 {
    let bucket = bucket as u64;
    if bucket < 2 * SUB_BUCKETS {
        return bucket as f64;
    }
    let rest = bucket - 2 * SUB_BUCKETS;
    let exponent = rest / SUB_BUCKETS + u64::from(SUB_BUCKET_BITS) + 1;
    let sub = rest % SUB_BUCKETS;
    let shift = exponent - u64::from(SUB_BUCKET_BITS);
    let low = (SUB_BUCKETS + sub) << shift;
    low as f64 + ((1u64 << shift) as f64) / 2.0
}

impl Sketch {
    /// Adds one sample.
    pub(crate) fn add(&mut self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        *self.counts.entry(bucket_of(micros) as u16).or_default() += 1;
        self.total += 1;
    }

    /// Samples added.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// Adds `count` samples to `bucket` (a bucket past the last is refused).
    pub(crate) fn add_to_bucket(&mut self, bucket: u16, count: u64) -> Result<(), SketchError> {
        if usize::from(bucket) >= BUCKETS {
            return Err(SketchError::Bucket(bucket.into()));
        }
        let slot = self.counts.entry(bucket).or_default();
        *slot = slot.saturating_add(count);
        self.total = self.total.saturating_add(count);
        Ok(())
    }

    /// Adds every sample of `other` (sketches of the same buckets merge exactly).
    pub(crate) fn merge(&mut self, other: &Sketch) {
        for (&bucket, &count) in &other.counts {
            let slot = self.counts.entry(bucket).or_default();
            *slot = slot.saturating_add(count);
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// The non-empty buckets and their counts, in bucket order.
    pub(crate) fn buckets(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.counts.iter().map(|(&b, &c)| (b, c))
    }

    /// The `q` quantile (0..=1) in microseconds; `None` when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen: u64 = 0;
        for (&bucket, &count) in &self.counts {
            // Counts may come from another node through Redis: whatever they say, no overflow.
            seen = seen.saturating_add(count);
            if seen >= rank {
                return Some(value_of(bucket.into()));
            }
        }
        self.counts.keys().last().map(|&b| value_of(b.into()))
    }

    /// The stored form: (bucket u16, count u64) little-endian, per non-empty bucket.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.counts.len() * 10);
        for (&bucket, &count) in &self.counts {
            out.extend_from_slice(&bucket.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    /// Reads the stored form back, checking every bucket.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Sketch, SketchError> {
        if !bytes.len().is_multiple_of(10) {
            return Err(SketchError::Length(bytes.len()));
        }
        let mut sketch = Sketch::default();
        for entry in bytes.chunks_exact(10) {
            let bucket = u16::from_le_bytes([entry[0], entry[1]]);
            let count = u64::from_le_bytes(entry[2..].try_into().expect("eight bytes"));
            sketch.add_to_bucket(bucket, count)?;
        }
        Ok(sketch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_duration_in_order() {
        let mut last = 0;
        for micros in (0..5_000u64).chain([1 << 20, (1 << 39) + 5, 1 << 40, u64::MAX]) {
            let bucket = bucket_of(micros);
            assert!(bucket < BUCKETS, "{micros} → {bucket}");
            assert!(bucket >= last, "{micros} went back to bucket {bucket}");
            last = bucket;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    /// Counts from another node (through Redis) may be anything: a quantile of buckets whose
    /// counts add up past `u64::MAX` answers instead of overflowing (a panic in a debug build,
    /// on a call's path).
    #[test]
    fn huge_counts_do_not_overflow() {
        let mut sketch = Sketch::default();
        sketch.add_to_bucket(0, 1 << 63).unwrap();
        sketch.add_to_bucket(1, u64::MAX).unwrap();
        assert!(sketch.quantile(0.9).is_some());
    }

    #[test]
    fn quantiles_are_within_an_eighth() {
        let mut sketch = Sketch::default();
        for micros in 1..=10_000u64 {
            sketch.add(Duration::from_micros(micros));
        }
        for (q, exact) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = sketch.quantile(q).unwrap();
            assert!(
                (got - exact).abs() / exact <= 0.125,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(sketch.count(), 10_000);
    }

    #[test]
    fn merging_equals_adding_every_sample_to_one_sketch() {
        let (mut one, mut a, mut b) = (Sketch::default(), Sketch::default(), Sketch::default());
        for micros in 1..=2_000u64 {
            one.add(Duration::from_micros(micros * 7));
            if micros % 3 == 0 { &mut a } else { &mut b }.add(Duration::from_micros(micros * 7));
        }
        a.merge(&b);
        assert_eq!(a, one);
        let mut rebuilt = Sketch::default();
        for (bucket, count) in one.buckets() {
            rebuilt.add_to_bucket(bucket, count).unwrap();
        }
        assert_eq!(rebuilt, one);
        assert!(rebuilt.add_to_bucket(u16::MAX, 1).is_err());
    }

    #[test]
    fn encoding_round_trips_and_bad_bytes_are_refused() {
        let mut sketch = Sketch::default();
        for micros in [3, 300, 300, 30_000] {
            sketch.add(Duration::from_micros(micros));
        }
        assert_eq!(Sketch::decode(&sketch.encode()).unwrap(), sketch);
        assert!(matches!(
            Sketch::decode(&[1, 2, 3]),
            Err(SketchError::Length(3))
        ));
        let mut bad = Vec::from(u16::MAX.to_le_bytes());
        bad.extend_from_slice(&1u64.to_le_bytes());
        assert!(matches!(Sketch::decode(&bad), Err(SketchError::Bucket(_))));
        assert_eq!(Sketch::default().quantile(0.5), None);
    }
}
