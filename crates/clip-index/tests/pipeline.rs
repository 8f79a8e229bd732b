//! The indexer on the tiny fixture model: duplicates inside one run share one vector, failures are
//! recorded with their reason, and switching the space re-embeds without touching the other's vectors.

use clip_fixtures::committed;
use clip_index::{
    index, CatalogStore, IndexOptions, ProgressEvent, Space, SqliteVectors, VectorStore, VectorType,
};

#[test]
fn duplicates_share_a_vector_and_spaces_stay_apart() {
    let model_path = committed("models/tiny-vit.safetensors");
    let model = clip::Clip::load(&model_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let cat = committed("images/good/chelsea_small.bmp");
    std::fs::copy(&cat, photos.join("a.bmp")).unwrap();
    std::fs::copy(&cat, photos.join("b.bmp")).unwrap();
    std::fs::write(photos.join("broken.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let mut store = CatalogStore::open(&dir.path().join("i.db")).unwrap();
    let space = Space::of(
        &model,
        &model_path.display().to_string(),
        &Default::default(),
    )
    .unwrap();
    let opts = IndexOptions {
        batch_size: 1,
        workers: 2,
        ..Default::default()
    };
    let mut events = Vec::new();
    let report = index(
        &model,
        &mut store,
        &space,
        std::slice::from_ref(&photos),
        &opts,
        &mut |e| events.push(e),
    )
    .unwrap();
    assert_eq!(
        (report.found, report.embedded, report.reused),
        (3, 1, 1),
        "{report:?}"
    );
    assert_eq!(report.failed.len(), 1);
    assert_eq!(events.first(), Some(&ProgressEvent::Total(3)));
    let done: u64 = events
        .iter()
        .map(|e| {
            if let ProgressEvent::Done(n) = e {
                *n
            } else {
                0
            }
        })
        .sum();
    assert_eq!(done, 3, "every file is reported done once");
    assert!(
        report.failed[0].0.ends_with("broken.png") && !report.failed[0].1.contains("broken.png"),
        "{report:?}"
    );
    assert_eq!(store.status(Some(&space)).unwrap().images, 2);
    assert_eq!(
        SqliteVectors::new(&mut store, space.clone(), VectorType::F32)
            .count()
            .unwrap(),
        1
    );

    // EXIF rotation is another preprocessing, so another space: embedded again, the first kept.
    let mut rotating = opts.clone();
    rotating.decode.apply_exif_orientation = true;
    let exif = Space::of(&model, &model_path.display().to_string(), &rotating.decode).unwrap();
    assert_ne!(exif.id, space.id);
    let again = index(&model, &mut store, &exif, &[photos], &rotating, &mut |_| {}).unwrap();
    assert_eq!(again.embedded, 1);
    assert_eq!(
        SqliteVectors::new(&mut store, space, VectorType::F32)
            .count()
            .unwrap(),
        1
    );
    assert_eq!(store.status(None).unwrap().space, Some(exif));
}
