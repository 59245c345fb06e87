"""IDEFICS (export/families/idefics.py): the folder checks against a preset (bad input), the committed fixture
belongs to the folder the fixture builder makes, and the two cross-attention behaviours: transformers 4.33's
(uniform average of all images for tokens before the first image, padding images included) against the fixed
one (4.36.0+) that the default export and the committed tiny-idefics follow.

The fixture folder is rebuilt here (export/families/idefics_fixture.make_folder, deterministic; the EOS-row
heuristic runs the transformers 4.36.2 oracle, installed into .cache/ on first use).
"""
import json
import shutil

import numpy as np
import pytest
import torch

from .conftest import FIXTURES

TINY = FIXTURES / "tiny-idefics"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from export.families.idefics_fixture import make_folder

    return make_folder(tmp_path_factory.mktemp("idefics") / "hf", log=lambda s: None)


def _copy(folder, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(folder, d)
    return d


def _edit(path, **changes):
    conf = json.loads(path.read_text())
    for k, v in changes.items():
        node = conf
        *head, last = k.split(".")
        for h in head:
            node = node[h]
        node[last] = v
    path.write_text(json.dumps(conf))


def test_fixture_belongs_to_the_folder(folder):
    """The committed fixture's graphs come from this folder (same config hash-relevant sizes and weights)."""
    import onnxruntime as ort

    from export.families import idefics as fam
    from export.families.idefics_fixture import CONFIG

    model, _, _ = fam.load_folder(folder)
    sess = ort.InferenceSession(str(TINY / "vision_encoder.onnx"), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(5)
    px = torch.randn(2, 3, 64, 64, generator=g)
    tokens, _ = sess.run(None, {"pixels": px.numpy()})
    with torch.no_grad():
        want = model.model.vision_model(pixel_values=px).last_hidden_state.numpy()
    assert tokens.shape == (2, 17, 64)  # 16 patches + CLS (vision.cls_token: kept)
    assert np.abs(tokens - want).max() < 1e-4
    assert model.config.cross_layer_interval == CONFIG["cross_layer_interval"]


def test_folder_of_another_size_is_refused(folder, tmp_path):
    from export.config import ExportError
    from export.families import idefics as fam
    from export.presets import IDEFICS_PRESETS

    with pytest.raises(ExportError) as e:
        fam.check_folder(_copy(folder, tmp_path), IDEFICS_PRESETS["idefics-9b"])
    assert "config.json: hidden_size is 64 but preset idefics-9b (HuggingFaceM4/idefics-9b) has 4096" in str(e.value)
    assert "another IDEFICS size" in str(e.value)


def test_9b_folder_against_the_80b_preset_names_the_field(folder, tmp_path):
    """A folder with every 9B value is refused by the 80B preset, naming hidden_size."""
    from export.config import ExportError
    from export.families import idefics as fam
    from export.presets import IDEFICS_PRESETS

    d = _copy(folder, tmp_path)
    p9 = IDEFICS_PRESETS["idefics-9b"]
    _edit(d / "config.json", **{k: v for k, v in p9.config_fields().items() if k != "model_type"})
    _edit(d / "preprocessor_config.json", image_size=224)
    fam.check_folder(d, p9)  # every preset field matches: accepted
    with pytest.raises(ExportError, match=r"config.json: hidden_size is 4096 but preset idefics-80b .* has 8192"):
        fam.check_folder(d, IDEFICS_PRESETS["idefics-80b"])


def test_missing_vision_tower_is_refused(folder, tmp_path):
    from safetensors.torch import load_file, save_file

    from export.config import ExportError
    from export.families import idefics as fam

    d = _copy(folder, tmp_path)
    sd = load_file(str(d / "model.safetensors"))
    save_file({k: v for k, v in sd.items() if not k.startswith("model.vision_model.")}, str(d / "model.safetensors"))
    with pytest.raises(ExportError, match="no vision tower .*model.vision_model"):
        fam.check_folder(d)


@pytest.mark.parametrize("field,value,needle", [
    ("image_size", 224, "preprocessor_config.json: image_size is 224 but config.json vision_config.image_size is 64"),
    ("image_std", [0.5, 0.5, 0.5], "preprocessor_config.json: image_std is [0.5, 0.5, 0.5] but preset"),
    ("image_mean", [0.5, 0.5, 0.5], "preprocessor_config.json: image_mean is [0.5, 0.5, 0.5] but preset"),
])
def test_processor_config_mismatch_is_refused(folder, tmp_path, field, value, needle):
    from export.config import ExportError
    from export.families import idefics as fam
    from export.presets import IdeficsPreset

    d = _copy(folder, tmp_path)
    _edit(d / "preprocessor_config.json", **{field: value})
    # a preset of exactly the tiny structure, so that only the processor field differs
    c = json.loads((folder / "config.json").read_text())
    tiny = IdeficsPreset("tiny", "-", c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"],
                         cross_layer_interval=2, vocab_size=2048, vision_embed_dim=64, vision_layers=2, image_size=64,
                         patch_size=16, resampler_depth=2, resampler_n_latents=8, resampler_n_heads=2,
                         resampler_head_dim=16)
    fam.check_folder(folder, tiny)
    with pytest.raises(ExportError) as e:
        fam.check_folder(d, tiny)
    assert needle in str(e.value).replace(str(d) + "/", "")


def _logits_433(folder, prompts, images):
    """transformers 4.33.3 (the venv) as it is: logits of IdeficsProcessor's batch."""
    from export.families import idefics as fam
    from export.export_idefics import _pil

    model, tok, proc = fam.load_folder(folder)
    inp = fam.processor_inputs(tok, proc, prompts, [[_pil(n) for n in im] for im in images])
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in inp.items()}).logits.numpy()
    return inp, out


def test_transformers_433_bug_and_the_fixed_graph(folder):
    """4.33: tokens before the first image (BOS, instruction) attend to a uniform average of the images, and a
    left-padded row differs from the same prompt alone (the padding images are averaged too). The committed
    (fixed) graph gives the padded row exactly the logits of the row alone, and differs from 4.33 before the
    image."""
    from export.ortrun import OrtModel

    from export.export_idefics import PROMPT_2SHOT, PROMPT_ONE, _latents, _rows

    one = (["chelsea.png"],)
    inp1, alone = _logits_433(folder, [PROMPT_ONE], [one[0]])
    inp2, batch = _logits_433(folder, [PROMPT_2SHOT, PROMPT_ONE],
                              [["chelsea.png", "rocket.jpg", "coffee.png"], one[0]])
    n = inp1["input_ids"].shape[1]
    padded_433 = batch[1, -n:]
    assert np.abs(padded_433 - alone[0]).max() > 1e-2, "4.33's padding-image average should change the row"

    ort = OrtModel(TINY)
    outs = []
    for inp in (inp1, inp2):
        rows = _rows(inp)
        lat = _latents(ort, inp)
        lg, _ = ort.decode(rows.input_ids, rows.attention_mask, rows.position_ids, rows.media_index, lat,
                           rows.input_ids.shape[1], ort.empty_past(len(rows.input_ids)))
        outs.append(lg)
    fixed_alone, fixed_padded = outs[0][0], outs[1][1, -n:]
    assert np.abs(fixed_padded - fixed_alone).max() < 1e-4
    first_image = int(np.argmax(inp1["input_ids"][0] == ort.image_token))
    diff = np.abs(fixed_alone[:first_image] - alone[0, :first_image]).max()
    assert diff > 1e-2, f"pre-image logits of 4.33 and the fixed graph should differ (max {diff})"
    print(f"4.33 vs fixed, pre-image logits: max abs diff {diff:.3g}; 4.33 padded vs alone "
          f"{np.abs(padded_433 - alone[0]).max():.3g}")


def test_compat_export_matches_transformers_433(folder, tmp_path):
    """--cross-attn-compat transformers-4.33 exports graphs that match the venv's 4.33.3 (the parity check
    inside the export; rows alone) and says so in model.yaml."""
    import yaml

    from export.export_idefics import export_folder

    rep = export_folder(folder, tmp_path / "compat", compat="transformers-4.33", identity="random-init:0",
                        log=lambda s: None)
    assert rep["parity"]["reference_transformers"] == "4.33.3"
    assert rep["parity"]["max_abs_diff"] <= 1e-4
    m = yaml.safe_load((tmp_path / "compat" / "model.yaml").read_text())
    assert m["cross_attention"]["no_media"] == "uniform_all_media"
    fixed = yaml.safe_load((TINY / "model.yaml").read_text())
    assert fixed["cross_attention"]["no_media"] == "zero" and fixed["contract_version"] == 3


def test_end_of_utterance_is_recorded_when_the_tokenizer_was_trained_with_it(tmp_path):
    """The instruct variants' tokenizers list <end_of_utterance> among their additional special tokens
    (IdeficsProcessor's test): its id goes into special_tokens.end_of_utterance, where the runtime stops
    generating. The base tokenizer (the fixture's) has none; one outside the model's head is not recorded."""
    from export.families import idefics as fam
    from export.families.idefics_fixture import make_tokenizer

    tok = make_tokenizer(tmp_path / "base")
    assert fam.end_of_utterance_id(tok, 2050) is None
    tok.add_special_tokens({"additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]})
    eou = tok.convert_tokens_to_ids("<end_of_utterance>")
    assert eou == 2050 and tok("User:<end_of_utterance>", add_special_tokens=False).input_ids[-1] == eou
    assert fam.end_of_utterance_id(tok, 2051) == 2050
    said = []
    assert fam.end_of_utterance_id(tok, 2050, log=said.append) is None
    assert "outside the model's 2050-row head" in said[0]
