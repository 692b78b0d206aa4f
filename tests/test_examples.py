"""The examples of using the tricks in other loops run as the README shows (here at a tiny size, on the tiny
BERT and the bundled SST-2 sentences)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize("script, extra", [
    ("transformers_trainer_fgm.py", ["--tricks", "fgm"]),
    ("accelerate_loop_rdrop.py", ["--tricks", "rdrop", "fgm", "--grad-accum", "2"]),
])
def test_example_runs(script, extra, tiny_bert, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "examples" / script), "--model", str(tiny_bert), "--limit", "64",
           "--max-steps", "3", "--batch-size", "8", *extra]
    if script.startswith("transformers"):
        cmd += ["--output-dir", str(tmp_path / "out")]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"dev accuracy (\d\.\d+)", proc.stdout)
    assert m and 0.0 <= float(m.group(1)) <= 1.0, proc.stdout[-2000:]
