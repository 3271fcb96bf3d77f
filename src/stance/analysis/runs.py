"""Reading training run folders (``stance.train``'s run dir, docs/ARCHITECTURE.md) for the compare.

A run folder holds ``.hydra/`` (``overrides.yaml``, ``config.yaml``, ``hydra.yaml``) and/or
``run.json``; ``metrics.json`` and ``predictions.jsonl`` when it completed.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from stance.errors import StanceError, where
from stance.labels import ID2LABEL


@dataclass
class Run:
    """One run dir as the compare sees it."""

    path: Path
    # completed | running | failed | incomplete (no metrics.json) | interrupted (process gone) | <run.json value>
    status: str
    overrides: dict[str, str]
    seed: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
    test_data_hash: str | None = None
    error: str = ""  # run.json's one-line error of a failed run
    _config: Any = None
    _choices: dict[str, str] | None = None

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.jsonl"

    def resolved(self, key: str) -> str:
        """The value ``key`` had in this run: its config-group choice, else its resolved config value.

        The config value (not the override's spelling) makes ``train.epochs=4`` and an untouched
        default of ``4.0`` one configuration; the override string is the fallback (``~key``).
        """
        if self._choices is None:
            self._choices = _read_choices(self.path / ".hydra" / "hydra.yaml")
        if key in self._choices:
            return self._choices[key]
        if self._config is None:
            self._config = OmegaConf.create(_read_yaml(self.path / ".hydra" / "config.yaml") or {})
        try:
            value = OmegaConf.select(self._config, key, default=None)
        except Exception:  # an interpolation that cannot resolve outside Hydra
            value = None
        if value is None:
            return self.overrides.get(key, "")
        return _scalar(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)


def _scalar(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise StanceError(f"{where(path, err.lineno)}: not valid JSON ({err.msg})") from None


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise StanceError(f"{where(path, None if line is None else line + 1)}: not valid YAML") from None


def _read_choices(path: Path) -> dict[str, str]:
    """Config-group choices Hydra recorded (``hydra.runtime.choices``), e.g. ``model: minilm``."""
    data = _read_yaml(path) or {}
    choices = ((data.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    return {str(k): _scalar(v) for k, v in choices.items() if not str(k).startswith("hydra/")}


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """``["model=minilm", "+x.y=1", "~z"]`` -> ``{"model": "minilm", "x.y": "1", "z": "(deleted)"}``."""
    out: dict[str, str] = {}
    for line in lines:
        line = str(line)
        key, sep, value = line.partition("=")
        key = key.lstrip("+~")
        out[key] = value if sep else "(deleted)"
    return out


def find_run_dirs(path: str | os.PathLike[str]) -> list[Path]:
    """Every folder at or below ``path`` holding ``.hydra/`` or ``run.json`` (not descending into runs)."""
    root = Path(path)
    if not root.exists():
        raise StanceError(f"{root}: no such file or directory")
    if not root.is_dir():
        raise StanceError(f"{root}: not a folder (pass a sweep folder or a run folder)")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if "run.json" in filenames or ".hydra" in dirnames:
            found.append(here)
            dirnames[:] = []  # a run's model/ and checkpoints hold no runs
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    if not found:
        raise StanceError(f"{root}: no runs found (no folder with .hydra/ or run.json below it)")
    return sorted(found)


def load_run(path: Path) -> Run:
    """Read one run dir; a missing ``run.json``/``metrics.json`` becomes a status, not an error."""
    info = _read_json(path / "run.json") if (path / "run.json").is_file() else {}
    if not isinstance(info, dict):
        raise StanceError(f"{path / 'run.json'}: expected a JSON object")
    overrides = parse_overrides(_read_yaml(path / ".hydra" / "overrides.yaml") or [])
    metrics: dict[str, float] = {}
    if (path / "metrics.json").is_file():
        raw = _read_json(path / "metrics.json")
        if not isinstance(raw, dict):
            raise StanceError(f"{path / 'metrics.json'}: expected a JSON object of metric -> number")
        metrics = {k: float(v) for k, v in raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    status = str(info.get("status") or ("completed" if metrics else "incomplete"))
    if status == "completed" and not metrics:
        status = "incomplete"  # run.json says done but metrics.json is missing
    if status == "running" and process_gone(info):
        status = "interrupted (process gone)"  # killed (-9, power loss) before it could say so
    run = Run(path=path, status=status, overrides=overrides, test_data_hash=info.get("test_data_hash"))
    run.error = str(info.get("error") or "")
    seed = info.get("seed", overrides.get("seed"))
    run.seed = seed if seed is not None else (run.resolved("seed") or None)
    run.metrics = metrics
    return run


def process_gone(info: dict[str, Any]) -> bool:
    """Whether the process a "running" run.json names (``pid``, ``host``) no longer exists.

    Only decidable on the same host (a run.json without ``host`` is taken as this host's); a
    reused pid reads as alive, so a dead run can still show "running", never the reverse.
    """
    pid = info.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    host = info.get("host")
    if host and host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False


def read_predictions(path: Path) -> dict[str, tuple[str, str]]:
    """``example_id -> (label, pred)`` from a run's ``predictions.jsonl`` (ids as labels mapped)."""
    out: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out[str(row["example_id"])] = (_label(row["label"]), _label(row["pred"]))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                problem = f"missing {err}" if isinstance(err, KeyError) else "not a JSON object"
                raise StanceError(f"{where(path, lineno)}: {problem} (needs example_id, label, pred)") from None
    return out


def _label(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return ID2LABEL.get(value, str(value))
    return str(value)
