"""Bedrock batch inference: the four control-plane operations through botocore's Stubber (real request and
response shapes), S3 through moto, and whole runs through a stateful fake built on the same validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from bedrock_batch_fake import FakeBedrockBatch, converse_output
from botocore.stub import ANY, Stubber
from moto import mock_aws

from ragharness.batch import bedrock as batch_bedrock
from ragharness.batch.base import BatchRecord, JobLimits
from ragharness.batch.bedrock import BedrockBatch, parse_output_line
from ragharness.core.types import Generation
from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run
from ragharness.testing.batch import check_batch_backend

MODEL = "amazon.nova-lite-v1:0"
ROLE = "arn:aws:iam::123456789012:role/ragharness-batch"
ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abc123def456"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for var, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(var, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="evals")
        yield boto3.client("bedrock", region_name="us-east-1"), s3


def job_description(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "jobArn": ARN,
        "jobName": "rh-t-g-r1-s1",
        "modelId": MODEL,
        "roleArn": ROLE,
        "status": status,
        "submitTime": datetime(2026, 11, 23, tzinfo=UTC),
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://evals/batch/rh-t-g-r1-s1/input/shard-0001.jsonl"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://evals/batch/rh-t-g-r1-s1/output/"}},
        **extra,
    }


def test_control_plane_calls_have_the_real_shapes(aws: tuple[Any, Any], tmp_path: Path) -> None:
    bedrock, s3 = aws
    backend = BedrockBatch(MODEL, s3_uri="s3://evals/batch", role_arn=ROLE, bedrock=bedrock, s3=s3, timeout_hours=48)
    shard = tmp_path / "shard-0001.jsonl"
    shard.write_text(backend.encode(BatchRecord(key="k1", body={"messages": []})) + "\n")
    with Stubber(bedrock) as stub:
        stub.add_response(
            "create_model_invocation_job",
            {"jobArn": ARN},
            {
                "jobName": "rh-t-g-r1-s1",
                "roleArn": ROLE,
                "clientRequestToken": ANY,
                "modelId": MODEL,
                "inputDataConfig": {
                    "s3InputDataConfig": {
                        "s3InputFormat": "JSONL",
                        "s3Uri": "s3://evals/batch/rh-t-g-r1-s1/input/shard-0001.jsonl",
                    }
                },
                "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://evals/batch/rh-t-g-r1-s1/output/"}},
                "modelInvocationType": "Converse",
                "timeoutDurationInHours": 48,
            },
        )
        stub.add_response(
            "get_model_invocation_job",
            job_description("InProgress", totalRecordCount=100, processedRecordCount=40, errorRecordCount=2),
            {"jobIdentifier": ARN},
        )
        stub.add_response(
            "list_model_invocation_jobs",
            {"invocationJobSummaries": [job_description("InProgress")]},
            {"nameContains": "rh-t-g-r1-s1", "maxResults": 100},
        )
        stub.add_response("stop_model_invocation_job", {}, {"jobIdentifier": ARN})
        stub.add_response(
            "get_model_invocation_job", job_description("Expired", message="the job timed out"), {"jobIdentifier": ARN}
        )
        ref = backend.upload("rh-t-g-r1-s1", shard)
        assert s3.get_object(Bucket="evals", Key="batch/rh-t-g-r1-s1/input/shard-0001.jsonl")["Body"].read()
        assert backend.create("rh-t-g-r1-s1", ref) == ARN
        state = backend.status(ARN)
        assert (state.status, state.total, state.done, state.failed) == ("running", 100, 40, 2)
        assert backend.find("rh-t-g-r1-s1") == ARN
        backend.stop(ARN)
        expired = backend.status(ARN)
        assert (expired.status, expired.message, expired.ended) == ("expired", "the job timed out", True)
        stub.assert_no_pending_responses()


def test_output_lines_parse_answers_errors_and_damage() -> None:
    ok = parse_output_line(json.dumps({"recordId": "a", "modelInput": {}, "modelOutput": converse_output("hi")}))
    assert ok is not None and ok.output is not None and ok.error is None
    err = parse_output_line(
        json.dumps({"recordId": "b", "modelInput": {}, "error": {"errorCode": 400, "errorMessage": "bad"}})
    )
    assert err is not None and err.error is not None and (err.error.code, err.error.retryable) == ("400", False)
    throttled = parse_output_line(json.dumps({"recordId": "c", "error": {"errorCode": 429, "errorMessage": "slow"}}))
    assert throttled is not None and throttled.error is not None and throttled.error.retryable
    torn = parse_output_line('{"recordId": "d", "modelInput": {"mess')
    assert torn is not None and torn.key == "d" and torn.error is not None and torn.error.code == "MalformedOutput"
    assert parse_output_line('{"modelInput": {"mess') is None and parse_output_line("") is None


def test_bedrock_backend_meets_the_contract(aws: tuple[Any, Any], tmp_path: Path) -> None:
    bedrock, s3 = aws
    fake = FakeBedrockBatch(bedrock, s3, lambda inp: converse_output("ok"))
    backend = BedrockBatch(
        MODEL,
        s3_uri="s3://evals/batch",
        role_arn=ROLE,
        bedrock=bedrock,
        s3=s3,
        limits=JobLimits(min_records=1, max_records=7),
    )
    records = [
        BatchRecord(key=f"rec{i:03d}", body={"messages": [{"role": "user", "content": [{"text": f"q{i}"}]}]})
        for i in range(20)
    ]
    check_batch_backend(backend, tmp_path, records)
    assert fake.calls.count("CreateModelInvocationJob") == 3


BATCH_CONFIG = """
  - name: nova
    provider: bedrock:{model}
    mode: batch
    params: {{max_tokens: 200}}
prices:
  {model}: {{input_per_1k: 0.06, output_per_1k: 0.24}}
batch:
  poll_interval_s: 0.01
  bedrock: {{s3_uri: "s3://evals/ragharness", role_arn: "${{BATCH_ROLE}}", min_records: 1}}
"""


def test_a_run_with_a_bedrock_candidate_in_batch_mode(
    aws: tuple[Any, Any], mini_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bedrock, s3 = aws
    monkeypatch.setenv("BATCH_ROLE", ROLE)

    def answer(inp: dict[str, Any]) -> dict[str, Any]:
        assert "modelId" not in inp and inp["inferenceConfig"] == {"maxTokens": 200}
        return converse_output("Alpha annual plans can be refunded within 30 days [1].")

    fake = FakeBedrockBatch(bedrock, s3, answer, polls=2)
    monkeypatch.setattr(batch_bedrock, "clients", lambda region, profile=None: (bedrock, s3))
    cfg_file = mini_project / "harness.yaml"
    cfg_file.write_text(
        cfg_file.read_text().replace(
            "candidates:\n", "candidates:" + BATCH_CONFIG.format(model=MODEL).split("prices:")[0], 1
        )
        + "prices:"
        + BATCH_CONFIG.format(model=MODEL).split("prices:")[1]
    )
    lines: list[str] = []
    result = execute_run(load_config(cfg_file), log=lines.append)
    gens = [Generation.model_validate_json(x) for x in (result.run_dir / "generations.jsonl").read_text().splitlines()]
    nova = [g for g in gens if g.candidate == "nova"]
    assert nova and all(g.mode == "batch" and g.batch_job.startswith("arn:aws:bedrock") for g in nova)
    assert all(g.stop_reason == "end_turn" and g.text.startswith("Alpha annual") for g in nova)
    # half the on-demand price: 120 in x 0.03 / 1k + 12 out x 0.12 / 1k
    assert nova[0].cost_usd == pytest.approx(120 * 0.03 / 1000 + 12 * 0.12 / 1000)
    assert fake.calls.count("CreateModelInvocationJob") == 1
    assert any("created job arn:aws:bedrock" in line for line in lines), lines
    journal = [json.loads(x) for x in (result.run_dir / "batch" / "journal.jsonl").read_text().splitlines()]
    assert [e["event"] for e in journal][-2:] == ["finished", "scrubbed"]  # raw outputs deleted once recorded
    # resuming a finished run sends nothing again
    execute_run(load_config(cfg_file), resume=result.run_dir, log=lines.append)
    assert fake.calls.count("CreateModelInvocationJob") == 1


def test_ingest_batch_embeds_new_chunks_with_a_titan_batch_job_and_never_re_embeds(
    aws: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import write
    from ragharness.ingest.pipeline import ingest
    from ragharness.pipeline.components import build_store
    from ragharness.retrieval.embedders import TitanEmbedder

    bedrock, s3 = aws
    monkeypatch.setenv("BATCH_ROLE", ROLE)
    inputs: list[str] = []

    def embed(inp: dict[str, Any]) -> dict[str, Any]:
        assert inp["dimensions"] == 256 and inp["normalize"] is True
        inputs.append(inp["inputText"])
        return {"embedding": [len(inp["inputText"]) / 1000.0] * 256, "inputTextTokenCount": 9}

    fake = FakeBedrockBatch(bedrock, s3, embed, polls=1)
    monkeypatch.setattr(batch_bedrock, "clients", lambda region, profile=None: (bedrock, s3))
    for i in range(4):
        write(tmp_path / f"corpus/doc{i}.md", f"# Doc {i}\n\nPlan {i} includes {i * 5} GB of storage.\n")
    write(
        tmp_path / "harness.yaml",
        "name: embedbatch\ndata_dir: data\ncorpus: {path: corpus}\ngoldset: gold.yaml\n"
        "embedder: {kind: titan, options: {dimensions: 256, region: us-east-1}}\n"
        "candidates: [{name: ext, provider: extractive}]\nguardrails: {input: [], output: []}\n"
        'batch: {poll_interval_s: 0.01, bedrock: {s3_uri: "s3://evals/embed", role_arn: "${BATCH_ROLE}", '
        "min_records: 1}}\n",
    )
    cfg = load_config(tmp_path / "harness.yaml")

    class NoOnline:
        def invoke_model(self, **_: Any) -> Any:
            raise AssertionError("a chunk was embedded online")

    embedder = TitanEmbedder(dimensions=256, region="us-east-1", client=NoOnline())
    store = build_store(cfg)
    lines: list[str] = []
    report = ingest(cfg.ingest_settings(), embedder, store, redactor=None, batch=True, log=lines.append)
    assert report.chunks_batch_embedded == report.chunks_embedded == 4 == len(inputs)
    assert fake.jobs and next(iter(fake.jobs.values()))["modelInvocationType"] == "InvokeModel"
    assert store.count() == 4
    # one changed document: only its chunk goes into a second job
    write(tmp_path / "corpus/doc2.md", "# Doc 2\n\nPlan 2 includes 99 GB of storage.\n")
    again = ingest(cfg.ingest_settings(), embedder, store, redactor=None, batch=True, log=lines.append)
    assert (again.chunks_batch_embedded, len(inputs), len(fake.jobs)) == (1, 5, 2)
    with pytest.raises(Exception, match=r"embedder\.kind: titan"):
        from ragharness.retrieval.embedders import HashingEmbedder

        ingest(cfg.ingest_settings(), HashingEmbedder(), store, redactor=None, batch=True)
