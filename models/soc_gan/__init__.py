"""SOC by a conditional GAN (DESIGN.md S11): data split, networks, training, ONNX export, evaluation.

Imports torch (the `train` extra). `edge` never imports this package; it loads what export.py
writes under models/shipped/. Model card: MODEL_CARD.md. Tests: tests/models/.
"""
