"""The hash of a checkpoint's weights recorded in its stage's manifest (data files: ``data.io.file_sha256``)."""

from __future__ import annotations

import hashlib
from pathlib import Path


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
