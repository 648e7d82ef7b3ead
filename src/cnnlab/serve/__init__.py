"""`cnnlab serve`: trained runs of every task, or a pretrained classifier, answering over
HTTP, with a web page.

    app.py       the FastAPI application: endpoints, errors as one JSON sentence, access logs
    answers.py   what each task answers: an upload decoded, a batch through the model, the
                 JSON `cnnlab predict --json` gives, its pictures inline
    batching.py  the dynamic batcher: concurrent requests share one forward pass
    limits.py    what a request may send: body size, pixels claimed by the header, image kinds,
                 the bearer token
    metrics.py   the Prometheus counters and histograms of one application
    models.py    the models served: loaded once, their batch forward and their Grad-CAM
    page.py      the web page at `/`: choose or drop an image, see what the task answers
    command.py   the command: load, warm up, run uvicorn

Only `cnnlab serve` imports FastAPI, uvicorn and prometheus-client (the `serve` extra); this
file imports nothing, so `cnnlab serve --help` stays quick.
"""

# The command's defaults, read by cli/serve.py without importing torch or FastAPI.
DEFAULTS = {
    "host": "127.0.0.1",      # loopback only: another host must be asked for with --host
    "port": 8000,
    # Images per forward pass at most. 4, measured: on 2 CPU cores efficientnet_lite0 spent
    # about a tenth less CPU time per image in batches of 4 than alone, and more in batches
    # of 16 than alone (their feature maps no longer fit the cache). On a GPU, raise it.
    "max_batch": 4,
    "max_wait_ms": 5.0,       # how long the first image of a batch waits for company
    "queue": 128,             # images waiting at most; beyond: 503 with Retry-After
    "timeout": 30.0,          # seconds a request may take, upload and answer together
    "max_body_mb": 20.0,      # request body, in MiB
    "max_pixels": 40_000_000, # pixels an image may claim in its header (about 7300 x 5500)
    "max_files": 16,          # images in one request
    "top_k": 3,
}
TOKEN_VARIABLE = "CNNLAB_SERVE_TOKEN"  # the bearer token, kept out of `ps` and shell history
