"""`cnnlab serve RUN... | --pretrained NAME`: load the models once, then answer over HTTP
under uvicorn until Ctrl-C (or SIGTERM) stops it."""
from __future__ import annotations

import ipaddress
import json
import logging
import sys

from ..errors import UserError
from .app import Settings, create_app
from .models import load_models


def _check(port: int, workers: int, settings: Settings) -> None:
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be from 0 to 65535, not {port}.")
    if workers != 1:
        # Each process would load its own model, batch only its own share of the requests
        # and count its own metrics; one process per port, behind a proxy, says so honestly.
        raise UserError("--workers above 1 is not offered: run one `cnnlab serve` per port "
                        "behind a proxy instead, each with its own batching and metrics.")
    for name in ("max_batch", "queue", "max_files", "top_k", "max_pixels"):
        if getattr(settings, name) < 1:
            flag = name.replace("_", "-")
            raise UserError(f"--{flag} must be a positive whole number, not "
                            f"{getattr(settings, name)}.")
    for name in ("timeout", "max_body_mb"):
        if not getattr(settings, name) > 0:
            flag = name.replace("_", "-")
            raise UserError(f"--{flag} must be a positive number, not {getattr(settings, name)}.")
    if settings.threads is not None and settings.threads < 1:
        raise UserError(f"--threads must be a positive whole number, not {settings.threads}.")
    if settings.max_wait_ms < 0:
        raise UserError(f"--max-wait-ms must be 0 or more, not {settings.max_wait_ms}.")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _access_log(quiet: bool) -> None:
    """One JSON line per request on stderr (the access log), unless --quiet."""
    logger = logging.getLogger("cnnlab.serve")
    if quiet or logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def serve(runs: list[str], pretrained: list[str] | None = None, host: str = "127.0.0.1",
          port: int = 8000, workers: int = 1, device: str = "auto", weights_file=None,
          settings: Settings = Settings(), quiet: bool = False, json_out: bool = False) -> dict:
    _check(port, workers, settings)
    import uvicorn
    models = load_models(runs, pretrained or [], device, settings.max_batch, weights_file)
    about = {"url": f"http://{host}:{port}/", "models": list(models),
             "max_batch": settings.max_batch, "token": settings.token is not None}
    if json_out:
        print(json.dumps(about), flush=True)
    if not quiet:
        print(f"cnnlab serve: {', '.join(models)} at {about['url']} (max batch "
              f"{settings.max_batch}); Ctrl-C stops it.", file=sys.stderr, flush=True)
        if not _loopback(host) and settings.token is None:
            print(f"cnnlab serve: --host {host} is reachable from other machines and no "
                  "--token is set: anyone there can use the model.", file=sys.stderr, flush=True)
    _access_log(quiet)
    uvicorn.run(create_app(models, settings), host=host, port=port, access_log=False,
                log_level="warning", server_header=False, timeout_graceful_shutdown=5)
    return about
