//! Numbers: an order-independent sum of durations.

/// A sum of durations that does not depend on the order of addition (so results do not
/// depend on how blocks were spread over threads): fixed point with 2^-64 s resolution,
/// plus a float part for absurdly large values.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct OrderFreeSum {
    fixed: i128,
    big: f64,
}

const FIXED_SCALE: f64 = 18_446_744_073_709_551_616.0; // 2^64

/// `(d * 2^64) as i128` (truncated toward zero) for finite `|d| < 2^40`, from the bits of
/// `d` (mantissa shifted by its exponent) instead of the `__fixdfti` library call.
#[inline]
fn to_fixed(d: f64) -> i128 {
    let bits = d.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // |d| = mant * 2^(max(exp, 1) - 1075), so |d| * 2^64 = mant * 2^e.
    let mant = if exp == 0 { frac } else { frac | (1u64 << 52) };
    let e = exp.max(1) - 1075 + 64;
    let mag = if e >= 0 {
        i128::from(mant) << e // e < 52 and mant < 2^53 for |d| < 2^40: fits
    } else if e > -64 {
        i128::from(mant >> -e)
    } else {
        0
    };
    if bits >> 63 == 1 { -mag } else { mag }
}

impl OrderFreeSum {
    #[inline]
    pub fn add(&mut self, d: f64) {
        if d.abs() < 1_099_511_627_776.0 {
            self.fixed += to_fixed(d);
        } else {
            self.big += d;
        }
    }
    pub fn merge(&mut self, o: OrderFreeSum) {
        self.fixed += o.fixed;
        self.big += o.big;
    }
    pub fn value(&self) -> f64 {
        self.fixed as f64 / FIXED_SCALE + self.big
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_conversion_equals_the_i128_cast() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut cases = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            1e-30,
            -1e-19,
            5.421010862427522e-20, // 2^-64
            1_099_511_627_775.999_9,
            -1_099_511_627_775.999_9,
            0.0893077373300741,
        ];
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Random bit patterns (every exponent) below 2^40, and random values of
            // moderate size.
            let d = f64::from_bits(state);
            if d.is_finite() && d.abs() < 1_099_511_627_776.0 {
                cases.push(d);
            }
            let scaled =
                (state >> 11) as f64 / (1u64 << 53) as f64 * 2f64.powi((state % 60) as i32 - 20);
            cases.push(if state & 1 == 0 { scaled } else { -scaled });
        }
        for d in cases {
            assert_eq!(to_fixed(d), (d * FIXED_SCALE) as i128, "{d:e}");
        }
    }
}
