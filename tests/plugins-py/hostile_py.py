"""A test-only Python agent that misbehaves as its configuration's `mode` asks, so the sandbox can be
tested against a hostile CPython component (tests/plugins/hostile is the Rust one). `mode = "none"`
behaves (first valid action). The mode triggers in `act`, after `after` good calls, except where a
mode says otherwise (`init-exception`, `huge-save`)."""
import encodings.idna  # noqa: F401 - socket's host names need it, and nothing is imported in a call
import os
import socket
import sys
import time
from dataclasses import dataclass

from nas_plugin import Agent, PluginError, PluginRng, register_agent


@dataclass
class Config:
    mode: str = "none"
    #: MiB to return from `save` (`huge-save`); seconds to sleep (`sleep`, or "forever"); the file,
    #: environment variable or host:port to reach (`read-file`, `env`, `socket`).
    target: str = ""
    #: Behave for this many `act` calls before misbehaving.
    after: int = 0


class HostilePy(Agent):
    NAME = "hostile_py"
    DESCRIPTION = "Test plugin in Python that misbehaves on purpose"
    Config = Config

    def __init__(self, space, config, seed):
        if config.mode == "init-exception":
            raise ValueError("hostile_py refuses to start on purpose")
        self.config, self.acts, self.hoard = config, 0, []

    def act(self, env, obs, mask, explore):
        self.acts += 1
        mode = self.config.mode if self.acts > self.config.after else "none"
        if mode == "infinite-loop":
            x = 0
            while True:
                x += 1
        if mode == "memory-bomb":
            while True:
                self.hoard.append(bytearray(16 << 20))
        if mode == "huge-output":
            huge = "A" * (64 << 20)
            print(huge)
            sys.stdout.flush()
            raise RuntimeError(huge)
        if mode == "exception":
            raise KeyError("no such state")
        if mode == "sleep":
            # WASI's clock: the host cuts the wait at the call's deadline.
            time.sleep(1e9 if self.config.target == "forever" else float(self.config.target))
            raise PluginError("slept and came back")
        if mode == "read-file":
            try:
                with open(self.config.target, "rb") as f:
                    raise PluginError(f"LEAK: read {len(f.read())} bytes of {self.config.target}")
            except OSError as e:
                raise PluginError(f"denied: cannot read {self.config.target}: {e}") from None
        if mode == "env":
            value = os.environ.get(self.config.target)
            raise PluginError(f"LEAK: {value}" if value is not None else f"denied: no environment variable {self.config.target}")
        if mode == "socket":
            host, port = self.config.target.rsplit(":", 1)
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                raise PluginError(f"LEAK: connected to {self.config.target}")
            except OSError as e:
                raise PluginError(f"denied: cannot connect to {self.config.target}: {e}") from None
        if mode == "lazy-import":
            # Not imported when the plugin was built: the sandbox has no files to import it from.
            import colorsys  # noqa: F401

            raise PluginError("imported colorsys in a call")
        if mode == "host-random":
            # Draws from the host's per-episode randomness, as a stateless agent would.
            return PluginRng.from_host().uniform_valid(mask)
        return mask.index(True)

    def save(self):
        if self.config.mode == "huge-save":
            return bytes(int(self.config.target) << 20)
        return b""


register_agent(HostilePy)
