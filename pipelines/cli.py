"""The ``pairmill`` command line: build, mine, train, demo, inspect, verify.

Every user mistake (bad recipe key, missing file, unknown kind or option) is one line on stderr and
exit code 2; a build whose books do not balance, or a verify that finds a problem, exits 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from itertools import islice
from typing import Any

from pipelines import logs
from schemas.config import ConfigError
from schemas.manifest import ManifestError

# Nothing imported here, or while the parser is built, may import Beam: main() sets up logging first
# (pipelines/logs.py). The commands import what they need.

EXIT_USER_ERROR = 2
EXIT_FAILED = 1


def finish_run(output: str, run: dict[str, Any], report: dict[str, Any]) -> int:
    """Print a build's or a mine's funnel and overview and write the report; exit code 1 when the run's books do not balance."""
    from pipelines.funnel import format_funnel
    from report.html import write_report
    from report.overview import format_overview

    print(format_funnel(run["datasets"]))
    print(format_overview(run["datasets"]))
    paths = write_report(output, report)
    print(f"report: {paths['html']} ({paths['json']})")
    if not run["balanced"]:
        print("pairmill: error: the books do not balance (read != written + dropped + rejected); see the report", file=sys.stderr)
        return EXIT_FAILED
    return 0


def command_build(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.build import format_plan, run_build
    from storage.configs import load_recipe

    recipe = load_recipe(args.recipe, output=args.output)
    if args.dry_run:
        print(format_plan(recipe))
        return 0
    report = run_build(recipe, beam_args, overwrite=args.overwrite, one_at_a_time=args.one_dataset_at_a_time)
    return finish_run(recipe.output, report, report)


def command_mine(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.mine import run_mine
    from report.collect import merge_mined, read_report
    from storage.configs import load_recipe

    recipe = load_recipe(args.recipe, output=args.output)
    mined = run_mine(recipe, beam_args, overwrite=args.overwrite, one_at_a_time=args.one_dataset_at_a_time)
    return finish_run(recipe.output, mined, merge_mined(read_report(recipe.output), mined))


def command_train(args: argparse.Namespace, beam_args: list[str]) -> int:
    from trainer.train import run_training

    print(f"run folder: {run_training(args.config, resume=args.resume, output=args.output)}")
    return 0


def command_inspect(args: argparse.Namespace, beam_args: list[str]) -> int:
    from report.collect import read_report
    from report.datasheet import format_datasheet
    from storage.builds import find_datasets, iter_records, read_manifest
    from storage.files import split

    for folder in find_datasets(args.path):
        manifest = read_manifest(folder)
        print(f"== {folder}")
        print(manifest.to_json().rstrip())
        for record in islice(iter_records(folder), args.records):
            print(json.dumps(record, ensure_ascii=False))
        output, dataset = split(folder.rstrip("/"))
        sheet = ((read_report(output) or {}).get("datasheets") or {}).get(dataset)
        if sheet is not None:
            print(format_datasheet(dataset, sheet))
    return 0


def command_verify(args: argparse.Namespace, beam_args: list[str]) -> int:
    from storage.builds import find_datasets, verify_dataset

    failed = False
    for folder in find_datasets(args.path):
        result = verify_dataset(folder)
        if result.ok:
            print(f"ok  {folder}: {result.shards} shards, {result.records} records")
        else:
            failed = True
            for problem in result.problems:
                print(f"BAD {problem}")
    return EXIT_FAILED if failed else 0


def command_demo(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.demo import run_demo

    return run_demo(args.output, args.seed, args.scale, args.train_steps)


ONE_AT_A_TIME_HELP = ("run one pipeline per dataset, one after another: the local runner then holds one dataset's "
                      "shuffles in memory at a time, not the whole recipe's (README, 'Memory and the local runner')")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairmill",
        description="Curate weakly-supervised text pairs for training embedders. Beam options such as "
        "--runner, --project, --temp_location, --setup_file pass through build and mine unchanged.",
    )
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging detail (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="curate: ingest -> clean -> language -> dedup -> decontaminate -> consistency -> shards",
                                description="Build every source of RECIPE into OUT/<dataset> shard folders, with the funnel in OUT/report.json "
                                "and OUT/report.html. Unknown --flags are passed to Beam.")
    build.add_argument("recipe", help="YAML recipe file")
    build.add_argument("--output", help="output folder (overrides the recipe's output)")
    build.add_argument("--overwrite", action="store_true", help="replace datasets that already hold a complete build")
    build.add_argument("--one-dataset-at-a-time", action="store_true", help=ONE_AT_A_TIME_HELP)
    build.add_argument("--dry-run", action="store_true",
                       help="validate the recipe and print the plan (sources, stages, expected counts) without reading data")
    build.set_defaults(run=command_build, beam=True)

    mine = commands.add_parser("mine", help="hard negatives for built datasets -> triplet shards",
                               description="Mine hard negatives with the recipe's teacher for the datasets its mining block names (already built "
                               "under the recipe's output) and write <dataset><output_suffix> triplet (or labeled-pair) datasets. "
                               "Unknown --flags are passed to Beam.")
    mine.add_argument("recipe", help="YAML recipe file with a mining block")
    mine.add_argument("--output", help="output folder holding the built datasets (overrides the recipe's output)")
    mine.add_argument("--overwrite", action="store_true", help="replace mined datasets that already hold a complete build")
    mine.add_argument("--one-dataset-at-a-time", action="store_true", help=ONE_AT_A_TIME_HELP)
    mine.set_defaults(run=command_mine, beam=True)

    train = commands.add_parser("train", help="the bundled contrastive trainer (torchrun for several GPUs)",
                                description="Train an embedder on built datasets (InfoNCE, one dataset per batch, GradCache, prefixes per dataset) "
                                "and save a model SentenceTransformer(path) loads. Several GPUs: torchrun --nproc_per_node N -m pipelines.cli train CONFIG.")
    # The trainer's arguments, declared here so that `pairmill --help` does not import torch.
    train.add_argument("config", help="train CONFIG (YAML); every key is documented in trainer/config.py and recipes/train_demo.yaml")
    train.add_argument("--resume", action="store_true", help="continue the run in the output folder from its newest sound checkpoint")
    train.add_argument("--output", help="run folder (overrides the config's output)")
    train.set_defaults(run=command_train, beam=False)

    from pipelines.demo import add_demo_arguments

    demo = commands.add_parser("demo", help="everything, offline, on a generated sample corpus",
                               description="Generate a sample corpus in the published formats with planted duplicates, non-English records and "
                               "mismatched pairs; build it with every filter on; mine negatives; train the default student briefly; write the report; "
                               "and score the filters against the corpus's ground truth.")
    add_demo_arguments(demo)
    demo.set_defaults(run=command_demo, beam=False)

    inspect = commands.add_parser("inspect", help="print a dataset's manifest and a few records",
                                  description="Print the manifest and the first records of a dataset folder, or of every dataset in an output folder.")
    inspect.add_argument("path", help="dataset folder or output folder")
    inspect.add_argument("-n", "--records", type=int, default=3, help="records to print per dataset (default 3)")
    inspect.set_defaults(run=command_inspect, beam=False)

    verify = commands.add_parser("verify", help="re-check checksums, counts and schema",
                                 description="Re-check every shard's sha256, size and record count against the manifest, every record against "
                                 "the schema, and counts.json. Exits 1 on any mismatch.")
    verify.add_argument("path", help="dataset folder or output folder")
    verify.set_defaults(run=command_verify, beam=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "beam", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logs.configure(args.log_level)
    from storage.builds import ShardError

    try:
        return args.run(args, extra)
    except (ConfigError, ManifestError, ShardError) as err:
        print(f"pairmill: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR if isinstance(err, ConfigError) else EXIT_FAILED
    except FileNotFoundError as err:  # a path the user named that is not there (storage/ names it)
        print(f"pairmill: error: {err.filename}: {err.strerror}" if err.filename else f"pairmill: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
