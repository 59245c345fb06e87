"""The trained demo model (export/demo_model/): CI never retrains. These tests check that the committed data,
tokenizer, weights and model directory belong together, and run a few training steps as a smoke test."""
import hashlib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "export" / "demo_model"
MODEL = REPO / "models" / "shapes-flamingo"


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_weights_are_the_exported_model():
    manifest = yaml.safe_load((MODEL / "model.yaml").read_text())
    assert manifest["name"] == "shapes-flamingo"
    assert manifest["source"]["checkpoint_sha256"] == sha(DEMO / "weights.safetensors"), (
        "models/shapes-flamingo was not exported from export/demo_model/weights.safetensors: run "
        "export/.venv/bin/python -m export.demo_model.export_demo")
    # every graph / tokenizer file matches the hash the manifest gives it (the runtime re-checks on load)
    text = (MODEL / "model.yaml").read_text()
    for f in sorted(MODEL.iterdir()):
        if f.name != "model.yaml":
            assert sha(f) in text, f"{f} does not match its hash in {MODEL / 'model.yaml'}"


def test_shapes_data_regenerates_byte_identically(tmp_path):
    from export.demo_model.shapes import write_benchmark_data

    write_benchmark_data(tmp_path / "shapes")
    assert tree(tmp_path / "shapes") == tree(REPO / "data" / "shapes")


def test_tokenizer_regenerates_byte_identically(tmp_path):
    from export.demo_model.tokenizer import train

    train(tmp_path / "tok")
    assert tree(tmp_path / "tok") == tree(DEMO / "tokenizer")


def test_training_smoke_is_deterministic(tmp_path):
    """A few steps of the real training loop (tiny batches): a finite loss, the same seed gives a
    byte-identical weights file, another seed does not, and the tensors are those of the committed weights."""
    import math

    from export.demo_model.train_tiny import train

    kw = dict(steps=3, batch_size=2, max_images=3, log=lambda s: None)
    a = train(out=tmp_path / "a.safetensors", **kw)
    b = train(out=tmp_path / "b.safetensors", **kw)
    c = train(out=tmp_path / "c.safetensors", seed=1, **kw)
    assert math.isfinite(a["final_loss_ema"])
    assert a["sha256"] == b["sha256"] == sha(tmp_path / "a.safetensors")
    assert c["sha256"] != a["sha256"]
    from safetensors.torch import load_file

    sd = load_file(str(tmp_path / "a.safetensors"))
    ref = load_file(str(DEMO / "weights.safetensors"))
    assert sorted(sd) == sorted(ref) and all(sd[k].shape == ref[k].shape for k in sd)


def test_binding_curriculum_limits_the_names_per_sequence():
    """The fast-binding curriculum: 2 colours (so 2 names) per binding sequence at the start of a run, all 5
    from CURRICULUM on; a sequence never holds more names than the stage allows, and every name it holds is
    bound to exactly one colour."""
    import numpy as np

    from export.demo_model import shapes, train_tiny as tt

    steps = 1000
    stages = [tt.curriculum_colours(s, steps, 0.3) for s in range(steps)]
    assert stages[0] == 2 and stages[-1] == len(shapes.COLOURS)
    assert stages == sorted(stages) and stages.index(len(shapes.COLOURS)) <= 300
    assert tt.curriculum_colours(0, 0, 0.3) == len(shapes.COLOURS)  # no curriculum without a step count
    assert tt.curriculum_colours(0, steps, 0.0) == len(shapes.COLOURS)  # off
    assert tt.curriculum_colours(0, steps) == tt.curriculum_colours(0, steps, tt.CURRICULUM)  # the default
    rng = np.random.RandomState(0)
    seen = 0
    for _ in range(400):
        text, scenes, spans = tt.make_sequence(rng, 9, max_colours=2)
        if "What is it called?" not in text:
            continue
        seen += 1
        names = {}
        for chunk, s in zip(text.split("<image>")[1:], scenes):
            name = chunk.split("Short answer:")[1].split(tt.EOC)[0]
            assert names.setdefault(s["colour"], name) == name
        assert len(names) <= 2 and len(set(names.values())) == len(names)
        assert len(spans) == 9 - len(names)  # loss on every answer whose colour was shown before
    assert seen > 100


def test_binding_share_scales_the_other_tasks():
    from export.demo_model import train_tiny as tt

    assert tt.task_probabilities() == tt.TASK_P
    p = tt.task_probabilities(0.6)
    assert abs(sum(p) - 1) < 1e-12 and p[3] == 0.6 and p[4] == tt.TASK_P[4]
    assert all(abs(p[i] / p[0] - tt.TASK_P[i] / tt.TASK_P[0]) < 1e-12 for i in range(3))
    import pytest

    with pytest.raises(ValueError, match="binding share 1.5"):
        tt.task_probabilities(1.5)


def test_copy_task_repeats_one_name_list_and_trains_from_the_second_chunk():
    """The copy task: every chunk of a sequence holds the same list of nonce names; the first chunk carries no
    loss (nothing to copy yet), every later one does."""
    import numpy as np

    from export.demo_model import shapes, train_tiny as tt

    rng = np.random.RandomState(3)
    for n in (1, 2, 5):
        text, scenes, spans = tt.make_sequence(rng, n, task_p=[0, 0, 0, 0, 1.0])
        chunks = text.split("\n")
        assert len(chunks) == len(scenes) == n
        lists = {c.removeprefix("<image>Output:").removesuffix(tt.EOC) for c in chunks}
        assert len(lists) == 1 and all(w in shapes.NONCE for w in lists.pop().split())
        assert len(spans) == n - 1
        assert all(text[a:b].endswith(tt.EOC) and a > len(chunks[0]) for a, b, _ in spans)


def test_task_shares_option_is_checked():
    import pytest

    from export.demo_model import train_tiny as tt

    assert tt.task_probabilities(task_p="0.2,0.2,0.1,0.3,0.2") == [0.2, 0.2, 0.1, 0.3, 0.2]
    with pytest.raises(ValueError, match="5 non-negative shares summing to 1"):
        tt.task_probabilities(task_p="0.5,0.5")
