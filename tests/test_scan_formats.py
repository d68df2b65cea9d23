"""Model formats other than pickles, and how a blob is sniffed, built by hand here."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile

import pytest

from amphub.scan.dispatch import scan_blob
from amphub.scan.findings import FileVerdict, worst


def scan(data: bytes, path: str) -> FileVerdict:
    return scan_blob(path, lambda: io.BytesIO(data), len(data))


def messages(verdict: FileVerdict) -> str:
    return "\n".join(f.message for f in verdict.findings)


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


# --- safetensors ------------------------------------------------------------------


def safetensors(header: dict | bytes, data: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


GOOD = {
    "__metadata__": {"format": "pt"},
    "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    "b": {"dtype": "BF16", "shape": [4], "data_offsets": [16, 24]},
}


def test_valid_safetensors_is_safe():
    verdict = scan(safetensors(GOOD, bytes(24)), "model.safetensors")
    assert verdict.status == "safe", verdict
    assert "2 tensors" in messages(verdict)
    # sniffed by content too, whatever the name
    assert scan(safetensors(GOOD, bytes(24)), "weights").status == "safe"


@pytest.mark.parametrize(
    ("header", "data", "expected"),
    [
        (GOOD | {"b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, 16, "overlaps"),
        (GOOD, 16, "ends past the file"),
        (GOOD, 40, "bytes after the last tensor"),
        (GOOD | {"b": {"dtype": "F32", "shape": [2], "data_offsets": [20, 28]}}, 28, "hole"),
        (GOOD | {"b": {"dtype": "F32", "shape": [9], "data_offsets": [16, 24]}}, 24, "disagree"),
        (GOOD | {"b": {"dtype": "Q7", "shape": [2], "data_offsets": [16, 24]}}, 24, "dtype"),
        (GOOD | {"__metadata__": {"n": 1}}, 24, "__metadata__"),
    ],
)
def test_bad_safetensors_offsets_are_suspicious(header, data, expected):
    verdict = scan(safetensors(header, bytes(data)), "model.safetensors")
    assert verdict.status == "suspicious", verdict
    assert expected in messages(verdict)


@pytest.mark.parametrize(
    "data",
    [
        safetensors(b"{not json", bytes(8)),
        safetensors(b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": 1}', b""),
        safetensors(b'{"w": NaN}', b""),
        safetensors(b"[1, 2]", b""),
        safetensors({"w": {"dtype": "F32", "shape": [1]}}, bytes(4)),
        struct.pack("<Q", 2**40) + b"{}",
        struct.pack("<Q", 64) + b"{}",
        b"\x01\x02",
    ],
    ids=["bad-json", "duplicate", "nan", "not-object", "no-offsets", "huge", "short", "tiny"],
)
def test_unreadable_safetensors_is_error(data):
    assert scan(data, "model.safetensors").status == "error"


# --- Keras ------------------------------------------------------------------------


LAMBDA_CONFIG = {
    "class_name": "Functional",
    "config": {
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
            {"class_name": "Lambda", "config": {"function": ["4wEAAAAAAAAA", None, None]}},
        ]
    },
}
PLAIN_CONFIG = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense"}]}}


def hdf5(config: dict | None, marker: bytes = b"model_config", escape: bool = False) -> bytes:
    text = json.dumps(config).encode() if config is not None else b""
    if escape:
        text = text.replace(b'"Lambda"', b'"\\u004cambda"')
    return b"\x89HDF\r\n\x1a\n" + bytes(200) + marker + bytes(9) + text + bytes(300)


def test_keras_h5_lambda_is_unsafe():
    verdict = scan(hdf5(LAMBDA_CONFIG), "model.h5")
    assert verdict.status == "unsafe"
    assert "Lambda" in messages(verdict)


def test_keras_h5_escaped_lambda_is_found():
    verdict = scan(hdf5(LAMBDA_CONFIG, escape=True), "model.h5")
    assert verdict.status == "unsafe"
    assert "escapes" in messages(verdict)


def test_keras_h5_without_code_is_safe():
    assert scan(hdf5(PLAIN_CONFIG), "model.h5").status == "safe"
    assert scan(hdf5(None, b"layer_names"), "tf_model.h5").status == "safe"


def test_keras_zip():
    def keras(config: dict) -> bytes:
        members = {"metadata.json": b'{"keras_version": "3.3.3"}'}
        members |= {"config.json": json.dumps(config).encode(), "model.weights.h5": hdf5(None)}
        return zip_of(members)

    assert scan(keras(LAMBDA_CONFIG), "model.keras").status == "unsafe"
    assert scan(keras(PLAIN_CONFIG), "model.keras").status == "safe"
    lambda3 = {"class_name": "Dense", "config": {"activation": {"class_name": "__lambda__"}}}
    assert scan(keras(lambda3), "model.keras").status == "unsafe"
    os_call = {"module": "os", "class_name": "function", "config": "system"}
    assert scan(keras({"config": {"layers": [os_call]}}), "model.keras").status == "unsafe"
    custom = {"module": "my_layers", "class_name": "Fancy", "config": {}}
    assert scan(keras({"config": {"layers": [custom]}}), "model.keras").status == "suspicious"
    assert scan(zip_of({"config.json": b"{oops"}), "model.keras").status == "error"


# --- GGUF -------------------------------------------------------------------------


def gstr(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf(template: str | None = None, tensors: int = 2) -> bytes:
    kvs = [
        ("general.architecture", 8, gstr("llama")),
        ("llama.context_length", 4, struct.pack("<I", 4096)),
        ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + gstr("a") + gstr("b") + gstr("c")),
        ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0, 1, 2)),
    ]
    if template is not None:
        kvs.append(("tokenizer.chat_template", 8, gstr(template)))
    out = b"GGUF" + struct.pack("<IQQ", 3, tensors, len(kvs))
    for key, vtype, value in kvs:
        out += gstr(key) + struct.pack("<I", vtype) + value
    return out + bytes(64)  # tensor infos and data: not read


def test_gguf_is_data():
    verdict = scan(gguf("{% for m in messages %}{{ m.content }}{% endfor %}"), "m.gguf")
    assert verdict.status == "safe", verdict
    assert "GGUF v3: 2 tensors, 5 metadata keys" in messages(verdict)


def test_gguf_chat_template_goes_to_the_template_scanner():
    evil = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    assert scan(gguf(evil), "m.gguf").status == "unsafe"


def test_broken_gguf_is_error():
    assert scan(gguf()[:40], "m.gguf").status == "error"
    assert scan(b"GGUF" + struct.pack("<IQQ", 9, 0, 0), "m.gguf").status == "error"


# --- ONNX -------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = b""
    while True:
        out += bytes([n & 0x7F | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out


def field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def tensor(name: str, location: str | None = None) -> bytes:
    out = field(1, 4) + field(2, 1) + field(8, name.encode())
    if location is None:
        return out + field(9, struct.pack("<4f", 1, 2, 3, 4))  # raw_data
    entry = field(1, b"location") + field(2, location.encode())
    return out + field(13, entry) + field(13, field(1, b"offset") + field(2, b"0")) + field(14, 1)


def onnx(location: str | None = None, in_subgraph: bool = False) -> bytes:
    inner = field(5, tensor("w", location))
    if in_subgraph:  # an If node whose then-branch holds the tensor
        attribute = field(1, b"then_branch") + field(6, field(2, b"sub") + inner) + field(20, 5)
        graph = field(1, field(1, b"c") + field(4, b"If") + field(5, attribute))
    else:
        graph = field(1, field(1, b"x") + field(2, b"y") + field(4, b"Relu")) + inner
    return field(1, 8) + field(2, b"test") + field(7, graph) + field(8, field(2, 17))


@pytest.mark.parametrize("location", [None, "weights.bin", "data/w.bin"])
def test_onnx_is_data(location):
    assert scan(onnx(location), "model.onnx").status == "safe"


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "C:\\x", "a/../../b"])
@pytest.mark.parametrize("in_subgraph", [False, True])
def test_onnx_external_data_outside_the_model_is_unsafe(location, in_subgraph):
    verdict = scan(onnx(location, in_subgraph), "model.onnx")
    assert verdict.status == "unsafe"
    assert "external data outside the model" in messages(verdict)


def test_broken_onnx_is_error():
    assert scan(onnx("w.bin")[:-3], "model.onnx").status == "error"
    assert scan(b"\x0b\x0c", "model.onnx").status == "error"  # wire type 3 (groups)


# --- sniffing ---------------------------------------------------------------------


def test_unknown_binary_is_skipped_but_pickle_names_fail_closed():
    blob = bytes(range(256)) * 4
    assert scan(blob, "weights.dat").status == "skipped"
    assert scan(blob, "pytorch_model.bin").status == "error"
    assert scan(b"", "empty.bin").status == "skipped"
    assert scan(b"lmgg" + bytes(100), "ggml-model.bin").status == "safe"
    assert scan(blob, "model.npy").status == "error"
    assert scan(blob, "model.h5").status == "error"


def test_pickle_found_by_content_whatever_the_name():
    evil = pickle.dumps(eval, protocol=2)
    assert scan(evil, "README").status in ("unsafe", "suspicious")
    assert scan(b"cos\nsystem\n(S'id'\ntR.", "notes.txt").status == "unsafe"
    assert scan(b"N.B. this is a README, not a pickle", "README").status == "safe"
    no_proto = b"\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."  # the unpickler needs no PROTO
    assert scan(no_proto, "weights.dat").status == "unsafe"


def test_worst():
    assert worst(["safe", "error", "suspicious"]) == "error"
    assert worst(["error", "unsafe"]) == "unsafe"
    assert worst(["skipped", "safe"]) == "safe"
    assert worst([]) == "skipped"


# --- Keras architecture JSON ------------------------------------------------------

KERAS2_JSON = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4]}},
            {"class_name": "Dense", "config": {"units": 3, "activation": "relu"}},
        ],
    },
    "keras_version": "2.15.0",
    "backend": "tensorflow",
}
KERAS3_CONFIG = {
    "module": "keras",
    "class_name": "Functional",
    "config": {
        "layers": [
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {"units": 3, "activation": "relu"},
                "registered_name": None,
            }
        ]
    },
    "registered_name": "Functional",
}
LAMBDA_LAYER = {"class_name": "Lambda", "config": {"function": ["4wEAAAAAAAAA", None, None]}}
OS_FUNCTION = {"module": "os", "class_name": "function", "config": "system"}
CUSTOM = {"module": "my_layers", "class_name": "Fancy", "config": {}}


def with_layer(config: dict, layer: dict) -> bytes:
    config = json.loads(json.dumps(config))
    config["config"]["layers"].append(layer)
    return json.dumps(config, indent=2).encode()


@pytest.mark.parametrize("base", [KERAS2_JSON, KERAS3_CONFIG], ids=["keras2", "keras3"])
@pytest.mark.parametrize(
    ("layer", "status"),
    [(LAMBDA_LAYER, "unsafe"), (OS_FUNCTION, "unsafe"), (CUSTOM, "suspicious")],
)
@pytest.mark.parametrize("name", ["model.json", "config.json", "keras/architecture.json"])
def test_keras_architecture_json_is_checked_like_a_keras_file(base, layer, status, name):
    verdict = scan(with_layer(base, layer), name)
    assert verdict.status == status, verdict
    assert "Keras" in messages(verdict)


def test_keras_json_inside_a_model_config_dump_is_found():
    data = json.dumps({"model_config": json.loads(with_layer(KERAS2_JSON, LAMBDA_LAYER))})
    assert scan(data.encode(), "model.json").status == "unsafe"


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(KERAS2_JSON).encode(),
        json.dumps(KERAS3_CONFIG).encode(),
        b'{"architectures": ["BertModel"], "hidden_size": 768, "model_type": "bert"}',
        b'{"class_name": "MyTokenizer", "vocab_size": 3}',
        b'{"class_name": "Dense", "config": {"units": 3}} trailing',
    ],
)
def test_benign_json_is_safe(data):
    assert scan(data, "config.json").status == "safe"
