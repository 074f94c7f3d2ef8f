"""The package's one exception root.

    RagharnessError
    ├── ConfigError        harness.yaml is missing, malformed or invalid (exit code 3)
    │   ├── PluginError    a plugin failed to load or registered a name already taken (exit code 3)
    │   └── MissingExtraError  the config needs an optional extra that is not installed (names it; exit code 3)
    ├── GoldSetError       a gold set file or item is invalid (exit code 3)
    ├── IngestError        the corpus cannot be ingested as a whole (single bad files are skipped, not raised)
    ├── StoreError         the vector store is unusable (wrong embedder, dimension mismatch, backend failure)
    ├── EmbedderError      the embedder cannot load or embed
    ├── ProviderError      a provider cannot be built (unknown id, bad options)
    ├── ProviderCallError  (generation.providers.base) one failed model call, classified for retry; the runner
    │                      records it as a Generation with an error, it never escapes a run
    ├── RunError           a run directory is missing or inconsistent
    │   ├── DiskFullError  a write failed for lack of space; the run resumes once space is freed (exit code 4)
    │   └── BatchWaiting   batch jobs still run past the configured wait; `--resume` re-attaches (exit code 4)
    ├── BatchError         a batch job cannot be created, read or downloaded (the provider's message in it)
    │   └── BatchTransientError  a batch API call the next poll may get through
    └── LockedError        another process holds the ingest or nightly lock (exit code 6)

Messages carry the bad value and what to do about it.
"""

from __future__ import annotations


class RagharnessError(Exception):
    """Root of every error ragharness raises on purpose."""


class ConfigError(RagharnessError):
    """The harness configuration is invalid."""


class PluginError(ConfigError):
    """A plugin failed to load, or registered a name that is already taken."""


class MissingExtraError(ConfigError):
    """What the config asks for needs an optional extra (`ragharness[aws]`, ...) that is not installed."""


class GoldSetError(RagharnessError):
    """A gold set is invalid. `problems` lists every problem found, each naming file, item and field."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class IngestError(RagharnessError):
    """The corpus as a whole cannot be ingested."""


class StoreError(RagharnessError):
    """The vector store is unusable."""


class EmbedderError(RagharnessError):
    """The embedder cannot be loaded or used."""


class ProviderError(RagharnessError):
    """A provider cannot be built from its id and options."""


class RunError(RagharnessError):
    """A run directory is missing or inconsistent."""


class NotFoundError(RunError):
    """A run (or an item of one) that the store does not have."""


class DiskFullError(RunError):
    """A write failed for lack of space. Nothing torn is left behind; the run resumes once space is freed."""

    def __init__(self, message: str, path: object = None, *, run_dir: object = None, config: object = "CONFIG") -> None:
        super().__init__(message)
        self.path = path
        self.run_dir = run_dir
        """The run that hit it (None: no run had started), so the CLI can print the resume command."""
        self.config = config
        """The config file of that run."""

    def in_run(self, run_dir: object, config: object) -> DiskFullError:
        """The same error, naming the run it stopped (raised by the run, `from` the original)."""
        return DiskFullError(str(self), self.path, run_dir=run_dir, config=config)


class LockedError(RagharnessError):
    """Another process holds a lock ragharness needs (ingest on a data_dir, a nightly run): exit code 6."""


AWS_RATE_LIMIT_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"})
"""AWS error codes that mean "slow down": retried with backoff (Bedrock models and guardrails alike)."""
AWS_TRANSIENT_CODES = frozenset(
    {
        "ModelTimeoutException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
"""AWS error codes of a failure that may pass on its own: retried with backoff."""


class BatchError(RagharnessError):
    """A batch job could not be created, read or downloaded (the provider's message is in it)."""


class BatchTransientError(BatchError):
    """A batch API call failed in a way the next poll may not (throttled, a 5xx, a dropped connection)."""


class BatchWaiting(RunError):
    """Batch jobs are still running past the configured wait: the run keeps its place; `--resume` re-attaches."""

    def __init__(self, message: str, jobs: list[str], *, run_dir: object = None, config: object = "CONFIG") -> None:
        super().__init__(message)
        self.jobs = jobs
        self.run_dir = run_dir
        """The run that waited, so the CLI can print the resume command."""
        self.config = config

    def in_run(self, run_dir: object, config: object) -> BatchWaiting:
        """The same error, naming the run that waits (raised by the run, `from` the original)."""
        return BatchWaiting(str(self), self.jobs, run_dir=run_dir, config=config)
