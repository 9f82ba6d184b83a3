"""``bench/run_gpu.py --device cpu --quick``: every benchmark runs end to end against its reference
and appends one Markdown row each, with the device named, to OUT/benchmarks.md."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "run_gpu.py"


def test_quick_cpu_record_has_a_row_per_benchmark_with_a_ratio(tmp_path):
    spec = importlib.util.spec_from_file_location("run_gpu", SCRIPT)
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["run_gpu"] = bench  # its dataclass looks its module up
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    path = bench.main(["--device", "cpu", "--quick", "--out", str(tmp_path)])
    bench.main(["--device", "cpu", "--quick", "--out", str(tmp_path), "--only", "render"])  # appends, keeps history
    text = path.read_text(encoding="utf-8")
    assert text.count("### ") == 2 and "CPU (" in text and "--quick" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| benchmark")]
    names = [row.split(" | ")[0][2:] for row in rows]
    assert names == ["numeric step", "image–text step", "image–text step", "render", "diagnose", "render"]
    for row in rows:
        cells = row.strip("|").split(" | ")
        assert len(cells) == 6, row
        ratio = float(re.fullmatch(r"\s*([0-9.]+)× ?", cells[-1]).group(1))  # type: ignore[union-attr]
        assert 0 < ratio < 1000, row
    assert "bf16 autocast + channels-last" in text and "plain per-model loop" in text
