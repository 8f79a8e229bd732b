//! What every handler shares: the model, its batcher, limits, the decode budget, metrics, the
//! moderation policy and the optional index (reloaded when the database changes).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use clip::Clip;
use clip_tasks::moderation::{Moderator, Policy};
use clip_tasks::zero_shot::ensemble;
use tokio::sync::OnceCell;

use crate::batcher::Batcher;
use crate::decode::DecodeBudget;
use crate::error::ApiError;
use crate::inputs::{embed, Item, Long};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::search_index::SearchIndex;

/// The photo index and where it comes from, so it can be loaded again when `clip index` changes
/// the database.
pub struct IndexSlot {
    db: PathBuf,
    loaded: RwLock<Loaded>,
}

/// The index as last loaded, with the database's modification time then.
struct Loaded {
    index: Arc<SearchIndex>,
    stamp: Option<SystemTime>,
}

/// The latest modification time of the database and its write-ahead log (a committed index run
/// changes one of them).
fn stamp(db: &std::path::Path) -> Option<SystemTime> {
    let wal = {
        let mut name = db.as_os_str().to_owned();
        name.push("-wal");
        PathBuf::from(name)
    };
    [db.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max()
}

impl IndexSlot {
    /// Loads the index at `db` for `clip`.
    pub fn open(db: PathBuf, clip: &Clip) -> Result<Self, clip_index::IndexError> {
        let stamp = stamp(&db);
        let index = Arc::new(SearchIndex::open(&db, clip)?);
        Ok(Self {
            db,
            loaded: RwLock::new(Loaded { index, stamp }),
        })
    }

    /// The index as loaded now.
    pub fn current(&self) -> Arc<SearchIndex> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .index
            .clone()
    }

    /// Loads the index again if the database changed since (or always, with `force`); searches
    /// keep the old one until the new one is ready. Returns how many images it now holds.
    pub fn reload(&self, clip: &Clip, force: bool) -> Result<usize, clip_index::IndexError> {
        let now = stamp(&self.db);
        {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            if !force && loaded.stamp == now {
                return Ok(loaded.index.len());
            }
        }
        let index = Arc::new(SearchIndex::open(&self.db, clip)?);
        let len = index.len();
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Loaded { index, stamp: now };
        Ok(len)
    }
}

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
    /// Pixels being decoded at once across all requests.
    pub decode_budget: DecodeBudget,
    /// The bearer token every non-public path requires, if any.
    pub token: Option<String>,
    /// `Host` header values answered besides loopback ones (lower case, with or without port).
    pub allowed_hosts: Vec<String>,
    /// The photo index, when `--db` was given.
    pub index: Option<IndexSlot>,
    /// The policy of `/v1/moderate`.
    policy: Policy,
    /// Built on the first `/v1/moderate` call: the policy's prompts cost model time that startup
    /// should not pay.
    moderator: OnceCell<Arc<Moderator>>,
}

/// Everything [`AppState::new`] takes besides the model and its batcher.
pub struct StateParts {
    /// The model as the operator named it.
    pub model_name: String,
    /// Shared with the model thread.
    pub metrics: Arc<Metrics>,
    /// Request, decode and connection limits.
    pub limits: Limits,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// Extra `Host` values to answer.
    pub allowed_hosts: Vec<String>,
    /// The photo index, if any.
    pub index: Option<IndexSlot>,
    /// The moderation policy.
    pub policy: Policy,
}

impl AppState {
    /// The state of a server; the moderator is built later, on first use.
    pub fn new(clip: Arc<Clip>, batcher: Batcher, parts: StateParts) -> Self {
        Self {
            clip,
            model_name: parts.model_name,
            batcher,
            metrics: parts.metrics,
            decode_budget: DecodeBudget::new(parts.limits.decode_budget_pixels),
            limits: parts.limits,
            token: parts.token,
            allowed_hosts: parts
                .allowed_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            index: parts.index,
            policy: parts.policy,
            moderator: OnceCell::new(),
        }
    }

    /// The moderation policy, its prompts embedded through the batcher on first use (over-long
    /// prompts truncated, as `clip moderate` does).
    pub async fn moderator(&self) -> Result<Arc<Moderator>, ApiError> {
        self.moderator
            .get_or_try_init(|| async {
                let groups = self.policy.prompt_groups();
                let texts = groups.iter().flatten().cloned().map(Item::Text).collect();
                let prompts = embed(self, texts, "policy prompts", Long::Truncate).await?;
                let categories = ensemble(&groups, &prompts);
                Ok(Arc::new(Moderator::new(
                    self.policy.clone(),
                    categories,
                    self.clip.scoring(),
                )))
            })
            .await
            .cloned()
    }

    /// The index, or the 404 that says how to get one.
    pub fn index(&self) -> Result<Arc<SearchIndex>, ApiError> {
        self.index.as_ref().map(IndexSlot::current).ok_or_else(|| {
            ApiError::NotFound("no --db given: start `clip serve --db <INDEX>` to search".into())
        })
    }
}
