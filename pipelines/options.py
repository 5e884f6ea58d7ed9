"""Beam pipeline options: the user's flags pass through; locally the default runner is FnApiRunner in
multi-process mode over all cores (DirectRunner would first try to download the Prism binary)."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.config import ConfigError

LOCAL_RUNNER_FLAGS = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def names_runner(beam_args: list[str]) -> bool:
    return any(arg == "--runner" or arg.startswith("--runner=") for arg in beam_args)


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Options from the command line's Beam flags; unknown flags are a user error, not silently dropped."""
    defaults = [] if names_runner(beam_args) else LOCAL_RUNNER_FLAGS
    given = {arg.split("=")[0] for arg in beam_args}
    args = [*beam_args, *(flag for flag in [*defaults, "--default_sdk_harness_log_level=ERROR"] if flag.split("=")[0] not in given)]
    options = PipelineOptions(args)
    unknown = set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options())
    if unknown:
        raise ConfigError(f"unknown option --{sorted(unknown)[0]} (not a pairmill option nor a Beam pipeline option)")
    return options


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline for the command line's Beam flags.

    For the local default, the runner is built here with the options in its provision info (as
    Beam's DirectRunner does); FnApiRunner named alone would start its worker processes without
    them, and they would log at INFO whatever the log-level option says.
    """
    options = pipeline_options(beam_args)
    if names_runner(beam_args):
        return beam.Pipeline(options=options)
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return beam.Pipeline(runner=fn_runner.FnApiRunner(provision_info=provision), options=options)
