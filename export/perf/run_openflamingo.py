"""Runs OpenFlamingo's own evaluation function (`evaluate_vqa` / `evaluate_captioning` from
open_flamingo/eval/evaluate.py at 655f693) on exactly the samples and demonstrations a flamingo-eval run used.

    python -m export.perf.run_openflamingo --of-eval DIR --model mid-b16 --task vqav2 --shots 4 \
        --fe-samples RUN/samples.jsonl --data .cache/perf/data --out of.json [--batch-size 8] [--threads 2]

DIR is a checkout of github.com/mlfoundations/open_flamingo at 655f693 (tag 2.0.1); its `open_flamingo/eval`
folder is used as is (the PyPI wheel lacks `eval/models`). Nothing of it is copied into this repository.

What is replaced, and why (everything else is OpenFlamingo's code path: its datasets, prompt functions,
`EvalModel.get_outputs`, `Flamingo.generate`, its post-processing):
* `EvalModel.__init__` loads weights through `create_model_and_transforms` from Hugging Face paths; here the
  same factory builds the model (export/build.py) and the benchmark's checkpoint is loaded into it, then the
  attributes `__init__` would set are set (device cpu, fp32, left padding).
* `utils.prepare_eval_samples` (random subset) → the flamingo-eval run's samples, in its order;
  `utils.sample_batch_demos_from_query_set` (random.sample) → the demonstrations flamingo-eval recorded for
  each sample (`demo_ids`, or `text_only_demo_ids` at 0 shots). Same demos, so predictions can be compared.
* `torch.distributed.all_gather_object` → a one-rank stand-in; `compute_cider` (SPICE needs a download)
  and `compute_vqa_accuracy` → record the predictions file OpenFlamingo wrote, return NaN (metrics are not
  timed; flamingo-eval's metrics are checked against the reference tools elsewhere).
The timed span is the `evaluate_*` call (model construction excluded).
"""
import argparse
import importlib.util
import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--of-eval", required=True, help="open_flamingo checkout (655f693)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--cache", default=".cache/perf")
    ap.add_argument("--task", choices=["vqav2", "coco"], required=True)
    ap.add_argument("--shots", type=int, required=True)
    ap.add_argument("--fe-samples", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda:N")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "amp", "amp_bf16", "amp_bfloat16", "bf16", "fp16"],
                    help="OpenFlamingo's model_args precision (eval/utils.py get_autocast / get_cast_dtype); amp_bf16 "
                         "is the bf16 autocast of its README, CUDA only")
    a = ap.parse_args(argv)

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    eval_dir = Path(a.of_eval) / "open_flamingo" / "eval"
    if not (eval_dir / "models" / "open_flamingo.py").exists():
        sys.exit(f"{eval_dir}/models/open_flamingo.py not found: --of-eval must be an open_flamingo checkout")
    sys.path.insert(0, str(eval_dir))
    try:  # evaluate.py imports roc_auc_score for HatefulMemes only; a machine without scikit-learn gets a stub
        import sklearn.metrics  # noqa: F401
    except ImportError:
        import types

        def _no_sklearn(*_a, **_k):
            raise RuntimeError("scikit-learn is not installed")

        sys.modules["sklearn"] = types.ModuleType("sklearn")
        sys.modules["sklearn.metrics"] = types.ModuleType("sklearn.metrics")
        sys.modules["sklearn.metrics"].roc_auc_score = _no_sklearn
    try:  # coco_metric.py imports COCOEvalCap at import time; compute_cider is replaced below (never called), so a
        # machine without pycocoevalcap (the lent GPU machine: its wheel is 104 MB) gets a class that refuses use
        import pycocoevalcap.eval  # noqa: F401
    except ImportError:
        import types

        class _NoCOCOEvalCap:
            def __init__(self, *_a, **_k):
                raise RuntimeError("pycocoevalcap is not installed")

        sys.modules["pycocoevalcap"] = types.ModuleType("pycocoevalcap")
        sys.modules["pycocoevalcap.eval"] = types.ModuleType("pycocoevalcap.eval")
        sys.modules["pycocoevalcap.eval"].COCOEvalCap = _NoCOCOEvalCap
    import utils as of_utils  # noqa: E402  (open_flamingo/eval/utils.py, as evaluate.py imports it)
    evaluate = _load_module("of_evaluate", eval_dir / "evaluate.py")
    of_models = _load_module("of_eval_models_open_flamingo", eval_dir / "models" / "open_flamingo.py")

    from .models import load_torch

    # --- the flamingo-eval run: samples in order, demonstrations per sample
    recs = [json.loads(line) for line in open(a.fe_samples) if line.strip()]
    recs = [r for r in recs if r["shot"] == a.shots and r["trial"] == 0]
    if not recs:
        sys.exit(f"{a.fe_samples}: no records for shot {a.shots}")
    demo_queue = [r["demo_ids"] if a.shots > 0 else r["text_only_demo_ids"] for r in recs]
    sample_ids = [r["sample_id"] for r in recs]

    # --- the model, as EvalModel.__init__ would leave it
    model, image_processor, tokenizer = load_torch(a.model, Path(a.cache))
    em = of_models.EvalModel.__new__(of_models.EvalModel)
    em.device = a.device
    em.model = model.to(a.device)
    em.model.eval()
    em.image_processor = image_processor
    em.tokenizer = tokenizer
    em.tokenizer.padding_side = "left"
    em.lm_name = a.model
    em.autocast = of_utils.get_autocast(a.precision)
    em.cast_dtype = of_utils.get_cast_dtype(a.precision)

    # --- instrumentation: images through the vision encoder, calls, prompts
    counts = {"vision_calls": 0, "vision_images": 0, "generate_calls": 0}

    def vis_hook(_m, inputs, _out):
        counts["vision_calls"] += 1
        counts["vision_images"] += int(inputs[0].shape[0])

    model.vision_encoder.register_forward_hook(vis_hook)
    prompts = []
    orig_get_outputs = em.get_outputs

    def get_outputs(batch_text, batch_images, **kw):
        prompts.extend(batch_text)
        counts["generate_calls"] += 1
        return orig_get_outputs(batch_text=batch_text, batch_images=batch_images, **kw)

    em.get_outputs = get_outputs

    # --- patches (see the module docstring)
    def prepare_eval_samples(test_dataset, num_samples, batch_size):
        if a.task == "vqav2":
            ids = [q["question_id"] for q in test_dataset.questions]
        else:
            ids = [x["cocoid"] for x in test_dataset.annotations]
        pos = {str(i): k for k, i in enumerate(ids)}
        subset = torch.utils.data.Subset(test_dataset, [pos[s] for s in sample_ids])
        return torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False,
                                           collate_fn=of_utils.custom_collate_fn)

    def sample_batch_demos_from_query_set(query_set, num_samples, batch_size):
        key = "question_id" if a.task == "vqav2" else "image_id"
        by_id = {str(x[key]): x for x in query_set}
        out = []
        for _ in range(batch_size):
            ids = demo_queue.pop(0)
            assert len(ids) == num_samples, (len(ids), num_samples)
            out.append([by_id[str(i)] for i in ids])
        return out

    of_utils.prepare_eval_samples = prepare_eval_samples
    of_utils.sample_batch_demos_from_query_set = sample_batch_demos_from_query_set
    torch.distributed.all_gather_object = lambda out, obj: out.__setitem__(0, obj)
    predictions = {}

    def record_vqa(result_path, *_):
        for p in json.load(open(result_path)):
            predictions[str(p["question_id"])] = p["answer"]
        return float("nan")

    def record_cider(result_path, annotations_path):
        for p in json.load(open(result_path)):
            predictions[str(p["image_id"])] = p["caption"]
        return {"CIDEr": float("nan")}

    evaluate.compute_vqa_accuracy = record_vqa
    evaluate.compute_cider = record_cider

    d = Path(a.data).resolve()
    args = argparse.Namespace(
        model="open_flamingo", rank=0, world_size=1, batch_size=a.batch_size, num_samples=len(recs),
        query_set_size=0, rices=False,
        vqav2_train_image_dir_path=str(d / "images" / "train2014"),
        vqav2_train_questions_json_path=str(d / "vqav2" / "v2_OpenEnded_mscoco_train2014_questions.json"),
        vqav2_train_annotations_json_path=str(d / "vqav2" / "v2_mscoco_train2014_annotations.json"),
        vqav2_test_image_dir_path=str(d / "images" / "val2014"),
        vqav2_test_questions_json_path=str(d / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"),
        vqav2_test_annotations_json_path=str(d / "vqav2" / "v2_mscoco_val2014_annotations.json"),
        coco_train_image_dir_path=str(d / "images" / "train2014"),
        coco_val_image_dir_path=str(d / "images" / "val2014"),
        coco_karpathy_json_path=str(d / "coco" / "dataset_coco.json"),
        coco_annotations_json_path=str(d / "coco" / "captions_val2014.json"),
    )
    # the demonstration pool is the whole train split, as in the flamingo-eval benchmark
    if a.task == "vqav2":
        args.query_set_size = len(json.load(open(args.vqav2_train_questions_json_path))["questions"])
    else:
        args.query_set_size = sum(x["split"] == "train" for x in json.load(open(args.coco_karpathy_json_path))["images"])

    cwd = os.getcwd()
    out_path = Path(a.out).resolve()
    os.chdir(out_path.parent)  # OpenFlamingo writes its temporary results file into the cwd
    t0 = time.perf_counter()
    if a.task == "vqav2":
        evaluate.evaluate_vqa(args, em, seed=42, num_shots=a.shots, dataset_name="vqav2")
    else:
        evaluate.evaluate_captioning(args, em, seed=42, num_shots=a.shots, dataset_name="coco")
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    os.chdir(cwd)
    fe_prompts = {r["sample_id"]: r["prompt"] for r in recs}
    report = {
        "tool": "openflamingo", "model": a.model, "task": a.task, "shots": a.shots, "samples": len(recs),
        "seconds": secs, "threads": torch.get_num_threads(), "batch_size": a.batch_size, "device": a.device,
        **counts,
        "prompts_identical": sum(p == fe_prompts[s] for p, s in zip(prompts, sample_ids)),
        "predictions": predictions,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if a.device.startswith("cuda"):
        report["cuda_max_allocated_bytes"] = torch.cuda.max_memory_allocated()
    out_path.write_text(json.dumps(report, indent=1))
    print(f"openflamingo {a.model} {a.task} {a.shots}-shot: {len(recs)} samples in {secs:.1f}s, "
          f"{counts['vision_images']} images through the vision encoder, prompts identical "
          f"{report['prompts_identical']}/{len(recs)}", file=sys.stderr)


if __name__ == "__main__":
    main()
