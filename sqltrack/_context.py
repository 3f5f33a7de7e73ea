"""Who and where a run comes from: user, host, source and git commit."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys

from sqltrack import config


def user_name() -> str:
    explicit = config.get("user")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def host_name() -> str:
    return socket.gethostname()


def source() -> tuple[str, str]:
    """(source_name, source_type): the script path, a notebook, or the interpreter."""
    if "ipykernel" in sys.modules:
        name = os.environ.get("JPY_SESSION_NAME") or "notebook"
        return name, "NOTEBOOK"
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    if path and os.path.exists(path):
        return os.path.abspath(path), "SCRIPT"
    return path or "<interactive>", "LOCAL"


def git_commit(path: str) -> str | None:
    """The HEAD commit of the git work tree holding ``path``, or None."""
    folder = path if os.path.isdir(path) else os.path.dirname(path) or os.getcwd()
    if not os.path.isdir(folder):
        folder = os.getcwd()
    try:
        out = subprocess.run(
            ["git", "-C", folder, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None
