from tests.helpers.keys import missing_keys


def test_reports_missing_nested_keys():
    expected = {"a": 1, "b": {"c": 2, "d": [{"name": "x", "e": 1}]}}
    assert missing_keys(expected, {"a": 5, "b": {"c": 0, "d": [{"name": "x", "e": 0}]}}) == []
    assert missing_keys(expected, {"a": 5, "b": {"d": [{"name": "x"}]}}) == ["$.b.c", "$.b.d[0].e"]


def test_list_items_paired_by_name_then_position():
    expected = {"v": [{"name": "r1", "p": {"q": 1}}, {"name": "r2", "z": 1}]}
    actual = {"v": [{"name": "r2", "z": 0}, {"name": "r1", "p": {}}]}
    assert missing_keys(expected, actual) == ["$.v[0].p.q"]
    assert missing_keys({"v": [{"k": 1}]}, {"v": [{"j": 1}]}) == ["$.v[0].k"]


def test_type_mismatch_and_empty_list():
    assert missing_keys({"a": {"b": 1}}, {"a": 3}) == ["$.a"]
    assert missing_keys({"a": [{"b": 1}]}, {"a": []}) == []
