//! Model parameters as ordered named tensors in one flat `f32` vector, with safetensors I/O on bytes.

use std::collections::HashSet;
use std::ops::Range;

use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::Error;

/// Reserved safetensors header key that cannot be a tensor name.
const METADATA_KEY: &str = "__metadata__";

/// Model parameters: ordered named tensors stored as one flat f32 vector (concatenated in order).
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    values: Vec<f32>,
}

impl Weights {
    /// Builds weights from `(name, shape)` pairs and the concatenated values.
    ///
    /// Names must be non-empty, unique and not `__metadata__`; the shapes' element counts must
    /// add up to `values.len()`.
    pub fn new(layout: Vec<(String, Vec<usize>)>, values: Vec<f32>) -> Result<Self, Error> {
        let mut seen = HashSet::new();
        let mut total = 0usize;
        for (name, shape) in &layout {
            if name.is_empty() || name == METADATA_KEY {
                return Err(Error::Weights(format!(
                    "tensor name {name:?} is not allowed"
                )));
            }
            if !seen.insert(name.as_str()) {
                return Err(Error::Weights(format!(
                    "tensor name {name:?} appears twice"
                )));
            }
            let count = element_count(shape)
                .ok_or_else(|| Error::Weights(format!("shape {shape:?} of {name:?} overflows")))?;
            total = total
                .checked_add(count)
                .ok_or_else(|| Error::Weights("total size overflows".into()))?;
        }
        if total != values.len() {
            return Err(Error::Weights(format!(
                "layout holds {total} values but {} were given",
                values.len()
            )));
        }
        Ok(Self::from_checked_layout(layout, values))
    }

    /// Builds weights whose layout the caller has already made consistent with `values`.
    pub(crate) fn from_checked_layout(layout: Vec<(String, Vec<usize>)>, values: Vec<f32>) -> Self {
        let (names, shapes) = layout.into_iter().unzip();
        let weights = Self {
            names,
            shapes,
            values,
        };
        debug_assert_eq!(
            weights.parts().last().map_or(0, |(_, _, r)| r.end),
            weights.values.len()
        );
        weights
    }

    /// The flat parameter values, tensors concatenated in layout order.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Mutable access to the flat parameter values (the layout cannot change).
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// Consumes the weights and returns the flat values.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// The `(name, shape)` of every tensor, in order.
    pub fn layout(&self) -> Vec<(String, Vec<usize>)> {
        self.names
            .iter()
            .cloned()
            .zip(self.shapes.iter().cloned())
            .collect()
    }

    /// The same layout with new values; fails if `values` has the wrong length.
    pub fn with_values(&self, values: Vec<f32>) -> Result<Self, Error> {
        if values.len() != self.values.len() {
            return Err(Error::Weights(format!(
                "layout holds {} values but {} were given",
                self.values.len(),
                values.len()
            )));
        }
        Ok(Self {
            names: self.names.clone(),
            shapes: self.shapes.clone(),
            values,
        })
    }

    /// True when both have the same tensor names and shapes in the same order.
    pub fn same_layout(&self, other: &Weights) -> bool {
        self.names == other.names && self.shapes == other.shapes
    }

    /// Total number of scalar parameters.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no scalar parameters.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// True when no value is NaN or infinite.
    pub fn all_finite(&self) -> bool {
        self.values.iter().all(|v| v.is_finite())
    }

    /// Each tensor's name, shape and range in the flat values, in order.
    pub(crate) fn parts(&self) -> Vec<(&str, &[usize], Range<usize>)> {
        let mut start = 0;
        self.names
            .iter()
            .zip(&self.shapes)
            .map(|(name, shape)| {
                let end = start + shape.iter().product::<usize>();
                let part = (name.as_str(), shape.as_slice(), start..end);
                start = end;
                part
            })
            .collect()
    }

    /// safetensors bytes (F32, deterministic: same weights -> same bytes).
    ///
    /// Tensors are laid out in order, so [`Weights::from_safetensors`] restores the same order.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let mut header = String::from("{");
        for (i, (name, shape, range)) in self.parts().into_iter().enumerate() {
            if i > 0 {
                header.push(',');
            }
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            header.push_str(&format!(
                "{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                json_string(name),
                dims.join(","),
                range.start * 4,
                range.end * 4
            ));
        }
        header.push('}');
        // The data section starts 8-byte aligned, as the safetensors writer does it.
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut bytes = Vec::with_capacity(8 + header.len() + 4 * self.values.len());
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for v in &self.values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes
    }

    /// Parses safetensors bytes holding only F32 tensors.
    ///
    /// Tensor order is the order of their data in the file, so a round trip preserves order.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, Error> {
        let (header_len, metadata) =
            SafeTensors::read_metadata(bytes).map_err(|e| Error::Safetensors(e.to_string()))?;
        let data = &bytes[8 + header_len..];
        let mut layout = Vec::new();
        let mut values = Vec::new();
        for name in metadata.offset_keys() {
            let info = metadata
                .info(&name)
                .ok_or_else(|| Error::Safetensors(format!("tensor {name:?} has no entry")))?;
            if info.dtype != Dtype::F32 {
                return Err(Error::Safetensors(format!(
                    "tensor {name:?} has dtype {:?}, only F32 is supported",
                    info.dtype
                )));
            }
            let (start, end) = info.data_offsets;
            let raw = data.get(start..end).ok_or_else(|| {
                Error::Safetensors(format!("tensor {name:?} lies outside the file"))
            })?;
            values.extend(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            layout.push((name, info.shape.clone()));
        }
        Self::new(layout, values)
    }

    /// Lower-case hex SHA-256 of [`Weights::to_safetensors`].
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(self.to_safetensors()))
    }
}

/// Number of elements of a shape, `None` on overflow.
fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// A JSON string literal for `s`.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Weights {
        Weights::new(
            vec![
                ("z.weight".into(), vec![2, 3]),
                ("a.bias".into(), vec![2]),
                ("m.scale".into(), vec![]),
            ],
            vec![1.0, -2.5, 3.25, 0.0, 1e-7, -0.0, 7.0, f32::MAX, 42.0],
        )
        .unwrap()
    }

    #[test]
    fn safetensors_round_trip_preserves_weights() {
        let w = sample();
        let back = Weights::from_safetensors(&w.to_safetensors()).unwrap();
        assert_eq!(back, w);
        assert_eq!(back.layout(), w.layout());
        assert_eq!(
            back.values()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            w.values().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn safetensors_bytes_are_readable_by_the_safetensors_crate() {
        let w = sample();
        let bytes = w.to_safetensors();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor("a.bias").unwrap();
        assert_eq!(t.dtype(), Dtype::F32);
        assert_eq!(t.shape(), &[2]);
        assert_eq!(
            t.data(),
            &[7f32.to_le_bytes(), f32::MAX.to_le_bytes()].concat()
        );
    }

    #[test]
    fn safetensors_from_the_safetensors_crate_is_read_in_offset_order() {
        let a: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let b: Vec<u8> = [3.0f32].iter().flat_map(|v| v.to_le_bytes()).collect();
        let views = vec![
            (
                "b".to_string(),
                safetensors::tensor::TensorView::new(Dtype::F32, vec![1], &b).unwrap(),
            ),
            (
                "a".to_string(),
                safetensors::tensor::TensorView::new(Dtype::F32, vec![2], &a).unwrap(),
            ),
        ];
        let bytes = safetensors::serialize(views, None).unwrap();
        let w = Weights::from_safetensors(&bytes).unwrap();
        let st = SafeTensors::read_metadata(&bytes).unwrap().1;
        let names: Vec<String> = w.layout().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, st.offset_keys());
        let expected: Vec<f32> = names
            .iter()
            .flat_map(|n| if n == "a" { vec![1.0, 2.0] } else { vec![3.0] })
            .collect();
        assert_eq!(w.values(), expected.as_slice());
    }

    #[test]
    fn safetensors_bytes_are_deterministic() {
        assert_eq!(sample().to_safetensors(), sample().to_safetensors());
        assert_eq!(sample().sha256_hex(), sample().sha256_hex());
        assert_eq!(sample().sha256_hex().len(), 64);
        assert!(
            sample()
                .sha256_hex()
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
    }

    #[test]
    fn hash_changes_with_any_value() {
        let w = sample();
        let mut v = w.clone();
        v.values_mut()[4] = 2e-7;
        assert_ne!(w.sha256_hex(), v.sha256_hex());
    }

    #[test]
    fn malformed_safetensors_is_rejected() {
        let good = sample().to_safetensors();
        for bad in [
            Vec::new(),
            b"garbage".to_vec(),
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            [u64::MAX.to_le_bytes().to_vec(), good[8..].to_vec()].concat(),
        ] {
            assert!(matches!(
                Weights::from_safetensors(&bad),
                Err(Error::Safetensors(_))
            ));
        }
    }

    #[test]
    fn non_f32_safetensors_is_rejected() {
        let data = [0u8; 8];
        let view = safetensors::tensor::TensorView::new(Dtype::F64, vec![1], &data).unwrap();
        let bytes = safetensors::serialize(vec![("x".to_string(), view)], None).unwrap();
        let err = Weights::from_safetensors(&bytes).unwrap_err();
        assert!(err.to_string().contains("F64"), "{err}");
    }

    #[test]
    fn names_needing_json_escapes_round_trip() {
        let w = Weights::new(vec![("a \"q\" \\ \n é".into(), vec![1])], vec![5.0]).unwrap();
        assert_eq!(Weights::from_safetensors(&w.to_safetensors()).unwrap(), w);
    }

    #[test]
    fn new_rejects_size_mismatch_and_duplicate_names() {
        assert!(Weights::new(vec![("a".into(), vec![2])], vec![1.0]).is_err());
        assert!(
            Weights::new(
                vec![("a".into(), vec![1]), ("a".into(), vec![1])],
                vec![1.0, 2.0]
            )
            .is_err()
        );
        assert!(Weights::new(vec![("".into(), vec![1])], vec![1.0]).is_err());
        assert!(Weights::new(vec![(METADATA_KEY.into(), vec![1])], vec![1.0]).is_err());
        assert!(Weights::new(vec![("a".into(), vec![usize::MAX, 2])], vec![]).is_err());
    }

    #[test]
    fn with_values_keeps_layout_and_checks_length() {
        let w = sample();
        let v = w.with_values(vec![0.0; w.len()]).unwrap();
        assert!(v.same_layout(&w));
        assert!(w.with_values(vec![0.0; w.len() + 1]).is_err());
        let other = Weights::new(vec![("x".into(), vec![9])], vec![0.0; 9]).unwrap();
        assert!(!other.same_layout(&w));
    }

    #[test]
    fn all_finite_detects_nan_and_infinity() {
        let mut w = sample();
        assert!(w.all_finite());
        w.values_mut()[0] = f32::NAN;
        assert!(!w.all_finite());
        w.values_mut()[0] = f32::INFINITY;
        assert!(!w.all_finite());
    }
}
