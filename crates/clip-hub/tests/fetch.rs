//! Downloads against a real HTTP server on loopback: good, corrupted, cut mid-way and resumed,
//! slow, stalled, missing, concurrent, mirrored, offline, and a model's later sources taking over
//! when its first is gone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clip_hub::test_server::{Route, TestServer};
use clip_hub::{
    ArtifactFormat, Family, FetchOptions, Hub, HubError, Mirror, ModelEntry, Origin, Registry,
    RemoteFile, Source, SourceKind,
};
use tempfile::TempDir;

const TINY_SHA: &str = "9a6fbba57ad1ce97fd6979e2a822bb8dcde03ea311b7d4fdc39865c24a06407f";

fn tiny() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/models/tiny-vit.safetensors"
    ))
    .unwrap()
}

fn quiet() -> FetchOptions {
    FetchOptions {
        progress: false,
        read_timeout: Duration::from_secs(5),
        ..FetchOptions::default()
    }
}

/// A hub whose registry has one safetensors model `name` at `url` (with `sha`), caching in `tmp`.
fn hub_with(tmp: &TempDir, models: &[(&str, &str, Option<&str>)], options: FetchOptions) -> Hub {
    let mut toml = String::new();
    for (name, url, sha) in models {
        toml +=
            &format!("[[models]]\nname = \"{name}\"\nformat = \"safetensors\"\nurl = \"{url}\"\n");
        if let Some(sha) = sha {
            toml += &format!("sha256 = \"{sha}\"\n");
        }
    }
    let registry_file = tmp.path().join("registry.toml");
    std::fs::write(&registry_file, toml).unwrap();
    let registry = Registry::builtin().with_user_file(&registry_file).unwrap();
    Hub::new(registry, tmp.path().join("cache"), options)
}

fn fetch(hub: &Hub, name: &str) -> Result<PathBuf, HubError> {
    hub.fetch(hub.registry().get(name).expect("registered"))
}

fn part_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part", path.display()))
}

#[test]
fn good_file_is_fetched_verified_and_then_served_from_the_cache() {
    let server = TestServer::start(vec![("/m/tiny.safetensors", Route::Ok(tiny()))]);
    let tmp = TempDir::new().unwrap();
    let hub = hub_with(
        &tmp,
        &[("tiny", &server.url("/m/tiny.safetensors"), Some(TINY_SHA))],
        quiet(),
    );
    let entry = hub.registry().get("tiny").unwrap().clone();
    assert!(!hub.is_cached(&entry));
    let path = fetch(&hub, "tiny").unwrap();
    assert_eq!(path, tmp.path().join("cache/tiny/tiny.safetensors"));
    assert_eq!(std::fs::read(&path).unwrap(), tiny());
    assert!(!part_of(&path).exists());
    assert!(hub.is_cached(&entry));
    assert_eq!(hub.resolve("tiny").unwrap(), path);
    assert_eq!(
        server.count("/m/tiny.safetensors"),
        1,
        "a cached model is not downloaded again"
    );
}

#[test]
fn checksum_mismatch_deletes_the_file_and_names_both_hashes() {
    let mut bad = tiny();
    bad[5000] ^= 0xff;
    let server = TestServer::start(vec![("/bad.safetensors", Route::Ok(bad))]);
    let tmp = TempDir::new().unwrap();
    let hub = hub_with(
        &tmp,
        &[("bad", &server.url("/bad.safetensors"), Some(TINY_SHA))],
        quiet(),
    );
    let err = fetch(&hub, "bad").unwrap_err();
    let HubError::ChecksumMismatch {
        ref expected,
        ref actual,
        ref path,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(expected, TINY_SHA);
    assert_ne!(actual, TINY_SHA);
    assert!(!path.exists());
    let msg = err.to_string();
    assert!(
        msg.contains("checksum mismatch")
            && msg.contains(TINY_SHA)
            && msg.contains(actual.as_str()),
        "{msg}"
    );
    assert!(msg.contains("deleted"), "{msg}");
    let dest = hub.model_path(hub.registry().get("bad").unwrap());
    assert!(!dest.exists() && !part_of(&dest).exists());
}

#[test]
fn a_cut_download_keeps_its_part_and_the_next_run_resumes_with_a_range() {
    let body = tiny();
    let half = body.len() / 2;
    let server = TestServer::start(vec![(
        "/cut.safetensors",
        Route::CutOnce {
            body: body.clone(),
            at: half,
        },
    )]);
    let tmp = TempDir::new().unwrap();
    let once = FetchOptions {
        attempts: 1,
        ..quiet()
    };
    let hub = hub_with(
        &tmp,
        &[("cut", &server.url("/cut.safetensors"), Some(TINY_SHA))],
        once,
    );
    let err = fetch(&hub, "cut").unwrap_err();
    assert!(
        matches!(err, HubError::Interrupted { received, .. } if received == half as u64),
        "{err}"
    );
    assert!(err.to_string().contains("resumes"), "{err}");
    let dest = hub.model_path(hub.registry().get("cut").unwrap());
    assert_eq!(
        std::fs::metadata(part_of(&dest)).unwrap().len(),
        half as u64
    );
    assert!(!dest.exists());

    let path = fetch(&hub, "cut").unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].range, None);
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
}

#[test]
fn a_cut_download_is_resumed_within_one_run_when_retries_are_allowed() {
    let server = TestServer::start(vec![(
        "/cut.safetensors",
        Route::CutOnce {
            body: tiny(),
            at: 1000,
        },
    )]);
    let tmp = TempDir::new().unwrap();
    let hub = hub_with(
        &tmp,
        &[("cut", &server.url("/cut.safetensors"), Some(TINY_SHA))],
        quiet(),
    );
    assert_eq!(std::fs::read(fetch(&hub, "cut").unwrap()).unwrap(), tiny());
    assert_eq!(server.requests()[1].range.as_deref(), Some("bytes=1000-"));
}

#[test]
fn a_server_that_ignores_the_range_restarts_the_file_from_the_start() {
    let server = TestServer::start(vec![(
        "/nr.safetensors",
        Route::CutOnceNoRanges {
            body: tiny(),
            at: 2000,
        },
    )]);
    let tmp = TempDir::new().unwrap();
    let hub = hub_with(
        &tmp,
        &[("nr", &server.url("/nr.safetensors"), Some(TINY_SHA))],
        quiet(),
    );
    assert_eq!(std::fs::read(fetch(&hub, "nr").unwrap()).unwrap(), tiny());
    assert_eq!(server.requests()[1].range.as_deref(), Some("bytes=2000-"));
}

#[test]
fn a_slow_server_that_keeps_sending_is_waited_for() {
    let route = Route::Slow {
        body: tiny(),
        chunk: 512 * 1024,
        delay: Duration::from_millis(30),
    };
    let server = TestServer::start(vec![("/slow.safetensors", route)]);
    let tmp = TempDir::new().unwrap();
    let opts = FetchOptions {
        read_timeout: Duration::from_secs(2),
        ..quiet()
    };
    let hub = hub_with(
        &tmp,
        &[("slow", &server.url("/slow.safetensors"), Some(TINY_SHA))],
        opts,
    );
    assert_eq!(std::fs::read(fetch(&hub, "slow").unwrap()).unwrap(), tiny());
}

#[test]
fn a_stalled_server_times_out_and_leaves_a_resumable_part() {
    let route = Route::Stall {
        body: tiny(),
        after: 4096,
        hold: Duration::from_secs(3),
    };
    let server = TestServer::start(vec![("/stall.safetensors", route)]);
    let tmp = TempDir::new().unwrap();
    let opts = FetchOptions {
        read_timeout: Duration::from_millis(300),
        attempts: 1,
        ..quiet()
    };
    let hub = hub_with(
        &tmp,
        &[("stall", &server.url("/stall.safetensors"), Some(TINY_SHA))],
        opts,
    );
    let err = fetch(&hub, "stall").unwrap_err();
    assert!(
        matches!(err, HubError::Interrupted { received: 4096, .. }),
        "{err}"
    );
    assert!(
        err.to_string().to_lowercase().contains("timed out"),
        "{err}"
    );
}

#[test]
fn http_404_names_the_url() {
    let server = TestServer::start(vec![]);
    let tmp = TempDir::new().unwrap();
    let url = server.url("/missing.safetensors");
    let hub = hub_with(&tmp, &[("missing", &url, Some(TINY_SHA))], quiet());
    let err = fetch(&hub, "missing").unwrap_err();
    assert!(matches!(err, HubError::Http { status: 404, .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn concurrent_fetches_of_one_model_download_it_once() {
    let route = Route::Slow {
        body: tiny(),
        chunk: 1 << 20,
        delay: Duration::from_millis(40),
    };
    let server = TestServer::start(vec![("/c.safetensors", route)]);
    let tmp = TempDir::new().unwrap();
    let url = server.url("/c.safetensors");
    // Separate hubs (as separate processes would have) sharing one cache folder.
    let hubs: Vec<Hub> = (0..3)
        .map(|_| hub_with(&tmp, &[("c", &url, Some(TINY_SHA))], quiet()))
        .collect();
    let paths: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = hubs
            .iter()
            .map(|hub| s.spawn(move || fetch(hub, "c").unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(std::fs::read(&paths[0]).unwrap(), tiny());
    assert_eq!(server.count("/c.safetensors"), 1);
}

#[test]
fn mirror_rewrites_builtin_urls_and_their_published_hash_is_still_enforced() {
    // The built-in ViT-B/32 path, served with the wrong content: the mirror is used, and the
    // SHA-256 from OpenAI's URL rejects the file. The Hugging Face copy is not tried instead: a
    // mismatch is an error, never a reason to look elsewhere.
    let entry = Registry::builtin().get("ViT-B/32").unwrap().clone();
    let path = entry.files()[0]
        .url
        .split_once(".net")
        .unwrap()
        .1
        .to_string();
    let server = TestServer::start(vec![(path.as_str(), Route::Ok(tiny()))]);
    let tmp = TempDir::new().unwrap();
    let opts = FetchOptions {
        mirror: Some(Mirror::parse(&server.base()).unwrap()),
        ..quiet()
    };
    let hub = Hub::new(Registry::builtin(), tmp.path().to_path_buf(), opts);
    let err = hub.resolve("ViT-B/32").unwrap_err();
    assert!(
        matches!(err, HubError::ChecksumMismatch { ref expected, .. } if *expected == entry.files()[0].sha256.clone().unwrap()),
        "{err}"
    );
    assert!(err.to_string().contains("the OpenAI URL"), "{err}");
    assert_eq!(server.count(&path), 1);
    assert_eq!(server.requests().len(), 1, "no other source was tried");
}

#[test]
fn mirror_serves_a_user_model_from_an_unreachable_host() {
    let server = TestServer::start(vec![("/models/tiny.safetensors", Route::Ok(tiny()))]);
    let tmp = TempDir::new().unwrap();
    let opts = FetchOptions {
        mirror: Some(Mirror::parse(&server.base()).unwrap()),
        ..quiet()
    };
    let hub = hub_with(
        &tmp,
        &[(
            "tiny",
            "https://models.invalid/models/tiny.safetensors",
            Some(TINY_SHA),
        )],
        opts,
    );
    assert_eq!(std::fs::read(fetch(&hub, "tiny").unwrap()).unwrap(), tiny());
}

#[test]
fn offline_mode_says_where_to_put_the_file_and_touches_no_network() {
    let server = TestServer::start(vec![("/t.safetensors", Route::Ok(tiny()))]);
    let tmp = TempDir::new().unwrap();
    let url = server.url("/t.safetensors");
    let hub = hub_with(
        &tmp,
        &[("t", &url, Some(TINY_SHA))],
        FetchOptions {
            offline: true,
            ..quiet()
        },
    );
    let dest = hub.model_path(hub.registry().get("t").unwrap());
    let err = fetch(&hub, "t").unwrap_err().to_string();
    assert!(
        err.contains(&url)
            && err.contains(&dest.display().to_string())
            && err.contains("CLIP_OFFLINE"),
        "{err}"
    );
    assert!(server.requests().is_empty());
    // A file placed there by hand is used.
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, tiny()).unwrap();
    assert_eq!(fetch(&hub, "t").unwrap(), dest);
}

#[test]
fn unreachable_host_says_where_to_put_the_file() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tmp = TempDir::new().unwrap();
    let hub = hub_with(
        &tmp,
        &[(
            "u",
            &format!("http://{closed}/u.safetensors"),
            Some(TINY_SHA),
        )],
        quiet(),
    );
    let dest = hub.model_path(hub.registry().get("u").unwrap());
    let err = fetch(&hub, "u").unwrap_err();
    assert!(matches!(err, HubError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("place it at {}", dest.display())),
        "{err}"
    );
}

#[test]
fn folder_models_without_a_published_hash_are_checked_for_structure() {
    let server = TestServer::start(vec![
        (
            "/r/config.json",
            Route::Ok(b"{\"projection_dim\": 32}".to_vec()),
        ),
        ("/r/model.safetensors", Route::Ok(tiny())),
        ("/bad/config.json", Route::Ok(b"{}".to_vec())),
        (
            "/bad/model.safetensors",
            Route::Ok(b"<html>rate limited</html>".to_vec()),
        ),
    ]);
    let tmp = TempDir::new().unwrap();
    let registry_file = tmp.path().join("r.json");
    let files = |dir: &str| {
        format!(
            "[{{\"name\": \"config.json\", \"url\": \"{}\"}}, {{\"name\": \"model.safetensors\", \"url\": \"{}\"}}]",
            server.url(&format!("/{dir}/config.json")),
            server.url(&format!("/{dir}/model.safetensors"))
        )
    };
    let json = format!(
        "{{\"models\": [{{\"name\": \"org/good\", \"format\": \"huggingface\", \"files\": {}}}, {{\"name\": \"org/bad\", \"format\": \"huggingface\", \"files\": {}}}]}}",
        files("r"),
        files("bad")
    );
    std::fs::write(&registry_file, json).unwrap();
    let hub = Hub::new(
        Registry::builtin().with_user_file(&registry_file).unwrap(),
        tmp.path().join("c"),
        quiet(),
    );
    let dir = hub.resolve("org/good").unwrap();
    assert_eq!(dir, tmp.path().join("c/org--good"));
    assert_eq!(
        std::fs::read(dir.join("model.safetensors")).unwrap(),
        tiny()
    );
    let err = hub.resolve("org/bad").unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Malformed {
                kind: "safetensors",
                ..
            }
        ),
        "{err}"
    );
    assert!(!tmp.path().join("c/org--bad/model.safetensors").exists());
}

#[test]
fn resolve_prefers_an_existing_path_and_suggests_names_for_unknown_ones() {
    let tmp = TempDir::new().unwrap();
    let hub = Hub::new(
        Registry::builtin(),
        tmp.path().to_path_buf(),
        FetchOptions {
            offline: true,
            ..quiet()
        },
    );
    let file = tmp.path().join("RN50");
    std::fs::write(&file, b"x").unwrap();
    assert_eq!(hub.resolve(file.to_str().unwrap()).unwrap(), file);
    let err = hub.resolve("ViT-B-32").unwrap_err();
    assert!(
        matches!(err, HubError::UnknownModel { ref suggestions, .. } if suggestions[0] == "ViT-B/32"),
        "{err}"
    );
    assert!(err.to_string().contains("did you mean `ViT-B/32`"), "{err}");
}

#[test]
fn redirects_are_followed_only_to_http_urls_with_a_host() {
    let server = TestServer::start(vec![
        ("/real.safetensors", Route::Ok(tiny())),
        ("/moved", Route::Redirect("/real.safetensors".into())),
        ("/evil", Route::Redirect("file:///etc/passwd".into())),
        ("/hostless", Route::Redirect("http:///x".into())),
        ("/loop", Route::Redirect("/loop".into())),
    ]);
    let tmp = TempDir::new().unwrap();
    let hub = hub_with(
        &tmp,
        &[
            ("moved", &server.url("/moved"), Some(TINY_SHA)),
            ("evil", &server.url("/evil"), None),
            ("hostless", &server.url("/hostless"), None),
            ("loop", &server.url("/loop"), None),
        ],
        quiet(),
    );
    assert_eq!(
        std::fs::read(fetch(&hub, "moved").unwrap()).unwrap(),
        tiny()
    );
    for (name, needle) in [
        ("evil", "only http and https URLs with a host are followed"),
        ("loop", "more than 5 redirects"),
    ] {
        let err = fetch(&hub, name).unwrap_err();
        assert!(matches!(err, HubError::Redirect { .. }), "{name}: {err}");
        assert!(err.to_string().contains(needle), "{name}: {err}");
    }
    // `http:///x` is read as the host `x` (as browsers do): an error, never a panic.
    assert!(fetch(&hub, "hostless").is_err());
}

#[test]
fn a_trickling_server_is_cut_and_the_deadline_ends_the_download() {
    let route = Route::Slow {
        body: tiny(),
        chunk: 1024,
        delay: Duration::from_millis(20),
    };
    let server = TestServer::start(vec![("/trickle.safetensors", route)]);
    let tmp = TempDir::new().unwrap();
    // Far below the minimum speed: cut after the first window, as often as attempts allow.
    let slow = FetchOptions {
        min_speed: 10 << 20,
        speed_window: Duration::from_millis(300),
        attempts: 2,
        ..quiet()
    };
    let hub = hub_with(
        &tmp,
        &[(
            "trickle",
            &server.url("/trickle.safetensors"),
            Some(TINY_SHA),
        )],
        slow,
    );
    let err = fetch(&hub, "trickle").unwrap_err();
    assert!(matches!(err, HubError::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("below the minimum"), "{err}");
    // A deadline ends it whatever the speed.
    let tmp = TempDir::new().unwrap();
    let deadline = FetchOptions {
        deadline: Duration::from_millis(500),
        min_speed: 0,
        ..quiet()
    };
    let hub = hub_with(
        &tmp,
        &[(
            "trickle",
            &server.url("/trickle.safetensors"),
            Some(TINY_SHA),
        )],
        deadline,
    );
    let err = fetch(&hub, "trickle").unwrap_err();
    assert!(matches!(err, HubError::Deadline { .. }), "{err}");
}

#[test]
fn a_file_larger_than_the_model_is_refused() {
    let server = TestServer::start(vec![("/big.safetensors", Route::Ok(vec![0u8; 3 << 20]))]);
    let tmp = TempDir::new().unwrap();
    let toml = format!(
        "[[models]]\nname = \"small\"\nformat = \"safetensors\"\nurl = \"{}\"\nsize = 1000\n",
        server.url("/big.safetensors")
    );
    std::fs::write(tmp.path().join("r.toml"), toml).unwrap();
    let registry = Registry::builtin()
        .with_user_file(&tmp.path().join("r.toml"))
        .unwrap();
    let hub = Hub::new(registry, tmp.path().join("cache"), quiet());
    let err = fetch(&hub, "small").unwrap_err();
    assert!(matches!(err, HubError::TooLarge { .. }), "{err}");
}

#[test]
fn a_damaged_cached_file_is_moved_aside_and_fetched_again_and_verify_finds_damage() {
    let server = TestServer::start(vec![("/m.safetensors", Route::Ok(tiny()))]);
    let tmp = TempDir::new().unwrap();
    let hub = hub_with(&tmp, &[("m", &server.url("/m.safetensors"), None)], quiet());
    let path = fetch(&hub, "m").unwrap();
    // A broken mirror once saved an HTML page under the model's name.
    std::fs::write(&path, "<html>502 Bad Gateway</html>").unwrap();
    let again = fetch(&hub, "m").unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), tiny());
    assert!(PathBuf::from(format!("{}.bad", path.display())).is_file());
    assert_eq!(server.count("/m.safetensors"), 2);
    // `clip models --verify`: sound now; damaged after a flipped byte (moved aside).
    let entry = hub.registry().get("m").unwrap();
    let checks = hub.verify(entry).unwrap();
    assert_eq!(checks[0].1, clip_hub::FileCheck::StructureSound);
    let mut bytes = tiny();
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&path, bytes).unwrap();
    let checks = hub.verify(entry).unwrap();
    assert!(
        matches!(checks[0].1, clip_hub::FileCheck::MovedAside { .. }),
        "{checks:?}"
    );
    assert!(!path.exists());
}

const VIT_B_32_HF: &str = "/openai/clip-vit-base-patch32/resolve/main";
const CONFIG: &[u8] = b"{\"projection_dim\": 512}";

/// The path of ViT-B/32 on OpenAI's server (as `CLIP_MIRROR` rewrites it).
fn openai_path() -> String {
    let entry = Registry::builtin().get("ViT-B/32").unwrap().clone();
    let url = entry.files()[0].url.clone();
    url.split_once(".net").unwrap().1.to_string()
}

/// Hugging Face's layout for one LFS file: `resolve/main/<file>` answers a redirect to its CDN
/// carrying `X-Linked-Etag: "<sha256>"`; the CDN serves the bytes. `config.json` is a plain git
/// file whose ETag is a 40-digit blob id, not a content hash.
fn hf_routes(declared: &str) -> Vec<(String, Route)> {
    vec![
        (
            format!("{VIT_B_32_HF}/config.json"),
            Route::Headers(
                vec![("ETag".into(), format!("\"{}\"", "c".repeat(40)))],
                Box::new(Route::Ok(CONFIG.to_vec())),
            ),
        ),
        (
            format!("{VIT_B_32_HF}/model.safetensors"),
            Route::Headers(
                vec![("X-Linked-Etag".into(), format!("\"{declared}\""))],
                Box::new(Route::Redirect("/cdn/vit-b-32/model.safetensors".into())),
            ),
        ),
        ("/cdn/vit-b-32/model.safetensors".into(), Route::Ok(tiny())),
    ]
}

fn start(routes: Vec<(String, Route)>) -> TestServer {
    TestServer::start(
        routes
            .iter()
            .map(|(p, r)| (p.as_str(), r.clone()))
            .collect(),
    )
}

fn mirrored(server: &TestServer, tmp: &TempDir, offline: bool) -> Hub {
    let opts = FetchOptions {
        mirror: Some(Mirror::parse(&server.base()).unwrap()),
        offline,
        retry_pause: Duration::from_millis(10),
        ..quiet()
    };
    Hub::new(Registry::builtin(), tmp.path().join("cache"), opts)
}

#[test]
fn openai_404_falls_back_to_the_hugging_face_copy_checked_against_its_declared_hash() {
    let mut routes = hf_routes(TINY_SHA);
    routes.push((openai_path(), Route::Status(404)));
    let server = start(routes);
    let tmp = TempDir::new().unwrap();
    let hub = mirrored(&server, &tmp, false);
    let entry = hub.registry().get("ViT-B/32").unwrap().clone();
    let fetched = hub.fetch_report(&entry).unwrap();
    let folder = tmp.path().join("cache/openai--clip-vit-base-patch32");
    assert_eq!(fetched.path, folder);
    assert_eq!(fetched.source, 1);
    assert_eq!(
        std::fs::read(folder.join("model.safetensors")).unwrap(),
        tiny()
    );
    let summary = fetched.summary("ViT-B/32");
    for needle in [
        "ViT-B/32: the OpenAI URL answered 404",
        "downloaded the Hugging Face copy openai/clip-vit-base-patch32 instead",
        &format!("model.safetensors sha256 {TINY_SHA} as declared by the server"),
        "config.json structure ok",
    ] {
        assert!(summary.contains(needle), "{needle}: {summary}");
    }
    assert_eq!(server.count(&openai_path()), 1);
    // The fallback's folder counts as the cached model: a later run, offline, finds it there
    // (and so does the entry of the Hugging Face repository itself, which shares the folder).
    assert!(hub.is_cached(&entry));
    assert_eq!(hub.model_path(&entry), folder);
    let offline = mirrored(&server, &tmp, true);
    assert_eq!(offline.resolve("ViT-B/32").unwrap(), folder);
    assert_eq!(
        offline.resolve("openai/clip-vit-base-patch32").unwrap(),
        folder
    );
    assert_eq!(server.count(&openai_path()), 1, "no network when cached");
}

#[test]
fn a_wrong_declared_hash_fails_with_both_hashes_and_names_the_source() {
    let wrong = "ab".repeat(32);
    let mut routes = hf_routes(&wrong);
    routes.push((openai_path(), Route::Status(404)));
    let server = start(routes);
    let tmp = TempDir::new().unwrap();
    let hub = mirrored(&server, &tmp, false);
    let err = hub.resolve("ViT-B/32").unwrap_err();
    let HubError::ChecksumMismatch {
        ref expected,
        ref actual,
        declared,
        ref source_label,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (expected.as_str(), actual.as_str()),
        (wrong.as_str(), TINY_SHA)
    );
    assert!(declared);
    assert_eq!(
        &**source_label,
        "the Hugging Face copy openai/clip-vit-base-patch32"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&wrong) && msg.contains(TINY_SHA) && msg.contains("declared by the server"),
        "{msg}"
    );
    let folder = tmp.path().join("cache/openai--clip-vit-base-patch32");
    assert!(!folder.join("model.safetensors").exists());
    assert!(!folder.join("model.safetensors.part").exists());
}

#[test]
fn server_errors_are_retried_then_the_next_source_is_used() {
    let mut routes = hf_routes(TINY_SHA);
    routes.push((openai_path(), Route::Status(503)));
    let server = start(routes);
    let tmp = TempDir::new().unwrap();
    let hub = mirrored(&server, &tmp, false);
    let entry = hub.registry().get("ViT-B/32").unwrap().clone();
    let fetched = hub.fetch_report(&entry).unwrap();
    assert_eq!(fetched.source, 1);
    assert!(fetched.skipped[0].contains("answered 503"), "{fetched:?}");
    assert_eq!(
        server.count(&openai_path()),
        3,
        "3 attempts before giving up"
    );
}

/// A model whose first source is `first` and whose second is a Hugging Face folder on `server`.
fn two_source_entry(first: String, server: &TestServer) -> ModelEntry {
    let file = |name: &str, url: String, sha: Option<&str>| RemoteFile {
        name: name.into(),
        url,
        sha256: sha.map(str::to_string),
    };
    ModelEntry {
        name: "two".into(),
        aliases: vec![],
        family: Family::Clip,
        sources: vec![
            Source {
                kind: SourceKind::Url,
                format: ArtifactFormat::Safetensors,
                files: vec![file("two.safetensors", first, Some(TINY_SHA))],
                cache_key: "two".into(),
                size_bytes: None,
            },
            Source {
                kind: SourceKind::HuggingFace("org/two".into()),
                format: ArtifactFormat::Huggingface,
                files: vec![
                    file(
                        "config.json",
                        server.url(&format!("{VIT_B_32_HF}/config.json")),
                        None,
                    ),
                    file(
                        "model.safetensors",
                        server.url(&format!("{VIT_B_32_HF}/model.safetensors")),
                        None,
                    ),
                ],
                cache_key: "org/two".into(),
                size_bytes: None,
            },
        ],
        resolution: None,
        embed_dim: None,
        activation: None,
        license: None,
        origin: Origin::Builtin,
    }
}

#[test]
fn a_connection_failure_falls_back_and_all_sources_failing_lists_each() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = start(hf_routes(TINY_SHA));
    let tmp = TempDir::new().unwrap();
    let entry = two_source_entry(format!("http://{closed}/two.safetensors"), &server);
    let hub = Hub::new(
        Registry::builtin().with_entry(entry.clone()),
        tmp.path().join("cache"),
        quiet(),
    );
    let fetched = hub.fetch_report(&entry).unwrap();
    assert_eq!(fetched.source, 1);
    assert_eq!(fetched.path, tmp.path().join("cache/org--two"));
    assert!(
        fetched
            .summary("two")
            .contains("the URL could not be reached"),
        "{fetched:?}"
    );

    // Both gone: one error naming each source and why.
    let empty = TestServer::start(vec![]);
    let entry = two_source_entry(format!("http://{closed}/two.safetensors"), &empty);
    let tmp = TempDir::new().unwrap();
    let hub = Hub::new(Registry::builtin(), tmp.path().join("cache"), quiet());
    let err = hub.fetch(&entry).unwrap_err();
    assert!(
        matches!(err, HubError::NoSource { ref failures, .. } if failures.len() == 2),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("the URL: cannot reach")
            && msg.contains("the Hugging Face copy org/two: download of")
            && msg.contains("HTTP 404"),
        "{msg}"
    );
}

#[test]
fn offline_lists_every_source_and_where_its_files_go() {
    let tmp = TempDir::new().unwrap();
    let hub = Hub::new(
        Registry::builtin(),
        tmp.path().join("cache"),
        FetchOptions {
            offline: true,
            ..quiet()
        },
    );
    let msg = hub.resolve("ViT-B/32").unwrap_err().to_string();
    let cache = tmp.path().join("cache");
    for needle in [
        "CLIP_OFFLINE".to_string(),
        "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt".to_string(),
        cache.join("ViT-B--32/ViT-B-32.pt").display().to_string(),
        "from the Hugging Face copy openai/clip-vit-base-patch32".to_string(),
        "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors"
            .to_string(),
        cache
            .join("openai--clip-vit-base-patch32/config.json")
            .display()
            .to_string(),
    ] {
        assert!(msg.contains(&needle), "{needle}: {msg}");
    }
    // The Hugging Face folder placed by hand is the model from then on.
    let folder = cache.join("openai--clip-vit-base-patch32");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("config.json"), CONFIG).unwrap();
    std::fs::write(folder.join("model.safetensors"), tiny()).unwrap();
    assert_eq!(hub.resolve("ViT-B/32").unwrap(), folder);
}

#[test]
fn verify_checks_the_source_that_is_cached() {
    let mut routes = hf_routes(TINY_SHA);
    routes.push((openai_path(), Route::Status(404)));
    let server = start(routes);
    let tmp = TempDir::new().unwrap();
    let hub = mirrored(&server, &tmp, false);
    hub.resolve("ViT-B/32").unwrap();
    let entry = hub.registry().get("ViT-B/32").unwrap();
    let checks = hub.verify(entry).unwrap();
    assert_eq!(
        checks,
        vec![
            (
                "openai--clip-vit-base-patch32/config.json".to_string(),
                clip_hub::FileCheck::StructureSound
            ),
            (
                "openai--clip-vit-base-patch32/model.safetensors".to_string(),
                clip_hub::FileCheck::StructureSound
            ),
        ]
    );
}
