"""compression: ONNX export, int8 quantization, and a torch-free scorer for what ships."""
