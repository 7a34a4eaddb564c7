"""Run configurations: defaults, presets, config files and the objects a config builds.

A configuration is resolved, lowest first, from the global :data:`DEFAULTS`,
the environment's preset (:data:`neuroevo.presets.PRESETS`, settings measured
to solve it, see ``benchmarks/rl.py``), a config file (TOML or YAML), and
explicit overrides. Every key is checked, and the strategy and task are built,
before anything is compiled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from neuroevo.presets import PRESETS

DEFAULTS: dict[str, Any] = {
    "env": "CartPole-v1",
    "strategy": "openai_es",
    "popsize": 256,
    "generations": 50,
    "seed": 0,
    "episodes": 1,
    "eval_episodes": 10,
    "hidden": (32, 32),  # layer widths; () (or "" on the command line): no hidden layer, a linear policy
    "network": "mlp",
    "max_steps": None,
    "normalize_obs": False,
    "descriptor": None,
    "chunk_size": None,
    "log_every": 1,
    "checkpoint_every": 10,
    "hp": {},
}

TYPES: dict[str, type] = {
    "env": str,
    "strategy": str,
    "popsize": int,
    "generations": int,
    "seed": int,
    "episodes": int,
    "eval_episodes": int,
    "network": str,
    "max_steps": int,
    "normalize_obs": bool,
    "descriptor": str,
    "chunk_size": int,
    "log_every": int,
    "checkpoint_every": int,
}


def _valid_keys() -> str:
    return ", ".join(DEFAULTS)


def _coerce(key: str, value: Any) -> Any:
    """Check one config value's type (None allowed where the default is None)."""
    if key == "hidden":
        given = value
        if isinstance(value, str):  # "32,32"; "" means no hidden layer (a linear policy)
            value = value.replace(" ", "").split(",") if value.strip() else []
            if any(v == "" for v in value):
                raise ValueError(f"config key 'hidden' has an empty width in {given!r}; write e.g. 32,32")
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"config key 'hidden' must be layer widths like [32, 32], got {given!r}")
        for v in value:
            is_int = isinstance(v, int) and not isinstance(v, bool)
            is_int = is_int or (isinstance(v, float) and v.is_integer())
            if not (is_int or (isinstance(v, str) and v.isdigit())):
                raise ValueError(f"config key 'hidden' must be layer widths like [32, 32], got {given!r}")
        widths = tuple(int(v) for v in value)
        if any(w < 1 for w in widths):
            raise ValueError(f"config key 'hidden' must hold positive widths, got {given!r}")
        return widths
    if key == "hp":
        if not isinstance(value, Mapping):
            raise ValueError(f"config key 'hp' must be a table of hyperparameters, got {value!r}")
        return dict(value)
    kind = TYPES[key]
    if value is None and DEFAULTS[key] is None:
        return None
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"config key {key!r} must be {kind.__name__}, got {value!r}")
    if kind is int and key not in ("seed",) and value < 1:
        raise ValueError(f"config key {key!r} must be >= 1, got {value!r}")
    return value


def read_config_file(path: str) -> dict[str, Any]:
    """A config file's table: TOML (``.toml``) or YAML (``.yaml``/``.yml``)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".toml", ".yaml", ".yml") and not os.path.isfile(path):
        raise ValueError(f"config file {path!r} does not exist")
    if ext == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        with open(path, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"config file {path!r} is not valid TOML: {e}") from None
    elif ext in (".yaml", ".yml"):
        import yaml

        with open(path) as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise ValueError(f"config file {path!r} is not valid YAML: {e}") from None
    else:
        raise ValueError(f"config file {path!r}: unknown format {ext!r}; valid: .toml, .yaml, .yml")
    if not isinstance(data, Mapping):
        raise ValueError(f"config file {path!r} must hold a table of keys, got {type(data).__name__}")
    return dict(data)


def resolve(file: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The full configuration: defaults < the env's preset < ``file`` < ``overrides``.

    ``hp`` tables are merged in the same order. Unknown keys raise ``ValueError``
    listing the valid ones.
    """
    layers = [read_config_file(file)] if file else []
    layers.append(dict(overrides))
    for layer in layers:
        unknown = sorted(set(layer) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown config key {unknown[0]!r}; valid keys: {_valid_keys()}")
    env = DEFAULTS["env"]
    for layer in layers:
        env = layer.get("env", env)
    config = dict(DEFAULTS, hp={})
    for layer in [PRESETS.get("text" if env.startswith("text:") else env, {}), *layers]:
        for key, value in layer.items():
            if key == "hp":
                config["hp"].update(_coerce("hp", value))
            else:
                config[key] = _coerce(key, value)
    return config


def check_resume(stored: Mapping[str, Any], requested: Mapping[str, Any], reached: int | None) -> None:
    """Raise ``ValueError`` unless ``requested`` may continue the run configured by ``stored``.

    A resumed run keeps its config: only ``generations`` may change, and not to
    fewer than the ``reached`` generations already run (its newest checkpoint;
    None when it has none). Both configs are resolved (:func:`resolve`). The
    error names every other key that differs, with both values.
    """
    changed = []
    for key in DEFAULTS:
        old, new = stored.get(key), requested.get(key)
        if key == "generations" or old == new:
            continue
        if key == "hp":
            for name in sorted(set(old) | set(new)):
                if old.get(name, "unset") != new.get(name, "unset"):
                    changed.append(f"hp {name} ({old.get(name, 'unset')!r} -> {new.get(name, 'unset')!r})")
        else:
            changed.append(f"{key} ({old!r} -> {new!r})")
    if changed:
        raise ValueError(
            f"a resumed run keeps the config it was started with; only generations may change, "
            f"got {', '.join(changed)}"
        )
    if reached is not None and requested["generations"] < reached:
        raise ValueError(
            f"generations {requested['generations']} is below the {reached} generations the run has "
            f"already done: give generations >= {reached}"
        )


def make_task(config: Mapping[str, Any], episodes: int | None = None):
    """The task a config trains on (``episodes`` overrides the config's)."""
    from neuroevo import nn as ne_nn
    from neuroevo import tasks

    env_id = config["env"]
    kwargs = dict(
        episodes=config["episodes"] if episodes is None else episodes,
        max_steps=config["max_steps"],
        normalize_obs=config["normalize_obs"],
    )
    if env_id.startswith("playground:"):
        if config["descriptor"] is not None:
            raise ValueError("descriptor is supported on gymnax environments, not on playground ones")
        return tasks.playground(env_id.split(":", 1)[1], hidden=config["hidden"], **kwargs)
    if env_id == "text" or env_id.startswith("text:"):
        if config["descriptor"] is not None:
            raise ValueError("descriptor is supported on gymnax environments, not on the text task")
        return make_text_task(config, episodes)
    kwargs["descriptor"] = config["descriptor"]
    if config["network"] not in ("mlp", "cnn", "neat"):
        raise ValueError(f"unknown network {config['network']!r}; valid: 'mlp', 'cnn', 'neat'")
    env, params = tasks.gymnax_module.make_env(env_id, config["max_steps"])
    obs_shape = tuple(env.observation_space(params).shape)
    if config["strategy"] == "neat" or config["network"] == "neat":
        # NEAT evolves the network itself: its solutions are ne.nn.neat.Network graphs.
        n_out, head = ne_nn.head_for(env.action_space(params))
        return tasks.gymnax(env_id, ne_nn.neat.neat_policy(obs_shape, n_out, head), **kwargs)
    if config["network"] == "cnn" and len(obs_shape) != 3:
        raise ValueError(
            f"network 'cnn' needs image observations (H, W, C); {env_id} observations have shape "
            f"{obs_shape}: use network 'mlp'"
        )
    policy = ne_nn.policy_for(env.action_space(params), config["hidden"], config["network"])
    return tasks.gymnax(env_id, policy, **kwargs)


def make_text_task(config: Mapping[str, Any], episodes: int | None = None):
    """``--env text`` (or ``text:PATH``): character-level language modelling (``ne.tasks.text``).

    ``hidden`` gives the model's layers (GRUs: one width per layer, all equal),
    ``episodes`` the windows each member is scored on per generation,
    ``max_steps`` the window length (default 64). The final evaluation
    (``episodes`` given) scores that many fixed validation windows.
    """
    from neuroevo import tasks

    widths = tuple(config["hidden"])
    if len(set(widths)) != 1:
        raise ValueError(f"--env text: hidden gives one width per GRU layer, all equal; got {widths}")
    corpus = config["env"].split(":", 1)[1] if ":" in config["env"] else None
    split = "train" if episodes is None else "validation"
    return tasks.text(
        corpus,
        seq_len=config["max_steps"] or 64,
        batch_size=config["episodes"] if episodes is None else episodes,
        width=widths[0],
        layers=len(widths),
        split=split,
    )


def make_strategy(config: Mapping[str, Any], descriptor_dim: int | None = None):
    """The strategy a config trains with; ``descriptor_dim`` is the task's descriptor length.

    A strategy that needs descriptors (novelty search, quality-diversity) gets
    ``descriptor_dim`` unless the config's ``hp`` sets it or an ``archive``; without
    a ``descriptor`` in the config it raises ``ValueError``.
    """
    from neuroevo import strategies

    name, hp = config["strategy"], dict(config["hp"])
    if strategies.needs_descriptors(name):
        if config.get("descriptor") is None:
            raise ValueError(
                f"strategy {name!r} needs behaviour descriptors: set descriptor "
                "(--descriptor final_obs or mean_obs)"
            )
        if descriptor_dim is not None and "descriptor_dim" in strategies.hyperparameters(name):
            if "descriptor_dim" not in hp and "archive" not in hp:
                hp["descriptor_dim"] = descriptor_dim
    return strategies.make(name, popsize=config["popsize"], **hp)


def run_keys(seed: int):
    """A run's keys from its seed: (policy initialisation, evolution, final evaluation)."""
    import jax

    return jax.random.split(jax.random.key(seed), 3)
