"""int8 quantization with onnxruntime: dynamic by default, static QDQ with calibration rows.

onnxruntime recommends running its pre-processing (shape inference and graph optimisation)
before quantizing; both paths do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from assay.modeling.tokenizer import Encoded

Method = Literal["dynamic", "static"]


class _Calibration(CalibrationDataReader):
    """Feeds calibration rows to the static quantizer in batches."""

    def __init__(self, data: Encoded, batch_size: int = 256) -> None:
        self._batches = iter(
            [data.take(slice(i, i + batch_size)).feeds() for i in range(0, len(data), batch_size)]
        )

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def quantize(
    fp32: Path, int8: Path, *, method: Method = "dynamic", calibration: Encoded | None = None
) -> Path:
    """Pre-process fp32 into a sibling file, then quantize it to int8 at `int8`."""
    prepared = fp32.with_name(fp32.stem + ".prep.onnx")
    quant_pre_process(str(fp32), str(prepared))
    if method == "dynamic":
        # 7-bit weights: on x86 CPUs without VNNI (AVX2 only) the u8 x s8 products are summed
        # in saturating 16-bit pairs, so full-range weights give other, worse scores there than
        # on VNNI machines; with reduce_range no pair can saturate, so AVX2 and VNNI agree.
        quantize_dynamic(str(prepared), str(int8), weight_type=QuantType.QInt8, reduce_range=True)
    else:
        if calibration is None:
            raise ValueError("static quantization needs calibration rows")
        quantize_static(
            str(prepared),
            str(int8),
            _Calibration(calibration),
            quant_format=QuantFormat.QDQ,
            # Only the matrix products: quantizing the additive attention mask (huge negative
            # values) or the softmax inputs destroys the ranking.
            op_types_to_quantize=["MatMul", "Gemm"],
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
    prepared.unlink()
    _strip(int8)
    return int8


def _strip(path: Path) -> None:
    """Drop what only tools read (inferred shapes, doc strings): it can double a small model."""
    model = onnx.load(str(path))
    model.graph.ClearField("value_info")
    for node in model.graph.node:
        node.ClearField("doc_string")
    onnx.save(model, str(path))
