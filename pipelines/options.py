"""Beam pipeline options: the user's flags pass through; locally the default runner is FnApiRunner with
one worker process per core (DirectRunner would first try to download the Prism binary)."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.logs import WORKER_COMMAND, Notice, worker_log_level
from schemas.config import ConfigError

LOCAL_RUNNER_FLAGS = ["--runner=FnApiRunner", "--direct_num_workers=0"]
# FnApiRunner's multi-process mode (--direct_running_mode=multi_processing) would start Beam's worker
# command; make_pipeline gives the runner pairmill's (pipelines/logs.py) as its default environment
# instead. In its default mode FnApiRunner runs that on --direct_num_workers processes all the same, but
# warns on every run that it will not.
MODE_WARNING = Notice("apache_beam.runners.portability.fn_api_runner.fn_runner", "If direct_num_workers is not equal to 1")


def names_runner(beam_args: list[str]) -> bool:
    return any(arg == "--runner" or arg.startswith("--runner=") for arg in beam_args)


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Options from the command line's Beam flags; unknown flags are a user error, not silently dropped."""
    defaults = [] if names_runner(beam_args) else LOCAL_RUNNER_FLAGS
    given = {arg.split("=")[0] for arg in beam_args}
    worker_level = f"--default_sdk_harness_log_level={worker_log_level()}"
    args = [*beam_args, *(flag for flag in [*defaults, worker_level] if flag.split("=")[0] not in given)]
    options = PipelineOptions(args)
    unknown = set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options())
    if unknown:
        raise ConfigError(f"unknown option --{sorted(unknown)[0]} (not a pairmill option nor a Beam pipeline option)")
    return options


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline for the command line's Beam flags.

    For the local default, the runner is built here with the options in its provision info (as
    Beam's DirectRunner does); FnApiRunner named alone would start its worker processes without
    them, and they would log at INFO whatever the log-level option says. Its workers are
    ``python -m pipelines.logs`` processes (Beam's SDK harness behind pairmill's logging setup).
    """
    options = pipeline_options(beam_args)
    if names_runner(beam_args):
        return beam.Pipeline(options=options)
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle
    from apache_beam.transforms.environments import SubprocessSDKEnvironment

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    MODE_WARNING.install()
    workers = SubprocessSDKEnvironment.from_command_string(WORKER_COMMAND)
    return beam.Pipeline(runner=fn_runner.FnApiRunner(default_environment=workers, provision_info=provision), options=options)
