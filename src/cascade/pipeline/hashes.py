"""Content hashes recorded in stage manifests: of data files, and of a checkpoint's weights."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(checkpoint: Path) -> str:
    """One hash over a checkpoint's tensors (names, dtypes, shapes and values, in name
    order), so two stages' outputs compare equal exactly when their weights do, whatever
    the file layout or the metadata in the safetensors header."""
    import torch
    from safetensors import safe_open

    digest = hashlib.sha256()
    for path in sorted(checkpoint.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            for name in sorted(fh.keys()):
                tensor = fh.get_tensor(name).contiguous()
                digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
                digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
