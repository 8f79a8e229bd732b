//! The HTTP API's request bodies, through the real router with the committed fixture model:
//! JSON parsing, input shapes, base64, image decoding and every handler. The first byte picks
//! the endpoint. A panic is a bug; so is a 500 (every bad body must be a 4xx).
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: [&str; 5] = [
    "/v1/embeddings",
    "/v1/classify",
    "/v1/similarity",
    "/v1/moderate",
    "/v1/search",
];

fn router() -> &'static axum::Router {
    static ROUTER: OnceLock<axum::Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/models/tiny-vit.safetensors");
        let clip = clip::Clip::load(model).expect("the fixture model loads");
        clip_serve::Server::new(clip, clip_serve::ServeOptions::default())
            .expect("server")
            .into_router()
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let route = ROUTES[pick as usize % ROUTES.len()];
    let request = Request::post(route)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let response = runtime().block_on(router().clone().oneshot(request)).unwrap();
    let status = response.status().as_u16();
    assert!(
        status < 500 || status == 503 || status == 504,
        "{route} answered {status}"
    );
});
