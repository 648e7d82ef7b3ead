"""`cnnlab bench --task serve`: `cnnlab serve` under load on the loopback interface, and
under attack while loaded.

Load: efficientnet_lite0 answers a photograph from 1, 8 and 32 concurrent clients, a fixed
number of requests each (the test stops by itself), once with --max-batch 1 (every request
its own forward pass) and once with dynamic batching; requests/s and p50/p99 latency, and the
throughput ratio at 32 clients, both measured in the same run.

Abuse: while 8 clients keep it busy, an oversized body, a decompression bomb, a text file, a
truncated PNG, a client that sends its body a byte at a time and a wrong token each get their
status code, /health is asked every 50 ms throughout (every one must be answered; its p99 is
reported), and the service's temporary folder is empty afterwards.
"""
from __future__ import annotations

import asyncio
import io
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..serve import TOKEN_VARIABLE

MODEL = "efficientnet_lite0"
CONCURRENCY = (1, 8, 32)
# Requests each client sends one after another (one client: at least 8). Few, because a CPU
# shared by several jobs answers a few images a second; on a free machine raise them.
# repeats: how many more times 32 clients meet both services (A B B A each time), after the
# levels: on a shared machine one comparison says little, several say how far it varies.
# threads: both services' --threads. One: on a CPU other jobs share, a forward pass split
# across two threads keeps waiting for the one the OS has parked, and a batch has more such
# waits than a single image; measured there, batching paid with one thread (1.1x-2.0x at 32
# clients) and lost with two (0.5x-1.1x). None: the service's default, every usable CPU.
FULL = {"rounds": 2, "abuse_seconds": 8.0, "repeats": 3, "threads": 1}
# QUICK: seconds, for CI; its numbers mean nothing
QUICK = {"rounds": 1, "abuse_seconds": 3.0, "repeats": 0, "threads": 1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def photograph() -> bytes:
    """scikit-image's cat (Chelsea) as a JPEG, as a phone would send it."""
    from ..course.kernels import sample_image
    buffer = io.BytesIO()
    Image.fromarray(sample_image("chelsea")).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG of a few dozen bytes whose header claims width x height pixels."""
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


@dataclass(frozen=True)
class Running:
    url: str  # http://127.0.0.1:PORT
    pid: int


def cpu_seconds(pid: int) -> float | None:
    """CPU time the process has used, all its threads (Linux's /proc; None elsewhere). On a
    shared machine this, not the wall clock, says what a request costs: waiting for a CPU
    that a neighbour holds is not counted."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def service(*flags: str, token: str | None = None, tmp: str | None = None, wait: float = 600):
    """`cnnlab serve` in a subprocess on a free loopback port, ready to answer; stopped
    (SIGTERM, then SIGKILL after 10 s) on leaving. Yields its URL and process id."""
    import httpx
    port = free_port()
    env = {**os.environ, **({TOKEN_VARIABLE: token} if token else {}),
           **({"TMPDIR": tmp} if tmp else {})}
    process = subprocess.Popen([sys.executable, "-m", "cnnlab", "serve", "--quiet", "--port",
                                str(port), *flags], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, headers = time.monotonic() + wait, _auth(token)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"cnnlab serve stopped: {process.stderr.read().strip()}")
            try:
                if httpx.get(url + "/ready", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"cnnlab serve was not ready within {wait:g} s.")
            time.sleep(0.2)
        yield Running(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


def _auth(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


def latency_summary(latencies: list[float], seconds: float, errors: int) -> dict:
    ms = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "errors": errors, "seconds": round(seconds, 3),
            "requests_per_s": round(len(latencies) / seconds, 2) if seconds else None,
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None}


async def _clients(url: str, image: bytes, concurrency: int, per_client: int,
                   headers: dict, stop: asyncio.Event | None = None) -> tuple[list, float, int]:
    """`concurrency` clients, each sending `per_client` predictions one after another (or
    until `stop` is set): (every latency, seconds in all, requests not answered 200)."""
    import httpx
    latencies, errors = [], 0

    async def client(http):
        nonlocal errors
        for _ in range(per_client):
            if stop is not None and stop.is_set():
                return
            start = time.perf_counter()
            try:
                response = await http.post(url + "/predict", content=image, headers=headers)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += not ok

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=300) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return latencies, time.perf_counter() - start, errors


def compared(services: dict[str, Running], image: bytes, clients: int,
             per_client: int) -> dict[str, dict]:
    """Both services at `clients` clients, measured in the order A B B A, so that a
    neighbour's job starting or ending halfway weighs on both alike; with the service's CPU
    time per request beside the wall-clock figures."""
    gathered = {label: ([], 0.0, 0, 0.0) for label in services}
    first, second = list(services)
    for label in (first, second, second, first):
        running = services[label]
        cpu = cpu_seconds(running.pid)
        latencies, seconds, errors = asyncio.run(_clients(running.url, image, clients,
                                                          per_client, {}))
        spent = (cpu_seconds(running.pid) - cpu) if cpu is not None else float("nan")
        before = gathered[label]
        gathered[label] = (before[0] + latencies, before[1] + seconds, before[2] + errors,
                           before[3] + spent)
    results = {}
    for label, (latencies, seconds, errors, spent) in gathered.items():
        cpu_ms = round(spent * 1000 / len(latencies), 1) if spent == spent else None
        results[label] = {"concurrency": clients, **latency_summary(latencies, seconds, errors),
                          "cpu_ms_per_request": cpu_ms}
    return results


def load_levels(services: dict[str, Running], image: bytes, rounds: int) -> dict[str, list]:
    """Each service at 1, 8 and 32 clients (compared)."""
    results = {label: [] for label in services}
    for c in CONCURRENCY:
        for label, level in compared(services, image, c, max(rounds, 8 // c)).items():
            results[label].append(level)
    return results


def ratio(faster: float | None, slower: float | None) -> float | None:
    return round(faster / slower, 2) if faster and slower else None


def repeated_at_32(services: dict[str, Running], image: bytes, rounds: int,
                   repeats: int) -> list[dict]:
    """The 32-client comparison again, `repeats` times: each one's throughput ratio (second
    service over first) and the machine's load average when it ended."""
    out = []
    for _ in range(repeats):
        single, batched = compared(services, image, 32, rounds).values()
        out.append({"speedup": ratio(batched["requests_per_s"], single["requests_per_s"]),
                    "cpu_saving": ratio(single["cpu_ms_per_request"],
                                        batched["cpu_ms_per_request"]),
                    "requests_per_s": [single["requests_per_s"], batched["requests_per_s"]],
                    "load_average": round(os.getloadavg()[0], 2)})
    return out


async def _health(url: str, stop: asyncio.Event) -> dict:
    """/health every 50 ms until `stop`: each must be answered, and quickly."""
    import httpx
    latencies, failed = [], 0
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                failed += (await http.get(url + "/health")).status_code != 200
            except httpx.HTTPError:
                failed += 1
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)
    summary = latency_summary(latencies, 1.0, failed)
    return {"asked": len(latencies), "unanswered": failed, "p50_ms": summary["p50_ms"],
            "p99_ms": summary["p99_ms"]}


async def _slow_client(url: str, token: str | None, give_up: float) -> int | str:
    """A client that declares a 100 kB body and sends it a byte every half second: the
    status the service answers before it would ever finish."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
                 f"Content-Length: 100000\r\n{auth}\r\n".encode())
    try:
        for _ in range(int(give_up / 0.5)):
            writer.write(b"\xff")
            await writer.drain()
            try:
                line = await asyncio.wait_for(reader.readline(), 0.5)
            except asyncio.TimeoutError:
                continue
            return int(line.split()[1]) if line else "closed without an answer"
        return "no answer"
    except ConnectionError:
        return "connection reset"
    finally:
        writer.close()


def _attacks(image: bytes) -> dict:
    """name -> (request body, content type, uses the right token)."""
    png = io.BytesIO()
    Image.open(io.BytesIO(image)).save(png, "PNG")
    return {"oversized_body": (b"\0" * (21 * 2**20), "image/jpeg", True),
            "decompression_bomb": (bomb_png(), "image/png", True),
            "over_pixel_limit": (bomb_png(8000, 8000), "image/png", True),
            "text_file": (b"a shopping list, not a picture\n" * 20, "text/plain", True),
            "truncated_png": (png.getvalue()[: len(png.getvalue()) // 2], "image/png", True),
            "wrong_token": (image, "image/jpeg", False)}


async def _abuse(url: str, image: bytes, token: str, seconds: float, timeout: float) -> dict:
    import httpx
    stop = asyncio.Event()
    load = asyncio.create_task(_clients(url, image, 4, 10**6, _auth(token), stop))
    health = asyncio.create_task(_health(url, stop))
    start, statuses = time.monotonic(), {}
    async with httpx.AsyncClient(timeout=60) as http:
        for name, (body, kind, right) in _attacks(image).items():
            headers = {"Content-Type": kind, **_auth(token if right else "not-the-token")}
            try:
                statuses[name] = (await http.post(url + "/predict", content=body,
                                                  headers=headers)).status_code
            except httpx.HTTPError as exc:
                statuses[name] = f"no answer ({type(exc).__name__})"
    statuses["slow_client"] = await _slow_client(url, token, timeout + 10)
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - start)))
    stop.set()
    latencies, seconds, errors = await load
    return {"statuses": statuses, "health": await health,
            "load_during": latency_summary(latencies, seconds, errors)}


def abuse(image: bytes, seconds: float, timeout: float = 8.0) -> dict:
    """The attacks on a service with a token and --timeout `timeout`, under load."""
    token = "bench-" + os.urandom(8).hex()
    with tempfile.TemporaryDirectory(prefix="cnnlab-serve-tmp-") as tmp:
        with service("--pretrained", MODEL, "--timeout", str(timeout), token=token,
                     tmp=tmp) as running:
            result = asyncio.run(_abuse(running.url, image, token, seconds, timeout))
            result["temporary_files_left"] = sorted(p.name for p in Path(tmp).iterdir())
    return result


def bench_serve(settings: dict) -> dict:
    """Both load runs and the abuse run, with the machine's load beside them."""
    image = photograph()
    threads = settings.get("threads")
    flags = ("--pretrained", MODEL, "--timeout", "300",
             *(("--threads", str(threads)) if threads else ()))
    with service(*flags, "--max-batch", "1") as single, service(*flags) as batched:
        services = {"max_batch_1": single, "batched": batched}
        runs = load_levels(services, image, settings["rounds"])
        load_average = [round(x, 2) for x in os.getloadavg()]
        again = repeated_at_32(services, image, settings["rounds"], settings.get("repeats", 0))
    at_32 = [run[-1]["requests_per_s"] for run in runs.values()]
    cpu_32 = [run[-1]["cpu_ms_per_request"] for run in runs.values()]
    from ..serve import DEFAULTS
    return {"task": "serve", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": MODEL,
            "default_max_batch": DEFAULTS["max_batch"], "cpus": os.cpu_count(),
            "threads": threads,
            "load_average": load_average, "load": runs,
            "batching_speedup_at_32": ratio(at_32[1], at_32[0]),
            "batching_cpu_saving_at_32": ratio(cpu_32[0], cpu_32[1]),
            "repeated_at_32": again, "abuse": abuse(image, settings["abuse_seconds"])}


def serve_markdown(result: dict) -> str:
    lines = [f"# cnnlab serve under load, {result['created'][:16].replace('T', ' ')}", "",
             f"{result['model']} on the loopback interface, {result['cpus']} CPUs (load "
             f"average {', '.join(map(str, result['load_average']))}: shared machines time "
             "slower than free ones), both services with --threads "
             f"{result.get('threads') or 'unset (every usable CPU)'}.", "",
             "| max batch | clients | requests | errors | requests/s | p50 ms | p99 ms | "
             "CPU ms/request |", "|---|---|---|---|---|---|---|---|"]
    for label, levels in result["load"].items():
        batch = "1" if label == "max_batch_1" else f"{result['default_max_batch']} (default)"
        lines += [f"| {batch} | {r['concurrency']} | {r['requests']} | {r['errors']} | "
                  f"{r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
                  f"{r['cpu_ms_per_request']} |" for r in levels]
    abuse_result = result["abuse"]
    lines += ["", f"Dynamic batching at 32 clients: {result['batching_speedup_at_32']}x the "
              "requests/s of --max-batch 1, and "
              f"{result['batching_cpu_saving_at_32']}x fewer CPU seconds per request."]
    if result.get("repeated_at_32"):
        lines += ["", "The same comparison again (A B B A each time):", "",
                  "| requests/s, max batch 1 | batched | speed-up | CPU saving | load average |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['requests_per_s'][0]} | {r['requests_per_s'][1]} | {r['speedup']}x | "
                  f"{r['cpu_saving']}x | {r['load_average']} |" for r in result["repeated_at_32"]]
    lines += ["", "| attack | status |", "|---|---|"]
    lines += [f"| {name} | {status} |" for name, status in abuse_result["statuses"].items()]
    health = abuse_result["health"]
    lines += ["", f"/health during the attacks: {health['asked']} asked, "
              f"{health['unanswered']} unanswered, p50 {health['p50_ms']} ms, p99 "
              f"{health['p99_ms']} ms; temporary files left: "
              f"{len(abuse_result['temporary_files_left'])}.", ""]
    return "\n".join(lines)
