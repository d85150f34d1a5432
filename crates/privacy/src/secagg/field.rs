//! Arithmetic in GF(p) for the Mersenne prime p = 2^127 − 1, the field of the Shamir shares.
//!
//! Elements are kept canonical (in `0..p`). Multiplication forms the 254-bit product from
//! 64-bit halves and folds it with 2^127 ≡ 1 (mod p), so everything stays in `u128`.

use std::ops::{Add, Mul, Sub};

use rand::RngCore;

/// The prime p = 2^127 − 1.
pub(crate) const MODULUS: u128 = (1 << 127) - 1;

/// An element of GF(2^127 − 1), always canonical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fe(u128);

/// Folds any `u128` into `0..p` using 2^127 ≡ 1.
fn reduce(x: u128) -> u128 {
    let folded = (x & MODULUS) + (x >> 127);
    if folded >= MODULUS {
        folded - MODULUS
    } else {
        folded
    }
}

impl Fe {
    pub(crate) const ZERO: Fe = Fe(0);
    pub(crate) const ONE: Fe = Fe(1);

    /// The element with canonical value `value`, or `None` when `value >= p`.
    pub(crate) fn from_canonical(value: u128) -> Option<Fe> {
        (value < MODULUS).then_some(Fe(value))
    }

    /// The element congruent to `value` (values below p map to themselves).
    pub(crate) fn reduced(value: u128) -> Fe {
        Fe(reduce(value))
    }

    /// The canonical representative.
    pub(crate) fn value(self) -> u128 {
        self.0
    }

    /// A uniformly random element (rejection sampling of 127-bit values).
    pub(crate) fn random<R: RngCore + ?Sized>(rng: &mut R) -> Fe {
        loop {
            let high = u128::from(rng.next_u64()) << 64;
            let candidate = (high | u128::from(rng.next_u64())) >> 1;
            if let Some(element) = Fe::from_canonical(candidate) {
                return element;
            }
        }
    }

    /// `self` raised to `exponent` (square and multiply).
    fn pow(self, mut exponent: u128) -> Fe {
        let mut base = self;
        let mut result = Fe::ONE;
        while exponent > 0 {
            if exponent & 1 == 1 {
                result = result * base;
            }
            base = base * base;
            exponent >>= 1;
        }
        result
    }

    /// The multiplicative inverse (Fermat: a^(p−2)); `None` for zero.
    pub(crate) fn inverse(self) -> Option<Fe> {
        (self != Fe::ZERO).then(|| self.pow(MODULUS - 2))
    }
}

impl Add for Fe {
    type Output = Fe;
    fn add(self, other: Fe) -> Fe {
        // Both < 2^127, so the sum fits in a u128.
        Fe(reduce(self.0 + other.0))
    }
}

impl Sub for Fe {
    type Output = Fe;
    fn sub(self, other: Fe) -> Fe {
        Fe(reduce(self.0 + (MODULUS - other.0)))
    }
}

impl Mul for Fe {
    type Output = Fe;
    fn mul(self, other: Fe) -> Fe {
        let mask = u128::from(u64::MAX);
        let (a0, a1) = (self.0 & mask, self.0 >> 64);
        let (b0, b1) = (other.0 & mask, other.0 >> 64);
        let low = a0 * b0;
        let middle = a0 * b1 + a1 * b0; // each < 2^127, so no overflow
        let high = a1 * b1;
        let (low, carry) = low.overflowing_add(middle << 64);
        let high = high + (middle >> 64) + u128::from(carry);
        // product = high·2^128 + low, and 2^128 ≡ 2, 2^127 ≡ 1 (mod p); high < 2^126.
        Fe(reduce(2 * high + (low >> 127) + (low & MODULUS)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Multiplication by repeated doubling, independent of the folding trick.
    fn slow_mul(a: Fe, b: Fe) -> Fe {
        let mut result = Fe::ZERO;
        let mut addend = a;
        let mut bits = b.value();
        while bits > 0 {
            if bits & 1 == 1 {
                result = result + addend;
            }
            addend = addend + addend;
            bits >>= 1;
        }
        result
    }

    #[test]
    fn multiplication_matches_repeated_doubling() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let edge = [
            Fe::ZERO,
            Fe::ONE,
            Fe(MODULUS - 1),
            Fe(1 << 126),
            Fe(u128::from(u64::MAX)),
        ];
        for a in edge {
            for b in edge {
                assert_eq!(a * b, slow_mul(a, b));
            }
        }
        for _ in 0..200 {
            let (a, b) = (Fe::random(&mut rng), Fe::random(&mut rng));
            assert_eq!(a * b, slow_mul(a, b));
        }
    }

    #[test]
    fn minus_one_squared_is_one() {
        assert_eq!(Fe(MODULUS - 1) * Fe(MODULUS - 1), Fe::ONE);
    }

    #[test]
    fn inverse_times_element_is_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for _ in 0..20 {
            let a = Fe::random(&mut rng);
            if let Some(inverse) = a.inverse() {
                assert_eq!(a * inverse, Fe::ONE);
            }
        }
        assert_eq!(Fe::ZERO.inverse(), None);
    }

    #[test]
    fn subtraction_undoes_addition() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..100 {
            let (a, b) = (Fe::random(&mut rng), Fe::random(&mut rng));
            assert_eq!((a + b) - b, a);
            assert_eq!(a - a, Fe::ZERO);
        }
    }

    #[test]
    fn non_canonical_values_are_refused() {
        assert_eq!(Fe::from_canonical(MODULUS), None);
        assert_eq!(Fe::from_canonical(u128::MAX), None);
        assert_eq!(Fe::from_canonical(MODULUS - 1), Some(Fe(MODULUS - 1)));
    }
}
