"""The structured primal-dual interior-point method (small n): ``solver``
runs Mehrotra predictor-corrector steps, ``newton_system`` forms and factors
the Newton systems block by block, ``conic`` holds the cone algebra."""
