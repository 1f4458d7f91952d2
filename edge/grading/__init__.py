"""Grading (DESIGN.md S11): state parameters, mutual information, SOC from the shipped GAN, tiers.

Modules: features (CSV -> feat_* matrix, physical ranges, refusals), marginals/copulas/mutual_info
(copula entropy), soc_model (onnxruntime serving of models/shipped/), metadata_checks (the checks
every shipped model's metadata passes, onnxruntime telemetry off), tiers (entropy-weight centres, Mahalanobis),
cli (`discharge-edge grade`). Tests: tests/edge/grading/.
"""
