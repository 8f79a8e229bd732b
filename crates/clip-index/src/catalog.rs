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

/// Added to databases made before it: 8 bytes of BLAKE3 over the content hash and the vector's
/// bytes, so a vector changed on disk (flipped bits pass SQLite's own checks) is caught. NULL in
/// rows written before the column existed (they get the length, finiteness and norm checks).
const CHECKSUM_COLUMN: &str = "ALTER TABLE vectors ADD COLUMN checksum BLOB";

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
    /// Stored vectors of the space whose bytes are damaged (left out of searches; the next
    /// `clip index` run embeds their content again).
    pub damaged: usize,
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
    /// Opens an existing index for reading only (`clip search`, `clip index --status`, the
    /// server): a missing file is an error naming it, never a new empty database, and an index
    /// in a read-only folder can still be searched.
    pub fn open_read_only(path: &Path) -> Result<Self, IndexError> {
        use rusqlite::OpenFlags;
        if !path.is_file() {
            return Err(IndexError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such index (run `clip index <DIR> --db` with this path first)",
                ),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let uri = |extra: &str| {
            let mut encoded = String::from("file:");
            for b in path.as_os_str().as_encoded_bytes() {
                match b {
                    b'%' | b'?' | b'#' => encoded.push_str(&format!("%{b:02X}")),
                    _ => encoded.push(*b as char),
                }
            }
            format!("{encoded}?mode=ro{extra}")
        };
        // A WAL database needs its shared-memory file; in a folder we may not write that fails,
        // and the file is then read as immutable (no writer can be running there either).
        let conn = Connection::open_with_flags(uri(""), flags)
            .and_then(|c| {
                c.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))
                    .map(|_| c)
            })
            .or_else(|_| Connection::open_with_flags(uri("&immutable=1"), flags))
            .map_err(IndexError::db(path))?;
        let store = Self {
            conn,
            path: path.to_path_buf(),
        };
        store.conn.busy_timeout(BUSY_TIMEOUT).map_err(store.err())?;
        let tables: i64 = store
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('files', 'vectors', 'spaces')",
                [],
                |r| r.get(0),
            )
            .map_err(store.err())?;
        if tables < 3 {
            return Err(IndexError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a clip-rs index (no catalog tables; an index run may be creating it)",
                ),
            });
        }
        Ok(store)
    }

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
        if !store.has_checksums()? {
            store
                .conn
                .execute_batch(CHECKSUM_COLUMN)
                .map_err(store.err())?;
        }
        Ok(store)
    }

    /// Whether the vectors table has the checksum column (databases made before it do not).
    fn has_checksums(&self) -> Result<bool, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM pragma_table_info('vectors')")
            .map_err(self.err())?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err())?;
        Ok(names.iter().any(|n| n == "checksum"))
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

    /// Content hashes that have a sound vector in `space` (length, checksum, finite values,
    /// unit norm): content whose stored vector is damaged is left out, so the next index run
    /// embeds it again and replaces the bad row.
    pub fn hashes_in(&self, space: &Space) -> Result<HashSet<ContentHash>, IndexError> {
        let mut good = HashSet::new();
        self.scan_vectors(space, |hash, vector| {
            if vector.is_ok() {
                good.insert(hash);
            }
        })?;
        Ok(good)
    }

    /// Calls `f` with every vector row of `space`: its content hash and its values, or why the
    /// stored bytes are not a usable vector.
    fn scan_vectors(
        &self,
        space: &Space,
        mut f: impl FnMut(ContentHash, Result<Vec<f32>, &'static str>),
    ) -> Result<(), IndexError> {
        let checksums = self.has_checksums()?;
        let sql = if checksums {
            "SELECT hash, data, checksum FROM vectors WHERE space = ?1"
        } else {
            "SELECT hash, data, NULL FROM vectors WHERE space = ?1"
        };
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let mut rows = stmt.query([&space.id]).map_err(self.err())?;
        while let Some(row) = rows.next().map_err(self.err())? {
            let hash: Vec<u8> = row.get(0).map_err(self.err())?;
            let Ok(hash) = ContentHash::try_from(hash.as_slice()) else {
                continue; // not a row of ours: no content can ever match it
            };
            let data: Vec<u8> = row.get(1).map_err(self.err())?;
            let checksum: Option<Vec<u8>> = row.get(2).map_err(self.err())?;
            f(
                hash,
                check_vector(&hash, &data, checksum.as_deref(), space.dim),
            );
        }
        Ok(())
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
                    "INSERT OR REPLACE INTO vectors (space, hash, data, checksum) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err)?;
            for (hash, data) in vectors {
                put_vec
                    .execute(params![space, &hash[..], data, &checksum(hash, data)[..]])
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
        let mut damaged = 0;
        if let Some(s) = &space {
            self.scan_vectors(s, |_, v| damaged += usize::from(v.is_err()))?;
        }
        Ok(Status {
            damaged,
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

    /// Every sound vector of `space` in one contiguous matrix, with the content hash of each
    /// row, and the damaged rows left out (their hashes and why), for the caller to report.
    pub fn load_matrix(&self, space: &Space, ty: VectorType) -> Result<LoadedMatrix, IndexError> {
        let mut loaded = LoadedMatrix {
            hashes: Vec::new(),
            matrix: Matrix::new(space.dim.max(1), ty),
            damaged: Vec::new(),
        };
        self.scan_vectors(space, |hash, vector| match vector {
            Ok(v) => {
                loaded.matrix.push(&v);
                loaded.hashes.push(hash);
            }
            Err(reason) => loaded.damaged.push((hash, reason)),
        })?;
        Ok(loaded)
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

/// The vectors of a space as [`CatalogStore::load_matrix`] reads them.
pub struct LoadedMatrix {
    /// The content hash of each row of `matrix`.
    pub hashes: Vec<ContentHash>,
    /// The sound vectors.
    pub matrix: Matrix,
    /// Rows left out: their content hash and what is wrong with the stored bytes.
    pub damaged: Vec<(ContentHash, &'static str)>,
}

/// The stored checksum of a vector row: 8 bytes of BLAKE3 over its content hash and bytes.
fn checksum(hash: &ContentHash, data: &[u8]) -> [u8; 8] {
    let mut h = blake3::Hasher::new();
    h.update(hash);
    h.update(data);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize().as_bytes()[..8]);
    out
}

/// Stored vectors are L2-normalised; f16 storage rounds the norm by well under this.
const NORM_TOLERANCE: f32 = 0.01;

/// The values of a stored vector, or why its bytes are not a usable one: the wrong length for
/// `dim` (neither f32 nor f16), a checksum that does not match, a value that is not finite, or a
/// norm away from 1 (vectors are stored normalised: a 1e30 vector would outrank every image).
pub(crate) fn check_vector(
    hash: &ContentHash,
    data: &[u8],
    stored: Option<&[u8]>,
    dim: usize,
) -> Result<Vec<f32>, &'static str> {
    let v = decode_vector(data, dim).ok_or("the stored vector has the wrong length")?;
    if let Some(stored) = stored {
        if stored != checksum(hash, data) {
            return Err("the stored vector does not match its checksum");
        }
    }
    if !v.iter().all(|x| x.is_finite()) {
        return Err("the stored vector holds a value that is not a finite number");
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if (norm - 1.0).abs() > NORM_TOLERANCE {
        return Err("the stored vector is not normalised");
    }
    Ok(v)
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
        assert!(store.hashes_in(&space("a", 2)).unwrap().is_empty());
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
        let loaded = reader
            .load_matrix(&space("a", 2), crate::VectorType::F32)
            .unwrap();
        assert_eq!((loaded.hashes, loaded.matrix.len()), (vec![[7; 32]], 1));
    }

    #[test]
    fn damaged_vectors_are_left_out_reported_and_not_counted_as_known() {
        let (dir, mut store) = open();
        let s = space("a", 2);
        store.use_space(&s).unwrap();
        let good = crate::VectorType::F32.encode(&[0.6, 0.8]);
        store
            .commit(
                "a",
                &[
                    ([1; 32], good.clone()),
                    ([2; 32], good.clone()),
                    ([3; 32], good.clone()),
                ],
                &[
                    row("/1", Ok([1; 32])),
                    row("/2", Ok([2; 32])),
                    row("/3", Ok([3; 32])),
                ],
                &[],
            )
            .unwrap();
        // Damage rows behind the store's back, as a disk or another program could.
        let raw = Connection::open(dir.path().join("sub/index.db")).unwrap();
        // A 7-byte blob.
        raw.execute(
            "UPDATE vectors SET data = x'00010203040506' WHERE hash = ?1",
            [&[2u8; 32][..]],
        )
        .unwrap();
        // One flipped bit: the length and the norm may still look fine; the checksum does not.
        let mut flipped = good.clone();
        flipped[3] ^= 0x01;
        raw.execute(
            "UPDATE vectors SET data = ?1 WHERE hash = ?2",
            params![flipped, &[3u8; 32][..]],
        )
        .unwrap();
        // A huge vector written without a checksum (as before checksums existed).
        let huge = crate::VectorType::F32.encode(&[1e30, 0.0]);
        store
            .conn
            .execute(
                "INSERT INTO vectors (space, hash, data, checksum) VALUES ('a', ?1, ?2, NULL)",
                params![&[4u8; 32][..], huge],
            )
            .unwrap();
        store
            .commit("a", &[], &[row("/4", Ok([4; 32]))], &[])
            .unwrap();
        let loaded = store.load_matrix(&s, crate::VectorType::F32).unwrap();
        assert_eq!(loaded.hashes, vec![[1; 32]]);
        let mut reasons: Vec<&str> = loaded.damaged.iter().map(|(_, r)| *r).collect();
        reasons.sort();
        assert_eq!(
            reasons,
            vec![
                "the stored vector does not match its checksum",
                "the stored vector has the wrong length",
                "the stored vector is not normalised",
            ]
        );
        assert_eq!(store.hashes_in(&s).unwrap(), HashSet::from([[1u8; 32]]));
        assert_eq!(store.status(Some(&s)).unwrap().damaged, 3);
    }

    #[test]
    fn read_only_opens_never_create_and_work_in_read_only_folders() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("typo/new.db");
        let err = CatalogStore::open_read_only(&missing)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("typo/new.db") && err.contains("no such index"),
            "{err}"
        );
        assert!(!dir.path().join("typo").exists(), "a folder was created");
        let (dir, mut store) = open();
        store.use_space(&space("a", 2)).unwrap();
        drop(store);
        let db = dir.path().join("sub/index.db");
        let folder = dir.path().join("sub");
        // Without its WAL files and unable to make the shared-memory one, as in a folder nobody
        // may write to (a folder in its place stops even root, whom permissions do not).
        for extra in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(folder.join(format!("index.db{extra}")));
        }
        std::fs::create_dir(folder.join("index.db-shm")).unwrap();
        let reader = CatalogStore::open_read_only(&db).unwrap();
        assert_eq!(reader.current_space().unwrap().unwrap().id, "a");
    }

    #[test]
    fn an_unopenable_database_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = CatalogStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
