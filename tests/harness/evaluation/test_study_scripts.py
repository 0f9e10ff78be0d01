"""bench/combine_rankers.py and bench/proxy_sensitivity.py on rank outputs written by ``write_ranking``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from harness.evaluation import stats
from harness.evaluation.combine import rank_average
from harness.evaluation.ranking import write_ranking

ROOT = Path(__file__).resolve().parents[3]
N = 60
ARCHS = [f"arch-{i}" for i in range(N)]
TRUTH = np.random.default_rng(0).normal(70.0, 10.0, N)


def ranking(folder: Path, score: np.ndarray, proxy: str | None = None, init: int = 0, batch: int = 0,
            archs: list[str] = ARCHS) -> None:
    meta = {"method": proxy or folder.name, "ground_truth": "test", "architectures": len(archs), "sample_seed": 0,
            "dataset": "digits"}
    if proxy:
        meta.update(proxy=proxy, proxy_config={"init_seed": init, "batch_seed": batch})
    write_ranking(folder, archs, score, TRUTH[:len(archs)], {}, meta)


def noisy(noise: float, seed: int) -> np.ndarray:
    return TRUTH + np.random.default_rng(seed).normal(0.0, noise, N)


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_combine_rankers_studies_every_pair_and_the_baseline(tmp_path):
    scores = {"spos": noisy(8, 1), "synflow": noisy(8, 2), "jacov": noisy(9, 3), "snip": noisy(12, 4),
              "params": noisy(10, 5)}
    for name, score in scores.items():
        ranking(tmp_path / name, score, proxy=None if name == "spos" else name)
    done = run("combine_rankers.py", str(tmp_path), "--out", str(tmp_path), "--bootstrap", "50")
    assert done.returncode == 0, done.stderr
    study = json.loads((tmp_path / "combinations.json").read_text())
    assert study["supernets"] == ["spos"] and sorted(study["proxies"]) == ["jacov", "params", "snip", "synflow"]
    by_name = {combo["name"]: combo for combo in study["combinations"]}
    assert len([c for c in by_name if c.count("+") == 1]) == 10  # every pair of 5
    combo = by_name["spos+synflow"]
    assert combo["kendall_tau"] == stats.kendall_tau(rank_average([scores["spos"], scores["synflow"]]), TRUTH)
    assert {row["name"] for row in study["versus_params"]} == {"spos", "synflow", "jacov", "snip"}
    assert 0.5 < study["vote"]["agreement"] <= 1.0
    text = (tmp_path / "combinations.md").read_text()
    assert "## Against params" in text and "majority vote of the three" in text


def test_combine_rankers_refuses_rankings_of_other_architectures(tmp_path):
    ranking(tmp_path / "a", noisy(5, 1))
    ranking(tmp_path / "b", noisy(5, 2)[:30], archs=ARCHS[:30])
    done = run("combine_rankers.py", str(tmp_path), "--out", str(tmp_path))
    assert done.returncode == 2 and "ranked other architectures" in done.stderr


def test_proxy_sensitivity_summarises_seeds_and_batches(tmp_path):
    for init, batch in [(0, 0), (1, 0), (2, 0), (0, 1)]:
        ranking(tmp_path / f"init{init}-batch{batch}" / "zico", noisy(8, 10 * init + batch), proxy="zico",
                init=init, batch=batch)
    runs = sorted(str(path) for path in tmp_path.glob("init*"))
    done = run("proxy_sensitivity.py", *runs, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    zico = json.loads((tmp_path / "sensitivity.json").read_text())["proxies"]["zico"]
    assert zico["init_seeds"] == [0, 1, 2] and zico["batch_seeds"] == [0, 1]
    taus = [stats.kendall_tau(noisy(8, 10 * init), TRUTH) for init in range(3)]
    assert np.allclose(zico["over_init_seeds"]["taus"], taus)
    assert np.isclose(zico["over_init_seeds"]["range"], max(taus) - min(taus))
    assert "| zico |" in (tmp_path / "sensitivity.md").read_text()
    empty = run("proxy_sensitivity.py", str(tmp_path / "nothing-here"), "--out", str(tmp_path))
    assert empty.returncode == 2 and "not a folder" in empty.stderr and "Traceback" not in empty.stderr
