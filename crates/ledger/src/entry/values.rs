//! The typed values entries are made of: numbers, privacy budgets, sample
//! buckets, aggregation weights, and fixed code tables instead of text.
//!
//! Code tables are append-only: a code is never reassigned or removed, so old
//! entries always decode to what their author signed.

use std::fmt;

use super::error::{DecodeError, ValueError};

/// Declares a code table: an enum with a wire code and a kebab-case name per
/// variant.
macro_rules! code_table {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident = $code:literal => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every variant, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The wire code.
            pub fn code(self) -> u8 {
                match self { $(Self::$variant => $code,)+ }
            }

            /// The variant of a wire code.
            pub fn from_code(code: u8) -> Result<Self, DecodeError> {
                match code {
                    $($code => Ok(Self::$variant),)+
                    _ => Err(DecodeError::UnknownCode { what: $what, code }),
                }
            }

            /// The kebab-case name.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }

            /// The variant of a kebab-case name.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

code_table!(
    /// What a party may do in the log.
    Role, "role", {
        /// Runs rounds and sequences the log.
        Coordinator = 1 => "coordinator",
        /// Trains on its own data and contributes updates.
        Hospital = 2 => "hospital",
        /// Reads and objects.
        Auditor = 3 => "auditor",
    }
);

code_table!(
    /// The aggregation rule of a plan (the `fed` crate's rule names).
    Strategy, "strategy", {
        /// Sample-weighted mean.
        FedAvg = 1 => "fedavg",
        /// FedAvg on the server, proximal term on the clients.
        FedProx = 2 => "fedprox",
        /// Server-side Adam on the weighted mean delta.
        FedAdam = 3 => "fedadam",
        /// Server-side Yogi on the weighted mean delta.
        FedYogi = 4 => "fedyogi",
        /// Server-side Adagrad on the weighted mean delta.
        FedAdagrad = 5 => "fedadagrad",
        /// Coordinate-wise median (unweighted).
        FedMedian = 6 => "fedmedian",
        /// Coordinate-wise trimmed mean (unweighted).
        TrimmedMean = 7 => "trimmed-mean",
        /// Krum selection (unweighted).
        Krum = 8 => "krum",
    }
);

impl Strategy {
    /// Whether contributions are weighted by their sample counts (the averaging
    /// rules) rather than equally (the robust rules).
    pub fn is_sample_weighted(self) -> bool {
        matches!(
            self,
            Self::FedAvg | Self::FedProx | Self::FedAdam | Self::FedYogi | Self::FedAdagrad
        )
    }
}

code_table!(
    /// Which metric a number is.
    MetricKind, "metric", {
        /// Mean loss on the local evaluation set.
        Loss = 1 => "loss",
        /// Fraction classified correctly.
        Accuracy = 2 => "accuracy",
        /// Area under the ROC curve.
        Auc = 3 => "auc",
        /// F1 score.
        F1 = 4 => "f1",
        /// Precision.
        Precision = 5 => "precision",
        /// Recall.
        Recall = 6 => "recall",
    }
);

code_table!(
    /// A category of protected health information removed from free text before training (the
    /// labels of the text de-identifier, `deid::text::Label`, by their tag in lower case).
    PhiCategory, "PHI category", {
        /// A person's name.
        Name = 1 => "name",
        /// A date or part of one.
        Date = 2 => "date",
        /// An age over 89.
        Age = 3 => "age",
        /// Telephone or fax number.
        Phone = 4 => "phone",
        /// E-mail address.
        Email = 5 => "email",
        /// Web address.
        Url = 6 => "url",
        /// IP address.
        Ip = 7 => "ip",
        /// Street address.
        Address = 8 => "address",
        /// Postcode.
        Zip = 9 => "zip",
        /// City or other place.
        City = 10 => "city",
        /// Hospital, clinic or service named with a place.
        Hospital = 11 => "hospital",
        /// French patient identifier (IPP).
        Ipp = 12 => "ipp",
        /// French stay number (NDA).
        Nda = 13 => "nda",
        /// French social-security number (NIR).
        Nir = 14 => "nir",
        /// US social-security number.
        Ssn = 15 => "ssn",
        /// Medical record number.
        Mrn = 16 => "mrn",
        /// Account or insurance number.
        Account = 17 => "account",
        /// Any other identifying number or code.
        Id = 18 => "id",
    }
);

code_table!(
    /// What kind of free text a hospital prepared for training.
    TextKind, "text kind", {
        /// Notes and letters (DocumentReference text attachments).
        Note = 1 => "note",
        /// Dictation and consultation transcripts.
        Transcript = 2 => "transcript",
        /// Sections of structured notes (Composition).
        CompositionSection = 3 => "composition-section",
    }
);

code_table!(
    /// Why a key was revoked.
    RevocationReason, "revocation reason", {
        /// The private key may be known to someone else.
        Compromised = 1 => "compromised",
        /// The party left the federation.
        Retired = 2 => "retired",
        /// Replaced by a later key.
        Superseded = 3 => "superseded",
    }
);

code_table!(
    /// Why a party objects to an entry: codes only, never free text.
    ObjectionReason, "objection reason", {
        /// The objector never approved the plan it is said to take part in.
        PlanNotApproved = 1 => "plan-not-approved",
        /// The code hash differs from the one the objector allow-listed.
        CodeHashMismatch = 2 => "code-hash-mismatch",
        /// A privacy budget is exceeded.
        BudgetExceeded = 3 => "budget-exceeded",
        /// A contribution the objector made is missing from an aggregate.
        ContributionMissing = 4 => "contribution-missing",
        /// A contribution attributed to the objector is not theirs.
        ContributionNotMine = 5 => "contribution-not-mine",
        /// Aggregation weights are wrong.
        WeightsIncorrect = 6 => "weights-incorrect",
        /// A released model is not the output of an aggregate.
        ModelNotFromAggregate = 7 => "model-not-from-aggregate",
        /// A key used in the entry is compromised.
        KeyCompromised = 8 => "key-compromised",
        /// The differential-privacy parameters are inadequate.
        PrivacyParametersInadequate = 9 => "privacy-parameters-inadequate",
        /// Any other reason (to be discussed outside the log).
        Other = 255 => "other",
    }
);

/// A finite `f64` (a metric value). Zero is always `+0.0`, so that each value
/// has one encoding: the IEEE 754 bits, big-endian.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Number(f64);

impl Number {
    /// Admit a finite number (negative zero becomes zero).
    pub fn new(value: f64) -> Result<Self, ValueError> {
        if !value.is_finite() {
            return Err(ValueError::NonFiniteNumber);
        }
        Ok(Self(if value == 0.0 { 0.0 } else { value }))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }

    pub(crate) fn to_bits(self) -> u64 {
        self.0.to_bits()
    }

    pub(crate) fn from_bits(bits: u64) -> Result<Self, ValueError> {
        let value = f64::from_bits(bits);
        if !value.is_finite() || bits == (-0.0f64).to_bits() {
            return Err(ValueError::NonFiniteNumber);
        }
        Ok(Self(value))
    }
}

impl Eq for Number {}

/// A differential-privacy epsilon, in millionths (fixed point, so that budgets
/// add up exactly and every auditor gets the same sums).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epsilon(u64);

impl Epsilon {
    /// Millionths per unit.
    pub const SCALE: u64 = 1_000_000;

    /// From millionths.
    pub fn from_micro(micro: u64) -> Self {
        Self(micro)
    }

    /// From a real value, rounded up to the next millionth (an accountant's
    /// spent epsilon is never under-reported).
    pub fn from_f64_ceil(value: f64) -> Result<Self, ValueError> {
        let scaled = (value * Self::SCALE as f64).ceil();
        if !value.is_finite() || value < 0.0 || scaled >= u64::MAX as f64 {
            return Err(ValueError::Epsilon(value.to_string()));
        }
        Ok(Self(scaled as u64))
    }

    /// In millionths.
    pub fn micro(self) -> u64 {
        self.0
    }

    /// As a real value.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// Sum, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / Self::SCALE, self.0 % Self::SCALE)
    }
}

/// A differential-privacy delta: a probability in `[0, 1)`.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Delta(Number);

impl Delta {
    /// Admit a delta.
    pub fn new(value: f64) -> Result<Self, ValueError> {
        if !(0.0..1.0).contains(&value) {
            return Err(ValueError::Delta(value.to_string()));
        }
        Ok(Self(Number::new(value)?))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0.get()
    }

    pub(crate) fn to_bits(self) -> u64 {
        self.0.to_bits()
    }

    pub(crate) fn from_bits(bits: u64) -> Result<Self, ValueError> {
        Self::new(Number::from_bits(bits)?.get())
    }
}

impl Eq for Delta {}

/// A contribution's sample count, rounded up to the next multiple of
/// [`SampleBucket::WIDTH`], so that the log never states an exact (possibly
/// small, identifying) count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SampleBucket(u64);

impl SampleBucket {
    /// Bucket width.
    pub const WIDTH: u64 = 10;

    /// The bucket of a count.
    pub fn of(count: u64) -> Result<Self, ValueError> {
        if count == 0 {
            return Err(ValueError::NoSamples);
        }
        count
            .div_ceil(Self::WIDTH)
            .checked_mul(Self::WIDTH)
            .map(Self)
            .ok_or(ValueError::SampleBucket(count))
    }

    /// A bucket value as read from an entry.
    pub fn from_value(value: u64) -> Result<Self, ValueError> {
        if value == 0 || !value.is_multiple_of(Self::WIDTH) {
            return Err(ValueError::SampleBucket(value));
        }
        Ok(Self(value))
    }

    /// The bucket's value (an upper bound of the real count).
    pub fn value(self) -> u64 {
        self.0
    }
}

/// An aggregation weight, in parts per billion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u32);

impl Weight {
    /// Parts per billion in a weight of one.
    pub const ONE: u32 = 1_000_000_000;

    /// From parts per billion (at most [`Weight::ONE`]).
    pub fn from_ppb(ppb: u32) -> Option<Self> {
        (ppb <= Self::ONE).then_some(Self(ppb))
    }

    /// In parts per billion.
    pub fn ppb(self) -> u32 {
        self.0
    }

    /// As a real value.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / f64::from(Self::ONE)
    }

    /// The weights a rule gives to contributions with these sample buckets:
    /// `floor(bucket * 10^9 / total)` for a sample-weighted rule, and
    /// `floor(10^9 / n)` each otherwise. The coordinator writes these and the
    /// auditor recomputes them.
    pub fn for_buckets(strategy: Strategy, buckets: &[SampleBucket]) -> Vec<Self> {
        let n = buckets.len() as u128;
        if n == 0 {
            return Vec::new();
        }
        if !strategy.is_sample_weighted() {
            return vec![Self((u128::from(Self::ONE) / n) as u32); buckets.len()];
        }
        let total: u128 = buckets.iter().map(|b| u128::from(b.value())).sum();
        buckets
            .iter()
            .map(|b| Self((u128::from(b.value()) * u128::from(Self::ONE) / total) as u32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_counts_are_rounded_up_to_a_bucket() {
        assert_eq!(SampleBucket::of(1).unwrap().value(), 10);
        assert_eq!(SampleBucket::of(10).unwrap().value(), 10);
        assert_eq!(SampleBucket::of(199).unwrap().value(), 200);
        assert!(SampleBucket::of(0).is_err());
        assert!(SampleBucket::from_value(15).is_err());
    }

    #[test]
    fn epsilon_is_rounded_up_to_a_millionth() {
        assert_eq!(Epsilon::from_f64_ceil(0.1234561).unwrap().micro(), 123_457);
        assert_eq!(Epsilon::from_f64_ceil(2.0).unwrap().to_string(), "2.000000");
        assert!(Epsilon::from_f64_ceil(-1.0).is_err());
        assert!(Epsilon::from_f64_ceil(f64::NAN).is_err());
    }

    #[test]
    fn weights_follow_sample_buckets_only_for_averaging_rules() {
        let buckets = [
            SampleBucket::of(100).unwrap(),
            SampleBucket::of(300).unwrap(),
        ];
        let weighted = Weight::for_buckets(Strategy::FedAvg, &buckets);
        assert_eq!(weighted, [Weight(250_000_000), Weight(750_000_000)]);
        let robust = Weight::for_buckets(Strategy::Krum, &buckets);
        assert_eq!(robust, [Weight(500_000_000), Weight(500_000_000)]);
    }

    #[test]
    fn numbers_reject_nan_infinity_and_negative_zero_bits() {
        assert!(Number::new(f64::NAN).is_err());
        assert!(Number::new(f64::INFINITY).is_err());
        assert_eq!(Number::new(-0.0).unwrap().to_bits(), 0);
        assert!(Number::from_bits((-0.0f64).to_bits()).is_err());
    }

    #[test]
    fn code_tables_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::from_code(s.code()), Ok(*s));
            assert_eq!(Strategy::from_name(s.name()), Some(*s));
        }
        assert!(ObjectionReason::from_code(0).is_err());
    }
}
