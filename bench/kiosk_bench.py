"""Kiosk app benchmarks: cold start to the first interactive frame, and memory across 100 sessions.

    python -m bench.kiosk_bench [--sessions 100] [--starts 3]

Runs on a private Xvfb with every device simulated; prints a table and writes
bench/results/kiosk.json. Targets (issue 2): interactive in < 2 s, < 200 MB RSS, no growth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def demo_config_file(data_dir: Path) -> Path:
    text = (ROOT / "config" / "simulate.toml").read_text(encoding="utf-8")
    text = text.replace('data_dir = "../var/kiosk-demo-01"', f'data_dir = "{data_dir}"')
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def cold_start(display: str, data_dir: Path, timeout: float = 60.0) -> float:
    """Seconds from process start to the app's first interactive frame."""
    from screens.cli import FIRST_FRAME_MESSAGE

    config = demo_config_file(data_dir)
    env = {**os.environ, "DISPLAY": display}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "main.py", "kiosk", "--simulate", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if FIRST_FRAME_MESSAGE in line:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
        raise RuntimeError("the kiosk did not draw its first frame")
    finally:
        proc.terminate()
        proc.wait(10)


def sessions(display: str, data_dir: Path, count: int) -> dict[str, float]:
    """RSS after each tenth of ``count`` citizen sessions (ticket, look-up, rating) in the real window."""
    from kiosk.runtime import demo_config
    from screens.harness import boot_kiosk, shut_down

    config = demo_config(data_dir)
    driver = boot_kiosk(config, display, data_dir / "screens")
    core = driver.core
    driver.runtime.ratings.repeat_interval_s = 0  # every session's rating counts, as with real citizens
    process = psutil.Process()
    samples: dict[str, float] = {}
    started = time.monotonic()
    try:
        for index in range(1, count + 1):
            core.touch()
            core.start("ticket")
            core.act("choose", code="HO_TICH")
            driver.wait_state("ticket", "done")
            core.go_home()
            core.start("lookup")
            core.scanned("000.00.10.H12-210901-0001")
            driver.wait_state("lookup", "found")
            core.go_home()
            core.start("rating")
            core.act("level", level=4)
            driver.wait_for(lambda: core.flow is not None and core.flow.finished, what="rating done")
            core.end_session("bench")
            driver.frames(2)
            if index % max(1, count // 10) == 0:
                samples[str(index)] = process.memory_info().rss / 2**20
    finally:
        elapsed = time.monotonic() - started
        shut_down(driver)
    samples["seconds_per_session"] = elapsed / count
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    os.environ["KIVY_NO_ARGS"] = "1"  # Kivy must not read this benchmark's arguments as its own
    from screens.harness import xvfb

    RESULTS.mkdir(parents=True, exist_ok=True)
    with xvfb() as display, tempfile.TemporaryDirectory() as tmp:
        starts = [cold_start(display, Path(tmp) / f"start-{i}") for i in range(args.starts)]
        memory = sessions(display, Path(tmp) / "sessions", args.sessions)
    marks = [k for k in memory if k.isdigit()]
    first, last = memory[marks[0]], memory[marks[-1]]
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "cold_start_s": {"runs": starts, "median": statistics.median(starts), "target": 2.0},
        "rss_mb": {k: round(memory[k], 1) for k in marks},
        "rss_growth_mb": round(last - first, 1),
        "rss_target_mb": 200,
        "seconds_per_session": round(memory["seconds_per_session"], 3),
    }
    (RESULTS / "kiosk.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"{'measure':<42}{'value':>12}{'target':>10}")
    median = statistics.median(starts)
    print(f"{'cold start to first frame, median (s)':<42}{median:>12.2f}{'< 2':>10}")
    print(f"{'cold start runs (s)':<42}{' '.join(f'{s:.2f}' for s in starts):>12}")
    print(f"{'RSS after ' + marks[0] + ' sessions (MB)':<42}{first:>12.1f}{'< 200':>10}")
    print(f"{'RSS after ' + marks[-1] + ' sessions (MB)':<42}{last:>12.1f}{'< 200':>10}")
    print(f"{'RSS growth (MB)':<42}{last - first:>12.1f}{'~0':>10}")
    print(f"{'wall time per session (s)':<42}{memory['seconds_per_session']:>12.3f}")
    print(f"wrote {RESULTS / 'kiosk.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
