"""Bedrock batch inference as the service behaves, for tests: a botocore `before-call` hook on a real `bedrock`
client (so botocore validates every request against the real service model first, exactly as Stubber does) that
keeps jobs, reads their input from S3 (moto) and writes `<output>/<job id>/<file>.out` plus `manifest.json.out`
when a job ends. Every response is validated against the operation's output shape, as Stubber does."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.validate import validate_parameters

ConverseAnswer = Callable[[dict[str, Any]], dict[str, Any]]


def converse_output(text: str, inp: int = 120, out: int = 12) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out},
        "metrics": {"latencyMs": 321},
    }


class FakeBedrockBatch:
    def __init__(self, bedrock: Any, s3: Any, answer: ConverseAnswer, *, polls: int = 2) -> None:
        self.client = bedrock
        self.s3 = s3
        self.answer = answer
        self.polls = polls
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_ids: set[str] = set()
        self.status_at_end = "Completed"
        bedrock.meta.events.register("before-call.bedrock.*", self._handle)

    def _handle(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        name = model.name
        self.calls.append(name)
        body = params.get("body")
        args = json.loads(body) if body else {}
        uri = params.get("url_path", "")
        response = getattr(self, "_" + name)(args, uri)
        validate_parameters(response, model.output_shape)  # the response has the real shape
        response = {**response, "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "req-1"}}
        return AWSResponse(uri, 200, {}, None), response

    def _CreateModelInvocationJob(self, args: dict[str, Any], uri: str) -> dict[str, Any]:
        for arn, job in self.jobs.items():  # clientRequestToken: the same token returns the same job
            if job["clientRequestToken"] == args.get("clientRequestToken"):
                return {"jobArn": arn}
        arn = f"arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/j{len(self.jobs) + 1:011d}"
        self.jobs[arn] = {**args, "status": "Submitted", "polls": self.polls, "submitTime": datetime.now(UTC)}
        return {"jobArn": arn}

    def _job_of(self, uri: str) -> tuple[str, dict[str, Any]]:
        from urllib.parse import unquote

        ident = unquote(uri.split("/model-invocation-job/")[1].split("/", maxsplit=1)[0])
        arn = next(a for a in self.jobs if a == ident or a.endswith("/" + ident))
        return arn, self.jobs[arn]

    def _GetModelInvocationJob(self, args: dict[str, Any], uri: str) -> dict[str, Any]:
        arn, job = self._job_of(uri)
        if job["status"] not in ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"):
            job["polls"] -= 1
            job["status"] = "InProgress"
            if job["polls"] <= 0:
                self.finish(arn)
        return {
            "jobArn": arn,
            "jobName": job["jobName"],
            "modelId": job["modelId"],
            "roleArn": job["roleArn"],
            "status": job["status"],
            "message": job.get("message", ""),
            "submitTime": job["submitTime"],
            "inputDataConfig": job["inputDataConfig"],
            "outputDataConfig": job["outputDataConfig"],
            "totalRecordCount": job.get("total", 0),
            "processedRecordCount": job.get("processed", 0),
            "errorRecordCount": job.get("errors", 0),
        }

    def finish(self, arn: str) -> None:
        job = self.jobs[arn]
        bucket, key = job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"][5:].split("/", 1)
        lines = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        out, errors = [], 0
        for line in lines:
            rec = json.loads(line)
            if rec["recordId"] in self.fail_ids:
                rec["error"] = {"errorCode": 500, "errorMessage": "internal error"}
                errors += 1
            else:
                rec["modelOutput"] = self.answer(rec["modelInput"])
            out.append(json.dumps(rec))
        obucket, oprefix = job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"][5:].split("/", 1)
        job_id = arn.rsplit("/", 1)[1]
        name = key.rsplit("/", 1)[1]
        self.s3.put_object(Bucket=obucket, Key=f"{oprefix.rstrip('/')}/{job_id}/{name}.out", Body="\n".join(out) + "\n")
        manifest = {"totalRecordCount": len(lines), "processedRecordCount": len(lines), "errorRecordCount": errors}
        self.s3.put_object(
            Bucket=obucket, Key=f"{oprefix.rstrip('/')}/{job_id}/manifest.json.out", Body=json.dumps(manifest)
        )
        job.update(status=self.status_at_end if not errors else "PartiallyCompleted", total=len(lines))
        job.update(processed=len(lines), errors=errors)

    def _ListModelInvocationJobs(self, args: dict[str, Any], uri: str) -> dict[str, Any]:
        return {
            "invocationJobSummaries": [
                {
                    "jobArn": arn,
                    "jobName": job["jobName"],
                    "modelId": job["modelId"],
                    "roleArn": job["roleArn"],
                    "submitTime": job["submitTime"],
                    "inputDataConfig": job["inputDataConfig"],
                    "outputDataConfig": job["outputDataConfig"],
                    "status": job["status"],
                }
                for arn, job in self.jobs.items()
            ]
        }

    def _StopModelInvocationJob(self, args: dict[str, Any], uri: str) -> dict[str, Any]:
        _, job = self._job_of(uri)
        job["status"] = "Stopped"
        return {}
