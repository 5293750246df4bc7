"""Sentence-embedding throughput of 09's transformer: every sentence padded to --tokens word
pieces, against batches sorted by length and trimmed to their longest sentence (text.by_length,
text.padded). Both run side by side in one process, on the same SST-2 training sentences,
after one warm-up pass each, and must give the same embeddings.

    python benchmarks/text_embedding.py                   # 1,000 sentences, 3 repeats
    KERAS_BACKEND=jax python benchmarks/text_embedding.py --sentences 2000

Writes build/<profile>/text_embedding.json (TLU_BUILD_DIR moves build/).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tlutils import text  # noqa: E402
from tlutils.course import profiles, report  # noqa: E402


def batches(ids: list[np.ndarray], batch_size: int, tokens: int | None) -> list[dict]:
    """Input batches in length order, trimmed, or padded to `tokens` when it is given."""
    out = [text.padded(ids, idx) for idx in text.by_length(ids, batch_size)]
    if tokens is None:
        return out
    return [{k: np.pad(v, ((0, 0), (0, tokens - v.shape[1]))) for k, v in b.items()} for b in out]


def timed(encoder, inputs: list[dict], repeats: int) -> tuple[float, np.ndarray]:
    """Best sentences/s over repeats (after a warm-up pass), and the embeddings."""
    result = np.concatenate([encoder.predict_on_batch(b) for b in inputs])
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for b in inputs:
            encoder.predict_on_batch(b)
        best = min(best, time.perf_counter() - t)
    return len(result) / best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    backbone, tokenizer = text.load_transformer(args.model)
    encoder = text.sentence_model(backbone)
    sentences = text.load_sst2("train")[0][: args.sentences]
    ids = text.token_ids(tokenizer, sentences, args.tokens)
    padded_s, padded_e = timed(encoder, batches(ids, args.batch_size, args.tokens), args.repeats)
    trimmed_s, trimmed_e = timed(encoder, batches(ids, args.batch_size, None), args.repeats)
    result = {"model": args.model, "backend": keras.backend.backend(), "device": profiles.device(),
              "sentences": len(ids), "tokens": args.tokens, "batch_size": args.batch_size,
              "mean_pieces": float(np.mean([len(r) for r in ids])),
              "padded_per_s": round(padded_s, 1), "trimmed_per_s": round(trimmed_s, 1),
              "ratio": round(trimmed_s / padded_s, 2),
              "max_abs_diff": float(np.abs(padded_e - trimmed_e).max())}
    path = report.build_dir(profiles.current()) / "text_embedding.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
