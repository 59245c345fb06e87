"""Test oracle: MosaicML's ORIGINAL model code (mosaic_gpt for OF-3B's MPT-1B, MPTForCausalLM for OF-9B's
MPT-7B), as shipped in the PyPI wheel `otter-ai==0.0.0a8` (folders otter_ai/models/mpt_redpajama/ and
otter_ai/models/mpt/). The wheel is downloaded with pip into .cache/oracle/ when first needed and its files are
only ever put into temporary LM folders, as a released Hugging Face folder carries its remote code. Nothing of
it is copied into the project.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "oracle"
WHEEL = "otter-ai==0.0.0a8"
WHEEL_FILE = "otter_ai-0.0.0a8-py3-none-any.whl"
FOLDERS = {"mosaic_gpt": "otter_ai/models/mpt_redpajama/", "mpt": "otter_ai/models/mpt/"}
# what a released folder's config.json maps to (anas-awadalla/mpt-1b-redpajama-200b, anas-awadalla/mpt-7b)
AUTO_MAP = {
    "mosaic_gpt": {"AutoConfig": "configuration_mosaic_gpt.MosaicGPTConfig",
                   "AutoModelForCausalLM": "mosaic_gpt.MosaicGPT"},
    "mpt": {"AutoConfig": "configuration_mpt.MPTConfig", "AutoModelForCausalLM": "modeling_mpt.MPTForCausalLM"},
}
# files of the released remote code the oracle needs (the triton/flash kernels are never imported with
# attn_impl: torch)
SKIP = {"__init__.py"}


def wheel_path() -> Path:
    whl = CACHE / WHEEL_FILE
    if not whl.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", WHEEL, "-d",
                            str(CACHE)], capture_output=True, text=True)
        if r.returncode != 0 or not whl.is_file():
            raise RuntimeError(f"cannot download the test oracle {WHEEL} from PyPI into {CACHE}:\n{r.stderr[-2000:]}")
    return whl


def put_remote_code(kind: str, folder: Path) -> None:
    """Write the original model code of `kind` (mosaic_gpt | mpt) into an LM folder, as released."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = FOLDERS[kind]
    with zipfile.ZipFile(wheel_path()) as z:
        for n in z.namelist():
            if n.startswith(prefix) and n.endswith(".py") and "/" not in n[len(prefix):]:
                name = n[len(prefix):]
                if name in SKIP:
                    continue
                (folder / name).write_bytes(z.read(n))


def copy_tokenizer(src: Path, folder: Path) -> None:
    for p in sorted(Path(src).iterdir()):
        if p.is_file():
            shutil.copyfile(p, folder / p.name)
