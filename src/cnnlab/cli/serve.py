"""Arguments of `cnnlab serve`: trained runs of any task answering over HTTP, with a web page.

Kept out of main.py so it stays wiring; the defaults come from cnnlab.serve.DEFAULTS, which
imports neither torch nor FastAPI.
"""
from __future__ import annotations

import argparse
import os

from ..serve import DEFAULTS, TOKEN_VARIABLE


def options(args: argparse.Namespace) -> dict:
    """The parsed arguments as keyword arguments of cnnlab.serve.command.serve."""
    from ..serve.app import Settings
    settings = Settings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                        queue=args.queue, timeout=args.timeout, max_body_mb=args.max_body_mb,
                        max_pixels=args.max_pixels, max_files=args.max_files,
                        top_k=args.top_k, token=args.token or os.environ.get(TOKEN_VARIABLE),
                        threads=args.threads)
    return {"runs": args.runs, "pretrained": args.pretrained, "host": args.host,
            "port": args.port, "workers": args.workers, "device": args.device,
            "weights_file": args.weights_file, "settings": settings, "quiet": args.quiet,
            "json_out": args.json}


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    d, add = DEFAULTS, parser.add_argument
    parser.description = (
        "Serve trained models over HTTP (FastAPI on uvicorn): POST /predict answers like "
        "`cnnlab predict RUN --json` for the run's task, pictures inline as data: URLs; GET / "
        "is a web page that shows the answer (top classes and Grad-CAM, the mask, the boxes, "
        "the upscaled image, the caption ...); /health, /ready, /models and /metrics "
        "(Prometheus) watch it. Concurrent requests are batched into one forward pass.")
    add("runs", metavar="RUN", nargs="*", help="run folders written by cnnlab train (any "
        "task); the first is the default model")
    add("--pretrained", metavar="MODEL", action="append", default=[],
        help="also serve this pretrained ImageNet model, e.g. efficientnet_lite0 (repeatable)")
    add("--weights-file", help="with one --pretrained: its weights from this file")
    add("--host", default=d["host"], help=f"address to listen on (default: {d['host']}, this "
        "machine only; 0.0.0.0 opens it to the network)")
    add("--port", type=int, default=d["port"], help=f"(default: {d['port']})")
    add("--max-batch", type=int, default=d["max_batch"], metavar="N",
        help=f"images per forward pass at most; 1 turns batching off (default: {d['max_batch']})")
    add("--max-wait-ms", type=float, default=d["max_wait_ms"], metavar="MS",
        help=f"how long a batch waits to fill (default: {d['max_wait_ms']:g})")
    add("--queue", type=int, default=d["queue"], metavar="N",
        help=f"images waiting at most; more get 503 and Retry-After (default: {d['queue']})")
    add("--timeout", type=float, default=d["timeout"], metavar="S",
        help=f"seconds a request may take, upload included (default: {d['timeout']:g})")
    add("--max-body-mb", type=float, default=d["max_body_mb"], metavar="MB",
        help=f"largest request body, in MiB (default: {d['max_body_mb']:g})")
    add("--max-pixels", type=int, default=d["max_pixels"], metavar="N",
        help=f"most pixels an image may claim in its header (default: {d['max_pixels']:,})")
    add("--max-files", type=int, default=d["max_files"], metavar="N",
        help=f"images in one request at most (default: {d['max_files']})")
    add("--top-k", type=int, default=d["top_k"], help="classes per image unless the request "
        f"says ?top_k= (default: {d['top_k']})")
    add("--token", help=f"require 'Authorization: Bearer TOKEN' everywhere but /health and the "
        f"page (default: the environment variable {TOKEN_VARIABLE}, which keeps it out of `ps`)")
    add("--threads", type=int, metavar="N", help="CPU threads of each forward pass (default: "
        "every usable CPU; on a machine other jobs keep busy, 1 wastes less waiting for them)")
    add("--workers", type=int, default=1, help="server processes; only 1 is offered")
    add("--device", default="auto")
