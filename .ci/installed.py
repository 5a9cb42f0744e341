"""Exit 0 when `make install` has nothing to do: the flwrazure Python imports is this clone's (editable install)
and every dependency in pyproject.toml (runtime and the test extra) is installed at a version it allows; else 1.
So `make test` and `make demo` can depend on `install` and still run offline once installed."""

import importlib.metadata as md
import importlib.util
import sys
from pathlib import Path

here = Path(__file__).resolve().parent.parent
try:
    import tomllib
    from packaging.requirements import Requirement
except ImportError:
    try:
        from pip._vendor import tomli as tomllib
        from pip._vendor.packaging.requirements import Requirement
    except ImportError:
        sys.exit(1)

spec = importlib.util.find_spec("flwrazure")
if spec is None or spec.origin is None or Path(spec.origin).resolve() != here / "flwrazure" / "__init__.py":
    sys.exit(1)
project = tomllib.loads((here / "pyproject.toml").read_text())["project"]
try:
    md.version("flwrazure")  # installed, not only importable: the `flwrazure` command exists
    for dep in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(dep)
        if not req.specifier.contains(md.version(req.name), prereleases=True):
            sys.exit(1)
except md.PackageNotFoundError:
    sys.exit(1)
