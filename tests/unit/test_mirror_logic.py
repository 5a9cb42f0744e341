"""The pull-through mirror's pure parts: this machine's pip settings (pip's precedence, from `pip config list`),
PEP 503 pages read and rendered, the VM image's platform tags and pip download arguments, project names."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from flwrazure.localcloud import mirror
from flwrazure.localcloud.mirror import parse_page, pip_settings, project_of, render_page

DEFAULT = "https://index.invalid/simple"


def test_pip_settings_defaults():
    assert pip_settings("", DEFAULT) == {"indexes": [DEFAULT], "cert": None, "proxy": None}


def test_pip_settings_reads_index_extra_cert_proxy():
    listed = ("global.cert='/etc/ssl/my ca.pem'\n"
              "global.extra-index-url='file:///a file:///b'\n"
              "global.index-url='http://x/simple'\n"
              "global.timeout='60'\n"
              "install.proxy='http://proxy:3128'\n")
    assert pip_settings(listed, DEFAULT) == {"indexes": ["http://x/simple", "file:///a", "file:///b"],
                                             "cert": "/etc/ssl/my ca.pem", "proxy": "http://proxy:3128"}


def test_pip_settings_later_line_of_the_same_rank_wins():
    listed = "global.index-url='http://first/simple'\nglobal.index-url='http://second/simple'\n"
    assert pip_settings(listed, DEFAULT)["indexes"] == ["http://second/simple"]


def test_pip_settings_environment_beats_files_though_listed_first():
    # `pip config list` sorts its lines: `:env:` (PIP_* variables) comes first but overrides every file
    listed = (":env:.extra-index-url='file:///c'\n"
              ":env:.index-url='http://x/simple'\n"
              "global.extra-index-url='file:///a file:///b'\n"
              "global.index-url='http://file/simple'\n"
              "install.index-url='http://install/simple'\n")
    assert pip_settings(listed, DEFAULT)["indexes"] == ["http://x/simple", "file:///c"]
    # without the environment, the command's section beats [global]
    files_only = "\n".join(line for line in listed.splitlines() if not line.startswith(":env:"))
    assert pip_settings(files_only, DEFAULT)["indexes"] == ["http://install/simple", "file:///a", "file:///b"]


def test_pip_settings_multiline_values_and_other_sections():
    # a multi-line value in pip.conf is printed as Python's repr: '\nfile:///a\nfile:///b'
    listed = ("freeze.index-url='http://freeze/simple'\n"
              "global.extra-index-url='\\nfile:///a\\nfile:///b'\n"
              "global.cert=\"/etc/it's.pem\"\n")
    assert pip_settings(listed, DEFAULT) == {"indexes": [DEFAULT, "file:///a", "file:///b"],
                                             "cert": "/etc/it's.pem", "proxy": None}


def test_pip_settings_from_real_pip_config_list(tmp_path):
    """What this machine's pip really prints, with a config file and environment variables of this test."""
    conf = tmp_path / "pip.conf"
    # [install] and the environment: this machine's own /etc/pip.conf ([global]) cannot override them
    conf.write_text("[global]\nindex-url = http://file/simple\ncert = /etc/ssl/file.pem\n"
                    "[install]\nextra-index-url =\n    file:///a\n    file:///b\nproxy = http://proxy:3128\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=str(conf), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
               PIP_INDEX_URL="http://env/simple", PIP_CERT="/etc/ssl/env.pem")
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], env=env, capture_output=True,
                            text=True, check=True).stdout
    assert pip_settings(listed, DEFAULT) == {"indexes": ["http://env/simple", "file:///a", "file:///b"],
                                             "cert": "/etc/ssl/env.pem", "proxy": "http://proxy:3128"}


PAGE = """<!DOCTYPE html><html><body><h1>Links for tinyproj</h1>
<a href="../../packages/ab/cd/tinyproj-1.0-py3-none-any.whl#sha256=aaaa" data-requires-python="&gt;=3.8">tinyproj-1.0-py3-none-any.whl</a><br/>
<a href="https://files.invalid/tinyproj-1.0.tar.gz#sha256=bbbb">tinyproj-1.0.tar.gz</a><br/>
<a href="/p/tinyproj-0.9-cp311-cp311-manylinux_2_17_x86_64.whl" data-yanked="broken build">tinyproj-0.9-cp311-cp311-manylinux_2_17_x86_64.whl</a>
<a href="tinyproj-0.8.zip#md5=cccc" data-yanked>tinyproj-0.8.zip</a>
<a href="tinyproj-0.7.exe">tinyproj-0.7.exe</a>
<a href="tinyproj-0.6.tar.bz2">tinyproj-0.6.tar.bz2</a>
<a href="tinyproj-0.5-py2.py3-none-any.whl.metadata">tinyproj-0.5-py2.py3-none-any.whl.metadata</a>
<a href="../">parent</a>
</body></html>"""


def test_parse_page_relative_absolute_hashes_and_attributes():
    files = parse_page(PAGE, "https://idx.invalid/simple/tinyproj/")
    assert sorted(files) == ["tinyproj-0.8.zip", "tinyproj-0.9-cp311-cp311-manylinux_2_17_x86_64.whl",
                             "tinyproj-1.0-py3-none-any.whl", "tinyproj-1.0.tar.gz"]
    wheel = files["tinyproj-1.0-py3-none-any.whl"]
    assert wheel == {"url": "https://idx.invalid/packages/ab/cd/tinyproj-1.0-py3-none-any.whl", "sha256": "aaaa",
                     "requires_python": ">=3.8", "yanked": None}
    assert files["tinyproj-1.0.tar.gz"]["url"] == "https://files.invalid/tinyproj-1.0.tar.gz"
    assert files["tinyproj-1.0.tar.gz"]["sha256"] == "bbbb"
    old = files["tinyproj-0.9-cp311-cp311-manylinux_2_17_x86_64.whl"]
    assert old["url"] == "https://idx.invalid/p/tinyproj-0.9-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert old["sha256"] is None and old["yanked"] == "broken build"
    assert files["tinyproj-0.8.zip"]["sha256"] is None  # only sha256 fragments are kept
    assert files["tinyproj-0.8.zip"]["yanked"] == ""  # a bare data-yanked still means yanked
    assert files["tinyproj-0.8.zip"]["url"] == "https://idx.invalid/simple/tinyproj/tinyproj-0.8.zip"


def test_parse_page_file_index_and_name_from_url():
    page = '<a href="tinyproj-1.0-py3-none-any.whl#sha256=ff"></a>'
    files = parse_page(page, "file:///srv/index/tinyproj/")
    assert files == {"tinyproj-1.0-py3-none-any.whl": {
        "url": "file:///srv/index/tinyproj/tinyproj-1.0-py3-none-any.whl", "sha256": "ff", "requires_python": None,
        "yanked": None}}


def test_render_page_links_through_the_mirror_and_round_trips():
    files = parse_page(PAGE, "https://idx.invalid/simple/tinyproj/")
    page = render_page(files)
    assert 'href="/files/tinyproj-1.0-py3-none-any.whl#sha256=aaaa"' in page
    assert 'data-requires-python="&gt;=3.8"' in page and ">=3.8" not in page
    assert 'data-yanked="broken build"' in page and 'data-yanked=""' in page
    assert "idx.invalid" not in page and "files.invalid" not in page
    assert page.count("<a ") == 4
    again = parse_page(page, "http://198.18.0.1:47480/simple/tinyproj/")
    assert {name: {k: v for k, v in meta.items() if k != "url"} for name, meta in again.items()} == \
        {name: {k: v for k, v in meta.items() if k != "url"} for name, meta in files.items()}
    assert again["tinyproj-1.0.tar.gz"]["url"] == "http://198.18.0.1:47480/files/tinyproj-1.0.tar.gz"


def test_render_page_escapes_requires_python_and_names():
    page = render_page({"x-1.0.tar.gz": {"sha256": None, "requires_python": '>=3.8,<4,!="3.9"',
                                         "yanked": None}})
    assert page == ('<a href="/files/x-1.0.tar.gz" data-requires-python="&gt;=3.8,&lt;4,!=&quot;3.9&quot;">'
                    "x-1.0.tar.gz</a>")


def test_platform_tags_for_bookworm():
    tags = mirror.platform_tags((2, 36), "x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_37_x86_64" not in tags
    assert tags.index("manylinux_2_36_x86_64") < tags.index("manylinux_2_28_x86_64") < \
        tags.index("manylinux_2_17_x86_64") < tags.index("manylinux_2_5_x86_64")
    assert "manylinux_2_4_x86_64" not in tags
    assert tags[-4:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    assert mirror.platform_tags((2, 31), "aarch64")[0] == "manylinux_2_31_aarch64"


def test_target_args_for_the_image_python():
    assert mirror.target_args(None) == []
    args = mirror.target_args("3.11")
    assert args[:2] == ["--python-version", "3.11"]
    assert args[args.index("--implementation") + 1] == "cp"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--abi"] == ["cp311", "abi3", "none"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--platform"] == mirror.platform_tags()
    assert mirror.target_args("3.12")[mirror.target_args("3.12").index("--abi") + 1] == "cp312"


def test_project_of_wheels_and_sdists():
    assert project_of("flwr-1.42.0-py3-none-any.whl") == "flwr"
    assert project_of("Flwr_Datasets-0.5.0-py3-none-any.whl") == "flwr-datasets"
    assert project_of("numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl") == "numpy"
    assert project_of("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl") == "torch"
    assert project_of("flwr-datasets-0.5.0.tar.gz") == "flwr-datasets"
    assert project_of("zope.interface-6.0.zip") == "zope-interface"
    assert project_of("typing_extensions-4.12.2.tar.gz") == "typing-extensions"


def test_normalize_pep503():
    assert mirror.normalize("Foo.Bar__baz-Qux") == "foo-bar-baz-qux"


def test_parse_page_keeps_links_to_the_pages_own_kind_of_place():
    page = ('<a href="file:///etc/shadow">x-1.0-py3-none-any.whl</a>\n'
            '<a href="https://files.example/y-1.0-py3-none-any.whl">y-1.0-py3-none-any.whl</a>\n'
            '<a href="../z/z-1.0-py3-none-any.whl">z-1.0-py3-none-any.whl</a>\n')
    assert sorted(mirror.parse_page(page, "https://idx.example/simple/x/")) == [
        "y-1.0-py3-none-any.whl", "z-1.0-py3-none-any.whl"]
    assert sorted(mirror.parse_page(page, "file:///srv/index/x/")) == [
        "x-1.0-py3-none-any.whl", "z-1.0-py3-none-any.whl"]


def test_meta_saved_from_many_threads_at_once(tmp_path):
    """VMs asking for project pages at once each save the cache's metadata: the saves once shared one temporary
    file, and all but one failed (FileNotFoundError on the rename: the VM's request got no answer, uv retried)."""
    import threading

    class Offline:
        def page(self, project):
            return None

    m = mirror.Mirror(tmp_path / "house", "127.0.0.1", 0, upstream=Offline())
    errors = []

    def save(i: int) -> None:
        try:
            for j in range(20):
                with m.lock:
                    m.meta[f"p{i}-{j}.whl"] = {"requires_python": ">=3.9"}
                m._save_meta()
        except Exception as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        m.stop()
    assert errors == []
    assert len(json.loads(m.meta_file.read_text())) == 160
