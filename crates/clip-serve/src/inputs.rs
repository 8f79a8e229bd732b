//! Turning request inputs into model inputs: texts are checked against the length limits;
//! images are base64-decoded, their sizes read from their headers (each under the pixel limit,
//! all of them under the request's pixel total), then decoded and preprocessed off the async
//! runtime, a few at a time, each holding its share of the server's decode budget
//! ([`crate::decode::DecodeBudget`]). A bad input is a 400 that names it (`input[3]: ...`).

use std::sync::Arc;

use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine;
use clip::image::{probe, DecodeOptions};
use clip::tokenizer::Overflow;
use clip::Embeddings;
use clip_tasks::pipeline::{prepare_image, ImageSource};
use serde_json::Value;

use crate::batcher::Input;
use crate::error::ApiError;
use crate::state::AppState;

/// Standard base64, padding optional (clients differ on it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One input as the client sent it.
pub enum Item {
    /// A text to embed.
    Text(String),
    /// Base64 (or a data URL) of an image file.
    Image(String),
}

impl Item {
    /// A string is a text unless it is a `data:` URL; `{"image": "..."}` is an image and
    /// `{"text": "..."}` a text.
    pub fn parse(value: &Value, name: &str) -> Result<Item, ApiError> {
        match value {
            Value::String(s) if s.starts_with("data:") => Ok(Item::Image(s.clone())),
            Value::String(s) => Ok(Item::Text(s.clone())),
            Value::Object(map) => match (map.get("image"), map.get("text")) {
                (Some(Value::String(b64)), None) => Ok(Item::Image(b64.clone())),
                (None, Some(Value::String(text))) => Ok(Item::Text(text.clone())),
                _ => Err(ApiError::BadRequest(format!(
                    "{name}: expected {{\"image\": \"<base64 or data URL>\"}} or {{\"text\": \"...\"}}"
                ))),
            },
            _ => Err(ApiError::BadRequest(format!(
                "{name}: expected a string or an {{\"image\": ...}} object (token arrays are not supported)"
            ))),
        }
    }

    /// An image field: base64 or a data URL, as a string or `{"image": ...}`.
    pub fn parse_image(value: &Value, name: &str) -> Result<Item, ApiError> {
        match value {
            Value::String(s) => Ok(Item::Image(s.clone())),
            Value::Object(map) => match map.get("image") {
                Some(Value::String(s)) => Ok(Item::Image(s.clone())),
                _ => Err(ApiError::BadRequest(format!(
                    "{name}: expected {{\"image\": \"<base64 or data URL>\"}}"
                ))),
            },
            _ => Err(ApiError::BadRequest(format!(
                "{name}: expected a base64 string or data URL"
            ))),
        }
    }
}

/// Refuses an empty list or one longer than the limit.
pub fn check_count(state: &AppState, n: usize, what: &str) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::BadRequest(format!("no {what} given")));
    }
    if n > state.limits.max_inputs {
        return Err(ApiError::BadRequest(format!(
            "too many {what}: {n} (at most {})",
            state.limits.max_inputs
        )));
    }
    Ok(())
}

/// How an over-long text is treated: refused (embeddings, search) or cut to the context
/// (classify and moderation prompts, as `clip classify` cuts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Long {
    /// A text over the context is a 400 naming it.
    Refuse,
    /// A text over the context is truncated, as the reference's `truncate=True` does.
    Truncate,
}

/// Checks a text against the character limit and, for [`Long::Refuse`], the model's context
/// length.
pub fn check_text(state: &AppState, text: &str, name: &str, long: Long) -> Result<(), ApiError> {
    let chars = text.chars().count();
    if chars > state.limits.max_text_chars {
        return Err(ApiError::BadRequest(format!(
            "{name}: text of {chars} characters exceeds the limit of {}",
            state.limits.max_text_chars
        )));
    }
    if long == Long::Refuse {
        state
            .clip
            .tokenize(text, Overflow::Error)
            .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))?;
    }
    Ok(())
}

fn decode_base64(data: &str) -> Result<Vec<u8>, String> {
    let payload = match data.strip_prefix("data:") {
        Some(rest) => {
            let (header, payload) = rest.split_once(',').ok_or("data URL without a comma")?;
            if !header.ends_with(";base64") {
                return Err("data URL is not base64-encoded (expected ;base64,)".into());
            }
            payload
        }
        None => data,
    };
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    BASE64
        .decode(compact)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// The decoding options of request images: the server's pixel limit, the reference's pixels.
fn decode_options(state: &AppState) -> DecodeOptions {
    DecodeOptions {
        max_pixels: state.limits.max_pixels,
        ..DecodeOptions::default()
    }
}

/// The preprocessed pixels of the images of one request, in order. Sizes are read from the
/// headers first: an image over the pixel limit is a 400, a request over the pixel total a 413,
/// both before any decoding. Then at most `decode_parallelism` images decode at a time, each
/// waiting for its share of the decode budget (503 when the server stays too busy for the
/// request's time limit).
pub async fn decode_images(
    state: &AppState,
    images: Vec<(String, String)>,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let opts = decode_options(state);
    let mut sized = Vec::with_capacity(images.len());
    let mut total: u64 = 0;
    for (name, data) in images {
        let bytes =
            decode_base64(&data).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))?;
        let (w, h) =
            probe(&bytes, &name, &opts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let pixels = u64::from(w) * u64::from(h);
        total = total.saturating_add(pixels);
        sized.push((name, bytes, pixels));
    }
    if total > state.limits.max_request_pixels {
        return Err(ApiError::TooLarge(format!(
            "the request's images hold {total} pixels together, over the limit of {} (send fewer or smaller images per request)",
            state.limits.max_request_pixels
        )));
    }
    let per_request = Arc::new(tokio::sync::Semaphore::new(state.limits.decode_parallelism));
    // A JoinSet aborts what has not run when the request is dropped (client gone, time out).
    let mut tasks = tokio::task::JoinSet::new();
    let count = sized.len();
    for (i, (name, bytes, pixels)) in sized.into_iter().enumerate() {
        let (per_request, budget, clip) = (
            per_request.clone(),
            state.decode_budget.clone(),
            state.clip.clone(),
        );
        tasks.spawn(async move {
            let decoded = async {
                let _turn = per_request
                    .acquire_owned()
                    .await
                    .map_err(|_| ApiError::Internal("decoder queue closed".into()))?;
                let _share = budget.acquire(pixels).await?;
                let source = ImageSource::Bytes { name, bytes };
                tokio::task::spawn_blocking(move || {
                    prepare_image(&source, clip.preprocessing(), &opts)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))
                })
                .await
                .map_err(|_| ApiError::Internal("image decoding failed".into()))?
            };
            (i, decoded.await)
        });
    }
    let all = async {
        let mut out: Vec<Option<Vec<f32>>> = vec![None; count];
        while let Some(joined) = tasks.join_next().await {
            let (i, pixels) =
                joined.map_err(|_| ApiError::Internal("image decoding failed".into()))?;
            out[i] = Some(pixels?);
        }
        Ok(out.into_iter().flatten().collect())
    };
    match tokio::time::timeout(state.limits.request_timeout, all).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::Busy(
            "the server is decoding too many images to take these in time: retry later".into(),
        )),
    }
}

/// The L2-normalised embeddings of a request's `images` field (each base64, a data URL or
/// `{"image": ...}`), in order; errors name `images[i]`.
pub async fn embed_images(state: &AppState, images: &[Value]) -> Result<Embeddings, ApiError> {
    let items = images
        .iter()
        .enumerate()
        .map(|(i, v)| Item::parse_image(v, &format!("images[{i}]")))
        .collect::<Result<_, _>>()?;
    embed(state, items, "images", Long::Refuse).await
}

/// L2-normalised embeddings of `items`, in order, through the batcher. Texts are validated and
/// images decoded before anything is queued, so a bad input costs no model time.
pub async fn embed(
    state: &AppState,
    items: Vec<Item>,
    what: &str,
    long: Long,
) -> Result<Embeddings, ApiError> {
    let mut inputs: Vec<Option<Input>> = Vec::with_capacity(items.len());
    let mut images = Vec::new();
    let mut slots = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let name = format!("{what}[{i}]");
        match item {
            Item::Text(text) => {
                check_text(state, &text, &name, long)?;
                inputs.push(Some(Input::Text(text)));
            }
            Item::Image(data) => {
                images.push((name, data));
                slots.push(i);
                inputs.push(None);
            }
        }
    }
    for (i, pixels) in slots.into_iter().zip(decode_images(state, images).await?) {
        inputs[i] = Some(Input::Pixels(pixels));
    }
    let inputs = inputs.into_iter().flatten().collect();
    let rows = state
        .batcher
        .embed(inputs, state.limits.request_timeout)
        .await?;
    Ok(Embeddings::new(state.clip.embed_dim(), rows.concat()).normalized())
}
