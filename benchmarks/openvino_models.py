"""OpenVINO versions of the benchmark's checkpoints: fp32 IR converted from the transformers
model, static int8 IR quantized by NNCF on the sample corpus, both cached on disk; compiled
models as a new user configures them; what the CPU plugin reports it ran.

The cache key is the checkpoint's weights (a SHA-256 of its files), the calibration corpus and
the openvino / nncf versions, so a changed checkpoint or library never reuses a stale IR.
"""

from __future__ import annotations

import collections
import hashlib
import os
import warnings


# NNCF's calibration: one tokenized sentence a sample, as a user calibrating on their own text.
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pybert", "data",
                      "sample_corpus.txt")
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
# OV precision hint of each benchmarked OV precision. int8 runs its unquantized ops (LayerNorm,
# softmax, GELU, the residual adds) in f32: on an AMX machine the CPU plugin's default would be
# bf16 there, which is not the int8 model the accuracy table measures.
PRECISION_HINT = {"fp32": "f32", "int8": "f32", "bf16": "bf16"}


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pybert-bench", "openvino")


def corpus_texts() -> list:
    with open(CORPUS, encoding="utf-8") as f:
        return [line for line in f.read().splitlines() if line.strip()]


def checkpoint_key(path: str) -> str:
    """SHA-256 (16 hex digits) of the checkpoint's weights and config, the corpus and the
    versions of openvino and nncf."""
    import nncf
    import openvino

    digest = hashlib.sha256(f"openvino {openvino.__version__} nncf {nncf.__version__}".encode())
    files = [os.path.join(path, f) for f in sorted(os.listdir(path))
             if f == "config.json" or f.endswith((".safetensors", ".bin"))] + [CORPUS]
    for file in files:
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def last_hidden(torch_model):
    """A torch module of a transformers BertModel that takes the three inputs by position and
    returns last_hidden_state alone: the graph the ONNX export and the OpenVINO conversion trace."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    return LastHidden(torch_model).eval()


def convert(torch_model):
    """fp32 ov.Model of a transformers BertModel's last_hidden_state, inputs int64 (batch, seq)
    with both dimensions dynamic (traced on a 2 x 16 example)."""
    import openvino as ov
    import torch

    ids = torch.ones(2, 16, dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        model = ov.convert_model(last_hidden(torch_model),
                                 example_input=dict(zip(INPUT_NAMES, (ids, ids, ids * 0))))
    model.reshape({name: ov.PartialShape([-1, -1]) for name in INPUT_NAMES})
    return model


def quantize_int8(fp32_model, tokenizer):
    """NNCF post-training static int8 (mixed preset: symmetric weights, asymmetric activations,
    ranges calibrated once) of the fp32 model on the sample corpus, one sentence a sample."""
    import nncf

    samples = [tokenizer([text]) for text in corpus_texts()]
    return nncf.quantize(fp32_model, nncf.Dataset(samples), subset_size=len(samples),
                         model_type=nncf.ModelType.TRANSFORMER)


def ir_files(name: str, path: str, torch_model, tokenizer, cache_dir: str, log=print) -> dict:
    """{"fp32": xml path, "int8": xml path} of the checkpoint at ``path`` in ``cache_dir``,
    converted and quantized there first if they are not (weights kept fp32: no fp16
    compression of the IR)."""
    import openvino as ov

    folder = os.path.join(cache_dir, f"{name}-{checkpoint_key(path)}")
    files = {p: os.path.join(folder, f"{p}.xml") for p in ("fp32", "int8")}
    if all(os.path.exists(f) for f in files.values()):
        log(f"{name}: OpenVINO IRs from {folder}")
        return files
    os.makedirs(folder, exist_ok=True)
    log(f"{name}: converting to OpenVINO and quantizing with NNCF into {folder}")
    models = {"fp32": convert(torch_model)}
    models["int8"] = quantize_int8(models["fp32"], tokenizer)
    for p, model in models.items():
        ov.save_model(model, files[p], compress_to_fp16=False)
    return files


def load_models(name: str, path: str, torch_model, tokenizer, cache_dir: str, log=print) -> dict:
    """{"fp32": ov.Model, "int8": ov.Model} of ``ir_files``."""
    import openvino as ov

    core = ov.Core()
    return {p: core.read_model(f) for p, f in
            ir_files(name, path, torch_model, tokenizer, cache_dir, log).items()}


def compile_model(model, precision: str, threads: int, profiling: bool = False):
    """The CPU plugin's compiled model as the benchmark runs it: latency hint, ``threads``
    inference threads, the precision hint of ``precision`` (PRECISION_HINT)."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": PRECISION_HINT[precision],
              "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    if profiling:
        config["PERF_COUNT"] = True
    return ov.Core().compile_model(model, "CPU", config)


def infer_fn(compiled, feed: dict):
    """A call of the compiled model on ``feed`` (numpy arrays by input name) -> its output."""
    request = compiled.create_infer_request()
    return lambda: request.infer(feed)[0]


# Layer types whose kernels the report names: the GEMMs and the attention.
# (OV fuses BERT's attention, its two products and softmax, into a "Subgraph" per layer.)
REPORTED_LAYERS = ("FullyConnected", "MatMul", "ScaledAttn", "Subgraph")


def kernels(compiled) -> str:
    """What the CPU plugin ran: its execution devices, its inference precision, and for the GEMM
    and fused attention layers of the runtime graph (as last executed) the primitive (kernel)
    with their counts; a GEMM's with its runtime precision (its activations' type: u8 / i8 for
    int8), e.g. 'FullyConnected brgemm_avx512_amx_I8 u8 x34, Subgraph jit_avx512_i8 x6'."""
    counts = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str)
        if layer in REPORTED_LAYERS:
            # A Subgraph's runtime precision is its first input's (the mask, u8): not telling.
            precision = "" if layer == "Subgraph" else " " + info["runtimePrecision"].astype(str)
            counts[f"{layer} {info['primitiveType'].astype(str)}{precision}"] += 1
    ran = ", ".join(f"{kernel} x{n}" for kernel, n in sorted(counts.items()))
    return (f"EXECUTION_DEVICES {','.join(compiled.get_property('EXECUTION_DEVICES'))}, "
            f"inference precision {compiled.get_property('INFERENCE_PRECISION_HINT').to_string()}"
            f"; {ran}")


def profile(request) -> dict:
    """Per layer type of the last call of an infer request compiled with profiling: {(layer
    type, kernel): (microseconds, layers)}, executed layers only."""
    out = collections.defaultdict(lambda: [0.0, 0])
    for p in request.get_profiling_info():
        if p.status.name == "EXECUTED":
            key = (p.node_type, p.exec_type)
            out[key][0] += p.real_time.total_seconds() * 1e6
            out[key][1] += 1
    return {k: tuple(v) for k, v in out.items()}

