"""The options the subcommands share: ``--project`` and Rasa's path flags, and the
:class:`~bot.project.Project` they name."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.project import Project


def add_project_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project",
        metavar="DIR",
        default=None,
        help="project folder holding config.yml (default: $BOT_PROJECT or the current folder)",
    )


def add_project_options(
    parser: argparse.ArgumentParser, *, training: bool = False, model: bool = True
) -> None:
    """``--project`` plus Rasa's path flags (``--data``, ``--domain``, ``--config``,
    ``--endpoints``, ``--credentials``; ``--model`` unless ``model`` is false; ``--out`` and
    ``--fixed-model-name`` with ``training``). Build the project with :func:`project_from_args`."""
    add_project_option(parser)
    group = parser.add_argument_group(
        "project files (as Rasa's flags; paths from the current folder)"
    )
    group.add_argument(
        "--data",
        metavar="PATH",
        nargs="+",
        action="extend",
        default=None,
        help="training data files or folders (default: data/, nlu_data/ and "
        "stories/ of the project)",
    )
    group.add_argument(
        "--domain",
        metavar="PATH",
        default=None,
        help="domain file or folder (default: domain.yml or domain/)",
    )
    group.add_argument(
        "--config", metavar="FILE", default=None, help="config file (default: config.yml)"
    )
    group.add_argument(
        "--endpoints", metavar="FILE", default=None, help="endpoints file (default: endpoints.yml)"
    )
    group.add_argument(
        "--credentials",
        metavar="FILE",
        default=None,
        help="channel credentials file (default: credentials.yml)",
    )
    if model:
        group.add_argument(
            "--model",
            "-m",
            metavar="PATH",
            default=None,
            help="model archive, models folder or unpacked model to load "
            "(default: the newest in models/)",
        )
    if training:
        group.add_argument(
            "--out",
            dest="models_out",
            metavar="DIR",
            default=None,
            help="folder the model archive is written to (default: models/)",
        )
        group.add_argument(
            "--fixed-model-name",
            metavar="NAME",
            default=None,
            help="archive name: models/NAME.tar.gz (default: time and fingerprint)",
        )


def project_from_args(args: argparse.Namespace) -> Project:
    """The project of ``--project`` with the path flags of :func:`add_project_options`."""
    from bot.project import Project

    project = Project.find(
        getattr(args, "project", None),
        config=getattr(args, "config", None),
        domain=getattr(args, "domain", None),
        data=getattr(args, "data", None),
        endpoints=getattr(args, "endpoints", None),
        credentials=getattr(args, "credentials", None),
        out=getattr(args, "models_out", None),
        fixed_model_name=getattr(args, "fixed_model_name", None),
    )
    return project


def export_paths(project: Project) -> None:
    """Put ``--endpoints`` and ``--credentials`` in ``$BOT_ENDPOINTS`` and
    ``$BOT_CREDENTIALS`` for the rest of the process (``bot run``): the server's workers and
    the bank backend of in-process actions find the project again from its folder and
    read the same files."""
    from bot.project import ENV_CREDENTIALS, ENV_ENDPOINTS

    if project.endpoints_path is not None:
        os.environ[ENV_ENDPOINTS] = str(project.endpoints_path)
    if project.credentials_path is not None:
        os.environ[ENV_CREDENTIALS] = str(project.credentials_path)


def model_path(args: argparse.Namespace) -> Path | None:
    """``--model`` as a path, or ``None`` for the newest model."""
    value = getattr(args, "model", None)
    return Path(value).resolve() if value else None
