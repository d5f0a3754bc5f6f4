"""Issue 9 item 5, without CDK: what of a project is packaged with the function
(``dockline.packaging``), and that the function reads it from its code folder alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dockline.config import PipelineSettings, Settings, load_settings
from dockline.errors import ConfigError
from dockline.infra.asset import stage_function_code
from dockline.infra.wiring import function_environment
from dockline.packaging import SCHEMA_WHEELS, check_packaged, plan_config, write_config
from tests.infra.conftest import write_project
from tests.infra.lambda_asset import foreign_modules, run_handler_from_asset

SHOP = {
    "shop/__init__.py": "",
    "shop/pipeline.py": (
        "from shop.money import total\n\n"
        "def normalise_order(record, ctx):\n"
        "    return {**record, 'total': str(total(record['items']))}\n"
    ),
    "shop/money.py": "from decimal import Decimal\n\ndef total(items):\n    return sum(Decimal(i) for i in items)\n",
    "shop/__pycache__/pipeline.cpython-311.pyc": "stale bytecode",
    "enrich.py": "def tag(record, ctx):\n    return {**record, 'tagged': True}\n",
    "unrelated.py": "raise SystemExit('never packaged')\n",
    "schemas/order.json": json.dumps({"type": "object"}),
    "notes/todo.txt": "never packaged\n",
}
TRANSFORMS = """
[[routes]]
name = "orders"
prefix = "incoming/"
suffixes = [".json"]
schema = "schemas/order.json"
transform = "shop.pipeline:normalise_order"

[[routes]]
name = "events"
prefix = "events/"
suffixes = [".jsonl"]
transform = "enrich:tag"
"""

OUTSIDE_SCHEMA = 'schema = "../shared/order.json"\n'

IMPORT_TRANSFORMS = r"""
import json, sys
sys.path[:0] = [sys.argv[1]]
import importlib
out = {}
for spec, record in (("shop.pipeline:normalise_order", {"items": ["1.10", "2.20"]}), ("enrich:tag", {"id": 1})):
    module_name, _, name = spec.partition(":")
    module = importlib.import_module(module_name)
    out[spec] = {"file": module.__file__, "result": getattr(module, name)(record, None)}
print(json.dumps(out))
"""


def transform_project(folder: Path) -> Settings:
    """A project whose routes name transforms. The settings are the file's source only: the
    transform runtime arrives in another change, and packaging reads the file itself."""
    config = write_project(folder, {**SHOP, "dockline.toml": TRANSFORMS})
    return Settings(source=config)


def test_item5_transform_modules_are_packaged_and_importable_from_the_code_alone(tmp_path: Path) -> None:
    # GIVEN routes naming a module of a package (shop.pipeline) and a single module (enrich)
    package = plan_config(transform_project(tmp_path / "project"))
    assert package is not None
    # WHEN they are packaged with the function's code
    code = stage_function_code(tmp_path / "code")
    written = write_config(package, code)
    # THEN the code holds the config, the schema, the whole shop package (without bytecode) and
    # enrich.py: nothing else of the project
    assert written == ["dockline.toml", "enrich.py", "schemas/order.json", "shop/"]
    outside = sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file())
    assert [p for p in outside if not p.startswith("dockline/")] == [
        "dockline.toml",
        "enrich.py",
        "schemas/order.json",
        "shop/__init__.py",
        "shop/money.py",
        "shop/pipeline.py",
    ]
    # AND a fresh interpreter with only the code folder on sys.path imports and runs both
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_TRANSFORMS, str(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert seen["shop.pipeline:normalise_order"]["result"] == {"items": ["1.10", "2.20"], "total": "3.30"}
    assert seen["enrich:tag"]["result"] == {"id": 1, "tagged": True}
    assert all(Path(v["file"]).is_relative_to(code) for v in seen.values())
    # AND the packaged config names the same transforms and the schema where it now is
    packaged = (code / "dockline.toml").read_text()
    assert 'transform = "shop.pipeline:normalise_order"' in packaged
    assert 'schema = "schemas/order.json"' in packaged


def test_item5_pipeline_csv_schema_reaches_the_function(tmp_path: Path) -> None:
    # GIVEN a [pipeline] csv_schema: before, it had no environment form and never reached Lambda
    config = write_project(
        tmp_path / "project",
        {"dockline.toml": '[pipeline]\ncsv_schema = { qty = "int", price = "decimal", paid = "bool" }\n'},
    )
    settings = load_settings(config)
    code = stage_function_code(tmp_path / "code")
    package = plan_config(settings)
    assert package is not None
    write_config(package, code)
    # WHEN the handler in that code, with the environment the stack gives it, processes a CSV
    env = function_environment(settings, table_name="-", topic_arn="-", dlq_url="", config_packaged=True)
    seen = run_handler_from_asset(
        code, {"incoming/sales.csv": b"qty,price,paid\n2,9.90,true\n3,,false\n"}, tmp_path, env=env
    )
    # THEN the cells are typed as the file says (a blank typed cell is null), as on the local engine
    assert foreign_modules(seen, code) == []
    assert seen["items"] == {
        "incoming/sales.csv#2": ['{"paid":true,"price":9.9,"qty":2}', "default", 2],
        "incoming/sales.csv#3": ['{"paid":false,"price":null,"qty":3}', "default", 3],
    }


def test_item5_a_schema_outside_the_config_folder_is_packaged_under_outside(tmp_path: Path) -> None:
    # GIVEN a route whose schema is in a sibling folder of the config's
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "order.json").write_text('{"type": "object"}')
    config = write_project(
        tmp_path / "project",
        {"dockline.toml": '[[routes]]\nname = "o"\nprefix = "in/"\nsuffixes = [".json"]\n' + OUTSIDE_SCHEMA},
    )
    package = plan_config(load_settings(config))
    assert package is not None
    code = tmp_path / "code"
    code.mkdir()
    # WHEN packaged
    assert write_config(package, code) == ["_outside/1/order.json", "dockline.toml"]
    # THEN the packaged config points at the copy, and loads from the code folder
    (route,) = check_packaged(code).pipeline.routes
    assert route.schema is not None
    assert Path(route.schema.source) == code / "_outside" / "1" / "order.json"


def test_item5_a_module_deep_in_a_package_is_found_level_by_level(tmp_path: Path) -> None:
    files = {"shop/orders/__init__.py": "", "shop/orders/pipeline.py": "def f(r, c):\n    return r\n"}
    config = write_project(
        tmp_path, {**SHOP, **files, "dockline.toml": TRANSFORMS.replace("shop.pipeline", "shop.orders.pipeline")}
    )
    package = plan_config(Settings(source=config))
    assert package is not None
    assert package.paths() == ["dockline.toml", "enrich.py", "schemas/order.json", "shop/"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"dockline.toml": TRANSFORMS.replace("enrich:tag", "missing:tag")}, "'events' transform: module 'missing'"),
        ({"dockline.toml": TRANSFORMS.replace("enrich:tag", "enrich.sub:tag")}, "'events' transform: enrich.py is a"),
        ({"dockline.toml": TRANSFORMS.replace("shop.pipeline", "shop.nope")}, "'orders' transform: module 'shop.nope'"),
        (
            {"dockline.toml": TRANSFORMS.replace("shop.pipeline", "shop.nope.pipeline")},
            "'orders' transform: module 'shop.nope'",
        ),
        (
            {"dockline.toml": TRANSFORMS.replace("shop.pipeline", "shop.pipeline.deeper")},
            "'orders' transform: module 'shop.pipeline.deeper'",
        ),
        ({"dockline.toml": TRANSFORMS.replace("enrich:tag", "enrich")}, "'events' transform must be"),
        ({"dockline.toml": TRANSFORMS.replace("enrich:tag", "dockline:x")}, "'events' transform: a module"),
        ({"dockline.toml": TRANSFORMS.replace("schemas/order.json", "gone.json")}, "'orders' schema: "),
    ],
)
def test_item5_what_cannot_be_packaged_is_one_line_naming_the_route_and_field(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    config = write_project(tmp_path, {**SHOP, **files})
    with pytest.raises(ConfigError) as caught:
        plan_config(Settings(source=config))
    assert f"[[routes]] {message}" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_item5_routes_without_a_file_are_refused_as_the_environment_cannot_carry_them() -> None:
    with pytest.raises(ConfigError, match=r"only in a dockline\.toml"):
        plan_config(Settings(pipeline=PipelineSettings(csv_schema={"qty": "int"})))
    assert plan_config(Settings()) is None


def test_item5_a_route_with_a_schema_asks_deploy_to_vendor_jsonschema(tmp_path: Path) -> None:
    # The Powertools layer brings fastjsonschema, not jsonschema: a schema route needs it vendored
    with_schema = plan_config(transform_project(tmp_path / "a"))
    plain = plan_config(load_settings(write_project(tmp_path / "b", {"dockline.toml": "[pipeline]\nretries = 2\n"})))
    assert with_schema is not None and with_schema.wheels == SCHEMA_WHEELS
    assert plain is not None and plain.wheels == ()


@pytest.mark.slow
def test_item5_deploy_vendors_jsonschema_for_arm64_with_its_compiled_dependency(tmp_path: Path) -> None:
    # GIVEN the function's code staged as deploy stages it for a config with a schema (needs PyPI)
    code = stage_function_code(tmp_path / "code", vendor_wheels=True, extra_wheels=SCHEMA_WHEELS)
    # THEN jsonschema and its dependencies are there, rpds-py built for Lambda's arm64 CPython 3.13
    assert (code / "jsonschema" / "__init__.py").is_file()
    assert (code / "referencing" / "__init__.py").is_file()
    assert [so.name for so in (code / "rpds").glob("*.so") if "313" in so.name and "aarch64" in so.name]
    # and jsonschema-rs, the schema check's compiled accept-path, built for arm64 too
    assert [so.name for so in (code / "jsonschema_rs").glob("*.so") if "abi3" in so.name]
    assert any("aarch64" in wheel.read_text() for wheel in code.glob("jsonschema_rs-*.dist-info/WHEEL"))
