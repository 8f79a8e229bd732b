//! `ClipModel`: both towers plus `logit_scale`, built from a [`Checkpoint`].

use candle_core::{DType, Device, Tensor};
use clip_checkpoint::Checkpoint;

use super::config::{ModelConfig, VisionConfig};
use super::error::ModelError;
use super::footprint::Footprint;
use super::layers::to_f32;
use super::modified_resnet::ModifiedResNet;
use super::text_transformer::TextTransformer;
use super::vision_transformer::VisionTransformer;
use super::weights::{validate, Weights};
use crate::kernels::{Isa, Precision};

/// The image tower, of whichever architecture the checkpoint holds.
// One per model: the variants' inline sizes (a few hundred bytes) do not matter.
#[allow(clippy::large_enum_variant)]
enum Visual {
    /// `VisionTransformer` (CLIP's, open_clip's and SigLIP's).
    Vit(VisionTransformer),
    /// `ModifiedResNet`.
    ResNet(ModifiedResNet),
}

impl Footprint for Visual {
    fn weight_bytes(&self) -> usize {
        match self {
            Visual::Vit(v) => v.weight_bytes(),
            Visual::ResNet(r) => r.weight_bytes(),
        }
    }
}

/// Runs a tower's forward pass on a worker of rayon's pool. Called from any other thread, each of
/// its parallel loops (several a layer) would be injected into the pool and waited for across
/// threads, a sleep and a wake-up per loop (a measurable share of a batch-1 image's time, spent
/// in the scheduler); on a worker they fork and join in place. The caller's thread waits once,
/// for the whole pass.
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// Which towers to build. A text-only command (embedding captions, zero-shot labels from the
/// cache) never reads the image tower's weights, and the reverse: less start-up time and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Towers {
    /// Both towers: the default, for anything that compares images with texts.
    #[default]
    Both,
    /// The text tower only (`encode_image` refuses).
    Text,
    /// The image tower only (`encode_text` refuses).
    Image,
}

/// How [`ClipModel::with_options`] builds the model.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Precision of the linear layers (f32: the reference's numbers).
    pub precision: Precision,
    /// Which towers to build ([`Towers::Both`] by default).
    pub towers: Towers,
    /// Kernel set of the linear layers; `None` picks the best this CPU runs for the precision
    /// ([`Isa::detect`]). f32 below [`Isa::Avx512`] runs candle's GEMM
    /// ([`crate::kernels::runs_packed`]). Tests force the fallbacks with it.
    pub kernels: Option<Isa>,
}

/// A CLIP model on one candle device: f32 activations, linear layers in the chosen [`Precision`].
pub struct ClipModel {
    config: ModelConfig,
    visual: Option<Visual>,
    text: Option<TextTransformer>,
    logit_scale: f32,
    /// The checkpoint's `logit_scale` parameter as stored (its `exp()` is `logit_scale`).
    stored_logit_scale: f32,
    /// SigLIP's `logit_bias` (`None` for softmax-trained models).
    logit_bias: Option<f32>,
    device: Device,
    options: LoadOptions,
    isa: Isa,
}

impl std::fmt::Debug for ClipModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipModel")
            .field("config", &self.config)
            .field("device", &self.device)
            .finish()
    }
}

impl ClipModel {
    /// Infers the architecture from the checkpoint (see [`ModelConfig::infer`]), checks every
    /// tensor it needs (present, floating point, exact shape, no NaN/inf) and builds both towers
    /// in f32 on `device`. Extra tensors (`*.num_batches_tracked`, `input_resolution`, ...) are
    /// ignored. Errors name the checkpoint file.
    pub fn new(ckpt: &Checkpoint, device: &Device) -> Result<ClipModel, ModelError> {
        Self::with_options(ckpt, device, LoadOptions::default())
    }

    /// As [`ClipModel::new`], with a precision and a choice of towers (the shapes of every
    /// tensor are still checked, only the built towers' values are read).
    pub fn with_options(
        ckpt: &Checkpoint,
        device: &Device,
        options: LoadOptions,
    ) -> Result<ClipModel, ModelError> {
        Self::build(ckpt, device, options).map_err(|e| e.with_path(&ckpt.path))
    }

    fn build(
        ckpt: &Checkpoint,
        device: &Device,
        options: LoadOptions,
    ) -> Result<ClipModel, ModelError> {
        let config = ModelConfig::infer(&ckpt.state, &ckpt.hints)?;
        let table = config.expected_tensors();
        validate(&ckpt.state, &table)?;
        let isa = match options.kernels {
            None => Isa::detect(options.precision),
            Some(isa) if Isa::available(options.precision).contains(&isa) => isa,
            Some(isa) => {
                return Err(ModelError::config(format!(
                    "the {isa:?} kernels of precision {} need CPU features this machine lacks",
                    options.precision
                )))
            }
        };
        let w = Weights::new(&ckpt.state, &table, device, options.precision, isa);
        let visual = match options.towers {
            Towers::Text => None,
            _ => Some(Self::build_visual(&w, &config)?),
        };
        let text = match options.towers {
            Towers::Image => None,
            _ => Some(TextTransformer::load(
                &w,
                &config.text,
                config.activation,
                config.layer_norm_eps,
            )?),
        };
        let stored = w.values("logit_scale")?[0];
        let logit_scale = stored.exp(); // torch: logit_scale.exp() in float32
        if !logit_scale.is_finite() {
            return Err(ModelError::NonFinite {
                path: None,
                name: "logit_scale".into(),
                what: "a value whose exponential overflows",
            });
        }
        let logit_bias = if config.logit_bias {
            Some(w.values("logit_bias")?[0])
        } else {
            None
        };
        Ok(ClipModel {
            config,
            visual,
            text,
            logit_scale,
            stored_logit_scale: stored,
            logit_bias,
            device: device.clone(),
            options,
            isa,
        })
    }

    fn build_visual(w: &Weights, config: &ModelConfig) -> Result<Visual, ModelError> {
        let act = config.activation;
        Ok(match config.vision {
            VisionConfig::Vit { .. } => Visual::Vit(VisionTransformer::load(
                w,
                &config.vision,
                act,
                config.layer_norm_eps,
            )?),
            VisionConfig::ResNet {
                layers,
                width,
                heads,
                resolution,
            } => Visual::ResNet(ModifiedResNet::load(w, layers, width, heads, resolution)?),
        })
    }

    /// Bytes of the weights the built towers hold, matrices at their packed size in the load
    /// precision (what a memory budget compares with; the checkpoint itself is not kept).
    pub fn weight_bytes(&self) -> usize {
        self.visual.weight_bytes() + self.text.weight_bytes()
    }

    /// The precision and towers it was built with.
    pub fn options(&self) -> LoadOptions {
        self.options
    }

    /// The kernel set its linear layers run on: `options().kernels`, or the best this CPU has.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The architecture inferred from the checkpoint.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device its weights live on (inputs are moved there).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Width of the image and text embeddings.
    pub fn embed_dim(&self) -> usize {
        self.config.embed_dim
    }

    /// Raw (not normalised) image embeddings `[B, E]` of preprocessed pixels `[B, 3, R, R]`
    /// (any float dtype, converted to f32; `R` = [`ModelConfig::image_resolution`]).
    pub fn encode_image(&self, pixels: &Tensor) -> Result<Tensor, ModelError> {
        let r = self.config.image_resolution();
        let dims = pixels.dims();
        if dims.len() != 4 || dims[1] != 3 || dims[2] != r || dims[3] != r {
            return Err(ModelError::Input(format!(
                "pixels have shape {dims:?}, expected [batch, 3, {r}, {r}]"
            )));
        }
        if !pixels.dtype().is_float() {
            return Err(ModelError::Input(format!(
                "pixels have dtype {:?}, expected f32",
                pixels.dtype()
            )));
        }
        if dims[0] == 0 {
            return Tensor::zeros((0, self.config.embed_dim), DType::F32, &self.device).map_err(
                |e| ModelError::Candle {
                    context: "encode_image".into(),
                    source: e,
                },
            );
        }
        let visual = self.visual.as_ref().ok_or_else(|| {
            ModelError::Input("the model was loaded without its image tower".into())
        })?;
        let x = to_f32(pixels, &self.device, "encode_image")?;
        let out = on_pool(|| match visual {
            Visual::Vit(v) => v.forward(&x),
            Visual::ResNet(v) => v.forward(&x),
        });
        out.map_err(|e| ModelError::Candle {
            context: "encode_image".into(),
            source: e,
        })
    }

    /// Raw (not normalised) text embeddings `[B, E]` of token ids `[B, L]` (u32 or i64; u8, i16
    /// and i32 are accepted too), `1 <= L <= context_length`, every id `< vocab_size`.
    /// The features are taken at the pooled position of each row: CLIP's largest id (the
    /// end-of-text token), SigLIP's last position, as the family's reference does.
    pub fn encode_text(&self, tokens: &Tensor) -> Result<Tensor, ModelError> {
        let (ctx_len, vocab) = (self.config.text.context_length, self.config.text.vocab_size);
        let dims = tokens.dims();
        if dims.len() != 2 || dims[1] == 0 || dims[1] > ctx_len {
            return Err(ModelError::Input(format!(
                "tokens have shape {dims:?}, expected [batch, length] with 1 <= length <= {ctx_len}"
            )));
        }
        let cand = |e| ModelError::Candle {
            context: "encode_text: reading token ids".into(),
            source: e,
        };
        fn widen<T: candle_core::WithDType + Into<i64>>(
            t: &Tensor,
        ) -> candle_core::Result<Vec<Vec<i64>>> {
            Ok(t.to_vec2::<T>()?
                .into_iter()
                .map(|r| r.into_iter().map(Into::into).collect())
                .collect())
        }
        let rows = match tokens.dtype() {
            DType::I64 => tokens.to_vec2::<i64>(),
            DType::I32 => widen::<i32>(tokens),
            DType::I16 => widen::<i16>(tokens),
            DType::U32 => widen::<u32>(tokens),
            DType::U8 => widen::<u8>(tokens),
            other => {
                return Err(ModelError::Input(format!(
                    "tokens have dtype {other:?}, expected an integer type (u32 or i64)"
                )))
            }
        }
        .map_err(cand)?;
        let mut ids = Vec::with_capacity(rows.len());
        for (i, r) in rows.into_iter().enumerate() {
            let mut row = Vec::with_capacity(r.len());
            for (j, v) in r.into_iter().enumerate() {
                if v < 0 || v as u64 >= vocab as u64 {
                    return Err(ModelError::Input(format!(
                        "token id {v} at [{i}, {j}] is outside the vocabulary (size {vocab})"
                    )));
                }
                row.push(v as u32);
            }
            ids.push(row);
        }
        if ids.is_empty() {
            return Tensor::zeros((0, self.config.embed_dim), DType::F32, &self.device).map_err(
                |e| ModelError::Candle {
                    context: "encode_text".into(),
                    source: e,
                },
            );
        }
        let text = self.text.as_ref().ok_or_else(|| {
            ModelError::Input("the model was loaded without its text tower".into())
        })?;
        on_pool(|| text.forward(&ids, &self.device))
    }

    /// The logit scale, `exp` of the stored `logit_scale` parameter.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// The stored `logit_scale` parameter itself (the reference's `model.logit_scale`).
    pub fn stored_logit_scale(&self) -> f32 {
        self.stored_logit_scale
    }

    /// SigLIP's `logit_bias`, added to every logit (`None` for CLIP's softmax models).
    pub fn logit_bias(&self) -> Option<f32> {
        self.logit_bias
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clip_checkpoint::{load_checkpoint, TensorData};

    fn tiny_vit() -> Checkpoint {
        load_checkpoint(&clip_fixtures::committed("models/tiny-vit.safetensors")).unwrap()
    }

    fn err(ckpt: &Checkpoint) -> String {
        ClipModel::new(ckpt, &Device::Cpu).unwrap_err().to_string()
    }

    #[test]
    fn weight_bytes_count_what_the_built_towers_hold() {
        let ckpt = tiny_vit();
        let build = |precision, towers, kernels| {
            let options = LoadOptions {
                precision,
                towers,
                kernels,
            };
            let model = ClipModel::with_options(&ckpt, &Device::Cpu, options).unwrap();
            model.weight_bytes()
        };
        // f32 on candle's GEMM holds every tensor in f32 but `logit_scale` (kept as a float) and
        // the token embedding (as stored: f16 in this fixture).
        let config = ModelConfig::infer(&ckpt.state, &ckpt.hints).unwrap();
        let bytes: usize = config
            .expected_tensors()
            .iter()
            .filter(|(name, _)| name != "logit_scale")
            .map(|(name, shape)| {
                let size = match name.as_str() {
                    "token_embedding.weight" => ckpt.state.get(name).unwrap().dtype().size(),
                    _ => 4,
                };
                size * shape.iter().product::<usize>()
            })
            .sum();
        let portable = Some(Isa::Portable);
        let f32_both = build(Precision::F32, Towers::Both, portable);
        assert_eq!(
            ckpt.state
                .get("token_embedding.weight")
                .unwrap()
                .dtype()
                .size(),
            2
        );
        assert_eq!(f32_both, bytes);
        assert_eq!(
            build(Precision::F32, Towers::Text, portable)
                + build(Precision::F32, Towers::Image, portable),
            f32_both
        );
        // Packed matrices count at their packed size: smaller in each reduced precision.
        let (bf16, int8) = (
            build(Precision::Bf16, Towers::Both, portable),
            build(Precision::Int8, Towers::Both, portable),
        );
        assert!(int8 < bf16 && bf16 < f32_both, "{int8} {bf16} {f32_both}");
    }

    #[test]
    fn model_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ClipModel>();
    }

    #[test]
    fn every_tensor_is_checked_and_errors_name_the_file() {
        let base = tiny_vit();
        let path = base.path.display().to_string();
        let with = |name: &str, t: TensorData| {
            let mut c = tiny_vit();
            c.state.insert(name, t);
            c
        };
        // A tensor deep in the vision tower, missing.
        let mut c = tiny_vit();
        c.state
            .remove("visual.transformer.resblocks.1.mlp.c_proj.bias");
        assert_eq!(
            err(&c),
            format!("{path}: missing tensor visual.transformer.resblocks.1.mlp.c_proj.bias")
        );
        // Integer weights.
        let c = with(
            "ln_final.bias",
            TensorData::owned(clip_checkpoint::DType::I64, vec![64], vec![0; 512]),
        );
        assert_eq!(
            err(&c),
            format!("{path}: tensor ln_final.bias has dtype I64, expected a floating-point type")
        );
        // Infinity.
        let mut v = vec![0.5f32; 64];
        v[3] = f32::INFINITY;
        let c = with(
            "transformer.resblocks.0.ln_2.weight",
            TensorData::from_f32(vec![64], &v),
        );
        assert_eq!(
            err(&c),
            format!("{path}: tensor transformer.resblocks.0.ln_2.weight contains infinite values")
        );
        // NaN in the token embedding, which is kept as stored (f16 here): checked on its bits.
        let mut c = tiny_vit();
        let emb = c.state.get("token_embedding.weight").unwrap();
        let (shape, mut bytes) = (emb.shape().to_vec(), emb.bytes().to_vec());
        bytes[2 * 1000..2 * 1000 + 2].copy_from_slice(&half::f16::NAN.to_le_bytes());
        c.state.insert(
            "token_embedding.weight",
            TensorData::owned(clip_checkpoint::DType::F16, shape, bytes),
        );
        assert_eq!(
            err(&c),
            format!("{path}: tensor token_embedding.weight contains NaN")
        );
        // A wrong shape that inference does not read.
        let c = with(
            "visual.class_embedding",
            TensorData::from_f32(vec![1, 128], &[0.0; 128]),
        );
        assert_eq!(
            err(&c),
            format!("{path}: tensor visual.class_embedding has shape [1, 128], expected [128]")
        );
        // logit_scale may be stored as [1]; its value is used.
        let c = with("logit_scale", TensorData::from_f32(vec![1], &[2.0f32.ln()]));
        let m = ClipModel::new(&c, &Device::Cpu).unwrap();
        assert!((m.logit_scale() - 2.0).abs() < 1e-6);
        let c = with("logit_scale", TensorData::from_f32(vec![], &[1000.0]));
        assert!(err(&c).contains("tensor logit_scale contains a value whose exponential overflows"));
    }

    #[test]
    fn empty_batches_give_empty_embeddings() {
        let m = ClipModel::new(&tiny_vit(), &Device::Cpu).unwrap();
        let px = Tensor::zeros((0, 3, 224, 224), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(m.encode_image(&px).unwrap().dims(), &[0, 32]);
        let tok = Tensor::zeros((0, 77), DType::U32, &Device::Cpu).unwrap();
        assert_eq!(m.encode_text(&tok).unwrap().dims(), &[0, 32]);
        let tok = Tensor::zeros((1, 5), DType::F32, &Device::Cpu).unwrap();
        let e = m.encode_text(&tok).unwrap_err().to_string();
        assert_eq!(
            e,
            "tokens have dtype F32, expected an integer type (u32 or i64)"
        );
    }
}
