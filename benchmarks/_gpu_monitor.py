"""Sample GPU utilisation with ``nvidia-smi`` while a block of code runs."""

from __future__ import annotations

import shutil
import subprocess


class GpuMonitor:
    """``with GpuMonitor() as m: ...`` then ``m.summary()``.

    Runs ``nvidia-smi --query-gpu=utilization.gpu,memory.used --loop-ms=200`` in the
    background; ``summary()`` is None when ``nvidia-smi`` is not installed.
    """

    def __init__(self, interval_ms: int = 200):
        self.interval_ms = interval_ms
        self.proc = None
        self.samples: list[tuple[float, float]] = []

    def __enter__(self):
        exe = shutil.which("nvidia-smi")
        if exe is not None:
            self.proc = subprocess.Popen(
                [
                    exe,
                    "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    f"--loop-ms={self.interval_ms}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        return self

    def __exit__(self, *exc):
        if self.proc is None:
            return False
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            try:
                self.samples.append((float(parts[0]), float(parts[1])))
            except (ValueError, IndexError):
                continue
        return False

    def summary(self) -> dict | None:
        if self.proc is None:
            return None
        if not self.samples:
            return {"n": 0}
        util = [s[0] for s in self.samples]
        mem = [s[1] for s in self.samples]
        return {
            "n": len(util),
            "util_mean": sum(util) / len(util),
            "util_max": max(util),
            "mem_max_mb": max(mem),
        }
