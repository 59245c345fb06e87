//! Demonstration selection: random determinism across batch sizes and shards; RICES ordering, ties,
//! exclusion and cache invalidation (with a fake embedder).

use flamingo_eval::benchmark::rices::{self, Embeddings, ImageEmbedder};
use flamingo_eval::benchmark::spec::ContentHash;
use flamingo_eval::benchmark::{demos, Benchmark};
use ndarray::Array2;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn random_demos_do_not_depend_on_batching_or_sharding() {
    // The demo VQA benchmark (36 demonstration questions, 12 queries) with two trials.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("benchmarks/demo_vqa.yaml"))
        .unwrap()
        .replace("seeds: [42]", "seeds: [42, 7]")
        .replace("../", &format!("{}/", root().display()));
    std::fs::write(dir.path().join("b.yaml"), text).unwrap();
    let b = Benchmark::load(&dir.path().join("b.yaml")).unwrap();
    for &shot in &[0usize, 4, 32] {
        for trial in 0..2 {
            let all = b.eval_indices(trial).unwrap();
            let full = b.requests_for(shot, trial, &all).unwrap().requests;
            // Batches of 1, 2, 5; shards of 2 and 3 (round-robin), processed in reverse order.
            for batch in [1usize, 2, 5] {
                let mut got = vec![];
                for chunk in all.chunks(batch) {
                    got.extend(b.requests_for(shot, trial, chunk).unwrap().requests);
                }
                assert_eq!(got.iter().map(|r| (&r.sample_id, &r.demo_ids, &r.text_only_demo_ids, &r.prompt)).collect::<Vec<_>>(),
                           full.iter().map(|r| (&r.sample_id, &r.demo_ids, &r.text_only_demo_ids, &r.prompt)).collect::<Vec<_>>());
            }
            for shards in [2usize, 3] {
                for s in (0..shards).rev() {
                    let mine: Vec<usize> = all.iter().copied().skip(s).step_by(shards).collect();
                    let got = b.requests_for(shot, trial, &mine).unwrap().requests;
                    for (r, &q) in got.iter().zip(&mine) {
                        let f = &full[all.iter().position(|&x| x == q).unwrap()];
                        assert_eq!((&r.demo_ids, &r.text_only_demo_ids, &r.prompt), (&f.demo_ids, &f.text_only_demo_ids, &f.prompt));
                    }
                }
            }
            // The demos are distinct and come from the demonstration split.
            for r in &full {
                let ids = if shot == 0 { &r.text_only_demo_ids } else { &r.demo_ids };
                assert_eq!(ids.len(), b.effective_shots(shot));
                let mut u = ids.clone();
                u.sort();
                u.dedup();
                assert_eq!(u.len(), ids.len());
            }
        }
    }
    // Different trial seeds give different demonstrations.
    let a = b.requests(4, 0, None).unwrap().requests;
    let c = b.requests(4, 1, None).unwrap().requests;
    assert_ne!(a.iter().map(|r| &r.demo_ids).collect::<Vec<_>>(), c.iter().map(|r| &r.demo_ids).collect::<Vec<_>>());
}

#[test]
fn random_selection_excludes_the_query_and_rejects_oversized_requests() {
    let qs: Vec<usize> = (0..10).collect();
    for seed in 0..50u64 {
        let d = demos::random_demos(&qs, 9, seed, &format!("q{seed}"), Some(3)).unwrap();
        assert!(!d.contains(&3));
        assert_eq!(d.len(), 9);
    }
    let e = demos::random_demos(&qs, 10, 1, "q", Some(3)).unwrap_err().to_string();
    assert!(e.contains("sample q") && e.contains("only 9"), "{e}");
    // Query set: a subset of the requested size, deterministic per seed.
    let a = demos::query_set(100, 20, 7);
    assert_eq!(a, demos::query_set(100, 20, 7));
    assert_eq!(a.len(), 20);
    assert_eq!(demos::query_set(10, 2048, 7), qs);
}

/// A fake embedder: fixed vectors per file name, counting calls.
struct Fake {
    key: String,
    calls: usize,
    table: Vec<(String, Vec<f32>)>,
}

impl ImageEmbedder for Fake {
    fn cache_key(&self) -> String {
        self.key.clone()
    }
    fn embed(&mut self, images: &[PathBuf]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.calls += images.len();
        Ok(images
            .iter()
            .map(|p| {
                let n = p.file_name().unwrap().to_string_lossy().to_string();
                self.table.iter().find(|(k, _)| n.contains(k.as_str())).map(|(_, v)| v.clone()).unwrap_or(vec![0.0, 0.0, 1.0])
            })
            .collect())
    }
}

#[test]
fn rices_orders_most_similar_last_with_stable_ties() {
    // demo rows (images): 0 → [1,0], 1 → [0.8,0.6], 2 → [0,1]; demos 0..5 map to images 0,1,1,2,0
    let demos_m = Embeddings::from_rows(vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]]).unwrap();
    let q = Embeddings::from_rows(vec![vec![2.0, 0.0], vec![0.0, 3.0]]).unwrap();
    let image_of = [0u32, 1, 1, 2, 0];
    let r = rices::retrieve(q.data.view(), demos_m.data.view(), &image_of, 3, &[None, None]).unwrap();
    // Query 0 ranking: demo 0 (1.0), demo 4 (1.0, tie → higher index second), demo 1 (0.8) → reversed.
    assert_eq!(r[0], vec![1, 4, 0]);
    // Query 1 ranking: demo 3 (1.0), demos 1, 2 (0.6 tie → 1 first) → reversed.
    assert_eq!(r[1], vec![2, 1, 3]);
    // Excluding demo 0 (same id as the query) for query 0.
    let r = rices::retrieve(q.data.view(), demos_m.data.view(), &image_of, 2, &[Some(0), None]).unwrap();
    assert_eq!(r[0], vec![1, 4]);
    // Results do not depend on how many queries are retrieved together.
    let many = Array2::from_shape_fn((200, 2), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
    let mut many = many;
    rices::normalise_rows(&mut many);
    let all = rices::retrieve(many.view(), demos_m.data.view(), &image_of, 4, &vec![None; 200]).unwrap();
    for i in [0usize, 63, 64, 65, 199] {
        let one = rices::retrieve(many.slice(ndarray::s![i..i + 1, ..]), demos_m.data.view(), &image_of, 4, &[None]).unwrap();
        assert_eq!(one[0], all[i]);
    }
}

#[test]
fn rices_benchmark_requests_and_cache_invalidation() {
    let dir = tempfile::tempdir().unwrap();
    // Copy the demo VQA benchmark with RICES selection and a private cache directory.
    let text = std::fs::read_to_string(root().join("benchmarks/demo_vqa.yaml"))
        .unwrap()
        .replace("  method: random", "  method: rices")
        .replace("../", &format!("{}/", root().display()));
    let bench = dir.path().join("rices.yaml");
    std::fs::write(&bench, format!("{text}cache_dir: {}\n", dir.path().join("cache").display())).unwrap();

    let mut b = Benchmark::load(&bench).unwrap();
    let e = b.requests(4, 0, None).unwrap_err().to_string();
    assert!(e.contains("RICES") && e.contains("--model"), "{e}");

    let table = vec![
        ("000000000013".to_string(), vec![1.0, 0.0, 0.0]), // query image 13 (skateboard)
        ("000000000007".to_string(), vec![0.9, 0.1, 0.0]), // baseball: most similar
        ("000000000008".to_string(), vec![0.7, 0.3, 0.0]),
    ];
    let mut fake = Fake { key: "fake-v1".into(), calls: 0, table: table.clone() };
    b.prepare_rices(&mut fake).unwrap();
    assert_eq!(fake.calls, 12 + 4); // distinct images only
    let set = b.requests(4, 0, None).unwrap();
    let r = set.requests.iter().find(|r| r.sample_id == "13000").unwrap();
    // Image 8's three questions (8000..8002) tie below image 7's (7000..7002): ranking 7000, 7001, 7002,
    // 8000 → reversed, most similar last.
    assert_eq!(r.demo_ids, vec!["8000", "7002", "7001", "7000"]);
    assert!(r.media.last().unwrap() == &flamingo_eval::benchmark::Media::Image(b.query.samples[b.query.position("13000").unwrap()].media.path().to_path_buf()));
    // 0 shots: the two text-only demos are the retrieved neighbours.
    let z = b.requests(0, 0, None).unwrap();
    assert_eq!(z.requests.iter().find(|r| r.sample_id == "13000").unwrap().text_only_demo_ids, vec!["7001", "7000"]);

    // Cached: a second embedder with the same key is not called.
    let mut again = Fake { key: "fake-v1".into(), calls: 0, table: table.clone() };
    b.prepare_rices(&mut again).unwrap();
    assert_eq!(again.calls, 0);
    // A different model key invalidates the cache.
    let mut other = Fake { key: "fake-v2".into(), calls: 0, table: table.clone() };
    b.prepare_rices(&mut other).unwrap();
    assert_eq!(other.calls, 16);
}

#[test]
fn rices_cache_key_follows_image_content() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.jpg");
    std::fs::write(&img, b"one").unwrap();
    let imgs = vec![img.clone()];
    let k1 = rices::cache_key("m", &imgs, ContentHash::Bytes).unwrap();
    let mut fake = Fake { key: "m".into(), calls: 0, table: vec![] };
    rices::embed_cached(&mut fake, &imgs, dir.path(), ContentHash::Bytes, 8).unwrap();
    rices::embed_cached(&mut fake, &imgs, dir.path(), ContentHash::Bytes, 8).unwrap();
    assert_eq!(fake.calls, 1);
    std::fs::write(&img, b"two").unwrap(); // same size, new content
    assert_ne!(k1, rices::cache_key("m", &imgs, ContentHash::Bytes).unwrap());
    rices::embed_cached(&mut fake, &imgs, dir.path(), ContentHash::Bytes, 8).unwrap();
    assert_eq!(fake.calls, 2);
    // A cache file written for another key is never used, even under the expected name.
    let key = rices::cache_key("m", &imgs, ContentHash::Bytes).unwrap();
    assert!(rices::read_cache(&dir.path().join("rices").join(format!("{}.emb", &key[..32])), &format!("{key}x")).is_none());
    let _ = Path::new("");
}
