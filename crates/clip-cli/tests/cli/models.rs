//! Models by name, end to end through the real `clip` binary: the registry is pointed at a real
//! HTTP server on loopback (by `--registry`, `CLIP_REGISTRY` or `CLIP_MIRROR`) and the cache at a
//! temporary folder; nothing here touches the network beyond 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::*;
use clip_fixtures::{committed, reference};
use clip_hub::test_server::{sha256_hex, Route, TestServer};
use serde_json::Value;
use tempfile::TempDir;

const TINY_SHA: &str = "9a6fbba57ad1ce97fd6979e2a822bb8dcde03ea311b7d4fdc39865c24a06407f";

fn tiny() -> Vec<u8> {
    std::fs::read(committed("models/tiny-vit.safetensors")).unwrap()
}

/// A sandbox: its own cache and registry file, no inherited model settings.
struct Env {
    tmp: TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            tmp: TempDir::new().unwrap(),
        }
    }

    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    /// Writes a TOML registry with one safetensors model per (name, url, sha256).
    fn registry(&self, models: &[(&str, &str, &str)]) -> PathBuf {
        let mut toml = String::new();
        for (name, url, sha) in models {
            toml += &format!("[[models]]\nname = \"{name}\"\nformat = \"safetensors\"\nurl = \"{url}\"\nsha256 = \"{sha}\"\nactivation = \"quick_gelu\"\n");
        }
        let path = self.tmp.path().join("registry.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clip"));
        cmd.args(args);
        for k in [
            "CLIP_MODEL",
            "CLIP_REGISTRY",
            "CLIP_MIRROR",
            "CLIP_OFFLINE",
            "XDG_CACHE_HOME",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("CLIP_CACHE", self.cache());
        cmd.envs(env.iter().copied());
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().expect("run clip")
    }

    fn json(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let out = self.run(args, env);
        assert!(
            out.status.success(),
            "clip {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    }

    /// Expects exit code 2 and every needle on stderr; returns stderr.
    fn fails(&self, args: &[&str], env: &[(&str, &str)], needles: &[&str]) -> String {
        let out = self.run(args, env);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            out.status.code(),
            Some(2),
            "clip {args:?}: expected exit 2, stderr: {stderr}"
        );
        for n in needles {
            assert!(
                stderr.contains(n),
                "clip {args:?}: stderr lacks {n:?}: {stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }
}

/// `embed --text` of a model given by path, for comparison with the same model fetched by name.
fn embed_by_path(env: &Env, model: &Path) -> Value {
    env.json(&["embed", "--model", s(model), "--text", "a"], &[])["texts"].clone()
}

#[test]
fn embed_by_name_fetches_from_loopback_once_and_then_works_offline() {
    let server = TestServer::start(vec![("/m/tiny-vit.safetensors", Route::Ok(tiny()))]);
    let env = Env::new();
    let registry = env.registry(&[("tiny/vit", &server.url("/m/tiny-vit.safetensors"), TINY_SHA)]);
    let args = [
        "embed",
        "--model",
        "tiny/vit",
        "--text",
        "a",
        "--registry",
        s(&registry),
    ];
    let out = env.json(&args, &[]);
    assert_eq!(out["model"], "tiny/vit");
    assert_eq!(
        out["texts"],
        embed_by_path(&env, &committed("models/tiny-vit.safetensors"))
    );
    let cached = env.cache().join("tiny--vit/tiny-vit.safetensors");
    assert_eq!(std::fs::read(&cached).unwrap(), tiny());

    assert_eq!(
        env.json(&args, &[("CLIP_OFFLINE", "1")])["texts"],
        out["texts"]
    );
    assert_eq!(server.count("/m/tiny-vit.safetensors"), 1);
}

#[test]
fn clip_registry_and_clip_mirror_from_the_environment() {
    let server = TestServer::start(vec![("/models/tiny.safetensors", Route::Ok(tiny()))]);
    let env = Env::new();
    let registry = env.registry(&[(
        "tiny",
        "https://models.invalid/models/tiny.safetensors",
        TINY_SHA,
    )]);
    let out = env.json(
        &["embed", "--model", "tiny", "--text", "a"],
        &[
            ("CLIP_REGISTRY", s(&registry)),
            ("CLIP_MIRROR", &server.base()),
        ],
    );
    assert_eq!(
        out["texts"],
        embed_by_path(&env, &committed("models/tiny-vit.safetensors"))
    );
}

#[test]
fn models_json_lists_builtin_and_user_models_and_what_is_cached() {
    let server = TestServer::start(vec![("/t.safetensors", Route::Ok(tiny()))]);
    let env = Env::new();
    let registry = env.registry(&[("tiny", &server.url("/t.safetensors"), TINY_SHA)]);
    let list = |env: &Env| env.json(&["models", "--json", "--registry", s(&registry)], &[]);
    let out = list(&env);
    assert_eq!(out["default"], "ViT-B/32");
    assert_eq!(out["cache_dir"], s(&env.cache()));
    let models = out["models"].as_array().unwrap();
    let find = |name: &str| {
        models
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    for name in [
        "RN50",
        "RN101",
        "RN50x4",
        "RN50x16",
        "RN50x64",
        "ViT-B/32",
        "ViT-B/16",
        "ViT-L/14",
        "ViT-L/14@336px",
    ] {
        let m = find(name);
        assert_eq!(m["format"], "openai");
        assert_eq!(m["source"], "builtin");
        assert_eq!(
            (m["family"].as_str(), m["license"].as_str()),
            (Some("clip"), Some("MIT"))
        );
        let url = m["files"][0]["url"].as_str().unwrap();
        assert!(
            url.starts_with("https://openaipublic.azureedge.net/clip/models/"),
            "{url}"
        );
        assert_eq!(url.rsplit('/').nth(1), m["files"][0]["sha256"].as_str());
        // The OpenAI URL first (its hash pinned), then the Hugging Face copy where one exists.
        let sources = m["sources"].as_array().unwrap();
        assert_eq!(sources[0]["kind"], "openai");
        assert_eq!(sources[0]["checksum"], "published sha256");
        assert_eq!(sources[0]["cached"], false);
        assert_eq!(
            sources.len(),
            if name.starts_with("RN") { 1 } else { 2 },
            "{name}"
        );
    }
    let hf = &find("ViT-B/32")["sources"][1];
    assert_eq!(
        (
            hf["kind"].as_str(),
            hf["repo"].as_str(),
            hf["format"].as_str()
        ),
        (
            Some("huggingface"),
            Some("openai/clip-vit-base-patch32"),
            Some("huggingface")
        )
    );
    assert_eq!(
        hf["checksum"],
        "sha256 declared by the server, and structure"
    );
    assert_eq!(
        hf["path"],
        s(&env.cache().join("openai--clip-vit-base-patch32"))
    );
    assert_eq!(
        hf["files"][1]["url"],
        "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors"
    );
    for (name, family, license, repo) in [
        (
            "siglip2-base-patch16-224",
            "siglip",
            "Apache-2.0",
            "google/siglip2-base-patch16-224",
        ),
        (
            "siglip2-base-patch16-256",
            "siglip",
            "Apache-2.0",
            "google/siglip2-base-patch16-256",
        ),
        (
            "siglip2-base-patch32-256",
            "siglip",
            "Apache-2.0",
            "google/siglip2-base-patch32-256",
        ),
        (
            "siglip-base-patch16-224",
            "siglip",
            "Apache-2.0",
            "google/siglip-base-patch16-224",
        ),
        (
            "ViT-B-32/laion2b_s34b_b79k",
            "clip",
            "MIT",
            "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        ),
        (
            "ViT-B-32-256/datacomp_s34b_b86k",
            "clip",
            "MIT",
            "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K",
        ),
    ] {
        let m = find(name);
        assert_eq!(
            (m["family"].as_str(), m["license"].as_str()),
            (Some(family), Some(license)),
            "{name}"
        );
        assert_eq!(m["aliases"][0], repo);
        assert_eq!(m["sources"][0]["repo"], repo);
        assert!(m["size_bytes"].as_u64().unwrap() > 500_000_000, "{name}");
    }
    let (vit, rn) = (find("ViT-L/14@336px"), find("RN50x64"));
    assert_eq!(
        (vit["resolution"].as_u64(), vit["embed_dim"].as_u64()),
        (Some(336), Some(768))
    );
    assert_eq!(
        (rn["resolution"].as_u64(), rn["embed_dim"].as_u64()),
        (Some(448), Some(1024))
    );
    assert_eq!(
        find("openai/clip-vit-base-patch32")["format"],
        "huggingface"
    );
    let laion = find("ViT-H-14/laion2b_s32b_b79k");
    assert_eq!(
        (laion["format"].as_str(), laion["activation"].as_str()),
        (Some("open-clip"), Some("gelu"))
    );
    assert_eq!(find("tiny")["source"], s(&registry));
    assert_eq!(find("tiny")["cached"], false);

    env.json(
        &[
            "embed",
            "--model",
            "tiny",
            "--text",
            "a",
            "--registry",
            s(&registry),
        ],
        &[],
    );
    let out = list(&env);
    let tiny = out["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tiny")
        .unwrap()
        .clone();
    assert_eq!(tiny["cached"], true);
    assert!(Path::new(tiny["path"].as_str().unwrap()).is_file());

    let table = env.run(&["models"], &[]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("ViT-L/14@336px") && table.contains("338 MB") && table.contains("CACHED"),
        "{table}"
    );
    for needle in [
        "FAMILY",
        "LICENSE",
        "SOURCES",
        "openai, huggingface",
        "Apache-2.0",
        "siglip",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
}

#[test]
fn unknown_name_is_an_error_with_the_closest_names() {
    let env = Env::new();
    env.fails(
        &["embed", "--model", "ViT-B/33", "--text", "a"],
        &[("CLIP_OFFLINE", "1")],
        &["ViT-B/33", "did you mean `ViT-B/32`", "clip models"],
    );
    env.fails(
        &[
            "classify",
            s(&committed("images/good/chelsea_small.bmp")),
            "--labels",
            "a,b",
            "--model",
            "rn-50",
        ],
        &[],
        &["`RN50`"],
    );
    assert!(!env.cache().exists(), "a bad name creates nothing");
}

#[test]
fn corrupted_download_fails_with_both_hashes_and_leaves_nothing() {
    let mut bad = tiny();
    bad[100_000] ^= 1;
    let server = TestServer::start(vec![("/bad.safetensors", Route::Ok(bad))]);
    let env = Env::new();
    let registry = env.registry(&[("bad", &server.url("/bad.safetensors"), TINY_SHA)]);
    env.fails(
        &[
            "embed",
            "--model",
            "bad",
            "--text",
            "a",
            "--registry",
            s(&registry),
        ],
        &[],
        &["checksum mismatch", TINY_SHA, "deleted"],
    );
    let dir = env.cache().join("bad");
    assert_eq!(
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| !e.as_ref().unwrap().path().ends_with("bad.safetensors.lock"))
            .count(),
        0
    );
}

#[test]
fn a_cut_download_is_resumed_with_a_range_request() {
    let server = TestServer::start(vec![(
        "/cut.safetensors",
        Route::CutOnce {
            body: tiny(),
            at: 3_000_000,
        },
    )]);
    let env = Env::new();
    let registry = env.registry(&[("cut", &server.url("/cut.safetensors"), TINY_SHA)]);
    env.json(
        &[
            "embed",
            "--model",
            "cut",
            "--text",
            "a",
            "--registry",
            s(&registry),
        ],
        &[],
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].range.as_deref(), Some("bytes=3000000-"));
    assert_eq!(
        std::fs::read(env.cache().join("cut/cut.safetensors")).unwrap(),
        tiny()
    );
}

#[test]
fn two_processes_fetching_one_model_download_it_once() {
    let route = Route::Slow {
        body: tiny(),
        chunk: 1 << 20,
        delay: Duration::from_millis(50),
    };
    let server = TestServer::start(vec![("/slow.safetensors", route)]);
    let env = Env::new();
    let registry = env.registry(&[("slow", &server.url("/slow.safetensors"), TINY_SHA)]);
    let args = [
        "embed",
        "--model",
        "slow",
        "--text",
        "a",
        "--registry",
        s(&registry),
    ];
    let children: Vec<_> = (0..2)
        .map(|_| {
            env.command(&args, &[])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(server.count("/slow.safetensors"), 1);
}

#[test]
fn default_model_offline_says_where_to_place_it_and_uses_it_once_placed() {
    let env = Env::new();
    let image = committed("images/good/chelsea_small.bmp");
    let args = ["classify", s(&image), "--labels", "a cat,a dog", "--json"];
    let dest = env.cache().join("ViT-B--32/ViT-B-32.pt");
    env.fails(
        &args,
        &[("CLIP_OFFLINE", "1")],
        &["--model", "ViT-B/32", "CLIP_OFFLINE", s(&dest), "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"],
    );
    // A file placed there by hand is the default model from now on (the fixture stands in for it).
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(committed("models/tiny-vit.safetensors"), &dest).unwrap();
    let out = env.json(&args, &[("CLIP_OFFLINE", "1")]);
    let total: f64 = out["results"][0]["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["prob"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-4, "{out}");
}

#[test]
fn unreachable_network_says_where_to_place_the_file() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = Env::new();
    let want = env.cache().join("RN50/RN50.pt");
    env.fails(
        &["embed", "--model", "RN50", "--text", "a"],
        &[("CLIP_MIRROR", &format!("http://{closed}"))],
        &[
            "cannot reach",
            &format!("http://{closed}/clip/models/"),
            &format!("place it at {}", want.display()),
        ],
    );
}

/// A built-in OpenCLIP name through `CLIP_MIRROR`: the Hugging Face URL layout, the folder in the
/// cache and the GELU model it holds (the reference fixture folder stands in for the LAION one).
#[test]
fn builtin_open_clip_folder_through_a_mirror() {
    let Some(folder) = reference("models/tiny-vit-openclip-gelu") else {
        return;
    };
    let repo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K";
    let routes: Vec<(String, Route)> = ["open_clip_config.json", "open_clip_model.safetensors"]
        .iter()
        .map(|f| {
            (
                format!("/{repo}/resolve/main/{f}"),
                Route::Ok(std::fs::read(folder.join(f)).unwrap()),
            )
        })
        .collect();
    let server = TestServer::start(
        routes
            .iter()
            .map(|(p, r)| (p.as_str(), r.clone()))
            .collect(),
    );
    let env = Env::new();
    let out = env.json(
        &["embed", "--model", repo, "--text", "a"],
        &[("CLIP_MIRROR", &server.base())],
    );
    assert_eq!(out["texts"], embed_by_path(&env, &folder));
    assert!(env
        .cache()
        .join("laion--CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_model.safetensors")
        .is_file());
}

#[test]
fn models_verify_rehashes_the_cache_and_moves_damaged_files_aside() {
    let server = TestServer::start(vec![("/v/tiny.safetensors", Route::Ok(tiny()))]);
    let env = Env::new();
    let registry = env.registry(&[("v", &server.url("/v/tiny.safetensors"), TINY_SHA)]);
    let reg = registry.to_str().unwrap();
    env.json(
        &["embed", "--model", "v", "--registry", reg, "--text", "a"],
        &[],
    );
    let report = env.json(&["models", "--verify", "--json", "--registry", reg], &[]);
    let files = &report["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "v")
        .unwrap()["files"];
    assert_eq!(files[0]["status"], "sha256 ok", "{report}");
    // One flipped byte in the cached file.
    let cached = env.cache().join("v").join("tiny.safetensors");
    let mut bytes = std::fs::read(&cached).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&cached, bytes).unwrap();
    let out = env.run(&["models", "--verify", "--registry", reg], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("damaged") && text.contains(".bad"), "{text}");
    assert!(!cached.exists());
    // The next use fetches it again.
    env.json(
        &["embed", "--model", "v", "--registry", reg, "--text", "a"],
        &[],
    );
    assert_eq!(server.count("/v/tiny.safetensors"), 2);
}

/// OpenAI's server answers 404 (as it has since 2025): `--model ViT-B/32` downloads the Hugging
/// Face copy instead, checks it against the hash the server declares, says so on stderr, and the
/// next run finds it in the cache with the network off. The reference HF folder stands in for
/// `openai/clip-vit-base-patch32`.
#[test]
fn classify_by_openai_name_falls_back_to_the_hugging_face_copy_and_says_so() {
    let Some(folder) = reference("models/tiny-vit-hf") else {
        return;
    };
    let weights = std::fs::read(folder.join("model.safetensors")).unwrap();
    let hf = "/openai/clip-vit-base-patch32/resolve/main";
    let openai =
        "/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt";
    let server = TestServer::start(vec![
        (openai, Route::Status(404)),
        (
            &format!("{hf}/config.json"),
            Route::Ok(std::fs::read(folder.join("config.json")).unwrap()),
        ),
        (
            &format!("{hf}/model.safetensors"),
            Route::Headers(
                vec![(
                    "X-Linked-Etag".into(),
                    format!("\"{}\"", sha256_hex(&weights)),
                )],
                Box::new(Route::Redirect("/cdn/model.safetensors".into())),
            ),
        ),
        ("/cdn/model.safetensors", Route::Ok(weights.clone())),
    ]);
    let env = Env::new();
    let image = committed("images/good/chelsea_small.bmp");
    let args = [
        "classify",
        s(&image),
        "--labels",
        "a cat,a dog",
        "--model",
        "ViT-B/32",
        "--json",
    ];
    let out = env.run(&args, &[("CLIP_MIRROR", &server.base())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("clip: ViT-B/32: the OpenAI URL answered 404; downloaded the Hugging Face copy openai/clip-vit-base-patch32 instead (verified:")
            && stderr.contains(&sha256_hex(&weights)),
        "{stderr}"
    );
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cached = env.cache().join("openai--clip-vit-base-patch32");
    assert_eq!(
        std::fs::read(cached.join("model.safetensors")).unwrap(),
        weights
    );
    // Offline, from the cache: the same answer, no request.
    let requests = server.requests().len();
    assert_eq!(
        env.json(&args, &[("CLIP_OFFLINE", "1")])["results"],
        first["results"]
    );
    assert_eq!(server.requests().len(), requests);
    let listed = env.json(&["models", "--json"], &[]);
    let vit = listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ViT-B/32")
        .unwrap()
        .clone();
    assert_eq!(vit["cached"], true);
    assert_eq!(vit["path"], s(&cached));
    assert_eq!(vit["sources"][1]["cached"], true);
}

#[test]
fn default_model_offline_lists_both_sources() {
    let env = Env::new();
    let image = committed("images/good/chelsea_small.bmp");
    env.fails(
        &["classify", s(&image), "--labels", "a,b"],
        &[("CLIP_OFFLINE", "1")],
        &[
            "from the OpenAI URL",
            "from the Hugging Face copy openai/clip-vit-base-patch32",
            "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors",
            s(&env
                .cache()
                .join("openai--clip-vit-base-patch32/model.safetensors")),
        ],
    );
}
