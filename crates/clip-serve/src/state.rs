//! What every handler shares: the model, its batcher, limits, metrics and the optional index.

use std::sync::Arc;

use clip::Clip;
use clip_tasks::moderation::{Moderator, Policy};
use clip_tasks::zero_shot::ensemble;
use tokio::sync::OnceCell;

use crate::batcher::Batcher;
use crate::error::ApiError;
use crate::inputs::{embed, Item};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::search_index::SearchIndex;

/// The state behind every handler, shared through an `Arc`.
pub struct AppState {
    /// The model, for tokenizing and preprocessing on the handlers' side of the queue.
    pub clip: Arc<Clip>,
    /// The model as the operator named it; echoed in responses' `model` field.
    pub model_name: String,
    /// The only way to the model's forward pass.
    pub batcher: Batcher,
    /// Shared with the model thread, which records batch sizes.
    pub metrics: Arc<Metrics>,
    /// What one request may ask.
    pub limits: Limits,
    /// The bearer token every non-public path requires, if any.
    pub token: Option<String>,
    /// The photo index, when `--db` was given.
    pub index: Option<SearchIndex>,
    /// Built on the first `/v1/moderate` call: the policy's prompts cost model time that startup
    /// should not pay.
    moderator: OnceCell<Arc<Moderator>>,
}

impl AppState {
    /// The state of a server; the moderator is built later, on first use.
    pub fn new(
        clip: Arc<Clip>,
        model_name: String,
        batcher: Batcher,
        metrics: Arc<Metrics>,
        limits: Limits,
        token: Option<String>,
        index: Option<SearchIndex>,
    ) -> Self {
        Self {
            clip,
            model_name,
            batcher,
            metrics,
            limits,
            token,
            index,
            moderator: OnceCell::new(),
        }
    }

    /// The built-in moderation policy, its prompts embedded through the batcher on first use.
    pub async fn moderator(&self) -> Result<Arc<Moderator>, ApiError> {
        self.moderator
            .get_or_try_init(|| async {
                let policy = Policy::builtin();
                let groups = policy.prompt_groups();
                let texts = groups.iter().flatten().cloned().map(Item::Text).collect();
                let prompts = embed(self, texts, "policy prompts").await?;
                let categories = ensemble(&groups, &prompts);
                Ok(Arc::new(Moderator::new(
                    policy,
                    categories,
                    self.clip.scoring(),
                )))
            })
            .await
            .cloned()
    }

    /// The index, or the 404 that says how to get one.
    pub fn index(&self) -> Result<&SearchIndex, ApiError> {
        self.index.as_ref().ok_or_else(|| {
            ApiError::NotFound("no --db given: start `clip serve --db <INDEX>` to search".into())
        })
    }
}
