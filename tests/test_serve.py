"""`cnnlab serve`: the HTTP service in-process (FastAPI's TestClient, the real model), its
batcher, and once as a real `cnnlab serve` subprocess under load and under attack."""
from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.course.kernels import sample_image

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from cnnlab.bench.serve_load import abuse, bomb_png  # noqa: E402
from cnnlab.serve.app import Settings, create_app  # noqa: E402
from cnnlab.serve.batching import Batcher, QueueFull  # noqa: E402
from cnnlab.serve.models import load_models  # noqa: E402

CATS = {"tiger cat", "tabby", "Egyptian cat"}
TOKEN = "s3cret-token"


def jpeg(name="chelsea") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(sample_image(name)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lite0():
    return load_models([], ["efficientnet_lite0"], "cpu", max_batch=4)


def ready(client: TestClient, headers=None) -> TestClient:
    for _ in range(600):
        if client.get("/ready", headers=headers).status_code == 200:
            return client
        time.sleep(0.05)
    raise AssertionError("the service never became ready")


@pytest.fixture(scope="module")
def client(lite0):
    settings = Settings(max_batch=4, max_wait_ms=200, max_body_mb=1, max_pixels=4_000_000)
    with TestClient(create_app(lite0, settings)) as client:
        yield ready(client)


def test_predict_answers_as_cnnlab_predict_does(client, tmp_path, capsys):
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(jpeg())
    assert main(["predict", "--pretrained", "efficientnet_lite0", str(photo), "--json",
                 "--device", "cpu"]) == 0
    import json
    offline = json.loads(capsys.readouterr().out)
    served = client.post("/predict", files={"file": ("chelsea.jpg", photo.read_bytes())})
    assert served.status_code == 200
    answer = served.json()
    assert answer.keys() == offline.keys() == {"task", "predictions", "errors"}
    top, expected = answer["predictions"][0]["top"], offline["predictions"][0]["top"]
    assert [t["class"] for t in top] == [t["class"] for t in expected]
    assert top[0]["class"] in CATS
    assert np.allclose([t["probability"] for t in top], [t["probability"] for t in expected],
                       atol=1e-4)


def test_raw_bytes_and_several_files_with_one_bad(client):
    raw = client.post("/predict?top_k=5", content=jpeg("coffee"))
    assert raw.status_code == 200
    assert len(raw.json()["predictions"][0]["top"]) == 5
    assert raw.json()["predictions"][0]["top"][0]["class"] in {"espresso", "cup", "coffee mug"}
    mixed = client.post("/predict", files=[("file", ("cat.jpg", jpeg())),
                                           ("file", ("notes.jpg", b"not a picture at all")),
                                           ("file", ("coffee.jpg", jpeg("coffee")))])
    assert mixed.status_code == 200
    assert [p["file"] for p in mixed.json()["predictions"]] == ["cat.jpg", "coffee.jpg"]
    assert mixed.json()["errors"] == [{"file": "notes.jpg", "status": 415,
                                       "error": "notes.jpg is not an image file PIL can read."}]


def truncated_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(sample_image("chelsea")).save(buffer, "PNG")
    return buffer.getvalue()[:20_000]


@pytest.mark.parametrize("path, body, status, words", [
    ("/predict", b"a shopping list", 415, "not an image"),
    ("/predict", truncated_png(), 422, "truncated"),
    ("/predict", bomb_png(), 413, "decompression-bomb"),
    ("/predict", bomb_png(3000, 2000), 413, "refused without decoding"),  # over max_pixels
    ("/predict", b"\xff" * (2 * 2**20), 413, "over the limit"),
    ("/predict", b"", 422, "no image"),
    ("/predict?model=vgg99", jpeg(), 404, "no model 'vgg99'"),
    ("/predict?top_k=-1", jpeg(), 422, "top_k"),
    ("/gradcam", b"%PDF-1.4", 415, "not an image"),
])
def test_each_bad_request_gets_its_status_and_one_sentence(client, path, body, status, words):
    response = client.post(path, content=body)
    assert response.status_code == status
    sentence = response.json()["error"]
    assert words in sentence and sentence.endswith(".") and "\n" not in sentence
    assert client.get("/health").status_code == 200


def test_unknown_paths_and_methods_answer_in_json(client):
    assert client.get("/nowhere").status_code == 404
    assert "/predict" in client.get("/nowhere").json()["error"]
    assert client.get("/predict").status_code == 405


def test_models_ready_and_metrics_describe_the_service(client):
    model, = client.get("/models").json()["models"]
    assert (model["name"], model["task"], model["input_size"]) == (
        "efficientnet_lite0", "classify", [3, 224, 224])
    assert len(model["classes"]) == 1000 and model["preprocessing"]["size"] == [224, 224]
    assert client.get("/ready").json()["ready"] is True
    client.post("/predict", content=b"not an image")
    text = client.get("/metrics").text
    assert 'cnnlab_requests_total{path="/predict",status="415"}' in text
    assert 'cnnlab_rejects_total{reason="not_an_image"}' in text
    assert "cnnlab_batch_size_bucket" in text and "cnnlab_request_seconds_bucket" in text


def test_concurrent_requests_share_forward_passes(client):
    def batches() -> float:
        line = next(l for l in client.get("/metrics").text.splitlines()
                    if l.startswith("cnnlab_batch_size_count"))
        return float(line.split()[-1])

    before, photo = batches(), jpeg()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/predict", content=photo), range(8)))
    assert all(a.status_code == 200 for a in answers)
    assert {a.json()["predictions"][0]["top"][0]["class"] for a in answers} <= CATS
    assert batches() - before < 8  # eight images, fewer forward passes


def test_gradcam_answers_the_top_class_and_a_heat_map(client):
    answer = client.post("/gradcam", files={"file": ("cat.jpg", jpeg())}).json()
    assert answer["class"] in CATS and answer["layer"]
    png = base64.b64decode(answer["image"].removeprefix("data:image/png;base64,"))
    assert Image.open(io.BytesIO(png)).size == (224, 224)


def test_the_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'name="viewport"' in page.text
    assert "http://" not in page.text and "https://" not in page.text


def test_a_token_guards_everything_but_health_and_the_page(lite0):
    with TestClient(create_app(lite0, Settings(max_batch=4, token=TOKEN))) as client:
        good = {"Authorization": f"Bearer {TOKEN}"}
        ready(client, good)
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200
        for path in ("/models", "/metrics", "/ready"):
            refused = client.get(path, headers={"Authorization": "Bearer wrong"})
            assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
            assert client.get(path).status_code == 401
            assert client.get(path, headers=good).status_code == 200
        assert client.post("/predict", content=jpeg()).status_code == 401
        assert client.post("/predict", content=jpeg(), headers=good).status_code == 200


def test_a_full_queue_answers_503_with_retry_after(lite0):
    # Two images in one request are queued together, before the batcher can take either:
    # with room for one, the request is refused whole.
    with TestClient(create_app(lite0, Settings(max_batch=1, queue=1))) as client:
        refused = ready(client).post("/predict", files=[("file", ("a.jpg", jpeg())),
                                                        ("file", ("b.jpg", jpeg()))])
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["error"]
        assert client.post("/predict", content=jpeg()).status_code == 200
        assert 'cnnlab_rejects_total{reason="queue_full"} 1.0' in client.get("/metrics").text


def test_a_trained_run_is_served_with_its_own_classes(short_run):
    served = load_models([str(short_run.run_dir)], [], "cpu", max_batch=2)
    digit = np.zeros((8, 8), np.uint8)
    digit[1:7, 3:5] = 255  # a one, roughly
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, "PNG")
    with TestClient(create_app(served, Settings(max_batch=2))) as client:
        model, = ready(client).get("/models").json()["models"]
        assert model["classes"] == [str(d) for d in range(10)]
        answer = client.post("/predict", content=buffer.getvalue()).json()
        assert answer["task"] == "classify"
        assert answer["predictions"][0]["top"][0]["class"] in model["classes"]


def test_a_request_slower_than_the_timeout_answers_504(short_run):
    # A lone image waits --max-wait-ms (here 20 s) for company before its batch runs: far
    # past a --timeout of half a second.
    served = load_models([str(short_run.run_dir)], [], "cpu", max_batch=4)
    settings = Settings(max_batch=4, max_wait_ms=20_000, timeout=0.5)
    with TestClient(create_app(served, settings)) as client:
        start = time.monotonic()
        late = ready(client).post("/predict", content=jpeg())
        assert late.status_code == 504 and time.monotonic() - start < 10
        assert late.json()["error"] == "the answer took longer than the limit of 0.5 s."
        assert client.get("/health").status_code == 200
        assert 'cnnlab_rejects_total{reason="timeout"} 1.0' in client.get("/metrics").text


def test_the_batcher_groups_waiting_images_and_refuses_a_full_queue():
    release, seen = threading.Event(), []

    def run_batch(items):
        release.wait(5)
        seen.append(list(items))
        return [item * 10 for item in items]

    async def scenario():
        batcher = Batcher(run_batch, ThreadPoolExecutor(1), max_batch=3, max_wait=0.05,
                          max_queue=4)
        batcher.start()
        first = batcher.submit(1)
        await asyncio.sleep(0.2)  # the first batch (alone) is now in the model
        waiting = [batcher.submit(i) for i in (2, 3, 4, 5)]
        with pytest.raises(QueueFull):
            batcher.submit(6)
        release.set()
        answers = await asyncio.gather(first, *waiting)
        await batcher.stop()
        return answers

    assert asyncio.run(scenario()) == [10, 20, 30, 40, 50]
    assert seen == [[1], [2, 3, 4], [5]]


def test_the_command_refuses_what_it_cannot_do_in_one_sentence(capsys):
    assert main(["serve"]) == 2
    assert "--pretrained" in capsys.readouterr().err
    assert main(["serve", "--pretrained", "efficientnet_lite0", "--workers", "2"]) == 2
    assert "--workers above 1" in capsys.readouterr().err
    assert main(["serve", "--pretrained", "efficientnet_lite0", "--max-batch", "0"]) == 2
    assert "--max-batch must be a positive" in capsys.readouterr().err
    assert main(["serve", "--pretrained", "efficientnet_lite0", "--threads", "0"]) == 2
    assert "--threads must be a positive" in capsys.readouterr().err


@pytest.mark.slow
def test_the_real_service_survives_attacks_under_load():
    """`cnnlab serve` started as a subprocess on a free loopback port, busy with 4 clients,
    then attacked; it is stopped again when the test ends."""
    result = abuse(jpeg(), seconds=2.0, timeout=3.0)
    assert result["statuses"] == {"oversized_body": 413, "decompression_bomb": 413,
                                  "over_pixel_limit": 413, "text_file": 415,
                                  "truncated_png": 422, "wrong_token": 401, "slow_client": 408}
    assert result["health"]["asked"] > 10 and result["health"]["unanswered"] == 0
    assert result["temporary_files_left"] == []
