//! Binary-classification tables.

use crate::Error;

/// A binary-classification table: row-major features (n x features) and 0/1 labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Number of feature columns.
    pub features: usize,
    /// Row-major feature values, `len() * features` of them.
    pub x: Vec<f32>,
    /// One label per row, 0.0 or 1.0.
    pub y: Vec<f32>,
}

impl Dataset {
    /// Builds a dataset, checking sizes, finite features and 0/1 labels.
    pub fn new(features: usize, x: Vec<f32>, y: Vec<f32>) -> Result<Self, Error> {
        let data = Self { features, x, y };
        data.check()?;
        Ok(data)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The rows of all `parts`, in order; they must have the same number of features.
    pub fn concat(parts: &[&Dataset]) -> Result<Dataset, Error> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Dataset("nothing to concatenate".into()))?;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for part in parts {
            if part.features != first.features {
                return Err(Error::Dataset(format!(
                    "cannot concatenate {} and {} features",
                    first.features, part.features
                )));
            }
            x.extend_from_slice(&part.x);
            y.extend_from_slice(&part.y);
        }
        Self::new(first.features, x, y)
    }

    /// Checks the invariants that [`Dataset::new`] establishes (the fields are public).
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.features == 0 {
            return Err(Error::Dataset(
                "a dataset needs at least one feature".into(),
            ));
        }
        if self.x.len() != self.features * self.y.len() {
            return Err(Error::Dataset(format!(
                "{} labels need {} feature values, got {}",
                self.y.len(),
                self.features * self.y.len(),
                self.x.len()
            )));
        }
        if let Some(i) = self.x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Dataset(format!(
                "feature {} of row {} is not finite",
                i % self.features,
                i / self.features
            )));
        }
        if let Some(i) = self.y.iter().position(|&v| v != 0.0 && v != 1.0) {
            return Err(Error::Dataset(format!(
                "label of row {i} is {}, not 0 or 1",
                self.y[i]
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_inconsistent_tables() {
        assert!(Dataset::new(2, vec![1.0, 2.0, 3.0], vec![1.0, 0.0]).is_err());
        assert!(Dataset::new(0, vec![], vec![1.0]).is_err());
        assert!(Dataset::new(1, vec![f32::NAN], vec![1.0]).is_err());
        assert!(Dataset::new(1, vec![1.0], vec![0.5]).is_err());
        let d = Dataset::new(2, vec![], vec![]).unwrap();
        assert!(d.is_empty());
    }

    #[test]
    fn concat_appends_rows_in_order() {
        let a = Dataset::new(2, vec![1.0, 2.0], vec![1.0]).unwrap();
        let b = Dataset::new(2, vec![3.0, 4.0, 5.0, 6.0], vec![0.0, 1.0]).unwrap();
        let c = Dataset::concat(&[&a, &b]).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.x, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(c.y, vec![1.0, 0.0, 1.0]);
        let odd = Dataset::new(1, vec![1.0], vec![1.0]).unwrap();
        assert!(Dataset::concat(&[&a, &odd]).is_err());
        assert!(Dataset::concat(&[]).is_err());
    }
}
