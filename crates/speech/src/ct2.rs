//! Reader of CTranslate2's `model.bin` (binary version 6: spec name, revision, named variables
//! with rank, dims, dtype id and raw little-endian bytes, then aliases) and its conversion to a
//! safetensors file with the tensor names [`crate::model`] uses.

use crate::{Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;

/// One named variable of a CTranslate2 model.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// The variable's CTranslate2 name, e.g. `encoder/layer_0/ffn/linear_0/weight`.
    pub name: String,
    /// Dimensions (empty for a scalar).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: Dtype,
    /// Raw little-endian bytes.
    pub data: Vec<u8>,
}

/// A parsed `model.bin`.
#[derive(Debug)]
pub struct Ct2Model {
    /// The model specification's name (`WhisperSpec` for Whisper).
    pub spec: String,
    /// The variables in file order.
    pub variables: Vec<Variable>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end =
            end.ok_or_else(|| Error::Model(format!("model.bin truncated at byte {}", self.pos)))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    /// A string: u16 length including a trailing NUL, then the bytes.
    fn string(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        let bytes = self.take(n)?;
        let text = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(text.to_vec())
            .map_err(|_| Error::Model("model.bin: name is not UTF-8".into()))
    }
}

fn dtype_of(id: u8) -> Result<Dtype> {
    Ok(match id {
        0 => Dtype::F32,
        1 => Dtype::I8,
        2 => Dtype::I16,
        3 => Dtype::I32,
        4 => Dtype::F16,
        5 => Dtype::BF16,
        other => return Err(Error::Model(format!("model.bin: unknown dtype id {other}"))),
    })
}

impl Ct2Model {
    /// Parses a `model.bin` (binary versions 5 and 6).
    pub fn parse(buf: &[u8]) -> Result<Ct2Model> {
        let mut r = Reader { buf, pos: 0 };
        let version = r.u32()?;
        if !(5..=6).contains(&version) {
            return Err(Error::Model(format!(
                "model.bin: unsupported binary version {version}"
            )));
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let count = r.u32()? as usize;
        let mut variables = Vec::with_capacity(count.min(10_000));
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8()? as usize;
            let shape = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>>>()?;
            let dtype = dtype_of(r.u8()?)?;
            let n_bytes = r.u32()? as usize;
            let expected = shape.iter().product::<usize>() * dtype.bitsize() / 8;
            if n_bytes != expected {
                return Err(Error::Model(format!(
                    "model.bin: {name} has {n_bytes} bytes, shape needs {expected}"
                )));
            }
            let data = r.take(n_bytes)?.to_vec();
            variables.push(Variable {
                name,
                shape,
                dtype,
                data,
            });
        }
        Ok(Ct2Model { spec, variables })
    }

    /// An integer scalar variable's value.
    fn scalar(&self, name: &str) -> Option<i64> {
        let v = self
            .variables
            .iter()
            .find(|v| v.name == name && v.shape.is_empty())?;
        Some(match v.dtype {
            Dtype::I8 => v.data[0] as i8 as i64,
            Dtype::I16 => i16::from_le_bytes(v.data[..2].try_into().ok()?) as i64,
            Dtype::I32 => i32::from_le_bytes(v.data[..4].try_into().ok()?) as i64,
            _ => return None,
        })
    }
}

/// The name a CTranslate2 Whisper variable takes in our safetensors file, or `None` for the
/// scalar options (kept as metadata) that are not tensors.
pub fn whisper_name(ct2: &str) -> Option<String> {
    let fixed = match ct2 {
        "encoder/position_encodings/encodings" => Some("encoder.positions"),
        "decoder/position_encodings/encodings" => Some("decoder.positions"),
        "decoder/embeddings/weight" => Some("decoder.embedding"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_string());
    }
    let parts: Vec<&str> = ct2.split('/').collect();
    let leaf = match *parts.last()? {
        "gamma" | "weight" => "weight",
        "beta" | "bias" => "bias",
        _ => return None,
    };
    let mut out: Vec<String> = Vec::new();
    let mut module = "";
    for part in &parts[..parts.len() - 1] {
        let mapped = match (*part, module) {
            (p, _) if p.starts_with("layer_") && p != "layer_norm" => format!("blocks.{}", &p[6..]),
            ("self_attention", _) | ("attention", _) | ("ffn", _) => {
                module = part;
                continue;
            }
            ("layer_norm", "self_attention") => "attn_ln".into(),
            ("layer_norm", "attention") => "cross_ln".into(),
            ("layer_norm", "ffn") => "mlp_ln".into(),
            ("layer_norm", _) => "ln".into(),
            ("linear_0", "self_attention") => "attn.qkv".into(),
            ("linear_1", "self_attention") => "attn.out".into(),
            ("linear_0", "attention") => "cross.q".into(),
            ("linear_1", "attention") => "cross.kv".into(),
            ("linear_2", "attention") => "cross.out".into(),
            ("linear_0", "ffn") => "mlp.fc1".into(),
            ("linear_1", "ffn") => "mlp.fc2".into(),
            (p, _) => p.to_string(),
        };
        out.push(mapped);
    }
    out.push(leaf.to_string());
    Some(out.join("."))
}

/// Converts a CTranslate2 Whisper `model.bin` to safetensors bytes (weights kept in their
/// stored precision; head counts as metadata `encoder_heads` / `decoder_heads`).
pub fn convert_whisper(model_bin: &[u8]) -> Result<Vec<u8>> {
    let model = Ct2Model::parse(model_bin)?;
    if model.spec != "WhisperSpec" {
        return Err(Error::Model(format!(
            "model.bin holds a {}, not a Whisper model",
            model.spec
        )));
    }
    let mut metadata = HashMap::new();
    for side in ["encoder", "decoder"] {
        let heads = model
            .scalar(&format!("{side}/num_heads"))
            .ok_or_else(|| Error::Model(format!("model.bin: {side}/num_heads missing")))?;
        metadata.insert(format!("{side}_heads"), heads.to_string());
    }
    let mut tensors = Vec::new();
    for v in &model.variables {
        if v.shape.is_empty() {
            continue;
        }
        let name = whisper_name(&v.name)
            .ok_or_else(|| Error::Model(format!("model.bin: unexpected variable {}", v.name)))?;
        let view = TensorView::new(v.dtype, v.shape.clone(), &v.data)
            .map_err(|e| Error::Model(e.to_string()))?;
        tensors.push((name, view));
    }
    safetensors::serialize(tensors, Some(metadata)).map_err(|e| Error::Model(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes variables in CTranslate2's binary layout (version 6), for tests.
    pub(crate) fn write_model_bin(
        spec: &str,
        variables: &[(&str, Vec<usize>, u8, Vec<u8>)],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend(((s.len() + 1) as u16).to_le_bytes());
            out.extend(s.as_bytes());
            out.push(0);
        };
        out.extend(6u32.to_le_bytes());
        string(&mut out, spec);
        out.extend(3u32.to_le_bytes());
        out.extend((variables.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in variables {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for d in shape {
                out.extend((*d as u32).to_le_bytes());
            }
            out.push(*dtype);
            out.extend((data.len() as u32).to_le_bytes());
            out.extend(data);
        }
        out.extend(1u32.to_le_bytes());
        string(&mut out, "decoder/projection/weight");
        string(&mut out, "decoder/embeddings/weight");
        out
    }

    #[test]
    fn names_map_to_the_model_layout() {
        let cases = [
            ("encoder/conv1/weight", "encoder.conv1.weight"),
            (
                "encoder/layer_3/self_attention/layer_norm/gamma",
                "encoder.blocks.3.attn_ln.weight",
            ),
            (
                "encoder/layer_0/self_attention/linear_0/bias",
                "encoder.blocks.0.attn.qkv.bias",
            ),
            (
                "decoder/layer_1/attention/linear_1/weight",
                "decoder.blocks.1.cross.kv.weight",
            ),
            (
                "decoder/layer_1/attention/layer_norm/beta",
                "decoder.blocks.1.cross_ln.bias",
            ),
            (
                "decoder/layer_0/ffn/linear_1/weight",
                "decoder.blocks.0.mlp.fc2.weight",
            ),
            (
                "decoder/layer_0/ffn/layer_norm/gamma",
                "decoder.blocks.0.mlp_ln.weight",
            ),
            ("decoder/layer_norm/gamma", "decoder.ln.weight"),
            ("decoder/embeddings/weight", "decoder.embedding"),
        ];
        for (ct2, ours) in cases {
            assert_eq!(whisper_name(ct2).as_deref(), Some(ours), "{ct2}");
        }
        assert_eq!(whisper_name("decoder/num_heads"), None);
    }

    #[test]
    fn converts_a_tiny_ct2_file_to_safetensors() {
        let weights: Vec<u8> = [1.5f32, -2.0, 0.25, 4.0, 0.0, 1.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let half: Vec<u8> = [0x3c00u16, 0xc000]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(); // 1.0, -2.0
        let bin = write_model_bin(
            "WhisperSpec",
            &[
                ("encoder/num_heads", vec![], 2, 6i16.to_le_bytes().to_vec()),
                ("decoder/num_heads", vec![], 2, 4i16.to_le_bytes().to_vec()),
                ("decoder/pre_norm", vec![], 1, vec![1]),
                ("encoder/conv1/weight", vec![2, 1, 3], 0, weights.clone()),
                ("decoder/layer_norm/gamma", vec![2], 4, half),
            ],
        );
        let st = convert_whisper(&bin).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&st).unwrap();
        let info = meta.metadata().clone().unwrap();
        assert_eq!(
            (
                info["encoder_heads"].as_str(),
                info["decoder_heads"].as_str()
            ),
            ("6", "4")
        );
        let tensors = safetensors::SafeTensors::deserialize(&st).unwrap();
        let conv = tensors.tensor("encoder.conv1.weight").unwrap();
        assert_eq!(
            (conv.shape(), conv.dtype(), conv.data()),
            (&[2usize, 1, 3][..], Dtype::F32, &weights[..])
        );
        assert_eq!(
            tensors.tensor("decoder.ln.weight").unwrap().dtype(),
            Dtype::F16
        );
        assert_eq!(tensors.len(), 2);
    }

    #[test]
    fn rejects_truncated_and_foreign_files() {
        let bin = write_model_bin(
            "WhisperSpec",
            &[("encoder/conv1/bias", vec![4], 0, vec![0; 16])],
        );
        let err = Ct2Model::parse(&bin[..bin.len() - 70])
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        let wrong_size = write_model_bin(
            "WhisperSpec",
            &[("encoder/conv1/bias", vec![4], 0, vec![0; 12])],
        );
        assert!(
            Ct2Model::parse(&wrong_size)
                .unwrap_err()
                .to_string()
                .contains("shape needs 16")
        );
        let other = write_model_bin("TransformerSpec", &[]);
        assert!(
            convert_whisper(&other)
                .unwrap_err()
                .to_string()
                .contains("not a Whisper model")
        );
        assert!(
            Ct2Model::parse(b"\x07\0\0\0")
                .unwrap_err()
                .to_string()
                .contains("version 7")
        );
    }
}
