"""CaseInsensitiveDict: case-insensitive lookups, lower-cased keys as acurl had them."""

from __future__ import annotations

import copy
import json
import pickle

import acurl_rs_structures as structures
import pytest

CaseInsensitiveDict = structures.CaseInsensitiveDict


def test_lookup_ignores_case() -> None:
    d = CaseInsensitiveDict({"Content-Type": "text/html"})
    assert d["content-type"] == "text/html"
    assert d["CONTENT-TYPE"] == "text/html"
    assert d.get("Content-TYPE") == "text/html"
    assert "cOnTeNt-TyPe" in d


def test_keys_are_lower_cased_like_acurl() -> None:
    d = CaseInsensitiveDict({"Foo": "Bar", "baz": "Qux"})
    assert list(d) == ["foo", "baz"]
    assert dict(d) == {"foo": "Bar", "baz": "Qux"}
    assert list(d.items()) == [("foo", "Bar"), ("baz", "Qux")]


def test_setting_in_another_case_replaces_the_entry() -> None:
    d = CaseInsensitiveDict()
    d["Set-Cookie"] = "a=1"
    d["SET-COOKIE"] = "b=2"
    assert len(d) == 1
    assert dict(d) == {"set-cookie": "b=2"}


def test_delete_and_pop_ignore_case() -> None:
    d = CaseInsensitiveDict({"Foo": "Bar", "Baz": "Qux", "X": "1"})
    del d["FOO"]
    assert d.pop("baz") == "Qux"
    assert list(d) == ["x"]
    with pytest.raises(KeyError):
        del d["foo"]
    assert d.pop("missing", None) is None


def test_missing_key() -> None:
    d = CaseInsensitiveDict({"a": 1})
    with pytest.raises(KeyError):
        d["b"]
    assert d.get("b") is None
    assert d.get("b", 5) == 5
    assert "b" not in d


def test_setdefault_ignores_case() -> None:
    d = CaseInsensitiveDict({"Foo": "Bar"})
    assert d.setdefault("FOO", "other") == "Bar"
    assert d.setdefault("Baz", "Qux") == "Qux"
    assert d["baz"] == "Qux"


def test_popitem_removes_the_last_item_like_dict() -> None:
    d = CaseInsensitiveDict({"Foo": "Bar", "Baz": "Qux"})
    assert d.popitem() == ("baz", "Qux")
    assert list(d) == ["foo"]


def test_update_and_keyword_construction() -> None:
    d = CaseInsensitiveDict([("Accept", "a")], Host="h")
    d.update({"ACCEPT": "b"}, extra="e")
    assert dict(d) == {"accept": "b", "host": "h", "extra": "e"}


def test_equality_with_any_mapping_ignores_key_case() -> None:
    d = CaseInsensitiveDict({"Content-Length": "3"})
    assert d == {"content-length": "3"}
    assert d == {"CONTENT-LENGTH": "3"}
    assert {"Content-Length": "3"} == d
    assert d == CaseInsensitiveDict({"content-LENGTH": "3"})
    assert d != {"content-length": "4"}
    assert d != {"content-length": "3", "x": "y"}
    assert d != [("content-length", "3")]


def test_copy_is_independent_and_still_case_insensitive() -> None:
    d = CaseInsensitiveDict({"A": "1"})
    c = d.copy()
    c["B"] = "2"
    assert isinstance(c, CaseInsensitiveDict)
    assert c["a"] == "1"
    assert "b" not in d


def test_lower_items() -> None:
    d = CaseInsensitiveDict({"X-One": "1", "x-two": "2"})
    assert list(d.lower_items()) == [("x-one", "1"), ("x-two", "2")]


def test_repr_looks_like_a_dict() -> None:
    assert repr(CaseInsensitiveDict({"Server": "nginx"})) == "{'server': 'nginx'}"


def test_unhashable_like_dict() -> None:
    with pytest.raises(TypeError):
        hash(CaseInsensitiveDict())


def test_pickle_and_deepcopy_keep_contents_and_behaviour() -> None:
    d = CaseInsensitiveDict({"Server": "nginx"})
    for clone in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d), copy.copy(d)):
        assert isinstance(clone, CaseInsensitiveDict)
        assert clone["SERVER"] == "nginx"
        assert clone == d


def test_is_a_dict_like_acurls() -> None:
    # acurl's own tests check isinstance(r.headers, dict); json and ** take it as a dict.
    d = CaseInsensitiveDict({"Content-Type": "a"})
    assert isinstance(d, dict)
    assert json.dumps(d) == '{"content-type": "a"}'
    assert {**d} == {"content-type": "a"}


def test_inequality_ignores_key_case_too() -> None:
    d = CaseInsensitiveDict({"Content-Length": "3"})
    # `!=` itself is under test: dict's own __ne__ would compare the keys as stored.
    assert (d != {"CONTENT-LENGTH": "3"}) is False
    assert ({"CONTENT-LENGTH": "3"} != d) is False
    assert d != {"content-length": "4"}


def test_every_way_in_folds_the_key() -> None:
    d = CaseInsensitiveDict.fromkeys(["A-B"], "1")
    assert isinstance(d, CaseInsensitiveDict) and dict(d) == {"a-b": "1"}
    merged = d | {"X-Y": "2"}
    assert isinstance(merged, CaseInsensitiveDict) and merged["x-y"] == "2"
    left = {"P-Q": "3"} | d
    assert isinstance(left, CaseInsensitiveDict) and list(left) == ["p-q", "a-b"]
    d |= [("M-N", "4")]
    assert dict(d) == {"a-b": "1", "m-n": "4"}
    d.update(Z="5")
    assert d["z"] == "5"
