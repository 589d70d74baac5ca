"""The layout's import rules, read from the source: every import statement, also those inside
functions (which run on the worker, where the rule matters as much as at parse time).

The rules are the ones the packages' opening docstrings state:

* ``spark_jobs`` runs on Glue and EMR Serverless without Airflow: it never imports Airflow or
  any other part of the repository; ``spark_jobs.common`` imports no pipeline's package, and
  no pipeline's package imports another's;
* ``operators`` never imports the local stack, the deploy step, benchmarks, tests or pyspark;
  of ``spark_jobs`` only the pure decision modules; a pipeline's package never imports
  another pipeline's;
* pure decision modules import no AWS client, no Airflow and no engine, and of ours only
  other pure modules;
* DAG files import, of ours, only ``operators``; the plugin imports none of ours;
* ``local.aws`` (the AWS stand-in) imports nothing of the product and, of the rest of
  ``local``, only ``local.engines`` (the runs it executes); the engines take of the product
  only the local platform's spark-submit builder; nothing imports ``local.launchers``; the
  product never imports ``local``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("operators", "spark_jobs", "local", "deploy", "plugins", "dags")
OURS = ("operators", "spark_jobs", "local", "deploy", "plugins", "mwaa_pipelines", "bench", "tests", "dags")
# Decisions as functions over plain data (DESIGN.md): unit-tested without AWS, Spark or Airflow.
PURE = frozenset(
    {
        "operators.vpc.ranking",
        "operators.spark.arguments",
        "operators.cost.settings",
        "operators.iceberg.settings",
        "spark_jobs.cost.model",
        "spark_jobs.iceberg.plan",
        "spark_jobs.iceberg.policy",
        "spark_jobs.mrf.grain",
    }
)
AWS_CLIENTS_AND_ENGINES = ("boto3", "botocore", "aiobotocore", "airflow", "moto", "pyspark", "pyarrow", "requests")
# What the local stack's run engines may take of the product: the local platform's
# spark-submit builder, so a run there starts Spark as platform=local does.
ENGINES_MAY_USE = frozenset({"operators.spark.local_runner"})
# What several pipelines of operators share: top-level modules, and the VPC connection health
# and ranking (the subnet operator and Spark tasks with Glue connections decide the same way).
OPERATORS_SHARED = ("operators", "operators.links", "operators.s3_lifecycle", "operators.aws_errors")
OPERATORS_SHARED_PACKAGES = ("operators.vpc",)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str, root: Path) -> bool:
    path = root / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def is_package(name: str, root: Path) -> bool:
    return (root / name.replace(".", "/") / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> set[str]:
    """Every module an import statement in ``path`` names; ``from a import b`` gives ``a``,
    and ``a.b`` too when ``b`` is a module of ours rather than a name defined in ``a``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(
                f"{node.module}.{alias.name}" for alias in node.names if is_module(f"{node.module}.{alias.name}", root)
            )
    return names


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def pipeline_package(name: str, top: str) -> str | None:
    """``operators.cost.ledger`` -> ``operators.cost``; None for shared top-level modules."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) >= 3 and parts[0] == top else None


def violations_of(module: str, imported: set[str], root: Path) -> list[str]:
    found: list[str] = []

    def refuse(name: str, why: str) -> None:
        found.append(f"{module} imports {name}: {why}")

    for name in sorted(imported):
        if module.startswith("spark_jobs"):
            if within(name, "airflow", *[o for o in OURS if o != "spark_jobs"]):
                refuse(
                    name, "spark_jobs runs on Glue and EMR Serverless, without Airflow or the rest of the repository"
                )
            mine, theirs = pipeline_package(module, "spark_jobs"), pipeline_package(name, "spark_jobs")
            if theirs and mine and theirs != mine and theirs != "spark_jobs.common":
                refuse(name, "one pipeline's package never imports another's")
            if mine == "spark_jobs.common" and theirs and theirs != mine:
                refuse(name, "spark_jobs.common is what every job shares: it imports no pipeline's package")
        if module.startswith("operators"):
            if within(name, "local", "deploy", "bench", "tests", "pyspark"):
                refuse(name, "operators never import the local stack, the deploy step, benchmarks, tests or pyspark")
            if within(name, "spark_jobs") and name not in PURE and not is_package(name, root):
                refuse(name, "operators import only spark_jobs' pure decision modules")
            mine, theirs = pipeline_package(module, "operators"), pipeline_package(name, "operators")
            shared = name in OPERATORS_SHARED or within(name, *OPERATORS_SHARED_PACKAGES)
            if mine and theirs and mine != theirs and not shared:
                refuse(name, "one pipeline's package never imports another's")
        if module in PURE:
            if within(name, *AWS_CLIENTS_AND_ENGINES):
                refuse(name, "a pure decision module imports no AWS client, Airflow or engine")
            if within(name, *OURS) and name not in PURE and not is_package(name, root):
                refuse(name, "a pure decision module imports only other pure modules of ours")
        if module.startswith("dags") and within(name, *[o for o in OURS if o != "operators"]):
            refuse(name, "DAG files import, of ours, only operators")
        if module.startswith("plugins") and within(name, *OURS):
            refuse(name, "the plugin runs in the UI, which never imports our code")
        if within(module, "local.aws") and (
            within(name, "airflow", "operators", "spark_jobs", "deploy", "plugins", "bench")
            or (within(name, "local") and not within(name, "local.aws", "local.engines"))
        ):
            refuse(name, "the AWS stand-in knows nothing of the product or the rest of the stack")
        if within(module, "local.engines") and (
            within(name, "airflow", "spark_jobs", "deploy", "plugins", "bench")
            or (within(name, "operators") and name not in ENGINES_MAY_USE)
            or (within(name, "local") and not within(name, "local.engines"))
        ):
            refuse(name, "the run engines start Spark as platform=local does, and know nothing else")
        if within(name, "local.launchers") and not within(module, "local.launchers"):
            refuse(name, "launchers are entry points: nothing imports them")
        if within(module, "operators", "spark_jobs", "deploy", "plugins", "dags") and within(name, "local"):
            refuse(name, "the product never imports the local stack")
    return found


def find_violations(root: Path) -> list[str]:
    found: list[str] = []
    for tree in TREES:
        for path in sorted((root / tree).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found += violations_of(module_name(path, root), imports_of(path, root), root)
    return found


def test_the_repository_keeps_its_import_rules():
    assert find_violations(ROOT) == []


def test_every_pure_module_exists():
    missing = [name for name in PURE if not (ROOT / (name.replace(".", "/") + ".py")).is_file()]
    assert missing == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for tree in TREES:
        (root / tree).mkdir(exist_ok=True)
    return root


def test_each_rule_catches_its_violation(tmp_path):
    init = ""
    root = _tree(
        tmp_path,
        {
            "spark_jobs/__init__.py": init,
            "spark_jobs/common/__init__.py": init,
            "spark_jobs/common/session.py": "from spark_jobs.mrf import grain\n",
            "spark_jobs/mrf/__init__.py": init,
            "spark_jobs/mrf/grain.py": "def f():\n    from airflow.sdk import Variable\n",
            "spark_jobs/iceberg/__init__.py": init,
            "spark_jobs/iceberg/plan.py": "from spark_jobs.mrf.grain import x\nimport boto3\n",
            "spark_jobs/iceberg/table.py": "from spark_jobs.common.session import get_spark\n",
            "operators/__init__.py": init,
            "operators/links.py": init,
            "operators/cost/__init__.py": init,
            "operators/cost/tasks.py": "from operators.subnet.lease import S3Lease\nfrom operators.links import L\n",
            "operators/cost/settings.py": "from spark_jobs.iceberg.table import t\n",
            "operators/subnet/__init__.py": init,
            "operators/subnet/glue_operator.py": "from operators.vpc.ranking import R\n",
            "operators/vpc/__init__.py": init,
            "operators/vpc/ranking.py": "from local.paths import STATE\n",
            "dags/d.py": "from spark_jobs.common import cli\nfrom operators.cost import tasks\n",
            "plugins/p.py": "from operators.links import L\n",
            "local/__init__.py": init,
            "local/aws/__init__.py": init,
            "local/aws/server.py": "from local.services.stack import Stack\nfrom local.aws import speed\n",
            "local/services/__init__.py": init,
            "local/services/stack.py": "from local.launchers.demo import main\n",
            "local/engines/__init__.py": init,
            "local/engines/glue.py": "from operators.spark.local_runner import r\nfrom operators.spark.settings import s\n",
        },
    )
    found = "\n".join(find_violations(root))
    expected = [
        "spark_jobs.common.session imports spark_jobs.mrf.grain: spark_jobs.common is what every job shares",
        "spark_jobs.mrf.grain imports airflow.sdk: spark_jobs runs on Glue",
        "spark_jobs.mrf.grain imports airflow.sdk: a pure decision module imports no AWS client",
        "spark_jobs.iceberg.plan imports spark_jobs.mrf.grain: one pipeline's package never imports another's",
        "spark_jobs.iceberg.plan imports boto3: a pure decision module",
        "operators.cost.tasks imports operators.subnet.lease: one pipeline's package",
        "operators.cost.settings imports spark_jobs.iceberg.table: operators import only spark_jobs' pure",
        "operators.cost.settings imports spark_jobs.iceberg.table: a pure decision module imports only other pure",
        "operators.vpc.ranking imports local.paths: operators never import the local stack",
        "operators.vpc.ranking imports local.paths: the product never imports the local stack",
        "dags.d imports spark_jobs.common: DAG files import, of ours, only operators",
        "plugins.p imports operators.links: the plugin runs in the UI",
        "local.aws.server imports local.services.stack: the AWS stand-in",
        "local.services.stack imports local.launchers.demo: launchers are entry points",
        "local.engines.glue imports operators.spark.settings: the run engines start Spark as platform=local does",
    ]
    for line in expected:
        assert line in found
    # What the rules allow is not reported.
    assert "operators.cost.tasks imports operators.links" not in found
    assert "operators.subnet.glue_operator imports" not in found
    assert "spark_jobs.iceberg.table imports" not in found
    assert "local.aws.server imports local.aws.speed" not in found
    assert "local.engines.glue imports operators.spark.local_runner" not in found
    assert "dags.d imports operators.cost" not in found
