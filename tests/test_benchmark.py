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
