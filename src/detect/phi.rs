//! The φ formula of the phi-accrual failure detector (Hayashibara, Défago,
//! Yared, Katayama: "The φ Accrual Failure Detector", SRDS 2004).
//!
//! φ(Δt) = −log10(1 − F(Δt)), where F is the CDF of a normal distribution
//! with the window's mean (plus the acceptable pause) and standard
//! deviation. F is the logistic approximation of the normal CDF that Akka's
//! `PhiAccrualFailureDetector` uses (Bowling et al. 2009, "A logistic
//! approximation to the cumulative normal distribution"):
//!
//! ```text
//! y    = (Δt − mean) / std
//! F(y) ≈ 1 / (1 + exp(−y · (1.5976 + 0.070566 · y²)))
//! ```
//!
//! written so that neither branch subtracts two numbers close to 1:
//! with e = exp(−y · (1.5976 + 0.070566 · y²)),
//! 1 − F = e / (1 + e), so φ = −log10(e / (1 + e)) when Δt > mean and
//! φ = −log10(1 − 1 / (1 + e)) otherwise. `exp` and `log10` come from
//! `libm` so φ is bit-for-bit the same on every platform.

/// φ for an elapsed time, mean and standard deviation (all in the same
/// unit; `std` > 0). Never negative; `+inf` when 1 − F underflows to 0.
pub fn phi(elapsed: f64, mean: f64, std: f64) -> f64 {
    let y = (elapsed - mean) / std;
    let e = libm::exp(-y * (1.5976 + 0.070566 * y * y));
    let p = if elapsed > mean {
        -libm::log10(e / (1.0 + e))
    } else {
        -libm::log10(1.0 - 1.0 / (1.0 + e))
    };
    // -log10(1.0) is -0.0: report a plain zero.
    if p == 0.0 { 0.0 } else { p }
}

#[cfg(test)]
mod tests {
    use super::phi;

    #[test]
    fn known_values() {
        // y = 0: e = 1, 1 - F = 1/2, φ = log10(2) = 0.30103.
        assert!((phi(4.0, 4.0, 0.25) - std::f64::consts::LOG10_2).abs() < 1e-15);
        // y = 2: e = exp(-2 * (1.5976 + 0.070566 * 4)) = exp(-3.759728)
        //      = 0.0232873; 1 - F = e / (1 + e) = 0.0227574; φ = 1.642828.
        assert!((phi(4.5, 4.0, 0.25) - 1.6428278854871123).abs() < 1e-12);
        // y = 4: e = exp(-4 * (1.5976 + 0.070566 * 16)) = exp(-10.906624)
        //      = 1.83364e-5; φ = -log10(e / (1 + e)) = 4.736695.
        assert!((phi(5.0, 4.0, 0.25) - 4.736694582705181).abs() < 1e-12);
        // y = -2: 1 - F = 1 - 1/(1 + exp(3.759728)) = 0.977243;
        // φ = -log10(0.977243) = 0.009998762.
        assert!((phi(3.5, 4.0, 0.25) - 0.009998761629963108).abs() < 1e-12);
    }

    #[test]
    fn extremes() {
        // Far before the mean exp overflows to inf: φ is exactly 0, not -0.
        let p = phi(0.0, 1e6, 1.0);
        assert_eq!(p.to_bits(), 0.0f64.to_bits());
        // Far after it e underflows to 0: φ is +inf.
        assert_eq!(phi(1e6, 0.0, 1.0), f64::INFINITY);
        // Monotonic in the elapsed time.
        let mut last = 0.0;
        for i in 0..2000 {
            let p = phi(f64::from(i) / 100.0, 4.0, 0.25);
            assert!(p >= last, "{i}");
            last = p;
        }
    }
}
