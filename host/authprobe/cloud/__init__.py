"""The cloud side as one interface (authprobe.cloud.base.Cloud) with two backends: AWS through boto3
and the local stand-in's state directory. `open_cloud("aws" | "local:DIR")` picks one."""

from __future__ import annotations

from typing import Any

from authprobe.cloud.aws import AwsCloud
from authprobe.cloud.base import CallRejected, Cloud, LogEvent, NotFound
from authprobe.cloud.local import LocalCloud
from authprobe.errors import ConfigError


def open_cloud(spec: str = "aws", *, profile: str | None = None, region: str | None = None,
               **kwargs: Any) -> Cloud:
    """The cloud side to read: "aws" (boto3, with `profile` and `region`) or "local:DIR" (the
    stand-in's state directory). Extra keywords go to the AWS backend (max_concurrent, on_progress)."""
    if spec.startswith("local:"):
        state_dir = spec[len("local:"):]
        if not state_dir:
            raise ConfigError("--cloud local: needs the stand-in's state directory, e.g. local:.authprobe/emulator")
        return LocalCloud(state_dir)
    if spec == "aws":
        return AwsCloud(profile=profile, region=region, **kwargs)
    raise ConfigError(f"--cloud {spec!r}: expected 'aws' or 'local:STATE_DIR'")


def add_cloud_arguments(parser: Any) -> None:
    parser.add_argument("--cloud", default="aws", metavar="aws|local:DIR",
                        help="where to read the cloud side: AWS (default) or the stand-in's state directory")
    parser.add_argument("--profile", help="AWS profile (standard credential chain otherwise)")
    parser.add_argument("--region", help="AWS region (default: from the profile / AWS_REGION)")


__all__ = ["CallRejected", "Cloud", "LogEvent", "NotFound", "add_cloud_arguments", "open_cloud"]
