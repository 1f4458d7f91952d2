"""The broker path's cost: Sparkplug B from a line's publisher through Mosquitto to the plant.

Owns `MosquittoBroker` (a broker on 127.0.0.1 started, stopped and restarted on the same port
through tools/ensure_mosquitto.sh; the tests' fixture uses it too) and the benchmark:

    python tools/bench_sparkplug.py [--stations 64] [--duration-s 60] [--period-s 1.0] [--json]

One publisher process (edge/sparkplug/publisher.py, fed like a LineHub: a snapshot every
`--scan-s` (0.1 s) in which each station's values change once a `--period-s`, the stations
staggered: one DDATA a station a second) and the consumer (edge/sparkplug/watch.py's PlantState,
in this process) on one Mosquitto. Measured: latency from the publisher's `offer` of the
snapshot to the consumer's receipt of the station's DDATA (p50, p99, max; clocks of one host),
the reports received and missing, and the CPU of each process (user + system seconds over the
run, as % of one core). `--restart-at-s T` restarts the broker T seconds in: the reports are
counted all the same (those that arrived only as historical, forwarded after the restart, apart).
Tests: tests/edge/sparkplug/test_bench_sparkplug.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENSURE = ROOT / "tools" / "ensure_mosquitto.sh"


class MosquittoBroker:
    """A Mosquitto on 127.0.0.1 in its own folder; `restart()` keeps the port (and loses every
    session and retained message: persistence is off, as after a crash)."""

    def __init__(self, folder: str | Path, port: int | None = None):
        self.folder = Path(folder)
        self.port = port
        self.url: str | None = None
        self.running = False

    @staticmethod
    def ensure_installed() -> str:
        out = subprocess.run(["bash", str(ENSURE)], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"{ENSURE}: {out.stderr.strip()}")
        return out.stdout.strip()

    def start(self) -> str:
        args = ["bash", str(ENSURE), "start", str(self.folder)] + ([str(self.port)] if self.port else [])
        out = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"{ENSURE} start: {out.stderr.strip()}")
        self.url = out.stdout.strip().splitlines()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.running = True
        return self.url

    def stop(self) -> None:
        if not self.running:
            return
        out = subprocess.run(["bash", str(ENSURE), "stop", str(self.folder)], capture_output=True, text=True,
                             timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"{ENSURE} stop: {out.stderr.strip()}")
        self.running = False

    def restart(self) -> str:
        self.stop()
        return self.start()

    def pid(self) -> int | None:
        try:
            return int((self.folder / "mosquitto.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the publisher's side (a child process) -------------------------------------------------------------
def _snapshot(line: str, stations: int, changes: list[int], step: int):
    from edge.lineview.model import BatchView, LineSnapshot, StationView

    views = tuple(StationView(index=i, battery=f"B{i:03d}", tier=1 + i % 3, soc_pct=90.0 - 0.5 * changes[i],
                              temp_degc=30.0 + 0.2 * (changes[i] % 50), current_a=-10.0, state="discharging",
                              isolated=False) for i in range(stations))
    return LineSnapshot(line=line, packml_state="Execute", mode="Production", time_s=float(step), stations=views,
                        alarms=(), batch=BatchView(recorded=0, total=stations, waiting=0), packml_state_number=6,
                        seq=step + 1)


def run_publisher(url: str, *, stations: int, duration_s: float, period_s: float, scan_s: float, host_id: str,
                  out: Path) -> None:
    """Offer a snapshot every `scan_s` for `duration_s`; station i changes at i/stations of each
    period. Writes the offer time of every (station, report_seq) and this process's CPU to `out`."""
    import resource

    from edge.sparkplug.publisher import PublisherSettings, SparkplugPublisher

    pub = SparkplugPublisher(PublisherSettings(url, "bench", "line-bench", primary_host=host_id)).start()
    deadline = time.monotonic() + 30
    while not pub.stats()["born"] and time.monotonic() < deadline:
        time.sleep(0.01)
    changes = [1] * stations  # the first offer is every station's first report
    offers: dict[str, int] = {}
    offer_cpu_s = 0.0
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    step = 0
    pending = set(range(stations))
    while True:
        now = time.monotonic() - t0
        if now >= duration_s:
            break
        if step > 0:
            pending = {i for i in range(stations)
                       if int((now - i * period_s / stations) // period_s) + 2 > changes[i]}
            for i in pending:
                changes[i] += 1
        snap = _snapshot("line-bench", stations, changes, step)
        t_ns = time.time_ns()
        c = time.process_time()
        pub.offer(snap)
        offer_cpu_s += time.process_time() - c
        for i in pending:
            offers[f"{i}:{changes[i]}"] = t_ns
        step += 1
        time.sleep(max(0.0, t0 + step * scan_s - time.monotonic()))
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    wall_s = time.monotonic() - t0
    stats = pub.stats()
    pub.stop()
    out.write_text(json.dumps({"offers": offers, "wall_s": wall_s, "scans": step, "offer_cpu_s": offer_cpu_s,
                               "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
                               "stats": stats}))


# -- the benchmark ---------------------------------------------------------------------------------------
def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_bench(*, stations: int = 64, duration_s: float = 60.0, period_s: float = 1.0, scan_s: float = 0.1,
              folder: Path | None = None, restart_at_s: float | None = None) -> dict:
    from edge.sparkplug.watch import PlantState, PlantWatcher

    received: dict[str, int] = {}
    live_received: dict[str, int] = {}

    def on_report(node: str, device: str, n: int, historical: bool, t_ns: int) -> None:
        key = f"{int(device[-3:])}:{n}"
        received.setdefault(key, t_ns)
        if not historical:
            live_received.setdefault(key, t_ns)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(folder or tmp)
        broker = MosquittoBroker(folder / "mosquitto")
        broker.ensure_installed()
        url = broker.start()
        try:
            watcher = PlantWatcher(url, host_id="bench-host", state=PlantState(on_report=on_report)).start()
            out = folder / "publisher.json"
            child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--publisher", url,
                                      "--stations", str(stations), "--duration-s", str(duration_s),
                                      "--period-s", str(period_s), "--scan-s", str(scan_s), "--out", str(out)],
                                     cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
            b0, c0, t0 = _proc_cpu_s(broker.pid()), time.process_time(), time.monotonic()
            broker_cpu_s = 0.0
            if restart_at_s is not None:
                try:
                    child.wait(timeout=restart_at_s)
                except subprocess.TimeoutExpired:
                    broker_cpu_s = _proc_cpu_s(broker.pid()) - b0
                    broker.restart()
                    b0 = _proc_cpu_s(broker.pid())
            child.wait(timeout=duration_s + 120)
            wall_s = time.monotonic() - t0
            b1, c1 = _proc_cpu_s(broker.pid()), time.process_time()
            broker_cpu_s += b1 - b0
            deadline = time.monotonic() + 15.0  # the last messages in flight (after a restart: forwarded)
            while time.monotonic() < deadline:
                time.sleep(0.5)
                if out.exists() and all(k in received for k in json.loads(out.read_text())["offers"]):
                    break
            watcher.stop()
        finally:
            broker.stop()
        pub = json.loads(out.read_text())
    offers = pub["offers"]
    # steady state: reports 2, 3...; report 1 of every station is the first offer's burst of 64 DBIRTH
    lat_ms = [(live_received[k] - t) / 1e6 for k, t in offers.items() if k in live_received and not k.endswith(":1")]
    burst_ms = [(live_received[k] - t) / 1e6 for k, t in offers.items() if k in live_received and k.endswith(":1")]
    return {
        "stations": stations, "duration_s": duration_s, "period_s": period_s, "scan_s": scan_s,
        "reports_offered": len(offers), "reports_received": sum(1 for k in offers if k in received),
        "reports_missing": sum(1 for k in offers if k not in received),
        "reports_only_historical": sum(1 for k in offers if k in received and k not in live_received),
        "broker_restarted_at_s": restart_at_s,
        "messages_per_s": round(len(offers) / pub["wall_s"], 1),
        "latency_ms": {"p50": round(_pct(lat_ms, 0.50), 3), "p99": round(_pct(lat_ms, 0.99), 3),
                       "max": round(max(lat_ms), 3), "n": len(lat_ms)} if lat_ms else None,
        "first_burst_latency_ms_max": round(max(burst_ms), 3) if burst_ms else None,
        "load_average_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(),
        "cpu_pct_of_one_core": {"publisher_process": round(100 * pub["cpu_s"] / pub["wall_s"], 2),
                                "publisher_offer": round(100 * pub["offer_cpu_s"] / pub["wall_s"], 2),
                                "mosquitto": round(100 * broker_cpu_s / wall_s, 2),
                                "consumer_process": round(100 * (c1 - c0) / wall_s, 2)},
        "publisher": pub["stats"], "scans": pub["scans"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, default=64)
    p.add_argument("--duration-s", type=float, default=60.0)
    p.add_argument("--period-s", type=float, default=1.0, help="each station reports once a period")
    p.add_argument("--scan-s", type=float, default=0.1, help="the line's snapshot period")
    p.add_argument("--restart-at-s", type=float, default=None,
                   help="restart the broker this long into the run (store-and-forward: count what arrives)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--publisher", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.publisher:
        run_publisher(args.publisher, stations=args.stations, duration_s=args.duration_s, period_s=args.period_s,
                      scan_s=args.scan_s, host_id="bench-host", out=args.out)
        return 0
    result = run_bench(stations=args.stations, duration_s=args.duration_s, period_s=args.period_s,
                       scan_s=args.scan_s, restart_at_s=args.restart_at_s)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lat = result["latency_ms"] or {}
        cpu = result["cpu_pct_of_one_core"]
        print(f"{result['stations']} stations, {result['messages_per_s']} DDATA/s for {result['duration_s']} s: "
              f"received {result['reports_received']}/{result['reports_offered']}, missing "
              f"{result['reports_missing']}; latency p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms, max "
              f"{lat.get('max')} ms (load {result['load_average_1min']} on {result['cpu_count']} cores); CPU % of a core: publisher {cpu['publisher_process']} (offer "
              f"{cpu['publisher_offer']}), mosquitto {cpu['mosquitto']}, consumer {cpu['consumer_process']}")
    return 0 if result["reports_missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
