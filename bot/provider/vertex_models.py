"""What Gemini supervised tuning on Vertex AI accepts. Plain data (no SDK import): the adapter, the
settings check, the data converter and the Vertex sandbox all read it.

Source: Google's supervised-tuning pages (updated 2026-09/10) as summarised in the team's reference
notes (shared/reference/vertex.md). Gemini 2.5 Pro / Flash / Flash-Lite stopped tuning on 2026-10-20.
"""

from __future__ import annotations

import re

TUNABLE_MODELS: tuple[str, ...] = ("gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-3.1-flash-lite")
# The regions where Gemini tuning runs; a job elsewhere is refused.
TUNING_LOCATIONS: tuple[str, ...] = ("us-central1", "europe-west4")
# ftbot's adapter=N -> the API's enum (1, 2, 4, 8 or 16 are the only sizes).
ADAPTER_SIZES: dict[int, str] = {
    1: "ADAPTER_SIZE_ONE",
    2: "ADAPTER_SIZE_TWO",
    4: "ADAPTER_SIZE_FOUR",
    8: "ADAPTER_SIZE_EIGHT",
    16: "ADAPTER_SIZE_SIXTEEN",
}
MAX_EXAMPLE_TOKENS = 131_072  # input + output tokens of one example
MAX_TRAINING_FILE_BYTES = 1024**3  # 1 GB
MAX_TRAINING_EXAMPLES = 10_000_000
MAX_VALIDATION_EXAMPLES = 5_000
# Label keys and values: at most 64 characters of lowercase letters, digits, '_' and '-'.
LABEL_RE = re.compile(r"^[a-z0-9_-]{0,64}$")

# Vertex's job states (google.genai.types.JobState) -> ftbot's status names.
STATE_MAP: dict[str, str] = {
    "JOB_STATE_QUEUED": "queued",
    "JOB_STATE_PENDING": "queued",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_PAUSED": "paused",
    "JOB_STATE_CANCELLING": "cancelling",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_SUCCEEDED": "succeeded",
    # Some of the work was done, not all: for a tuning job there is no partial model to use.
    "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "failed",
}
# The detail state while a job runs, in the order Vertex goes through them.
TUNING_JOB_STATES: tuple[str, ...] = (
    "TUNING_JOB_STATE_WAITING_FOR_QUOTA",
    "TUNING_JOB_STATE_PROCESSING_DATASET",
    "TUNING_JOB_STATE_WAITING_FOR_CAPACITY",
    "TUNING_JOB_STATE_TUNING",
    "TUNING_JOB_STATE_POST_PROCESSING",
)
TUNING_JOB_STATE_TEXT: dict[str, str] = {
    "TUNING_JOB_STATE_WAITING_FOR_QUOTA": "waiting for tuning quota",
    "TUNING_JOB_STATE_PROCESSING_DATASET": "processing the dataset",
    "TUNING_JOB_STATE_WAITING_FOR_CAPACITY": "waiting for capacity",
    "TUNING_JOB_STATE_TUNING": "tuning",
    "TUNING_JOB_STATE_POST_PROCESSING": "post-processing (deploying the tuned model)",
}


def bucket_and_prefix(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/prefix` -> ("bucket", "some/prefix"); ValueError when it is not one."""
    if not uri.startswith("gs://"):
        raise ValueError("must be a gs:// URI such as gs://my-bucket or gs://my-bucket/ftbot")
    bucket, _, prefix = uri[5:].partition("/")
    # Bucket names: 3-63 characters (222 with dots), lowercase letters, digits, '-', '_' and '.',
    # starting and ending with a letter or digit.
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", bucket) or ".." in bucket:
        raise ValueError(f"{bucket[:70]!r} is not a valid Cloud Storage bucket name")
    return bucket, prefix.strip("/")
