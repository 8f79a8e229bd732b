//! Helpers shared by the integration tests: scratch folders and a tiny pickle writer that emits
//! what `torch.save` emits for a state dict (protocol 2), so the torch readers can be tested on
//! layouts the fixtures do not cover (deflated entries, strided views, legacy files).

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

/// A scratch folder removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("clip-checkpoint-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One tensor record: a view (`offset`, `size`, `stride`, in elements) of storage `key`.
pub struct Record<'a> {
    pub name: &'a str,
    pub storage_type: &'a str,
    pub key: &'a str,
    pub storage_numel: usize,
    pub offset: usize,
    pub size: &'a [usize],
    pub stride: &'a [usize],
}

fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn int(out: &mut Vec<u8>, i: usize) {
    out.push(b'J');
    out.extend((i as i32).to_le_bytes());
}

fn ints(out: &mut Vec<u8>, v: &[usize]) {
    out.push(b'(');
    v.iter().for_each(|&i| int(out, i));
    out.push(b't');
}

/// `torch.save({name: tensor, ...})`'s data.pkl; `wrap` nests it as `{wrap: {...}}`, `legacy`
/// writes the 6-item persistent ids of the pre-zip format.
pub fn state_dict_pickle(records: &[Record], wrap: Option<&str>, legacy: bool) -> Vec<u8> {
    let mut p = b"\x80\x02".to_vec();
    if let Some(key) = wrap {
        p.push(b'}');
        unicode(&mut p, key);
    }
    p.extend(b"}(");
    for r in records {
        unicode(&mut p, r.name);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        unicode(&mut p, "storage");
        p.extend(format!("ctorch\n{}\n", r.storage_type).as_bytes());
        unicode(&mut p, r.key);
        unicode(&mut p, "cpu");
        int(&mut p, r.storage_numel);
        if legacy {
            p.push(b'N');
        }
        p.extend(b"tQ");
        int(&mut p, r.offset);
        ints(&mut p, r.size);
        ints(&mut p, r.stride);
        p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    p.push(b'u');
    if wrap.is_some() {
        p.push(b's');
    }
    p.push(b'.');
    p
}

/// A legacy (pre-zip) `torch.save` file: magic, protocol, sys info, the object, the keys, then
/// each storage as u64 element count + bytes.
pub fn legacy_file(path: &Path, records: &[Record], storages: &[(&str, usize, Vec<u8>)]) {
    let mut f = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    f.extend(b"\x80\x02M\xe9\x03.");
    f.extend(b"\x80\x02}");
    unicode(&mut f, "little_endian");
    f.extend(b"\x88s.");
    f.extend(state_dict_pickle(records, None, true));
    f.extend(b"\x80\x02](");
    storages.iter().for_each(|(k, _, _)| unicode(&mut f, k));
    f.extend(b"e.");
    for (_, numel, bytes) in storages {
        f.extend((*numel as u64).to_le_bytes());
        f.extend(bytes);
    }
    std::fs::write(path, f).unwrap();
}

/// A torch zip: `archive/data.pkl`, `archive/byteorder` and `archive/data/<key>` records, each
/// stored or deflated as asked.
pub fn torch_zip(path: &Path, pickle: &[u8], storages: &[(&str, Vec<u8>)], deflate: bool) {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = SimpleFileOptions::default().compression_method(method);
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    z.start_file("archive/data.pkl", options).unwrap();
    z.write_all(pickle).unwrap();
    z.start_file("archive/byteorder", options).unwrap();
    z.write_all(b"little").unwrap();
    for (key, bytes) in storages {
        z.start_file(format!("archive/data/{key}"), options)
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
