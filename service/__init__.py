"""The collapse-guard fronts: REST service, CLI and client, over `detectors/` and `simulations/`."""
