"""`cnnlab serve RUN` for every task: each answers POST /predict as `cnnlab predict RUN --json`
does for that task, pictures inline as PNG data: URLs. Tiny runs (one step of training on
the generated sets), the real service in-process (FastAPI's TestClient), and the answers
compared with `cnnlab predict`'s on the same file."""
from __future__ import annotations

import base64
import io
import json
import tempfile
import time

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.course.kernels import sample_image

pytest.importorskip("fastapi", reason="the serve extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from cnnlab.serve.app import SCORE_THRESHOLD, Settings, create_app  # noqa: E402
from cnnlab.serve.models import load_models  # noqa: E402

ONE_STEP = ["--epochs", "1", "--limit-batches", "1", "--quiet"]
CAPTION_KWARGS = ["backbone=lenet5", "activation=relu", "embed_dim=16", "hidden_dim=32",
                  "feature_dim=16", "attention_dim=16"]


def trained(tmp_path_factory, name: str, *argv: str) -> str:
    run = tmp_path_factory.mktemp(name) / "run"
    assert main(["train", *ONE_STEP, *argv, "--out", str(run)]) == 0
    return str(run)


def photo(tmp_path, size=(96, 64), name="chelsea.png") -> tuple[str, bytes]:
    """A photograph of an odd size, as a PNG file and its bytes."""
    path = tmp_path / name
    Image.fromarray(sample_image("chelsea")).resize(size).save(path)
    return str(path), path.read_bytes()


def picture(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.removeprefix("data:image/png;base64,"))))


def served(run: str, **settings):
    client = TestClient(create_app(load_models([run], [], "cpu", max_batch=4),
                                   Settings(max_batch=4, **settings)))
    return client


def ready(client: TestClient) -> TestClient:
    for _ in range(1200):
        if client.get("/ready").status_code == 200:
            return client
        time.sleep(0.05)
    raise AssertionError("the service never became ready")


def predicted(capsys, run: str, *argv: str) -> dict:
    assert main(["predict", run, *argv, "--json", "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def segment_run(tmp_path_factory):
    return trained(tmp_path_factory, "segment", "--task", "segment", "--model", "unet",
                   "--dataset", "shapes", "--batch-size", "16", "--model-kwargs", "width=4",
                   "depth=2")


@pytest.mark.slow
def test_segmentation_answers_a_mask_of_the_image_size(segment_run, tmp_path, capsys):
    path, data = photo(tmp_path)
    offline = predicted(capsys, segment_run, path, "--out-dir", str(tmp_path / "masks"))
    with served(segment_run) as client:
        model, = ready(client).get("/models").json()["models"]
        assert (model["task"], model["gradcam"]) == ("segment", False)
        answer = client.post("/predict", files=[("file", ("a.png", data)),
                                                ("file", ("b.png", data))]).json()
        assert client.post("/gradcam", content=data).status_code == 422
    assert answer["task"] == "segment" and len(answer["predictions"]) == 2
    first = answer["predictions"][0]
    mask = np.asarray(picture(first["mask"]))
    assert mask.shape == (64, 96) and set(np.unique(mask)) <= set(range(len(model["classes"])))
    assert picture(first["overlay"]).size == (96, 64)
    assert np.array_equal(mask, np.asarray(Image.open(offline["predictions"][0]["mask"])))
    assert first["class_fractions"] == pytest.approx(offline["predictions"][0]["class_fractions"])


@pytest.fixture(scope="module")
def detect_run(tmp_path_factory):
    return trained(tmp_path_factory, "detect", "--task", "detect", "--model", "fcos",
                   "--model-kwargs", "backbone=resnet18", "--dataset", "shapes-objects",
                   "--batch-size", "4")


@pytest.mark.slow
def test_detection_answers_boxes_inside_the_image_as_predict_does(detect_run, tmp_path,
                                                                  capsys):
    path, data = photo(tmp_path, (128, 96))
    offline = predicted(capsys, detect_run, path, "--score-threshold", "0", "--out-dir",
                        str(tmp_path / "found"))["predictions"][0]
    with served(detect_run) as client:
        answer = ready(client).post("/predict?score_threshold=0", content=data).json()
        refused = client.post("/predict?score_threshold=2", content=data)
    assert refused.status_code == 422 and "score_threshold" in refused.json()["error"]
    found = answer["predictions"][0]
    assert picture(found["picture"]).size == (128, 96)
    assert len(found["detections"]) == len(offline["detections"])  # none, after one step
    for item, expected in zip(found["detections"], offline["detections"]):
        x1, y1, x2, y2 = item["box"]  # in the photograph's own pixels
        assert -1 <= x1 <= x2 <= 129 and -1 <= y1 <= y2 <= 97
        assert item["class"] == expected["class"] and item["class"] in (
            "circle", "square", "triangle")
        assert item["box"] == pytest.approx(expected["box"], abs=0.05)


def test_the_service_leaves_out_detections_as_predict_does():
    from cnnlab.tasks.detect_report import SCORE_THRESHOLD as PREDICTS
    assert SCORE_THRESHOLD == PREDICTS


@pytest.fixture(scope="module")
def superres_run(tmp_path_factory):
    return trained(tmp_path_factory, "superres", "--task", "superres", "--model", "espcn",
                   "--dataset", "photos", "--batch-size", "8")


@pytest.mark.slow
def test_superres_answers_the_image_scale_times_larger(superres_run, tmp_path, capsys):
    path, data = photo(tmp_path)
    offline = predicted(capsys, superres_run, path, "--out-dir", str(tmp_path / "up"))
    with served(superres_run) as client:
        answer = ready(client).post("/predict", files=[("file", ("a.png", data)),
                                                       ("file", ("b.png", data))]).json()
    first = answer["predictions"][0]
    scale = first["scale"]
    assert first["size"] == [96, 64] and first["upscaled_size"] == [96 * scale, 64 * scale]
    ours = np.asarray(picture(first["upscaled"]), dtype=int)
    theirs = np.asarray(Image.open(offline["predictions"][0]["upscaled"]), dtype=int)
    assert ours.shape == theirs.shape == (64 * scale, 96 * scale, 3)
    assert np.abs(ours - theirs).max() <= 1  # the two images shared one forward pass
    assert picture(first["sheet"]).size[0] > 0


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    return trained(tmp_path_factory, "video", "--task", "video")


def video_bytes(tmp_path) -> bytes:
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.height = stream.width = 32
        stream.pix_fmt = "yuv420p"
        for i in range(10):
            frame = np.zeros((32, 32, 3), np.uint8)
            frame[8:16, 2 + 2 * i:10 + 2 * i] = 255  # a square moving right
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path.read_bytes()


@pytest.mark.slow
def test_a_video_file_gets_its_classes_and_no_temporary_file_stays(video_run, tmp_path,
                                                                    monkeypatch, capsys):
    clip = video_bytes(tmp_path)
    (tmp_path / "clip2.mp4").write_bytes(clip)
    offline = predicted(capsys, video_run, str(tmp_path / "clip2.mp4"))["predictions"][0]
    uploads = tmp_path / "service-tmp"
    uploads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(uploads))
    with served(video_run) as client:
        answer = ready(client).post("/predict?top_k=2", files=[
            ("file", ("clip.mp4", clip)), ("file", ("notes.mp4", b"not a video"))]).json()
    found, = answer["predictions"]
    assert (found["file"], found["frames"]) == ("clip.mp4", offline["frames"])
    assert [t["class"] for t in found["top"]] == [t["class"] for t in offline["top"][:2]]
    assert answer["errors"][0]["status"] == 415 and "notes.mp4" in answer["errors"][0]["error"]
    assert list(uploads.iterdir()) == []


@pytest.fixture(scope="module")
def embed_run(tmp_path_factory):
    return trained(tmp_path_factory, "embed", "--task", "embed")


@pytest.mark.slow
def test_embeddings_and_two_images_verified_as_cnnlab_verify_does(embed_run, tmp_path,
                                                                   capsys):
    first, data = photo(tmp_path, (40, 40))
    second, other = photo(tmp_path, (40, 40), "other.png")
    Image.fromarray(sample_image("coffee")).resize((40, 40)).save(second)
    other = open(second, "rb").read()
    assert main(["verify", embed_run, first, second, "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    offline = predicted(capsys, embed_run, first)["predictions"][0]
    with served(embed_run) as client:
        answer = ready(client).post("/predict", files=[("file", ("a.png", data)),
                                                       ("file", ("b.png", other))]).json()
    embedding = answer["predictions"][0]["embedding"]
    assert embedding == pytest.approx(offline["embedding"], abs=1e-5)
    assert answer["verify"]["files"] == ["a.png", "b.png"]
    assert answer["verify"]["same"] == verdict["same"]
    assert answer["verify"]["similarity"] == pytest.approx(verdict["similarity"], abs=1e-5)


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory):
    return trained(tmp_path_factory, "caption", "--task", "caption", "--model",
                   "show_attend_tell", "--precision", "fp32", "--model-kwargs",
                   *CAPTION_KWARGS)


@pytest.mark.slow
def test_a_caption_of_vocabulary_words_with_its_attention(caption_run, tmp_path, capsys):
    path, data = photo(tmp_path, (48, 48))
    offline = predicted(capsys, caption_run, path, "--out-dir", str(tmp_path / "c"))
    with served(caption_run) as client:
        model, = ready(client).get("/models").json()["models"]
        answer = client.post("/predict", content=data).json()
    found = answer["predictions"][0]
    assert found["caption"] == offline["predictions"][0]["caption"]
    assert set(found["caption"].split()) <= set(model["classes"])
    assert picture(found["attention"]).size[0] > 0


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return trained(tmp_path_factory, "gan", "--task", "gan", "--model", "dcgan", "--dataset",
                   "digits", "--batch-size", "16")


@pytest.mark.slow
def test_a_gan_draws_new_images_and_judges_uploads(gan_run, tmp_path):
    _, data = photo(tmp_path, (8, 8))
    with served(gan_run, max_files=4) as client:
        model, = ready(client).get("/models").json()["models"]
        assert model["needs_image"] is False
        drawn = client.post("/predict?count=3").json()
        again = client.post("/predict?count=3").json()
        too_many = client.post("/predict?count=5")
        judged = client.post("/predict", content=data).json()
    assert drawn["task"] == "gan" and len(drawn["predictions"]) == 3
    sizes = {picture(p["image"]).size for p in drawn["predictions"]}
    assert sizes == {tuple(model["input_size"][1:])}
    assert picture(drawn["grid"]).size[0] > 0 and drawn == again  # the same noise each time
    assert too_many.status_code == 422 and "--max-files" in too_many.json()["error"]
    assert 0 <= judged["predictions"][0]["real"] <= 1
