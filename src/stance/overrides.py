"""Command-line override helpers: sweep folder names, the ``input=PATH`` shorthand, quoting.

Ground floor beside ``config``: ``config.register`` installs :func:`job_dirname` as the
``${stance_dirname:...}`` resolver of the sweep folders; entry points and scripts that build
override lists use the other two.
"""

from __future__ import annotations

import hashlib
import re


def job_dirname(override_dirname: str) -> str:
    """One safe, relative folder name for a sweep job (resolver ``${stance_dirname:...}``).

    Hydra joins ``hydra.sweep.subdir`` onto the sweep dir with ``os.path.join``, so an empty
    ``override_dirname`` (a seed-only sweep) would make ``/seed=1`` an absolute path and a ``/``
    in a value (``model.name_or_path=/x/y``) would nest folders or climb out with ``..``. Names
    over 240 bytes get their long values replaced by ``~<sha1>`` (``.hydra/overrides.yaml``
    keeps the full overrides).
    """

    def digest(text: str, n: int) -> str:
        return hashlib.sha1(text.encode()).hexdigest()[:n]

    def size(text: str) -> int:  # the limit is in bytes, not characters
        return len(text.encode())

    name = override_dirname.replace("/", "%2F").replace("\\", "%5C") or "default"
    if size(name) > 240:  # file names are limited to 255 bytes: hash the longest values until it fits
        items = [i.partition("=") for i in re.split(r",(?=[\w.+~-]+=)", name)]
        values = [v for _, _, v in items]
        for i in sorted(range(len(items)), key=lambda i: -len(values[i])):
            if size(",".join(f"{k}={v}" for (k, _, _), v in zip(items, values))) <= 240:
                break
            if len(values[i]) > 9:
                values[i] = f"~{digest(values[i], 8)}"
        name = ",".join(f"{k}={v}" for (k, _, _), v in zip(items, values))
    if size(name) > 240:
        name = f"{name.encode()[:220].decode(errors='ignore')}~{digest(name, 10)}"
    return name


def input_shorthand(args: list[str]) -> list[str]:
    """Command-line overrides with ``input=PATH`` rewritten to ``input.paths=['PATH']``.

    ``ScoreConfig.input`` is a structured InputConfig, so Hydra cannot assign a string to it; the
    score entry point (and tests composing its config) pass their overrides through this first.
    """
    out = []
    for arg in args:
        value = arg[len("input=") :]
        if arg.startswith("input=") and value.startswith("["):  # input=[a,b]: already a list
            arg = f"input.paths={value}"
        elif arg.startswith("input=") and not value.startswith("{"):
            arg = "input.paths=['" + value.replace("'", "\\'") + "']"
        out.append(arg)
    return out


def quote_override(value: object) -> str:
    """A value (a path) as a quoted Hydra override value: ``=``, ``,``, spaces or brackets in it
    (run folders are named ``seed=1``) would otherwise break the override's parse."""
    return "'" + str(value).replace("'", "\\'") + "'"
