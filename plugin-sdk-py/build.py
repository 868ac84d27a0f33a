#!/usr/bin/env python3
"""Builds a Python plugin into a WebAssembly component: `build.py SRC.py [-o OUT.wasm]`.

The kind (agent, reward shaper, assessor) is read from the file's `register_*` call; the component
targets that world of `plugin-sdk/wit/nas-plugin.wit`, the contract the Rust SDK builds against.
componentize-py generates the bindings into the build only, beside an entry module that imports the
plugin (its `register_*` call) and the SDK's glue. The output defaults to `plugins/STEM.wasm`,
where nas-host finds plugins by name.
"""

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WIT = ROOT / "plugin-sdk" / "wit"
WORLDS = {"agent": ("agent-plugin", "Agent"), "reward": ("reward-plugin", "Reward"), "assessor": ("assessor-plugin", "Assessor")}


def kind_of(source: Path) -> str:
    """The kind named by the file's top-level `register_agent/reward/assessor` call or decorator."""
    tree = ast.parse(source.read_text(), filename=str(source))
    found = set()
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        elif isinstance(node, ast.ClassDef):
            for d in node.decorator_list:
                name = getattr(d, "id", None) or getattr(d, "attr", None)
                if name and name.startswith("register_"):
                    found.add(name[len("register_"):])
            continue
        if name and name.startswith("register_") and name[len("register_"):] in WORLDS:
            found.add(name[len("register_"):])
    found &= set(WORLDS)
    if len(found) != 1:
        sys.exit(f"{source}: call exactly one of register_agent, register_reward, register_assessor (found {sorted(found) or 'none'})")
    return found.pop()


def componentize_py() -> str:
    beside = Path(sys.executable).parent / "componentize-py"
    found = str(beside) if beside.exists() else shutil.which("componentize-py")
    if not found:
        sys.exit("componentize-py is not installed: `make python-plugin` installs it into the project's venv")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the plugin's Python file")
    parser.add_argument("-o", "--output", type=Path, help="the component to write (default plugins/STEM.wasm)")
    args = parser.parse_args()
    source = args.source.resolve()
    if not source.is_file():
        sys.exit(f"{args.source}: no such file")
    module = source.stem
    if not module.isidentifier() or module in ("nas_plugin", "wit_world"):
        sys.exit(f"{args.source}: the file name must be a Python module name other than nas_plugin")
    kind = kind_of(source)
    world, export = WORLDS[kind]
    output = (args.output or ROOT / "plugins" / f"{module}.wasm").resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nas-pyplug-") as tmp:
        # componentize-py bundles every file of the directories on its path: the app directory
        # holds the plugin's file, the SDK package and the entry module, nothing else (no tests
        # beside the plugin, nothing from the build machine's site-packages).
        app = Path(tmp) / "app"
        shutil.copytree(HERE / "nas_plugin", app / "nas_plugin", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copyfile(source, app / source.name)
        (app / "nas_plugin_entry.py").write_text(
            f"import {module}  # noqa: F401 - registers the plugin\n"
            f"from nas_plugin._glue import {export}  # noqa: F401 - the export componentize-py looks for\n"
        )
        partial = Path(tmp) / "out.wasm"
        command = [
            componentize_py(), "-q", "-d", str(WIT), "-w", world, "componentize",
            "-p", str(app), "-o", str(partial), "nas_plugin_entry",
        ]
        # Without a VIRTUAL_ENV, componentize-py adds the site-packages of the Python that runs it
        # (the project's venv: PyTorch, numpy...). An empty one keeps them out of the component.
        empty_venv = Path(tmp) / "venv"
        (empty_venv / "lib" / "site-packages").mkdir(parents=True)
        env = dict(os.environ, VIRTUAL_ENV=str(empty_venv))
        result = subprocess.run(command, env=env, cwd=tmp)
        if result.returncode != 0:
            sys.exit(f"componentize-py failed building {args.source} ({kind})")
        # Written whole or not at all: a half-written plugin never sits where nas-host looks.
        tmp_out = output.with_suffix(".wasm.partial")
        shutil.copyfile(partial, tmp_out)
        os.replace(tmp_out, output)
    print(f"{args.source} ({kind}) -> {os.path.relpath(output)}")


if __name__ == "__main__":
    main()
