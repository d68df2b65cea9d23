"""transformers against a real amphub: a config and a tokenizer made here, no weights.

transformers reads HF_ENDPOINT when huggingface_hub is imported, as a user's script
would, so it runs in a child process with the environment a user sets.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers

from tests.conftest import Hub, push

VOCAB = {"[UNK]": 0, "[PAD]": 1, "hello": 2, "world": 3, "amphub": 4}
CONFIG = {
    "model_type": "bert",
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 16,
    "vocab_size": len(VOCAB),
}
LOAD = """
import json
from transformers import AutoConfig, AutoTokenizer
config = AutoConfig.from_pretrained("team/tiny")
tokenizer = AutoTokenizer.from_pretrained("team/tiny", revision="v1")
print(json.dumps({
    "type": config.model_type,
    "hidden": config.hidden_size,
    "ids": tokenizer("hello amphub world")["input_ids"],
}))
"""


def tokenizer_json() -> bytes:
    tokenizer = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer.to_str().encode()


async def test_auto_config_and_auto_tokenizer_load_from_amphub(hub: Hub, tmp_path: Path):
    await hub.space_and_model("team", "tiny")
    files = {
        "config.json": json.dumps(CONFIG).encode(),
        "tokenizer.json": tokenizer_json(),
        "tokenizer_config.json": json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "unk_token": "[UNK]",
                "pad_token": "[PAD]",
            }
        ).encode(),
    }
    await push(tmp_path / "work", files, "tiny model", clone=hub.remote("team", "tiny"), tag="v1")

    env = {name: value for name, value in os.environ.items() if not name.startswith("HF_")}
    env.update(
        HF_ENDPOINT=hub.base,
        HF_TOKEN=hub.admin_key,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        TRANSFORMERS_VERBOSITY="error",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOAD,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    loaded = json.loads(out.decode().strip().splitlines()[-1])
    assert loaded == {"type": "bert", "hidden": 8, "ids": [2, 4, 3]}
