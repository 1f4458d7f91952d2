"""Training and ONNX export of the SOC GAN and the RL policy (PyTorch, an optional extra).

The supervisor (edge/) never imports this package: it loads the exported `.onnx` files and
their metadata, which it checks before serving them.
"""
