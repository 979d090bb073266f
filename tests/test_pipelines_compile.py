"""A notebook's pipeline function as the kernel side sees it (pipelines/compile.py,
pipelines/notebook_step.py, pipelines/ir.py): found, arguments checked and converted,
compiled with one-sentence errors; notebook steps built from a notebook's parameters."""

# No `from __future__ import annotations`: KFP reads components' annotations as types.
import json

import nbformat
import pytest
import yaml
from kfp import dsl

from jupyter_mlplat.errors import UsageError
from jupyter_mlplat.pipelines import compile as compiling
from jupyter_mlplat.pipelines import ir
from jupyter_mlplat.pipelines.notebook_step import notebook_step


@dsl.component(install_kfp_package=False)
def add(a: int, b: float = 1.0) -> float:
    return a + b


@dsl.pipeline(name="typed")
def typed(n: int, rate: float = 0.5, name: str = "x", flag: bool = False, xs: list = [1]):  # noqa: B006
    add(a=n, b=rate)


def test_finding_the_pipeline_says_what_is_wrong():
    namespace = {"typed": typed, "add": add, "plain": lambda: 1, "n": 3}
    assert compiling.find_pipeline(namespace, "typed") is typed
    for name, message in [
        ("nope", "nope is not defined in this notebook; run the cell that defines it first."),
        ("add", "add is a component, not a pipeline; decorate a function with @dsl.pipeline."),
        ("plain", "plain is a function; decorate a function with @dsl.pipeline."),
        ("n", "n is a int; decorate a function with @dsl.pipeline."),
        ("x.py", "'x.py' is not a Python name"),
    ]:
        with pytest.raises(UsageError) as caught:
            compiling.find_pipeline(namespace, name)
        assert message in str(caught.value)


def test_cli_arguments_are_converted_by_the_declared_types_and_checked():
    parsed = compiling.parse_cli_arguments(
        ["n=3", "rate=2", "name=emea", "flag=true", "xs=[1, 2]"], typed
    )
    assert parsed == {"n": 3, "rate": 2.0, "name": "emea", "flag": True, "xs": [1, 2]}
    assert isinstance(parsed["rate"], float)
    for pairs, message in [
        (["n=three"], "n is Integer; 'three' is not one."),
        (["n=1", "flag=maybe"], "flag is Boolean; 'maybe' is not one."),
        (["n=1", "xs={}"], "xs is List"),
        (["m=1"], "typed has no argument 'm'; its arguments: flag, n, name, rate, xs."),
        (["n"], "'n' is not key=value"),
        ([], "typed needs n; pass -a n=VALUE."),
    ]:
        with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("?", r"\?")):
            compiling.parse_cli_arguments(pairs, typed)
    with pytest.raises(UsageError, match="n of typed is Integer, not bool"):
        compiling.check_arguments(typed, {"n": True})
    with pytest.raises(UsageError, match="rate of typed is Float, not str"):
        compiling.check_arguments(typed, {"n": 1, "rate": "0.1"})


def test_a_compile_error_is_one_sentence(monkeypatch):
    """KFP checks most of a pipeline when the function is decorated (in the user's own
    cell); what its compiler raises at submit time comes out as one sentence. The error is
    made to happen here by replacing Compiler.compile (KFP's message and traceback text)."""
    from kfp import compiler

    def fails(self, pipeline_func, package_path, **kwargs):
        raise ValueError("Missing pipeline output: Output.\nTraceback (most recent call last):")

    monkeypatch.setattr(compiler.Compiler, "compile", fails)
    with pytest.raises(UsageError) as caught:
        compiling.compile_pipeline(typed)
    assert str(caught.value) == "typed does not compile: Missing pipeline output: Output."


def test_the_service_reads_the_compiled_pipelines_parameters_itself():
    spec = ir.parse(compiling.compile_pipeline(typed), 1 << 20)
    assert set(ir.declared(spec)) == {"n", "rate", "name", "flag", "xs"}
    assert ir.check_arguments(spec, {"n": 2, "rate": 3}) == {"n": 2, "rate": 3}
    with pytest.raises(UsageError, match="typed needs n"):
        ir.check_arguments(spec, {})
    with pytest.raises(UsageError, match="not a compiled KFP pipeline"):
        ir.parse("- just\n- a list\n", 1 << 20)
    with pytest.raises(UsageError, match="not YAML"):
        ir.parse("a: [unclosed\n", 1 << 20)
    from jupyter_mlplat.errors import TooLarge

    with pytest.raises(TooLarge):
        ir.parse("x" * 2000, 1000)


def _notebook(parameters: str, *cells: str):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.cells[0].outputs = []
    return nbformat.from_dict(json.loads(nbformat.writes(nb)))


def test_a_notebook_step_takes_the_notebooks_parameters_as_inputs_and_embeds_its_snapshot():
    nb = _notebook("rows = 10\nrate = 0.1\nname = 'a'\nweird = object()", "print(rows)")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="old output")]
    step = notebook_step("reports/daily.ipynb", nb, {"rows": 3}, outputs={"auc": float})
    inputs = step.component_spec.inputs
    assert {k: (v.type, v.default) for k, v in inputs.items() if k != "executed_notebook"} == {
        "rows": ("Integer", 3), "rate": ("Float", 0.1), "name": ("String", "a"),
    }  # fmt: skip  # (weird is not a literal: the notebook keeps its own default)
    assert set(step.component_spec.outputs) == {"auc", "mlflow_run_id", "executed_notebook"}
    assert step.name == "notebook-daily"

    @dsl.pipeline(name="with-step")
    def with_step():
        step()

    compiled = compiling.compile_pipeline(with_step)
    assert "old output" not in compiled  # the snapshot has no outputs
    assert "print(rows)" in compiled  # ...and is embedded: nothing fetched at run time
    executor = yaml.safe_load(compiled)["deploymentSpec"]["executors"]["exec-notebook-daily"]
    assert "pip install" not in " ".join(executor["container"]["command"])
    ir.check_local(yaml.safe_load(compiled))
    for outputs, message in [({"mlflow_run_id": str}, "cannot be a step output"),
                             ({"x": list}, "use int, float, str or bool")]:  # fmt: skip
        with pytest.raises(UsageError, match=message):
            notebook_step("a.ipynb", nb, outputs=outputs)
    with pytest.raises(UsageError, match="not a parameter of this notebook"):
        notebook_step("a.ipynb", nb, {"undeclared": 1})
    with pytest.raises(UsageError, match="limit is 100"):
        notebook_step("a.ipynb", nb, max_bytes=100)


def test_the_cli_takes_the_file_that_defines_the_pipeline(tmp_path, capsys, monkeypatch):
    from jupyter_mlplat.cli import main

    source = tmp_path / "flows.py"
    source.write_text(
        "from kfp import dsl\n\n"
        "@dsl.component(install_kfp_package=False)\ndef one(a: int) -> int:\n    return a\n\n"
        "@dsl.pipeline(name='flow')\ndef flow(a: int = 1):\n    one(a=a)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["pipeline", "submit", "flows.py:flow", "-a", "a=x"]) == 2
    assert "a is Integer; 'x' is not one." in capsys.readouterr().err
    assert main(["pipeline", "submit", "flows.py:nothing"]) == 2
    assert "flows.py defines no nothing" in capsys.readouterr().err
    assert main(["pipeline", "submit", "missing.py:flow"]) == 2
    assert "There is no file missing.py." in capsys.readouterr().err
