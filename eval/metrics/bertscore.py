"""BERTScore (Zhang et al., 2020) with a local encoder — computed only when a model path is given; nothing is ever
downloaded.

F1 of greedy cosine matching between contextual token embeddings (special tokens excluded, no idf weighting, no
baseline rescaling), max over references as in the MEDIQA-M3G scorer. Absolute values depend on the encoder and
layer, so compare runs only with the same ``bertscore_model``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.core.errors import ConfigError


def greedy_f1(hyp: np.ndarray, ref: np.ndarray) -> float:
    """hyp: (m, d), ref: (n, d) token embeddings -> BERTScore F1."""
    if len(hyp) == 0 or len(ref) == 0:
        return 0.0
    h = hyp / np.linalg.norm(hyp, axis=1, keepdims=True)
    r = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    sim = h @ r.T
    p, rc = float(sim.max(axis=1).mean()), float(sim.max(axis=0).mean())
    return 0.0 if p + rc <= 0 else 2 * p * rc / (p + rc)


class BertScorer:
    def __init__(self, model_path: str | Path, layer: int = -1, device: str = "cpu"):
        path = Path(model_path)
        if not path.exists():
            raise ConfigError(f"BERTScore model not found: {path} (give a local folder; nothing is downloaded)")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self.layer, self.device = layer, device

    def embed(self, text: str) -> np.ndarray:
        enc = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=510,
                             return_special_tokens_mask=True)
        special = enc.pop("special_tokens_mask")[0].bool()
        with self._torch.no_grad():
            out = self.model(**{k: v.to(self.device) for k, v in enc.items()}, output_hidden_states=True)
        states = out.hidden_states[self.layer][0].float().cpu()
        return states[~special].numpy()

    def score(self, prediction: str, references: list[str]) -> float:
        hyp = self.embed(prediction)
        return max(greedy_f1(hyp, self.embed(r)) for r in references)
