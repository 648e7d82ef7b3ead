"""The HTTP service: `create_app(models, settings)` gives the FastAPI application that
`cnnlab serve` runs under uvicorn and the tests drive in-process.

    GET  /          the web page (page.py)
    GET  /health    alive: answered by the event loop alone, never waits for the model
    GET  /ready     200 once every model is loaded and warmed up, 503 before
    GET  /models    name, task, classes, input size and preprocessing of each model
    GET  /metrics   Prometheus text (metrics.py)
    POST /predict   images (a video model: video files) as multipart fields `file`
                    (repeatable) or as the raw body: `cnnlab predict RUN --json`'s answer for
                    the model's task ({"task", "predictions", "errors"}; answers.py), its
                    pictures inline as data: URLs; a GAN with no image draws ?count= new ones
    POST /gradcam   a classifier, one image: its top class and the Grad-CAM heat map as a PNG
                    data URL

Every error is {"error": "<one sentence>"} with its status; with a token, every path but
/health and the page (which holds no data and asks for the token itself) needs it.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from ..accel.fastpath import usable_cpus
from . import DEFAULTS
from .batching import Batcher, QueueFull
from .limits import Refused, check_token, decode_upload, read_body
from .answers import Prepared
from .metrics import Metrics
from .models import Served, warm_up
from .page import CONTENT_SECURITY, page_html

ACCESS = logging.getLogger("cnnlab.serve.access")
PATHS = ("/", "/health", "/ready", "/models", "/metrics", "/predict", "/gradcam")
OPEN_PATHS = ("/", "/health")  # answered without the token
RAW = "body"  # the "file" of an image sent as the raw request body
GENERATED = 16  # images a GAN draws when ?count= does not say
# Detections below it are left out unless ?score_threshold= says: predict's default
# (tasks/detect_report.SCORE_THRESHOLD), not imported so that the service starts quickly.
SCORE_THRESHOLD = 0.5
REASONS = {400: "bad_form", 401: "token", 404: "unknown_model", 408: "slow_body", 413: "too_large",
           415: "not_an_image", 422: "damaged", 503: "queue_full", 504: "timeout"}


@dataclass(frozen=True)
class Settings:
    max_batch: int = DEFAULTS["max_batch"]
    max_wait_ms: float = DEFAULTS["max_wait_ms"]
    queue: int = DEFAULTS["queue"]
    timeout: float = DEFAULTS["timeout"]
    max_body_mb: float = DEFAULTS["max_body_mb"]
    max_pixels: int = DEFAULTS["max_pixels"]
    max_files: int = DEFAULTS["max_files"]
    top_k: int = DEFAULTS["top_k"]
    token: str | None = None
    threads: int | None = None  # the forward pass's CPU threads; None: every usable CPU

    @property
    def max_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)


def torch_threads(count: int) -> None:
    """Give the calling thread an OpenMP team of `count` (torch's thread count is per thread
    once a thread has run a parallel operation; the small one below makes that happen now,
    before another thread changes the default)."""
    import torch
    torch.set_num_threads(count)
    torch.ones(100_000).add_(1)  # above torch's grain size: a parallel operation


class Service:
    """What the endpoints share: the models, their batchers, the one model thread, metrics."""

    def __init__(self, models: dict[str, Served], settings: Settings):
        self.models, self.settings = models, settings
        self.metrics = Metrics(settings.max_batch)
        cores = usable_cpus()
        team = settings.threads or cores
        # Decoding and resizing get threads of their own, not asyncio's default pool, each
        # with a team of one: every thread that calls into torch brings its own OpenMP team,
        # and teams that outnumber the cores spend their time waiting on each other. A
        # photograph's decode and resize are a few milliseconds; splitting them gains less
        # than the team's synchronisation costs.
        self.decode_threads = ThreadPoolExecutor(max(1, cores // 2),
                                                 thread_name_prefix="cnnlab-decode",
                                                 initializer=torch_threads, initargs=(1,))
        # One thread runs every forward pass, with every core in its team: a batch splits
        # well across them. Grad-CAM's hooks must never see another request's batch go
        # through the same layers, so it runs here too.
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="cnnlab-model",
                                               initializer=torch_threads, initargs=(team,))
        self.batchers: dict[str, Batcher] = {}
        self.ready = False

    def start(self) -> asyncio.Task:
        s = self.settings
        for name, served in self.models.items():
            self.batchers[name] = Batcher(served.forward, self.model_thread, s.max_batch,
                                          s.max_wait_ms / 1000, s.queue,
                                          self.metrics.batch_size.observe)
            self.batchers[name].start()
        return asyncio.get_running_loop().create_task(self._warm())

    async def _warm(self) -> None:
        loop = asyncio.get_running_loop()
        for served in self.models.values():
            await loop.run_in_executor(self.model_thread, warm_up, served, self.settings.max_batch)
        self.ready = True

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.model_thread.shutdown(wait=False, cancel_futures=True)
        self.decode_threads.shutdown(wait=False, cancel_futures=True)

    async def decoded(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.decode_threads, function,
                                                                *args)

    def pick(self, name: str | None) -> Served:
        if name is None:
            return next(iter(self.models.values()))
        if name not in self.models:
            raise Refused(404, f"there is no model '{name}' here; choose one of: "
                               f"{', '.join(self.models)}.")
        return self.models[name]


def create_app(models: dict[str, Served], settings: Settings = Settings()) -> FastAPI:
    service = Service(models, settings)

    @asynccontextmanager
    async def lifespan(_app):
        warming = service.start()
        yield
        warming.cancel()
        await service.stop()

    # No /docs: FastAPI's pages load their scripts from a CDN, and the service works offline.
    app = FastAPI(title="cnnlab serve", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.service = service
    _add_errors(app)
    _add_access(app, service)
    _add_routes(app, service)
    return app


def _error(status: int, sentence: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": sentence}, status, headers=headers)


def _add_errors(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        app.state.service.metrics.rejects.labels(REASONS.get(exc.status, str(exc.status))).inc()
        return _error(exc.status, str(exc), exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 405:
            return _error(405, f"{request.url.path} does not answer {request.method}.")
        return _error(exc.status_code, f"there is nothing at {request.url.path}; the service "
                                       f"answers {', '.join(PATHS)}.")

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):
        logging.getLogger("cnnlab.serve").exception("request to %s failed", request.url.path)
        return _error(500, "the service failed on this request; its log says why.")


def _add_access(app: FastAPI, service: Service) -> None:
    """The token check, one JSON line per request (the access log) and the metrics."""
    @app.middleware("http")
    async def access(request: Request, call_next):
        start, path = time.perf_counter(), request.url.path
        try:
            if path not in OPEN_PATHS:
                check_token(service.settings.token, request.headers.get("authorization"))
            response = await call_next(request)
        except Refused as exc:
            service.metrics.rejects.labels(REASONS[exc.status]).inc()
            response = _error(exc.status, str(exc), exc.headers)
        seconds = time.perf_counter() - start
        service.metrics.observe(path if path in PATHS else "other", response.status_code, seconds)
        ACCESS.info(json.dumps({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "method": request.method,
            "path": path, "status": response.status_code, "ms": round(seconds * 1000, 2),
            "client": request.client.host if request.client else None,
            "bytes_in": int(request.headers.get("content-length") or 0)}))
        return response


async def _uploads(request: Request, body: bytes, max_files: int) -> list[tuple[str, bytes]]:
    """(name, bytes) per image: the multipart fields `file`, or the raw body, named "body"."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        if not body:
            raise Refused(422, "the request holds no image: send it as the body or as "
                               "multipart fields named 'file'.")
        return [(RAW, body)]
    sent = False

    async def replay():  # the body already read (and counted) is what the form parser reads
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_files=max_files,
                                                       max_fields=max_files) as form:
            files = [f for f in form.getlist("file") if not isinstance(f, str)]
            uploads = [(f.filename or "upload", await f.read()) for f in files]
    except MultiPartException as exc:
        reason = str(exc).rstrip(".")
        raise Refused(400, f"the multipart form could not be read ({reason}).") from None
    if not uploads:
        raise Refused(422, "the form has no field named 'file' holding an image.")
    return uploads


def _decoded(name: str, data: bytes, max_pixels: int):
    return decode_upload(data, _shown(name), max_pixels)


def _shown(name: str) -> str:
    return "the request body" if name == RAW else name


def _prepared(served: Served, name: str, data: bytes, max_pixels: int) -> Prepared:
    prepared = served.answers.prepare(served, _shown(name), data, max_pixels)
    prepared.name = name
    return prepared


def _whole(value: str | None, default: int, name: str) -> int:
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise Refused(422, f"{name} must be a positive whole number, not {value!r}.")
    return int(value)


def _options(query, settings: Settings) -> dict:
    """What a request may choose: ?top_k= (classes), ?score_threshold= (detections), ?count=
    (images a GAN draws, at most --max-files)."""
    threshold = query.get("score_threshold", str(SCORE_THRESHOLD))
    try:
        score = float(threshold)
    except ValueError:
        score = float("nan")
    if not 0 <= score <= 1:
        raise Refused(422, f"score_threshold must be a number from 0 to 1, not {threshold!r}.")
    count = _whole(query.get("count"), min(GENERATED, settings.max_files), "count")
    if count > settings.max_files:
        raise Refused(422, f"count may be at most {settings.max_files} (--max-files), not "
                           f"{count}.")
    return {"top_k": _whole(query.get("top_k"), settings.top_k, "top_k"),
            "score_threshold": score, "count": count}


def _submitted(service: Service, served: Served, good: list[Prepared]) -> list:
    """Each input in the model's queue; the whole request refused (503) if it is full."""
    futures = []
    try:
        for prepared in good:
            futures.append(service.batchers[served.name].submit(prepared.input))
    except QueueFull:
        for future in futures:
            future.cancel()
        raise Refused(503, f"the service is busy ({service.settings.queue} images already "
                           "wait); try again in a second.", {"Retry-After": "1"}) from None
    service.metrics.queued.set(service.batchers[served.name].queue.qsize())
    return futures


async def _answered(service: Service, served: Served, good: list[Prepared],
                    options: dict) -> list[dict]:
    """Each prepared image's answer: through the batcher, then drawn (in a decode thread
    where the answer holds pictures, so the event loop never encodes a PNG)."""
    outputs = await asyncio.gather(*_submitted(service, served, good))
    answer = served.answers.answer
    if not served.answers.draws:
        return [answer(served, p, out, options) for p, out in zip(good, outputs)]
    return await asyncio.gather(*(service.decoded(answer, served, p, out, options)
                                  for p, out in zip(good, outputs)))


async def _within(awaitable, deadline: float, timeout: float, what: str = "answer"):
    try:
        return await asyncio.wait_for(awaitable, max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise Refused(504, f"the {what} took longer than the limit of {timeout:g} s.") from None


async def _predict(request: Request, service: Service) -> dict:
    s, deadline = service.settings, time.monotonic() + service.settings.timeout
    served = service.pick(request.query_params.get("model"))
    options = _options(request.query_params, s)
    body = await read_body(request, s.max_bytes, s.timeout)
    if not body and not served.answers.needs_image:  # a GAN asked for new images
        loop = asyncio.get_running_loop()
        drawn = loop.run_in_executor(service.model_thread, served.answers.generate, served,
                                     options["count"])
        return {"task": served.task, **await _within(drawn, deadline, s.timeout)}
    files = await _uploads(request, body, s.max_files)
    prepared = await asyncio.gather(*(service.decoded(_prepared, served, name, data,
                                                      s.max_pixels)
                                      for name, data in files), return_exceptions=True)
    errors = [(name, p) for (name, _), p in zip(files, prepared) if isinstance(p, Exception)]
    for _, exc in errors:
        if not isinstance(exc, Refused):
            raise exc
    good = [p for p in prepared if not isinstance(p, Exception)]
    if not good:  # nothing to answer: the first file's reason is the request's
        raise errors[0][1]
    answers = await _within(_answered(service, served, good, options), deadline, s.timeout)
    result = {"task": served.task,
              "predictions": [{"file": p.name, **a} for p, a in zip(good, answers)],
              "errors": [{"file": name, "error": str(exc), "status": exc.status}
                         for name, exc in errors]}
    if served.answers.more is None:
        return result
    loop = asyncio.get_running_loop()  # embed's verification runs the model again
    more = loop.run_in_executor(service.model_thread, served.answers.more, served, result, good)
    return {**result, **await _within(more, deadline, s.timeout)}


async def _gradcam(request: Request, service: Service) -> dict:
    s, deadline = service.settings, time.monotonic() + service.settings.timeout
    served = service.pick(request.query_params.get("model"))
    if served.task != "classify":
        raise Refused(422, f"Grad-CAM is drawn for classifiers, and {served.name} answers "
                           f"--task {served.task}.")
    name, data = (await _uploads(request, await read_body(request, s.max_bytes, s.timeout),
                                 1))[0]
    image = await service.decoded(_decoded, name, data, s.max_pixels)
    loop = asyncio.get_running_loop()
    cam = await _within(loop.run_in_executor(service.model_thread, served.gradcam, image),
                        deadline, s.timeout, "heat map")
    png = cam.pop("png")
    return {"file": name, **cam,
            "image": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}


def _add_routes(app: FastAPI, service: Service) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse(page_html(), headers={"Content-Security-Policy": CONTENT_SECURITY})

    @app.get("/health")
    async def health():
        return {"status": "alive"}

    @app.get("/ready")
    async def ready():
        if not service.ready:
            return _error(503, "the model is still warming up.", {"Retry-After": "1"})
        return {"ready": True, "models": list(service.models)}

    @app.get("/models")
    async def models():
        return {"models": [m.describe() for m in service.models.values()],
                "max_batch": service.settings.max_batch}

    @app.get("/metrics")
    async def metrics():
        return Response(service.metrics.text(), media_type=service.metrics.content_type)

    @app.post("/predict")
    async def predict(request: Request):
        return await _predict(request, service)

    @app.post("/gradcam")
    async def gradcam(request: Request):
        return await _gradcam(request, service)
