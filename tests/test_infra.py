"""Infrastructure files: the Terraform module validates; compose and workflows parse and run the right commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO

INFRA = REPO / "infra"
PLUGINS = Path("/opt/tf-plugins")


def test_terraform_module_validates(tmp_path: Path) -> None:
    terraform = shutil.which("terraform")
    if terraform is None or not PLUGINS.is_dir():
        pytest.skip("terraform or its offline provider mirror (/opt/tf-plugins) is not on this machine")
    work = tmp_path / "tf"
    shutil.copytree(INFRA / "terraform", work)
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    init = subprocess.run(
        [terraform, "init", "-backend=false", "-input=false", f"-plugin-dir={PLUGINS}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    check = subprocess.run(
        [terraform, "validate", "-no-color"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0 and "The configuration is valid" in check.stdout, check.stdout + check.stderr
    fmt = subprocess.run(
        [terraform, "fmt", "-check", "-recursive"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout


def test_task_role_is_least_privilege() -> None:
    main = (INFRA / "terraform/main.tf").read_text()
    assert '"bedrock:*"' not in main and '"s3:*"' not in main and '"*"' not in main
    assert "var.bedrock_model_arns" in main and "${local.runs_prefix}/*" in main
    # ApplyGuardrail only on the guardrail generated from the example's policy
    assert '"bedrock:ApplyGuardrail"' in main and "aws_bedrock_guardrail.support_demo.guardrail_arn" in main


def test_workflows_and_compose_parse() -> None:
    nightly = yaml.safe_load((INFRA / "github/nightly.yml").read_text())
    steps = nightly["jobs"]["nightly"]["steps"]
    assert any("ragharness nightly" in (s.get("run") or "") for s in steps)
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in steps)
    ci = yaml.safe_load((INFRA / "github/ci.yml").read_text())
    assert any("bash .ci/run" in (s.get("run") or "") for s in ci["jobs"]["test"]["steps"])
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        assert all(str(p).startswith("127.0.0.1:") for p in service["ports"])


def test_review_app_service_runs_options_serve_has_and_is_read_only_by_default() -> None:
    import re

    from typer.testing import CliRunner

    from ragharness.cli import app

    serve_tf = (INFRA / "terraform/serve.tf").read_text()
    dockerfile = (INFRA / "Dockerfile").read_text()
    help_text = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).stdout
    flags = set(re.findall(r'"(--[a-z][a-z-]+)"', serve_tf)) | set(re.findall(r'"(--[a-z][a-z-]+)"', dockerfile))
    assert {"--store", "--host", "--allowed-host", "--read-only", "--secure-cookies"} <= flags
    for flag in flags:
        assert flag in help_text, f"{flag} is not an option of `ragharness serve`"
    default_read_only = re.search(r'variable "serve_read_only" \{.*?default\s*=\s*(\w+)', serve_tf, re.DOTALL)
    assert default_read_only and default_read_only.group(1) == "true"
    # the only write the service may ever get is appending review records and the pin file
    puts = re.findall(r'"s3:PutObject"\]\s*resources = \[(.*?)\]', serve_tf, re.DOTALL)
    assert puts and "/*/reviews/*" in puts[0] and "_store/baselines.json" in puts[0] and "keys.json" not in puts[0]


def test_batch_role_is_least_privilege_and_only_bedrock_may_receive_it() -> None:
    batch = (INFRA / "terraform/batch.tf").read_text()
    assert '"bedrock:*"' not in batch and '"s3:*"' not in batch and '"iam:*"' not in batch
    assert 'identifiers = ["bedrock.amazonaws.com"]' in batch and "aws:SourceAccount" in batch
    assert "${local.batch_prefix}/*" in batch  # the role reads and writes one prefix only
    pass_role = batch.split('sid       = "PassTheBatchRoleToBedrockOnly"')[1].split("statement")[0]
    assert "aws_iam_role.batch.arn" in pass_role and "iam:PassedToService" in pass_role
    # the one wildcard resource is ListModelInvocationJobs (no resource-level permissions exist for it)
    wildcard = [part for part in batch.split("statement {") if 'resources = ["*"]' in part]
    assert len(wildcard) == 1 and "bedrock:ListModelInvocationJobs" in wildcard[0]
