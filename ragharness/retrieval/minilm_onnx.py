"""all-MiniLM-L6-v2 on ONNX Runtime, without PyTorch.

The BERT encoder (embeddings, 6 transformer layers, mean pooling over the attention mask, L2 normalisation) is
written as an ONNX graph straight from the model folder's `model.safetensors` and `config.json`, in memory, when
the embedder first embeds: no export step, nothing downloaded, no file written. ONNX Runtime's own transformer
optimizer then fuses what it recognises (attention, LayerNorm + residual, bias + GELU). fp32 throughout: the
vectors equal sentence-transformers' within 1e-6 (tests/test_embedders.py checks 1e-5 against the real model in
the dev tier).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ragharness.core.errors import EmbedderError
from ragharness.core.progress import room_log

_LOG = room_log(__name__)

OPSET = 17
IR_VERSION = 10  # what every onnxruntime since 1.16 reads


class _Graph:
    """Nodes and weights of one graph under construction; every intermediate gets a fresh name."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self._n = 0

    def const(self, name: str, value: Any) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        self._n += 1
        out = output or f"t{self._n}"
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out


def bert_graph(weights: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> Any:
    """The ONNX model: inputs `input_ids`, `attention_mask` (int64, batch x tokens), output `embedding` (float32,
    batch x hidden, unit length). Single-segment inputs (token type 0), as sentence embedding uses them."""
    from onnx import TensorProto, helper

    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    layers, eps = int(config["num_hidden_layers"]), float(config.get("layer_norm_eps", 1e-12))
    if config.get("hidden_act", "gelu") != "gelu" or hidden % heads:
        raise EmbedderError(f"not a BERT encoder this embedder can run (hidden_act {config.get('hidden_act')!r})")
    head = hidden // heads
    g = _Graph()

    def w(name: str) -> np.ndarray:
        try:
            return np.asarray(weights[name], dtype=np.float32)
        except KeyError as exc:
            raise EmbedderError(f"model.safetensors has no tensor {name!r}: not a BERT checkpoint") from exc

    def linear(x: str, name: str) -> str:
        matmul = g.op("MatMul", [x, g.const(f"{name}.wT", np.ascontiguousarray(w(f"{name}.weight").T))])
        return g.op("Add", [matmul, g.const(f"{name}.b", w(f"{name}.bias"))])

    def layer_norm(x: str, name: str) -> str:
        scale, shift = g.const(f"{name}.g", w(f"{name}.weight")), g.const(f"{name}.beta", w(f"{name}.bias"))
        return g.op("LayerNormalization", [x, scale, shift], axis=-1, epsilon=eps)

    def scalar(name: str, value: float) -> str:
        return g.const(name, np.array(value, np.float32))

    ids, mask = "input_ids", "attention_mask"
    tokens = g.op("Gather", [g.op("Shape", [ids]), g.const("dim1", np.array(1, np.int64))], axis=0)
    positions = g.op("Range", [g.const("zero", np.array(0, np.int64)), tokens, g.const("step", np.array(1, np.int64))])
    words = g.op("Gather", [g.const("word_emb", w("embeddings.word_embeddings.weight")), ids], axis=0)
    where = g.op("Gather", [g.const("pos_emb", w("embeddings.position_embeddings.weight")), positions], axis=0)
    x = g.op("Add", [g.op("Add", [words, where]), g.const("type_emb", w("embeddings.token_type_embeddings.weight")[0])])
    x = layer_norm(x, "embeddings.LayerNorm")
    m = g.op("Cast", [mask], to=TensorProto.FLOAT)
    # batch x 1 x 1 x tokens, written as BERT exports it (Unsqueeze, Unsqueeze, Cast, Sub, Mul) so that ONNX
    # Runtime's optimizer recognises the attention block
    wide = g.op(
        "Unsqueeze",
        [
            g.op("Unsqueeze", [mask, g.const("axis1_", np.array([1], np.int64))]),
            g.const("axis2_", np.array([2], np.int64)),
        ],
    )
    inverted = g.op("Sub", [scalar("f1", 1.0), g.op("Cast", [wide], to=TensorProto.FLOAT)])
    bias = g.op("Mul", [inverted, scalar("fmin", float(np.finfo(np.float32).min))])
    split = g.const("split_heads", np.array([0, 0, heads, head], np.int64))
    merge = g.const("merge_heads", np.array([0, 0, hidden], np.int64))
    root_head = scalar("root_head", float(np.sqrt(head)))
    half, one, root2 = scalar("half", 0.5), scalar("one", 1.0), scalar("root2", float(np.sqrt(2.0)))
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def heads_of(x_: str, kind: str, perm: list[int], p_: str = p) -> str:
            return g.op("Transpose", [g.op("Reshape", [linear(x_, f"{p_}attention.self.{kind}"), split])], perm=perm)

        q, k, v = (
            heads_of(x, "query", [0, 2, 1, 3]),
            heads_of(x, "key", [0, 2, 3, 1]),
            heads_of(x, "value", [0, 2, 1, 3]),
        )
        scores = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k]), root_head]), bias])
        attended = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        merged = g.op("Reshape", [g.op("Transpose", [attended], perm=[0, 2, 1, 3]), merge])
        x = layer_norm(g.op("Add", [linear(merged, f"{p}attention.output.dense"), x]), f"{p}attention.output.LayerNorm")
        h = linear(x, f"{p}intermediate.dense")
        gelu = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [one, g.op("Erf", [g.op("Div", [h, root2])])])])
        x = layer_norm(g.op("Add", [linear(gelu, f"{p}output.dense"), x]), f"{p}output.LayerNorm")
    m3 = g.op("Unsqueeze", [m, g.const("axis2", np.array([2], np.int64))])
    axis1 = g.const("axis1", np.array([1], np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), axis1], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [m3, axis1], keepdims=0), scalar("min_count", 1e-9)])
    pooled = g.op("Div", [summed, count])
    length = g.op("Max", [g.op("ReduceL2", [pooled], axes=[-1], keepdims=1), scalar("min_norm", 1e-12)])
    g.op("Div", [pooled, length], output="embedding")
    graph = helper.make_graph(
        g.nodes,
        "minilm",
        [
            helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=g.weights,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ragharness", ir_version=IR_VERSION
    )


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def load_session(model_dir: Path) -> Any:
    """An ONNX Runtime session (CPU) running the model folder's BERT encoder with mean pooling."""
    import onnxruntime as ort
    from safetensors.numpy import load_file

    weights_file, config_file = model_dir / "model.safetensors", model_dir / "config.json"
    for f in (weights_file, config_file):
        if not f.is_file():
            raise EmbedderError(f"{f}: missing; point embedder.options.model_path at a sentence-transformers folder")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    model = bert_graph(load_file(str(weights_file)), config)
    try:  # ONNX Runtime's own BERT fusions (LayerNorm + residual, bias + GELU): the same arithmetic, fewer passes
        import logging

        from onnxruntime.transformers.optimizer import optimize_model

        logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)  # "producer not matched": expected

        heads, hidden = int(config["num_attention_heads"]), int(config["hidden_size"])
        model = optimize_model(model, model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0).model
    except Exception as exc:
        _LOG(f"minilm: ONNX Runtime's BERT fusions not applied ({type(exc).__name__}); the plain graph runs")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = usable_cpus()  # ONNX Runtime's default counts physical cores only
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
