"""The composed config checked against the code it configures, before anything is built.

Every node with a `_target_` is the keyword arguments of one class or function, so that callable's signature is
the config's schema: each key must be one of its parameters (unless it takes **kwargs), and each value must fit
the parameter's annotation, ranges included where the code declares them with `annotated_types`
(`Annotated[float, Interval(ge=0, lt=1)]`). The check is pydantic's, in its lax mode (2.0 passes as an int).
Values that are themselves `_target_` nodes are checked as nodes; annotations pydantic cannot build a schema for
(modules, tensors) are left to the code.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections import abc
from collections.abc import Iterator

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import TypeAdapter, ValidationError

from t2vlab.runtime.config_schema import KwargsOf
from t2vlab.tasks.preflight import BadInput
from t2vlab.tasks.task_keys import TASK_KEYS

_HYDRA_KEYS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}


def check_config_types(cfg: DictConfig, skip: tuple[str, ...] = ("hydra",)) -> None:
    """Raise BadInput for the first key that its `_target_` does not take, or whose value does not fit; the
    entry point's own keys (`task_keys.TASK_KEYS[task_name]`) are checked against their declared types."""
    for path, node in target_nodes(cfg, skip=skip):  # first: the entry point's keys interpolate some of them
        check_node(path, node)
    own = TASK_KEYS.get(cfg.get("task_name"))
    if own is not None:
        declared = set(inspect.signature(own).parameters)
        check_kwargs("", own, {key: functools.partial(_plain, cfg, key) for key in cfg if key in declared})


def target_nodes(node: DictConfig, path: str = "", skip: tuple[str, ...] = ()) -> Iterator[tuple[str, DictConfig]]:
    """(dotted path, node) for every node with a `_target_`, outer nodes first."""
    if "_target_" in node:
        yield path, node
    for key in node:
        if key in skip or key in _HYDRA_KEYS:
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            yield from target_nodes(child, f"{path}.{key}" if path else str(key))


def check_node(path: str, node: DictConfig) -> None:
    target = node._target_
    try:
        obj = get_object(target)
    except Exception as e:  # noqa: BLE001 - the import error itself says why
        raise BadInput(f"{path}._target_={target} cannot be imported ({e})") from None
    check_kwargs(path, obj, {key: functools.partial(_plain, node, key) for key in node if key not in _HYDRA_KEYS})


def check_kwargs(path: str, obj, values: dict) -> None:
    """values: key -> a function returning the plain value (resolution can fail: only the job resolves
    ${hydra:...}). A dict parameter annotated `Annotated[dict, KwargsOf(cls)]` is checked as cls's keywords."""
    params, takes_kwargs, hints = _signature(obj)
    name = getattr(obj, "__name__", str(obj))
    for key, get in values.items():
        if key not in params:
            if takes_kwargs:
                continue
            allowed = ", ".join(sorted(p for p in params if not p.startswith("_")))
            raise BadInput(f"{_join(path, key)} is not a setting of {name}; allowed: {allowed}")
        hint = hints.get(key)
        if hint is None:
            continue
        try:
            value = get()
        except Exception:  # noqa: BLE001 - an interpolation only the running job can resolve (${hydra:...})
            continue
        if value is _NODE or (value is None and params[key].default in (None, inspect.Parameter.empty)):
            continue  # null: the default, or a placeholder the code fills when it builds (a network's dim)
        fields_of = next((m.cls for m in typing.get_args(hint)[1:] if isinstance(m, KwargsOf)), None)
        if fields_of is not None and isinstance(value, dict):
            check_kwargs(_join(path, key), fields_of, {k: functools.partial(lambda v: v, v) for k, v in value.items()})
            continue
        adapter = _adapter(hint)
        if adapter is None:
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as e:
            raise BadInput(f"{_join(path, key)}={value!r} is invalid; allowed: {describe(hint)} "
                           f"({e.errors()[0]['msg'].lower()})") from None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_NODE = object()


def _plain(node: DictConfig, key: str):
    """The resolved value as plain Python; a nested `_target_` node is checked on its own."""
    value = node[key]
    if isinstance(value, DictConfig):
        return _NODE if "_target_" in value else OmegaConf.to_container(value, resolve=True)
    if isinstance(value, ListConfig):
        if any(isinstance(v, DictConfig) and "_target_" in v for v in value):
            return _NODE
        return OmegaConf.to_container(value, resolve=True)
    return value


@functools.cache
def _signature(obj) -> tuple[dict[str, inspect.Parameter], bool, dict[str, object]]:
    try:
        params = dict(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return {}, True, {}
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    params = {k: p for k, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL
              and p.kind is not inspect.Parameter.VAR_KEYWORD}
    try:
        hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj, include_extras=True)
    except Exception:  # noqa: BLE001 - an annotation that names what this module cannot import: no types
        hints = {}
    return params, takes_kwargs, hints


@functools.cache
def _adapter(hint) -> TypeAdapter | None:
    try:
        return TypeAdapter(hint)
    except Exception:  # noqa: BLE001 - a class pydantic has no schema for (a module, a tensor)
        return None


_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def describe(hint) -> str:
    """A reader's name for an annotation: "int >= 1", "float or null", "one of 'text', 'class'"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        if any(isinstance(m, KwargsOf) for m in args[1:]):
            return describe(args[0])
        bounds = [f"{sign} {getattr(meta, field)}" for meta in args[1:] for field, sign in _BOUNDS.items()
                  if getattr(meta, field, None) is not None]
        return " ".join([describe(args[0]), " and ".join(bounds)]).strip()
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe(a) for a in args)
    if origin in (list, tuple, set, abc.Sequence):
        return f"a list of {describe(args[0])}" if args else "a list"
    if origin in (dict, abc.Mapping):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))
