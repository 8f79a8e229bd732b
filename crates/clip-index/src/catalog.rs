//! The SQLite file: the catalog of files (path, size, mtime, content hash or failure) and the
//! vectors, one per (space, content hash). Byte-identical files share a vector; a renamed file
//! finds its vector again by hash. WAL mode lets searches read while an index run writes, and
//! every batch is one transaction, so a killed run loses at most the batch in flight.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::matrix::{decode_vector, Matrix, VectorType};
use crate::{IndexError, Space};

/// blake3 of a file's bytes.
pub type ContentHash = [u8; 32];

/// How long a writer or reader waits for the other's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    path     TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash     BLOB,            -- NULL when the file could not be read or decoded
    failure  TEXT             -- why, when it could not
);
CREATE INDEX IF NOT EXISTS files_by_hash ON files(hash);
CREATE TABLE IF NOT EXISTS spaces (
    id         TEXT PRIMARY KEY,
    model      TEXT NOT NULL,
    model_path TEXT NOT NULL,
    dim        INTEGER NOT NULL,
    used_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    space TEXT NOT NULL,
    hash  BLOB NOT NULL,
    data  BLOB NOT NULL,      -- little-endian f32 or f16, told apart by length
    PRIMARY KEY (space, hash)
) WITHOUT ROWID;
";

/// `$XDG_DATA_HOME/clip-rs/index.db`, else `~/.local/share/clip-rs/index.db`.
pub fn default_db_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("clip-rs").join("index.db"))
}

/// One catalog row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The absolute path, as the walk found it (the catalog's key).
    pub path: String,
    /// Size in bytes when indexed; with `mtime_ns`, what decides whether the file is reopened.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch when indexed.
    pub mtime_ns: i64,
    /// `Ok(hash)` for an indexed file, `Err(reason)` for one that could not be read or decoded.
    pub content: Result<ContentHash, String>,
}

/// What `clip index --status` reports for one space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Files with a vector in this space (duplicates count once each).
    pub images: usize,
    /// Files that could not be read or decoded.
    pub failed: usize,
    /// The space counted, or `None` when nothing was ever indexed.
    pub space: Option<Space>,
}

/// The catalog and vectors in one SQLite file.
pub struct CatalogStore {
    conn: Connection,
    path: PathBuf,
}

impl CatalogStore {
    /// Opens (creating if needed, with its folder) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(IndexError::io(dir))?;
        }
        let conn = Connection::open(path).map_err(IndexError::db(path))?;
        let store = Self {
            conn,
            path: path.to_path_buf(),
        };
        store.conn.busy_timeout(BUSY_TIMEOUT).map_err(store.err())?;
        // WAL: readers never block the writer; NORMAL sync is durable against a killed process.
        store
            .conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(store.err())?;
        store
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(store.err())?;
        store.conn.execute_batch(SCHEMA).map_err(store.err())?;
        Ok(store)
    }

    /// The database file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> IndexError + '_ {
        IndexError::db(&self.path)
    }

    /// Records `space` as the one in use (the default for `--status` and `search`), checking that
    /// vectors already stored under its id have its dimension.
    pub fn use_space(&mut self, space: &Space) -> Result<(), IndexError> {
        let known: Option<usize> = self
            .conn
            .query_row("SELECT dim FROM spaces WHERE id = ?1", [&space.id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err())?;
        if let Some(found) = known.filter(|&d| d != space.dim) {
            return Err(IndexError::DimMismatch {
                path: self.path.clone(),
                space: space.id.clone(),
                found,
                expected: space.dim,
            });
        }
        self.conn
            .execute(
                "INSERT INTO spaces (id, model, model_path, dim, used_at) VALUES (?1, ?2, ?3, ?4, \
                 (SELECT COALESCE(MAX(used_at), 0) + 1 FROM spaces)) \
                 ON CONFLICT(id) DO UPDATE SET model = excluded.model, model_path = excluded.model_path, \
                 used_at = excluded.used_at",
                params![space.id, space.model, space.model_path.to_string_lossy(), space.dim as i64],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The space most recently indexed into, if any.
    pub fn current_space(&self) -> Result<Option<Space>, IndexError> {
        self.conn
            .query_row(
                "SELECT id, model, model_path, dim FROM spaces ORDER BY used_at DESC LIMIT 1",
                [],
                |r| {
                    Ok(Space {
                        id: r.get(0)?,
                        model: r.get(1)?,
                        model_path: PathBuf::from(r.get::<_, String>(2)?),
                        dim: r.get::<_, i64>(3)? as usize,
                    })
                },
            )
            .optional()
            .map_err(self.err())
    }

    /// The catalog row of `path`, if any.
    pub fn file(&self, path: &str) -> Result<Option<FileRow>, IndexError> {
        self.conn
            .query_row(
                "SELECT path, size, mtime_ns, hash, failure FROM files WHERE path = ?1",
                [path],
                row_to_file,
            )
            .optional()
            .map_err(self.err())
    }

    /// Every catalog row.
    pub fn files(&self) -> Result<Vec<FileRow>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, size, mtime_ns, hash, failure FROM files ORDER BY path")
            .map_err(self.err())?;
        let rows = stmt.query_map([], row_to_file).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Content hashes that already have a vector in `space`.
    pub fn hashes_in(&self, space: &str) -> Result<HashSet<ContentHash>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash FROM vectors WHERE space = ?1")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([space], |r| r.get::<_, [u8; 32]>(0))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Writes one batch atomically: new vectors for `space`, catalog rows to insert or replace,
    /// and paths to forget. A crash before the commit leaves the database as it was.
    pub fn commit(
        &mut self,
        space: &str,
        vectors: &[(ContentHash, Vec<u8>)],
        files: &[FileRow],
        removed: &[String],
    ) -> Result<(), IndexError> {
        let path = self.path.clone();
        let err = |e| IndexError::Db {
            path: path.clone(),
            source: e,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut put_vec = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO vectors (space, hash, data) VALUES (?1, ?2, ?3)",
                )
                .map_err(err)?;
            for (hash, data) in vectors {
                put_vec
                    .execute(params![space, &hash[..], data])
                    .map_err(err)?;
            }
            let mut put_file = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO files (path, size, mtime_ns, hash, failure) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for f in files {
                let (hash, failure) = match &f.content {
                    Ok(h) => (Some(&h[..]), None),
                    Err(reason) => (None, Some(reason.as_str())),
                };
                put_file
                    .execute(params![f.path, f.size as i64, f.mtime_ns, hash, failure])
                    .map_err(err)?;
            }
            let mut del = tx
                .prepare_cached("DELETE FROM files WHERE path = ?1")
                .map_err(err)?;
            for p in removed {
                del.execute([p]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Deletes vectors (of every space) whose content no catalog row has any more; returns how many.
    pub fn collect_garbage(&mut self) -> Result<usize, IndexError> {
        self.conn
            .execute("DELETE FROM vectors WHERE hash NOT IN (SELECT hash FROM files WHERE hash IS NOT NULL)", [])
            .map_err(self.err())
    }

    /// Counts for `space`, or for the current space when `None`.
    pub fn status(&self, space: Option<&Space>) -> Result<Status, IndexError> {
        let space = match space {
            Some(s) => Some(s.clone()),
            None => self.current_space()?,
        };
        let images = match &space {
            Some(s) => self
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM files f JOIN vectors v ON v.hash = f.hash AND v.space = ?1",
                    [&s.id],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(self.err())? as usize,
            None => 0,
        };
        let failed = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM files WHERE failure IS NOT NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(self.err())? as usize;
        Ok(Status {
            images,
            failed,
            space,
        })
    }

    /// `(path, reason)` of every file that could not be indexed.
    pub fn failures(&self) -> Result<Vec<(String, String)>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, failure FROM files WHERE failure IS NOT NULL ORDER BY path")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Paths of the indexed files with content `hash` (several for duplicates).
    pub fn paths_of(&self, hash: &ContentHash) -> Result<Vec<String>, IndexError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT path FROM files WHERE hash = ?1 AND failure IS NULL ORDER BY path",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([&hash[..]], |r| r.get(0))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Every vector of `space` in one contiguous matrix, with the content hash of each row.
    pub fn load_matrix(
        &self,
        space: &Space,
        ty: VectorType,
    ) -> Result<(Vec<ContentHash>, Matrix), IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash, data FROM vectors WHERE space = ?1")
            .map_err(self.err())?;
        let mut rows = stmt.query([&space.id]).map_err(self.err())?;
        let mut ids = Vec::new();
        let mut matrix = Matrix::new(space.dim, ty);
        while let Some(row) = rows.next().map_err(self.err())? {
            let hash: ContentHash = row.get(0).map_err(self.err())?;
            let data: Vec<u8> = row.get(1).map_err(self.err())?;
            let v = decode_vector(&data, space.dim).ok_or_else(|| IndexError::CorruptVector {
                path: self.path.clone(),
                hash: hex(&hash),
                len: data.len(),
                dim: space.dim,
            })?;
            matrix.push(&v);
            ids.push(hash);
        }
        Ok((ids, matrix))
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn row_to_file(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    let hash: Option<[u8; 32]> = r.get(3)?;
    let failure: Option<String> = r.get(4)?;
    Ok(FileRow {
        path: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        mtime_ns: r.get(2)?,
        content: match (hash, failure) {
            (Some(h), None) => Ok(h),
            (_, reason) => Err(reason.unwrap_or_default()),
        },
    })
}

/// The hash written as [`hex`] writes it (64 hex digits, either case); `None` for anything else.
pub fn parse_hex(id: &str) -> Option<ContentHash> {
    if id.len() != 64 || !id.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex of a hash (ids for other stores, messages).
pub fn hex(hash: &ContentHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(id: &str, dim: usize) -> Space {
        Space {
            id: id.into(),
            model: "m.safetensors".into(),
            model_path: "/models/m.safetensors".into(),
            dim,
        }
    }

    fn row(path: &str, content: Result<ContentHash, String>) -> FileRow {
        FileRow {
            path: path.into(),
            size: 10,
            mtime_ns: 5,
            content,
        }
    }

    fn open() -> (tempfile::TempDir, CatalogStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogStore::open(&dir.path().join("sub/index.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn batch_commit_counts_duplicates_and_failures() {
        let (_dir, mut store) = open();
        let s = space("a", 2);
        store.use_space(&s).unwrap();
        let blob = crate::VectorType::F32.encode(&[1.0, 0.0]);
        let files = [
            row("/p/x.png", Ok([1; 32])),
            row("/p/copy.png", Ok([1; 32])),
            row("/p/bad.png", Err("truncated".into())),
        ];
        store.commit("a", &[([1; 32], blob)], &files, &[]).unwrap();
        let st = store.status(None).unwrap();
        assert_eq!((st.images, st.failed, st.space), (2, 1, Some(s)));
        assert_eq!(
            store.paths_of(&[1; 32]).unwrap(),
            vec!["/p/copy.png", "/p/x.png"]
        );
        assert_eq!(
            store.failures().unwrap(),
            vec![("/p/bad.png".to_string(), "truncated".to_string())]
        );
        assert_eq!(store.file("/p/x.png").unwrap(), Some(files[0].clone()));
    }

    #[test]
    fn garbage_collection_keeps_shared_vectors_until_the_last_file_goes() {
        let (_dir, mut store) = open();
        let blob = crate::VectorType::F32.encode(&[1.0, 0.0]);
        store
            .commit(
                "a",
                &[([1; 32], blob)],
                &[row("/x", Ok([1; 32])), row("/y", Ok([1; 32]))],
                &[],
            )
            .unwrap();
        store.commit("a", &[], &[], &["/x".into()]).unwrap();
        assert_eq!(store.collect_garbage().unwrap(), 0);
        store.commit("a", &[], &[], &["/y".into()]).unwrap();
        assert_eq!(store.collect_garbage().unwrap(), 1);
        assert!(store.hashes_in("a").unwrap().is_empty());
    }

    #[test]
    fn spaces_never_mix_and_a_dimension_change_is_refused() {
        let (_dir, mut store) = open();
        store.use_space(&space("a", 2)).unwrap();
        store.use_space(&space("b", 3)).unwrap();
        let blob = crate::VectorType::F32.encode(&[1.0, 0.0]);
        store
            .commit("a", &[([1; 32], blob)], &[row("/x", Ok([1; 32]))], &[])
            .unwrap();
        assert_eq!(
            store.status(None).unwrap().images,
            0,
            "current space b has no vectors"
        );
        assert_eq!(store.status(Some(&space("a", 2))).unwrap().images, 1);
        let err = store.use_space(&space("a", 4)).unwrap_err().to_string();
        assert!(
            err.contains("index.db") && err.contains("2-dimensional"),
            "{err}"
        );
    }

    #[test]
    fn a_second_connection_reads_while_the_first_holds_data() {
        let (dir, mut writer) = open();
        writer.use_space(&space("a", 2)).unwrap();
        let blob = crate::VectorType::F16.encode(&[0.0, 1.0]);
        writer
            .commit("a", &[([7; 32], blob)], &[row("/z", Ok([7; 32]))], &[])
            .unwrap();
        let reader = CatalogStore::open(&dir.path().join("sub/index.db")).unwrap();
        let (ids, m) = reader
            .load_matrix(&space("a", 2), crate::VectorType::F32)
            .unwrap();
        assert_eq!((ids, m.len()), (vec![[7; 32]], 1));
    }

    #[test]
    fn an_unopenable_database_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = CatalogStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
