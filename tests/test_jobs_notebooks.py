"""The notebook of a job: paths a user names, snapshots, parameters, the outcome of a run.

Real files under tmp_path, real nbformat, and one real papermill run in a kernel.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from jupyter_mlplat.errors import MlplatError, NotFoundError, TooLarge, UsageError
from jupyter_mlplat.jobs import notebooks as nbs

PARAMETERS = """\
%matplotlib inline
alpha = 1
rate: float = 0.5
name = "world"
verbose = False
tags = ["a"]
options = {"k": 1}
extra = None
model = make_model()  # not a literal: any JSON value
"""


def make_notebook(parameters: str | None = PARAMETERS, body: str = "print(alpha)"):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells.append(new_markdown_cell("# A job"))
    if parameters is not None:
        cell = new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.append(new_code_cell(body))
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell{index}"  # nbformat draws random ids: one notebook, one digest
    return nb


@pytest.fixture
def root(tmp_path):
    """A user's root folder holding reports/daily.ipynb, with a secret notebook beside it."""
    folder = tmp_path / "root"
    (folder / "reports").mkdir(parents=True)
    nbformat.write(make_notebook(), folder / "reports" / "daily.ipynb")
    outside = tmp_path / "outside"
    outside.mkdir()
    nbformat.write(make_notebook(), outside / "secret.ipynb")
    return folder


# ---------------------------------------------------------------------------------------
# resolve_notebook


def test_resolves_a_notebook_inside_the_root(root):
    path = nbs.resolve_notebook(root, "reports/daily.ipynb")
    assert path == (root / "reports" / "daily.ipynb").resolve()
    assert nbs.resolve_notebook(root, "./reports/daily.ipynb") == path


def test_a_symlink_that_stays_inside_the_root_is_followed(root):
    (root / "latest.ipynb").symlink_to(root / "reports" / "daily.ipynb")
    (root / "alias").symlink_to(root / "reports", target_is_directory=True)
    expected = (root / "reports" / "daily.ipynb").resolve()
    assert nbs.resolve_notebook(root, "latest.ipynb") == expected
    assert nbs.resolve_notebook(root, "alias/daily.ipynb") == expected


def test_a_harmless_percent_is_an_ordinary_character(root):
    nbformat.write(make_notebook(), root / "50%25 done.ipynb")
    assert nbs.resolve_notebook(root, "50%25 done.ipynb").name == "50%25 done.ipynb"


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("../x.ipynb", "'..'"),
        ("reports/../../outside/secret.ipynb", "'..'"),
        ("reports/../daily.ipynb", "'..'"),
        ("/etc/passwd", "absolute"),
        ("/etc/x.ipynb", "absolute"),
        ("%2e%2e/x.ipynb", "%-escapes that decode to the segment '..'"),
        ("..%2fx.ipynb", "%-escapes that decode to a path separator"),
        ("%2E%2E%2Foutside%2Fsecret.ipynb", "a path separator"),
        ("%252e%252e/outside/secret.ipynb", "the segment '..'"),
        ("%25252e%25252e/x.ipynb", "the segment '..'"),
        ("reports%2fdaily.ipynb", "a path separator"),
        ("reports/%2e/daily.ipynb", "the segment '.'"),
        ("x%00.ipynb", "a NUL or control character"),
        ("%2525252525252e.ipynb", "more than 4 times"),
        ("x\0.ipynb", "NUL byte"),
        ("reports/\0/../../etc/passwd", "NUL byte"),
        ("x\n.ipynb", "control character"),
        ("..\\outside\\secret.ipynb", "backslash"),
        ("reports\\daily.ipynb", "backslash"),
        ("", "relative to your root"),
        ("   ", "relative to your root"),
        ("reports/daily.txt", "ends in '.ipynb'"),
        ("reports/", "ends in '.ipynb'"),
        (".ipynb", "ends in '.ipynb'"),
        ("a" * 5000 + ".ipynb", "bytes long"),
        ("\udcff.ipynb", "UTF-8"),
    ],
)
def test_bad_paths_are_refused_before_the_disk(root, given, words):
    with pytest.raises(UsageError) as caught:
        nbs.resolve_notebook(root, given)
    assert words in str(caught.value)
    assert str(caught.value).endswith(".")


def test_a_non_string_path_is_refused(root):
    with pytest.raises(UsageError, match="relative to your root"):
        nbs.resolve_notebook(root, None)  # type: ignore[arg-type]


def test_a_file_symlink_pointing_outside_is_refused(root, tmp_path):
    (root / "reports" / "evil.ipynb").symlink_to(tmp_path / "outside" / "secret.ipynb")
    with pytest.raises(UsageError, match="leads outside your root folder"):
        nbs.resolve_notebook(root, "reports/evil.ipynb")


def test_a_folder_symlink_pointing_outside_is_refused(root, tmp_path):
    (root / "shared").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(UsageError, match="leads outside your root folder"):
        nbs.resolve_notebook(root, "shared/secret.ipynb")
    # Also for a name that does not exist there: nothing about the outside is revealed.
    with pytest.raises(UsageError, match="leads outside your root folder"):
        nbs.resolve_notebook(root, "shared/missing.ipynb")


def test_a_dangling_symlink_pointing_outside_is_refused(root, tmp_path):
    (root / "gone.ipynb").symlink_to(tmp_path / "nowhere" / "x.ipynb")
    with pytest.raises(UsageError, match="leads outside"):
        nbs.resolve_notebook(root, "gone.ipynb")


def test_a_symlink_loop_is_refused(root):
    (root / "a.ipynb").symlink_to(root / "b.ipynb")
    (root / "b.ipynb").symlink_to(root / "a.ipynb")
    with pytest.raises(UsageError):
        nbs.resolve_notebook(root, "a.ipynb")


def test_a_missing_file_is_a_usage_error(root):
    with pytest.raises(UsageError, match="There is no notebook at 'reports/nope.ipynb'"):
        nbs.resolve_notebook(root, "reports/nope.ipynb")
    with pytest.raises(UsageError, match="There is no notebook"):
        nbs.resolve_notebook(root, "reports/daily.ipynb/x.ipynb")


def test_a_directory_is_refused(root):
    (root / "folder.ipynb").mkdir()
    with pytest.raises(UsageError, match="is a folder, not a notebook"):
        nbs.resolve_notebook(root, "folder.ipynb")


def test_a_fifo_is_refused_without_blocking(root):
    os.mkfifo(root / "pipe.ipynb")
    with pytest.raises(UsageError, match="not a regular file"):
        nbs.resolve_notebook(root, "pipe.ipynb")


def test_a_text_file_is_refused(root):
    (root / "notes.txt").write_text("hello")
    with pytest.raises(UsageError, match="is not a notebook: a notebook's name ends in"):
        nbs.resolve_notebook(root, "notes.txt")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"this is not json", "not valid JSON"),
        (b'{"cells": [', "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "without notebook cells"),
        (b'{"a": 1}', "without notebook cells"),
        (b'{"cells": [], "nbformat": 3, "nbformat_minor": 0, "metadata": {}}', "nbformat 3"),
        (
            b'{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, '
            b'"metadata": {}}',
            "not a valid nbformat v4 notebook",
        ),
        (b"[" * 100000 + b"]" * 100000, "not"),
    ],
)
def test_an_ipynb_that_is_not_a_notebook_is_refused(root, content, words):
    (root / "bad.ipynb").write_bytes(content)
    with pytest.raises(UsageError) as caught:
        nbs.resolve_notebook(root, "bad.ipynb")
    assert words in str(caught.value)


def test_a_missing_root_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="root folder .* does not exist"):
        nbs.resolve_notebook(tmp_path / "nope", "x.ipynb")


def test_a_large_notebook_is_too_large(root):
    with pytest.raises(TooLarge, match="more than the limit of 100"):
        nbs.resolve_notebook(root, "reports/daily.ipynb", max_bytes=100)


# ---------------------------------------------------------------------------------------
# read_notebook


def test_read_notebook_validates_and_limits(root):
    path = root / "reports" / "daily.ipynb"
    nb = nbs.read_notebook(path, 1 << 20)
    assert nb.nbformat == 4 and nb.cells[1].metadata.tags == ["parameters"]
    with pytest.raises(TooLarge):
        nbs.read_notebook(path, path.stat().st_size - 1)
    assert nbs.read_notebook(path, path.stat().st_size).cells


def test_a_root_reached_through_a_symlink_works(root, tmp_path):
    (tmp_path / "home").symlink_to(root, target_is_directory=True)
    path = nbs.resolve_notebook(tmp_path / "home", "reports/daily.ipynb")
    assert path == (root / "reports" / "daily.ipynb").resolve()
    spelt = tmp_path / "home" / "reports" / "daily.ipynb"
    assert nbs.read_notebook(spelt, 1 << 20, root=tmp_path / "home").cells


def test_a_percent_line_inside_a_string_is_kept_when_the_cell_is_plain_python():
    declared = nbs.declared_parameters(make_notebook('query = """\n%s\n"""\nlimit = 3'))
    assert declared["query"].default == "\n%s\n"
    assert declared["limit"].line == 4


def test_read_notebook_refuses_a_final_symlink(root):
    link = root / "link.ipynb"
    link.symlink_to(root / "reports" / "daily.ipynb")
    with pytest.raises(UsageError, match="symlink"):
        nbs.read_notebook(link, 1 << 20)


def test_read_notebook_below_a_root_refuses_a_folder_swapped_for_a_symlink(root, tmp_path):
    """resolve_notebook checked reports/ and then someone swapped it for a symlink."""
    path = nbs.resolve_notebook(root, "reports/daily.ipynb")
    (root / "reports").rename(root / "old")
    (root / "reports").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "outside" / "daily.ipynb").write_text((root / "old" / "daily.ipynb").read_text())
    with pytest.raises(UsageError, match="symlink"):
        nbs.read_notebook(path, 1 << 20, root=root)
    with pytest.raises(UsageError, match="outside your root"):
        nbs.read_notebook(tmp_path / "outside" / "daily.ipynb", 1 << 20, root=root)


def test_cell_ids_added_on_read_are_deterministic(root):
    data = json.loads((root / "reports" / "daily.ipynb").read_text())
    for cell in data["cells"]:
        del cell["id"]
    data["cells"].append(dict(data["cells"][-1], id="dup"))
    data["cells"].append(dict(data["cells"][-1], id="dup"))
    (root / "noids.ipynb").write_text(json.dumps(data))
    first = nbs.read_notebook(root / "noids.ipynb", 1 << 20)
    second = nbs.read_notebook(root / "noids.ipynb", 1 << 20)
    ids = [c.id for c in first.cells]
    assert ids == [c.id for c in second.cells]
    assert len(set(ids)) == len(ids)
    assert nbs.snapshot_content(first) == nbs.snapshot_content(second)


# ---------------------------------------------------------------------------------------
# Snapshots


def with_outputs(nb):
    ran = nbformat.from_dict(json.loads(json.dumps(nb)))
    for count, cell in enumerate(ran.cells, start=1):
        if cell.cell_type == "code":
            cell.execution_count = count
            cell.outputs = [new_output("stream", name="stdout", text="x" * 10000)]
    return ran


def test_the_digest_ignores_outputs_and_execution_counts():
    nb = make_notebook()
    content, digest = nbs.snapshot_content(nb)
    assert digest == hashlib.sha256(content).hexdigest()
    ran = with_outputs(nb)
    assert nbs.snapshot_content(ran) == (content, digest)
    assert ran.cells[2].outputs  # the notebook given is not changed
    snapshot = json.loads(content)
    assert all(c["outputs"] == [] for c in snapshot["cells"] if c["cell_type"] == "code")
    assert snapshot["cells"][1]["metadata"]["tags"] == ["parameters"]
    assert snapshot["metadata"]["kernelspec"]["name"] == "python3"
    assert snapshot["cells"][1]["source"] == PARAMETERS


def test_the_digest_follows_sources_and_metadata():
    nb = make_notebook()
    _, digest = nbs.snapshot_content(nb)
    changed = make_notebook(body="print(alpha + 1)")
    assert nbs.snapshot_content(changed)[1] != digest
    tagged = make_notebook()
    tagged.cells[2].metadata["tags"] = ["slow"]
    assert nbs.snapshot_content(tagged)[1] != digest
    as_lines = json.loads(json.dumps(make_notebook()))
    as_lines["cells"][1]["source"] = PARAMETERS.splitlines(keepends=True)
    assert nbs.snapshot_content(nbformat.from_dict(as_lines))[1] == digest


def test_the_snapshot_is_a_valid_notebook():
    content, _ = nbs.snapshot_content(with_outputs(make_notebook()))
    nbformat.validate(nbformat.reads(content.decode(), as_version=4))


def test_store_and_load_are_idempotent(tmp_path):
    content, digest = nbs.snapshot_content(make_notebook())
    folder = tmp_path / "jobs" / "snapshots"
    path = nbs.store_snapshot(folder, content, digest)
    assert path == folder / "sha256" / f"{digest}.ipynb"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "sha256").stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "jobs").stat().st_mode) == 0o700
    mtime = path.stat().st_mtime_ns
    assert nbs.store_snapshot(folder, content, digest) == path
    assert path.stat().st_mtime_ns == mtime  # not written again
    assert sorted(p.name for p in (folder / "sha256").iterdir()) == [path.name]  # no temp left
    assert nbs.load_snapshot(folder, digest) == content
    assert nbs.load_snapshot(folder, digest) == content


def test_store_refuses_content_that_does_not_match_its_digest(tmp_path):
    content, digest = nbs.snapshot_content(make_notebook())
    with pytest.raises(UsageError, match="does not have the SHA-256"):
        nbs.store_snapshot(tmp_path, content + b" ", digest)
    assert not (tmp_path / "sha256" / f"{digest}.ipynb").exists()


@pytest.mark.parametrize("digest", ["../../etc/passwd", "ABC", "a" * 63, "A" * 64, "g" * 64])
def test_a_malformed_digest_is_refused(tmp_path, digest):
    with pytest.raises(UsageError, match="not a snapshot digest"):
        nbs.store_snapshot(tmp_path, b"x", digest)
    with pytest.raises(UsageError, match="not a snapshot digest"):
        nbs.load_snapshot(tmp_path, digest)


def test_a_tampered_snapshot_is_detected_and_storing_again_repairs_it(tmp_path):
    content, digest = nbs.snapshot_content(make_notebook())
    path = nbs.store_snapshot(tmp_path, content, digest)
    path.write_bytes(content.replace(b"print(alpha)", b"import os; os.system('id')"))
    with pytest.raises(MlplatError, match="was changed after it was stored") as caught:
        nbs.load_snapshot(tmp_path, digest)
    assert str(path) in str(caught.value)
    assert nbs.store_snapshot(tmp_path, content, digest) == path
    assert nbs.load_snapshot(tmp_path, digest) == content
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_snapshot_replaced_by_a_symlink_is_refused(tmp_path):
    content, digest = nbs.snapshot_content(make_notebook())
    path = nbs.store_snapshot(tmp_path, content, digest)
    other = tmp_path / "other.ipynb"
    other.write_bytes(content)
    path.unlink()
    path.symlink_to(other)
    with pytest.raises(MlplatError, match="symlink"):
        nbs.load_snapshot(tmp_path, digest)


def test_a_missing_snapshot_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="no notebook snapshot"):
        nbs.load_snapshot(tmp_path, "0" * 64)


# ---------------------------------------------------------------------------------------
# Parameters


def test_declared_parameters_are_read_with_ast():
    declared = nbs.declared_parameters(make_notebook())
    kinds = {name: (d.kind, d.default) for name, d in declared.items()}
    assert kinds == {
        "alpha": ("int", 1),
        "rate": ("float", 0.5),
        "name": ("str", "world"),
        "verbose": ("bool", False),
        "tags": ("list", ["a"]),
        "options": ("dict", {"k": 1}),
        "extra": ("None", None),
        "model": ("any", None),
    }
    assert declared["model"].source == "make_model()"
    assert declared["alpha"] == nbs.Declared("alpha", "int", 1, "1", 2)


def test_declared_parameters_edge_cases():
    source = (
        "a = b = 2\n"
        "x, y = 1, 2\n"
        "obj.attr = 3\n"
        "n: float = 1\n"
        "t = (1, 2)\n"
        "neg = -3\n"
        "a = 'later'\n"
        "if True:\n    hidden = 1\n"
        "def f():\n    inner = 1\n"
    )
    declared = nbs.declared_parameters(make_notebook(source))
    assert {n: d.kind for n, d in declared.items()} == {
        "a": "str",
        "b": "int",
        "n": "float",
        "t": "any",
        "neg": "int",
    }
    assert nbs.declared_parameters(make_notebook(None)) == {}


def test_a_parameters_cell_that_is_not_python_is_a_usage_error():
    with pytest.raises(UsageError, match="parameters cell .* is not valid Python"):
        nbs.declared_parameters(make_notebook("alpha = = 1"))


def test_the_first_tagged_cell_declares():
    nb = make_notebook("alpha = 1")
    second = new_code_cell("beta = 2")
    second.metadata["tags"] = ["parameters"]
    nb.cells.append(second)
    assert set(nbs.declared_parameters(nb)) == {"alpha"}


def test_check_parameters_accepts_declared_values_of_their_types():
    given = {
        "alpha": 3,
        "rate": 2,
        "name": 'it\'s "quoted"',
        "verbose": True,
        "tags": ["x", 1, None],
        "options": {"nested": {"a": [1.5]}},
        "extra": {"anything": True},
        "model": [1, 2],
    }
    checked = nbs.check_parameters(make_notebook(), given)
    assert checked == {**given, "rate": 2.0}
    assert type(checked["rate"]) is float
    assert nbs.check_parameters(make_notebook(), {}) == {}
    assert nbs.check_parameters(make_notebook(None), {}) == {}


@pytest.mark.parametrize(
    "name",
    [
        "x=1;import os;os.system('id')#",
        "__import__('os')",
        "alpha\nimport os",
        "alpha = 1; print",
        "class",
        "None",
        "",
        "1alpha",
        "alpha beta",
        7,
    ],
)
def test_a_parameter_name_carrying_code_is_refused(name):
    with pytest.raises(UsageError, match="is not a Python identifier"):
        nbs.check_parameters(make_notebook(), {name: 1})


def test_a_name_carrying_code_is_refused_even_without_a_parameters_cell():
    with pytest.raises(UsageError, match="is not a Python identifier"):
        nbs.check_parameters(make_notebook(None), {"__import__('os')": 1})


def test_an_undeclared_name_is_refused():
    with pytest.raises(UsageError, match="'beta' is not a parameter of this notebook") as caught:
        nbs.check_parameters(make_notebook(), {"beta": 1})
    assert "alpha, extra, model, name, options, rate, tags, verbose" in str(caught.value)
    # A compatibility-normalised twin of a declared name is another name.
    with pytest.raises(UsageError, match="is not a parameter"):
        nbs.check_parameters(make_notebook(), {"ａlpha": 1})


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("alpha", "3", "takes a int (its default is '1'); got the str '3'"),
        ("alpha", True, "got the bool True"),
        ("alpha", 2.5, "got the float 2.5"),
        ("alpha", None, "got the NoneType None"),
        ("rate", "0.5", "takes a float"),
        ("rate", False, "takes a float"),
        ("name", 3, "takes a str"),
        ("verbose", 1, "takes a bool"),
        ("tags", "a", "takes a list"),
        ("tags", ("a",), "a parameter value is a JSON value"),
        ("options", [1], "takes a dict"),
        ("options", {1: "a"}, "keys of a parameter must be strings"),
        ("extra", float("nan"), "finite number"),
        ("rate", float("inf"), "finite number"),
        ("model", object(), "a parameter value is a JSON value"),
        ("model", [b"bytes"], "a parameter value is a JSON value"),
        ("rate", 10**400, "too large for a float"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(name, value, words):
    with pytest.raises(UsageError, match=f"(?i)parameter '{name}'") as caught:
        nbs.check_parameters(make_notebook(), {name: value})
    assert words in str(caught.value)


def test_a_str_subclass_is_not_a_plain_value():
    class Sneaky(str):
        pass

    with pytest.raises(UsageError, match="JSON value"):
        nbs.check_parameters(make_notebook(), {"name": Sneaky("x")})


def test_deeply_nested_values_are_refused():
    value: list = []
    for _ in range(100):
        value = [value]
    with pytest.raises(UsageError, match="nests too deeply"):
        nbs.check_parameters(make_notebook(), {"tags": value})


def test_parameters_for_a_notebook_without_a_parameters_cell_are_refused():
    with pytest.raises(UsageError, match="no cell tagged 'parameters'"):
        nbs.check_parameters(make_notebook(None), {"alpha": 1})


def test_given_parameters_must_be_a_mapping():
    with pytest.raises(UsageError, match="mapping"):
        nbs.check_parameters(make_notebook(), [("alpha", 1)])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# CLI parameters


@pytest.fixture
def declared():
    return nbs.declared_parameters(make_notebook())


def test_cli_values_are_converted_by_the_declared_type(declared):
    pairs = [
        "alpha=3",
        "rate=2",
        "name=a=b c ",
        "verbose=YES",
        'tags=[1, "x"]',
        'options={"k": [2]}',
        "extra=null",
        "model=hello",
    ]
    assert nbs.parse_cli_parameters(pairs, declared) == {
        "alpha": 3,
        "rate": 2.0,
        "name": "a=b c ",
        "verbose": True,
        "tags": [1, "x"],
        "options": {"k": [2]},
        "extra": None,
        "model": "hello",
    }
    assert nbs.parse_cli_parameters([" alpha =-4"], declared) == {"alpha": -4}
    for text, value in [("true", True), ("0", False), ("No", False), ("1", True)]:
        assert nbs.parse_cli_parameters([f"verbose={text}"], declared) == {"verbose": value}
    assert nbs.parse_cli_parameters(["model=3"], declared) == {"model": 3}
    assert nbs.parse_cli_parameters(["name="], declared) == {"name": ""}
    assert nbs.parse_cli_parameters([], declared) == {}


@pytest.mark.parametrize(
    ("pair", "error"),
    [
        ("alpha", "is not name=value"),
        ("=3", "has no name"),
        ("  =3", "has no name"),
        ("alpha=3.0", "takes an int (like 3); got '3.0'"),
        ("alpha=three", "takes an int"),
        ("alpha=", "takes an int"),
        ("rate=fast", "takes a number"),
        ("rate=nan", "takes a finite number"),
        ("verbose=maybe", "takes true or false"),
        ("tags=a,b", "takes a JSON list"),
        ("tags={}", "takes a JSON list"),
        ("options=[1]", "takes a JSON object"),
        ("extra=NaN", "finite number"),
        ("beta=1", "is not a parameter of this notebook"),
        ("x;import os;os.system('id')#=1", "is not a Python identifier"),
        ("__import__('os')=1", "is not a Python identifier"),
    ],
)
def test_bad_cli_pairs_are_refused(declared, pair, error):
    with pytest.raises(UsageError) as caught:
        nbs.parse_cli_parameters([pair], declared)
    assert error in str(caught.value)


def test_a_cli_name_given_twice_is_refused(declared):
    with pytest.raises(UsageError, match="given twice"):
        nbs.parse_cli_parameters(["alpha=1", "alpha=2"], declared)


def test_cli_parameters_for_a_notebook_that_declares_none(declared):
    with pytest.raises(UsageError, match="declares: none"):
        nbs.parse_cli_parameters(["alpha=1"], {})


# ---------------------------------------------------------------------------------------
# Outcome


def test_failing_cell_and_progress_of_an_output_notebook():
    nb = make_notebook(body="raise ValueError('bad input')")
    nb.cells.append(new_code_cell("print('never')"))
    assert nbs.failing_cell(nb) is None
    assert nbs.progress(nb) == (0, 3)
    nb.cells[1].execution_count = 1
    nb.cells[2].execution_count = 2
    nb.cells[2].outputs = [
        new_output("stream", name="stdout", text="before\n"),
        new_output("error", ename="ValueError", evalue="bad input", traceback=["..."]),
    ]
    nb.cells[3].metadata["papermill"] = {"status": "pending"}
    assert nbs.failing_cell(nb) == {
        "index": 2,
        "cell_id": nb.cells[2].id,
        "execution_count": 2,
        "source": "raise ValueError('bad input')",
        "ename": "ValueError",
        "evalue": "bad input",
    }
    assert nbs.progress(nb) == (2, 3)
    nb.cells[3].metadata["papermill"] = {"status": "completed"}
    assert nbs.progress(nb) == (3, 3)


def test_failing_cell_cuts_long_sources_and_values():
    nb = make_notebook(None, body="\n".join(f"line{i}" for i in range(50)))
    nb.cells[1].outputs = [new_output("error", ename="E", evalue="v" * 5000, traceback=[])]
    found = nbs.failing_cell(nb)
    assert found["source"] == "line0\nline1\nline2\nline3\nline4…"
    assert len(found["evalue"]) == 1000


def test_outcome_of_a_malformed_output_notebook_does_not_crash():
    assert nbs.failing_cell({"cells": "nope"}) is None
    assert nbs.progress({"cells": [1, {"cell_type": "code", "metadata": []}]}) == (0, 1)
    assert nbs.failing_cell({"cells": [{"cell_type": "code", "outputs": [None, {}]}]}) is None


# ---------------------------------------------------------------------------------------
# A real run


def python_kernel() -> str | None:
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    specs = manager.find_kernel_specs()
    if "python3" in specs:
        return "python3"
    for name in sorted(specs):
        if manager.get_kernel_spec(name).language == "python":
            return name
    return None


def test_papermill_runs_a_stored_snapshot_with_checked_parameters(root, tmp_path):
    import papermill

    kernel = python_kernel()
    if kernel is None:
        pytest.skip("no Python kernel is installed in this environment (jupyter kernelspec list)")
    body = (
        "print(f'alpha={alpha!r} rate={rate!r} name={name!r} verbose={verbose!r}')\n"
        "print(f'tags={tags!r} options={options!r} model={model!r}')"
    )
    source = make_notebook(PARAMETERS.replace("make_model()", "None"), body=body)
    nbformat.write(with_outputs(source), root / "reports" / "train.ipynb")

    path = nbs.resolve_notebook(root, "reports/train.ipynb")
    nb = nbs.read_notebook(path, 1 << 20, root=root)
    content, digest = nbs.snapshot_content(nb)
    folder = tmp_path / "snapshots"
    nbs.store_snapshot(folder, content, digest)
    snapshot = nbs.notebook_from_bytes(nbs.load_snapshot(folder, digest), digest)
    tricky = 'it\'s "quoted"\n\\ """ done'
    pairs = ["alpha=3", "rate=2", "verbose=yes", 'tags=[1, "two"]', 'model={"k": null}']
    values = nbs.parse_cli_parameters(pairs, nbs.declared_parameters(snapshot))
    values["name"] = tricky
    values["options"] = {"x": [1.5, None, True]}
    checked = nbs.check_parameters(snapshot, values)
    assert nbs.progress(snapshot) == (0, 2)

    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        snapshot, str(output), parameters=checked, kernel_name=kernel, progress_bar=False
    )
    ran = nbformat.read(output, as_version=4)
    injected = [c for c in ran.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    printed = "".join(o.get("text", "") for o in ran.cells[-1].outputs)
    assert printed == (
        f"alpha=3 rate=2.0 name={tricky!r} verbose=True\n"
        "tags=[1, 'two'] options={'x': [1.5, None, True]} model={'k': None}\n"
    )
    assert nbs.failing_cell(ran) is None
    assert nbs.progress(ran) == (3, 3)  # the injected cell counts among the code cells


def test_papermill_failure_is_located_in_the_output(tmp_path):
    import papermill

    kernel = python_kernel()
    if kernel is None:
        pytest.skip("no Python kernel is installed in this environment (jupyter kernelspec list)")
    content, digest = nbs.snapshot_content(make_notebook("alpha = 1", "raise ValueError(alpha)"))
    nbs.store_snapshot(tmp_path, content, digest)
    snapshot = nbs.notebook_from_bytes(nbs.load_snapshot(tmp_path, digest))
    output = tmp_path / "out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(
            snapshot, str(output), parameters={"alpha": 7}, kernel_name=kernel, progress_bar=False
        )
    failed = nbs.failing_cell(nbformat.read(output, as_version=4))
    assert failed is not None
    assert (failed["ename"], failed["evalue"]) == ("ValueError", "7")
    assert failed["source"] == "raise ValueError(alpha)"
