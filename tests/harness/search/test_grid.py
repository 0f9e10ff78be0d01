"""The grid's process pool: its workers leave stop signals to the parent."""

import json
import os
import signal

from harness.interrupts import interruptible
from harness.search.grid import RunSpec, iter_grid
from harness.search.searcher import SEARCHERS, Searcher, register_searcher
from harness.space import Architecture, sample_architecture


class SignalReporting(Searcher):
    """Random search that writes, once per process, how that process handles SIGINT and SIGTERM."""

    def __init__(self, seed: int = 0, report: str = "") -> None:
        super().__init__(seed)
        path = os.path.join(report, f"{os.getpid()}.json")
        handlers = {sig.name: getattr(signal.getsignal(sig), "name", "a Python function")
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        blocked = sorted(s.name for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
        with open(path, "w") as handle:
            json.dump({**handlers, "blocked": blocked}, handle)

    def _ask(self) -> Architecture:
        return sample_architecture(self.rng)

    def _tell(self, arch: Architecture, reward: float) -> None:
        pass


def test_grid_workers_ignore_the_parents_stop_handlers(tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.setattr(SEARCHERS, "_items", dict(SEARCHERS._items))
    register_searcher("signal_reporting_for_test")(SignalReporting)
    specs = [RunSpec("signal_reporting_for_test", seed, "analog", 3, {"report": str(tmp_path)}) for seed in range(4)]
    with interruptible():
        records = [record for _, record in iter_grid(specs, workers=2)]
    assert len(records) == 4
    reports = [json.loads(path.read_text()) for path in tmp_path.glob("*.json")]
    assert reports and str(os.getpid()) not in {path.stem for path in tmp_path.glob("*.json")}
    for report in reports:
        assert report["SIGINT"] == "SIG_IGN" and report["SIGTERM"] == "SIG_DFL"
        assert "SIGINT" not in report["blocked"] and "SIGTERM" not in report["blocked"]
    assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert "Traceback" not in capfd.readouterr().err
