"""The paper's evaluation (section 5.2) against a live WebUI: its three patterns, the methods it compares, the
HTTP client that spreads the generations over WebUIs and caches them, the scoring (E_M, CAM, DAM) and the report
(Table 1, Fig. 11, JSON). ``python -m lib_diffdiff evaluate-webui --url ...`` runs it."""
