"""start --client-data, the pure parts (plan.clientdata) and the local directory checks (workstation.clientdata)."""

import os

import pytest
import tomlkit

from flwrazure.errors import UsageError
from flwrazure.plan import clientdata as plan
from flwrazure.plan import services
from flwrazure.workstation import clientdata

L = services.Layout("/home/azureuser")
A, B = (3, "a" * 64), (5, "b" * 64)


def test_copy_only_what_is_missing_or_differs():
    p = plan.plan({"x.npz": A, "y.npz": B, "sub/z": A}, {"x.npz": A, "y.npz": (5, "c" * 64)}, set(), set())
    assert p.copy == ("sub/z", "y.npz") and p.delete == () and p.mkdirs == ("sub",) and p.rmdirs == ()


def test_same_listing_copies_nothing():
    local = {"train.npz": A, "d/e/f": B}
    p = plan.plan(local, dict(local), set(), {"d", "d/e"})
    assert p == plan.Plan((), (), (), ())


def test_size_alone_decides_nothing():
    assert plan.plan({"a": (3, "1" * 64)}, {"a": (3, "2" * 64)}, set(), set()).copy == ("a",)


def test_remote_leftovers_are_deleted_and_empty_dirs_removed_deepest_first():
    p = plan.plan({"keep": A}, {"keep": A, "old/x": B, "old/deep/y": B, ".keep.flwrazure-part": A},
                  {"link"}, {"old", "old/deep"})
    assert p.delete == (".keep.flwrazure-part", "link", "old/deep/y", "old/x")
    assert p.rmdirs == ("old/deep", "old") and p.copy == ()


def test_a_link_or_directory_where_a_file_goes_is_replaced():
    p = plan.plan({"a": A, "b": B}, {"b/inner": B}, {"a"}, {"b"})
    assert p.copy == ("a", "b") and p.delete == ("b/inner",) and p.rmdirs == ("b",)
    p = plan.plan({"c/d": A}, {"c": A}, set(), set())  # a file where a directory goes
    assert p.delete == ("c",) and p.mkdirs == ("c",) and p.copy == ("c/d",)


def test_missing_clients_named_at_once():
    assert plan.missing_clients({"1", "3", "x"}, 4) == [2, 4]
    msg = plan.missing_message("/d", [2, 4], 4)
    assert "client(s) 2, 4" in msg and "/d/2, /d/4 missing" in msg and "/d/1 … /d/4" in msg


@pytest.mark.parametrize("name, ok", [
    ("train.npz", True), ("part 1/data_v2+x=y@z,w.csv", True), ("données.csv", True), (".hidden", True),
    ("a\nb", False), ("a\tb", False), ("a'b", False), ('a"b', False), ("a$b", False), ("a\\b", False),
    ("../x", False), ("a//b", False), ("-rf", False), ("a;b", False), ("x.flwrazure-part", False),
    ("a" * 256, False), ("a\x00b", False), ("a\u200bb", False)])
def test_names_that_may_travel(name, ok):
    assert (plan.bad_name(name) is None) is ok


def test_node_config_carries_a_quoted_data_path_flower_reads_as_a_string():
    text = plan.node_config(1, 3, "/home/azureuser/flwrazure/data")
    assert text == 'partition-id=1 num-partitions=3 data-path="/home/azureuser/flwrazure/data"'
    # Flower splits on whitespace into key=value and reads each value as TOML
    parsed = tomlkit.parse("\n".join(f"{k} = {v}" for k, v in (p.split("=", 1) for p in text.split())))
    assert parsed == {"partition-id": 1, "num-partitions": 3, "data-path": "/home/azureuser/flwrazure/data"}
    assert plan.node_config(0, 2) == "partition-id=0 num-partitions=2"
    for bad in ('/home/a"b', "/home/a b", "/home/$x", "/home/%h", "relative", "/home/data\n"):
        with pytest.raises(ValueError):
            plan.node_config(0, 2, bad)


def test_supernode_command_with_and_without_data_path():
    node = services.supernode_command("1.42.0", L, "198.18.0.10", 0, 2, secure=False, runtime_deps=True,
                                      data_path=L.path(plan.DATA_DIR))
    assert node[node.index("--node-config") + 1] == \
        'partition-id=0 num-partitions=2 data-path="/home/azureuser/flwrazure/data"'
    unit = services.unit("Flower SuperNode 1", node, L, "azureuser", None)
    # systemd's quoting: the double-quoted word keeps data-path's own quotes escaped
    assert '--node-config "partition-id=0 num-partitions=2 data-path=\\"/home/azureuser/flwrazure/data\\""' in unit
    node = services.supernode_command("1.34.0", L, "198.18.0.10", 0, 2, secure=False, runtime_deps=True)
    assert node[node.index("--node-config") + 1] == "partition-id=0 num-partitions=2"


def test_listing_command_quotes_and_makes_a_private_directory():
    cmd = plan.listing_command("/home/azureuser/flwrazure/data")
    assert cmd.startswith("umask 077 && mkdir -p /home/azureuser/flwrazure/data && chmod 700 ")
    with pytest.raises(ValueError):
        plan.listing_command("/home/x; rm -rf /")


def _tree(root, files):
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)


def test_check_names_every_missing_client_at_once(tmp_path):
    _tree(tmp_path, {"1/a": b"x", "3/a": b"y"})
    with pytest.raises(UsageError) as err:
        clientdata.check(tmp_path, 4)
    assert "client(s) 2, 4" in str(err.value)
    assert clientdata.check(tmp_path, 1) == tmp_path.resolve()
    with pytest.raises(UsageError, match="no such directory"):
        clientdata.check(tmp_path / "nope", 2)


def test_listing_sizes_and_digests(tmp_path):
    _tree(tmp_path, {"train.npz": b"abc", "sub/b": b""})
    got = clientdata.listing(tmp_path)
    assert got == {"train.npz": (3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
                   "sub/b": (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")}
    assert clientdata.listing(tmp_path, digests=False) == {"train.npz": (3, ""), "sub/b": (0, "")}


def test_listing_refuses_bad_names_links_to_dirs_and_broken_links(tmp_path):
    _tree(tmp_path / "a", {"ok": b"1", "bad\nname": b"2"})
    with pytest.raises(UsageError, match="not allowed"):
        clientdata.listing(tmp_path / "a")
    (tmp_path / "b").mkdir()
    os.symlink(tmp_path / "a", tmp_path / "b" / "dirlink")
    with pytest.raises(UsageError, match="link to a directory"):
        clientdata.listing(tmp_path / "b")
    (tmp_path / "c").mkdir()
    os.symlink(tmp_path / "gone", tmp_path / "c" / "broken")
    with pytest.raises(UsageError, match="broken link"):
        clientdata.listing(tmp_path / "c")
    (tmp_path / "d").mkdir()
    (tmp_path / "real").write_bytes(b"xy")
    os.symlink(tmp_path / "real", tmp_path / "d" / "filelink")  # a link to a file is copied as that file
    assert clientdata.listing(tmp_path / "d")["filelink"][0] == 2
