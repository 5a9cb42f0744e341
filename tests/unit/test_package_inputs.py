"""start's --index-url and --extra-pip reach the VMs' shells, systemd units and pip: only URLs and requirements
pass, with one line saying what is wrong (and never echoing the token of an index URL)."""

import pytest

from flwrazure import spec
from flwrazure.errors import UsageError


@pytest.mark.parametrize("url", [
    "https://pypi.example.org/simple/", "http://198.18.0.1:47480/simple/", "https://user:tok%40en@h.example/simple",
    "http://[fd00::1]:8080/simple/", "https://h.example/simple/?x=1&y=2"])
def test_index_urls_that_pass(url):
    assert spec.index_url(url) == url


@pytest.mark.parametrize("url, needle", [
    ("http://m;touch pwned;x/simple/", "contains ' '"),
    ("http://m;touch$IFS;x/simple/", "not a host name"),
    ("http://m;touch${IFS}pwned;x/simple/", "contains '{'"),
    ('http://h/simple/"', "contains '\"'"),
    ("http://h/simple/\nEnvironment=A=1", "contains '\\n'"),
    ("http://h/simple/\n", "contains '\\n'"),  # a trailing newline too: the whole value is checked
    ("http://h/it's", "contains \"'\""),
    ("ftp://h/simple/", "not an http(s) URL"),
    ("/srv/wheels", "not an http(s) URL"),
    ("https:///simple/", "names no host"),
    ("https://h:port/simple/", "not a URL"),
])
def test_index_urls_that_are_refused(url, needle):
    with pytest.raises(UsageError, match="--index-url") as err:
        spec.index_url(url)
    assert needle in str(err.value) and "\n" not in str(err.value).replace("'\\n'", "")


def test_a_refused_url_does_not_show_its_token():
    with pytest.raises(UsageError) as err:
        spec.index_url("https://me:SECRET@h/simple/ x")
    assert "SECRET" not in str(err.value) and "me:***@" in str(err.value)


@pytest.mark.parametrize("req", ["numpy", "scikit-learn>=1.3", "torch==2.5.1", "pkg[a,b]>=1,<2", "a.b_c-d~=1.0",
                                 "pkg @ https://h.example/pkg-1.0-py3-none-any.whl"])
def test_requirements_that_pass(req):
    assert spec.pip_requirement(req) == req


@pytest.mark.parametrize("req", ["--index-url=http://evil/simple", "-e.", "./local/dir", "numpy; touch x",
                                 "numpy$(id)", "pkg @ file:///etc/passwd", "", " numpy", "a\nb"])
def test_requirements_that_are_refused(req):
    with pytest.raises(UsageError, match="--extra-pip"):
        spec.pip_requirement(req)
