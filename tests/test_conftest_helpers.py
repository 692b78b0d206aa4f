"""The suite's own switches: shared_data skips (or fails under NLP_CV_TRICKS_REQUIRE_SHARED) with the missing
path as its reason, and --runslow runs the tests marked slow."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SAMPLE = '''
import pytest
from conftest import shared_data


def test_needs_shared():
    shared_data("no-such-dataset/train.txt")


@pytest.mark.slow
def test_slow():
    pass
'''


def _pytest(tmp_path, *args, env=None):
    d = tmp_path / "suite"
    d.mkdir(exist_ok=True)
    shutil.copy(TESTS / "conftest.py", d / "conftest.py")
    (d / "test_sample.py").write_text(SAMPLE)
    (d / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow\n")
    e = {k: v for k, v in os.environ.items() if k not in ("NLP_CV_TRICKS_REQUIRE_SHARED", "NLP_CV_TRICKS_DATA")}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", *args, str(d)],
                          cwd=d, env=e, capture_output=True, text=True, timeout=300)


def test_missing_shared_data_skips_naming_the_path_and_fails_under_ci(tmp_path):
    p = _pytest(tmp_path, env={"NLP_CV_TRICKS_DATA": str(tmp_path / "data")})
    assert p.returncode == 0, p.stdout
    assert "2 skipped" in p.stdout and "passed" not in p.stdout  # one for its data, one for being slow
    assert f"needs the shared dataset {tmp_path / 'data' / 'no-such-dataset' / 'train.txt'}" in p.stdout
    assert "marked slow: run with --runslow" in p.stdout
    p = _pytest(tmp_path, "--runslow", env={"NLP_CV_TRICKS_DATA": str(tmp_path / "data"),
                                            "NLP_CV_TRICKS_REQUIRE_SHARED": "1"})
    assert p.returncode == 1, p.stdout
    assert "1 failed, 1 passed" in p.stdout  # the slow test ran; the missing dataset is a failure
    assert "NLP_CV_TRICKS_REQUIRE_SHARED is set, so it must exist" in p.stdout
