"""The interface every LM family implements (see export/families/__init__.py)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from ..config import ExportError


def keep_last(hidden: torch.Tensor, logits_keep: torch.Tensor) -> torch.Tensor:
    """The last `logits_keep[0]` positions of `hidden` [B,S,D] (traced as an index_select)."""
    S = hidden.shape[1]
    idx = torch.arange(S - logits_keep[0], S, device=hidden.device)
    return torch.index_select(hidden, 1, idx)


class Family:
    #: the name written as lang.family in configs and in the manifest
    name: str = ""
    #: `model_type` of the config.json the factory loads (after prepare_lm_dir)
    model_type: str = ""
    #: transformers class the factory must produce (checked after the build)
    hf_class: str = ""
    #: OpenFlamingo's decoder_layers_attr_name
    decoder_layers_attr: str = ""
    #: the decoder graph takes `position_ids` (rotary / learned positions); else positions are implicit (ALiBi)
    uses_position_ids: bool = False
    #: one line for --help / error messages
    description: str = ""

    # ---------------------------------------------------------------- LM folder and random configs
    def released_model_types(self) -> Tuple[str, ...]:
        """`model_type` values a released LM folder of this family may carry in its config.json."""
        return (self.model_type,)

    def read_lm_config(self, path: Path) -> dict:
        cj = Path(path) / "config.json"
        if not cj.is_file():
            raise ExportError(f"LM folder {path} has no config.json (a Hugging Face model folder, as released, "
                              "is expected)")
        try:
            return json.loads(cj.read_text())
        except json.JSONDecodeError as e:
            raise ExportError(f"{cj} is not valid JSON ({e})")

    def prepare_lm_dir(self, path: Path, workdir: Path, log=None) -> Path:
        """The folder open_flamingo's factory loads, made from the released folder `path` (default: itself,
        after checking its model_type)."""
        conf = self.read_lm_config(path)
        mt = conf.get("model_type")
        if mt not in self.released_model_types():
            raise ExportError(f"{Path(path) / 'config.json'}: model_type {mt!r} does not match lang.family "
                              f"{self.name} (expects {self.released_model_types()[0]!r}); fix lang.family or "
                              "lang.path")
        return Path(path)

    def random_lm_dir(self, conf: dict, seed: int, workdir: Path) -> Path:
        """A randomly initialised LM from a Hugging Face config mapping, saved where the factory can load it."""
        from transformers import AutoConfig, AutoModelForCausalLM

        conf_obj = AutoConfig.for_model(**dict(conf))
        torch.manual_seed(seed)
        lm = AutoModelForCausalLM.from_config(conf_obj)
        d = Path(workdir) / "lm"
        lm.save_pretrained(str(d), safe_serialization=True)
        return d

    def check_config_mapping(self, conf: dict, where: str) -> None:
        mt = conf.get("model_type")
        if mt != self.model_type:
            raise ExportError(f"{where}: `lang.config.model_type` is {mt!r} but lang.family {self.name} "
                              f"needs {self.model_type!r}")

    def ignorable_unused_lm_key(self, key: str) -> bool:
        """A weight of the LM folder that transformers does not load and that is harmless to drop (e.g. a
        non-persistent buffer an older transformers saved). Everything else unused is an error."""
        return False

    def after_build(self, lm, lm_dir: Path) -> None:
        """Hook run on the factory-built LM (FlamingoLMMixin applied, vocabulary resized)."""

    # ---------------------------------------------------------------- checkpoints
    def fix_checkpoint_keys(self, sd: dict, known: set) -> Tuple[dict, List[str]]:
        """Known, harmless layout differences of released checkpoints (returns the new dict and notes)."""
        return sd, []

    # ---------------------------------------------------------------- shapes, graph, math
    def dims(self, lm) -> dict:
        raise NotImplementedError

    def graph_inputs(self) -> List[str]:
        """Decoder graph inputs before the KV cache."""
        inputs = ["input_ids", "attention_mask"]
        if self.uses_position_ids:
            inputs.append("position_ids")
        return inputs + ["media_index", "vision_latents", "logits_keep"]

    def run_decoder(self, lm, input_ids, attention_mask, position_ids: Optional[torch.Tensor], logits_keep,
                    pasts) -> Tuple[torch.Tensor, list]:
        """Embedding, the real (FlamingoLayer-wrapped) decoder blocks with an explicit KV cache, final norm and
        head on the last `logits_keep` positions. Returns (logits, [(key [B,H,T,Dh], value [B,H,T,Dh])...])."""
        raise NotImplementedError

    def torch_forward_kwargs(self, positions: torch.Tensor) -> dict:
        """Extra arguments of the PyTorch LM forward for parity/goldens (HF-generate positions)."""
        return {"position_ids": positions} if self.uses_position_ids else {}


# ------------------------------------------------------------------------------------------------------
# helpers shared by the families that convert a released LM folder
# ------------------------------------------------------------------------------------------------------

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def fmt_keys(keys, n=6) -> str:
    keys = sorted(keys)
    s = ", ".join(keys[:n])
    return s + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def weight_files(folder: Path) -> List[Path]:
    """The weight files of a Hugging Face model folder (single file or sharded with an index); an error naming
    what is missing otherwise."""
    folder = Path(folder)
    for name in INDEX_FILES:
        idx = folder / name
        if idx.is_file():
            try:
                shards = sorted(set(json.loads(idx.read_text())["weight_map"].values()))
            except (json.JSONDecodeError, KeyError) as e:
                raise ExportError(f"{idx}: not a weight index ({e})")
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise ExportError(f"LM folder {folder}: {len(missing)} weight shard(s) listed in {name} are missing: "
                                  f"{fmt_keys(missing)}; the download is incomplete (download the folder again)")
            return [folder / s for s in shards]
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return [folder / name]
    raise ExportError(f"LM folder {folder} has no weights ({' / '.join(WEIGHT_FILES + INDEX_FILES)}); the download "
                      "is incomplete (download the whole folder, e.g. with --download)")


def load_weight_file(path: Path, lazy: bool = False) -> dict:
    """A weight file's state dict; with `lazy`, a torch zip archive's tensors are read when used
    (export/staged.py LazyTensor)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        from ..staged import is_torch_zip, lazy_state_dict

        sd = lazy_state_dict(path) if lazy and is_torch_zip(path) else torch.load(str(path), map_location="cpu")
    except Exception as e:  # truncated / corrupt downloads
        raise ExportError(f"{path}: cannot be read ({type(e).__name__}: {e}); the file is truncated or corrupt "
                          "(download it again)")
    if not isinstance(sd, dict):
        raise ExportError(f"{path}: not a state dict")
    return sd


def linked_copy(src: Path, dst: Path, skip=()) -> None:
    """dst/ with a symlink to every file of src/ except `skip` (no copying of gigabytes)."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in sorted(Path(src).iterdir()):
        if p.name in skip or not p.is_file():
            continue
        (dst / p.name).symlink_to(p.resolve())


@contextlib.contextmanager
def full_rotary_tables(rotaries):
    """Inside, every given rotary embedding module (transformers' LlamaRotaryEmbedding / IdeficsEmbedding: a
    `forward(x, seq_len)` slicing `cos_cached` / `sin_cached` with a Python int, which a trace would freeze)
    returns its whole cos/sin tables whatever `seq_len` it is given; apply_rotary_pos_emb gathers the rows of
    position_ids, so the numbers are the same."""
    saved = []
    for rot in rotaries:
        saved.append((rot, rot.forward))

        def full(x, seq_len=None, _rot=rot):
            return _rot.cos_cached.to(dtype=x.dtype), _rot.sin_cached.to(dtype=x.dtype)

        rot.forward = full
    try:
        yield
    finally:
        for rot, fwd in saved:
            rot.forward = fwd
