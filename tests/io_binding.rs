//! `--io-binding` (RuntimeOptions::io_binding): decoder calls through ONNX Runtime's IoBinding give exactly the
//! predictions and scores of plain `run` calls — greedy, beam search (row selections, shrinking batches) and
//! candidate scoring — on fp32 fixtures of both position schemes. With the binding the KV cache is a
//! device-resident one (outputs bound to the decoder device's memory, here the CPU's) whose rows are selected by
//! flamingo-eval's gather graph on that device: the same path a CUDA run takes.

mod common;

use common::*;
use flamingo_eval::model::{FlamingoModel, Prompt, RuntimeOptions, SearchParams};
use std::path::Path;

fn load(dir: &Path, io_binding: bool) -> FlamingoModel {
    FlamingoModel::load(dir, &RuntimeOptions { intra_threads: 1, io_binding, ..Default::default() }).unwrap_or_else(|e| panic!("{e:#}"))
}

fn prompts(model: &mut FlamingoModel) -> Vec<Prompt> {
    photo_prompts(model, 5)
}

#[test]
fn io_binding_gives_the_same_bits() {
    for name in ["tiny-gptneox", "tiny-mpt"] {
        let (mut plain, mut bound) = (load(&model(name), false), load(&model(name), true));
        let (pp, pb) = (prompts(&mut plain), prompts(&mut bound));
        let (rp, rb): (Vec<&Prompt>, Vec<&Prompt>) = (pp.iter().collect(), pb.iter().collect());
        let eoc = plain.tokenizer.endofchunk_id;
        for beams in [1, 3] {
            let p = SearchParams { num_beams: beams, max_new_tokens: 10, min_new_tokens: 0, length_penalty: 0.0, stop_tokens: vec![eoc] };
            let gathers = bound.stats.kv_device_gathers;
            let (a, b) = (plain.generate(&rp, &p).unwrap(), bound.generate(&rb, &p).unwrap());
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!((&x.tokens, x.score.to_bits()), (&y.tokens, y.score.to_bits()), "{name}: prompt {i}, {beams} beams");
            }
            // the cache stayed in the decoder device's memory: beam reorders and finished rows were gathered
            // there (greedy decoding of equal-length rows keeps every row in order until one finishes)
            if beams == 3 {
                assert!(bound.stats.kv_device_gathers > gathers, "{name}: no device-side row selection ran");
            }
        }
        assert_eq!(plain.stats.kv_device_gathers, 0);
        let cands: Vec<Vec<u32>> = ["yes", "no", "a cat on a mat"].iter().map(|t| plain.tokenizer.encode_continuation(t).unwrap()).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (x, y) in pp.iter().zip(&pb) {
            let (sa, sb) = (plain.score_candidates(x, &cands).unwrap(), bound.score_candidates(y, &cands).unwrap());
            for (u, v) in sa.iter().zip(&sb) {
                assert_eq!(bits(&u.token_logprobs), bits(&v.token_logprobs), "{name}: candidate scores");
            }
        }
    }
}
