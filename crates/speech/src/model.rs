//! The Whisper network on candle-core/candle-nn: conv stem, pre-LN transformer encoder with
//! sinusoidal positions, decoder with learned positions, self- and cross-attention, a KV cache
//! and the output projection tied to the token embedding.

use crate::{Error, Result};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear};
use std::collections::HashMap;

/// Shapes of a Whisper model, read from its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Mel bins of the input (80).
    pub n_mels: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Attention heads in the encoder.
    pub encoder_heads: usize,
    /// Attention heads in the decoder.
    pub decoder_heads: usize,
    /// Encoder blocks.
    pub encoder_layers: usize,
    /// Decoder blocks.
    pub decoder_layers: usize,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Audio positions (1500 for 30 s).
    pub n_audio_ctx: usize,
    /// Text positions (448).
    pub n_text_ctx: usize,
}

struct Weights {
    map: HashMap<String, Tensor>,
}

impl Weights {
    fn get(&self, name: &str) -> Result<Tensor> {
        let t = self
            .map
            .get(name)
            .ok_or_else(|| Error::Model(format!("weights: tensor {name} missing")))?;
        Ok(t.to_dtype(DType::F32)?)
    }
    fn linear(&self, prefix: &str) -> Result<Linear> {
        Ok(Linear::new(
            self.get(&format!("{prefix}.weight"))?,
            self.map
                .get(&format!("{prefix}.bias"))
                .map(|b| b.to_dtype(DType::F32))
                .transpose()?,
        ))
    }
    fn norm(&self, prefix: &str) -> Result<LayerNorm> {
        Ok(LayerNorm::new(
            self.get(&format!("{prefix}.weight"))?,
            self.get(&format!("{prefix}.bias"))?,
            1e-5,
        ))
    }
    fn conv(&self, prefix: &str, stride: usize) -> Result<Conv1d> {
        let cfg = Conv1dConfig {
            padding: 1,
            stride,
            ..Default::default()
        };
        Ok(Conv1d::new(
            self.get(&format!("{prefix}.weight"))?,
            Some(self.get(&format!("{prefix}.bias"))?),
            cfg,
        ))
    }
    fn count(&self, prefix: &str) -> usize {
        (0..)
            .take_while(|i| {
                self.map
                    .contains_key(&format!("{prefix}.blocks.{i}.mlp.fc1.weight"))
            })
            .count()
    }
}

/// Scaled dot-product attention of `q` (b, tq, d) over `k`, `v` (b, tk, d) with `heads` heads.
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, tq, d) = q.dims3()?;
    let tk = k.dim(1)?;
    let hd = d / heads;
    let split = |x: &Tensor, t: usize| -> Result<Tensor> {
        Ok(x.reshape((b, t, heads, hd))?
            .transpose(1, 2)?
            .contiguous()?)
    };
    let (q, k, v) = (split(q, tq)?, split(k, tk)?, split(v, tk)?);
    let mut w = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
    if let Some(mask) = mask {
        w = w.broadcast_add(mask)?;
    }
    let w = candle_nn::ops::softmax_last_dim(&w)?;
    Ok(w.matmul(&v)?.transpose(1, 2)?.reshape((b, tq, d))?)
}

struct Mlp {
    ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(w: &Weights, p: &str) -> Result<Mlp> {
        Ok(Mlp {
            ln: w.norm(&format!("{p}.mlp_ln"))?,
            fc1: w.linear(&format!("{p}.mlp.fc1"))?,
            fc2: w.linear(&format!("{p}.mlp.fc2"))?,
        })
    }
    fn residual(&self, x: &Tensor) -> Result<Tensor> {
        let h = self
            .fc2
            .forward(&self.fc1.forward(&self.ln.forward(x)?)?.gelu_erf()?)?;
        Ok((x + h)?)
    }
}

/// Self-attention with fused q/k/v projection.
struct SelfAttention {
    ln: LayerNorm,
    qkv: Linear,
    out: Linear,
    heads: usize,
}

impl SelfAttention {
    fn load(w: &Weights, p: &str, heads: usize) -> Result<SelfAttention> {
        Ok(SelfAttention {
            ln: w.norm(&format!("{p}.attn_ln"))?,
            qkv: w.linear(&format!("{p}.attn.qkv"))?,
            out: w.linear(&format!("{p}.attn.out"))?,
            heads,
        })
    }
    /// Adds attention to `x`; with a cache, keys and values are appended to it first.
    fn residual(
        &self,
        x: &Tensor,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let qkv = self.qkv.forward(&self.ln.forward(x)?)?;
        let d = qkv.dim(D::Minus1)? / 3;
        let (q, mut k, mut v) = (
            qkv.narrow(D::Minus1, 0, d)?,
            qkv.narrow(D::Minus1, d, d)?,
            qkv.narrow(D::Minus1, 2 * d, d)?,
        );
        if let Some(cache) = cache {
            if let Some((pk, pv)) = cache.as_ref() {
                k = Tensor::cat(&[pk, &k], 1)?;
                v = Tensor::cat(&[pv, &v], 1)?;
            }
            *cache = Some((k.clone(), v.clone()));
        }
        let h = attend(&q, &k, &v, self.heads, mask)?;
        Ok((x + self.out.forward(&h)?)?)
    }
}

struct DecoderBlock {
    attn: SelfAttention,
    cross_ln: LayerNorm,
    cross_q: Linear,
    cross_kv: Linear,
    cross_out: Linear,
    mlp: Mlp,
}

/// The Whisper model.
pub struct Whisper {
    /// Shapes.
    pub config: Config,
    conv1: Conv1d,
    conv2: Conv1d,
    enc_pos: Tensor,
    enc_blocks: Vec<(SelfAttention, Mlp)>,
    enc_ln: LayerNorm,
    embedding: Tensor,
    dec_pos: Tensor,
    dec_blocks: Vec<DecoderBlock>,
    dec_ln: LayerNorm,
    device: Device,
}

/// Decoder state for one audio window: cross-attention keys/values and the self-attention cache.
#[derive(Clone)]
pub struct DecoderState {
    cross: Vec<(Tensor, Tensor)>,
    cache: Vec<Option<(Tensor, Tensor)>>,
    offset: usize,
}

impl Whisper {
    /// Loads a model from safetensors bytes written by [`crate::ct2::convert_whisper`].
    pub fn load(safetensors: &[u8], device: &Device) -> Result<Whisper> {
        let (_, meta) = safetensors::SafeTensors::read_metadata(safetensors)
            .map_err(|e| Error::Model(format!("safetensors: {e}")))?;
        let info = meta.metadata().clone().unwrap_or_default();
        let heads = |key: &str| -> Result<usize> {
            info.get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| Error::Model(format!("weights: metadata {key} missing")))
        };
        let w = Weights {
            map: candle_core::safetensors::load_buffer(safetensors, device)?,
        };
        let embedding = w.get("decoder.embedding")?;
        let (n_vocab, d_model) = embedding.dims2()?;
        let enc_pos = w.get("encoder.positions")?;
        let dec_pos = w.get("decoder.positions")?;
        let config = Config {
            n_mels: w.get("encoder.conv1.weight")?.dim(1)?,
            d_model,
            encoder_heads: heads("encoder_heads")?,
            decoder_heads: heads("decoder_heads")?,
            encoder_layers: w.count("encoder"),
            decoder_layers: w.count("decoder"),
            n_vocab,
            n_audio_ctx: enc_pos.dim(0)?,
            n_text_ctx: dec_pos.dim(0)?,
        };
        let enc_blocks = (0..config.encoder_layers)
            .map(|i| {
                let p = format!("encoder.blocks.{i}");
                Ok((
                    SelfAttention::load(&w, &p, config.encoder_heads)?,
                    Mlp::load(&w, &p)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let dec_blocks = (0..config.decoder_layers)
            .map(|i| {
                let p = format!("decoder.blocks.{i}");
                Ok(DecoderBlock {
                    attn: SelfAttention::load(&w, &p, config.decoder_heads)?,
                    cross_ln: w.norm(&format!("{p}.cross_ln"))?,
                    cross_q: w.linear(&format!("{p}.cross.q"))?,
                    cross_kv: w.linear(&format!("{p}.cross.kv"))?,
                    cross_out: w.linear(&format!("{p}.cross.out"))?,
                    mlp: Mlp::load(&w, &p)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Whisper {
            conv1: w.conv("encoder.conv1", 1)?,
            conv2: w.conv("encoder.conv2", 2)?,
            enc_ln: w.norm("encoder.ln")?,
            dec_ln: w.norm("decoder.ln")?,
            config,
            enc_pos,
            enc_blocks,
            embedding,
            dec_pos,
            dec_blocks,
            device: device.clone(),
        })
    }

    /// Encodes one 30-second window of log-mel frames (`n_mels * frames`, row-major) and
    /// prepares the decoder's cross-attention for it.
    pub fn encode(&self, mel: &[f32], frames: usize) -> Result<DecoderState> {
        let x = Tensor::from_slice(mel, (1, self.config.n_mels, frames), &self.device)?;
        let x = self.conv1.forward(&x)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?.transpose(1, 2)?;
        let n = x.dim(1)?;
        let mut x = x.broadcast_add(&self.enc_pos.narrow(0, 0, n)?)?;
        for (attn, mlp) in &self.enc_blocks {
            x = mlp.residual(&attn.residual(&x, None, None)?)?;
        }
        let audio = self.enc_ln.forward(&x)?;
        let cross = self
            .dec_blocks
            .iter()
            .map(|b| {
                let kv = b.cross_kv.forward(&audio)?;
                let d = self.config.d_model;
                Ok((
                    kv.narrow(D::Minus1, 0, d)?.contiguous()?,
                    kv.narrow(D::Minus1, d, d)?.contiguous()?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState {
            cross,
            cache: vec![None; self.dec_blocks.len()],
            offset: 0,
        })
    }

    /// Feeds `tokens` after those already in `state`; returns the logits of every fed position
    /// as rows of `n_vocab` values.
    pub fn decode(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let t = tokens.len();
        if state.offset + t > self.config.n_text_ctx {
            return Err(Error::Invalid("decoder context exceeded".into()));
        }
        let ids = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let mut x = self.embedding.embedding(&ids.squeeze(0)?)?.unsqueeze(0)?;
        x = x.broadcast_add(&self.dec_pos.narrow(0, state.offset, t)?)?;
        let mask = (t > 1)
            .then(|| causal_mask(t, state.offset, &self.device))
            .transpose()?;
        for (i, b) in self.dec_blocks.iter().enumerate() {
            x = b
                .attn
                .residual(&x, Some(&mut state.cache[i]), mask.as_ref())?;
            let q = b.cross_q.forward(&b.cross_ln.forward(&x)?)?;
            let (k, v) = &state.cross[i];
            let h = attend(&q, k, v, b.attn.heads, None)?;
            x = (&x + b.cross_out.forward(&h)?)?;
            x = b.mlp.residual(&x)?;
        }
        state.offset += t;
        let x = self.dec_ln.forward(&x)?;
        let logits = x.squeeze(0)?.matmul(&self.embedding.t()?)?;
        Ok(logits.to_vec2()?)
    }
}

/// Additive mask letting position `offset + i` see keys `0..=offset + i`.
fn causal_mask(t: usize, offset: usize, device: &Device) -> Result<Tensor> {
    let total = offset + t;
    let values: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j <= offset + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(values, (t, total), device)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Safetensors bytes of a random Whisper with the given shapes (`n_mels` 8), for tests.
    pub(crate) fn random_model(d: usize, layers: usize, n_vocab: usize, seed: u64) -> Vec<u8> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut rand = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
                })
                .collect()
        };
        let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        let mut add = |name: String, shape: Vec<usize>, scale: f32| {
            let n = shape.iter().product();
            let data = if name.ends_with("ln.weight") {
                vec![1.0; n]
            } else {
                rand(n, scale)
            };
            t.push((name, shape, data));
        };
        add("encoder.conv1.weight".into(), vec![d, 8, 3], 0.3);
        add("encoder.conv1.bias".into(), vec![d], 0.1);
        add("encoder.conv2.weight".into(), vec![d, d, 3], 0.3);
        add("encoder.conv2.bias".into(), vec![d], 0.1);
        add("encoder.positions".into(), vec![1500, d], 0.1);
        add("decoder.positions".into(), vec![448, d], 0.1);
        add("decoder.embedding".into(), vec![n_vocab, d], 0.5);
        for side in ["encoder", "decoder"] {
            add(format!("{side}.ln.weight"), vec![d], 0.0);
            add(format!("{side}.ln.bias"), vec![d], 0.1);
            for i in 0..layers {
                let p = format!("{side}.blocks.{i}");
                let mut lns = vec!["attn_ln", "mlp_ln"];
                let mut lins = vec![
                    ("attn.qkv", 3 * d, d),
                    ("attn.out", d, d),
                    ("mlp.fc1", 4 * d, d),
                    ("mlp.fc2", d, 4 * d),
                ];
                if side == "decoder" {
                    lns.push("cross_ln");
                    lins.extend([
                        ("cross.q", d, d),
                        ("cross.kv", 2 * d, d),
                        ("cross.out", d, d),
                    ]);
                }
                for ln in lns {
                    add(format!("{p}.{ln}.weight"), vec![d], 0.0);
                    add(format!("{p}.{ln}.bias"), vec![d], 0.1);
                }
                for (name, o, i) in lins {
                    add(format!("{p}.{name}.weight"), vec![o, i], 0.3);
                    add(format!("{p}.{name}.bias"), vec![o], 0.1);
                }
            }
        }
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = t
            .into_iter()
            .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views = bytes.iter().map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        });
        let meta = HashMap::from([
            ("encoder_heads".to_string(), "2".to_string()),
            ("decoder_heads".to_string(), "2".to_string()),
        ]);
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    #[test]
    fn shapes_come_from_the_weights_and_the_cache_matches_a_full_pass() {
        let model = Whisper::load(&random_model(16, 2, 300, 1), &Device::Cpu).unwrap();
        assert_eq!(
            (
                model.config.encoder_layers,
                model.config.decoder_layers,
                model.config.n_vocab,
                model.config.d_model
            ),
            (2, 2, 300, 16)
        );
        let mel: Vec<f32> = (0..8 * 3000)
            .map(|i| ((i % 97) as f32 / 97.0) - 0.5)
            .collect();
        let tokens = [3u32, 17, 250, 42, 7];
        let mut full = model.encode(&mel, 3000).unwrap();
        let all = model.decode(&mut full, &tokens).unwrap();
        assert_eq!((all.len(), all[0].len()), (5, 300));
        let mut step = model.encode(&mel, 3000).unwrap();
        let mut last = model.decode(&mut step, &tokens[..2]).unwrap();
        for &t in &tokens[2..] {
            last = model.decode(&mut step, &[t]).unwrap();
        }
        let diff = all[4]
            .iter()
            .zip(&last[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-3, "cached decoding differs by {diff}");
    }

    #[test]
    fn missing_tensors_are_named() {
        let meta = HashMap::from([
            ("encoder_heads".to_string(), "2".to_string()),
            ("decoder_heads".to_string(), "2".to_string()),
        ]);
        let empty = safetensors::serialize(
            Vec::<(String, safetensors::tensor::TensorView)>::new(),
            Some(meta),
        )
        .unwrap();
        let err = Whisper::load(&empty, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("decoder.embedding"), "{err}");
    }
}
