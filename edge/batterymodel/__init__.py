"""The fast battery model (edge side): the ECM cell bank, electrode windows, fixture pressure,
contact and coolant, the thermal chain and its markers, the plant stepping a batch with
`Command`/`Observation`, the SIL loop with its metrics, its stacked form (K copies of a batch in
one NumPy step, stacked.py) and the line PLC's program. The planner rolls strategies out on it
(edge/strategy/rollout.py, many at once through stacked.py); the HIL bench (tools/hil/plant.py) uses the
same model built from the truth, with its faults. Tests: tests/edge/batterymodel/.
"""
