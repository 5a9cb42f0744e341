"""Print the lowest version pyproject.toml allows for each runtime dependency (`name==floor`, one a line), for the
CI job that proves the floors: it installs exactly these into a second venv and runs the tests that use them."""

import re
import sys
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
for dep in project["dependencies"]:
    m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", dep)
    floor = re.search(r">=\s*([0-9][^,\s]*)", m.group(2))
    if floor is None:
        sys.exit(f"{dep}: no floor (>=) to prove")
    print(f"{m.group(1)}=={floor.group(1)}")
