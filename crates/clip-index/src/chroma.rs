//! A Chroma server as the vector store (HTTP API v2), so the same index and search commands work
//! against a shared deployment. The SQLite catalog stays the source of truth for which files exist
//! and what changed; [`ChromaStore::sync`] makes the collection match it (ids are content hashes,
//! metadata holds the paths). One collection holds one [`Space`]: its id is recorded in the
//! collection's metadata and checked on every connect, so models never mix there either.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::catalog::{hex, parse_hex, CatalogStore, ContentHash};
use crate::matrix::VectorType;
use crate::store::{Hit, Record, VectorStore};
use crate::{IndexError, Space};

/// Records per upsert request, and ids per page when listing the collection.
const CHUNK: usize = 500;

/// A collection on a Chroma server, holding the vectors of one space.
pub struct ChromaStore {
    /// `chroma://host:port/collection`, as the user gave it (for messages).
    url: String,
    /// `http://host:port/api/v2/tenants/default_tenant/databases/default_database/collections/<id>`.
    collection: String,
    agent: ureq::Agent,
}

/// What a sync changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Vectors sent: missing from the collection, or stored with other paths.
    pub upserted: usize,
    /// Ids removed: contents the catalog no longer has.
    pub deleted: usize,
}

impl ChromaStore {
    /// Connects to `chroma://host:port/collection`, creating the collection (cosine space) if
    /// needed; refuses a collection that holds another space's vectors.
    pub fn connect(url: &str, space: &Space) -> Result<Self, IndexError> {
        let fail = |reason: String| IndexError::Chroma {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("chroma://")
            .ok_or_else(|| fail("expected chroma://host:port/collection".into()))?;
        let (host, name) = rest
            .split_once('/')
            .ok_or_else(|| fail("no collection name after host:port".into()))?;
        if host.is_empty() || name.is_empty() {
            return Err(fail("expected chroma://host:port/collection".into()));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let base = format!(
            "http://{host}/api/v2/tenants/default_tenant/databases/default_database/collections"
        );
        let mut store = Self {
            url: url.to_owned(),
            collection: String::new(),
            agent,
        };
        let body = json!({
            "name": name,
            "get_or_create": true,
            "metadata": {"clip_space": space.id, "clip_model": space.model},
            "configuration": {"hnsw": {"space": "cosine"}},
        });
        let created = store.call("POST", &base, Some(body))?;
        let found = created["metadata"]["clip_space"]
            .as_str()
            .unwrap_or_default();
        if found != space.id {
            return Err(fail(format!(
                "collection {name} holds vectors of model space {found:?}, not {} ({}): use another collection",
                space.id, space.model
            )));
        }
        let id = created["id"]
            .as_str()
            .ok_or_else(|| fail("the server returned no collection id".into()))?;
        store.collection = format!("{base}/{id}");
        Ok(store)
    }

    /// Makes the collection hold exactly the vectors of `space` in `catalog`, with current paths:
    /// upserts what is missing or whose paths changed, deletes what the catalog no longer has.
    pub fn sync(
        &mut self,
        catalog: &CatalogStore,
        space: &Space,
    ) -> Result<SyncReport, IndexError> {
        let remote = self.list()?;
        let loaded = catalog.load_matrix(space, VectorType::F32)?;
        let (ids, matrix) = (loaded.hashes, loaded.matrix);
        let mut report = SyncReport::default();
        let mut batch = Vec::new();
        let mut local = std::collections::HashSet::new();
        for (row, hash) in ids.iter().enumerate() {
            let paths = catalog.paths_of(hash)?;
            local.insert(hex(hash));
            if remote.get(&hex(hash)) != Some(&paths.join("\n")) {
                batch.push(Record {
                    hash: *hash,
                    vector: matrix.row(row),
                    paths,
                });
            }
            if batch.len() == CHUNK {
                report.upserted += batch.len();
                self.upsert(&std::mem::take(&mut batch))?;
            }
        }
        report.upserted += batch.len();
        self.upsert(&batch)?;
        let stale: Vec<String> = remote
            .into_keys()
            .filter(|id| !local.contains(id))
            .collect();
        for chunk in stale.chunks(CHUNK) {
            self.call(
                "POST",
                &format!("{}/delete", self.collection),
                Some(json!({ "ids": chunk })),
            )?;
        }
        report.deleted = stale.len();
        Ok(report)
    }

    /// Every id in the collection with its `paths` metadata.
    fn list(&self) -> Result<HashMap<String, String>, IndexError> {
        let mut all = HashMap::new();
        loop {
            let body = json!({"include": ["metadatas"], "limit": CHUNK, "offset": all.len()});
            let page = self.call("POST", &format!("{}/get", self.collection), Some(body))?;
            let ids = page["ids"].as_array().cloned().unwrap_or_default();
            let metas = page["metadatas"].as_array().cloned().unwrap_or_default();
            for (i, id) in ids.iter().enumerate() {
                let paths = metas
                    .get(i)
                    .and_then(|m| m["paths"].as_str())
                    .unwrap_or_default();
                all.insert(id.as_str().unwrap_or_default().to_owned(), paths.to_owned());
            }
            if ids.len() < CHUNK {
                return Ok(all);
            }
        }
    }

    /// One request; a transport error or an error status becomes an error naming the server.
    fn call(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value, IndexError> {
        let request = self.agent.request(method, url);
        let response = match body {
            Some(b) => request.send_json(b),
            None => request.call(),
        };
        let fail = |reason: String| IndexError::Chroma {
            url: self.url.clone(),
            reason,
        };
        match response {
            Ok(r) => r
                .into_json()
                .map_err(|e| fail(format!("unreadable response: {e}"))),
            Err(ureq::Error::Status(code, r)) => Err(fail(format!(
                "server answered {code}: {}",
                r.into_string().unwrap_or_default()
            ))),
            Err(e) => Err(fail(format!("cannot reach the server: {e}"))),
        }
    }
}

impl VectorStore for ChromaStore {
    fn upsert(&mut self, records: &[Record]) -> Result<(), IndexError> {
        for chunk in records.chunks(CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|r| hex(&r.hash)).collect();
            let embeddings: Vec<&[f32]> = chunk.iter().map(|r| r.vector.as_slice()).collect();
            let metadatas: Vec<Value> = chunk
                .iter()
                .map(|r| json!({"paths": r.paths.join("\n")}))
                .collect();
            let body = json!({"ids": ids, "embeddings": embeddings, "metadatas": metadatas});
            self.call("POST", &format!("{}/upsert", self.collection), Some(body))?;
        }
        Ok(())
    }

    fn delete(&mut self, ids: &[ContentHash]) -> Result<(), IndexError> {
        for chunk in ids.chunks(CHUNK) {
            let ids: Vec<String> = chunk.iter().map(hex).collect();
            self.call(
                "POST",
                &format!("{}/delete", self.collection),
                Some(json!({ "ids": ids })),
            )?;
        }
        Ok(())
    }

    /// Chroma's HNSW index: approximate for large collections. Scores are `1 - cosine distance`.
    fn search(&self, query: &[f32], k: usize, threshold: f32) -> Result<Vec<Hit>, IndexError> {
        let n = self.count()?.min(k);
        if n == 0 {
            return Ok(Vec::new());
        }
        let body = json!({"query_embeddings": [query], "n_results": n, "include": ["distances", "metadatas"]});
        let r = self.call("POST", &format!("{}/query", self.collection), Some(body))?;
        let ids = r["ids"][0].as_array().cloned().unwrap_or_default();
        let mut hits = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let hash = id
                .as_str()
                .and_then(parse_hex)
                .ok_or_else(|| IndexError::Chroma {
                    url: self.url.clone(),
                    reason: format!("unexpected id {id} in the collection"),
                })?;
            let score = 1.0 - r["distances"][0][i].as_f64().unwrap_or(2.0) as f32;
            let paths = r["metadatas"][0][i]["paths"].as_str().unwrap_or_default();
            if score >= threshold {
                hits.push(Hit {
                    hash,
                    score,
                    paths: paths.lines().map(str::to_owned).collect(),
                });
            }
        }
        Ok(hits)
    }

    fn count(&self) -> Result<usize, IndexError> {
        let n = self.call("GET", &format!("{}/count", self.collection), None)?;
        Ok(n.as_u64().unwrap_or(0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_bad_urls_are_refused() {
        let h = [0xab; 32];
        assert_eq!(parse_hex(&hex(&h)), Some(h));
        assert_eq!(parse_hex("zz"), None);
        let space = Space {
            id: "s".into(),
            model: "m".into(),
            model_path: "/m".into(),
            dim: 2,
        };
        for bad in ["http://x/y", "chroma://hostonly", "chroma:///c"] {
            let err = ChromaStore::connect(bad, &space).err().unwrap().to_string();
            assert!(err.starts_with(bad), "{err}");
        }
    }
}
