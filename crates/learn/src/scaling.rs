//! Federated feature standardisation: sites share sums, never rows.

use crate::{Dataset, Error};

/// Per-feature sums for federated standardisation: each site computes its own, the federation adds them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureStats {
    /// Number of rows summed.
    pub count: u64,
    /// Per-feature sum of values.
    pub sum: Vec<f64>,
    /// Per-feature sum of squared values.
    pub sum_sq: Vec<f64>,
}

impl FeatureStats {
    /// Statistics of no rows, the neutral start for [`FeatureStats::merge`].
    pub fn zeros(features: usize) -> Self {
        Self {
            count: 0,
            sum: vec![0.0; features],
            sum_sq: vec![0.0; features],
        }
    }

    /// The sums of one dataset.
    pub fn of(data: &Dataset) -> Self {
        let mut stats = Self::zeros(data.features);
        for row in data.x.chunks_exact(data.features.max(1)) {
            for ((s, q), &v) in stats.sum.iter_mut().zip(&mut stats.sum_sq).zip(row) {
                let v = f64::from(v);
                *s += v;
                *q += v * v;
            }
        }
        stats.count = data.len() as u64;
        stats
    }

    /// Adds another site's sums; both must cover the same number of features.
    pub fn merge(&mut self, other: &FeatureStats) -> Result<(), Error> {
        self.check()?;
        other.check()?;
        if other.sum.len() != self.sum.len() {
            return Err(Error::Stats(format!(
                "cannot merge statistics of {} and {} features",
                self.sum.len(),
                other.sum.len()
            )));
        }
        self.count = self
            .count
            .checked_add(other.count)
            .ok_or_else(|| Error::Stats("row count overflows".into()))?;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.sum_sq.iter_mut().zip(&other.sum_sq) {
            *a += b;
        }
        Ok(())
    }

    /// Mean and population standard deviation per feature; a feature whose deviation is below
    /// 1e-6 (constant) gets a standard deviation of 1 so it is only centred.
    pub fn standardizer(&self) -> Result<Standardizer, Error> {
        self.check()?;
        if self.count == 0 {
            return Err(Error::Stats("no rows to standardise from".into()));
        }
        let n = self.count as f64;
        let (mean, std) = self
            .sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(&s, &q)| {
                let mean = s / n;
                let std = (q / n - mean * mean).max(0.0).sqrt();
                let std = if std < 1e-6 { 1.0 } else { std };
                (mean as f32, std as f32)
            })
            .unzip();
        Ok(Standardizer { mean, std })
    }

    fn check(&self) -> Result<(), Error> {
        if self.sum.len() != self.sum_sq.len() {
            return Err(Error::Stats(format!(
                "{} sums but {} sums of squares",
                self.sum.len(),
                self.sum_sq.len()
            )));
        }
        if !self.sum.iter().chain(&self.sum_sq).all(|v| v.is_finite()) {
            return Err(Error::Stats("sums must be finite".into()));
        }
        Ok(())
    }
}

/// z-scoring with given mean and std: `x' = (x - mean) / std` per feature.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    /// Per-feature mean.
    pub mean: Vec<f32>,
    /// Per-feature standard deviation (positive).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// The standardised copy of `data`.
    pub fn apply(&self, data: &Dataset) -> Result<Dataset, Error> {
        data.check()?;
        if self.mean.len() != data.features || self.std.len() != data.features {
            return Err(Error::Stats(format!(
                "standardiser for {} means and {} deviations applied to {} features",
                self.mean.len(),
                self.std.len(),
                data.features
            )));
        }
        if !self.std.iter().all(|s| s.is_finite() && *s > 0.0)
            || !self.mean.iter().all(|m| m.is_finite())
        {
            return Err(Error::Stats(
                "means must be finite and deviations finite and positive".into(),
            ));
        }
        let x = data
            .x
            .chunks_exact(data.features)
            .flat_map(|row| {
                row.iter()
                    .zip(self.mean.iter().zip(&self.std))
                    .map(|(v, (m, s))| (v - m) / s)
            })
            .collect();
        Dataset::new(data.features, x, data.y.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(rows: &[[f32; 3]], labels: &[f32]) -> Dataset {
        Dataset::new(3, rows.concat(), labels.to_vec()).unwrap()
    }

    #[test]
    fn standardizer_from_merged_stats_equals_pooled_stats() {
        let a = site(&[[1.0, 10.0, 5.0], [2.0, 20.0, 5.0]], &[0.0, 1.0]);
        let b = site(
            &[[3.0, -4.0, 5.0], [7.0, 0.5, 5.0], [0.0, 3.0, 5.0]],
            &[1.0, 1.0, 0.0],
        );
        let mut merged = FeatureStats::zeros(3);
        merged.merge(&FeatureStats::of(&a)).unwrap();
        merged.merge(&FeatureStats::of(&b)).unwrap();
        let pooled = FeatureStats::of(&Dataset::concat(&[&a, &b]).unwrap());
        assert_eq!(merged.count, pooled.count);
        let (m, p) = (
            merged.standardizer().unwrap(),
            pooled.standardizer().unwrap(),
        );
        for (x, y) in m.mean.iter().chain(&m.std).zip(p.mean.iter().chain(&p.std)) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }

    #[test]
    fn standardized_data_has_zero_mean_and_unit_std() {
        let d = site(
            &[[1.0, 10.0, 5.0], [2.0, 20.0, 5.0], [6.0, -3.0, 5.0]],
            &[0.0, 1.0, 1.0],
        );
        let s = FeatureStats::of(&d).standardizer().unwrap();
        assert_eq!(s.std[2], 1.0, "constant feature keeps unit scale");
        let z = s.apply(&d).unwrap();
        let stats = FeatureStats::of(&z);
        for f in 0..2 {
            assert!((stats.sum[f] / 3.0).abs() < 1e-6);
            assert!((stats.sum_sq[f] / 3.0 - 1.0).abs() < 1e-5);
        }
        assert_eq!(stats.sum[2], 0.0);
        assert_eq!(z.y, d.y);
    }

    #[test]
    fn mismatched_feature_counts_are_rejected() {
        let d = site(&[[1.0, 2.0, 3.0]], &[1.0]);
        let mut stats = FeatureStats::of(&d);
        assert!(stats.merge(&FeatureStats::zeros(2)).is_err());
        assert!(FeatureStats::zeros(3).standardizer().is_err());
        let s = Standardizer {
            mean: vec![0.0; 2],
            std: vec![1.0; 2],
        };
        assert!(s.apply(&d).is_err());
        let zero = Standardizer {
            mean: vec![0.0; 3],
            std: vec![0.0; 3],
        };
        assert!(zero.apply(&d).is_err());
    }
}
