"""Issue 9 item 5: the function reads the same dockline.toml as the local engine (the one
DOCKLINE_CONFIG names, or the one packaged beside the handler), while the variables the stack
sets still name the AWS resources. The packaged case runs in tests/infra/test_function_package.py
and test_packaging.py (a fresh interpreter importing the handler from the function's code)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dockline
from dockline.aws.runtime import engine_from_env, function_settings, packaged_config_path
from dockline.errors import ConfigError
from dockline.models import ConflictPolicy

CONFIG = """
[pipeline]
on_conflict = "overwrite"
retries = 2
csv_schema = { qty = "int" }

[[routes]]
name = "sensors"
prefix = "iot/"
suffixes = [".csv"]
csv = { delimiter = ";" }

[aws]
table_name = "not-this-one"
"""
RESOURCES = {"TABLE_NAME": "events", "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:events-notify"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "dockline.toml"
    path.write_text(CONFIG)
    return path


def test_item5_the_function_reads_the_file_dockline_config_names(config: Path) -> None:
    # WHEN the function's environment names a dockline.toml
    engine = engine_from_env({**RESOURCES, "DOCKLINE_CONFIG": str(config)})
    # THEN its routes, CSV dialects and [pipeline] (csv_schema included) are the file's
    pipeline = engine.settings.pipeline
    assert [r.name for r in pipeline.routes] == ["sensors"]
    assert pipeline.routes[0].csv.delimiter == ";"
    assert dict(pipeline.csv_schema) == {"qty": "int"}
    assert pipeline.on_conflict is ConflictPolicy.OVERWRITE
    # AND the resources are the environment's, whatever the file's [aws] says
    assert engine.ledger.table_name == "events"
    assert engine.notifier.topic_arn == RESOURCES["TOPIC_ARN"]


def test_item5_a_pipeline_variable_overrides_the_file_and_keeps_the_rest(config: Path) -> None:
    env = {**RESOURCES, "DOCKLINE_CONFIG": str(config), "DOCKLINE_RETRIES": "5", "DOCKLINE_CSV_SCHEMA": "x"}
    pipeline = function_settings(env).pipeline
    assert pipeline.retries == 5  # the operator's variable wins
    assert pipeline.on_conflict is ConflictPolicy.OVERWRITE  # the file's, untouched
    assert dict(pipeline.csv_schema) == {"qty": "int"}  # a table has no variable form: the file's stays
    assert [r.name for r in pipeline.routes] == ["sensors"]


def test_item5_a_dockline_config_that_is_not_a_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        engine_from_env({**RESOURCES, "DOCKLINE_CONFIG": str(tmp_path / "missing.toml")})
    assert str(caught.value) == f"DOCKLINE_CONFIG names {tmp_path / 'missing.toml'}, which is not a file"


def test_item5_a_bad_packaged_config_fails_the_engine_with_the_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "dockline.toml"
    bad.write_text('[[routes]]\nname = "x"\nprefix = "a/"\nsuffixes = [".txt"]\n')
    with pytest.raises(ConfigError, match=r"\[\[routes\]\] 'x' suffixes: '\.txt'"):
        engine_from_env({**RESOURCES, "DOCKLINE_CONFIG": str(bad)})


def test_item5_without_a_file_the_function_keeps_the_defaults_and_variables() -> None:
    # GIVEN no DOCKLINE_CONFIG and no dockline.toml beside this (development) install's package
    assert packaged_config_path() == Path(dockline.__file__).resolve().parent.parent / "dockline.toml"
    assert not packaged_config_path().exists()
    # THEN the function is configured as before: defaults and DOCKLINE_* variables
    pipeline = function_settings({**RESOURCES, "DOCKLINE_PREFIX": "landing/"}).pipeline
    assert pipeline.prefix == "landing/"
    assert pipeline.routes == ()


WITHOUT_JSONSCHEMA = r"""
import sys


class NotInstalled:
    # the function's code as `dockline synth` alone builds it: no jsonschema (Lambda has none)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "jsonschema":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
from dockline.aws.runtime import engine_from_env
from dockline.errors import ConfigError

try:
    engine_from_env({"TABLE_NAME": "events", "TOPIC_ARN": "arn:t", "DOCKLINE_CONFIG": sys.argv[1]})
except ConfigError as exc:
    print(exc)
"""


def test_item5_a_schema_route_without_jsonschema_in_the_code_is_one_line_naming_deploy(tmp_path: Path) -> None:
    # GIVEN a config with a schema route, and a function whose code lacks jsonschema
    (tmp_path / "order.json").write_text('{"type": "object"}')
    config = tmp_path / "dockline.toml"
    config.write_text('[[routes]]\nname = "orders"\nprefix = "in/"\nsuffixes = [".json"]\nschema = "order.json"\n')
    # WHEN the function builds its engine
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_JSONSCHEMA, str(config)], capture_output=True, text=True, check=False, timeout=60
    )
    # THEN it fails with one line naming the package and what vendors it, no traceback
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (
        f"{config} needs the jsonschema package, which the function's code lacks; "
        "deploy with `dockline deploy`, which vendors it (`dockline synth` alone does not)"
    )
