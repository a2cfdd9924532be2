"""GPU check of every paper preset: bf16 on CUDA against float32 on CPU, on the tiny stand-ins (cosine >= 0.999).

Not part of `make test` (CI has no GPU). Run where a GPU is lent, from the repo root:
    python -m tests.gpu_check [TOKENIZERS]
TOKENIZERS is a folder written by `tests.standins.save_tokenizers` (for a machine without the model packages).
Prints one line per preset and side, and exits 1 if any cosine is below the bar.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

BAR = 0.999


def main() -> int:
    import huggingface_hub.constants as constants

    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import PRESETS
    from tests import standins
    from tests.test_presets import TEXTS

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    tokenizers = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    constants.HF_HUB_CACHE = str(standins.build(Path(tempfile.mkdtemp()), tokenizers))
    constants.HF_HUB_OFFLINE = True
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    worst = 1.0
    for name in standins.STANDIN_PRESETS:
        preset = PRESETS[name].for_task("scifact")
        cpu = Embedder(preset, load_model(preset, "cpu", "float32"))
        gpu = Embedder(preset, load_model(preset, "cuda", "auto"))
        assert gpu.loaded.dtype == torch.bfloat16 and next(gpu.loaded.model.parameters()).is_cuda
        for is_query in (True, False):
            a, b = cpu.encode(TEXTS, is_query).embeddings, gpu.encode(TEXTS, is_query).embeddings
            cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            worst = min(worst, float(cosine.min()))
            print(f"{name:24s} {'query' if is_query else 'document':8s} cosine min {cosine.min():.5f} "
                  f"mean {cosine.mean():.5f}  head equal: {torch.equal(cpu.loaded.lm_head, gpu.loaded.lm_head.cpu())}")
    print(f"worst cosine {worst:.5f} ({'ok' if worst >= BAR else 'BELOW'} the bar {BAR})")
    return 0 if worst >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
