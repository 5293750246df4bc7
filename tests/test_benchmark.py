"""benchmarks/throughput.py runs and writes its table (one cheap case, two short epochs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_throughput_benchmark_writes_ratios(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--profile", "smoke",
           "--dataset", "hymenoptera", "--backbone", "mobilenet_025", "--batch-size", "32",
           "--images", "300", "--epochs", "1", "--cases", "frozen_in_loop"]
    env = {**os.environ, "TLU_BUILD_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, timeout=600)
    result = json.loads((tmp_path / "smoke" / "benchmark.json").read_text())
    assert result["images"] == 288  # 300 asked (245 images, 55 of them twice): 9 batches of 32
    assert result["batch_size"] == 32 and result["dataset"] == "hymenoptera"
    (row,) = result["cases"]
    assert row["case"] == "frozen_in_loop" and row["real_img_s"] > 0 and row["synthetic_img_s"] > 0
    assert abs(row["ratio"] - row["real_img_s"] / row["synthetic_img_s"]) < 0.01


def test_text_embedding_benchmark_compares_padded_and_trimmed(tmp_path):
    import pytest

    from tlutils.course import assets

    folder = assets.cache_root() / "models" / assets.MODELS["all-MiniLM-L6-v2"].folder
    if not folder.is_dir():
        pytest.skip("the transformer is not in the cache")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "text_embedding.py"), "--sentences", "64",
           "--batch-size", "32", "--repeats", "1"]
    env = {**os.environ, "TLU_BUILD_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
           "TLU_PROFILE": "smoke"}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, timeout=600, capture_output=True)
    result = json.loads((tmp_path / "smoke" / "text_embedding.json").read_text())
    assert result["sentences"] == 64 and result["padded_per_s"] > 0 < result["trimmed_per_s"]
    assert result["max_abs_diff"] < 1e-4, "trimming must not change the embeddings"
    assert abs(result["ratio"] - result["trimmed_per_s"] / result["padded_per_s"]) < 0.01
