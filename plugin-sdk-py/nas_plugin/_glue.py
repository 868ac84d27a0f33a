"""The WIT glue: only the build's entry module imports this, inside the component, where
componentize-py has generated `wit_world` from `plugin-sdk/wit/nas-plugin.wit`. It converts the
generated types to the SDK's, holds the plugin's one instance, and turns exceptions into the call's
error."""

import traceback

import nas_plugin as sdk
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types as wit

#: The plugin's one instance (a component exports one agent, shaper or assessor).
_instance = None


def _registered(kind):
    if sdk._registered is None or sdk._registered[0] != kind:
        raise Err(f"the plugin registered no {kind} (call nas_plugin.register_{kind})")
    return sdk._registered[1]


def _error(e):
    """An exception as one line for the user: a `PluginError`'s message as it is; any other
    exception with its type and the line of the plugin that raised it."""
    if isinstance(e, sdk.PluginError):
        return str(e)
    where = ""
    frames = traceback.extract_tb(e.__traceback__)
    if frames:
        last = frames[-1]
        where = f" ({last.filename.rsplit('/', 1)[-1]}, line {last.lineno}, in {last.name})"
    message = str(e)
    return f"{type(e).__name__}: {message}{where}" if message else f"{type(e).__name__}{where}"


def _call(name, f):
    if _instance is None:
        raise Err(f"`{name}` called before `init`")
    try:
        return f(_instance)
    except Exception as e:  # noqa: BLE001 - every exception becomes the call's error
        raise Err(_error(e)) from None


def _install(f):
    global _instance
    try:
        _instance = f()
    except Err:
        raise
    except Exception as e:  # noqa: BLE001
        raise Err(_error(e)) from None


def _layer(layer):
    if isinstance(layer, wit.Layer_Conv):
        return sdk.Conv(layer.value.filters, layer.value.kernel)
    if isinstance(layer, wit.Layer_Pool):
        return sdk.Pool(layer.value.size, layer.value.stride)
    return sdk.Fc(layer.value)


def _info(cls):
    return wit.PluginInfo(cls.NAME, cls.VERSION, cls.DESCRIPTION)


def _space(s):
    actions = tuple(sdk.ActionSpec(_layer(a.layer), a.terminate) for a in s.actions)
    return sdk.Space(actions, s.observation_len, tuple(s.tuple_field_sizes), s.max_depth)


def _curve(c):
    return sdk.LearningCurve(tuple(c.accuracy), c.epochs, c.architecture, tuple(_layer(l) for l in c.layers), c.params)


def _check_index(action, mask_len):
    # The host checks the mask; an index that is no u32 would trap in the bindings instead.
    if isinstance(action, bool) or not isinstance(action, int):
        raise sdk.PluginError(f"act returned {action!r}, not an action index")
    if not 0 <= action < 2**32:
        raise sdk.PluginError(f"act returned {action}, outside the {mask_len} actions")
    return action


# Each build's world exports one of the three interfaces; the other classes are unused there.
class Agent(getattr(exports, "Agent", object)):
    def describe(self):
        return _info(_registered("agent"))

    def init(self, space, config, seed):
        cls = _registered("agent")
        _install(lambda: cls(_space(space), sdk.parse_config(cls.Config, config), seed))

    def act(self, env, observation, mask, explore):
        obs = sdk.Observation(tuple(observation.features), tuple(observation.tuple), observation.depth, observation.image_size)
        return _call("act", lambda a: _check_index(a.act(env, obs, mask, explore), len(mask)))

    def observe(self, env, reward, done):
        _call("observe", lambda a: a.observe(env, reward, done))

    def save(self):
        return _call("save", lambda a: bytes(a.save()))

    def load(self, state):
        _call("load", lambda a: a.load(state))

    def metrics(self):
        try:
            values = _call("metrics", lambda a: a.metrics())
        except Err:
            return []  # as in Rust: metrics cannot fail
        pairs = values.items() if isinstance(values, dict) else values
        return [wit.Metric(str(name), float(value)) for name, value in pairs]


def _cost(c):
    latency = c.latency
    if latency is not None:
        latency = sdk.Latency(latency.median_ms, latency.p90_ms, latency.batch, latency.device)
    return sdk.Cost(c.mult_adds, c.activation_bytes, latency)


class Reward(getattr(exports, "Reward", object)):
    def describe(self):
        return _info(_registered("reward"))

    def init(self, config):
        cls = _registered("reward")
        _install(lambda: cls(sdk.parse_config(cls.Config, config)))

    def shape(self, e):
        evaluation = sdk.Evaluation(
            e.accuracy,
            e.params,
            e.depth,
            e.architecture,
            tuple(_layer(l) for l in e.layers),
            e.train_seconds,
            e.failure,
            e.epochs_trained,
            e.epochs,
            e.stopped,
            _cost(e.cost),
        )
        return _call("shape", lambda s: float(s.shape(evaluation)))


class Assessor(getattr(exports, "Assessor", object)):
    def describe(self):
        return _info(_registered("assessor"))

    def init(self, config):
        cls = _registered("assessor")
        _install(lambda: cls(sdk.parse_config(cls.Config, config)))

    def assess(self, curve):
        c = _curve(curve)

        def verdict(a):
            v = a.assess(c)
            if not isinstance(v, sdk.Verdict):
                raise sdk.PluginError(f"assess returned {v!r}, not a Verdict")
            return wit.Verdict.STOP if v is sdk.Verdict.STOP else wit.Verdict.CONTINUE

        return _call("assess", verdict)

    def completed(self, curve):
        c = _curve(curve)
        _call("completed", lambda a: a.completed(c))
