"""The package layout: scripts/check_layout.py passes on the package and catches what it is for
(an import circle, lazy or type-only; a 16th top-level module), and every documented import path
users write still resolves."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import failover_client

REPO = Path(__file__).resolve().parent.parent
CHECK = REPO / "scripts" / "check_layout.py"

DOCUMENTED = [  # (module, attribute) pairs the README, design.md and the issues promise
    ("failover_client.models", "lookup"),
    ("failover_client.models", "all_models"),
    ("failover_client.models", "cost_of"),
    ("failover_client.batch", "run"),
    ("failover_client.log", "configure_logging"),
    ("failover_client.log.otel", "instrument"),
    ("failover_client.health", "RedisHealthStore"),
    ("failover_client.health", "MemoryHealthStore"),
    ("failover_client.providers", "OpenAIProvider"),
    ("failover_client.providers", "AnthropicProvider"),
    ("failover_client.providers", "create"),
    ("failover_client.providers", "from_env"),
    ("failover_client.providers", "names"),
    ("failover_client.providers", "resolve"),
    ("failover_client.testing", "FakeProviderServer"),
    ("failover_client.testing", "Fault"),
    ("failover_client.testing", "Reply"),
    ("failover_client.testing", "RandomFaults"),
    ("failover_client.testing", "RecordedRequest"),
    ("failover_client.presets", "openai_to_anthropic"),
    ("failover_client.cli", "main"),
]


def check(package):
    return subprocess.run([sys.executable, str(CHECK), str(package)], capture_output=True, text=True, timeout=60)


def test_the_package_has_no_import_circle_and_few_top_level_modules():
    result = check(REPO / "failover_client")
    assert (result.returncode, result.stdout) == (0, "")


def write_package(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("closing_import", [
    "from .low import thing\n",  # at module level
    "def later():\n    from .low import thing\n",  # lazily, inside a function
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .low import thing\n",  # for type checkers only
])
def test_a_circle_is_found_however_it_is_imported(tmp_path, closing_import):
    package = write_package(tmp_path / "pkg", {
        "__init__.py": "",
        "low.py": "from .sub.high import x\nthing = 1\n",
        "sub/__init__.py": "",
        "sub/high.py": closing_import.replace(".low", "..low") + "x = 2\n",
    })
    result = check(package)
    assert result.returncode == 1
    assert result.stdout.strip() == "import circle: pkg.low <-> pkg.sub.high"


def test_the_root_re_export_block_is_not_a_dependency(tmp_path):
    package = write_package(tmp_path / "pkg", {
        "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
        "a.py": "from . import b\nA = 1\n",
        "b.py": "from . import __name__ as parent\n",  # imports the root, as transport does for __version__
    })
    assert check(package).returncode == 0


def test_a_sixteenth_top_level_module_is_refused(tmp_path):
    files = {"__init__.py": ""} | {f"m{i:02}.py": "" for i in range(15)}  # 16 with __init__.py
    result = check(write_package(tmp_path / "pkg", files))
    assert result.returncode == 1 and result.stdout.startswith("16 modules at the top of pkg/ (at most 15)")
    del files["m14.py"]
    assert check(write_package(tmp_path / "pkg2", files)).returncode == 0


@pytest.mark.parametrize(("module", "name"), DOCUMENTED, ids=[f"{m}.{n}" for m, n in DOCUMENTED])
def test_documented_import_paths_resolve(module, name):
    assert getattr(importlib.import_module(module), name) is not None


@pytest.mark.parametrize("name", failover_client.__all__)
def test_every_public_name_resolves(name):
    assert getattr(failover_client, name) is not None


def test_the_package_map_names_every_top_level_module_and_subpackage():
    package = REPO / "failover_client"
    parts = [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    parts += [f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()]
    mapped = {line.split()[0] for line in failover_client.__doc__.splitlines() if line.startswith("    ")}
    assert sorted(parts) == sorted(mapped)
