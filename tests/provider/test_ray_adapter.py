"""The Ray provider outside a cluster: settings, the filled entrypoint, the log reader, a cluster that
does not answer (through the real poller), and `/ft try` through FTBOT_RAY_INFERENCE_URL (the OpenAI
sandbox standing in for vLLM). The cluster itself is exercised in tests/ray/ (see test_ray_netns.py)."""

from __future__ import annotations

import json
import shlex
import socket
from datetime import timedelta

import pytest

pytest.importorskip("ray.job_submission", reason="the ray extra is not installed (pip install -e '.[dev,ray]')")

from bot.provider import ray_logs  # noqa: E402
from bot.provider.base import JobSpec, ProviderInvalidRequest, ProviderUnavailable  # noqa: E402
from bot.provider.ray_adapter import RayProvider, fill_entrypoint  # noqa: E402
from bot.settings import SettingsError, load_settings  # noqa: E402

SLACK = {"SLACK_BOT_TOKEN": "xoxb-1-secretvalue", "SLACK_SIGNING_SECRET": "shh-signing"}
RAY = {"RAY_ADDRESS": "http://127.0.0.1:8265", "FTBOT_RAY_ENTRYPOINT": "python train.py --data {train} --out {output}", "FTBOT_RAY_STORAGE": "/shared/ftbot"}
ENTRY = "python train.py --data {train} --val {validation} --model {model} --epochs {epochs} --lr {lr} --batch {batch} --out {output} --seed {seed} --suffix {suffix}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


# ---- settings ---------------------------------------------------------------------------------


def test_ray_address_enables_ray_and_every_setting_is_read() -> None:
    s = load_settings(
        {
            **SLACK,
            **RAY,
            "FTBOT_RAY_RUNTIME_ENV": '{"pip": ["trl"], "env_vars": {"HF_HOME": "/cache"}}',
            "FTBOT_RAY_GPUS": "1",
            "FTBOT_RAY_CPUS": "4",
            "FTBOT_RAY_INFERENCE_URL": "http://vllm:8000/v1",
            "FTBOT_RAY_INFERENCE_KEY": "vllm-secret",
        }
    )
    s.require_for("serve")
    assert s.enabled_providers == ("ray",) and s.provider_default == "ray"
    assert (s.ray_gpus, s.ray_cpus, s.ray_inference_url) == (1.0, 4.0, "http://vllm:8000/v1")
    assert json.loads(s.ray_runtime_env or "")["pip"] == ["trl"]
    assert "vllm-secret" not in repr(s)
    both = load_settings({**SLACK, **RAY, "OPENAI_API_KEY": "sk-x", "FTBOT_DEFAULT_PROVIDER": "ray"})
    assert both.enabled_providers == ("openai", "ray") and both.provider_default == "ray"


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"FTBOT_RAY_ENTRYPOINT": "python t.py {train} {output} {steps}"}, "FTBOT_RAY_ENTRYPOINT has unknown placeholder(s) {steps}"),
        ({"FTBOT_RAY_ENTRYPOINT": "python t.py {train}"}, "FTBOT_RAY_ENTRYPOINT must contain {output}"),
        ({"FTBOT_RAY_ENTRYPOINT": "python t.py {train {output}"}, "FTBOT_RAY_ENTRYPOINT has unbalanced braces"),
        ({"FTBOT_RAY_STORAGE": "shared/ftbot"}, "FTBOT_RAY_STORAGE must be an absolute path"),
        ({"FTBOT_RAY_STORAGE": "http://bucket/x"}, "FTBOT_RAY_STORAGE must be an absolute path every Ray node sees, or an s3:// or gs:// URI"),
        ({"FTBOT_RAY_RUNTIME_ENV": "{pip: [trl]}"}, "FTBOT_RAY_RUNTIME_ENV is not valid JSON"),
        ({"FTBOT_RAY_RUNTIME_ENV": '["trl"]'}, "FTBOT_RAY_RUNTIME_ENV must be a JSON object"),
        ({"FTBOT_RAY_GPUS": "-1"}, "FTBOT_RAY_GPUS must be at least 0.0"),
        ({"FTBOT_RAY_GPUS": "two"}, "FTBOT_RAY_GPUS must be a number"),
        ({"FTBOT_RAY_INFERENCE_URL": "vllm:8000"}, "FTBOT_RAY_INFERENCE_URL must be an http(s) URL"),
        ({"RAY_ADDRESS": "127.0.0.1:8265"}, "RAY_ADDRESS must be an http(s) URL"),
    ],
)
def test_bad_ray_settings_stop_start_up_with_one_line(env: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({**SLACK, **RAY, **env})
    assert str(err.value).startswith(line), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({k: v for k, v in RAY.items() if k != "FTBOT_RAY_ENTRYPOINT"}, "FTBOT_RAY_ENTRYPOINT is required when RAY_ADDRESS is set"),
        ({k: v for k, v in RAY.items() if k != "FTBOT_RAY_STORAGE"}, "FTBOT_RAY_STORAGE is required when RAY_ADDRESS is set"),
        ({"OPENAI_API_KEY": "sk-x", "FTBOT_RAY_STORAGE": "/x"}, "FTBOT_RAY_STORAGE is set but RAY_ADDRESS is not"),
        # s3fs is not among ftbot's dependencies (nor installed here): said at start-up, not as a traceback.
        ({**RAY, "FTBOT_RAY_STORAGE": "s3://bucket/ftbot"}, "FTBOT_RAY_STORAGE is a s3:// URI, which needs the s3fs package: pip install s3fs"),
    ],
)
def test_a_half_set_ray_stops_start_up(env: dict[str, str], line: str) -> None:
    s = load_settings({**SLACK, **env})
    with pytest.raises(SettingsError, match=line.replace("(", r"\(")):
        s.require_for("worker")


def test_placeholders_are_filled_shell_quoted() -> None:
    hostile = "x'; rm -rf / #"
    command = fill_entrypoint(ENTRY, {"train": "/data/my file.jsonl", "validation": None, "model": "Qwen/Qwen2.5-7B", "epochs": 3, "lr": 2e-4, "batch": 8, "output": "/out/sl-1", "seed": 7, "suffix": hostile})
    argv = shlex.split(command)
    assert argv[argv.index("--data") + 1] == "/data/my file.jsonl"
    assert argv[argv.index("--val") + 1] == ""  # no validation file: an empty argument, not a missing one
    assert argv[argv.index("--suffix") + 1] == hostile and argv[-1] == hostile  # one argument, nothing run
    assert argv[argv.index("--lr") + 1] == "0.0002" and argv[argv.index("--seed") + 1] == "7"


# ---- the log reader ---------------------------------------------------------------------------

HF_LOG = """\
Running entrypoint for job sl-1: python train.py
***** Running training *****
  Total optimization steps = 4
  0%|          | 0/4 [00:00<?, ?it/s]\r 25%|##5       | 1/4 [00:01<00:03, 1.0it/s]
{'loss': 2.5, 'grad_norm': 1.5, 'learning_rate': 2e-05, 'epoch': 0.5}
 50%|#####     | 2/4 [00:02<00:02, 1.0it/s]
{'loss': 2.1, 'grad_norm': 1.1, 'learning_rate': 1e-05, 'epoch': 1.0, 'mean_token_accuracy': 0.41}
\r  0%|          | 0/2 [00:00<?, ?it/s]\r100%|##########| 2/2 [00:00<00:00, 9.9it/s]
{'eval_loss': 2.3, 'eval_runtime': 0.2, 'epoch': 1.0}
Saving model checkpoint to /out/checkpoint-2
 75%|#######5  | 3/4 [00:03<00:01, 1.0it/s]
{'loss': nan, 'grad_norm': nan, 'learning_rate': 5e-06, 'epoch': 1.5}
{'train_runtime': 4.0, 'train_loss': 2.3, 'epoch': 2.0}
still writing"""


def test_hugging_face_dicts_become_metric_points_with_their_step() -> None:
    lines = ray_logs.complete_lines(HF_LOG)
    assert lines[-1].startswith("{'train_runtime'")  # a line still being written waits
    events = ray_logs.parse(lines, 0, ray_logs.LogState()).events
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [e["data"]["step"] for e in metrics] == [1, 2, 3]
    assert all(e["data"]["total_steps"] == 4 for e in metrics)  # the eval bar's 2/2 is not the training's
    assert metrics[0]["data"]["train_loss"] == 2.5 and metrics[0]["data"]["learning_rate"] == 2e-05
    # The evaluation at step 2 joined step 2's point.
    assert metrics[1]["data"]["valid_loss"] == 2.3 and metrics[1]["data"]["train_mean_token_accuracy"] == 0.41
    assert metrics[1]["message"] == "Step 2/4: training loss=2.1, validation loss=2.3"
    assert metrics[2]["data"]["train_loss"] == "NaN"  # a diverged step is kept for the health check
    text = [e["message"] for e in events if e["type"] != "metrics"]
    assert text == [
        "Running entrypoint for job sl-1: python train.py",
        "***** Running training *****",
        "Total optimization steps = 4",
        "Saving model checkpoint to /out/checkpoint-2",
        "{'train_runtime': 4.0, 'train_loss': 2.3, 'epoch': 2.0}",
    ]
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) and [ray_logs.event_line(i) for i in ids] == sorted(ray_logs.event_line(i) for i in ids)


def test_reading_in_pieces_resumes_after_the_last_event_as_reading_at_once() -> None:
    lines = ray_logs.complete_lines(HF_LOG)
    whole = ray_logs.parse(lines, 0, ray_logs.LogState()).events
    for cut in range(1, len(lines)):
        first = ray_logs.parse(lines[:cut], 0, ray_logs.LogState())
        known = first.events[-1]["id"] if first.events else None
        # A fresh process knows only the last event id: it rebuilds the state from the lines before.
        start = (ray_logs.event_line(known) + 1) if known else 0
        state = ray_logs.parse(lines[:start], 0, ray_logs.LogState(), emit=False).state
        rest = ray_logs.parse(lines[start:], start, state).events
        got = [e for e in first.events + rest if e["type"] == "metrics"]
        want = [e for e in whole if e["type"] == "metrics"]
        # Points split across reads (a step's evaluation read later) are joined by the store.
        assert sorted({e["data"]["step"] for e in got}) == [e["data"]["step"] for e in want], cut
        assert {e["id"] for e in first.events} & {e["id"] for e in rest} == set()


# A trainer that prints JSON and no progress bar: the steps are counted from the training dicts.
JSON_LOG = """\
starting
{"loss": 2.5, "learning_rate": 2e-05, "epoch": 0.5}
{"eval_loss": 2.4, "epoch": 0.5}
{"loss": 2.1, "learning_rate": 1e-05, "epoch": 1.0}
saved
{"loss": 1.9, "learning_rate": 5e-06, "epoch": 1.5}
{"eval_loss": 2.0, "epoch": 1.5}
{"loss": 1.7, "learning_rate": 1e-06, "epoch": 2.0}
done
"""


def test_a_restart_resumes_json_lines_at_the_same_step_numbers() -> None:
    lines = ray_logs.complete_lines(JSON_LOG)
    for cut in range(1, len(lines)):
        # A fresh process rebuilds the state from the lines it already read, then reads on.
        state = ray_logs.parse(lines[:cut], 0, ray_logs.LogState(), emit=False).state
        rest = ray_logs.parse(lines[cut:], cut, state).events
        before = ray_logs.parse(lines[:cut], 0, ray_logs.LogState()).events
        got = {(e["data"]["step"], e["data"].get("train_loss")) for e in before + rest if e["type"] == "metrics" and "train_loss" in e["data"]}
        assert got == {(1, 2.5), (2, 2.1), (3, 1.9), (4, 1.7)}, (cut, got)


def test_a_chatty_read_keeps_notable_lines_and_folds_the_rest() -> None:
    lines = [f"[rank0] micro-batch {i}" for i in range(300)]
    lines[100] = "WARNING: gradient overflow, skipping step"
    lines[200] = "Saving model checkpoint to /out/checkpoint-200"
    events = ray_logs.parse(lines, 10, ray_logs.LogState()).events
    messages = [e["message"] for e in events]
    assert len(events) == 2 + 1 + ray_logs.KEEP_PLAIN
    assert "WARNING: gradient overflow, skipping step" in messages and "Saving model checkpoint to /out/checkpoint-200" in messages
    assert messages[-ray_logs.KEEP_PLAIN :] == lines[-ray_logs.KEEP_PLAIN :]
    fold = next(e for e in events if "more log lines" in e["message"])
    assert fold["message"].startswith("… 290 more log lines (lines 11–302 of the job's log")
    assert next(e for e in events if "overflow" in e["message"])["level"] == "warn"


# ---- a cluster that does not answer -------------------------------------------------------------


def test_a_cluster_that_does_not_answer_backs_off_in_the_poller(db_url, slack, tmp_path) -> None:  # noqa: ANN001
    from bot.jobs.store import new_job_row
    from bot.provider.base import Job as ProviderJob
    from bot.services import build_services
    from bot.worker.poller import Poller
    from storage.models import Job
    from storage.types import utcnow
    from tests.conftest import make_settings

    address = f"http://127.0.0.1:{closed_port()}"
    ray = RayProvider(address, entrypoint=ENTRY, storage=str(tmp_path), max_retries=0)
    with pytest.raises(ProviderUnavailable, match="does not answer"):
        ray.list_jobs()
    with pytest.raises(ProviderUnavailable, match="does not answer"):
        ray.create_job(JobSpec(model="m", training_file=ray.upload_file(b'{"messages": []}\n', "t.jsonl").id), idempotency_key="sl-down")

    settings = make_settings(db_url, type("NoSandbox", (), {"url": None})(), slack, openai_api_key=None, openai_base_url=None, poll_interval=1.0)
    svc = build_services(settings, providers={"ray": ray})
    try:
        with svc.db.session() as s:
            row = new_job_row(ProviderJob(id="sl-down", status="running", model="m", created_at=0), team_id="T1", started_by="U1", channel="C1", idempotency_key="sl-down", provider="ray")
            s.add(row)
        stats = Poller(svc, "w1").cycle("ray")
        assert stats.failed == 1 and "does not answer" in stats.errors[0]
        with svc.db.session() as s:
            row = s.query(Job).one()
            assert row.poll_failures == 1 and "does not answer" in row.last_poll_error
            assert row.next_poll_at.replace(tzinfo=None) > (utcnow() + timedelta(seconds=1)).replace(tzinfo=None)
            assert row.status == "running" and not row.is_final  # nothing lost, tried again later
    finally:
        svc.close()


# ---- /ft try through the team's inference server -------------------------------------------------


def test_try_goes_to_the_inference_server_and_says_plainly_when_there_is_none(sqlite_url, sandbox, slack, tmp_path) -> None:  # noqa: ANN001
    from bot.app import build_app
    from bot.services import build_services
    from bot.slack_standin.requests import SlackRequester
    from bot.web import HttpServer, WebApp
    from tests.conftest import SIGNING_SECRET, make_settings, wait_for

    def bot(inference_url: str | None):  # noqa: ANN202
        ray = RayProvider(f"http://127.0.0.1:{closed_port()}", entrypoint=ENTRY, storage=str(tmp_path), inference_url=inference_url, inference_key="sk-test-key-123456", max_retries=0)
        settings = make_settings(sqlite_url, sandbox, slack, openai_api_key=None, openai_base_url=None)
        svc = build_services(settings, providers={"ray": ray})
        server = HttpServer(WebApp(build_app(svc), svc), host="127.0.0.1", port=0).start()
        return svc, server, SlackRequester(f"{server.url}/slack/events", SIGNING_SECRET, response_base=f"{slack.base}/response")

    import time

    from bot.sandbox.state import ORG

    model = "/shared/ftbot/outputs/sl-1"

    def serve() -> None:
        with sandbox.state.lock:
            sandbox.state.models[model] = {"id": model, "object": "model", "created": int(time.time()), "owned_by": ORG}

    cases = (
        (sandbox.url, None, "does not serve `/shared/ftbot/outputs/sl-1`: load it there (vLLM: `vllm serve"),
        (sandbox.url, serve, "You asked: hello"),
        (None, None, "FTBOT_RAY_INFERENCE_URL is not set"),
    )
    for url, before_asking, expect in cases:
        if before_asking:
            before_asking()
        svc, server, requester = bot(url)
        try:
            before = len(slack.responses())
            assert requester.command(f"try {model} hello", channel="C0001").status == 200
            answer = wait_for(lambda: slack.responses()[before:], timeout=15)[0]  # noqa: B023
            assert expect in json.dumps(answer), answer
        finally:
            server.stop()
            svc.close()
    with pytest.raises(ProviderInvalidRequest, match="vllm serve"):
        RayProvider("http://127.0.0.1:9", entrypoint=ENTRY, storage=str(tmp_path)).chat(model, [{"role": "user", "content": "hi"}])


# ---- the demo without ray -------------------------------------------------------------------------


def test_the_ray_demo_says_plainly_when_ray_is_not_installed(tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import sys

    # `ray` made unimportable in a fresh interpreter, as on a machine without the extra.
    code = "import sys; sys.modules['ray'] = None; from bot.cli import main; sys.exit(main(['demo', '--provider', 'ray', '--out', sys.argv[1]]))"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "demo")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ftbot demo --provider ray needs the ray package, which is not installed: pip install 'ftbot[ray]'" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


# ---- storage through fsspec (an object store stands in as fsspec's memory://) ---------------------


def test_object_store_storage_keeps_datasets_once_and_hands_uris_to_the_trainer() -> None:
    import fsspec

    from bot.provider.base import ProviderNotFound

    ray = RayProvider("http://127.0.0.1:9", entrypoint=ENTRY, storage="memory://ftbot-test-bucket/team")
    data = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
    first = ray.upload_file(data, "support.jsonl")
    again = ray.upload_file(io_bytes(data), "renamed.jsonl")
    assert again == first and first.filename == "support.jsonl" and first.bytes == len(data)
    assert first.id.startswith("file-") and len(first.id) == 5 + 32
    assert [f.id for f in ray.list_files(purpose="fine-tune")] == [first.id]
    assert ray.file_content(first.id) == data
    values, hyper = ray._values(JobSpec(model="Qwen/Qwen2.5-7B-Instruct", training_file=first.id, hyperparameters={"n_epochs": 1}), "sl-abc")
    assert values["train"] == f"memory:///ftbot-test-bucket/team/datasets/{first.id}.jsonl"
    assert values["output"] == "memory:///ftbot-test-bucket/team/outputs/sl-abc" and values["validation"] is None
    assert hyper == {"n_epochs": 1, "batch_size": 8, "learning_rate": 2e-4}
    with pytest.raises(ProviderNotFound):
        ray._values(JobSpec(model="m", training_file="file-" + "0" * 32), "sl-x")  # no such dataset: refused before Ray
    with pytest.raises(ProviderInvalidRequest, match="does not take lora_r"):
        ray._values(JobSpec(model="m", training_file=first.id, hyperparameters={"lora_r": 8}), "sl-x")
    with pytest.raises(ProviderInvalidRequest, match="only supervised"):
        ray._values(JobSpec(model="m", training_file=first.id, method="dpo"), "sl-x")

    # The trainer's checkpoint folders (and nothing else) are the job's checkpoints.
    fs = fsspec.filesystem("memory")
    for name in ("checkpoint-20", "checkpoint-5", "runs", "checkpoint-x"):
        fs.pipe(f"/ftbot-test-bucket/team/outputs/sl-abc/{name}/weights.npy", b"w")
    fs.pipe("/ftbot-test-bucket/team/outputs/sl-abc/config.json", b"{}")
    ckpts = ray.list_checkpoints("sl-abc")
    assert [(c.step_number, c.id, c.model) for c in ckpts] == [
        (5, "sl-abc:checkpoint-5", "memory:///ftbot-test-bucket/team/outputs/sl-abc/checkpoint-5"),
        (20, "sl-abc:checkpoint-20", "memory:///ftbot-test-bucket/team/outputs/sl-abc/checkpoint-20"),
    ]
    assert ray.list_checkpoints("sl-none") == []
    assert ray.delete_file(first.id) and ray.list_files() == []


def io_bytes(data: bytes):  # noqa: ANN201
    import io

    return io.BytesIO(data)


def test_the_start_form_offers_ray_models_and_an_absolute_learning_rate() -> None:
    from bot.messages.start_modal import start_modal

    blocks = {b["block_id"]: b for b in start_modal([("file-1", "train (12 ex.)")], [], channel="C1", providers=[("ray", "Ray")], default_provider="ray")["blocks"] if "block_id" in b}
    options = [o["value"] for o in blocks["model"]["element"]["options"]]
    assert blocks["model"]["element"]["initial_option"]["value"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert not any(o.startswith("gpt-") for o in options)
    assert blocks["lr"]["label"]["text"] == "Learning rate" and "2e-4" in blocks["lr"]["hint"]["text"]
    both = {b["block_id"]: b for b in start_modal([], [], channel="C1", providers=[("openai", "OpenAI"), ("ray", "Ray")], default_provider="openai")["blocks"] if "block_id" in b}
    assert "OpenAI: a multiplier of its base rate; Ray: the rate itself" in both["lr"]["hint"]["text"]
    assert {"gpt-4o-mini-2024-07-18", "Qwen/Qwen2.5-7B-Instruct"} <= {o["value"] for o in both["model"]["element"]["options"]}


def test_delete_model_removes_only_the_output_folder_ftbot_checked() -> None:
    """Any job on the cluster can carry ftbot=1 and an `output` of its choosing: deleting its model
    must remove that job's own output folder, never the path its metadata names."""
    from types import SimpleNamespace

    import fsspec
    from ray.job_submission import JobStatus

    from bot.provider.base import ProviderNotFound

    fs = fsspec.filesystem("memory")
    ray = RayProvider("http://127.0.0.1:9", entrypoint=ENTRY, storage="memory://ftbot-del-bucket/team")
    fs.pipe("/ftbot-del-bucket/team/outputs/sl-mine/weights.bin", b"w")
    fs.pipe("/ftbot-del-bucket/team/outputs/sl-evil/weights.bin", b"w")
    fs.pipe("/ftbot-del-bucket/precious/data.bin", b"keep me")
    jobs = [
        SimpleNamespace(submission_id="sl-mine", status=JobStatus.SUCCEEDED, end_time=2_000_000, metadata={"ftbot": "1", "output": "memory:///ftbot-del-bucket/team/outputs/sl-mine"}),
        SimpleNamespace(submission_id="sl-evil", status=JobStatus.SUCCEEDED, end_time=1_000_000, metadata={"ftbot": "1", "output": "memory:///ftbot-del-bucket/precious"}),
    ]
    ray._client_obj = SimpleNamespace(list_jobs=lambda: jobs)  # the cluster's answer, without a cluster
    ids = [m.id for m in ray.list_models()]
    assert ids == ["memory:///ftbot-del-bucket/team/outputs/sl-mine", "memory:///ftbot-del-bucket/team/outputs/sl-evil"]
    with pytest.raises(ProviderNotFound):
        ray.delete_model("memory:///ftbot-del-bucket/precious")  # what the metadata claims is not a model
    assert ray.delete_model(ids[1])
    assert fs.cat_file("/ftbot-del-bucket/precious/data.bin") == b"keep me"
    assert not fs.exists("/ftbot-del-bucket/team/outputs/sl-evil") and fs.exists("/ftbot-del-bucket/team/outputs/sl-mine/weights.bin")
    assert [m.id for m in ray.list_models()] == [ids[0]]
