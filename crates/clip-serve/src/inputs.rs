//! Turning request inputs into model inputs: texts are checked against the length limits, images
//! are base64-decoded, sniffed, decoded under the pixel limit and preprocessed off the async
//! runtime. Every failure is a 400 that names the input (`input[3]: ...`).

use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine;
use clip::image::{decode_bytes, DecodeOptions};
use clip::tokenizer::Overflow;
use clip::Embeddings;
use serde_json::Value;
use tokio::task::JoinHandle;

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

/// Checks a text against the character limit and the model's context length.
pub fn check_text(state: &AppState, text: &str, name: &str) -> Result<(), ApiError> {
    let chars = text.chars().count();
    if chars > state.limits.max_text_chars {
        return Err(ApiError::BadRequest(format!(
            "{name}: text of {chars} characters exceeds the limit of {}",
            state.limits.max_text_chars
        )));
    }
    state
        .clip
        .tokenize(text, Overflow::Error)
        .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))?;
    Ok(())
}

/// Starts decoding and preprocessing one base64 image on a blocking thread (images of one request
/// decode in parallel); await the result with [`pixels_of`].
pub fn spawn_pixels(
    state: &AppState,
    data: String,
    name: String,
) -> JoinHandle<Result<Vec<f32>, ApiError>> {
    let clip = state.clip.clone();
    let opts = DecodeOptions {
        max_pixels: state.limits.max_pixels,
        ..DecodeOptions::default()
    };
    tokio::task::spawn_blocking(move || {
        let bytes =
            decode_base64(&data).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))?;
        let image =
            decode_bytes(&bytes, &name, &opts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(clip.preprocess(&image))
    })
}

/// The pixels of a [`spawn_pixels`] task. A decoder panic on hostile bytes ends only that task:
/// it is reported as a bad image.
pub async fn pixels_of(task: JoinHandle<Result<Vec<f32>, ApiError>>) -> Result<Vec<f32>, ApiError> {
    task.await
        .unwrap_or_else(|_| Err(ApiError::BadRequest("image could not be decoded".into())))
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

/// L2-normalised embeddings of `items`, in order, through the batcher. Texts are validated and
/// images decoded before anything is queued, so a bad input costs no model time.
pub async fn embed(state: &AppState, items: Vec<Item>, what: &str) -> Result<Embeddings, ApiError> {
    let mut inputs = Vec::with_capacity(items.len());
    let mut pending = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let name = format!("{what}[{i}]");
        match item {
            Item::Text(text) => {
                check_text(state, &text, &name)?;
                inputs.push(Some(Input::Text(text)));
            }
            Item::Image(data) => {
                pending.push((i, spawn_pixels(state, data, name)));
                inputs.push(None);
            }
        }
    }
    for (i, task) in pending {
        inputs[i] = Some(Input::Pixels(pixels_of(task).await?));
    }
    let inputs = inputs.into_iter().flatten().collect();
    let rows = state
        .batcher
        .embed(inputs, state.limits.request_timeout)
        .await?;
    Ok(Embeddings::new(state.clip.embed_dim(), rows.concat()).normalized())
}
