"""The `cnnlab` command: argument parsing and wiring only.

Each subcommand calls one library function. The `train` flags are generated from
TrainConfig's fields, so a new setting needs no CLI code. A UserError prints one sentence
and exits with status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys

import yaml

from ..config.train_config import TrainConfig, load_config_file
from ..errors import UserError


def _key_value(text: str):
    """'activation=relu' -> ('activation', 'relu'); values are read as YAML scalars (3, 0.5, true)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    return key, yaml.safe_load(value) if value else ""


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; defaults stay out of the namespace so we can tell
    which flags were given (they override --config, which overrides the defaults)."""
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS,
                  "help": f"{f.metadata.get('help', '')} (default: {default})"}
        if f.name == "model_kwargs":
            kwargs.update(nargs="+", type=_key_value, metavar="KEY=VALUE")
        elif isinstance(default, bool):
            kwargs.update(action=argparse.BooleanOptionalAction)
        else:
            kwargs.update(type=type(default) if default is not None else str,
                          choices=f.metadata.get("choices"))
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)
    parser.add_argument("--config", metavar="FILE",
                        help="YAML or JSON file with the same keys; flags override it")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if getattr(args, "resume", None):  # the run's own config.json, not the defaults
        from ..training.run import resume_config
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if hasattr(args, f.name)}
        return resume_config(args.resume, given)
    from_file = load_config_file(args.config) if args.config else {}
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if hasattr(args, f.name)}
    # A recipe sets defaults only: the file's keys and the flags given both override it.
    config = TrainConfig.for_recipe(given.get("recipe", from_file.get("recipe")))
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
    elif not args.images:
        raise UserError("give one or more image files after the run folder, or --pretrained MODEL.")
    else:
        result = predict_files(args.run, args.images, top_k=args.top_k, device=args.device)
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
        from .course import options
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
    from ..bench import markdown, run_bench, write_results
    from ..bench.workloads import FULL, QUICK
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    result = run_bench(QUICK if args.quick else FULL, device=args.device, models=args.models,
                       compile=args.compile, log=log)
    paths = write_results(result, args.out, quick=args.quick)
    result["files"] = [str(p) for p in paths]
    _emit(args, result, f"{markdown(result)}\nwritten to {paths[0]} and {paths[1]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description=__doc__.splitlines()[0])
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    output.add_argument("--quiet", action="store_true", help="no progress or log lines")

    train = commands.add_parser("train", parents=[output], help="train a model, write a run folder")
    add_config_flags(train)
    train.set_defaults(run_command=cmd_train)

    compare = commands.add_parser("transfer-compare", parents=[output],
                                  help="feature extraction vs fine-tuning vs from scratch, same budget")
    add_config_flags(compare)
    compare.set_defaults(run_command=cmd_transfer_compare)

    evaluate = commands.add_parser("evaluate", parents=[output],
                                   help="accuracy, per-class report and confusion matrix of a run")
    evaluate.add_argument("run", metavar="RUN", help="run folder written by cnnlab train")
    evaluate.add_argument("--split", default="test", help="test, val or train (default: test)")
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(run_command=cmd_evaluate)

    predict = commands.add_parser("predict", parents=[output], help="classify image files")
    predict.add_argument("run", metavar="RUN", help="run folder written by cnnlab train "
                         "(with --pretrained: the first image)")
    predict.add_argument("images", metavar="IMAGE", nargs="*", help="image files")
    predict.add_argument("--pretrained", metavar="MODEL",
                         help="ImageNet classes from this pretrained model, e.g. efficientnet_lite0")
    predict.add_argument("--weights-file", help="with --pretrained: its weights from this file")
    predict.add_argument("--top-k", type=int, default=3, help="classes to show per image (default: 3)")
    predict.add_argument("--device", default="auto")
    predict.set_defaults(run_command=cmd_predict)

    datasets = commands.add_parser("datasets", parents=[output],
                                   help="the data set catalogue; `datasets stats NAME`: mean and std")
    datasets.add_argument("action", nargs="?", choices=("list", "stats"), default="list")
    datasets.add_argument("name", nargs="?", help="data set for `stats`")
    datasets.add_argument("--data-dir", default="data")
    datasets.add_argument("--download", action="store_true")
    datasets.set_defaults(run_command=cmd_datasets)

    models = commands.add_parser("models", parents=[output],
                                 help="registered models: family, parameters, input size, paper")
    models.set_defaults(run_command=cmd_models)

    from . import course as conv_args
    conv_shape = commands.add_parser("conv-shape", parents=[output],
                                     help="output size and parameters of one conv or pooling layer, formulas shown")
    conv_args.add_conv_shape_args(conv_shape)
    conv_shape.set_defaults(run_command=cmd_conv_shape)

    summary = commands.add_parser("summary", parents=[output],
                                  help="every layer: shape, parameters, multiply-adds, receptive field")
    conv_args.add_summary_args(summary)
    summary.set_defaults(run_command=cmd_summary)

    explain = commands.add_parser("explain", help="convolution or pooling step by step on a small input")
    how = explain.add_subparsers(dest="explain_command", required=True, metavar="conv|pool")
    explain_conv = how.add_parser("conv", parents=[output], help="cross-correlation or transposed convolution")
    conv_args.add_explain_conv_args(explain_conv)
    explain_conv.set_defaults(run_command=cmd_explain_conv)
    explain_pool = how.add_parser("pool", parents=[output], help="max or average pooling")
    conv_args.add_explain_pool_args(explain_pool)
    explain_pool.set_defaults(run_command=cmd_explain_pool)

    kernels = commands.add_parser("kernels", parents=[output],
                                  help="apply a classic image kernel to a photograph; is it separable?")
    conv_args.add_kernels_args(kernels)
    kernels.set_defaults(run_command=cmd_kernels)

    bench = commands.add_parser("bench", parents=[output], help="training and inference speed "
                                "beside the lectures' loop and PyTorch Lightning")
    bench.add_argument("--quick", action="store_true",
                       help="a step of each, in seconds: checks that it runs (numbers mean nothing)")
    bench.add_argument("--models", nargs="+", metavar="MODEL", help="only these workloads' models")
    bench.add_argument("--out", default="benchmarks/results", help="folder for the JSON and Markdown")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--compile", action="store_true", help="torch.compile cnnlab's model")
    bench.set_defaults(run_command=cmd_bench)

    from . import look as inspect_args
    for name, add_args, command, about in (
            ("featuremaps", inspect_args.add_featuremaps_args, cmd_featuremaps,
             "activation maps of each convolution stage for one image"),
            ("filters", inspect_args.add_filters_args, cmd_filters,
             "learned kernels as images (the first layer in colour)"),
            ("gradcam", inspect_args.add_gradcam_args, cmd_gradcam,
             "Grad-CAM heat map: where the evidence for a class lies in the image"),
            ("receptive-field", inspect_args.add_receptive_field_args, cmd_receptive_field,
             "the input region one unit sees, by arithmetic and by its gradient"),
            ("report", inspect_args.add_report_args, cmd_report,
             "one self-contained HTML page about a run")):
        sub = commands.add_parser(name, parents=[output], help=about)
        add_args(sub)
        sub.set_defaults(run_command=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run_command(args)
    except UserError as exc:
        print(f"cnnlab: {'' if hasattr(exc, 'exit_code') else 'error: '}{exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("cnnlab: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
