//! The Whisper network on candle-core/candle-nn: conv stem, pre-LN transformer encoder with
//! sinusoidal positions, decoder with learned positions, self- and cross-attention, a KV cache
//! and the output projection tied to the token embedding.

use crate::kernels::{self, HalfMatrix};
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
    /// A linear layer; with `half`, also kept at half precision for one-token steps.
    fn linear(&self, prefix: &str, half: bool) -> Result<Proj> {
        let weight = self.get(&format!("{prefix}.weight"))?;
        let bias = self
            .map
            .get(&format!("{prefix}.bias"))
            .map(|b| b.to_dtype(DType::F32))
            .transpose()?;
        let half = half
            .then(|| -> Result<_> {
                let bias = bias.as_ref().map(|b| b.to_vec1::<f32>()).transpose()?;
                Ok((HalfMatrix::new(&weight)?, bias))
            })
            .transpose()?;
        Ok(Proj {
            linear: Linear::new(weight, bias),
            half,
        })
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

/// A linear layer. Decoder layers also hold their weights at half precision (the precision
/// the models ship in, so the values are the same) for one-token steps, whose matrix-vector
/// products are bound by memory reads.
struct Proj {
    linear: Linear,
    half: Option<(HalfMatrix, Option<Vec<f32>>)>,
}

impl Proj {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.half {
            Some((w, bias)) if x.elem_count() == w.cols() => {
                let mut y = w.mul_vec(&x.flatten_all()?.to_vec1::<f32>()?);
                if let Some(bias) = bias {
                    y.iter_mut().zip(bias).for_each(|(y, b)| *y += b);
                }
                let mut shape = x.dims().to_vec();
                if let Some(last) = shape.last_mut() {
                    *last = w.rows();
                }
                Ok(Tensor::from_vec(y, shape, x.device())?)
            }
            _ => Ok(self.linear.forward(x)?),
        }
    }
}

/// Splits `x` (b, t, d) into `heads` contiguous heads (b, heads, t, d / heads).
fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    Ok(x.reshape((b, t, heads, d / heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// Attention weights above this many values are computed one head at a time (the encoder's
/// 1500 x 1500 per head), so that the buffers stay small enough for the allocator to reuse.
const ATTENTION_CHUNK: usize = 1 << 21;

/// Scaled dot-product attention of heads `q` (b, h, tq, hd) over `k`, `v` (b, h, tk, hd);
/// returns (b, tq, h * hd).
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, h, tq, hd) = q.dims4()?;
    let tk = k.dim(2)?;
    let heads = |q: &Tensor, k: &Tensor, v: &Tensor| -> Result<Tensor> {
        let mut w = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            w = w.broadcast_add(mask)?;
        }
        let w = kernels::scaled_softmax(w, 1.0 / (hd as f32).sqrt())?;
        Ok(w.matmul(v)?)
    };
    let out = if b * h * tq * tk > ATTENTION_CHUNK {
        let per_head = (0..h)
            .map(|i| {
                heads(
                    &q.narrow(1, i, 1)?,
                    &k.narrow(1, i, 1)?,
                    &v.narrow(1, i, 1)?,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&per_head, 1)?
    } else {
        heads(q, k, v)?
    };
    Ok(out.transpose(1, 2)?.reshape((b, tq, h * hd))?)
}

struct Mlp {
    ln: LayerNorm,
    fc1: Proj,
    fc2: Proj,
}

impl Mlp {
    fn load(w: &Weights, p: &str, half: bool) -> Result<Mlp> {
        Ok(Mlp {
            ln: w.norm(&format!("{p}.mlp_ln"))?,
            fc1: w.linear(&format!("{p}.mlp.fc1"), half)?,
            fc2: w.linear(&format!("{p}.mlp.fc2"), half)?,
        })
    }
    fn residual(&self, x: &Tensor) -> Result<Tensor> {
        let h = self
            .fc2
            .forward(&kernels::gelu(&self.fc1.forward(&self.ln.forward(x)?)?)?)?;
        Ok((x + h)?)
    }
}

/// Self-attention with fused q/k/v projection.
struct SelfAttention {
    ln: LayerNorm,
    qkv: Proj,
    out: Proj,
    heads: usize,
}

impl SelfAttention {
    fn load(w: &Weights, p: &str, heads: usize, half: bool) -> Result<SelfAttention> {
        Ok(SelfAttention {
            ln: w.norm(&format!("{p}.attn_ln"))?,
            qkv: w.linear(&format!("{p}.attn.qkv"), half)?,
            out: w.linear(&format!("{p}.attn.out"), half)?,
            heads,
        })
    }
    /// Adds attention to `x`; with a cache, keys and values (split into heads) are appended
    /// to it first.
    fn residual(
        &self,
        x: &Tensor,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let qkv = self.qkv.forward(&self.ln.forward(x)?)?;
        let d = qkv.dim(D::Minus1)? / 3;
        let part = |i: usize| split_heads(&qkv.narrow(D::Minus1, i * d, d)?, self.heads);
        let (q, mut k, mut v) = (part(0)?, part(1)?, part(2)?);
        if let Some(cache) = cache {
            if let Some((pk, pv)) = cache.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *cache = Some((k.clone(), v.clone()));
        }
        let h = attend(&q, &k, &v, mask)?;
        Ok((x + self.out.forward(&h)?)?)
    }
}

struct DecoderBlock {
    attn: SelfAttention,
    cross_ln: LayerNorm,
    cross_q: Proj,
    cross_kv: Proj,
    cross_out: Proj,
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
    /// The output projection (the token embedding) at half precision, on the CPU.
    projection: Option<HalfMatrix>,
    dec_pos: Tensor,
    dec_blocks: Vec<DecoderBlock>,
    dec_ln: LayerNorm,
    device: Device,
}

/// Decoder state for one audio window: cross-attention keys/values (computed once per window,
/// split into heads) and the self-attention cache.
#[derive(Clone)]
pub struct DecoderState {
    cross: Vec<(Tensor, Tensor)>,
    cache: Vec<Option<(Tensor, Tensor)>>,
    offset: usize,
}

impl DecoderState {
    /// Tokens the decoder has read in this state.
    pub fn tokens_seen(&self) -> usize {
        self.offset
    }

    /// The state as it was after its first `tokens` tokens (at most [`Self::tokens_seen`]).
    pub fn truncated(&self, tokens: usize) -> Result<DecoderState> {
        if tokens > self.offset {
            return Err(Error::Invalid(format!(
                "cannot keep {tokens} of {} tokens",
                self.offset
            )));
        }
        let cache = self
            .cache
            .iter()
            .map(|c| {
                c.as_ref()
                    .map(|(k, v)| {
                        Ok::<_, Error>((k.narrow(2, 0, tokens)?, v.narrow(2, 0, tokens)?))
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState {
            cross: self.cross.clone(),
            cache,
            offset: tokens,
        })
    }
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
                    SelfAttention::load(&w, &p, config.encoder_heads, false)?,
                    Mlp::load(&w, &p, false)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let half = device.is_cpu();
        let dec_blocks = (0..config.decoder_layers)
            .map(|i| {
                let p = format!("decoder.blocks.{i}");
                Ok(DecoderBlock {
                    attn: SelfAttention::load(&w, &p, config.decoder_heads, half)?,
                    cross_ln: w.norm(&format!("{p}.cross_ln"))?,
                    cross_q: w.linear(&format!("{p}.cross.q"), half)?,
                    cross_kv: w.linear(&format!("{p}.cross.kv"), false)?,
                    cross_out: w.linear(&format!("{p}.cross.out"), half)?,
                    mlp: Mlp::load(&w, &p, half)?,
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
            projection: device
                .is_cpu()
                .then(|| HalfMatrix::new(&embedding))
                .transpose()?,
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
        let x = kernels::gelu(&self.conv1.forward(&x)?)?;
        let x = kernels::gelu(&self.conv2.forward(&x)?)?.transpose(1, 2)?;
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
                    split_heads(&kv.narrow(D::Minus1, 0, d)?, b.attn.heads)?,
                    split_heads(&kv.narrow(D::Minus1, d, d)?, b.attn.heads)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState {
            cross,
            cache: vec![None; self.dec_blocks.len()],
            offset: 0,
        })
    }

    /// Feeds `tokens` after those already in `state`; returns the logits (`n_vocab` values) of
    /// the fed positions listed in `rows` (indices into `tokens`), in that order.
    pub fn decode(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        rows: &[usize],
    ) -> Result<Vec<Vec<f32>>> {
        let t = tokens.len();
        if let Some(&bad) = rows.iter().find(|&&r| r >= t) {
            return Err(Error::Invalid(format!("logits of position {bad} of {t}")));
        }
        let x = self.forward(state, tokens, &[], &mut Vec::new())?;
        let index: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let x = x
            .squeeze(0)?
            .index_select(&Tensor::new(index.as_slice(), &self.device)?, 0)?;
        let x = self.dec_ln.forward(&x)?;
        match &self.projection {
            Some(p) => Ok(x.to_vec2::<f32>()?.iter().map(|r| p.mul_vec(r)).collect()),
            None => Ok(x.matmul(&self.embedding.t()?)?.to_vec2()?),
        }
    }

    /// The cross-attention weights of `heads` (decoder layer, head) while reading `tokens`
    /// after `state` (left as it was): per head, one row per token over the audio positions
    /// (20 ms each).
    pub fn cross_attention(
        &self,
        state: &DecoderState,
        tokens: &[u32],
        heads: &[(usize, usize)],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        if let Some(bad) = heads.iter().find(|&&(layer, head)| {
            layer >= self.config.decoder_layers || head >= self.config.decoder_heads
        }) {
            return Err(Error::Model(format!("no cross-attention head {bad:?}")));
        }
        let mut weights = Vec::new();
        self.forward(&mut state.clone(), tokens, heads, &mut weights)?;
        weights.iter().map(|w| Ok(w.to_vec2::<f32>()?)).collect()
    }

    /// The decoder's blocks over `tokens` after `state`: the last hidden states (1, t, d), and
    /// the cross-attention weights (t, audio positions) of `heads` pushed to `weights`.
    fn forward(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        heads: &[(usize, usize)],
        weights: &mut Vec<Tensor>,
    ) -> Result<Tensor> {
        let t = tokens.len();
        if state.offset + t > self.config.n_text_ctx {
            return Err(Error::Invalid("decoder context exceeded".into()));
        }
        let ids = Tensor::new(tokens, &self.device)?;
        let x = self.embedding.embedding(&ids)?.unsqueeze(0)?;
        let mut x = x.broadcast_add(&self.dec_pos.narrow(0, state.offset, t)?)?;
        let mask = (t > 1)
            .then(|| causal_mask(t, state.offset, &self.device))
            .transpose()?;
        for (i, b) in self.dec_blocks.iter().enumerate() {
            x = b
                .attn
                .residual(&x, Some(&mut state.cache[i]), mask.as_ref())?;
            let q = split_heads(&b.cross_q.forward(&b.cross_ln.forward(&x)?)?, b.attn.heads)?;
            let (k, v) = &state.cross[i];
            let wanted: Vec<usize> = heads
                .iter()
                .filter(|&&(layer, _)| layer == i)
                .map(|&(_, head)| head)
                .collect();
            if !wanted.is_empty() {
                let scale = 1.0 / (q.dim(3)? as f32).sqrt();
                let w = kernels::scaled_softmax(q.matmul(&k.t()?)?, scale)?.squeeze(0)?;
                for head in wanted {
                    weights.push(w.get(head)?);
                }
            }
            x = (&x + b.cross_out.forward(&attend(&q, k, v, None)?)?)?;
            x = b.mlp.residual(&x)?;
        }
        state.offset += t;
        Ok(x)
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

    /// Safetensors bytes of a random Whisper with the given shapes (`n_mels` 8) and weights
    /// that half precision holds, for tests.
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
                    let x = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale;
                    // Rounded to half precision (10 mantissa bits), as installed models are.
                    f32::from_bits((x.to_bits() + 0x1000) & !0x1fff)
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
        let all = model.decode(&mut full, &tokens, &[4, 1]).unwrap();
        assert_eq!((all.len(), all[0].len()), (2, 300));
        let max_diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        };
        let mut step = model.encode(&mel, 3000).unwrap();
        let first = model.decode(&mut step, &tokens[..2], &[1]).unwrap();
        let diff = max_diff(&first[0], &all[1]);
        assert!(
            diff < 1e-3,
            "rows come in the order asked (differs by {diff})"
        );
        let mut last = first;
        for &t in &tokens[2..] {
            last = model.decode(&mut step, &[t], &[0]).unwrap();
        }
        assert!(model.decode(&mut step, &[1], &[1]).is_err());
        let diff = max_diff(&all[0], &last[0]);
        assert!(diff < 1e-3, "cached decoding differs by {diff}");
        assert!(max_diff(&all[0], &all[1]) > 1e-2, "positions differ");
        // A state cut back to its first two tokens reads the rest as if it had never seen them.
        assert_eq!(full.tokens_seen(), 5);
        let mut cut = full.truncated(2).unwrap();
        let again = model.decode(&mut cut, &tokens[2..], &[2]).unwrap();
        let diff = max_diff(&all[0], &again[0]);
        assert!(diff < 1e-3, "truncated state differs by {diff}");
        assert!(full.truncated(6).is_err());
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
