"""The `cnnlab` command: argument parsing and wiring only.

Each subcommand calls one library function. The `train` flags are generated from
TrainConfig's fields, so a new setting needs no CLI code. A UserError prints one sentence
and exits with status 2.
"""
from __future__ import annotations

import argparse
import atexit
import dataclasses
import importlib
import json
import os
import re
import signal
import sys
import threading
import time
from typing import NoReturn

import yaml

from ..atomic import NO_ROOM
from ..errors import UserError
from ..logs import LOGGER, reported


def _key_value(text: str):
    """'activation=relu' -> ('activation', 'relu'); values are read as YAML scalars (3, 0.5, true)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    if value[:1] not in "[{'\"" and re.search(r",\s*[A-Za-z_]\w*=", value):
        raise argparse.ArgumentTypeError(
            f"'{text}' looks like several options joined by commas; separate them with "
            f"spaces: {' '.join(part.strip() for part in text.split(','))}")
    return key, yaml.safe_load(value) if value else ""


def add_config_flags(parser: argparse.ArgumentParser, leave_out: tuple[str, ...] = ()) -> None:
    """One flag per TrainConfig field (but those in `leave_out`, which the command sets
    itself); defaults stay out of the namespace so we can tell which flags were given (they
    override --config, which overrides the defaults)."""
    from ..config.train_config import GROUPS, TrainConfig
    group = parser
    for f in dataclasses.fields(TrainConfig):
        if f.name in GROUPS:
            group = parser.add_argument_group(GROUPS[f.name])
        if f.name in leave_out:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        about = f.metadata.get("help", "")
        shown = default not in (None, "") and "default" not in about  # said there already
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS,
                  "help": f"{about} (default: {default})" if shown else about}
        if f.name == "model_kwargs":
            kwargs.update(nargs="+", type=_key_value, metavar="KEY=VALUE")
        elif isinstance(default, bool):
            kwargs.update(action=argparse.BooleanOptionalAction)
        else:
            kwargs.update(type=type(default) if default is not None else str,
                          choices=f.metadata.get("choices"))
        # a field may also answer to the name an issue or a paper uses (--loss)
        group.add_argument("--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ()),
                           **kwargs)
    parser.add_argument("--config", metavar="FILE",
                        help="YAML or JSON file with the same keys; flags override it")


def config_from_args(args: argparse.Namespace):
    """The TrainConfig the flags, --config and --recipe describe."""
    from ..config.train_config import TrainConfig, load_config_file
    if getattr(args, "resume", None):  # the run's own config.json, not the defaults
        from ..training.run import resume_config
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if hasattr(args, f.name)}
        return resume_config(args.resume, given)
    from_file = load_config_file(args.config) if args.config else {}
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if hasattr(args, f.name)}
    # A recipe sets defaults only: the file's keys and the flags given both override it.
    chosen = {**from_file, **given}
    config = TrainConfig.starting_point(chosen)
    recipe = config.recipe
    if recipe != chosen.get("recipe") and not args.quiet:
        from ..config.recipes import recipe_defaults
        print(f"cnnlab: --task {config.task} starts from the {recipe} recipe (" + ", ".join(
            f"{k} {v}" for k, v in recipe_defaults(recipe).items()
            if k not in chosen and k != "task") + "); flags override it.", file=sys.stderr)
    if from_file:
        config = config.updated(from_file, source=f"config file {args.config}")
    if "model_kwargs" in given:
        given["model_kwargs"] = {**config.model_kwargs, **dict(given["model_kwargs"])}
    return config.updated(given, source="the command line")


def _emit(args, result: dict, human: str) -> None:
    """--json: one object on stdout; otherwise readable text."""
    if args.json:
        print(json.dumps(result))
    elif human and not args.quiet:
        print(human)


def cmd_train(args) -> int:
    from ..training.run import train
    result = train(config_from_args(args), quiet=args.quiet)
    if result.main:
        _emit(args, {k: v for k, v in result.to_dict().items() if k != "history"}, "")
    return 0


def cmd_transfer_compare(args) -> int:
    from ..training.compare import format_table, transfer_compare
    table = transfer_compare(config_from_args(args), quiet=args.quiet)
    _emit(args, table, format_table(table))
    return 0


def cmd_evaluate(args) -> int:
    from ..infer.evaluate import evaluate_run, format_report
    report = evaluate_run(args.run, split=args.split, device=args.device)
    _emit(args, report, format_report(report))
    return 0


def cmd_predict(args) -> int:
    from ..infer.predict import format_predictions, predict_files, predict_pretrained
    if args.pretrained:  # no run folder: the first positional is an image too
        result = predict_pretrained(args.pretrained, [args.run, *args.images], top_k=args.top_k,
                                    device=args.device, weights_file=args.weights_file)
    elif args.weights_file:
        from ..look.inspection import LONE_WEIGHTS_FILE
        raise UserError(LONE_WEIGHTS_FILE)
    else:  # with no images only a task that makes its own (a GAN) answers: predict_files
        result = predict_files(args.run, args.images, top_k=args.top_k, device=args.device,
                               out_dir=args.out_dir, score_threshold=args.score_threshold,
                               output_format=args.output_format, count=args.count)
    _emit(args, result, format_predictions(result))
    for error in result["errors"]:
        print(f"cnnlab: {error['error']}", file=sys.stderr)
    return 2 if result["errors"] else 0


def cmd_models(args) -> int:
    from ..models.catalog import describe_models, format_models
    table = describe_models()
    _emit(args, table, format_models(table))
    return 0


def _wired(module: str, function: str, formatter: str):
    """A subcommand that hands its options to one library function and prints the result."""
    def run(args) -> int:
        from .options import options
        library = importlib.import_module(f"cnnlab.course.{module}")
        result = getattr(library, function)(**options(args))
        _emit(args, result, getattr(library, formatter)(result))
        return 0
    return run


cmd_conv_shape = _wired("arithmetic", "conv_shape", "format_description")
cmd_summary = _wired("summary", "summary", "format_summary")
cmd_explain_conv = _wired("explain", "explain_conv", "format_explanation")
cmd_explain_pool = _wired("explain", "explain_pool", "format_explanation")
cmd_kernels = _wired("kernels", "kernel_lab", "format_kernel_lab")


def cmd_featuremaps(args) -> int:
    from .look import subject_options
    from ..look.featuremaps import featuremaps, format_featuremaps
    result = featuremaps(**subject_options(args), layers=args.layers, channels=args.channels,
                         out=args.out).to_dict()
    _emit(args, result, format_featuremaps(result))
    return 0


def cmd_filters(args) -> int:
    from .look import subject_options
    from ..look.filters import filters, format_filters
    result = filters(**subject_options(args, wants_image=False), layer=args.layer,
                     out=args.out).to_dict()
    _emit(args, result, format_filters(result))
    return 0


def cmd_gradcam(args) -> int:
    from .look import subject_options
    from ..look.gradcam import format_gradcam, gradcam
    result = gradcam(**subject_options(args), target=args.target, layer=args.layer,
                     out=args.out).to_dict()
    _emit(args, result, format_gradcam(result))
    return 0


def cmd_receptive_field(args) -> int:
    from ..look.receptive_field import format_receptive_field, receptive_field
    result = receptive_field(args.model, args.layer, image=args.image, sample=args.sample,
                             input=args.input, unit=args.unit, out=args.out).to_dict()
    _emit(args, result, format_receptive_field(result))
    return 0


def cmd_report(args) -> int:
    from ..look.report import build_report, format_report_result
    result = build_report(args.run, out=args.out, device=args.device)
    _emit(args, result, format_report_result(result))
    return 0


def cmd_stylize(args) -> int:
    from .options import options
    from ..stylize.command import format_stylize, stylize
    result = stylize(**options(args), quiet=args.quiet)
    _emit(args, result, format_stylize(result))
    return 0


def cmd_track(args) -> int:
    from .options import options
    from ..track.command import format_track, track
    result = track(**options(args), quiet=args.quiet)
    _emit(args, result, format_track(result))
    return 0


def cmd_export(args) -> int:
    from .options import options
    from ..export.command import export, format_export
    result = export(**options(args))
    _emit(args, result, format_export(result))
    if not result["parity_ok"]:  # the file is written, but it does not answer as cnnlab does
        print(f"cnnlab: {result['output']} does not reproduce cnnlab's outputs within "
              f"{result['tolerance']:g}; see the parity line above.", file=sys.stderr)
    return 0 if result["parity_ok"] else 1


def cmd_serve(args) -> int:
    from .serve import options
    from ..serve.command import serve
    serve(**options(args))
    return 0


def cmd_verify(args) -> int:
    """--task embed: are two images the same identity, at the run's validation threshold?"""
    from ..infer.loaded import load_for_inference
    from ..runs.folder import read_metrics
    from ..tasks.embed_report import format_verify, verify_pair
    loaded = load_for_inference(args.run, args.device)
    if loaded.run.spec.config.task != "embed":
        raise UserError(f"{args.run} trained --task {loaded.run.spec.config.task}; verify "
                        "needs a run of --task embed.")
    threshold = next((m["val_threshold"] for m in reversed(read_metrics(loaded.run.path))
                      if "val_threshold" in m), None)
    if threshold is None:
        raise UserError(f"{args.run} has no validation threshold yet; train it for an epoch.")
    result = verify_pair(loaded.model, loaded.run.spec.preprocess, [args.first, args.second],
                         loaded.device, threshold, loaded.precision)
    _emit(args, result, format_verify(result))
    return 0


def cmd_datasets(args) -> int:
    if args.action == "stats":
        from ..data.stats import dataset_stats
        if not args.name:
            raise UserError("cnnlab datasets stats needs a data set name, e.g. digits.")
        result = dataset_stats(args.name, args.data_dir, args.download)
        human = (f"{result['dataset']}: mean {', '.join(f'{m:.4f}' for m in result['mean'])}; "
                 f"std {', '.join(f'{s:.4f}' for s in result['std'])} over {result['images']:,} "
                 f"training images{' (cached)' if result['cached'] else ''}")
        _emit(args, result, human)
        return 0
    from ..data.catalog import describe_datasets
    rows = describe_datasets()
    width = max(len(r["name"]) for r in rows)
    _emit(args, {"datasets": rows}, "\n".join(
        f"{r['name']:<{width}}  {r['description']}  [{r['source']}; augment {r['augment']}]"
        for r in rows))
    return 0


def cmd_bench(args) -> int:
    from ..bench.task_suite import write_task_results
    if args.batch_size is not None and (args.whole_run or args.startup
                                        or args.task != "classify"):
        raise UserError("--batch-size sets the classification workloads' batch; the "
                        "whole run, start-up and task benchmarks keep their own.")
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    if args.whole_run:
        from ..bench.whole_run import FULL, QUICK, bench_whole_run, whole_run_markdown
        result = bench_whole_run(QUICK if args.quick else FULL, log=log)
        return _bench_written(args, result, whole_run_markdown, write_task_results,
                              name="whole-run")
    if args.startup:
        from ..bench.startup import bench_startup, startup_markdown
        return _bench_written(args, bench_startup(args.quick), startup_markdown,
                              write_task_results)
    if args.task == "serve":
        from ..bench.serve_load import FULL, QUICK, bench_serve, serve_markdown
        return _bench_written(args, bench_serve(QUICK if args.quick else FULL), serve_markdown,
                              write_task_results, name="serve")
    if args.task != "classify":
        from ..bench.task_speed import task_markdown
        from ..bench.task_suite import run_task_bench
        return _bench_written(args, run_task_bench(args.task, args.quick), task_markdown,
                              write_task_results)
    from ..bench import markdown, run_bench, write_results
    from ..bench.workloads import FULL, QUICK
    settings = QUICK if args.quick else FULL
    if args.batch_size is not None:
        if not 1 <= args.batch_size <= 4096:
            raise UserError(f"--batch-size must be a whole number from 1 to 4096, not "
                            f"{args.batch_size}.")
        settings = dataclasses.replace(settings, batch_size=args.batch_size)
    result = run_bench(settings, device=args.device, models=args.models,
                       compile=args.compile, log=log)
    return _bench_written(args, result, markdown, write_results)


def _bench_written(args, result: dict, markdown, write, **options) -> int:
    """A benchmark's result written as OUT/<stem>.json and .md, then shown (or --json)."""
    paths = write(result, args.out, quick=args.quick, markdown=markdown, **options)
    result["files"] = [str(p) for p in paths]
    _emit(args, result, f"{markdown(result)}\nwritten to {paths[0]} and {paths[1]}")
    return 0


def _evaluate_args(parser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by cnnlab train")
    parser.add_argument("--split", default="test", help="test, val or train (default: test)")
    parser.add_argument("--device", default="auto")


def _verify_args(parser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by cnnlab train --task embed")
    parser.add_argument("first", metavar="A", help="an image file")
    parser.add_argument("second", metavar="B", help="another image file")
    parser.add_argument("--device", default="auto")


def _predict_args(parser) -> None:
    add = parser.add_argument
    add("run", metavar="RUN", help="run folder written by cnnlab train (with --pretrained: the "
        "first image)")
    add("images", metavar="IMAGE", nargs="*", help="image files")
    add("--pretrained", metavar="MODEL",
        help="ImageNet classes from this pretrained model, e.g. efficientnet_lite0")
    add("--weights-file", help="with --pretrained: its weights from this file")
    add("--top-k", type=int, default=3, help="classes to show per image (default: 3)")
    add("--out-dir", metavar="DIR", help="segmentation and detection: where the pictures go "
        "(default: masks/ or detections/ beside the first image)")
    add("--score-threshold", type=float, default=0.5, metavar="T",
        help="detection: leave out detections scored below T (default: 0.5)")
    add("--format", dest="output_format", choices=("cnnlab", "coco"), default="cnnlab",
        help="detection: coco also writes the detections as a COCO results file "
        "(detections.coco.json, as pycocotools' loadRes reads it)")
    add("--count", type=int, metavar="N", help="gan, with no IMAGE: new images to draw "
        "(default: 64; into --out-dir, default ./generated)")
    add("--device", default="auto")


def _datasets_args(parser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "stats"), default="list")
    parser.add_argument("name", nargs="?", help="data set for `stats`")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--download", action="store_true")


def _bench_args(parser) -> None:
    add = parser.add_argument
    add("--quick", action="store_true",
        help="a step of each, in seconds: checks that it runs (numbers mean nothing)")
    add("--models", nargs="+", metavar="MODEL", help="only these workloads' models")
    add("--task", choices=("classify", "segment", "detect", "serve"), default="classify",
        help="segment or detect: that task's training beside torchvision's reference loop; "
        "serve: `cnnlab serve` under load and under attack")
    add("--out", default="benchmarks/results", help="folder for the JSON and Markdown")
    add("--device", default="auto")
    add("--compile", action="store_true", help="torch.compile cnnlab's model")
    add("--batch-size", type=int, help="training images per step of the classification "
        "workloads (default 128; small batches show what the loop adds to each step)")
    add("--startup", action="store_true", help="instead: seconds from process start to "
        "an answer for --help, conv-shape and a 1-epoch train (median of 5)")
    add("--whole-run", action="store_true", help="instead: wall clock from process start to "
        "test accuracy, `cnnlab train` on a folder of 6,000 PNGs (cold and warm cache) beside "
        "the lectures' script, 1 and 4 epochs, medians of 3 rounds")


def _explain_args(parser, output) -> None:
    from . import course
    how = parser.add_subparsers(dest="explain_command", required=True, metavar="conv|pool")
    for name, add_args, command, about in (
            ("conv", course.add_explain_conv_args, cmd_explain_conv,
             "cross-correlation or transposed convolution"),
            ("pool", course.add_explain_pool_args, cmd_explain_pool, "max or average pooling")):
        sub = how.add_parser(name, parents=[output], help=about)
        add_args(sub)
        sub.set_defaults(run_command=command)
    from . import claims_training  # depth, batchnorm, transfer-depth: claims about training
    claims_training.add_explain_commands(how, output)
    from . import claims  # shift, dense, border, collapse, kernel-gradient, inception
    claims.add_explain_commands(how, output)


def _from(module: str, function: str):
    """The argument builder `function` of cli/`module`.py, imported only when its command runs."""
    return lambda parser: getattr(importlib.import_module(f"{__package__}.{module}"), function)(parser)


# The commands: name, what it does, its arguments, what runs it. A command's arguments are
# built only when that command is used, so `cnnlab --help` imports neither torch nor the
# training stack (train's flags come from TrainConfig, which does).
COMMANDS = [
    ("train", "train a model, write a run folder", lambda p: add_config_flags(p), cmd_train),
    ("transfer-compare", "feature extraction vs fine-tuning vs from scratch, same budget",
     lambda p: add_config_flags(p, leave_out=("transfer", "resume", "task")),
     cmd_transfer_compare),
    ("evaluate", "the run's task measured on a split: for classification accuracy, per-class "
     "report and confusion matrix", _evaluate_args, cmd_evaluate),
    ("predict", "the run's answers for image files (classification: the top classes)",
     _predict_args, cmd_predict),
    ("datasets", "the data set catalogue; `datasets stats NAME`: mean and std", _datasets_args,
     cmd_datasets),
    ("models", "registered models: family, parameters, input size, paper", None, cmd_models),
    ("conv-shape", "output size and parameters of one conv or pooling layer, formulas shown",
     _from("course", "add_conv_shape_args"), cmd_conv_shape),
    ("summary", "every layer: shape, parameters, multiply-adds, receptive field",
     _from("course", "add_summary_args"), cmd_summary),
    ("explain", "convolution or pooling step by step on a small input", "explain", None),
    ("kernels", "apply a classic image kernel to a photograph; is it separable?",
     _from("course", "add_kernels_args"), cmd_kernels),
    ("bench", "training and inference speed beside the lectures' loop and PyTorch Lightning",
     _bench_args, cmd_bench),
    ("featuremaps", "activation maps of each convolution stage for one image",
     _from("look", "add_featuremaps_args"), cmd_featuremaps),
    ("filters", "learned kernels as images (the first layer in colour)",
     _from("look", "add_filters_args"), cmd_filters),
    ("gradcam", "Grad-CAM heat map: where the evidence for a class lies in the image",
     _from("look", "add_gradcam_args"), cmd_gradcam),
    ("receptive-field", "the input region one unit sees, by arithmetic and by its gradient",
     _from("look", "add_receptive_field_args"), cmd_receptive_field),
    ("report", "one self-contained HTML page about a run", _from("look", "add_report_args"),
     cmd_report),
    ("stylize", "neural style transfer: CONTENT's picture in STYLE's style (Gatys et al. 2016)",
     _from("stylize", "add_stylize_args"), cmd_stylize),
    ("track", "follow objects over time: a detection run's boxes linked across the frames "
     "of a video, one id per object (MOTA, IDF1 on generated clips)",
     _from("track", "add_track_args"), cmd_track),
    ("export", "a run as an ONNX, TorchScript or ExportedProgram file with its preprocessing, "
     "checked against cnnlab's outputs", _from("export", "add_export_args"), cmd_export),
    ("serve", "classifiers over HTTP: /predict, /metrics and a web page with Grad-CAM",
     _from("serve", "add_serve_args"), cmd_serve),
    ("verify", "--task embed: are images A and B the same identity? (cosine similarity against "
     "the run's threshold)", _verify_args, cmd_verify),
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command's arguments, or, given `command`, only that command's
    (any other name, "" for instance, gives the command list alone)."""
    parser = argparse.ArgumentParser(prog="cnnlab", description=__doc__.splitlines()[0])
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    loudness = output.add_mutually_exclusive_group()
    loudness.add_argument("--quiet", action="store_true",
                          help="no progress or log lines, only warnings and errors")
    loudness.add_argument("--verbose", action="store_true",
                          help="also the details: checkpoints written, how long the command took")
    for name, about, add_args, run in COMMANDS:
        # explain holds two commands of its own, each with the output flags
        sub = commands.add_parser(name, parents=[] if run is None else [output], help=about)
        if command is not None and name != command:
            continue
        if add_args == "explain":
            _explain_args(sub, output)
        elif add_args is not None:
            add_args(sub)
        if run is not None:
            sub.set_defaults(run_command=run)
    return parser


def _command_in(argv: list[str]) -> str:
    """The command named in `argv` (its first word that is not an option), or ""."""
    return next((word for word in argv if not word.startswith("-")), "")


def _quit_at_once(signum, frame) -> None:
    """Ctrl-C outside the training loop (which saves first: training/session.py): stop now.
    A KeyboardInterrupt raised inside a library's import (numpy, scikit-learn) can surface
    as another exception with a long traceback, and nothing cnnlab writes needs unwinding:
    every file is written atomically, so the old one or the new one is there."""
    print("cnnlab: interrupted.", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


def main(argv: list[str] | None = None) -> int:
    """The `cnnlab` program (argv None) or one command for a caller in Python (argv given)."""
    if argv is not None:
        return _command(argv, as_program=False)
    _leave(_command(sys.argv[1:], as_program=True))


def _leave(status: int) -> NoReturn:
    """End the program without the interpreter's teardown, which freed torch's modules one
    by one for 0.5-0.6 s after the last line (2-core CPU). The exit hooks still run
    (multiprocessing's children, logging, temporary folders) and every file cnnlab writes
    is closed by then. The Ctrl-C handler stays to the end: Ctrl-C in those last moments is
    exit status 130 and one sentence, not a kill by SIGINT after Python let go of it.
    A thread still working (none of cnnlab's own) gets the ordinary exit that waits for it."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        sys.exit(status)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # Python's own exit says what could not be written
        sys.exit(status)
    os._exit(status)


def _command(argv: list[str], as_program: bool) -> int:
    """Run one command; a caller in Python gets its own Ctrl-C handler back after it."""
    in_charge = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _quit_at_once) if in_charge else None
    args = None
    try:
        args = build_parser(_command_in(argv)).parse_args(argv)
        with reported(getattr(args, "quiet", False), getattr(args, "verbose", False)):
            started = time.perf_counter()
            status = args.run_command(args)
            LOGGER.debug("cnnlab %s took %.2f s.", args.command, time.perf_counter() - started)
            return status
    except UserError as exc:
        return _failed(args, exc)
    except KeyboardInterrupt:
        print("cnnlab: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`cnnlab models | head`): nothing left to say to it, and
        # Python must not complain when it flushes stdout at exit (its docs' recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno not in NO_ROOM:
            raise
        # a write outside atomic_write (an appended log line): the files before it are whole
        where = f" {exc.filename}" if exc.filename else ""
        return _failed(args, UserError(
            f"there is no room to write{where} ({exc.strerror.lower()}); the files written "
            "before are intact: free some space and run the command again."))
    finally:
        if in_charge and not as_program:
            signal.signal(signal.SIGINT, previous)


def _failed(args, exc: UserError) -> int:
    print(f"cnnlab: {'' if hasattr(exc, 'exit_code') else 'error: '}{exc}", file=sys.stderr)
    if getattr(args, "json", False):  # a program reading stdout learns why too
        print(json.dumps({"error": str(exc)}))
    return getattr(exc, "exit_code", 2)


if __name__ == "__main__":
    sys.exit(main())
