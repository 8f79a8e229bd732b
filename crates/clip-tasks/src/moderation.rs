//! Zero-shot content moderation: a versioned policy of categories, each a prompt ensemble with a
//! threshold, scored against image embeddings.
//!
//! Scoring (documented in docs/MODERATION.md): every category's prompts are ensembled into one
//! class embedding ([`crate::zero_shot::ensemble`]); an image's scores are the model's
//! probabilities over *all* categories, the `safe` ones included (for CLIP the softmax of
//! `logit_scale * cosine`). The safe categories
//! give the softmax somewhere to put the mass of an ordinary photo, so a non-safe category only
//! scores high when it beats them. The image is flagged when any non-safe category's score is at
//! least its threshold.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use clip::{Embeddings, Scoring};

use crate::cache::EmbeddingCache;
use crate::similarity::{cosine_matrix, logits, probabilities};
use crate::zero_shot::class_embeddings;

/// The built-in policy's TOML, also printed by `clip moderate --print-policy` as a starting point.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../policies/default.toml");

/// A policy file that could not be used; `origin` is its path (or "built-in policy").
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{origin}: cannot read policy file: {source}")]
    Io {
        /// The policy's path.
        origin: String,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML of the policy's shape (unknown keys included).
    #[error("{origin}: invalid policy TOML: {source}")]
    Parse {
        /// The policy's path, or "built-in policy".
        origin: String,
        /// The parser's error (boxed: it is large and this error travels by value).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// Well-formed TOML that breaks a rule of policies (no safe category, a missing threshold...).
    #[error("{origin}: invalid policy: {reason}")]
    Invalid {
        /// The policy's path, or "built-in policy".
        origin: String,
        /// The rule broken, naming the category.
        reason: String,
    },
}

/// One category of a policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Unique within the policy; reported with every score.
    pub name: String,
    /// Prompts ensembled into the category's embedding.
    pub prompts: Vec<String>,
    /// Score at or above which a non-safe category flags an image; absent for safe categories.
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Safe categories absorb ordinary images and never flag.
    #[serde(default)]
    pub safe: bool,
}

/// A named, versioned set of categories.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// What the policy is called; with `version`, what a verdict says it was judged by.
    pub name: String,
    /// Bumped when categories, prompts or thresholds change, so verdicts of different policy
    /// revisions are told apart.
    pub version: String,
    /// The categories in file order (`[[category]]` tables); scores are computed over all of them.
    #[serde(rename = "category")]
    pub categories: Vec<Category>,
}

impl Policy {
    /// The policy shipped with clip-rs ([`DEFAULT_POLICY_TOML`]).
    pub fn builtin() -> Policy {
        Policy::from_toml_str(DEFAULT_POLICY_TOML, "built-in policy")
            .expect("the built-in policy is valid")
    }

    /// Reads, parses and validates the policy file at `path`; errors name the path.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            origin: origin.clone(),
            source,
        })?;
        Policy::from_toml_str(&text, &origin)
    }

    /// Parses and validates a policy; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|source| PolicyError::Parse {
            origin: origin.to_string(),
            source: Box::new(source),
        })?;
        policy.validate().map_err(|reason| PolicyError::Invalid {
            origin: origin.to_string(),
            reason,
        })?;
        Ok(policy)
    }

    /// Each category's prompts, in policy order (the groups ensembled into category embeddings).
    pub fn prompt_groups(&self) -> Vec<Vec<String>> {
        self.categories.iter().map(|c| c.prompts.clone()).collect()
    }

    /// `name@version`, as printed with every verdict.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.version.trim().is_empty() {
            return Err("name and version must not be empty".into());
        }
        let mut seen = HashSet::new();
        for c in &self.categories {
            if c.name.trim().is_empty() {
                return Err("a category has an empty name".into());
            }
            if !seen.insert(c.name.as_str()) {
                return Err(format!("category {:?} appears twice", c.name));
            }
            if c.prompts.is_empty() || c.prompts.iter().any(|p| p.trim().is_empty()) {
                return Err(format!(
                    "category {:?} needs at least one non-empty prompt",
                    c.name
                ));
            }
            match (c.safe, c.threshold) {
                (true, Some(_)) => {
                    return Err(format!(
                        "safe category {:?} must not have a threshold",
                        c.name
                    ))
                }
                (false, None) => {
                    return Err(format!(
                        "category {:?} needs a threshold (or safe = true)",
                        c.name
                    ))
                }
                (false, Some(t)) if !(0.0..=1.0).contains(&t) => {
                    return Err(format!(
                        "category {:?} has threshold {t}, expected a probability in [0, 1]",
                        c.name
                    ))
                }
                _ => {}
            }
        }
        if !self.categories.iter().any(|c| c.safe) {
            return Err(
                "no safe category (safe = true): every image would be forced into a flagged one"
                    .into(),
            );
        }
        if self.categories.iter().all(|c| c.safe) {
            return Err("no category to flag: add one with a threshold".into());
        }
        Ok(())
    }
}

/// One category's score for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryScore {
    /// The category's name.
    pub name: String,
    /// The model's probability for the category: a softmax over all categories for CLIP, the
    /// category's own sigmoid for SigLIP.
    pub score: f32,
    /// `None` for safe categories.
    pub threshold: Option<f32>,
}

impl CategoryScore {
    /// Whether this score flags the image: a non-safe category at or above its threshold.
    pub fn flags(&self) -> bool {
        self.threshold.is_some_and(|t| self.score >= t)
    }
}

/// The decision for one image: its scores, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether any category flags the image.
    pub flagged: bool,
    /// Every category's score, best first.
    pub categories: Vec<CategoryScore>,
}

/// A policy with its category embeddings computed for one model.
#[derive(Debug, Clone)]
pub struct Moderator {
    policy: Policy,
    categories: Embeddings,
    scoring: Scoring,
}

impl Moderator {
    /// A moderator from ready category embeddings (one row per category, policy order: the
    /// [`ensemble`](crate::zero_shot::ensemble) of [`Policy::prompt_groups`]).
    ///
    /// # Panics
    /// If the numbers of categories and embeddings differ.
    pub fn new(policy: Policy, categories: Embeddings, scoring: Scoring) -> Self {
        assert_eq!(
            policy.categories.len(),
            categories.len(),
            "one embedding per category"
        );
        Self {
            policy,
            categories,
            scoring,
        }
    }

    /// A moderator whose category embeddings come from [`class_embeddings`] (the cache, else
    /// `embed` asked for every prompt of every category, in order).
    pub fn build<E>(
        policy: Policy,
        scoring: Scoring,
        cache: Option<&EmbeddingCache>,
        embed: impl FnOnce(&[String]) -> Result<Embeddings, E>,
    ) -> Result<Self, E> {
        let categories = class_embeddings(&policy.prompt_groups(), cache, embed)?;
        Ok(Self::new(policy, categories, scoring))
    }

    /// The policy it applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// One verdict per image embedding (raw or normalised: cosines are taken).
    pub fn moderate(&self, images: &Embeddings) -> Vec<Verdict> {
        let cosines = cosine_matrix(images, &self.categories);
        probabilities(&logits(&cosines, &self.scoring), &self.scoring)
            .into_iter()
            .map(|scores| {
                let mut categories: Vec<CategoryScore> = scores
                    .into_iter()
                    .zip(&self.policy.categories)
                    .map(|(score, c)| CategoryScore {
                        name: c.name.clone(),
                        score,
                        threshold: c.threshold,
                    })
                    .collect();
                categories.sort_by(|a, b| b.score.total_cmp(&a.score));
                Verdict {
                    flagged: categories.iter().any(CategoryScore::flags),
                    categories,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_policy_is_valid_and_covers_the_issue_categories() {
        let p = Policy::builtin();
        assert_eq!(p.id(), "clip-rs-default@1");
        let names: Vec<&str> = p.categories.iter().map(|c| c.name.as_str()).collect();
        for want in [
            "safe",
            "nudity-sexual",
            "violence-gore",
            "weapons",
            "drugs",
            "hate-symbols",
            "self-harm",
        ] {
            assert!(names.contains(&want), "{want} missing");
        }
    }

    fn invalid(text: &str) -> String {
        Policy::from_toml_str(text, "p.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_policies_say_what_is_wrong() {
        let safe = "[[category]]\nname = \"safe\"\nsafe = true\nprompts = [\"a photo\"]\n";
        let head = "name = \"t\"\nversion = \"1\"\n";
        assert!(invalid("name = ").contains("p.toml: invalid policy TOML"));
        assert!(invalid(&format!("{head}{safe}")).contains("no category to flag"));
        let no_thr = "[[category]]\nname = \"x\"\nprompts = [\"x\"]\n";
        assert!(invalid(&format!("{head}{safe}{no_thr}")).contains("\"x\" needs a threshold"));
        let high = "[[category]]\nname = \"x\"\nthreshold = 1.5\nprompts = [\"x\"]\n";
        assert!(invalid(&format!("{head}{safe}{high}")).contains("threshold 1.5"));
        assert!(
            invalid(&format!("{head}{high}")).contains("no safe category")
                || invalid(&format!("{head}{high}")).contains("1.5")
        );
        let dup = format!("{head}{safe}{safe}");
        assert!(invalid(&dup).contains("appears twice"));
        assert!(invalid(&format!(
            "{head}{safe}[[category]]\nname = \"x\"\nthreshold = 0.5\nprompts = []\n"
        ))
        .contains("prompt"));
    }

    #[test]
    fn flags_only_non_safe_categories_at_or_above_threshold() {
        let s = |threshold| CategoryScore {
            name: "x".into(),
            score: 0.5,
            threshold,
        };
        assert!(s(Some(0.5)).flags());
        assert!(!s(Some(0.6)).flags());
        assert!(!s(None).flags());
    }
}
