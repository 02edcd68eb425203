"""The convex program and its certificate: the maths every backend shares.

Modules, in dependency order (each imports only modules above it):

* ``status``, ``errors``, ``validation``: status names, exceptions, input checks.
* ``losses``, ``regularizers``: the loss and the penalty, each on its own.
* ``operator`` (+ the compiled ``_operator``): ``U -> sum_i D_i X u_i`` and
  its adjoint, two GEMMs and a masked reduction in row blocks.
* ``formulations``: gated ReLU and ReLU (what differs between them).
* ``patterns``, ``gates``: activation patterns and the gate families.
* ``problem``: the data, patterns, loss, penalty and lam of one program, and
  its cheap copies (``with_lam``, ``relu_twin``).
* ``cone_multipliers``, ``certificates``: lam_max, duality gap, KKT residual,
  cone violation, computed the same way for every solver.
* ``network``, ``solution``: the equivalent two-layer network and the
  solution type every backend returns.
"""
